//! The online traffic model a predictive pacer decides with: the probability that a dialled call is answered by
//! a live person (and by a machine), the time to answer, talk time and wrap-up time, each an exponentially
//! weighted mean whose half-life is measured in time, so the model follows a change of traffic at the same speed
//! whether calls are many or few. The answer probabilities follow `half_life_sec` (short: the pacer must react to
//! a change of answer rate within seconds); the durations follow `durations_half_life_sec` (long: a mean of a few
//! dozen calls swings by a fifth, and the pacer would chase that noise).
//!
//! Talk time and the time to answer also have a shape: a lognormal fitted online to the logarithms of the times
//! (their weighted mean and spread, [`LogNormalTracker`]), so the pacer can ask how likely an agent who has talked
//! for a while is to finish soon, and when the answers of the calls ringing (and of the calls it would place) come.
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

/// A lognormal distribution of talk seconds: `ln(talk)` is normal with this mean and standard deviation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormalFit {
    pub mu: f64,
    pub sigma: f64,
}

impl LogNormalFit {
    /// `P(X ≤ t)`.
    pub fn cdf(&self, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        super::predict::normal_cdf((t.ln() - self.mu) / self.sigma)
    }

    /// The time under which a share `Φ(z)` of the times fall.
    pub fn quantile_at_z(&self, z: f64) -> f64 {
        (self.mu + z * self.sigma).exp()
    }
}

/// Times seen before a lognormal fit is trusted (its spread needs a few).
pub const MIN_TIMES_FOR_SHAPE: u64 = 10;
/// The spread a fit is never narrower than: a spread of nearly nothing would make a time a certainty.
const MIN_LOG_SIGMA: f64 = 0.1;

/// A lognormal fitted online to times: the exponentially weighted mean of their logarithms and of its square.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LogNormalTracker {
    log: DecayingMean,
    log_sq: DecayingMean,
    /// Times seen since the campaign started.
    pub seen: u64,
}

impl LogNormalTracker {
    /// Adds a time (a time under a second is taken as one second: the logarithm needs a positive time).
    pub fn observe(&mut self, now: DateTime<Utc>, secs: f64, half_life_sec: f64) {
        if !secs.is_finite() {
            return;
        }
        let ln = secs.max(1.0).ln();
        self.log.observe(now, ln, half_life_sec);
        self.log_sq.observe(now, ln * ln, half_life_sec);
        self.seen += 1;
    }

    /// The fit, once [`MIN_TIMES_FOR_SHAPE`] times were seen.
    pub fn fit(&self) -> Option<LogNormalFit> {
        if self.seen < MIN_TIMES_FOR_SHAPE {
            return None;
        }
        let mu = self.log.mean()?;
        let variance = self.log_sq.mean()? - mu * mu;
        Some(LogNormalFit {
            mu,
            sigma: variance.max(0.0).sqrt().max(MIN_LOG_SIGMA),
        })
    }
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
    /// The talk times' lognormal shape (`None` until [`MIN_TIMES_FOR_SHAPE`] calls ended).
    pub talk_shape: Option<LogNormalFit>,
    /// The answered calls' times to answer, as a lognormal (`None` until [`MIN_TIMES_FOR_SHAPE`] answers).
    pub answer_shape: Option<LogNormalFit>,
}

/// The traffic model of one campaign.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficModel {
    live: DecayingMean,
    machine: DecayingMean,
    time_to_answer: DecayingMean,
    talk: DecayingMean,
    wrap: DecayingMean,
    /// The talk times' shape.
    talk_shape: LogNormalTracker,
    /// The times to answer's shape.
    answer_shape: LogNormalTracker,
    /// Live answers seen since the campaign started (the warm-up counts them).
    pub live_answers_seen: u64,
    /// Dial outcomes seen since the campaign started.
    pub outcomes_seen: u64,
}

impl TrafficModel {
    /// A member call's ringing ended: the answer probabilities follow `half_life_sec`, the time to answer
    /// `durations_half_life_sec`.
    pub fn observe_dial(
        &mut self,
        now: DateTime<Utc>,
        outcome: DialOutcome,
        half_life_sec: f64,
        durations_half_life_sec: f64,
    ) {
        let (live, machine, after) = match outcome {
            DialOutcome::LiveAnswer { after_sec } => (1.0, 0.0, Some(after_sec)),
            DialOutcome::MachineAnswer { after_sec } => (0.0, 1.0, Some(after_sec)),
            DialOutcome::NotAnswered => (0.0, 0.0, None),
        };
        self.live.observe(now, live, half_life_sec);
        self.machine.observe(now, machine, half_life_sec);
        if let Some(a) = after {
            self.time_to_answer
                .observe(now, a.max(0.0), durations_half_life_sec);
            self.answer_shape
                .observe(now, a.max(0.0), durations_half_life_sec);
        }
        self.outcomes_seen += 1;
        if live > 0.0 {
            self.live_answers_seen += 1;
        }
    }

    /// A joined call ended after `secs` of talk.
    pub fn observe_talk(&mut self, now: DateTime<Utc>, secs: f64, half_life_sec: f64) {
        if !secs.is_finite() {
            return;
        }
        self.talk.observe(now, secs.max(0.0), half_life_sec);
        self.talk_shape.observe(now, secs, half_life_sec);
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
            talk_shape: self.talk_shape.fit(),
            answer_shape: self.answer_shape.fit(),
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
        m.observe_dial(t0, DialOutcome::LiveAnswer { after_sec: 6.0 }, 60.0, 60.0);
        m.observe_dial(
            t0,
            DialOutcome::MachineAnswer { after_sec: 10.0 },
            60.0,
            60.0,
        );
        m.observe_dial(t0, DialOutcome::NotAnswered, 60.0, 60.0);
        m.observe_dial(t0, DialOutcome::NotAnswered, 60.0, 60.0);
        let e = m.estimates().unwrap();
        assert!((e.live_prob - 0.25).abs() < 1e-9);
        assert!((e.machine_prob - 0.25).abs() < 1e-9);
        assert!((e.time_to_answer_sec - 8.0).abs() < 1e-9);
        assert_eq!(m.live_answers_seen, 1);
        assert_eq!(e.talk_sec, None);
        assert_eq!(e.talk_shape, None);
    }

    #[test]
    fn the_talk_shape_is_the_lognormal_of_the_talk_times_once_enough_calls_ended() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut m = TrafficModel::default();
        m.observe_dial(t0, DialOutcome::LiveAnswer { after_sec: 8.0 }, 20.0, 600.0);
        // Talk times e^4 and e^5 in turn: ln-mean 4.5, ln-sd 0.5.
        for i in 0..MIN_TIMES_FOR_SHAPE {
            let ln = if i % 2 == 0 { 4.0 } else { 5.0 };
            assert_eq!(m.estimates().unwrap().talk_shape, None, "{i} calls");
            m.observe_talk(t0, f64::exp(ln), 600.0);
        }
        let fit = m.estimates().unwrap().talk_shape.expect("ten calls ended");
        assert!((fit.mu - 4.5).abs() < 1e-9, "{fit:?}");
        assert!((fit.sigma - 0.5).abs() < 1e-6, "{fit:?}");
    }
}
