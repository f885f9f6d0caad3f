//! What a run measured, as it goes: counters, failures by hangup cause, HDR histograms of the post-dial delay
//! (originate → CHANNEL_ANSWER) and of the originate's own latency (originate → BACKGROUND_JOB), calls up at once,
//! and one [`Second`] per whole second of the wall clock (so "never more than R in any whole second" can be read
//! off the report). Every call task writes here; the live view and the final
//! report read [`Stats::snapshot`]. One short lock: at thousands of calls a second it is never held for long.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies above this are recorded as this (an originate times out long before).
const MAX_TRACKED: Duration = Duration::from_secs(3600);

/// One whole second of the wall clock during the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Second {
    /// Whole seconds since the one the run started in (0 = the second of the start).
    pub second: u64,
    /// The second itself (Unix time).
    pub unix_second: i64,
    pub placed: u64,
    pub answered: u64,
    pub failed: u64,
    /// Calls ended (hung up by either side, or failed).
    pub ended: u64,
    /// Most calls up at once during the second.
    pub concurrent_max: u64,
}

/// p50/p90/p99/max of one latency, in milliseconds (microsecond resolution).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// How a placed call ended, for the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEnd {
    /// Answered, held, and hung up by us.
    HungUpByUs,
    /// Answered and hung up by the far end before its hold was over.
    HungUpByFarEnd { cause: String },
    /// Never answered: the originate failed with this cause.
    Failed { cause: String },
    /// We asked for the hangup and the switch never confirmed it (no CHANNEL_HANGUP_COMPLETE in time).
    Unconfirmed,
}

#[derive(Debug)]
struct Inner {
    placed: u64,
    answered: u64,
    failed: u64,
    failed_by_cause: BTreeMap<String, u64>,
    hung_up_by_us: u64,
    hung_up_by_far_end: u64,
    far_end_causes: BTreeMap<String, u64>,
    unconfirmed: u64,
    up: u64,
    concurrent_max: u64,
    post_dial_delay: Histogram<u64>,
    background_job: Histogram<u64>,
    seconds: Vec<Second>,
}

/// The run's figures, shared by every call task.
#[derive(Debug)]
pub struct Stats {
    start: Instant,
    /// The wall-clock second the run started in, and how far into it.
    wall_second: i64,
    phase: Duration,
    inner: Mutex<Inner>,
}

/// A copy of the figures at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub placed: u64,
    pub answered: u64,
    pub failed: u64,
    pub failed_by_cause: BTreeMap<String, u64>,
    pub hung_up_by_us: u64,
    pub hung_up_by_far_end: u64,
    /// Causes the far end hung up answered calls with.
    pub far_end_causes: BTreeMap<String, u64>,
    /// Hangups we asked for that the switch never confirmed.
    pub unconfirmed: u64,
    /// Calls up now (placed and not yet ended).
    pub up: u64,
    pub concurrent_max: u64,
    pub post_dial_delay: Percentiles,
    pub background_job: Percentiles,
    pub seconds: Vec<Second>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to an hour, 3 significant digits: what hdrhistogram is made for; the bounds are constants.
    Histogram::new_with_bounds(1, MAX_TRACKED.as_micros() as u64, 3)
        .expect("constant histogram bounds are valid")
}

impl Stats {
    /// Figures of a run that started at `start`, `wall_start` on the wall clock.
    pub fn new(start: Instant, wall_start: chrono::DateTime<chrono::Utc>) -> Stats {
        Stats {
            start,
            wall_second: wall_start.timestamp(),
            phase: Duration::from_micros(u64::from(wall_start.timestamp_subsec_micros())),
            inner: Mutex::new(Inner {
                placed: 0,
                answered: 0,
                failed: 0,
                failed_by_cause: BTreeMap::new(),
                hung_up_by_us: 0,
                hung_up_by_far_end: 0,
                far_end_causes: BTreeMap::new(),
                unconfirmed: 0,
                up: 0,
                concurrent_max: 0,
                post_dial_delay: histogram(),
                background_job: histogram(),
                seconds: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The whole wall-clock second `at` falls in, counted from the one the run started in.
    pub fn second_of(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.start) + self.phase).as_secs()
    }

    /// When the wall-clock second after the start's begins.
    pub fn first_whole_second(&self) -> Instant {
        self.start + (Duration::from_secs(1) - self.phase)
    }

    /// The [`Second`] `at` falls in, created (with any quiet one before it) if new.
    fn second<'a>(&self, inner: &'a mut Inner, at: Instant) -> &'a mut Second {
        let n = self.second_of(at);
        while inner.seconds.last().is_none_or(|s| s.second < n) {
            let second = inner.seconds.last().map_or(0, |s| s.second + 1);
            // A second starts with the calls still up from the one before.
            let up = inner.up;
            inner.seconds.push(Second {
                second,
                unix_second: self.wall_second + second as i64,
                concurrent_max: up,
                ..Second::default()
            });
        }
        let index = inner
            .seconds
            .iter()
            .rposition(|s| s.second <= n)
            .unwrap_or(0);
        &mut inner.seconds[index]
    }

    /// A call was placed (its originate sent) at `at`.
    pub fn placed(&self, at: Instant) {
        let mut inner = self.lock();
        inner.placed += 1;
        inner.up += 1;
        inner.concurrent_max = inner.concurrent_max.max(inner.up);
        let up = inner.up;
        let s = self.second(&mut inner, at);
        s.placed += 1;
        s.concurrent_max = s.concurrent_max.max(up);
    }

    /// The call placed at `sent` was answered at `at`.
    pub fn answered(&self, sent: Instant, at: Instant) {
        let mut inner = self.lock();
        inner.answered += 1;
        let us = micros(at.saturating_duration_since(sent));
        inner.post_dial_delay.saturating_record(us);
        self.second(&mut inner, at).answered += 1;
    }

    /// The BACKGROUND_JOB of the originate sent at `sent` came at `at`.
    pub fn background_job(&self, sent: Instant, at: Instant) {
        let us = micros(at.saturating_duration_since(sent));
        self.lock().background_job.saturating_record(us);
    }

    /// A placed call ended at `at`.
    pub fn ended(&self, end: &CallEnd, at: Instant) {
        let mut inner = self.lock();
        // The second is opened first: it starts with this call still up.
        self.second(&mut inner, at);
        inner.up = inner.up.saturating_sub(1);
        match end {
            CallEnd::HungUpByUs => inner.hung_up_by_us += 1,
            CallEnd::HungUpByFarEnd { cause } => {
                inner.hung_up_by_far_end += 1;
                *inner.far_end_causes.entry(cause.clone()).or_default() += 1;
            }
            CallEnd::Failed { cause } => {
                inner.failed += 1;
                *inner.failed_by_cause.entry(cause.clone()).or_default() += 1;
            }
            CallEnd::Unconfirmed => inner.unconfirmed += 1,
        }
        let s = self.second(&mut inner, at);
        s.ended += 1;
        if matches!(end, CallEnd::Failed { .. }) {
            s.failed += 1;
        }
    }

    /// Brings the timeline up to `at` (so a quiet second still has its line).
    pub fn tick(&self, at: Instant) {
        let mut inner = self.lock();
        self.second(&mut inner, at);
    }

    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            placed: inner.placed,
            answered: inner.answered,
            failed: inner.failed,
            failed_by_cause: inner.failed_by_cause.clone(),
            hung_up_by_us: inner.hung_up_by_us,
            hung_up_by_far_end: inner.hung_up_by_far_end,
            far_end_causes: inner.far_end_causes.clone(),
            unconfirmed: inner.unconfirmed,
            up: inner.up,
            concurrent_max: inner.concurrent_max,
            post_dial_delay: Percentiles::of(&inner.post_dial_delay),
            background_job: Percentiles::of(&inner.background_job),
            seconds: inner.seconds.clone(),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_the_wall_clocks_whole_seconds() {
        let t0 = Instant::now();
        let wall = chrono::DateTime::from_timestamp_millis(1_800_000_000_700).unwrap();
        let stats = Stats::new(t0, wall);
        assert_eq!(stats.second_of(t0 + Duration::from_millis(299)), 0);
        assert_eq!(stats.second_of(t0 + Duration::from_millis(300)), 1);
        assert_eq!(stats.first_whole_second(), t0 + Duration::from_millis(300));
        stats.placed(t0 + Duration::from_millis(250));
        stats.placed(t0 + Duration::from_millis(350));
        let s = stats.snapshot();
        let per_second: Vec<(i64, u64)> = s
            .seconds
            .iter()
            .map(|x| (x.unix_second, x.placed))
            .collect();
        assert_eq!(per_second, [(1_800_000_000, 1), (1_800_000_001, 1)]);
    }

    #[test]
    fn counts_go_to_the_second_they_happened_in_and_concurrency_carries_over() {
        let t0 = Instant::now();
        // A start on a whole second of the wall clock: seconds of the run and of the clock are the same.
        let wall = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let stats = Stats::new(t0, wall);
        stats.placed(t0);
        stats.placed(t0 + Duration::from_millis(500));
        stats.answered(t0, t0 + Duration::from_millis(1200));
        stats.ended(
            &CallEnd::Failed {
                cause: "USER_BUSY".into(),
            },
            t0 + Duration::from_millis(2100),
        );
        stats.ended(&CallEnd::HungUpByUs, t0 + Duration::from_millis(3500));
        let s = stats.snapshot();
        assert_eq!((s.placed, s.answered, s.failed, s.up), (2, 1, 1, 0));
        assert_eq!(s.failed_by_cause.get("USER_BUSY"), Some(&1));
        let placed: Vec<u64> = s.seconds.iter().map(|x| x.placed).collect();
        assert_eq!(placed, [2, 0, 0, 0]);
        let up: Vec<u64> = s.seconds.iter().map(|x| x.concurrent_max).collect();
        assert_eq!(up, [2, 2, 2, 1], "a second starts with the calls still up");
        assert_eq!(s.concurrent_max, 2);
        assert_eq!(s.seconds[3].unix_second, 1_800_000_003);
        assert_eq!(s.post_dial_delay.count, 1);
        assert!(
            (s.post_dial_delay.p50_ms - 1200.0).abs() < 2.0,
            "{:?}",
            s.post_dial_delay
        );
    }
}
