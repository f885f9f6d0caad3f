//! The abandonment record regulators ask for (FTC Telemarketing Sales Rule 16 CFR 310.4(b)(4), FCC 47 CFR
//! 64.1200, Ofcom): per campaign and day, live answers, abandoned calls, machine answers and abandon messages
//! played, and the rolling 30-day abandonment rate.
//!
//! The one rule of what counts as abandoned lives here ([`is_abandoned`]): a call answered by a live person and
//! not joined to an agent within 2 s of the answer — whether the engine gave up on it, the caller hung up first,
//! or an agent came later than 2 s. Machine answers (AMD) are counted apart and never in the rate. Days are UTC
//! days of the answer.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

use super::pacer::CONNECT_LIMIT_MS;

/// Days the rolling rate spans (the FTC's "successive 30-day period").
pub const ROLLING_DAYS: i64 = 30;
/// How long the store keeps a day's counts: three years and a month (at least 3 years asked).
pub const KEEP_SEC: u64 = (3 * 366 + 31) * 86_400;

/// One day's counts of a campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    /// Calls answered by a live person.
    pub live_answers: u64,
    /// Live answers not joined to an agent within 2 s.
    pub abandoned: u64,
    /// Calls answered by a machine (AMD): not in the rate.
    pub machine_answers: u64,
    /// Abandon messages played.
    pub messages_played: u64,
}

impl DayCounts {
    pub fn add(&mut self, o: DayCounts) {
        self.live_answers += o.live_answers;
        self.abandoned += o.abandoned;
        self.machine_answers += o.machine_answers;
        self.messages_played += o.messages_played;
    }

    pub fn is_empty(&self) -> bool {
        *self == DayCounts::default()
    }
}

/// How an answered agent call went, as far as the record is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A live person answered.
    Live,
    /// A machine answered (AMD decided).
    Machine,
}

/// Whether a live answer is abandoned: the engine gave up on it, or it was never joined, or joined later than 2 s
/// after the answer (`wait_ms`: answer to bridge, `None` when never joined).
pub fn is_abandoned(engine_abandoned: bool, wait_ms: Option<u64>) -> bool {
    engine_abandoned || wait_ms.is_none_or(|w| w > CONNECT_LIMIT_MS)
}

/// The counts one answered call adds.
pub fn counts_of(kind: AnswerKind, abandoned: bool, message_played: bool) -> DayCounts {
    match kind {
        AnswerKind::Machine => DayCounts {
            machine_answers: 1,
            ..Default::default()
        },
        AnswerKind::Live => DayCounts {
            live_answers: 1,
            abandoned: u64::from(abandoned),
            messages_played: u64::from(message_played),
            machine_answers: 0,
        },
    }
}

/// The day an answer at `at` is recorded under.
pub fn day_of(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

/// One day of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayReport {
    pub date: NaiveDate,
    #[serde(flatten)]
    pub counts: DayCounts,
    /// Live answers and abandoned calls of the 30 days ending with this one.
    pub rolling_live_answers: u64,
    pub rolling_abandoned: u64,
    /// Their rate in percent (`None` without live answers).
    pub rolling_abandon_pct: Option<f64>,
}

/// The first day whose counts [`report`] needs for a report starting on `from`.
pub fn first_needed_day(from: NaiveDate) -> NaiveDate {
    from - Duration::days(ROLLING_DAYS - 1)
}

/// The days `from..=to`, each with its counts and the rolling 30-day rate; `days` must hold the counts from
/// [`first_needed_day`] on (missing days count zero).
pub fn report(
    days: &BTreeMap<NaiveDate, DayCounts>,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<DayReport> {
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        let mut rolling = DayCounts::default();
        for (_, c) in days.range(first_needed_day(day)..=day) {
            rolling.add(*c);
        }
        out.push(DayReport {
            date: day,
            counts: days.get(&day).copied().unwrap_or_default(),
            rolling_live_answers: rolling.live_answers,
            rolling_abandoned: rolling.abandoned,
            rolling_abandon_pct: (rolling.live_answers > 0)
                .then(|| rolling.abandoned as f64 * 100.0 / rolling.live_answers as f64),
        });
        day += Duration::days(1);
    }
    out
}

/// The rolling 30-day rate (%) ending on `day`, if any live answer was recorded in it.
pub fn rolling_pct(days: &BTreeMap<NaiveDate, DayCounts>, day: NaiveDate) -> Option<f64> {
    report(days, day, day).pop()?.rolling_abandon_pct
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_join_is_abandoned_and_a_join_within_two_seconds_is_not() {
        assert!(!is_abandoned(false, Some(2000)));
        assert!(is_abandoned(false, Some(2001)));
        assert!(is_abandoned(false, None));
        assert!(is_abandoned(true, Some(100)));
    }

    #[test]
    fn the_rolling_rate_covers_thirty_days_ending_with_each_day() {
        let d = |n: i64| NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(n);
        let mut days = BTreeMap::new();
        days.insert(
            d(0),
            DayCounts {
                live_answers: 100,
                abandoned: 5,
                ..Default::default()
            },
        );
        days.insert(
            d(29),
            DayCounts {
                live_answers: 100,
                abandoned: 1,
                ..Default::default()
            },
        );
        let r = report(&days, d(29), d(30));
        assert_eq!(r[0].rolling_live_answers, 200);
        assert_eq!(r[0].rolling_abandon_pct, Some(3.0));
        // Day 0 left the window.
        assert_eq!(r[1].rolling_abandon_pct, Some(1.0));
        assert!(r[1].counts.is_empty());
        assert_eq!(counts_of(AnswerKind::Machine, true, true).abandoned, 0);
    }
}
