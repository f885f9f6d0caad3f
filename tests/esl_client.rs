//! The inbound ESL client against a test ESL server over real TCP (port 0).
//!
//! Every wait is bounded by a timeout, so a client that hangs fails the test instead of stalling the suite.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use fsdialer::esl::client::{
    Auth, Client, ClientConfig, ClientError, ClientEvent, ConnectionState, EventFormat, Events,
    JobOutcome, Liveness, SendMsg, StallChange, StallWatch,
};
use support::esl_server::{ServerConfig, TestServer};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn server() -> TestServer {
    TestServer::start(ServerConfig::default()).await
}

async fn connect(server: &TestServer) -> (Client, Events) {
    within("connect", Client::connect(server.client_config()))
        .await
        .expect("connects")
}

async fn next(events: &mut Events) -> ClientEvent {
    within("next event", events.recv())
        .await
        .expect("event channel open")
}

/// The next decoded event, skipping connection markers.
async fn next_event(events: &mut Events) -> fsdialer::esl::Event {
    loop {
        match next(events).await {
            ClientEvent::Event(e) => return e,
            ClientEvent::Connected { .. } => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

async fn wait_state(client: &Client, what: &str, pred: impl Fn(&ConnectionState) -> bool) {
    let mut rx = client.state();
    within(what, rx.wait_for(|s| pred(s)))
        .await
        .expect("state sender alive");
}

#[tokio::test]
async fn password_auth_connects_and_subscribes_background_job_first() {
    let server = server().await;
    let (client, mut events) = connect(&server).await;
    assert!(matches!(
        next(&mut events).await,
        ClientEvent::Connected { generation: 1 }
    ));
    client.api("status").await.unwrap();
    let conn = server.connections()[0];
    assert_eq!(
        server.lines_on(conn),
        ["auth ClueCon", "event plain BACKGROUND_JOB", "api status"]
    );
    assert_eq!(
        *client.state().borrow(),
        ConnectionState::Connected { generation: 1 }
    );
}

#[tokio::test]
async fn userauth_with_user_at_domain_is_accepted() {
    let server = server().await;
    let mut config = server.client_config();
    config.auth = Auth::User {
        user: "1000".into(),
        domain: "default".into(),
        password: "s3cret".into(),
    };
    let (client, _events) = Client::connect(config).await.unwrap();
    client.api("status").await.unwrap();
    assert_eq!(server.received()[0].line, "userauth 1000@default:s3cret");
}

#[tokio::test]
async fn wrong_password_is_a_clear_auth_error() {
    let server = server().await;
    let mut config = server.client_config();
    config.auth = Auth::Password("wrongpassword".into());
    let err = Client::connect(config).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::AuthFailed {
            addr: server.addr().to_owned(),
            reply: "-ERR invalid".into()
        }
    );
    assert!(err.to_string().contains("refused the credentials"), "{err}");
}

#[tokio::test]
async fn acl_rude_rejection_is_a_clear_error() {
    let server = TestServer::start(ServerConfig {
        reject: true,
        ..ServerConfig::default()
    })
    .await;
    let err = Client::connect(server.client_config()).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Rejected {
            addr: server.addr().to_owned(),
            text: "Access Denied, go away.".into()
        }
    );
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_naming_the_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = Client::connect(fsdialer::esl::client::ClientConfig::new(addr.clone(), "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Connect { addr: a, .. } if *a == addr),
        "{err:?}"
    );
}

#[tokio::test]
async fn api_returns_the_body_including_command_errors() {
    let server = server().await;
    let (client, _events) = connect(&server).await;
    let status = client.api_text("status").await.unwrap();
    assert!(status.starts_with("UP "), "{status}");
    assert_eq!(
        client.api_text("no_such_command foo").await.unwrap(),
        "-ERR no_such_command Command not found!\n"
    );
    assert_eq!(
        &client.api("echo кот 😀").await.unwrap()[..],
        "кот 😀".as_bytes()
    );
}

#[tokio::test]
async fn line_break_in_a_command_is_refused_before_anything_is_sent() {
    let server = server().await;
    let (client, _events) = connect(&server).await;
    client.api("status").await.unwrap();
    let before = server.received().len();
    let err = client.api("status\n\nexit").await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    assert!(client.bgapi("originate a\nb").await.is_err());
    assert!(client.filter("Unique-ID", "x\nexit").await.is_err());
    assert!(
        client
            .event(EventFormat::Plain, &["CHANNEL ANSWER"])
            .await
            .is_err()
    );
    client.api("status").await.unwrap();
    assert_eq!(
        server.received().len(),
        before + 1,
        "only the valid api went out"
    );
}

#[tokio::test]
async fn concurrent_api_calls_each_get_their_own_reply() {
    let server = server().await;
    let (client, _events) = connect(&server).await;
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { (i, client.api_text(&format!("echo reply-{i}")).await) })
        })
        .collect();
    for t in tasks {
        let (i, reply) = within("api", t).await.unwrap();
        assert_eq!(reply.unwrap(), format!("reply-{i}"));
    }
}

#[tokio::test]
async fn liveness_probes_between_commands_never_take_a_callers_reply() {
    let server = server().await;
    let mut config = server.client_config();
    config.liveness = Some(Liveness {
        interval: Duration::from_millis(1),
        timeout: Duration::from_secs(5),
        command: "status".into(),
    });
    let (client, mut events) = within("connect", Client::connect(config)).await.unwrap();
    for round in 0..20 {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(
                    async move { (i, client.api_text(&format!("echo r{round}-{i}")).await) },
                )
            })
            .collect();
        for t in tasks {
            let (i, reply) = within("api", t).await.unwrap();
            assert_eq!(reply.unwrap(), format!("r{round}-{i}"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let probes = server
        .received()
        .iter()
        .filter(|r| r.line == "api status")
        .count();
    assert!(probes >= 10, "only {probes} probes were sent");
    assert!(client.health().probe_rtt.is_some());
    while let Some(e) = events.try_recv() {
        assert!(
            matches!(e, ClientEvent::Connected { .. }),
            "a probe reply leaked to the event channel: {e:?}"
        );
    }
}

#[tokio::test]
async fn thousand_concurrent_bgapi_jobs_resolve_to_their_own_results() {
    let server = server().await;
    let (client, _events) = connect(&server).await;
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let job = client.bgapi(&format!("echo token-{i}")).await?;
                let uuid = job.job_uuid();
                assert!(job.reply().is_ok());
                assert_eq!(
                    job.reply().header("Job-UUID").as_deref(),
                    Some(uuid.to_string().as_str())
                );
                let result = job.await?;
                Ok::<_, ClientError>((i, uuid, result))
            })
        })
        .collect();
    let mut uuids = HashSet::new();
    for t in tasks {
        let (i, uuid, result) = within("bgapi job", t).await.unwrap().unwrap();
        assert_eq!(
            result.text(),
            format!("token-{i}"),
            "job {i} got another job's result"
        );
        assert_eq!(result.event().job_uuid(), Some(uuid.to_string().as_str()));
        assert!(uuids.insert(uuid));
    }
    assert_eq!(client.pending_jobs(), 0);
    let sent: HashSet<Uuid> = server
        .received()
        .iter()
        .filter(|r| r.line.starts_with("bgapi "))
        .map(|r| r.header("Job-UUID").unwrap().parse().unwrap())
        .collect();
    assert_eq!(sent, uuids, "the client chose every Job-UUID");
}

#[tokio::test]
async fn bgapi_failure_cause_and_caller_chosen_job_uuid() {
    let server = server().await;
    let (client, _events) = connect(&server).await;
    let id = Uuid::new_v4();
    let job = client
        .bgapi_with_uuid("originate {origination_uuid=x}error/NO_ANSWER &park", id)
        .await
        .unwrap();
    assert_eq!(job.job_uuid(), id);
    let result = within("job", job.result()).await.unwrap();
    assert_eq!(result.outcome(), JobOutcome::Err("NO_ANSWER"));
    assert!(!result.is_ok());
    let ok = within(
        "job",
        client
            .bgapi("originate loopback/answer/default &park")
            .await
            .unwrap()
            .result(),
    )
    .await
    .unwrap();
    assert!(matches!(ok.outcome(), JobOutcome::Ok(uuid) if Uuid::parse_str(uuid).is_ok()));
    let dup = client.bgapi_with_uuid("echo a", id).await;
    assert!(dup.is_ok(), "a finished job's uuid can be reused");
    let first = client
        .bgapi_with_uuid("sleep 200", Uuid::nil())
        .await
        .unwrap();
    let again = client
        .bgapi_with_uuid("echo b", Uuid::nil())
        .await
        .unwrap_err();
    assert!(
        matches!(again, ClientError::InvalidArgument(_)),
        "{again:?}"
    );
    within("job", first.result()).await.unwrap();
}

#[tokio::test]
async fn unclaimed_background_job_events_reach_the_event_channel() {
    let server = server().await;
    let (client, mut events) = connect(&server).await;
    client.api("status").await.unwrap();
    let foreign = Uuid::new_v4().to_string();
    let e = server.event("BACKGROUND_JOB", &[("Job-UUID", &foreign)], Some(b"+OK\n"));
    assert_eq!(server.emit(&e), 1);
    let got = next_event(&mut events).await;
    assert_eq!(got.job_uuid(), Some(foreign.as_str()));
}

#[tokio::test]
async fn events_arrive_complete_and_in_order_in_every_format() {
    for format in [EventFormat::Plain, EventFormat::Json, EventFormat::Xml] {
        let server = server().await;
        let (client, mut events) = connect(&server).await;
        client.event(format, &["CHANNEL_ANSWER"]).await.unwrap();
        let heartbeat = server.event("HEARTBEAT", &[], None);
        assert_eq!(server.emit(&heartbeat), 0, "not subscribed");
        let first = server
            .event("CHANNEL_ANSWER", &[], None)
            .sequence()
            .unwrap()
            + 1;
        for i in 0..2000 {
            let uuid = format!("call-{i}");
            let e = server.event(
                "CHANNEL_ANSWER",
                &[("Unique-ID", &uuid), ("variable_note", "a b:c%d+e кот")],
                None,
            );
            assert_eq!(server.emit(&e), 1);
        }
        for i in 0..2000u64 {
            let e = next_event(&mut events).await;
            assert_eq!(e.sequence(), Some(first + i), "{format}");
            assert_eq!(e.unique_id(), Some(format!("call-{i}").as_str()));
            assert_eq!(e.variable("note"), Some("a b:c%d+e кот"));
        }
        assert!(events.try_recv().is_none());
    }
}

#[tokio::test]
async fn slow_consumer_gets_back_pressure_not_loss_and_the_lag_shows_it() {
    let server = server().await;
    let mut config = server.client_config();
    config.event_capacity = 8;
    let (client, mut events) = Client::connect(config).await.unwrap();
    client.event(EventFormat::Plain, &["ALL"]).await.unwrap();
    let total = 3000u64;
    let first = server
        .event("CHANNEL_CREATE", &[], None)
        .sequence()
        .unwrap()
        + 1;
    for _ in 0..total {
        server.emit(&server.event("CHANNEL_CREATE", &[], None));
    }
    // The consumer has not read anything: the reader fills the channel, then waits.
    within("reader to block", async {
        while !client.lag().blocked {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let lag = events.lag();
    assert!(lag.pending >= 8, "{lag:?}");
    assert!(lag.stalls >= 1, "{lag:?}");
    let mut max_pending = lag.pending;
    let mut next_seq = first;
    while next_seq < first + total {
        max_pending = max_pending.max(events.lag().pending);
        match next(&mut events).await {
            ClientEvent::Event(e) => {
                assert_eq!(e.sequence(), Some(next_seq), "nothing dropped or reordered");
                next_seq += 1;
            }
            ClientEvent::Connected { .. } => {}
            other => panic!("{other:?}"),
        }
        if next_seq % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let lag = events.lag();
    assert_eq!(lag.pending, 0, "{lag:?}");
    assert!(!lag.blocked);
    assert!(lag.blocked_total > Duration::ZERO);
    assert!(lag.delivered > total, "{lag:?}");
    assert!(
        max_pending <= 9,
        "bounded: capacity + the one held by the reader"
    );
}

#[tokio::test]
async fn reconnect_reauthenticates_resubscribes_and_reapplies_filters() {
    let server = server().await;
    let (client, mut events) = connect(&server).await;
    client
        .event(
            EventFormat::Json,
            &["CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"],
        )
        .await
        .unwrap();
    client.filter("Unique-ID", "call-a").await.unwrap();
    client.filter("Unique-ID", "call-b").await.unwrap();
    client
        .filter_delete("Unique-ID", Some("call-b"))
        .await
        .unwrap();
    let conn1 = server.connections()[0];
    assert_eq!(
        server.lines_on(conn1),
        [
            "auth ClueCon",
            "event plain BACKGROUND_JOB",
            "event json CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE",
            "filter Event-Name BACKGROUND_JOB",
            "filter Unique-ID call-a",
            "filter Unique-ID call-b",
            "filter delete Unique-ID call-b",
        ]
    );

    server.drop_connections();
    wait_state(&client, "reconnect", |s| {
        *s == ConnectionState::Connected { generation: 2 }
    })
    .await;
    server
        .wait_for("the replay", |log| {
            log.iter().any(|r| {
                r.conn != conn1
                    && r.line == "event json BACKGROUND_JOB CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE"
            })
        })
        .await;
    let conn2 = server.connections()[0];
    assert_ne!(conn1, conn2);
    assert_eq!(
        server.lines_on(conn2),
        [
            "auth ClueCon",
            "filter Event-Name BACKGROUND_JOB",
            "filter Unique-ID call-a",
            "event json BACKGROUND_JOB CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE",
        ]
    );

    let mut saw = Vec::new();
    loop {
        match next(&mut events).await {
            ClientEvent::Connected { generation: 2 } => break,
            other => saw.push(other),
        }
    }
    assert!(
        saw.iter().any(|e| matches!(e, ClientEvent::Disconnected { generation: 1, reason } if reason.contains("closed"))),
        "{saw:?}"
    );
    let e = server.event("CHANNEL_ANSWER", &[("Unique-ID", "call-a")], None);
    assert_eq!(server.emit(&e), 1, "subscription and filter restored");
    let other = server.event("CHANNEL_ANSWER", &[("Unique-ID", "call-b")], None);
    assert_eq!(server.emit(&other), 0, "deleted filter stays deleted");
    assert_eq!(next_event(&mut events).await.unique_id(), Some("call-a"));
    let job = client.bgapi("echo after").await.unwrap();
    assert_eq!(within("job", job.result()).await.unwrap().text(), "after");
}

#[tokio::test]
async fn reconnect_keeps_trying_with_backoff_through_failed_attempts() {
    let server = server().await;
    let (client, _events) = connect(&server).await;
    server.refuse_next(3);
    server.drop_connections();
    wait_state(&client, "reconnect", |s| {
        *s == ConnectionState::Connected { generation: 2 }
    })
    .await;
    assert_eq!(
        server.accepts(),
        1 + 3 + 1,
        "three refused attempts, then success"
    );
    assert_eq!(client.api_text("echo ok").await.unwrap(), "ok");
}

#[tokio::test]
async fn in_flight_commands_and_jobs_fail_with_connection_lost_when_the_socket_dies() {
    let server = TestServer::start(ServerConfig {
        bgapi_max_delay: Duration::ZERO,
        ..ServerConfig::default()
    })
    .await;
    let (client, _events) = connect(&server).await;
    // Jobs that never finish before the socket dies: `hang` never answers.
    let mut jobs = Vec::new();
    for _ in 0..5 {
        jobs.push(client.bgapi("hang").await.unwrap());
    }
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.api("sleep 60000").await })
    };
    let queued: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.api(&format!("echo {i}")).await })
        })
        .collect();
    server
        .wait_for("the slow api", |log| {
            log.iter().any(|r| r.line == "api sleep 60000")
        })
        .await;
    assert_eq!(client.pending_jobs(), 5);
    server.drop_connections();

    let err = within("the slow api to fail", slow)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ClientError::ConnectionLost { .. }), "{err:?}");
    for q in queued {
        let res = within("queued api", q).await.unwrap();
        match res {
            Err(ClientError::ConnectionLost { .. }) => {}
            other => panic!("queued behind the slow api on the dead socket: {other:?}"),
        }
    }
    for job in jobs {
        let err = within("job", job.result()).await.unwrap_err();
        assert!(matches!(err, ClientError::ConnectionLost { .. }), "{err:?}");
        assert!(err.is_connection());
    }
    assert_eq!(client.pending_jobs(), 0);
    wait_state(&client, "reconnect", |s| {
        matches!(s, ConnectionState::Connected { generation: 2 })
    })
    .await;
    assert_eq!(client.api_text("echo back").await.unwrap(), "back");
}

#[tokio::test]
async fn job_cut_off_by_a_reconnect_reports_its_late_result_on_the_event_channel() {
    let server = server().await;
    let (client, mut events) = connect(&server).await;
    let job = client.bgapi("sleep 1000").await.unwrap();
    let id = job.job_uuid().to_string();
    server.drop_connections();
    let err = within("job", job.result()).await.unwrap_err();
    assert!(matches!(err, ClientError::ConnectionLost { .. }), "{err:?}");
    // The job still runs on the switch; its BACKGROUND_JOB reaches the new connection, unclaimed.
    let late = loop {
        match next(&mut events).await {
            ClientEvent::Event(e) => break e,
            ClientEvent::Disconnected { generation: 1, .. } | ClientEvent::Connected { .. } => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(late.name(), Some("BACKGROUND_JOB"));
    assert_eq!(late.job_uuid(), Some(id.as_str()));
    assert_eq!(late.body(), Some(&b"+OK"[..]));
}

#[tokio::test]
async fn half_open_connection_is_detected_by_the_reply_timeout() {
    let server = server().await;
    let mut config = server.client_config();
    config.reply_timeout = Some(Duration::from_millis(300));
    let (client, _events) = Client::connect(config).await.unwrap();
    let err = within("reply timeout", client.api("hang"))
        .await
        .unwrap_err();
    match &err {
        ClientError::ConnectionLost { reason } => {
            assert!(
                reason.contains("reply timeout") && reason.contains("api hang"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    wait_state(&client, "reconnect", |s| {
        matches!(s, ConnectionState::Connected { generation: 2 })
    })
    .await;
    assert_eq!(client.api_text("echo alive").await.unwrap(), "alive");
}

#[tokio::test]
async fn commands_while_reconnecting_fail_fast_with_not_connected() {
    let server = server().await;
    let (client, _events) = connect(&server).await;
    server.refuse_next(1_000_000);
    server.drop_connections();
    wait_state(
        &client,
        "reconnecting",
        |s| matches!(s, ConnectionState::Reconnecting { attempt, .. } if *attempt >= 1),
    )
    .await;
    let err = within("fail fast", client.api("status")).await.unwrap_err();
    assert!(matches!(err, ClientError::NotConnected { .. }), "{err:?}");
    assert!(client.bgapi("echo x").await.is_err());
    assert_eq!(
        client.pending_jobs(),
        0,
        "a refused bgapi leaves no job behind"
    );
    server.refuse_next(0);
    assert_eq!(
        within("reconnect", client.wait_connected()).await.unwrap(),
        2
    );
}

#[tokio::test]
async fn giving_up_after_max_attempts_closes_the_client() {
    let server = server().await;
    let mut config = server.client_config();
    config.reconnect.max_attempts = Some(2);
    let (client, mut events) = Client::connect(config).await.unwrap();
    server.refuse_next(1_000_000);
    server.drop_connections();
    wait_state(&client, "closed", |s| {
        matches!(s, ConnectionState::Closed { .. })
    })
    .await;
    let err = client.api("status").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Closed { reason } if reason.contains("gave up")),
        "{err:?}"
    );
    while let Some(item) = within("channel end", events.recv()).await {
        assert!(!matches!(item, ClientEvent::Event(_)));
    }
}

#[tokio::test]
async fn exit_gets_bye_then_the_disconnect_notice_and_closes_for_good() {
    let server = server().await;
    let (client, mut events) = connect(&server).await;
    within("exit", client.exit()).await.unwrap();
    assert_eq!(server.received().last().unwrap().line, "exit");
    assert!(matches!(
        *client.state().borrow(),
        ConnectionState::Closed { .. }
    ));
    let mut last = None;
    while let Some(item) = within("channel end", events.recv()).await {
        last = Some(item);
    }
    match last {
        Some(ClientEvent::Disconnected {
            generation: 1,
            reason,
        }) => {
            assert!(reason.contains("disconnect notice"), "{reason}");
            assert!(reason.contains("Disconnected, goodbye."), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.api("status").await.unwrap_err(),
        ClientError::Closed { .. }
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.accepts(), 1, "no reconnect after exit");
}

#[tokio::test]
async fn sendmsg_execute_reaches_the_channel_with_its_headers() {
    let server = server().await;
    let (client, _events) = connect(&server).await;
    server.add_channel("chan-1");
    let msg = SendMsg::execute("playback", "/tmp/hello world.wav")
        .event_lock(true)
        .event_uuid("step-1");
    assert!(client.sendmsg("chan-1", &msg).await.unwrap().is_ok());
    let got = server.received().last().unwrap().clone();
    assert_eq!(got.line, "sendmsg chan-1");
    assert_eq!(got.header("call-command"), Some("execute"));
    assert_eq!(got.header("execute-app-name"), Some("playback"));
    assert_eq!(got.header("execute-app-arg"), Some("/tmp/hello world.wav"));
    assert_eq!(got.header("event-lock"), Some("true"));
    assert_eq!(got.header("Event-UUID"), Some("step-1"));

    let multi = SendMsg::execute("set", "a=1\nb: 2");
    client.sendmsg("chan-1", &multi).await.unwrap();
    let got = server.received().last().unwrap().clone();
    assert_eq!(
        got.body, b"a=1\nb: 2",
        "multi-line argument travels as the body"
    );
    assert_eq!(got.header("b"), None, "no header injected");

    let err = client
        .sendmsg("nope", &SendMsg::hangup("NORMAL_CLEARING"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "FreeSWITCH refused `sendmsg nope`: -ERR invalid session id [nope]"
    );
}

#[tokio::test]
async fn filters_and_noevents_keep_background_jobs_flowing() {
    let server = server().await;
    let (client, _events) = connect(&server).await;
    client
        .event(EventFormat::Plain, &["CHANNEL_ANSWER"])
        .await
        .unwrap();
    client.filter("Unique-ID", "only-this").await.unwrap();
    let job = client.bgapi("echo through-filter").await.unwrap();
    assert_eq!(
        within("job", job.result()).await.unwrap().text(),
        "through-filter"
    );

    client.filter_delete("Unique-ID", None).await.unwrap();
    client.noevents().await.unwrap();
    let job = client.bgapi("echo after-noevents").await.unwrap();
    assert_eq!(
        within("job", job.result()).await.unwrap().text(),
        "after-noevents"
    );
    let conn = server.connections()[0];
    let lines = server.lines_on(conn);
    let tail: Vec<&str> = lines.iter().map(String::as_str).skip(3).collect();
    assert_eq!(
        tail,
        [
            "filter Event-Name BACKGROUND_JOB",
            "filter Unique-ID only-this",
            "bgapi echo through-filter",
            "filter delete Unique-ID",
            "filter delete Event-Name BACKGROUND_JOB",
            "noevents",
            "event plain BACKGROUND_JOB",
            "bgapi echo after-noevents",
        ]
    );
    let e = server.event("CHANNEL_ANSWER", &[], None);
    assert_eq!(server.emit(&e), 0, "noevents took effect");

    let err = client.nixevent(&["BACKGROUND_JOB"]).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
    // The client's own BACKGROUND_JOB subscription keeps the listener on, so a second noevents is accepted.
    assert!(client.noevents().await.unwrap().is_ok());
    assert!(client.filter("delete", "x").await.is_err());
    assert!(client.filter_delete("all", None).await.is_err());
    client.filter_delete_all().await.unwrap();
}

#[tokio::test]
async fn nixevent_and_session_commands_report_freeswitch_answers() {
    let server = server().await;
    let (client, mut events) = connect(&server).await;
    client.event(EventFormat::Plain, &["ALL"]).await.unwrap();
    client.nixevent(&["HEARTBEAT"]).await.unwrap();
    assert_eq!(server.emit(&server.event("HEARTBEAT", &[], None)), 0);
    assert_eq!(server.emit(&server.event("CHANNEL_CREATE", &[], None)), 1);
    assert_eq!(next_event(&mut events).await.name(), Some("CHANNEL_CREATE"));

    let err = client.linger(Some(5)).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::CommandFailed {
            command: "linger 5".into(),
            reply: "-ERR not controlling a session".into()
        }
    );
    assert!(client.nolinger().await.is_err());
    assert!(client.myevents("no-such-uuid", None).await.is_err());
    assert!(
        client.bgapi("echo still-allowed").await.is_ok(),
        "failed myevents changes nothing"
    );

    server.add_channel("chan-9");
    client
        .myevents("chan-9", Some(EventFormat::Json))
        .await
        .unwrap();
    let err = client.bgapi("echo x").await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let server = server().await;
    let (client, mut events) = connect(&server).await;
    client.api("status").await.unwrap();
    let state = client.state();
    drop(client);
    while let Some(item) = within("channel end", events.recv()).await {
        let _ = item;
    }
    assert!(matches!(&*state.borrow(), ConnectionState::Closed { .. }));
}

/// A `fsdialer sim` child process on a free port; resumed and killed when dropped.
struct SimProcess {
    child: std::process::Child,
    addr: String,
}

impl SimProcess {
    fn start() -> SimProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fsdialer"))
            .args(["sim", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("fsdialer sim starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout piped"))
            .read_line(&mut line)
            .expect("sim prints its address");
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("address at the end")
            .to_owned();
        SimProcess { child, addr }
    }

    /// `kill -<signal> <pid>`.
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_frozen_switch_is_noticed_by_the_liveness_probe_then_reconnected_when_it_thaws() {
    let sim = SimProcess::start();
    let liveness = Liveness {
        interval: Duration::from_millis(500),
        timeout: Duration::from_secs(3),
        command: "uptime".into(),
    };
    let mut config = ClientConfig::new(sim.addr.clone(), "ClueCon");
    // Nothing of ours is in flight, so only the probe can notice the silence.
    config.reply_timeout = None;
    config.liveness = Some(liveness.clone());
    config.auth_timeout = Duration::from_secs(1);
    config.reconnect.initial = Duration::from_millis(50);
    config.reconnect.max = Duration::from_millis(200);
    let (client, mut events) = within("connect", Client::connect(config))
        .await
        .expect("connects");
    let answered = within("a probe round trip", async {
        loop {
            let health = client.health();
            if health.probe_rtt.is_some() {
                return health;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let rtt = answered.probe_rtt.expect("a probe was answered");
    assert!(rtt < Duration::from_secs(1), "{rtt:?}");
    assert!(answered.silent_for.is_some() && answered.connected);

    sim.signal("STOP");
    let stopped = std::time::Instant::now();
    // While frozen and still connected, the waiting probe shows as a stall.
    let mut stall = StallWatch::new(Duration::from_millis(500));
    let stalled = within("stall seen", async {
        loop {
            if let Some(StallChange::Began { unanswered_for }) = stall.observe(&client.health()) {
                return unanswered_for;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(stalled >= Duration::from_millis(500));
    let reason = loop {
        match next(&mut events).await {
            ClientEvent::Disconnected { reason, .. } => break reason,
            _ => continue,
        }
    };
    let took = stopped.elapsed();
    assert!(reason.contains("liveness probe `api uptime`"), "{reason}");
    assert!(
        took >= liveness.timeout - liveness.interval
            && took <= liveness.detection_bound() + Duration::from_secs(3),
        "noticed after {took:?} (bound {:?})",
        liveness.detection_bound()
    );
    assert!(!client.health().connected);
    assert_eq!(stall.observe(&client.health()), Some(StallChange::Ended));

    sim.signal("CONT");
    wait_state(&client, "reconnected after the thaw", |s| {
        matches!(s, ConnectionState::Connected { generation: 2 })
    })
    .await;
    let uptime = within("api after the thaw", client.api_text("uptime"))
        .await
        .unwrap();
    assert!(uptime.trim().parse::<u64>().is_ok(), "{uptime:?}");
}
