//! The in-process store: the embedded default for the demo and single-node runs.
//!
//! It keeps the same records, orders and rules as the Redis backend (see [`campaign`]) behind one mutex, so every
//! operation is atomic exactly like a Redis script. Nothing is persisted: a restart forgets the queue, which is why
//! multi-node or durable deployments use Redis.

mod agents;
mod campaign;

use super::error::{StoreError, StoreResult};
use super::ids::AttemptIds;
use super::record::{self, Prepared};
use super::rules::{self, TzPoint};
use super::types::*;
use crate::campaign::member::MemberInput;
use crate::campaign::schedule::Schedule;
use campaign::Camp;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

/// How many ids one list/reset step examines (mirrors the Redis scripts' step).
pub(crate) const SCAN_SPAN: u64 = 2000;

#[derive(Debug, Default)]
struct Inner {
    camps: HashMap<String, Camp>,
    gw_slots: HashMap<String, BTreeMap<AttemptId, i64>>,
    buckets: HashMap<String, (f64, i64)>,
}

/// The in-process member store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    ids: AttemptIds,
    /// Campaign documents (see `store::docs`): id → JSON.
    pub(in crate::store) docs: Mutex<BTreeMap<String, String>>,
    /// Campaign state transitions, latest last, bounded (see `store::history`).
    pub(in crate::store) history: Mutex<HashMap<String, std::collections::VecDeque<String>>>,
    /// Engine nodes alive: node → epoch ms it last said so (see `store::nodes`).
    pub(in crate::store) nodes: Mutex<HashMap<String, i64>>,
    /// Bumped on every change of a campaign document (see `store::docs`).
    pub(in crate::store) docs_generation: std::sync::atomic::AtomicU64,
    /// Agents and their inboxes (see `store::agents`).
    pub(in crate::store) agents: agents::AgentBook,
    /// Sticky agents of callbacks (see `store::sticky`).
    pub(in crate::store) sticky: Mutex<crate::store::sticky::StickyMap>,
    /// Caller-ID use per day and per campaign (see `store::caller_ids`).
    pub(in crate::store) caller_ids: Mutex<crate::store::caller_ids::CallerIdBook>,
    /// Do-not-call lists (see `store::dnc`).
    pub(in crate::store) dnc: Mutex<crate::store::dnc::DncBook>,
    /// Calls per number (see `store::number_calls`).
    pub(in crate::store) number_calls: Mutex<crate::store::number_calls::NumberBook>,
    /// The compliance record (see `store::compliance`).
    pub(in crate::store) compliance: Mutex<crate::store::compliance::ComplianceMap>,
    /// The webhook outbox (see `store::outbox`).
    pub(in crate::store) outbox: crate::store::outbox::MemoryOutbox,
}

fn tz_points(
    camp: &Camp,
    schedule: &dyn Schedule,
    now: i64,
    wait_ms: i64,
) -> HashMap<String, TzPoint> {
    let mut m: HashMap<String, TzPoint> = camp
        .tzs
        .iter()
        .map(|tz| (tz.clone(), rules::evaluate(schedule, tz, now, wait_ms)))
        .collect();
    m.entry(String::new())
        .or_insert_with(|| rules::evaluate(schedule, "", now, wait_ms));
    m
}

pub(crate) fn lease_ms(lease: Duration) -> StoreResult<i64> {
    let v = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    if v < 1 {
        return Err(StoreError::InvalidArgument {
            what: "lease",
            reason: "must be at least 1 ms".into(),
        });
    }
    Ok(v.min(rules::MAX_DUE_MS))
}

pub(crate) fn check_bucket(rate_per_sec: f64, burst: f64) -> StoreResult<()> {
    if !(rate_per_sec.is_finite() && rate_per_sec > 0.0) {
        return Err(StoreError::InvalidArgument {
            what: "rate_per_sec",
            reason: format!("{rate_per_sec}: must be a positive number"),
        });
    }
    if !(burst.is_finite() && burst >= 1.0) {
        return Err(StoreError::InvalidArgument {
            what: "burst",
            reason: format!("{burst}: must be at least 1"),
        });
    }
    Ok(())
}

/// Token bucket arithmetic shared with the Redis script (same operations in the same order, so the same doubles).
pub(crate) fn bucket_step(
    state: Option<(f64, i64)>,
    rate_per_sec: f64,
    burst: f64,
    n: u32,
    now: i64,
) -> ((f64, i64), u32) {
    let (tokens, ts) = state.unwrap_or((burst, now));
    let elapsed = (now - ts).max(0);
    let tokens = (tokens + (elapsed as f64) * rate_per_sec / 1000.0).min(burst);
    let granted = f64::from(n).min(tokens.floor()).max(0.0);
    ((tokens - granted, ts.max(now)), granted as u32)
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store whose attempt ids come from a seeded sequence (reproducible runs and tests).
    pub fn with_attempt_ids(ids: AttemptIds) -> MemoryStore {
        MemoryStore {
            inner: Mutex::default(),
            ids,
            docs: Mutex::default(),
            docs_generation: Default::default(),
            history: Mutex::default(),
            nodes: Mutex::default(),
            agents: agents::AgentBook::default(),
            sticky: Mutex::new(Default::default()),
            caller_ids: Mutex::default(),
            dnc: Mutex::default(),
            number_calls: Mutex::default(),
            compliance: Mutex::new(Default::default()),
            outbox: Default::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave half-applied state visible in a way we could repair;
        // operations are written so they do not panic, and a poisoned lock is taken over as is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_camp<T>(&self, campaign: &str, f: impl FnOnce(&mut Camp) -> T) -> StoreResult<T> {
        record::check_campaign(campaign)?;
        let mut g = self.lock();
        Ok(f(g.camps.entry(campaign.to_string()).or_default()))
    }

    fn with_existing<T>(
        &self,
        campaign: &str,
        none: T,
        f: impl FnOnce(&mut Camp) -> T,
    ) -> StoreResult<T> {
        record::check_campaign(campaign)?;
        let mut g = self.lock();
        Ok(match g.camps.get_mut(campaign) {
            Some(c) => f(c),
            None => none,
        })
    }

    pub fn add(
        &self,
        campaign: &str,
        members: &[MemberInput],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AddOutcome>> {
        let prepared = members
            .iter()
            .enumerate()
            .map(|(i, m)| record::prepare(i, m))
            .collect::<StoreResult<Vec<Prepared>>>()?;
        self.with_camp(campaign, |c| c.add(prepared, ms(now)))
    }

    pub fn get(&self, campaign: &str, id: MemberId) -> StoreResult<Option<Member>> {
        self.with_existing(campaign, None, |c| c.members.get(&id.0).map(|r| r.view()))
    }

    pub fn attempts(&self, campaign: &str, id: MemberId) -> StoreResult<Vec<AttemptRecord>> {
        let out = self.with_existing(campaign, Ok(Vec::new()), |c| match c.members.get(&id.0) {
            None => Ok(Vec::new()),
            Some(r) => r
                .log
                .iter()
                .map(|e| e.to_record(id, &r.data))
                .collect::<Result<Vec<_>, String>>(),
        })?;
        out.map_err(|detail| StoreError::Corrupt {
            op: "attempts",
            detail,
        })
    }

    pub fn update(
        &self,
        campaign: &str,
        id: MemberId,
        m: &MemberInput,
        now: DateTime<Utc>,
    ) -> StoreResult<ChangeOutcome> {
        let p = record::prepare(0, m)?;
        let taken = self.with_existing(campaign, None, |c| {
            p.ext
                .as_ref()
                .and_then(|e| c.ext.get(e))
                .copied()
                .filter(|owner| *owner != id.0)
        })?;
        if let (Some(owner), Some(e)) = (taken, &p.ext) {
            return Err(StoreError::ExternalIdTaken {
                external_id: e.clone(),
                owner,
            });
        }
        self.with_existing(campaign, ChangeOutcome::NotFound, |c| {
            c.replace(id.0, p, ms(now))
        })
    }

    pub fn delete(&self, campaign: &str, id: MemberId) -> StoreResult<ChangeOutcome> {
        self.with_existing(campaign, ChangeOutcome::NotFound, |c| c.delete(id.0))
    }

    pub fn follow_up(
        &self,
        campaign: &str,
        id: MemberId,
        attempt: AttemptId,
        follow_up: &FollowUp,
    ) -> StoreResult<FollowUpOutcome> {
        let f = crate::store::outcome::FollowUpMs::of(follow_up);
        self.with_existing(campaign, FollowUpOutcome::NotCurrent, |c| {
            c.follow_up(id.0, attempt, f)
        })
    }

    pub fn terminate(&self, campaign: &str, id: MemberId) -> StoreResult<TerminateOutcome> {
        self.with_existing(campaign, TerminateOutcome::NotFound, |c| c.terminate(id.0))
    }

    pub fn reset(&self, campaign: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut total = 0;
        let mut after = 0;
        loop {
            let (n, next) =
                self.with_existing(campaign, (0, None), |c| c.reset(after, SCAN_SPAN, ms(now)))?;
            total += n;
            match next {
                Some(a) => after = a,
                None => return Ok(total),
            }
        }
    }

    /// Attempts per hangup cause, counted by the completions themselves (see `store::causes`).
    pub fn cause_counts(&self, campaign: &str) -> StoreResult<BTreeMap<String, u64>> {
        self.with_existing(campaign, BTreeMap::new(), |c| c.causes.clone())
    }

    pub fn counts(&self, campaign: &str) -> StoreResult<Counters> {
        self.with_existing(campaign, Counters::default(), |c| c.cnt.clone())
    }

    pub fn list(&self, campaign: &str, q: &ListQuery) -> StoreResult<ListPage> {
        let mut q = q.clone();
        let start = q.after.map_or(0, |a| a.0);
        let mut members = Vec::new();
        loop {
            let (mut got, last, more) =
                self.with_existing(campaign, (Vec::new(), 0, false), |c| c.list(&q, SCAN_SPAN))?;
            q.limit -= got.len();
            members.append(&mut got);
            if !more {
                return Ok(ListPage {
                    members,
                    next: None,
                });
            }
            q.after = Some(MemberId(last));
            if q.limit == 0 || q.max_examined.is_some_and(|m| last - start >= m) {
                return Ok(ListPage {
                    members,
                    next: q.after,
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn claim(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        now: DateTime<Utc>,
        max_n: usize,
        node: &str,
        lease: Duration,
    ) -> StoreResult<ClaimBatch> {
        record::check_node(node)?;
        let lease = lease_ms(lease)?;
        let now = ms(now);
        let ids = self.ids.take(max_n.min(policy.limit as usize));
        self.with_existing(campaign, Ok(ClaimBatch::default()), |c| {
            let tz = tz_points(c, schedule, now, policy.wait_ms());
            let (claimed, ended) = c.claim(policy, &tz, now, max_n, node, lease, &ids);
            let claims = claimed
                .into_iter()
                .map(|(id, attempt, k)| {
                    let r = &c.members[&id];
                    Claim {
                        attempt_id: attempt,
                        member_id: MemberId(id),
                        attempt_no: r.attempts,
                        comm_index: k,
                        number: r.data.c[k].number.clone(),
                        name: r.data.n.clone(),
                        timezone: r.tz.clone(),
                        variables: r.data.v.clone(),
                        priority: r.prio,
                        lease_until: from_ms(now + lease),
                    }
                })
                .collect();
            Ok(ClaimBatch { claims, ended })
        })?
    }

    pub fn complete(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> StoreResult<CompleteOutcome> {
        record::check_cause(&result.cause)?;
        let now = ms(now);
        self.with_existing(campaign, CompleteOutcome::NotCurrent, |c| {
            let tz = tz_points(c, schedule, now, policy.wait_ms_for(&result.cause));
            c.complete(policy, &tz, result, now)
        })
    }

    pub fn complete_many(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        results: &[AttemptResult],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<CompleteOutcome>> {
        for r in results {
            record::check_cause(&r.cause)?;
        }
        let now = ms(now);
        self.with_existing(
            campaign,
            vec![CompleteOutcome::NotCurrent; results.len()],
            |c| {
                // The calendar per wait (a recycle rule's, or the campaign's), evaluated once per call.
                let mut by_wait: HashMap<i64, HashMap<String, TzPoint>> = HashMap::new();
                results
                    .iter()
                    .map(|r| {
                        let wait = policy.wait_ms_for(&r.cause);
                        let tz = by_wait
                            .entry(wait)
                            .or_insert_with(|| tz_points(c, schedule, now, wait));
                        c.complete(policy, tz, r, now)
                    })
                    .collect()
            },
        )
    }

    pub fn release(
        &self,
        campaign: &str,
        member: MemberId,
        attempt: AttemptId,
        not_before: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<ReleaseOutcome> {
        self.with_existing(campaign, ReleaseOutcome::NotCurrent, |c| {
            c.release(member.0, attempt, not_before.map(ms), ms(now))
        })
    }

    pub fn renew(
        &self,
        campaign: &str,
        node: &str,
        attempts: &[AttemptId],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Vec<AttemptId>> {
        let lease = lease_ms(lease)?;
        self.with_existing(campaign, attempts.to_vec(), |c| {
            c.renew(node, attempts, ms(now), lease)
        })
    }

    pub fn recover_expired(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        now: DateTime<Utc>,
        max: usize,
    ) -> StoreResult<Vec<Recovered>> {
        let now = ms(now);
        self.with_existing(campaign, Vec::new(), |c| {
            let tz = tz_points(c, schedule, now, policy.wait_ms_for(LOST_ATTEMPT_CAUSE));
            c.recover(policy, &tz, now, max)
        })
    }

    pub fn expired_leases(
        &self,
        campaign: &str,
        now: DateTime<Utc>,
        max: usize,
    ) -> StoreResult<Vec<ExpiredLease>> {
        let now = ms(now);
        self.with_existing(campaign, Vec::new(), |c| {
            c.leases
                .range(..(now + 1, Uuid::nil()))
                .filter_map(|(_, a)| {
                    c.active.get(a).map(|l| ExpiredLease {
                        attempt_id: *a,
                        member_id: MemberId(l.member),
                        node: l.node.clone(),
                    })
                })
                .take(max)
                .collect()
        })
    }

    pub fn attempt_holder(
        &self,
        campaign: &str,
        attempt: AttemptId,
    ) -> StoreResult<Option<String>> {
        self.with_existing(campaign, None, |c| {
            c.active.get(&attempt).map(|l| l.node.clone())
        })
    }

    pub fn take_over(
        &self,
        campaign: &str,
        attempt: AttemptId,
        from: &str,
        to: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (now, until) = (ms(now), ms(until));
        self.with_existing(campaign, false, |c| {
            let Some(lease) = c.active.get_mut(&attempt) else {
                return false;
            };
            if lease.node != from || lease.expiry > now {
                return false;
            }
            c.leases.remove(&(lease.expiry, attempt));
            lease.node = to.to_owned();
            lease.expiry = until;
            c.leases.insert((until, attempt));
            true
        })
    }

    pub fn held_by(&self, campaign: &str, node: &str) -> StoreResult<Vec<(AttemptId, MemberId)>> {
        self.with_existing(campaign, Vec::new(), |c| {
            let mut held: Vec<(AttemptId, MemberId)> = c
                .active
                .iter()
                .filter(|(_, l)| l.node == node)
                .map(|(a, l)| (*a, MemberId(l.member)))
                .collect();
            held.sort_by_key(|(_, m)| *m);
            held
        })
    }

    pub fn slots_in_use(&self, campaign: &str, now: DateTime<Utc>) -> StoreResult<u32> {
        self.with_existing(campaign, 0, |c| c.slots_in_use(ms(now)) as u32)
    }

    pub fn acquire_gateway_slot(
        &self,
        gateway: &str,
        limit: u32,
        attempt: AttemptId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        record::check_campaign(gateway)?;
        let mut g = self.lock();
        let pool = g.gw_slots.entry(gateway.to_string()).or_default();
        let now = ms(now);
        pool.retain(|_, exp| *exp > now);
        let full = pool.len() >= limit as usize;
        match pool.entry(attempt) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                e.insert(ms(until));
                Ok(true)
            }
            std::collections::btree_map::Entry::Vacant(_) if full => Ok(false),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(ms(until));
                Ok(true)
            }
        }
    }

    pub fn release_gateway_slot(&self, gateway: &str, attempt: AttemptId) -> StoreResult<()> {
        record::check_campaign(gateway)?;
        if let Some(pool) = self.lock().gw_slots.get_mut(gateway) {
            pool.remove(&attempt);
        }
        Ok(())
    }

    pub fn renew_gateway_slots(
        &self,
        gateway: &str,
        attempts: &[AttemptId],
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AttemptId>> {
        record::check_campaign(gateway)?;
        let mut g = self.lock();
        let pool = g.gw_slots.entry(gateway.to_string()).or_default();
        let now = ms(now);
        let mut lost = Vec::new();
        for a in attempts {
            match pool.get_mut(a) {
                Some(exp) if *exp > now => *exp = ms(until),
                _ => lost.push(*a),
            }
        }
        Ok(lost)
    }

    pub fn gateway_slots_in_use(&self, gateway: &str, now: DateTime<Utc>) -> StoreResult<u32> {
        record::check_campaign(gateway)?;
        let now = ms(now);
        Ok(self
            .lock()
            .gw_slots
            .get(gateway)
            .map_or(0, |p| p.values().filter(|e| **e > now).count() as u32))
    }

    pub fn take_tokens(
        &self,
        key: &LimitKey,
        rate_per_sec: f64,
        burst: f64,
        n: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<u32> {
        check_bucket(rate_per_sec, burst)?;
        let name = match key {
            LimitKey::Campaign(c) => {
                record::check_campaign(c)?;
                format!("c:{c}")
            }
            LimitKey::Gateway(g) => {
                record::check_campaign(g)?;
                format!("g:{g}")
            }
        };
        let mut g = self.lock();
        let state = g.buckets.get(&name).copied();
        let (next, granted) = bucket_step(state, rate_per_sec, burst, n, ms(now));
        g.buckets.insert(name, next);
        Ok(granted)
    }

    pub fn campaigns(&self) -> StoreResult<Vec<String>> {
        let mut v: Vec<String> = self.lock().camps.keys().cloned().collect();
        v.sort();
        Ok(v)
    }

    pub fn drop_campaign(&self, campaign: &str) -> StoreResult<()> {
        record::check_campaign(campaign)?;
        let mut g = self.lock();
        g.camps.remove(campaign);
        g.buckets.remove(&format!("c:{campaign}"));
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(campaign);
        self.outbox.forget(campaign);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_starts_full_refills_at_the_rate_and_never_exceeds_the_burst() {
        let (st, got) = bucket_step(None, 2.0, 3.0, 5, 1_000);
        assert_eq!(got, 3);
        let (st, got) = bucket_step(Some(st), 2.0, 3.0, 5, 1_400);
        assert_eq!(got, 0, "0.8 tokens is not a whole one");
        let (st, got) = bucket_step(Some(st), 2.0, 3.0, 5, 1_500);
        assert_eq!(got, 1);
        let (_, got) = bucket_step(Some(st), 2.0, 3.0, 5, 60_000);
        assert_eq!(got, 3, "capped at the burst");
    }

    #[test]
    fn a_clock_going_backwards_does_not_mint_tokens() {
        let (st, _) = bucket_step(None, 1.0, 1.0, 1, 10_000);
        let (st2, got) = bucket_step(Some(st), 1.0, 1.0, 1, 5_000);
        assert_eq!(got, 0);
        assert_eq!(st2.1, 10_000);
    }
}
