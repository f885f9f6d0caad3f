//! SPEC §4 decided in one place: what an attempt's final result does to its member.
//!
//! Both backends call [`decide`] and write what it returns: the memory store into its maps
//! (`memory/campaign.rs`), the Redis store into the member's record with a script that only checks the member is
//! still in that attempt and writes (`redis/completion.rs`, `redis/lua/complete.lua`). No other code classifies a
//! result, counts a try, marks a number done, reschedules or ends a member after a call, or moves a counter for it.
//!
//! The steps, in order (SPEC §4):
//! 1. The number called is idle again, with the claim instant and the cause as its last attempt.
//! 2. By class: `ok` ends the member successfully with the cause; `retry` counts a try (on the member, and on the
//!    number) and ends with `MAX_TRY_COUNT` when no try is left (per number with `tries_per_number`), else it is due
//!    after `wait_between_retries`; `error` counts a try, marks the number done, ends with the cause when no number
//!    is left (or `MAX_TRY_COUNT` when the member's tries are used up), else it is due at the calendar's next
//!    opening; `minus` counts nothing and is due after the wait. A `DNC` result (the number is on a do-not-call
//!    list, found at claim before any call: `store::dnc_screen`) is an error that counts no try, on the member or
//!    the number, and no call in the counters: the number is done, the member ends with `DNC` when no number is
//!    left, else it is due at the calendar's next opening.
//!    A recycle rule for the cause ([`retry_rule`], campaign `retry_rules`) replaces the wait (the caller
//!    evaluates the calendar with [`QueuePolicy::wait_ms_for`]) and, with `max`, caps the tries counted for it.
//! 3. A member terminated through the API during the call ends with `MANAGER_REQUEST` unless the call succeeded.
//! 4. An agent's follow-up (`Store::follow_up`): `reset_tries` sets the tries and every number's attempts back to 0
//!    before step 2 counts this result; `next_at` replaces the instant a member not ended is due at.
//! 5. A member that would be due when the calendar has no opening left ends with `QUEUE_EXPIRE`; one due at or after
//!    its expiry ends with `MEMBER_EXPIRED`.

use super::record::{LogEntry, NumState};
use super::rules::{self, TzPoint};
use super::types::*;
use crate::campaign::causes::CauseClass;
use crate::campaign::retry_rules::RetryRule;
use std::collections::BTreeMap;

/// The member as its attempt found it: what the rules read.
#[derive(Debug, Clone, Copy)]
pub struct InCall<'a> {
    /// Per-number state before the result.
    pub nums: &'a [NumState],
    /// Index of the number called.
    pub k: usize,
    /// When the attempt was claimed (ms).
    pub claimed: i64,
    /// The node that made the claim.
    pub node: &'a str,
    /// This attempt's number (the member's attempts count after its claim).
    pub attempt_no: u32,
    /// Counted tries before the result.
    pub tries: u32,
    /// The member's expiry (ms).
    pub expire: Option<i64>,
    /// The member was terminated through the API during the call.
    pub terminate_pending: bool,
    /// What the agent asked for with its result (`Store::follow_up`), if anything.
    pub follow_up: FollowUpMs,
}

/// An agent's follow-up of a call as the rules read it (see [`FollowUp`]): instants in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowUpMs {
    /// Call the member again at this instant instead of after the campaign's wait (a member not ended by the
    /// result; never before the result itself).
    pub next_at: Option<i64>,
    /// Start counting tries again: the member's tries and every number's attempts go back to 0 before this
    /// result counts (number states stay: a number done stays done).
    pub reset_tries: bool,
}

impl FollowUpMs {
    pub fn of(f: &FollowUp) -> FollowUpMs {
        FollowUpMs {
            next_at: f.next_at.map(ms),
            reset_tries: f.reset_tries,
        }
    }
}

/// An attempt's final result as the rules read it.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    pub attempt: AttemptId,
    pub cause: &'a str,
    pub class: CauseClass,
    pub answered: Option<i64>,
    pub hangup: Option<i64>,
    pub talk_secs: u32,
    pub note: Option<&'a str>,
}

impl<'a> Finished<'a> {
    /// An attempt whose lease expired, counted as the campaign's `lost_attempt` says (class `class`).
    pub fn lost(attempt: AttemptId, class: CauseClass) -> Finished<'static> {
        Finished {
            attempt,
            cause: LOST_ATTEMPT_CAUSE,
            class,
            answered: None,
            hangup: None,
            talk_secs: 0,
            note: None,
        }
    }

    /// The result as the engine reports it.
    pub fn of(r: &'a AttemptResult) -> Finished<'a> {
        Finished {
            attempt: r.attempt_id,
            cause: &r.cause,
            class: r.class,
            answered: r.answered_at.map(ms),
            hangup: r.hangup_at.map(ms),
            talk_secs: r.talk_secs,
            note: r.note.as_deref(),
        }
    }
}

/// Where the member goes after the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ended, with its end cause.
    Ended { cause: String, success: bool },
    /// Due again at this instant (ms, clamped into what the queue holds).
    Due(i64),
}

/// What a result does to its member: the new number state and tries, where it goes, its log entry, and the
/// counter changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub nums: Vec<NumState>,
    pub tries: u32,
    pub next: Next,
    /// The attempt's log entry (SPEC §10).
    pub log: LogEntry,
    /// Counter field (as the Redis `cnt` hash names it; `end:<CAUSE>` per end cause) → change.
    pub counters: Vec<(String, i64)>,
}

impl Decision {
    /// The member's fate as the store reports it.
    pub fn fate(&self) -> MemberFate {
        match &self.next {
            Next::Ended { cause, success } => MemberFate::Ended {
                cause: cause.clone(),
                success: *success,
            },
            Next::Due(d) => MemberFate::Due(from_ms(*d)),
        }
    }

    /// Adds this decision's counter changes to `into` (a batch's changes, written at once).
    pub fn add_counters(&self, into: &mut BTreeMap<String, i64>) {
        for (field, delta) in &self.counters {
            *into.entry(field.clone()).or_insert(0) += delta;
        }
    }
}

/// The result is not for the member's current number: the caller's record does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attempt on number #{k} of a member with {len} numbers")]
pub struct NoSuchNumber {
    pub k: usize,
    pub len: usize,
}

/// The campaign's recycle rule for `cause`: the first that lists it.
pub fn retry_rule<'p>(policy: &'p QueuePolicy, cause: &str) -> Option<&'p RetryRule> {
    policy
        .retry_rules
        .iter()
        .find(|r| r.causes.iter().any(|c| c == cause))
}

/// Applies `result` to the member `m` (SPEC §4), `point` being the calendar for the member's timezone at `now`.
pub fn decide(
    m: InCall<'_>,
    result: Finished<'_>,
    policy: &QueuePolicy,
    point: TzPoint,
    now: i64,
) -> Result<Decision, NoSuchNumber> {
    let k = m.k;
    if k >= m.nums.len() {
        return Err(NoSuchNumber {
            k,
            len: m.nums.len(),
        });
    }
    let mut nums = m.nums.to_vec();
    let mut tries = m.tries;
    let cause = result.cause;
    let max = match retry_rule(policy, cause).and_then(|r| r.max) {
        Some(rule_max) => rule_max.min(policy.max_tries),
        None => policy.max_tries,
    };
    // A number found on a do-not-call list at claim: no call was placed, so no try counts.
    let uncounted = cause == DNC;
    if m.follow_up.reset_tries {
        tries = 0;
        for n in &mut nums {
            n.att = 0;
        }
    }
    {
        let n = &mut nums[k];
        n.state = CommState::Idle;
        n.last = m.claimed;
        n.cause = cause.to_string();
    }
    let all_done = |nums: &[NumState]| nums.iter().all(|n| n.state == CommState::Done);
    // Some(cause, success): the member ends; else it is due at `due_at` (None inside: the calendar has none).
    let mut end: Option<(&str, bool)> = None;
    let mut due_at: Option<Option<i64>> = None;
    match result.class {
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
            if !uncounted {
                tries += 1;
                nums[k].att += 1;
            }
            nums[k].state = CommState::Done;
            if all_done(&nums) {
                end = Some((cause, false));
            } else if !uncounted && !policy.tries_per_number && tries >= max {
                end = Some((MAX_TRY_COUNT, false));
            } else {
                due_at = Some(point.next_now);
            }
        }
        CauseClass::Minus => due_at = Some(point.next_wait),
    }
    if m.terminate_pending && result.class != CauseClass::Ok {
        end = Some((MANAGER_REQUEST, false));
        due_at = None;
    }
    if let (Some(at), Some(_)) = (m.follow_up.next_at, due_at) {
        due_at = Some(Some(at.max(now)));
    }
    if let Some(next) = due_at {
        match next {
            None => end = Some((QUEUE_EXPIRE, false)),
            Some(d) if m.expire.is_some_and(|x| x <= d) => end = Some((MEMBER_EXPIRED, false)),
            Some(_) => {}
        }
    }
    let next = match end {
        Some((cause, success)) => Next::Ended {
            cause: cause.to_string(),
            success,
        },
        None => Next::Due(rules::clamp_due(
            due_at.flatten().expect("a member not ended is due"),
        )),
    };
    let mut counters: Vec<(String, i64)> =
        vec![("active".into(), -1), (result.class.as_str().into(), 1)];
    if !uncounted {
        counters.push(("calls".into(), 1));
    }
    if result.answered.is_some() {
        counters.push(("answered".into(), 1));
    }
    // The hangup-cause histogram counts every attempt with a result, in this same step (`store::causes`).
    counters.push((format!("{}{cause}", super::causes::CAUSE_FIELD), 1));
    // Every lost attempt counts in `lost`, however it was found (lease recovery, or an engine that settled it).
    if cause == LOST_ATTEMPT_CAUSE {
        counters.push(("lost".into(), 1));
    }
    let (fe, fs, fd) = match &next {
        Next::Ended { cause, success } => {
            if *success {
                counters.push(("success".into(), 1));
            }
            counters.push(("ended".into(), 1));
            counters.push((format!("end:{cause}"), 1));
            (Some(cause.clone()), u8::from(*success), None)
        }
        Next::Due(d) => {
            // Waiting again after an attempt: in retry (until it is claimed, terminated, deleted).
            counters.push(("waiting".into(), 1));
            counters.push(("in_retry".into(), 1));
            (None, 0, Some(*d))
        }
    };
    let log = LogEntry {
        i: result.attempt,
        no: m.attempt_no,
        k,
        g: m.node.to_string(),
        m: m.claimed,
        an: result.answered,
        hu: result.hangup,
        ts: result.talk_secs,
        c: cause.to_string(),
        cl: result.class.as_str().to_string(),
        fe,
        fs,
        fd,
        at: now,
        nt: result.note.map(str::to_owned),
    };
    Ok(Decision {
        nums,
        tries,
        next,
        log,
        counters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn num(state: CommState, att: u32) -> NumState {
        NumState {
            prio: 0,
            state,
            att,
            last: 0,
            cause: String::new(),
        }
    }

    fn in_call(nums: &[NumState]) -> InCall<'_> {
        InCall {
            nums,
            k: 0,
            claimed: 1_000,
            node: "n1",
            attempt_no: 2,
            tries: 1,
            expire: None,
            terminate_pending: false,
            follow_up: FollowUpMs::default(),
        }
    }

    fn finished(cause: &str, class: CauseClass) -> Finished<'_> {
        Finished {
            attempt: Uuid::from_u128(7),
            cause,
            class,
            answered: None,
            hangup: Some(1_500),
            talk_secs: 0,
            note: None,
        }
    }

    const POINT: TzPoint = TzPoint {
        open: true,
        next_now: Some(2_000),
        next_wait: Some(62_000),
    };

    fn policy(max_tries: u32) -> QueuePolicy {
        QueuePolicy {
            max_tries,
            ..QueuePolicy::default()
        }
    }

    /// Decides `cause`/`class` for `m` at 2,000 ms under `max` tries.
    fn run(m: InCall<'_>, cause: &str, class: CauseClass, max: u32) -> Decision {
        decide(m, finished(cause, class), &policy(max), POINT, 2_000).unwrap()
    }

    fn ended(cause: &str, success: bool) -> Next {
        Next::Ended {
            cause: cause.into(),
            success,
        }
    }

    fn count(d: &Decision, field: &str) -> i64 {
        d.counters
            .iter()
            .filter(|(f, _)| f == field)
            .map(|(_, v)| v)
            .sum()
    }

    #[test]
    fn a_retry_counts_a_try_and_is_due_after_the_wait() {
        let nums = [num(CommState::Idle, 0)];
        let d = run(in_call(&nums), "NO_ANSWER", CauseClass::Retry, 5);
        assert_eq!(d.next, Next::Due(62_000));
        assert_eq!((d.tries, d.nums[0].att, d.nums[0].last), (2, 1, 1_000));
        assert_eq!(d.nums[0].cause, "NO_ANSWER");
        assert_eq!(d.log.fd, Some(62_000));
        assert_eq!(
            (
                count(&d, "retry"),
                count(&d, "waiting"),
                count(&d, "active")
            ),
            (1, 1, -1)
        );
    }

    #[test]
    fn the_last_try_ends_the_member_with_max_try_count() {
        let nums = [num(CommState::Idle, 0)];
        let d = run(in_call(&nums), "NO_ANSWER", CauseClass::Retry, 2);
        assert_eq!(
            d.fate(),
            MemberFate::Ended {
                cause: MAX_TRY_COUNT.into(),
                success: false
            }
        );
        assert_eq!(count(&d, "end:MAX_TRY_COUNT"), 1);
        assert_eq!(count(&d, "waiting"), 0);
    }

    #[test]
    fn an_error_marks_the_number_done_and_moves_to_the_next_at_the_next_opening() {
        let nums = [num(CommState::Idle, 0), num(CommState::Idle, 0)];
        let d = run(in_call(&nums), "UNALLOCATED_NUMBER", CauseClass::Error, 5);
        assert_eq!(d.nums[0].state, CommState::Done);
        assert_eq!(d.next, Next::Due(2_000));
    }

    #[test]
    fn a_dnc_hit_ends_the_number_counting_no_try_and_ends_a_member_with_no_number_left() {
        let nums = [num(CommState::Idle, 1), num(CommState::Idle, 0)];
        let mut m = in_call(&nums);
        m.tries = 4;
        // Under max_tries 5 a counted error would end the member with MAX_TRY_COUNT; a DNC hit counts nothing.
        let d = run(m, DNC, CauseClass::Error, 5);
        assert_eq!(d.next, Next::Due(2_000));
        assert_eq!((d.tries, d.nums[0].att), (4, 1));
        assert_eq!(
            (d.nums[0].state, d.nums[0].cause.as_str()),
            (CommState::Done, DNC)
        );
        assert_eq!((count(&d, "calls"), count(&d, "error")), (0, 1));
        let m = InCall {
            nums: &d.nums,
            k: 1,
            ..m
        };
        let d = run(m, DNC, CauseClass::Error, 5);
        assert_eq!(d.next, ended(DNC, false));
        assert_eq!((d.tries, count(&d, "end:DNC")), (4, 1));
    }

    #[test]
    fn a_recycle_rule_caps_the_tries_counted_for_its_causes_and_sets_their_wait() {
        let busy = RetryRule {
            causes: vec!["USER_BUSY".into()],
            after_sec: 300,
            max: Some(2),
        };
        let p = QueuePolicy {
            retry_rules: vec![busy],
            ..policy(5)
        };
        assert_eq!(p.wait_ms_for("USER_BUSY"), 300_000);
        assert_eq!(
            p.wait_ms_for("NO_ANSWER"),
            60_000,
            "other causes keep the campaign's wait"
        );
        let nums = [num(CommState::Idle, 0)];
        // The second counted try: a busy result ends the member, a no-answer one does not.
        let busy = decide(
            in_call(&nums),
            finished("USER_BUSY", CauseClass::Retry),
            &p,
            POINT,
            2_000,
        );
        assert_eq!(busy.unwrap().next, ended(MAX_TRY_COUNT, false));
        let other = decide(
            in_call(&nums),
            finished("NO_ANSWER", CauseClass::Retry),
            &p,
            POINT,
            2_000,
        );
        assert_eq!(other.unwrap().next, Next::Due(62_000));
        // A rule's max never lifts max_tries.
        let loose = QueuePolicy {
            retry_rules: vec![RetryRule {
                causes: vec!["USER_BUSY".into()],
                after_sec: 300,
                max: Some(50),
            }],
            ..policy(2)
        };
        let d = decide(
            in_call(&nums),
            finished("USER_BUSY", CauseClass::Retry),
            &loose,
            POINT,
            2_000,
        );
        assert_eq!(d.unwrap().next, ended(MAX_TRY_COUNT, false));
    }

    #[test]
    fn a_terminated_member_ends_with_manager_request_unless_the_call_succeeded() {
        let nums = [num(CommState::Idle, 0)];
        let mut m = in_call(&nums);
        m.terminate_pending = true;
        let d = run(m, "NO_ANSWER", CauseClass::Retry, 5);
        assert_eq!(d.next, ended(MANAGER_REQUEST, false));
        let d = run(m, "NORMAL_CLEARING", CauseClass::Ok, 5);
        assert_eq!(d.next, ended("NORMAL_CLEARING", true));
        assert_eq!(count(&d, "success"), 1);
    }

    #[test]
    fn a_member_due_after_its_expiry_or_with_no_opening_left_ends() {
        let nums = [num(CommState::Idle, 0)];
        let mut m = in_call(&nums);
        m.expire = Some(30_000);
        let d = run(m, "USER_BUSY", CauseClass::Retry, 5);
        assert_eq!(d.next, ended(MEMBER_EXPIRED, false));
        let closed = TzPoint {
            open: false,
            next_now: None,
            next_wait: None,
        };
        let d = decide(
            in_call(&nums),
            finished("X", CauseClass::Minus),
            &policy(5),
            closed,
            2_000,
        )
        .unwrap();
        assert_eq!(d.next, ended(QUEUE_EXPIRE, false));
        assert_eq!(d.tries, 1, "minus counts no try");
    }

    #[test]
    fn an_agents_follow_up_sets_the_next_call_and_starts_the_tries_again() {
        let nums = [num(CommState::Idle, 3), num(CommState::Done, 2)];
        let mut m = in_call(&nums);
        m.tries = 4;
        // Without the follow-up, the fifth try ends the member.
        let d = run(m, "NO_ANSWER", CauseClass::Retry, 5);
        assert_eq!(d.next, ended(MAX_TRY_COUNT, false));
        m.follow_up = FollowUpMs {
            next_at: Some(3_600_000),
            reset_tries: true,
        };
        let d = run(m, "NO_ANSWER", CauseClass::Retry, 5);
        assert_eq!(d.next, Next::Due(3_600_000));
        assert_eq!((d.tries, d.nums[0].att, d.nums[1].att), (1, 1, 0));
        assert_eq!(d.nums[1].state, CommState::Done, "a done number stays done");
        // An instant already past is now; a success ends the member whatever was asked.
        m.follow_up.next_at = Some(10);
        assert_eq!(
            run(m, "NO_ANSWER", CauseClass::Retry, 5).next,
            Next::Due(2_000)
        );
        assert_eq!(
            run(m, "NORMAL_CLEARING", CauseClass::Ok, 5).next,
            ended("NORMAL_CLEARING", true)
        );
    }

    #[test]
    fn a_lost_attempt_counts_as_lost_and_a_missing_number_is_refused() {
        let nums = [num(CommState::Idle, 0)];
        let d = run(in_call(&nums), LOST_ATTEMPT_CAUSE, CauseClass::Minus, 5);
        assert_eq!(count(&d, "lost"), 1);
        let mut m = in_call(&nums);
        m.k = 3;
        assert_eq!(
            decide(m, finished("X", CauseClass::Ok), &policy(5), POINT, 2_000).unwrap_err(),
            NoSuchNumber { k: 3, len: 1 }
        );
    }
}
