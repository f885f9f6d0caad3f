//! The store contract: every scenario runs against the memory backend, a real redis-server, a local Redis Cluster
//! and a local Sentinel set-up.

mod store_support;

use chrono::Duration as CDuration;
use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::params::{LostAttempt, MemberOrder, NumberOrder};
use fsdialer::campaign::schedule::Always;
use fsdialer::store::*;
use std::time::Duration;
use store_support::*;

const C: &str = "camp1";
const NODE: &str = "node-a";
const LEASE: Duration = Duration::from_secs(60);

fn policy() -> QueuePolicy {
    QueuePolicy {
        limit: 100,
        ..QueuePolicy::default()
    }
}

async fn add1(s: &Store, m: fsdialer::campaign::member::MemberInput) -> MemberId {
    s.add(C, &[m], t(9, 0)).await.unwrap()[0].id()
}

async fn claim(
    s: &Store,
    p: &QueuePolicy,
    now: chrono::DateTime<chrono::Utc>,
    n: usize,
) -> ClaimBatch {
    s.claim(C, p, &Always, now, n, NODE, LEASE).await.unwrap()
}

/// The outcome of a successful call (NORMAL_CLEARING, class OK): the member ends with success.
fn cleared() -> CompleteOutcome {
    CompleteOutcome::Applied(MemberFate::Ended {
        cause: "NORMAL_CLEARING".into(),
        success: true,
    })
}

fn result(c: &Claim, cause: &str, class: CauseClass) -> AttemptResult {
    AttemptResult {
        attempt_id: c.attempt_id,
        member_id: c.member_id,
        cause: cause.to_string(),
        class,
        answered_at: None,
        hangup_at: None,
        talk_secs: 0,
        note: None,
    }
}

async fn complete(
    s: &Store,
    p: &QueuePolicy,
    c: &Claim,
    cause: &str,
    class: CauseClass,
    now: chrono::DateTime<chrono::Utc>,
) -> CompleteOutcome {
    s.complete(C, p, &Always, &result(c, cause, class), now)
        .await
        .unwrap()
}

async fn added_member_is_waiting_with_its_data(s: &Store) {
    let mut m = member("Ann", &["+380441234567", "+380501234567"]);
    m.priority = 7;
    m.timezone = Some("Europe/Kyiv".into());
    m.variables.insert("city".into(), "Kyiv".into());
    m.communications[1].description = Some("mobile".into());
    let id = add1(s, m).await;
    assert_eq!(id, MemberId(1));
    let got = s.get(C, id).await.unwrap().expect("member stored");
    assert_eq!(got.name, "Ann");
    assert_eq!(got.priority, 7);
    assert_eq!(got.timezone.as_deref(), Some("Europe/Kyiv"));
    assert_eq!(got.variables["city"], "Kyiv");
    assert_eq!(got.state, MemberState::Waiting);
    assert_eq!(got.next_due, Some(t(9, 0)));
    assert_eq!(got.communications.len(), 2);
    assert_eq!(got.communications[1].description.as_deref(), Some("mobile"));
    assert_eq!(got.communications[0].state, CommState::Idle);
    assert_eq!(s.counts(C).await.unwrap().waiting, 1);
    assert_eq!(s.get(C, MemberId(99)).await.unwrap(), None);
    assert_eq!(s.campaigns().await.unwrap(), vec![C.to_string()]);
}

async fn claim_returns_everything_needed_to_originate(s: &Store) {
    let mut m = member("Bob", &["100", "200"]);
    m.communications[1].priority = 5;
    m.variables.insert("lang".into(), "uk".into());
    m.timezone = Some("Europe/Berlin".into());
    let id = add1(s, m).await;
    let b = claim(s, &policy(), t(10, 0), 5).await;
    assert_eq!(b.claims.len(), 1);
    let c = &b.claims[0];
    assert_eq!(c.member_id, id);
    assert_eq!(c.attempt_no, 1);
    assert_eq!(c.comm_index, 1, "the higher-priority number");
    assert_eq!(c.number, "200");
    assert_eq!(c.name, "Bob");
    assert_eq!(c.timezone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(c.variables["lang"], "uk");
    assert_eq!(c.attempt_id.get_version_num(), 4);
    assert_eq!(c.lease_until, t(10, 1));
    let got = s.get(C, id).await.unwrap().unwrap();
    assert_eq!(got.state, MemberState::Active);
    assert_eq!(got.current_attempt, Some(c.attempt_id));
    assert_eq!(got.communications[1].state, CommState::Active);
    let cnt = s.counts(C).await.unwrap();
    assert_eq!((cnt.waiting, cnt.active), (0, 1));
    // Nothing else to claim.
    assert!(claim(s, &policy(), t(10, 0), 5).await.claims.is_empty());
}

async fn claims_never_exceed_the_campaign_limit_and_complete_frees_a_slot(s: &Store) {
    for i in 0..5 {
        add1(s, member(&format!("m{i}"), &["1"])).await;
    }
    let p = QueuePolicy {
        limit: 2,
        ..policy()
    };
    let b = claim(s, &p, t(10, 0), 10).await;
    assert_eq!(b.claims.len(), 2);
    assert_eq!(s.slots_in_use(C, t(10, 0)).await.unwrap(), 2);
    assert!(claim(s, &p, t(10, 0), 10).await.claims.is_empty());
    let soon = t(10, 0) + CDuration::seconds(30);
    complete(s, &p, &b.claims[0], "NORMAL_CLEARING", CauseClass::Ok, soon).await;
    assert_eq!(s.slots_in_use(C, soon).await.unwrap(), 1);
    assert_eq!(claim(s, &p, soon, 10).await.claims.len(), 1);
}

async fn priority_first_claims_higher_priority_then_insertion_order(s: &Store) {
    let mut ids = Vec::new();
    for (name, prio) in [("a", 0), ("b", 5), ("c", 0), ("d", 5)] {
        let mut m = member(name, &["1"]);
        m.priority = prio;
        ids.push(add1(s, m).await);
    }
    let b = claim(s, &policy(), t(10, 0), 10).await;
    let order: Vec<&str> = b.claims.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order, ["b", "d", "a", "c"]);
}

async fn retries_first_claims_retried_members_before_fresh_ones(s: &Store) {
    let p = QueuePolicy {
        member_order: MemberOrder::RetriesFirst,
        wait_between_retries_sec: 0,
        ..policy()
    };
    let a = add1(s, member("a", &["1"])).await;
    let first = claim(s, &p, t(10, 0), 1).await.claims.remove(0);
    assert_eq!(first.member_id, a);
    let mut fresh = member("fresh", &["2"]);
    fresh.priority = 100;
    add1(s, fresh).await;
    complete(s, &p, &first, "USER_BUSY", CauseClass::Retry, t(10, 1)).await;
    let b = claim(s, &p, t(10, 2), 10).await;
    let order: Vec<&str> = b.claims.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        order,
        ["a", "fresh"],
        "the retried member first despite priority"
    );
}

async fn strict_circuit_gives_nobody_a_second_try_before_everyone_had_one(s: &Store) {
    let p = QueuePolicy {
        member_order: MemberOrder::StrictCircuit,
        wait_between_retries_sec: 0,
        ..policy()
    };
    let mut hi = member("hi", &["1"]);
    hi.priority = 9;
    add1(s, hi).await;
    let c = claim(s, &p, t(10, 0), 1).await.claims.remove(0);
    assert_eq!(c.name, "hi");
    add1(s, member("lo", &["2"])).await;
    complete(s, &p, &c, "NO_ANSWER", CauseClass::Retry, t(10, 1)).await;
    let b = claim(s, &p, t(10, 2), 10).await;
    let order: Vec<&str> = b.claims.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order, ["lo", "hi"]);
}

async fn ok_result_ends_member_with_success_and_the_hangup_cause(s: &Store) {
    let id = add1(s, member("a", &["1"])).await;
    let c = claim(s, &policy(), t(10, 0), 1).await.claims.remove(0);
    let mut r = result(&c, "NORMAL_CLEARING", CauseClass::Ok);
    r.answered_at = Some(t(10, 0) + CDuration::seconds(5));
    r.hangup_at = Some(t(10, 1));
    r.talk_secs = 55;
    let out = s
        .complete(C, &policy(), &Always, &r, t(10, 1))
        .await
        .unwrap();
    assert_eq!(out, cleared());
    let m = s.get(C, id).await.unwrap().unwrap();
    assert_eq!(m.state, MemberState::Ended);
    assert!(m.success);
    assert_eq!(m.end_cause.as_deref(), Some("NORMAL_CLEARING"));
    let cnt = s.counts(C).await.unwrap();
    assert_eq!(
        (
            cnt.ended,
            cnt.success,
            cnt.calls,
            cnt.answered,
            cnt.ok,
            cnt.active
        ),
        (1, 1, 1, 1, 1, 0)
    );
    assert_eq!(cnt.ended_by_cause.get("NORMAL_CLEARING"), Some(&1));
    let log = s.attempts(C, id).await.unwrap();
    assert_eq!(log.len(), 1);
    let a = &log[0];
    assert_eq!(a.attempt_id, c.attempt_id);
    assert_eq!(
        (
            a.attempt_no,
            a.comm_index,
            a.number.as_str(),
            a.node.as_str()
        ),
        (1, 0, "1", NODE)
    );
    assert_eq!(a.originate_at, t(10, 0));
    assert_eq!(a.answer_at, r.answered_at);
    assert_eq!(a.hangup_at, Some(t(10, 1)));
    assert_eq!(
        (a.talk_secs, a.cause.as_str(), a.class),
        (55, "NORMAL_CLEARING", CauseClass::Ok)
    );
    assert_eq!(a.completed_at, t(10, 1));
}

async fn completing_an_attempt_twice_changes_nothing_and_says_so(s: &Store) {
    let id = add1(s, member("a", &["1"])).await;
    let p = QueuePolicy {
        wait_between_retries_sec: 0,
        ..policy()
    };
    let c = claim(s, &p, t(10, 0), 1).await.claims.remove(0);
    assert!(matches!(
        complete(s, &p, &c, "USER_BUSY", CauseClass::Retry, t(10, 1)).await,
        CompleteOutcome::Applied(_)
    ));
    let before = (s.get(C, id).await.unwrap(), s.counts(C).await.unwrap());
    assert_eq!(
        complete(s, &p, &c, "USER_BUSY", CauseClass::Retry, t(10, 2)).await,
        CompleteOutcome::Duplicate
    );
    assert_eq!(
        complete(s, &p, &c, "NORMAL_CLEARING", CauseClass::Ok, t(10, 2)).await,
        CompleteOutcome::Duplicate
    );
    assert_eq!(
        before,
        (s.get(C, id).await.unwrap(), s.counts(C).await.unwrap())
    );
    // An attempt that never was the member's.
    let mut stranger = c.clone();
    stranger.attempt_id = uuid::Uuid::new_v4();
    assert_eq!(
        complete(s, &p, &stranger, "USER_BUSY", CauseClass::Retry, t(10, 2)).await,
        CompleteOutcome::NotCurrent
    );
    // The second attempt is current; the first stays a duplicate.
    let c2 = claim(s, &p, t(10, 3), 1).await.claims.remove(0);
    assert_eq!(c2.attempt_no, 2);
    assert_eq!(
        complete(s, &p, &c, "USER_BUSY", CauseClass::Retry, t(10, 4)).await,
        CompleteOutcome::Duplicate
    );
    assert_eq!(
        s.get(C, id).await.unwrap().unwrap().current_attempt,
        Some(c2.attempt_id)
    );
    let mut gone = c.clone();
    gone.member_id = MemberId(77);
    assert_eq!(
        complete(s, &p, &gone, "USER_BUSY", CauseClass::Retry, t(10, 4)).await,
        CompleteOutcome::NotCurrent
    );
}

async fn complete_many_applies_results_in_order_exactly_once(s: &Store) {
    let a = add1(s, member("a", &["1"])).await;
    add1(s, member("b", &["2"])).await;
    let p = policy();
    let b = claim(s, &p, t(10, 0), 2).await;
    let ok = result(&b.claims[0], "NORMAL_CLEARING", CauseClass::Ok);
    let busy = result(&b.claims[1], "USER_BUSY", CauseClass::Retry);
    let mut stranger = busy.clone();
    stranger.attempt_id = uuid::Uuid::new_v4();
    let out = s
        .complete_many(C, &p, &Always, &[ok.clone(), busy, ok, stranger], t(10, 1))
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            cleared(),
            CompleteOutcome::Applied(MemberFate::Due(t(10, 2))),
            CompleteOutcome::Duplicate,
            CompleteOutcome::NotCurrent,
        ]
    );
    assert_eq!(
        s.get(C, a).await.unwrap().unwrap().state,
        MemberState::Ended
    );
    let cnt = s.counts(C).await.unwrap();
    assert_eq!((cnt.calls, cnt.active, cnt.waiting), (2, 0, 1));
    assert_eq!(s.slots_in_use(C, t(10, 1)).await.unwrap(), 0);
    assert!(
        s.complete_many(C, &p, &Always, &[], t(10, 1))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn retry_waits_between_tries_and_ends_with_max_try_count(s: &Store) {
    let id = add1(s, member("a", &["1"])).await;
    let p = QueuePolicy {
        max_tries: 2,
        wait_between_retries_sec: 60,
        ..policy()
    };
    let c = claim(s, &p, t(10, 0), 1).await.claims.remove(0);
    assert_eq!(
        complete(s, &p, &c, "USER_BUSY", CauseClass::Retry, t(10, 1)).await,
        CompleteOutcome::Applied(MemberFate::Due(t(10, 2)))
    );
    assert!(
        claim(s, &p, t(10, 1), 1).await.claims.is_empty(),
        "not before the wait"
    );
    let m = s.get(C, id).await.unwrap().unwrap();
    assert_eq!((m.tries, m.next_due), (1, Some(t(10, 2))));
    let c = claim(s, &p, t(10, 2), 1).await.claims.remove(0);
    assert_eq!(
        complete(s, &p, &c, "NO_ANSWER", CauseClass::Retry, t(10, 3)).await,
        CompleteOutcome::Applied(MemberFate::Ended {
            cause: "MAX_TRY_COUNT".into(),
            success: false
        })
    );
    let cnt = s.counts(C).await.unwrap();
    assert_eq!(
        (cnt.retry, cnt.ended_by_cause.get("MAX_TRY_COUNT").copied()),
        (2, Some(1))
    );
}

async fn error_marks_the_number_done_and_the_next_number_is_due_at_once(s: &Store) {
    let id = add1(s, member("a", &["bad", "good"])).await;
    let p = policy();
    let c = claim(s, &p, t(10, 0), 1).await.claims.remove(0);
    assert_eq!(c.number, "bad");
    assert_eq!(
        complete(s, &p, &c, "UNALLOCATED_NUMBER", CauseClass::Error, t(10, 1)).await,
        CompleteOutcome::Applied(MemberFate::Due(t(10, 1)))
    );
    let m = s.get(C, id).await.unwrap().unwrap();
    assert_eq!(m.communications[0].state, CommState::Done);
    assert_eq!(
        m.communications[0].last_cause.as_deref(),
        Some("UNALLOCATED_NUMBER")
    );
    let c = claim(s, &p, t(10, 1), 1).await.claims.remove(0);
    assert_eq!(c.number, "good");
    assert_eq!(
        complete(
            s,
            &p,
            &c,
            "INVALID_NUMBER_FORMAT",
            CauseClass::Error,
            t(10, 2)
        )
        .await,
        CompleteOutcome::Applied(MemberFate::Ended {
            cause: "INVALID_NUMBER_FORMAT".into(),
            success: false
        })
    );
}

async fn minus_does_not_count_a_try(s: &Store) {
    let id = add1(s, member("a", &["1"])).await;
    let p = QueuePolicy {
        max_tries: 1,
        wait_between_retries_sec: 30,
        ..policy()
    };
    let mut now = t(10, 0);
    for _ in 0..3 {
        let c = claim(s, &p, now, 1).await.claims.remove(0);
        let out = complete(
            s,
            &p,
            &c,
            "NORMAL_TEMPORARY_FAILURE",
            CauseClass::Minus,
            now,
        )
        .await;
        now += CDuration::seconds(30);
        assert_eq!(out, CompleteOutcome::Applied(MemberFate::Due(now)));
    }
    let m = s.get(C, id).await.unwrap().unwrap();
    assert_eq!((m.tries, m.attempts, m.state), (0, 3, MemberState::Waiting));
    assert_eq!(s.counts(C).await.unwrap().minus, 3);
}

async fn tries_per_number_counts_max_tries_on_each_number(s: &Store) {
    let p = QueuePolicy {
        max_tries: 2,
        tries_per_number: true,
        wait_between_retries_sec: 0,
        ..policy()
    };
    let id = add1(s, member("a", &["1", "2"])).await;
    let mut numbers = Vec::new();
    let mut last = None;
    for i in 0..4 {
        let c = claim(s, &p, t(10, i), 1).await.claims.remove(0);
        numbers.push(c.number.clone());
        last = Some(complete(s, &p, &c, "NO_ANSWER", CauseClass::Retry, t(10, i)).await);
    }
    assert_eq!(numbers.len(), 4, "four tries: two per number");
    assert_eq!(numbers.iter().filter(|n| *n == "1").count(), 2);
    assert_eq!(
        last.unwrap(),
        CompleteOutcome::Applied(MemberFate::Ended {
            cause: "MAX_TRY_COUNT".into(),
            success: false
        })
    );
    assert_eq!(s.get(C, id).await.unwrap().unwrap().tries, 4);
}

async fn top_down_rotates_through_the_numbers(s: &Store) {
    let p = QueuePolicy {
        number_order: NumberOrder::TopDown,
        wait_between_retries_sec: 0,
        max_tries: 10,
        ..policy()
    };
    let mut m = member("a", &["1", "2", "3"]);
    m.communications[2].priority = 99;
    add1(s, m).await;
    let mut seen = Vec::new();
    for i in 0..4 {
        let c = claim(s, &p, t(10, i), 1).await.claims.remove(0);
        seen.push(c.number.clone());
        complete(s, &p, &c, "NO_ANSWER", CauseClass::Retry, t(10, i)).await;
    }
    assert_eq!(seen, ["1", "2", "3", "1"]);
}

async fn expired_member_ends_member_expired_instead_of_being_claimed(s: &Store) {
    let mut m = member("old", &["1"]);
    m.expire = Some(t(9, 30));
    let old = add1(s, m).await;
    add1(s, member("new", &["2"])).await;
    let b = claim(s, &policy(), t(10, 0), 5).await;
    assert_eq!(b.claims.len(), 1);
    assert_eq!(b.claims[0].name, "new");
    assert_eq!(b.ended, vec![(old, "MEMBER_EXPIRED".to_string())]);
    let m = s.get(C, old).await.unwrap().unwrap();
    assert_eq!(m.end_cause.as_deref(), Some("MEMBER_EXPIRED"));
}

async fn member_is_claimed_only_inside_its_own_local_window(s: &Store) {
    // 09:00-18:00 local. At 2024-03-04 10:00 UTC: Kyiv (UTC+2) is 12:00 (open), New York (UTC-5) is 05:00.
    let cal = Hours::new("Europe/Kyiv", 9, 18);
    let mut ny = member("ny", &["1"]);
    ny.timezone = Some("America/New_York".into());
    let ny = add1(s, ny).await;
    let kyiv = add1(s, member("kyiv", &["2"])).await;
    let p = policy();
    let b = s
        .claim(C, &p, &cal, t(10, 0), 5, NODE, LEASE)
        .await
        .unwrap();
    assert_eq!(
        b.claims.iter().map(|c| c.member_id).collect::<Vec<_>>(),
        vec![kyiv]
    );
    let m = s.get(C, ny).await.unwrap().unwrap();
    assert_eq!(m.next_due, Some(t(14, 0)), "moved to 09:00 New York");
    assert!(
        s.claim(C, &p, &cal, t(13, 59), 5, NODE, LEASE)
            .await
            .unwrap()
            .claims
            .is_empty()
    );
    let b = s
        .claim(C, &p, &cal, t(14, 0), 5, NODE, LEASE)
        .await
        .unwrap();
    assert_eq!(
        b.claims.iter().map(|c| c.member_id).collect::<Vec<_>>(),
        vec![ny]
    );
}

async fn member_expiring_before_its_window_opens_ends_at_once(s: &Store) {
    let cal = Hours::new("Europe/Kyiv", 9, 18);
    let mut ny = member("ny", &["1"]);
    ny.timezone = Some("America/New_York".into());
    ny.expire = Some(t(12, 0));
    let id = add1(s, ny).await;
    let b = s
        .claim(C, &policy(), &cal, t(10, 0), 5, NODE, LEASE)
        .await
        .unwrap();
    assert_eq!(
        b.ended,
        vec![(id, "MEMBER_EXPIRED".to_string())],
        "New York opens at 14:00 UTC, after it expires"
    );
}

async fn retry_is_rescheduled_into_the_next_window(s: &Store) {
    // Kyiv window 09:00-18:00 local = 07:00-16:00 UTC in March (UTC+2).
    let cal = Hours::new("Europe/Kyiv", 9, 18);
    let id = add1(s, member("a", &["1"])).await;
    let p = QueuePolicy {
        wait_between_retries_sec: 3600,
        ..policy()
    };
    let c = s
        .claim(C, &p, &cal, t(15, 30), 1, NODE, LEASE)
        .await
        .unwrap()
        .claims
        .remove(0);
    let out = s
        .complete(
            C,
            &p,
            &cal,
            &result(&c, "USER_BUSY", CauseClass::Retry),
            t(15, 30),
        )
        .await
        .unwrap();
    let next_morning = day(5, 7);
    assert_eq!(out, CompleteOutcome::Applied(MemberFate::Due(next_morning)));
    assert_eq!(
        s.get(C, id).await.unwrap().unwrap().next_due,
        Some(next_morning)
    );
}

async fn member_ends_queue_expire_when_the_calendar_is_over(s: &Store) {
    let mut cal = Hours::new("Europe/Kyiv", 9, 18);
    cal.end = Some(t(12, 0));
    let id = add1(s, member("a", &["1"])).await;
    let b = s
        .claim(C, &policy(), &cal, t(17, 0), 5, NODE, LEASE)
        .await
        .unwrap();
    assert!(b.claims.is_empty());
    assert_eq!(b.ended, vec![(id, "QUEUE_EXPIRE".to_string())]);
}

async fn release_undoes_a_claim_without_counting(s: &Store) {
    let id = add1(s, member("a", &["1"])).await;
    add1(s, member("b", &["2"])).await;
    let p = policy();
    let c = claim(s, &p, t(10, 0), 1).await.claims.remove(0);
    assert_eq!(c.member_id, id);
    let before = s.counts(C).await.unwrap();
    assert_eq!(
        s.release(C, id, c.attempt_id, None, t(10, 0))
            .await
            .unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(
        s.release(C, id, c.attempt_id, None, t(10, 0))
            .await
            .unwrap(),
        ReleaseOutcome::NotCurrent
    );
    let m = s.get(C, id).await.unwrap().unwrap();
    assert_eq!((m.state, m.attempts, m.tries), (MemberState::Waiting, 0, 0));
    let after = s.counts(C).await.unwrap();
    assert_eq!(
        (after.waiting, after.active, after.calls),
        (before.waiting + 1, 0, 0)
    );
    // It keeps its place: claimed first again, with the same attempt number.
    let again = claim(s, &p, t(10, 0), 1).await.claims.remove(0);
    assert_eq!((again.member_id, again.attempt_no), (id, 1));
    // Released with a delay, it waits.
    s.release(C, id, again.attempt_id, Some(t(10, 5)), t(10, 0))
        .await
        .unwrap();
    let next = claim(s, &p, t(10, 1), 1).await.claims.remove(0);
    assert_ne!(next.member_id, id);
    assert_eq!(
        s.get(C, id).await.unwrap().unwrap().next_due,
        Some(t(10, 5))
    );
}

async fn update_and_delete_are_refused_while_in_a_call(s: &Store) {
    let id = add1(s, member("a", &["1", "2"])).await;
    let c = claim(s, &policy(), t(10, 0), 1).await.claims.remove(0);
    let changed = member("a2", &["3"]);
    assert_eq!(
        s.update(C, id, &changed, t(10, 0)).await.unwrap(),
        ChangeOutcome::InCall
    );
    assert_eq!(s.delete(C, id).await.unwrap(), ChangeOutcome::InCall);
    complete(s, &policy(), &c, "USER_BUSY", CauseClass::Retry, t(10, 1)).await;
    assert_eq!(
        s.update(C, id, &changed, t(10, 1)).await.unwrap(),
        ChangeOutcome::Done
    );
    let m = s.get(C, id).await.unwrap().unwrap();
    assert_eq!(m.name, "a2");
    assert_eq!(m.communications.len(), 1);
    assert_eq!(m.communications[0].attempts, 0, "new numbers start fresh");
    assert_eq!(m.tries, 1);
    assert_eq!(s.delete(C, id).await.unwrap(), ChangeOutcome::Done);
    assert_eq!(s.get(C, id).await.unwrap(), None);
    assert_eq!(s.delete(C, id).await.unwrap(), ChangeOutcome::NotFound);
    assert_eq!(
        s.update(C, id, &changed, t(10, 1)).await.unwrap(),
        ChangeOutcome::NotFound
    );
    assert_eq!(s.counts(C).await.unwrap().waiting, 0);
}

async fn update_keeps_number_state_when_numbers_are_unchanged_and_reorders(s: &Store) {
    let a = add1(s, member("a", &["1"])).await;
    let b = add1(s, member("b", &["2"])).await;
    let p = QueuePolicy {
        max_tries: 9,
        wait_between_retries_sec: 0,
        ..policy()
    };
    let c = claim(s, &p, t(10, 0), 1).await.claims.remove(0);
    complete(s, &p, &c, "USER_BUSY", CauseClass::Retry, t(10, 0)).await;
    let mut up = member("b!", &["2"]);
    up.priority = 50;
    assert_eq!(
        s.update(C, b, &up, t(10, 0)).await.unwrap(),
        ChangeOutcome::Done
    );
    let c = claim(s, &p, t(10, 1), 1).await.claims.remove(0);
    assert_eq!(c.member_id, b, "the raised priority applies at once");
    let mut up = member("a!", &["1"]);
    up.communications[0].priority = 3;
    assert_eq!(
        s.update(C, a, &up, t(10, 1)).await.unwrap(),
        ChangeOutcome::Done
    );
    let m = s.get(C, a).await.unwrap().unwrap();
    assert_eq!(
        (m.communications[0].attempts, m.communications[0].priority),
        (1, 3)
    );
}

async fn external_id_upserts_instead_of_duplicating(s: &Store) {
    let mut m = member("a", &["1"]);
    m.external_id = Some("crm-1".into());
    let out = s.add(C, &[m.clone()], t(9, 0)).await.unwrap();
    assert_eq!(out, vec![AddOutcome::Added(MemberId(1))]);
    m.name = "a (renamed)".into();
    let mut other = member("b", &["2"]);
    other.external_id = Some("crm-2".into());
    let out = s
        .add(C, &[m.clone(), other.clone()], t(9, 0))
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            AddOutcome::Updated(MemberId(1)),
            AddOutcome::Added(MemberId(2))
        ]
    );
    assert_eq!(
        s.get(C, MemberId(1)).await.unwrap().unwrap().name,
        "a (renamed)"
    );
    assert_eq!(s.counts(C).await.unwrap().waiting, 2);
    claim(s, &policy(), t(10, 0), 1).await;
    assert_eq!(
        s.add(C, &[m.clone()], t(10, 0)).await.unwrap(),
        vec![AddOutcome::InCall(MemberId(1))]
    );
    // An update may not steal another member's external id.
    let err = s.update(C, MemberId(2), &m, t(10, 0)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ExternalIdTaken { owner: 1, .. }),
        "{err}"
    );
}

/// An agent's follow-up (the result callback's `next_communication` and `reset_retries`) is kept with the attempt
/// and applied by its completion, whichever node completes it: the member is due at the instant asked for, and its
/// tries count from zero again, so the result that would have used up its last try does not end it.
async fn an_agents_follow_up_reschedules_at_its_instant_and_resets_the_tries(s: &Store) {
    let p = QueuePolicy {
        max_tries: 2,
        wait_between_retries_sec: 0,
        ..policy()
    };
    let id = add1(s, member("a", &["1"])).await;
    let first = claim(s, &p, t(10, 0), 1).await.claims.remove(0);
    complete(s, &p, &first, "NO_ANSWER", CauseClass::Retry, t(10, 1)).await;
    let second = claim(s, &p, t(10, 2), 1).await.claims.remove(0);
    let callback = t(15, 30);
    let follow = FollowUp {
        next_at: Some(callback),
        reset_tries: true,
    };
    assert_eq!(
        s.follow_up(C, id, second.attempt_id, &follow)
            .await
            .unwrap(),
        FollowUpOutcome::Set
    );
    // The second retry would end the member (max_tries 2); with the tries reset it is due at the callback.
    assert_eq!(
        complete(s, &p, &second, "NO_ANSWER", CauseClass::Retry, t(10, 3)).await,
        CompleteOutcome::Applied(MemberFate::Due(callback))
    );
    let m = s.get(C, id).await.unwrap().unwrap();
    assert_eq!(
        (m.state, m.tries, m.next_due),
        (MemberState::Waiting, 1, Some(callback))
    );
    assert!(
        claim(s, &p, t(15, 29), 1).await.claims.is_empty(),
        "called before the callback"
    );
    let third = claim(s, &p, callback, 1).await.claims.remove(0);
    // Kept only for the attempt it was given with: a stale one is refused, and the next result counts as usual.
    assert_eq!(
        s.follow_up(C, id, second.attempt_id, &follow)
            .await
            .unwrap(),
        FollowUpOutcome::NotCurrent
    );
    assert_eq!(
        complete(s, &p, &third, "NO_ANSWER", CauseClass::Retry, t(15, 31)).await,
        CompleteOutcome::Applied(MemberFate::Ended {
            cause: "MAX_TRY_COUNT".into(),
            success: false
        })
    );
}

async fn renewal_drops_a_terminated_call_and_ends_its_member_with_manager_request(s: &Store) {
    let a = add1(s, member("a", &["1"])).await;
    let b = add1(s, member("b", &["2"])).await;
    let batch = claim(s, &policy(), t(10, 0), 2).await;
    let (ca, cb) = (&batch.claims[0], &batch.claims[1]);
    assert!(matches!(
        s.terminate(C, a).await.unwrap(),
        TerminateOutcome::KillCall { .. }
    ));
    let drop = s
        .renew(
            C,
            NODE,
            &[ca.attempt_id, cb.attempt_id],
            t(10, 0) + CDuration::seconds(30),
            LEASE,
        )
        .await
        .unwrap();
    assert_eq!(drop, vec![ca.attempt_id]);
    let m = s.get(C, a).await.unwrap().unwrap();
    assert_eq!(m.state, MemberState::Ended);
    assert_eq!(m.end_cause.as_deref(), Some("MANAGER_REQUEST"));
    let log = s.attempts(C, a).await.unwrap();
    assert_eq!(log[0].cause, "MANAGER_REQUEST");
    assert_eq!(log[0].class, CauseClass::Minus);
    assert_eq!(
        s.get(C, b).await.unwrap().unwrap().state,
        MemberState::Active
    );
    let c = s.counts(C).await.unwrap();
    assert_eq!((c.active, c.ended, c.minus), (1, 1, 1));
    assert_eq!(
        s.slots_in_use(C, t(10, 0) + CDuration::seconds(40))
            .await
            .unwrap(),
        1
    );
    // The late hangup of the dropped call changes nothing.
    assert_ne!(
        complete(
            s,
            &policy(),
            ca,
            "NORMAL_CLEARING",
            CauseClass::Ok,
            t(10, 2)
        )
        .await,
        cleared()
    );
}

async fn terminate_ends_a_waiting_member_and_flags_a_call_to_kill(s: &Store) {
    let a = add1(s, member("a", &["1"])).await;
    let b = add1(s, member("b", &["2"])).await;
    let c = claim(s, &policy(), t(10, 0), 1).await.claims.remove(0);
    assert_eq!(c.member_id, a);
    assert_eq!(
        s.terminate(C, b).await.unwrap(),
        TerminateOutcome::Terminated
    );
    assert_eq!(
        s.terminate(C, b).await.unwrap(),
        TerminateOutcome::AlreadyEnded
    );
    assert_eq!(
        s.terminate(C, MemberId(9)).await.unwrap(),
        TerminateOutcome::NotFound
    );
    assert_eq!(
        s.terminate(C, a).await.unwrap(),
        TerminateOutcome::KillCall {
            attempt_id: c.attempt_id,
            node: NODE.into()
        }
    );
    assert!(s.get(C, a).await.unwrap().unwrap().terminate_pending);
    assert_eq!(
        complete(
            s,
            &policy(),
            &c,
            "ORIGINATOR_CANCEL",
            CauseClass::Retry,
            t(10, 1)
        )
        .await,
        CompleteOutcome::Applied(MemberFate::Ended {
            cause: "MANAGER_REQUEST".into(),
            success: false
        })
    );
    assert_eq!(
        s.counts(C)
            .await
            .unwrap()
            .ended_by_cause
            .get("MANAGER_REQUEST"),
        Some(&2)
    );
}

async fn reset_revives_ended_unsuccessful_members_only(s: &Store) {
    let p = QueuePolicy {
        max_tries: 1,
        ..policy()
    };
    let a = add1(s, member("a", &["1"])).await;
    let b = add1(s, member("b", &["2"])).await;
    let b2 = claim(s, &p, t(10, 0), 2).await.claims;
    complete(s, &p, &b2[0], "NORMAL_CLEARING", CauseClass::Ok, t(10, 1)).await;
    complete(s, &p, &b2[1], "USER_BUSY", CauseClass::Retry, t(10, 1)).await;
    assert_eq!(s.reset(C, t(11, 0)).await.unwrap(), 1);
    let mb = s.get(C, b).await.unwrap().unwrap();
    assert_eq!(
        (mb.state, mb.tries, mb.end_cause.clone(), mb.next_due),
        (MemberState::Waiting, 0, None, Some(t(11, 0)))
    );
    assert_eq!(mb.communications[0].attempts, 0);
    assert_eq!(
        s.get(C, a).await.unwrap().unwrap().state,
        MemberState::Ended
    );
    let cnt = s.counts(C).await.unwrap();
    assert_eq!((cnt.waiting, cnt.ended), (1, 1));
    assert_eq!(cnt.ended_by_cause.get("MAX_TRY_COUNT"), None);
    assert_eq!(claim(s, &p, t(11, 0), 5).await.claims[0].member_id, b);
}

async fn list_pages_through_members_with_filters(s: &Store) {
    let members: Vec<_> = (0..25).map(|i| member(&format!("m{i}"), &["1"])).collect();
    s.add(C, &members, t(9, 0)).await.unwrap();
    s.delete(C, MemberId(3)).await.unwrap();
    let mut seen = Vec::new();
    let mut q = ListQuery {
        limit: 10,
        ..ListQuery::default()
    };
    loop {
        let page = s.list(C, &q).await.unwrap();
        assert!(page.members.len() <= 10);
        seen.extend(page.members.iter().map(|m| m.id.0));
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    let expected: Vec<u64> = (1..=25).filter(|i| *i != 3).collect();
    assert_eq!(seen, expected);
    let p = QueuePolicy {
        max_tries: 1,
        ..policy()
    };
    let b = claim(s, &p, t(10, 0), 3).await;
    complete(
        s,
        &p,
        &b.claims[0],
        "USER_BUSY",
        CauseClass::Retry,
        t(10, 1),
    )
    .await;
    let active = s
        .list(
            C,
            &ListQuery {
                state: Some(MemberState::Active),
                limit: 50,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(active.members.len(), 2);
    let ended = s
        .list(
            C,
            &ListQuery {
                end_cause: Some("MAX_TRY_COUNT".into()),
                limit: 50,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        ended.members.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![b.claims[0].member_id]
    );
}

async fn expired_leases_are_recovered_per_lost_attempt_and_free_their_slots(s: &Store) {
    let p = QueuePolicy {
        limit: 2,
        lost_attempt: LostAttempt::Retry,
        wait_between_retries_sec: 0,
        ..policy()
    };
    for i in 0..3 {
        add1(s, member(&format!("m{i}"), &["1"])).await;
    }
    let dead = s
        .claim(
            C,
            &p,
            &Always,
            t(10, 0),
            1,
            "dead-node",
            Duration::from_secs(30),
        )
        .await
        .unwrap()
        .claims;
    let live = s
        .claim(
            C,
            &p,
            &Always,
            t(10, 0),
            1,
            "live-node",
            Duration::from_secs(30),
        )
        .await
        .unwrap()
        .claims;
    assert_eq!(s.slots_in_use(C, t(10, 0)).await.unwrap(), 2);
    // The live node renews; the dead one does not.
    let lost = s
        .renew(
            C,
            "live-node",
            &[live[0].attempt_id],
            t(10, 0) + CDuration::seconds(20),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(lost.is_empty());
    let lost = s
        .renew(
            C,
            "live-node",
            &[dead[0].attempt_id],
            t(10, 0) + CDuration::seconds(20),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(lost, vec![dead[0].attempt_id], "not this node's attempt");
    let after = t(10, 0) + CDuration::seconds(31);
    assert_eq!(
        s.slots_in_use(C, after).await.unwrap(),
        1,
        "the dead node's slot is free once its lease expired"
    );
    let rec = s.recover_expired(C, &p, &Always, after, 100).await.unwrap();
    assert_eq!(rec.len(), 1);
    assert_eq!(
        (rec[0].attempt_id, rec[0].member_id, rec[0].node.as_str()),
        (dead[0].attempt_id, dead[0].member_id, "dead-node")
    );
    assert_eq!(rec[0].fate, MemberFate::Due(after));
    let m = s.get(C, dead[0].member_id).await.unwrap().unwrap();
    assert_eq!((m.state, m.tries), (MemberState::Waiting, 1));
    let log = s.attempts(C, dead[0].member_id).await.unwrap();
    assert_eq!(
        (log[0].cause.as_str(), log[0].class),
        (LOST_ATTEMPT_CAUSE, CauseClass::Retry)
    );
    let cnt = s.counts(C).await.unwrap();
    assert_eq!((cnt.lost, cnt.retry, cnt.active), (1, 1, 1));
    // The dead node wakes up and reports: too late, nothing changes.
    assert_eq!(
        complete(s, &p, &dead[0], "NORMAL_CLEARING", CauseClass::Ok, after).await,
        CompleteOutcome::Duplicate
    );
    assert!(
        s.recover_expired(C, &p, &Always, after, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Its renew now reports the attempt lost.
    let lost = s
        .renew(
            C,
            "dead-node",
            &[dead[0].attempt_id],
            after,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(lost, vec![dead[0].attempt_id]);
}

async fn lost_attempt_minus_and_error_are_applied_as_configured(s: &Store) {
    let a = add1(s, member("a", &["1"])).await;
    let p = QueuePolicy {
        lost_attempt: LostAttempt::Minus,
        wait_between_retries_sec: 10,
        ..policy()
    };
    s.claim(C, &p, &Always, t(10, 0), 1, NODE, Duration::from_secs(5))
        .await
        .unwrap();
    let rec = s
        .recover_expired(C, &p, &Always, t(10, 1), 10)
        .await
        .unwrap();
    assert_eq!(
        rec[0].fate,
        MemberFate::Due(t(10, 1) + CDuration::seconds(10))
    );
    assert_eq!(s.get(C, a).await.unwrap().unwrap().tries, 0);
    let p = QueuePolicy {
        lost_attempt: LostAttempt::Error,
        ..p
    };
    s.claim(C, &p, &Always, t(10, 2), 1, NODE, Duration::from_secs(5))
        .await
        .unwrap();
    let rec = s
        .recover_expired(C, &p, &Always, t(10, 3), 10)
        .await
        .unwrap();
    assert_eq!(
        rec[0].fate,
        MemberFate::Ended {
            cause: LOST_ATTEMPT_CAUSE.into(),
            success: false
        }
    );
}

async fn gateway_slots_are_limited_shared_and_freed_by_expiry(s: &Store) {
    let (a1, a2, a3) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let until = t(10, 1);
    assert!(
        s.acquire_gateway_slot("gw1", 2, a1, until, t(10, 0))
            .await
            .unwrap()
    );
    assert!(
        s.acquire_gateway_slot("gw1", 2, a2, until, t(10, 0))
            .await
            .unwrap()
    );
    assert!(
        !s.acquire_gateway_slot("gw1", 2, a3, until, t(10, 0))
            .await
            .unwrap()
    );
    assert!(
        s.acquire_gateway_slot("gw2", 2, a3, until, t(10, 0))
            .await
            .unwrap(),
        "gateways are separate"
    );
    assert!(
        s.acquire_gateway_slot("gw1", 2, a1, t(10, 2), t(10, 0))
            .await
            .unwrap(),
        "re-acquiring extends"
    );
    s.release_gateway_slot("gw1", a2).await.unwrap();
    assert_eq!(s.gateway_slots_in_use("gw1", t(10, 0)).await.unwrap(), 1);
    assert!(
        s.acquire_gateway_slot("gw1", 2, a3, until, t(10, 0))
            .await
            .unwrap()
    );
    let lost = s
        .renew_gateway_slots("gw1", &[a1, a3], t(10, 3), t(10, 1))
        .await
        .unwrap();
    assert_eq!(lost, vec![a3], "a3's slot expired at 10:01");
    assert!(
        s.acquire_gateway_slot("gw1", 2, a2, t(10, 5), t(10, 1))
            .await
            .unwrap(),
        "expired slots are free"
    );
    assert_eq!(s.gateway_slots_in_use("gw1", t(10, 1)).await.unwrap(), 2);
}

async fn token_buckets_grant_a_burst_then_the_rate(s: &Store) {
    let k = LimitKey::Campaign(C.into());
    let now = t(10, 0);
    assert_eq!(s.take_tokens(&k, 10.0, 5.0, 8, now).await.unwrap(), 5);
    assert_eq!(s.take_tokens(&k, 10.0, 5.0, 8, now).await.unwrap(), 0);
    assert_eq!(
        s.take_tokens(&k, 10.0, 5.0, 8, now + CDuration::milliseconds(250))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.take_tokens(&k, 10.0, 5.0, 1, now + CDuration::milliseconds(300))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.take_tokens(&k, 10.0, 5.0, 9, now + CDuration::seconds(10))
            .await
            .unwrap(),
        5
    );
    let g = LimitKey::Gateway("gw1".into());
    assert_eq!(s.take_tokens(&g, 1.0, 1.0, 3, now).await.unwrap(), 1);
    assert!(s.take_tokens(&g, 0.0, 1.0, 1, now).await.is_err());
}

async fn bad_input_is_refused_with_a_clear_error_and_nothing_stored(s: &Store) {
    let good = member("ok", &["1"]);
    let mut bad = member("bad", &["2"]);
    bad.timezone = Some("Nowhere/City".into());
    let err = s.add(C, &[good, bad], t(9, 0)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "member #1: timezone: unknown IANA timezone \"Nowhere/City\""
    );
    assert_eq!(s.counts(C).await.unwrap().waiting, 0);
    assert!(
        s.add("bad{tag}", &[member("a", &["1"])], t(9, 0))
            .await
            .is_err()
    );
    add1(s, member("a", &["1"])).await;
    let c = claim(s, &policy(), t(10, 0), 1).await.claims.remove(0);
    let err = s
        .complete(
            C,
            &policy(),
            &Always,
            &result(&c, "BAD,CAUSE", CauseClass::Retry),
            t(10, 1),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("cause:"), "{err}");
    assert!(
        s.claim(C, &policy(), &Always, t(10, 0), 1, "", LEASE)
            .await
            .is_err()
    );
}

async fn drop_campaign_removes_everything(s: &Store) {
    add1(s, member("a", &["1"])).await;
    s.drop_campaign(C).await.unwrap();
    assert_eq!(s.get(C, MemberId(1)).await.unwrap(), None);
    assert_eq!(s.counts(C).await.unwrap(), Counters::default());
    assert!(s.campaigns().await.unwrap().is_empty());
}

async fn campaign_history_keeps_the_latest_entries_in_order(s: &Store) {
    let keep = fsdialer::store::HISTORY_KEEP;
    for i in 0..keep + 3 {
        s.push_history(C, &format!("e{i}")).await.unwrap();
    }
    let h = s.history(C).await.unwrap();
    assert_eq!(h.len(), keep);
    assert_eq!(h.first().map(String::as_str), Some("e3"));
    assert_eq!(h.last(), Some(&format!("e{}", keep + 2)));
}

async fn the_store_answers_a_health_ping(s: &Store) {
    s.ping().await.expect("a round trip to the backend");
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let s = fsdialer::store::Store::memory();
                    super::$name(&s).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let (s, _server) = super::redis_store(fsdialer::store::AttemptIds::Random).await;
                    super::$name(&s).await;
                }
            )*
        }
        /// Every scenario on one local Redis Cluster (3 masters, 3 replicas), each on an emptied store: forming a
        /// cluster per scenario would cost more than all the scenarios.
        mod cluster {
            #[tokio::test]
            async fn every_scenario_holds_on_a_redis_cluster() {
                let cluster = fsdialer::store::local_redis::LocalCluster::start()
                    .unwrap_or_else(|e| panic!("{e}"));
                $(
                    eprintln!("cluster: {}", stringify!($name));
                    let s = super::emptied_store(&cluster.url()).await;
                    super::$name(&s).await;
                )*
            }
        }
        /// Every scenario on one local Sentinel set-up (master, replica, three Sentinels), each on an emptied store.
        mod sentinel {
            #[tokio::test]
            async fn every_scenario_holds_on_a_sentinel_watched_master() {
                let set = fsdialer::store::local_redis::LocalSentinel::start()
                    .unwrap_or_else(|e| panic!("{e}"));
                $(
                    eprintln!("sentinel: {}", stringify!($name));
                    let s = super::emptied_store(&set.url()).await;
                    super::$name(&s).await;
                )*
            }
        }
    };
}

async fn the_result_note_is_recorded_with_the_attempt_whatever_it_contains(s: &Store) {
    let id = add1(s, member("Ann", &["+380441234567"])).await;
    let b = claim(s, &policy(), t(9, 0), 1).await;
    let mut r = result(&b.claims[0], "NORMAL_CLEARING", CauseClass::Ok);
    let note = r#"{"result":true,"ended":"flow|hangup","text":"line1\nline2 100% done"}"#;
    r.note = Some(note.to_string());
    s.complete(C, &policy(), &Always, &r, t(9, 1))
        .await
        .unwrap();
    let log = s.attempts(C, id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].note.as_deref(), Some(note));
}

async fn a_late_renewal_of_an_unrecovered_lease_keeps_the_call(s: &Store) {
    let p = policy();
    add1(s, member("Ann", &["+380441234567"])).await;
    let c = claim(s, &p, t(10, 0), 1).await.claims;
    // The renewal comes after the lease expired, but nobody recovered the attempt yet: it is still ours.
    let late = t(10, 0) + CDuration::seconds(LEASE.as_secs() as i64 + 5);
    let lost = s
        .renew(C, NODE, &[c[0].attempt_id], late, LEASE)
        .await
        .unwrap();
    assert!(lost.is_empty(), "a healthy call must not be dropped");
    assert!(
        s.recover_expired(C, &p, &Always, late, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        complete(s, &p, &c[0], "NORMAL_CLEARING", CauseClass::Ok, late).await,
        cleared()
    );
}

async fn a_node_finds_the_calls_it_holds_as_the_claims_that_started_them(s: &Store) {
    let p = policy();
    let mut ann = member("Ann", &["+380441234567", "+380501234567"]);
    ann.variables.insert("city".into(), "Kyiv".into());
    add1(s, ann).await;
    add1(s, member("Bob", &["+380441111111"])).await;
    add1(s, member("Cid", &["+380442222222"])).await;
    let mine = claim(s, &p, t(10, 0), 2).await.claims;
    let theirs = s
        .claim(C, &p, &Always, t(10, 0), 1, "node-b", LEASE)
        .await
        .unwrap()
        .claims;
    assert_eq!(theirs.len(), 1);
    // Bob's call ends; Ann's is still up.
    complete(s, &p, &mine[1], "NORMAL_CLEARING", CauseClass::Ok, t(10, 1)).await;
    let held = s.held_claims(C, NODE, LEASE, t(10, 2)).await.unwrap();
    assert_eq!(held.len(), 1);
    let h = &held[0];
    let c = &mine[0];
    assert_eq!(
        (
            h.attempt_id,
            h.member_id,
            h.attempt_no,
            h.comm_index,
            &h.number,
            &h.name
        ),
        (
            c.attempt_id,
            c.member_id,
            c.attempt_no,
            c.comm_index,
            &c.number,
            &c.name
        )
    );
    assert_eq!(h.variables["city"], "Kyiv");
    let other = s.held_claims(C, "node-b", LEASE, t(10, 2)).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].attempt_id, theirs[0].attempt_id);
    assert!(
        s.held_claims(C, "node-c", LEASE, t(10, 2))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn campaign_documents_are_compare_and_set_and_every_change_moves_the_generation(s: &Store) {
    let g0 = s.campaign_docs_generation().await.unwrap();
    assert!(s.insert_campaign_doc("cas", "v1").await.unwrap());
    let g1 = s.campaign_docs_generation().await.unwrap();
    assert!(g1 > g0);
    // An edit that read v1 wins; a second edit that also read v1 loses and writes nothing.
    assert!(
        s.replace_campaign_doc("cas", "v1", "v2-edit")
            .await
            .unwrap()
    );
    assert!(
        !s.replace_campaign_doc("cas", "v1", "v2-stop")
            .await
            .unwrap()
    );
    assert_eq!(
        s.campaign_doc("cas").await.unwrap().as_deref(),
        Some("v2-edit")
    );
    let g2 = s.campaign_docs_generation().await.unwrap();
    assert!(g2 > g1);
    assert!(!s.replace_campaign_doc("missing", "v1", "v2").await.unwrap());
    assert_eq!(s.campaign_docs_generation().await.unwrap(), g2);
    assert!(s.delete_campaign_doc("cas").await.unwrap());
    assert!(s.campaign_docs_generation().await.unwrap() > g2);
}

async fn every_lost_attempt_counts_in_lost_however_it_was_found(s: &Store) {
    let p = policy();
    add1(s, member("Ann", &["+380441234567"])).await;
    add1(s, member("Bob", &["+380441111111"])).await;
    let c = claim(s, &p, t(10, 0), 2).await.claims;
    // Ann's call was settled by the engine (its switch was lost); Bob's lease expired and was recovered.
    complete(s, &p, &c[0], "LOST_ATTEMPT", CauseClass::Retry, t(10, 1)).await;
    let late = t(10, 0) + CDuration::seconds(LEASE.as_secs() as i64 + 5);
    assert_eq!(
        s.recover_expired(C, &p, &Always, late, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let cnt = s.counts(C).await.unwrap();
    assert_eq!((cnt.lost, cnt.calls, cnt.retry), (2, 2, 2));
}

async fn an_expired_lease_of_a_dead_node_can_be_taken_over_and_completed_normally(s: &Store) {
    let p = policy();
    add1(s, member("Ann", &["+380441234567"])).await;
    let c = claim(s, &p, t(10, 0), 1).await.claims;
    let late = t(10, 0) + CDuration::seconds(LEASE.as_secs() as i64 + 5);
    // Not expired yet: nothing to take over.
    assert!(s.expired_leases(C, t(10, 0), 10).await.unwrap().is_empty());
    assert!(
        !s.take_over(C, c[0].attempt_id, NODE, "node-b", late, t(10, 0))
            .await
            .unwrap()
    );
    let expired = s.expired_leases(C, late, 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (
            expired[0].attempt_id,
            expired[0].member_id,
            expired[0].node.as_str()
        ),
        (c[0].attempt_id, c[0].member_id, NODE)
    );
    // Only from the node that holds it.
    let until = late + CDuration::seconds(60);
    assert!(
        !s.take_over(C, c[0].attempt_id, "node-x", "node-b", until, late)
            .await
            .unwrap()
    );
    let holder = |s: &Store| {
        let s = s.clone();
        let a = c[0].attempt_id;
        async move { s.attempt_holder(C, a).await.unwrap() }
    };
    assert_eq!(holder(s).await.as_deref(), Some(NODE));
    assert!(
        s.take_over(C, c[0].attempt_id, NODE, "node-b", until, late)
            .await
            .unwrap()
    );
    assert_eq!(holder(s).await.as_deref(), Some("node-b"));
    // It is node-b's now: nothing to recover, node-b holds it, and its real end completes the member.
    assert!(
        s.recover_expired(C, &p, &Always, late, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.held_claims(C, NODE, LEASE, late)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.held_claims(C, "node-b", LEASE, late).await.unwrap().len(),
        1
    );
    assert!(
        s.renew(C, "node-b", &[c[0].attempt_id], late, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        complete(s, &p, &c[0], "NORMAL_CLEARING", CauseClass::Ok, late).await,
        cleared()
    );
    assert_eq!(s.counts(C).await.unwrap().lost, 0);
    assert_eq!(holder(s).await, None, "out of the call: nobody holds it");
}

async fn engine_nodes_count_while_they_say_they_are_alive(s: &Store) {
    let ttl = std::time::Duration::from_secs(30);
    assert_eq!(s.node_alive("node-a", t(10, 0), ttl).await.unwrap(), 1);
    assert_eq!(
        s.node_alive("node-b", t(10, 0) + CDuration::seconds(10), ttl)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.node_alive("node-a", t(10, 0) + CDuration::seconds(20), ttl)
            .await
            .unwrap(),
        2
    );
    // node-b silent for 31 s: gone.
    assert_eq!(
        s.node_alive("node-a", t(10, 0) + CDuration::seconds(41), ttl)
            .await
            .unwrap(),
        1
    );
}

contract!(
    engine_nodes_count_while_they_say_they_are_alive,
    an_expired_lease_of_a_dead_node_can_be_taken_over_and_completed_normally,
    every_lost_attempt_counts_in_lost_however_it_was_found,
    campaign_documents_are_compare_and_set_and_every_change_moves_the_generation,
    a_node_finds_the_calls_it_holds_as_the_claims_that_started_them,
    a_late_renewal_of_an_unrecovered_lease_keeps_the_call,
    the_result_note_is_recorded_with_the_attempt_whatever_it_contains,
    added_member_is_waiting_with_its_data,
    claim_returns_everything_needed_to_originate,
    claims_never_exceed_the_campaign_limit_and_complete_frees_a_slot,
    priority_first_claims_higher_priority_then_insertion_order,
    retries_first_claims_retried_members_before_fresh_ones,
    strict_circuit_gives_nobody_a_second_try_before_everyone_had_one,
    ok_result_ends_member_with_success_and_the_hangup_cause,
    completing_an_attempt_twice_changes_nothing_and_says_so,
    complete_many_applies_results_in_order_exactly_once,
    retry_waits_between_tries_and_ends_with_max_try_count,
    error_marks_the_number_done_and_the_next_number_is_due_at_once,
    minus_does_not_count_a_try,
    tries_per_number_counts_max_tries_on_each_number,
    top_down_rotates_through_the_numbers,
    expired_member_ends_member_expired_instead_of_being_claimed,
    member_is_claimed_only_inside_its_own_local_window,
    retry_is_rescheduled_into_the_next_window,
    member_expiring_before_its_window_opens_ends_at_once,
    member_ends_queue_expire_when_the_calendar_is_over,
    release_undoes_a_claim_without_counting,
    update_and_delete_are_refused_while_in_a_call,
    update_keeps_number_state_when_numbers_are_unchanged_and_reorders,
    external_id_upserts_instead_of_duplicating,
    terminate_ends_a_waiting_member_and_flags_a_call_to_kill,
    renewal_drops_a_terminated_call_and_ends_its_member_with_manager_request,
    an_agents_follow_up_reschedules_at_its_instant_and_resets_the_tries,
    reset_revives_ended_unsuccessful_members_only,
    list_pages_through_members_with_filters,
    expired_leases_are_recovered_per_lost_attempt_and_free_their_slots,
    lost_attempt_minus_and_error_are_applied_as_configured,
    gateway_slots_are_limited_shared_and_freed_by_expiry,
    token_buckets_grant_a_burst_then_the_rate,
    bad_input_is_refused_with_a_clear_error_and_nothing_stored,
    drop_campaign_removes_everything,
    campaign_history_keeps_the_latest_entries_in_order,
    the_store_answers_a_health_ping,
);

/// The claiming store completes from what its claim saw; another node's store, which never saw the claim, reads
/// the records first. Twin members given the same results must end up identical either way.
#[tokio::test]
async fn results_applied_by_the_claiming_node_or_another_node_leave_identical_members() {
    let (here, server) = redis_store(AttemptIds::Random).await;
    let elsewhere = Store::open(&server.url()).await.unwrap();
    let p = QueuePolicy {
        max_tries: 3,
        wait_between_retries_sec: 0,
        ..policy()
    };
    let twins = [
        add1(&here, member("twin", &["100", "200"])).await,
        add1(&here, member("twin", &["100", "200"])).await,
    ];
    let script = [
        ("NO_ANSWER", CauseClass::Retry),
        ("NORMAL_TEMPORARY_FAILURE", CauseClass::Minus),
        ("UNALLOCATED_NUMBER", CauseClass::Error),
        ("USER_BUSY", CauseClass::Retry),
        ("NORMAL_CLEARING", CauseClass::Ok),
    ];
    for (step, (cause, class)) in script.iter().enumerate() {
        let now = t(10, step as u32);
        let b = claim(&here, &p, now, 2).await;
        if b.claims.is_empty() {
            break;
        }
        assert_eq!(b.claims.len(), 2, "step {step}: both twins are due");
        let mut r: Vec<AttemptResult> = b.claims.iter().map(|c| result(c, cause, *class)).collect();
        r.sort_by_key(|r| r.member_id);
        let done = now + CDuration::seconds(20);
        let fast = here.complete(C, &p, &Always, &r[0], done).await.unwrap();
        let slow = elsewhere
            .complete(C, &p, &Always, &r[1], done)
            .await
            .unwrap();
        assert_eq!(fast, slow, "step {step}: {cause}");
    }
    let a = here.get(C, twins[0]).await.unwrap().unwrap();
    let b = here.get(C, twins[1]).await.unwrap().unwrap();
    assert_eq!(a.state, MemberState::Ended);
    assert_eq!(
        (
            a.tries,
            a.attempts,
            &a.end_cause,
            a.success,
            &a.communications
        ),
        (
            b.tries,
            b.attempts,
            &b.end_cause,
            b.success,
            &b.communications
        )
    );
    let strip = |log: Vec<AttemptRecord>| {
        log.into_iter()
            .map(|mut r| {
                r.attempt_id = uuid::Uuid::nil();
                r.member_id = MemberId(0);
                r
            })
            .collect::<Vec<_>>()
    };
    let (la, lb) = (
        strip(here.attempts(C, twins[0]).await.unwrap()),
        strip(here.attempts(C, twins[1]).await.unwrap()),
    );
    assert_eq!(
        la.len(),
        4,
        "retry, minus, error on the first number, then busy ends at max tries"
    );
    assert_eq!(la, lb);
    assert_eq!(here.counts(C).await.unwrap().ended, 2);
}

/// A terminate while the member is in a call marks the attempt, so the claiming node's completion cannot take the
/// fast path (decided from what the claim saw, before the terminate): the member ends with MANAGER_REQUEST.
#[tokio::test]
async fn a_terminate_during_the_call_wins_over_the_claiming_nodes_fast_completion() {
    let (s, _server) = redis_store(AttemptIds::Random).await;
    let p = QueuePolicy {
        wait_between_retries_sec: 0,
        ..policy()
    };
    let ids = [
        add1(&s, member("stays", &["100"])).await,
        add1(&s, member("terminated", &["200"])).await,
    ];
    let b = claim(&s, &p, t(10, 0), 2).await;
    assert_eq!(b.claims.len(), 2);
    assert!(matches!(
        s.terminate(C, ids[1]).await.unwrap(),
        TerminateOutcome::KillCall { .. }
    ));
    let results: Vec<AttemptResult> = b
        .claims
        .iter()
        .map(|c| result(c, "NO_ANSWER", CauseClass::Retry))
        .collect();
    let done = s
        .complete_many(C, &p, &Always, &results, t(10, 1))
        .await
        .unwrap();
    let fate = |id: MemberId| {
        let i = b.claims.iter().position(|c| c.member_id == id).unwrap();
        done[i].clone()
    };
    assert!(matches!(
        fate(ids[0]),
        CompleteOutcome::Applied(MemberFate::Due(_))
    ));
    assert_eq!(
        fate(ids[1]),
        CompleteOutcome::Applied(MemberFate::Ended {
            cause: "MANAGER_REQUEST".into(),
            success: false
        })
    );
    let m = s.get(C, ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (m.state, m.end_cause.as_deref(), m.terminate_pending),
        (MemberState::Ended, Some("MANAGER_REQUEST"), false)
    );
}

/// The completion fast path checks a whole batch at once: when one attempt of the batch was recovered (its lease
/// expired) before its result came, nothing of the batch is written from the claim's snapshots. Each result is then
/// settled on its own in Lua: the live attempt applies, the recovered one is a duplicate and leaves its member as
/// the recovery left it.
#[tokio::test]
async fn a_batch_holding_one_recovered_attempt_is_settled_result_by_result() {
    let (s, _server) = redis_store(AttemptIds::Random).await;
    let p = QueuePolicy {
        lost_attempt: LostAttempt::Retry,
        wait_between_retries_sec: 0,
        ..policy()
    };
    add1(&s, member("live", &["100"])).await;
    add1(&s, member("lost", &["200"])).await;
    let lease = Duration::from_secs(30);
    let b = s
        .claim(C, &p, &Always, t(10, 0), 2, NODE, lease)
        .await
        .unwrap();
    assert_eq!(b.claims.len(), 2);
    let (live, lost) = (&b.claims[0], &b.claims[1]);
    let renewed = s
        .renew(
            C,
            NODE,
            &[live.attempt_id],
            t(10, 0) + CDuration::seconds(20),
            lease,
        )
        .await
        .unwrap();
    assert!(renewed.is_empty());
    let after = t(10, 0) + CDuration::seconds(31);
    let recovered = s.recover_expired(C, &p, &Always, after, 100).await.unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].attempt_id, lost.attempt_id);
    let before = (
        s.get(C, lost.member_id).await.unwrap(),
        s.attempts(C, lost.member_id).await.unwrap(),
    );
    let results = [
        result(live, "NORMAL_CLEARING", CauseClass::Ok),
        result(lost, "NORMAL_CLEARING", CauseClass::Ok),
    ];
    let out = s
        .complete_many(C, &p, &Always, &results, after)
        .await
        .unwrap();
    assert_eq!(out, vec![cleared(), CompleteOutcome::Duplicate,]);
    assert_eq!(
        before,
        (
            s.get(C, lost.member_id).await.unwrap(),
            s.attempts(C, lost.member_id).await.unwrap(),
        ),
        "the late result changed nothing of the recovered member"
    );
    let cnt = s.counts(C).await.unwrap();
    assert_eq!((cnt.calls, cnt.ok, cnt.success, cnt.active), (2, 1, 1, 0));
}

/// A campaign whose members an older build stored as hashes is refused whole by a claim: nothing is taken off its
/// ready queue (a claim reading those members as records would lose them).
#[tokio::test]
async fn a_campaign_in_the_old_member_layout_is_refused_and_left_untouched() {
    let (s, _server) = redis_store(AttemptIds::Random).await;
    let Store::Redis(r) = &s else { unreachable!() };
    let mut conn = r.connection();
    let prefix = "dlr:{old}:";
    let _: () = ::redis::pipe()
        .cmd("HSET")
        .arg(format!("{prefix}m:0000000001"))
        .arg(&[
            "n",
            "Ann",
            "c",
            r#"[["100"]]"#,
            "u",
            "0",
            "s",
            "r",
            "w",
            "0",
        ])
        .ignore()
        .cmd("SET")
        .arg(format!("{prefix}seq"))
        .arg(1)
        .ignore()
        .cmd("ZADD")
        .arg(format!("{prefix}ready"))
        .arg(0)
        .arg(format!("{:011x}0000000001", 0))
        .ignore()
        .cmd("HSET")
        .arg(format!("{prefix}meta"))
        .arg("order")
        .arg("priority_first")
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    let err = s
        .claim("old", &policy(), &Always, t(10, 0), 10, NODE, LEASE)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("older fsdialer"), "{err}");
    let ready: u64 = ::redis::cmd("ZCARD")
        .arg(format!("{prefix}ready"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(ready, 1, "the old member is still queued");
}

#[path = "store_contract_cases/agents.rs"]
mod agents;
/// Leases are scored with the server's clock (`TIME`): a node whose own clock runs 10 minutes ahead sees a live
/// peer's leases as live, and does not recover its calls; its own leases last their length on the server's clock.
/// The control (the same instant given to a store on the server's clock) proves the instants would have expired.
#[tokio::test]
async fn a_node_whose_clock_is_ten_minutes_ahead_does_not_recover_a_live_peers_calls() {
    let (honest, _server) = redis_store(AttemptIds::Random).await;
    let ahead_by = CDuration::minutes(10);
    let ahead_store = honest
        .clone()
        .with_local_clock(std::sync::Arc::new(move || chrono::Utc::now() + ahead_by));
    let p = policy();
    let now = chrono::Utc::now();
    honest
        .add(C, &[member("a", &["100"]), member("b", &["101"])], now)
        .await
        .unwrap();
    let peer = honest
        .claim(C, &p, &Always, now, 1, "peer", LEASE)
        .await
        .unwrap();
    assert_eq!(peer.claims.len(), 1);

    let its_now = chrono::Utc::now() + ahead_by;
    assert!(
        ahead_store
            .expired_leases(C, its_now, 10)
            .await
            .unwrap()
            .is_empty(),
        "the peer's lease is live on the server's clock"
    );
    assert!(
        ahead_store
            .recover_expired(C, &p, &Always, its_now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(honest.counts(C).await.unwrap().active, 1);
    // The fast node's own claim: leased for LEASE on the server's clock, not ten minutes less.
    let own = ahead_store
        .claim(C, &p, &Always, its_now, 1, "fast", LEASE)
        .await
        .unwrap();
    assert_eq!(own.claims.len(), 1);
    assert!(
        honest
            .expired_leases(C, chrono::Utc::now(), 10)
            .await
            .unwrap()
            .is_empty(),
        "no lease of either node has expired"
    );
    assert_eq!(honest.slots_in_use(C, chrono::Utc::now()).await.unwrap(), 2);
    // Control: on the server's clock, the fast node's instant is past both leases.
    assert_eq!(
        honest.expired_leases(C, its_now, 10).await.unwrap().len(),
        2
    );
}

#[path = "store_contract_cases/dialling_rules.rs"]
mod dialling_rules;

#[path = "store_contract_cases/page_figures.rs"]
mod page_figures;
