//! The simulator's ESL server over TCP: replies compared with the real captures, events in each format, bad input,
//! many clients, and a third-party client (greenswitch from PyPI).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fsdialer::esl::frame::Frame;
use fsdialer::esl::{ContentType, Event, Limits};
use fsdialer::sim::server::{self, ServerConfig, SimHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Conn {
    sock: TcpStream,
    buf: BytesMut,
}

impl Conn {
    async fn open(h: &SimHandle) -> Conn {
        let sock = TcpStream::connect(h.local_addr()).await.unwrap();
        let mut c = Conn {
            sock,
            buf: BytesMut::new(),
        };
        let f = c.frame().await.expect("greeting");
        assert_eq!(f.content_type(), ContentType::AuthRequest);
        c
    }

    async fn authed(h: &SimHandle) -> Conn {
        let mut c = Conn::open(h).await;
        assert_eq!(c.cmd("auth ClueCon").await, "+OK accepted");
        c
    }

    async fn send(&mut self, raw: &[u8]) {
        self.sock.write_all(raw).await.unwrap();
    }

    /// Next frame, or None when the server closed the socket.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            let bytes = Bytes::copy_from_slice(&self.buf);
            if let Some((f, used)) = Frame::parse(&bytes, &Limits::default()).unwrap() {
                let _ = self.buf.split_to(used);
                return Some(f);
            }
            let n =
                tokio::time::timeout(Duration::from_secs(20), self.sock.read_buf(&mut self.buf))
                    .await
                    .expect("read timeout")
                    .ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    /// Next frame that is not an event.
    async fn reply_frame(&mut self) -> Frame {
        loop {
            let f = self.frame().await.expect("frame");
            if !f.content_type().is_event() {
                return f;
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\n\n").as_bytes()).await;
        let f = self.reply_frame().await;
        text(f.header("Reply-Text").unwrap_or_default())
    }

    async fn api(&mut self, line: &str) -> String {
        self.send(format!("api {line}\n\n").as_bytes()).await;
        let f = self.reply_frame().await;
        assert_eq!(f.content_type(), ContentType::ApiResponse);
        text(&f.body())
    }

    async fn events_until(&mut self, stop: &str) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let f = self.frame().await.expect("event");
            if !f.content_type().is_event() {
                continue;
            }
            let e = Event::from_frame(&f).unwrap();
            let done = e.name() == Some(stop);
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn sim(speed: f64) -> SimHandle {
    server::start(ServerConfig {
        speed,
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn wrong_password_gets_err_invalid_then_disconnect_notice_and_close() {
    let h = sim(1.0).await;
    let mut c = Conn::open(&h).await;
    c.send(b"auth wrongpassword\n\n").await;
    let f = c.frame().await.unwrap();
    assert_eq!(f.header("Reply-Text"), Some(&b"-ERR invalid"[..]));
    let f = c.frame().await.unwrap();
    assert_eq!(f.content_type(), ContentType::DisconnectNotice);
    assert_eq!(
        text(&f.body()),
        "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
    );
    assert!(c.frame().await.is_none(), "socket closed");
}

/// Replays the commands of `auth_and_errors.sent.bin` and compares every reply with the capture.
#[tokio::test]
async fn auth_and_error_replies_equal_the_capture() {
    let h = sim(1.0).await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/esl/");
    let sent = std::fs::read(format!("{root}auth_and_errors.sent.bin")).unwrap();
    let frames: Vec<serde_json::Value> =
        std::fs::read_to_string(format!("{root}auth_and_errors.frames.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let capture = std::fs::read(format!("{root}auth_and_errors.bin")).unwrap();
    let mut c = Conn::open(&h).await;
    c.send(&sent).await;
    for f in frames.iter().skip(1) {
        let got = c.frame().await.expect("frame");
        let headers = f["headers"].as_array().unwrap();
        let ct = headers.iter().find(|h| h[0] == "Content-Type").unwrap()[1]
            .as_str()
            .unwrap();
        assert_eq!(got.content_type().as_str(), Some(ct));
        if let Some(rt) = headers.iter().find(|h| h[0] == "Reply-Text") {
            assert_eq!(
                got.header("Reply-Text").map(text).as_deref(),
                rt[1].as_str(),
                "reply for frame at {}",
                f["offset"]
            );
        }
        let (off, len, blen) = (
            f["offset"].as_u64().unwrap() as usize,
            f["length"].as_u64().unwrap() as usize,
            f["body_length"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            text(&got.body()),
            text(&capture[off + len - blen..off + len]),
            "body at {off}"
        );
    }
    assert!(c.frame().await.is_none());
}

#[tokio::test]
async fn api_replies_match_the_captured_texts() {
    let h = sim(1.0).await;
    let mut c = Conn::authed(&h).await;
    assert!(c.api("status").await.contains("is ready\n"));
    assert_eq!(
        c.api("version").await,
        "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
    );
    assert_eq!(c.api("show channels as json").await, "{\"row_count\": 0}\n");
    assert_eq!(c.api("show channels").await, "\n0 total.\n");
    assert_eq!(c.api("show calls count").await, "\n0 total.\n");
    assert_eq!(c.api("global_getvar switchname").await, "fsdialer-sim");
    assert_eq!(c.api("global_getvar nothing_here").await, "-ERR no reply\n");
    assert_eq!(
        c.api("no_such_command foo").await,
        "-ERR no_such_command Command not found!\n"
    );
    assert_eq!(c.cmd("api").await, "-ERR command not found");
    assert_eq!(
        c.api("uuid_kill 7c81df3c-4657-4fd9-81c4-b897b33bf691")
            .await,
        "-ERR No such channel!\n"
    );
    assert_eq!(
        c.api("originate error/USER_BUSY &park").await,
        "-ERR USER_BUSY\n"
    );
    assert_eq!(
        c.api("originate").await,
        "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
    );
    let uuid = "e0983cc6-e2b6-4568-a700-700e95a27fa5";
    c.send(format!("bgapi originate {{origination_uuid={uuid},custom_var=hello}}loopback/answer_20/default &park\nJob-UUID: 11111111-2222-3333-4444-555555555555\n\n").as_bytes()).await;
    let f = c.reply_frame().await;
    assert_eq!(
        f.header("Reply-Text"),
        Some(&b"+OK Job-UUID: 11111111-2222-3333-4444-555555555555"[..])
    );
    assert_eq!(
        f.header("Job-UUID"),
        Some(&b"11111111-2222-3333-4444-555555555555"[..])
    );
    assert_eq!(c.api(&format!("uuid_exists {uuid}")).await, "true");
    assert_eq!(
        c.api(&format!("uuid_getvar {uuid} custom_var")).await,
        "hello"
    );
    assert_eq!(
        c.api(&format!("uuid_getvar {uuid} no_such_var")).await,
        "_undef_"
    );
    assert_eq!(
        c.api(&format!("uuid_setvar {uuid} other 42")).await,
        "+OK\n"
    );
    assert_eq!(c.api(&format!("uuid_getvar {uuid} other")).await, "42");
    assert_eq!(c.api("show calls count").await, "\n2 total.\n");
    let json: serde_json::Value =
        serde_json::from_str(&c.api("show channels as json").await).unwrap();
    assert_eq!(json["row_count"], 2);
    assert_eq!(json["rows"][0]["uuid"], uuid);
    assert_eq!(json["rows"][0]["name"], "loopback/answer_20-a");
    assert_eq!(c.api(&format!("uuid_kill {uuid}")).await, "+OK\n");
    assert_eq!(
        c.api(&format!("uuid_kill {uuid}")).await,
        "-ERR No such channel!\n"
    );
    let sync = c.api("originate loopback/answer_1/default &park").await;
    assert!(sync.starts_with("+OK ") && sync.len() == 41, "{sync:?}");
}

#[tokio::test]
async fn events_in_each_format_and_filters() {
    let h = sim(20.0).await;
    for (fmt, ct) in [
        ("plain", ContentType::EventPlain),
        ("json", ContentType::EventJson),
        ("xml", ContentType::EventXml),
    ] {
        let mut c = Conn::authed(&h).await;
        assert_eq!(
            c.cmd(&format!("event {fmt} ALL")).await,
            format!("+OK event listener enabled {fmt}")
        );
        assert_eq!(
            c.cmd("filter Event-Name CHANNEL_HANGUP_COMPLETE").await,
            "+OK filter added. [Event-Name]=[CHANNEL_HANGUP_COMPLETE]"
        );
        assert_eq!(
            c.cmd("filter Event-Name BACKGROUND_JOB").await,
            "+OK filter added. [Event-Name]=[BACKGROUND_JOB]"
        );
        c.send(b"bgapi originate loopback/answer_1/default &park\nJob-UUID: 88a8cc56-674d-43f3-b089-73d5c0d8792d\n\n").await;
        let mut names = Vec::new();
        while names.len() < 3 {
            let f = c.frame().await.unwrap();
            if f.content_type().is_event() {
                assert_eq!(f.content_type(), ct);
                let e = Event::from_frame(&f).unwrap();
                if e.name() == Some("BACKGROUND_JOB") {
                    assert_eq!(e.job_uuid(), Some("88a8cc56-674d-43f3-b089-73d5c0d8792d"));
                    assert!(e.body_text().unwrap().starts_with("+OK "));
                }
                names.push(e.name().unwrap().to_string());
            }
        }
        assert_eq!(
            names,
            vec![
                "BACKGROUND_JOB",
                "CHANNEL_HANGUP_COMPLETE",
                "CHANNEL_HANGUP_COMPLETE"
            ],
            "{fmt}"
        );
        assert_eq!(
            c.cmd("filter delete all").await,
            "+OK filter deleted. [all][]"
        );
        assert_eq!(
            c.cmd("noevents").await,
            "+OK no longer listening for events"
        );
        assert_eq!(c.cmd("noevents").await, "-ERR not listening for events");
    }
}

#[tokio::test]
async fn each_client_gets_only_its_subscription() {
    let h = sim(20.0).await;
    let mut a = Conn::authed(&h).await;
    let mut b = Conn::authed(&h).await;
    assert_eq!(
        a.cmd("event plain CHANNEL_ANSWER BACKGROUND_JOB").await,
        "+OK event listener enabled plain"
    );
    assert_eq!(
        b.cmd("event json CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE")
            .await,
        "+OK event listener enabled json"
    );
    let mut other = Conn::authed(&h).await;
    other
        .send(b"bgapi originate loopback/answer_1/default &park\n\n")
        .await;
    let ea = a.events_until("BACKGROUND_JOB").await;
    assert!(
        ea.iter()
            .all(|e| matches!(e.name(), Some("CHANNEL_ANSWER" | "BACKGROUND_JOB")))
    );
    let eb = b.events_until("CHANNEL_HANGUP_COMPLETE").await;
    assert!(
        eb.iter()
            .all(|e| matches!(e.name(), Some("CHANNEL_CREATE" | "CHANNEL_HANGUP_COMPLETE")))
    );
    assert_eq!(eb[0].name(), Some("CHANNEL_CREATE"));
}

#[tokio::test]
async fn sendmsg_execute_runs_an_application_with_event_lock() {
    let h = sim(1.0).await;
    let mut c = Conn::authed(&h).await;
    c.cmd("event plain CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_PARK")
        .await;
    let uuid = "0d7c5a20-0000-4000-8000-000000000001";
    c.send(
        format!("bgapi originate {{origination_uuid={uuid}}}loopback/answer_30/default &park\n\n")
            .as_bytes(),
    )
    .await;
    let _ = c.events_until("CHANNEL_PARK").await;
    let r = c.cmd(&format!("sendmsg {uuid}\ncall-command: execute\nexecute-app-name: set\nexecute-app-arg: dlr_flag=1\nevent-lock: true")).await;
    assert_eq!(r, "+OK");
    let ev = c.events_until("CHANNEL_EXECUTE_COMPLETE").await;
    let done = ev.last().unwrap();
    assert_eq!(done.get("Application"), Some("set"));
    assert_eq!(done.get("Application-Data"), Some("dlr_flag=1"));
    assert_eq!(c.api(&format!("uuid_getvar {uuid} dlr_flag")).await, "1");
    assert_eq!(
        c.cmd("sendmsg 00000000-0000-0000-0000-000000000000\ncall-command: hangup")
            .await,
        "-ERR invalid session id [00000000-0000-0000-0000-000000000000]"
    );
    assert_eq!(c.api(&format!("uuid_kill {uuid}")).await, "+OK\n");
}

#[tokio::test]
async fn garbage_and_oversized_input_never_hurt_other_clients() {
    let h = sim(1.0).await;
    let mut good = Conn::authed(&h).await;
    // Garbage before auth: FreeSWITCH answers "-ERR command not found" and keeps the connection.
    let mut g = Conn::open(&h).await;
    g.send(b"\x00\xff\xfe garbage \x01\x02\n\n").await;
    assert_eq!(
        g.reply_frame().await.header("Reply-Text"),
        Some(&b"-ERR command not found"[..])
    );
    assert_eq!(g.cmd("api status").await, "-ERR command not found");
    // An oversized command (over 10 MiB without a blank line) gets a clean disconnect.
    let mut big = Conn::authed(&h).await;
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..11 {
        if big.sock.write_all(&chunk).await.is_err() {
            break;
        }
    }
    loop {
        match big.frame().await {
            None => break,
            Some(f) => assert_eq!(f.content_type(), ContentType::DisconnectNotice),
        }
    }
    // Invalid UTF-8 in an authenticated command, a bad Content-Length, then a half command and a hang-up.
    let mut x = Conn::authed(&h).await;
    assert_eq!(x.cmd("api \u{fffd}\u{fffd}").await.len(), 0);
    x.send(b"sendmsg x\ncontent-length: nope\n\n").await;
    let mut half = Conn::authed(&h).await;
    half.send(b"api sta").await;
    drop(half);
    assert!(good.api("status").await.contains("is ready"));
    assert!(good.api("show calls count").await.contains("total."));
}

#[tokio::test]
async fn many_clients_at_once() {
    let h = sim(50.0).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let addr = h.local_addr();
        tasks.push(tokio::spawn(async move {
            let sock = TcpStream::connect(addr).await.unwrap();
            let mut c = Conn {
                sock,
                buf: BytesMut::new(),
            };
            c.frame().await.unwrap();
            assert_eq!(c.cmd("auth ClueCon").await, "+OK accepted");
            c.cmd("event plain BACKGROUND_JOB").await;
            let job = format!("00000000-0000-4000-8000-{i:012}");
            c.send(
                format!("bgapi originate sofia/gateway/gw/answer_1 &park\nJob-UUID: {job}\n\n")
                    .as_bytes(),
            )
            .await;
            let ev = c.events_until("BACKGROUND_JOB").await;
            // Each client sees its own job among the jobs of all clients.
            let mut seen = ev.iter().any(|e| e.job_uuid() == Some(job.as_str()));
            while !seen {
                let more = c.events_until("BACKGROUND_JOB").await;
                seen = more.iter().any(|e| e.job_uuid() == Some(job.as_str()));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn greenswitch_third_party_client_originates_and_receives_events() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import greenswitch"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let install = std::process::Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "greenswitch"])
            .status();
        match install {
            Ok(s) if s.success() => {}
            other => panic!(
                "cannot install the Python package greenswitch from PyPI (python3 -m pip install greenswitch): {other:?}"
            ),
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(sim(1.0));
    let port = h.local_addr().port().to_string();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sim_py/greenswitch_client.py"
    );
    let out = std::process::Command::new("python3")
        .args([script, &port, "ClueCon"])
        .output()
        .expect("run python3");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "greenswitch client failed\nstdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    rt.block_on(h.shutdown());
}

#[tokio::test]
async fn heartbeat_every_interval_of_simulated_time_to_subscribed_clients_only() {
    // 20 simulated seconds per real second: FreeSWITCH's 20 s heartbeat comes about once a real second.
    let h = sim(20.0).await;
    let mut deaf = Conn::authed(&h).await;
    assert_eq!(
        deaf.cmd("event plain CHANNEL_CREATE").await,
        "+OK event listener enabled plain"
    );
    let mut c = Conn::authed(&h).await;
    assert_eq!(
        c.cmd("event plain HEARTBEAT RE_SCHEDULE").await,
        "+OK event listener enabled plain"
    );
    let started = std::time::Instant::now();
    let first = c.events_until("RE_SCHEDULE").await;
    let second = c.events_until("RE_SCHEDULE").await;
    let apart = started.elapsed();
    assert!(
        apart < Duration::from_secs(6),
        "two heartbeats took {apart:?}"
    );
    for pair in [&first, &second] {
        let names: Vec<_> = pair.iter().map(|e| e.name().unwrap()).collect();
        assert_eq!(names, ["HEARTBEAT", "RE_SCHEDULE"]);
        let hb = &pair[0];
        for header in [
            "Core-UUID",
            "FreeSWITCH-Hostname",
            "Event-Date-Timestamp",
            "Event-Sequence",
            "Up-Time",
            "Uptime-msec",
            "Session-Count",
            "Max-Sessions",
            "Session-Since-Startup",
            "Idle-CPU",
        ] {
            assert!(hb.get(header).is_some(), "HEARTBEAT lacks {header}");
        }
        assert_eq!(hb.get("Event-Info"), Some("System Ready"));
        assert_eq!(pair[1].get("Task-Desc"), Some("heartbeat"));
    }
    let stamp = |e: &Event| {
        e.get("Event-Date-Timestamp")
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let gap = stamp(&second[0]) - stamp(&first[0]);
    assert!(
        (19_000_000..=21_000_000).contains(&gap),
        "simulated gap {gap} µs"
    );
    // The client subscribed to CHANNEL_CREATE only got nothing: its next frame is the reply to this api.
    deaf.send(b"api uptime\n\n").await;
    let next = deaf.frame().await.expect("a frame");
    assert_eq!(next.content_type(), ContentType::ApiResponse);
    h.shutdown().await;
}

/// Events on `events` until `done` says so, each checked by `each`.
async fn collect_until(
    events: &mut fsdialer::esl::client::Events,
    mut done: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    use fsdialer::esl::client::ClientEvent;
    let mut out = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("events in time")
            .expect("channel open");
        if let ClientEvent::Event(e) = next {
            let stop = done(&e);
            out.push(e);
            if stop {
                return out;
            }
        }
    }
}

#[tokio::test]
async fn a_node_filter_lets_through_its_own_calls_both_legs_and_jobs_but_not_other_clients_calls() {
    use fsdialer::engine::originate::{self, OriginateSpec};
    use fsdialer::engine::subscription;
    use fsdialer::esl::client::{Client, ClientConfig, EventFormat};

    let h = sim(10.0).await;
    let addr = h.local_addr().to_string();
    let (ours, mut our_events) = Client::connect(ClientConfig::new(addr.clone(), "ClueCon"))
        .await
        .unwrap();
    subscription::for_node("node-a")
        .unwrap()
        .apply(&ours)
        .await
        .unwrap();
    let (other, mut other_events) = Client::connect(ClientConfig::new(addr, "ClueCon"))
        .await
        .unwrap();
    other
        .event(EventFormat::Plain, &["CHANNEL_HANGUP_COMPLETE"])
        .await
        .unwrap();

    // Another node's dialer and a call that is no dialer's at all, placed by the other client.
    let foreign = [
        (uuid::Uuid::new_v4(), ",dlr_node=node-b"),
        (uuid::Uuid::new_v4(), ""),
    ];
    for (uuid, tag) in &foreign {
        let job = other
            .bgapi(&format!(
                "originate {{origination_uuid={uuid}{tag}}}loopback/answer_1/default &park()"
            ))
            .await
            .unwrap();
        assert!(job.result().await.unwrap().text().starts_with("+OK"));
    }
    // This node's call, tagged as the engine tags it.
    let attempt = uuid::Uuid::new_v4();
    let built = originate::build(&OriginateSpec {
        attempt_id: attempt,
        dial_string: "loopback/answer_1/default",
        originate_timeout_sec: 30,
        caller_id_number: None,
        campaign_id: "c1",
        member_id: "m1",
        attempt_no: 1,
        campaign_vars: &[],
        member_vars: &[],
        application: "&park()",
        node: Some("node-a"),
    });
    let job = ours
        .bgapi(&format!("originate {}", built.args))
        .await
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(20), job.result())
        .await
        .expect("our BACKGROUND_JOB passed the filter")
        .unwrap();
    assert_eq!(result.text(), format!("+OK {attempt}"));

    // Both foreign a-legs have ended (the other client saw their HANGUP_COMPLETE) …
    let mut foreign_left: Vec<String> = foreign.iter().map(|(u, _)| u.to_string()).collect();
    collect_until(&mut other_events, |e| {
        foreign_left.retain(|u| Some(u.as_str()) != e.unique_id());
        foreign_left.is_empty()
    })
    .await;
    // … and so have both legs of ours.
    let mut completes = 0;
    let seen = collect_until(&mut our_events, |e| {
        completes += usize::from(e.name() == Some("CHANNEL_HANGUP_COMPLETE"));
        completes == 2
    })
    .await;
    // Everything queued before this reply is in the channel now.
    ours.api("uptime").await.unwrap();
    let mut seen = seen;
    while let Some(fsdialer::esl::client::ClientEvent::Event(e)) = our_events.try_recv() {
        seen.push(e);
    }

    let channel_events: Vec<&Event> = seen
        .iter()
        .filter(|e| e.name().is_some_and(|n| n.starts_with("CHANNEL_")))
        .collect();
    for e in &channel_events {
        assert_eq!(
            e.variable("dlr_node"),
            Some("node-a"),
            "{:?} of {:?} is not ours",
            e.name(),
            e.get("Channel-Name")
        );
    }
    let a_leg = attempt.to_string();
    let legs: std::collections::HashSet<&str> = channel_events
        .iter()
        .filter_map(|e| e.unique_id())
        .collect();
    assert_eq!(legs.len(), 2, "the a-leg and the loopback b-leg: {legs:?}");
    assert!(legs.contains(a_leg.as_str()));
    for name in [
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "CHANNEL_HANGUP_COMPLETE",
    ] {
        assert!(
            channel_events
                .iter()
                .any(|e| e.name() == Some(name) && e.unique_id() == Some(a_leg.as_str())),
            "our a-leg's {name} is missing"
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn the_node_subscription_lets_the_heartbeat_through_and_the_client_records_it() {
    use fsdialer::engine::subscription;
    use fsdialer::esl::client::{Client, ClientConfig};

    // 20 simulated seconds per real second: a heartbeat about every real second.
    let h = sim(20.0).await;
    let (client, _events) =
        Client::connect(ClientConfig::new(h.local_addr().to_string(), "ClueCon"))
            .await
            .unwrap();
    assert_eq!(client.health().heartbeat, None);
    subscription::for_node("node-a")
        .unwrap()
        .apply(&client)
        .await
        .unwrap();
    let heartbeat = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(hb) = client.health().heartbeat {
                return hb;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a heartbeat within 10 s");
    assert_eq!(heartbeat.session_count, Some(0));
    assert_eq!(heartbeat.idle_cpu, Some(100.0));
    h.shutdown().await;
}

#[tokio::test]
async fn the_engine_reads_the_switch_limits_and_finds_missing_prompts() {
    use fsdialer::engine::switch_info::{SwitchLimits, missing_prompts, read_limits};
    use fsdialer::esl::client::{Client, ClientConfig};
    let scenario = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        scenario.path(),
        "sounds = [\"ivr/ivr-welcome.wav\", \"/var/prompts/thanks.wav\"]\n",
    )
    .unwrap();
    let h = server::start(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        scenario: Some(scenario.path().to_path_buf()),
        switch: fsdialer::sim::model::Config {
            max_sessions: 250,
            sessions_per_second: 12,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let (client, _events) =
        Client::connect(ClientConfig::new(h.local_addr().to_string(), "ClueCon"))
            .await
            .unwrap();
    assert_eq!(
        read_limits(&client).await.unwrap(),
        SwitchLimits {
            max_sessions: 250,
            sessions_per_second: 12
        }
    );
    // As mod_commands answers: reading does not change them, an argument sets them.
    assert_eq!(
        client.api_text("fsctl sps 20").await.unwrap(),
        "+OK sessions per second: 20\n"
    );
    assert_eq!(read_limits(&client).await.unwrap().sessions_per_second, 20);
    let files: Vec<String> = [
        "ivr/ivr-welcome.wav",
        "ivr/ivr-please_press_1_to_confirm.wav",
        "/var/prompts/thanks.wav",
        "/var/prompts/other.wav",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        missing_prompts(&client, &files).await.unwrap(),
        [
            "ivr/ivr-please_press_1_to_confirm.wav",
            "/var/prompts/other.wav"
        ]
    );
    // file_exists stats the path as given: a relative one is not under sound_prefix.
    assert_eq!(
        client
            .api_text("file_exists ivr/ivr-welcome.wav")
            .await
            .unwrap(),
        "false"
    );
}

/// The engine connects to a switch whose limits the configuration leaves unset (the demo's `--esl` endpoint):
/// it reads them (`fsctl`) and paces by them. This switch lets 4 sessions a second through (2 loopback calls),
/// where FreeSWITCH's default of 30 would start the demo's 15 members in one burst and have most refused (52 of 77
/// attempts Minus when the engine assumed 30): every member ends, and the switch refuses next to nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_paces_by_the_limits_it_reads_from_the_switch() {
    use fsdialer::engine::demo::{DemoOptions, run};
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let speed = 20.0;
    let h = server::start(ServerConfig {
        speed,
        scenario: Some(root.join("fixtures/sim/demo.toml")),
        switch: fsdialer::sim::model::Config {
            max_sessions: 1000,
            sessions_per_second: 5,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let report = run(
        DemoOptions {
            progress: false,
            esl: Some((h.local_addr().to_string(), "ClueCon".into())),
            members: root.join("fixtures/demo/members-small.json"),
            scenario: None,
            speed,
            timeout: Some(Duration::from_secs(120)),
            ..DemoOptions::default()
        },
        fsdialer::engine::default_callflow(),
    )
    .await
    .expect("the demo runs against the switch");
    h.shutdown().await;
    let c = &report.counters;
    assert_eq!(c.ended, 15, "{c:?}");
    // Engine and switch keep separate clocks: a simulated second is 50 ms here, and a few ms of scheduling on a
    // loaded machine can move a start into the switch's next second. Allow that, not a burst.
    assert!(c.minus <= 2, "sessions refused: {c:?}");
    assert!(c.calls >= 15, "{c:?}");
}

/// A campaign whose prompt files a switch lacks runs anyway, and the engine names the missing file (switch and
/// path as the callflow gives it) once the campaign starts running: the switch's scenario has three of the demo
/// campaign's four prompts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_starting_to_run_is_checked_for_prompts_missing_on_the_switch() {
    use fsdialer::campaign::config::CampaignConfig;
    use fsdialer::engine::clock::Clock;
    use fsdialer::engine::core::CoreConfig;
    use fsdialer::engine::shell::{self, EngineConfig, MissingPrompt, SwitchEndpoint};
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scenario = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        scenario.path(),
        "sounds = [\"ivr/ivr-welcome.wav\", \"ivr/ivr-please_press_1_to_confirm.wav\", \
         \"ivr/ivr-that_was_an_invalid_entry.wav\"]\n",
    )
    .unwrap();
    let h = server::start(ServerConfig {
        scenario: Some(scenario.path().to_path_buf()),
        ..Default::default()
    })
    .await
    .unwrap();
    let text = std::fs::read_to_string(root.join("fixtures/campaigns/demo.toml")).unwrap();
    let valid = std::sync::Arc::new(
        CampaignConfig::from_toml_str(&text)
            .unwrap()
            .validate()
            .unwrap(),
    );
    let id = valid.id().to_owned();
    let (engine, _join) = shell::start(
        EngineConfig {
            core: CoreConfig::default(),
            switches: vec![SwitchEndpoint {
                name: "fs1".into(),
                addr: h.local_addr().to_string(),
                password: "ClueCon".into(),
                max_sessions: None,
                sessions_per_second: None,
                sessions_per_call: 2,
            }],
            clock: Clock::real(),
            switch_stall_warn: shell::DEFAULT_SWITCH_STALL_WARN,
        },
        fsdialer::store::Store::memory(),
        None,
    );
    engine.upsert(valid).await.unwrap();
    // Not running yet: nothing checked.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(engine.missing_prompts(&id).is_empty());
    engine.run(&id).await.unwrap();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let missing = engine.missing_prompts(&id);
            if !missing.is_empty() {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the prompt check reports within 10 s");
    assert_eq!(
        found,
        [MissingPrompt {
            switch: "fs1".into(),
            file: "ivr/ivr-thank_you.wav".into(),
        }]
    );
    engine.shutdown().await;
    h.shutdown().await;
}

#[tokio::test]
async fn uuid_bridge_over_esl_bridges_two_parked_legs_and_a_kill_hangs_up_both() {
    let h = sim(10.0).await;
    let mut c = Conn::authed(&h).await;
    assert!(
        c.cmd("event plain CHANNEL_EXECUTE CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
            .await
            .starts_with("+OK")
    );
    // The engine's node filter: both legs carry the node variable, so both pass.
    assert!(
        c.cmd("filter variable_dlr_node node-a")
            .await
            .starts_with("+OK")
    );
    assert!(
        c.cmd("filter Event-Name BACKGROUND_JOB")
            .await
            .starts_with("+OK")
    );
    let (member, agent) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let mut seen = Vec::new();
    for (uuid, dest) in [(&member, "answer_600"), (&agent, "answer_600")] {
        c.cmd(&format!(
            "bgapi originate {{origination_uuid={uuid},dlr_node=node-a}}loopback/{dest}/default &park()"
        ))
        .await;
        seen.extend(c.events_until("BACKGROUND_JOB").await);
    }
    let jobs: Vec<String> = seen
        .iter()
        .filter(|e| e.name() == Some("BACKGROUND_JOB"))
        .map(|e| e.body_text().unwrap().into_owned())
        .collect();
    assert_eq!(jobs, [format!("+OK {member}\n"), format!("+OK {agent}\n")]);

    c.send(format!("api uuid_bridge {member} {agent}\n\n").as_bytes())
        .await;
    let mut reply = None;
    let mut bridge = None;
    let mut executes = std::collections::HashSet::new();
    while reply.is_none() || bridge.is_none() {
        let f = c.frame().await.expect("frame");
        if !f.content_type().is_event() {
            reply = Some(text(&f.body()));
            continue;
        }
        let e = Event::from_frame(&f).unwrap();
        if e.name() == Some("CHANNEL_EXECUTE") && e.get("Application") == Some("uuid_bridge") {
            executes.insert(e.unique_id().unwrap().to_string());
        }
        if e.name() == Some("CHANNEL_BRIDGE") {
            bridge = Some(e);
        }
    }
    assert_eq!(reply.unwrap(), format!("+OK {agent}\n"));
    let bridge = bridge.unwrap();
    assert_eq!(bridge.unique_id(), Some(member.as_str()));
    assert_eq!(bridge.get("Other-Leg-Unique-ID"), Some(agent.as_str()));
    assert_eq!(bridge.get("Bridge-B-Unique-ID"), Some(agent.as_str()));
    assert_eq!(
        executes,
        [member.clone(), agent.clone()].into_iter().collect(),
        "the uuid_bridge EXECUTE of each leg passed the node filter"
    );

    assert_eq!(c.api(&format!("uuid_kill {agent}")).await, "+OK\n");
    let mut ended = std::collections::HashMap::new();
    let mut unbridged_before_member_ended = false;
    while !(ended.contains_key(&member) && ended.contains_key(&agent)) {
        let e = c.events_until("CHANNEL_HANGUP_COMPLETE").await;
        for e in e {
            if e.name() == Some("CHANNEL_UNBRIDGE") && e.unique_id() == Some(member.as_str()) {
                unbridged_before_member_ended = !ended.contains_key(&member);
            }
            if e.name() == Some("CHANNEL_HANGUP_COMPLETE") {
                let u = e.unique_id().unwrap().to_string();
                ended.insert(u, e.get("Hangup-Cause").unwrap_or("").to_string());
            }
        }
    }
    assert!(unbridged_before_member_ended);
    assert_eq!(ended[&agent], "NORMAL_CLEARING");
    assert_eq!(ended[&member], "NORMAL_CLEARING");
    assert_eq!(c.api("show calls count").await, "\n0 total.\n");
    h.shutdown().await;
}
