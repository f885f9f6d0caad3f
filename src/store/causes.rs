//! Attempts per hangup cause, per campaign: the histogram of the operator page. Counted by the very store step
//! that applies each attempt's result (completion, recovery of an expired lease as `LOST_ATTEMPT`, a renewal that
//! completes a terminated member's call), so it always equals a recount of the attempt log: a crash cannot fall
//! between a result and its count.
//!
//! How: what a result does is decided once (`outcome::decide`), and its counter changes include one field
//! `cause:<CAUSE>` (+1). The memory backend sends such fields to its campaign's histogram under the same lock
//! ([`count_cause`]); on Redis, `complete.lua`'s counter flush (`lua/prelude.lua`, `flush_cnt`) sends them to the
//! hash `dlr:{campaign}:causes` (cause → count, a declared key of the campaign scripts) in the same script. At
//! most [`MAX_CAUSES`] causes per campaign; further ones count under [`OTHER_CAUSE`] (the same rule in both).

use super::error::{StoreError, StoreResult};
use super::{Store, record, redis::keys};
use std::collections::BTreeMap;

/// Distinct causes counted per campaign (the Lua side has the same number: `MAX_CAUSES` in `lua/prelude.lua`).
pub const MAX_CAUSES: usize = 200;
/// Where causes beyond [`MAX_CAUSES`] are counted.
pub const OTHER_CAUSE: &str = "OTHER";
/// The prefix of a decision's counter field that counts a hangup cause (`cause:USER_BUSY`).
pub(crate) const CAUSE_FIELD: &str = "cause:";

/// The cause a decision's counter field counts, if it is a histogram field.
pub(crate) fn histogram_cause(field: &str) -> Option<&str> {
    field.strip_prefix(CAUSE_FIELD)
}

/// Adds `delta` attempts of `cause` to a histogram, with the [`MAX_CAUSES`] bound.
pub(crate) fn count_cause(counts: &mut BTreeMap<String, u64>, cause: &str, delta: i64) {
    let cause = if counts.contains_key(cause) || counts.len() < MAX_CAUSES {
        cause
    } else {
        OTHER_CAUSE
    };
    let n = counts.entry(cause.to_owned()).or_default();
    *n = n.saturating_add_signed(delta);
}

impl Store {
    /// Attempts per cause.
    pub async fn cause_counts(&self, campaign: &str) -> StoreResult<BTreeMap<String, u64>> {
        record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => m.cause_counts(campaign),
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

    #[test]
    fn causes_add_up_and_too_many_distinct_ones_go_to_other() {
        let mut counts = BTreeMap::new();
        for c in ["USER_BUSY", "USER_BUSY", "NO_ANSWER"] {
            count_cause(&mut counts, c, 1);
        }
        assert_eq!((counts["USER_BUSY"], counts["NO_ANSWER"]), (2, 1));
        let mut many = BTreeMap::new();
        for i in 0..MAX_CAUSES + 5 {
            count_cause(&mut many, &format!("C{i}"), 1);
        }
        // A cause counted before the bound keeps its own count.
        count_cause(&mut many, "C0", 1);
        assert_eq!(many.len(), MAX_CAUSES + 1);
        assert_eq!(many[OTHER_CAUSE], 5);
        assert_eq!(many["C0"], 2);
        assert_eq!(histogram_cause("cause:USER_BUSY"), Some("USER_BUSY"));
        assert_eq!(histogram_cause("end:USER_BUSY"), None);
    }
}
