//! Calls per number across every campaign and node (issue 21), for the per-number rules
//! (`max_calls_per_number_per_day`, `min_gap_same_number_sec`): each call placed to a number is recorded with
//! its instant; the store answers the number's calls on the current UTC day and its last call.
//!
//! A call is checked against a campaign's rules and recorded in one step ([`Store::call_number`]), so two nodes
//! placing calls to one number at once never both pass a cap or a gap: a call the rules refuse is not recorded.
//!
//! Redis: one hash per number, `dlr:{n:<number>}:calls` with `day` (`YYYYMMDD`), `count` (calls that day) and
//! `last` (epoch ms of the latest call); one script checks and updates it (a new day restarts the count), and it
//! expires [`KEEP_DAYS`] days after its last call. Each number has its own hash tag, so numbers spread over a
//! Cluster and each script touches one slot. The script's check mirrors [`not_before`], the one rule in Rust.
//! Memory: the same per number under one lock, at most [`MEMORY_CAP`] numbers (numbers not called for
//! [`KEEP_DAYS`] days are dropped first; past that a record is refused).
//!
//! Numbers are given as the caller normalised them (the same spelling every time); a number may hold ASCII
//! letters, digits and `+ * # . - _`, at most 64 bytes.

use super::Store;
use super::caller_ids::day_of;
use super::error::{StoreError, StoreResult};
use super::number_rules::{NumberRules, not_before};
use super::types::{from_ms, ms};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Most numbers the memory backend keeps.
pub const MEMORY_CAP: usize = 2_000_000;
/// Days a number's record outlives its last call.
pub const KEEP_DAYS: i64 = 3;

/// Checks a call to one number against the cap (`ARGV[4]`, -1: none) and the gap (`ARGV[5]` ms, -1: none) on the day
/// `ARGV[1]` at `ARGV[2]` (epoch ms), and records it unless refused: `{called (1 or 0), count today, last}`.
static CALL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local f = redis.call('HMGET', KEYS[1], 'day', 'count', 'last')
local count = 0
if f[1] == ARGV[1] then count = tonumber(f[2] or '0') end
local last = tonumber(f[3] or '0')
local at = tonumber(ARGV[2])
local cap = tonumber(ARGV[4])
local gap = tonumber(ARGV[5])
if (cap >= 0 and count >= cap) or (gap >= 0 and last > 0 and last + gap > at) then
  return {0, count, last}
end
count = count + 1
if at > last then last = at end
redis.call('HSET', KEYS[1], 'day', ARGV[1], 'count', count, 'last', last)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, count, last}",
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

/// What [`Store::call_number`] made of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberCall {
    /// The call was recorded: the number's figures with it.
    Recorded(NumberCalls),
    /// The rules refused the call (nothing recorded): the number's figures, and when it may be called (on the
    /// caller's clock).
    Refused {
        figures: NumberCalls,
        not_before: DateTime<Utc>,
    },
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
    super::record::check_dial_number("number", number, 64)
}

fn calls_on(day: &str, stored_day: &str, count: u32, last_ms: i64) -> NumberCalls {
    NumberCalls {
        today: if stored_day == day { count } else { 0 },
        last_call: (last_ms > 0).then(|| from_ms(last_ms)),
    }
}

impl NumberBook {
    /// The number's figures on `day`.
    fn figures(&self, number: &str, day: &str) -> NumberCalls {
        self.0.get(number).map_or(calls_on(day, "", 0, 0), |e| {
            calls_on(day, &e.day, e.count, e.last_ms)
        })
    }

    /// Checks and records a call at `at` (the store's clock) under one lock: the figures, and whether it was
    /// recorded.
    fn call(
        &mut self,
        number: &str,
        rules: NumberRules,
        at: DateTime<Utc>,
    ) -> StoreResult<(bool, NumberCalls)> {
        let day = day_of(at);
        let figures = self.figures(number, &day);
        if not_before(rules, &figures, at).is_some() {
            return Ok((false, figures));
        }
        if !self.0.contains_key(number) && self.0.len() >= MEMORY_CAP {
            let oldest = ms(at - chrono::Duration::days(KEEP_DAYS));
            self.0.retain(|_, e| e.last_ms > oldest);
            if self.0.len() >= MEMORY_CAP {
                return Err(StoreError::InvalidArgument {
                    what: "number calls",
                    reason: format!("more than {MEMORY_CAP} numbers called in {KEEP_DAYS} days"),
                });
            }
        }
        let e = self.0.entry(number.to_owned()).or_insert_with(|| Entry {
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
        Ok((true, calls_on(&day, &e.day, e.count, e.last_ms)))
    }
}

impl Store {
    /// A call to `number` placed at `now` under a campaign's per-number `rules`, checked and recorded in one
    /// atomic step (see the module doc): recorded unless the rules refuse it, refused calls not recorded.
    pub async fn call_number(
        &self,
        number: &str,
        rules: NumberRules,
        now: DateTime<Utc>,
    ) -> StoreResult<NumberCall> {
        check_number(number)?;
        let skew = self.skew().await;
        let at = now + skew;
        let (called, figures) = match self {
            Store::Memory(m) => m
                .number_calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .call(number, rules, at)?,
            Store::Redis(r) => {
                let day = day_of(at);
                let (called, count, last): (u8, u32, i64) = CALL
                    .key(key(number))
                    .arg(&day)
                    .arg(ms(at))
                    .arg(KEEP_DAYS * 86_400)
                    .arg(rules.max_calls_per_day.map_or(-1, i64::from))
                    .arg(rules.min_gap_sec.map_or(-1, |gap| i64::from(gap) * 1000))
                    .invoke_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("call_number"))?;
                (called == 1, calls_on(&day, &day, count, last))
            }
        };
        if called {
            return Ok(NumberCall::Recorded(figures));
        }
        // The script's check is `not_before`'s: a refusal has an instant; the next second should they ever part.
        let free = not_before(rules, &figures, at).unwrap_or(at + chrono::Duration::seconds(1));
        Ok(NumberCall::Refused {
            figures,
            not_before: free - skew,
        })
    }

    /// Records a call to `number` placed at `at`, whatever the rules; answers the number's figures after it.
    pub async fn record_number_call(
        &self,
        number: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<NumberCalls> {
        match self.call_number(number, NumberRules::default(), at).await? {
            NumberCall::Recorded(figures) | NumberCall::Refused { figures, .. } => Ok(figures),
        }
    }

    /// The number's calls on the current UTC day of `now` and its latest call.
    pub async fn number_calls(&self, number: &str, now: DateTime<Utc>) -> StoreResult<NumberCalls> {
        check_number(number)?;
        let day = day_of(now + self.skew().await);
        match self {
            Store::Memory(m) => Ok(m
                .number_calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .figures(number, &day)),
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
