//! Attempt results on Redis: completing attempts and recovering expired leases. The rules are `store::outcome`'s;
//! `completion.rs` turns each decision into the member's new record; `lua/complete.lua` writes a batch after
//! checking that each member is still in that attempt.
//!
//! A result whose claim this store made is decided from the claim's snapshot, with no read. Any other result (or a
//! batch whose snapshot check failed) is decided from what `lua/peek.lua` reads, and written with the same check;
//! on a conflict (the member changed between the read and the write: a terminate, a take-over, a completion by
//! another node) it is read and decided again, at most [`MAX_ROUNDS`] times.

use super::completion::{self, Deltas, Snapshot, Writes};
use super::reply::resp;
use super::{COMPLETE_CHUNK, RedisStore, keys};
use crate::campaign::params::MemberOrder;
use crate::campaign::schedule::Schedule;
use crate::store::error::{StoreError, StoreResult};
use crate::store::outcome::Finished;
use crate::store::record;
use crate::store::rules::{self, TzPoint};
use crate::store::types::*;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// How many times a batch is read and decided again after its write found a member changed.
pub const MAX_ROUNDS: usize = 16;

/// The calendar as the rules need it per member timezone (evaluated once per timezone and call).
pub(super) enum Calendar<'a> {
    /// The campaign's schedule at `now`; the wait after a result is the policy's for its cause.
    Open {
        schedule: &'a dyn Schedule,
        now: i64,
        policy: &'a QueuePolicy,
        /// Per (timezone, wait in ms).
        points: HashMap<(String, i64), TzPoint>,
    },
    /// No opening at all (a result that must end its member whatever the calendar says).
    Closed,
}

impl<'a> Calendar<'a> {
    pub fn of(schedule: &'a dyn Schedule, now: i64, policy: &'a QueuePolicy) -> Calendar<'a> {
        Calendar::Open {
            schedule,
            now,
            policy,
            points: HashMap::new(),
        }
    }

    /// The calendar for timezone `tz` after a result with `cause`.
    fn point(&mut self, tz: &str, cause: &str) -> TzPoint {
        match self {
            Calendar::Open {
                schedule,
                now,
                policy,
                points,
            } => {
                let wait_ms = policy.wait_ms_for(cause);
                *points
                    .entry((tz.to_string(), wait_ms))
                    .or_insert_with(|| rules::evaluate(*schedule, tz, *now, wait_ms))
            }
            Calendar::Closed => TzPoint {
                open: false,
                next_now: None,
                next_wait: None,
            },
        }
    }
}

/// One attempt as `peek.lua` read it.
struct Peeked {
    attempt: String,
    act: Option<String>,
    record: Option<String>,
    /// The member is in this attempt.
    current: bool,
    /// The member's attempt log when the member is not in this attempt (`""` otherwise).
    log: String,
}

/// The member order's name as the scripts store it.
fn order_name(order: MemberOrder) -> StoreResult<String> {
    match serde_json::to_value(order) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        other => Err(StoreError::Corrupt {
            op: "complete",
            detail: format!("member order {order:?} serialized as {other:?}"),
        }),
    }
}

fn order_named(name: &str) -> StoreResult<MemberOrder> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|e| {
        StoreError::Corrupt {
            op: "complete",
            detail: format!("stored member order {name:?}: {e}"),
        }
    })
}

/// The campaign's member order and the decisions of a batch, ready to be written.
struct Batch {
    order: MemberOrder,
    deltas: Deltas,
    writes: Writes,
}

impl Batch {
    fn new(order: MemberOrder) -> Batch {
        Batch {
            order,
            deltas: Deltas::new(),
            writes: Writes::default(),
        }
    }

    /// Decides `result` for the member as `snap` holds it and adds the write; returns the member's fate.
    fn decide(
        &mut self,
        campaign: &str,
        snap: &Snapshot,
        result: Finished<'_>,
        policy: &QueuePolicy,
        calendar: &mut Calendar<'_>,
        now: i64,
    ) -> Result<MemberFate, String> {
        let tz = super::packed::Record::parse(&snap.record)?.z.to_string();
        let point = calendar.point(&tz, result.cause);
        let d = completion::decide(
            snap,
            result,
            policy,
            point,
            self.order,
            now,
            &mut self.deltas,
        )?;
        let fate = d.fate.clone();
        self.writes.push(
            d,
            &result.attempt,
            &snap.act,
            keys::member_key(campaign, snap.member),
        );
        Ok(fate)
    }
}

impl RedisStore {
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

    /// Completes many attempts, in order, [`COMPLETE_CHUNK`] per write (each write atomic).
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
        let mut calendar = Calendar::of(schedule, now, policy);
        let mut outcomes = Vec::with_capacity(results.len());
        for chunk in results.chunks(COMPLETE_CHUNK) {
            match self
                .complete_claimed(campaign, policy, &mut calendar, chunk, now)
                .await?
            {
                Some(fates) => outcomes.extend(fates.into_iter().map(CompleteOutcome::Applied)),
                None => outcomes.extend(
                    self.complete_read(campaign, policy, &mut calendar, chunk, now)
                        .await?,
                ),
            }
        }
        self.wait_replicas("complete", campaign).await?;
        Ok(outcomes)
    }

    /// Completes a chunk of results whose claims this store made, decided from the claims' snapshots (no read):
    /// `None` when a result has no snapshot, a member comes twice, or the write found a member changed; the chunk is
    /// then read and decided again. The chunk's snapshots are used up either way.
    async fn complete_claimed(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        calendar: &mut Calendar<'_>,
        chunk: &[AttemptResult],
        now: i64,
    ) -> StoreResult<Option<Vec<MemberFate>>> {
        let snaps: Vec<Option<Snapshot>> = chunk
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
        let mut batch = Batch::new(policy.member_order);
        let mut fates = Vec::with_capacity(chunk.len());
        for (r, s) in chunk.iter().zip(&fits) {
            match batch.decide(campaign, s, Finished::of(r), policy, calendar, now) {
                Ok(fate) => fates.push(fate),
                Err(detail) => {
                    tracing::warn!(campaign, member = s.member, %detail, "completion snapshot unusable");
                    return Ok(None);
                }
            }
        }
        Ok(self
            .write(campaign, batch, now, None)
            .await?
            .then_some(fates))
    }

    /// Completes results by reading their members first (`peek.lua`), deciding, and writing with the check,
    /// again on a conflict. Results for one member are applied in order (one write each).
    pub(super) async fn complete_read(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        calendar: &mut Calendar<'_>,
        results: &[AttemptResult],
        now: i64,
    ) -> StoreResult<Vec<CompleteOutcome>> {
        let mut outcomes = Vec::with_capacity(results.len());
        let mut start = 0;
        while start < results.len() {
            // A run of results for distinct members, decided and written together.
            let mut members = HashSet::new();
            let end = start
                + results[start..]
                    .iter()
                    .take_while(|r| members.insert(r.member_id))
                    .count();
            let run = &results[start..end];
            outcomes.extend(
                self.complete_run(campaign, policy, calendar, run, now)
                    .await?,
            );
            start = end;
        }
        Ok(outcomes)
    }

    async fn complete_run(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        calendar: &mut Calendar<'_>,
        run: &[AttemptResult],
        now: i64,
    ) -> StoreResult<Vec<CompleteOutcome>> {
        const OP: &str = "complete";
        let pairs: Vec<(String, u64)> = run
            .iter()
            .map(|r| (r.attempt_id.to_string(), r.member_id.0))
            .collect();
        for _ in 0..MAX_ROUNDS {
            let (order, peeked) = self.peek(campaign, None, &pairs).await?;
            let mut batch = Batch::new(order);
            let mut outcomes = Vec::with_capacity(run.len());
            for (r, p) in run.iter().zip(peeked) {
                let in_attempt = match (&p.act, p.record) {
                    (Some(act), Some(record)) if p.current => Some(
                        Snapshot::of_record(r.member_id.0, record, Some(act.clone()))
                            .map_err(|detail| StoreError::Corrupt { op: OP, detail })?,
                    ),
                    _ => None,
                };
                outcomes.push(match in_attempt {
                    Some(snap) => CompleteOutcome::Applied(
                        batch
                            .decide(campaign, &snap, Finished::of(r), policy, calendar, now)
                            .map_err(|detail| StoreError::Corrupt { op: OP, detail })?,
                    ),
                    None if p.log.contains(&format!("{}|", r.attempt_id)) => {
                        CompleteOutcome::Duplicate
                    }
                    None => CompleteOutcome::NotCurrent,
                });
            }
            if batch.writes.is_empty() || self.write(campaign, batch, now, None).await? {
                return Ok(outcomes);
            }
        }
        Err(StoreError::Corrupt {
            op: OP,
            detail: format!("members kept changing over {MAX_ROUNDS} rounds"),
        })
    }

    /// Keeps an agent's follow-up with the member's attempt, for its completion (`lua/follow_up.lua`).
    pub async fn follow_up(
        &self,
        campaign: &str,
        member: MemberId,
        attempt: AttemptId,
        follow_up: &FollowUp,
    ) -> StoreResult<FollowUpOutcome> {
        record::check_campaign(campaign)?;
        let spec = completion::follow_up_spec(&crate::store::outcome::FollowUpMs::of(follow_up));
        let out: String = self
            .campaign_script(&self.scripts.follow_up, campaign)
            .arg(member.0)
            .arg(attempt.to_string())
            .arg(spec)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("follow_up"))?;
        match out.as_str() {
            "set" => Ok(FollowUpOutcome::Set),
            "not_current" => Ok(FollowUpOutcome::NotCurrent),
            other => Err(StoreError::Corrupt {
                op: "follow_up",
                detail: format!("unknown reply {other:?}"),
            }),
        }
    }

    /// Applies `lost_attempt` to up to `max` attempts whose lease expired by `now`.
    pub async fn recover_expired(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        now: DateTime<Utc>,
        max: usize,
    ) -> StoreResult<Vec<Recovered>> {
        const OP: &str = "recover";
        record::check_campaign(campaign)?;
        let now = ms(now);
        let mut calendar = Calendar::of(schedule, now, policy);
        let class = lost_class(policy.lost_attempt);
        for _ in 0..MAX_ROUNDS {
            let (order, peeked) = self.peek(campaign, Some((now, max)), &[]).await?;
            let mut batch = Batch::new(order);
            let mut recovered = Vec::new();
            for p in peeked {
                let attempt_id =
                    uuid::Uuid::parse_str(&p.attempt).map_err(|e| StoreError::Corrupt {
                        op: OP,
                        detail: format!("attempt id {:?}: {e}", p.attempt),
                    })?;
                let (Some(act), Some(record), true) = (p.act, p.record, p.current) else {
                    // No call behind the lease any more: it goes.
                    batch.writes.drop_lease(p.attempt);
                    continue;
                };
                let (hid, node) = act.split_once('|').unwrap_or((&act, ""));
                let node = node.split('|').next().unwrap_or_default().to_string();
                let member = u64::from_str_radix(hid, 16).map_err(|e| StoreError::Corrupt {
                    op: OP,
                    detail: format!("act entry {act:?}: {e}"),
                })?;
                let snap = Snapshot::of_record(member, record, Some(act.clone()))
                    .map_err(|detail| StoreError::Corrupt { op: OP, detail })?;
                let lost = Finished::lost(attempt_id, class);
                let fate = batch
                    .decide(campaign, &snap, lost, policy, &mut calendar, now)
                    .map_err(|detail| StoreError::Corrupt { op: OP, detail })?;
                recovered.push(Recovered {
                    attempt_id,
                    member_id: MemberId(member),
                    node,
                    fate,
                });
            }
            if batch.writes.is_empty() || self.write(campaign, batch, now, Some(now)).await? {
                return Ok(recovered);
            }
        }
        Err(StoreError::Corrupt {
            op: OP,
            detail: format!("leases kept changing over {MAX_ROUNDS} rounds"),
        })
    }

    /// Reads what deciding needs (`peek.lua`): the attempts of `pairs` (attempt, member id), or with `expired`
    /// (`now`, `max`) the campaign's expired leases instead. Returns the campaign's stored member order too.
    async fn peek(
        &self,
        campaign: &str,
        expired: Option<(i64, usize)>,
        pairs: &[(String, u64)],
    ) -> StoreResult<(MemberOrder, Vec<Peeked>)> {
        const OP: &str = "peek";
        let mut inv = self.campaign_script(&self.scripts.peek, campaign);
        match expired {
            Some((now, max)) => inv.arg(now).arg(max),
            None => inv.arg("").arg(0),
        };
        for (attempt, member) in pairs {
            inv.arg(attempt).arg(*member);
        }
        let out: redis::Value = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis(OP))?;
        let top = resp::array(OP, &out)?;
        let order = order_named(&resp::string(OP, resp::at(OP, top, 0)?)?)?;
        let optional = |v: &redis::Value| -> StoreResult<Option<String>> {
            match v {
                redis::Value::Nil => Ok(None),
                redis::Value::Int(0) => Ok(None),
                other => resp::string(OP, other).map(Some),
            }
        };
        let peeked = top[1..]
            .iter()
            .map(|one| {
                let one = resp::array(OP, one)?;
                Ok(Peeked {
                    attempt: resp::string(OP, resp::at(OP, one, 0)?)?,
                    act: optional(resp::at(OP, one, 1)?)?,
                    record: optional(resp::at(OP, one, 2)?)?,
                    current: resp::int(OP, resp::at(OP, one, 3)?)? == 1,
                    log: resp::string(OP, resp::at(OP, one, 4)?)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        if expired.is_none() && peeked.len() != pairs.len() {
            return Err(StoreError::Corrupt {
                op: OP,
                detail: format!("{} attempts read for {} asked", peeked.len(), pairs.len()),
            });
        }
        Ok((order, peeked))
    }

    /// Writes a batch (`complete.lua`); `false` when a member changed since it was read (nothing written).
    /// `expired_by`: each decided attempt's lease must have expired by then (a recovery).
    async fn write(
        &self,
        campaign: &str,
        batch: Batch,
        now: i64,
        expired_by: Option<i64>,
    ) -> StoreResult<bool> {
        const OP: &str = "complete";
        let deltas = serde_json::to_string(&batch.deltas).map_err(|e| StoreError::Corrupt {
            op: OP,
            detail: e.to_string(),
        })?;
        let mut inv = self.campaign_script(&self.scripts.complete, campaign);
        for a in batch
            .writes
            .into_args(now, &order_name(batch.order)?, deltas, expired_by)
        {
            inv.arg(a);
        }
        let out: String = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis(OP))?;
        match out.as_str() {
            "ok" => Ok(true),
            "conflict" => Ok(false),
            other => Err(StoreError::Corrupt {
                op: OP,
                detail: format!("unknown reply {other:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::member::{CommunicationInput, MemberInput};
    use crate::campaign::schedule::Always;
    use crate::store::local_redis::{LocalRedis, LocalRedisOptions};
    use chrono::TimeZone;
    use std::time::Duration;

    const C: &str = "checked";

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_709_546_400 + s, 0).unwrap()
    }

    /// A store on `server` with one member claimed by node `n1` at 0 s under a lease of 1 s.
    async fn claimed(server: &LocalRedis) -> (RedisStore, Claim) {
        let store = RedisStore::connect(&server.url()).await.unwrap();
        let member = MemberInput {
            name: "Ann".into(),
            priority: 0,
            timezone: None,
            expire: None,
            variables: serde_json::Map::new(),
            communications: vec![CommunicationInput {
                number: "+1001".into(),
                priority: 0,
                description: None,
                kind: None,
            }],
            external_id: None,
        };
        store.add(C, &[member], at(0)).await.unwrap();
        let batch = store
            .claim(
                C,
                &QueuePolicy::default(),
                &Always,
                at(0),
                1,
                "n1",
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        let claim = batch.claims.into_iter().next().unwrap();
        (store, claim)
    }

    /// Reads the attempt as a node without its snapshot would and decides `cause`/`class` for it.
    async fn read_and_decide(
        store: &RedisStore,
        claim: &Claim,
        expired: Option<(i64, usize)>,
        cause: &str,
        class: crate::campaign::causes::CauseClass,
        now: i64,
    ) -> Batch {
        let pairs = [(claim.attempt_id.to_string(), claim.member_id.0)];
        let pairs: &[(String, u64)] = if expired.is_some() { &[] } else { &pairs };
        let (order, peeked) = store.peek(C, expired, pairs).await.unwrap();
        let p = peeked.into_iter().next().expect("the attempt read");
        assert!(p.current);
        let snap = Snapshot::of_record(claim.member_id.0, p.record.unwrap(), p.act).unwrap();
        let mut batch = Batch::new(order);
        let finished = Finished {
            attempt: claim.attempt_id,
            cause,
            class,
            answered: None,
            hangup: None,
            talk_secs: 0,
            note: None,
        };
        let policy = QueuePolicy::default();
        let mut calendar = Calendar::of(&Always, now, &policy);
        batch
            .decide(C, &snap, finished, &policy, &mut calendar, now)
            .unwrap();
        batch
    }

    #[tokio::test]
    async fn a_recovery_read_before_a_renewal_is_not_written_after_it() {
        let server = LocalRedis::start(LocalRedisOptions::default()).unwrap();
        let (store, claim) = claimed(&server).await;
        let now = ms(at(5));
        let batch = read_and_decide(
            &store,
            &claim,
            Some((now, 10)),
            LOST_ATTEMPT_CAUSE,
            crate::campaign::causes::CauseClass::Minus,
            now,
        )
        .await;
        // The node holding the call renews its (expired, not yet recovered) lease in between.
        let dropped = store
            .renew(C, "n1", &[claim.attempt_id], at(5), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(dropped.is_empty());
        assert!(!store.write(C, batch, now, Some(now)).await.unwrap());
        let recovered = store
            .recover_expired(C, &QueuePolicy::default(), &Always, at(5), 10)
            .await
            .unwrap();
        assert!(recovered.is_empty(), "{recovered:?}");
        let m = store.get(C, claim.member_id).await.unwrap().unwrap();
        assert_eq!(m.current_attempt, Some(claim.attempt_id));
    }

    #[tokio::test]
    async fn a_result_read_before_a_terminate_is_decided_again_and_ends_the_member() {
        let server = LocalRedis::start(LocalRedisOptions::default()).unwrap();
        let (store, claim) = claimed(&server).await;
        let now = ms(at(1));
        let batch = read_and_decide(
            &store,
            &claim,
            None,
            "NO_ANSWER",
            crate::campaign::causes::CauseClass::Retry,
            now,
        )
        .await;
        store.terminate(C, claim.member_id).await.unwrap();
        assert!(
            !store.write(C, batch, now, None).await.unwrap(),
            "written over a terminate"
        );
        // Another node (no snapshot) completes it: read again, decided with the terminate.
        let other = RedisStore::connect(&server.url()).await.unwrap();
        let result = AttemptResult {
            attempt_id: claim.attempt_id,
            member_id: claim.member_id,
            cause: "NO_ANSWER".into(),
            class: crate::campaign::causes::CauseClass::Retry,
            answered_at: None,
            hangup_at: None,
            talk_secs: 0,
            note: None,
        };
        let policy = QueuePolicy::default();
        let outcome = other
            .complete(C, &policy, &Always, &result, at(1))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            CompleteOutcome::Applied(MemberFate::Ended {
                cause: MANAGER_REQUEST.into(),
                success: false
            })
        );
        assert_eq!(
            other
                .complete(C, &policy, &Always, &result, at(2))
                .await
                .unwrap(),
            CompleteOutcome::Duplicate
        );
    }
}
