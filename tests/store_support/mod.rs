//! Shared helpers of the store integration tests: a real windowed calendar, member builders, backends.
#![allow(dead_code)]

pub mod failover;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use fsdialer::campaign::member::{CommunicationInput, MemberInput};
use fsdialer::campaign::schedule::Schedule;
use fsdialer::store::local_redis::{LocalRedis, LocalRedisOptions};
use fsdialer::store::{AttemptIds, Store};

/// A calendar allowing calls every day between `start_hour` and `end_hour` (local time of the member's timezone,
/// or `default_tz`), until an optional end instant. DST is handled by chrono-tz.
#[derive(Debug, Clone)]
pub struct Hours {
    pub default_tz: Tz,
    pub start_hour: u32,
    pub end_hour: u32,
    pub end: Option<DateTime<Utc>>,
}

impl Hours {
    pub fn new(default_tz: &str, start_hour: u32, end_hour: u32) -> Hours {
        Hours {
            default_tz: default_tz.parse().expect("test timezone"),
            start_hour,
            end_hour,
            end: None,
        }
    }

    fn tz(&self, tz: Option<&str>) -> Tz {
        tz.and_then(|t| t.parse().ok()).unwrap_or(self.default_tz)
    }

    fn local_at(tz: Tz, date: NaiveDate, hour: u32) -> DateTime<Utc> {
        // A DST gap skips the hour: take the first valid instant after it.
        let mut naive = date.and_hms_opt(hour, 0, 0).expect("valid hour");
        loop {
            if let Some(t) = tz.from_local_datetime(&naive).earliest() {
                return t.with_timezone(&Utc);
            }
            naive += Duration::minutes(15);
        }
    }

    fn inside(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        let h = at.with_timezone(&tz).hour();
        h >= self.start_hour && h < self.end_hour
    }
}

impl Schedule for Hours {
    fn next_allowed(&self, tz: Option<&str>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tz = self.tz(tz);
        let found = if self.inside(tz, at) {
            at
        } else {
            let local = at.with_timezone(&tz);
            let today = Self::local_at(tz, local.date_naive(), self.start_hour);
            if today > at {
                today
            } else {
                Self::local_at(tz, local.date_naive().succ_opt()?, self.start_hour)
            }
        };
        match self.end {
            Some(end) if found >= end => None,
            _ => Some(found),
        }
    }

    fn allowed_until(&self, tz: Option<&str>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tz = self.tz(tz);
        if !self.inside(tz, at) || self.end.is_some_and(|e| at >= e) {
            return None;
        }
        let local = at.with_timezone(&tz);
        let close = Self::local_at(tz, local.date_naive(), self.end_hour);
        Some(self.end.map_or(close, |e| close.min(e)))
    }
}

/// 2024-03-04 (a Monday) at `h:m` UTC.
pub fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, h, m, 0).unwrap()
}

pub fn day(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, d, h, 0, 0).unwrap()
}

pub fn member(name: &str, numbers: &[&str]) -> MemberInput {
    MemberInput {
        name: name.to_string(),
        priority: 0,
        timezone: None,
        expire: None,
        variables: serde_json::Map::new(),
        communications: numbers
            .iter()
            .map(|n| CommunicationInput {
                number: n.to_string(),
                priority: 0,
                description: None,
                kind: None,
            })
            .collect(),
        external_id: None,
    }
}

/// Starts a private redis-server; panics with install instructions if the binary is missing.
pub fn redis_server(durable: bool) -> LocalRedis {
    match LocalRedis::start(LocalRedisOptions {
        durable,
        password: None,
        tls: None,
    }) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

/// A Redis-backed store on a fresh server (keep the server alive as long as the store).
pub async fn redis_store(ids: AttemptIds) -> (Store, LocalRedis) {
    let server = redis_server(false);
    let store = Store::open_with_ids(&server.url(), ids)
        .await
        .expect("connect to the local redis-server");
    (store, server)
}

pub fn year(date: DateTime<Utc>) -> i32 {
    date.year()
}

/// A store on `url` (a cluster or Sentinel set-up shared by many scenarios) with every key removed first, so
/// each scenario starts from an empty store as it would on a fresh server.
pub async fn emptied_store(url: &str) -> Store {
    let store = Store::open(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let Store::Redis(r) = &store else {
        panic!("{url} is not a Redis store")
    };
    // On a cluster the client sends FLUSHALL to every master.
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut r.connection())
        .await
        .expect("FLUSHALL");
    store
}
