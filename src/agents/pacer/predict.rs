//! fsdialer's own policy: dial so that the live answers to come match the agents free when they come.
//!
//! Over the horizon of one time-to-answer, the agents free are today's free agents plus those expected to finish
//! their call and wrap-up (or just their wrap-up) by then ([`agents_free_at`]): a talking agent by how long it has
//! talked, from the lognormal fitted to the talk times ([`chance_free_within`]), a wrapping one with
//! `1 − e^(−h/wrap)`; the live
//! answers to come are the callers already waiting, the calls still ringing (each with its probability of still
//! being answered by a person, given how long it has rung) and `n·p` from `n` new calls. Both are sums of
//! independent trials, so their difference is taken as normal, and the expected overflow `E[(answers − free)+]`
//! over the expected answers is the share of them that would find no agent. The pacer dials the largest `n`
//! whose share stays at the target times the closed loop's correction ([`PacerState::correction`]); a correction
//! under 1 also discounts the agents expected to come free, by the same factor.

use super::{LogNormalFit, PacerInputs, PacerState, PacingSettings};

/// The live probability below which the model is not trusted to multiply calls (1:1 instead).
const MIN_LIVE_PROB: f64 = 0.01;

/// New calls for fsdialer's policy (`None` without estimates).
pub fn dials(s: &PacingSettings, state: &mut PacerState, inputs: &PacerInputs<'_>) -> Option<u32> {
    let e = state.model.estimates()?;
    let p = e.live_prob;
    if p < MIN_LIVE_PROB {
        return None;
    }
    let m = e.machine_prob.clamp(0.0, 1.0 - p);
    let horizon = e.time_to_answer_sec.max(1.0);
    let agents = agents_free_at(state, inputs, horizon);
    let (free_mean, free_var) = (agents.mean, agents.variance);
    // Live answers to come from the calls in flight.
    let mut live_mean = f64::from(inputs.waiting);
    let mut live_var = 0.0;
    for &age in inputs.ringing_ages_sec {
        let still = (-age.max(0.0) / horizon).exp();
        let q = p * still / ((p + m) * still + (1.0 - p - m)).max(1e-9);
        live_mean += q;
        live_var += q * (1.0 - q);
    }
    let target = s.target_abandon_pct / 100.0 * state.correction;
    let share = |n: u32| {
        let n = f64::from(n);
        let answers = live_mean + n * p;
        if answers <= 0.0 {
            return 0.0;
        }
        let mean = answers - free_mean;
        let sd = (live_var + n * p * (1.0 - p) + free_var).sqrt();
        expected_positive_part(mean, sd) / answers
    };
    // The share grows with n: find the largest n within the target. The upper bound is generous; the line cap
    // applies afterwards.
    let upper = ((free_mean + 1.0) / p).ceil().min(100_000.0) as u32 * 2 + 1;
    let (mut lo, mut hi) = (0u32, upper);
    if share(0) > target {
        return Some(0);
    }
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if share(mid) <= target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// The agents expected free at a horizon: a sum of independent trials, by its mean and variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreeAgents {
    pub mean: f64,
    pub variance: f64,
}

/// The agents free `horizon` seconds from now: the free ones, and each busy or wrapping one with its chance of
/// being done by then. A talking agent's chance depends on how long it has talked (the lognormal talk shape, when
/// the model has one: [`chance_free_within`]); a busy agent not talking yet has a whole call ahead; without a shape
/// every call's end is taken as memoryless (`1 − e^(−h/mean)`). While the closed loop holds the campaign under its
/// target (correction below 1) the agents still busy are trusted that much less to come free in time, so the loop
/// can take the pacer all the way down to dialling for the free agents only.
pub fn agents_free_at(
    state: &mut PacerState,
    inputs: &PacerInputs<'_>,
    horizon: f64,
) -> FreeAgents {
    let a = inputs.agents;
    let mut free = FreeAgents {
        mean: f64::from(a.free),
        variance: 0.0,
    };
    let Some(e) = state.model.estimates() else {
        return free;
    };
    let trust = state.correction.min(1.0);
    let wrap = e.wrap_sec.unwrap_or(0.0);
    let mut add = |chance: f64, agents: u32| {
        let q = (chance * trust).clamp(0.0, 1.0);
        free.mean += f64::from(agents) * q;
        free.variance += f64::from(agents) * q * (1.0 - q);
    };
    add(chance_within(horizon, wrap), a.wrapping);
    let busy = usize::try_from(a.busy).unwrap_or(usize::MAX);
    let talking = &inputs.talk_ages_sec[..inputs.talk_ages_sec.len().min(busy)];
    let starting = a.busy - u32::try_from(talking.len()).unwrap_or(a.busy);
    match (e.talk_shape, e.talk_sec) {
        (Some(shape), _) => {
            let table = &mut state.chances;
            table.follow(shape, wrap, horizon);
            for &age in talking {
                add(table.chance(age), 1);
            }
            add(table.chance(0.0), starting);
        }
        (None, Some(talk)) => add(chance_within(horizon, talk + wrap), a.busy),
        (None, None) => {}
    }
    free
}

/// How far into the lognormal's upper tail (in standard deviations of `ln T`: 3.72, where one call in 10,000 is
/// still going) an agent's talk is followed; an older call is taken as that old, since beyond it the fitted tail
/// says little and the division by a vanishing survival would be noise.
const TAIL_Z: f64 = 3.72;
/// Gauss–Legendre nodes and weights on [−1, 1] (5 points).
const GAUSS: [(f64, f64); 5] = [
    (0.0, 0.568_888_888_888_889),
    (-0.538_469_310_105_683, 0.478_628_670_499_366),
    (0.538_469_310_105_683, 0.478_628_670_499_366),
    (-0.906_179_845_938_664, 0.236_926_885_056_189),
    (0.906_179_845_938_664, 0.236_926_885_056_189),
];

/// Probability that an agent who has talked `age` seconds is free — call and wrap-up over — within `horizon`
/// seconds: `P(T + W ≤ age + h | T > age)` for a lognormal talk `T` and an exponential wrap-up `W` of mean
/// `wrap_mean` (none under half a second). That is `P(age < T ≤ age + h)` less the calls that end in time but
/// whose wrap-up does not, `∫ f(t)·e^(−(age+h−t)/w) dt` over the horizon (Gauss–Legendre), over `P(T > age)`.
pub fn chance_free_within(horizon: f64, age: f64, shape: LogNormalFit, wrap_mean: f64) -> f64 {
    if horizon <= 0.0 {
        return 0.0;
    }
    let age = age.clamp(0.0, (shape.mu + TAIL_Z * shape.sigma).exp());
    let survival = |t: f64| {
        if t <= 0.0 {
            1.0
        } else {
            1.0 - normal_cdf((t.ln() - shape.mu) / shape.sigma)
        }
    };
    let alive = survival(age);
    if alive <= 0.0 {
        return 1.0;
    }
    let mut ended = alive - survival(age + horizon);
    if wrap_mean > 0.5 {
        let end = age + horizon;
        let half = horizon / 2.0;
        let mid = age + half;
        let still_wrapping: f64 = GAUSS
            .iter()
            .map(|&(x, w)| {
                let t = mid + half * x;
                w * lognormal_pdf(t, shape) * (-(end - t) / wrap_mean).exp()
            })
            .sum::<f64>()
            * half;
        ended -= still_wrapping;
    }
    (ended / alive).clamp(0.0, 1.0)
}

/// Points of a [`ChanceTable`]: it spans the talk ages up to the tail's cap, so its step is the cap over this.
const TABLE_POINTS: usize = 256;
/// How far (in log units, ≈ relative) a table's talk shape, wrap-up or horizon may drift from the model's before
/// it is computed again.
const TABLE_TOLERANCE: f64 = 0.01;

/// [`chance_free_within`] on a grid of talk ages for one talk shape, wrap-up and horizon, read by linear
/// interpolation: a decision asks it once per talking agent, many times a second, and the shape, wrap-up and
/// horizon (durations, learnt slowly) seldom move, so the grid is computed again only when one of them drifted by
/// more than [`TABLE_TOLERANCE`]. Bounded: [`TABLE_POINTS`] values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChanceTable {
    basis: Option<TableBasis>,
    step_sec: f64,
    chances: Vec<f64>,
}

/// What a [`ChanceTable`] was computed for.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TableBasis {
    shape: LogNormalFit,
    wrap_sec: f64,
    horizon_sec: f64,
}

impl TableBasis {
    fn close_to(&self, other: &TableBasis) -> bool {
        let log_gap = |a: f64, b: f64| (a.max(0.01).ln() - b.max(0.01).ln()).abs();
        (self.shape.mu - other.shape.mu).abs() <= TABLE_TOLERANCE
            && log_gap(self.shape.sigma, other.shape.sigma) <= TABLE_TOLERANCE
            && log_gap(self.wrap_sec, other.wrap_sec) <= TABLE_TOLERANCE
            && log_gap(self.horizon_sec, other.horizon_sec) <= TABLE_TOLERANCE
    }
}

impl ChanceTable {
    /// Computes the grid again if the shape, wrap-up or horizon moved beyond the tolerance.
    pub fn follow(&mut self, shape: LogNormalFit, wrap_sec: f64, horizon_sec: f64) {
        let basis = TableBasis {
            shape,
            wrap_sec,
            horizon_sec,
        };
        if self.basis.is_some_and(|b| b.close_to(&basis)) {
            return;
        }
        let cap = (shape.mu + TAIL_Z * shape.sigma).exp();
        self.step_sec = cap / (TABLE_POINTS - 1) as f64;
        self.chances.clear();
        self.chances.extend(
            (0..TABLE_POINTS).map(|i| {
                chance_free_within(horizon_sec, i as f64 * self.step_sec, shape, wrap_sec)
            }),
        );
        self.basis = Some(basis);
    }

    /// The chance for a call `age_sec` old (the tail's cap for older ones); 0 before the table is computed.
    pub fn chance(&self, age_sec: f64) -> f64 {
        let (Some(first), Some(last)) = (self.chances.first(), self.chances.last()) else {
            return 0.0;
        };
        if self.step_sec <= 0.0 || age_sec <= 0.0 {
            return *first;
        }
        let at = age_sec / self.step_sec;
        let i = at.floor() as usize;
        match (self.chances.get(i), self.chances.get(i + 1)) {
            (Some(a), Some(b)) => a + (b - a) * (at - i as f64),
            _ => *last,
        }
    }
}

fn lognormal_pdf(t: f64, shape: LogNormalFit) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    normal_pdf((t.ln() - shape.mu) / shape.sigma) / (t * shape.sigma)
}

/// Probability that an exponentially distributed time with this mean ends within `horizon`.
fn chance_within(horizon: f64, mean: f64) -> f64 {
    if mean <= 0.5 {
        return 1.0;
    }
    1.0 - (-horizon / mean).exp()
}

/// `E[max(X, 0)]` for `X ~ N(mean, sd²)`.
pub fn expected_positive_part(mean: f64, sd: f64) -> f64 {
    if sd <= 1e-9 {
        return mean.max(0.0);
    }
    let z = mean / sd;
    mean * normal_cdf(z) + sd * normal_pdf(z)
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The standard normal CDF (Abramowitz & Stegun 26.2.17, error under 7.5e-8).
fn normal_cdf(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.231_641_9 * z.abs());
    let poly = t
        * (0.319_381_530
            + t * (-0.356_563_782
                + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    let upper = normal_pdf(z) * poly;
    if z >= 0.0 { 1.0 - upper } else { upper }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_helpers_match_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.0) - 0.158_655).abs() < 1e-5);
        // E[max(Z, 0)] = 1/sqrt(2π) for the standard normal.
        assert!((expected_positive_part(0.0, 1.0) - 0.398_942).abs() < 1e-5);
        assert_eq!(expected_positive_part(-3.0, 0.0), 0.0);
    }

    const TALK: LogNormalFit = LogNormalFit {
        mu: 4.499_809_670_330_265, // ln 90
        sigma: 0.6,
    };

    #[test]
    fn without_wrap_up_the_chance_is_the_lognormal_talk_ending_given_its_age() {
        // At the median (90 s) half the calls are still going; by 99 s, 1 − Φ(ln 1.1 / 0.6) = 0.4369 are.
        let p = chance_free_within(9.0, 90.0, TALK, 0.0);
        assert!((p - (0.5 - 0.436_866) / 0.5).abs() < 1e-4, "{p}");
        // A call just begun almost never ends within 9 s; one at its median does one time in eight.
        let fresh = chance_free_within(9.0, 0.0, TALK, 0.0);
        assert!(fresh < 1e-3, "{fresh}");
        // Far in the tail the age is capped: the chance stays finite and positive.
        let old = chance_free_within(9.0, 1e6, TALK, 0.0);
        assert!(old > 0.0 && old < 1.0, "{old}");
    }

    #[test]
    fn the_table_reads_the_chance_of_any_age_within_a_hair_and_follows_a_new_shape() {
        let mut table = ChanceTable::default();
        assert_eq!(table.chance(90.0), 0.0, "not computed yet");
        table.follow(TALK, 10.0, 9.0);
        for age in [0.0, 3.3, 45.0, 90.0, 131.7, 400.0, 900.0, 1e7] {
            let direct = chance_free_within(9.0, age, TALK, 10.0);
            let read = table.chance(age);
            assert!(
                (read - direct).abs() < 2e-3,
                "age {age}: {read} against {direct}"
            );
        }
        // Twice the talk: computed again.
        let longer = LogNormalFit {
            mu: TALK.mu + std::f64::consts::LN_2,
            ..TALK
        };
        table.follow(longer, 10.0, 9.0);
        let direct = chance_free_within(9.0, 180.0, longer, 10.0);
        assert!((table.chance(180.0) - direct).abs() < 2e-3);
    }

    #[test]
    fn a_wrap_up_after_the_call_is_added_to_the_remaining_talk() {
        // P(T + W ≤ age + h | T > age) by a fine Riemann sum over the talk's end, W exponential of mean 10 s.
        let (age, h, wrap) = (90.0, 9.0, 10.0);
        let steps = 100_000;
        let dt = h / f64::from(steps);
        let direct: f64 = (0..steps)
            .map(|i| {
                let t = age + (f64::from(i) + 0.5) * dt;
                lognormal_pdf(t, TALK) * (1.0 - (-(age + h - t) / wrap).exp()) * dt
            })
            .sum::<f64>()
            / 0.5;
        let p = chance_free_within(h, age, TALK, wrap);
        assert!((p - direct).abs() < 1e-5, "{p} against {direct}");
        assert!(p < chance_free_within(h, age, TALK, 0.0));
    }
}
