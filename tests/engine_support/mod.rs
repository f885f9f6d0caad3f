//! Shared parts of the engine's end-to-end tests (`tests/engine_e2e.rs`): fixtures, engine nodes running in their
//! own runtime (so one can be killed like a process), simulated switches, a TCP proxy that can cut an ESL socket,
//! and the accounting audit every test ends with.
//!
//! Everything here is real: the simulated FreeSWITCH speaks ESL over TCP, Redis is a private `redis-server`, the
//! engine is `engine::shell` as production runs it. Time is sped up (engine and switch at the same factor).
#![allow(dead_code)]

pub mod audit;
pub mod observer;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fsdialer::campaign::config::{CampaignConfig, ValidCampaign};
use fsdialer::campaign::member::MemberInput;
use fsdialer::engine::clock::Clock;
use fsdialer::engine::core::CoreConfig;
use fsdialer::engine::shell::{self, EngineConfig, EngineHandle, SwitchEndpoint};
use fsdialer::engine::state::CampaignState;
use fsdialer::sim;
use fsdialer::store::Store;
use fsdialer::store::local_redis::{LocalRedis, LocalRedisOptions};

/// `fixtures/engine/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/engine")
        .join(rel)
}

/// A campaign fixture as written (tests may change it before validating).
pub fn campaign_config(name: &str) -> CampaignConfig {
    let path = fixture(&format!("campaigns/{name}.toml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    CampaignConfig::from_toml_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Validates a campaign config (panics with every problem found).
pub fn validate(config: &CampaignConfig) -> Arc<ValidCampaign> {
    Arc::new(
        config
            .validate()
            .unwrap_or_else(|e| panic!("campaign fixture does not validate: {e}")),
    )
}

/// A members fixture.
pub fn members(name: &str) -> Vec<MemberInput> {
    let path = fixture(&format!("members/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A private redis-server (panics with install instructions if the binary is missing).
pub fn redis_server() -> LocalRedis {
    LocalRedis::start(LocalRedisOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// Settings of one simulated switch.
#[derive(Debug, Clone)]
pub struct SimSpec {
    pub speed: f64,
    pub max_sessions: u32,
    pub sessions_per_second: u32,
    pub scenario: Option<PathBuf>,
}

impl SimSpec {
    /// A switch with room to spare (no capacity refusals), the built-in dialplan.
    pub fn roomy(speed: f64) -> SimSpec {
        SimSpec {
            speed,
            max_sessions: 20_000,
            sessions_per_second: 20_000,
            scenario: None,
        }
    }
}

/// Starts a simulated switch on a free port of the current runtime.
pub async fn start_sim(spec: &SimSpec) -> sim::server::SimHandle {
    let cfg = sim::server::ServerConfig {
        speed: spec.speed,
        switch: sim::model::Config {
            max_sessions: spec.max_sessions,
            sessions_per_second: spec.sessions_per_second,
            ..Default::default()
        },
        scenario: spec.scenario.clone(),
        ..Default::default()
    };
    sim::server::start(cfg)
        .await
        .unwrap_or_else(|e| panic!("simulated switch: {e}"))
}

/// How an engine reaches a switch at `addr`; the engine believes the switch has `sps` sessions per second.
pub fn endpoint(name: &str, addr: impl ToString, max_sessions: u32, sps: u32) -> SwitchEndpoint {
    SwitchEndpoint {
        name: name.into(),
        addr: addr.to_string(),
        password: "ClueCon".into(),
        max_sessions: Some(max_sessions),
        sessions_per_second: Some(sps),
        sessions_per_call: 2,
    }
}

/// Where a node's store lives.
#[derive(Clone)]
pub enum StoreSpec {
    /// An in-process store shared with the test (single-node tests).
    Shared(Store),
    /// A Redis URL: the node opens its own connection inside its runtime (it dies with the node).
    Url(String),
}

/// One engine node in its own tokio runtime, like a separate process: [`Node::kill`] drops every task and socket
/// of it at once, without a shutdown.
pub struct Node {
    pub id: String,
    pub handle: EngineHandle,
    rt: Option<tokio::runtime::Runtime>,
}

impl Node {
    /// The campaign's history once its writes have settled (they reach the store asynchronously, in order): read
    /// until two reads 100 ms apart agree.
    pub async fn history(&self, campaign: &str) -> Vec<fsdialer::engine::state::Transition> {
        let mut last = self.handle.history(campaign).await.unwrap();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.handle.history(campaign).await.unwrap();
            if now == last {
                return now;
            }
            last = now;
        }
        last
    }

    /// Starts an engine named `id` on `switches` with `clock`; `lease` is virtual time.
    pub async fn start(
        id: &str,
        store: StoreSpec,
        switches: Vec<SwitchEndpoint>,
        clock: Clock,
        lease: Duration,
    ) -> Node {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("engine-{id}"))
            .enable_all()
            .build()
            .expect("engine runtime");
        let core = CoreConfig {
            node: id.to_owned(),
            lease,
            ..CoreConfig::default()
        };
        let cfg = EngineConfig {
            core,
            switches,
            clock,
            switch_stall_warn: fsdialer::engine::shell::DEFAULT_SWITCH_STALL_WARN,
        };
        let handle = rt
            .spawn(async move {
                let store = match store {
                    StoreSpec::Shared(s) => s,
                    StoreSpec::Url(url) => Store::open(&url)
                        .await
                        .unwrap_or_else(|e| panic!("engine store {url}: {e}")),
                };
                let (handle, _join) = shell::start(cfg, store, None);
                handle
            })
            .await
            .expect("engine start task");
        Node {
            id: id.to_owned(),
            handle,
            rt: Some(rt),
        }
    }

    /// Starts the campaign on this node.
    pub async fn run_campaign(&self, campaign: &Arc<ValidCampaign>) {
        self.handle
            .upsert(campaign.clone())
            .await
            .expect("engine running");
        self.handle
            .run(campaign.id())
            .await
            .expect("engine running");
    }

    /// The campaign's state and calls in progress here (`None` once the node is gone).
    pub async fn state(&self, campaign: &str) -> Option<(CampaignState, u32)> {
        self.handle.state(campaign).await.ok().flatten()
    }

    /// Kills the node like a crashed process: every task stops where it is, every socket closes, nothing is
    /// completed or released.
    pub fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    /// Stops the node cleanly (calls in progress are left to their leases, as `shutdown` documents).
    pub async fn stop(mut self) {
        self.handle.shutdown().await;
        self.kill();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `campaign` on one engine node (`node-1`, on `store`, with the simulated switch at `sim`) until it is
/// done (panics after 60 s real time); returns the node, to stop.
pub async fn run_to_done(
    store: &Store,
    sim: std::net::SocketAddr,
    campaign: &Arc<ValidCampaign>,
    clock: Clock,
) -> Node {
    let node = Node::start(
        "node-1",
        StoreSpec::Shared(store.clone()),
        vec![endpoint("sim", sim, 20_000, 20_000)],
        clock,
        Duration::from_secs(60),
    )
    .await;
    node.run_campaign(campaign).await;
    assert_eq!(
        wait_finished(&[&node], store, campaign.id(), Duration::from_secs(60)).await,
        CampaignState::Done
    );
    node
}

/// Waits until every node reports the campaign in a final state (`Done`, `Expired`, `Stopped`) with no call in
/// progress, or panics after `timeout` (real time) naming the states and the store's counters.
pub async fn wait_finished(
    nodes: &[&Node],
    store: &Store,
    campaign: &str,
    timeout: Duration,
) -> CampaignState {
    let started = Instant::now();
    loop {
        let mut states = Vec::new();
        for n in nodes {
            states.push((n.id.clone(), n.state(campaign).await));
        }
        let finished = states.iter().all(|(_, s)| {
            matches!(
                s,
                Some((
                    CampaignState::Done | CampaignState::Expired | CampaignState::Stopped,
                    0
                ))
            )
        });
        if finished && let Some((_, Some((s, _)))) = states.first() {
            return *s;
        }
        if started.elapsed() > timeout {
            let counts = store.counts(campaign).await;
            let mut history = Vec::new();
            for n in nodes {
                history.push((n.id.clone(), n.handle.history(campaign).await));
            }
            panic!(
                "campaign {campaign} did not finish within {timeout:?}: node states {states:?}; \
                 counters {counts:?}; history {history:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits (real time, bounded) until `cond` holds, polling; panics with `what` on timeout.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !cond().await {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The tests of one binary run one at a time: each runs on sped-up time, and two sharing the machine's two cores
/// would stretch each other's virtual seconds (leases, timeouts) for no gain.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
