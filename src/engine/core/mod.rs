//! The engine core: a pure state machine that decides what to dial, and what every call's end means.
//!
//! Like quinn-proto, it does no IO and reads no clock: the shell feeds it [`Input`]s with the current time and
//! carries out the [`Action`]s it returns (store operations, ESL commands), feeding the answers back as inputs.
//! Tests drive it on virtual time. It is split by concern, as quinn-proto splits its connection:
//! - [`campaigns`](self::campaigns): each campaign's run state — edits applied in flight, claims paced under the
//!   campaign's `limit`, its CPS bucket and a fair share of the switches' free sessions, leases, states, drain;
//! - [`routing`](self::routing): gateway and switch choice; gateways are known **by name**, so an edit that adds,
//!   removes, reorders or renames gateways never moves a call's slot to another gateway; each gateway has a
//!   circuit breaker that local failures (trunk or switch faults) open;
//! - [`calls`](self::calls): one attempt's life — job, answer, hangup, callflow, classification (SPEC §4),
//!   completion (retried with back-off, then given up and reported), reconciliation with `uuid_exists`. Every
//!   tracked call has a deadline in every state, so none can stay active forever;
//! - [`adoption`](self::adoption): calls of an earlier run or of a vanished node tracked again; one that ended
//!   unobserved is recorded from the hangup record its `api_hangup_hook` left on the switch.
//!
//! A call keeps the campaign version it was placed with (its causes, callflow and gateways), so an edit never
//! changes how a call in progress is judged.

mod adoption;
mod agents;
mod amd;
mod caller_ids;
mod calls;
mod campaigns;
mod routing;

use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::originate::Originate;
use super::state::{CampaignState, Transition};
use crate::campaign::config::ValidCampaign;
pub use crate::engine::hangup_record::HangupRecord;
use crate::store::{AttemptId, AttemptResult, Claim, ClaimBatch, CompleteOutcome, QueuePolicy};

pub use crate::engine::switch_info::SwitchLimits;
pub use agents::{
    ABANDONED_CAUSE, AGENT_EXPORT_COLUMNS, AgentCall, AgentOutcome, AgentPhase, AgentRelease,
    AgentReservation, PacerRun, agent_export_cells, is_safe_dial_string,
};
pub use amd::{
    AMD_EXPORT_COLUMNS, AmdCall, AmdCounts, AmdPhase, AmdResult, AnswerKind, ENGINE_TIMEOUT_CAUSE,
    MACHINE_HANGUP_CAUSE, amd_export_cells,
};
pub use caller_ids::CallerIdCount;
pub use calls::{Call, CallflowState, Decided, HangupFacts};
use campaigns::CampaignRun;
use routing::SwitchState;

/// Cause of an attempt whose end was never seen and whose channel is gone (the store's, which counts it in
/// `lost`).
pub const LOST_CAUSE: &str = crate::store::LOST_ATTEMPT_CAUSE;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// This engine node's id (leases are held in its name).
    pub node: String,
    /// Lease of a claimed attempt; renewed every third of it while the call lasts.
    pub lease: Duration,
    /// Most members asked for in one claim.
    pub claim_batch: u32,
    /// Longest back-off between claims of a campaign whose queue had nothing due.
    pub idle_poll_max: Duration,
    /// How long after `originate_timeout` an unanswered originate may stay silent before it is reconciled.
    pub originate_grace: Duration,
    /// How long the core waits for a running callflow to report after the hangup.
    pub callflow_grace: Duration,
    /// How long an answered call goes without a look at the switch (`uuid_exists`): a call whose hangup was
    /// missed is found at the latest this long after its answer (`max_call_sec`).
    pub max_call: Duration,
    /// How long a `uuid_exists` (or the store's answer to a completion) may stay unanswered before it is asked
    /// again. A safety net: the shell answers every such request within its own (real-time) timeout, so this is
    /// long enough that a sped-up clock cannot outrun a slow but healthy switch or store.
    pub check_timeout: Duration,
    /// Unanswered or failed `uuid_exists` in a row after which the call is settled as lost.
    pub max_check_failures: u32,
    /// Times the store may refuse a result before it is given up and reported as failed.
    pub max_store_retries: u32,
    /// A switch disconnected this long has its calls settled as lost and their slots freed
    /// (`switch_lost_after_sec`).
    pub switch_lost_after: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            node: "node-1".into(),
            lease: Duration::from_secs(60),
            claim_batch: 100,
            idle_poll_max: Duration::from_secs(2),
            originate_grace: Duration::from_secs(30),
            callflow_grace: Duration::from_secs(5),
            max_call: Duration::from_secs(4 * 3600),
            check_timeout: Duration::from_secs(300),
            max_check_failures: 5,
            max_store_retries: 8,
            switch_lost_after: Duration::from_secs(120),
        }
    }
}

/// A FreeSWITCH node as the core sees it.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    pub name: String,
    /// Its `max_sessions` and `sessions_per_second` (the core paces at one less: FreeSWITCH's own counter lets 29
    /// of 30 by). `None`: not known yet, read from the switch at connect ([`Input::SwitchLimits`]); until then
    /// the switch takes no call.
    pub limits: Option<SwitchLimits>,
    /// Sessions one call uses on this switch (a `loopback/` call takes two: its a- and b-leg).
    pub sessions_per_call: u32,
}

/// What the shell tells the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// A campaign to run (or its new configuration). Starts idle; `Run` starts it.
    Upsert(Arc<ValidCampaign>),
    /// The campaign was deleted: it places no new call and is forgotten once its calls are over.
    Remove(String),
    /// Operator commands.
    Run(String),
    Stop(String),
    /// New members were added: claim again now.
    Wake(String),
    /// The process is shutting down: claim nothing more; calls in progress finish (see [`Core::is_drained`]).
    Drain,
    /// Attempts this node held before it restarted (its leases in the store): track them again. Each is looked
    /// for on the switches ([`Action::Locate`]); a call still up finishes with its real outcome.
    Adopt {
        campaign: String,
        claims: Vec<Claim>,
    },
    /// The answer to [`Action::Locate`]: the switch the channel is up on, `None` when no switch has it; or, when
    /// the channel is gone but a switch kept its hangup record (`engine::hangup_record`), that switch and the
    /// record.
    Located {
        attempt: AttemptId,
        switch: Option<usize>,
        ended: Option<HangupRecord>,
    },
    /// The answer to [`Action::Claim`].
    Claimed {
        campaign: String,
        batch: ClaimBatch,
    },
    /// [`Action::Claim`] failed (store error): retry later.
    ClaimFailed {
        campaign: String,
        error: String,
    },
    /// The answer to [`Action::FindOrphans`]: every attempt this node holds in the campaign. Those it does not
    /// track were claimed by a claim whose reply was lost: they are released, uncounted.
    Orphans {
        campaign: String,
        held: Vec<Claim>,
    },
    /// [`Action::Originate`] could not be carried out. `sent` says whether the command may have reached the
    /// switch (connection lost after the write): then the call is reconciled, else the claim is released.
    OriginateFailed {
        attempt: AttemptId,
        sent: bool,
        error: String,
    },
    /// The shell could not take a shared gateway slot or token for this attempt.
    GatewayBusy {
        attempt: AttemptId,
    },
    /// The store's count of a caller ID's calls today (after the shell took one, or was refused one).
    CallerIdUsed {
        number: String,
        used_today: u32,
    },
    /// The store refused the attempt's caller ID (its daily cap was reached by now, or the store failed): the
    /// call was not placed.
    CallerIdRefused {
        attempt: AttemptId,
    },
    /// A BACKGROUND_JOB for one of our Job-UUIDs: `+OK <uuid>` or `-ERR <CAUSE>`.
    JobResult {
        job: Uuid,
        body: String,
    },
    /// Any channel event for the uuid (CHANNEL_CREATE and the like): the channel exists.
    ChannelSeen {
        uuid: Uuid,
    },
    /// CHANNEL_ANSWER.
    Answered {
        uuid: Uuid,
    },
    /// CHANNEL_HANGUP of a channel still in CS_INIT: its originate never got to routing (a loopback call whose
    /// b-leg session the switch refused waits there until originate_timeout, then fails NO_ANSWER). Ours: Minus.
    NeverRouted {
        uuid: Uuid,
    },
    /// CHANNEL_HANGUP_COMPLETE.
    Hangup {
        uuid: Uuid,
        cause: String,
        answered: bool,
        billsec: u32,
        /// `variable_billmsec`: the talk time `min_success_duration_sec` is judged on (`billsec` subtracts
        /// whole-second epochs: a 9.6 s call can bill 10 s).
        talk_ms: u64,
    },
    /// The callflow of a call ended; `result` is its `result {success}` if it ran one, `note` its summary
    /// (recorded with the attempt).
    CallflowDone {
        uuid: Uuid,
        result: Option<bool>,
        error: Option<String>,
        note: Option<String>,
    },
    /// The answer to [`Action::Complete`].
    Completed {
        attempt: AttemptId,
        outcome: Result<CompleteOutcome, String>,
    },
    /// The answer to [`Action::CheckExists`]; for a channel that is gone, the hangup record the switch kept, if
    /// any.
    Exists {
        attempt: AttemptId,
        exists: bool,
        ended: Option<HangupRecord>,
    },
    /// [`Action::CheckExists`] could not be answered (the command failed or timed out).
    CheckFailed {
        attempt: AttemptId,
    },
    /// Attempts the store says are no longer ours. `hang_up`: terminated through the API (or recovered as lost:
    /// their channel was gone anyway) — drop and hang up. `handed_over`: another node holds them now (it took
    /// over a call it found up) — drop without touching the call.
    Revoked {
        hang_up: Vec<AttemptId>,
        handed_over: Vec<AttemptId>,
    },
    /// The answer to [`Action::CheckExhausted`]: members that may still be called.
    QueueState {
        campaign: String,
        waiting: u64,
    },
    /// How many engine nodes are alive (this one included), from the store's node registry.
    Nodes(u32),
    /// The answer to [`Action::ReserveAgent`]: the agent held for the call, `None` when no agent is free (or the
    /// store failed).
    AgentReserved {
        attempt: AttemptId,
        reservation: Option<AgentReservation>,
    },
    /// The answer to [`Action::Bridge`]: `ok` when `uuid_bridge` answered `+OK`.
    Bridged {
        attempt: AttemptId,
        ok: bool,
    },
    /// The store released these reservations when their agent took a call on another line: their member legs
    /// still ringing are cancelled.
    AgentSiblings {
        reservations: Vec<Uuid>,
    },
    /// The answer to [`Action::AdoptAgents`]: the reservations the store handed to this node.
    AgentsAdopted {
        attempts: Vec<AttemptId>,
        reservations: Vec<crate::agents::AdoptedReservation>,
    },
    /// The answer to [`Action::CountAgents`]: the team's agents now (`None`: the store failed) and the
    /// campaign's rolling 30-day abandonment rate from its compliance record (`None`: no live answer recorded).
    AgentCounts {
        campaign: String,
        counts: Option<crate::agents::pacer::TeamSnapshot>,
        abandon_30d_pct: Option<f64>,
    },
    /// A preview's decision by the agent.
    PreviewDecision {
        attempt: AttemptId,
        accept: bool,
    },
    /// The agent's result for a call (the result callback).
    AgentResult {
        attempt: AttemptId,
        outcome: AgentOutcome,
    },
    /// A switch connected (again) or was lost.
    SwitchUp(usize),
    SwitchDown(usize),
    /// The switch's session limits as read from it at connect (config values, where set, already applied).
    SwitchLimits {
        switch: usize,
        limits: SwitchLimits,
    },
    /// The AMD decision on a call: `amd_result` (`None`: no decision, e.g. `CANCEL`) and `amd_cause`, from the
    /// blocking `amd`'s CHANNEL_EXECUTE_COMPLETE or the non-blocking variant's `CUSTOM amd::info`.
    AmdResult {
        uuid: Uuid,
        result: Option<AmdResult>,
        cause: Option<String>,
    },
    /// `CUSTOM avmd::beep` on a call: the voicemail's beep.
    AvmdBeep {
        uuid: Uuid,
    },
    /// A `playback` on a call completed with `Application-Response: FILE PLAYED` (the file played to its end).
    PlaybackPlayed {
        uuid: Uuid,
        file: String,
    },
}

/// What the core asks the shell to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Claim up to `max` members of the campaign (`store.claim`, after the shared CPS bucket).
    Claim { campaign: String, max: u32 },
    /// `bgapi originate <args>` with `Job-UUID: job` on `switch`, after taking the gateway's shared slot
    /// (report [`Input::GatewayBusy`] if there is none).
    Originate {
        campaign: String,
        switch: usize,
        attempt: AttemptId,
        job: Uuid,
        gateway: String,
        gateway_limit: Option<u32>,
        /// The caller ID to count in the store before the originate is sent (report
        /// [`Input::CallerIdUsed`], and [`Input::CallerIdRefused`] if it is refused).
        caller_id: Option<CallerIdCount>,
        originate: Originate,
    },
    /// Undo a claim without counting it; the member is due again not before `not_before`.
    Release {
        campaign: String,
        attempt: AttemptId,
        member: crate::store::MemberId,
        not_before: Option<DateTime<Utc>>,
    },
    /// Apply the attempt's result in the store (and free its gateway slot). `version` is the campaign as the
    /// store must apply it (its queue policy and calendar).
    Complete {
        campaign: String,
        version: Arc<ValidCampaign>,
        gateway: Option<String>,
        /// The caller ID the call presented (for its answer-rate figures).
        caller_id: Option<String>,
        result: AttemptResult,
    },
    /// The store refused the result `max_store_retries` times: it is given up (the member stays in its call
    /// until its lease is recovered). Report it (log, metric, API).
    ResultFailed {
        campaign: String,
        result: AttemptResult,
        reason: String,
    },
    /// Run the callflow of `version` (the campaign as the call was placed) on this answered call.
    StartCallflow {
        campaign: String,
        version: Arc<ValidCampaign>,
        switch: usize,
        attempt: AttemptId,
    },
    /// Hang the channel up (`uuid_kill <uuid> <cause>`).
    Kill {
        switch: usize,
        uuid: Uuid,
        cause: String,
    },
    /// `uuid_exists <uuid>` on the switch.
    CheckExists { switch: usize, attempt: AttemptId },
    /// Find the switch an adopted call is up on (`uuid_exists` on each, then its hangup record on each);
    /// answer with [`Input::Located`].
    Locate { attempt: AttemptId },
    /// The call's result is recorded: delete its hangup record on the switch (`hash delete`).
    ForgetHangupRecord { switch: usize, attempt: AttemptId },
    /// A claim's reply was lost (the store may have claimed members for it): list the attempts this node holds in
    /// the campaign ([`Input::Orphans`]). No claim of the campaign is sent until the answer.
    FindOrphans { campaign: String },
    /// Count the campaign's members that may still be called.
    CheckExhausted { campaign: String },
    /// Renew the leases of these calls.
    Renew {
        campaign: String,
        attempts: Vec<AttemptId>,
    },
    /// Recover attempts of vanished nodes.
    Recover { campaign: String },
    /// The call is forgotten: drop whatever the shell keeps for it (its slot, if nothing released it yet).
    Forget { attempt: AttemptId },
    /// Reserve an agent of the campaign's team for the call (answer [`Input::AgentReserved`]); agents that
    /// already missed this member are excluded.
    ReserveAgent {
        campaign: String,
        attempt: AttemptId,
        member: crate::store::MemberId,
        settings: crate::campaign::agents::AgentSettings,
        exclude: Vec<String>,
    },
    /// The reserved agent's leg `leg` is being called (its state: offering; the leg is kept with the reservation
    /// so a node adopting the call after a restart finds it).
    AgentOffered { reservation: Uuid, leg: Uuid },
    /// Calls of an agent campaign were adopted: hand their reservations to this node (answer
    /// [`Input::AgentsAdopted`]).
    AdoptAgents {
        campaign: String,
        attempts: Vec<AttemptId>,
    },
    /// The agent and the member are joined (its state: talking); the store releases the agent's other
    /// reservations and the shell reports them ([`Input::AgentSiblings`]).
    AgentTalking {
        attempt: AttemptId,
        reservation: Uuid,
    },
    /// Give a reservation back (`settings`: the team rules its wrap-up and no-answer counting follow).
    ReleaseAgent {
        reservation: Uuid,
        agent: String,
        how: AgentRelease,
        settings: Option<crate::campaign::agents::AgentSettings>,
    },
    /// `bgapi originate` of an agent's leg (`&park()`), with `Job-UUID: job`.
    OriginateAgent {
        switch: usize,
        attempt: AttemptId,
        leg: Uuid,
        job: Uuid,
        originate: Originate,
    },
    /// Show the member to the agent (preview): a `dlr::offer` CUSTOM event on the agent's channel.
    Offer {
        switch: usize,
        agent_leg: Uuid,
        attempt: AttemptId,
        campaign: String,
        member: crate::store::MemberId,
        name: String,
        number: String,
        variables: serde_json::Map<String, serde_json::Value>,
    },
    /// `uuid_bridge <attempt> <agent>` (answer [`Input::Bridged`]).
    Bridge {
        switch: usize,
        attempt: AttemptId,
        agent: Uuid,
    },
    /// No agent in time: play `message` to the member and hang up (`uuid_broadcast … playback!NORMAL_CLEARING::`),
    /// or hang up at once without one.
    Abandon {
        switch: usize,
        uuid: Uuid,
        message: Option<String>,
    },
    /// Count a predictive campaign's team (free, busy, in wrap-up) and read its rolling 30-day abandonment rate
    /// (answer [`Input::AgentCounts`]).
    CountAgents { campaign: String, team: String },
    /// Add an answered agent call's counts to the campaign's compliance record for `day`.
    RecordCompliance {
        campaign: String,
        day: chrono::NaiveDate,
        counts: crate::agents::compliance::DayCounts,
    },
    /// The member's next call goes to `agent` first until `until` (an agent's callback).
    StickyAgent {
        campaign: String,
        member: crate::store::MemberId,
        agent: String,
        until: DateTime<Utc>,
    },
    /// End the member once its current attempt is applied (the agent asked to stop calling it).
    StopMember {
        campaign: String,
        member: crate::store::MemberId,
    },
    /// Start answering-machine detection: `sendmsg <uuid>` execute `amd <args>`.
    StartAmd {
        switch: usize,
        uuid: Uuid,
        args: String,
    },
    /// Start beep detection on a machine: `sendmsg <uuid>` execute `avmd_start`.
    StartBeepDetection { switch: usize, uuid: Uuid },
    /// The voicemail drop: play `message` and hang up after it (`uuid_broadcast … playback!NORMAL_CLEARING::`).
    LeaveMessage {
        switch: usize,
        uuid: Uuid,
        message: String,
    },
    /// A campaign state change, to record in its history.
    History {
        campaign: String,
        transition: Transition,
    },
}

/// The engine core. See the module documentation.
#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    campaigns: BTreeMap<String, CampaignRun>,
    calls: HashMap<AttemptId, Call>,
    jobs: HashMap<Uuid, AttemptId>,
    /// Agent legs (their channel uuid) and their originate jobs, to the attempt they serve.
    agent_legs: agents::LegIndex,
    switches: Vec<SwitchState>,
    out: Vec<Action>,
    /// Every call deadline ever set, earliest first, so time costs O(log n) per call instead of a scan of every
    /// call on each input. An entry whose call is gone or whose deadline changed since is skipped when it pops.
    deadlines: BinaryHeap<Reverse<(DateTime<Utc>, AttemptId)>>,
    /// Shutting down: no new claims.
    draining: bool,
    /// Live engine nodes sharing the store (this one included): each takes a fair share of a campaign's limit.
    nodes: u32,
    /// Per-attempt lines (debug) and a periodic summary per campaign (info).
    attempt_log: crate::engine::attempt_log::AttemptLog,
    next_summary: DateTime<Utc>,
    /// When the core started (a switch never connected counts as down since then).
    started_at: DateTime<Utc>,
    /// Each caller ID's calls today as the store last said (see `caller_ids`).
    caller_id_usage: caller_ids::UsageSnapshot,
    /// Per campaign: this node's answers by AMD result and messages left (forgotten with the campaign).
    amd_counts: BTreeMap<String, AmdCounts>,
}

/// How often the attempt summary is logged.
const SUMMARY_EVERY: chrono::Duration = chrono::Duration::seconds(60);

fn dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The store policy of a campaign.
pub fn policy_of(v: &ValidCampaign) -> QueuePolicy {
    let c = v.config();
    QueuePolicy {
        limit: c.limit,
        max_tries: c.max_tries,
        wait_between_retries_sec: u32::try_from(c.wait_between_retries_sec).unwrap_or(u32::MAX),
        member_order: c.member_order,
        number_order: c.number_order,
        tries_per_number: c.tries_per_number,
        lost_attempt: c.lost_attempt,
        retry_rules: c.retry_rules.clone(),
    }
}

impl Core {
    pub fn new(cfg: CoreConfig, switches: Vec<SwitchConfig>, now: DateTime<Utc>) -> Core {
        Core {
            cfg,
            campaigns: BTreeMap::new(),
            calls: HashMap::new(),
            jobs: HashMap::new(),
            agent_legs: agents::LegIndex::default(),
            switches: switches.into_iter().map(SwitchState::new).collect(),
            out: Vec::new(),
            deadlines: BinaryHeap::new(),
            draining: false,
            nodes: 1,
            attempt_log: crate::engine::attempt_log::AttemptLog::new(Default::default(), now),
            next_summary: now + SUMMARY_EVERY,
            started_at: now,
            caller_id_usage: Default::default(),
            amd_counts: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// The campaign's validated configuration (its latest version).
    pub fn campaign(&self, id: &str) -> Option<&Arc<ValidCampaign>> {
        self.campaigns.get(id).map(|c| &c.valid)
    }

    /// The store policy of a campaign.
    pub fn policy(&self, id: &str) -> Option<&QueuePolicy> {
        self.campaigns.get(id).map(|c| &c.policy)
    }

    pub fn state(&self, id: &str) -> Option<CampaignState> {
        self.campaigns.get(id).map(|c| c.sm.state())
    }

    /// Campaigns the core knows.
    pub fn campaign_ids(&self) -> impl Iterator<Item = &str> {
        self.campaigns.keys().map(String::as_str)
    }

    /// Calls in flight on this node.
    pub fn calls(&self) -> &HashMap<AttemptId, Call> {
        &self.calls
    }

    /// This node's answers of a campaign by AMD result, and the messages it left.
    pub fn amd_counts(&self, id: &str) -> AmdCounts {
        self.amd_counts.get(id).copied().unwrap_or_default()
    }

    /// Calls in flight of one campaign.
    pub fn active(&self, id: &str) -> u32 {
        self.campaigns.get(id).map_or(0, |c| c.active)
    }

    /// Calls in flight on one gateway of a campaign (by name).
    pub fn gateway_active(&self, id: &str, gateway: &str) -> u32 {
        self.campaigns
            .get(id)
            .and_then(|c| c.gateways.get(gateway))
            .map_or(0, |g| g.active)
    }

    /// Whether the gateway's circuit breaker keeps new calls off it now.
    pub fn gateway_paused(&self, id: &str, gateway: &str, now: DateTime<Utc>) -> bool {
        self.campaigns
            .get(id)
            .and_then(|c| c.gateways.get(gateway))
            .is_some_and(|g| !g.breaker.admits(now))
    }

    /// Draining and no call left in flight: the process may exit.
    pub fn is_drained(&self) -> bool {
        self.draining && self.calls.is_empty()
    }

    /// Feeds one input; returns the actions it caused (plus any that time made due).
    pub fn handle(&mut self, now: DateTime<Utc>, input: Input) -> Vec<Action> {
        self.on_input(now, input);
        self.poll_into(now);
        std::mem::take(&mut self.out)
    }

    /// Time passed: returns what became due.
    pub fn poll(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        self.poll_into(now);
        std::mem::take(&mut self.out)
    }

    /// The next instant at which [`poll`](Self::poll) has something to do, if any.
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        let mut next: Option<DateTime<Utc>> = None;
        let mut at = |t: DateTime<Utc>| next = Some(next.map_or(t, |n| n.min(t)));
        for c in self.campaigns.values() {
            if c.looks_for_members() && !self.draining && c.pending_claim.is_none() {
                at(c.next_claim_at);
            }
            if c.sm.state().is_active() {
                at(c.next_recover);
            }
            if c.active > 0 {
                at(c.next_renew);
            }
        }
        for s in &self.switches {
            if let Some(at_lost) = s.lost_at(dur(self.cfg.switch_lost_after)) {
                at(at_lost);
            }
        }
        // The earliest entry may be stale (its call gone or re-armed): an early wake-up that pops it.
        if let Some(Reverse((d, _))) = self.deadlines.peek() {
            at(*d);
        }
        next
    }

    fn on_input(&mut self, now: DateTime<Utc>, input: Input) {
        match input {
            Input::Upsert(valid) => self.upsert(now, valid),
            Input::Remove(id) => self.remove(now, &id),
            Input::Run(id) => self.run(now, &id),
            Input::Stop(id) => self.stop(now, &id),
            Input::Wake(id) => self.wake(now, &id),
            Input::Drain => self.drain(now),
            Input::Adopt { campaign, claims } => self.adopt(now, &campaign, claims),
            Input::Located {
                attempt,
                switch,
                ended,
            } => self.on_located(now, attempt, switch, ended),
            Input::Claimed { campaign, batch } => self.on_claimed(now, &campaign, batch),
            Input::ClaimFailed { campaign, error } => self.on_claim_failed(now, &campaign, &error),
            Input::Orphans { campaign, held } => self.on_orphans(now, &campaign, held),
            Input::OriginateFailed {
                attempt,
                sent,
                error,
            } => self.on_originate_failed(now, attempt, sent, &error),
            Input::GatewayBusy { attempt } => self.on_gateway_busy(now, attempt),
            Input::CallerIdUsed { number, used_today } => {
                self.on_caller_id_used(now, number, used_today)
            }
            Input::CallerIdRefused { attempt } => self.on_caller_id_refused(now, attempt),
            Input::JobResult { job, body } => self.on_job(now, job, &body),
            Input::AgentReserved {
                attempt,
                reservation,
            } => self.on_agent_reserved(now, attempt, reservation),
            Input::Bridged { attempt, ok } => self.on_bridged(now, attempt, ok),
            Input::AgentSiblings { reservations } => self.on_agent_siblings(reservations),
            Input::AgentsAdopted {
                attempts,
                reservations,
            } => self.on_agents_adopted(now, attempts, reservations),
            Input::AgentCounts {
                campaign,
                counts,
                abandon_30d_pct,
            } => self.on_agent_counts(now, &campaign, counts, abandon_30d_pct),
            Input::PreviewDecision { attempt, accept } => {
                self.on_preview_decision(now, attempt, accept)
            }
            Input::AgentResult { attempt, outcome } => self.on_agent_result(now, attempt, outcome),
            Input::ChannelSeen { uuid } => {
                if let Some(call) = self.calls.get_mut(&uuid) {
                    call.channel_seen = true;
                }
            }
            Input::Answered { uuid } => self.on_answered(now, uuid),
            Input::NeverRouted { uuid } => {
                if let Some(call) = self.calls.get_mut(&uuid) {
                    call.channel_seen = true;
                    call.never_routed = true;
                }
            }
            Input::Hangup {
                uuid,
                cause,
                answered,
                billsec,
                talk_ms,
            } => self.on_hangup(now, uuid, cause, answered, billsec, talk_ms),
            Input::CallflowDone {
                uuid,
                result,
                error,
                note,
            } => self.on_callflow_done(now, uuid, result, error, note),
            Input::Completed { attempt, outcome } => self.on_completed(now, attempt, outcome),
            Input::Exists {
                attempt,
                exists,
                ended,
            } => self.on_exists(now, attempt, exists, ended),
            Input::CheckFailed { attempt } => self.on_check_failed(now, attempt),
            Input::Revoked {
                hang_up,
                handed_over,
            } => self.on_revoked(now, hang_up, handed_over),
            Input::QueueState { campaign, waiting } => self.on_queue_state(now, &campaign, waiting),
            Input::Nodes(n) => {
                if n.max(1) != self.nodes {
                    tracing::info!(nodes = n, "engine nodes sharing the store");
                }
                self.nodes = n.max(1);
            }
            Input::AmdResult {
                uuid,
                result,
                cause,
            } => self.on_amd_result(now, uuid, result, cause),
            Input::AvmdBeep { uuid } => self.on_avmd_beep(now, uuid),
            Input::PlaybackPlayed { uuid, file } => self.on_playback_played(uuid, &file),
            Input::SwitchUp(i) => self.on_switch_up(now, i),
            Input::SwitchLimits { switch, limits } => self.on_switch_limits(switch, limits),
            Input::SwitchDown(i) => {
                if let Some(sw) = self.switches.get_mut(i) {
                    sw.disconnected(now);
                }
            }
        }
    }

    fn poll_into(&mut self, now: DateTime<Utc>) {
        self.poll_campaigns(now);
        self.poll_switches_lost(now);
        self.poll_deadlines(now);
        if now >= self.next_summary {
            self.next_summary = now + SUMMARY_EVERY;
            if let Some(summary) = self.attempt_log.take_summary(now) {
                summary.log();
            }
        }
    }

    /// Arms a call's deadline.
    fn arm(&mut self, attempt: AttemptId, at: DateTime<Utc>) {
        if let Some(call) = self.calls.get_mut(&attempt) {
            call.deadline = Some(at);
            self.deadlines.push(Reverse((at, attempt)));
        }
    }
}
