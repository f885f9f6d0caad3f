//! fsdialer's own policy: dial so that the live answers to come match the agents free when they come.
//!
//! Over the horizon of one time-to-answer, the agents free are today's free agents plus those expected to finish
//! their call and wrap-up (or just their wrap-up) by then, each with probability `1 − e^(−h/mean)`; the live
//! answers to come are the callers already waiting, the calls still ringing (each with its probability of still
//! being answered by a person, given how long it has rung) and `n·p` from `n` new calls. Both are sums of
//! independent trials, so their difference is taken as normal, and the expected overflow `E[(answers − free)+]`
//! over the expected answers is the share of them that would find no agent. The pacer dials the largest `n`
//! whose share stays at the target times the closed loop's correction ([`PacerState::correction`]); a correction
//! under 1 also discounts the agents expected to come free, by the same factor.

use super::{PacerInputs, PacerState, PacingSettings};

/// The live probability below which the model is not trusted to multiply calls (1:1 instead).
const MIN_LIVE_PROB: f64 = 0.01;

/// New calls for fsdialer's policy (`None` without estimates).
pub fn dials(s: &PacingSettings, state: &PacerState, inputs: &PacerInputs<'_>) -> Option<u32> {
    let e = state.model.estimates()?;
    let p = e.live_prob;
    if p < MIN_LIVE_PROB {
        return None;
    }
    let m = e.machine_prob.clamp(0.0, 1.0 - p);
    let horizon = e.time_to_answer_sec.max(1.0);
    let wrap = e.wrap_sec.unwrap_or(0.0);
    // Agents free at the horizon. While the closed loop holds the campaign under its target (correction below 1)
    // the agents still busy are trusted that much less to come free in time, so the loop can take the pacer all
    // the way down to dialling for the free agents only.
    let trust = state.correction.min(1.0);
    let busy_done = e
        .talk_sec
        .map_or(0.0, |talk| chance_within(horizon, talk + wrap))
        * trust;
    let wrap_done = chance_within(horizon, wrap) * trust;
    let a = inputs.agents;
    let free_mean =
        f64::from(a.free) + f64::from(a.busy) * busy_done + f64::from(a.wrapping) * wrap_done;
    let free_var = f64::from(a.busy) * busy_done * (1.0 - busy_done)
        + f64::from(a.wrapping) * wrap_done * (1.0 - wrap_done);
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
}
