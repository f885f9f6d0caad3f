//! Sticky agents: after an agent schedules a callback (`next_after_sec`), the member's next call goes to that
//! agent first, for `sticky_agent_sec` after it is due (when the agent is free then; otherwise to anyone).
//!
//! One entry per member, in the campaign's keyspace (Redis: the hash `dlr:{c}:sticky`, member → `until|agent`,
//! with the sorted set `dlr:{c}:sticky_until` of expiries so every write drops the expired ones; both under the
//! campaign's hash tag, one slot). Reads ignore an expired entry. Dropping the campaign drops them.

use super::error::{StoreError, StoreResult};
use super::types::{MemberId, ms};
use super::{Store, redis::keys};
use chrono::{DateTime, Utc};

/// Most sticky entries the memory backend keeps per store (expired ones go first).
const MEMORY_CAP: usize = 100_000;

/// The memory backend's entries: (campaign, member) → (until, agent).
pub(crate) type StickyMap = std::collections::HashMap<(String, u64), (i64, String)>;

impl Store {
    /// The member's next call goes to `agent` first until `until`.
    pub async fn set_sticky_agent(
        &self,
        campaign: &str,
        member: MemberId,
        agent: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        super::record::check_campaign(campaign)?;
        let (until, now) = (ms(until), ms(now));
        match self {
            Store::Memory(m) => {
                let mut map = m.sticky.lock().unwrap_or_else(|p| p.into_inner());
                map.retain(|_, (u, _)| *u > now);
                if map.len() >= MEMORY_CAP {
                    return Err(StoreError::InvalidArgument {
                        what: "sticky agent",
                        reason: format!("too many pending (at most {MEMORY_CAP})"),
                    });
                }
                map.insert((campaign.to_owned(), member.0), (until, agent.to_owned()));
                Ok(())
            }
            Store::Redis(r) => {
                let hash = keys::campaign_key(campaign, "sticky");
                let expiries = keys::campaign_key(campaign, "sticky_until");
                let expired: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                    .arg(&expiries)
                    .arg("-inf")
                    .arg(now)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(1000)
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("set_sticky_agent"))?;
                let mut pipe = redis::pipe();
                pipe.atomic();
                if !expired.is_empty() {
                    pipe.hdel(&hash, &expired).ignore();
                    pipe.zrem(&expiries, &expired).ignore();
                }
                pipe.hset(&hash, member.0, format!("{until}|{agent}"))
                    .ignore()
                    .zadd(&expiries, member.0, until)
                    .ignore();
                pipe.query_async::<()>(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("set_sticky_agent"))
            }
        }
    }

    /// The agent the member's call should go to first now, if any.
    pub async fn sticky_agent(
        &self,
        campaign: &str,
        member: MemberId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        super::record::check_campaign(campaign)?;
        let now = ms(now);
        let entry = match self {
            Store::Memory(m) => {
                let map = m.sticky.lock().unwrap_or_else(|p| p.into_inner());
                map.get(&(campaign.to_owned(), member.0)).cloned()
            }
            Store::Redis(r) => {
                let raw: Option<String> = redis::cmd("HGET")
                    .arg(keys::campaign_key(campaign, "sticky"))
                    .arg(member.0)
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("sticky_agent"))?;
                raw.and_then(|v| {
                    let (until, agent) = v.split_once('|')?;
                    Some((until.parse().ok()?, agent.to_owned()))
                })
            }
        };
        Ok(entry.filter(|(until, _)| *until > now).map(|(_, a)| a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sticky_agent_holds_until_its_time_passes() {
        let s = Store::memory();
        let t = |secs: i64| DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap();
        assert_eq!(s.sticky_agent("c", MemberId(1), t(0)).await.unwrap(), None);
        s.set_sticky_agent("c", MemberId(1), "a7", t(100), t(0))
            .await
            .unwrap();
        assert_eq!(
            s.sticky_agent("c", MemberId(1), t(99))
                .await
                .unwrap()
                .as_deref(),
            Some("a7")
        );
        assert_eq!(s.sticky_agent("c", MemberId(2), t(99)).await.unwrap(), None);
        assert_eq!(
            s.sticky_agent("c", MemberId(1), t(100)).await.unwrap(),
            None
        );
    }
}
