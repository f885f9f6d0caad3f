//! Campaign history: the state transitions of each campaign (SPEC §6), kept in the store so that any node's API
//! shows the whole history, whichever node made a transition, and a restart loses none of it.
//!
//! The store treats an entry as an opaque string (the engine writes one JSON transition per entry) and keeps the
//! latest [`HISTORY_KEEP`] per campaign, so a campaign that sleeps and wakes twice a day for years stays small.
//! Redis keeps them in a list `dlr:{campaign}:history` (`RPUSH` then `LTRIM`, one atomic pipeline; the key shares
//! the campaign's hash tag and goes with the campaign's other keys); the memory backend in a bounded deque.

use super::error::{StoreError, StoreResult};
use super::record;
use super::{Store, redis::keys};

/// Transitions kept per campaign.
pub const HISTORY_KEEP: usize = 1000;

impl Store {
    /// Appends an entry to the campaign's history, dropping the oldest beyond [`HISTORY_KEEP`].
    pub async fn push_history(&self, campaign: &str, entry: &str) -> StoreResult<()> {
        record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => {
                let mut map = m.history.lock().unwrap_or_else(|p| p.into_inner());
                let list = map.entry(campaign.to_owned()).or_default();
                list.push_back(entry.to_owned());
                while list.len() > HISTORY_KEEP {
                    list.pop_front();
                }
                Ok(())
            }
            Store::Redis(r) => {
                let key = keys::campaign_key(campaign, "history");
                let _: () = redis::pipe()
                    .atomic()
                    .rpush(&key, entry)
                    .ignore()
                    .ltrim(&key, -(HISTORY_KEEP as isize), -1)
                    .ignore()
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("push_history"))?;
                Ok(())
            }
        }
    }

    /// The campaign's history, oldest first.
    pub async fn history(&self, campaign: &str) -> StoreResult<Vec<String>> {
        record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => Ok(m
                .history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(campaign)
                .map(|l| l.iter().cloned().collect())
                .unwrap_or_default()),
            Store::Redis(r) => redis::cmd("LRANGE")
                .arg(keys::campaign_key(campaign, "history"))
                .arg(0)
                .arg(-1)
                .query_async(&mut r.connection())
                .await
                .map_err(StoreError::redis("history")),
        }
    }
}
