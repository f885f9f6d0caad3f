//! The queue on Redis: claiming due members (`claim.lua`), releasing claims, renewing leases (completing the attempts
//! of members terminated in their call), and the campaign's slots in use. Completing and recovering attempts is in
//! `results.rs`.

use super::reply::{list, parse, resp};
use super::results::Calendar;
use super::{RedisStore, TzCall, completion, keys, opt_ms, packed, policy_json, reply};
use crate::campaign::schedule::Schedule;
use crate::store::error::{StoreError, StoreResult};
use crate::store::memory::lease_ms;
use crate::store::record;
use crate::store::types::*;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Duration;

impl RedisStore {
    #[allow(clippy::too_many_arguments)]
    pub async fn claim(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        now: DateTime<Utc>,
        max_n: usize,
        node: &str,
        lease: Duration,
    ) -> StoreResult<ClaimBatch> {
        record::check_campaign(campaign)?;
        record::check_node(node)?;
        let lease = lease_ms(lease)?;
        let now = ms(now);
        let ids = self.ids.take(max_n.min(policy.limit as usize));
        let out = self
            .eval_tz(
                TzCall {
                    op: "claim",
                    script: &self.scripts.claim,
                    campaign,
                    before: vec![
                        now.to_string(),
                        max_n.to_string(),
                        node.to_string(),
                        lease.to_string(),
                        policy_json(policy),
                    ],
                    after: ids.iter().map(|u| u.to_string()).collect(),
                },
                schedule,
                now,
                policy.wait_ms(),
            )
            .await?;
        const OP: &str = "claim";
        let top = resp::array(OP, &out)?;
        let (claimed, ended) = (resp::at(OP, top, 0)?, resp::at(OP, top, 1)?);
        let claimed = resp::array(OP, claimed)?;
        let mut claims = Vec::with_capacity(claimed.len());
        let mut snapshots = Vec::with_capacity(claimed.len());
        for pair in claimed.chunks(2) {
            let hid = resp::string(OP, resp::at(OP, pair, 0)?)?;
            let id = u64::from_str_radix(&hid, 16).map_err(|e| StoreError::Corrupt {
                op: OP,
                detail: format!("member id {hid:?}: {e}"),
            })?;
            let record = resp::string(OP, resp::at(OP, pair, 1)?)?;
            let (claim, snapshot) = claimed_member(id, record, lease)
                .map_err(|detail| StoreError::Corrupt { op: OP, detail })?;
            snapshots.push((claim.attempt_id, snapshot));
            claims.push(claim);
        }
        let ended = resp::array(OP, ended)?
            .iter()
            .map(|e| {
                let e = resp::array(OP, e)?;
                Ok((
                    MemberId(resp::int(OP, resp::at(OP, e, 0)?)? as u64),
                    resp::string(OP, resp::at(OP, e, 1)?)?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.snapshots.insert_all(snapshots);
        Ok(ClaimBatch { claims, ended })
    }

    pub async fn release(
        &self,
        campaign: &str,
        member: MemberId,
        attempt: AttemptId,
        not_before: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<ReleaseOutcome> {
        record::check_campaign(campaign)?;
        self.snapshots.take(&attempt);
        let out: String = self
            .campaign_script_once(&self.scripts.release, campaign)
            .arg(ms(now))
            .arg(member.0)
            .arg(attempt.to_string())
            .arg(opt_ms(not_before))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("release"))?;
        #[derive(Deserialize)]
        struct R {
            r: String,
        }
        let r: R = parse("release", &out)?;
        Ok(if r.r == "released" {
            ReleaseOutcome::Released
        } else {
            ReleaseOutcome::NotCurrent
        })
    }

    pub async fn renew(
        &self,
        campaign: &str,
        node: &str,
        attempts: &[AttemptId],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Vec<AttemptId>> {
        record::check_campaign(campaign)?;
        let lease = lease_ms(lease)?;
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let now_ms = ms(now);
        let mut inv = self.campaign_script(&self.scripts.renew, campaign);
        inv.arg(now_ms).arg(lease).arg(node);
        for a in attempts {
            inv.arg(a.to_string());
        }
        let out: String = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("renew"))?;
        #[derive(Deserialize)]
        struct R {
            #[serde(deserialize_with = "list")]
            v: Vec<uuid::Uuid>,
            #[serde(deserialize_with = "list")]
            t: Vec<(uuid::Uuid, u64)>,
        }
        let R {
            v: lost,
            t: terminated,
        } = parse::<R>("renew", &out)?;
        if !terminated.is_empty() {
            // Completed here with MANAGER_REQUEST (class minus, so the member ends whatever the calendar says).
            let results: Vec<AttemptResult> = terminated
                .iter()
                .map(|&(attempt_id, member)| AttemptResult {
                    attempt_id,
                    member_id: MemberId(member),
                    cause: MANAGER_REQUEST.into(),
                    class: crate::campaign::causes::CauseClass::Minus,
                    answered_at: None,
                    hangup_at: Some(from_ms(now_ms)),
                    talk_secs: 0,
                    note: None,
                })
                .collect();
            self.complete_read(
                campaign,
                &QueuePolicy::default(),
                &mut Calendar::Closed,
                &results,
                now_ms,
            )
            .await?;
        }
        // The calls to drop, in the order they were given.
        let dropped: HashSet<uuid::Uuid> = lost
            .into_iter()
            .chain(terminated.into_iter().map(|(a, _)| a))
            .collect();
        Ok(attempts
            .iter()
            .filter(|a| dropped.contains(a))
            .copied()
            .collect())
    }

    pub async fn slots_in_use(&self, campaign: &str, now: DateTime<Utc>) -> StoreResult<u32> {
        record::check_campaign(campaign)?;
        let n: u64 = self
            .conn()
            .zcount(
                keys::campaign_key(campaign, "lease"),
                format!("({}", ms(now)),
                "+inf",
            )
            .await
            .map_err(StoreError::redis("slots_in_use"))?;
        Ok(n as u32)
    }
}

/// A claimed member from the record the claim wrote (see `packed.rs`): what the engine needs to place the call,
/// and the snapshot its completion is decided from.
fn claimed_member(
    id: u64,
    record: String,
    lease: i64,
) -> Result<(Claim, completion::Snapshot), String> {
    let snapshot = completion::Snapshot::of_record(id, record, None)?;
    let attempt_id = snapshot.attempt()?;
    let r = packed::Record::parse(&snapshot.record)?;
    let data = reply::static_data(r.n.to_string(), Some(r.v), r.c)?;
    let k = snapshot.k;
    let number = data
        .c
        .get(k)
        .map(|c| c.number.clone())
        .ok_or_else(|| format!("member {id}: no number #{k}"))?;
    let claim = Claim {
        attempt_id,
        member_id: MemberId(id),
        attempt_no: snapshot.attempts,
        comm_index: k,
        number,
        name: data.n,
        timezone: (!r.z.is_empty()).then(|| r.z.to_string()),
        variables: data.v,
        priority: snapshot.prio,
        lease_until: from_ms(snapshot.claimed + lease),
    };
    Ok((claim, snapshot))
}
