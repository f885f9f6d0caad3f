//! The outbox's rules on the memory backend (the Redis scripts are exercised by the webhook tests in
//! `tests/webhooks.rs`, which run on a real redis-server).

use super::*;
use crate::store::Store;

fn t(ms: i64) -> DateTime<Utc> {
    from_ms(1_800_000_000_000 + ms)
}

fn rec(event_id: &str, member: Option<u64>) -> DeliveryRecord {
    DeliveryRecord {
        id: format!("{event_id}@x"),
        event_id: event_id.into(),
        event: "attempt_end".into(),
        url: "http://127.0.0.1:9/h".into(),
        body: "{}".into(),
        member,
        created_ms: 0,
        attempts: 0,
        last_error: None,
        dead_at_ms: None,
    }
}

fn group(marker: Option<AttemptId>, recs: &[DeliveryRecord]) -> EnqueueGroup {
    EnqueueGroup {
        marker,
        deliveries: recs.to_vec(),
    }
}

const LEASE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_marker_lets_its_events_in_once_whoever_resolves_it() {
    let s = Store::memory();
    let a = uuid::Uuid::new_v4();
    s.outbox_mark("c", &[(a, MemberId(7))], t(0)).await.unwrap();
    let stale = s.outbox_stale_markers("c", t(1), 10).await.unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!((stale[0].attempt, stale[0].member), (a, MemberId(7)));
    assert!(
        s.outbox_stale_markers("c", t(0), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let g = group(Some(a), &[rec("e1", Some(7)), rec("e2", Some(7))]);
    assert_eq!(
        s.outbox_enqueue("c", std::slice::from_ref(&g), t(1))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.outbox_enqueue("c", &[g], t(2)).await.unwrap(),
        0,
        "the second resolver finds the marker gone"
    );
    assert_eq!(
        s.outbox_counts("c").await.unwrap(),
        OutboxCounts {
            markers: 0,
            queued: 2,
            dead: 0
        }
    );
}

#[tokio::test]
async fn a_member_s_events_go_one_at_a_time_in_order_while_other_members_proceed() {
    let s = Store::memory();
    let groups = [group(
        None,
        &[
            rec("m1-a", Some(1)),
            rec("m1-b", Some(1)),
            rec("m2-a", Some(2)),
        ],
    )];
    s.outbox_enqueue("c", &groups, t(0)).await.unwrap();
    let first = s.outbox_take("c", t(0), LEASE, 10).await.unwrap();
    let mut ids: Vec<_> = first.iter().map(|r| r.event_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["m1-a", "m2-a"], "one head per member");
    assert!(
        s.outbox_take("c", t(1), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "taken heads are leased"
    );
    let m1a = first.iter().find(|r| r.event_id == "m1-a").unwrap();
    let mut failed = m1a.clone();
    failed.attempts = 1;
    failed.last_error = Some("503".into());
    assert!(
        s.outbox_settle("c", &failed, &Settle::RetryAt(t(500)), t(2))
            .await
            .unwrap()
    );
    assert!(
        s.outbox_take("c", t(400), LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "m1-b waits behind m1-a's back-off"
    );
    let again = s.outbox_take("c", t(500), LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].event_id.as_str(), again[0].attempts), ("m1-a", 1));
    assert!(
        s.outbox_settle("c", &again[0], &Settle::Delivered, t(501))
            .await
            .unwrap()
    );
    assert!(
        !s.outbox_settle("c", &again[0], &Settle::Delivered, t(502))
            .await
            .unwrap(),
        "settled once"
    );
    let next = s.outbox_take("c", t(502), LEASE, 10).await.unwrap();
    assert_eq!(next[0].event_id, "m1-b");
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_replayed_with_its_tries_reset() {
    let s = Store::memory();
    s.outbox_enqueue(
        "c",
        &[group(None, &[rec("e1", None), rec("e2", None)])],
        t(0),
    )
    .await
    .unwrap();
    let mut head = s.outbox_take("c", t(0), LEASE, 10).await.unwrap().remove(0);
    head.attempts = 3;
    head.last_error = Some("connection refused".into());
    s.outbox_settle("c", &head, &Settle::Dead, t(5))
        .await
        .unwrap();
    let page = s.outbox_dead("c", 0, 10).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].dead_at_ms, Some(ms(t(5))));
    assert_eq!(
        s.outbox_take("c", t(5), LEASE, 10).await.unwrap()[0].event_id,
        "e2",
        "the chain moves on past a dead letter"
    );
    assert!(s.outbox_replay("c", "e1@x", t(6)).await.unwrap());
    assert!(!s.outbox_replay("c", "e1@x", t(6)).await.unwrap());
    assert_eq!(s.outbox_dead("c", 0, 10).await.unwrap().total, 0);
    assert_eq!(s.outbox_counts("c").await.unwrap().queued, 2);
    assert!(s.outbox_dead("c", 0, 0).await.is_err(), "limit 0 refused");
}
