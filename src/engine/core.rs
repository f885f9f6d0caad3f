//! The engine core: a pure state machine that decides what to dial, and what every call's end means.
//!
//! Like quinn-proto, it does no IO and reads no clock: the shell feeds it [`Input`]s with the current time and
//! carries out the [`Action`]s it returns (store operations, ESL commands), feeding the answers back as inputs.
//! Tests drive it on virtual time. What it owns:
//! - **pacing**: a campaign asks the store for members only while it is running and has room under its `limit`,
//!   its local CPS bucket, and the connected switches' free sessions and `sessions_per_second`; when a claim comes
//!   back empty it backs off (100 ms doubling to [`CoreConfig::idle_poll_max`]), so an idle campaign costs nothing
//!   but a rare timer; new members or a `run` wake it at once;
//! - **routing**: each claimed number goes to the first enabled gateway whose pattern matches and that has local
//!   room (its own `limit` and `cps`, and not paused); the least-loaded connected switch takes the call;
//! - **tracking**: an attempt is matched by its id, which is the FreeSWITCH `origination_uuid` and `Unique-ID`;
//!   BACKGROUND_JOB `-ERR` ends it before any channel exists; `CHANNEL_ANSWER` and `CHANNEL_HANGUP_COMPLETE` carry
//!   the rest; the callflow's `result` overrides the cause class;
//! - **classification** (SPEC §4): the campaign's cause table and `min_success_duration_sec`; our own failures
//!   (a switch refusing a session for capacity, no gateway with room, a disconnected switch) are Minus and pause
//!   the switch or gateway with back-off;
//! - **exactly once**: an attempt is completed once; duplicated or late events for it change nothing;
//! - **reconciliation**: after a switch reconnects, every call on it is checked with `uuid_exists`; one that no
//!   longer exists and whose end we never saw counts as the campaign's `lost_attempt`;
//! - **campaign states** via [`StateMachine`], with history.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::originate::{self, Originate, OriginateSpec};
use super::pacing::TokenBucket;
use super::state::{CampaignState, StateInput, StateMachine, Transition};
use crate::campaign::causes::CauseClass;
use crate::campaign::config::ValidCampaign;
use crate::store::{AttemptId, AttemptResult, Claim, ClaimBatch, CompleteOutcome, QueuePolicy};

/// Cause recorded when the switch refused to create a session (capacity): FreeSWITCH's loopback and sofia
/// endpoints answer `-ERR DESTINATION_OUT_OF_ORDER` without ever creating the channel.
const CAPACITY_CAUSE: &str = "DESTINATION_OUT_OF_ORDER";
/// How often a sleeping campaign looks at its queue (members in other timezones may open earlier than the
/// calendar's own).
const SLEEP_POLL: ChronoDuration = ChronoDuration::seconds(30);
/// Cause of an attempt whose end was never seen and whose channel is gone.
pub const LOST_CAUSE: &str = "LOST_ATTEMPT";

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
        }
    }
}

/// A FreeSWITCH node as the core sees it.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    pub name: String,
    /// `max_sessions` of the switch.
    pub max_sessions: u32,
    /// `sessions_per_second` of the switch; the core paces at one less (FreeSWITCH's own bucket lets 29 of 30 by).
    pub sessions_per_second: u32,
    /// Sessions one call uses on this switch (a `loopback/` call takes two: its a- and b-leg).
    pub sessions_per_call: u32,
}

/// What the shell tells the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// A campaign to run (or its new configuration). Starts idle; `Run` starts it.
    Upsert(Arc<ValidCampaign>),
    /// Operator commands.
    Run(String),
    Stop(String),
    /// New members were added: claim again now.
    Wake(String),
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
    /// CHANNEL_HANGUP_COMPLETE.
    Hangup {
        uuid: Uuid,
        cause: String,
        answered: bool,
        billsec: u32,
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
    /// The answer to [`Action::CheckExists`].
    Exists {
        attempt: AttemptId,
        exists: bool,
    },
    /// Attempts the store says are no longer ours (terminated, recovered): drop and hang up their calls.
    Revoked {
        attempts: Vec<AttemptId>,
    },
    /// The answer to [`Action::CheckExhausted`]: members that may still be called.
    QueueState {
        campaign: String,
        waiting: u64,
    },
    /// A switch connected (again) or was lost.
    SwitchUp(usize),
    SwitchDown(usize),
}

/// What the core asks the shell to do.
#[derive(Debug, Clone, PartialEq)]
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
        originate: Originate,
    },
    /// Undo a claim without counting it; the member is due again not before `not_before`.
    Release {
        campaign: String,
        attempt: AttemptId,
        member: crate::store::MemberId,
        not_before: Option<DateTime<Utc>>,
    },
    /// Apply the attempt's result in the store (and free its gateway slot).
    Complete {
        campaign: String,
        gateway: Option<String>,
        result: AttemptResult,
    },
    /// Run the campaign's callflow on this answered call.
    StartCallflow {
        campaign: String,
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
    /// Count the campaign's members that may still be called.
    CheckExhausted { campaign: String },
    /// Renew the leases of these calls.
    Renew {
        campaign: String,
        attempts: Vec<AttemptId>,
    },
    /// Recover attempts of vanished nodes.
    Recover { campaign: String },
    /// A campaign state change, to record in its history.
    History {
        campaign: String,
        transition: Transition,
    },
}

/// One attempt in flight on this node.
#[derive(Debug, Clone)]
pub struct Call {
    pub campaign: String,
    pub claim: Claim,
    pub gateway: Option<usize>,
    pub switch: usize,
    pub job: Uuid,
    pub originated_at: DateTime<Utc>,
    pub channel_seen: bool,
    pub answered_at: Option<DateTime<Utc>>,
    pub hangup: Option<(String, bool, u32, DateTime<Utc>)>,
    pub callflow: CallflowState,
    /// The result was sent to the store; waiting for its answer.
    pub completing: bool,
    /// Waiting for `uuid_exists` after a reconnect or a silent originate.
    pub reconciling: bool,
    /// The result once decided (cause, class, talk seconds): re-sent as is if the store failed to take it.
    pub result: Option<(String, CauseClass, u32)>,
    /// The callflow's summary, recorded with the attempt.
    pub note: Option<String>,
    /// When the core looks at this call again if nothing happens.
    pub deadline: Option<DateTime<Utc>>,
}

/// Where a call's callflow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallflowState {
    None,
    Running,
    Done(Option<bool>),
}

#[derive(Debug)]
struct Camp {
    valid: Arc<ValidCampaign>,
    policy: QueuePolicy,
    sm: StateMachine,
    active: u32,
    claim_pending: bool,
    next_claim_at: DateTime<Utc>,
    idle_backoff: Duration,
    cps: Option<TokenBucket>,
    gw_active: Vec<u32>,
    gw_cps: Vec<Option<TokenBucket>>,
    gw_paused_until: Vec<Option<DateTime<Utc>>>,
    gw_fail_streak: Vec<u32>,
    next_renew: DateTime<Utc>,
    next_recover: DateTime<Utc>,
    exhausted_check_pending: bool,
}

#[derive(Debug)]
struct Sw {
    cfg: SwitchConfig,
    connected: bool,
    calls: u32,
    sps: TokenBucket,
    paused_until: Option<DateTime<Utc>>,
    fail_streak: u32,
}

/// The engine core. See the module documentation.
#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    campaigns: BTreeMap<String, Camp>,
    calls: HashMap<AttemptId, Call>,
    jobs: HashMap<Uuid, AttemptId>,
    switches: Vec<Sw>,
    out: Vec<Action>,
    /// Every call deadline ever set, earliest first, so time costs O(log n) per call instead of a scan of every
    /// call on each input. An entry whose call is gone or whose deadline changed since is skipped when it pops.
    deadlines: BinaryHeap<Reverse<(DateTime<Utc>, AttemptId)>>,
}

fn dur(d: Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
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
    }
}

impl Core {
    pub fn new(cfg: CoreConfig, switches: Vec<SwitchConfig>, now: DateTime<Utc>) -> Core {
        let switches = switches
            .into_iter()
            .map(|cfg| {
                let rate = f64::from(cfg.sessions_per_second.saturating_sub(1).max(1));
                Sw {
                    sps: TokenBucket::new(rate, rate, now),
                    cfg,
                    connected: false,
                    calls: 0,
                    paused_until: None,
                    fail_streak: 0,
                }
            })
            .collect();
        Core {
            cfg,
            campaigns: BTreeMap::new(),
            calls: HashMap::new(),
            jobs: HashMap::new(),
            switches,
            out: Vec::new(),
            deadlines: BinaryHeap::new(),
        }
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// The campaign's validated configuration.
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

    /// Calls in flight on this node.
    pub fn calls(&self) -> &HashMap<AttemptId, Call> {
        &self.calls
    }

    /// Calls in flight of one campaign.
    pub fn active(&self, id: &str) -> u32 {
        self.campaigns.get(id).map_or(0, |c| c.active)
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
            let looks = matches!(
                c.sm.state(),
                CampaignState::Running | CampaignState::Sleeping
            );
            if looks && !c.claim_pending {
                at(c.next_claim_at);
            }
            if c.sm.state().is_active() {
                at(c.next_recover);
            }
            if c.active > 0 {
                at(c.next_renew);
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
            Input::Run(id) => {
                if let Some(c) = self.campaigns.get_mut(&id) {
                    c.next_claim_at = now;
                    c.idle_backoff = Duration::from_millis(100);
                }
                self.state_input(now, &id, StateInput::Run);
            }
            Input::Stop(id) => self.state_input(now, &id, StateInput::Stop),
            Input::Wake(id) => {
                if let Some(c) = self.campaigns.get_mut(&id) {
                    c.next_claim_at = now;
                    c.idle_backoff = Duration::from_millis(100);
                }
                self.state_input(now, &id, StateInput::MembersAdded);
            }
            Input::Claimed { campaign, batch } => self.on_claimed(now, &campaign, batch),
            Input::ClaimFailed { campaign, error } => {
                tracing::warn!(campaign, error, "claim failed; retrying");
                if let Some(c) = self.campaigns.get_mut(&campaign) {
                    c.claim_pending = false;
                    c.next_claim_at = now + ChronoDuration::seconds(1);
                }
            }
            Input::OriginateFailed {
                attempt,
                sent,
                error,
            } => self.on_originate_failed(now, attempt, sent, &error),
            Input::GatewayBusy { attempt } => self.release_call(now, attempt, true),
            Input::JobResult { job, body } => self.on_job(now, job, &body),
            Input::ChannelSeen { uuid } => {
                if let Some(call) = self.calls.get_mut(&uuid) {
                    call.channel_seen = true;
                }
            }
            Input::Answered { uuid } => self.on_answered(now, uuid),
            Input::Hangup {
                uuid,
                cause,
                answered,
                billsec,
            } => self.on_hangup(now, uuid, cause, answered, billsec),
            Input::CallflowDone {
                uuid,
                result,
                error,
                note,
            } => {
                if let Some(call) = self.calls.get_mut(&uuid) {
                    if let Some(e) = error {
                        tracing::info!(attempt = %uuid, error = e, "callflow ended with an error");
                    }
                    call.callflow = CallflowState::Done(result);
                    call.note = note;
                    if call.hangup.is_some() {
                        self.finish(now, uuid);
                    }
                }
            }
            Input::Completed { attempt, outcome } => self.on_completed(now, attempt, outcome),
            Input::Exists { attempt, exists } => self.on_exists(now, attempt, exists),
            Input::Revoked { attempts } => {
                for a in attempts {
                    if let Some(call) = self.calls.get(&a)
                        && !call.completing
                    {
                        self.out.push(Action::Kill {
                            switch: call.switch,
                            uuid: a,
                            cause: "MANAGER_REQUEST".into(),
                        });
                        self.drop_call(now, a);
                    }
                }
            }
            Input::QueueState { campaign, waiting } => {
                if let Some(c) = self.campaigns.get_mut(&campaign) {
                    c.exhausted_check_pending = false;
                }
                if waiting == 0 && self.active(&campaign) == 0 {
                    self.state_input(now, &campaign, StateInput::QueueExhausted);
                }
            }
            Input::SwitchUp(i) => {
                if let Some(sw) = self.switches.get_mut(i) {
                    sw.connected = true;
                }
                let ids: Vec<AttemptId> = self
                    .calls
                    .iter()
                    .filter(|(_, c)| c.switch == i && !c.completing)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.reconcile(id);
                }
            }
            Input::SwitchDown(i) => {
                if let Some(sw) = self.switches.get_mut(i) {
                    sw.connected = false;
                }
            }
        }
    }

    fn upsert(&mut self, now: DateTime<Utc>, valid: Arc<ValidCampaign>) {
        let id = valid.id().to_owned();
        let c = valid.config();
        let gw_n = valid.gateways().len();
        let cps = c.cps.map(|r| TokenBucket::new(r, r.max(1.0), now));
        let gw_cps = valid
            .gateways()
            .iter()
            .map(|g| g.cps().map(|r| TokenBucket::new(r, r.max(1.0), now)))
            .collect();
        match self.campaigns.get_mut(&id) {
            Some(existing) => {
                existing.policy = policy_of(&valid);
                existing.cps = cps;
                if existing.gw_active.len() != gw_n {
                    existing.gw_active = vec![0; gw_n];
                    existing.gw_paused_until = vec![None; gw_n];
                    existing.gw_fail_streak = vec![0; gw_n];
                }
                existing.gw_cps = gw_cps;
                existing.valid = valid;
            }
            None => {
                let eternal = c.eternal;
                self.campaigns.insert(
                    id,
                    Camp {
                        policy: policy_of(&valid),
                        sm: StateMachine::new(eternal),
                        active: 0,
                        claim_pending: false,
                        next_claim_at: now,
                        idle_backoff: Duration::from_millis(100),
                        cps,
                        gw_active: vec![0; gw_n],
                        gw_cps,
                        gw_paused_until: vec![None; gw_n],
                        gw_fail_streak: vec![0; gw_n],
                        next_renew: now,
                        next_recover: now,
                        exhausted_check_pending: false,
                        valid,
                    },
                );
            }
        }
    }

    fn state_input(&mut self, now: DateTime<Utc>, id: &str, input: StateInput) {
        if let Some(c) = self.campaigns.get_mut(id)
            && let Some(t) = c.sm.apply(now, input)
        {
            tracing::info!(campaign = id, from = ?t.from, to = ?t.to, reason = t.reason, "campaign state");
            self.out.push(Action::History {
                campaign: id.to_owned(),
                transition: t,
            });
        }
    }

    /// Free sessions across connected, unpaused switches, and the switch-side pacing budget.
    fn switch_budget(&mut self, now: DateTime<Utc>) -> u32 {
        let mut total = 0u32;
        for sw in &mut self.switches {
            if !sw.connected || sw.paused_until.is_some_and(|p| p > now) {
                continue;
            }
            let per_call = sw.cfg.sessions_per_call.max(1);
            let free = sw.cfg.max_sessions.saturating_sub(sw.calls * per_call) / per_call;
            let paced = sw.sps.available(now) / per_call;
            total += free.min(paced);
        }
        total
    }

    fn poll_into(&mut self, now: DateTime<Utc>) {
        // Calendar and claims.
        let ids: Vec<String> = self.campaigns.keys().cloned().collect();
        for id in &ids {
            let Some(c) = self.campaigns.get(id) else {
                continue;
            };
            let state = c.sm.state();
            if (state.is_active() || state == CampaignState::Idle || state == CampaignState::Done)
                && c.valid.calendar().end().is_some_and(|end| now >= end)
            {
                self.state_input(now, id, StateInput::CalendarEnded);
                continue;
            }
            let budget = self.switch_budget(now);
            let c = self.campaigns.get_mut(id).expect("present");
            let looks = matches!(
                c.sm.state(),
                CampaignState::Running | CampaignState::Sleeping
            );
            if !looks || c.claim_pending || now < c.next_claim_at {
                continue;
            }
            let room = c.valid.config().limit.saturating_sub(c.active);
            let cps_room = match &mut c.cps {
                Some(b) => b.available(now),
                None => u32::MAX,
            };
            let max = room.min(cps_room).min(budget).min(self.cfg.claim_batch);
            if max == 0 {
                // Wait for the next token or a call to end (which polls again).
                let mut next = now + ChronoDuration::milliseconds(200);
                if let Some(b) = &mut c.cps
                    && cps_room == 0
                {
                    next = next.min(b.next_token_at(now));
                }
                c.next_claim_at = next;
                continue;
            }
            c.claim_pending = true;
            self.out.push(Action::Claim {
                campaign: id.clone(),
                max,
            });
        }
        // Leases.
        let lease = dur(self.cfg.lease);
        for (id, c) in self.campaigns.iter_mut() {
            if c.active > 0 && now >= c.next_renew {
                c.next_renew = now + lease / 3;
                let attempts: Vec<AttemptId> = self
                    .calls
                    .iter()
                    .filter(|(_, call)| call.campaign == *id)
                    .map(|(a, _)| *a)
                    .collect();
                self.out.push(Action::Renew {
                    campaign: id.clone(),
                    attempts,
                });
            }
            if c.sm.state().is_active() && now >= c.next_recover {
                c.next_recover = now + lease / 2;
                self.out.push(Action::Recover {
                    campaign: id.clone(),
                });
            }
        }
        // Call deadlines.
        let mut due: Vec<AttemptId> = Vec::new();
        while let Some(Reverse((at, a))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.calls.get(&a).is_some_and(|c| c.deadline == Some(at)) {
                due.push(a);
            }
        }
        for a in due {
            let Some(call) = self.calls.get_mut(&a) else {
                continue;
            };
            if call.deadline.is_none_or(|d| d > now) {
                continue;
            }
            call.deadline = None;
            if let Some((cause, class, talk)) = call.result.clone() {
                // A completion the store refused: send the same result again.
                self.complete(now, a, cause, class, talk);
            } else if call.hangup.is_some() {
                // The callflow did not report in time after the hangup: complete without it.
                call.callflow = CallflowState::Done(None);
                self.finish(now, a);
            } else if !call.completing && !call.reconciling {
                self.reconcile(a);
            }
        }
    }

    fn on_claimed(&mut self, now: DateTime<Utc>, id: &str, batch: ClaimBatch) {
        let Some(c) = self.campaigns.get_mut(id) else {
            // The campaign is gone: give every claim back.
            for claim in batch.claims {
                self.release_claim(id, &claim, None);
            }
            return;
        };
        c.claim_pending = false;
        let got = batch.claims.len();
        if got == 0 {
            c.next_claim_at = now + dur(c.idle_backoff);
            c.idle_backoff = (c.idle_backoff * 2).min(self.cfg.idle_poll_max);
            let calendar_open = {
                let cal = c.valid.calendar();
                cal.is_allowed_in(cal.member_timezone(None), now)
            };
            let check = c.active == 0 && !c.exhausted_check_pending;
            if check {
                c.exhausted_check_pending = true;
            }
            if !calendar_open {
                // Sleeping: look again when the calendar's own timezone opens, and at least every
                // SLEEP_POLL so members in earlier timezones are not missed.
                let cal = c.valid.calendar();
                let opens = cal.next_allowed_in(cal.member_timezone(None), now);
                let mut next = now + SLEEP_POLL;
                if let Some(o) = opens {
                    next = next.min(o.max(now));
                }
                c.next_claim_at = c.next_claim_at.max(next);
                self.state_input(now, id, StateInput::WindowClosed);
            }
            if check {
                self.out.push(Action::CheckExhausted {
                    campaign: id.to_owned(),
                });
            }
            return;
        }
        c.idle_backoff = Duration::from_millis(100);
        c.next_claim_at = now;
        if let Some(b) = &mut c.cps {
            b.take(got as u32, now);
        }
        self.state_input(now, id, StateInput::WindowOpen);
        for claim in batch.claims {
            self.place(now, id, claim);
        }
    }

    /// Gives an untracked claim back to the store, uncounted.
    fn release_claim(&mut self, id: &str, claim: &Claim, not_before: Option<DateTime<Utc>>) {
        self.out.push(Action::Release {
            campaign: id.to_owned(),
            attempt: claim.attempt_id,
            member: claim.member_id,
            not_before,
        });
    }

    /// Picks a gateway and a switch for a claim and emits the originate, or releases the claim.
    fn place(&mut self, now: DateTime<Utc>, id: &str, claim: Claim) {
        let c = self.campaigns.get_mut(id).expect("campaign present");
        if !c.sm.state().dials() {
            self.release_claim(id, &claim, None);
            return;
        }
        let valid = c.valid.clone();
        let route = {
            let gw_active = &c.gw_active;
            let gw_cps = &mut c.gw_cps;
            let paused = &c.gw_paused_until;
            valid.gateways().route_with(&claim.number, |idx, gw| {
                paused[idx].is_none_or(|p| p <= now)
                    && gw.limit().is_none_or(|l| gw_active[idx] < l)
                    && gw_cps[idx].as_mut().is_none_or(|b| b.available(now) > 0)
            })
        };
        let route = match route {
            Ok(r) => r,
            Err(e) => {
                use crate::campaign::gateway::RouteError;
                match e {
                    // No gateway will ever take this number: an error-class result for this number.
                    RouteError::NoMatch { .. } | RouteError::UnsafeNumber { .. } => {
                        tracing::info!(campaign = id, number = claim.number, error = %e, "number cannot be routed");
                        let cause = if matches!(e, RouteError::UnsafeNumber { .. }) {
                            "INVALID_NUMBER_FORMAT"
                        } else {
                            "NO_ROUTE"
                        };
                        let attempt = claim.attempt_id;
                        self.track(now, id, claim, None, usize::MAX, Uuid::nil());
                        self.complete(now, attempt, cause.into(), CauseClass::Error, 0);
                        return;
                    }
                    // Every matching gateway is busy or paused: ours, not the callee's.
                    RouteError::Unavailable { .. } => {
                        self.release_claim(id, &claim, Some(now + ChronoDuration::seconds(1)));
                        return;
                    }
                }
            }
        };
        // The least loaded connected switch with pacing room.
        let per_call_ok = |sw: &mut Sw| {
            let per = sw.cfg.sessions_per_call.max(1);
            sw.connected
                && sw.paused_until.is_none_or(|p| p <= now)
                && sw.cfg.max_sessions >= (sw.calls + 1) * per
                && sw.sps.available(now) >= per
        };
        let mut best: Option<usize> = None;
        for i in 0..self.switches.len() {
            if per_call_ok(&mut self.switches[i])
                && best.is_none_or(|b| self.switches[i].calls < self.switches[b].calls)
            {
                best = Some(i);
            }
        }
        let Some(sw_i) = best else {
            self.release_claim(id, &claim, None);
            return;
        };
        let gw_idx = route.index;
        let dial_string = route.dial_string.clone();
        let gateway = valid.gateways().get(gw_idx).expect("routed gateway exists");
        let caller_id = gateway.next_caller_id().map(str::to_owned);
        let member_vars: Vec<(String, String)> = claim
            .variables
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        let member_id = claim.member_id.to_string();
        let spec = OriginateSpec {
            attempt_id: claim.attempt_id,
            dial_string: &dial_string,
            originate_timeout_sec: valid.config().originate_timeout_sec,
            caller_id_number: caller_id.as_deref(),
            campaign_id: id,
            member_id: &member_id,
            attempt_no: claim.attempt_no,
            campaign_vars: valid.channel_variables(),
            member_vars: &member_vars,
            application: "&park()",
        };
        let built = originate::build(&spec);
        let gw_name = gateway.name().to_owned();
        let gw_limit = gateway.limit();
        let job = Uuid::new_v4();
        let attempt = claim.attempt_id;
        {
            let c = self.campaigns.get_mut(id).expect("present");
            c.gw_active[gw_idx] += 1;
            if let Some(b) = c.gw_cps[gw_idx].as_mut() {
                b.take(1, now);
            }
            let sw = &mut self.switches[sw_i];
            sw.calls += 1;
            let per = sw.cfg.sessions_per_call.max(1);
            sw.sps.take(per, now);
        }
        tracing::debug!(campaign = id, %attempt, number = claim.number, gateway = gw_name, "originate");
        self.track(now, id, claim, Some(gw_idx), sw_i, job);
        self.out.push(Action::Originate {
            campaign: id.to_owned(),
            switch: sw_i,
            attempt,
            job,
            gateway: gw_name,
            gateway_limit: gw_limit,
            originate: built,
        });
    }

    /// Starts tracking an attempt. `switch == usize::MAX` marks one that never reaches a switch (an unroutable
    /// number, completed at once by the caller).
    fn track(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        claim: Claim,
        gateway: Option<usize>,
        switch: usize,
        job: Uuid,
    ) {
        let timeout = self
            .campaigns
            .get(id)
            .map_or(30, |c| c.valid.config().originate_timeout_sec);
        let attempt = claim.attempt_id;
        let deadline =
            now + ChronoDuration::seconds(i64::from(timeout)) + dur(self.cfg.originate_grace);
        self.calls.insert(
            attempt,
            Call {
                campaign: id.to_owned(),
                claim,
                gateway,
                switch,
                job,
                originated_at: now,
                channel_seen: false,
                answered_at: None,
                hangup: None,
                callflow: CallflowState::None,
                completing: false,
                reconciling: false,
                result: None,
                note: None,
                deadline: Some(deadline),
            },
        );
        self.deadlines.push(Reverse((deadline, attempt)));
        if let Some(c) = self.campaigns.get_mut(id) {
            c.active += 1;
            let n = c.active;
            let _ = c.sm.apply(now, StateInput::ActiveCalls(n));
        }
        if switch != usize::MAX {
            self.jobs.insert(job, attempt);
        }
    }

    fn on_originate_failed(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        sent: bool,
        error: &str,
    ) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        tracing::warn!(%attempt, sent, error, "originate not carried out");
        if sent {
            // It may have reached the switch: find out once the switch is back.
            let sw = call.switch;
            if self.switches.get(sw).is_some_and(|s| s.connected) {
                self.reconcile(attempt);
            } else if let Some(call) = self.calls.get_mut(&attempt) {
                call.reconciling = true;
            }
        } else {
            self.release_call(now, attempt, false);
        }
    }

    /// Gives a claim back (uncounted) and forgets the call.
    fn release_call(&mut self, now: DateTime<Utc>, attempt: AttemptId, pause_gateway: bool) {
        let Some(call) = self.calls.get(&attempt).cloned() else {
            return;
        };
        if pause_gateway
            && let (Some(c), Some(g)) = (self.campaigns.get_mut(&call.campaign), call.gateway)
        {
            c.gw_paused_until[g] = Some(now + ChronoDuration::milliseconds(500));
        }
        self.out.push(Action::Release {
            campaign: call.campaign.clone(),
            attempt,
            member: call.claim.member_id,
            not_before: Some(now + ChronoDuration::seconds(1)),
        });
        self.drop_call(now, attempt);
    }

    /// Forgets a call without completing it (released, revoked, or completed and acknowledged).
    fn drop_call(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.remove(&attempt) else {
            return;
        };
        self.jobs.remove(&call.job);
        if let Some(sw) = self.switches.get_mut(call.switch) {
            sw.calls = sw.calls.saturating_sub(1);
        }
        if let Some(c) = self.campaigns.get_mut(&call.campaign) {
            c.active = c.active.saturating_sub(1);
            if let Some(g) = call.gateway {
                c.gw_active[g] = c.gw_active[g].saturating_sub(1);
            }
            c.next_claim_at = c.next_claim_at.min(now);
            let n = c.active;
            let id = call.campaign.clone();
            self.state_input(now, &id, StateInput::ActiveCalls(n));
        }
    }

    fn reconcile(&mut self, attempt: AttemptId) {
        if let Some(call) = self.calls.get_mut(&attempt)
            && !call.completing
        {
            call.reconciling = true;
            self.out.push(Action::CheckExists {
                switch: call.switch,
                attempt,
            });
        }
    }

    fn on_exists(&mut self, now: DateTime<Utc>, attempt: AttemptId, exists: bool) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        call.reconciling = false;
        if exists {
            // Still up: keep tracking; look again later if the originate stays silent.
            let at = now + dur(self.cfg.originate_grace);
            call.deadline = Some(at);
            self.deadlines.push(Reverse((at, attempt)));
            return;
        }
        if call.hangup.is_some() || call.completing {
            return;
        }
        let class = self
            .campaigns
            .get(&call.campaign)
            .map_or(CauseClass::Retry, |c| c.valid.lost_attempt_class());
        tracing::info!(%attempt, "channel gone and its end never seen: lost attempt");
        self.complete(now, attempt, LOST_CAUSE.into(), class, 0);
    }

    fn on_job(&mut self, now: DateTime<Utc>, job: Uuid, body: &str) {
        let Some(&attempt) = self.jobs.get(&job) else {
            return;
        };
        let text = body.trim_end();
        if let Some(rest) = text.strip_prefix("-ERR") {
            let cause = rest
                .split_whitespace()
                .next()
                .unwrap_or("NORMAL_UNSPECIFIED");
            let cause = cause.to_owned();
            let Some(call) = self.calls.get(&attempt) else {
                return;
            };
            if call.hangup.is_some() || call.completing {
                return;
            }
            let switch = call.switch;
            let refused_for_capacity = cause == CAPACITY_CAUSE && !call.channel_seen;
            if refused_for_capacity {
                // FreeSWITCH refused the session (sessions_per_second, max_sessions): ours, not the callee's.
                if let Some(sw) = self.switches.get_mut(switch) {
                    sw.fail_streak += 1;
                    let backoff = 250i64 << sw.fail_streak.min(6);
                    sw.paused_until = Some(now + ChronoDuration::milliseconds(backoff));
                }
                self.complete(now, attempt, cause, CauseClass::Minus, 0);
            } else {
                if let Some(sw) = self.switches.get_mut(switch) {
                    sw.fail_streak = 0;
                }
                let class = self.classify(attempt, &cause, false, 0);
                self.complete(now, attempt, cause, class, 0);
            }
        } else if text.starts_with("+OK") {
            if let Some(sw) = self
                .calls
                .get(&attempt)
                .and_then(|c| self.switches.get_mut(c.switch))
            {
                sw.fail_streak = 0;
            }
            // The originate returns when the call is answered.
            self.on_answered(now, attempt);
        } else {
            // Neither +OK nor -ERR (a -USAGE reply): the command was refused as written. Count it, so a member
            // whose data keeps producing it ends with MAX_TRY_COUNT instead of spinning.
            tracing::error!(%attempt, reply = text, "originate refused");
            self.complete(
                now,
                attempt,
                "NORMAL_UNSPECIFIED".into(),
                CauseClass::Retry,
                0,
            );
        }
    }

    fn on_answered(&mut self, now: DateTime<Utc>, uuid: Uuid) {
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        call.channel_seen = true;
        if call.answered_at.is_some() || call.hangup.is_some() {
            return;
        }
        call.answered_at = Some(now);
        // Answered calls may last long: no deadline; leases keep them alive.
        call.deadline = None;
        let has_flow = self
            .campaigns
            .get(&call.campaign)
            .is_some_and(|c| c.valid.callflow().is_some());
        if has_flow {
            call.callflow = CallflowState::Running;
            self.out.push(Action::StartCallflow {
                campaign: call.campaign.clone(),
                switch: call.switch,
                attempt: uuid,
            });
        }
    }

    fn on_hangup(
        &mut self,
        now: DateTime<Utc>,
        uuid: Uuid,
        cause: String,
        answered: bool,
        billsec: u32,
    ) {
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        if call.hangup.is_some() || call.completing {
            return;
        }
        call.channel_seen = true;
        if answered && call.answered_at.is_none() {
            // The answer was never seen (it happened while the ESL socket was down): it was `billsec` before the
            // hangup. Without this the attempt is recorded ok yet unanswered, and `answered` undercounts.
            call.answered_at = Some(now - ChronoDuration::seconds(i64::from(billsec)));
        }
        call.hangup = Some((cause, answered || call.answered_at.is_some(), billsec, now));
        if call.callflow == CallflowState::Running {
            let at = now + dur(self.cfg.callflow_grace);
            call.deadline = Some(at);
            self.deadlines.push(Reverse((at, uuid)));
            return;
        }
        self.finish(now, uuid);
    }

    /// Completes a call whose hangup (and callflow, if any) are known.
    fn finish(&mut self, now: DateTime<Utc>, uuid: Uuid) {
        let Some(call) = self.calls.get(&uuid) else {
            return;
        };
        if call.completing {
            return;
        }
        let Some((cause, answered, billsec, _)) = call.hangup.clone() else {
            return;
        };
        let class = self.classify(uuid, &cause, answered, billsec);
        self.complete(now, uuid, cause, class, billsec);
    }

    /// The class of an attempt's end: the callflow's `result` if it gave one, else the cause table with the
    /// minimum-duration rule.
    fn classify(&self, uuid: Uuid, cause: &str, answered: bool, talk_secs: u32) -> CauseClass {
        let Some(call) = self.calls.get(&uuid) else {
            return CauseClass::Retry;
        };
        let Some(c) = self.campaigns.get(&call.campaign) else {
            return CauseClass::Retry;
        };
        if answered && let CallflowState::Done(Some(success)) = call.callflow {
            return if success {
                CauseClass::Ok
            } else {
                CauseClass::Retry
            };
        }
        c.valid
            .effective_class(cause, answered, u64::from(talk_secs))
    }

    fn complete(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        cause: String,
        class: CauseClass,
        talk: u32,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        if call.completing {
            return;
        }
        call.completing = true;
        call.deadline = None;
        call.result = Some((cause.clone(), class, talk));
        let hangup_at = call.hangup.as_ref().map(|h| h.3).unwrap_or(now);
        tracing::info!(
            campaign = call.campaign,
            %attempt,
            member = %call.claim.member_id,
            number = call.claim.number,
            cause,
            class = class.as_str(),
            talk_secs = talk,
            "attempt ended"
        );
        let gateway = call.gateway.and_then(|g| {
            self.campaigns
                .get(&call.campaign)
                .and_then(|c| c.valid.gateways().get(g))
                .map(|gw| gw.name().to_owned())
        });
        let result = AttemptResult {
            attempt_id: attempt,
            member_id: call.claim.member_id,
            cause,
            class,
            answered_at: call.answered_at,
            hangup_at: Some(hangup_at),
            talk_secs: talk,
            note: call.note.clone(),
        };
        self.out.push(Action::Complete {
            campaign: call.campaign.clone(),
            gateway,
            result,
        });
    }

    fn on_completed(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        outcome: Result<CompleteOutcome, String>,
    ) {
        match outcome {
            Ok(_) => self.drop_call(now, attempt),
            Err(e) => {
                // The store did not take it: send the same result again shortly (completion is idempotent).
                tracing::warn!(%attempt, error = e, "completing the attempt failed; retrying");
                if let Some(call) = self.calls.get_mut(&attempt) {
                    call.completing = false;
                    let at = now + ChronoDuration::seconds(1);
                    call.deadline = Some(at);
                    self.deadlines.push(Reverse((at, attempt)));
                }
            }
        }
    }
}
