//! Calls per number across every campaign and node (issue 21), for the per-number rules
//! (`max_calls_per_number_per_day`, `min_gap_same_number_sec`): each call placed to a number is recorded with
//! its instant; the store answers the number's calls on the current UTC day and its last call.
//!
//! Redis: one hash per number, `dlr:{n:<number>}:calls` with `day` (`YYYYMMDD`), `count` (calls that day) and
//! `last` (epoch ms of the latest call); one script updates it (a new day restarts the count), and it expires
//! [`KEEP_DAYS`] days after its last call. Each number has its own hash tag, so numbers spread over a Cluster.
//! Memory: the same per number, at most [`MEMORY_CAP`] numbers (numbers not called for [`KEEP_DAYS`] days are
//! dropped first; past that a record is refused).
//!
//! Numbers are given as the caller normalised them (the same spelling every time); a number may hold ASCII
//! letters, digits and `+ * # . - _`, at most 64 bytes.

use super::Store;
use super::caller_ids::day_of;
use super::error::{StoreError, StoreResult};
use super::types::{from_ms, ms};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Most numbers the memory backend keeps.
pub const MEMORY_CAP: usize = 2_000_000;
/// Days a number's record outlives its last call.
pub const KEEP_DAYS: i64 = 3;

static RECORD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local f = redis.call('HMGET', KEYS[1], 'day', 'count', 'last')
local count = 0
if f[1] == ARGV[1] then count = tonumber(f[2]) end
count = count + 1
local last = tonumber(f[3] or '0')
local at = tonumber(ARGV[2])
if at > last then last = at end
redis.call('HSET', KEYS[1], 'day', ARGV[1], 'count', count, 'last', last)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {count, last}",
    )
});

/// One number's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberCalls {
    /// Calls on the current UTC day.
    pub today: u32,
    /// The latest call, if any is remembered.
    pub last_call: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Entry {
    day: String,
    count: u32,
    last_ms: i64,
}

/// The memory backend's records.
#[derive(Debug, Default)]
pub(crate) struct NumberBook(HashMap<String, Entry>);

fn key(number: &str) -> String {
    format!("dlr:{{n:{number}}}:calls")
}

fn check_number(number: &str) -> StoreResult<()> {
    if number.is_empty() || number.len() > 64 || !crate::campaign::gateway::is_dial_safe(number) {
        return Err(StoreError::InvalidArgument {
            what: "number",
            reason: format!("{number:?}: 1 to 64 ASCII letters, digits or + * # . - _"),
        });
    }
    Ok(())
}

fn calls_on(day: &str, stored_day: &str, count: u32, last_ms: i64) -> NumberCalls {
    NumberCalls {
        today: if stored_day == day { count } else { 0 },
        last_call: (last_ms > 0).then(|| from_ms(last_ms)),
    }
}

impl Store {
    /// Records a call to `number` placed at `at`; answers the number's figures after it.
    pub async fn record_number_call(
        &self,
        number: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<NumberCalls> {
        check_number(number)?;
        let at = at + self.skew().await;
        let day = day_of(at);
        match self {
            Store::Memory(m) => {
                let mut book = m.number_calls.lock().unwrap_or_else(|p| p.into_inner());
                if !book.0.contains_key(number) && book.0.len() >= MEMORY_CAP {
                    let oldest = ms(at - chrono::Duration::days(KEEP_DAYS));
                    book.0.retain(|_, e| e.last_ms > oldest);
                    if book.0.len() >= MEMORY_CAP {
                        return Err(StoreError::InvalidArgument {
                            what: "number calls",
                            reason: format!(
                                "more than {MEMORY_CAP} numbers called in {KEEP_DAYS} days"
                            ),
                        });
                    }
                }
                let e = book.0.entry(number.to_owned()).or_insert_with(|| Entry {
                    day: day.clone(),
                    count: 0,
                    last_ms: 0,
                });
                if e.day != day {
                    e.day = day.clone();
                    e.count = 0;
                }
                e.count += 1;
                e.last_ms = e.last_ms.max(ms(at));
                Ok(calls_on(&day, &e.day, e.count, e.last_ms))
            }
            Store::Redis(r) => {
                let (count, last): (u32, i64) = RECORD
                    .key(key(number))
                    .arg(&day)
                    .arg(ms(at))
                    .arg(KEEP_DAYS * 86_400)
                    .invoke_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("record_number_call"))?;
                Ok(calls_on(&day, &day, count, last))
            }
        }
    }

    /// The number's calls on the current UTC day of `now` and its latest call.
    pub async fn number_calls(&self, number: &str, now: DateTime<Utc>) -> StoreResult<NumberCalls> {
        check_number(number)?;
        let day = day_of(now + self.skew().await);
        match self {
            Store::Memory(m) => {
                let book = m.number_calls.lock().unwrap_or_else(|p| p.into_inner());
                Ok(book.0.get(number).map_or(calls_on(&day, "", 0, 0), |e| {
                    calls_on(&day, &e.day, e.count, e.last_ms)
                }))
            }
            Store::Redis(r) => {
                let (stored, count, last): (Option<String>, Option<u32>, Option<i64>) =
                    redis::cmd("HMGET")
                        .arg(key(number))
                        .arg(&["day", "count", "last"])
                        .query_async(&mut r.connection())
                        .await
                        .map_err(StoreError::redis("number_calls"))?;
                Ok(calls_on(
                    &day,
                    stored.as_deref().unwrap_or(""),
                    count.unwrap_or(0),
                    last.unwrap_or(0),
                ))
            }
        }
    }

    /// The number's calls on the current UTC day of `now`.
    pub async fn number_calls_today(&self, number: &str, now: DateTime<Utc>) -> StoreResult<u32> {
        Ok(self.number_calls(number, now).await?.today)
    }

    /// The number's latest call, if remembered (kept [`KEEP_DAYS`] days).
    pub async fn number_last_call(&self, number: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.number_calls(number, Utc::now()).await?.last_call)
    }
}
