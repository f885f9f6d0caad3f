//! The online traffic model a predictive pacer decides with: the probability that a dialled call is answered by
//! a live person (and by a machine), the time to answer, talk time and wrap-up time, each an exponentially
//! weighted mean whose half-life is measured in time (`half_life_sec`), so the model follows a change of traffic
//! at the same speed whether calls are many or few.
//!
//! The model is a plain value: the engine (or the pacing simulator) feeds it what its calls did, and the pacer
//! reads it. Nothing here reads a clock.

use chrono::{DateTime, Utc};

/// A mean whose observations lose half their weight every half-life (in seconds of the time they are given).
/// Its mean is that of the weighted observations; it has none before the first.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DecayingMean {
    sum: f64,
    weight: f64,
    at: Option<DateTime<Utc>>,
}

impl DecayingMean {
    /// Adds one observation at `now`, after decaying the older ones.
    pub fn observe(&mut self, now: DateTime<Utc>, value: f64, half_life_sec: f64) {
        if !value.is_finite() {
            return;
        }
        if let Some(at) = self.at {
            let dt = (now - at).num_milliseconds().max(0) as f64 / 1000.0;
            let keep = decay(dt, half_life_sec);
            self.sum *= keep;
            self.weight *= keep;
        }
        self.at = Some(self.at.map_or(now, |a| a.max(now)));
        self.sum += value;
        self.weight += 1.0;
    }

    /// The weighted mean, if anything was observed.
    pub fn mean(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.sum / self.weight)
    }
}

/// The share of an observation's weight left after `dt` seconds.
fn decay(dt: f64, half_life_sec: f64) -> f64 {
    if half_life_sec <= 0.0 {
        return 0.0;
    }
    (-dt / half_life_sec * std::f64::consts::LN_2).exp()
}

/// How a dialled member call ended its ringing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DialOutcome {
    /// Answered by a live person after this many seconds of ringing.
    LiveAnswer { after_sec: f64 },
    /// Answered by an answering machine (as AMD decided) after this many seconds. Never counted in abandonment.
    MachineAnswer { after_sec: f64 },
    /// Not answered: no answer, busy, rejected, failed.
    NotAnswered,
}

/// What the model currently believes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimates {
    /// Probability that a dialled call is answered by a live person.
    pub live_prob: f64,
    /// Probability that a dialled call is answered by a machine.
    pub machine_prob: f64,
    /// Mean seconds from the originate to the answer, of answered calls.
    pub time_to_answer_sec: f64,
    /// Mean talk seconds of a joined call (`None`: no call has ended yet).
    pub talk_sec: Option<f64>,
    /// Mean wrap-up seconds after a call (`None`: none seen yet).
    pub wrap_sec: Option<f64>,
}

/// The traffic model of one campaign.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficModel {
    live: DecayingMean,
    machine: DecayingMean,
    time_to_answer: DecayingMean,
    talk: DecayingMean,
    wrap: DecayingMean,
    /// Live answers seen since the campaign started (the warm-up counts them).
    pub live_answers_seen: u64,
    /// Dial outcomes seen since the campaign started.
    pub outcomes_seen: u64,
}

impl TrafficModel {
    /// A member call's ringing ended.
    pub fn observe_dial(&mut self, now: DateTime<Utc>, outcome: DialOutcome, half_life_sec: f64) {
        let (live, machine, after) = match outcome {
            DialOutcome::LiveAnswer { after_sec } => (1.0, 0.0, Some(after_sec)),
            DialOutcome::MachineAnswer { after_sec } => (0.0, 1.0, Some(after_sec)),
            DialOutcome::NotAnswered => (0.0, 0.0, None),
        };
        self.live.observe(now, live, half_life_sec);
        self.machine.observe(now, machine, half_life_sec);
        if let Some(a) = after {
            self.time_to_answer.observe(now, a.max(0.0), half_life_sec);
        }
        self.outcomes_seen += 1;
        if live > 0.0 {
            self.live_answers_seen += 1;
        }
    }

    /// A joined call ended after `secs` of talk.
    pub fn observe_talk(&mut self, now: DateTime<Utc>, secs: f64, half_life_sec: f64) {
        self.talk.observe(now, secs.max(0.0), half_life_sec);
    }

    /// An agent's wrap-up after a call lasted `secs`.
    pub fn observe_wrap(&mut self, now: DateTime<Utc>, secs: f64, half_life_sec: f64) {
        self.wrap.observe(now, secs.max(0.0), half_life_sec);
    }

    /// The current estimates (`None` until a dial outcome and an answer were seen).
    pub fn estimates(&self) -> Option<Estimates> {
        Some(Estimates {
            live_prob: self.live.mean()?,
            machine_prob: self.machine.mean().unwrap_or(0.0),
            time_to_answer_sec: self.time_to_answer.mean()?,
            talk_sec: self.talk.mean(),
            wrap_sec: self.wrap.mean(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn an_observation_one_half_life_old_weighs_half_as_much_as_a_new_one() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut m = DecayingMean::default();
        m.observe(t0, 0.0, 10.0);
        m.observe(t0 + Duration::seconds(10), 3.0, 10.0);
        // weights 0.5 and 1: (0·0.5 + 3·1) / 1.5
        assert!((m.mean().unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn the_model_separates_live_and_machine_answers() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut m = TrafficModel::default();
        m.observe_dial(t0, DialOutcome::LiveAnswer { after_sec: 6.0 }, 60.0);
        m.observe_dial(t0, DialOutcome::MachineAnswer { after_sec: 10.0 }, 60.0);
        m.observe_dial(t0, DialOutcome::NotAnswered, 60.0);
        m.observe_dial(t0, DialOutcome::NotAnswered, 60.0);
        let e = m.estimates().unwrap();
        assert!((e.live_prob - 0.25).abs() < 1e-9);
        assert!((e.machine_prob - 0.25).abs() < 1e-9);
        assert!((e.time_to_answer_sec - 8.0).abs() < 1e-9);
        assert_eq!(m.live_answers_seen, 1);
        assert_eq!(e.talk_sec, None);
    }
}
