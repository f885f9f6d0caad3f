//! Member-queue benchmarks against a private local redis-server (started by the bench, killed at the end):
//! - `queue/claim_complete`: claim a batch of 500, complete them with one `complete_many`, members per second;
//! - `queue/claim_complete_overlapped`: the same with the next claim running while the previous batch completes;
//! - `queue/claim_complete_other_node`: the first, with the results completed through a second store (as when
//!   another engine node completes them): no claim snapshot, so every batch is read first (`peek.lua`), then
//!   decided in Rust and written as the claiming node's is. The baseline, in the same run, for the read-free path;
//! - `queue/import`: bulk add, members per second; plus a one-off import of 1,000,000 members;
//! - memory per member: `MEMORY USAGE` of a member's record (2 numbers, 3 variables) and `used_memory` per member
//!   including the ready queue, printed;
//! - Redis time per member of the claim and the complete script (from Redis's slow log) and Redis CPU per member,
//!   printed: what bounds every engine node together, whatever the client machine does.
//!
//! Run: `cargo bench --bench queue -- --warm-up-time 1 --measurement-time 3`

#[path = "support/queue_load.rs"]
mod queue_load;

use chrono::{DateTime, Duration as CDuration, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fsdialer::campaign::member::MemberInput;
use fsdialer::campaign::schedule::Always;
use fsdialer::store::local_redis::{LocalRedis, LocalRedisOptions};
use fsdialer::store::*;
use queue_load::{member, minus};
use std::time::{Duration, Instant};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 10, 0, 0).unwrap()
}

async fn import(store: &Store, campaign: &str, n: usize) {
    let now = start();
    let mut i = 0;
    while i < n {
        let k = (n - i).min(50_000);
        let batch: Vec<MemberInput> = (i..i + k).map(member).collect();
        store.add(campaign, &batch, now).await.expect("import");
        i += k;
    }
}

/// One claim of `n` through `claimer`, all completed (minus) through `completer`.
async fn cycle(
    claimer: &Store,
    completer: &Store,
    campaign: &str,
    policy: &QueuePolicy,
    now: DateTime<Utc>,
    n: usize,
) {
    let lease = Duration::from_secs(60);
    let batch = claimer
        .claim(campaign, policy, &Always, now, n, "bench", lease)
        .await
        .unwrap();
    assert_eq!(batch.claims.len(), n);
    let results: Vec<AttemptResult> = batch.claims.iter().map(minus).collect();
    let done = completer
        .complete_many(campaign, policy, &Always, &results, now)
        .await
        .unwrap();
    assert!(
        done.iter()
            .all(|d| matches!(d, CompleteOutcome::Applied(_)))
    );
}

/// CPU seconds (user + system) the redis-server process used so far.
async fn redis_cpu(store: &RedisStore) -> f64 {
    let info: String = ::redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut store.connection())
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| {
            l.strip_prefix("used_cpu_user:")
                .or_else(|| l.strip_prefix("used_cpu_sys:"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

async fn used_memory(store: &RedisStore) -> u64 {
    let info: String = ::redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut store.connection())
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// Median run time per member of the claim and the complete script calls in Redis's slow log, in µs.
/// Returns (claim, complete, the read of a completion by another node).
async fn script_time_per_member(store: &RedisStore, batch: usize) -> (f64, f64, f64) {
    let entries: Vec<Vec<::redis::Value>> = ::redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(100_000)
        .query_async(&mut store.connection())
        .await
        .unwrap();
    let (mut claim, mut fast, mut read) = (Vec::new(), Vec::new(), Vec::new());
    for e in entries {
        let micros: i64 = ::redis::from_redis_value(e[2].clone()).unwrap();
        let args: Vec<String> = ::redis::from_redis_value(e[3].clone()).unwrap();
        if !args[0].eq_ignore_ascii_case("evalsha") {
            continue;
        }
        // A long command is logged as its first 31 arguments and "... (N more arguments)".
        let more: usize = args
            .last()
            .and_then(|l| l.strip_prefix("... ("))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let total = if more > 0 {
            args.len() - 1 + more
        } else {
            args.len()
        };
        // Told apart by their argument counts for a batch of n (`total` is the whole command line): claim
        // n + 10; complete.lua 7n + 13 when every member goes back to the ready order; peek.lua 2n + 16;
        // an import 9 per member, in batches far larger than n.
        if total >= 8 * batch {
            continue;
        } else if total >= 7 * batch {
            fast.push(micros);
        } else if total >= 2 * batch && total < 3 * batch {
            read.push(micros);
        } else if total >= batch && total < 2 * batch {
            claim.push(micros);
        }
    }
    let median = |mut v: Vec<i64>| {
        v.sort_unstable();
        v.get(v.len() / 2).map_or(0.0, |m| *m as f64 / batch as f64)
    };
    (median(claim), median(fast), median(read))
}

fn queue(c: &mut Criterion) {
    let server = LocalRedis::start(LocalRedisOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(Store::open(&server.url())).unwrap();
    let Store::Redis(redis_store) = &store else {
        unreachable!()
    };

    // Memory per member.
    rt.block_on(async {
        let before = used_memory(redis_store).await;
        import(&store, "mem", 100_000).await;
        let after = used_memory(redis_store).await;
        let mut total = 0;
        for id in 1..=1000u64 {
            total += redis_store
                .member_memory_usage("mem", MemberId(id * 100))
                .await
                .unwrap()
                .unwrap();
        }
        eprintln!(
            "memory per member (2 numbers, 3 variables): MEMORY USAGE of its record = {} bytes; \
             used_memory per member incl. ready queue = {} bytes",
            total / 1000,
            (after - before) / 100_000
        );
        store.drop_campaign("mem").await.unwrap();
    });

    // One-off: import 1,000,000 members (the inputs are built before the clock starts, in batches of 50,000 as
    // the API or a CSV import hands them over).
    rt.block_on(async {
        let batches: Vec<Vec<MemberInput>> = (0..20)
            .map(|b| (b * 50_000..(b + 1) * 50_000).map(member).collect())
            .collect();
        let t0 = Instant::now();
        for batch in &batches {
            store.add("million", batch, start()).await.expect("import");
        }
        let took = t0.elapsed();
        eprintln!(
            "bulk import of 1,000,000 members: {:.2} s ({:.0} members/s)",
            took.as_secs_f64(),
            1_000_000.0 / took.as_secs_f64()
        );
        store.drop_campaign("million").await.unwrap();
    });

    let mut g = c.benchmark_group("queue");
    g.sample_size(10);

    const IMPORT_BATCH: usize = 20_000;
    g.throughput(Throughput::Elements(IMPORT_BATCH as u64));
    g.bench_function("import", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters {
                    import(&store, "import", IMPORT_BATCH).await;
                }
                let took = t0.elapsed();
                store.drop_campaign("import").await.unwrap();
                took
            })
        })
    });

    // Claim + complete: members come back at once (minus, no wait), so the queue never drains.
    const BATCH: usize = 500;
    let policy = QueuePolicy {
        limit: 100_000,
        wait_between_retries_sec: 0,
        ..QueuePolicy::default()
    };
    let cycled = std::sync::atomic::AtomicU64::new(0);
    let mut cpu_start = 0.0;
    rt.block_on(async {
        import(&store, "cycle", 20_000).await;
        cpu_start = redis_cpu(redis_store).await;
        let _: () = ::redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut redis_store.connection())
            .await
            .unwrap();
        // Every script call of the cycles below takes milliseconds: the slow log keeps each one's own duration.
        for (name, value) in [
            ("slowlog-log-slower-than", "1000"),
            ("slowlog-max-len", "100000"),
        ] {
            let _: () = ::redis::cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(value)
                .query_async(&mut redis_store.connection())
                .await
                .unwrap();
        }
        let _: () = ::redis::cmd("SLOWLOG")
            .arg("RESET")
            .query_async(&mut redis_store.connection())
            .await
            .unwrap();
    });
    let mut now = start();
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("claim_complete", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters {
                    now += CDuration::milliseconds(1);
                    cycle(&store, &store, "cycle", &policy, now, BATCH).await;
                    cycled.fetch_add(BATCH as u64, std::sync::atomic::Ordering::Relaxed);
                }
                t0.elapsed()
            })
        })
    });
    // The same work with the next claim overlapping the previous batch's completion (two engine flows at once,
    // as in production): Redis never waits for the client.
    rt.block_on(import(&store, "overlap", 20_000));
    g.bench_function("claim_complete_overlapped", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let claim = |now| {
                    store.claim(
                        "overlap",
                        &policy,
                        &Always,
                        now,
                        BATCH,
                        "bench",
                        Duration::from_secs(60),
                    )
                };
                let t0 = Instant::now();
                now += CDuration::milliseconds(1);
                let mut pending = claim(now).await.unwrap().claims;
                for _ in 0..iters {
                    now += CDuration::milliseconds(1);
                    let results: Vec<AttemptResult> = pending.iter().map(minus).collect();
                    let (next, done) = tokio::join!(
                        claim(now),
                        store.complete_many("overlap", &policy, &Always, &results, now)
                    );
                    assert!(
                        done.unwrap()
                            .iter()
                            .all(|d| matches!(d, CompleteOutcome::Applied(_)))
                    );
                    pending = next.unwrap().claims;
                    assert_eq!(pending.len(), BATCH);
                    cycled.fetch_add(BATCH as u64, std::sync::atomic::Ordering::Relaxed);
                }
                let results: Vec<AttemptResult> = pending.iter().map(minus).collect();
                store
                    .complete_many("overlap", &policy, &Always, &results, now)
                    .await
                    .unwrap();
                t0.elapsed()
            })
        })
    });
    // Redis CPU of the two claiming-node groups (taken before the baseline runs).
    let cpu_fast = rt.block_on(redis_cpu(redis_store)) - cpu_start;
    // Baseline: the same cycle, completed through another store (no snapshots: every batch read before it is decided).
    let other = rt.block_on(Store::open(&server.url())).unwrap();
    rt.block_on(import(&store, "other", 20_000));
    g.bench_function("claim_complete_other_node", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters {
                    now += CDuration::milliseconds(1);
                    cycle(&store, &other, "other", &policy, now, BATCH).await;
                }
                t0.elapsed()
            })
        })
    });
    g.finish();
    // Memory of a member after many attempts (its record), and of the attempt log per attempt.
    rt.block_on(async {
        let id = MemberId(7);
        let record = redis_store
            .member_memory_usage("cycle", id)
            .await
            .unwrap()
            .unwrap_or(0);
        let log_key = "dlr:{cycle}:log";
        let log: Option<u64> = ::redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(log_key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut redis_store.connection())
            .await
            .unwrap();
        let lines: u64 = ::redis::cmd("HLEN")
            .arg(log_key)
            .query_async(&mut redis_store.connection())
            .await
            .unwrap();
        let attempts = store.attempts("cycle", id).await.unwrap().len();
        eprintln!(
            "member after {attempts} attempts: record {record} bytes; attempt log {:.0} bytes per attempt ({lines} attempts)",
            log.unwrap_or(0) as f64 / lines.max(1) as f64
        );
    });
    // Redis CPU per claimed-and-completed member of the two claiming-node groups (includes the overlapped group's own
    // 20,000-member import).
    let n = cycled.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "redis-server CPU per claim+complete member: {:.1} us ({n} members; a dedicated core would allow ≈ {:.0} members/s)",
        cpu_fast * 1e6 / n as f64,
        n as f64 / cpu_fast
    );
    // Redis time per member of each script, from the slow log (claim: one argument per attempt id; the
    // completion fast path: seven per result).
    rt.block_on(async {
        let (claim, fast, read) = script_time_per_member(redis_store, BATCH).await;
        eprintln!(
            "redis time per member (script run time, median call): claim {claim:.1} us, complete {fast:.1} us \
             (decided from the claim), read {read:.1} us (peek: another node's completion, before it decides)"
        );
    });
    // Where the time goes inside Redis (script time per call).
    rt.block_on(async {
        let stats: String = ::redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut redis_store.connection())
            .await
            .unwrap();
        for l in stats
            .lines()
            .filter(|l| l.contains("evalsha") || l.contains("cmdstat_eval"))
        {
            eprintln!("redis {l}");
        }
    });
    drop(server);
}

criterion_group!(benches, queue);
criterion_main!(benches);
