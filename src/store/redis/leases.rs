//! The leases a node holds, read and moved outside the campaign scripts: what a restarted node takes back
//! (`held_by`), the expired leases a recovering node looks at (`expired_leases`), who holds an attempt now
//! (`attempt_holder`), and the take-over of a vanished node's call that is still up (`take_over`, one small script
//! on the campaign's `act` hash and `lease` set: both keys share the campaign's hash tag); and the server's clock
//! (`TIME`) that every lease is scored with (`skew`, see `store::clock`).

use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::{RedisStore, keys};
use crate::store::error::{StoreError, StoreResult};
use crate::store::record;
use crate::store::types::{AttemptId, ExpiredLease, MemberId, ms};

impl RedisStore {
    /// The server's clock minus this node's, measured with `TIME` when due (see `store::clock`). A failed
    /// measurement keeps the last one (the operation that follows reports the connection's failure itself).
    pub async fn skew(&self) -> chrono::Duration {
        if self.clock.needs_measure() {
            let time: Result<(String, String), _> =
                redis::cmd("TIME").query_async(&mut self.conn()).await;
            match time {
                Ok((secs, micros)) => match (secs.parse::<i64>(), micros.parse::<i64>()) {
                    (Ok(s), Ok(us)) => {
                        if let Some(t) = DateTime::from_timestamp_micros(s * 1_000_000 + us) {
                            self.clock.record(t);
                        }
                    }
                    _ => tracing::warn!(secs, micros, "unreadable TIME reply"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot read the store's clock"),
            }
        }
        self.clock.skew()
    }

    /// The same store for a node on another clock than the system's (tests of clock skew).
    pub fn with_local_clock(mut self, local: crate::store::clock::LocalClock) -> RedisStore {
        self.clock = std::sync::Arc::new(crate::store::clock::StoreClock::with_local(local));
        self
    }

    /// The campaign's expired leases (oldest first, at most `max`) with the node that held each.
    pub async fn expired_leases(
        &self,
        campaign: &str,
        now: DateTime<Utc>,
        max: usize,
    ) -> StoreResult<Vec<ExpiredLease>> {
        record::check_campaign(campaign)?;
        const OP: &str = "expired_leases";
        let mut conn = self.conn();
        let attempts: Vec<String> = redis::cmd("ZRANGE")
            .arg(keys::campaign_key(campaign, "lease"))
            .arg("-inf")
            .arg(ms(now))
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(max)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis(OP))?;
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let acts: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys::campaign_key(campaign, "act"))
            .arg(&attempts)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::redis(OP))?;
        let mut out = Vec::new();
        for (attempt, act) in attempts.iter().zip(acts) {
            let Some(act) = act else { continue };
            let (attempt_id, member, node) = parse_act(OP, attempt, &act)?;
            out.push(ExpiredLease {
                attempt_id,
                member_id: member,
                node: node.to_owned(),
            });
        }
        Ok(out)
    }

    /// The node holding the attempt (its `act` entry), if it is in a call.
    pub async fn attempt_holder(
        &self,
        campaign: &str,
        attempt: AttemptId,
    ) -> StoreResult<Option<String>> {
        record::check_campaign(campaign)?;
        const OP: &str = "attempt_holder";
        let act: Option<String> = self
            .conn()
            .hget(keys::campaign_key(campaign, "act"), attempt.to_string())
            .await
            .map_err(StoreError::redis(OP))?;
        match act {
            None => Ok(None),
            Some(entry) => {
                let (_, _, node) = parse_act(OP, &attempt.to_string(), &entry)?;
                Ok(Some(node.to_owned()))
            }
        }
    }

    /// Moves an expired lease of `from` to `to` until `until` (the `act` entry keeps its terminate mark).
    pub async fn take_over(
        &self,
        campaign: &str,
        attempt: AttemptId,
        from: &str,
        to: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        record::check_campaign(campaign)?;
        let n: i64 = redis::Script::new(TAKE_OVER)
            .key(keys::campaign_key(campaign, "act"))
            .key(keys::campaign_key(campaign, "lease"))
            .arg(attempt.to_string())
            .arg(from)
            .arg(to)
            .arg(ms(until))
            .arg(ms(now))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("take_over"))?;
        Ok(n == 1)
    }

    /// Reads the campaign's `act` hash (`attempt -> hid|node[|q]`, one entry per call in progress, so bounded by
    /// the calls in progress) and keeps `node`'s entries.
    pub async fn held_by(
        &self,
        campaign: &str,
        node: &str,
    ) -> StoreResult<Vec<(AttemptId, MemberId)>> {
        record::check_campaign(campaign)?;
        const OP: &str = "held_by";
        let act: std::collections::HashMap<String, String> = self
            .conn()
            .hgetall(keys::campaign_key(campaign, "act"))
            .await
            .map_err(StoreError::redis(OP))?;
        let mut held = Vec::new();
        for (attempt, entry) in act {
            let (attempt, member, owner) = parse_act(OP, &attempt, &entry)?;
            if owner == node {
                held.push((attempt, member));
            }
        }
        held.sort_by_key(|(_, m)| *m);
        Ok(held)
    }
}

/// Moves an expired lease to another node: `KEYS` act, lease; `ARGV` attempt, from, to, until, now.
const TAKE_OVER: &str = r"
local act = redis.call('HGET', KEYS[1], ARGV[1])
if not act then return 0 end
local hid, owner, rest = string.match(act, '^([^|]*)|([^|]*)(.*)$')
if owner ~= ARGV[2] then return 0 end
local exp = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not exp or tonumber(exp) > tonumber(ARGV[5]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], hid .. '|' .. ARGV[3] .. rest)
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
";

/// An `act` entry (`attempt -> hid|node[|q]`): the attempt, its member and the node holding it.
fn parse_act<'a>(
    op: &'static str,
    attempt: &str,
    entry: &'a str,
) -> StoreResult<(AttemptId, MemberId, &'a str)> {
    let mut parts = entry.split('|');
    let parsed = match (parts.next(), parts.next()) {
        (Some(hid), Some(node)) => attempt
            .parse()
            .ok()
            .zip(u64::from_str_radix(hid, 16).ok())
            .map(|(a, m)| (a, MemberId(m), node)),
        _ => None,
    };
    parsed.ok_or_else(|| StoreError::Corrupt {
        op,
        detail: format!("act entry {attempt:?} = {entry:?}"),
    })
}
