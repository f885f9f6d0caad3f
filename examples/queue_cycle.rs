//! A claim + complete driver for profiling the member store against any Redis, outside criterion.
//!
//! It loads 20,000 members into campaign `queue_cycle` (dropping it first), then claims 500 and completes the
//! previous 500 at once (the engine's shape, as `benches/queue.rs`'s `claim_complete_overlapped`) until `SECS`
//! seconds or `CYCLES` cycles have passed, and prints members per second. Meant for comparisons a noisy machine
//! cannot spoil: two builds run in alternation against one Redis, or redis-server under
//! `valgrind --tool=callgrind` with a fixed `CYCLES` (instructions do not depend on what else the machine does).
//!
//! With `OTHER=1` the results are completed through a second store, as when another engine node completes them: no
//! claim snapshot, so every batch is read first (`peek.lua`) and then decided in Rust and written as usual.
//!
//! With `CLAIM_ONLY=1` nothing is completed: each cycle only claims, so a run of at most 39 cycles (the members
//! run out at 40) measures the claim alone; the completion's cost is the difference from a normal run.
//!
//! With `CAMPAIGNS=N` it runs N campaigns at once (`queue_cycle_0`…, 20,000 members shared out, at least 1,000
//! each), each in its own loop: on a Redis Cluster (`REDIS_URL=redis+cluster://…`) they spread over the shards.
//!
//! `REDIS_URL=redis://127.0.0.1:6379 SECS=5 cargo run --release --example queue_cycle`

#[path = "../benches/support/queue_load.rs"]
mod queue_load;

use chrono::{Duration as CDuration, TimeZone, Utc};
use fsdialer::campaign::member::MemberInput;
use fsdialer::campaign::schedule::Always;
use fsdialer::store::*;
use queue_load::{member, minus};
use std::time::{Duration, Instant};

const CAMPAIGN: &str = "queue_cycle";
const MEMBERS: usize = 20_000;
const BATCH: usize = 500;

fn env_num(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v.parse().map_err(|e| anyhow::anyhow!("{name}={v:?}: {e}")),
        Err(_) => Ok(default),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let secs = env_num("SECS", 5)?;
    let cycles = env_num("CYCLES", u64::MAX)?;
    let claim_only = env_num("CLAIM_ONLY", 0)? == 1;
    let campaigns = env_num("CAMPAIGNS", 1)?.max(1) as usize;
    let store = Store::open(&url).await?;
    let completer = if env_num("OTHER", 0)? == 1 {
        Store::open(&url).await?
    } else {
        store.clone()
    };
    let names: Vec<String> = (0..campaigns)
        .map(|i| {
            if campaigns == 1 {
                CAMPAIGN.to_string()
            } else {
                format!("{CAMPAIGN}_{i}")
            }
        })
        .collect();
    let per_campaign = (MEMBERS / campaigns).max(2 * BATCH);
    let now = Utc.with_ymd_and_hms(2024, 3, 4, 10, 0, 0).unwrap();
    let members: Vec<MemberInput> = (0..per_campaign).map(member).collect();
    for name in &names {
        store.drop_campaign(name).await?;
        store.add(name, &members, now).await?;
    }
    let t0 = Instant::now();
    let runs = names.iter().map(|name| {
        cycle(
            &store,
            &completer,
            name,
            now,
            Limits {
                secs,
                cycles,
                claim_only,
            },
        )
    });
    let n: u64 = futures::future::try_join_all(runs).await?.iter().sum();
    let took = t0.elapsed().as_secs_f64();
    println!(
        "{n} members {} in {took:.2} s over {campaigns} campaign(s): {:.0}/s",
        if claim_only {
            "claimed"
        } else {
            "claimed and completed"
        },
        n as f64 / took
    );
    Ok(())
}

/// When a campaign's loop stops.
#[derive(Clone, Copy)]
struct Limits {
    secs: u64,
    cycles: u64,
    claim_only: bool,
}

/// Claims and completes in one campaign until the limits; returns the members completed (or claimed).
async fn cycle(
    store: &Store,
    completer: &Store,
    campaign: &str,
    mut now: chrono::DateTime<Utc>,
    limits: Limits,
) -> anyhow::Result<u64> {
    let policy = QueuePolicy {
        limit: 100_000,
        wait_between_retries_sec: 0,
        ..QueuePolicy::default()
    };
    let lease = Duration::from_secs(60);
    let claim = |now| store.claim(campaign, &policy, &Always, now, BATCH, "queue_cycle", lease);
    now += CDuration::milliseconds(1);
    let mut pending = claim(now).await?.claims;
    let t0 = Instant::now();
    let (mut done, mut n) = (0, 0u64);
    while done < limits.cycles && t0.elapsed() < Duration::from_secs(limits.secs) {
        now += CDuration::milliseconds(1);
        let results: Vec<AttemptResult> = pending.iter().map(minus).collect();
        let (next, completed) = if limits.claim_only {
            (claim(now).await, Ok(vec![]))
        } else {
            tokio::join!(
                claim(now),
                completer.complete_many(campaign, &policy, &Always, &results, now)
            )
        };
        if !completed?
            .iter()
            .all(|c| matches!(c, CompleteOutcome::Applied(_)))
        {
            anyhow::bail!("a result was not applied");
        }
        pending = next?.claims;
        n += results.len() as u64;
        done += 1;
    }
    Ok(n)
}
