//! Webhooks with real processes: a Redis server, a `fsdialer sim` switch, `fsdialer run` (killed with -9 and
//! started again), and an HTTP receiver in the test that checks every signature, refuses nothing it can verify,
//! and records each `Idempotency-Key` it accepted. Also the write-ahead markers on Redis: an attempt completed
//! by an engine that died before queuing its events is delivered after the sweep.

use super::api_support::*;
use super::lifecycle::{post, signal, spawn_run, spawn_sim, wait_exit, write_node_config};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use fsdialer::store::{MemberId, Store};
use fsdialer::webhooks::sign;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_test_0123456789";

/// One request the receiver accepted.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    event: String,
    body: Value,
}

#[derive(Default)]
struct ReceiverState {
    accepted: Mutex<Vec<Received>>,
    /// Requests whose signature did not verify (answered 400).
    bad_signatures: Mutex<Vec<String>>,
    /// Each request waits this long before answering.
    delay: Mutex<Duration>,
}

/// The receiver: verifies the signature as a CRM would (with the crate's `verify`, and the HMAC recomputed here),
/// answers 204 and records the delivery.
async fn receive(
    State(st): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let delay = *st.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let sig = h(sign::SIGNATURE_HEADER);
    let now = chrono::Utc::now().timestamp();
    let by_crate = sign::verify(SECRET, &sig, body.as_bytes(), now, 300);
    let by_hand = {
        use hmac::Mac;
        let t = sig
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .unwrap_or("");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes())) == sig
    };
    if by_crate.is_err() || !by_hand {
        st.bad_signatures.lock().unwrap().push(sig);
        return StatusCode::BAD_REQUEST;
    }
    st.accepted.lock().unwrap().push(Received {
        key: h(sign::IDEMPOTENCY_HEADER),
        event: h(sign::EVENT_HEADER),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    StatusCode::NO_CONTENT
}

/// A receiver listening on `port` (0: any) until the handle is aborted.
async fn start_receiver(st: Arc<ReceiverState>, port: u16) -> (tokio::task::JoinHandle<()>, u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("receiver cannot listen on {port}: {e}"));
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(st);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (task, port)
}

/// A port nothing listens on now (taken, then freed).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn campaign_with_hook(id: &str, port: u16, retry_max_ms: u64) -> Value {
    let mut c = campaign(id);
    c["limit"] = json!(10);
    c["max_tries"] = json!(2);
    c["wait_between_retries_sec"] = json!(1);
    c["webhooks"] = json!([{
        "url": format!("http://127.0.0.1:{port}/hook"),
        "events": ["attempt_end", "member_end", "campaign_state"],
        "secret": SECRET,
        "timeout_ms": 2000,
        "max_attempts": 100,
        "retry_min_ms": 100,
        "retry_max_ms": retry_max_ms,
    }]);
    c
}

/// Every member ended, from the store.
async fn wait_all_ended(store: &Store, campaign: &str, n: u64, secs: u64) {
    let done = eventually(secs, || async {
        let c = store.counts(campaign).await.ok()?;
        (c.ended == n).then_some(())
    })
    .await;
    assert!(done.is_some(), "{:?}", store.counts(campaign).await);
}

/// The attempt and member events every member's records call for: `(idempotency key, member id)`.
async fn expected_member_events(store: &Store, campaign: &str, n: u64) -> HashMap<String, u64> {
    let mut want = HashMap::new();
    for id in 1..=n {
        for r in store.attempts(campaign, MemberId(id)).await.unwrap() {
            want.insert(format!("attempt_end:{}", r.attempt_id), id);
            if matches!(r.fate, fsdialer::store::MemberFate::Ended { .. }) {
                want.insert(format!("member_end:{}", r.attempt_id), id);
            }
        }
    }
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_and_an_engine_killed_lose_no_event_and_deliver_each_key_once_in_member_order()
 {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&redis.url()).await.unwrap();
    let (_sim, sim_addr) = spawn_sim("10");
    let dir = tempfile::tempdir().unwrap();
    let config = write_node_config(dir.path(), "webhook-node", &redis.url(), &sim_addr);
    let port = free_port();
    const N: u64 = 12;
    const CAMPAIGN: &str = "hooked";

    // The receiver is down while the whole campaign runs.
    let (mut first, base) = spawn_run(&config);
    fsdialer::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    post(
        &http,
        format!("{base}/api/v2/dialer"),
        campaign_with_hook(CAMPAIGN, port, 1000),
    )
    .await;
    // Answering members (one attempt, success) and busy ones (a retry, then MAX_TRY_COUNT).
    let members: Vec<Value> = (0..N)
        .map(|i| {
            member(
                &format!("m{i}"),
                if i % 3 == 0 { "busy" } else { "answer_5" },
            )
        })
        .collect();
    post(
        &http,
        format!("{base}/api/v2/dialer/{CAMPAIGN}/members?autoRun=true"),
        json!(members),
    )
    .await;
    wait_all_ended(&store, CAMPAIGN, N, 60).await;
    let want = expected_member_events(&store, CAMPAIGN, N).await;
    assert_eq!(
        want.len() as u64,
        N + N + N / 3,
        "attempts and member ends: {want:?}"
    );
    let queued = eventually(10, || async {
        let c = store.outbox_counts(CAMPAIGN).await.ok()?;
        (c.queued >= want.len() as u64 && c.markers == 0).then_some(c)
    })
    .await;
    assert!(
        queued.is_some(),
        "every event waits in the outbox: {:?}",
        store.outbox_counts(CAMPAIGN).await
    );

    // The engine dies with all of it undelivered; the receiver comes up while no engine runs.
    signal(&first, "-KILL");
    wait_exit(&mut first, 10);
    let st = Arc::new(ReceiverState::default());
    let (receiver, _) = start_receiver(st.clone(), port).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        st.accepted.lock().unwrap().is_empty(),
        "nothing is sent while no engine runs"
    );

    // The restarted engine delivers everything.
    let (mut second, _base) = spawn_run(&config);
    let delivered = eventually(30, || async {
        let got = st.accepted.lock().unwrap();
        let keys: HashSet<&str> = got.iter().map(|r| r.key.as_str()).collect();
        want.keys().all(|k| keys.contains(k.as_str())).then_some(())
    })
    .await;
    let got = st.accepted.lock().unwrap().clone();
    assert!(
        delivered.is_some(),
        "delivered {} of {}: {got:?}",
        got.len(),
        want.len()
    );
    // Let any late duplicate arrive before counting.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got = st.accepted.lock().unwrap().clone();
    assert!(st.bad_signatures.lock().unwrap().is_empty());
    let mut seen = HashSet::new();
    for r in &got {
        assert!(seen.insert(r.key.clone()), "{} delivered twice", r.key);
        assert_eq!(r.body["id"], r.key, "the body names its key");
        assert_eq!(
            r.body["type"], r.event,
            "X-Fsdialer-Event is the body's type"
        );
    }
    // Per member: attempts in order, the member's end last.
    for id in 1..=N {
        let mine: Vec<&Received> = got
            .iter()
            .filter(|r| r.body["member"]["id"] == json!(id))
            .collect();
        let order: Vec<(String, u64)> = mine
            .iter()
            .map(|r| {
                (
                    r.event.clone(),
                    r.body["attempt_no"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .collect();
        let mut sorted = order.clone();
        sorted.sort_by_key(|(e, no)| (e == "member_end", *no));
        assert_eq!(order, sorted, "member {id}'s events in order");
        let last = mine
            .iter()
            .rev()
            .find(|r| r.event == "attempt_end")
            .unwrap();
        assert_eq!(last.body["is_last"], json!(true), "member {id}");
        let busy = (id - 1) % 3 == 0;
        let end = mine.iter().find(|r| r.event == "member_end").unwrap();
        assert_eq!(
            end.body["success"],
            json!(!busy),
            "member {id}: {}",
            end.body
        );
        if !busy {
            assert_eq!(last.body["cause"], "NORMAL_CLEARING");
            assert_eq!(last.body["class"], "ok");
            assert_eq!(last.body["outcome"], "success");
            assert!(last.body["talk_secs"].is_u64(), "{}", last.body);
        }
    }
    let states: Vec<&Received> = got.iter().filter(|r| r.event == "campaign_state").collect();
    assert!(
        states.iter().any(|r| r.body["new_state"] == "running"),
        "campaign_state events: {states:?}"
    );
    let counts = store.outbox_counts(CAMPAIGN).await.unwrap();
    assert_eq!((counts.queued, counts.dead), (0, 0), "{counts:?}");
    receiver.abort();
    signal(&second, "-TERM");
    wait_exit(&mut second, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_never_slows_the_dialling_and_dead_letters_are_listed_and_replayed_through_the_api()
 {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&redis.url()).await.unwrap();
    let (_sim, sim_addr) = spawn_sim("10");
    let dir = tempfile::tempdir().unwrap();
    let config = write_node_config(dir.path(), "slow-node", &redis.url(), &sim_addr);
    // A read-only key too.
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "role = \"admin\"\n",
        &format!(
            "role = \"admin\"\n[[api.keys]]\nid = \"{}\"\nsecret = \"{}\"\nrole = \"read-only\"\n",
            READER.0, READER.1
        ),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let st = Arc::new(ReceiverState::default());
    *st.delay.lock().unwrap() = Duration::from_secs(30);
    let (receiver, port) = start_receiver(st.clone(), 0).await;
    const N: u64 = 60;
    const CAMPAIGN: &str = "slowhook";

    let (mut node, base) = spawn_run(&config);
    fsdialer::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let mut c = campaign_with_hook(CAMPAIGN, port, 1000);
    c["limit"] = json!(30);
    c["webhooks"][0]["max_attempts"] = json!(1);
    c["webhooks"][0]["events"] = json!(["attempt_end"]);
    post(&http, format!("{base}/api/v2/dialer"), c).await;
    let members: Vec<Value> = (0..N)
        .map(|i| member(&format!("m{i}"), "answer_5"))
        .collect();
    let t = Instant::now();
    post(
        &http,
        format!("{base}/api/v2/dialer/{CAMPAIGN}/members?autoRun=true"),
        json!(members),
    )
    .await;
    // 60 calls of 0.5 s at 30 at a time: about a second of dialling, while each delivery takes 2 s to time out.
    wait_all_ended(&store, CAMPAIGN, N, 20).await;
    let dialled_in = t.elapsed();
    let pending = store.outbox_counts(CAMPAIGN).await.unwrap();
    assert!(
        pending.queued > 0,
        "the campaign finished while deliveries were still waiting: {pending:?} after {dialled_in:?}"
    );
    assert!(
        dialled_in < Duration::from_secs(10),
        "dialling took {dialled_in:?}"
    );

    // Every delivery times out once (max_attempts 1): all of them end as dead letters.
    let key = [("X-Key", ADMIN.0), ("X-Access-Token", ADMIN.1)];
    let get = |path: String| {
        let rq = key
            .iter()
            .fold(http.get(&path), |rq, (k, v)| rq.header(*k, *v));
        async move { rq.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let dead = eventually(60, || async {
        let c = store.outbox_counts(CAMPAIGN).await.ok()?;
        (c.dead == N && c.queued == 0).then_some(c)
    })
    .await;
    assert!(dead.is_some(), "{:?}", store.outbox_counts(CAMPAIGN).await);
    let page = get(format!(
        "{base}/api/v2/dialer/{CAMPAIGN}/webhooks/dead?limit=5"
    ))
    .await;
    assert_eq!(page["data"]["total"], json!(N), "{page}");
    let first = &page["data"]["items"][0];
    assert!(
        first["last_error"].as_str().unwrap().contains("timeout"),
        "{first}"
    );
    assert_eq!(first["attempts"], json!(1));

    // Read-only keys may read but not replay.
    let did = first["id"].as_str().unwrap().to_owned();
    let replay_one = format!("{base}/api/v2/dialer/{CAMPAIGN}/webhooks/dead/{did}/replay");
    let r = http
        .post(&replay_one)
        .header("X-Key", READER.0)
        .header("X-Access-Token", READER.1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The secret is shown to admin keys only.
    let seen_by = |key: (&'static str, &'static str)| {
        let rq = http
            .get(format!("{base}/api/v2/dialer/{CAMPAIGN}"))
            .header("X-Key", key.0)
            .header("X-Access-Token", key.1);
        async move {
            rq.send().await.unwrap().json::<Value>().await.unwrap()["data"]["webhooks"][0]["secret"]
                .clone()
        }
    };
    assert_eq!(seen_by(READER).await, json!("(hidden)"));
    assert_eq!(seen_by(ADMIN).await, json!(SECRET));

    // The receiver is fast now: replaying every dead letter delivers each once.
    *st.delay.lock().unwrap() = Duration::ZERO;
    let before = st.accepted.lock().unwrap().len();
    let r = key
        .iter()
        .fold(
            http.post(format!(
                "{base}/api/v2/dialer/{CAMPAIGN}/webhooks/dead/replay"
            )),
            |rq, (k, v)| rq.header(*k, *v),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["replayed"], json!(N));
    let all = eventually(30, || async {
        let got = st.accepted.lock().unwrap();
        let keys: HashSet<&str> = got[before..].iter().map(|r| r.key.as_str()).collect();
        (keys.len() as u64 == N).then_some(())
    })
    .await;
    assert!(all.is_some(), "replayed events delivered");
    // Each delivery is settled once its 2xx is read (the receiver records it just before answering).
    let settled = eventually(10, || async {
        let c = store.outbox_counts(CAMPAIGN).await.ok()?;
        (c.queued == 0 && c.dead == 0).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "{:?}",
        store.outbox_counts(CAMPAIGN).await
    );
    let gone = key
        .iter()
        .fold(http.post(&replay_one), |rq, (k, v)| rq.header(*k, *v))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404, "a replayed letter is no longer dead");
    receiver.abort();
    signal(&node, "-TERM");
    wait_exit(&mut node, 30);
}

#[tokio::test]
async fn an_attempt_completed_by_an_engine_that_died_before_queuing_its_events_is_queued_by_the_sweep()
 {
    use fsdialer::campaign::CauseClass;
    use fsdialer::campaign::schedule::Always;
    use fsdialer::store::{AttemptResult, QueuePolicy};
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&redis.url()).await.unwrap();
    let hooks: Vec<fsdialer::campaign::WebhookConfig> =
        serde_json::from_value(campaign_with_hook("c", 9, 1000)["webhooks"].clone()).unwrap();
    let now = chrono::Utc::now();
    let input: fsdialer::campaign::MemberInput =
        serde_json::from_value(member("Olena", "380441234567")).unwrap();
    store.add("c", &[input], now).await.unwrap();
    let policy = QueuePolicy::default();
    let claim = store
        .claim(
            "c",
            &policy,
            &Always,
            now,
            1,
            "dead-node",
            Duration::from_secs(30),
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
        answered_at: Some(now),
        hangup_at: Some(now),
        talk_secs: 42,
        note: Some(r#"{"amd":{"result":"HUMAN"}}"#.into()),
    };
    // What the completer does, up to the crash: the marker, then the completion; no resolution.
    store
        .outbox_mark("c", &[(claim.attempt_id, claim.member_id)], now)
        .await
        .unwrap();
    store
        .complete("c", &policy, &Always, &result, now)
        .await
        .unwrap();

    let sweep = fsdialer::webhooks::resolve::sweep_markers;
    let grace = Duration::from_secs(30);
    assert_eq!(
        sweep(&store, "c", &hooks, now, grace).await.unwrap(),
        0,
        "a fresh marker is left to its engine"
    );
    let later = now + chrono::Duration::seconds(31);
    assert_eq!(
        sweep(&store, "c", &hooks, later, grace).await.unwrap(),
        2,
        "attempt_end and member_end"
    );
    assert_eq!(
        sweep(&store, "c", &hooks, later, grace).await.unwrap(),
        0,
        "queued once"
    );
    let taken = store
        .outbox_take("c", later, Duration::from_secs(5), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "one member: one chain head at a time");
    let body: Value = serde_json::from_str(&taken[0].body).unwrap();
    assert_eq!(
        taken[0].event_id,
        format!("attempt_end:{}", claim.attempt_id)
    );
    assert_eq!(body["talk_secs"], json!(42));
    assert_eq!(body["amd"]["result"], "HUMAN");
    assert_eq!(body["is_last"], json!(true));
    assert_eq!(store.outbox_counts("c").await.unwrap().markers, 0);
}
