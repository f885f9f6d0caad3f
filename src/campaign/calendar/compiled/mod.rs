//! The validated calendar and its instant arithmetic: "when may a member in timezone X be called next, and until
//! when?"
//!
//! The rule (SPEC §5) is about wall clocks: an instant is allowed for a member when, in the member's timezone,
//! its local date is not a holiday and its local time of day lies in one of that weekday's windows (and the
//! instant lies within the calendar's `start`/`end`). Everything here follows from that rule, evaluated exactly
//! with the tz database:
//!
//! - each local day's windows are turned into UTC intervals by finding the UTC offset(s) in force around that
//!   day; when the offset changes that day (a DST transition), the transition instant is located to the second
//!   by bisection and each side uses its own offset;
//! - spring forward: a window opening inside the skipped hour (Kyiv 03:30 on the last Sunday of March) opens at
//!   the first instant after the gap (04:00 EEST = 01:00 UTC); a window ending inside it ends at the gap;
//! - fall back: local times in the repeated hour happen twice and both are inside a window that covers them,
//!   so a window `[00:00, 01:30)` on New York's fall-back day is two UTC stretches (01:00–01:30 EDT and again
//!   01:00–01:30 EST), while a window covering the whole repeated hour is one stretch 25 hours long on a
//!   00:00–24:00 day.
//!
//! Cost: queries walk day by day (never minute by minute), a few tz lookups per day; a DST day adds ~18
//! lookups for the bisection. [`next_allowed`](CalendarSchedule::next_allowed_in) looks at most
//! [`HORIZON_DAYS`] ahead; an opening further away than that is reported as "never" (`None`), which only a
//! calendar whose windows are all swallowed by holidays for two years can produce.
//!
//! Assumption (true of every zone in the tz database in modern times): a zone's UTC offset changes at most once
//! within any 60-hour span.

use super::{AcceptWindow, ExceptDate, MINUTES_PER_DAY};
use crate::campaign::schedule::Schedule;
use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::HashSet;

/// How many local days ahead [`CalendarSchedule::next_allowed_in`] searches before answering "never".
pub const HORIZON_DAYS: u64 = 732;

/// How many local days ahead [`CalendarSchedule::allowed_until_in`] follows an allowed stretch. A stretch running
/// longer than that (a calendar open around the clock) is reported as ending where the look-ahead stopped: an
/// instant that may itself still be allowed, so callers simply ask again then.
pub const ALLOWED_UNTIL_LOOKAHEAD_DAYS: u64 = 32;

/// Larger than any UTC offset the tz database has ever used (LMT offsets reach about ±15h), so every instant
/// whose local date is D lies within `[D 00:00 - MARGIN, D+1 00:00 + MARGIN)` read as UTC.
const MARGIN: Duration = Duration::hours(18);

/// Instants outside these years are never allowed: it keeps every date computation far from chrono's limits.
const FIRST_YEAR: i32 = 1900;
const LAST_YEAR: i32 = 9000;

/// A half-open UTC interval `[start, end)`.
type Interval = (DateTime<Utc>, DateTime<Utc>);

/// A validated calendar, ready for queries. Built by [`Calendar::compile`](super::Calendar::compile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarSchedule {
    tz: Tz,
    /// Per ISO weekday (index 0 = Monday): merged, sorted, non-touching local minute ranges `[start, end)`.
    week: [Vec<(u16, u16)>; 7],
    holidays: HashSet<NaiveDate>,
    /// (month, day) of `repeat_yearly` holidays.
    yearly: HashSet<(u32, u32)>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
}

impl CalendarSchedule {
    /// Builds from already validated parts (weekday 1..=7, `start_min < end_min <= 1440`).
    pub(super) fn new(
        tz: Tz,
        accept: &[AcceptWindow],
        except: &[ExceptDate],
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    ) -> CalendarSchedule {
        let mut week: [Vec<(u16, u16)>; 7] = Default::default();
        for w in accept {
            week[usize::from(w.weekday - 1)].push((w.start_min, w.end_min.min(MINUTES_PER_DAY)));
        }
        for day in &mut week {
            day.sort_unstable();
            let mut merged: Vec<(u16, u16)> = Vec::with_capacity(day.len());
            for &(s, e) in day.iter() {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            *day = merged;
        }
        let mut holidays = HashSet::new();
        let mut yearly = HashSet::new();
        for x in except {
            if x.repeat_yearly {
                yearly.insert((x.date.month(), x.date.day()));
            } else {
                holidays.insert(x.date);
            }
        }
        CalendarSchedule {
            tz,
            week,
            holidays,
            yearly,
            start,
            end,
        }
    }

    /// The calendar's own timezone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    pub fn start(&self) -> Option<DateTime<Utc>> {
        self.start
    }

    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.end
    }

    /// The timezone used for a member: its own when given and known, else the calendar's. Member timezones are
    /// validated when members are accepted; an unknown name reaching this point falls back to the calendar's
    /// timezone (and is logged at debug), rather than making the member uncallable.
    pub fn member_timezone(&self, tz: Option<&str>) -> Tz {
        match tz {
            None | Some("") => self.tz,
            Some(name) => name.parse::<Tz>().unwrap_or_else(|_| {
                tracing::debug!(
                    timezone = name,
                    "unknown member timezone, using the calendar's"
                );
                self.tz
            }),
        }
    }

    /// Whether local date `date` is a holiday.
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.contains(&date) || self.yearly.contains(&(date.month(), date.day()))
    }

    /// Whether instant `at` is allowed for a member living in `tz`.
    pub fn is_allowed_in(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        let Some(first) = Self::first_day(at) else {
            return false;
        };
        let mut buf = Vec::new();
        for k in 0..4 {
            let Some(day) = first.checked_add_days(Days::new(k)) else {
                break;
            };
            self.day_intervals(tz, day, &mut buf);
        }
        buf.iter().any(|&(s, e)| s <= at && at < e)
    }

    /// The earliest instant `>= at` allowed for a member in `tz`, or `None` if there is none within
    /// [`HORIZON_DAYS`] (or ever: after the calendar's end).
    pub fn next_allowed_in(&self, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let at = match self.start {
            Some(start) if start > at => start,
            _ => at,
        }
        .max(first_supported_instant());
        if self.end.is_some_and(|end| at >= end) {
            return None;
        }
        let first = Self::first_day(at)?;
        let mut best: Option<DateTime<Utc>> = None;
        let mut buf = Vec::new();
        for k in 0..=HORIZON_DAYS {
            let day = first.checked_add_days(Days::new(k))?;
            let earliest = earliest_instant_of(day);
            if best.is_some_and(|b| earliest > b) || self.end.is_some_and(|end| earliest >= end) {
                break;
            }
            buf.clear();
            self.day_intervals(tz, day, &mut buf);
            for &(s, e) in &buf {
                if e > at {
                    let candidate = s.max(at);
                    if best.is_none_or(|b| candidate < b) {
                        best = Some(candidate);
                    }
                }
            }
        }
        best
    }

    /// If `at` is allowed for a member in `tz`: the instant (exclusive) at which the allowed stretch containing
    /// `at` ends, following it across midnights for at most [`ALLOWED_UNTIL_LOOKAHEAD_DAYS`]. `None` if `at` is
    /// not allowed. Every instant in `[at, result)` is allowed.
    pub fn allowed_until_in(&self, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.start.is_some_and(|s| at < s) || self.end.is_some_and(|e| at >= e) {
            return None;
        }
        let first = Self::first_day(at)?;
        let last = first.checked_add_days(Days::new(ALLOWED_UNTIL_LOOKAHEAD_DAYS))?;
        let mut next_day = first;
        let mut intervals: Vec<Interval> = Vec::new();
        let mut frontier = at;
        loop {
            // Every interval that can start at or before `frontier` comes from a day whose earliest instant
            // is at or before it.
            while next_day <= last && earliest_instant_of(next_day) <= frontier {
                self.day_intervals(tz, next_day, &mut intervals);
                next_day = next_day.succ_opt()?;
            }
            intervals.sort_unstable();
            let end = stretch_end(&intervals, at)?;
            if end == frontier || next_day > last {
                return Some(end);
            }
            frontier = end;
        }
    }

    /// The first local date (in any timezone) whose windows can contain `at` or a later instant: the UTC date of
    /// `at` minus two (the local date is within a day of the UTC date, and a fold can bring the previous local
    /// date back once more). `None` if `at` is outside the supported years.
    fn first_day(at: DateTime<Utc>) -> Option<NaiveDate> {
        if !(FIRST_YEAR..LAST_YEAR).contains(&at.year()) {
            return None;
        }
        at.date_naive().checked_sub_days(Days::new(2))
    }

    /// Appends the UTC intervals during which local date `day` (in `tz`) is inside a window, clipped to the
    /// calendar's `start`/`end`. Nothing for a holiday or a weekday without windows.
    fn day_intervals(&self, tz: Tz, day: NaiveDate, out: &mut Vec<Interval>) {
        let windows = &self.week[day.weekday().num_days_from_monday() as usize];
        if windows.is_empty() || self.is_holiday(day) {
            return;
        }
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        let lo = midnight.and_utc() - MARGIN;
        let hi = midnight.and_utc() + Duration::days(1) + MARGIN;
        let before = offset_at(tz, lo);
        let after = offset_at(tz, hi);
        let transition = (before != after).then(|| find_transition(tz, lo, hi, before));
        let local = |minute: u16| midnight + Duration::minutes(i64::from(minute));
        for &(s, e) in windows {
            let (ls, le) = (local(s), local(e));
            match transition {
                None => self.push_clipped(out, utc(ls, before), utc(le, before)),
                Some(t) => {
                    // Before the transition the old offset maps local to UTC, from it on the new one.
                    self.push_clipped(out, utc(ls, before), utc(le, before).min(t));
                    self.push_clipped(out, utc(ls, after).max(t), utc(le, after));
                }
            }
        }
    }

    fn push_clipped(&self, out: &mut Vec<Interval>, mut s: DateTime<Utc>, mut e: DateTime<Utc>) {
        if let Some(start) = self.start {
            s = s.max(start);
        }
        if let Some(end) = self.end {
            e = e.min(end);
        }
        if s < e {
            out.push((s, e));
        }
    }
}

impl Schedule for CalendarSchedule {
    fn next_allowed(&self, tz: Option<&str>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_allowed_in(self.member_timezone(tz), at)
    }

    fn allowed_until(&self, tz: Option<&str>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.allowed_until_in(self.member_timezone(tz), at)
    }
}

/// UTC offset of `tz` at instant `at`, in seconds east of UTC.
fn offset_at(tz: Tz, at: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The UTC instant at which local wall time `local` is read with offset `offset_secs`.
fn utc(local: NaiveDateTime, offset_secs: i32) -> DateTime<Utc> {
    local.and_utc() - Duration::seconds(i64::from(offset_secs))
}

/// The first instant in `(lo, hi]` whose offset differs from `before` (the offset at `lo`), to the second.
/// Requires the offset at `hi` to differ from `before`.
fn find_transition(tz: Tz, lo: DateTime<Utc>, hi: DateTime<Utc>, before: i32) -> DateTime<Utc> {
    let (mut lo, mut hi) = (lo.timestamp(), hi.timestamp());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let t = DateTime::from_timestamp(mid, 0).expect("between two valid instants");
        if offset_at(tz, t) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).expect("a valid instant")
}

/// The first instant of the supported years: earlier instants are never allowed.
fn first_supported_instant() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1)
        .expect("a valid date")
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
}

/// A lower bound of every instant whose local date is `day` or later, whatever the timezone.
fn earliest_instant_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc() - MARGIN
}

/// In intervals sorted by start, the end of the union stretch containing `at`, or `None` if no interval does.
fn stretch_end(sorted: &[Interval], at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut end: Option<DateTime<Utc>> = None;
    for &(s, e) in sorted {
        match end {
            None if s <= at && at < e => end = Some(e),
            Some(cur) if s <= cur => end = Some(cur.max(e)),
            Some(_) => break,
            None => {}
        }
    }
    end
}

#[cfg(test)]
mod tests;
