//! fsdialer's own policy: dial so that the live answers to come match the agents free when they come.
//!
//! Answers do not all come at once: a new call is answered after a lognormal time (fitted online to the times to
//! answer), a call that has rung a while is answered later or never. So the pacer looks at several horizons `h`
//! spread over the time to answer ([`Horizons`]: now, and five quantiles of the time to answer) and, at each,
//! compares the live answers due by `h` with the agents free by `h` plus a grace (a caller may wait a moment for
//! an agent; [`GRACE_SEC`]). The agents free by then are today's free agents plus those expected to finish their
//! call and wrap-up (or just their wrap-up) by then ([`agents_free_by`]): a talking agent by how long it has
//! talked, from the lognormal fitted to the talk times ([`chance_free_within`]), a wrapping one with
//! `1 − e^(−h/wrap)`. The answers due are the callers already waiting, each ringing call's chance of a live
//! answer by `h` given how long it has rung, and `n·p·G(h)` from `n` new calls (`G` the time to answer's
//! distribution). Both are sums of independent trials, so their difference is taken as normal; a caller who finds
//! no agent at some horizon is one the cohort cannot serve, so the share of the answers that would find none is
//! the largest expected overflow `E[(answers − free)+]` over the horizons, over all the answers to come. The pacer
//! dials the largest `n` whose share stays at the target times the closed loop's correction
//! ([`PacerState::correction`]), which calibrates the model's normal tail to the abandonment it measures.

use super::{Estimates, LogNormalFit, PacerInputs, PacerState, PacingSettings};

/// The live probability below which the model is not trusted to multiply calls (1:1 instead).
const MIN_LIVE_PROB: f64 = 0.01;
/// How long a live caller may wait for an agent and still be joined in time: the 2 s rule less the agent leg's
/// answer and the bridge.
pub const GRACE_SEC: f64 = 1.0;
/// The most calls one decision may place (the line cap is usually far lower).
const MAX_DIALS: u32 = 100_000;
/// The spread of the time to answer assumed until enough answers were timed to fit it.
const DEFAULT_ANSWER_SIGMA: f64 = 0.5;
/// How many horizons the pacer looks at.
pub const HORIZONS: usize = 6;
/// The horizons after the first (now): quantiles of the time to answer, in standard deviations of its logarithm
/// (≈ the 16th, 38th, 66th, 86th and 98th percentiles).
const HORIZON_Z: [f64; HORIZONS - 1] = [-1.0, -0.3, 0.4, 1.1, 2.0];

/// The times ahead at which answers and free agents are compared: now, and quantiles of the time to answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Horizons {
    pub sec: [f64; HORIZONS],
}

impl Horizons {
    pub fn of(answer: LogNormalFit) -> Horizons {
        let mut sec = [0.0; HORIZONS];
        for (h, z) in sec[1..].iter_mut().zip(HORIZON_Z) {
            *h = answer.quantile_at_z(z);
        }
        Horizons { sec }
    }
}

/// A sum of independent trials, by its mean and variance.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Trials {
    pub mean: f64,
    pub variance: f64,
}

impl Trials {
    fn add(&mut self, q: f64, times: f64) {
        self.mean += times * q;
        self.variance += times * q * (1.0 - q);
    }
}

/// New calls for fsdialer's policy (`None` without estimates).
pub fn dials(s: &PacingSettings, state: &mut PacerState, inputs: &PacerInputs<'_>) -> Option<u32> {
    let e = state.model.estimates()?;
    let p = e.live_prob;
    if p < MIN_LIVE_PROB {
        return None;
    }
    let m = e.machine_prob.clamp(0.0, 1.0 - p);
    let answer = e.answer_shape.unwrap_or_else(|| {
        // A lognormal of the mean seen and a typical spread: mean = e^(μ + σ²/2).
        let sigma = DEFAULT_ANSWER_SIGMA;
        LogNormalFit {
            mu: e.time_to_answer_sec.max(1.0).ln() - sigma * sigma / 2.0,
            sigma,
        }
    });
    let horizons = Horizons::of(answer);
    let free = agents_free_by(state, &e, inputs, &horizons);
    let cdf = &mut state.answer_cdf;
    cdf.follow(answer, horizons.sec[HORIZONS - 1]);
    // Live answers due by each horizon from the calls in flight, and all of theirs to come.
    let waiting = f64::from(inputs.waiting);
    let mut due = [Trials {
        mean: waiting,
        variance: 0.0,
    }; HORIZONS];
    let mut to_come = waiting;
    for &age in inputs.ringing_ages_sec {
        let answered_by_now = cdf.at(age);
        // Still ringing at this age: a callee who answers later, or one who never will.
        let still = (1.0 - (p + m) * answered_by_now).max(1e-9);
        to_come += p * (1.0 - answered_by_now) / still;
        for (d, &h) in due.iter_mut().zip(&horizons.sec).skip(1) {
            let q = p * (cdf.at(age + h) - answered_by_now) / still;
            d.add(q.clamp(0.0, 1.0), 1.0);
        }
    }
    // A new call's chance of a live answer by each horizon.
    let new_by: [f64; HORIZONS] = horizons.sec.map(|h| p * cdf.at(h));
    let target = s.target_abandon_pct / 100.0 * state.correction;
    let share = |n: u32| {
        let n = f64::from(n);
        let answers = to_come + n * p;
        if answers <= 0.0 {
            return 0.0;
        }
        let worst = (0..HORIZONS)
            .map(|k| {
                let q = new_by[k];
                let mean = due[k].mean + n * q - free[k].mean;
                let sd = (due[k].variance + n * q * (1.0 - q) + free[k].variance).sqrt();
                expected_positive_part(mean, sd)
            })
            .fold(0.0, f64::max);
        worst / answers
    };
    // The share grows with n: find the largest n within the target, galloping up from 0 (a decision usually
    // places a few calls, or none) and then halving the last step. The line cap applies afterwards.
    if share(0) > target {
        return Some(0);
    }
    let (mut lo, mut hi) = (0u32, 1u32);
    while share(hi) <= target {
        lo = hi;
        if hi >= MAX_DIALS {
            return Some(hi);
        }
        hi = (hi * 2).min(MAX_DIALS);
    }
    // share(lo) is within the target, share(hi) is not.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if share(mid) <= target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// The agents expected free by each horizon (and its grace).
pub type FreeAgents = Trials;

/// The agents free by each horizon plus [`GRACE_SEC`]: the free ones, and each busy or wrapping one with its
/// chance of being done by then. A talking agent's chance depends on how long it has talked (the lognormal talk
/// shape, when the model has one: [`chance_free_within`]); a busy agent not talking yet has a whole call ahead;
/// without a shape every call's end is taken as memoryless (`1 − e^(−h/mean)`). (An earlier version also
/// discounted the busy agents by the closed loop's correction; on the pacing simulator that cost 0.7 talk-min
/// per agent-hour at the same abandonment: the loop acts on the target share alone.)
pub fn agents_free_by(
    state: &mut PacerState,
    e: &Estimates,
    inputs: &PacerInputs<'_>,
    horizons: &Horizons,
) -> [FreeAgents; HORIZONS] {
    let a = inputs.agents;
    let mut free = [FreeAgents {
        mean: f64::from(a.free),
        variance: 0.0,
    }; HORIZONS];
    let wrap = e.wrap_sec.unwrap_or(0.0);
    let busy = usize::try_from(a.busy).unwrap_or(usize::MAX);
    let talking = &inputs.talk_ages_sec[..inputs.talk_ages_sec.len().min(busy)];
    let starting = f64::from(a.busy - u32::try_from(talking.len()).unwrap_or(a.busy));
    let within = horizons.sec.map(|h| h + GRACE_SEC);
    let mut add = |chances: [f64; HORIZONS], agents: f64| {
        for (f, chance) in free.iter_mut().zip(chances) {
            f.add(chance.clamp(0.0, 1.0), agents);
        }
    };
    add(
        within.map(|h| chance_within(h, wrap)),
        f64::from(a.wrapping),
    );
    match (e.talk_shape, e.talk_sec) {
        (Some(shape), _) => {
            let table = &mut state.chances;
            table.follow(shape, wrap, within);
            for &age in talking {
                add(table.chances(age), 1.0);
            }
            add(table.chances(0.0), starting);
        }
        (None, Some(talk)) => add(
            within.map(|h| chance_within(h, talk + wrap)),
            f64::from(a.busy),
        ),
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

/// Points of an [`AnswerCdf`] table.
const CDF_POINTS: usize = 512;

/// The time to answer's distribution `G` on a grid, read by linear interpolation: a decision reads it a few
/// times per ringing call, many times a second, and the fitted shape moves slowly, so the grid is computed again
/// only when the shape drifted by more than [`TABLE_TOLERANCE`]. It spans the ages a ringing call may reach
/// before the tail's cap, plus the longest horizon. Bounded: [`CDF_POINTS`] values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerCdf {
    basis: Option<(LogNormalFit, f64)>,
    step_sec: f64,
    values: Vec<[f64; 1]>,
}

impl AnswerCdf {
    /// Computes the grid again if the shape moved beyond the tolerance or the horizon outgrew the grid.
    pub fn follow(&mut self, shape: LogNormalFit, longest_horizon_sec: f64) {
        if let Some((b, longest)) = self.basis
            && shape_close(b, shape)
            && longest_horizon_sec <= longest
        {
            return;
        }
        let longest = longest_horizon_sec * 1.1;
        let span = shape.quantile_at_z(TAIL_Z) + longest;
        self.step_sec = span / (CDF_POINTS - 1) as f64;
        self.values.clear();
        self.values
            .extend((0..CDF_POINTS).map(|i| [shape.cdf(i as f64 * self.step_sec)]));
        self.basis = Some((shape, longest));
    }

    /// `G(t)`: 0 before the grid is computed or for `t ≤ 0`, the grid's last value beyond it.
    pub fn at(&self, t: f64) -> f64 {
        if t <= 0.0 || self.step_sec <= 0.0 {
            return 0.0;
        }
        lerp(&self.values, t / self.step_sec)[0]
    }
}

/// The values at a fractional index of a grid of rows of `N`, by linear interpolation (the last row beyond
/// it, zeros if empty).
fn lerp<const N: usize>(rows: &[[f64; N]], at: f64) -> [f64; N] {
    // `at` is positive (callers pass a positive time over a positive step): truncation is the floor.
    let i = at as usize;
    match (rows.get(i), rows.get(i + 1)) {
        (Some(a), Some(b)) => {
            let f = at - i as f64;
            std::array::from_fn(|k| a[k] + (b[k] - a[k]) * f)
        }
        _ => rows.last().copied().unwrap_or([0.0; N]),
    }
}

/// How far apart two sizes are in log units (≈ relative), sizes under 0.01 taken as 0.01.
fn log_gap(a: f64, b: f64) -> f64 {
    (a.max(0.01).ln() - b.max(0.01).ln()).abs()
}

/// Whether two fits are within [`TABLE_TOLERANCE`] of each other (a table computed for one serves the other).
fn shape_close(a: LogNormalFit, b: LogNormalFit) -> bool {
    (a.mu - b.mu).abs() <= TABLE_TOLERANCE && log_gap(a.sigma, b.sigma) <= TABLE_TOLERANCE
}

/// Points of a [`ChanceTable`]: it spans the talk ages up to the tail's cap, so its step is the cap over this.
const TABLE_POINTS: usize = 128;
/// How far (in log units, ≈ relative) a table's talk shape or wrap-up may drift from the model's before it is
/// computed again.
const TABLE_TOLERANCE: f64 = 0.05;
/// The same for the horizons: they follow the time to answer's fit, which moves with every answer, and a
/// horizon a few per cent off changes the agents expected free by a few per cent of the few that end within it.
const HORIZON_TOLERANCE: f64 = 0.05;

/// [`chance_free_within`] on a grid of talk ages for one talk shape and wrap-up, at every horizon, read by
/// linear interpolation: a decision asks it once per talking agent, many times a second, and the shape, wrap-up
/// and horizons (durations, learnt slowly) seldom move, so the grid is computed again only when one of them
/// drifted by more than [`TABLE_TOLERANCE`] ([`HORIZON_TOLERANCE`] for the horizons). Bounded: [`TABLE_POINTS`]
/// rows of [`HORIZONS`] values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChanceTable {
    basis: Option<TableBasis>,
    step_sec: f64,
    chances: Vec<[f64; HORIZONS]>,
}

/// What a [`ChanceTable`] was computed for.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TableBasis {
    shape: LogNormalFit,
    wrap_sec: f64,
    within_sec: [f64; HORIZONS],
}

impl TableBasis {
    fn close_to(&self, other: &TableBasis) -> bool {
        shape_close(self.shape, other.shape)
            && log_gap(self.wrap_sec, other.wrap_sec) <= TABLE_TOLERANCE
            && self
                .within_sec
                .iter()
                .zip(&other.within_sec)
                .all(|(a, b)| log_gap(*a, *b) <= HORIZON_TOLERANCE)
    }
}

impl ChanceTable {
    /// Computes the grid again if the shape, wrap-up or a horizon moved beyond the tolerance.
    pub fn follow(&mut self, shape: LogNormalFit, wrap_sec: f64, within_sec: [f64; HORIZONS]) {
        let basis = TableBasis {
            shape,
            wrap_sec,
            within_sec,
        };
        if self.basis.is_some_and(|b| b.close_to(&basis)) {
            return;
        }
        let cap = (shape.mu + TAIL_Z * shape.sigma).exp();
        self.step_sec = cap / (TABLE_POINTS - 1) as f64;
        self.chances.clear();
        self.chances.extend((0..TABLE_POINTS).map(|i| {
            let age = i as f64 * self.step_sec;
            within_sec.map(|h| chance_free_within(h, age, shape, wrap_sec))
        }));
        self.basis = Some(basis);
    }

    /// The chances, at each horizon, for a call `age_sec` old (the tail's cap for older ones); 0 before the
    /// table is computed.
    pub fn chances(&self, age_sec: f64) -> [f64; HORIZONS] {
        let Some(first) = self.chances.first() else {
            return [0.0; HORIZONS];
        };
        if self.step_sec <= 0.0 || age_sec <= 0.0 {
            return *first;
        }
        lerp(&self.chances, age_sec / self.step_sec)
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
pub fn normal_cdf(z: f64) -> f64 {
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
        assert_eq!(table.chances(90.0)[0], 0.0, "not computed yet");
        let mut within = [9.0; HORIZONS];
        within[HORIZONS - 1] = 20.0;
        table.follow(TALK, 10.0, within);
        for age in [0.0, 3.3, 45.0, 90.0, 131.7, 400.0, 900.0, 1e7] {
            let direct = chance_free_within(9.0, age, TALK, 10.0);
            let read = table.chances(age)[0];
            assert!(
                (read - direct).abs() < 2e-3,
                "age {age}: {read} against {direct}"
            );
            let direct = chance_free_within(20.0, age, TALK, 10.0);
            let read = table.chances(age)[HORIZONS - 1];
            assert!(
                (read - direct).abs() < 2e-3,
                "age {age}, the last horizon: {read} against {direct}"
            );
        }
        // Twice the talk: computed again.
        let longer = LogNormalFit {
            mu: TALK.mu + std::f64::consts::LN_2,
            ..TALK
        };
        table.follow(longer, 10.0, within);
        let direct = chance_free_within(9.0, 180.0, longer, 10.0);
        assert!((table.chances(180.0)[0] - direct).abs() < 2e-3);
    }

    #[test]
    fn the_answer_table_reads_the_time_to_answer_distribution_within_a_hair() {
        let answer = LogNormalFit {
            mu: 8f64.ln(),
            sigma: 0.5,
        };
        let mut cdf = AnswerCdf::default();
        assert_eq!(cdf.at(8.0), 0.0, "not computed yet");
        cdf.follow(answer, 20.0);
        for t in [0.5, 3.0, 8.0, 8.3, 15.0, 40.0, 60.0] {
            assert!(
                (cdf.at(t) - answer.cdf(t)).abs() < 2e-3,
                "{t} s: {} against {}",
                cdf.at(t),
                answer.cdf(t)
            );
        }
        assert!((cdf.at(8.0) - 0.5).abs() < 2e-3, "the median");
        assert!(cdf.at(1e6) > 0.999, "beyond the grid: the last value");
        // The horizons are now and the time to answer's quantiles, in order.
        let h = Horizons::of(answer).sec;
        assert_eq!(h[0], 0.0);
        assert!(h.windows(2).all(|w| w[0] < w[1]), "{h:?}");
        assert!(h[1] < 8.0 && h[HORIZONS - 1] > 16.0, "{h:?}");
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
