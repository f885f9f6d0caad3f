//! Completing attempts on Redis: the rules decide in Rust (`store::outcome`), Lua checks and writes.
//!
//! Why: Redis runs Lua slowly next to its native commands, and the rules are written once, in Rust, for both
//! backends. Deciding a result in Lua (read eight fields, parse the number state, apply SPEC §4, repack, build the
//! log line) cost ≈ 44 µs of Redis time per member on the bench machine; the same writes with the decision already
//! made cost ≈ 19 µs. Redis is the one part every engine node shares, so its time per call is what bounds the whole
//! cluster's call rate.
//!
//! How: a [`Snapshot`] is a member in an attempt as it was read, with the `act` entry of that attempt at the
//! time. A claim reply carries each member's record as the claim wrote it (`packed.rs`), so the node that claimed
//! keeps its snapshots ([`Snapshots`]) and decides its results without reading anything; any other node (or a
//! result without its snapshot: after a restart, a recovery, a renewal that finds a terminated member) reads
//! the records first (`lua/peek.lua`). Either way [`decide`] applies the rules to the snapshot and builds the
//! member's new record, and `lua/complete.lua` writes a batch of them, all or nothing, after checking that each
//! attempt's `act` entry is still the one the snapshot holds. That check is enough: while a member is in a call
//! nothing else may change its record (update, delete and upsert are refused, reset touches ended members only), a
//! terminate marks the `act` entry as well as setting `q`, a take-over rewrites it, and every completion and release
//! drops it. A failed check is a conflict: the caller reads again and decides again.

use super::packed::Record;
use crate::campaign::params::{MemberOrder, NumberOrder};
use crate::store::outcome::{self, Finished, FollowUpMs, InCall, Next};
use crate::store::record;
use crate::store::rules::{self, TzPoint};
use crate::store::types::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use uuid::Uuid;

/// At most this many snapshots are kept; past it the oldest half of the map is dropped (their results then are
/// read before they are decided, nothing else changes).
const MAX_SNAPSHOTS: usize = 200_000;

/// A member in an attempt, as it was read.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    pub member: u64,
    /// The member's record as it was read (`packed.rs`): its number state and timezone, and the base of the record
    /// the completion writes.
    pub record: String,
    /// The attempt's `act` entry when the record was read (`hid|node[|q]`): what the write checks.
    pub act: String,
    pub k: usize,
    pub claimed: i64,
    /// The node that made the claim (the record's active attempt names it).
    pub node: String,
    /// `b` after the claim (this attempt's number).
    pub attempts: u32,
    pub tries: u32,
    pub expire: Option<i64>,
    pub prio: i64,
    /// The member was terminated through the API during the call.
    pub terminate_pending: bool,
    /// An agent's follow-up kept in the `act` entry (`|f<next ms>,<reset>`, see `lua/follow_up.lua`).
    pub follow_up: FollowUpMs,
}

/// The follow-up an `act` entry holds (`hid|node[|q][|f<next ms or ''>,<0|1>]`).
fn follow_up_of(act: &str) -> Result<FollowUpMs, String> {
    let Some(spec) = act.split('|').skip(2).find_map(|p| p.strip_prefix('f')) else {
        return Ok(FollowUpMs::default());
    };
    let bad = || format!("act entry {act:?}: follow-up {spec:?}");
    let (next, reset) = spec.split_once(',').ok_or_else(bad)?;
    let next_at = if next.is_empty() {
        None
    } else {
        Some(next.parse().map_err(|_| bad())?)
    };
    Ok(FollowUpMs {
        next_at,
        reset_tries: reset == "1",
    })
}

/// The `act` entry form of a follow-up (what `lua/follow_up.lua` appends after `|f`).
pub(super) fn follow_up_spec(f: &FollowUpMs) -> String {
    format!(
        "{},{}",
        f.next_at.map(|t| t.to_string()).unwrap_or_default(),
        u8::from(f.reset_tries)
    )
}

impl Snapshot {
    /// The snapshot of member `member` in the attempt its record names; `act` is the attempt's `act` entry as read
    /// with the record (`None`: the one the claim that wrote this record wrote, `hid|node`).
    pub fn of_record(member: u64, record: String, act: Option<String>) -> Result<Snapshot, String> {
        let r = Record::parse(&record)?;
        let active = r
            .active()?
            .ok_or_else(|| format!("member {member}: no active attempt"))?;
        let int = |name: &str, v: &str| -> Result<Option<i64>, String> {
            if v.is_empty() {
                return Ok(None);
            }
            record::parse_int(v)
                .map(Some)
                .ok_or_else(|| format!("member {member}: field {name} is not an integer: {v:?}"))
        };
        let act = act.unwrap_or_else(|| format!("{}|{}", rules::id_token(member), active.node));
        let snapshot = Snapshot {
            member,
            follow_up: follow_up_of(&act)?,
            act,
            k: active.k,
            claimed: active.claimed,
            node: active.node.to_string(),
            attempts: int("b", r.b)?.unwrap_or(0) as u32,
            tries: int("t", r.t)?.unwrap_or(0) as u32,
            expire: int("x", r.x)?,
            prio: int("p", r.p)?.unwrap_or(0),
            terminate_pending: r.q == "1",
            record: String::new(),
        };
        Ok(Snapshot { record, ..snapshot })
    }

    /// The attempt id the record names.
    pub fn attempt(&self) -> Result<Uuid, String> {
        let r = Record::parse(&self.record)?;
        let a = r.active()?.ok_or("no active attempt")?;
        Uuid::parse_str(a.attempt).map_err(|e| format!("attempt id {:?}: {e}", a.attempt))
    }
}

/// Snapshots by attempt, each with its insertion number (for trimming), and the last number given.
#[derive(Debug, Default)]
struct Kept {
    seq: u64,
    map: HashMap<Uuid, (u64, Snapshot)>,
}

/// The snapshots of this store's claims in flight.
#[derive(Debug, Default)]
pub(super) struct Snapshots {
    inner: Mutex<Kept>,
}

impl Snapshots {
    /// Keeps a claim batch's snapshots.
    pub fn insert_all(&self, batch: Vec<(Uuid, Snapshot)>) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Kept { seq, map } = &mut *g;
        for (attempt, s) in batch {
            *seq += 1;
            if map.len() >= MAX_SNAPSHOTS {
                // Attempts whose results never came here (recovered by another node, say): forget the oldest half.
                let cut = seq.saturating_sub(MAX_SNAPSHOTS as u64 / 2);
                map.retain(|_, (at, _)| *at >= cut);
            }
            map.insert(attempt, (*seq, s));
        }
    }

    pub fn take(&self, attempt: &Uuid) -> Option<Snapshot> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.map.remove(attempt).map(|(_, s)| s)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }
}

/// Counter deltas of a batch, as `complete.lua` adds them (field → delta).
pub(super) type Deltas = BTreeMap<String, i64>;

/// Where a decided member goes in the campaign's queues.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Queue {
    /// The ready order: score, entry.
    Ready(String, String),
    /// The wait set: due ms, entry.
    Wait(String, String),
    /// Neither: the member ended.
    None,
}

/// One decided result: what `complete.lua` writes for it and the fate to report.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decided {
    /// The member id as its keys spell it.
    pub hid: String,
    /// The member's new record.
    pub record: String,
    pub queue: Queue,
    /// The attempt's field in the campaign's log hash (`hid.attempt no`) and its log line.
    pub log_field: String,
    pub line: String,
    pub fate: MemberFate,
}

/// The arguments of one `complete.lua` call, gathered section by section so the script hands each section to one
/// Redis command as it is (`unpack` over a range of `ARGV`) instead of walking the results in Lua.
#[derive(Debug, Default)]
pub(super) struct Writes {
    attempts: Vec<String>,
    /// The `act` entries the decisions read, in the attempts' order.
    acts: Vec<String>,
    /// Member key, new record.
    sets: Vec<String>,
    /// Score, entry.
    ready: Vec<String>,
    /// Due, entry.
    wait: Vec<String>,
    /// Log field, log line.
    logs: Vec<String>,
    /// Attempts whose lease and `act` entry go without a decision (their member moved on).
    drops: Vec<String>,
}

impl Writes {
    /// Adds a decided result: `key` is the member's record key (`keys::member_key`), `act` the attempt's `act` entry
    /// the decision was made with.
    pub fn push(&mut self, d: Decided, attempt: &Uuid, act: &str, key: String) {
        self.attempts.push(attempt.to_string());
        self.acts.push(act.to_string());
        self.sets.push(key);
        self.sets.push(d.record);
        match d.queue {
            Queue::Ready(score, entry) => self.ready.extend([score, entry]),
            Queue::Wait(due, entry) => self.wait.extend([due, entry]),
            Queue::None => {}
        }
        self.logs.push(d.log_field);
        self.logs.push(d.line);
    }

    /// Drops an attempt's lease and `act` entry (an attempt whose member is not in it any more).
    pub fn drop_lease(&mut self, attempt: String) {
        self.drops.push(attempt);
    }

    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty() && self.drops.is_empty()
    }

    /// The script's arguments (see `complete.lua`): `now`, the member order assumed, the counter deltas (JSON),
    /// the three section sizes, the `act` entries joined by newlines, the expiry check, the drop count, then the
    /// sections.
    pub fn into_args(
        self,
        now: i64,
        order: &str,
        deltas: String,
        expired_by: Option<i64>,
    ) -> Vec<String> {
        let mut args = Vec::with_capacity(
            9 + self.attempts.len()
                + self.sets.len()
                + self.ready.len()
                + self.wait.len()
                + self.logs.len()
                + self.drops.len(),
        );
        args.extend([
            now.to_string(),
            order.to_string(),
            deltas,
            self.attempts.len().to_string(),
            (self.ready.len() / 2).to_string(),
            (self.wait.len() / 2).to_string(),
            self.acts.join("\n"),
            expired_by.map(|e| e.to_string()).unwrap_or_default(),
            self.drops.len().to_string(),
        ]);
        args.extend(self.attempts);
        args.extend(self.sets);
        args.extend(self.ready);
        args.extend(self.wait);
        args.extend(self.logs);
        args.extend(self.drops);
        args
    }
}

/// Applies `r` to the member as `snap` holds it (the rules of `store::outcome`) and builds what `complete.lua`
/// writes: the member's new record, its queue entry, its log line. `order` ranks the ready order. Fails (and
/// nothing is written for the batch) only when the snapshot does not fit the result.
pub(super) fn decide(
    snap: &Snapshot,
    r: Finished<'_>,
    policy: &QueuePolicy,
    point: TzPoint,
    order: MemberOrder,
    now: i64,
    deltas: &mut Deltas,
) -> Result<Decided, String> {
    let base = Record::parse(&snap.record)?;
    let nums = record::unpack_nums(base.u)?;
    let k = snap.k;
    let member = InCall {
        nums: &nums,
        k,
        claimed: snap.claimed,
        node: &snap.node,
        attempt_no: snap.attempts,
        tries: snap.tries,
        expire: snap.expire,
        terminate_pending: snap.terminate_pending,
        follow_up: snap.follow_up,
    };
    let d = outcome::decide(member, r, policy, point, now).map_err(|e| e.to_string())?;
    d.add_counters(deltas);
    let hid = rules::id_token(snap.member);
    let queue = match d.next {
        Next::Ended { .. } => Queue::None,
        Next::Due(due) if due <= now => {
            let score = rules::primary(order, snap.prio, d.tries, snap.attempts);
            Queue::Ready(score.to_string(), format!("{due:011x}{hid}"))
        }
        Next::Due(due) => Queue::Wait(due.to_string(), hid.clone()),
    };
    // The next claim's number choice under either number order (`h`, read by `claim.lua`).
    let pick = |order| {
        rules::choose_number(order, &d.nums, Some(k)).map_or(String::new(), |i| i.to_string())
    };
    let hint = format!(
        "{},{}",
        pick(NumberOrder::ByPriority),
        pick(NumberOrder::TopDown)
    );
    let packed = record::pack_nums(&d.nums);
    let (t, r_field) = (d.tries.to_string(), (k + 1).to_string());
    let due = match d.next {
        Next::Due(due) => Some(due.to_string()),
        Next::Ended { .. } => None,
    };
    let record = match &d.next {
        Next::Ended { cause, success } => Record {
            s: "e",
            y: cause,
            o: if *success { "1" } else { base.o },
            ..base.clone()
        },
        Next::Due(_) => Record {
            s: if matches!(queue, Queue::Ready(..)) {
                "r"
            } else {
                "w"
            },
            w: due.as_deref().unwrap_or(base.w),
            ..base.clone()
        },
    };
    let record = Record {
        t: if d.tries > 0 { &t } else { base.t },
        u: &packed,
        r: &r_field,
        h: &hint,
        q: "",
        a: "",
        ..record
    }
    .pack();
    Ok(Decided {
        log_field: format!("{hid}.{}", snap.attempts),
        line: d.log.to_line(),
        fate: d.fate(),
        hid,
        record,
        queue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::causes::CauseClass;
    use crate::store::record::LogEntry;

    const ATTEMPT: Uuid = Uuid::from_u128(9);

    fn snap() -> Snapshot {
        snap_with_nums("5;7,i,1,500,USER_BUSY")
    }

    /// The snapshot of member 42 in attempt #3 on its second number, with number state `nums`.
    fn snap_with_nums(nums: &str) -> Snapshot {
        let active = format!("{ATTEMPT}|1|1000|n1");
        let record = Record {
            s: "a",
            w: "900",
            t: "2",
            b: "3",
            u: nums,
            r: "",
            h: "",
            q: "",
            y: "",
            o: "",
            x: "",
            p: "4",
            z: "",
            a: &active,
            tail: "\n[[\"+1\"],[\"+2\"]]\n\n\nAnn",
            c: "[[\"+1\"],[\"+2\"]]",
            v: "",
            e: "",
            n: "Ann",
        }
        .pack();
        let snap = Snapshot::of_record(42, record, None).unwrap();
        assert_eq!(
            (snap.k, snap.claimed, snap.attempts, snap.tries, snap.prio),
            (1, 1_000, 3, 2, 4)
        );
        assert_eq!(
            (snap.act.as_str(), snap.node.as_str()),
            ("000000002a|n1", "n1")
        );
        snap
    }

    /// Decides `class`/`cause` for `s` at 2,000 ms with max_tries `max`, due-now at 2,000 and after the wait at
    /// `next_wait`.
    fn run(
        s: &Snapshot,
        class: CauseClass,
        cause: &str,
        max: u32,
        next_wait: i64,
    ) -> Result<(Decided, Deltas), String> {
        let r = AttemptResult {
            attempt_id: ATTEMPT,
            member_id: MemberId(42),
            cause: cause.into(),
            class,
            answered_at: None,
            hangup_at: Some(from_ms(1_500)),
            talk_secs: 0,
            note: Some("a|b".into()),
        };
        let policy = QueuePolicy {
            max_tries: max,
            ..QueuePolicy::default()
        };
        let point = TzPoint {
            open: true,
            next_now: Some(2_000),
            next_wait: Some(next_wait),
        };
        let mut d = Deltas::new();
        let out = decide(
            s,
            Finished::of(&r),
            &policy,
            point,
            MemberOrder::PriorityFirst,
            2_000,
            &mut d,
        )?;
        Ok((out, d))
    }

    fn ended(cause: &str) -> MemberFate {
        MemberFate::Ended {
            cause: cause.into(),
            success: false,
        }
    }

    #[test]
    fn a_retry_is_rescheduled_after_the_wait_with_its_try_counted() {
        let s = snap();
        let (out, d) = run(&s, CauseClass::Retry, "NO_ANSWER", 5, 61_000).unwrap();
        assert_eq!(out.fate, MemberFate::Due(from_ms(61_000)));
        assert_eq!(out.hid, "000000002a");
        let rec = Record::parse(&out.record).unwrap();
        assert_eq!(rec.u, "5;7,i,2,1000,NO_ANSWER");
        assert_eq!((rec.r, rec.t, rec.b), ("2", "3", "3"));
        assert_eq!((rec.s, rec.w, rec.a), ("w", "61000", ""));
        assert_eq!(rec.h, "1,0");
        assert_eq!(rec.tail, Record::parse(&s.record).unwrap().tail);
        assert_eq!(out.queue, Queue::Wait("61000".into(), "000000002a".into()));
        let entry = LogEntry::parse_line(out.line.trim_end()).unwrap();
        assert_eq!(entry.fd, Some(61_000));
        assert_eq!(entry.nt.as_deref(), Some("a|b"));
        assert_eq!((d["retry"], d["waiting"], d["active"]), (1, 1, -1));
        let mut batch = Writes::default();
        batch.push(
            out,
            &ATTEMPT,
            &s.act,
            super::super::keys::member_key("c", s.member),
        );
        batch.drop_lease("gone".into());
        let args = batch.into_args(2_000, "priority_first", "{}".into(), None);
        assert_eq!(args[3..9], ["1", "0", "1", "000000002a|n1", "", "1"]);
        assert_eq!(args[9], ATTEMPT.to_string());
        assert_eq!(args[10], "dlr:{c}:m:000000002a");
        assert_eq!(args[12..14], ["61000", "000000002a"]);
        assert_eq!(args[14], "000000002a.3");
        assert_eq!(args[16..], ["gone"]);
    }

    #[test]
    fn a_due_now_member_goes_to_the_ready_order_with_its_rank_and_token() {
        let (out, _) = run(
            &snap(),
            CauseClass::Minus,
            "NORMAL_TEMPORARY_FAILURE",
            5,
            2_000,
        )
        .unwrap();
        assert_eq!(
            out.queue,
            Queue::Ready("-4".into(), format!("{:011x}000000002a", 2_000))
        );
        let rec = Record::parse(&out.record).unwrap();
        // Minus: no try counted, the stored tries stay.
        assert_eq!((rec.s, rec.w, rec.t), ("r", "2000", "2"));
    }

    #[test]
    fn the_last_allowed_retry_ends_the_member_with_max_try_count() {
        let (out, d) = run(&snap(), CauseClass::Retry, "NO_ANSWER", 3, 61_000).unwrap();
        assert_eq!(out.fate, ended(MAX_TRY_COUNT));
        let rec = Record::parse(&out.record).unwrap();
        assert_eq!(
            (rec.s, rec.y, rec.o, rec.w),
            ("e", MAX_TRY_COUNT, "", "900")
        );
        assert_eq!(out.queue, Queue::None);
        assert_eq!(d["end:MAX_TRY_COUNT"], 1);
    }

    #[test]
    fn a_success_ends_the_member_marked_successful() {
        let (out, d) = run(&snap(), CauseClass::Ok, "NORMAL_CLEARING", 3, 61_000).unwrap();
        let rec = Record::parse(&out.record).unwrap();
        assert_eq!((rec.s, rec.y, rec.o), ("e", "NORMAL_CLEARING", "1"));
        assert_eq!(d["success"], 1);
    }

    #[test]
    fn an_error_on_the_last_usable_number_ends_with_its_own_cause() {
        let s = snap_with_nums("5,d,1,500,UNALLOCATED_NUMBER;7");
        let (out, _) = run(&s, CauseClass::Error, "INVALID_NUMBER_FORMAT", 10, 61_000).unwrap();
        assert_eq!(out.fate, ended("INVALID_NUMBER_FORMAT"));
        let rec = Record::parse(&out.record).unwrap();
        assert_eq!(rec.h, ",", "no number left under either order");
    }

    #[test]
    fn a_member_that_would_be_due_after_its_expiry_ends_expired() {
        let mut s = snap();
        s.expire = Some(30_000);
        let (out, _) = run(&s, CauseClass::Retry, "NO_ANSWER", 5, 61_000).unwrap();
        assert_eq!(out.fate, ended(MEMBER_EXPIRED));
    }

    #[test]
    fn a_snapshot_naming_a_missing_number_is_refused() {
        let mut s = snap();
        s.k = 5;
        assert!(run(&s, CauseClass::Ok, "NORMAL_CLEARING", 5, 0).is_err());
    }

    #[test]
    fn a_follow_up_is_read_back_from_the_act_entry_it_is_written_into() {
        let f = FollowUpMs {
            next_at: Some(1_709_546_400_000),
            reset_tries: true,
        };
        let act = format!("000000002a|n1|q|f{}", follow_up_spec(&f));
        assert_eq!(follow_up_of(&act), Ok(f));
        assert_eq!(follow_up_of("000000002a|n1|f,0"), Ok(FollowUpMs::default()));
        assert_eq!(follow_up_of("000000002a|n1|q"), Ok(FollowUpMs::default()));
        assert!(follow_up_of("000000002a|n1|fx,1").is_err());
    }

    #[test]
    fn the_snapshot_map_forgets_its_oldest_half_when_full() {
        let s = Snapshots::default();
        s.insert_all(
            (0..MAX_SNAPSHOTS as u128 + 1)
                .map(|i| (Uuid::from_u128(i), snap()))
                .collect(),
        );
        assert!(s.len() <= MAX_SNAPSHOTS / 2 + 1);
        assert!(s.take(&Uuid::from_u128(MAX_SNAPSHOTS as u128)).is_some());
        assert!(s.take(&Uuid::from_u128(0)).is_none());
    }
}
