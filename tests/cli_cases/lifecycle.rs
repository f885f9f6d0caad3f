//! `fsdialer run` as a production process next to a switch, with real processes: a Redis server, `fsdialer sim`
//! processes as the switches, and the engine process stopped (SIGTERM, kill -9) and started again in the middle of
//! a campaign; calls that end while no engine runs (recorded from the switch's hangup records); a switch killed for
//! good; a trunk answering GATEWAY_DOWN for a while. After each scenario the invariants are checked from the raw
//! data: every member ended exactly once, no attempt id twice, counted tries within `max_tries`, counters equal to
//! the attempt log, and no call lost that was not truly gone.

use super::Child;
use super::api_support::*;
use fsdialer::campaign::causes::CauseClass;
use fsdialer::store::{AttemptId, AttemptRecord, MemberId, MemberState, Store};
use serde_json::json;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fsdialer");
const CAMPAIGN: &str = "lifecycle";

/// The first line a child prints, with the address after `marker`.
fn address_in_first_line(child: &mut std::process::Child, marker: &str) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    line.split(marker)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(|s| s.trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned())
        .unwrap_or_else(|| panic!("no address after {marker:?} in {line:?}"))
}

/// A `fsdialer sim` process at `speed`.
pub(crate) fn spawn_sim(speed: &str) -> (Child, String) {
    spawn_sim_with(speed, &[])
}

/// A `fsdialer sim` process at `speed`, with more arguments (`--scenario FILE`).
fn spawn_sim_with(speed: &str, more: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--password",
            "ClueCon",
            "--speed",
            speed,
            "--max-sessions",
            "4000",
            "--sessions-per-second",
            "2000",
        ])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = address_in_first_line(&mut child, "listening on ");
    (Child(child), addr)
}

fn write_config(dir: &Path, redis: &str, sim: &str) -> std::path::PathBuf {
    write_node_config(dir, "lifecycle-node", redis, sim)
}

pub(crate) fn write_node_config(
    dir: &Path,
    node: &str,
    redis: &str,
    sim: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"
node_id = "{node}"
store = "{redis}"
[api]
listen = "127.0.0.1:0"
[[api.keys]]
id = "{}"
secret = "{}"
role = "admin"
[engine]
lease_sec = 5
sync_interval_sec = 1
drain_timeout_sec = 60
[[switches]]
name = "sim"
address = "{sim}"
password = "ClueCon"
max_sessions = 2000
sessions_per_second = 400
sessions_per_call = 2
"#,
        ADMIN.0, ADMIN.1
    );
    let path = dir.join(format!("{node}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A `fsdialer run` process; returns it and its API base URL.
pub(crate) fn spawn_run(config: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["run", "--config", config.to_str().unwrap()])
        .env_remove("FSDIALER_API_KEY")
        .env_remove("FSDIALER_API_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = address_in_first_line(&mut child, "http://");
    (Child(child), format!("http://{addr}"))
}

pub(crate) async fn post(http: &reqwest::Client, url: String, body: serde_json::Value) {
    let r = http
        .post(url)
        .header("X-Key", ADMIN.0)
        .header("X-Access-Token", ADMIN.1)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// Creates the campaign (`limit`, no retries wanted) and `n` members calling `number`, and runs it.
async fn start_campaign(base: &str, limit: u32, n: usize, number: &str) {
    // reqwest is built without a crypto provider of its own: use the crate's (ring).
    fsdialer::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let mut c = campaign(CAMPAIGN);
    c["limit"] = json!(limit);
    c["wait_between_retries_sec"] = json!(1);
    c["originate_timeout_sec"] = json!(60);
    post(&http, format!("{base}/api/v2/dialer"), c).await;
    let members: Vec<serde_json::Value> =
        (0..n).map(|i| member(&format!("m{i}"), number)).collect();
    post(
        &http,
        format!("{base}/api/v2/dialer/{CAMPAIGN}/members?autoRun=true"),
        json!(members),
    )
    .await;
}

pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Waits for the child to exit, at most `secs`; its exit code.
pub(crate) fn wait_exit(child: &mut Child, secs: u64) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the switch has `channels` channels up (a claimed call is not yet on the switch); the ESL client
/// it asked with.
async fn wait_channels_up(sim: &str, channels: usize) -> fsdialer::esl::client::Client {
    let (esl, _events) = fsdialer::esl::client::Client::connect(
        fsdialer::esl::client::ClientConfig::new(sim.to_owned(), "ClueCon"),
    )
    .await
    .unwrap();
    let up = eventually(20, || async {
        let count = esl.api_text("show channels count").await.ok()?;
        (count.trim() == format!("{channels} total.")).then_some(())
    })
    .await;
    assert!(up.is_some(), "{channels} channels up on the switch");
    esl
}

/// Members in a call, in the store.
async fn active(store: &Store) -> u64 {
    store.counts(CAMPAIGN).await.unwrap().active
}

/// The invariants, from the raw data: every member ended once with success (these numbers always answer), one
/// attempt each, no attempt id twice, nothing lost, counters equal to the attempt log.
async fn assert_every_member_called_once_and_nothing_lost(store: &Store, n: usize) {
    assert_campaign_called_once_each(store, CAMPAIGN, n, &mut HashSet::new()).await;
}

/// The invariants for `campaign` with members 1..=n: each ended once with success and a real outcome, one attempt
/// each, no attempt id already in `attempt_ids` (shared across campaigns), nothing lost, counters equal to the
/// attempt log.
pub(super) async fn assert_campaign_called_once_each(
    store: &Store,
    campaign: &str,
    n: usize,
    attempt_ids: &mut HashSet<AttemptId>,
) {
    let counts = store.counts(campaign).await.unwrap();
    let mut attempts = 0u64;
    for id in 1..=n as u64 {
        let m = store.get(campaign, MemberId(id)).await.unwrap().unwrap();
        assert_eq!(m.state, MemberState::Ended, "{campaign} member {id}");
        assert!(m.success, "{campaign} member {id}: {:?}", m.end_cause);
        let log = store.attempts(campaign, MemberId(id)).await.unwrap();
        assert_eq!(
            log.len(),
            1,
            "{campaign} member {id} was called once: {log:?}"
        );
        for a in &log {
            assert!(
                attempt_ids.insert(a.attempt_id),
                "attempt id {} twice",
                a.attempt_id
            );
            assert_ne!(a.cause, "LOST_ATTEMPT", "{campaign} member {id}");
            assert!(a.talk_secs > 0, "{campaign} member {id}: its real outcome");
        }
        attempts += log.len() as u64;
    }
    assert_eq!(counts.ended, n as u64, "{campaign}: {counts:?}");
    assert_eq!(counts.lost, 0, "{campaign}: {counts:?}");
    assert_eq!(counts.calls, attempts, "{campaign}: {counts:?}");
    assert_eq!(counts.ok, attempts, "{campaign}: {counts:?}");
    assert_eq!(counts.success, n as u64, "{campaign}: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_campaign_drains_exits_zero_and_the_next_start_finishes_without_a_lost_call() {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let (_sim, sim_addr) = spawn_sim("10");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &redis.url(), &sim_addr);
    let store = Store::open(&redis.url()).await.unwrap();
    const N: usize = 120;

    let (mut first, base) = spawn_run(&config);
    // 30 s calls at ×10 in the switch: 3 s each.
    start_campaign(&base, 40, N, "answer_30").await;
    let up = eventually(20, || async { (active(&store).await >= 30).then_some(()) }).await;
    assert!(up.is_some(), "calls are up");
    let t = Instant::now();
    signal(&first, "-TERM");
    let code = wait_exit(&mut first, 30);
    let drain = t.elapsed();
    assert_eq!(code, Some(0), "a drained engine exits 0");
    assert_eq!(
        active(&store).await,
        0,
        "every call finished and was recorded before the exit"
    );
    assert!(drain < Duration::from_secs(20), "drained in {drain:?}");
    let before = store.counts(CAMPAIGN).await.unwrap();
    assert!(before.ended >= 30 && before.ended < N as u64, "{before:?}");

    // The next start picks the campaign up and finishes it.
    let (mut second, _base) = spawn_run(&config);
    let done = eventually(60, || async {
        let c = store.counts(CAMPAIGN).await.ok()?;
        (c.ended == N as u64).then_some(c)
    })
    .await;
    assert!(done.is_some(), "{:?}", store.counts(CAMPAIGN).await);
    assert_every_member_called_once_and_nothing_lost(&store, N).await;
    signal(&second, "-TERM");
    assert_eq!(wait_exit(&mut second, 30), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_start_again_adopts_the_calls_still_up_and_records_their_real_outcome() {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    // Real time in the switch: the calls outlive the restart.
    let (_sim, sim_addr) = spawn_sim("1");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &redis.url(), &sim_addr);
    let store = Store::open(&redis.url()).await.unwrap();
    const N: usize = 20;

    let (first, base) = spawn_run(&config);
    start_campaign(&base, 50, N, "answer_8").await;
    // Every call up on the switch (two loopback legs each), not only claimed.
    wait_channels_up(&sim_addr, 2 * N).await;
    signal(&first, "-KILL");
    drop(first);
    let t = Instant::now();
    let (_second, _base) = spawn_run(&config);
    let done = eventually(40, || async {
        let c = store.counts(CAMPAIGN).await.ok()?;
        (c.ended == N as u64).then_some(c)
    })
    .await;
    assert!(done.is_some(), "{:?}", store.counts(CAMPAIGN).await);
    // They ended as the switch ended them (8 s talk), well before a lease would have expired and been recovered
    // as lost.
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_every_member_called_once_and_nothing_lost(&store, N).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_calls_end_while_the_node_is_down_and_the_restart_records_their_real_cause_from_the_switch()
 {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    // Real time in the switch: the calls (4 s talk) end while the node is down.
    let (_sim, sim_addr) = spawn_sim("1");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &redis.url(), &sim_addr);
    let store = Store::open(&redis.url()).await.unwrap();
    const N: usize = 20;

    let (first, base) = spawn_run(&config);
    start_campaign(&base, 50, N, "answer_4").await;
    // Every call up on the switch (two loopback legs each), not only claimed.
    let esl = wait_channels_up(&sim_addr, 2 * N).await;
    signal(&first, "-KILL");
    drop(first);
    let ended_before_the_kill = store.counts(CAMPAIGN).await.unwrap().ended;
    // Every call hangs up on the switch while no node listens.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let restart = chrono::Utc::now();
    let (_second, _base) = spawn_run(&config);
    let done = eventually(20, || async {
        let c = store.counts(CAMPAIGN).await.ok()?;
        (c.ended == N as u64).then_some(c)
    })
    .await;
    assert!(done.is_some(), "{:?}", store.counts(CAMPAIGN).await);
    assert_every_member_called_once_and_nothing_lost(&store, N).await;
    // The calls recorded by the second process ended before it started: their cause and talk time came from
    // the switch's hangup records.
    let mut recovered = 0u64;
    for id in 1..=N as u64 {
        for a in store.attempts(CAMPAIGN, MemberId(id)).await.unwrap() {
            if a.completed_at >= restart {
                assert!(a.hangup_at.is_some_and(|h| h < restart), "{a:?}");
                assert_eq!(a.cause, "NORMAL_CLEARING");
                assert!((3..=5).contains(&a.talk_secs), "{a:?}");
                recovered += 1;
            }
        }
    }
    eprintln!("recovered from the switch's hangup records: {recovered} of {N}");
    assert_eq!(recovered, N as u64 - ended_before_the_kill);
    assert!(recovered > 0);
    // The switch keeps no record once the results are in.
    let emptied = eventually(10, || async {
        let dump = esl.api_text("hash_dump db fsdialer").await.ok()?;
        // An empty output comes over ESL as `-ERR no reply`.
        (dump.trim() == "-ERR no reply").then_some(())
    })
    .await;
    assert!(
        emptied.is_some(),
        "{:?}",
        esl.api_text("hash_dump db fsdialer").await
    );
}

/// The invariants, from the raw data, for a campaign whose members all answer in the end: every member ended
/// once with success, no attempt id twice, counted tries within `max_tries`, counters equal to the attempt log
/// (`lost` to its LOST_ATTEMPT records). Returns the attempt log.
async fn assert_invariants(store: &Store, n: usize, max_tries: u32) -> Vec<AttemptRecord> {
    let counts = store.counts(CAMPAIGN).await.unwrap();
    let mut ids = HashSet::new();
    let mut all = Vec::new();
    for id in 1..=n as u64 {
        let m = store.get(CAMPAIGN, MemberId(id)).await.unwrap().unwrap();
        assert_eq!(m.state, MemberState::Ended, "member {id}");
        assert!(m.success, "member {id}: {:?}", m.end_cause);
        assert!(m.tries <= max_tries, "member {id}: {} tries", m.tries);
        let log = store.attempts(CAMPAIGN, MemberId(id)).await.unwrap();
        let ok: Vec<_> = log.iter().filter(|a| a.class == CauseClass::Ok).collect();
        assert_eq!(ok.len(), 1, "member {id} succeeded once: {log:?}");
        for a in &log {
            assert!(
                ids.insert(a.attempt_id),
                "attempt id {} twice",
                a.attempt_id
            );
        }
        all.extend(log);
    }
    let lost = all.iter().filter(|a| a.cause == "LOST_ATTEMPT").count() as u64;
    assert_eq!(counts.lost, lost, "{counts:?}");
    assert_eq!(counts.calls, all.len() as u64, "{counts:?}");
    assert_eq!(counts.ok, n as u64);
    assert_eq!(counts.success, n as u64);
    assert_eq!(counts.ended, n as u64);
    assert_eq!(counts.active, 0);
    all
}

/// A config with two switches, `switch_lost_after_sec` short.
fn write_two_switch_config(
    dir: &Path,
    redis: &str,
    sims: [&str; 2],
    lost_after_sec: u32,
) -> std::path::PathBuf {
    let text = format!(
        r#"
node_id = "two-switch-node"
store = "{redis}"
[api]
listen = "127.0.0.1:0"
[[api.keys]]
id = "{}"
secret = "{}"
role = "admin"
[engine]
lease_sec = 5
sync_interval_sec = 1
switch_lost_after_sec = {lost_after_sec}
[[switches]]
name = "sim-a"
address = "{}"
password = "ClueCon"
max_sessions = 2000
sessions_per_second = 400
sessions_per_call = 2
[[switches]]
name = "sim-b"
address = "{}"
password = "ClueCon"
max_sessions = 2000
sessions_per_second = 400
sessions_per_call = 2
"#,
        ADMIN.0, ADMIN.1, sims[0], sims[1]
    );
    let path = dir.join("two-switch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_killed_for_good_has_its_calls_settled_after_switch_lost_after_and_the_campaign_finishes_on_the_other()
 {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut sim_a, addr_a) = spawn_sim("1");
    let (_sim_b, addr_b) = spawn_sim("1");
    let dir = tempfile::tempdir().unwrap();
    const LOST_AFTER: u32 = 2;
    let config = write_two_switch_config(dir.path(), &redis.url(), [&addr_a, &addr_b], LOST_AFTER);
    let store = Store::open(&redis.url()).await.unwrap();
    const N: usize = 30;

    let (_run, base) = spawn_run(&config);
    // 20 s calls: the ones on the switch that dies are up when it does.
    start_campaign(&base, 20, N, "answer_20").await;
    let on_a = {
        let (esl, _events) = fsdialer::esl::client::Client::connect(
            fsdialer::esl::client::ClientConfig::new(addr_a.clone(), "ClueCon"),
        )
        .await
        .unwrap();
        eventually(20, || async {
            let count = esl.api_text("show channels count").await.ok()?;
            let n: usize = count.split_whitespace().next()?.parse().ok()?;
            (n >= 2).then_some(n / 2)
        })
        .await
        .expect("calls up on switch a")
    };
    let killed = chrono::Utc::now();
    signal(&sim_a, "-KILL");
    let _ = sim_a.0.wait();
    let done = eventually(90, || async {
        let c = store.counts(CAMPAIGN).await.ok()?;
        (c.ended == N as u64).then_some(c)
    })
    .await;
    assert!(done.is_some(), "{:?}", store.counts(CAMPAIGN).await);
    let log = assert_invariants(&store, N, 3).await;
    let lost: Vec<&AttemptRecord> = log.iter().filter(|a| a.cause == "LOST_ATTEMPT").collect();
    eprintln!(
        "calls on the killed switch: {on_a} or more; settled as lost: {}; attempts: {}",
        lost.len(),
        log.len()
    );
    assert!(
        lost.len() >= on_a,
        "{} lost, {on_a} were on the switch",
        lost.len()
    );
    for a in &lost {
        let after = a.completed_at - killed;
        assert!(
            after >= chrono::Duration::seconds(i64::from(LOST_AFTER))
                && after < chrono::Duration::seconds(15),
            "settled {after:?} after the switch died: {a:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_down_for_a_while_is_paused_by_its_breaker_ends_no_member_and_dialling_resumes_after()
 {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    // Switch time runs ×2: the trunk answers GATEWAY_DOWN for its first 8 s (4 s of real time), then 1 s calls.
    let scenario = dir.path().join("outage.toml");
    std::fs::write(
        &scenario,
        "[[rule]]\nmatch = \"^7\"\nanswer = false\nhangup_cause = \"GATEWAY_DOWN\"\nuntil_ms = 8000\n\n[[rule]]\nmatch = \"^7\"\ntalk_ms = 2000\n",
    )
    .unwrap();
    let (_sim, sim_addr) = spawn_sim_with("2", &["--scenario", scenario.to_str().unwrap()]);
    let config = write_config(dir.path(), &redis.url(), &sim_addr);
    let store = Store::open(&redis.url()).await.unwrap();
    const N: usize = 30;

    let (_run, base) = spawn_run(&config);
    start_campaign(&base, 10, N, "7000").await;
    // During the outage: failures seen, no member ended, no try counted.
    let failing = eventually(10, || async {
        let c = store.counts(CAMPAIGN).await.ok()?;
        (c.calls > 0).then_some(c)
    })
    .await
    .expect("calls placed");
    assert_eq!(failing.ended, 0, "{failing:?}");
    let done = eventually(60, || async {
        let c = store.counts(CAMPAIGN).await.ok()?;
        (c.ended == N as u64).then_some(c)
    })
    .await;
    assert!(done.is_some(), "{:?}", store.counts(CAMPAIGN).await);
    let log = assert_invariants(&store, N, 3).await;
    let down: Vec<&AttemptRecord> = log.iter().filter(|a| a.cause == "GATEWAY_DOWN").collect();
    eprintln!(
        "GATEWAY_DOWN attempts during the outage: {}; attempts: {}",
        down.len(),
        log.len()
    );
    assert!(!down.is_empty());
    assert!(
        down.iter().all(|a| a.class == CauseClass::Minus),
        "a trunk fault costs no try"
    );
    for id in 1..=N as u64 {
        let m = store.get(CAMPAIGN, MemberId(id)).await.unwrap().unwrap();
        // Counted tries are the failed ones (Retry, Error): the outage charged none.
        assert_eq!(m.tries, 0, "member {id}: the outage charged a try");
        assert_eq!(
            m.communications[0].attempts, 0,
            "member {id}: its number neither"
        );
    }
    // The breaker held the gateway: a first burst (at most the limit in flight) and a few probes, not every
    // member dialled again and again for 4 s.
    assert!(
        down.len() <= 10 + 5,
        "{} calls into a dead trunk",
        down.len()
    );
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<serde_json::Value>,
) -> u16 {
    let mut rq = http
        .request(method, url)
        .header("X-Key", ADMIN.0)
        .header("X-Access-Token", ADMIN.1);
    if let Some(b) = body {
        rq = rq.json(&b);
    }
    rq.send().await.unwrap().status().as_u16()
}

async fn get_campaign(http: &reqwest::Client, base: &str) -> serde_json::Value {
    let r = http
        .get(format!("{base}/api/v2/dialer/{CAMPAIGN}"))
        .header("X-Key", ADMIN.0)
        .header("X-Access-Token", ADMIN.1)
        .send()
        .await
        .unwrap();
    r.json::<serde_json::Value>().await.unwrap()["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_storm_on_one_node_never_undoes_a_stop_made_on_another_and_both_follow_within_a_second()
 {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let (_sim, sim_addr) = spawn_sim("10");
    let dir = tempfile::tempdir().unwrap();
    let (_a, base_a) = spawn_run(&write_node_config(
        dir.path(),
        "node-a",
        &redis.url(),
        &sim_addr,
    ));
    let (_b, base_b) = spawn_run(&write_node_config(
        dir.path(),
        "node-b",
        &redis.url(),
        &sim_addr,
    ));
    // reqwest is built without a crypto provider of its own: use the crate's (ring).
    fsdialer::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    // Node B's engine follows node A's run within a second.
    start_campaign(&base_a, 10, 200, "answer_600").await;
    let t = Instant::now();
    let running = eventually(5, || {
        let http = http.clone();
        let base_b = base_b.clone();
        async move { (get_campaign(&http, &base_b).await["state_name"] == "running").then_some(()) }
    })
    .await;
    assert!(running.is_some());
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "node B ran it after {:?}",
        t.elapsed()
    );

    // 100 edits on A, a stop on B in the middle of them.
    let mut edits = Vec::new();
    for i in 0..100u32 {
        let client = http.clone();
        let url = format!("{base_a}/api/v2/dialer/{CAMPAIGN}");
        edits.push(tokio::spawn(async move {
            send(
                &client,
                reqwest::Method::PUT,
                url,
                Some(json!({"limit": 5 + i % 5})),
            )
            .await
        }));
        if i == 50 {
            let stop = send(
                &http,
                reqwest::Method::PUT,
                format!("{base_b}/api/v2/dialer/{CAMPAIGN}/state/3"),
                None,
            )
            .await;
            assert_eq!(stop, 200);
        }
    }
    for e in edits {
        let code = e.await.unwrap();
        assert!(code == 200 || code == 409, "edit answered {code}");
    }
    // It stays stopped, on both nodes, and neither dials.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for base in [&base_a, &base_b] {
        let c = get_campaign(&http, base).await;
        assert_eq!(c["run"], false, "{base}: {c}");
        assert!(
            c["state_name"] == "stopped" || c["state_name"] == "stopping",
            "{base}: {c}"
        );
    }
    let store = Store::open(&redis.url()).await.unwrap();
    let calls = store.counts(CAMPAIGN).await.unwrap().calls + active(&store).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = store.counts(CAMPAIGN).await.unwrap().calls + active(&store).await;
    assert!(later <= calls, "no new call after the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_takes_over_the_live_calls_of_a_node_killed_for_good_and_never_hangs_them_up()
{
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let (_sim, sim_addr) = spawn_sim("1");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&redis.url()).await.unwrap();
    const N: usize = 10;

    let (a, base_a) = spawn_run(&write_node_config(
        dir.path(),
        "node-a",
        &redis.url(),
        &sim_addr,
    ));
    start_campaign(&base_a, N as u32, N, "answer_15").await;
    let up = eventually(20, || async {
        (active(&store).await == N as u64).then_some(())
    })
    .await;
    assert!(up.is_some(), "node A's calls are up");
    let (_b, _base_b) = spawn_run(&write_node_config(
        dir.path(),
        "node-b",
        &redis.url(),
        &sim_addr,
    ));
    signal(&a, "-KILL");
    drop(a);
    // Node A's leases expire (5 s); node B finds its calls still up, takes them over and hears their end.
    let done = eventually(40, || async {
        let c = store.counts(CAMPAIGN).await.ok()?;
        (c.ended == N as u64).then_some(c)
    })
    .await;
    assert!(done.is_some(), "{:?}", store.counts(CAMPAIGN).await);
    assert_every_member_called_once_and_nothing_lost(&store, N).await;
    for id in 1..=N as u64 {
        let log = store.attempts(CAMPAIGN, MemberId(id)).await.unwrap();
        assert_eq!(
            log[0].talk_secs, 15,
            "member {id}: the call ran to its end, not hung up"
        );
        assert_eq!(log[0].node, "node-a", "member {id}: placed by node A");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_campaign_loses_no_result_and_counts_no_try_twice() {
    let mut redis = fsdialer::store::local_redis::LocalRedis::start(
        fsdialer::store::local_redis::LocalRedisOptions {
            durable: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (_sim, sim_addr) = spawn_sim("10");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &redis.url(), &sim_addr);
    const N: usize = 60;
    let (_run, base) = spawn_run(&config);
    start_campaign(&base, 20, N, "answer_20").await;
    {
        let store = Store::open(&redis.url()).await.unwrap();
        let some = eventually(30, || async {
            (store.counts(CAMPAIGN).await.ok()?.ended >= 10).then_some(())
        })
        .await;
        assert!(some.is_some());
    }
    // Down for two seconds, shorter than the lease: results wait, claims pause, nothing is counted twice.
    redis.kill();
    std::thread::sleep(Duration::from_secs(2));
    redis.restart().unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&redis.url()).await.unwrap();
    let done = eventually(90, || async {
        let c = store.counts(CAMPAIGN).await.ok()?;
        (c.ended == N as u64).then_some(c)
    })
    .await;
    assert!(done.is_some(), "{:?}", store.counts(CAMPAIGN).await);
    assert_every_member_called_once_and_nothing_lost(&store, N).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_agent_calls_keeps_each_agent_on_its_call_and_records_it_as_the_agents()
 {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    // Real time in the switch: members joined to agents talk 8 s, outliving the restart and the 5 s lease.
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sim/agents-restart.toml"
    );
    let (_sim, sim_addr) = spawn_sim_with("1", &["--scenario", scenario]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &redis.url(), &sim_addr);
    let store = Store::open(&redis.url()).await.unwrap();
    const N: usize = 6;
    let now = chrono::Utc::now();
    for i in 1..=N {
        let agent = fsdialer::agents::Agent {
            id: format!("agent_{i}"),
            name: format!("Agent {i}"),
            dial_string: format!("loopback/agent_{i}/default"),
            teams: vec![fsdialer::agents::TeamMembership {
                team: "sales".into(),
                level: 1,
            }],
            lines: 1,
            version: 0,
        };
        store.put_agent(&agent, Some(0), now).await.unwrap();
        store
            .set_agent_status(&agent.id, fsdialer::agents::AgentStatus::Ready, now)
            .await
            .unwrap();
    }

    let (first, base) = spawn_run(&config);
    fsdialer::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let mut c = campaign(CAMPAIGN);
    c["limit"] = json!(N);
    c["originate_timeout_sec"] = json!(30);
    c["mode"] = json!("progressive");
    c["agents"] = json!({"team": "sales", "result_timeout_sec": 0, "wrap_up_sec": 1});
    post(&http, format!("{base}/api/v2/dialer"), c).await;
    let members: Vec<serde_json::Value> = (0..N)
        .map(|i| member(&format!("m{i}"), &format!("cust_{i}")))
        .collect();
    post(
        &http,
        format!("{base}/api/v2/dialer/{CAMPAIGN}/members?autoRun=true"),
        json!(members),
    )
    .await;
    // Every member joined to its agent (two loopback legs per member, two per agent).
    let talking = eventually(20, || async {
        let agents = store.agents(chrono::Utc::now()).await.ok()?;
        let n = agents
            .iter()
            .filter(|a| a.state == fsdialer::agents::AgentState::Talking)
            .count();
        (n == N).then_some(())
    })
    .await;
    assert!(talking.is_some(), "every agent talking before the kill");
    signal(&first, "-KILL");
    drop(first);
    let (_second, _base) = spawn_run(&config);
    // Past the old 5 s lease the agents are still on their calls: held by the new process, not freed (a freed
    // agent would be offered the next member while it still talks).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let agents = store.agents(chrono::Utc::now()).await.unwrap();
    let busy = agents
        .iter()
        .filter(|a| {
            matches!(
                a.state,
                fsdialer::agents::AgentState::Talking | fsdialer::agents::AgentState::WrapUp { .. }
            ) || a.stats.calls == 1
        })
        .count();
    assert_eq!(busy, N, "{agents:#?}");
    let done = eventually(30, || async {
        let c = store.counts(CAMPAIGN).await.ok()?;
        (c.ended == N as u64).then_some(c)
    })
    .await;
    assert!(done.is_some(), "{:?}", store.counts(CAMPAIGN).await);
    assert_every_member_called_once_and_nothing_lost(&store, N).await;
    // Each call is its agent's: released into wrap-up with its talk time (a reservation freed by lease expiry
    // counts no call).
    let agents = store.agents(chrono::Utc::now()).await.unwrap();
    for a in &agents {
        assert_eq!(a.stats.calls, 1, "{a:#?}");
        assert!(a.reservations.is_empty(), "{a:#?}");
    }
    for id in 1..=N as u64 {
        let log = store.attempts(CAMPAIGN, MemberId(id)).await.unwrap();
        let note: serde_json::Value =
            serde_json::from_str(log[0].note.as_deref().expect("agent note")).unwrap();
        assert!(
            note["agent_call"]["agent"]
                .as_str()
                .is_some_and(|a| a.starts_with("agent_")),
            "{note}"
        );
    }
}
