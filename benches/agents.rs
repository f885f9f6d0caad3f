//! Agent reservation benchmarks against a private local redis-server (started by the bench, killed at the end):
//! - `agents/reserve_release`: one node reserves an agent of a 100-agent team and releases it unused, one pair
//!   at a time: reservations per second of a single caller (two round trips each way: read, compare-and-set);
//! - `agents/reserve_release_8_tasks`: eight concurrent callers (as several engine nodes) on the same team,
//!   contending for the same agents: total reservations per second, compare-and-set retries included.
//!
//! Run: `cargo bench --bench agents -- --warm-up-time 1 --measurement-time 3`

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fsdialer::agents::*;
use fsdialer::store::local_redis::{LocalRedis, LocalRedisOptions};
use fsdialer::store::*;
use std::time::Duration;

const TEAM: &str = "bench";
const AGENTS: usize = 100;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 10, 0, 0).unwrap()
}

fn request(rules: &TeamRules, member: u64, node: &str) -> ReserveRequest {
    ReserveRequest {
        rules: rules.clone(),
        campaign: "c".into(),
        member: MemberId(member),
        attempt: uuid::Uuid::new_v4(),
        node: node.into(),
        lease: Duration::from_secs(60),
        prefer: None,
        exclude: Vec::new(),
    }
}

/// Reserves an agent and releases it unused, `n` times.
async fn cycles(store: &Store, rules: &TeamRules, node: &str, n: u64) {
    for i in 0..n {
        let res = store
            .reserve_agent(&request(rules, i, node), now())
            .await
            .unwrap()
            .expect("a free agent");
        store
            .release_agent(res.id, Release::Unused, rules, now())
            .await
            .unwrap();
    }
}

fn agents(c: &mut Criterion) {
    let server = LocalRedis::start(LocalRedisOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(Store::open(&server.url())).unwrap();
    rt.block_on(async {
        for i in 0..AGENTS {
            let a = Agent {
                id: format!("agent{i:03}"),
                name: format!("Agent {i}"),
                dial_string: format!("user/{}", 1000 + i),
                teams: vec![TeamMembership {
                    team: TEAM.into(),
                    level: 1,
                }],
                lines: 1,
                version: 0,
            };
            store.put_agent(&a, Some(0), now()).await.unwrap();
            store
                .set_agent_status(&a.id, AgentStatus::Ready, now())
                .await
                .unwrap();
        }
    });
    let rules = TeamRules::new(TEAM);

    let mut g = c.benchmark_group("agents");
    g.sample_size(10);
    g.throughput(Throughput::Elements(100));
    g.bench_function("reserve_release", |b| {
        b.iter(|| rt.block_on(cycles(&store, &rules, "node-a", 100)));
    });
    const TASKS: u64 = 8;
    g.throughput(Throughput::Elements(100 * TASKS));
    g.bench_function("reserve_release_8_tasks", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..TASKS)
                    .map(|t| {
                        let (store, rules) = (store.clone(), rules.clone());
                        tokio::spawn(async move {
                            cycles(&store, &rules, &format!("node-{t}"), 100).await;
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            })
        });
    });
    g.finish();
}

criterion_group!(benches, agents);
criterion_main!(benches);
