//! The stored form of one agent and every transition of it: reserve, offer, talk, release, status changes, lazy
//! expiry of wrap-up, missed-offer delay and timed pauses, and the time accounting behind the figures.
//!
//! Both store backends load records, run these methods and write them back atomically (the memory store under its
//! lock, Redis with a compare-and-set script), so the rules live here once.
//!
//! Time is accounted lazily: `accrued_at` is the instant up to which the figures are counted; every transition
//! first [`settles`](AgentRecord::settle) the record to its instant (expiries that passed are applied at their own
//! instants), so the time spent in each state and status lands in the right figure.

use crate::agents::model::{Agent, AgentState, AgentStatus};
use crate::agents::reservation::{
    AdoptedReservation, CallRef, Release, Reservation, ReservationId, ReservationState,
    ReservationView, ReserveRequest, SetStatusOutcome,
};
use crate::agents::stats::AgentStats;
use crate::agents::strategy::{Candidate, TeamRules};
use crate::agents::view::AgentView;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The reason of the pause an on-demand agent gets after its one call.
pub const ON_DEMAND_REASON: &str = "on_demand";
/// The reason of the pause after `max_no_answer` missed offers in a row.
pub const NO_ANSWER_REASON: &str = "no_answer";

/// Where an agent is when it holds no reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RestState {
    Idle,
    WrapUp { until: DateTime<Utc> },
    Missed { until: DateTime<Utc> },
}

/// One reservation held by the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub id: ReservationId,
    pub campaign: String,
    pub member: crate::store::MemberId,
    pub attempt: crate::store::AttemptId,
    pub node: String,
    pub lease_until: DateTime<Utc>,
    pub line: u32,
    pub state: ReservationState,
    /// Taken while the agent was on demand (its one call): releasing it unused gives the agent back its status.
    pub on_demand: bool,
    /// The agent's leg once it is called: a node that adopts the call after a restart finds it here.
    #[serde(default)]
    pub agent_leg: Option<uuid::Uuid>,
}

/// One agent as stored: configuration, status, state, reservations and figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub agent: Agent,
    pub status: AgentStatus,
    pub pending: Option<AgentStatus>,
    pub rest: RestState,
    pub state_since: DateTime<Utc>,
    pub reservations: Vec<Held>,
    pub stats: AgentStats,
    /// The figures are counted up to this instant.
    pub accrued_at: DateTime<Utc>,
    /// Since when the agent is free (for `longest_idle`).
    pub available_since: DateTime<Utc>,
    /// When it was last reserved (for `round_robin`).
    pub last_reserved_at: Option<DateTime<Utc>>,
    pub no_answer_streak: u32,
    pub last_call: Option<CallRef>,
}

fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX / 2)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl AgentRecord {
    /// A new agent: logged out, idle.
    pub fn new(agent: Agent, now: DateTime<Utc>) -> AgentRecord {
        AgentRecord {
            agent,
            status: AgentStatus::LoggedOut,
            pending: None,
            rest: RestState::Idle,
            state_since: now,
            reservations: Vec::new(),
            stats: AgentStats::default(),
            accrued_at: now,
            available_since: now,
            last_reserved_at: None,
            no_answer_streak: 0,
            last_call: None,
        }
    }

    /// The state the engine sees: the busiest of its reservations, else where it rests.
    pub fn state(&self) -> AgentState {
        let has = |s| self.reservations.iter().any(|h| h.state == s);
        if has(ReservationState::Talking) {
            AgentState::Talking
        } else if has(ReservationState::Offering) {
            AgentState::Offering
        } else if has(ReservationState::Reserved) {
            AgentState::Reserved
        } else {
            match self.rest {
                RestState::Idle => AgentState::Idle,
                RestState::WrapUp { until } => AgentState::WrapUp { until },
                RestState::Missed { until } => AgentState::Missed { until },
            }
        }
    }

    /// Runs `f`, and if the state changed, records `at` as the instant it did.
    fn change<T>(&mut self, at: DateTime<Utc>, f: impl FnOnce(&mut Self) -> T) -> T {
        let before = self.state();
        let out = f(self);
        if self.state() != before {
            self.state_since = at;
        }
        out
    }

    /// Adds the time from `accrued_at` to `to` to the figures of the current status and state.
    fn accrue(&mut self, to: DateTime<Utc>) {
        let Ok(dt) = u64::try_from((to - self.accrued_at).num_milliseconds()) else {
            return;
        };
        if dt == 0 {
            return;
        }
        let state = self.state();
        let s = &mut self.stats;
        if self.status != AgentStatus::LoggedOut {
            s.logged_in_ms += dt;
        }
        if matches!(self.status, AgentStatus::Paused { .. }) {
            s.paused_ms += dt;
        }
        match state {
            AgentState::Idle if self.status.takes_calls() => s.idle_ms += dt,
            AgentState::WrapUp { .. } => s.wrap_ms += dt,
            _ => {}
        }
        self.accrued_at = to;
    }

    /// Applies the expiries that passed by `now` (wrap-up, missed-offer delay, timed pause), each at its own
    /// instant, and counts the figures up to `now`.
    pub fn settle(&mut self, now: DateTime<Utc>) {
        loop {
            let rest_end = match self.rest {
                RestState::WrapUp { until } | RestState::Missed { until } if until <= now => {
                    Some(until)
                }
                _ => None,
            };
            let pause_end = match &self.status {
                AgentStatus::Paused { until: Some(u), .. } if *u <= now => Some(*u),
                _ => None,
            };
            let Some(at) = rest_end.into_iter().chain(pause_end).min() else {
                break;
            };
            self.accrue(at);
            if rest_end == Some(at) {
                self.change(at, |r| r.rest = RestState::Idle);
            } else {
                self.status = AgentStatus::Ready;
                self.no_answer_streak = 0;
            }
            self.available_since = at;
        }
        self.accrue(now);
    }

    /// The agent's level in the request's team if it may be reserved for it now (the record settled to now).
    pub fn eligible(&self, req: &ReserveRequest) -> Option<u32> {
        let level = self.agent.level_in(&req.rules.team)?;
        let free = self.pending.is_none()
            && self.status.takes_calls()
            && self.rest == RestState::Idle
            && self.reservations.len() < self.agent.lines as usize
            && !self
                .reservations
                .iter()
                .any(|h| h.state == ReservationState::Talking || h.attempt == req.attempt)
            && !req.exclude.contains(&self.agent.id);
        free.then_some(level)
    }

    /// What the team's strategy compares of this agent.
    pub fn candidate(&self, level: u32) -> Candidate<'_> {
        Candidate {
            id: &self.agent.id,
            level,
            available_since: self.available_since,
            talk_ms: self.stats.talk_ms,
            calls: self.stats.calls,
            last_reserved_at: self.last_reserved_at,
        }
    }

    /// Reserves the agent (it must be [`eligible`](Self::eligible)) under reservation `id`.
    pub fn reserve(
        &mut self,
        req: &ReserveRequest,
        id: ReservationId,
        now: DateTime<Utc>,
    ) -> Reservation {
        let line = (1..=self.agent.lines)
            .find(|l| !self.reservations.iter().any(|h| h.line == *l))
            .unwrap_or(self.agent.lines);
        let on_demand = self.status == AgentStatus::OnDemand;
        self.change(now, |r| {
            r.reservations.push(Held {
                id,
                campaign: req.campaign.clone(),
                member: req.member,
                attempt: req.attempt,
                node: req.node.clone(),
                lease_until: after(now, req.lease),
                line,
                state: ReservationState::Reserved,
                agent_leg: None,
                on_demand,
            })
        });
        if on_demand {
            self.pending = Some(on_demand_pause());
        }
        self.last_reserved_at = Some(now);
        Reservation {
            id,
            agent: self.agent.id.clone(),
            dial_string: self.agent.dial_string.clone(),
            line,
        }
    }

    fn position(&self, id: ReservationId) -> Option<usize> {
        self.reservations.iter().position(|h| h.id == id)
    }

    /// Whether the agent holds reservation `id`.
    pub fn holds(&self, id: ReservationId) -> bool {
        self.position(id).is_some()
    }

    /// The agent chose a status: applied now, or when its call ends for a logout or pause while it is busy.
    pub fn set_status(&mut self, status: AgentStatus, now: DateTime<Utc>) -> SetStatusOutcome {
        self.settle(now);
        let stops = matches!(status, AgentStatus::LoggedOut | AgentStatus::Paused { .. });
        if stops && !self.reservations.is_empty() {
            self.pending = Some(status);
            return SetStatusOutcome::Pending;
        }
        self.apply_status(status, now);
        SetStatusOutcome::Applied
    }

    fn apply_status(&mut self, status: AgentStatus, now: DateTime<Utc>) {
        self.accrue(now);
        if status == AgentStatus::LoggedOut {
            self.change(now, |r| r.rest = RestState::Idle);
        }
        if status.takes_calls() && !self.status.takes_calls() {
            self.available_since = now;
            self.no_answer_streak = 0;
        }
        self.status = status;
        self.pending = None;
    }

    /// The agent's leg rings (or the preview is shown). `false`: no such reservation.
    pub fn offering(&mut self, id: ReservationId, leg: uuid::Uuid, now: DateTime<Utc>) -> bool {
        self.settle(now);
        let Some(pos) = self.position(id) else {
            return false;
        };
        self.change(now, |r| {
            let held = &mut r.reservations[pos];
            held.state = ReservationState::Offering;
            held.agent_leg = Some(leg);
        });
        true
    }

    /// Hands this agent's reservations for `attempts` to `node` (it adopted those calls after a restart, or took
    /// them over from a vanished node), with their lease extended to `until`; returns them.
    pub fn adopt(
        &mut self,
        node: &str,
        attempts: &[crate::store::AttemptId],
        until: DateTime<Utc>,
    ) -> Vec<AdoptedReservation> {
        let mut adopted = Vec::new();
        for h in self
            .reservations
            .iter_mut()
            .filter(|h| attempts.contains(&h.attempt))
        {
            h.node = node.to_owned();
            h.lease_until = h.lease_until.max(until);
            adopted.push(AdoptedReservation {
                attempt: h.attempt,
                reservation: Reservation {
                    id: h.id,
                    agent: self.agent.id.clone(),
                    dial_string: self.agent.dial_string.clone(),
                    line: h.line,
                },
                state: h.state,
                agent_leg: h.agent_leg,
            });
        }
        adopted
    }

    /// The agent answered: the reservation is talking, its other reservations are released unused and returned
    /// (the engine cancels their calls). `None`: no such reservation.
    pub fn talking(&mut self, id: ReservationId, now: DateTime<Utc>) -> Option<Vec<Reservation>> {
        self.settle(now);
        let pos = self.position(id)?;
        let talking = self.change(now, |r| {
            let held = r.reservations.remove(pos);
            let others = std::mem::take(&mut r.reservations);
            r.reservations.push(Held {
                state: ReservationState::Talking,
                ..held
            });
            others
        });
        let h = &self.reservations[0];
        self.last_call = Some(CallRef {
            campaign: h.campaign.clone(),
            member: h.member,
            attempt: h.attempt,
        });
        self.no_answer_streak = 0;
        Some(
            talking
                .into_iter()
                .map(|o| Reservation {
                    id: o.id,
                    agent: self.agent.id.clone(),
                    dial_string: self.agent.dial_string.clone(),
                    line: o.line,
                })
                .collect(),
        )
    }

    /// Ends reservation `id` as `release` says (see [`Release`]); a status asked for meanwhile applies once the
    /// agent holds no reservation. `false`: no such reservation, nothing changed.
    pub fn release(
        &mut self,
        id: ReservationId,
        release: Release,
        rules: &TeamRules,
        now: DateTime<Utc>,
    ) -> bool {
        self.settle(now);
        let Some(pos) = self.position(id) else {
            return false;
        };
        let held = self.change(now, |r| r.reservations.remove(pos));
        match release {
            Release::Unused => {
                if held.on_demand && self.pending == Some(on_demand_pause()) {
                    self.pending = None;
                }
            }
            Release::Missed => {
                self.stats.missed += 1;
                self.no_answer_streak += 1;
                let until = after(now, rules.no_answer_delay);
                self.change(now, |r| {
                    r.rest = if until > now {
                        RestState::Missed { until }
                    } else {
                        RestState::Idle
                    }
                });
                self.available_since = until;
                if rules.max_no_answer > 0
                    && self.no_answer_streak >= rules.max_no_answer
                    && self.pending.is_none()
                {
                    self.pending = Some(AgentStatus::Paused {
                        reason: NO_ANSWER_REASON.into(),
                        until: None,
                    });
                }
            }
            Release::Finished { talk } => {
                self.stats.calls += 1;
                self.stats.talk_ms += millis(talk);
                let until = after(now, rules.wrap_up);
                self.change(now, |r| {
                    r.rest = if until > now {
                        RestState::WrapUp { until }
                    } else {
                        RestState::Idle
                    }
                });
                self.available_since = until;
            }
        }
        if self.reservations.is_empty()
            && let Some(p) = self.pending.take()
        {
            self.apply_status(p, now);
        }
        true
    }

    /// Ends the wrap-up now (the result callback came). `false`: the agent was not in wrap-up.
    pub fn end_wrap_up(&mut self, now: DateTime<Utc>) -> bool {
        self.settle(now);
        if !matches!(self.rest, RestState::WrapUp { .. }) {
            return false;
        }
        self.change(now, |r| r.rest = RestState::Idle);
        self.available_since = now;
        true
    }

    /// Extends reservation `id` of `node` to `until`. `false`: the agent holds no such reservation of that node.
    pub fn renew(&mut self, node: &str, id: ReservationId, until: DateTime<Utc>) -> bool {
        match self
            .reservations
            .iter_mut()
            .find(|h| h.id == id && h.node == node)
        {
            Some(h) => {
                h.lease_until = h.lease_until.max(until);
                true
            }
            None => false,
        }
    }

    /// Releases, unused, every reservation whose lease expired by `now` (its node is gone); returns their ids.
    pub fn expire_leases(&mut self, now: DateTime<Utc>) -> Vec<ReservationId> {
        // An unused release reads no team rule.
        let rules = TeamRules::new(String::new());
        let expired: Vec<ReservationId> = self
            .reservations
            .iter()
            .filter(|h| h.lease_until <= now)
            .map(|h| h.id)
            .collect();
        for id in &expired {
            self.release(*id, Release::Unused, &rules, now);
        }
        expired
    }

    /// The agent as of `now` (expiries applied, figures counted to now), without changing the record.
    pub fn view(&self, now: DateTime<Utc>) -> AgentView {
        let mut r = self.clone();
        r.settle(now);
        AgentView {
            state: r.state(),
            reservations: r
                .reservations
                .iter()
                .map(|h| ReservationView {
                    id: h.id,
                    campaign: h.campaign.clone(),
                    member: h.member,
                    attempt: h.attempt,
                    node: h.node.clone(),
                    state: h.state,
                    line: h.line,
                    lease_until: h.lease_until,
                })
                .collect(),
            agent: r.agent,
            status: r.status,
            pending_status: r.pending,
            state_since: r.state_since,
            no_answer_streak: r.no_answer_streak,
            last_call: r.last_call,
            stats: r.stats,
        }
    }
}

fn on_demand_pause() -> AgentStatus {
    AgentStatus::Paused {
        reason: ON_DEMAND_REASON.into(),
        until: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::model::TeamMembership;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + min * 60, 0).unwrap()
    }

    fn ready(lines: u32) -> AgentRecord {
        let agent = Agent {
            id: "a".into(),
            name: String::new(),
            dial_string: "user/1".into(),
            teams: vec![TeamMembership {
                team: "t".into(),
                level: 1,
            }],
            lines,
            version: 1,
        };
        let mut r = AgentRecord::new(agent, at(0));
        r.set_status(AgentStatus::Ready, at(0));
        r
    }

    fn request() -> ReserveRequest {
        ReserveRequest {
            rules: TeamRules::new("t"),
            campaign: "c".into(),
            member: crate::store::MemberId(1),
            attempt: uuid::Uuid::new_v4(),
            node: "n".into(),
            lease: Duration::from_secs(60),
            prefer: None,
            exclude: vec![],
        }
    }

    #[test]
    fn expiries_are_applied_at_their_own_instant_so_the_figures_split_there() {
        let mut r = ready(1);
        r.set_status(
            AgentStatus::Paused {
                reason: "x".into(),
                until: Some(at(10)),
            },
            at(5),
        );
        r.settle(at(30));
        assert_eq!(r.status, AgentStatus::Ready);
        assert_eq!(r.available_since, at(10));
        assert_eq!(r.stats.paused_ms, 5 * 60_000);
        assert_eq!(r.stats.idle_ms, 25 * 60_000);
        assert_eq!(r.stats.logged_in_ms, 30 * 60_000);
    }

    #[test]
    fn a_missed_offer_without_delay_leaves_the_agent_idle_and_counts_the_streak() {
        let mut r = ready(1);
        let req = request();
        assert_eq!(r.eligible(&req), Some(1));
        let res = r.reserve(&req, uuid::Uuid::new_v4(), at(1));
        assert_eq!(r.state(), AgentState::Reserved);
        assert_eq!(r.eligible(&req), None, "one line, held");
        assert!(r.release(res.id, Release::Missed, &req.rules, at(2)));
        assert_eq!((r.state(), r.no_answer_streak), (AgentState::Idle, 1));
        assert!(
            !r.release(res.id, Release::Missed, &req.rules, at(2)),
            "released once"
        );
        assert_eq!(r.stats.missed, 1);
    }

    #[test]
    fn an_agent_is_never_reserved_twice_for_one_attempt() {
        let mut r = ready(3);
        let req = request();
        r.reserve(&req, uuid::Uuid::new_v4(), at(1));
        assert_eq!(r.eligible(&req), None);
        let other = ReserveRequest {
            attempt: uuid::Uuid::new_v4(),
            ..request()
        };
        assert_eq!(r.eligible(&other), Some(1));
    }
}
