//! Per-number rules enforced at claim time (issue 21): `max_calls_per_number_per_day` and
//! `min_gap_same_number_sec`, across campaigns and nodes, on the store's calls per number (`store::number_calls`).
//!
//! Where: in the engine's claim task, right after the do-not-call screen (`store::dnc_screen`) and before the engine
//! sees the claims ([`Store::screen_number_rules`]), so a number that may not be called now takes no switch
//! session, gateway slot or caller ID. Each claim's number is checked and recorded in one atomic store step
//! ([`Store::call_number`]: one script on the number's own key in Redis, one lock in memory), so two nodes
//! claiming the same number at once never both pass its cap or gap. A claim whose number is over its day's cap,
//! or inside the gap after its last call, is not recorded and is given back uncounted ([`Store::release`]) with
//! the instant it may be called ([`not_before`]): the next UTC day for the cap (the counters' day), the last call
//! plus the gap for the gap. Every claim kept is recorded as a call to its number (whatever the campaign's own
//! rules, so other campaigns' rules see it), under the number as the campaign's `e164` rule writes it; a number
//! the rule cannot normalise is neither checked nor recorded. A claim the engine gives back later (no gateway
//! room, caller IDs capped, the originate not sent) stays recorded: the count errs on the side of calling less.
//! It is left so on purpose: not every release means the number was not rung (an agent line cancelled when a
//! sibling took the agent may have rung the callee), so an undo would have to be decided per release path, and
//! would need the recorded instant carried through the engine and the number's last call restored safely against
//! later calls. The price is one call too many counted until the day ends, and one gap measured from a call not
//! placed.

use super::number_calls::NumberCall;
use super::{ClaimBatch, NumberCalls, Store, StoreResult};
use crate::dnc::E164Rule;
use chrono::{DateTime, Duration, Utc};

/// A campaign's per-number rules (none: the number is only recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NumberRules {
    /// At most this many calls to one number per UTC day, over every campaign.
    pub max_calls_per_day: Option<u32>,
    /// At least this long between two calls to one number, over every campaign.
    pub min_gap_sec: Option<u32>,
}

/// When a number with `figures` may be called under `rules` if not now (`None`: now). The store's check-and-record
/// script (`store::number_calls`) applies the same test.
pub fn not_before(
    rules: NumberRules,
    figures: &NumberCalls,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut at: Option<DateTime<Utc>> = None;
    if rules
        .max_calls_per_day
        .is_some_and(|cap| figures.today >= cap)
    {
        let next_day = now
            .date_naive()
            .succ_opt()
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
        at = next_day;
    }
    if let (Some(gap), Some(last)) = (rules.min_gap_sec, figures.last_call) {
        let free = last + Duration::seconds(i64::from(gap));
        if free > now {
            at = Some(at.map_or(free, |a| a.max(free)));
        }
    }
    at
}

impl Store {
    /// Gives back every claim of `batch` whose number may not be called now under `rules` (see the module doc),
    /// and records a call for every claim kept, each in one step with its check. Claims are taken one by one, so
    /// two members sharing a number in one batch count against each other.
    pub async fn screen_number_rules(
        &self,
        campaign: &str,
        rules: NumberRules,
        rule: &E164Rule,
        mut batch: ClaimBatch,
        now: DateTime<Utc>,
    ) -> StoreResult<ClaimBatch> {
        let mut kept = Vec::with_capacity(batch.claims.len());
        for claim in std::mem::take(&mut batch.claims) {
            let Ok(number) = rule.normalize(&claim.number) else {
                kept.push(claim);
                continue;
            };
            let number = number.digits();
            match self.call_number(number, rules, now).await? {
                NumberCall::Recorded(_) => kept.push(claim),
                NumberCall::Refused { not_before, .. } => {
                    tracing::debug!(campaign, member = claim.member_id.0, number, at = %not_before, "per-number rule: called later");
                    self.release(
                        campaign,
                        claim.member_id,
                        claim.attempt_id,
                        Some(not_before),
                        now,
                    )
                    .await?;
                }
            }
        }
        batch.claims = kept;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    #[test]
    fn a_campaign_reads_its_per_number_rules_and_refuses_zero() {
        use crate::campaign::config::CampaignConfig;
        let campaign = |cap: u32, gap: u32| {
            CampaignConfig::from_json_value(serde_json::json!({
                "id": "c1", "name": "Rules",
                "calendar": {"timezone": "UTC", "accept": [{"weekday": 1, "start_min": 0, "end_min": 60}]},
                "gateways": [{"name": "gw1", "pattern": "^(\\d+)$", "dial_string": "sofia/gateway/gw1/$1"}],
                "max_calls_per_number_per_day": cap, "min_gap_same_number_sec": gap
            }))
            .unwrap()
            .validate()
        };
        let rules = campaign(3, 600).unwrap().number_rules();
        assert_eq!(
            rules,
            NumberRules {
                max_calls_per_day: Some(3),
                min_gap_sec: Some(600)
            }
        );
        let err = campaign(0, 0).unwrap_err().to_string();
        assert!(
            err.contains("max_calls_per_number_per_day") && err.contains("min_gap_same_number_sec"),
            "{err}"
        );
    }

    #[test]
    fn a_number_over_its_cap_waits_for_the_next_day_and_one_inside_the_gap_for_its_end() {
        let rules = NumberRules {
            max_calls_per_day: Some(2),
            min_gap_sec: Some(3600),
        };
        let figures = |today, last| NumberCalls {
            today,
            last_call: last,
        };
        assert_eq!(
            not_before(rules, &figures(1, Some(at(8, 0))), at(9, 0)),
            None
        );
        assert_eq!(
            not_before(rules, &figures(1, Some(at(8, 30))), at(9, 0)),
            Some(at(9, 30))
        );
        let tomorrow = Utc.with_ymd_and_hms(2026, 3, 3, 0, 0, 0).unwrap();
        assert_eq!(
            not_before(rules, &figures(2, Some(at(8, 0))), at(9, 0)),
            Some(tomorrow)
        );
        assert_eq!(
            not_before(
                NumberRules::default(),
                &figures(99, Some(at(9, 0))),
                at(9, 0)
            ),
            None
        );
    }
}
