//! Answer → bridge latency of progressive dialling (issue 16), printed as percentiles.
//!
//! The engine (`engine::shell`, memory store) runs a progressive campaign in **real time** against the
//! simulated switch over real ESL: members answer after 0.2-0.6 s and wait; agent phones answer at once and talk
//! 2-4 s; the campaign's CPS cap makes about `AGENT_BENCH_RATE` answers per second (default 100) for
//! `AGENT_BENCH_SECS` seconds (default 20), with enough agents that one is always free. For every joined call
//! the attempt log records the member's wait from its answer to the bridge (`wait_ms`): the engine's reaction to
//! the answer, the agent's leg originated and answered, `uuid_bridge`. The baseline, measured in the same run on
//! the same switch, is the floor of that path without the engine: a bare client that originates two parked legs
//! and bridges them, timing the agent leg's originate plus `uuid_bridge`.
//!
//! Run: `cargo bench --bench agent_bridge` (target: p99 ≤ 300 ms at 100 answers/s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fsdialer::agents::{Agent, AgentStatus, TeamMembership};
use fsdialer::campaign::config::CampaignConfig;
use fsdialer::campaign::member::{CommunicationInput, MemberInput};
use fsdialer::engine::clock::Clock;
use fsdialer::engine::core::CoreConfig;
use fsdialer::engine::shell::{self, EngineConfig, SwitchEndpoint};
use fsdialer::esl::client::{Client, ClientConfig};
use fsdialer::store::{MemberId, Store};

const CAMPAIGN: &str = "bench-agent-bridge";
const TEAM: &str = "bench";

const SCENARIO: &str = r#"
seed = 3
[[rule]]
match = "^cust_"
ring_ms = [200, 600]
callee_hangs_up = false
patience_ms = 60000

[[agent]]
match = "^loopback/agent_[0-9]+/"
answer_ms = 0
talk_ms = [2000, 4000]
hangup_by = "agent"
"#;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn campaign(rate: u64, agents: u64) -> Arc<fsdialer::campaign::config::ValidCampaign> {
    let week: Vec<String> = (1..=7)
        .map(|d| format!("{{ weekday = {d}, start_min = 0, end_min = 1440 }}"))
        .collect();
    let text = format!(
        r#"
id = "{CAMPAIGN}"
name = "agent bridge bench"
limit = {agents}
cps = {rate}
max_tries = 1
originate_timeout_sec = 20
mode = "progressive"
[agents]
team = "{TEAM}"
result_timeout_sec = 0
[calendar]
timezone = "UTC"
accept = [{}]
[[gateways]]
name = "loop"
pattern = '^(.*)$'
dial_string = "loopback/$1/default"
"#,
        week.join(", ")
    );
    Arc::new(
        CampaignConfig::from_toml_str(&text)
            .expect("bench campaign parses")
            .validate()
            .expect("bench campaign is valid"),
    )
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The floor without the engine: originate a parked member leg, then time an agent leg's originate and
/// `uuid_bridge` from a bare ESL client, `n` times (microseconds).
async fn baseline(addr: &str, n: usize) -> Vec<u64> {
    let (client, _events) = Client::connect(ClientConfig::new(addr, "ClueCon"))
        .await
        .expect("baseline client connects");
    let mut waits = Vec::with_capacity(n);
    for i in 0..n {
        let member = uuid::Uuid::new_v4();
        let agent = uuid::Uuid::new_v4();
        let reply = client
            .api_text(&format!(
                "originate {{origination_uuid={member}}}loopback/answer_60/default &park()"
            ))
            .await
            .expect("member leg");
        assert!(reply.starts_with("+OK"), "{reply}");
        let started = Instant::now();
        let reply = client
            .api_text(&format!(
                "originate {{origination_uuid={agent}}}loopback/agent_{i}/default &park()"
            ))
            .await
            .expect("agent leg");
        assert!(reply.starts_with("+OK"), "{reply}");
        let reply = client
            .api_text(&format!("uuid_bridge {member} {agent}"))
            .await
            .expect("bridge");
        assert!(reply.starts_with("+OK"), "{reply}");
        waits.push(started.elapsed().as_micros() as u64);
        let _ = client.api(&format!("uuid_kill {member}")).await;
    }
    waits
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let rate = env_u64("AGENT_BENCH_RATE", 100);
    let secs = env_u64("AGENT_BENCH_SECS", 20);
    let members = rate * secs;
    // Calls last at most 0.6 s ringing + 4 s talk: enough agents that one is always free.
    let agents = rate * 6;
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(&scenario, SCENARIO).expect("scenario written");

    let sim = fsdialer::sim::server::start(fsdialer::sim::server::ServerConfig {
        speed: 1.0,
        scenario: Some(scenario),
        switch: fsdialer::sim::model::Config {
            max_sessions: 100_000,
            sessions_per_second: 10_000,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .expect("simulated switch starts");
    let addr = sim.local_addr().to_string();

    let base = baseline(&addr, 200).await;

    let store = Store::memory();
    let clock = Clock::real();
    let input: Vec<MemberInput> = (0..members)
        .map(|i| MemberInput {
            name: format!("m{i}"),
            priority: 0,
            timezone: None,
            expire: None,
            variables: Default::default(),
            communications: vec![CommunicationInput {
                number: format!("cust_{i}"),
                priority: 0,
                description: None,
                kind: None,
            }],
            external_id: None,
        })
        .collect();
    store
        .add(CAMPAIGN, &input, clock.now())
        .await
        .expect("members added");
    for i in 0..agents {
        let id = format!("a{i:04}");
        let agent = Agent {
            id: id.clone(),
            name: id.clone(),
            dial_string: format!("loopback/agent_{i}/default"),
            teams: vec![TeamMembership {
                team: TEAM.into(),
                level: 1,
            }],
            lines: 1,
            version: 0,
        };
        store
            .put_agent(&agent, None, clock.now())
            .await
            .expect("agent");
        store
            .set_agent_status(&id, AgentStatus::Ready, clock.now())
            .await
            .expect("ready");
    }
    let valid = campaign(rate, agents);
    let (engine, _join) = shell::start(
        EngineConfig {
            core: CoreConfig {
                node: "bench".into(),
                ..CoreConfig::default()
            },
            switches: vec![SwitchEndpoint {
                name: "sim".into(),
                addr: addr.clone(),
                password: "ClueCon".into(),
                max_sessions: Some(100_000),
                sessions_per_second: Some(10_000),
                sessions_per_call: 2,
            }],
            clock,
            switch_stall_warn: shell::DEFAULT_SWITCH_STALL_WARN,
        },
        store.clone(),
        None,
    );
    engine.upsert(valid).await.expect("engine runs");
    engine.run(CAMPAIGN).await.expect("engine runs");
    let started = Instant::now();
    let deadline = Duration::from_secs(secs * 3 + 30);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let c = store.counts(CAMPAIGN).await.expect("counts");
        if c.ended >= members || started.elapsed() > deadline {
            break;
        }
    }
    let elapsed = started.elapsed();
    engine.shutdown().await;
    sim.shutdown().await;

    let mut waits = Vec::new();
    let mut abandoned = 0;
    for id in 1..=members {
        for a in store
            .attempts(CAMPAIGN, MemberId(id))
            .await
            .expect("attempts")
        {
            let note: serde_json::Value = a
                .note
                .as_deref()
                .and_then(|n| serde_json::from_str(n).ok())
                .unwrap_or_default();
            let call = &note["agent_call"];
            if let Some(w) = call["wait_ms"].as_u64() {
                waits.push(w);
            }
            if call["abandoned"] == true {
                abandoned += 1;
            }
        }
    }
    waits.sort_unstable();
    let mut base = base;
    base.sort_unstable();
    println!(
        "agent_bridge: {} joined calls in {:.1} s ({:.0} answers/s asked, {:.0}/s done), {abandoned} abandoned",
        waits.len(),
        elapsed.as_secs_f64(),
        rate,
        waits.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  answer -> bridge (engine): p50 {} ms  p90 {} ms  p99 {} ms  max {} ms",
        percentile(&waits, 0.5),
        percentile(&waits, 0.9),
        percentile(&waits, 0.99),
        waits.last().copied().unwrap_or(0)
    );
    println!(
        "  baseline (bare client: agent originate + uuid_bridge): p50 {} us  p99 {} us",
        percentile(&base, 0.5),
        percentile(&base, 0.99)
    );
}
