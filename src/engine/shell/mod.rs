//! The engine's async shell: it owns the [`Core`], the store and the ESL connections, and does nothing but IO.
//!
//! One task runs the core: it waits for the next input or the core's next wake-up, feeds the core, and starts the
//! resulting actions as small tasks (store calls, ESL commands) whose answers come back as inputs on the same
//! bounded channel. One task per switch connects (retrying until the switch is up), subscribes to the channel
//! events a dialer needs and turns them into inputs; callflow runners get the events of their own channel.
//! Time comes from a [`Clock`], real or sped up. By concern: `runner` (the core's task and its actions), `switch`
//! (one switch's connection, limits and events), `tasks` (node registry, history writer, take-over); this file
//! holds the handle, start-up and the supervisor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::clock::Clock;
use super::completer::{self};
use super::core::{Core, CoreConfig, Input, SwitchConfig};
use super::state::{CampaignState, Transition};
use crate::campaign::config::ValidCampaign;
use crate::esl::Event;
use crate::esl::client::{Client, SwitchHealth};
use crate::store::{AttemptId, Store};

mod agents;
mod amd;
mod caller_ids;
mod runner;
mod switch;
mod tasks;

pub use agents::{offer_event_arg, release_of, team_rules};
use runner::Runner;
use switch::switch_task;
pub use switch::{FREESWITCH_DEFAULT_LIMITS, event_input, resolve_limits};
use tasks::{announce_node, sweep_hangup_records, write_history};

/// How to reach one FreeSWITCH node.
#[derive(Debug, Clone)]
pub struct SwitchEndpoint {
    pub name: String,
    /// `host:port` of its event socket.
    pub addr: String,
    pub password: String,
    /// Its `max-sessions`; `None`: read from the switch at connect (see [`resolve_limits`]).
    pub max_sessions: Option<u32>,
    /// Its `sessions-per-second`; `None`: read from the switch at connect.
    pub sessions_per_second: Option<u32>,
    /// Sessions one call takes there (2 for `loopback/` calls).
    pub sessions_per_call: u32,
}

/// Everything the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub core: CoreConfig,
    pub switches: Vec<SwitchEndpoint>,
    pub clock: Clock,
    /// A switch that leaves a command unanswered this long is logged as stalled, shown in `/readyz` and
    /// `/metrics` (`switch_stall_warn_sec`).
    pub switch_stall_warn: Duration,
}

/// Default of [`EngineConfig::switch_stall_warn`].
pub const DEFAULT_SWITCH_STALL_WARN: Duration = Duration::from_secs(10);

/// Events the engine subscribes to on every switch.
pub const SUBSCRIBED_EVENTS: &[&str] = &[
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_BRIDGE",
    "DTMF",
    "BACKGROUND_JOB",
];

pub(super) enum Msg {
    Input(Input),
    State(String, oneshot::Sender<Option<(CampaignState, u32)>>),
    /// A campaign's gateways on this node: calls in flight and breaker state.
    Gateways(
        String,
        oneshot::Sender<Vec<crate::engine::core::GatewayStatus>>,
    ),
    /// This node's answers of a campaign by AMD result.
    AmdCounts(String, oneshot::Sender<crate::engine::core::AmdCounts>),
    /// Answered once the core drained (no call left in flight).
    WhenDrained(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// Runs a campaign's callflow on an answered call and reports on it (see `engine::callflow`).
pub type CallflowStarter =
    Arc<dyn Fn(CallflowJob) -> futures::future::BoxFuture<'static, CallflowReport> + Send + Sync>;

/// What a callflow runner reports when the flow is over.
#[derive(Debug, Clone, Default)]
pub struct CallflowReport {
    /// The flow's `result {success}`, if it ran one: it decides the attempt's class.
    pub result: Option<bool>,
    /// The failing step, if one failed.
    pub error: Option<String>,
    /// A summary recorded with the attempt (compact JSON).
    pub note: Option<String>,
}

/// What a callflow runner gets for one call.
pub struct CallflowJob {
    pub client: Client,
    pub uuid: Uuid,
    pub campaign: Arc<ValidCampaign>,
    pub claim: crate::store::Claim,
    /// The channel's events (forwarded by Unique-ID) until the runner returns.
    pub events: mpsc::Receiver<Event>,
}

/// Transitions waiting to be written to the store, at most (a burst beyond is logged and dropped).
const HISTORY_QUEUE: usize = 4096;
/// How many given-up results of a campaign the engine keeps for the API.
pub const FAILED_RESULTS_KEEP: usize = 100;

/// A result the store refused `max_store_retries` times, kept for the API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailedResult {
    pub at: chrono::DateTime<chrono::Utc>,
    pub attempt_id: AttemptId,
    pub member_id: crate::store::MemberId,
    pub cause: String,
    pub reason: String,
}

/// A prompt file of a campaign that a switch does not have (see [`EngineHandle::missing_prompts`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MissingPrompt {
    pub switch: String,
    /// As the callflow names it.
    pub file: String,
}

/// How long a switch has to answer the prompt check of one campaign.
const PROMPT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

struct Shared {
    clients: Mutex<Vec<Option<Client>>>,
    /// Per campaign, per switch (by index): the prompt files the switch's last check found missing.
    missing_prompts: Mutex<HashMap<String, std::collections::BTreeMap<usize, Vec<String>>>>,
    failed: Mutex<HashMap<String, std::collections::VecDeque<FailedResult>>>,
    flows: Mutex<HashMap<Uuid, mpsc::Sender<Event>>>,
    gateway_of: Mutex<HashMap<AttemptId, String>>,
    /// Agent reservations this node holds, to the attempt they serve (inbox messages, lease renewal).
    reservations: Mutex<HashMap<Uuid, AttemptId>>,
    /// When the core's loop last turned (liveness).
    last_turn: Mutex<std::time::Instant>,
    /// Calls in flight on this node (readiness and drain reports).
    calls: std::sync::atomic::AtomicUsize,
}

/// A handle to a running engine. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    clock: Clock,
    switch_names: Arc<Vec<String>>,
    switch_stall_warn: Duration,
    store: Store,
    /// Rung when webhook events were queued (wakes the delivery task; see `crate::webhooks`).
    webhooks_queued: Arc<tokio::sync::Notify>,
}

/// The engine stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the engine is not running")]
pub struct EngineStopped;

impl EngineHandle {
    async fn send(&self, input: Input) -> Result<(), EngineStopped> {
        self.tx
            .send(Msg::Input(input))
            .await
            .map_err(|_| EngineStopped)
    }

    /// Rung whenever this engine queued webhook events.
    pub fn webhooks_queued(&self) -> Arc<tokio::sync::Notify> {
        self.webhooks_queued.clone()
    }

    /// Adds or replaces a campaign (it starts idle).
    pub async fn upsert(&self, campaign: Arc<ValidCampaign>) -> Result<(), EngineStopped> {
        self.send(Input::Upsert(campaign)).await
    }
    pub async fn run(&self, campaign: &str) -> Result<(), EngineStopped> {
        self.send(Input::Run(campaign.to_owned())).await
    }
    pub async fn stop(&self, campaign: &str) -> Result<(), EngineStopped> {
        self.send(Input::Stop(campaign.to_owned())).await
    }
    /// Members were added: look at the queue now.
    pub async fn wake(&self, campaign: &str) -> Result<(), EngineStopped> {
        self.send(Input::Wake(campaign.to_owned())).await
    }
    /// A campaign's state and calls in progress on this node.
    pub async fn state(
        &self,
        campaign: &str,
    ) -> Result<Option<(CampaignState, u32)>, EngineStopped> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::State(campaign.to_owned(), tx))
            .await
            .map_err(|_| EngineStopped)?;
        rx.await.map_err(|_| EngineStopped)
    }
    /// A campaign's gateways as this node's core sees them: its calls in flight on each and each circuit
    /// breaker (closed, open until an instant, half-open), by name. Each node keeps its own breakers (the
    /// failures it saw), so this is this node's truth.
    pub async fn gateways(
        &self,
        campaign: &str,
    ) -> Result<Vec<crate::engine::core::GatewayStatus>, EngineStopped> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Gateways(campaign.to_owned(), tx))
            .await
            .map_err(|_| EngineStopped)?;
        rx.await.map_err(|_| EngineStopped)
    }
    /// This node's answers of a campaign by AMD result and the messages it left, since the node started.
    pub async fn amd_counts(
        &self,
        campaign: &str,
    ) -> Result<crate::engine::core::AmdCounts, EngineStopped> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::AmdCounts(campaign.to_owned(), tx))
            .await
            .map_err(|_| EngineStopped)?;
        rx.await.map_err(|_| EngineStopped)
    }
    /// The campaign's latest state transitions, whichever node made them (from the store, oldest first).
    pub async fn history(
        &self,
        campaign: &str,
    ) -> Result<Vec<Transition>, crate::store::StoreError> {
        Ok(self
            .store
            .history(campaign)
            .await?
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect())
    }
    /// Results of the campaign the store kept refusing (given up), latest last.
    pub fn failed_results(&self, campaign: &str) -> Vec<FailedResult> {
        lock(&self.shared.failed)
            .get(campaign)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }
    /// The campaign's prompt files missing on a switch, as the last checks found them: each connected switch is
    /// checked when the campaign starts running and when a switch connects while it runs. A warning, not a
    /// refusal: the campaign runs, and every answered call's callflow fails on a missing file.
    pub fn missing_prompts(&self, campaign: &str) -> Vec<MissingPrompt> {
        lock(&self.shared.missing_prompts)
            .get(campaign)
            .into_iter()
            .flatten()
            .flat_map(|(switch, files)| {
                let switch = self.switch_names.get(*switch).cloned().unwrap_or_default();
                files.iter().map(move |file| MissingPrompt {
                    switch: switch.clone(),
                    file: file.clone(),
                })
            })
            .collect()
    }
    /// How long ago the core's loop last turned (it turns at least every second while it runs).
    pub fn since_last_turn(&self) -> Duration {
        lock(&self.shared.last_turn).elapsed()
    }
    /// Calls in flight on this node.
    pub fn calls_in_flight(&self) -> usize {
        self.shared.calls.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// Per switch: its name, and its link's health (`None` before its first connection).
    pub fn switch_health(&self) -> Vec<(String, Option<SwitchHealth>)> {
        lock(&self.shared.clients)
            .iter()
            .zip(self.switch_names.iter())
            .map(|(c, name)| (name.clone(), c.as_ref().map(Client::health)))
            .collect()
    }
    /// The stall threshold (`switch_stall_warn_sec`).
    pub fn switch_stall_warn(&self) -> Duration {
        self.switch_stall_warn
    }
    /// A campaign was deleted: forget it once its calls are over.
    pub async fn remove(&self, campaign: &str) -> Result<(), EngineStopped> {
        self.send(Input::Remove(campaign.to_owned())).await
    }
    /// Attempts this node held before a restart: track them again.
    pub async fn adopt(
        &self,
        campaign: &str,
        claims: Vec<crate::store::Claim>,
    ) -> Result<(), EngineStopped> {
        self.send(Input::Adopt {
            campaign: campaign.to_owned(),
            claims,
        })
        .await
    }
    /// Stops claiming and waits until every call in flight has ended and its result is stored.
    pub async fn drain(&self) -> Result<(), EngineStopped> {
        self.send(Input::Drain).await?;
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::WhenDrained(tx))
            .await
            .map_err(|_| EngineStopped)?;
        rx.await.map_err(|_| EngineStopped)
    }
    /// The engine's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }
    /// Stops the engine's core task (calls in progress are left to their leases).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why the engine stopped on its own: one of its tasks ended or panicked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("engine task {task} {how}")]
pub struct EngineFailure {
    pub task: String,
    pub how: String,
}

/// Starts the engine: the core task, the completer and one connection task per switch, all supervised. The
/// returned handle resolves when the engine stops: `Ok` after [`EngineHandle::shutdown`], `Err` naming the task
/// if any task ended or panicked first (the process must not go on half alive).
pub fn start(
    cfg: EngineConfig,
    store: Store,
    callflow: Option<CallflowStarter>,
) -> (EngineHandle, JoinHandle<Result<(), EngineFailure>>) {
    let (tx, rx) = mpsc::channel::<Msg>(65_536);
    let shared = Arc::new(Shared {
        clients: Mutex::new(vec![None; cfg.switches.len()]),
        missing_prompts: Mutex::new(HashMap::new()),
        failed: Mutex::new(HashMap::new()),
        flows: Mutex::new(HashMap::new()),
        gateway_of: Mutex::new(HashMap::new()),
        reservations: Mutex::new(HashMap::new()),
        last_turn: Mutex::new(std::time::Instant::now()),
        calls: std::sync::atomic::AtomicUsize::new(0),
    });
    let switches: Vec<SwitchConfig> = cfg
        .switches
        .iter()
        .map(|s| SwitchConfig {
            name: s.name.clone(),
            limits: s.configured_limits(),
            sessions_per_call: s.sessions_per_call,
        })
        .collect();
    // Waits for real IO (a callflow runner reporting after the hangup, a switch or store answering) are real
    // time: on a sped-up clock they stretch by the speed, so a busy machine cannot make a healthy answer late.
    let mut core_cfg = cfg.core.clone();
    let speed = cfg.clock.speed().max(1.0);
    core_cfg.callflow_grace = core_cfg.callflow_grace.mul_f64(speed);
    core_cfg.check_timeout = core_cfg.check_timeout.mul_f64(speed);
    let core = Core::new(core_cfg, switches, cfg.clock.now());
    let mut tasks: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    let mut names: HashMap<tokio::task::Id, String> = HashMap::new();
    for (i, sw) in cfg.switches.iter().enumerate() {
        let task = tasks.spawn(switch_task(
            i,
            sw.clone(),
            cfg.core.node.clone(),
            cfg.switch_stall_warn,
            tx.clone(),
            shared.clone(),
        ));
        names.insert(task.id(), format!("switch {}", sw.name));
    }
    let handle = EngineHandle {
        tx: tx.clone(),
        shared: shared.clone(),
        clock: cfg.clock,
        switch_names: Arc::new(cfg.switches.iter().map(|s| s.name.clone()).collect()),
        switch_stall_warn: cfg.switch_stall_warn,
        store: store.clone(),
        webhooks_queued: Arc::new(tokio::sync::Notify::new()),
    };
    let (webhooks, webhooks_rx) = mpsc::channel(crate::webhooks::resolve::RESOLVE_QUEUE);
    let task = tasks.spawn(crate::webhooks::resolve::run(
        store.clone(),
        webhooks_rx,
        handle.webhooks_queued(),
    ));
    names.insert(task.id(), "webhook resolver".into());
    let (completions, completions_rx) = mpsc::unbounded_channel();
    let task = tasks.spawn(completer::run(
        store.clone(),
        cfg.clock,
        completions_rx,
        tx.clone(),
        webhooks.clone(),
    ));
    names.insert(task.id(), "completer".into());
    let task = tasks.spawn(announce_node(
        store.clone(),
        cfg.core.node.clone(),
        cfg.core.lease,
        cfg.clock,
        tx.clone(),
    ));
    names.insert(task.id(), "node registry".into());
    let (history_tx, history_rx) = mpsc::channel(HISTORY_QUEUE);
    let task = tasks.spawn(write_history(
        store.clone(),
        history_rx,
        handle.webhooks_queued(),
    ));
    names.insert(task.id(), "history".into());
    let task = tasks.spawn(agents::agent_loop(
        store.clone(),
        cfg.core.node.clone(),
        cfg.clock,
        cfg.core.lease,
        shared.clone(),
        tx.clone(),
    ));
    names.insert(task.id(), "agents".into());
    let task = tasks.spawn(sweep_hangup_records(shared.clone(), cfg.clock));
    names.insert(task.id(), "hangup record sweep".into());
    let runner = Runner {
        switch_names: handle.switch_names.clone(),
        core,
        store,
        clock: cfg.clock,
        tx,
        shared,
        campaigns: HashMap::new(),
        callflow,
        completions,
        drained: Vec::new(),
        history: history_tx,
        webhooks,
    };
    let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
    let task = tasks.spawn(async move {
        runner.run(rx).await;
        let _ = stopped_tx.send(());
    });
    names.insert(task.id(), "core".into());
    let join = tokio::spawn(supervise(tasks, names, stopped_rx));
    (handle, join)
}

/// How long a task that ended without a panic waits for the core's own stop before it counts as a failure.
const ENDED_TASK_GRACE: Duration = Duration::from_secs(1);

/// Waits for the engine's tasks: the first to end or panic before a shutdown is the engine's failure.
async fn supervise(
    mut tasks: tokio::task::JoinSet<()>,
    names: HashMap<tokio::task::Id, String>,
    mut stopped: oneshot::Receiver<()>,
) -> Result<(), EngineFailure> {
    let joined = tokio::select! {
        biased;
        _ = &mut stopped => None,
        joined = tasks.join_next_with_id() => joined,
    };
    // A task that simply ended (its channel closed) may be the first to notice a shutdown the core is about to
    // report: it is a failure only if the core does not stop within a moment. A panic is a failure at once.
    let shutdown = match &joined {
        None => true,
        Some(Ok(_)) => matches!(
            tokio::time::timeout(ENDED_TASK_GRACE, &mut stopped).await,
            Ok(Ok(()))
        ),
        Some(Err(_)) => matches!(stopped.try_recv(), Ok(())),
    };
    let failure = match joined {
        _ if shutdown => None,
        None => None,
        Some(Ok((id, ()))) => Some(EngineFailure {
            task: names.get(&id).cloned().unwrap_or_default(),
            how: "ended".into(),
        }),
        Some(Err(e)) => {
            let task = names.get(&e.id()).cloned().unwrap_or_default();
            let how = if e.is_panic() {
                let payload = e.into_panic();
                let text = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "(no message)".into());
                format!("panicked: {text}")
            } else {
                format!("failed: {e}")
            };
            Some(EngineFailure { task, how })
        }
    };
    // A shutdown: the other tasks end with their channels; a failure: stop them all.
    tasks.abort_all();
    match failure {
        None => Ok(()),
        Some(f) => {
            tracing::error!(
                task = f.task,
                how = f.how,
                "engine task stopped: the engine is down"
            );
            Err(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tasks as the supervisor sees them: one that ends at once, and the core, which reports its stop after
    /// `core_stops_after` (never, with `None`).
    async fn supervised(core_stops_after: Option<Duration>) -> Result<(), EngineFailure> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut names = HashMap::new();
        let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
        let task = tasks.spawn(async {});
        names.insert(task.id(), "completer".to_owned());
        let task = tasks.spawn(async move {
            match core_stops_after {
                Some(after) => {
                    tokio::time::sleep(after).await;
                    let _ = stopped_tx.send(());
                }
                None => {
                    let _held = stopped_tx;
                    std::future::pending::<()>().await;
                }
            }
        });
        names.insert(task.id(), "core".to_owned());
        supervise(tasks, names, stopped_rx).await
    }

    #[tokio::test]
    async fn a_task_ending_just_before_the_core_reports_its_stop_is_a_shutdown_not_a_failure() {
        assert!(supervised(Some(Duration::from_millis(50))).await.is_ok());
    }

    #[tokio::test]
    async fn a_task_ending_while_the_core_runs_on_is_the_engines_failure() {
        let failure = supervised(None).await.unwrap_err();
        assert_eq!(
            (failure.task.as_str(), failure.how.as_str()),
            ("completer", "ended")
        );
    }
}
