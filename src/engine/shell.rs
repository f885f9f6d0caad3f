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
use crate::campaign::config::ValidCampaign;
use crate::esl::Event;
use crate::esl::client::{Client, ClientConfig, ClientError, ClientEvent, EventFormat};
use crate::store::{AttemptId, Store};

/// How to reach one FreeSWITCH node.
#[derive(Debug, Clone)]
pub struct SwitchEndpoint {
    pub name: String,
    /// `host:port` of its event socket.
    pub addr: String,
    pub password: String,
    pub max_sessions: u32,
    pub sessions_per_second: u32,
    /// Sessions one call takes there (2 for `loopback/` calls).
    pub sessions_per_call: u32,
}

/// Everything the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub core: CoreConfig,
    pub switches: Vec<SwitchEndpoint>,
    pub clock: Clock,
}

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

struct Shared {
    clients: Mutex<Vec<Option<Client>>>,
    history: Mutex<HashMap<String, Vec<Transition>>>,
    flows: Mutex<HashMap<Uuid, mpsc::Sender<Event>>>,
    gateway_of: Mutex<HashMap<AttemptId, String>>,
}

/// A handle to a running engine. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    clock: Clock,
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
    /// Every state transition of the campaign seen by this engine.
    pub fn history(&self, campaign: &str) -> Vec<Transition> {
        lock(&self.shared.history)
            .get(campaign)
            .cloned()
            .unwrap_or_default()
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

/// Starts the engine: the core task and one connection task per switch.
pub fn start(
    cfg: EngineConfig,
    store: Store,
    callflow: Option<CallflowStarter>,
) -> (EngineHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Msg>(65_536);
    let shared = Arc::new(Shared {
        clients: Mutex::new(vec![None; cfg.switches.len()]),
        history: Mutex::new(HashMap::new()),
        flows: Mutex::new(HashMap::new()),
        gateway_of: Mutex::new(HashMap::new()),
    });
    let switches: Vec<SwitchConfig> = cfg
        .switches
        .iter()
        .map(|s| SwitchConfig {
            name: s.name.clone(),
            max_sessions: s.max_sessions,
            sessions_per_second: s.sessions_per_second,
            sessions_per_call: s.sessions_per_call,
        })
        .collect();
    let core = Core::new(cfg.core.clone(), switches, cfg.clock.now());
    for (i, sw) in cfg.switches.iter().enumerate() {
        tokio::spawn(switch_task(i, sw.clone(), tx.clone(), shared.clone()));
    }
    let handle = EngineHandle {
        tx: tx.clone(),
        shared: shared.clone(),
        clock: cfg.clock,
    };
    let (completions, completions_rx) = mpsc::unbounded_channel();
    tokio::spawn(completer::run(
        store.clone(),
        cfg.clock,
        completions_rx,
        tx.clone(),
    ));
    let runner = Runner {
        core,
        store,
        clock: cfg.clock,
        tx,
        shared,
        campaigns: HashMap::new(),
        callflow,
        completions,
    };
    let join = tokio::spawn(runner.run(rx));
    (handle, join)
}

struct Runner {
    core: Core,
    store: Store,
    clock: Clock,
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    campaigns: HashMap<String, Arc<ValidCampaign>>,
    callflow: Option<CallflowStarter>,
    /// Results on their way to the store, batched by [`completer`].
    completions: mpsc::UnboundedSender<Completion>,
}

impl Runner {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            let sleep = self
                .core
                .next_wakeup()
                .map(|w| self.clock.real_until(w))
                .unwrap_or(Duration::from_secs(3600));
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
                if let Input::Upsert(v) = &input {
                    self.campaigns.insert(v.id().to_owned(), v.clone());
                }
                let actions = self.core.handle(self.clock.now(), input);
                self.execute(actions);
                true
            }
            Msg::State(id, reply) => {
                let _ = reply.send(self.core.state(&id).map(|s| (s, self.core.active(&id))));
                true
            }
            Msg::Shutdown(done) => {
                let _ = done.send(());
                false
            }
        }
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
                campaign,
                gateway: _,
                result,
            } => {
                let Some(valid) = self.campaigns.get(&campaign).cloned() else {
                    return;
                };
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
                campaign,
                switch,
                attempt,
            } => {
                let (Some(valid), Some(client), Some(starter)) = (
                    self.campaigns.get(&campaign).cloned(),
                    self.client(switch),
                    self.callflow.clone(),
                ) else {
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
                    let Some(client) = client else { return };
                    if client.wait_connected().await.is_err() {
                        return;
                    }
                    match client.api_text(&format!("uuid_exists {attempt}")).await {
                        Ok(text) => {
                            let exists = text.trim() == "true";
                            let _ = tx.send(Msg::Input(Input::Exists { attempt, exists })).await;
                        }
                        Err(e) => {
                            tracing::warn!(%attempt, error = %e, "uuid_exists failed; will retry on reconnect")
                        }
                    }
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
                            let _ = tx
                                .send(Msg::Input(Input::Revoked { attempts: revoked }))
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
                    let policy = policy_of(&valid);
                    match store
                        .recover_expired(&campaign, &policy, valid.calendar(), clock.now(), 1000)
                        .await
                    {
                        Ok(rec) if !rec.is_empty() => {
                            tracing::info!(
                                campaign,
                                recovered = rec.len(),
                                "recovered attempts of vanished nodes"
                            );
                            // The vanished node's calls may still be up on a switch: hang them up, so a member
                            // is never called again while its first call still runs.
                            for r in &rec {
                                for client in &clients {
                                    let _ = client
                                        .api(&format!("uuid_kill {} LOSE_RACE", r.attempt_id))
                                        .await;
                                }
                            }
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
                lock(&self.shared.history)
                    .entry(campaign)
                    .or_default()
                    .push(transition);
            }
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
        "CHANNEL_HANGUP_COMPLETE" => {
            let cause = e.hangup_cause().unwrap_or("NORMAL_UNSPECIFIED").to_owned();
            let billsec = e
                .variable("billsec")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let answered = e
                .variable("answer_epoch")
                .is_some_and(|v| v != "0" && !v.is_empty());
            Some(Input::Hangup {
                uuid,
                cause,
                answered,
                billsec,
            })
        }
        _ => None,
    }
}

async fn switch_task(i: usize, sw: SwitchEndpoint, tx: mpsc::Sender<Msg>, shared: Arc<Shared>) {
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
    if let Err(e) = client.event(EventFormat::Plain, SUBSCRIBED_EVENTS).await {
        tracing::error!(switch = sw.name, error = %e, "cannot subscribe to events");
    }
    lock(&shared.clients)[i] = Some(client.clone());
    let _ = tx.send(Msg::Input(Input::SwitchUp(i))).await;
    tracing::info!(switch = sw.name, addr = sw.addr, "switch connected");
    while let Some(ev) = events.recv().await {
        let input = match ev {
            ClientEvent::Connected { .. } => Some(Input::SwitchUp(i)),
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
