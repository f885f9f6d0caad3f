//! The caller ID of each call (issue 21): which pool applies, the choice (the pure
//! [`CallerIdPool::select`](crate::campaign::caller_id::CallerIdPool::select)), and what the store's counts
//! change.
//!
//! The core keeps each caller ID's calls today as the store last reported them ([`UsageSnapshot`], fed by
//! [`Input::CallerIdUsed`](super::Input::CallerIdUsed), and counted up at once by each choice so one claim batch
//! spreads over the pool); the choice is made on that snapshot, and the shell then
//! takes the chosen number's count in the store, which refuses it at the cap (another node may have used the last
//! call since): the call is then given back uncounted and the next claim chooses again on the fresher counts. A
//! pool whose every number is capped by the snapshot holds the call (the claim goes back uncounted for
//! [`EXHAUSTED_PAUSE`]; a warning and `fsdialer_caller_id_exhausted_total`) or places it with the switch's default
//! caller ID, as the pool says.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::collections::HashMap;
use std::sync::Arc;

use super::Core;
use crate::campaign::caller_id::{CallerIdChoice, CallerIdPool};
use crate::campaign::gateway::ValidGateway;
use crate::store::caller_ids::day_of;
use crate::store::{AttemptId, Claim};

/// How long a claim waits when every caller ID of its pool is capped today.
pub const EXHAUSTED_PAUSE: ChronoDuration = ChronoDuration::seconds(60);
/// Most caller IDs the snapshot remembers (older days are dropped first).
const SNAPSHOT_CAP: usize = 50_000;

/// A caller ID to count in the store before the originate is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdCount {
    pub number: String,
    /// The pool's daily cap; none: counted without a cap.
    pub cap: Option<u32>,
}

/// Each caller ID's calls on one UTC day, as the store last said.
#[derive(Debug, Default)]
pub struct UsageSnapshot {
    day: String,
    used: HashMap<String, u32>,
}

impl UsageSnapshot {
    /// The counts of `now`'s day (a new day starts empty).
    fn today(&mut self, now: DateTime<Utc>) -> &HashMap<String, u32> {
        let day = day_of(now);
        if self.day != day {
            self.day = day;
            self.used.clear();
        }
        &self.used
    }
}

/// What the core does with a claim's caller ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallerIdPlan {
    /// No caller ID set (no pool, or the pool falls back to the switch's default).
    SwitchDefault,
    /// Present this number, counted in the store first.
    Present(CallerIdCount),
    /// Every number is capped: do not place the call.
    Hold,
}

impl Core {
    /// The caller ID for a claim routed through `gateway`: the gateway's pool, else the campaign's.
    pub(super) fn plan_caller_id(
        &mut self,
        now: DateTime<Utc>,
        gateway: &ValidGateway,
        campaign_pool: Option<&Arc<CallerIdPool>>,
        claim: &Claim,
    ) -> CallerIdPlan {
        let Some(pool) = gateway.caller_id_pool().or(campaign_pool) else {
            return CallerIdPlan::SwitchDefault;
        };
        // The attempt id is random (or seeded in tests): a fair and reproducible value for `random` rotation.
        let random = claim.attempt_id.as_u128() as u64;
        match pool.select(&claim.number, self.caller_id_usage.today(now), random) {
            CallerIdChoice::Number(number) => {
                // Counted here at once, so the rest of a claim batch chooses on it; the store's count replaces it.
                *self.caller_id_usage.used.entry(number.clone()).or_insert(0) += 1;
                CallerIdPlan::Present(CallerIdCount {
                    number,
                    cap: pool.daily_cap(),
                })
            }
            CallerIdChoice::SwitchDefault => CallerIdPlan::SwitchDefault,
            CallerIdChoice::Exhausted => CallerIdPlan::Hold,
        }
    }

    /// Holds a claim whose pool is exhausted today.
    pub(super) fn hold_for_caller_ids(&mut self, now: DateTime<Utc>, id: &str, claim: &Claim) {
        tracing::warn!(
            campaign = id,
            attempt = %claim.attempt_id,
            "every caller ID of the pool reached its daily cap: the call is not placed"
        );
        metrics::counter!("fsdialer_caller_id_exhausted_total", "campaign" => id.to_owned())
            .increment(1);
        self.release_claim(id, claim, Some(now + EXHAUSTED_PAUSE));
    }

    /// The store's count of a caller ID today.
    pub(super) fn on_caller_id_used(
        &mut self,
        now: DateTime<Utc>,
        number: String,
        used_today: u32,
    ) {
        let snapshot = &mut self.caller_id_usage;
        snapshot.today(now);
        if snapshot.used.len() >= SNAPSHOT_CAP && !snapshot.used.contains_key(&number) {
            snapshot.used.clear();
        }
        snapshot.used.insert(number, used_today);
    }

    /// The store refused the call's caller ID: give the claim back uncounted, choose again at the next claim.
    pub(super) fn on_caller_id_refused(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        tracing::info!(
            campaign = call.campaign,
            %attempt,
            caller_id = call.caller_id.as_deref().unwrap_or(""),
            "caller ID refused by the store (daily cap reached): the claim goes back uncounted"
        );
        metrics::counter!("fsdialer_caller_id_refused_total").increment(1);
        self.release_call(now, attempt);
    }
}
