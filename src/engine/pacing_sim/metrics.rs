//! What a simulated shift measured: the FTC abandonment rate (from the engine's own compliance record), agent
//! talk minutes per logged-in hour, occupancy, calls, live answers and the answer → bridge wait percentiles.

use serde::Serialize;

use crate::agents::compliance::DayCounts;

/// Running totals of a shift.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Member calls placed.
    pub calls: u64,
    /// Agent talk and wrap-up, seconds (all agents).
    pub talk_sec: f64,
    pub wrap_sec: f64,
    /// Answer → bridge of each joined call, ms.
    pub waits_ms: Vec<u64>,
    /// Live callees who hung up waiting for an agent.
    pub hung_up_waiting: u64,
}

/// A shift's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub abandon_pct: f64,
    pub talk_min_per_agent_hour: f64,
    pub occupancy: f64,
    pub calls: u64,
    pub live_answers: u64,
    pub abandoned: u64,
    pub wait_p50_ms: f64,
    pub wait_p99_ms: f64,
}

impl Metrics {
    /// The figures of a shift whose agents were logged in `logged_in_sec` in all.
    pub fn of(t: &Totals, record: &DayCounts, logged_in_sec: f64) -> Metrics {
        let mut waits = t.waits_ms.clone();
        waits.sort_unstable();
        let hours = logged_in_sec / 3600.0;
        Metrics {
            abandon_pct: if record.live_answers == 0 {
                0.0
            } else {
                record.abandoned as f64 * 100.0 / record.live_answers as f64
            },
            talk_min_per_agent_hour: if hours > 0.0 {
                t.talk_sec / 60.0 / hours
            } else {
                0.0
            },
            occupancy: if logged_in_sec > 0.0 {
                (t.talk_sec + t.wrap_sec) / logged_in_sec
            } else {
                0.0
            },
            calls: t.calls,
            live_answers: record.live_answers,
            abandoned: record.abandoned,
            wait_p50_ms: percentile(&waits, 0.50),
            wait_p99_ms: percentile(&waits, 0.99),
        }
    }
}

/// The nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
