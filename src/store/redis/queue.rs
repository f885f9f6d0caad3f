//! The queue on Redis: claiming due members (`claim.lua`), completing attempts (the fast path of `fast.rs`, else
//! `complete.lua`), releasing, renewing and recovering leases, and the campaign's slots in use.

use super::reply::{list, parse, resp};
use super::{COMPLETE_CHUNK, RedisStore, TzCall, fast, keys, opt_ms, packed, policy_json, reply};
use crate::campaign::schedule::Schedule;
use crate::store::error::{StoreError, StoreResult};
use crate::store::memory::lease_ms;
use crate::store::record;
use crate::store::rules;
use crate::store::types::*;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
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

    pub async fn complete(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> StoreResult<CompleteOutcome> {
        let mut v = self
            .complete_many(
                campaign,
                policy,
                schedule,
                std::slice::from_ref(result),
                now,
            )
            .await?;
        v.pop().ok_or_else(|| StoreError::Corrupt {
            op: "complete",
            detail: "no outcome".into(),
        })
    }

    /// Completes many attempts, in order, [`COMPLETE_CHUNK`] per script call (each call atomic).
    pub async fn complete_many(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        results: &[AttemptResult],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<CompleteOutcome>> {
        record::check_campaign(campaign)?;
        for r in results {
            record::check_cause(&r.cause)?;
        }
        let now = ms(now);
        let mut outcomes = Vec::with_capacity(results.len());
        for chunk in results.chunks(COMPLETE_CHUNK) {
            if let Some(fates) = self
                .complete_fast(campaign, policy, schedule, chunk, now)
                .await?
            {
                outcomes.extend(fates.into_iter().map(CompleteOutcome::Applied));
                continue;
            }
            let mut after = Vec::with_capacity(chunk.len() * 8);
            for r in chunk {
                after.extend([
                    r.attempt_id.to_string(),
                    r.member_id.0.to_string(),
                    r.cause.clone(),
                    class_code(r.class).to_string(),
                    r.answered_at.map(|t| ms(t).to_string()).unwrap_or_default(),
                    r.hangup_at.map(|t| ms(t).to_string()).unwrap_or_default(),
                    r.talk_secs.to_string(),
                    r.note
                        .as_deref()
                        .map(record::escape_note)
                        .unwrap_or_default(),
                ]);
            }
            let out = self
                .eval_tz(
                    TzCall {
                        op: "complete",
                        script: &self.scripts.complete,
                        campaign,
                        before: vec![now.to_string(), policy_json(policy)],
                        after,
                    },
                    schedule,
                    now,
                    policy.wait_ms(),
                )
                .await?;
            const OP: &str = "complete";
            let v = resp::array(OP, &out)?;
            if v.len() != chunk.len() {
                return Err(StoreError::Corrupt {
                    op: OP,
                    detail: format!("{} outcomes for {} results", v.len(), chunk.len()),
                });
            }
            for one in v {
                let code = resp::string(OP, resp::at(OP, resp::array(OP, one)?, 0)?)?;
                outcomes.push(match code.as_str() {
                    "dup" => CompleteOutcome::Duplicate,
                    "nc" => CompleteOutcome::NotCurrent,
                    _ => CompleteOutcome::Applied(resp::fate(OP, one)?),
                });
            }
        }
        self.wait_replicas("complete", campaign).await?;
        Ok(outcomes)
    }

    /// The fast path of [`complete_many`](Self::complete_many) for one chunk: `None` when the chunk must take
    /// the slow path (see `fast.rs`). The chunk's snapshots are used up either way.
    async fn complete_fast(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        chunk: &[AttemptResult],
        now: i64,
    ) -> StoreResult<Option<Vec<MemberFate>>> {
        const OP: &str = "complete";
        let snaps: Vec<Option<fast::Snapshot>> = chunk
            .iter()
            .map(|r| self.snapshots.take(&r.attempt_id))
            .collect();
        let mut members = HashSet::with_capacity(chunk.len());
        let mut fits = Vec::with_capacity(chunk.len());
        for (r, s) in chunk.iter().zip(snaps) {
            match s {
                Some(s) if s.member == r.member_id.0 && members.insert(s.member) => fits.push(s),
                _ => return Ok(None),
            }
        }
        let order = policy.member_order;
        let mut points: HashMap<String, rules::TzPoint> = HashMap::new();
        let mut deltas = fast::Deltas::new();
        let mut batch = fast::FastBatch::default();
        let mut fates = Vec::with_capacity(chunk.len());
        for (r, s) in chunk.iter().zip(&fits) {
            let decided = packed::Record::parse(&s.record).and_then(|rec| {
                let point = match points.get(rec.z) {
                    Some(p) => *p,
                    None => {
                        let p = rules::evaluate(schedule, rec.z, now, policy.wait_ms());
                        points.insert(rec.z.to_string(), p);
                        p
                    }
                };
                fast::decide(s, &rec, r, policy, point, order, now, &mut deltas)
            });
            match decided {
                Ok(d) => {
                    fates.push(d.fate.clone());
                    batch.push(
                        d,
                        &r.attempt_id,
                        &s.node,
                        keys::member_key(campaign, s.member),
                    );
                }
                Err(detail) => {
                    tracing::warn!(campaign, member = s.member, %detail, "completion snapshot unusable");
                    return Ok(None);
                }
            }
        }
        // The order's name as `policy_json` writes it for the other scripts.
        let order_name = match serde_json::to_value(order) {
            Ok(serde_json::Value::String(name)) => name,
            other => {
                return Err(StoreError::Corrupt {
                    op: OP,
                    detail: format!("member order {order:?} serialized as {other:?}"),
                });
            }
        };
        let deltas = serde_json::to_string(&deltas).map_err(|e| StoreError::Corrupt {
            op: OP,
            detail: e.to_string(),
        })?;
        let mut inv = self.campaign_script(&self.scripts.complete_fast, campaign);
        for a in batch.into_args(now, &order_name, deltas) {
            inv.arg(a);
        }
        let out: String = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis(OP))?;
        match out.as_str() {
            "ok" => Ok(Some(fates)),
            "conflict" => Ok(None),
            other => Err(StoreError::Corrupt {
                op: OP,
                detail: format!("unknown fast-path reply {other:?}"),
            }),
        }
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
        let mut inv = self.campaign_script(&self.scripts.renew, campaign);
        inv.arg(ms(now)).arg(lease).arg(node);
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
        }
        Ok(parse::<R>("renew", &out)?.v)
    }

    pub async fn recover_expired(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        now: DateTime<Utc>,
        max: usize,
    ) -> StoreResult<Vec<Recovered>> {
        record::check_campaign(campaign)?;
        let now = ms(now);
        let out = self
            .eval_tz(
                TzCall {
                    op: "recover",
                    script: &self.scripts.recover,
                    campaign,
                    before: vec![now.to_string(), policy_json(policy)],
                    after: vec![
                        max.to_string(),
                        class_code(lost_class(policy.lost_attempt)).to_string(),
                    ],
                },
                schedule,
                now,
                policy.wait_ms(),
            )
            .await?;
        const OP: &str = "recover";
        resp::array(OP, &out)?
            .iter()
            .map(|r| {
                let r = resp::array(OP, r)?;
                Ok(Recovered {
                    attempt_id: resp::uuid(OP, resp::at(OP, r, 0)?)?,
                    member_id: MemberId(resp::int(OP, resp::at(OP, r, 1)?)? as u64),
                    node: resp::string(OP, resp::at(OP, r, 2)?)?,
                    fate: resp::fate(OP, resp::at(OP, r, 3)?)?,
                })
            })
            .collect()
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
/// and what the completion fast path needs to decide its result.
fn claimed_member(id: u64, record: String, lease: i64) -> Result<(Claim, fast::Snapshot), String> {
    let r = packed::Record::parse(&record)?;
    let active = r
        .active()?
        .ok_or_else(|| format!("member {id}: claimed without an active attempt"))?;
    let attempt_id = uuid::Uuid::parse_str(active.attempt)
        .map_err(|e| format!("attempt id {:?}: {e}", active.attempt))?;
    let int = |name: &str, v: &str| -> Result<Option<i64>, String> {
        if v.is_empty() {
            return Ok(None);
        }
        record::parse_int(v)
            .map(Some)
            .ok_or_else(|| format!("member {id}: field {name} is not an integer: {v:?}"))
    };
    let data = reply::static_data(r.n.to_string(), Some(r.v), r.c)?;
    let k = active.k;
    let number = data
        .c
        .get(k)
        .map(|c| c.number.clone())
        .ok_or_else(|| format!("member {id}: no number #{k}"))?;
    let attempt_no = int("b", r.b)?.unwrap_or(0) as u32;
    let priority = int("p", r.p)?.unwrap_or(0);
    let (tries, expire) = (int("t", r.t)?.unwrap_or(0) as u32, int("x", r.x)?);
    let (tz, node) = (r.z.to_string(), active.node.to_string());
    let claim = Claim {
        attempt_id,
        member_id: MemberId(id),
        attempt_no,
        comm_index: k,
        number,
        name: data.n,
        timezone: (!tz.is_empty()).then_some(tz),
        variables: data.v,
        priority,
        lease_until: from_ms(active.claimed + lease),
    };
    let snapshot = fast::Snapshot {
        member: id,
        k,
        claimed: active.claimed,
        node,
        attempts: attempt_no,
        tries,
        expire,
        prio: priority,
        record,
    };
    Ok((claim, snapshot))
}
