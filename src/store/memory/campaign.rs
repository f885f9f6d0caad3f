//! One campaign's queue held in process: the same records, orders and rules as the Redis layout, in Rust maps.
//!
//! Every method here is one atomic store operation (the caller holds the lock); each mirrors one Lua script of
//! the Redis backend step by step, so the two behave identically (held so by `tests/store_props.rs`).

use crate::campaign::causes::CauseClass;
use crate::campaign::params::MemberOrder;
use crate::store::causes;
use crate::store::outcome::{self, Finished, FollowUpMs, InCall, Next};
use crate::store::record::{LogEntry, NumState, Prepared, StaticData};
use crate::store::rules::{self, TzPoint};
use crate::store::types::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// Where a member is in its lifecycle (the Redis `s` field: r, w, a, e).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum St {
    /// Due: in the ready order.
    Ready,
    /// Due later: in the wait set.
    Waiting,
    Active,
    Ended,
}

#[derive(Debug, Clone)]
pub(super) struct Current {
    pub attempt: Uuid,
    pub node: String,
    pub k: usize,
    pub claimed: i64,
    /// What the agent asked for with its result (`follow_up`), applied at completion.
    pub follow_up: FollowUpMs,
}

#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub id: u64,
    pub data: StaticData,
    pub prio: i64,
    pub tz: Option<String>,
    pub expire: Option<i64>,
    pub ext: Option<String>,
    pub st: St,
    pub due: i64,
    /// Primary of the ready order while `st == Ready`.
    pub rank: i64,
    pub tries: u32,
    pub attempts: u32,
    pub nums: Vec<NumState>,
    pub last_idx: Option<usize>,
    pub cur: Option<Current>,
    pub q: bool,
    pub end_cause: Option<String>,
    pub success: bool,
    pub log: Vec<LogEntry>,
}

impl Rec {
    pub fn view(&self) -> Member {
        let mut communications = crate::store::record::communications(&self.data, &self.nums);
        if let Some(c) = self.cur.as_ref().and_then(|c| communications.get_mut(c.k)) {
            c.state = CommState::Active;
        }
        Member {
            id: MemberId(self.id),
            name: self.data.n.clone(),
            priority: self.prio,
            timezone: self.tz.clone(),
            expire: self.expire.map(from_ms),
            variables: self.data.v.clone(),
            communications,
            external_id: self.ext.clone(),
            state: match self.st {
                St::Ready | St::Waiting => MemberState::Waiting,
                St::Active => MemberState::Active,
                St::Ended => MemberState::Ended,
            },
            next_due: matches!(self.st, St::Ready | St::Waiting).then(|| from_ms(self.due)),
            tries: self.tries,
            attempts: self.attempts,
            end_cause: self.end_cause.clone(),
            success: self.success,
            current_attempt: self.cur.as_ref().map(|c| c.attempt),
            terminate_pending: self.q,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Lease {
    pub member: u64,
    pub node: String,
    pub expiry: i64,
}

/// What one claim did: (member, attempt, number index) claimed, and members ended on the way.
pub(super) type ClaimedAndEnded = (Vec<(u64, Uuid, usize)>, Vec<(MemberId, String)>);

/// One campaign's state.
#[derive(Debug, Default)]
pub(super) struct Camp {
    pub seq: u64,
    pub members: BTreeMap<u64, Rec>,
    pub ready: BTreeSet<(i64, i64, u64)>,
    pub wait: BTreeSet<(i64, u64)>,
    pub leases: BTreeSet<(i64, Uuid)>,
    pub active: HashMap<Uuid, Lease>,
    pub ext: HashMap<String, u64>,
    pub tzs: BTreeSet<String>,
    pub order: Option<MemberOrder>,
    pub cnt: Counters,
    /// Attempts per hangup cause (`store::causes`), written by the same step as each attempt's result.
    pub causes: BTreeMap<String, u64>,
}

impl Camp {
    fn order(&self) -> MemberOrder {
        self.order.unwrap_or_default()
    }

    /// Puts a member due at `due` into the ready order (due now) or the wait set (due later).
    fn schedule(&mut self, id: u64, due: i64, now: i64) {
        let order = self.order();
        let Some(rec) = self.members.get_mut(&id) else {
            return;
        };
        let due = rules::clamp_due(due);
        rec.due = due;
        if due <= now {
            rec.st = St::Ready;
            rec.rank = rules::primary(order, rec.prio, rec.tries, rec.attempts);
            self.ready.insert((rec.rank, due, id));
        } else {
            rec.st = St::Waiting;
            self.wait.insert((due, id));
        }
    }

    /// Takes a waiting member out of the ready order / wait set (no counter change).
    fn unqueue(&mut self, id: u64) {
        if let Some(rec) = self.members.get(&id) {
            match rec.st {
                St::Ready => {
                    self.ready.remove(&(rec.rank, rec.due, id));
                }
                St::Waiting => {
                    self.wait.remove(&(rec.due, id));
                }
                _ => {}
            }
        }
    }

    /// Member `id` leaves the waiting members (claimed, ended or deleted while waiting): `waiting`, and
    /// `in_retry` when it was called before.
    fn leave_waiting(&mut self, id: u64) {
        self.cnt.waiting -= 1;
        if self.members.get(&id).is_some_and(|r| r.attempts > 0) {
            self.cnt.in_retry -= 1;
        }
    }

    /// Member `id` is waiting again (released, revived): `waiting`, and `in_retry` when it was called before.
    fn enter_waiting(&mut self, id: u64) {
        self.cnt.waiting += 1;
        if self.members.get(&id).is_some_and(|r| r.attempts > 0) {
            self.cnt.in_retry += 1;
        }
    }

    fn bump_end(&mut self, cause: &str, delta: i64) {
        self.cnt.add(&format!("end:{cause}"), delta);
        self.cnt.add("ended", delta);
    }

    /// Ends a member that is not queued any more (counters: the caller already removed it from its gauge).
    fn finish(&mut self, id: u64, cause: &str, success: bool) {
        if let Some(rec) = self.members.get_mut(&id) {
            rec.st = St::Ended;
            rec.end_cause = Some(cause.to_string());
            rec.success = success;
            rec.q = false;
        }
        self.bump_end(cause, 1);
        if success {
            self.cnt.success += 1;
        }
    }

    pub fn add(&mut self, items: Vec<Prepared>, now: i64) -> Vec<AddOutcome> {
        // The ready order starts ranked by the default member order (a claim with another order re-ranks it).
        self.order.get_or_insert_default();
        let mut out = Vec::with_capacity(items.len());
        for p in items {
            if let Some(tz) = &p.tz {
                self.tzs.insert(tz.clone());
            } else {
                self.tzs.insert(String::new());
            }
            if let Some(existing) = p.ext.as_ref().and_then(|e| self.ext.get(e)).copied() {
                out.push(match self.replace(existing, p, now) {
                    ChangeOutcome::InCall => AddOutcome::InCall(MemberId(existing)),
                    _ => AddOutcome::Updated(MemberId(existing)),
                });
                continue;
            }
            self.seq += 1;
            let id = self.seq;
            if let Some(e) = &p.ext {
                self.ext.insert(e.clone(), id);
            }
            self.members.insert(
                id,
                Rec {
                    id,
                    data: p.data,
                    prio: p.prio,
                    tz: p.tz,
                    expire: p.expire,
                    ext: p.ext,
                    st: St::Ready,
                    due: now,
                    rank: 0,
                    tries: 0,
                    attempts: 0,
                    nums: p.nums,
                    last_idx: None,
                    cur: None,
                    q: false,
                    end_cause: None,
                    success: false,
                    log: Vec::new(),
                },
            );
            self.cnt.waiting += 1;
            self.schedule(id, now, now);
            out.push(AddOutcome::Added(MemberId(id)));
        }
        out
    }

    /// Replaces a member's data (update / upsert). Number state survives when the numbers are unchanged.
    pub fn replace(&mut self, id: u64, p: Prepared, now: i64) -> ChangeOutcome {
        let Some(rec) = self.members.get(&id) else {
            return ChangeOutcome::NotFound;
        };
        if rec.st == St::Active {
            return ChangeOutcome::InCall;
        }
        let queued = matches!(rec.st, St::Ready | St::Waiting);
        let due = rec.due;
        let old_ext = rec.ext.clone();
        match &p.tz {
            Some(tz) => self.tzs.insert(tz.clone()),
            None => self.tzs.insert(String::new()),
        };
        if queued {
            self.unqueue(id);
        }
        if old_ext != p.ext {
            if let Some(o) = &old_ext {
                self.ext.remove(o);
            }
            if let Some(n) = &p.ext {
                self.ext.insert(n.clone(), id);
            }
        }
        let rec = self.members.get_mut(&id).expect("checked above");
        let same_numbers = rec.data.c.len() == p.data.c.len()
            && rec
                .data
                .c
                .iter()
                .zip(&p.data.c)
                .all(|(a, b)| a.number == b.number);
        if same_numbers {
            for (old, new) in rec.nums.iter_mut().zip(&p.nums) {
                old.prio = new.prio;
            }
        } else {
            rec.nums = p.nums;
            rec.last_idx = None;
        }
        rec.data = p.data;
        rec.prio = p.prio;
        rec.tz = p.tz;
        rec.expire = p.expire;
        rec.ext = p.ext;
        if queued {
            self.schedule(id, due, now);
        }
        ChangeOutcome::Done
    }

    /// Moves every waiting member whose due passed into the ready order (at most [`rules::PROMOTE_CAP`]), and
    /// re-ranks the ready order when the campaign's member order changed.
    fn prepare_ready(&mut self, order: MemberOrder, now: i64) {
        if self.order != Some(order) {
            self.order = Some(order);
            let old: Vec<(i64, i64, u64)> = std::mem::take(&mut self.ready).into_iter().collect();
            for (_, due, id) in old {
                if let Some(rec) = self.members.get_mut(&id) {
                    rec.rank = rules::primary(order, rec.prio, rec.tries, rec.attempts);
                    self.ready.insert((rec.rank, due, id));
                }
            }
        }
        let due_now: Vec<(i64, u64)> = self
            .wait
            .range(..(now + 1, 0))
            .take(rules::PROMOTE_CAP)
            .copied()
            .collect();
        for (due, id) in due_now {
            self.wait.remove(&(due, id));
            self.schedule(id, due, now);
        }
    }

    /// Number of unexpired leases (campaign slots in use).
    pub fn slots_in_use(&self, now: i64) -> usize {
        self.leases.range((now + 1, Uuid::nil())..).count()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn claim(
        &mut self,
        policy: &QueuePolicy,
        tz: &HashMap<String, TzPoint>,
        now: i64,
        max_n: usize,
        node: &str,
        lease_ms: i64,
        ids: &[Uuid],
    ) -> ClaimedAndEnded {
        self.prepare_ready(policy.member_order, now);
        let free = (policy.limit as usize).saturating_sub(self.slots_in_use(now));
        let want = max_n.min(free).min(ids.len());
        let mut claimed = Vec::new();
        let mut ended = Vec::new();
        let mut examined = 0;
        while claimed.len() < want && examined < want + rules::EXAMINE_EXTRA {
            let Some(&head) = self.ready.first() else {
                break;
            };
            self.ready.remove(&head);
            examined += 1;
            let id = head.2;
            let rec = self.members.get(&id).expect("ready member exists");
            if rec.expire.is_some_and(|x| x <= now) {
                self.leave_waiting(id);
                self.finish(id, MEMBER_EXPIRED, false);
                ended.push((MemberId(id), MEMBER_EXPIRED.to_string()));
                continue;
            }
            let point = tz.get(rules::tz_key(&rec.tz)).copied().unwrap_or(TzPoint {
                open: false,
                next_now: None,
                next_wait: None,
            });
            if !point.open {
                match rules::reopen_at(&point, now) {
                    None => {
                        self.leave_waiting(id);
                        self.finish(id, QUEUE_EXPIRE, false);
                        ended.push((MemberId(id), QUEUE_EXPIRE.to_string()));
                    }
                    // It would only be callable after it expires.
                    Some(at) if rec.expire.is_some_and(|x| x <= at) => {
                        self.leave_waiting(id);
                        self.finish(id, MEMBER_EXPIRED, false);
                        ended.push((MemberId(id), MEMBER_EXPIRED.to_string()));
                    }
                    Some(at) => self.schedule(id, at, now),
                }
                continue;
            }
            let Some(k) = rules::choose_number(policy.number_order, &rec.nums, rec.last_idx) else {
                self.leave_waiting(id);
                self.finish(id, NO_COMMUNICATIONS, false);
                ended.push((MemberId(id), NO_COMMUNICATIONS.to_string()));
                continue;
            };
            let attempt = ids[claimed.len()];
            self.leave_waiting(id);
            let rec = self.members.get_mut(&id).expect("ready member exists");
            rec.st = St::Active;
            rec.attempts += 1;
            rec.cur = Some(Current {
                attempt,
                node: node.to_string(),
                k,
                claimed: now,
                follow_up: FollowUpMs::default(),
            });
            let expiry = now + lease_ms;
            self.leases.insert((expiry, attempt));
            self.active.insert(
                attempt,
                Lease {
                    member: id,
                    node: node.to_string(),
                    expiry,
                },
            );
            self.cnt.active += 1;
            claimed.push((id, attempt, k));
        }
        (claimed, ended)
    }

    fn drop_lease(&mut self, attempt: &Uuid) {
        if let Some(l) = self.active.remove(attempt) {
            self.leases.remove(&(l.expiry, *attempt));
        }
    }

    /// Applies a final result to member `id` in its current attempt: the rules decide (`store::outcome`), this
    /// writes what they decided.
    fn apply(
        &mut self,
        policy: &QueuePolicy,
        point: TzPoint,
        id: u64,
        result: Finished<'_>,
        now: i64,
    ) -> MemberFate {
        let rec = self.members.get_mut(&id).expect("caller checked");
        let cur = rec.cur.take().expect("caller checked");
        let member = InCall {
            nums: &rec.nums,
            k: cur.k,
            claimed: cur.claimed,
            node: &cur.node,
            attempt_no: rec.attempts,
            tries: rec.tries,
            expire: rec.expire,
            terminate_pending: rec.q,
            follow_up: cur.follow_up,
        };
        // The claim chose `k` among the member's numbers, and numbers change only while it waits.
        let decision =
            outcome::decide(member, result, policy, point, now).expect("claimed number exists");
        rec.nums = decision.nums;
        rec.tries = decision.tries;
        rec.last_idx = Some(cur.k);
        rec.q = false;
        rec.log.push(decision.log);
        self.drop_lease(&cur.attempt);
        for (field, delta) in &decision.counters {
            match causes::histogram_cause(field) {
                Some(cause) => causes::count_cause(&mut self.causes, cause, *delta),
                None => self.cnt.add(field, *delta),
            }
        }
        match decision.next {
            Next::Ended { cause, success } => {
                let rec = self.members.get_mut(&id).expect("caller checked");
                rec.st = St::Ended;
                rec.success = success;
                rec.end_cause = Some(cause.clone());
                MemberFate::Ended { cause, success }
            }
            Next::Due(due) => {
                self.schedule(id, due, now);
                MemberFate::Due(from_ms(due))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn complete(
        &mut self,
        policy: &QueuePolicy,
        tz: &HashMap<String, TzPoint>,
        r: &AttemptResult,
        now: i64,
    ) -> CompleteOutcome {
        let Some(rec) = self.members.get(&r.member_id.0) else {
            return CompleteOutcome::NotCurrent;
        };
        if rec.cur.as_ref().map(|c| c.attempt) != Some(r.attempt_id) {
            return if rec.log.iter().any(|e| e.i == r.attempt_id) {
                CompleteOutcome::Duplicate
            } else {
                CompleteOutcome::NotCurrent
            };
        }
        let point = point_for(tz, &rec.tz);
        CompleteOutcome::Applied(self.apply(policy, point, r.member_id.0, Finished::of(r), now))
    }

    pub fn recover(
        &mut self,
        policy: &QueuePolicy,
        tz: &HashMap<String, TzPoint>,
        now: i64,
        max: usize,
    ) -> Vec<Recovered> {
        let expired: Vec<(i64, Uuid)> = self
            .leases
            .range(..(now + 1, Uuid::nil()))
            .take(max)
            .copied()
            .collect();
        let class = lost_class(policy.lost_attempt);
        let mut out = Vec::new();
        for (expiry, attempt) in expired {
            let Some(lease) = self.active.get(&attempt).cloned() else {
                self.leases.remove(&(expiry, attempt));
                continue;
            };
            let current = self
                .members
                .get(&lease.member)
                .and_then(|r| r.cur.as_ref())
                .is_some_and(|c| c.attempt == attempt);
            if !current {
                self.drop_lease(&attempt);
                continue;
            }
            let point = point_for(tz, &self.members[&lease.member].tz);
            let fate = self.apply(
                policy,
                point,
                lease.member,
                Finished::lost(attempt, class),
                now,
            );
            out.push(Recovered {
                attempt_id: attempt,
                member_id: MemberId(lease.member),
                node: lease.node,
                fate,
            });
        }
        out
    }

    /// Extends this node's leases; returns the calls to drop: attempts no longer this node's, and attempts whose
    /// member was terminated while in the call (completed here with MANAGER_REQUEST, class minus).
    pub fn renew(&mut self, node: &str, attempts: &[Uuid], now: i64, lease_ms: i64) -> Vec<Uuid> {
        let mut lost = Vec::new();
        for a in attempts {
            let (member, valid) = match self.active.get(a) {
                // A lease that expired but was not recovered yet is still this node's: renewing it keeps a
                // healthy call (recovery and renewal are atomic, so whichever comes first wins).
                Some(l) if l.node == node => (l.member, true),
                _ => (0, false),
            };
            if !valid {
                lost.push(*a);
                continue;
            }
            let terminated = self
                .members
                .get(&member)
                .is_some_and(|r| r.q && r.cur.as_ref().is_some_and(|c| c.attempt == *a));
            if terminated {
                let closed = TzPoint {
                    open: false,
                    next_now: None,
                    next_wait: None,
                };
                self.apply(
                    &QueuePolicy::default(),
                    closed,
                    member,
                    Finished {
                        attempt: *a,
                        cause: MANAGER_REQUEST,
                        class: CauseClass::Minus,
                        answered: None,
                        hangup: Some(now),
                        talk_secs: 0,
                        note: None,
                    },
                    now,
                );
                lost.push(*a);
                continue;
            }
            if let Some(l) = self.active.get_mut(a) {
                self.leases.remove(&(l.expiry, *a));
                l.expiry = now + lease_ms;
                self.leases.insert((l.expiry, *a));
            }
        }
        lost
    }

    pub fn release(
        &mut self,
        member: u64,
        attempt: Uuid,
        not_before: Option<i64>,
        now: i64,
    ) -> ReleaseOutcome {
        let Some(rec) = self.members.get_mut(&member) else {
            return ReleaseOutcome::NotCurrent;
        };
        let Some(_) = rec.cur.take_if(|c| c.attempt == attempt) else {
            return ReleaseOutcome::NotCurrent;
        };
        rec.attempts -= 1;
        let due = not_before.map_or(rec.due, |nb| nb.max(rec.due));
        let q = rec.q;
        self.drop_lease(&attempt);
        self.cnt.active -= 1;
        if q {
            self.finish(member, MANAGER_REQUEST, false);
        } else {
            self.enter_waiting(member);
            self.schedule(member, due, now);
        }
        ReleaseOutcome::Released
    }

    pub fn delete(&mut self, id: u64) -> ChangeOutcome {
        let Some(rec) = self.members.get(&id) else {
            return ChangeOutcome::NotFound;
        };
        match rec.st {
            St::Active => return ChangeOutcome::InCall,
            St::Ended => {
                let c = rec.end_cause.clone().unwrap_or_default();
                self.bump_end(&c, -1);
            }
            St::Ready | St::Waiting => {
                self.unqueue(id);
                self.leave_waiting(id);
            }
        }
        let rec = self.members.remove(&id).expect("checked");
        if let Some(e) = rec.ext {
            self.ext.remove(&e);
        }
        ChangeOutcome::Done
    }

    /// Keeps an agent's follow-up with the member's attempt `attempt`, for its completion.
    pub fn follow_up(&mut self, id: u64, attempt: Uuid, follow_up: FollowUpMs) -> FollowUpOutcome {
        match self
            .members
            .get_mut(&id)
            .and_then(|r| r.cur.as_mut())
            .filter(|c| c.attempt == attempt)
        {
            Some(cur) => {
                cur.follow_up = follow_up;
                FollowUpOutcome::Set
            }
            None => FollowUpOutcome::NotCurrent,
        }
    }

    pub fn terminate(&mut self, id: u64) -> TerminateOutcome {
        let Some(rec) = self.members.get_mut(&id) else {
            return TerminateOutcome::NotFound;
        };
        match rec.st {
            St::Ended => TerminateOutcome::AlreadyEnded,
            St::Active => {
                rec.q = true;
                let cur = rec.cur.as_ref().expect("active member has an attempt");
                TerminateOutcome::KillCall {
                    attempt_id: cur.attempt,
                    node: cur.node.clone(),
                }
            }
            St::Ready | St::Waiting => {
                self.unqueue(id);
                self.leave_waiting(id);
                self.finish(id, MANAGER_REQUEST, false);
                TerminateOutcome::Terminated
            }
        }
    }

    /// Revives ended, unsuccessful members with ids in `(after, after + span]`; returns (revived, next cursor).
    pub fn reset(&mut self, after: u64, span: u64, now: i64) -> (u64, Option<u64>) {
        let hi = after.saturating_add(span).min(self.seq);
        let ids: Vec<u64> = self
            .members
            .range(after + 1..=hi)
            .filter(|(_, r)| r.st == St::Ended && !r.success)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            let rec = self.members.get_mut(id).expect("listed");
            let cause = rec.end_cause.take().unwrap_or_default();
            rec.tries = 0;
            rec.q = false;
            for n in &mut rec.nums {
                n.state = CommState::Idle;
                n.att = 0;
            }
            self.bump_end(&cause, -1);
            self.enter_waiting(*id);
            self.schedule(*id, now, now);
        }
        (ids.len() as u64, (hi < self.seq).then_some(hi))
    }

    /// Members with ids in `(after, after + span]` matching the filter, at most `limit`; returns (members, last id
    /// examined, more to examine).
    pub fn list(&self, q: &ListQuery, span: u64) -> (Vec<Member>, u64, bool) {
        let after = q.after.map_or(0, |a| a.0);
        let hi = after.saturating_add(span).min(self.seq);
        let mut out = Vec::new();
        let mut last = after;
        for (id, rec) in self.members.range(after + 1..=hi) {
            if out.len() >= q.limit {
                return (out, last, true);
            }
            last = *id;
            let v = rec.view();
            if q.state.is_some_and(|s| s != v.state) {
                continue;
            }
            if q.end_cause.is_some() && q.end_cause != v.end_cause {
                continue;
            }
            if !q.name_matches(&v.name) {
                continue;
            }
            out.push(v);
        }
        (out, hi, hi < self.seq)
    }
}

fn point_for(tz: &HashMap<String, TzPoint>, member_tz: &Option<String>) -> TzPoint {
    tz.get(rules::tz_key(member_tz))
        .copied()
        .unwrap_or(TzPoint {
            open: false,
            next_now: None,
            next_wait: None,
        })
}
