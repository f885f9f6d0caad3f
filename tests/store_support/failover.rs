//! A dialling campaign run against a replicated Redis (Cluster or Sentinel) whose master is killed half-way, and
//! the invariants checked after it: every member ended once, no attempt id claimed twice, the counters equal the
//! attempt log. What it measured (time from the kill to the next successful claim, results acknowledged and then
//! lost with the master) is returned for the test to bound and print.

use chrono::Utc;
use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::schedule::Always;
use fsdialer::store::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::member;

/// Members per campaign; each ends after at most [`MAX_TRIES`] calls.
pub const MEMBERS: usize = 40;
const MAX_TRIES: u32 = 3;
/// Each campaign claims one member per tick: 10 campaigns → 100 calls/s.
const TICK: Duration = Duration::from_millis(100);
/// How long a call lasts before its result is written.
const CALL: Duration = Duration::from_millis(80);
const LEASE: Duration = Duration::from_secs(2);

/// What a run measured.
#[derive(Debug)]
pub struct FailoverReport {
    /// From the kill to the first claim that returned members on the watched campaign.
    pub resumed_after: Duration,
    /// Results the store acknowledged (applied or duplicate).
    pub acknowledged: usize,
    /// Acknowledged results missing from the attempt log after the fail-over (written to the old master only).
    pub results_lost: usize,
    /// Attempts in the log that no claim returned: the claim ran, its reply was lost with the connection, and
    /// the attempt was recovered as lost when its lease expired (never dialled).
    pub claims_lost_in_transit: usize,
    /// Calls that failed while the master was gone (claims, completions, recoveries).
    pub errors: usize,
}

fn policy() -> QueuePolicy {
    QueuePolicy {
        limit: 50,
        max_tries: MAX_TRIES,
        wait_between_retries_sec: 0,
        ..QueuePolicy::default()
    }
}

struct Shared {
    claimed: Mutex<HashSet<AttemptId>>,
    acknowledged: Mutex<Vec<(String, AttemptId)>>,
    errors: Mutex<usize>,
    killed_at: Mutex<Option<Instant>>,
    resumed_at: Mutex<Option<Instant>>,
    stop: AtomicBool,
}

/// Adds [`MEMBERS`] to each campaign, dials them all (one node per campaign), runs `kill` after `kill_after`, and
/// keeps dialling until every member ended; `watched` is the campaign whose first claim after the kill is timed.
/// Completions wait for `wait_replicas` replicas (`store_wait_replicas`).
pub async fn dial_through_a_master_kill(
    url: &str,
    wait_replicas: u32,
    campaigns: &[String],
    watched: &str,
    kill_after: Duration,
    kill: impl FnOnce(),
) -> FailoverReport {
    let store = Store::open(url)
        .await
        .expect("connect")
        .with_wait_replicas(wait_replicas)
        .expect("a Redis store");
    for c in campaigns {
        let members: Vec<_> = (0..MEMBERS)
            .map(|i| member(&format!("{c}-{i}"), &["1", "2"]))
            .collect();
        store.add(c, &members, Utc::now()).await.expect("add");
    }
    let shared = Arc::new(Shared {
        claimed: Mutex::default(),
        acknowledged: Mutex::default(),
        errors: Mutex::default(),
        killed_at: Mutex::default(),
        resumed_at: Mutex::default(),
        stop: AtomicBool::new(false),
    });
    let workers: Vec<_> = campaigns
        .iter()
        .map(|c| {
            let (store, shared, c) = (store.clone(), shared.clone(), c.clone());
            let watched = c == watched;
            tokio::spawn(async move { dial(store, &c, watched, &shared).await })
        })
        .collect();
    tokio::time::sleep(kill_after).await;
    kill();
    *shared.killed_at.lock().unwrap() = Some(Instant::now());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut done = true;
        for c in campaigns {
            match store.counts(c).await {
                Ok(n) => done &= n.waiting == 0 && n.active == 0,
                Err(_) => done = false,
            }
        }
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the campaigns did not finish within 60 s after the kill"
        );
    }
    shared.stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.expect("worker");
    }
    // The invariants are read through the run's own connection: on Sentinel it only ever reads from a server that
    // answers as the master (`store::redis::conn`), never from the killed one back at its address as a replica.
    check_invariants(&store, campaigns, &shared).await
}

async fn dial(store: Store, c: &str, watched: bool, shared: &Shared) {
    let policy = policy();
    let mut last_recovery = Instant::now();
    let fail = || *shared.errors.lock().unwrap() += 1;
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(TICK).await;
        if last_recovery.elapsed() > Duration::from_millis(500) {
            last_recovery = Instant::now();
            if store
                .recover_expired(c, &policy, &Always, Utc::now(), 100)
                .await
                .is_err()
            {
                fail();
            }
        }
        let batch = match store
            .claim(c, &policy, &Always, Utc::now(), 1, c, LEASE)
            .await
        {
            Ok(b) => b,
            Err(_) => {
                fail();
                continue;
            }
        };
        if batch.claims.is_empty() {
            continue;
        }
        if watched
            && shared.killed_at.lock().unwrap().is_some()
            && shared.resumed_at.lock().unwrap().is_none()
        {
            *shared.resumed_at.lock().unwrap() = Some(Instant::now());
        }
        for claim in &batch.claims {
            assert!(
                shared.claimed.lock().unwrap().insert(claim.attempt_id),
                "attempt {} claimed twice",
                claim.attempt_id
            );
        }
        tokio::time::sleep(CALL).await;
        for claim in batch.claims {
            let class = if claim.attempt_no % 2 == 0 {
                CauseClass::Ok
            } else {
                CauseClass::Retry
            };
            let result = AttemptResult {
                attempt_id: claim.attempt_id,
                member_id: claim.member_id,
                cause: match class {
                    CauseClass::Ok => "NORMAL_CLEARING",
                    _ => "NO_ANSWER",
                }
                .into(),
                class,
                answered_at: None,
                hangup_at: None,
                talk_secs: 0,
                note: None,
            };
            // A result is retried until the store answers (the same result twice is applied once).
            loop {
                match store
                    .complete(c, &policy, &Always, &result, Utc::now())
                    .await
                {
                    Ok(CompleteOutcome::Applied(_) | CompleteOutcome::Duplicate) => {
                        shared
                            .acknowledged
                            .lock()
                            .unwrap()
                            .push((c.to_string(), claim.attempt_id));
                        break;
                    }
                    // The lease expired while the master was away and the attempt was recovered as lost.
                    Ok(CompleteOutcome::NotCurrent) => break,
                    Err(_) => {
                        fail();
                        if shared.stop.load(Ordering::SeqCst) {
                            return;
                        }
                        tokio::time::sleep(TICK).await;
                    }
                }
            }
        }
    }
}

async fn check_invariants(store: &Store, campaigns: &[String], shared: &Shared) -> FailoverReport {
    let claimed = shared.claimed.lock().unwrap().clone();
    let mut logged: HashSet<AttemptId> = HashSet::new();
    let mut unseen = 0;
    for c in campaigns {
        let page = store
            .list(
                c,
                &ListQuery {
                    limit: 10 * MEMBERS,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.members.len(), MEMBERS, "{c}: members lost");
        let counts = store.counts(c).await.unwrap();
        let mut calls = 0u64;
        let mut ended_by_cause: HashMap<String, u64> = HashMap::new();
        for m in &page.members {
            assert_eq!(
                m.state,
                MemberState::Ended,
                "{c}: member {} not ended",
                m.id
            );
            *ended_by_cause
                .entry(m.end_cause.clone().unwrap_or_default())
                .or_default() += 1;
            for a in store.attempts(c, m.id).await.unwrap() {
                calls += 1;
                assert!(
                    logged.insert(a.attempt_id),
                    "{c}: attempt {} logged twice",
                    a.attempt_id
                );
                if !claimed.contains(&a.attempt_id) {
                    // Claimed by a call whose reply was lost with the connection, then recovered as lost.
                    unseen += 1;
                }
            }
        }
        assert_eq!(counts.calls, calls, "{c}: calls counter vs attempt log");
        assert_eq!(counts.ended, MEMBERS as u64, "{c}: {counts:?}");
        for (cause, n) in &ended_by_cause {
            assert_eq!(
                counts.ended_by_cause.get(cause),
                Some(n),
                "{c}: end cause {cause} counter vs members"
            );
        }
    }
    let acknowledged = shared.acknowledged.lock().unwrap().clone();
    let results_lost = acknowledged
        .iter()
        .filter(|(_, a)| !logged.contains(a))
        .count();
    let killed_at = shared.killed_at.lock().unwrap().expect("killed");
    let resumed_at = shared
        .resumed_at
        .lock()
        .unwrap()
        .expect("the watched campaign claimed again after the kill");
    FailoverReport {
        resumed_after: resumed_at - killed_at,
        acknowledged: acknowledged.len(),
        results_lost,
        claims_lost_in_transit: unseen,
        errors: *shared.errors.lock().unwrap(),
    }
}
