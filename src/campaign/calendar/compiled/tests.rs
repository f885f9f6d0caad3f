//! Tests of the compiled calendar: windows, DST transitions, exceptions, horizons and the supported range.

use super::super::{AcceptWindow, Calendar, ExceptDate};
use super::*;
use chrono::Timelike;
use proptest::prelude::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn w(weekday: u8, start_min: u16, end_min: u16) -> AcceptWindow {
    AcceptWindow {
        weekday,
        start_min,
        end_min,
    }
}

fn every_day(start_min: u16, end_min: u16) -> Vec<AcceptWindow> {
    (1..=7).map(|wd| w(wd, start_min, end_min)).collect()
}

fn sched(tz: &str, accept: Vec<AcceptWindow>, except: Vec<ExceptDate>) -> CalendarSchedule {
    Calendar {
        timezone: tz.into(),
        accept,
        except,
        start: None,
        end: None,
    }
    .compile()
    .unwrap()
}

fn tz(name: &str) -> Tz {
    name.parse().unwrap()
}

// ---- Europe/Kyiv spring forward: 2025-03-30 03:00 EET (+2) → 04:00 EEST (+3), at 01:00 UTC ----

#[test]
fn kyiv_window_opening_in_the_skipped_hour_opens_at_the_end_of_the_gap() {
    let c = sched("Europe/Kyiv", every_day(210, 300), vec![]); // 03:30–05:00 local
    let kyiv = tz("Europe/Kyiv");
    // The day before: 03:30 EET = 01:30 UTC.
    assert_eq!(
        c.next_allowed_in(kyiv, t("2025-03-29T00:00:00Z")),
        Some(t("2025-03-29T01:30:00Z"))
    );
    // Transition day: 03:30 does not exist; the first valid instant after is 04:00 EEST = 01:00 UTC.
    let open = c.next_allowed_in(kyiv, t("2025-03-29T12:00:00Z"));
    assert_eq!(open, Some(t("2025-03-30T01:00:00Z")));
    // It closes at 05:00 EEST = 02:00 UTC.
    assert_eq!(
        c.allowed_until_in(kyiv, open.unwrap()),
        Some(t("2025-03-30T02:00:00Z"))
    );
    assert!(!c.is_allowed_in(kyiv, t("2025-03-30T00:59:59Z")));
    // The day after: 03:30 EEST = 00:30 UTC.
    assert_eq!(
        c.next_allowed_in(kyiv, t("2025-03-30T12:00:00Z")),
        Some(t("2025-03-31T00:30:00Z"))
    );
}

#[test]
fn kyiv_window_ending_in_the_skipped_hour_ends_at_the_gap() {
    let c = sched("Europe/Kyiv", vec![w(7, 0, 210)], vec![]); // Sundays 00:00–03:30 local
    let kyiv = tz("Europe/Kyiv");
    // Sunday 00:00 EET = Saturday 22:00 UTC; local time jumps from 03:00 to 04:00 at 01:00 UTC.
    assert_eq!(
        c.next_allowed_in(kyiv, t("2025-03-29T12:00:00Z")),
        Some(t("2025-03-29T22:00:00Z"))
    );
    assert_eq!(
        c.allowed_until_in(kyiv, t("2025-03-29T23:00:00Z")),
        Some(t("2025-03-30T01:00:00Z"))
    );
}

#[test]
fn kyiv_office_hours_shift_by_one_utc_hour_across_spring_forward() {
    let c = sched("Europe/Kyiv", every_day(540, 1080), vec![]); // 09:00–18:00
    let kyiv = tz("Europe/Kyiv");
    assert_eq!(
        c.next_allowed_in(kyiv, t("2025-03-29T00:00:00Z")),
        Some(t("2025-03-29T07:00:00Z"))
    );
    assert_eq!(
        c.allowed_until_in(kyiv, t("2025-03-29T07:00:00Z")),
        Some(t("2025-03-29T16:00:00Z"))
    );
    assert_eq!(
        c.next_allowed_in(kyiv, t("2025-03-29T16:00:00Z")),
        Some(t("2025-03-30T06:00:00Z"))
    );
    assert_eq!(
        c.allowed_until_in(kyiv, t("2025-03-30T06:00:00Z")),
        Some(t("2025-03-30T15:00:00Z"))
    );
}

// ---- America/New_York fall back: 2025-11-02 02:00 EDT (-4) → 01:00 EST (-5), at 06:00 UTC ----

#[test]
fn new_york_repeated_hour_is_allowed_twice_when_the_window_covers_it() {
    let c = sched("America/New_York", vec![w(7, 0, 90)], vec![]); // Sundays 00:00–01:30 local
    let ny = tz("America/New_York");
    // 00:00 EDT = 04:00 UTC until 01:30 EDT = 05:30 UTC ...
    assert_eq!(
        c.next_allowed_in(ny, t("2025-11-01T12:00:00Z")),
        Some(t("2025-11-02T04:00:00Z"))
    );
    assert_eq!(
        c.allowed_until_in(ny, t("2025-11-02T04:30:00Z")),
        Some(t("2025-11-02T05:30:00Z"))
    );
    // ... then 01:30–02:00 EDT is outside, and the clock falls back to 01:00 EST = 06:00 UTC ...
    assert!(!c.is_allowed_in(ny, t("2025-11-02T05:45:00Z")));
    assert_eq!(
        c.next_allowed_in(ny, t("2025-11-02T05:30:00Z")),
        Some(t("2025-11-02T06:00:00Z"))
    );
    // ... until 01:30 EST = 06:30 UTC.
    assert_eq!(
        c.allowed_until_in(ny, t("2025-11-02T06:00:00Z")),
        Some(t("2025-11-02T06:30:00Z"))
    );
    // Next Sunday, in EST: 00:00 EST = 05:00 UTC.
    assert_eq!(
        c.next_allowed_in(ny, t("2025-11-02T06:30:00Z")),
        Some(t("2025-11-09T05:00:00Z"))
    );
}

#[test]
fn new_york_window_starting_in_the_repeated_hour_skips_its_second_early_half() {
    let c = sched("America/New_York", vec![w(7, 90, 180)], vec![]); // Sundays 01:30–03:00 local
    let ny = tz("America/New_York");
    // 01:30 EDT = 05:30 UTC until the fall back at 06:00 UTC (local becomes 01:00 EST, outside) ...
    assert_eq!(
        c.next_allowed_in(ny, t("2025-11-02T00:00:00Z")),
        Some(t("2025-11-02T05:30:00Z"))
    );
    assert_eq!(
        c.allowed_until_in(ny, t("2025-11-02T05:30:00Z")),
        Some(t("2025-11-02T06:00:00Z"))
    );
    // ... then again from 01:30 EST = 06:30 UTC to 03:00 EST = 08:00 UTC.
    assert_eq!(
        c.next_allowed_in(ny, t("2025-11-02T06:00:00Z")),
        Some(t("2025-11-02T06:30:00Z"))
    );
    assert_eq!(
        c.allowed_until_in(ny, t("2025-11-02T06:30:00Z")),
        Some(t("2025-11-02T08:00:00Z"))
    );
}

#[test]
fn new_york_whole_fall_back_day_is_one_25_hour_stretch() {
    let c = sched("America/New_York", vec![w(7, 0, 1440)], vec![]);
    let ny = tz("America/New_York");
    let open = t("2025-11-02T04:00:00Z");
    let close = c.allowed_until_in(ny, open).unwrap();
    assert_eq!(close, t("2025-11-03T05:00:00Z"));
    assert_eq!(close - open, Duration::hours(25));
}

// ---- holidays ----

#[test]
fn holiday_blocks_its_local_date_and_next_allowed_skips_it() {
    let c = sched(
        "Europe/Kyiv",
        every_day(540, 1080),
        vec![ExceptDate {
            date: d("2025-05-01"),
            repeat_yearly: false,
        }],
    );
    let kyiv = tz("Europe/Kyiv");
    assert!(!c.is_allowed_in(kyiv, t("2025-05-01T08:00:00Z")));
    assert_eq!(c.allowed_until_in(kyiv, t("2025-05-01T08:00:00Z")), None);
    assert_eq!(
        c.next_allowed_in(kyiv, t("2025-04-30T16:00:00Z")),
        Some(t("2025-05-02T06:00:00Z"))
    );
    // Not repeated: the next year's 1 May is a normal day.
    assert!(c.is_allowed_in(kyiv, t("2026-05-01T08:00:00Z")));
}

#[test]
fn repeat_yearly_holiday_blocks_the_same_day_every_year() {
    let c = sched(
        "Europe/Kyiv",
        every_day(540, 1080),
        vec![ExceptDate {
            date: d("2020-12-25"),
            repeat_yearly: true,
        }],
    );
    let kyiv = tz("Europe/Kyiv");
    for year in [2025, 2026, 2031] {
        let at = t(&format!("{year}-12-25T10:00:00Z"));
        assert!(!c.is_allowed_in(kyiv, at), "{year}");
        assert_eq!(
            c.next_allowed_in(kyiv, at),
            Some(t(&format!("{year}-12-26T07:00:00Z")))
        );
    }
}

#[test]
fn holiday_is_taken_in_the_members_local_date() {
    // Calendar in UTC, open all day, 1 January off. For a member in Auckland (+13 in summer) 1 January starts
    // at 31 December 11:00 UTC.
    let c = sched(
        "UTC",
        every_day(0, 1440),
        vec![ExceptDate {
            date: d("2025-01-01"),
            repeat_yearly: false,
        }],
    );
    let at = t("2024-12-31T12:00:00Z");
    assert!(c.is_allowed_in(tz("UTC"), at));
    assert!(!c.is_allowed_in(tz("Pacific/Auckland"), at));
    assert_eq!(
        c.allowed_until_in(tz("UTC"), at),
        Some(t("2025-01-01T00:00:00Z"))
    );
    assert_eq!(
        c.next_allowed_in(tz("Pacific/Auckland"), at),
        Some(t("2025-01-01T11:00:00Z"))
    );
}

#[test]
fn holidays_covering_every_day_for_two_years_mean_never() {
    let except = (1..=366)
        .map(|n| ExceptDate {
            date: NaiveDate::from_yo_opt(2024, n).unwrap(),
            repeat_yearly: true,
        })
        .collect();
    let c = sched("UTC", every_day(0, 1440), except);
    assert_eq!(
        c.next_allowed_in(tz("UTC"), t("2025-06-01T00:00:00Z")),
        None
    );
}

// ---- member timezones ----

#[test]
fn member_timezone_overrides_the_calendars() {
    let c = sched("Europe/Kyiv", every_day(540, 1080), vec![]);
    let at = t("2025-06-02T12:00:00Z"); // 15:00 in Kyiv, 08:00 in New York
    assert_eq!(c.next_allowed(None, at), Some(at));
    assert_eq!(
        c.next_allowed(Some("America/New_York"), at),
        Some(t("2025-06-02T13:00:00Z"))
    );
    assert_eq!(c.allowed_until(None, at), Some(t("2025-06-02T15:00:00Z")));
    assert_eq!(c.allowed_until(Some("America/New_York"), at), None);
    assert_eq!(
        c.allowed_until(Some("America/New_York"), t("2025-06-02T13:00:00Z")),
        Some(t("2025-06-02T22:00:00Z"))
    );
}

#[test]
fn unknown_or_empty_member_timezone_uses_the_calendars() {
    let c = sched("Europe/Kyiv", every_day(540, 1080), vec![]);
    let at = t("2025-06-02T12:00:00Z");
    assert_eq!(c.member_timezone(Some("Mars/Olympus")), tz("Europe/Kyiv"));
    assert_eq!(c.member_timezone(Some("")), tz("Europe/Kyiv"));
    assert_eq!(c.next_allowed(Some("Mars/Olympus"), at), Some(at));
}

// ---- weekdays, midnight, start / end ----

#[test]
fn windows_on_specific_weekdays_only() {
    // Monday and Wednesday 10:00–12:00 UTC. 2025-06-03 is a Tuesday.
    let c = sched("UTC", vec![w(1, 600, 720), w(3, 600, 720)], vec![]);
    let utc = tz("UTC");
    assert_eq!(
        c.next_allowed_in(utc, t("2025-06-03T11:00:00Z")),
        Some(t("2025-06-04T10:00:00Z"))
    );
    assert_eq!(
        c.next_allowed_in(utc, t("2025-06-04T12:00:00Z")),
        Some(t("2025-06-09T10:00:00Z"))
    );
    assert!(c.is_allowed_in(utc, t("2025-06-09T11:59:59Z")));
    assert!(!c.is_allowed_in(utc, t("2025-06-09T12:00:00Z")));
}

#[test]
fn overlapping_windows_of_a_day_merge() {
    let c = sched(
        "UTC",
        vec![w(1, 600, 700), w(1, 650, 800), w(1, 800, 900)],
        vec![],
    );
    assert_eq!(
        c.allowed_until_in(tz("UTC"), t("2025-06-02T10:00:00Z")),
        Some(t("2025-06-02T15:00:00Z"))
    );
}

#[test]
fn two_windows_touching_at_midnight_form_one_stretch_unless_the_second_day_is_a_holiday() {
    // Friday 22:00–24:00 and Saturday 00:00–02:00 (2025-06-06 is a Friday).
    let accept = vec![w(5, 1320, 1440), w(6, 0, 120)];
    let c = sched("Europe/Kyiv", accept.clone(), vec![]);
    let kyiv = tz("Europe/Kyiv");
    let friday_23 = t("2025-06-06T20:00:00Z");
    assert_eq!(
        c.allowed_until_in(kyiv, friday_23),
        Some(t("2025-06-06T23:00:00Z"))
    );
    let c = sched(
        "Europe/Kyiv",
        accept,
        vec![ExceptDate {
            date: d("2025-06-07"),
            repeat_yearly: false,
        }],
    );
    assert_eq!(
        c.allowed_until_in(kyiv, friday_23),
        Some(t("2025-06-06T21:00:00Z"))
    );
}

#[test]
fn always_open_calendar_reports_the_lookahead_limit() {
    let c = Calendar::always_open("UTC").compile().unwrap();
    let at = t("2025-06-02T12:00:00Z");
    assert_eq!(c.next_allowed(None, at), Some(at));
    let until = c.allowed_until(None, at).unwrap();
    assert!(
        until - at >= Duration::days(ALLOWED_UNTIL_LOOKAHEAD_DAYS as i64 - 3),
        "{until}"
    );
}

#[test]
fn before_start_waits_for_start_and_after_end_is_never() {
    let mut cal = Calendar::always_open("UTC");
    cal.accept = every_day(540, 1080);
    cal.start = Some(t("2025-07-01T10:00:00Z"));
    cal.end = Some(t("2025-07-10T12:00:00Z"));
    let c = cal.compile().unwrap();
    assert_eq!(
        c.next_allowed(None, t("2025-06-01T00:00:00Z")),
        Some(t("2025-07-01T10:00:00Z"))
    );
    assert_eq!(c.allowed_until(None, t("2025-06-01T10:00:00Z")), None);
    assert_eq!(
        c.allowed_until(None, t("2025-07-10T11:00:00Z")),
        Some(t("2025-07-10T12:00:00Z"))
    );
    assert_eq!(c.next_allowed(None, t("2025-07-10T12:00:00Z")), None);
    assert_eq!(c.next_allowed(None, t("2025-07-10T16:00:00Z")), None);
    assert_eq!(c.next_allowed(None, t("2026-01-01T00:00:00Z")), None);
}

#[test]
fn instants_outside_the_supported_years_are_never_allowed_and_do_not_panic() {
    let c = Calendar::always_open("Pacific/Kiritimati")
        .compile()
        .unwrap();
    assert_eq!(c.next_allowed(None, DateTime::<Utc>::MAX_UTC), None);
    assert_eq!(
        c.next_allowed(None, DateTime::<Utc>::MIN_UTC),
        Some(t("1900-01-01T00:00:00Z"))
    );
    assert_eq!(c.allowed_until(None, DateTime::<Utc>::MIN_UTC), None);
    assert!(!c.is_allowed_in(tz("UTC"), DateTime::<Utc>::MAX_UTC));
}

// ---- properties, against the rule read literally from the member's wall clock ----

/// SPEC §5 evaluated directly: local date not a holiday, local time inside a window of that weekday.
fn oracle(c: &CalendarSchedule, accept: &[AcceptWindow], zone: Tz, at: DateTime<Utc>) -> bool {
    if c.start.is_some_and(|s| at < s) || c.end.is_some_and(|e| at >= e) {
        return false;
    }
    let local = at.with_timezone(&zone);
    let date = local.date_naive();
    let minute = (local.hour() * 60 + local.minute()) as u16;
    let weekday = date.weekday().number_from_monday() as u8;
    !c.is_holiday(date)
        && accept
            .iter()
            .any(|w| w.weekday == weekday && w.start_min <= minute && minute < w.end_min)
}

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Kyiv",
    "America/New_York",
    "Australia/Lord_Howe", // 30-minute DST
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Santiago", // falls back at midnight
    "Asia/Kathmandu",
];

fn window_strategy() -> impl Strategy<Value = AcceptWindow> {
    (1u8..=7, 0u16..1440, 1u16..=1440).prop_map(|(weekday, start_min, len)| AcceptWindow {
        weekday,
        start_min,
        end_min: (start_min + len).min(1440),
    })
}

fn setup() -> impl Strategy<Value = (CalendarSchedule, Vec<AcceptWindow>, Tz, DateTime<Utc>)> {
    (
        0..ZONES.len(),
        0..ZONES.len(),
        prop::collection::vec(window_strategy(), 1..5),
        prop::collection::vec((0u32..1100, any::<bool>()), 0..6),
        // 2024-01-01 .. 2027-01-01, to the second, biased towards DST days below.
        prop_oneof![
            1_704_067_200i64..1_798_761_600,
            // Around Kyiv spring forward and New York fall back 2025.
            1_743_206_400i64..1_743_465_600,
            1_761_955_200i64..1_762_214_400,
        ],
        // Optional calendar start / end, as offsets in seconds from `at`.
        prop::option::weighted(0.2, -3_000_000i64..3_000_000),
        prop::option::weighted(0.2, 1i64..6_000_000),
    )
        .prop_map(|(cal_tz, member_tz, accept, except, at, start, length)| {
            let except = except
                .into_iter()
                .map(|(n, repeat_yearly)| ExceptDate {
                    date: d("2024-01-01") + Days::new(n.into()),
                    repeat_yearly,
                })
                .collect();
            let at = DateTime::from_timestamp(at, 0).unwrap();
            let start = start.map(|s| at + Duration::seconds(s));
            let end = length.map(|l| start.unwrap_or(at) + Duration::seconds(l));
            let c = Calendar {
                timezone: ZONES[cal_tz].into(),
                accept: accept.clone(),
                except,
                start,
                end,
            }
            .compile()
            .unwrap();
            (c, accept, tz(ZONES[member_tz]), at)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn next_allowed_is_the_first_allowed_instant_at_or_after(
        (c, accept, zone, at) in setup(),
        samples in prop::collection::vec(0.0f64..1.0, 24),
    ) {
        if let Some(next) = c.next_allowed_in(zone, at) {
            prop_assert!(next >= at);
            prop_assert!(oracle(&c, &accept, zone, next), "next {next} not allowed");
            prop_assert!(c.is_allowed_in(zone, next));
            prop_assert_eq!(c.next_allowed_in(zone, next), Some(next));
            if next > at {
                let span = (next - at).num_seconds();
                prop_assert!(!oracle(&c, &accept, zone, next - Duration::seconds(1)));
                for f in &samples {
                    let x = at + Duration::seconds((span as f64 * f) as i64);
                    prop_assert!(x >= next || !oracle(&c, &accept, zone, x), "{x} allowed before {next}");
                }
            }
        } else {
            // "Never" within the horizon: nothing allowed in the next weeks either.
            for f in &samples {
                let x = at + Duration::seconds((f * 60.0 * 86400.0) as i64);
                prop_assert!(!oracle(&c, &accept, zone, x), "{x} allowed but next_allowed said never");
            }
        }
    }

    #[test]
    fn allowed_until_covers_exactly_the_allowed_stretch(
        (c, accept, zone, at) in setup(),
        samples in prop::collection::vec(0.0f64..1.0, 24),
    ) {
        let allowed = oracle(&c, &accept, zone, at);
        prop_assert_eq!(c.is_allowed_in(zone, at), allowed);
        match c.allowed_until_in(zone, at) {
            None => prop_assert!(!allowed, "{at} allowed but allowed_until said no"),
            Some(until) => {
                prop_assert!(allowed, "{at} not allowed but allowed_until said {until}");
                prop_assert!(until > at);
                prop_assert!(oracle(&c, &accept, zone, until - Duration::seconds(1)));
                let capped = until - at >= Duration::days(ALLOWED_UNTIL_LOOKAHEAD_DAYS as i64 - 3);
                prop_assert!(capped || !oracle(&c, &accept, zone, until), "{until} still allowed");
                let span = (until - at).num_seconds();
                for f in &samples {
                    let x = at + Duration::seconds((span as f64 * f) as i64);
                    prop_assert!(oracle(&c, &accept, zone, x), "{x} in [{at}, {until}) not allowed");
                }
            }
        }
    }
}
