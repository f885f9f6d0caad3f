//! The predictive pacer: how many member calls a predictive campaign places now (issue 17).
//!
//! It decides from its inputs and the time it is given, and reads no clock and does no IO, so the engine core,
//! its tests and the pacing simulator (`fsdialer pacing-sim`) run the very same code on virtual time:
//! - [`model`]: the online traffic model (P(live answer), P(machine answer), time to answer, talk, wrap-up;
//!   exponentially weighted with a half-life in time);
//! - [`window`]: rolling outcome counts (the closed loop's short window, Webitel's hour);
//! - [`settings`]: the campaign's `agents.pacing` section;
//! - [`predict`]: fsdialer's own policy — dial so that the live answers expected from the calls in flight and
//!   the new ones match the agents expected to be free when they arrive, with the expected overflow (the
//!   abandonment) held at a target that a closed loop corrects from what the short window measured;
//! - [`baselines`]: Webitel's formula and ViciDial's adaptive controller, as published (`design/agents.md`).
//!
//! The hard rules hold for every policy and live here, in [`PacerState::decide`]: the rolling 30-day
//! abandonment rate at or over `max_abandon_pct` dials one call per free agent; so do fewer than
//! `min_agents_for_predictive` ready agents; never more than `max_lines_per_agent` calls ringing per ready agent.
//!
//! Abandonment follows the regulators (FTC, FCC, Ofcom): a call answered by a live person and not joined to an
//! agent within 2 s of the answer. Machine answers are counted apart ([`DialOutcome::MachineAnswer`]) and never
//! in the rate.

pub mod baselines;
pub mod model;
pub mod predict;
pub mod settings;
pub mod window;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

pub use model::{DialOutcome, Estimates, LogNormalFit, TrafficModel};
pub use settings::{PacingPolicy, PacingSettings};
pub use window::{OutcomeCounts, RollingCounts};

/// The FTC/Ofcom limit: a live answer not joined to an agent within this many milliseconds is abandoned.
pub const CONNECT_LIMIT_MS: u64 = 2000;

/// The campaign's team as the store sees it now: how many agents are free, busy and in wrap-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentCounts {
    /// Ready and idle: can take a call now.
    pub free: u32,
    /// Ready and busy with a call (reserved, offered, talking).
    pub busy: u32,
    /// Ready and in wrap-up after a call.
    pub wrapping: u32,
}

impl AgentCounts {
    /// Agents at work on the campaign: free, busy or in wrap-up.
    pub fn ready(&self) -> u32 {
        self.free + self.busy + self.wrapping
    }
}

/// The team as the pacer needs it: the counts, and when each talking agent's call began, so the pacer can tell
/// an agent one minute into a call from one who has just started (talk times are far from memoryless).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamSnapshot {
    pub counts: AgentCounts,
    /// The instant each busy agent who is talking began to (its `state_since`); one per talking agent, so at
    /// most `counts.busy` (the team's size bounds it). Busy agents not talking yet (reserved, offered) have none.
    pub talk_started: Vec<DateTime<Utc>>,
}

impl TeamSnapshot {
    /// Counts a team's agents: those whose status is `ready` or `on_demand` (and will stay so after their call),
    /// by state; paused, logged-out and missed agents (passed over for now) do not count.
    pub fn of_team<'a>(
        views: impl IntoIterator<Item = &'a crate::agents::AgentView>,
    ) -> TeamSnapshot {
        use crate::agents::{AgentState, AgentStatus};
        let mut t = TeamSnapshot::default();
        for v in views {
            let working = matches!(v.status, AgentStatus::Ready | AgentStatus::OnDemand);
            let staying = v
                .pending_status
                .as_ref()
                .is_none_or(|s| matches!(s, AgentStatus::Ready | AgentStatus::OnDemand));
            if !working || !staying {
                continue;
            }
            match v.state {
                AgentState::Idle => t.counts.free += 1,
                AgentState::Reserved | AgentState::Offering => t.counts.busy += 1,
                AgentState::Talking => {
                    t.counts.busy += 1;
                    t.talk_started.push(v.state_since);
                }
                AgentState::WrapUp { .. } => t.counts.wrapping += 1,
                AgentState::Missed { .. } => {}
            }
        }
        t
    }

    /// Seconds each talking agent has talked at `now` (never negative).
    pub fn talk_ages_sec(&self, now: DateTime<Utc>) -> Vec<f64> {
        self.talk_started
            .iter()
            .map(|since| (now - *since).num_milliseconds().max(0) as f64 / 1000.0)
            .collect()
    }
}

/// What the pacer is told at each decision.
#[derive(Debug, Clone, Copy)]
pub struct PacerInputs<'a> {
    pub agents: AgentCounts,
    /// Seconds each talking agent has talked (at most `agents.busy` of them; the other busy agents have not
    /// started talking yet).
    pub talk_ages_sec: &'a [f64],
    /// Seconds each member call still ringing has rung.
    pub ringing_ages_sec: &'a [f64],
    /// Live callers answered and waiting for an agent.
    pub waiting: u32,
    /// The rolling 30-day abandonment rate (% of live answers), if the compliance record has one.
    pub abandon_30d_pct: Option<f64>,
}

impl PacerInputs<'_> {
    /// Member calls not yet with an agent: ringing or waiting.
    pub fn outstanding(&self) -> u32 {
        u32::try_from(self.ringing_ages_sec.len())
            .unwrap_or(u32::MAX)
            .saturating_add(self.waiting)
    }
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacingRule {
    /// The model has seen fewer than `warmup_answers` live answers: one call per free agent.
    WarmUp,
    /// Fewer than `min_agents_for_predictive` ready agents: one call per free agent.
    FewAgents,
    /// The rolling 30-day rate reached `max_abandon_pct`: one call per free agent.
    ThirtyDayLimit,
    /// The campaign's policy decided.
    Policy(PacingPolicy),
    /// The policy wanted more than `max_lines_per_agent` per ready agent: capped.
    LineCap,
}

/// A pacing decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// New member calls to place now.
    pub dials: u32,
    pub rule: PacingRule,
}

/// A campaign's pacing state: the model, the windows and each controller's memory. The engine records what its
/// calls did ([`record_dial`](Self::record_dial), [`record_judged`](Self::record_judged),
/// [`record_talk`](Self::record_talk), [`record_wrap`](Self::record_wrap)) and asks for a decision.
#[derive(Debug, Clone)]
pub struct PacerState {
    pub model: TrafficModel,
    /// The closed loop's window (`window_sec`).
    pub recent: RollingCounts,
    /// The last hour (Webitel's `statistic_time`).
    pub hour: RollingCounts,
    /// Since the campaign started on this node (ViciDial's drop guard).
    pub since_start: OutcomeCounts,
    /// The closed loop's correction of the target share ([`CORRECTION_START`] at first; lower: more careful).
    pub correction: f64,
    pub corrected_at: Option<DateTime<Utc>>,
    pub webitel: baselines::WebitelState,
    pub vicidial: baselines::VicidialState,
    /// The chance that a talking agent is free within each horizon, by talk age (the policy's working memory).
    pub chances: predict::ChanceTable,
    /// The time to answer's distribution on a grid (the policy's working memory).
    pub answer_cdf: predict::AnswerCdf,
}

impl PacerState {
    pub fn new(settings: &PacingSettings) -> PacerState {
        PacerState {
            model: TrafficModel::default(),
            recent: RollingCounts::new(settings.window_sec),
            hour: RollingCounts::new(3600),
            since_start: OutcomeCounts::default(),
            correction: CORRECTION_START,
            corrected_at: None,
            webitel: baselines::WebitelState::default(),
            vicidial: baselines::VicidialState::default(),
            chances: predict::ChanceTable::default(),
            answer_cdf: predict::AnswerCdf::default(),
        }
    }

    fn count(&mut self, now: DateTime<Utc>, o: OutcomeCounts) {
        self.recent.add(now, o);
        self.hour.add(now, o);
        self.since_start.attempts += o.attempts;
        self.since_start.live += o.live;
        self.since_start.abandoned += o.abandoned;
        self.since_start.machine += o.machine;
    }

    /// A member call's ringing ended.
    pub fn record_dial(&mut self, now: DateTime<Utc>, s: &PacingSettings, outcome: DialOutcome) {
        self.model
            .observe_dial(now, outcome, s.half_life_sec, s.durations_half_life_sec);
        let machine = u64::from(matches!(outcome, DialOutcome::MachineAnswer { .. }));
        self.count(
            now,
            OutcomeCounts {
                attempts: 1,
                machine,
                ..Default::default()
            },
        );
    }

    /// A live answer was judged: joined to an agent within [`CONNECT_LIMIT_MS`] (`abandoned = false`) or not.
    pub fn record_judged(&mut self, now: DateTime<Utc>, abandoned: bool) {
        self.count(
            now,
            OutcomeCounts {
                live: 1,
                abandoned: u64::from(abandoned),
                ..Default::default()
            },
        );
    }

    /// A joined call ended after `secs` of talk.
    pub fn record_talk(&mut self, now: DateTime<Utc>, s: &PacingSettings, secs: f64) {
        self.model
            .observe_talk(now, secs, s.durations_half_life_sec);
    }

    /// An agent's wrap-up lasted `secs`.
    pub fn record_wrap(&mut self, now: DateTime<Utc>, s: &PacingSettings, secs: f64) {
        self.model
            .observe_wrap(now, secs, s.durations_half_life_sec);
    }

    /// How many member calls to place now. Deterministic in its inputs, the state and `now`; it moves the
    /// controllers' memory (the closed loop's correction, the baselines' levels) forward to `now`.
    pub fn decide(
        &mut self,
        s: &PacingSettings,
        inputs: &PacerInputs<'_>,
        now: DateTime<Utc>,
    ) -> Decision {
        let outstanding = inputs.outstanding();
        let one_to_one = inputs.agents.free.saturating_sub(outstanding);
        let ready = inputs.agents.ready();
        // Advance every controller, so a policy switched on later starts from the present.
        self.update_correction(s, inputs.abandon_30d_pct, now);
        let wanted = match s.policy {
            PacingPolicy::Fsdialer => {
                if self.model.live_answers_seen < u64::from(s.warmup_answers) {
                    Decision {
                        dials: one_to_one,
                        rule: PacingRule::WarmUp,
                    }
                } else {
                    // No estimates yet (no answer time seen): one call per free agent.
                    let dials = predict::dials(s, self, inputs).unwrap_or(one_to_one);
                    Decision {
                        dials,
                        rule: PacingRule::Policy(PacingPolicy::Fsdialer),
                    }
                }
            }
            PacingPolicy::Webitel => Decision {
                dials: baselines::webitel(self, inputs, now),
                rule: PacingRule::Policy(PacingPolicy::Webitel),
            },
            PacingPolicy::Vicidial => Decision {
                dials: baselines::vicidial(self, inputs, now),
                rule: PacingRule::Policy(PacingPolicy::Vicidial),
            },
            PacingPolicy::Progressive => Decision {
                dials: one_to_one,
                rule: PacingRule::Policy(PacingPolicy::Progressive),
            },
        };
        if inputs
            .abandon_30d_pct
            .is_some_and(|r| r >= s.max_abandon_pct)
        {
            return Decision {
                dials: one_to_one,
                rule: PacingRule::ThirtyDayLimit,
            };
        }
        if ready < s.min_agents_for_predictive {
            return Decision {
                dials: one_to_one,
                rule: PacingRule::FewAgents,
            };
        }
        let ringing = u32::try_from(inputs.ringing_ages_sec.len()).unwrap_or(u32::MAX);
        let line_cap = ((s.max_lines_per_agent * f64::from(ready)).floor() as u32)
            .saturating_sub(ringing)
            .max(one_to_one);
        if wanted.dials > line_cap {
            return Decision {
                dials: line_cap,
                rule: PacingRule::LineCap,
            };
        }
        wanted
    }

    /// The closed loop: the correction of the target grows while the short window's rate is under the loop's
    /// aim and shrinks while it is over, exponentially in time (`LOOP_RATE` per second at an error of one
    /// target). The window's rate is smoothed with `LOOP_PRIOR` live answers at the target, so a quiet start is
    /// not read as a perfect record. The rolling 30-day rate sets the aim ([`loop_aim`]) rather than being steered
    /// on: a record over the target makes the window aim under it by as much, so after an early burst the 30-day rate
    /// settles back at the target instead of holding the loop far under it for hours.
    fn update_correction(
        &mut self,
        s: &PacingSettings,
        abandon_30d_pct: Option<f64>,
        now: DateTime<Utc>,
    ) {
        let Some(at) = self.corrected_at.replace(now) else {
            return;
        };
        let dt = ((now - at).num_milliseconds().max(0) as f64 / 1000.0).min(60.0);
        if dt == 0.0 {
            return;
        }
        let target = s.target_abandon_pct / 100.0;
        let w = self.recent.total(now);
        let window = (w.abandoned as f64 + LOOP_PRIOR * target) / (w.live as f64 + LOOP_PRIOR);
        let aim = loop_aim(s, abandon_30d_pct);
        let error = ((aim - window) / target).clamp(-2.0, 1.0);
        self.correction = (self.correction * (LOOP_RATE * dt * error).exp())
            .clamp(CORRECTION_MIN, CORRECTION_MAX);
    }
}

/// The abandonment rate (a fraction) the closed loop steers its short window to: the target, lowered by as much
/// as the rolling 30-day rate is over it (`2·target − 30-day`), so the short windows make up for the record and
/// the record settles at the target instead of far under it; never under `AIM_FLOOR` of the target. A record
/// under the target leaves the aim at the target: a small team's record is too noisy to spend.
pub fn loop_aim(s: &PacingSettings, abandon_30d_pct: Option<f64>) -> f64 {
    let target = s.target_abandon_pct / 100.0;
    abandon_30d_pct.map_or(target, |record| {
        (2.0 * target - record / 100.0).clamp(target * AIM_FLOOR, target)
    })
}

/// The share of the target the loop's aim may fall to while the 30-day record is over the target.
const AIM_FLOOR: f64 = 0.25;

/// Live answers at the target rate the closed loop's window starts with.
const LOOP_PRIOR: f64 = 20.0;
/// How fast the correction moves (per second, at a 100 % error, in its logarithm): slow against the window it
/// reads, so the loop does not chase the window's own lag into a limit cycle, and a steady pacer wastes fewer
/// agent-minutes than one swinging around the same mean (`fsdialer pacing-sim`: 1/360 gave 0.1–0.4 talk-min per
/// agent-hour more than 1/180, with the same reaction to a mid-shift drop in the answer rate).
const LOOP_RATE: f64 = 1.0 / 360.0;
/// The correction a campaign starts with. The policy's overflow is a normal tail over a few horizons, and the
/// real one is fatter (the answers and the agents' ends are not matched at a few instants but all along, and
/// callers hang up before the 2 s): on the pacing simulator's profiles the loop settles the correction between
/// 0.005 and 0.1, so a campaign starts near there rather than over-dialling for its first minutes.
pub const CORRECTION_START: f64 = 0.05;
/// The loop's range: wide, as the model's share is a tail and moves by orders of magnitude with the margin.
const CORRECTION_MIN: f64 = 0.0005;
const CORRECTION_MAX: f64 = 3.0;
