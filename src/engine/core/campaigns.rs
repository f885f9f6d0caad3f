//! Each campaign's run state in the core: edits applied while calls are in flight, claims, leases and states.
//!
//! Claims are paced so that a campaign asks the store for members only while it dials (running), has room under
//! its `limit` (calls placed by this node; a lowered limit stops new claims until the calls in progress fall
//! under it — nothing is hung up), has tokens in its CPS bucket, and gets a **fair share** of the switches' free
//! sessions: the free sessions not already promised to claims in flight are split between the campaigns that want
//! members now, so no campaign claims the whole budget only to release what it cannot dial. An empty claim backs
//! off (100 ms doubling to `idle_poll_max`), so an idle campaign costs a rare timer; new members or `run` wake it.
//!
//! An edit ([`Core::upsert`]) replaces the campaign's configuration for new calls only: calls in progress keep the
//! version they were placed with. Gateways are matched by name: a kept gateway keeps its calls, pacing and
//! breaker; a removed or renamed one keeps counting its calls in progress until they end, and is then forgotten.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::agents::PacedRoom;
use super::routing::GatewayState;
use super::{Action, Core, dur, policy_of};
use crate::campaign::agents::DialMode;
use crate::campaign::config::ValidCampaign;
use crate::engine::pacing::TokenBucket;
use crate::engine::state::{CampaignState, StateInput, StateMachine};
use crate::store::{AttemptId, Claim, ClaimBatch, QueuePolicy};

/// How often a sleeping campaign looks at its queue (members in other timezones may open earlier than the
/// calendar's own).
/// The longest wait between two reads of the attempts a node holds, after a lost claim reply, while the store fails.
const ORPHAN_RETRY_MAX: ChronoDuration = ChronoDuration::seconds(30);

const SLEEP_POLL: ChronoDuration = ChronoDuration::seconds(30);
/// The shortest back-off after an empty claim.
const IDLE_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Bounds of [`CampaignRun::no_agent_backoff`].
pub(super) const NO_AGENT_BACKOFF_MIN: ChronoDuration = ChronoDuration::milliseconds(250);
pub(super) const NO_AGENT_BACKOFF_MAX: ChronoDuration = ChronoDuration::seconds(2);
/// The most members an agent campaign claims at once.
const AGENT_ROOM_MAX: u32 = 1000;

/// One campaign as the core runs it.
#[derive(Debug)]
pub(super) struct CampaignRun {
    /// The latest version: new calls are placed with it.
    pub valid: Arc<ValidCampaign>,
    pub policy: QueuePolicy,
    pub sm: StateMachine,
    /// Calls in flight on this node.
    pub active: u32,
    /// The size of the claim sent to the store and not answered yet.
    pub pending_claim: Option<u32>,
    /// A claim's reply was lost: waiting for the list of attempts this node holds ([`Input::Orphans`]).
    pub orphan_check_pending: bool,
    /// The list could not be read (the store still down): asked again at this instant, claims still held back.
    pub orphan_retry_at: Option<DateTime<Utc>>,
    /// Failed reads of the list in a row (the back-off doubles with each, up to [`ORPHAN_RETRY_MAX`]).
    pub orphan_failures: u32,
    pub next_claim_at: DateTime<Utc>,
    pub idle_backoff: Duration,
    pub cps: Option<TokenBucket>,
    /// Per gateway, by name: the configured ones, and removed ones while calls placed on them are in flight.
    pub gateways: HashMap<String, GatewayState>,
    pub next_renew: DateTime<Utc>,
    pub next_recover: DateTime<Utc>,
    pub exhausted_check_pending: bool,
    /// Deleted: no new calls; forgotten when its last call is over.
    pub removed: bool,
    /// Agent modes: claims waiting for an agent reservation (no new claim until they are answered).
    pub agent_reserving: u32,
    /// Agent modes: the most members one claim asks for, following how many agents were free lately (it grows by
    /// one per reservation that found an agent and halves on each that found none), so a campaign with few free
    /// agents does not claim members only to give them back.
    pub agent_room: u32,
    /// Agent modes: how long the campaign waits before it looks for a free agent again after finding none
    /// (doubling from [`NO_AGENT_BACKOFF_MIN`] to [`NO_AGENT_BACKOFF_MAX`]; an agent this node frees wakes it
    /// sooner).
    pub no_agent_backoff: ChronoDuration,
    /// Agent modes: the earliest instant an agent this node released comes out of its wrap-up (a claim is due
    /// then, whatever the back-off).
    pub next_agent_free: Option<DateTime<Utc>>,
    /// Predictive: the pacer, its model and the team's latest counts.
    pub pacer: Option<super::agents::PacerRun>,
}

impl CampaignRun {
    fn new(valid: Arc<ValidCampaign>, now: DateTime<Utc>) -> CampaignRun {
        let c = valid.config();
        let mut run = CampaignRun {
            policy: policy_of(&valid),
            sm: StateMachine::new(c.eternal),
            active: 0,
            pending_claim: None,
            orphan_check_pending: false,
            orphan_retry_at: None,
            orphan_failures: 0,
            next_claim_at: now,
            idle_backoff: IDLE_BACKOFF_MIN,
            cps: c.cps.map(|r| TokenBucket::new(r, r.max(1.0), now)),
            gateways: HashMap::new(),
            next_renew: now,
            next_recover: now,
            exhausted_check_pending: false,
            removed: false,
            agent_reserving: 0,
            agent_room: 1,
            no_agent_backoff: NO_AGENT_BACKOFF_MIN,
            next_agent_free: None,
            pacer: super::agents::PacerRun::of(&valid),
            valid,
        };
        run.follow_gateways(now);
        run
    }

    /// Whether the campaign looks at its queue now (running, or sleeping until a window opens).
    /// A reservation found an agent (`true`) or none.
    pub fn agent_room_feedback(&mut self, found: bool) {
        self.agent_room = if found {
            (self.agent_room + 1).min(AGENT_ROOM_MAX)
        } else {
            (self.agent_room / 2).max(1)
        };
        if found {
            self.no_agent_backoff = NO_AGENT_BACKOFF_MIN;
        }
    }

    /// No agent was free: the next claim waits, longer each time in a row.
    pub fn no_agent(&mut self, now: DateTime<Utc>) {
        let mut next = now + self.no_agent_backoff;
        match self.next_agent_free {
            Some(t) if t > now => next = next.min(t),
            _ => self.next_agent_free = None,
        }
        self.next_claim_at = self.next_claim_at.max(next);
        self.no_agent_backoff = (self.no_agent_backoff * 2).min(NO_AGENT_BACKOFF_MAX);
    }

    /// An agent this node released comes out of its wrap-up at `at`.
    pub fn agent_free_at(&mut self, now: DateTime<Utc>, at: DateTime<Utc>) {
        self.next_agent_free = Some(match self.next_agent_free {
            Some(t) if t > now => t.min(at),
            _ => at,
        });
    }

    pub fn looks_for_members(&self) -> bool {
        !self.removed
            && !self.orphan_check_pending
            && matches!(
                self.sm.state(),
                CampaignState::Running | CampaignState::Sleeping
            )
    }

    /// Brings the per-gateway state in step with the latest version's gateway list (by name).
    fn follow_gateways(&mut self, now: DateTime<Utc>) {
        for gw in self.valid.gateways().iter() {
            let state = self
                .gateways
                .entry(gw.name().to_owned())
                .or_insert_with(|| GatewayState::new(gw.cps(), now));
            state.follow_cps(gw.cps(), now);
        }
        let valid = self.valid.clone();
        self.gateways
            .retain(|name, g| g.active > 0 || valid.gateways().by_name(name).is_some());
    }

    /// This node's room for new calls: its fair share of `limit` (the limit split between the live engine
    /// nodes, rounded up, so no node starves another) less its calls in progress (zero while over a lowered limit).
    fn room(&self, nodes: u32) -> u32 {
        let share = self.valid.config().limit.div_ceil(nodes.max(1));
        share.saturating_sub(self.active)
    }

    /// When any of the latest version's gateways may take a call again, if none can now (all paused or
    /// disabled); `None` when one can.
    fn gateways_closed_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut earliest: Option<DateTime<Utc>> = None;
        for gw in self.valid.gateways().iter().filter(|g| g.enabled()) {
            match self
                .gateways
                .get(gw.name())
                .and_then(|s| s.closed_until(now))
            {
                None => return None,
                Some(t) => earliest = Some(earliest.map_or(t, |e| e.min(t))),
            }
        }
        earliest
    }
}

impl Core {
    pub(super) fn upsert(&mut self, now: DateTime<Utc>, valid: Arc<ValidCampaign>) {
        let id = valid.id().to_owned();
        let Some(existing) = self.campaigns.get_mut(&id) else {
            self.campaigns
                .insert(id, CampaignRun::new(valid.clone(), now));
            return;
        };
        let c = valid.config();
        let old_end = existing.valid.calendar().end();
        existing.policy = policy_of(&valid);
        existing.cps = c.cps.map(|r| TokenBucket::new(r, r.max(1.0), now));
        existing.sm.set_eternal(c.eternal);
        existing.removed = false;
        existing.pacer = match (existing.pacer.take(), super::agents::PacerRun::of(&valid)) {
            (Some(mut kept), Some(next)) => {
                kept.follow(next);
                Some(kept)
            }
            (_, next) => next,
        };
        existing.valid = valid;
        existing.follow_gateways(now);
        // A lowered limit or a paused gateway takes effect at the next claim; a raised one (or a new gateway)
        // may have room now.
        existing.next_claim_at = existing.next_claim_at.min(now);
        let new_end = existing.valid.calendar().end();
        let extended = new_end.is_none_or(|e| e > now) && old_end.is_some_and(|o| o <= now);
        if extended {
            self.state_input(now, &id, StateInput::CalendarExtended);
        }
    }

    pub(super) fn remove(&mut self, now: DateTime<Utc>, id: &str) {
        self.state_input(now, id, StateInput::Stop);
        if let Some(c) = self.campaigns.get_mut(id) {
            c.removed = true;
            if c.active == 0 {
                self.campaigns.remove(id);
                self.amd_counts.remove(id);
            }
        }
    }

    pub(super) fn run(&mut self, now: DateTime<Utc>, id: &str) {
        if let Some(c) = self.campaigns.get_mut(id) {
            c.next_claim_at = now;
            c.idle_backoff = IDLE_BACKOFF_MIN;
        }
        self.state_input(now, id, StateInput::Run);
    }

    pub(super) fn stop(&mut self, now: DateTime<Utc>, id: &str) {
        self.state_input(now, id, StateInput::Stop);
    }

    pub(super) fn wake(&mut self, now: DateTime<Utc>, id: &str) {
        if let Some(c) = self.campaigns.get_mut(id) {
            c.next_claim_at = now;
            c.idle_backoff = IDLE_BACKOFF_MIN;
        }
        self.state_input(now, id, StateInput::MembersAdded);
    }

    pub(super) fn drain(&mut self, _now: DateTime<Utc>) {
        if !self.draining {
            tracing::info!(
                calls = self.calls.len(),
                "draining: no new claims; calls in progress finish"
            );
        }
        self.draining = true;
    }

    pub(super) fn state_input(&mut self, now: DateTime<Utc>, id: &str, input: StateInput) {
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

    /// Calendar ends, claims (with each campaign's fair share of the switches), lease renewal and recovery.
    pub(super) fn poll_campaigns(&mut self, now: DateTime<Utc>) {
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
            }
        }
        self.poll_orphan_checks(now);
        if !self.draining {
            self.claims(now, &ids);
        }
        let lease = dur(self.cfg.lease);
        let after = super::dur(self.cfg.switch_lost_after);
        let switches_accountable = self
            .switches
            .iter()
            .all(|s| s.accountable(now, after, self.started_at));
        for (id, c) in self.campaigns.iter_mut() {
            if c.active > 0 && now >= c.next_renew {
                c.next_renew = now + lease / 3;
                let attempts: Vec<AttemptId> = self
                    .calls
                    .iter()
                    .filter(|(_, call)| call.campaign == *id && !call.completing)
                    .map(|(a, _)| *a)
                    .collect();
                self.out.push(Action::Renew {
                    campaign: id.clone(),
                    attempts,
                });
            }
            // Recovery counts the expired leases whose calls no switch has as lost: only while every switch can
            // answer for its calls (a restart before its switches connect would count their live calls lost).
            if c.sm.state().is_active() && now >= c.next_recover {
                // Skipped (not postponed) while a switch cannot answer: the next round comes all the same.
                c.next_recover = now + lease / 2;
                if switches_accountable {
                    self.out.push(Action::Recover {
                        campaign: id.clone(),
                    });
                }
            }
        }
    }

    /// Sends the claims that are due, each within the campaign's fair share of the free switch sessions.
    fn claims(&mut self, now: DateTime<Utc>, ids: &[String]) {
        let promised: u32 = self
            .campaigns
            .values()
            .filter_map(|c| c.pending_claim)
            .sum();
        let free = self.switch_budget(now).saturating_sub(promised);
        let wanting: Vec<&String> = ids
            .iter()
            .filter(|id| {
                self.campaigns.get(*id).is_some_and(|c| {
                    c.looks_for_members()
                        && c.pending_claim.is_none()
                        && c.agent_reserving == 0
                        && now >= c.next_claim_at
                        && c.room(self.nodes) > 0
                })
            })
            .collect();
        if wanting.is_empty() {
            // Campaigns with no room wait for a call to end (which polls again), or the next claim instant.
            for id in ids {
                if let Some(c) = self.campaigns.get_mut(id)
                    && c.looks_for_members()
                    && c.pending_claim.is_none()
                    && now >= c.next_claim_at
                {
                    c.next_claim_at = now + ChronoDuration::milliseconds(200);
                }
            }
            return;
        }
        let share = free.div_ceil(wanting.len() as u32);
        let wanting: Vec<String> = wanting.into_iter().cloned().collect();
        let mut left = free;
        for id in &wanting {
            let c = self.campaigns.get_mut(id).expect("listed");
            if let Some(open_at) = c.gateways_closed_until(now) {
                // Every gateway is paused by its breaker (or disabled): claiming would only release.
                c.next_claim_at = open_at.max(now + ChronoDuration::milliseconds(100));
                continue;
            }
            let cps_room = c.cps.as_mut().map_or(u32::MAX, |b| b.available(now));
            let max = c
                .room(self.nodes)
                .min(cps_room)
                .min(share)
                .min(left)
                .min(self.cfg.claim_batch);
            let max = match c.valid.mode() {
                DialMode::Broadcast => max,
                DialMode::Predictive => {
                    if max == 0 {
                        0
                    } else {
                        match self.paced_room(now, id) {
                            PacedRoom::Counting => continue,
                            PacedRoom::Dials(n) => max.min(n),
                        }
                    }
                }
                DialMode::Preview | DialMode::Progressive => max.min(c.agent_room),
            };
            let c = self.campaigns.get_mut(id).expect("listed");
            if max == 0 {
                // Wait for the next token, a call to end (which polls again), or sessions to free up.
                let mut next = now + ChronoDuration::milliseconds(200);
                if let Some(b) = &mut c.cps
                    && cps_room == 0
                {
                    next = next.min(b.next_token_at(now));
                }
                // A predictive campaign's pacer may have set a later time itself.
                c.next_claim_at = c.next_claim_at.max(next);
                continue;
            }
            left -= max;
            c.pending_claim = Some(max);
            self.out.push(Action::Claim {
                campaign: id.clone(),
                max,
            });
        }
    }

    pub(super) fn on_claimed(&mut self, now: DateTime<Utc>, id: &str, batch: ClaimBatch) {
        let draining = self.draining;
        let Some(c) = self
            .campaigns
            .get_mut(id)
            .filter(|c| !c.removed && !draining)
        else {
            // The campaign is gone or the process drains: give every claim back.
            if let Some(c) = self.campaigns.get_mut(id) {
                c.pending_claim = None;
            }
            for claim in batch.claims {
                self.release_claim(id, &claim, None);
            }
            return;
        };
        c.pending_claim = None;
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
        c.idle_backoff = IDLE_BACKOFF_MIN;
        c.next_claim_at = now;
        if let Some(b) = &mut c.cps {
            b.take(got as u32, now);
        }
        self.state_input(now, id, StateInput::WindowOpen);
        for claim in batch.claims {
            self.place(now, id, claim);
        }
    }

    /// A claim failed: the store may still have claimed members for it (a reply lost to a timeout). Before
    /// claiming again, find those and release them, instead of leaving them to a lease that would charge a try.
    pub(super) fn on_claim_failed(&mut self, now: DateTime<Utc>, id: &str, error: &str) {
        tracing::warn!(
            campaign = id,
            error,
            "claim failed; releasing what it may have claimed, then retrying"
        );
        if let Some(c) = self.campaigns.get_mut(id) {
            c.pending_claim = None;
            c.next_claim_at = now + ChronoDuration::seconds(1);
            if !c.orphan_check_pending {
                c.orphan_check_pending = true;
                self.out.push(Action::FindOrphans {
                    campaign: id.to_owned(),
                });
            }
        }
    }

    /// The answer to a [`Action::FindOrphans`]. Until the list is read, the campaign claims nothing: an attempt the
    /// lost reply claimed, left to its lease, would be recovered as a lost try and its member called again.
    pub(super) fn on_orphans(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        held: Result<Vec<Claim>, String>,
    ) {
        let held = match held {
            Ok(held) => held,
            Err(error) => {
                if let Some(c) = self.campaigns.get_mut(id) {
                    c.orphan_failures += 1;
                    let backoff = (ChronoDuration::seconds(1)
                        * (1 << (c.orphan_failures - 1).min(5)))
                    .min(ORPHAN_RETRY_MAX);
                    c.orphan_retry_at = Some(now + backoff);
                    tracing::warn!(
                        campaign = id,
                        error,
                        failures = c.orphan_failures,
                        "cannot list this node's attempts after a lost claim reply; asking again, claims held back"
                    );
                }
                return;
            }
        };
        if let Some(c) = self.campaigns.get_mut(id) {
            c.orphan_check_pending = false;
            c.orphan_retry_at = None;
            c.orphan_failures = 0;
            c.next_claim_at = c.next_claim_at.min(now + ChronoDuration::seconds(1));
        }
        for claim in held {
            if !self.calls.contains_key(&claim.attempt_id) {
                tracing::info!(campaign = id, attempt = %claim.attempt_id, "releasing a claim whose reply was lost");
                self.release_claim(id, &claim, None);
            }
        }
    }

    /// Asks again for the lists that could not be read.
    fn poll_orphan_checks(&mut self, now: DateTime<Utc>) {
        for (id, c) in self.campaigns.iter_mut() {
            if c.orphan_retry_at.is_some_and(|at| now >= at) {
                c.orphan_retry_at = None;
                self.out.push(Action::FindOrphans {
                    campaign: id.clone(),
                });
            }
        }
    }

    pub(super) fn on_queue_state(&mut self, now: DateTime<Utc>, id: &str, waiting: u64) {
        if let Some(c) = self.campaigns.get_mut(id) {
            c.exhausted_check_pending = false;
        }
        if waiting == 0 && self.active(id) == 0 {
            self.state_input(now, id, StateInput::QueueExhausted);
        }
    }

    /// Gives an untracked claim back to the store, uncounted.
    pub(super) fn release_claim(
        &mut self,
        id: &str,
        claim: &Claim,
        not_before: Option<DateTime<Utc>>,
    ) {
        self.out.push(Action::Release {
            campaign: id.to_owned(),
            attempt: claim.attempt_id,
            member: claim.member_id,
            not_before,
        });
    }

    /// One call fewer for the campaign: frees its gateway slot (by name), polls again, forgets a deleted
    /// campaign whose last call ended.
    pub(super) fn campaign_call_over(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        gateway: Option<&str>,
    ) {
        let Some(c) = self.campaigns.get_mut(id) else {
            return;
        };
        c.active = c.active.saturating_sub(1);
        if let Some(name) = gateway
            && let Some(g) = c.gateways.get_mut(name)
        {
            g.active = g.active.saturating_sub(1);
            if g.active == 0 && c.valid.gateways().by_name(name).is_none() {
                c.gateways.remove(name);
            }
        }
        c.next_claim_at = c.next_claim_at.min(now);
        let n = c.active;
        let forget = c.removed && n == 0;
        self.state_input(now, id, StateInput::ActiveCalls(n));
        if forget {
            self.campaigns.remove(id);
            self.amd_counts.remove(id);
        }
    }
}
