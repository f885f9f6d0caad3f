//! The campaign calendar (SPEC §1, §5): when members may be called, in their own local time.
//!
//! [`Calendar`] is the calendar as written by users (JSON through the API, TOML in a config file);
//! [`Calendar::compile`] validates it into a [`CalendarSchedule`], the form the engine and the store query through
//! the [`Schedule`](super::Schedule) trait. Keeping the two apart means the text form never needs re-parsing on the
//! hot path (timezone lookup, merged windows, holiday sets are built once) and a `CalendarSchedule` cannot exist
//! for an invalid calendar.
//!
//! Windows crossing midnight are **not** accepted as one window (`start_min < end_min <= 1440` is required):
//! write them as two windows, `{weekday: 5, start_min: 1320, end_min: 1440}` and
//! `{weekday: 6, start_min: 0, end_min: 120}`. Allowed stretches that touch at midnight are contiguous for
//! [`Schedule::allowed_until`](super::Schedule::allowed_until), so the pair behaves exactly like a single
//! Friday 22:00–Saturday 02:00 window — and a holiday on Saturday cuts it at midnight, as it should.

mod compiled;
mod serde_time;

pub use compiled::{ALLOWED_UNTIL_LOOKAHEAD_DAYS, CalendarSchedule, HORIZON_DAYS};

use super::error::{FieldError, FieldErrors};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Minutes in a local day; `end_min` may equal it (the window runs to midnight).
pub const MINUTES_PER_DAY: u16 = 1440;

/// A campaign calendar as written in JSON or TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// IANA timezone of the calendar (`Europe/Kyiv`); also the timezone of members that have none.
    pub timezone: String,
    /// Weekly windows in local time. At least one is required.
    #[serde(default)]
    pub accept: Vec<AcceptWindow>,
    /// Local dates on which nobody is called (holidays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<ExceptDate>,
    /// Before this instant nothing is called (the campaign sleeps until it).
    #[serde(
        default,
        with = "serde_time::instant_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<DateTime<Utc>>,
    /// From this instant on nothing is called (the campaign expires).
    #[serde(
        default,
        with = "serde_time::instant_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<DateTime<Utc>>,
}

/// One weekly window: on ISO `weekday` (Monday = 1 … Sunday = 7), local minutes `[start_min, end_min)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptWindow {
    pub weekday: u8,
    pub start_min: u16,
    pub end_min: u16,
}

/// A local date on which nobody is called; with `repeat_yearly`, the same month and day every year
/// (a 29 February holiday then only applies in leap years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptDate {
    #[serde(with = "serde_time::date")]
    pub date: NaiveDate,
    #[serde(default)]
    pub repeat_yearly: bool,
}

/// Parses an IANA timezone name (`Europe/Kyiv`, `America/New_York`, `UTC`; the tz database's aliases such as
/// `Europe/Kiev` are accepted too). The error message is the one shown to users: `unknown timezone "X"`.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!(
            "unknown timezone {:?} (expected an IANA name like \"Europe/Kyiv\")",
            crate::text::prefix(name)
        )
    })
}

impl Calendar {
    /// A calendar open at every instant, in `timezone` (which still decides what "a day" is for holidays).
    pub fn always_open(timezone: &str) -> Calendar {
        Calendar {
            timezone: timezone.to_string(),
            accept: (1..=7)
                .map(|weekday| AcceptWindow {
                    weekday,
                    start_min: 0,
                    end_min: MINUTES_PER_DAY,
                })
                .collect(),
            except: Vec::new(),
            start: None,
            end: None,
        }
    }

    /// Validates the calendar and builds its queryable form. Every problem is reported, each with its path
    /// relative to the calendar (`timezone`, `accept[2].end_min`, `end`).
    pub fn compile(&self) -> Result<CalendarSchedule, FieldErrors> {
        let mut errors = Vec::new();
        let tz = match parse_timezone(&self.timezone) {
            Ok(tz) => Some(tz),
            Err(msg) => {
                errors.push(FieldError::new("timezone", msg));
                None
            }
        };
        if self.accept.is_empty() {
            errors.push(FieldError::new(
                "accept",
                "no window: a calendar needs at least one {weekday, start_min, end_min}",
            ));
        }
        for (i, w) in self.accept.iter().enumerate() {
            let at = |field: &str| format!("accept[{i}].{field}");
            if !(1..=7).contains(&w.weekday) {
                errors.push(FieldError::new(
                    at("weekday"),
                    format!(
                        "must be 1..7 (ISO: Monday = 1, Sunday = 7), got {}",
                        w.weekday
                    ),
                ));
            }
            if w.start_min >= MINUTES_PER_DAY {
                errors.push(FieldError::new(
                    at("start_min"),
                    format!(
                        "must be 0..1439 (minutes of the local day), got {}",
                        w.start_min
                    ),
                ));
            }
            if w.end_min > MINUTES_PER_DAY {
                errors.push(FieldError::new(
                    at("end_min"),
                    format!(
                        "must be at most 1440 (a window cannot cross midnight: split it in two), got {}",
                        w.end_min
                    ),
                ));
            } else if w.end_min <= w.start_min {
                errors.push(FieldError::new(
                    at("end_min"),
                    format!(
                        "must be greater than start_min ({}) (a window cannot cross midnight: split it in two), got {}",
                        w.start_min, w.end_min
                    ),
                ));
            }
        }
        if let (Some(start), Some(end)) = (self.start, self.end)
            && end <= start
        {
            errors.push(FieldError::new(
                "end",
                format!("must be after start ({start}), got {end}"),
            ));
        }
        match tz {
            Some(tz) if errors.is_empty() => Ok(CalendarSchedule::new(
                tz,
                &self.accept,
                &self.except,
                self.start,
                self.end,
            )),
            _ => Err(FieldErrors(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(weekday: u8, start_min: u16, end_min: u16) -> AcceptWindow {
        AcceptWindow {
            weekday,
            start_min,
            end_min,
        }
    }

    fn calendar(accept: Vec<AcceptWindow>) -> Calendar {
        Calendar {
            timezone: "Europe/Kyiv".into(),
            accept,
            except: vec![],
            start: None,
            end: None,
        }
    }

    #[test]
    fn unknown_timezone_is_refused_with_its_name() {
        let err = Calendar::always_open("Europe/Kiev2").compile().unwrap_err();
        assert_eq!(
            err.0[0].to_string(),
            "timezone: unknown timezone \"Europe/Kiev2\" (expected an IANA name like \"Europe/Kyiv\")"
        );
    }

    #[test]
    fn old_alias_europe_kiev_is_accepted() {
        assert!(Calendar::always_open("Europe/Kiev").compile().is_ok());
    }

    #[test]
    fn every_bad_window_field_is_reported_with_its_index() {
        let c = calendar(vec![
            window(1, 540, 1080),
            window(0, 0, 60),
            window(8, 1440, 1440),
            window(2, 600, 600),
            window(3, 1380, 1500),
        ]);
        let err = c.compile().unwrap_err().to_string();
        assert!(err.contains("accept[1].weekday: must be 1..7"), "{err}");
        assert!(err.contains("accept[2].weekday: must be 1..7"), "{err}");
        assert!(
            err.contains("accept[2].start_min: must be 0..1439"),
            "{err}"
        );
        assert!(
            err.contains("accept[3].end_min: must be greater than start_min (600)"),
            "{err}"
        );
        assert!(
            err.contains("accept[4].end_min: must be at most 1440"),
            "{err}"
        );
        assert!(!err.contains("accept[0]"), "{err}");
    }

    #[test]
    fn calendar_without_windows_is_refused() {
        let err = calendar(vec![]).compile().unwrap_err().to_string();
        assert!(err.starts_with("accept: no window"), "{err}");
    }

    #[test]
    fn end_not_after_start_is_refused() {
        let mut c = Calendar::always_open("UTC");
        let t = "2025-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        c.start = Some(t);
        c.end = Some(t);
        let err = c.compile().unwrap_err().to_string();
        assert!(err.starts_with("end: must be after start"), "{err}");
    }

    #[test]
    fn json_field_names_follow_the_spec() {
        let c: Calendar = serde_json::from_str(
            r#"{"timezone":"Europe/Kyiv",
                "accept":[{"weekday":1,"start_min":540,"end_min":1080}],
                "except":[{"date":"2025-12-25","repeat_yearly":true},{"date":"2025-05-01"}],
                "start":"2025-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(c.accept, vec![window(1, 540, 1080)]);
        assert!(c.except[0].repeat_yearly && !c.except[1].repeat_yearly);
        assert!(c.compile().is_ok());
        let back: Calendar = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_calendar_field_is_refused() {
        let err = serde_json::from_str::<Calendar>(r#"{"timezone":"UTC","acept":[]}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `acept`"), "{err}");
    }
}
