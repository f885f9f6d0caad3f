//! Predictive campaigns in the core: the pacer decides how many members a claim asks for, answered members get
//! their agent at answer time and are abandoned 2 s after the answer without one, and every call's outcome
//! feeds the pacer's model and the compliance record.
//!
//! Before each claim the core asks the store for the team's agents (how many free, busy, in wrap-up, and since when
//! each talking agent talks) ([`Action::CountAgents`], answered with
//! [`Input::AgentCounts`](crate::engine::core::Input::AgentCounts), which also carries the campaign's rolling
//! 30-day abandonment rate), counts its own member calls still ringing and its answered members waiting, and asks
//! the pacer ([`PacerState::decide`]). The pacer's model learns from each call: its ringing's end (live or
//! machine answer, or none), its talk and wrap-up; and the closed loop from each live answer judged (joined within
//! 2 s, or abandoned).

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use super::*;
use crate::agents::compliance::{self, AnswerKind};
use crate::agents::pacer::{
    CONNECT_LIMIT_MS, Decision, DialOutcome, PacerInputs, PacerState, PacingSettings, TeamSnapshot,
};
use crate::engine::core::{Action, Core};

/// How old the team's agent counts may be when a claim is decided.
const COUNTS_FRESH: ChronoDuration = ChronoDuration::milliseconds(200);
/// How soon a predictive campaign the pacer gave no calls decides again (a call of the campaign ending, or an
/// edit, decides sooner). Half a second: the ages of the calls and the agents move little in it, and a shift of
/// the pacing simulator takes a tenth less CPU than with 200 ms, for the same figures.
const PACE_AGAIN: ChronoDuration = ChronoDuration::milliseconds(500);
/// How long after a failed agent count the campaign asks again.
const COUNT_RETRY: ChronoDuration = ChronoDuration::seconds(1);

/// A predictive campaign's pacing in the core.
#[derive(Debug, Clone)]
pub struct PacerRun {
    pub settings: PacingSettings,
    pub team: String,
    pub state: PacerState,
    /// The team as the store last counted it, and when.
    pub counts: Option<(TeamSnapshot, DateTime<Utc>)>,
    /// A count was asked for and not answered yet.
    pub counting: bool,
    pub abandon_30d_pct: Option<f64>,
    /// The latest decision (for metrics and the simulator).
    pub last: Option<Decision>,
}

impl PacerRun {
    /// The pacing of a campaign version, if it is predictive.
    pub fn of(valid: &crate::campaign::config::ValidCampaign) -> Option<PacerRun> {
        if valid.mode() != DialMode::Predictive {
            return None;
        }
        let a = valid.agents()?;
        let settings = a.pacing();
        Some(PacerRun {
            state: PacerState::new(&settings),
            settings,
            team: a.team.clone(),
            counts: None,
            counting: false,
            abandon_30d_pct: None,
            last: None,
        })
    }

    /// Follows an edit: new settings, the model kept.
    pub fn follow(&mut self, next: PacerRun) {
        if next.settings.window_sec != self.settings.window_sec {
            self.state.recent = next.state.recent;
        }
        self.settings = next.settings;
        if next.team != self.team {
            self.team = next.team;
            self.counts = None;
        }
    }
}

/// What the pacer allows a predictive campaign's claim now.
pub enum PacedRoom {
    /// Waiting for the team's counts (asked for).
    Counting,
    /// At most this many members.
    Dials(u32),
}

impl Core {
    /// The pacer's room for a predictive campaign's claim (asks for fresh agent counts first).
    pub(in crate::engine::core) fn paced_room(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
    ) -> PacedRoom {
        let mut ringing = Vec::new();
        let mut waiting = 0u32;
        for call in self.calls.values().filter(|c| c.campaign == id) {
            let Some(a) = &call.agent else {
                continue;
            };
            if a.cancelled || call.hangup.is_some() || call.decided.is_some() {
                continue;
            }
            match (call.answered_at, a.phase) {
                (None, AgentPhase::MemberRinging) => ringing
                    .push((now - call.originated_at).num_milliseconds().max(0) as f64 / 1000.0),
                (
                    Some(_),
                    AgentPhase::Reserving | AgentPhase::Waiting | AgentPhase::AgentRinging,
                ) => waiting += 1,
                _ => {}
            }
        }
        let Some(c) = self.campaigns.get_mut(id) else {
            return PacedRoom::Dials(0);
        };
        let Some(p) = c.pacer.as_mut() else {
            return PacedRoom::Dials(0);
        };
        let fresh = p
            .counts
            .as_ref()
            .filter(|(_, at)| now - *at <= COUNTS_FRESH);
        let Some((team, _)) = fresh else {
            if !p.counting {
                p.counting = true;
                self.out.push(Action::CountAgents {
                    campaign: id.to_owned(),
                    team: p.team.clone(),
                });
            }
            return PacedRoom::Counting;
        };
        let talk_ages_sec = team.talk_ages_sec(now);
        let inputs = PacerInputs {
            agents: team.counts,
            talk_ages_sec: &talk_ages_sec,
            ringing_ages_sec: &ringing,
            waiting,
            abandon_30d_pct: p.abandon_30d_pct,
        };
        let decision = p.state.decide(&p.settings, &inputs, now);
        p.last = Some(decision);
        if decision.dials == 0 {
            c.next_claim_at = now + PACE_AGAIN;
        }
        PacedRoom::Dials(decision.dials)
    }

    /// The store's count of a predictive campaign's team (`None`: it failed).
    pub(in crate::engine::core) fn on_agent_counts(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        counts: Option<TeamSnapshot>,
        abandon_30d_pct: Option<f64>,
    ) {
        let Some(c) = self.campaigns.get_mut(id) else {
            return;
        };
        let Some(p) = c.pacer.as_mut() else {
            return;
        };
        p.counting = false;
        match counts {
            Some(counts) => {
                p.counts = Some((counts, now));
                p.abandon_30d_pct = abandon_30d_pct;
                c.next_claim_at = c.next_claim_at.min(now);
            }
            None => c.next_claim_at = c.next_claim_at.max(now + COUNT_RETRY),
        }
    }

    /// A predictive member answered: an agent is looked for now, and the member is abandoned if none is joined
    /// within `connect_timeout_ms` (at most 2 s) of the answer.
    pub(in crate::engine::core) fn predictive_answered(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let after_sec = time_to_answer_sec(call, now);
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        // `now` is the answer, or AMD's decision that a person answered: the 2 s run from the greeting's end.
        let limit = a.settings.connect_timeout_ms.min(CONNECT_LIMIT_MS);
        a.abandon_at = Some(now + ChronoDuration::milliseconds(limit as i64));
        let campaign = call.campaign.clone();
        self.pacer_record(now, &campaign, |p, s| {
            p.record_dial(now, s, DialOutcome::LiveAnswer { after_sec })
        });
        self.reserve(now, attempt);
    }

    /// AMD decided that a machine answered a predictive call (its agent is given back, it is never judged for
    /// abandonment): the pacer's model learns a machine answer.
    pub(in crate::engine::core) fn predictive_machine_answered(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
    ) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        if call.version.mode() != DialMode::Predictive {
            return;
        }
        let after_sec = time_to_answer_sec(call, now);
        let campaign = call.campaign.clone();
        self.pacer_record(now, &campaign, |p, s| {
            p.record_dial(now, s, DialOutcome::MachineAnswer { after_sec })
        });
    }

    /// A live answer is judged once: joined within 2 s of the answer, or abandoned.
    pub(in crate::engine::core) fn agent_judge(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        if a.judged || call.answered_at.is_none() {
            return;
        }
        a.judged = true;
        let abandoned = compliance::is_abandoned(a.facts.abandoned, a.facts.wait_ms);
        let campaign = call.campaign.clone();
        self.pacer_record(now, &campaign, |p, _| p.record_judged(now, abandoned));
    }

    /// A joined predictive call ended after `talk_ms`; its agent's wrap-up follows.
    pub(in crate::engine::core) fn predictive_talked(
        &mut self,
        now: DateTime<Utc>,
        campaign: &str,
        talk_ms: u64,
    ) {
        self.pacer_record(now, campaign, |p, s| {
            p.record_talk(now, s, talk_ms as f64 / 1000.0)
        });
    }

    /// A joined call is being decided after its hangup: the agent's wrap-up lasted until its result came (the
    /// result callback ends it), or the team's whole `wrap_up_sec` without one.
    pub(in crate::engine::core) fn predictive_wrapped(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
    ) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        let (Some(a), Some(h)) = (call.agent.as_ref(), call.hangup.as_ref()) else {
            return;
        };
        if a.mode != DialMode::Predictive || a.facts.bridged_at.is_none() {
            return;
        }
        let wrap = if a.outcome.is_some() {
            ((now - h.at).num_milliseconds().max(0) as f64 / 1000.0)
                .min(a.settings.wrap_up_sec as f64)
        } else {
            a.settings.wrap_up_sec as f64
        };
        let campaign = call.campaign.clone();
        self.pacer_record(now, &campaign, |p, s| p.record_wrap(now, s, wrap));
    }

    /// A predictive call's result is decided: one never answered (and not the dialer's own failure, Minus) is a
    /// dial outcome of its own; an abandoned member waits `abandon_redial_after_sec` before its next call.
    pub(in crate::engine::core) fn predictive_decided(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        cause: &str,
        class: CauseClass,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let Some(a) = call
            .agent
            .as_ref()
            .filter(|a| a.mode == DialMode::Predictive)
        else {
            return;
        };
        if cause == ABANDONED_CAUSE
            && let Some(after) = a.settings.abandon_redial_after_sec
        {
            call.retry_wait = Some(after);
        }
        let unanswered = call.answered_at.is_none() && !a.cancelled && class != CauseClass::Minus;
        if unanswered {
            let campaign = call.campaign.clone();
            self.pacer_record(now, &campaign, |p, s| {
                p.record_dial(now, s, DialOutcome::NotAnswered)
            });
        }
    }

    /// The compliance counts of a completed agent call (none for a call never answered).
    pub(in crate::engine::core) fn compliance_action(&self, attempt: AttemptId) -> Option<Action> {
        let call = self.calls.get(&attempt)?;
        let answered_at = call.answered_at?;
        call.version.agents()?;
        if call.answer_kind() == Some(crate::engine::core::AnswerKind::Machine) {
            // AMD took the agent back: a machine answer, never a live one nor abandoned.
            return Some(Action::RecordCompliance {
                campaign: call.campaign.clone(),
                day: compliance::day_of(answered_at),
                counts: compliance::counts_of(AnswerKind::Machine, false, false),
            });
        }
        let a = call.agent.as_ref()?;
        if a.cancelled {
            return None;
        }
        let abandoned = compliance::is_abandoned(a.facts.abandoned, a.facts.wait_ms);
        let counts = compliance::counts_of(AnswerKind::Live, abandoned, a.message_played);
        Some(Action::RecordCompliance {
            campaign: call.campaign.clone(),
            day: compliance::day_of(answered_at),
            counts,
        })
    }

    fn pacer_record(
        &mut self,
        _now: DateTime<Utc>,
        campaign: &str,
        f: impl FnOnce(&mut PacerState, &PacingSettings),
    ) {
        if let Some(p) = self
            .campaigns
            .get_mut(campaign)
            .and_then(|c| c.pacer.as_mut())
        {
            f(&mut p.state, &p.settings);
        }
    }

    /// The pacing of a campaign (for the simulator, metrics and tests).
    pub fn pacer(&self, id: &str) -> Option<&PacerRun> {
        self.campaigns.get(id).and_then(|c| c.pacer.as_ref())
    }
}

/// Seconds from the originate to the answer (the switch's answer, not a later AMD decision).
fn time_to_answer_sec(call: &crate::engine::core::Call, now: DateTime<Utc>) -> f64 {
    let answered = call.answered_at.unwrap_or(now);
    (answered - call.originated_at).num_milliseconds().max(0) as f64 / 1000.0
}
