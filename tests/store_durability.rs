//! Redis is killed (SIGKILL) and restarted mid-run with `appendonly yes` / `appendfsync always`: nothing that was
//! acknowledged is lost, and the store keeps working after the restart without being rebuilt. A Redis that runs out
//! of memory refuses whole operations: nothing is half-applied. Over TLS (`rediss://`) the store works with its
//! private CA trusted, and a server whose certificate is not trusted is refused.

mod store_support;
mod tls_support;

use chrono::Utc;
use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::schedule::Always;
use fsdialer::store::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store_support::*;
use tls_support::TestPki;

const C: &str = "durable";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_run_loses_nothing_acknowledged() {
    let mut server = redis_server(true);
    let store = Store::open(&server.url()).await.unwrap();
    let policy = QueuePolicy {
        limit: 1000,
        wait_between_retries_sec: 0,
        max_tries: 1000,
        ..QueuePolicy::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    // Acknowledged adds: external id → member id. Acknowledged completes: attempt → member.
    let added: Arc<Mutex<HashMap<String, MemberId>>> = Arc::default();
    let completed: Arc<Mutex<Vec<(AttemptId, MemberId)>>> = Arc::default();
    let errors = Arc::new(Mutex::new(0usize));

    let adder = {
        let (store, stop, added, errors) =
            (store.clone(), stop.clone(), added.clone(), errors.clone());
        tokio::spawn(async move {
            let mut batch = 0;
            while !stop.load(Ordering::SeqCst) {
                let members: Vec<_> = (0..20)
                    .map(|i| {
                        let mut m = member(&format!("b{batch}-{i}"), &["1"]);
                        m.external_id = Some(format!("b{batch}-{i}"));
                        m
                    })
                    .collect();
                match store.add(C, &members, Utc::now()).await {
                    Ok(out) => {
                        let mut a = added.lock().unwrap();
                        for (m, o) in members.iter().zip(out) {
                            a.insert(m.external_id.clone().unwrap(), o.id());
                        }
                        batch += 1;
                    }
                    // Unknown outcome: retry the same batch (external ids make it idempotent).
                    Err(_) => {
                        *errors.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        })
    };
    let dialer = {
        let (store, stop, completed, policy, errors) = (
            store.clone(),
            stop.clone(),
            completed.clone(),
            policy.clone(),
            errors.clone(),
        );
        tokio::spawn(async move {
            let mut pending: Vec<Claim> = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                if pending.is_empty() {
                    match store
                        .claim(
                            C,
                            &policy,
                            &Always,
                            Utc::now(),
                            10,
                            "n1",
                            Duration::from_secs(600),
                        )
                        .await
                    {
                        Ok(b) => pending = b.claims,
                        Err(_) => {
                            *errors.lock().unwrap() += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    continue;
                }
                let c = pending.last().unwrap().clone();
                n += 1;
                let class = if n.is_multiple_of(2) {
                    CauseClass::Ok
                } else {
                    CauseClass::Retry
                };
                let r = AttemptResult {
                    attempt_id: c.attempt_id,
                    member_id: c.member_id,
                    cause: if class == CauseClass::Ok {
                        "NORMAL_CLEARING"
                    } else {
                        "NO_ANSWER"
                    }
                    .into(),
                    class,
                    answered_at: None,
                    hangup_at: None,
                    talk_secs: 0,
                    note: None,
                };
                match store.complete(C, &policy, &Always, &r, Utc::now()).await {
                    Ok(CompleteOutcome::Applied(_)) => {
                        completed.lock().unwrap().push((c.attempt_id, c.member_id));
                        pending.pop();
                    }
                    // Applied before the crash, acknowledged only now: still exactly once.
                    Ok(CompleteOutcome::Duplicate) => {
                        completed.lock().unwrap().push((c.attempt_id, c.member_id));
                        pending.pop();
                    }
                    Ok(CompleteOutcome::NotCurrent) => {
                        panic!("attempt {} lost its member", c.attempt_id)
                    }
                    Err(_) => {
                        *errors.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(700)).await;
    let before_kill = (added.lock().unwrap().len(), completed.lock().unwrap().len());
    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart().expect("redis-server restarts on its data");
    // Keep going after the restart until more work was acknowledged.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = (added.lock().unwrap().len(), completed.lock().unwrap().len());
        if now.0 > before_kill.0 + 100 && now.1 > before_kill.1 + 100 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store did not recover after the restart: {now:?}"
        );
    }
    stop.store(true, Ordering::SeqCst);
    adder.await.unwrap();
    dialer.await.unwrap();
    assert!(
        *errors.lock().unwrap() > 0,
        "the outage was seen by the clients"
    );
    assert!(
        before_kill.0 > 0 && before_kill.1 > 0,
        "work was acknowledged before the kill: {before_kill:?}"
    );

    // Kill once more, right after the last acknowledgements, and check against what survives on disk.
    server.kill();
    server.restart().unwrap();
    let check = Store::open(&server.url()).await.unwrap();
    let added = added.lock().unwrap().clone();
    for (ext, id) in &added {
        let m = check.get(C, *id).await.unwrap();
        let m = m.unwrap_or_else(|| panic!("acknowledged member {ext} ({id}) was lost"));
        assert_eq!(m.external_id.as_deref(), Some(ext.as_str()));
    }
    let completed = completed.lock().unwrap().clone();
    let mut by_member: HashMap<MemberId, Vec<AttemptId>> = HashMap::new();
    for (a, m) in &completed {
        by_member.entry(*m).or_default().push(*a);
    }
    for (m, attempts) in &by_member {
        let log: Vec<AttemptId> = check
            .attempts(C, *m)
            .await
            .unwrap()
            .iter()
            .map(|r| r.attempt_id)
            .collect();
        for a in attempts {
            assert!(
                log.contains(a),
                "acknowledged completion of attempt {a} (member {m}) was lost"
            );
        }
    }
    let cnt = check.counts(C).await.unwrap();
    assert!(cnt.calls as usize >= completed.len());
    assert_eq!(
        cnt.waiting + cnt.active + cnt.ended,
        added.len() as u64,
        "{cnt:?}"
    );
}

#[tokio::test]
async fn redis_out_of_memory_refuses_whole_operations_and_changes_nothing() {
    let server = redis_server(false);
    let store = Store::open(&server.url()).await.unwrap();
    let policy = QueuePolicy::default();
    let now = t(10, 0);
    let members: Vec<_> = (0..50).map(|i| member(&format!("m{i}"), &["1"])).collect();
    store.add(C, &members, now).await.unwrap();
    let claims = store
        .claim(C, &policy, &Always, now, 5, "n1", Duration::from_secs(60))
        .await
        .unwrap()
        .claims;
    let before = (
        store.counts(C).await.unwrap(),
        store
            .list(
                C,
                &ListQuery {
                    limit: 100,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap(),
    );
    let Store::Redis(r) = &store else {
        unreachable!()
    };
    let _: () = ::redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(1)
        .query_async(&mut r.connection())
        .await
        .unwrap();
    let results: Vec<AttemptResult> = claims
        .iter()
        .map(|c| AttemptResult {
            attempt_id: c.attempt_id,
            member_id: c.member_id,
            cause: "USER_BUSY".into(),
            class: CauseClass::Retry,
            answered_at: None,
            hangup_at: None,
            talk_secs: 0,
            note: None,
        })
        .collect();
    let err = store
        .complete_many(C, &policy, &Always, &results, now)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("redis complete:") && err.to_string().contains("OOM"),
        "{err}"
    );
    let err = store.add(C, &members, now).await.unwrap_err();
    assert!(err.to_string().contains("OOM"), "{err}");
    let err = store
        .claim(C, &policy, &Always, now, 5, "n1", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("OOM"), "{err}");
    let after = (
        store.counts(C).await.unwrap(),
        store
            .list(
                C,
                &ListQuery {
                    limit: 100,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap(),
    );
    assert_eq!(before, after, "a refused operation changed nothing");
}

/// A redis-server serving TLS with a certificate of `pki` (its plain port is only used to see it is up).
fn tls_redis_server(pki: &TestPki) -> local_redis::LocalRedis {
    local_redis::LocalRedis::start(local_redis::LocalRedisOptions {
        tls: Some(local_redis::LocalRedisTls {
            cert_file: pki.cert_file.clone(),
            key_file: pki.key_file.clone(),
            ca_file: pki.ca_file.clone(),
        }),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_store_over_rediss_adds_claims_completes_and_counts_with_its_private_ca_trusted() {
    let pki = TestPki::new("fsdialer test CA");
    let server = tls_redis_server(&pki);
    assert!(
        server.url().starts_with("rediss://127.0.0.1:"),
        "{}",
        server.url()
    );
    let tls = StoreTls {
        ca_file: Some(pki.ca_file.clone()),
    };
    let store = Store::open_with(&server.url(), &tls, AttemptIds::Random)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.backend(), "redis");
    let policy = QueuePolicy::default();
    let now = t(10, 0);
    let members = [member("a", &["100"]), member("b", &["200"])];
    store.add(C, &members, now).await.unwrap();
    let claims = store
        .claim(C, &policy, &Always, now, 1, "n1", Duration::from_secs(60))
        .await
        .unwrap()
        .claims;
    assert_eq!(claims.len(), 1);
    let r = AttemptResult {
        attempt_id: claims[0].attempt_id,
        member_id: claims[0].member_id,
        cause: "NORMAL_CLEARING".into(),
        class: CauseClass::Ok,
        answered_at: None,
        hangup_at: None,
        talk_secs: 0,
        note: None,
    };
    assert!(matches!(
        store.complete(C, &policy, &Always, &r, now).await.unwrap(),
        CompleteOutcome::Applied(_)
    ));
    let counts = store.counts(C).await.unwrap();
    assert_eq!(
        (counts.waiting, counts.active, counts.ended),
        (1, 0, 1),
        "{counts:?}"
    );
}

#[tokio::test]
async fn a_store_over_rediss_refuses_a_server_certificate_it_does_not_trust() {
    let pki = TestPki::new("fsdialer test CA");
    let server = tls_redis_server(&pki);
    // Trusting another CA only, then the system's trust store: both refuse the server's certificate.
    let other = TestPki::new("another CA");
    for tls in [
        StoreTls {
            ca_file: Some(other.ca_file.clone()),
        },
        StoreTls::default(),
    ] {
        let e = match Store::open_with(&server.url(), &tls, AttemptIds::Random).await {
            Ok(_) => panic!("connected with {tls:?} to a server signed by an untrusted CA"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.starts_with("redis connect over TLS: invalid peer certificate"),
            "{tls:?}: {e}"
        );
        assert!(e.contains("store_ca_file"), "{e}");
    }
}

fn campaigns() -> Vec<String> {
    (0..10).map(|i| format!("fo{i}")).collect()
}

/// Ten campaigns spread over a cluster's shards dial at 100 calls/s; the master serving the first is killed:
/// its replica takes over, dialling resumes within 5 s, and every invariant holds (see `store_support::failover`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_mid_campaign_fails_over_without_losing_members_or_dialling_twice()
{
    let mut cluster = local_redis::LocalCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let campaigns = campaigns();
    let shards: std::collections::HashSet<u16> = campaigns
        .iter()
        .map(|c| cluster.master_port_of(&format!("dlr:{{{c}}}:")).unwrap())
        .collect();
    assert!(shards.len() > 1, "the campaigns are spread over the shards");
    let watched = format!("dlr:{{{}}}:", campaigns[0]);
    let url = cluster.url();
    let report = failover::dial_through_a_master_kill(
        &url,
        0,
        &campaigns,
        &campaigns[0],
        Duration::from_secs(2),
        || {
            cluster.kill_master_of(&watched).unwrap();
        },
    )
    .await;
    eprintln!("cluster fail-over: {report:?}");
    assert!(report.errors > 0, "the kill was seen by the clients");
    assert!(
        report.resumed_after < Duration::from_secs(5),
        "dialling resumed after {:?}",
        report.resumed_after
    );
}

/// Ten campaigns on a Sentinel-watched master dial at 100 calls/s; the master is killed: the Sentinels promote the
/// replica, the store finds it, dialling resumes within 5 s, and every invariant holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_killed_mid_campaign_fails_over_without_losing_members_or_dialling_twice()
{
    let mut set = local_redis::LocalSentinel::start().unwrap_or_else(|e| panic!("{e}"));
    let campaigns = campaigns();
    let url = set.url();
    let report = failover::dial_through_a_master_kill(
        &url,
        0,
        &campaigns,
        &campaigns[0],
        Duration::from_secs(2),
        || {
            set.kill_master().unwrap();
        },
    )
    .await;
    eprintln!("sentinel fail-over: {report:?}");
    assert!(report.errors > 0, "the kill was seen by the clients");
    assert!(
        report.resumed_after < Duration::from_secs(5),
        "dialling resumed after {:?}",
        report.resumed_after
    );
}

/// The port of the server a store's own connection reaches now (`INFO server` through it).
async fn server_port(store: &Store) -> Result<u16, String> {
    let Store::Redis(redis) = store else {
        panic!("a Redis store")
    };
    let info: String = ::redis::cmd("INFO")
        .arg("server")
        .query_async(&mut redis.connection())
        .await
        .map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.strip_prefix("tcp_port:"))
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| format!("no tcp_port in {info}"))
}

/// A Sentinel master is killed and comes back at its old address as a replica of the promoted one: the store keeps
/// reading through its own connection, and every read after the fail-over reaches the promoted master (never the
/// old address, whose server is a replica that may still be syncing), with everything written before the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_store_reads_only_from_the_promoted_master_through_its_own_connection_after_the_old_one_returns_as_a_replica()
 {
    const CAMPAIGN: &str = "stale-read";
    let mut set = local_redis::LocalSentinel::start().unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&set.url()).await.expect("connect");
    let members: Vec<_> = (0..50)
        .map(|i| member(&format!("m{i}"), &["1", "2"]))
        .collect();
    store
        .add(CAMPAIGN, &members, Utc::now())
        .await
        .expect("add");
    let Store::Redis(redis) = &store else {
        panic!("a Redis store")
    };
    // Replicated before the kill, so the promoted replica has it.
    let replicas: i64 = ::redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query_async(&mut redis.connection())
        .await
        .expect("WAIT");
    assert_eq!(replicas, 1);
    let old = set.kill_master().expect("kill");
    assert_eq!(
        server_port(&store).await.ok(),
        None,
        "the killed master answered"
    );
    let promoted = set
        .wait_promoted(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(promoted, old);
    set.restart_killed().expect("restart as a replica");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let counts = loop {
        match store.counts(CAMPAIGN).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no read succeeded: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(counts.waiting, 50, "{counts:?}");
    // Over several role re-checks, every read goes to the promoted master.
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        assert_eq!(
            server_port(&store).await,
            Ok(promoted),
            "read from another server"
        );
        assert_eq!(store.counts(CAMPAIGN).await.expect("counts").waiting, 50);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The same fail-over with `store_wait_replicas = 1`: every acknowledged result was confirmed by the replica that
/// is promoted, so none is missing afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_no_acknowledged_result_is_lost_when_the_sentinel_master_dies() {
    let set = Arc::new(Mutex::new(
        local_redis::LocalSentinel::start().unwrap_or_else(|e| panic!("{e}")),
    ));
    let campaigns = campaigns();
    let url = set.lock().unwrap().url();
    let report = failover::dial_through_a_master_kill(
        &url,
        1,
        &campaigns,
        &campaigns[0],
        Duration::from_secs(2),
        || {
            set.lock().unwrap().kill_master().unwrap();
            // The promoted replica has no replica of its own until the old master comes back as one: completions
            // fail as not replicated meanwhile.
            let set = set.clone();
            std::thread::spawn(move || {
                let mut set = set.lock().unwrap();
                set.wait_promoted(Duration::from_secs(20)).unwrap();
                set.restart_killed().unwrap();
            });
        },
    )
    .await;
    eprintln!("sentinel fail-over, wait_replicas = 1: {report:?}");
    assert_eq!(report.results_lost, 0, "{report:?}");
    // With wait_replicas, dialling resumes only once the promoted master has a replica again (the old master
    // restarted as one): that takes the restart too, so the bound is wider than the plain fail-over's 5 s, and a
    // loaded machine stretches it.
    assert!(report.resumed_after < Duration::from_secs(30), "{report:?}");
}

/// A completion no replica confirms is applied on the master but reported as not replicated; repeating it is safe.
#[tokio::test]
async fn a_completion_no_replica_confirms_fails_as_not_replicated_and_its_repeat_is_a_duplicate() {
    let server = redis_server(false);
    let store = Store::open(&server.url())
        .await
        .unwrap()
        .with_wait_replicas(1)
        .unwrap();
    let policy = QueuePolicy::default();
    store
        .add(C, &[member("a", &["1"])], Utc::now())
        .await
        .unwrap();
    let claim = store
        .claim(
            C,
            &policy,
            &Always,
            Utc::now(),
            1,
            "n1",
            Duration::from_secs(60),
        )
        .await
        .unwrap()
        .claims
        .remove(0);
    let result = AttemptResult {
        attempt_id: claim.attempt_id,
        member_id: claim.member_id,
        cause: "NORMAL_CLEARING".into(),
        class: CauseClass::Ok,
        answered_at: None,
        hangup_at: None,
        talk_secs: 0,
        note: None,
    };
    match store
        .complete(C, &policy, &Always, &result, Utc::now())
        .await
    {
        Err(StoreError::NotReplicated {
            wanted: 1,
            acknowledged: 0,
            ..
        }) => {}
        other => panic!("expected NotReplicated, got {other:?}"),
    }
    assert_eq!(
        store.counts(C).await.unwrap().ended,
        1,
        "applied on the master"
    );
    let plain = Store::open(&server.url()).await.unwrap();
    assert_eq!(
        plain
            .complete(C, &policy, &Always, &result, Utc::now())
            .await
            .unwrap(),
        CompleteOutcome::Duplicate
    );
    assert!(Store::memory().with_wait_replicas(1).is_err());
}
