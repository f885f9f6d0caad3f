//! The engine's async shell: it owns the [`Core`], the store and the ESL connections, and does nothing but IO.
//!
//! One task runs the core: it waits for the next input or the core's next wake-up, feeds the core, and starts the
//! resulting actions as small tasks (store calls, ESL commands) whose answers come back as inputs on the same
//! bounded channel. One task per switch connects (retrying until the switch is up), subscribes to the channel
//! events a dialer needs and turns them into inputs; callflow runners get the events of their own channel.
//! Time comes from a [`Clock`], real or sped up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::clock::Clock;
use super::completer::{self, Completion};
use super::core::{Action, Core, CoreConfig, Input, SwitchConfig, policy_of};
use super::state::{CampaignState, Transition};
use super::subscription;
use super::switch_info::{self, SwitchLimits};
use crate::campaign::config::ValidCampaign;
use crate::esl::Event;
use crate::esl::client::{
    Client, ClientConfig, ClientError, ClientEvent, StallWatch, SwitchHealth,
};
use crate::store::{AttemptId, Store};

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

impl SwitchEndpoint {
    /// Both limits, when the configuration sets both (nothing to read from the switch).
    pub fn configured_limits(&self) -> Option<SwitchLimits> {
        Some(SwitchLimits {
            max_sessions: self.max_sessions?,
            sessions_per_second: self.sessions_per_second?,
        })
    }
}

/// FreeSWITCH's own defaults (`switch.conf.xml`), used for a switch that cannot tell its limits.
pub const FREESWITCH_DEFAULT_LIMITS: SwitchLimits = SwitchLimits {
    max_sessions: 1000,
    sessions_per_second: 30,
};

/// How long the switch has to answer the `fsctl` questions at connect.
const LIMITS_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The switch's limits: the configured ones, the rest read from the switch (`fsctl max_sessions`, `fsctl sps`).
///
/// The core places no call on a switch before its limits are known (fail closed: pacing at a guessed rate is the
/// overshoot issue 15 is about), and this runs right after connecting, before the switch is reported up. A switch
/// that cannot answer (`fsctl` refused by its ESL `apis` list, a timeout) gets [`FREESWITCH_DEFAULT_LIMITS`] with a
/// warning rather than no calls at all: its refusals (Minus, with back-off) cover a lower real limit.
pub async fn resolve_limits(sw: &SwitchEndpoint, client: &Client) -> SwitchLimits {
    if let Some(limits) = sw.configured_limits() {
        return limits;
    }
    let read = match tokio::time::timeout(LIMITS_READ_TIMEOUT, switch_info::read_limits(client))
        .await
    {
        Ok(Ok(limits)) => limits,
        Ok(Err(e)) => {
            tracing::warn!(switch = sw.name, error = %e, "cannot read the switch's session limits: using FreeSWITCH's defaults (set max_sessions and sessions_per_second in [[switches]])");
            FREESWITCH_DEFAULT_LIMITS
        }
        Err(_) => {
            tracing::warn!(
                switch = sw.name,
                "the switch did not tell its session limits in time: using FreeSWITCH's defaults (set max_sessions and sessions_per_second in [[switches]])"
            );
            FREESWITCH_DEFAULT_LIMITS
        }
    };
    SwitchLimits {
        max_sessions: sw.max_sessions.unwrap_or(read.max_sessions),
        sessions_per_second: sw.sessions_per_second.unwrap_or(read.sessions_per_second),
    }
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
    };
    let (completions, completions_rx) = mpsc::unbounded_channel();
    let task = tasks.spawn(completer::run(
        store.clone(),
        cfg.clock,
        completions_rx,
        tx.clone(),
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
    let task = tasks.spawn(write_history(store.clone(), history_rx));
    names.insert(task.id(), "history".into());
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
    let failure = match joined {
        None => None,
        Some(_) if matches!(stopped.try_recv(), Ok(())) => None,
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

struct Runner {
    /// Switch names, by index (for logs and the prompt check).
    switch_names: Arc<Vec<String>>,
    core: Core,
    store: Store,
    clock: Clock,
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    campaigns: HashMap<String, Arc<ValidCampaign>>,
    callflow: Option<CallflowStarter>,
    /// Results on their way to the store, batched by [`completer`].
    completions: mpsc::UnboundedSender<Completion>,
    /// Waiting for the drain to end.
    drained: Vec<oneshot::Sender<()>>,
    /// Campaign transitions on their way to the store, in order.
    history: mpsc::Sender<(String, Transition)>,
}

impl Runner {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            // Turn at least every second, so liveness sees a loop that is alive.
            let sleep = self
                .core
                .next_wakeup()
                .map(|w| self.clock.real_until(w))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            *lock(&self.shared.last_turn) = std::time::Instant::now();
            self.shared.calls.store(
                self.core.calls().len(),
                std::sync::atomic::Ordering::Relaxed,
            );
            if self.core.is_drained() {
                for done in self.drained.drain(..) {
                    let _ = done.send(());
                }
            }
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return };
                    if !self.on_msg(msg) {
                        return;
                    }
                    // Take whatever else is already queued before sleeping again.
                    for _ in 0..1024 {
                        match rx.try_recv() {
                            Ok(msg) => if !self.on_msg(msg) { return },
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep(sleep) => {
                    let actions = self.core.poll(self.clock.now());
                    self.execute(actions);
                }
            }
        }
    }

    fn on_msg(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Input(input) => {
                match &input {
                    Input::Upsert(v) => {
                        self.campaigns.insert(v.id().to_owned(), v.clone());
                    }
                    Input::Remove(id) => {
                        lock(&self.shared.failed).remove(id);
                        lock(&self.shared.missing_prompts).remove(id);
                    }
                    // A switch (re)connected: check the prompts of the campaigns running meanwhile.
                    Input::SwitchUp(i) => {
                        let running: Vec<String> = self
                            .core
                            .campaign_ids()
                            .filter(|id| {
                                self.core
                                    .state(id)
                                    .is_some_and(|s| s == CampaignState::Running)
                            })
                            .map(str::to_owned)
                            .collect();
                        for id in running {
                            self.check_prompts(&id, &[*i]);
                        }
                    }
                    _ => {}
                }
                let removed = match &input {
                    Input::Remove(id) => Some(id.clone()),
                    _ => None,
                };
                let actions = self.core.handle(self.clock.now(), input);
                self.execute(actions);
                if let Some(id) = removed
                    && self.core.campaign(&id).is_none()
                {
                    self.campaigns.remove(&id);
                }
                true
            }
            Msg::State(id, reply) => {
                let _ = reply.send(self.core.state(&id).map(|s| (s, self.core.active(&id))));
                true
            }
            Msg::WhenDrained(done) => {
                self.drained.push(done);
                true
            }
            Msg::Shutdown(done) => {
                let _ = done.send(());
                false
            }
        }
    }

    /// Checks the campaign's prompt files on these switches (those connected), in the background; the result
    /// replaces theirs in [`EngineHandle::missing_prompts`], and a missing file is logged as a warning.
    fn check_prompts(&self, campaign: &str, switches: &[usize]) {
        let Some(files) = self
            .campaigns
            .get(campaign)
            .and_then(|v| v.callflow())
            .map(|c| c.prompt_files())
            .filter(|f| !f.is_empty())
        else {
            lock(&self.shared.missing_prompts).remove(campaign);
            return;
        };
        let targets: Vec<(usize, Client)> = switches
            .iter()
            .filter_map(|&i| self.client(i).map(|c| (i, c)))
            .collect();
        let (shared, names, campaign) = (
            self.shared.clone(),
            self.switch_names.clone(),
            campaign.to_owned(),
        );
        tokio::spawn(async move {
            for (i, client) in targets {
                let switch = names.get(i).map(String::as_str).unwrap_or_default();
                let found = tokio::time::timeout(
                    PROMPT_CHECK_TIMEOUT,
                    switch_info::missing_prompts(&client, &files),
                )
                .await;
                let missing = match found {
                    Ok(Ok(missing)) => missing,
                    Ok(Err(e)) => {
                        tracing::warn!(campaign, switch, error = %e, "cannot check the campaign's prompt files");
                        continue;
                    }
                    Err(_) => {
                        tracing::warn!(campaign, switch, "the prompt check timed out");
                        continue;
                    }
                };
                if !missing.is_empty() {
                    tracing::warn!(
                        campaign,
                        switch,
                        ?missing,
                        "prompt files missing on the switch: every answered call's callflow fails on them (the campaign runs)"
                    );
                }
                lock(&shared.missing_prompts)
                    .entry(campaign.clone())
                    .or_default()
                    .insert(i, missing);
            }
        });
    }

    fn client(&self, switch: usize) -> Option<Client> {
        lock(&self.shared.clients).get(switch).cloned().flatten()
    }

    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            self.execute_one(action);
        }
    }

    fn execute_one(&mut self, action: Action) {
        let tx = self.tx.clone();
        let store = self.store.clone();
        let clock = self.clock;
        let lease = self.core.config().lease;
        let node = self.core.config().node.clone();
        match action {
            Action::Claim { campaign, max } => {
                let Some(valid) = self.campaigns.get(&campaign).cloned() else {
                    return;
                };
                let policy = policy_of(&valid);
                tokio::spawn(async move {
                    let now = clock.now();
                    let mut max = max;
                    if let Some(rate) = valid.config().cps {
                        let key = crate::store::LimitKey::Campaign(campaign.clone());
                        match store.take_tokens(&key, rate, rate.max(1.0), max, now).await {
                            Ok(granted) => max = granted,
                            Err(e) => {
                                let _ = tx
                                    .send(Msg::Input(Input::ClaimFailed {
                                        campaign,
                                        error: e.to_string(),
                                    }))
                                    .await;
                                return;
                            }
                        }
                    }
                    let input = if max == 0 {
                        Input::Claimed {
                            campaign,
                            batch: Default::default(),
                        }
                    } else {
                        match store
                            .claim(
                                &campaign,
                                &policy,
                                valid.calendar(),
                                now,
                                max as usize,
                                &node,
                                lease,
                            )
                            .await
                        {
                            Ok(batch) => Input::Claimed { campaign, batch },
                            Err(e) => Input::ClaimFailed {
                                campaign,
                                error: e.to_string(),
                            },
                        }
                    };
                    let _ = tx.send(Msg::Input(input)).await;
                });
            }
            Action::Originate {
                campaign: _,
                switch,
                attempt,
                job,
                gateway,
                gateway_limit,
                originate,
            } => {
                let client = self.client(switch);
                lock(&self.shared.gateway_of).insert(attempt, gateway.clone());
                metrics::counter!("fsdialer_originates_total").increment(1);
                tokio::spawn(async move {
                    if let Some(limit) = gateway_limit {
                        let now = clock.now();
                        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
                        match store
                            .acquire_gateway_slot(&gateway, limit, attempt, until, now)
                            .await
                        {
                            Ok(true) => {}
                            Ok(false) | Err(_) => {
                                let _ = tx.send(Msg::Input(Input::GatewayBusy { attempt })).await;
                                return;
                            }
                        }
                    }
                    let Some(client) = client else {
                        let _ = tx
                            .send(Msg::Input(Input::OriginateFailed {
                                attempt,
                                sent: false,
                                error: "switch not connected".into(),
                            }))
                            .await;
                        return;
                    };
                    let command = format!("originate {}", originate.args);
                    let input = match client.bgapi_with_uuid(&command, job).await {
                        Ok(bg) => match bg.result().await {
                            Ok(result) => Input::JobResult {
                                job,
                                body: result.text().into_owned(),
                            },
                            Err(e) => Input::OriginateFailed {
                                attempt,
                                sent: true,
                                error: e.to_string(),
                            },
                        },
                        Err(e) => Input::OriginateFailed {
                            attempt,
                            sent: matches!(e, ClientError::ConnectionLost { .. }),
                            error: e.to_string(),
                        },
                    };
                    let _ = tx.send(Msg::Input(input)).await;
                });
            }
            Action::Release {
                campaign,
                attempt,
                member,
                not_before,
            } => {
                let gw = lock(&self.shared.gateway_of).remove(&attempt);
                tokio::spawn(async move {
                    if let Some(gw) = gw {
                        let _ = store.release_gateway_slot(&gw, attempt).await;
                    }
                    if let Err(e) = store
                        .release(&campaign, member, attempt, not_before, clock.now())
                        .await
                    {
                        tracing::warn!(campaign, %attempt, error = %e, "release failed; the lease will expire");
                    }
                });
            }
            Action::Complete {
                campaign: _,
                version: valid,
                gateway: _,
                result,
            } => {
                let gateway = lock(&self.shared.gateway_of).remove(&result.attempt_id);
                metrics::counter!(
                    "fsdialer_hangups_total",
                    "cause" => result.cause.clone(),
                    "class" => result.class.as_str()
                )
                .increment(1);
                let _ = self.completions.send(Completion {
                    campaign: valid,
                    result,
                    gateway,
                });
            }
            Action::StartCallflow {
                campaign: _,
                version: valid,
                switch,
                attempt,
            } => {
                let (Some(client), Some(starter)) = (self.client(switch), self.callflow.clone())
                else {
                    let _ = tx.try_send(Msg::Input(Input::CallflowDone {
                        uuid: attempt,
                        result: None,
                        error: Some("no callflow runner or switch".into()),
                        note: None,
                    }));
                    return;
                };
                let Some(claim) = self.core.calls().get(&attempt).map(|c| c.claim.clone()) else {
                    return;
                };
                let (etx, erx) = mpsc::channel(1024);
                lock(&self.shared.flows).insert(attempt, etx);
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    let report = starter(CallflowJob {
                        client,
                        uuid: attempt,
                        campaign: valid,
                        claim,
                        events: erx,
                    })
                    .await;
                    lock(&shared.flows).remove(&attempt);
                    let _ = tx
                        .send(Msg::Input(Input::CallflowDone {
                            uuid: attempt,
                            result: report.result,
                            error: report.error,
                            note: report.note,
                        }))
                        .await;
                });
            }
            Action::Kill {
                switch,
                uuid,
                cause,
            } => {
                if let Some(client) = self.client(switch) {
                    tokio::spawn(async move {
                        let _ = client.api(&format!("uuid_kill {uuid} {cause}")).await;
                    });
                }
            }
            Action::CheckExists { switch, attempt } => {
                let client = self.client(switch);
                tokio::spawn(async move {
                    let exists = match client {
                        Some(client) => uuid_exists(&client, attempt).await,
                        None => None,
                    };
                    let input = match exists {
                        Some(exists) => Input::Exists { attempt, exists },
                        None => Input::CheckFailed { attempt },
                    };
                    let _ = tx.send(Msg::Input(input)).await;
                });
            }
            Action::Locate { attempt } => {
                let clients: Vec<Option<Client>> = lock(&self.shared.clients).clone();
                tokio::spawn(async move {
                    // On no switch only when every switch answered "no"; a switch that cannot answer leaves the
                    // question open (the core asks again, then settles).
                    let mut every_switch_answered = true;
                    let mut found = None;
                    for (i, client) in clients.iter().enumerate() {
                        match client.as_ref() {
                            Some(c) => match uuid_exists(c, attempt).await {
                                Some(true) => {
                                    found = Some(i);
                                    break;
                                }
                                Some(false) => {}
                                None => every_switch_answered = false,
                            },
                            None => every_switch_answered = false,
                        }
                    }
                    let input = if found.is_some() || every_switch_answered {
                        Input::Located {
                            attempt,
                            switch: found,
                        }
                    } else {
                        Input::CheckFailed { attempt }
                    };
                    let _ = tx.send(Msg::Input(input)).await;
                });
            }
            Action::ResultFailed {
                campaign,
                result,
                reason,
            } => {
                metrics::counter!("fsdialer_results_failed_total").increment(1);
                let failed = FailedResult {
                    at: clock.now(),
                    attempt_id: result.attempt_id,
                    member_id: result.member_id,
                    cause: result.cause,
                    reason,
                };
                let mut map = lock(&self.shared.failed);
                let list = map.entry(campaign).or_default();
                if list.len() >= FAILED_RESULTS_KEEP {
                    list.pop_front();
                }
                list.push_back(failed);
            }
            Action::Forget { attempt } => {
                lock(&self.shared.flows).remove(&attempt);
                // A call dropped without a release or a completion (revoked, given up) still holds its slot.
                if let Some(gw) = lock(&self.shared.gateway_of).remove(&attempt) {
                    tokio::spawn(async move {
                        let _ = store.release_gateway_slot(&gw, attempt).await;
                    });
                }
            }
            Action::FindOrphans { campaign } => {
                tokio::spawn(async move {
                    let held = match store
                        .held_claims(&campaign, &node, lease, clock.now())
                        .await
                    {
                        Ok(held) => held,
                        Err(e) => {
                            // Left to their leases (recovered as lost_attempt): rare, and never a double call.
                            tracing::warn!(campaign, error = %e, "cannot list this node's attempts");
                            Vec::new()
                        }
                    };
                    let _ = tx.send(Msg::Input(Input::Orphans { campaign, held })).await;
                });
            }
            Action::CheckExhausted { campaign } => {
                tokio::spawn(async move {
                    let waiting = match store.counts(&campaign).await {
                        Ok(c) => c.waiting + c.active,
                        Err(_) => 1,
                    };
                    let _ = tx
                        .send(Msg::Input(Input::QueueState { campaign, waiting }))
                        .await;
                });
            }
            Action::Renew { campaign, attempts } => {
                let gws: Vec<(AttemptId, String)> = {
                    let map = lock(&self.shared.gateway_of);
                    attempts
                        .iter()
                        .filter_map(|a| map.get(a).map(|g| (*a, g.clone())))
                        .collect()
                };
                tokio::spawn(async move {
                    let now = clock.now();
                    match store.renew(&campaign, &node, &attempts, now, lease).await {
                        Ok(revoked) if !revoked.is_empty() => {
                            // A call another node holds now was taken over live: never hang it up.
                            let mut hang_up = Vec::new();
                            let mut handed_over = Vec::new();
                            for a in revoked {
                                match store.attempt_holder(&campaign, a).await {
                                    Ok(Some(holder)) if holder != node => handed_over.push(a),
                                    _ => hang_up.push(a),
                                }
                            }
                            let _ = tx
                                .send(Msg::Input(Input::Revoked {
                                    hang_up,
                                    handed_over,
                                }))
                                .await;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(campaign, error = %e, "lease renewal failed"),
                    }
                    let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
                    for (a, g) in gws {
                        let _ = store.renew_gateway_slots(&g, &[a], until, now).await;
                    }
                });
            }
            Action::Recover { campaign } => {
                let Some(valid) = self.campaigns.get(&campaign).cloned() else {
                    return;
                };
                let clients: Vec<Client> = lock(&self.shared.clients)
                    .iter()
                    .flatten()
                    .cloned()
                    .collect();
                tokio::spawn(async move {
                    // Calls of vanished nodes that are still up are taken over, never hung up: this node
                    // follows them to their real end. Only the rest count as lost.
                    match take_over_live_calls(&store, &clients, &campaign, &node, lease, clock)
                        .await
                    {
                        Ok(claims) if !claims.is_empty() => {
                            let _ = tx
                                .send(Msg::Input(Input::Adopt {
                                    campaign: campaign.clone(),
                                    claims,
                                }))
                                .await;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(campaign, error = %e, "taking over calls failed"),
                    }
                    let policy = policy_of(&valid);
                    match store
                        .recover_expired(&campaign, &policy, valid.calendar(), clock.now(), 1000)
                        .await
                    {
                        Ok(rec) if !rec.is_empty() => {
                            tracing::info!(
                                campaign,
                                recovered = rec.len(),
                                "recovered attempts of vanished nodes (their calls are gone)"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(campaign, error = %e, "recovery failed"),
                    }
                });
            }
            Action::History {
                campaign,
                transition,
            } => {
                if transition.to == CampaignState::Running && transition.from != transition.to {
                    let all: Vec<usize> = (0..self.switch_names.len()).collect();
                    self.check_prompts(&campaign, &all);
                }
                if let Err(e) = self.history.try_send((campaign, transition)) {
                    tracing::warn!(error = %e, "campaign history queue full: a transition is not recorded");
                }
            }
        }
    }
}

/// Says every third of a lease that this node is alive, and tells the core how many nodes are (nodes silent for a
/// whole lease drop out), so each node takes a fair share of a campaign's limit.
async fn announce_node(
    store: Store,
    node: String,
    lease: Duration,
    clock: Clock,
    tx: mpsc::Sender<Msg>,
) {
    let every = clock.to_real(lease / 3).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.node_alive(&node, clock.now(), lease).await {
            Ok(n) => {
                if tx.send(Msg::Input(Input::Nodes(n))).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot update the node registry"),
        }
    }
}

/// Writes campaign transitions to the store in the order they happened (retrying a failed write a few times).
async fn write_history(store: Store, mut rx: mpsc::Receiver<(String, Transition)>) {
    while let Some((campaign, transition)) = rx.recv().await {
        let Ok(entry) = serde_json::to_string(&transition) else {
            continue;
        };
        for attempt in 0..5u32 {
            match store.push_history(&campaign, &entry).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(campaign, error = %e, attempt, "writing the campaign history failed");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
    }
}

/// Expired leases of other nodes whose calls are still up on a switch: taken over for this node (with an ESL
/// filter for the dead node's events on every switch, set before looking, so the call's end is heard), and
/// returned as claims to adopt.
async fn take_over_live_calls(
    store: &Store,
    clients: &[Client],
    campaign: &str,
    node: &str,
    lease: Duration,
    clock: Clock,
) -> Result<Vec<crate::store::Claim>, crate::store::StoreError> {
    let now = clock.now();
    let expired = store.expired_leases(campaign, now, 1000).await?;
    let mut taken = Vec::new();
    let mut listening: Vec<String> = Vec::new();
    for lease_of in expired.iter().filter(|l| l.node != node) {
        if !listening.contains(&lease_of.node) {
            match subscription::node_filter(&lease_of.node) {
                Ok(f) => {
                    for c in clients {
                        let _ = c.filter(&f.header, &f.value).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen to a vanished node's calls"),
            }
            listening.push(lease_of.node.clone());
        }
        let mut up = false;
        for c in clients {
            if uuid_exists(c, lease_of.attempt_id).await == Some(true) {
                up = true;
                break;
            }
        }
        if !up {
            continue;
        }
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        if store
            .take_over(
                campaign,
                lease_of.attempt_id,
                &lease_of.node,
                node,
                until,
                now,
            )
            .await?
        {
            tracing::info!(campaign, attempt = %lease_of.attempt_id, from = lease_of.node, "taking over a live call of a vanished node");
            taken.push(lease_of.attempt_id);
        }
    }
    if taken.is_empty() {
        return Ok(Vec::new());
    }
    let claims = store.held_claims(campaign, node, lease, now).await?;
    Ok(claims
        .into_iter()
        .filter(|c| taken.contains(&c.attempt_id))
        .collect())
}

/// `uuid_exists` on one switch: `None` when it could not be answered.
async fn uuid_exists(client: &Client, attempt: AttemptId) -> Option<bool> {
    let asked = tokio::time::timeout(
        Duration::from_secs(5),
        client.api_text(&format!("uuid_exists {attempt}")),
    )
    .await;
    match asked {
        Ok(Ok(text)) => Some(text.trim() == "true"),
        Ok(Err(e)) => {
            tracing::warn!(%attempt, error = %e, "uuid_exists failed");
            None
        }
        Err(_) => {
            tracing::warn!(%attempt, "uuid_exists timed out");
            None
        }
    }
}

/// Maps a channel event to the core's input (None for events the core does not need).
pub fn event_input(e: &Event) -> Option<Input> {
    let name = e.name()?;
    if name == "BACKGROUND_JOB" {
        let job = e.job_uuid()?.parse().ok()?;
        let body = e.body_text().map(|b| b.into_owned()).unwrap_or_default();
        return Some(Input::JobResult { job, body });
    }
    let uuid: Uuid = e.unique_id()?.parse().ok()?;
    match name {
        "CHANNEL_CREATE" => Some(Input::ChannelSeen { uuid }),
        "CHANNEL_ANSWER" => Some(Input::Answered { uuid }),
        "CHANNEL_HANGUP" if e.get("Channel-State") == Some("CS_INIT") => {
            Some(Input::NeverRouted { uuid })
        }
        "CHANNEL_HANGUP_COMPLETE" => {
            let cause = e.hangup_cause().unwrap_or("NORMAL_UNSPECIFIED").to_owned();
            let billsec = e
                .variable("billsec")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let answered = e
                .variable("answer_epoch")
                .is_some_and(|v| v != "0" && !v.is_empty());
            let talk_ms = e
                .variable("billmsec")
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::from(billsec) * 1000);
            Some(Input::Hangup {
                uuid,
                cause,
                answered,
                billsec,
                talk_ms,
            })
        }
        _ => None,
    }
}

async fn switch_task(
    i: usize,
    sw: SwitchEndpoint,
    node: String,
    stall_warn: Duration,
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
) {
    let subscription = match subscription::for_node(&node) {
        Ok(s) => s,
        Err(e) => {
            // Checked at start-up; a task that cannot subscribe ends, and the supervisor stops the engine.
            tracing::error!(switch = sw.name, error = %e, "cannot subscribe");
            return;
        }
    };
    let mut backoff = Duration::from_millis(100);
    let (client, mut events) = loop {
        let mut cfg = ClientConfig::new(sw.addr.clone(), sw.password.clone());
        cfg.event_capacity = 65_536;
        match Client::connect(cfg).await {
            Ok(pair) => break pair,
            Err(e) => {
                tracing::warn!(switch = sw.name, error = %e, "cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                if tx.is_closed() {
                    return;
                }
            }
        }
    };
    // Only this node's calls (and the callflows') reach us, not every channel of a shared switch.
    if let Err(e) = subscription.apply(&client).await {
        tracing::error!(switch = sw.name, error = %e, "cannot subscribe to events");
    }
    lock(&shared.clients)[i] = Some(client.clone());
    if !send_limits(i, &sw, &client, &tx).await {
        return;
    }
    let _ = tx.send(Msg::Input(Input::SwitchUp(i))).await;
    tracing::info!(switch = sw.name, addr = sw.addr, "switch connected");
    let mut stall = StallWatch::new(stall_warn);
    let mut health_tick = tokio::time::interval(Duration::from_secs(1));
    health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ev = tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => ev,
                None => return,
            },
            _ = health_tick.tick() => {
                // A switch that answers nothing for switch_stall_warn_sec is logged and shown in metrics.
                let health = client.health();
                stall.observe(&health);
                health.record_metrics(stall_warn);
                continue;
            }
        };
        let input = match ev {
            // The first connection was reported above, before any call: only a reconnect asks about the calls.
            ClientEvent::Connected { generation } if generation <= 1 => None,
            ClientEvent::Connected { .. } => {
                // The switch may have restarted with other limits.
                if !send_limits(i, &sw, &client, &tx).await {
                    return;
                }
                Some(Input::SwitchUp(i))
            }
            ClientEvent::Disconnected { .. } => Some(Input::SwitchDown(i)),
            ClientEvent::Event(e) => {
                if let Some(uuid) = e.unique_id().and_then(|u| u.parse::<Uuid>().ok()) {
                    let flow = lock(&shared.flows).get(&uuid).cloned();
                    if let Some(flow) = flow {
                        let _ = flow.try_send(e.clone());
                    }
                }
                event_input(&e)
            }
            ClientEvent::Frame(_) => None,
        };
        if let Some(input) = input
            && tx.send(Msg::Input(input)).await.is_err()
        {
            return;
        }
    }
}

/// Reads the switch's limits when the configuration leaves any unset, and tells the core; false once the engine
/// stopped.
async fn send_limits(
    i: usize,
    sw: &SwitchEndpoint,
    client: &Client,
    tx: &mpsc::Sender<Msg>,
) -> bool {
    if sw.configured_limits().is_some() {
        return true;
    }
    let limits = resolve_limits(sw, client).await;
    tx.send(Msg::Input(Input::SwitchLimits { switch: i, limits }))
        .await
        .is_ok()
}
