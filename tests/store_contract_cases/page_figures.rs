//! The store contract of the operator page's figures (issue 20): members in retry counted by every step that
//! moves a member, the hangup-cause histogram written by the completions themselves (equal to a recount of the
//! attempt log, lost attempts included), the member search by name, and a campaign transition's history entry
//! written with its webhook events in one step.

use super::*;
use fsdialer::store::outbox::{DeliveryRecord, EnqueueGroup};
use std::collections::BTreeMap;

/// Every member, read back.
async fn everyone(s: &Store) -> Vec<Member> {
    s.list(
        C,
        &ListQuery {
            limit: 10_000,
            ..ListQuery::default()
        },
    )
    .await
    .unwrap()
    .members
}

/// `in_retry` as the counters hold it, and as a recount of the members (waiting, called before).
async fn in_retry(s: &Store) -> (u64, u64) {
    let counted = s.counts(C).await.unwrap().in_retry;
    let recount = everyone(s)
        .await
        .iter()
        .filter(|m| m.state == MemberState::Waiting && m.attempts > 0)
        .count() as u64;
    (counted, recount)
}

async fn members_in_retry_are_counted_by_every_step_that_moves_them(s: &Store) {
    let p = QueuePolicy {
        wait_between_retries_sec: 60,
        max_tries: 5,
        ..policy()
    };
    let ids: Vec<MemberId> = {
        let mut v = Vec::new();
        for i in 0..6 {
            let mut m = member(&format!("m{i}"), &["1", "2"]);
            if i == 5 {
                m.expire = Some(t(10, 30));
            }
            v.push(add1(s, m).await);
        }
        v
    };
    assert_eq!(in_retry(s).await, (0, 0), "nobody called yet");
    let batch = claim(s, &p, t(10, 0), 6).await;
    assert_eq!(batch.claims.len(), 6);
    let by_member = |id: MemberId| {
        batch
            .claims
            .iter()
            .find(|c| c.member_id == id)
            .unwrap()
            .clone()
    };
    let now = t(10, 1);
    // A retry, a minus, an error with a number left: each is due again, in retry. A success ends.
    for (i, cause, class) in [
        (0, "NO_ANSWER", CauseClass::Retry),
        (1, "NORMAL_TEMPORARY_FAILURE", CauseClass::Minus),
        (2, "UNALLOCATED_NUMBER", CauseClass::Error),
        (3, "NORMAL_CLEARING", CauseClass::Ok),
        (5, "USER_BUSY", CauseClass::Retry),
    ] {
        complete(s, &p, &by_member(ids[i]), cause, class, now).await;
    }
    // A claim released uncounted is waiting again, but was never called.
    let r = by_member(ids[4]);
    s.release(C, r.member_id, r.attempt_id, None, now)
        .await
        .unwrap();
    assert_eq!(in_retry(s).await, (4, 4));
    let c = s.counts(C).await.unwrap();
    assert_eq!(c.waiting, 5, "{c:?}");

    // Claimed again: a retried member leaves in_retry; the released one was not in it.
    let again = claim(s, &p, t(10, 2), 2).await;
    let claimed: Vec<MemberId> = again.claims.iter().map(|c| c.member_id).collect();
    let (counted, recount) = in_retry(s).await;
    assert_eq!(counted, recount, "after claiming {claimed:?}");
    let retried_claimed = claimed.iter().filter(|m| **m != ids[4]).count() as u64;
    assert_eq!(counted, 4 - retried_claimed);
    // Released again (called before, so in retry again), then terminated and deleted while waiting.
    for c in &again.claims {
        s.release(C, c.member_id, c.attempt_id, None, t(10, 2))
            .await
            .unwrap();
    }
    assert_eq!(in_retry(s).await, (4, 4));
    s.terminate(C, ids[0]).await.unwrap();
    assert_eq!(in_retry(s).await, (3, 3));
    assert_eq!(s.delete(C, ids[1]).await.unwrap(), ChangeOutcome::Done);
    assert_eq!(in_retry(s).await, (2, 2));
    // Reset revives the terminated member (called before): in retry again.
    assert_eq!(s.reset(C, t(10, 3)).await.unwrap(), 1);
    assert_eq!(in_retry(s).await, (3, 3));
    // A retried member whose expiry passed ends at the claim, leaving in_retry.
    let late = claim(s, &p, t(11, 0), 10).await;
    assert!(
        late.ended
            .iter()
            .any(|(m, cause)| *m == ids[5] && cause == "MEMBER_EXPIRED"),
        "{:?}",
        late.ended
    );
    assert_eq!(in_retry(s).await, (0, 0));
}

/// The histogram counted by the store, and a recount of every member's attempt log.
async fn histogram_and_recount(s: &Store) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let mut recount = BTreeMap::new();
    for m in everyone(s).await {
        for a in s.attempts(C, m.id).await.unwrap() {
            *recount.entry(a.cause).or_insert(0) += 1;
        }
    }
    (s.cause_counts(C).await.unwrap(), recount)
}

async fn the_cause_histogram_equals_a_recount_of_the_attempt_log_lost_attempts_included(s: &Store) {
    let p = QueuePolicy {
        limit: 20,
        lost_attempt: fsdialer::campaign::params::LostAttempt::Retry,
        wait_between_retries_sec: 0,
        ..policy()
    };
    for i in 0..8 {
        add1(s, member(&format!("m{i}"), &["1", "2"])).await;
    }
    let batch = claim(s, &p, t(10, 0), 8).await;
    let c = &batch.claims;
    let now = t(10, 1);
    complete(s, &p, &c[0], "NORMAL_CLEARING", CauseClass::Ok, now).await;
    complete(s, &p, &c[1], "USER_BUSY", CauseClass::Retry, now).await;
    // A result given twice counts once.
    complete(s, &p, &c[1], "USER_BUSY", CauseClass::Retry, now).await;
    let many = [
        result(&c[2], "NO_ANSWER", CauseClass::Retry),
        result(&c[3], "UNALLOCATED_NUMBER", CauseClass::Error),
    ];
    s.complete_many(C, &p, &Always, &many, now).await.unwrap();
    // A member terminated in its call is completed by the renewal (MANAGER_REQUEST).
    s.terminate(C, c[4].member_id).await.unwrap();
    s.renew(C, NODE, &[c[4].attempt_id], now, Duration::from_secs(1))
        .await
        .unwrap();
    // The rest are lost: their leases expire and the recovery counts them as LOST_ATTEMPT.
    let recovered = s
        .recover_expired(C, &p, &Always, t(12, 0), 100)
        .await
        .unwrap();
    assert_eq!(recovered.len(), 3);
    let (counted, recount) = histogram_and_recount(s).await;
    assert_eq!(counted, recount);
    assert_eq!(counted.get(LOST_ATTEMPT_CAUSE), Some(&3), "{counted:?}");
    assert_eq!(counted.get("USER_BUSY"), Some(&1), "{counted:?}");
    assert_eq!(counted.get("MANAGER_REQUEST"), Some(&1), "{counted:?}");
    assert_eq!(counted.values().sum::<u64>(), 8);
    assert_eq!(s.counts(C).await.unwrap().calls, 8);
}

async fn members_are_searched_by_name_case_insensitively_within_a_bound(s: &Store) {
    let names = ["Ann Lee", "anna", "Bob", "JOANNA", "Олена Ann"];
    let mut ids = Vec::new();
    for n in names {
        ids.push(add1(s, member(n, &["1"])).await);
    }
    let search = |name: &str, limit: usize, after: Option<MemberId>| ListQuery {
        name: Some(name.into()),
        limit,
        after,
        ..ListQuery::default()
    };
    let found = |p: &ListPage| p.members.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    let all = s.list(C, &search("aNn", 10, None)).await.unwrap();
    assert_eq!(found(&all), ["Ann Lee", "anna", "JOANNA", "Олена Ann"]);
    assert_eq!(all.next, None);
    let first = s.list(C, &search("ann", 2, None)).await.unwrap();
    assert_eq!(found(&first), ["Ann Lee", "anna"]);
    let rest = s.list(C, &search("ann", 2, first.next)).await.unwrap();
    assert_eq!(found(&rest), ["JOANNA", "Олена Ann"]);
    // Other filters still apply; no match is an empty page.
    let mut q = search("ann", 10, None);
    q.state = Some(MemberState::Ended);
    assert!(s.list(C, &q).await.unwrap().members.is_empty());
    assert!(
        s.list(C, &search("zed", 10, None))
            .await
            .unwrap()
            .members
            .is_empty()
    );
    // Bounded: past the first step of ids the search answers with where to go on.
    let filler: Vec<_> = (0..2_100)
        .map(|i| member(&format!("x{i}"), &["1"]))
        .collect();
    s.add(C, &filler, t(9, 0)).await.unwrap();
    add1(s, member("needle", &["1"])).await;
    let mut q = search("NEEDLE", 10, None);
    q.max_examined = Some(1);
    let page = s.list(C, &q).await.unwrap();
    assert!(page.members.is_empty());
    let next = page.next.expect("stopped at the bound, with a cursor");
    q.after = Some(next);
    let page = s.list(C, &q).await.unwrap();
    assert_eq!(found(&page), ["needle"]);
    assert_eq!(page.next, None);
}

fn delivery(id: &str) -> DeliveryRecord {
    DeliveryRecord {
        id: format!("{id}@tag"),
        event_id: id.into(),
        event: "campaign_state".into(),
        url: "http://127.0.0.1:9/hook".into(),
        body: format!("{{\"id\":\"{id}\"}}"),
        member: None,
        created_ms: 0,
        attempts: 0,
        last_error: None,
        dead_at_ms: None,
    }
}

async fn a_transition_s_history_entry_and_its_events_are_written_in_one_step(s: &Store) {
    let group = |id: &str| EnqueueGroup {
        marker: None,
        deliveries: vec![delivery(id)],
    };
    let now = t(10, 0);
    assert_eq!(
        s.push_history_with_events(C, "t1", &[group("e1")], now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.history(C).await.unwrap(), ["t1"]);
    assert_eq!(s.outbox_counts(C).await.unwrap().queued, 1);
    // A resend of the same transition (its reply lost) writes neither again.
    assert_eq!(
        s.push_history_with_events(C, "t1", &[group("e1")], now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.history(C).await.unwrap(), ["t1"]);
    assert_eq!(s.outbox_counts(C).await.unwrap().queued, 1);
    // A transition without webhooks is history only; the next one queues behind the first, in order.
    s.push_history(C, "t2").await.unwrap();
    s.push_history_with_events(C, "t3", &[group("e3")], now)
        .await
        .unwrap();
    assert_eq!(s.history(C).await.unwrap(), ["t1", "t2", "t3"]);
    let mut order = Vec::new();
    for _ in 0..2 {
        let taken = s
            .outbox_take(C, now, Duration::from_secs(30), 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1, "one campaign chain: its head only");
        order.push(taken[0].event_id.clone());
        s.outbox_settle(
            C,
            &taken[0],
            &fsdialer::store::outbox::Settle::Delivered,
            now,
        )
        .await
        .unwrap();
    }
    assert_eq!(order, ["e1", "e3"]);
}

contract!(
    members_in_retry_are_counted_by_every_step_that_moves_them,
    the_cause_histogram_equals_a_recount_of_the_attempt_log_lost_attempts_included,
    members_are_searched_by_name_case_insensitively_within_a_bound,
    a_transition_s_history_entry_and_its_events_are_written_in_one_step,
);

/// A Redis store upgraded to the `in_retry` counter while members were already in retry: they leave it without
/// having entered it, and the counter stays at zero instead of going negative (which would hide later retries).
#[tokio::test]
async fn members_in_retry_from_before_the_counter_never_drive_it_below_zero() {
    let (s, _server) = redis_store(AttemptIds::Random).await;
    let p = QueuePolicy {
        wait_between_retries_sec: 0,
        ..policy()
    };
    add1(&s, member("old", &["1"])).await;
    let c = claim(&s, &p, t(10, 0), 1).await.claims.remove(0);
    complete(&s, &p, &c, "NO_ANSWER", CauseClass::Retry, t(10, 1)).await;
    assert_eq!(s.counts(C).await.unwrap().in_retry, 1);
    // As a build without the counter left it.
    let Store::Redis(r) = &s else { unreachable!() };
    let _: () = ::redis::cmd("HDEL")
        .arg(format!("dlr:{{{C}}}:cnt"))
        .arg("in_retry")
        .query_async(&mut r.connection())
        .await
        .unwrap();
    let c = claim(&s, &p, t(10, 2), 1).await.claims.remove(0);
    assert_eq!(s.counts(C).await.unwrap().in_retry, 0);
    complete(&s, &p, &c, "NO_ANSWER", CauseClass::Retry, t(10, 3)).await;
    assert_eq!(s.counts(C).await.unwrap().in_retry, 1, "exact again");
}
