//! Attempt logging that cannot fill a disk: one line per attempt at debug (or info, when asked), and a periodic
//! info summary per campaign — how many attempts ended in each class, and how many of them were lost.
//!
//! 656k attempts once wrote 238 MB of info lines; at the default level this writes one line per campaign per
//! period instead. [`AttemptLog`] reads no clock: the engine records each ended attempt and, on its own timer
//! (a minute), takes the summary with the engine clock's `now` (real or sped up, as the core's) and logs it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::campaign::causes::CauseClass;

/// The level of the per-attempt line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PerAttempt {
    /// `debug`: only the periodic summary shows at the default level.
    #[default]
    Debug,
    /// `info`: every attempt at the default level too (small deployments, troubleshooting).
    Info,
}

/// One ended attempt, as logged.
#[derive(Debug, Clone, Copy)]
pub struct AttemptLine<'a> {
    pub campaign: &'a str,
    pub attempt: &'a uuid::Uuid,
    pub member: &'a str,
    pub number: &'a str,
    pub cause: &'a str,
    pub class: CauseClass,
    pub talk_secs: u32,
    /// The outcome could never be known (`lost_attempt`).
    pub lost: bool,
}

/// Attempts that ended in one campaign during a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub ok: u64,
    pub retry: u64,
    pub error: u64,
    pub minus: u64,
    /// Of the above, those whose outcome was lost.
    pub lost: u64,
}

impl ClassCounts {
    fn add(&mut self, class: CauseClass, lost: bool) {
        let slot = match class {
            CauseClass::Ok => &mut self.ok,
            CauseClass::Retry => &mut self.retry,
            CauseClass::Error => &mut self.error,
            CauseClass::Minus => &mut self.minus,
        };
        *slot += 1;
        self.lost += u64::from(lost);
    }

    pub fn total(&self) -> u64 {
        self.ok + self.retry + self.error + self.minus
    }
}

/// What ended since the previous summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptSummary {
    pub period: Duration,
    /// Per campaign id, in id order; campaigns with no ended attempt are absent.
    pub campaigns: BTreeMap<String, ClassCounts>,
}

impl AttemptSummary {
    /// One info line per campaign.
    pub fn log(&self) {
        for (campaign, c) in &self.campaigns {
            tracing::info!(
                campaign,
                period_secs = self.period.as_secs(),
                ended = c.total(),
                ok = c.ok,
                retry = c.retry,
                error = c.error,
                minus = c.minus,
                lost = c.lost,
                "attempts ended"
            );
        }
    }
}

/// Counts ended attempts between summaries and writes the per-attempt line.
#[derive(Debug, Clone)]
pub struct AttemptLog {
    per_attempt: PerAttempt,
    since: DateTime<Utc>,
    counts: BTreeMap<String, ClassCounts>,
}

impl AttemptLog {
    pub fn new(per_attempt: PerAttempt, now: DateTime<Utc>) -> AttemptLog {
        AttemptLog {
            per_attempt,
            since: now,
            counts: BTreeMap::new(),
        }
    }

    /// Counts an ended attempt without writing its line.
    pub fn record(&mut self, campaign: &str, class: CauseClass) {
        self.count(campaign, class, false);
    }

    /// Counts a lost attempt (its class is the campaign's `lost_attempt`) without writing its line.
    pub fn record_lost(&mut self, campaign: &str, class: CauseClass) {
        self.count(campaign, class, true);
    }

    /// Writes the attempt's line at the configured level and counts it.
    pub fn ended(&mut self, line: &AttemptLine<'_>) {
        macro_rules! attempt_line {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    campaign = line.campaign,
                    attempt = %line.attempt,
                    member = line.member,
                    number = line.number,
                    cause = line.cause,
                    class = line.class.as_str(),
                    talk_secs = line.talk_secs,
                    lost = line.lost,
                    "attempt ended"
                )
            };
        }
        match self.per_attempt {
            PerAttempt::Debug => attempt_line!(tracing::Level::DEBUG),
            PerAttempt::Info => attempt_line!(tracing::Level::INFO),
        }
        self.count(line.campaign, line.class, line.lost);
    }

    fn count(&mut self, campaign: &str, class: CauseClass, lost: bool) {
        match self.counts.get_mut(campaign) {
            Some(c) => c.add(class, lost),
            None => {
                let mut c = ClassCounts::default();
                c.add(class, lost);
                self.counts.insert(campaign.to_owned(), c);
            }
        }
    }

    /// What ended since the last summary (`None` if nothing did), and a new period starting at `now`.
    pub fn take_summary(&mut self, now: DateTime<Utc>) -> Option<AttemptSummary> {
        let period = (now - self.since).to_std().unwrap_or_default();
        self.since = now;
        if self.counts.is_empty() {
            return None;
        }
        Some(AttemptSummary {
            period,
            campaigns: std::mem::take(&mut self.counts),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: i64) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(n)
    }

    #[test]
    fn a_summary_counts_each_class_per_campaign_and_starts_a_new_period() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut log = AttemptLog::new(PerAttempt::Debug, t0);
        log.record("c1", CauseClass::Ok);
        log.record("c1", CauseClass::Ok);
        log.record("c1", CauseClass::Retry);
        log.record_lost("c1", CauseClass::Retry);
        log.record("c2", CauseClass::Minus);
        let attempt = uuid::Uuid::nil();
        log.ended(&AttemptLine {
            campaign: "c2",
            attempt: &attempt,
            member: "m1",
            number: "380441234567",
            cause: "UNALLOCATED_NUMBER",
            class: CauseClass::Error,
            talk_secs: 0,
            lost: false,
        });
        let s = log.take_summary(t0 + secs(60)).unwrap();
        assert_eq!(s.period, Duration::from_secs(60));
        assert_eq!(
            s.campaigns["c1"],
            ClassCounts {
                ok: 2,
                retry: 2,
                error: 0,
                minus: 0,
                lost: 1
            }
        );
        assert_eq!(s.campaigns["c2"].total(), 2);
        assert_eq!((s.campaigns["c2"].minus, s.campaigns["c2"].error), (1, 1));
        assert_eq!(log.take_summary(t0 + secs(120)), None);
        log.record("c3", CauseClass::Ok);
        let next = log.take_summary(t0 + secs(150)).unwrap();
        assert_eq!(
            next.period,
            Duration::from_secs(30),
            "measured from the last take"
        );
        assert_eq!(next.campaigns.keys().collect::<Vec<_>>(), ["c3"]);
    }

    /// Captures what an INFO-level subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn at_info(per_attempt: PerAttempt, attempts: usize) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let t0 = DateTime::<Utc>::UNIX_EPOCH;
            let mut log = AttemptLog::new(per_attempt, t0);
            let attempt = uuid::Uuid::nil();
            for _ in 0..attempts {
                log.ended(&AttemptLine {
                    campaign: "c1",
                    attempt: &attempt,
                    member: "m1",
                    number: "380441234567",
                    cause: "NORMAL_CLEARING",
                    class: CauseClass::Ok,
                    talk_secs: 12,
                    lost: false,
                });
            }
            log.take_summary(t0 + secs(60)).unwrap().log();
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn at_the_default_level_a_thousand_attempts_write_one_summary_line() {
        let text = at_info(PerAttempt::Debug, 1000);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains("attempts ended") && text.contains("ended=1000"),
            "{text}"
        );
        let verbose = at_info(PerAttempt::Info, 3);
        assert_eq!(verbose.matches("attempt ended").count(), 3, "{verbose}");
    }
}
