//! Engine benchmarks (issue 5):
//! - **end to end** (printed, one run per dial string): the engine (`engine::shell`) on a private `redis-server`,
//!   dialling through the simulated switch over real ESL, both at a high speed factor; sustained attempts per
//!   second (the middle of the run, ramp-up and tail excluded), and CPU per attempt split by who spent it: engine
//!   threads, switch threads, redis-server (its `INFO cpu`). Engine, switch and Redis share the machine's cores,
//!   so the switch's cost per call caps the total;
//! - **RSS with 100,000 tracked calls** (printed): the pure [`Core`] fed 100,000 synthetic claims, every call
//!   originated and answered; resident memory before and after from `/proc/self/status`, and the core's cost of
//!   one hangup with that many calls in flight;
//! - `engine/core_attempt` (criterion): one attempt's whole life through the pure core (claim → originate → job
//!   `+OK` → hangup → completed), 1,000 calls in flight.
//!
//! Run: `cargo bench --bench engine -- --warm-up-time 1 --measurement-time 3`
//! (`ENGINE_BENCH_MEMBERS`, `ENGINE_BENCH_SPEED`, `ENGINE_BENCH_LIMIT`, `ENGINE_BENCH_BATCH` change the end-to-end run:
//! 20,000 members at x1000, limit 300, claims of 100 by default; `ENGINE_BENCH_TRACE=1` adds an ESL listener on
//! the switch that timestamps channel creation and hangup, and prints where an attempt's time goes; `ENGINE_BENCH_PARTS=e2e` runs only it, e.g. under `perf record`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fsdialer::campaign::config::{CampaignConfig, ValidCampaign};
use fsdialer::campaign::member::{CommunicationInput, MemberInput};
use fsdialer::engine::clock::Clock;
use fsdialer::engine::core::{Action, Core, CoreConfig, Input, SwitchConfig, SwitchLimits};
use fsdialer::engine::shell::{self, EngineConfig, SwitchEndpoint};
use fsdialer::engine::state::CampaignState;
use fsdialer::store::local_redis::{LocalRedis, LocalRedisOptions};
use fsdialer::store::{Claim, ClaimBatch, CompleteOutcome, MemberFate, MemberId, Store};
use uuid::Uuid;

const CAMPAIGN: &str = "bench-engine";

fn campaign(limit: u32, dial_string: &str) -> Arc<ValidCampaign> {
    let week: Vec<String> = (1..=7)
        .map(|d| format!("{{ weekday = {d}, start_min = 0, end_min = 1440 }}"))
        .collect();
    let text = format!(
        r#"
id = "{CAMPAIGN}"
name = "engine bench"
limit = {limit}
wait_between_retries_sec = 5
max_tries = 2
min_success_duration_sec = 0
originate_timeout_sec = 30

[variables]
campaign_kind = "bench"

[calendar]
timezone = "UTC"
accept = [{}]

[[gateways]]
name = "carrier"
pattern = '^(.*)$'
dial_string = "{dial_string}"
"#,
        week.join(", ")
    );
    Arc::new(
        CampaignConfig::from_toml_str(&text)
            .expect("bench campaign parses")
            .validate()
            .expect("bench campaign validates"),
    )
}

// ------------------------------------------------------------------ process measurements

/// A line of `/proc/self/status` in kB (`VmRSS`, `VmHWM`).
fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (ns) spent so far by this process's threads, by thread name (`/proc/self/task/*/schedstat`).
fn thread_cpu() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in dir.flatten() {
        let p = task.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        *out.entry(name.trim().to_owned()).or_insert(0) += ns;
    }
    out
}

/// CPU ns by group (`bench-engine`, `bench-sim` runtime threads, everything else), between two [`thread_cpu`] readings. Threads that ended
/// in between are not counted (none do during the measured window).
fn cpu_by_group(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> (u64, u64, u64) {
    let (mut engine, mut sim, mut other) = (0, 0, 0);
    for (name, ns) in after {
        let d = ns.saturating_sub(*before.get(name).unwrap_or(&0));
        if name.starts_with("bench-engine") {
            engine += d;
        } else if name.starts_with("bench-sim") {
            sim += d;
        } else {
            other += d;
        }
    }
    (engine, sim, other)
}

/// redis-server's own CPU seconds (user + sys) from `INFO cpu`.
async fn redis_cpu(url: &str) -> f64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut con)
        .await
        .expect("INFO cpu");
    info.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k == "used_cpu_user" || k == "used_cpu_sys").then(|| v.trim().parse::<f64>().ok())?
        })
        .sum()
}

// ------------------------------------------------------------------ end to end

/// A realistic mix for the built-in dialplan: answered (1–3 s), busy, no answer (rings 2 s), bad numbers, and a
/// second number for some.
fn e2e_member(i: usize) -> MemberInput {
    let first = match i % 10 {
        0..=4 => format!("answer_{}", 1 + i % 3),
        5 | 6 => "busy".to_owned(),
        7 => "ring_2".to_owned(),
        8 => "reject_UNALLOCATED_NUMBER".to_owned(),
        _ => "reject_CALL_REJECTED".to_owned(),
    };
    let mut communications = vec![CommunicationInput {
        number: first,
        priority: 1,
        description: None,
        kind: None,
    }];
    if i.is_multiple_of(4) {
        communications.push(CommunicationInput {
            number: "answer_1".into(),
            priority: 0,
            description: Some("mobile".into()),
            kind: None,
        });
    }
    let mut variables = serde_json::Map::new();
    variables.insert("debt".into(), (100 + i % 5000).into());
    variables.insert("lang".into(), "uk".into());
    MemberInput {
        name: format!("Member {i}"),
        priority: (i % 3) as i64,
        timezone: None,
        expire: None,
        variables,
        communications,
        external_id: None,
    }
}

/// The `p` quantile of sorted values.
fn q(v: &[f64], p: f64) -> f64 {
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

/// Timeline of one channel as an extra ESL listener on the switch saw it: (created, hung up), engine clock.
type Seen = HashMap<Uuid, (Option<DateTime<Utc>>, Option<DateTime<Utc>>)>;

/// An extra ESL listener on the switch timestamping CHANNEL_CREATE and CHANNEL_HANGUP_COMPLETE (diagnostics; it
/// adds the cost of one more event stream to the switch).
struct SwitchTrace {
    seen: Arc<std::sync::Mutex<Seen>>,
    _client: fsdialer::esl::client::Client,
}

impl SwitchTrace {
    async fn start(addr: std::net::SocketAddr, clock: Clock) -> SwitchTrace {
        use fsdialer::esl::client::{Client, ClientConfig, ClientEvent, EventFormat};
        let (client, mut events) = Client::connect(ClientConfig::new(addr.to_string(), "ClueCon"))
            .await
            .expect("trace listener connects");
        client
            .event(
                EventFormat::Plain,
                &["CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE"],
            )
            .await
            .expect("trace listener subscribes");
        let seen: Arc<std::sync::Mutex<Seen>> = Arc::default();
        let s = seen.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let ClientEvent::Event(e) = ev else { continue };
                let Some(uuid) = e.unique_id().and_then(|u| u.parse::<Uuid>().ok()) else {
                    continue;
                };
                let now = clock.now();
                let mut map = s.lock().unwrap_or_else(|p| p.into_inner());
                let entry = map.entry(uuid).or_default();
                if e.name() == Some("CHANNEL_CREATE") {
                    entry.0 = Some(now);
                } else {
                    entry.1 = Some(now);
                }
            }
        });
        SwitchTrace {
            seen,
            _client: client,
        }
    }

    fn snapshot(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Dial strings of the end-to-end runs: a sofia gateway (one channel per call, the production case) and
/// `loopback/` (two channels per call, what the demo dials; the engine hears the events of both).
const DIALS: &[(&str, &str, u32)] = &[
    ("sofia gateway", "sofia/gateway/carrier/$1", 1),
    ("loopback", "loopback/$1/default", 2),
];

fn end_to_end(dial_name: &str, dial_string: &str, sessions_per_call: u32) {
    let members_n: usize = env_or("ENGINE_BENCH_MEMBERS", 20_000);
    let speed: f64 = env_or("ENGINE_BENCH_SPEED", 1000.0);
    let limit: u32 = env_or("ENGINE_BENCH_LIMIT", 300);
    let claim_batch: u32 = env_or("ENGINE_BENCH_BATCH", 100);
    let server = LocalRedis::start(LocalRedisOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let url = server.url();
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("driver runtime");
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-sim")
        .enable_all()
        .build()
        .expect("sim runtime");
    let engine_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-engine")
        .enable_all()
        .build()
        .expect("engine runtime");

    let valid = campaign(limit, dial_string);
    let sim = driver
        .block_on(sim_rt.spawn(async move {
            fsdialer::sim::server::start(fsdialer::sim::server::ServerConfig {
                speed,
                switch: fsdialer::sim::model::Config {
                    max_sessions: 1_000_000,
                    sessions_per_second: 1_000_000,
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
            .expect("simulated switch")
        }))
        .expect("sim start");
    let sim_addr = sim.local_addr();
    let store = driver.block_on(Store::open(&url)).expect("driver store");
    let clock = Clock::scaled(speed);
    driver.block_on(async {
        store.drop_campaign(CAMPAIGN).await.unwrap();
        let mut i = 0;
        while i < members_n {
            let k = (members_n - i).min(10_000);
            let batch: Vec<MemberInput> = (i..i + k).map(e2e_member).collect();
            store.add(CAMPAIGN, &batch, clock.now()).await.unwrap();
            i += k;
        }
    });
    let engine_url = url.clone();
    let v = valid.clone();
    let engine = driver
        .block_on(engine_rt.spawn(async move {
            let store = Store::open(&engine_url).await.expect("engine store");
            let (handle, _join) = shell::start(
                EngineConfig {
                    core: CoreConfig {
                        node: "bench".into(),
                        // One second of real time.
                        lease: Duration::from_secs_f64(speed),
                        claim_batch,
                        ..CoreConfig::default()
                    },
                    switches: vec![SwitchEndpoint {
                        name: "sim".into(),
                        addr: sim_addr.to_string(),
                        password: "ClueCon".into(),
                        max_sessions: Some(1_000_000),
                        sessions_per_second: Some(1_000_000),
                        sessions_per_call,
                    }],
                    switch_stall_warn: fsdialer::engine::shell::DEFAULT_SWITCH_STALL_WARN,
                    clock,
                },
                store,
                None,
            );
            handle.upsert(v).await.unwrap();
            handle
        }))
        .expect("engine start");

    let trace = std::env::var("ENGINE_BENCH_TRACE")
        .is_ok()
        .then(|| sim_rt.block_on(SwitchTrace::start(sim_addr, clock)));
    let redis_before = driver.block_on(redis_cpu(&url));
    let cpu_before = thread_cpu();
    let started = Instant::now();
    driver.block_on(engine.run(CAMPAIGN)).unwrap();
    // Samples of (elapsed, completed attempts).
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut peak_active = 0;
    let timeout = Duration::from_secs(300);
    let finished = driver.block_on(async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let c = store.counts(CAMPAIGN).await.unwrap();
            peak_active = peak_active.max(c.active);
            samples.push((started.elapsed().as_secs_f64(), c.calls));
            if let Ok(Some((CampaignState::Done, 0))) = engine.state(CAMPAIGN).await {
                return true;
            }
            if started.elapsed() > timeout {
                return false;
            }
        }
    });
    let elapsed = started.elapsed();
    let cpu_after = thread_cpu();
    let redis_after = driver.block_on(redis_cpu(&url));
    let counts = driver.block_on(store.counts(CAMPAIGN)).unwrap();
    assert!(
        finished,
        "the bench campaign did not finish in {timeout:?}: {counts:?}"
    );
    assert_eq!(counts.ended, members_n as u64, "{counts:?}");

    // Sustained rate: the middle 80 % of the attempts.
    let total = counts.calls;
    let at = |frac: f64| {
        samples
            .iter()
            .find(|(_, n)| *n as f64 >= frac * total as f64)
            .copied()
            .unwrap_or((elapsed.as_secs_f64(), total))
    };
    let (t1, n1) = at(0.1);
    let (t2, n2) = at(0.9);
    let sustained = (n2 - n1) as f64 / (t2 - t1).max(1e-9);
    let (engine_ns, sim_ns, other_ns) = cpu_by_group(&cpu_before, &cpu_after);
    let redis_s = redis_after - redis_before;
    let per = |ns: f64| ns / total as f64 / 1000.0;
    eprintln!(
        "engine end to end, {dial_name} (redis + simulated switch over ESL, x{speed}, limit {limit}): {members_n} members, \
         {total} attempts in {:.2} s: overall {:.0} attempts/s, sustained (10–90 %) {:.0} attempts/s; \
         peak {peak_active} calls in progress; outcome {:?}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        sustained,
        counts.ended_by_cause,
    );
    eprintln!(
        "CPU per attempt: engine {:.1} µs, simulated switch {:.1} µs, redis-server {:.1} µs, other threads \
         {:.1} µs (driver, redis client); all of it together kept {:.2} cores busy over the run",
        per(engine_ns as f64),
        per(sim_ns as f64),
        redis_s * 1e6 / total as f64,
        per(other_ns as f64),
        ((engine_ns + sim_ns + other_ns) as f64 / 1e9 + redis_s) / elapsed.as_secs_f64(),
    );
    // How long attempts took in real time, claim to hangup and hangup to completion: tells a slow stage from a
    // busy one.
    let (mut to_hangup, mut to_complete): (Vec<f64>, Vec<f64>) = driver.block_on(async {
        let (mut h, mut c) = (Vec::new(), Vec::new());
        for id in (1..=members_n as u64).step_by((members_n / 500).max(1)) {
            for a in store.attempts(CAMPAIGN, MemberId(id)).await.unwrap() {
                let real_ms =
                    |d: chrono::Duration| d.num_microseconds().unwrap_or(0) as f64 / 1e3 / speed;
                let hangup = a.hangup_at.unwrap_or(a.completed_at);
                h.push(real_ms(hangup - a.originate_at));
                c.push(real_ms(a.completed_at - hangup));
            }
        }
        (h, c)
    });
    if let Some(trace) = &trace {
        let seen = trace.snapshot();
        let (mut dispatch, mut delivery) = (Vec::new(), Vec::new());
        let real_ms = |d: chrono::Duration| d.num_microseconds().unwrap_or(0) as f64 / 1e3 / speed;
        driver.block_on(async {
            for id in (1..=members_n as u64).step_by((members_n / 500).max(1)) {
                for a in store.attempts(CAMPAIGN, MemberId(id)).await.unwrap() {
                    if let (Some((Some(created), Some(gone))), Some(hangup)) =
                        (seen.get(&a.attempt_id), a.hangup_at)
                    {
                        dispatch.push(real_ms(*created - a.originate_at));
                        delivery.push(real_ms(hangup - *gone));
                    }
                }
            }
        });
        dispatch.sort_by(f64::total_cmp);
        delivery.sort_by(f64::total_cmp);
        eprintln!(
            "  where it goes: claim to channel created at the switch median {:.1} ms (p90 {:.1}); hangup at the \
             switch to the engine's core median {:.1} ms (p90 {:.1})",
            q(&dispatch, 0.5),
            q(&dispatch, 0.9),
            q(&delivery, 0.5),
            q(&delivery, 0.9),
        );
    }
    to_hangup.sort_by(f64::total_cmp);
    to_complete.sort_by(f64::total_cmp);
    eprintln!(
        "attempt timeline, real time (the calls themselves last 0–3 ms at this speed): claim to hangup median \
         {:.1} ms (p90 {:.1}), hangup to stored result median {:.1} ms (p90 {:.1})",
        q(&to_hangup, 0.5),
        q(&to_hangup, 0.9),
        q(&to_complete, 0.5),
        q(&to_complete, 0.9),
    );
    driver.block_on(engine.shutdown());
    drop(engine_rt);
    driver.block_on(sim_rt.spawn(sim.shutdown())).ok();
    drop(sim_rt);
    drop(server);
}

// ------------------------------------------------------------------ the pure core

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid instant")
}

/// A core with one huge switch, the bench campaign running (its first claim request taken).
fn bench_core(limit: u32) -> (Core, DateTime<Utc>) {
    let now = t0();
    let mut core = Core::new(
        CoreConfig {
            node: "bench".into(),
            claim_batch: 100_000,
            ..CoreConfig::default()
        },
        vec![SwitchConfig {
            name: "sw".into(),
            limits: Some(SwitchLimits {
                max_sessions: 10_000_000,
                sessions_per_second: 10_000_000,
            }),
            sessions_per_call: 1,
        }],
        now,
    );
    core.handle(now, Input::SwitchUp(0));
    core.handle(
        now,
        Input::Upsert(campaign(limit, "sofia/gateway/carrier/$1")),
    );
    core.handle(now, Input::Run(CAMPAIGN.into()));
    (core, now)
}

/// `n` synthetic claims as the store would return them.
fn claims(from: u64, n: u64, now: DateTime<Utc>) -> Vec<Claim> {
    (from..from + n)
        .map(|i| {
            let mut variables = serde_json::Map::new();
            variables.insert("debt".into(), (100 + i % 5000).into());
            variables.insert("lang".into(), "uk".into());
            Claim {
                attempt_id: Uuid::new_v4(),
                member_id: MemberId(i),
                attempt_no: 1,
                comm_index: 0,
                number: format!("+38044{:07}", i % 10_000_000),
                name: format!("Member {i}"),
                timezone: None,
                variables,
                priority: 0,
                lease_until: now + chrono::Duration::seconds(60),
            }
        })
        .collect()
}

/// Feeds a claim batch; returns (attempt, job) of every originate it caused.
fn place(core: &mut Core, now: DateTime<Utc>, batch: Vec<Claim>) -> Vec<(Uuid, Uuid)> {
    let actions = core.handle(
        now,
        Input::Claimed {
            campaign: CAMPAIGN.into(),
            batch: ClaimBatch {
                claims: batch,
                ended: Vec::new(),
            },
        },
    );
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Originate { attempt, job, .. } => Some((attempt, job)),
            _ => None,
        })
        .collect()
}

/// The switch answers every originate (`+OK`), as the engine hears it.
fn answer_all(core: &mut Core, now: DateTime<Utc>, calls: &[(Uuid, Uuid)]) {
    for (attempt, job) in calls {
        core.handle(
            now,
            Input::JobResult {
                job: *job,
                body: format!("+OK {attempt}\n"),
            },
        );
    }
}

/// Hangs a call up and acknowledges its completion; returns whether the core asked to complete it.
fn hang_up(core: &mut Core, now: DateTime<Utc>, attempt: Uuid, member: u64) -> bool {
    let actions = core.handle(
        now,
        Input::Hangup {
            uuid: attempt,
            cause: "NORMAL_CLEARING".into(),
            answered: true,
            billsec: 12,
            talk_ms: 12_000,
        },
    );
    let completes = actions.iter().any(|a| matches!(a, Action::Complete { .. }));
    core.handle(
        now,
        Input::Completed {
            attempt,
            outcome: Ok(CompleteOutcome::Applied(MemberFate::Ended {
                cause: "NORMAL_CLEARING".into(),
                success: member.is_multiple_of(2),
            })),
        },
    );
    completes
}

fn rss_with_100k_calls() {
    const CALLS: u64 = 100_000;
    let rss_before = status_kb("VmRSS");
    let (mut core, now) = bench_core(CALLS as u32);
    let mut placed = Vec::with_capacity(CALLS as usize);
    let t = Instant::now();
    for chunk in 0..(CALLS / 1000) {
        placed.extend(place(&mut core, now, claims(chunk * 1000, 1000, now)));
    }
    let placing = t.elapsed();
    assert_eq!(placed.len() as u64, CALLS, "every claim was originated");
    answer_all(&mut core, now, &placed);
    assert_eq!(core.calls().len() as u64, CALLS);
    let rss_after = status_kb("VmRSS");
    // The cost of one event with that many calls in flight: hang 1,000 of them up.
    let t = Instant::now();
    for (i, (attempt, _)) in placed.iter().take(1000).enumerate() {
        assert!(hang_up(&mut core, now, *attempt, i as u64));
    }
    let per_hangup = t.elapsed() / 1000;
    eprintln!(
        "RSS with {CALLS} tracked calls (pure core, every call originated and answered): {:.1} MB \
         (before the core: {:.1} MB; {:.0} bytes per call); placing them: {:.1} µs per claim; one hangup + \
         completion with {CALLS} calls in flight: {:.1} µs",
        rss_after as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / CALLS as f64,
        placing.as_secs_f64() * 1e6 / CALLS as f64,
        per_hangup.as_secs_f64() * 1e6,
    );
    drop(core);
}

fn engine(c: &mut Criterion) {
    // `ENGINE_BENCH_PARTS` picks the printed runs (default `rss,e2e`), e.g. to profile one of them alone.
    let parts = std::env::var("ENGINE_BENCH_PARTS").unwrap_or_else(|_| "rss,e2e".into());
    // Before anything else grows the heap.
    if parts.contains("rss") {
        rss_with_100k_calls();
    }
    if parts.contains("e2e") {
        for (name, dial, sessions) in DIALS {
            end_to_end(name, dial, *sessions);
        }
    }

    let mut g = c.benchmark_group("engine");
    g.sample_size(20);
    const BATCH: u64 = 1000;
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("core_attempt", |b| {
        b.iter_batched(
            || {
                let (core, now) = bench_core(BATCH as u32);
                (core, now, claims(1, BATCH, now))
            },
            |(mut core, now, batch)| {
                let placed = place(&mut core, now, batch);
                answer_all(&mut core, now, &placed);
                for (i, (attempt, _)) in placed.iter().enumerate() {
                    hang_up(&mut core, now, *attempt, i as u64);
                }
                assert!(core.calls().is_empty());
                core
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
