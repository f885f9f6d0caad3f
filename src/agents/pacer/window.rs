//! Counts of what a campaign's calls did over a rolling window of time (attempts, live answers, abandoned
//! calls, machine answers), kept in one-second buckets with a running total, so reading the window costs nothing
//! and its memory is bounded by its span.

use chrono::{DateTime, Utc};
use std::collections::VecDeque;

/// Counts of call outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Member calls whose ringing ended (answered or not).
    pub attempts: u64,
    /// Answered by a live person (FTC "live answers").
    pub live: u64,
    /// Live answers not joined to an agent within 2 s of the answer.
    pub abandoned: u64,
    /// Answered by a machine (excluded from abandonment).
    pub machine: u64,
}

impl OutcomeCounts {
    /// Abandoned calls as a percentage of live answers (`None` without live answers).
    pub fn abandon_pct(&self) -> Option<f64> {
        (self.live > 0).then(|| self.abandoned as f64 * 100.0 / self.live as f64)
    }

    fn add(&mut self, o: OutcomeCounts) {
        self.attempts += o.attempts;
        self.live += o.live;
        self.abandoned += o.abandoned;
        self.machine += o.machine;
    }

    fn sub(&mut self, o: OutcomeCounts) {
        self.attempts = self.attempts.saturating_sub(o.attempts);
        self.live = self.live.saturating_sub(o.live);
        self.abandoned = self.abandoned.saturating_sub(o.abandoned);
        self.machine = self.machine.saturating_sub(o.machine);
    }
}

/// Outcome counts over the last `span_sec` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RollingCounts {
    span_sec: i64,
    buckets: VecDeque<(i64, OutcomeCounts)>,
    total: OutcomeCounts,
}

impl RollingCounts {
    /// A window of `span_sec` seconds (at least one).
    pub fn new(span_sec: u64) -> RollingCounts {
        RollingCounts {
            span_sec: i64::try_from(span_sec.max(1)).unwrap_or(i64::MAX),
            buckets: VecDeque::new(),
            total: OutcomeCounts::default(),
        }
    }

    /// Counts `o` at `now`.
    pub fn add(&mut self, now: DateTime<Utc>, o: OutcomeCounts) {
        let second = now.timestamp();
        self.expire(second);
        match self.buckets.back_mut() {
            Some((s, counts)) if *s >= second => counts.add(o),
            _ => {
                let mut c = OutcomeCounts::default();
                c.add(o);
                self.buckets.push_back((second, c));
            }
        }
        self.total.add(o);
    }

    /// The counts of the window ending at `now`.
    pub fn total(&mut self, now: DateTime<Utc>) -> OutcomeCounts {
        self.expire(now.timestamp());
        self.total
    }

    fn expire(&mut self, second: i64) {
        while let Some((s, c)) = self.buckets.front().copied() {
            if s > second.saturating_sub(self.span_sec) {
                break;
            }
            self.total.sub(c);
            self.buckets.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn counts_leave_the_window_when_they_are_older_than_its_span() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut w = RollingCounts::new(60);
        let one_live = OutcomeCounts {
            attempts: 1,
            live: 1,
            ..Default::default()
        };
        w.add(t0, one_live);
        w.add(t0 + Duration::seconds(30), one_live);
        assert_eq!(w.total(t0 + Duration::seconds(59)).live, 2);
        assert_eq!(w.total(t0 + Duration::seconds(60)).live, 1);
        assert_eq!(w.total(t0 + Duration::seconds(90)).live, 0);
        assert!(w.buckets.is_empty());
    }
}
