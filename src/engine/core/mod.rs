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
//! - [`io`](self::io): what the shell feeds it ([`Input`]) and what it asks the shell to do ([`Action`]).
//!
//! A call keeps the campaign version it was placed with (its causes, callflow and gateways), so an edit never
//! changes how a call in progress is judged.

mod adoption;
mod agents;
mod amd;
mod caller_ids;
mod calls;
mod campaigns;
mod io;
mod reconcile;
mod routing;

use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::state::CampaignState;
use crate::campaign::config::ValidCampaign;
pub use crate::engine::hangup_record::HangupRecord;
use crate::store::{AttemptId, QueuePolicy};

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
pub use io::{Action, Input};
use routing::SwitchState;
pub use routing::{BreakerState, BreakerStatus, GatewayStatus};

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
/// Stale deadline entries tolerated beyond twice the calls in flight before the heap is rebuilt from the calls.
const STALE_DEADLINES_KEPT: usize = 1024;

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

    /// The campaign's gateways on this node (those it placed calls on, or whose breaker it keeps), by name: calls
    /// in flight here and the breaker's state. Empty for a campaign the core does not know.
    pub fn gateway_status(&self, id: &str, now: DateTime<Utc>) -> Vec<GatewayStatus> {
        let Some(c) = self.campaigns.get(id) else {
            return Vec::new();
        };
        let mut out: Vec<GatewayStatus> = c
            .gateways
            .iter()
            .map(|(name, g)| GatewayStatus {
                name: name.clone(),
                active_here: g.active,
                breaker: g.breaker.status(now),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
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
            if let Some(retry) = c.orphan_retry_at {
                at(retry);
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

    /// Arms a call's deadline. The heap keeps an entry per arming (a re-armed call's older entry, or an ended
    /// call's, is skipped when it comes due); entries far outnumbering the calls are dropped at once, so the heap
    /// follows the calls in flight instead of every call of the last `max_call` (hours of calls at full rate).
    fn arm(&mut self, attempt: AttemptId, at: DateTime<Utc>) {
        if let Some(call) = self.calls.get_mut(&attempt) {
            call.deadline = Some(at);
            self.deadlines.push(Reverse((at, attempt)));
            if self.deadlines.len() > 2 * self.calls.len() + STALE_DEADLINES_KEPT {
                self.deadlines = self
                    .calls
                    .iter()
                    .filter_map(|(a, c)| c.deadline.map(|d| Reverse((d, *a))))
                    .collect();
            }
        }
    }

    /// Deadline entries held (armed ones and stale ones not yet dropped): bounded by the calls in flight.
    pub fn deadline_entries(&self) -> usize {
        self.deadlines.len()
    }
}
