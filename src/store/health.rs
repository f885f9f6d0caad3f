//! Store health: a round trip to the backend, timed, for `/healthz` and the Redis latency metric.

use super::Store;
use super::error::{StoreError, StoreResult};
use std::time::{Duration, Instant};

impl Store {
    /// One round trip to the backend (`PING` on Redis; nothing to reach for memory). Returns how long it took.
    pub async fn ping(&self) -> StoreResult<Duration> {
        let started = Instant::now();
        match self {
            Store::Memory(_) => {}
            Store::Redis(r) => {
                let _: String = redis::cmd("PING")
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("ping"))?;
            }
        }
        Ok(started.elapsed())
    }

    /// `"memory"` or `"redis"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}
