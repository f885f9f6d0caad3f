//! `fsdialer load` against the simulated switch over real ESL: the rate is never exceeded in any whole second, the
//! concurrency limit holds, hold times are honoured (and a far-end hangup ends a call early), `{n}` takes the
//! numbers file's lines in turn, the switch's own sessions-per-second is respected unless `--force`, SIGTERM
//! mid-run hangs up every call placed and still writes the report, and bad input is refused with a clear error.
//!
//! The judge is the switch: an observer connected to the simulator records every channel's creation, answer and
//! hangup as the switch announces them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fsdialer::esl::client::{Client, ClientConfig, ClientEvent, EventFormat};
use fsdialer::load::numbers::DialTemplate;
use fsdialer::load::{HoldTime, LoadPlan, Report, StopAfter, SwitchAddr};
use fsdialer::sim::server::{self, ServerConfig, SimHandle};
use tokio_util::sync::CancellationToken;

/// The load tests share two cores: one run at a time keeps their timing honest.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn sim(sessions_per_second: u32) -> SimHandle {
    server::start(ServerConfig {
        switch: fsdialer::sim::model::Config {
            sessions_per_second,
            max_sessions: 5000,
            ..Default::default()
        },
        scenario: Some(root().join("fixtures/sim/load.toml")),
        heartbeat: None,
        ..Default::default()
    })
    .await
    .expect("the simulated switch starts")
}

/// What the switch said about one channel.
#[derive(Debug, Clone, Default)]
struct Seen {
    created: Option<Instant>,
    answered: Option<Instant>,
    hung_up: Option<Instant>,
    destination: String,
}

#[derive(Default)]
struct Observed {
    channels: HashMap<String, Seen>,
    /// Creation order.
    order: Vec<String>,
    up: usize,
    most_up: usize,
}

/// An ESL client of its own on the switch, recording every channel.
struct Observer {
    observed: Arc<Mutex<Observed>>,
    _client: Client,
}

impl Observer {
    async fn start(sim: &SimHandle) -> Observer {
        let (client, mut events) =
            Client::connect(ClientConfig::new(sim.local_addr().to_string(), "ClueCon"))
                .await
                .expect("the observer connects");
        client
            .event(
                EventFormat::Plain,
                &[
                    "CHANNEL_CREATE",
                    "CHANNEL_ANSWER",
                    "CHANNEL_HANGUP_COMPLETE",
                ],
            )
            .await
            .expect("the observer subscribes");
        let observed: Arc<Mutex<Observed>> = Arc::default();
        let o = observed.clone();
        tokio::spawn(async move {
            while let Some(item) = events.recv().await {
                let ClientEvent::Event(e) = item else {
                    continue;
                };
                let Some(uuid) = e.unique_id().map(str::to_owned) else {
                    continue;
                };
                let now = Instant::now();
                let mut o = o.lock().unwrap();
                match e.name() {
                    Some("CHANNEL_CREATE") => {
                        o.order.push(uuid.clone());
                        o.up += 1;
                        o.most_up = o.most_up.max(o.up);
                        let seen = o.channels.entry(uuid).or_default();
                        seen.created = Some(now);
                        seen.destination = e
                            .get("Caller-Destination-Number")
                            .unwrap_or_default()
                            .to_owned();
                    }
                    Some("CHANNEL_ANSWER") => {
                        o.channels.entry(uuid).or_default().answered = Some(now);
                    }
                    Some("CHANNEL_HANGUP_COMPLETE") => {
                        o.up = o.up.saturating_sub(1);
                        o.channels.entry(uuid).or_default().hung_up = Some(now);
                    }
                    _ => {}
                }
            }
        });
        Observer {
            observed,
            _client: client,
        }
    }

    /// Waits until every channel created has hung up (the switch's events trail the run's end a little).
    async fn all_hung_up(&self, within: Duration) -> Vec<Seen> {
        let until = Instant::now() + within;
        loop {
            {
                let o = self.observed.lock().unwrap();
                let seen: Vec<Seen> = o.order.iter().map(|u| o.channels[u].clone()).collect();
                if seen.iter().all(|s| s.hung_up.is_some()) || Instant::now() > until {
                    return seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn most_up(&self) -> usize {
        self.observed.lock().unwrap().most_up
    }
}

fn plan(
    sim: &SimHandle,
    dial: &str,
    rate: f64,
    limit: u32,
    calls: u64,
    hold: Duration,
) -> LoadPlan {
    LoadPlan {
        switches: vec![SwitchAddr::parse(&sim.local_addr().to_string()).unwrap()],
        password: "ClueCon".into(),
        dial: DialTemplate::parse(dial).unwrap(),
        sessions_per_call: DialTemplate::parse(dial).unwrap().sessions_per_call(),
        numbers: None,
        rate,
        limit,
        stop: StopAfter::Calls(calls),
        ramp_up: Duration::ZERO,
        hold: HoldTime::Fixed(hold),
        originate_timeout_sec: 30,
        caller_id_number: None,
        force: false,
        speed: 1.0,
        report: None,
        live: false,
    }
}

async fn load(plan: LoadPlan) -> Report {
    fsdialer::load::run(plan, CancellationToken::new())
        .await
        .expect("the load run completes")
}

fn assert_every_call_ended(seen: &[Seen], placed: u64) {
    assert_eq!(seen.len() as u64, placed, "one channel per call placed");
    let left = seen.iter().filter(|s| s.hung_up.is_none()).count();
    assert_eq!(left, 0, "channels left up on the switch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_is_never_exceeded_in_any_whole_second_and_is_reached() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sim = sim(1000).await;
    let observer = Observer::start(&sim).await;
    let report = load(plan(
        &sim,
        "sofia/gateway/gw1/{n}",
        20.0,
        500,
        100,
        Duration::from_millis(500),
    ))
    .await;
    let seen = observer.all_hung_up(Duration::from_secs(5)).await;
    assert_every_call_ended(&seen, 100);
    let c = &report.calls;
    assert_eq!((c.placed, c.answered, c.failed), (100, 100, 0));
    let per_second: Vec<u64> = c.seconds.iter().map(|s| s.placed).collect();
    assert!(
        per_second.iter().all(|&n| n <= 20),
        "more than 20 calls in a whole second of the wall clock: {per_second:?}"
    );
    assert_eq!(per_second.iter().sum::<u64>(), 100);
    // Paced evenly at 20/s: 99 intervals of 50 ms.
    assert!(
        (19.0..=20.5).contains(&report.achieved_rate),
        "achieved {} over {} s",
        report.achieved_rate,
        report.placing_secs
    );
    assert_eq!(
        report.most_placed_in_a_second,
        *per_second.iter().max().unwrap()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_calls_than_the_limit_are_up_at_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sim = sim(1000).await;
    let observer = Observer::start(&sim).await;
    // 50/s asked but each call lasts 1.2-2.5 s: the limit of 8 is what holds the run back.
    let report = load(plan(
        &sim,
        "sofia/gateway/gw1/{n}",
        50.0,
        8,
        40,
        Duration::from_secs(1),
    ))
    .await;
    let seen = observer.all_hung_up(Duration::from_secs(5)).await;
    assert_every_call_ended(&seen, 40);
    assert!(
        observer.most_up() <= 8,
        "the switch saw {} up",
        observer.most_up()
    );
    assert_eq!(report.calls.concurrent_max, 8, "the limit was reached");
    assert!(
        report.achieved_rate < 10.0,
        "held back: {}",
        report.achieved_rate
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_calls_are_held_for_their_hold_time_and_a_far_end_hangup_ends_one_early() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sim = sim(1000).await;
    let observer = Observer::start(&sim).await;
    let hold = Duration::from_millis(1500);
    let report = load(plan(&sim, "sofia/gateway/gw1/{n}", 10.0, 50, 10, hold)).await;
    let seen = observer.all_hung_up(Duration::from_secs(5)).await;
    assert_every_call_ended(&seen, 10);
    assert_eq!(report.calls.hung_up_by_us, 10);
    for s in &seen {
        let talked = s.hung_up.unwrap() - s.answered.expect("answered");
        assert!(
            talked >= hold - Duration::from_millis(50)
                && talked < hold + Duration::from_millis(700),
            "held {talked:?} for a hold of {hold:?}"
        );
    }
    // `answer_1` hangs up after 1 s: long before a 30 s hold.
    let started = Instant::now();
    let report = load(plan(
        &sim,
        "sofia/gateway/gw1/answer_1",
        10.0,
        50,
        5,
        Duration::from_secs(30),
    ))
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.calls.hung_up_by_far_end, 5);
    assert_eq!(report.calls.far_end_causes.get("NORMAL_CLEARING"), Some(&5));
    assert_eq!(report.calls.hung_up_by_us, 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_placeholder_takes_the_numbers_files_lines_in_turn() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sim = sim(1000).await;
    let observer = Observer::start(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let numbers = dir.path().join("numbers.txt");
    std::fs::write(
        &numbers,
        "# test numbers\nbusy_1\nreject_UNALLOCATED_NUMBER\n\n4242\n",
    )
    .unwrap();
    let mut p = plan(
        &sim,
        "sofia/gateway/gw1/{n}",
        20.0,
        50,
        6,
        Duration::from_millis(200),
    );
    p.numbers = Some(numbers);
    let report = load(p).await;
    let seen = observer.all_hung_up(Duration::from_secs(5)).await;
    assert_every_call_ended(&seen, 6);
    let destinations: Vec<&str> = seen.iter().map(|s| s.destination.as_str()).collect();
    let lines = ["busy_1", "reject_UNALLOCATED_NUMBER", "4242"];
    assert_eq!(destinations, [lines, lines].concat());
    let c = &report.calls;
    assert_eq!(c.failed_by_cause.get("USER_BUSY"), Some(&2));
    assert_eq!(c.failed_by_cause.get("UNALLOCATED_NUMBER"), Some(&2));
    assert_eq!(c.answered, 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switchs_sessions_per_second_is_respected_unless_forced() {
    let _one = ONE_AT_A_TIME.lock().await;
    // sessions-per-second 6: FreeSWITCH lets 5 through in each of its seconds.
    let sim = sim(6).await;
    let report = load(plan(
        &sim,
        "sofia/gateway/gw1/{n}",
        20.0,
        100,
        15,
        Duration::from_millis(200),
    ))
    .await;
    let c = &report.calls;
    assert_eq!(report.paced_rate, 5.0);
    assert_eq!(
        (c.placed, c.answered, c.failed),
        (15, 15, 0),
        "{:?}",
        c.failed_by_cause
    );
    assert!(c.seconds.iter().all(|s| s.placed <= 5), "{:?}", c.seconds);
    assert_eq!(report.switches[0].sessions_per_second, Some(6));

    let mut forced = plan(
        &sim,
        "sofia/gateway/gw1/{n}",
        20.0,
        100,
        40,
        Duration::from_millis(200),
    );
    forced.force = true;
    let report = load(forced).await;
    let refused = report
        .calls
        .failed_by_cause
        .get("DESTINATION_OUT_OF_ORDER")
        .copied();
    assert_eq!(report.paced_rate, 20.0);
    assert!(
        refused.unwrap_or(0) > 0,
        "the switch refused none: {:?}",
        report.calls.failed_by_cause
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_call_counts_as_two_sessions_against_the_switchs_sessions_per_second() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The real-switch finding: 20 loopback calls a second are 40 sessions against sessions-per-second 30, and the
    // switch refused about a quarter. Counted in sessions, 29 get through a second: 14 calls.
    let sim = sim(30).await;
    let observer = Observer::start(&sim).await;
    let report = load(plan(
        &sim,
        "loopback/{n}/default",
        20.0,
        100,
        42,
        Duration::from_millis(200),
    ))
    .await;
    let c = &report.calls;
    assert_eq!((report.paced_rate, report.sessions_per_call), (14.0, 2));
    assert_eq!(
        (c.placed, c.answered, c.failed),
        (42, 42, 0),
        "{:?}",
        c.failed_by_cause
    );
    assert!(c.seconds.iter().all(|s| s.placed <= 14), "{:?}", c.seconds);
    let seen = observer.all_hung_up(Duration::from_secs(10)).await;
    assert_eq!(seen.len(), 84, "two channels (sessions) per loopback call");
    sim.shutdown().await;
}

#[test]
fn the_help_shows_the_placeholder_literally() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fsdialer"))
        .args(["load", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    assert!(
        help.contains("dial string where `{n}` is each call's sequence number"),
        "{help}"
    );
    assert!(help.contains("taken in turn for `{n}`"), "{help}");
    assert!(help.contains("--sessions-per-call <N>"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_stops_placing_hangs_up_every_call_and_writes_the_report() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sim = sim(1000).await;
    let observer = Observer::start(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fsdialer"))
        .args(["load", "--esl", &sim.local_addr().to_string()])
        .args([
            "--dial-string",
            "sofia/gateway/gw1/{n}",
            "--rate",
            "20",
            "--limit",
            "500",
        ])
        .args(["--duration", "120", "--hold", "600", "--quiet", "--report"])
        .arg(&report_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fsdialer load starts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("fsdialer load exits after SIGTERM")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stopped by a signal"), "{stdout}");
    let seen = observer.all_hung_up(Duration::from_secs(5)).await;
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(json["stopped_by"], "signal");
    let placed = json["calls"]["placed"].as_u64().unwrap();
    assert!((40..=80).contains(&placed), "3 s at 20/s: {placed}");
    assert_every_call_ended(&seen, placed);
    assert_eq!(json["calls"]["up"], 0);
    sim.shutdown().await;
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad_numbers = dir.path().join("numbers.txt");
    std::fs::write(&bad_numbers, "123\n12 3\n").unwrap();
    // Nobody listens on a port just freed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let closed = closed.to_string();
    let cases: [(&[&str], &str); 6] = [
        (&["--hold-dist", "lognormal:60"], "--hold-dist"),
        (&["--hold-dist", "gamma:1,2"], "unknown distribution"),
        (
            &["--numbers", "/nonexistent/numbers.txt"],
            "/nonexistent/numbers.txt",
        ),
        (&["--numbers", bad_numbers.to_str().unwrap()], "line 2"),
        (&["--esl", "localhost"], "expected HOST:PORT"),
        (&["--esl", &closed], "cannot connect"),
    ];
    for (extra, expected) in cases {
        let mut args = vec![
            "load",
            "--dial-string",
            "sofia/gateway/gw1/{n}",
            "--rate",
            "5",
        ];
        args.extend(["--limit", "5", "--calls", "5", "--quiet"]);
        if !extra.contains(&"--esl") {
            args.extend(["--esl", &closed]);
        }
        args.extend(extra);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fsdialer"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
