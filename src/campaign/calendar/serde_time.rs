//! How calendar instants and dates are written in JSON and TOML.
//!
//! JSON has no date type, so instants are RFC 3339 strings (`"2025-03-30T00:00:00Z"`) or, as Webitel v3 clients
//! send them, integer milliseconds since 1970; dates are `"YYYY-MM-DD"` strings. TOML has native date-times
//! (`start = 2025-03-30T00:00:00Z`, `date = 2025-12-25`), which the `toml` crate hands to serde as a special
//! one-entry map; both spellings are accepted here so a config file can use either. Output is always the string
//! form, which both formats read back.

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::de::{self, MapAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Deserializer, Serializer};
use std::fmt;

struct InstantVisitor;

impl<'de> Visitor<'de> for InstantVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "an RFC 3339 instant like \"2025-03-30T00:00:00Z\" or integer milliseconds since 1970",
        )
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        parse_instant(s).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Self::Value, E> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| E::custom(format!("instant {ms} ms since 1970 is out of range")))
    }

    fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Self::Value, E> {
        let ms = i64::try_from(ms)
            .map_err(|_| E::custom(format!("instant {ms} ms since 1970 is out of range")))?;
        self.visit_i64(ms)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let dt = toml::value::Datetime::deserialize(MapAccessDeserializer::new(map))?;
        if dt.date.is_none() || dt.time.is_none() || dt.offset.is_none() {
            return Err(de::Error::custom(format!(
                "{dt} is not an instant: write a date, a time and an offset, like 2025-03-30T00:00:00Z"
            )));
        }
        parse_instant(&dt.to_string()).map_err(de::Error::custom)
    }
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("invalid instant {s:?} ({e}): expected RFC 3339 like \"2025-03-30T00:00:00Z\"")
        })
}

struct DateVisitor;

impl<'de> Visitor<'de> for DateVisitor {
    type Value = NaiveDate;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a date like \"2025-12-25\"")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|e| E::custom(format!("invalid date {s:?} ({e}): expected \"YYYY-MM-DD\"")))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let dt = toml::value::Datetime::deserialize(MapAccessDeserializer::new(map))?;
        match (dt.date, dt.time) {
            (Some(d), None) => NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())
                .ok_or_else(|| de::Error::custom(format!("invalid date {dt}"))),
            _ => Err(de::Error::custom(format!(
                "{dt} is not a date: write only the date, like 2025-12-25"
            ))),
        }
    }
}

/// `#[serde(with = "serde_time::instant_opt")]` for `Option<DateTime<Utc>>`.
pub mod instant_opt {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(t) => s.serialize_some(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        d.deserialize_any(InstantVisitor).map(Some)
    }
}

/// `#[serde(with = "serde_time::date")]` for `NaiveDate`.
pub mod date {
    use super::*;

    pub fn serialize<S: Serializer>(v: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&v.format("%Y-%m-%d"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        d.deserialize_any(DateVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Doc {
        #[serde(default, with = "instant_opt", skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
        #[serde(with = "date")]
        day: NaiveDate,
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn json_accepts_rfc3339_strings_and_epoch_millis() {
        let d: Doc =
            serde_json::from_str(r#"{"at":"2025-03-30T03:00:00+03:00","day":"2025-12-25"}"#)
                .unwrap();
        assert_eq!(d.at, Some(t("2025-03-30T00:00:00Z")));
        assert_eq!(d.day, NaiveDate::from_ymd_opt(2025, 12, 25).unwrap());
        let d: Doc = serde_json::from_str(r#"{"at":1743292800000,"day":"2025-12-25"}"#).unwrap();
        assert_eq!(d.at, Some(t("2025-03-30T00:00:00Z")));
    }

    #[test]
    fn toml_accepts_native_datetimes_and_quoted_strings() {
        let d: Doc = toml::from_str("at = 2025-03-30T00:00:00Z\nday = 2025-12-25\n").unwrap();
        assert_eq!(d.at, Some(t("2025-03-30T00:00:00Z")));
        assert_eq!(d.day, NaiveDate::from_ymd_opt(2025, 12, 25).unwrap());
        let d: Doc =
            toml::from_str("at = \"2025-03-30T00:00:00Z\"\nday = \"2025-12-25\"\n").unwrap();
        assert_eq!(d.at, Some(t("2025-03-30T00:00:00Z")));
    }

    #[test]
    fn toml_local_datetime_without_offset_is_refused_as_ambiguous() {
        let err =
            toml::from_str::<Doc>("at = 2025-03-30T00:00:00\nday = 2025-12-25\n").unwrap_err();
        assert!(err.to_string().contains("not an instant"), "{err}");
        let err = toml::from_str::<Doc>("day = 2025-12-25T10:00:00Z\n").unwrap_err();
        assert!(err.to_string().contains("not a date"), "{err}");
    }

    #[test]
    fn bad_strings_are_refused_with_the_expected_form() {
        let err =
            serde_json::from_str::<Doc>(r#"{"at":"yesterday","day":"2025-12-25"}"#).unwrap_err();
        assert!(
            err.to_string().contains("invalid instant \"yesterday\""),
            "{err}"
        );
        let err = serde_json::from_str::<Doc>(r#"{"day":"25.12.2025"}"#).unwrap_err();
        assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
    }

    #[test]
    fn output_is_the_string_form_that_reads_back() {
        let d = Doc {
            at: Some(t("2025-03-30T00:00:00Z")),
            day: NaiveDate::from_ymd_opt(2025, 2, 3).unwrap(),
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, r#"{"at":"2025-03-30T00:00:00Z","day":"2025-02-03"}"#);
        assert_eq!(serde_json::from_str::<Doc>(&json).unwrap(), d);
        let toml_text = toml::to_string(&d).unwrap();
        assert_eq!(toml::from_str::<Doc>(&toml_text).unwrap(), d);
    }
}
