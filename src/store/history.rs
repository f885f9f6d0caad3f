//! Campaign history: the state transitions of each campaign (SPEC §6), kept in the store so that any node's API
//! shows the whole history, whichever node made a transition, and a restart loses none of it.
//!
//! The store treats an entry as an opaque string (the engine writes one JSON transition per entry) and keeps the
//! latest [`HISTORY_KEEP`] per campaign, so a campaign that sleeps and wakes twice a day for years stays small.
//! Redis keeps them in a list `dlr:{campaign}:history` (`RPUSH` then `LTRIM` in one script, with the transition's
//! webhook events: `Store::push_history_with_events`; the key shares the campaign's hash tag and goes with the
//! campaign's other keys); the memory backend in a bounded deque.

use super::error::{StoreError, StoreResult};
use super::record;
use super::{Store, redis::keys};

/// Transitions kept per campaign.
pub const HISTORY_KEEP: usize = 1000;

/// Appends `entry` to a memory-backend history list, dropping the oldest beyond [`HISTORY_KEEP`]; an entry equal
/// to the latest is a resend of the same transition (entries carry their instant) and is not added again (the
/// Redis script `outbox::redis::TRANSITION` keeps the same rule). Returns whether it was added.
pub(super) fn push_bounded(list: &mut std::collections::VecDeque<String>, entry: &str) -> bool {
    if list.back().is_some_and(|last| last == entry) {
        return false;
    }
    list.push_back(entry.to_owned());
    while list.len() > HISTORY_KEEP {
        list.pop_front();
    }
    true
}

impl Store {
    /// Appends an entry to the campaign's history, dropping the oldest beyond [`HISTORY_KEEP`] (an entry equal to
    /// the latest is not added twice). A transition with webhook events is written with them instead
    /// ([`Store::push_history_with_events`]).
    pub async fn push_history(&self, campaign: &str, entry: &str) -> StoreResult<()> {
        self.push_history_with_events(campaign, entry, &[], chrono::Utc::now())
            .await
            .map(|_| ())
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
