//! The accounting audit every end-to-end test ends with: read back every member and its attempt log from the
//! store and check that the whole is consistent — each member ended exactly once, each attempt completed exactly
//! once, counters equal to the logs, and every member's history obeys SPEC §4.
//!
//! What it checks, per member:
//! - ended, with an end cause; its log has exactly `attempts` entries numbered 1, 2, 3…, in time order;
//! - every entry but the last rescheduled the member, the next attempt started no earlier than that due instant
//!   (give or take [`Rules::skew`]),
//!   and (with `wait` given, an always-open calendar) the due instant is exactly `completed + wait` after a retry
//!   or minus and `completed` after an error;
//! - the last entry ended it with the member's end cause (or the member ended at a later claim: expired, no
//!   number, calendar over);
//! - counted tries = retry + error entries (minus and ok do not count); never above `max_tries`; `MAX_TRY_COUNT`
//!   only with exactly `max_tries`; each number's attempt count is its own counted entries;
//! - a number that got an error result is never dialled again; an ok entry is the last and the member succeeded.
//!
//! And globally: attempt ids unique across every log; the campaign counters equal the sums over the logs.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use fsdialer::campaign::causes::CauseClass;
use fsdialer::store::{
    AttemptRecord, CommState, Counters, ListQuery, MAX_TRY_COUNT, Member, MemberFate, MemberState,
    Store,
};

/// One member and its attempts, oldest first.
#[derive(Debug, Clone)]
pub struct History {
    pub member: Member,
    pub attempts: Vec<AttemptRecord>,
}

impl History {
    pub fn external_id(&self) -> &str {
        self.member.external_id.as_deref().unwrap_or("")
    }

    /// (class, cause, number index) of each attempt.
    pub fn outline(&self) -> Vec<(CauseClass, String, usize)> {
        self.attempts
            .iter()
            .map(|a| (a.class, a.cause.clone(), a.comm_index))
            .collect()
    }
}

/// Everything read back.
#[derive(Debug, Clone)]
pub struct Audit {
    pub histories: Vec<History>,
    pub counts: Counters,
}

impl Audit {
    pub fn attempts(&self) -> impl Iterator<Item = &AttemptRecord> {
        self.histories.iter().flat_map(|h| h.attempts.iter())
    }

    pub fn attempts_with_cause<'a>(&'a self, cause: &'a str) -> Vec<&'a AttemptRecord> {
        self.attempts().filter(|a| a.cause == cause).collect()
    }
}

/// What the audit needs to know about the campaign.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub max_tries: u32,
    /// `wait_between_retries_sec`, when the calendar is always open (due instants are then exact).
    pub wait: Option<Duration>,
    /// How much earlier than its due instant a next attempt may start. Each store request carries the `now` its
    /// node read just before sending it, so an operation that promoted the member with a later `now` can run
    /// first, and a claim in flight then takes the member up to one round trip "early" on its own clock (seen:
    /// ~1.5 ms of real time with two nodes). Production clocks of different nodes differ by more than that.
    pub skew: Duration,
}

/// Reads every member and attempt of `campaign` and checks the accounting; panics naming the member and rule.
pub async fn audit(store: &Store, campaign: &str, expected_members: usize, rules: Rules) -> Audit {
    let mut members = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(
                campaign,
                &ListQuery {
                    after,
                    limit: 500,
                    ..ListQuery::default()
                },
            )
            .await
            .expect("list members");
        members.extend(page.members);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(
        members.len(),
        expected_members,
        "the store holds {} members, {} were added",
        members.len(),
        expected_members
    );
    let counts = store.counts(campaign).await.expect("counters");
    assert_eq!(
        (counts.waiting, counts.active, counts.ended),
        (0, 0, expected_members as u64),
        "every member must have ended exactly once (waiting, active, ended); counters {counts:?}"
    );

    let mut histories = Vec::new();
    let mut ids = HashSet::new();
    for member in members {
        let attempts = store
            .attempts(campaign, member.id)
            .await
            .expect("attempt log");
        for a in &attempts {
            assert!(
                ids.insert(a.attempt_id),
                "attempt {} appears twice (member {})",
                a.attempt_id,
                member.id
            );
        }
        let h = History { member, attempts };
        check_member(&h, rules);
        histories.push(h);
    }

    // Counters are the sums over the logs.
    let all: Vec<&AttemptRecord> = histories.iter().flat_map(|h| h.attempts.iter()).collect();
    let by = |c: CauseClass| all.iter().filter(|a| a.class == c).count() as u64;
    let mut ended_by_cause = BTreeMap::new();
    for h in &histories {
        *ended_by_cause
            .entry(h.member.end_cause.clone().unwrap_or_default())
            .or_insert(0u64) += 1;
    }
    let expected = Counters {
        waiting: 0,
        in_retry: 0,
        active: 0,
        ended: histories.len() as u64,
        ended_by_cause,
        calls: all.len() as u64,
        answered: all.iter().filter(|a| a.answer_at.is_some()).count() as u64,
        success: histories.iter().filter(|h| h.member.success).count() as u64,
        ok: by(CauseClass::Ok),
        retry: by(CauseClass::Retry),
        error: by(CauseClass::Error),
        minus: by(CauseClass::Minus),
        // Every lost attempt counts in `lost`, however it was found.
        lost: all
            .iter()
            .filter(|a| a.cause == fsdialer::store::LOST_ATTEMPT_CAUSE)
            .count() as u64,
    };
    assert_eq!(
        counts, expected,
        "campaign counters differ from the sums over the attempt logs"
    );
    // The hangup-cause histogram is counted by the completions themselves: it equals a recount of the logs,
    // lost attempts (LOST_ATTEMPT) included, whatever crashed when.
    let mut causes = BTreeMap::new();
    for a in &all {
        *causes.entry(a.cause.clone()).or_insert(0u64) += 1;
    }
    assert_eq!(
        store.cause_counts(campaign).await.expect("cause histogram"),
        causes,
        "the cause histogram differs from a recount of the attempt logs"
    );
    Audit { histories, counts }
}

fn check_member(h: &History, rules: Rules) {
    let m = &h.member;
    let ctx = format!(
        "member {} ({:?}): {:?}; attempts {:#?}",
        m.id,
        m.external_id,
        m,
        h.outline()
    );
    assert_eq!(m.state, MemberState::Ended, "not ended: {ctx}");
    let end_cause = m
        .end_cause
        .clone()
        .unwrap_or_else(|| panic!("no end cause: {ctx}"));
    assert_eq!(
        h.attempts.len(),
        m.attempts as usize,
        "attempt log length differs from the member's attempt count: {ctx}"
    );
    for (i, a) in h.attempts.iter().enumerate() {
        assert_eq!(a.attempt_no as usize, i + 1, "attempt numbers: {ctx}");
        assert_eq!(a.member_id, m.id, "attempt of another member: {ctx}");
        assert!(
            a.completed_at >= a.originate_at,
            "attempt {} completed before it started: {ctx}",
            a.attempt_no
        );
        assert_eq!(
            m.communications
                .get(a.comm_index)
                .map(|c| c.number.as_str()),
            Some(a.number.as_str()),
            "attempt {} names a number the member does not have at that index: {ctx}",
            a.attempt_no
        );
        let last = i + 1 == h.attempts.len();
        match &a.fate {
            MemberFate::Due(due) => {
                if let Some(next) = h.attempts.get(i + 1) {
                    let skew = chrono::Duration::from_std(rules.skew).expect("skew");
                    assert!(
                        next.originate_at + skew >= *due,
                        "attempt {} started at {} before the member was due at {due}: {ctx}",
                        next.attempt_no,
                        next.originate_at
                    );
                }
                if let Some(wait) = rules.wait {
                    let expect = match a.class {
                        CauseClass::Error => a.completed_at,
                        _ => a.completed_at + chrono::Duration::from_std(wait).expect("wait"),
                    };
                    assert_eq!(
                        due.timestamp_millis(),
                        expect.timestamp_millis(),
                        "attempt {} ({:?}) rescheduled to the wrong instant: {ctx}",
                        a.attempt_no,
                        a.class
                    );
                }
                if last {
                    // Ended at a later claim, without an attempt.
                    assert!(
                        ["MEMBER_EXPIRED", "QUEUE_EXPIRE", "NO_COMMUNICATIONS"]
                            .contains(&end_cause.as_str()),
                        "the last attempt rescheduled the member, yet it ended with {end_cause}: {ctx}"
                    );
                }
            }
            MemberFate::Ended { cause, success } => {
                assert!(
                    last,
                    "attempt {} ended the member but more followed: {ctx}",
                    a.attempt_no
                );
                assert_eq!(cause, &end_cause, "end cause: {ctx}");
                assert_eq!(*success, m.success, "success flag: {ctx}");
            }
        }
        if a.class == CauseClass::Ok {
            assert!(
                last && m.success,
                "an ok attempt must end the member with success: {ctx}"
            );
            assert_eq!(
                a.cause, end_cause,
                "success ends with the hangup cause: {ctx}"
            );
        }
        if a.class == CauseClass::Error {
            assert!(
                h.attempts[i + 1..]
                    .iter()
                    .all(|b| b.comm_index != a.comm_index),
                "number {} got an error result and was dialled again: {ctx}",
                a.comm_index
            );
            assert_eq!(
                m.communications[a.comm_index].state,
                CommState::Done,
                "a number with an error result must be done: {ctx}"
            );
        }
    }
    if h.attempts.is_empty() {
        assert!(
            ["MEMBER_EXPIRED", "QUEUE_EXPIRE", "NO_COMMUNICATIONS"].contains(&end_cause.as_str()),
            "ended with {end_cause} without a single attempt: {ctx}"
        );
    }
    let counted = |a: &&AttemptRecord| matches!(a.class, CauseClass::Retry | CauseClass::Error);
    let tries = h.attempts.iter().filter(counted).count() as u32;
    assert_eq!(
        m.tries, tries,
        "counted tries = retry + error attempts: {ctx}"
    );
    assert!(
        tries <= rules.max_tries,
        "more counted tries than max_tries: {ctx}"
    );
    if end_cause == MAX_TRY_COUNT {
        assert_eq!(
            tries, rules.max_tries,
            "MAX_TRY_COUNT before max_tries: {ctx}"
        );
    }
    for (k, c) in m.communications.iter().enumerate() {
        let on_k = h
            .attempts
            .iter()
            .filter(counted)
            .filter(|a| a.comm_index == k)
            .count() as u32;
        assert_eq!(c.attempts, on_k, "number {k}'s counted attempts: {ctx}");
    }
    assert_eq!(
        m.success,
        h.attempts.last().is_some_and(|a| a.class == CauseClass::Ok),
        "success iff the last attempt is ok: {ctx}"
    );
}
