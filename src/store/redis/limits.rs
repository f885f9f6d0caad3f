//! Limits shared on Redis: gateway slot pools (`dlr:{gw:G}:slots`) and calls-per-second buckets (a campaign's or a
//! gateway's). Each key has its own hash tag; every script touches that key (and a bucket call its memo, which
//! shares the tag).
//!
//! Under client resends (a script sent again after a lost connection) each runs once in effect: a bucket call keeps
//! its grant under a per-call memo key and a resend answers it without taking tokens again; a slot acquire is keyed
//! by its attempt (a resend finds the attempt's slot and answers 1 again) and a renewal sets the same expiry twice.

use super::{RedisStore, keys};
use crate::store::error::{StoreError, StoreResult};
use crate::store::memory::check_bucket;
use crate::store::record;
use crate::store::types::*;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;

impl RedisStore {
    pub async fn acquire_gateway_slot(
        &self,
        gateway: &str,
        limit: u32,
        attempt: AttemptId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        record::check_campaign(gateway)?;
        let got: i64 = self
            .scripts
            .gw_acquire
            .key(keys::gateway_slots(gateway))
            .arg(ms(now))
            .arg(limit)
            .arg(attempt.to_string())
            .arg(ms(until))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("acquire_gateway_slot"))?;
        Ok(got == 1)
    }

    pub async fn release_gateway_slot(&self, gateway: &str, attempt: AttemptId) -> StoreResult<()> {
        record::check_campaign(gateway)?;
        let _: i64 = self
            .conn()
            .zrem(keys::gateway_slots(gateway), attempt.to_string())
            .await
            .map_err(StoreError::redis("release_gateway_slot"))?;
        Ok(())
    }

    pub async fn renew_gateway_slots(
        &self,
        gateway: &str,
        attempts: &[AttemptId],
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AttemptId>> {
        record::check_campaign(gateway)?;
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.scripts.gw_renew.key(keys::gateway_slots(gateway));
        inv.arg(ms(now)).arg(ms(until));
        for a in attempts {
            inv.arg(a.to_string());
        }
        let lost: Vec<String> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("renew_gateway_slots"))?;
        lost.iter()
            .map(|s| {
                uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt {
                    op: "renew_gateway_slots",
                    detail: e.to_string(),
                })
            })
            .collect()
    }

    pub async fn gateway_slots_in_use(
        &self,
        gateway: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u32> {
        record::check_campaign(gateway)?;
        let n: u64 = self
            .conn()
            .zcount(
                keys::gateway_slots(gateway),
                format!("({}", ms(now)),
                "+inf",
            )
            .await
            .map_err(StoreError::redis("gateway_slots_in_use"))?;
        Ok(n as u32)
    }

    pub async fn take_tokens(
        &self,
        key: &LimitKey,
        rate_per_sec: f64,
        burst: f64,
        n: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<u32> {
        check_bucket(rate_per_sec, burst)?;
        let k = match key {
            LimitKey::Campaign(c) => {
                record::check_campaign(c)?;
                keys::campaign_bucket(c)
            }
            LimitKey::Gateway(g) => {
                record::check_campaign(g)?;
                keys::gateway_bucket(g)
            }
        };
        let memo = keys::bucket_memo(&k, &uuid::Uuid::new_v4());
        let granted: u32 = self
            .scripts
            .bucket
            .key(k)
            .key(memo)
            .arg(rate_per_sec.to_string())
            .arg(burst.to_string())
            .arg(n)
            .arg(ms(now))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("take_tokens"))?;
        Ok(granted)
    }
}
