//! The engine node registry: each node says it is alive every few seconds, and learns how many nodes are, so
//! that nodes sharing a campaign share its `limit` fairly (each claims at most its share).
//!
//! Redis keeps one sorted set `dlr:nodes` (node → the instant it last said so, epoch ms); a node that stopped
//! saying so drops out after the time-to-live. The memory backend keeps the same in a map (one node, in practice).

use super::error::{StoreError, StoreResult};
use super::types::ms;
use super::{Store, redis::keys};
use chrono::{DateTime, Utc};
use std::time::Duration;

impl Store {
    /// Records that `node` is alive at `now`, forgets nodes silent for longer than `ttl`, and returns how many
    /// nodes are alive (this one included).
    pub async fn node_alive(
        &self,
        node: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> StoreResult<u32> {
        let now = ms(now + self.skew().await);
        let oldest = now - i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        match self {
            Store::Memory(m) => {
                let mut nodes = m.nodes.lock().unwrap_or_else(|p| p.into_inner());
                nodes.insert(node.to_owned(), now);
                nodes.retain(|_, at| *at >= oldest);
                Ok(nodes.len() as u32)
            }
            Store::Redis(r) => {
                let (n,): (u32,) = redis::pipe()
                    .atomic()
                    .zadd(keys::NODES, node, now)
                    .ignore()
                    .zrembyscore(keys::NODES, "-inf", format!("({oldest}"))
                    .ignore()
                    .zcard(keys::NODES)
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("node_alive"))?;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nodes_count_while_they_say_they_are_alive() {
        let s = Store::memory();
        let t = |secs: i64| DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap();
        let ttl = Duration::from_secs(30);
        assert_eq!(s.node_alive("a", t(0), ttl).await.unwrap(), 1);
        assert_eq!(s.node_alive("b", t(10), ttl).await.unwrap(), 2);
        assert_eq!(s.node_alive("a", t(20), ttl).await.unwrap(), 2);
        // b has been silent for 31 s.
        assert_eq!(s.node_alive("a", t(41), ttl).await.unwrap(), 1);
    }
}
