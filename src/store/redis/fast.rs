//! The completion fast path: Rust decides, Lua checks and writes.
//!
//! Why: Redis runs Lua slowly next to its native commands. Deciding a result in `complete.lua` (read eight
//! fields, parse the number state, apply SPEC §4, repack, build the log line) cost ≈ 44 µs of Redis time per
//! member on the bench machine, more than the claim that preceded it; the same writes with the decision already
//! made cost ≈ 19 µs. Redis is the one part every engine node shares, so its time per call is what bounds the
//! whole cluster's call rate.
//!
//! How: a claim reply carries each member's record as the claim wrote it (`packed.rs`); [`Snapshots`] keeps it,
//! with the fields the rules read, per attempt this store claimed. When a batch of results comes back and each has
//! its snapshot, [`decide`] applies the rules here (the same steps as `apply` in `lua/prelude.lua` and
//! `Camp::apply` in `memory/campaign.rs`; the property test holds all three to the same results) and builds the
//! member's new record from the claimed one, and `lua/complete_fast.lua` writes them, all or nothing, after checking
//! that each attempt's `act` entry is still `<member>|<node>` as the claim wrote it. That check is enough: while a
//! member is in a call nothing else may change its record (update, delete and upsert are refused, reset touches
//! ended members only), a terminate marks the `act` entry as well as setting `q`, and every completion, release and
//! recovery drops the entry. Whatever does not fit (no snapshot, a member twice in one batch, a failed check) goes
//! through `complete.lua`, which decides in Lua as before.

use super::packed::Record;
use crate::campaign::causes::CauseClass;
use crate::campaign::params::{MemberOrder, NumberOrder};
use crate::store::record::{self, LogEntry, NumState};
use crate::store::rules::{self, TzPoint};
use crate::store::types::*;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use uuid::Uuid;

/// At most this many snapshots are kept; past it the oldest half of the map is dropped (their results then take
/// the slow path, nothing else changes).
const MAX_SNAPSHOTS: usize = 200_000;

/// A claimed member as the claim wrote it.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    pub member: u64,
    /// The member's record as the claim wrote it (`packed.rs`): its number state and timezone, and the base of the
    /// record the completion writes.
    pub record: String,
    pub k: usize,
    pub claimed: i64,
    pub node: String,
    /// `b` after the claim (this attempt's number).
    pub attempts: u32,
    pub tries: u32,
    pub expire: Option<i64>,
    pub prio: i64,
}

/// Snapshots by attempt, each with its insertion number (for trimming), and the last number given.
#[derive(Debug, Default)]
struct Kept {
    seq: u64,
    map: HashMap<Uuid, (u64, Snapshot)>,
}

/// The snapshots of this store's attempts in flight.
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

/// Counter deltas of a batch, as `complete_fast.lua` adds them (field → delta).
pub(super) type Deltas = BTreeMap<String, i64>;

fn bump(d: &mut Deltas, field: &str, by: i64) {
    *d.entry(field.to_string()).or_insert(0) += by;
}

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

/// One decided result: what `complete_fast.lua` writes for it and the fate to report.
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

/// The arguments of one `complete_fast.lua` call, gathered section by section so the script hands each section
/// to one Redis command as it is (`unpack` over a range of `ARGV`) instead of walking the results in Lua.
#[derive(Debug, Default)]
pub(super) struct FastBatch {
    attempts: Vec<String>,
    /// The `act` entries the claims wrote (`hid|node`), in the attempts' order.
    acts: Vec<String>,
    /// Member key, new record.
    sets: Vec<String>,
    /// Score, entry.
    ready: Vec<String>,
    /// Due, entry.
    wait: Vec<String>,
    /// Log field, log line.
    logs: Vec<String>,
}

impl FastBatch {
    /// Adds a decided result: `key` is the member's record key (`keys::member_key`), `node` made the claim.
    pub fn push(&mut self, d: Decided, attempt: &Uuid, node: &str, key: String) {
        self.attempts.push(attempt.to_string());
        self.acts.push(format!("{}|{node}", d.hid));
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

    /// The script's arguments (see `complete_fast.lua`): `now`, the member order assumed, the counter deltas
    /// (JSON), the three section sizes, the `act` entries joined by newlines, then the sections.
    pub fn into_args(self, now: i64, order: &str, deltas: String) -> Vec<String> {
        let mut args = Vec::with_capacity(
            7 + self.attempts.len()
                + self.sets.len()
                + self.ready.len()
                + self.wait.len()
                + self.logs.len(),
        );
        args.extend([
            now.to_string(),
            order.to_string(),
            deltas,
            self.attempts.len().to_string(),
            (self.ready.len() / 2).to_string(),
            (self.wait.len() / 2).to_string(),
            self.acts.join("\n"),
        ]);
        args.extend(self.attempts);
        args.extend(self.sets);
        args.extend(self.ready);
        args.extend(self.wait);
        args.extend(self.logs);
        args
    }
}

/// Applies `r` to the member as `snap` holds it, `base` being its record parsed (SPEC §4, step for step as `apply`
/// in `lua/prelude.lua`). Fails (and the caller takes the slow path) only when the snapshot does not fit the result.
#[allow(clippy::too_many_arguments)]
pub(super) fn decide(
    snap: &Snapshot,
    base: &Record,
    r: &AttemptResult,
    policy: &QueuePolicy,
    point: TzPoint,
    order: MemberOrder,
    now: i64,
    deltas: &mut Deltas,
) -> Result<Decided, String> {
    let mut nums = record::unpack_nums(base.u)?;
    let k = snap.k;
    if k >= nums.len() {
        return Err(format!("number #{k} of {}", nums.len()));
    }
    let cause = r.cause.as_str();
    let class = r.class;
    let mut tries = snap.tries;
    let max = policy.max_tries;
    {
        let n = &mut nums[k];
        n.state = CommState::Idle;
        n.last = snap.claimed;
        n.cause = cause.to_string();
    }
    let all_done = |nums: &[NumState]| nums.iter().all(|n| n.state == CommState::Done);
    // None = reschedule at the chosen instant (None inside: the calendar has none); Some = end.
    let mut end: Option<(&str, bool)> = None;
    let mut due_at: Option<Option<i64>> = None;
    match class {
        CauseClass::Ok => end = Some((cause, true)),
        CauseClass::Retry => {
            tries += 1;
            nums[k].att += 1;
            if policy.tries_per_number {
                if nums[k].att >= max {
                    nums[k].state = CommState::Done;
                }
                if all_done(&nums) {
                    end = Some((MAX_TRY_COUNT, false));
                }
            } else if tries >= max {
                end = Some((MAX_TRY_COUNT, false));
            }
            if end.is_none() {
                due_at = Some(point.next_wait);
            }
        }
        CauseClass::Error => {
            tries += 1;
            nums[k].att += 1;
            nums[k].state = CommState::Done;
            if all_done(&nums) {
                end = Some((cause, false));
            } else if !policy.tries_per_number && tries >= max {
                end = Some((MAX_TRY_COUNT, false));
            } else {
                due_at = Some(point.next_now);
            }
        }
        CauseClass::Minus => due_at = Some(point.next_wait),
    }
    if let Some(next) = due_at {
        match next {
            None => end = Some((QUEUE_EXPIRE, false)),
            Some(d) if snap.expire.is_some_and(|x| x <= d) => end = Some((MEMBER_EXPIRED, false)),
            Some(_) => {}
        }
    }
    bump(deltas, "active", -1);
    bump(deltas, "calls", 1);
    if r.answered_at.is_some() {
        bump(deltas, "answered", 1);
    }
    bump(deltas, class.as_str(), 1);
    if r.cause == LOST_ATTEMPT_CAUSE {
        bump(deltas, "lost", 1);
    }
    let hid = rules::id_token(snap.member);
    let (due, queue, fate) = match end {
        Some((c, success)) => {
            if success {
                bump(deltas, "success", 1);
            }
            bump(deltas, "ended", 1);
            bump(deltas, &format!("end:{c}"), 1);
            let fate = MemberFate::Ended {
                cause: c.to_string(),
                success,
            };
            (None, Queue::None, fate)
        }
        None => {
            bump(deltas, "waiting", 1);
            let due = rules::clamp_due(due_at.flatten().expect("rescheduled with a due"));
            let fate = MemberFate::Due(from_ms(due));
            let queue = if due <= now {
                let score = rules::primary(order, snap.prio, tries, snap.attempts);
                Queue::Ready(score.to_string(), format!("{due:011x}{hid}"))
            } else {
                Queue::Wait(due.to_string(), hid.clone())
            };
            (Some(due.to_string()), queue, fate)
        }
    };
    let (fe, fs, fd) = match &fate {
        MemberFate::Ended { cause, success } => (Some(cause.clone()), u8::from(*success), None),
        MemberFate::Due(d) => (None, 0, Some(ms(*d))),
    };
    let line = LogEntry {
        i: r.attempt_id,
        no: snap.attempts,
        k,
        g: snap.node.clone(),
        m: snap.claimed,
        an: r.answered_at.map(ms),
        hu: r.hangup_at.map(ms),
        ts: r.talk_secs,
        c: cause.to_string(),
        cl: class.as_str().to_string(),
        fe,
        fs,
        fd,
        at: now,
        nt: r.note.clone(),
    }
    .to_line();
    // The next claim's number choice under either number order (`h`, read by `claim.lua`).
    let pick = |order| {
        rules::choose_number(order, &nums, Some(k)).map_or(String::new(), |i| i.to_string())
    };
    let hint = format!(
        "{},{}",
        pick(NumberOrder::ByPriority),
        pick(NumberOrder::TopDown)
    );
    // What `apply` in `lua/prelude.lua` writes, field for field (and the hint, which only this path writes).
    let packed = record::pack_nums(&nums);
    let (t, r_field) = (tries.to_string(), (k + 1).to_string());
    let record = match &fate {
        MemberFate::Ended { cause, success } => Record {
            s: "e",
            y: cause,
            o: if *success { "1" } else { base.o },
            ..base.clone()
        },
        MemberFate::Due(_) => Record {
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
        t: if tries > 0 { &t } else { base.t },
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
        hid,
        record,
        queue,
        line,
        fate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        Snapshot {
            member: 42,
            record,
            k: 1,
            claimed: 1_000,
            node: "n1".into(),
            attempts: 3,
            tries: 2,
            expire: None,
            prio: 4,
        }
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
        let base = Record::parse(&s.record)?;
        let out = decide(
            s,
            &base,
            &r,
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
        let mut batch = FastBatch::default();
        batch.push(
            out,
            &ATTEMPT,
            &s.node,
            super::super::keys::member_key("c", s.member),
        );
        let args = batch.into_args(2_000, "priority_first", "{}".into());
        assert_eq!(args[3..7], ["1", "0", "1", "000000002a|n1"]);
        assert_eq!(args[7], ATTEMPT.to_string());
        assert_eq!(args[8], "dlr:{c}:m:000000002a");
        assert_eq!(args[10..12], ["61000", "000000002a"]);
        assert_eq!(args[12], "000000002a.3");
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
