//! Caller-ID use, shared by every node (issue 21): calls per caller ID per UTC day (the pools' `daily_cap` and
//! `least_used` rotation, see `campaign::caller_id`) and, per campaign, each caller ID's calls and answered calls
//! (its answer rate: a number carriers flag as spam shows as a falling rate).
//!
//! Redis: the hash `dlr:{cid}:day:<YYYYMMDD>` (caller ID → calls that day; expires two days after its last
//! write) and the hash `dlr:{cid}:stats:<campaign>` (`c:<number>` calls, `a:<number>` answered); every key under
//! the one hash tag `{cid}`, so a pool's counts are read in one command on a Cluster too. A take is one script:
//! the count is refused at the cap, never passed, however many nodes take at once. Memory: the same counts in
//! maps, the day's counts dropped when the day changes, at most [`MEMORY_STATS_CAP`] per-campaign entries.

use super::error::{StoreError, StoreResult};
use super::{Store, record};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Most (campaign, caller ID) answer-rate entries the memory backend keeps.
pub const MEMORY_STATS_CAP: usize = 100_000;
/// Seconds a day's counts stay in Redis after their last write.
const DAY_TTL_SEC: u64 = 2 * 86_400;

static TAKE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local used = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local cap = tonumber(ARGV[2])
if cap > 0 and used >= cap then return {0, used} end
used = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, used}",
    )
});

/// The memory backend's counts.
#[derive(Debug, Default)]
pub(crate) struct CallerIdBook {
    /// The UTC day the counts are of (`YYYYMMDD`).
    day: String,
    used: HashMap<String, u32>,
    stats: HashMap<(String, String), CallerIdStats>,
}

/// Answer of [`Store::take_caller_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerIdTake {
    /// The call was counted (false: the number had reached the cap).
    pub taken: bool,
    /// The number's calls today, this one included when taken.
    pub used_today: u32,
}

/// One caller ID's calls in a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallerIdStats {
    pub calls: u64,
    pub answered: u64,
}

/// A caller ID's figures for the stats answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CallerIdFigures {
    pub caller_id: String,
    pub calls: u64,
    pub answered: u64,
    /// answered / calls, `None` before the first call.
    pub answer_rate: Option<f64>,
}

impl CallerIdStats {
    pub fn figures(&self, caller_id: &str) -> CallerIdFigures {
        CallerIdFigures {
            caller_id: caller_id.to_owned(),
            calls: self.calls,
            answered: self.answered,
            answer_rate: (self.calls > 0).then(|| self.answered as f64 / self.calls as f64),
        }
    }
}

/// The key of an attempt's note that holds the caller ID the call presented.
pub const NOTE_KEY: &str = "caller_id";

/// The caller ID recorded in an attempt's note, if any.
pub fn caller_id_in_note(note: Option<&str>) -> Option<String> {
    let note = note.filter(|n| n.contains(NOTE_KEY))?;
    let v: serde_json::Value = serde_json::from_str(note).ok()?;
    v.get(NOTE_KEY)?.as_str().map(str::to_owned)
}

/// The UTC day of an instant, as the keys name it.
pub fn day_of(now: DateTime<Utc>) -> String {
    now.format("%Y%m%d").to_string()
}

fn day_key(day: &str) -> String {
    format!("dlr:{{cid}}:day:{day}")
}

fn stats_key(campaign: &str) -> String {
    format!("dlr:{{cid}}:stats:{campaign}")
}

fn check_number(number: &str) -> StoreResult<()> {
    super::record::check_dial_number("caller ID", number, 32)
}

impl CallerIdBook {
    fn today(&mut self, day: String) -> &mut HashMap<String, u32> {
        if self.day != day {
            self.day = day;
            self.used.clear();
        }
        &mut self.used
    }
}

impl Store {
    /// Counts one call of `number` today unless it reached `cap` (none: no cap). Atomic across nodes.
    pub async fn take_caller_id(
        &self,
        number: &str,
        cap: Option<u32>,
        now: DateTime<Utc>,
    ) -> StoreResult<CallerIdTake> {
        check_number(number)?;
        let now = now + self.skew().await;
        let day = day_of(now);
        match self {
            Store::Memory(m) => {
                let mut book = m.caller_ids.lock().unwrap_or_else(|p| p.into_inner());
                let used = book.today(day).entry(number.to_owned()).or_insert(0);
                if cap.is_some_and(|c| *used >= c) {
                    return Ok(CallerIdTake {
                        taken: false,
                        used_today: *used,
                    });
                }
                *used += 1;
                Ok(CallerIdTake {
                    taken: true,
                    used_today: *used,
                })
            }
            Store::Redis(r) => {
                let (taken, used): (i64, i64) = TAKE
                    .key(day_key(&day))
                    .arg(number)
                    .arg(cap.unwrap_or(0))
                    .arg(DAY_TTL_SEC)
                    .invoke_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("take_caller_id"))?;
                Ok(CallerIdTake {
                    taken: taken == 1,
                    used_today: u32::try_from(used).unwrap_or(u32::MAX),
                })
            }
        }
    }

    /// Each number's calls today (numbers not called today are left out).
    pub async fn caller_ids_used_today(
        &self,
        numbers: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<HashMap<String, u32>> {
        let now = now + self.skew().await;
        let day = day_of(now);
        if numbers.is_empty() {
            return Ok(HashMap::new());
        }
        match self {
            Store::Memory(m) => {
                let mut book = m.caller_ids.lock().unwrap_or_else(|p| p.into_inner());
                let used = book.today(day);
                Ok(numbers
                    .iter()
                    .filter_map(|n| used.get(n).map(|c| (n.clone(), *c)))
                    .collect())
            }
            Store::Redis(r) => {
                let counts: Vec<Option<u32>> = redis::cmd("HMGET")
                    .arg(day_key(&day))
                    .arg(numbers)
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("caller_ids_used_today"))?;
                Ok(numbers
                    .iter()
                    .zip(counts)
                    .filter_map(|(n, c)| c.map(|c| (n.clone(), c)))
                    .collect())
            }
        }
    }

    /// Records one finished call of `campaign` presented as `number`.
    pub async fn record_caller_id_result(
        &self,
        campaign: &str,
        number: &str,
        answered: bool,
    ) -> StoreResult<()> {
        record::check_campaign(campaign)?;
        check_number(number)?;
        match self {
            Store::Memory(m) => {
                let mut book = m.caller_ids.lock().unwrap_or_else(|p| p.into_inner());
                let key = (campaign.to_owned(), number.to_owned());
                if !book.stats.contains_key(&key) && book.stats.len() >= MEMORY_STATS_CAP {
                    return Err(StoreError::InvalidArgument {
                        what: "caller ID statistics",
                        reason: format!("more than {MEMORY_STATS_CAP} (campaign, caller ID) pairs"),
                    });
                }
                let s = book.stats.entry(key).or_default();
                s.calls += 1;
                s.answered += u64::from(answered);
                Ok(())
            }
            Store::Redis(r) => {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .hincr(stats_key(campaign), format!("c:{number}"), 1)
                    .ignore();
                if answered {
                    pipe.hincr(stats_key(campaign), format!("a:{number}"), 1)
                        .ignore();
                }
                pipe.query_async::<()>(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("record_caller_id_result"))
            }
        }
    }

    /// Every caller ID the campaign's calls presented, with its calls and answered calls, by caller ID.
    pub async fn caller_id_stats(&self, campaign: &str) -> StoreResult<Vec<CallerIdFigures>> {
        record::check_campaign(campaign)?;
        let mut by_number: std::collections::BTreeMap<String, CallerIdStats> = Default::default();
        match self {
            Store::Memory(m) => {
                let book = m.caller_ids.lock().unwrap_or_else(|p| p.into_inner());
                for ((c, n), s) in &book.stats {
                    if c == campaign {
                        by_number.insert(n.clone(), s.clone());
                    }
                }
            }
            Store::Redis(r) => {
                let all: HashMap<String, u64> = redis::cmd("HGETALL")
                    .arg(stats_key(campaign))
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("caller_id_stats"))?;
                for (field, v) in all {
                    if let Some(n) = field.strip_prefix("c:") {
                        by_number.entry(n.to_owned()).or_default().calls = v;
                    } else if let Some(n) = field.strip_prefix("a:") {
                        by_number.entry(n.to_owned()).or_default().answered = v;
                    }
                }
            }
        }
        Ok(by_number.iter().map(|(n, s)| s.figures(n)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_cap_refuses_the_call_past_it_and_a_new_day_starts_at_zero() {
        let s = Store::memory();
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for expected in 1..=2 {
            let take = s.take_caller_id("1000", Some(2), t).await.unwrap();
            assert_eq!(
                take,
                CallerIdTake {
                    taken: true,
                    used_today: expected
                }
            );
        }
        let refused = s.take_caller_id("1000", Some(2), t).await.unwrap();
        assert_eq!(
            refused,
            CallerIdTake {
                taken: false,
                used_today: 2
            }
        );
        let used = s
            .caller_ids_used_today(&["1000".into(), "2000".into()], t)
            .await
            .unwrap();
        assert_eq!(used, HashMap::from([("1000".to_owned(), 2)]));
        let tomorrow = t + chrono::Duration::days(1);
        assert!(
            s.take_caller_id("1000", Some(2), tomorrow)
                .await
                .unwrap()
                .taken
        );
        assert!(s.take_caller_id("10{0}", None, t).await.is_err());
    }

    #[tokio::test]
    async fn answer_rates_are_kept_per_campaign_and_caller_id() {
        let s = Store::memory();
        for answered in [true, false, false, true] {
            s.record_caller_id_result("c1", "1000", answered)
                .await
                .unwrap();
        }
        s.record_caller_id_result("c2", "1000", true).await.unwrap();
        let f = s.caller_id_stats("c1").await.unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].calls, f[0].answered, f[0].answer_rate),
            (4, 2, Some(0.5))
        );
    }
}
