//! 8 concurrent claimers share one queue: no member is ever claimed twice at once, and every member is claimed
//! exactly when it becomes due.

mod store_support;

use chrono::{DateTime, Duration as CDuration, Utc};
use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::schedule::Always;
use fsdialer::store::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store_support::*;

const C: &str = "conc";
const MEMBERS: usize = 600;
const CLAIMERS: usize = 8;

#[derive(Debug, Clone)]
struct Seen {
    member: MemberId,
    attempt_no: u32,
    attempt: AttemptId,
    round: usize,
}

async fn eight_claimers(stores: Vec<Store>) {
    let policy = QueuePolicy {
        limit: 100_000,
        max_tries: 3,
        wait_between_retries_sec: 25,
        ..QueuePolicy::default()
    };
    let start = t(10, 0);
    let members: Vec<_> = (0..MEMBERS)
        .map(|i| member(&format!("m{i}"), &["1", "2"]))
        .collect();
    stores[0].add(C, &members, start).await.unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    // When each member is next due (from the store's own answers).
    let mut due: HashMap<MemberId, DateTime<Utc>> =
        (1..=MEMBERS as u64).map(|i| (MemberId(i), start)).collect();
    let mut round = 0;
    while !due.is_empty() {
        let now = start + CDuration::seconds(10 * round as i64);
        assert!(round < 100, "the queue never drained");
        // Every claimer claims until the queue has nothing due for it, all at once.
        let mut tasks = Vec::new();
        for (i, store) in stores.iter().enumerate() {
            let store = store.clone();
            let policy = policy.clone();
            let seen = seen.clone();
            tasks.push(tokio::spawn(async move {
                let node = format!("node{i}");
                let mut mine = Vec::new();
                loop {
                    let b = store
                        .claim(C, &policy, &Always, now, 7, &node, Duration::from_secs(60))
                        .await
                        .unwrap();
                    if b.claims.is_empty() {
                        break;
                    }
                    let mut s = seen.lock().unwrap();
                    for c in &b.claims {
                        s.push(Seen {
                            member: c.member_id,
                            attempt_no: c.attempt_no,
                            attempt: c.attempt_id,
                            round,
                        });
                    }
                    mine.extend(b.claims);
                }
                // Complete concurrently too: a third succeed, the rest are busy.
                let mut fates = Vec::new();
                for c in mine {
                    let (cause, class) = if c.member_id.0 % 3 == 0 {
                        ("NORMAL_CLEARING", CauseClass::Ok)
                    } else {
                        ("USER_BUSY", CauseClass::Retry)
                    };
                    let r = AttemptResult {
                        attempt_id: c.attempt_id,
                        member_id: c.member_id,
                        cause: cause.into(),
                        class,
                        answered_at: None,
                        hangup_at: None,
                        talk_secs: 0,
                        note: None,
                    };
                    match store.complete(C, &policy, &Always, &r, now).await.unwrap() {
                        CompleteOutcome::Applied(f) => fates.push((c.member_id, f)),
                        other => panic!("attempt {} completed as {other:?}", c.attempt_id),
                    }
                }
                fates
            }));
        }
        let mut claimed_now = HashSet::new();
        for task in tasks {
            for (m, fate) in task.await.unwrap() {
                assert!(
                    claimed_now.insert(m),
                    "member {m} claimed twice in round {round}"
                );
                match fate {
                    MemberFate::Due(d) => {
                        due.insert(m, d);
                    }
                    MemberFate::Ended { .. } => {
                        due.remove(&m);
                    }
                }
            }
        }
        // Exactly when due: everything due by now was claimed this round, nothing else.
        for (m, d) in &due {
            if !claimed_now.contains(m) {
                assert!(*d > now, "member {m} due at {d} was not claimed at {now}");
            }
        }
        round += 1;
    }
    let seen = seen.lock().unwrap().clone();
    let ids: HashSet<AttemptId> = seen.iter().map(|s| s.attempt).collect();
    assert_eq!(ids.len(), seen.len(), "attempt ids are unique");
    let mut per_member: HashMap<MemberId, Vec<&Seen>> = HashMap::new();
    for s in seen.iter() {
        per_member.entry(s.member).or_default().push(s);
    }
    assert_eq!(per_member.len(), MEMBERS);
    for (m, list) in per_member {
        let mut nos: Vec<u32> = list.iter().map(|s| s.attempt_no).collect();
        nos.sort();
        let expected: Vec<u32> = (1..=nos.len() as u32).collect();
        assert_eq!(nos, expected, "member {m}: attempts numbered once each");
        let rounds: HashSet<usize> = list.iter().map(|s| s.round).collect();
        assert_eq!(
            rounds.len(),
            list.len(),
            "member {m} claimed twice in one round"
        );
        let expected_tries = if m.0 % 3 == 0 { 1 } else { 3 };
        assert_eq!(list.len(), expected_tries, "member {m}");
    }
    let cnt = stores[0].counts(C).await.unwrap();
    assert_eq!((cnt.waiting, cnt.active, cnt.ended), (0, 0, MEMBERS as u64));
    assert_eq!(cnt.calls as usize, seen.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_claimers_on_redis_never_share_a_member_and_claim_exactly_when_due() {
    let server = redis_server(false);
    let mut stores = Vec::new();
    for _ in 0..CLAIMERS {
        // A connection per claimer, like separate engine nodes.
        stores.push(Store::open(&server.url()).await.unwrap());
    }
    eight_claimers(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_claimers_on_memory_never_share_a_member_and_claim_exactly_when_due() {
    let store = Store::memory();
    eight_claimers(vec![store; CLAIMERS]).await;
}
