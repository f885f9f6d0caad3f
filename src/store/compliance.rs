//! The compliance record in the store: per campaign and UTC day, live answers, abandoned calls, machine answers
//! and abandon messages played (the rule of what counts is `agents::compliance`).
//!
//! Redis: one hash per campaign and day, `dlr:{c}:compliance:<YYYY-MM-DD>` (fields `live`, `abandoned`,
//! `machine`, `messages`), in the campaign's hash tag, incremented with `HINCRBY` in one `MULTI` that also sets its
//! expiry to [`KEEP_SEC`] (more than three years) after the latest write. Memory: a map bounded to the same
//! span. Kept apart from the member queue's keys so the queue's completion rules need not know about it.

use chrono::{Duration, NaiveDate};
use std::collections::BTreeMap;

use super::error::{StoreError, StoreResult};
use super::{Store, redis::keys};
use crate::agents::compliance::{DayCounts, KEEP_SEC};

/// The longest range one read returns (days), besides the 29 days before it the rolling rate needs.
pub const COMPLIANCE_MAX_RANGE_DAYS: i64 = 1200;

/// The memory backend's record: (campaign, day) → counts.
pub(crate) type ComplianceMap = BTreeMap<(String, NaiveDate), DayCounts>;

const FIELDS: [&str; 4] = ["live", "abandoned", "machine", "messages"];

fn day_key(campaign: &str, day: NaiveDate) -> String {
    keys::campaign_key(campaign, &format!("compliance:{}", day.format("%Y-%m-%d")))
}

fn values(c: &DayCounts) -> [u64; 4] {
    [
        c.live_answers,
        c.abandoned,
        c.machine_answers,
        c.messages_played,
    ]
}

impl Store {
    /// Adds `counts` to the campaign's record of `day`.
    pub async fn record_compliance(
        &self,
        campaign: &str,
        day: NaiveDate,
        counts: DayCounts,
    ) -> StoreResult<()> {
        super::record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => {
                let mut map = m.compliance.lock().unwrap_or_else(|p| p.into_inner());
                map.entry((campaign.to_owned(), day))
                    .or_default()
                    .add(counts);
                // Bounded in time like the Redis keys' expiry.
                let oldest = day - Duration::seconds(KEEP_SEC as i64);
                map.retain(|(_, d), _| *d >= oldest);
                Ok(())
            }
            Store::Redis(r) => {
                let key = day_key(campaign, day);
                let mut pipe = redis::pipe();
                pipe.atomic();
                for (field, value) in FIELDS.iter().zip(values(&counts)) {
                    if value > 0 {
                        pipe.hincr(&key, *field, value).ignore();
                    }
                }
                pipe.expire(&key, KEEP_SEC as i64).ignore();
                pipe.query_async::<()>(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("record_compliance"))
            }
        }
    }

    /// The campaign's counts of each day from `from` to `to` (days without a record are left out).
    pub async fn compliance_days(
        &self,
        campaign: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<BTreeMap<NaiveDate, DayCounts>> {
        super::record::check_campaign(campaign)?;
        if to < from || (to - from).num_days() > COMPLIANCE_MAX_RANGE_DAYS + 30 {
            return Err(StoreError::InvalidArgument {
                what: "compliance range",
                reason: format!(
                    "from must not be after to, and at most {COMPLIANCE_MAX_RANGE_DAYS} days apart"
                ),
            });
        }
        match self {
            Store::Memory(m) => {
                let map = m.compliance.lock().unwrap_or_else(|p| p.into_inner());
                Ok(map
                    .range((campaign.to_owned(), from)..=(campaign.to_owned(), to))
                    .map(|((_, d), c)| (*d, *c))
                    .collect())
            }
            Store::Redis(r) => {
                let mut days = Vec::new();
                let mut day = from;
                while day <= to {
                    days.push(day);
                    day += Duration::days(1);
                }
                let mut out = BTreeMap::new();
                for chunk in days.chunks(200) {
                    let mut pipe = redis::pipe();
                    for d in chunk {
                        pipe.cmd("HMGET")
                            .arg(day_key(campaign, *d))
                            .arg(&FIELDS[..]);
                    }
                    let rows: Vec<Vec<Option<u64>>> =
                        pipe.query_async(&mut r.connection())
                            .await
                            .map_err(StoreError::redis("compliance_days"))?;
                    for (d, row) in chunk.iter().zip(rows) {
                        if row.iter().all(Option::is_none) {
                            continue;
                        }
                        let v = |i: usize| row.get(i).copied().flatten().unwrap_or(0);
                        out.insert(
                            *d,
                            DayCounts {
                                live_answers: v(0),
                                abandoned: v(1),
                                machine_answers: v(2),
                                messages_played: v(3),
                            },
                        );
                    }
                }
                Ok(out)
            }
        }
    }

    /// The campaign's rolling 30-day abandonment rate (%) ending on `day` (`None` without live answers).
    pub async fn abandon_rate_30d(
        &self,
        campaign: &str,
        day: NaiveDate,
    ) -> StoreResult<Option<f64>> {
        let from = crate::agents::compliance::first_needed_day(day);
        let days = self.compliance_days(campaign, from, day).await?;
        Ok(crate::agents::compliance::rolling_pct(&days, day))
    }
}
