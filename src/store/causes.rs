//! Attempts per hangup cause, per campaign: the histogram of the operator page. Counted after each applied
//! completion (the engine's completer, every node), outside the completion scripts: a crash between a completion
//! and its count can miss that one attempt, so this is a live figure, not an audit (the attempt log is).
//!
//! Redis keeps a hash `dlr:{campaign}:causes` (cause → count) under the campaign's hash tag; the memory backend a
//! map. At most [`MAX_CAUSES`] causes per campaign; further ones count under [`OTHER_CAUSE`].

use super::error::{StoreError, StoreResult};
use super::{Store, record, redis::keys};
use std::collections::BTreeMap;

/// Distinct causes counted per campaign.
pub const MAX_CAUSES: usize = 200;
/// Where causes beyond [`MAX_CAUSES`] are counted.
pub const OTHER_CAUSE: &str = "OTHER";

/// The memory backend's counts: campaign → cause → attempts.
pub(crate) type CauseMap = std::collections::HashMap<String, BTreeMap<String, u64>>;

impl Store {
    /// Counts one attempt per cause given.
    pub async fn count_causes(&self, campaign: &str, causes: &[String]) -> StoreResult<()> {
        record::check_campaign(campaign)?;
        if causes.is_empty() {
            return Ok(());
        }
        match self {
            Store::Memory(m) => {
                let mut map = m.causes.lock().unwrap_or_else(|p| p.into_inner());
                let counts = map.entry(campaign.to_owned()).or_default();
                for c in causes {
                    let c = if counts.contains_key(c) || counts.len() < MAX_CAUSES {
                        c.as_str()
                    } else {
                        OTHER_CAUSE
                    };
                    *counts.entry(c.to_owned()).or_default() += 1;
                }
                Ok(())
            }
            Store::Redis(r) => {
                let key = keys::campaign_key(campaign, "causes");
                let n: usize = redis::cmd("HLEN")
                    .arg(&key)
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("count_causes"))?;
                let mut pipe = redis::pipe();
                for c in causes {
                    let c = if n < MAX_CAUSES {
                        c.as_str()
                    } else {
                        OTHER_CAUSE
                    };
                    pipe.hincr(&key, c, 1).ignore();
                }
                pipe.query_async::<()>(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("count_causes"))
            }
        }
    }

    /// Attempts per cause.
    pub async fn cause_counts(&self, campaign: &str) -> StoreResult<BTreeMap<String, u64>> {
        record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => Ok(m
                .causes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(campaign)
                .cloned()
                .unwrap_or_default()),
            Store::Redis(r) => redis::cmd("HGETALL")
                .arg(keys::campaign_key(campaign, "causes"))
                .query_async(&mut r.connection())
                .await
                .map_err(StoreError::redis("cause_counts")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn causes_add_up_and_too_many_distinct_ones_go_to_other() {
        let s = Store::memory();
        s.count_causes(
            "c",
            &["USER_BUSY".into(), "USER_BUSY".into(), "NO_ANSWER".into()],
        )
        .await
        .unwrap();
        let got = s.cause_counts("c").await.unwrap();
        assert_eq!((got["USER_BUSY"], got["NO_ANSWER"]), (2, 1));
        let many: Vec<String> = (0..MAX_CAUSES + 5).map(|i| format!("C{i}")).collect();
        s.count_causes("d", &many).await.unwrap();
        let got = s.cause_counts("d").await.unwrap();
        assert_eq!(got.len(), MAX_CAUSES + 1);
        assert_eq!(got[OTHER_CAUSE], 5);
        assert!(s.cause_counts("none").await.unwrap().is_empty());
    }
}
