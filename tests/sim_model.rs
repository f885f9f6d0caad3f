//! The call model against the real FreeSWITCH captures: for each captured originate scenario, the simulator's
//! per-channel event names (in order) equal the capture's, and CHANNEL_HANGUP_COMPLETE / BACKGROUND_JOB carry the
//! same header names. Runs in virtual time.

use std::collections::BTreeSet;

use fsdialer::esl::Event;
use fsdialer::sim::model::{Config, Switch};
use fsdialer::sim::scenario::Scenario;

#[path = "support/replay.rs"]
mod replay;

#[path = "sim_cases/agents.rs"]
mod agents;
#[path = "sim_cases/amd.rs"]
mod amd;

const T0: u64 = 1_795_636_943_000_000;

fn captures() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/esl/answered_call_events.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs one bgapi originate to completion in virtual time; returns all events.
fn run(args: &str, kill_after_ms: Option<u64>) -> Vec<Event> {
    let mut sw = Switch::new(Config::default(), Scenario::builtin(), T0);
    sw.bgapi(T0, "originate", args, "job-1", "");
    let mut events = sw.take_events();
    if let Some(ms) = kill_after_ms {
        sw.advance(T0 + ms * 1000);
        events.extend(sw.take_events());
        let uuid = events
            .iter()
            .find(|e| e.name() == Some("CHANNEL_PARK"))
            .and_then(|e| e.unique_id())
            .unwrap()
            .to_string();
        assert_eq!(
            sw.api(T0 + ms * 1000, "uuid_kill", &uuid, 0).as_deref(),
            Some("+OK\n")
        );
        events.extend(sw.take_events());
    }
    while let Some(d) = sw.next_deadline() {
        if d > T0 + 400_000_000 {
            break;
        }
        sw.advance(d);
        events.extend(sw.take_events());
    }
    assert_eq!(sw.channel_count(), 0, "every channel destroyed");
    events
}

/// Event names per channel, channels in order of first appearance (by Unique-ID).
fn per_channel(names_ids: impl Iterator<Item = (String, Option<String>)>) -> Vec<Vec<String>> {
    replay::by_channel(names_ids.map(|(name, id)| (id, name)))
        .into_iter()
        .map(|(_, names)| names)
        .collect()
}

fn sim_per_channel(events: &[Event]) -> Vec<Vec<String>> {
    per_channel(events.iter().filter(|e| e.name() != Some("API")).map(|e| {
        (
            e.name().unwrap().to_string(),
            e.unique_id().map(str::to_string),
        )
    }))
}

fn capture_per_channel(cap: &serde_json::Value, fmt: &str, scenario: &str) -> Vec<Vec<String>> {
    let seq = cap[fmt][scenario]["event_sequence"].as_array().unwrap();
    per_channel(seq.iter().filter_map(|e| {
        let name = e.get("Event-Name")?.as_str()?.to_string();
        Some((
            name,
            e.get("Unique-ID")
                .and_then(|u| u.as_str())
                .map(str::to_string),
        ))
    }))
}

/// Same per-channel sequences as at least one of the three captured formats (FreeSWITCH's own threads
/// reorder a few events between runs).
fn assert_matches_capture(scenario: &str, events: &[Event]) {
    let cap = captures();
    let sim = sim_per_channel(events);
    let caps: Vec<_> = ["plain", "json", "xml"]
        .iter()
        .map(|f| capture_per_channel(&cap, f, scenario))
        .collect();
    let show = |v: &Vec<Vec<String>>| v.iter().map(|c| c.join(" ")).collect::<Vec<_>>().join("\n");
    assert!(
        caps.contains(&sim),
        "{scenario}: simulator per-channel sequences\n{}\ncapture (json)\n{}",
        show(&sim),
        show(&caps[1])
    );
}

fn bg_body(events: &[Event]) -> String {
    let bg = events
        .iter()
        .find(|e| e.name() == Some("BACKGROUND_JOB"))
        .expect("BACKGROUND_JOB");
    bg.body_text().unwrap().into_owned()
}

#[test]
fn answered_loopback_call_matches_capture() {
    let ev = run(
        "{origination_caller_id_number=1000,origination_caller_id_name=ESL_Test}loopback/answer_2/default &park",
        None,
    );
    assert_matches_capture("answered", &ev);
    assert!(bg_body(&ev).starts_with("+OK "));
    // The whole interleaving equals the capture too (the same in all three formats).
    let cap = captures();
    let expected: Vec<&str> = cap["plain"]["answered"]["event_sequence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.get("Event-Name").and_then(|n| n.as_str()))
        .filter(|n| *n != "API")
        .collect();
    let got: Vec<&str> = ev
        .iter()
        .filter_map(|e| e.name())
        .filter(|n| *n != "API")
        .collect();
    let pos = |v: &[&str], n: &str| v.iter().position(|x| *x == n);
    assert_eq!(
        pos(&got, "BACKGROUND_JOB"),
        pos(&expected, "BACKGROUND_JOB"),
        "BACKGROUND_JOB at the same place"
    );
}

#[test]
fn busy_loopback_call_matches_capture() {
    let ev = run("loopback/busy/default &park", None);
    assert_matches_capture("loopback_busy", &ev);
    assert_eq!(bg_body(&ev), "-ERR USER_BUSY\n");
}

#[test]
fn originate_timeout_is_no_answer_and_matches_capture() {
    let ev = run("{originate_timeout=2}loopback/noanswer/default &park", None);
    assert_matches_capture("timeout_noanswer", &ev);
    assert_eq!(bg_body(&ev), "-ERR NO_ANSWER\n");
    let hc: Vec<_> = ev
        .iter()
        .filter(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
        .collect();
    assert!(
        hc.iter()
            .all(|e| e.hangup_cause() == Some("NO_ANSWER")
                && e.get("variable_duration") == Some("2"))
    );
}

#[test]
fn early_media_then_answer_with_custom_vars_matches_capture() {
    let ev = run(
        "{origination_uuid=4cd95b2c-3ab8-4aab-a23c-2db9377d9bb6,ignore_early_media=true,originate_timeout=5,custom_var=x}loopback/early_1_answer_1/default &park",
        None,
    );
    assert_matches_capture("custom_vars_early_media", &ev);
    assert_eq!(bg_body(&ev), "+OK 4cd95b2c-3ab8-4aab-a23c-2db9377d9bb6\n");
    for e in ev
        .iter()
        .filter(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
    {
        assert_eq!(e.get("variable_custom_var"), Some("x"));
        assert_eq!(e.get("variable_answersec"), Some("1"));
        assert_eq!(e.get("variable_billsec"), Some("1"));
        assert_eq!(e.get("variable_duration"), Some("2"));
    }
}

#[test]
fn uuid_kill_of_a_parked_call_matches_capture() {
    let ev = run(
        "{origination_uuid=45f920fc-1fc4-4167-9f7d-bde22ac98685}loopback/answer_30/default &park",
        Some(1000),
    );
    assert_matches_capture("uuid_kill", &ev);
    let hc: Vec<_> = ev
        .iter()
        .filter(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
        .collect();
    assert_eq!(hc.len(), 2);
    assert!(hc.iter().all(|e| e.get("variable_billsec") == Some("1")));
}

#[test]
fn reject_and_no_route_bodies() {
    assert_eq!(
        bg_body(&run("loopback/reject_CALL_REJECTED/default &park", None)),
        "-ERR CALL_REJECTED\n"
    );
    let ev = run("loopback/nonexistent_999/default &park", None);
    assert_eq!(bg_body(&ev), "-ERR NO_ROUTE_DESTINATION\n");
    // no_route has no captured per-format sequence in the json file; its order is the plain capture's.
    let names: Vec<_> = ev.iter().filter_map(|e| e.name()).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "CHANNEL_HANGUP_COMPLETE")
            .count(),
        2
    );
    assert!(!names.contains(&"CHANNEL_EXECUTE"));
}

#[test]
fn error_endpoint_fires_only_api_and_background_job() {
    let ev = run("error/USER_BUSY &park", None);
    let names: Vec<_> = ev.iter().filter_map(|e| e.name()).collect();
    assert_eq!(names, vec!["API", "BACKGROUND_JOB"]);
    assert_eq!(bg_body(&ev), "-ERR USER_BUSY\n");
}

#[test]
fn sofia_single_channel_sequences_match_the_uac_leg_of_the_captures() {
    let cap = captures();
    for (scenario, args, body) in [
        (
            "sofia_sip_answered",
            "{absolute_codec_string=PCMU,origination_caller_id_number=2000}sofia/uac/answer_2@127.0.0.1:5092 &park",
            "+OK",
        ),
        (
            "sofia_sip_noanswer_timeout",
            "{originate_timeout=2}sofia/uac/noanswer@127.0.0.1:5092 &park",
            "-ERR NO_ANSWER",
        ),
        (
            "sofia_sip_busy",
            "sofia/uac/busy@127.0.0.1:5092 &park",
            "-ERR USER_BUSY",
        ),
    ] {
        let ev = run(args, None);
        assert!(bg_body(&ev).starts_with(body), "{scenario}");
        let sim = sim_per_channel(&ev);
        assert_eq!(sim.len(), 1, "{scenario}: one channel");
        // The capture's uac leg (the one the originate created); CODEC events come from real SDP and are left out.
        let uac: Vec<Vec<String>> = capture_per_channel(&cap, "json", scenario);
        let uac = uac.into_iter().next().unwrap();
        let strip = |v: &[String]| {
            v.iter()
                .filter(|n| *n != "CODEC" && *n != "HEARTBEAT" && *n != "RE_SCHEDULE")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&sim[0]), strip(&uac), "{scenario}");
    }
}

#[test]
fn hangup_complete_and_background_job_header_names_equal_the_capture() {
    let cap = captures();
    let ev = run(
        "{origination_caller_id_number=1000,origination_caller_id_name=ESL_Test}loopback/answer_2/default &park",
        None,
    );
    let hcs: Vec<_> = ev
        .iter()
        .filter(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
        .collect();
    for leg in cap["plain"]["answered"]["channel_hangup_complete"]
        .as_array()
        .unwrap()
    {
        let want: BTreeSet<String> = leg["header_names_in_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let channel = leg["Channel-Name"].as_str().unwrap();
        let e = hcs
            .iter()
            .find(|e| e.get("Channel-Name") == Some(channel))
            .expect(channel);
        let got: BTreeSet<String> = e
            .headers()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        let missing: Vec<_> = want.difference(&got).collect();
        assert!(missing.is_empty(), "{channel}: missing headers {missing:?}");
        assert_eq!(e.get_all("Hangup-Cause").count(), 2, "Hangup-Cause twice");
        for key in [
            "Hangup-Cause",
            "variable_hangup_cause",
            "variable_hangup_cause_q850",
            "variable_billsec",
            "variable_duration",
            "variable_answersec",
            "variable_endpoint_disposition",
            "Caller-Caller-ID-Name",
            "Caller-Caller-ID-Number",
            "Call-Direction",
            "Answer-State",
            "Channel-State",
            "Channel-Call-State",
        ] {
            assert_eq!(e.get(key), leg["values"][key].as_str(), "{channel}: {key}");
        }
        // Wire order: names in the capture's order form a subsequence of ours.
        let ours: Vec<String> = e
            .headers()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        let mut it = ours.iter();
        for name in leg["header_names_in_order"].as_array().unwrap() {
            let name = name.as_str().unwrap();
            assert!(it.any(|n| n == name), "{channel}: {name} out of order");
        }
    }
    let bg = ev
        .iter()
        .find(|e| e.name() == Some("BACKGROUND_JOB"))
        .unwrap();
    let names: Vec<String> = bg
        .headers()
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
        .collect();
    for want in [
        "Event-Name",
        "Core-UUID",
        "FreeSWITCH-Hostname",
        "Event-Date-Timestamp",
        "Event-Sequence",
        "Job-UUID",
        "Job-Command",
        "Job-Command-Arg",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "BACKGROUND_JOB lacks {want}"
        );
    }
}

#[test]
fn capacity_sessions_per_second_lets_29_through_each_second() {
    let cfg = Config {
        sessions_per_second: 30,
        ..Config::default()
    };
    let mut sw = Switch::new(cfg, Scenario::builtin(), T0);
    let mut ok = 0;
    let mut refused = 0;
    for i in 0..40 {
        let reply = sw.api(
            T0 + 1000 + i,
            "originate",
            "sofia/gateway/gw/answer_60 &park",
            i,
        );
        match reply {
            None => ok += 1,
            Some(r) => {
                assert_eq!(r, "-ERR DESTINATION_OUT_OF_ORDER\n");
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (29, 11));
    // The next second refills the bucket.
    assert_eq!(
        sw.api(
            T0 + 1_000_000,
            "originate",
            "sofia/gateway/gw/answer_60 &park",
            99
        ),
        None
    );
}

#[test]
fn capacity_max_sessions_refuses_beyond_the_limit() {
    let cfg = Config {
        max_sessions: 3,
        sessions_per_second: 1000,
        ..Config::default()
    };
    let mut sw = Switch::new(cfg, Scenario::builtin(), T0);
    assert_eq!(
        sw.api(T0, "originate", "loopback/answer_60/default &park", 1),
        None
    );
    assert_eq!(
        sw.api(T0, "originate", "sofia/gateway/gw/answer_60 &park", 2),
        None
    );
    assert_eq!(
        sw.api(T0, "originate", "sofia/gateway/gw/answer_60 &park", 3)
            .as_deref(),
        Some("-ERR DESTINATION_OUT_OF_ORDER\n")
    );
}

#[test]
fn every_builtin_outcome_ends_with_its_cause() {
    for (dest, body, cause) in [
        ("answer_1", "+OK", "NORMAL_CLEARING"),
        ("early_1_answer_1", "+OK", "NORMAL_CLEARING"),
        ("busy", "-ERR USER_BUSY", "USER_BUSY"),
        ("ring_2", "-ERR NO_ANSWER", "NO_ANSWER"),
        ("noanswer", "-ERR NO_ANSWER", "NO_ANSWER"),
        (
            "reject_UNALLOCATED_NUMBER",
            "-ERR UNALLOCATED_NUMBER",
            "UNALLOCATED_NUMBER",
        ),
        (
            "whatever",
            "-ERR NO_ROUTE_DESTINATION",
            "NO_ROUTE_DESTINATION",
        ),
    ] {
        for ep in [
            format!("loopback/{dest}/default"),
            format!("sofia/gateway/gw/{dest}"),
            format!("user/{dest}@example.com"),
        ] {
            let ev = run(&format!("{{originate_timeout=5}}{ep} &park"), None);
            assert!(bg_body(&ev).starts_with(body), "{ep}: {}", bg_body(&ev));
            let hc = ev
                .iter()
                .filter(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
                .last()
                .unwrap();
            assert_eq!(hc.hangup_cause(), Some(cause), "{ep}");
        }
    }
}

#[test]
fn sync_api_originate_replies_when_answered() {
    let mut sw = Switch::new(Config::default(), Scenario::builtin(), T0);
    assert_eq!(
        sw.api(
            T0,
            "originate",
            "{originate_timeout=1}loopback/noanswer/default &park",
            7
        ),
        None
    );
    sw.advance(T0 + 1_100_000);
    assert_eq!(sw.take_replies(), vec![(7, "-ERR NO_ANSWER\n".to_string())]);
    assert_eq!(
        sw.api(
            T0 + 2_000_000,
            "originate",
            "loopback/answer_1/default &park",
            8
        ),
        None
    );
    let r = sw.take_replies();
    assert_eq!(r.len(), 1);
    assert!(r[0].1.starts_with("+OK ") && r[0].1.ends_with('\n'));
}

#[test]
fn play_and_get_digits_presses_the_scenario_digits_and_bridge_reaches_an_agent() {
    let scenario = Scenario::from_toml("[[rule]]\nmatch = \"^1555\"\ntalk_ms = 60000\ndigits = \"42#\"\n[[rule]]\nmatch = \"^agent\"\ntalk_ms = 5000\n").unwrap();
    let mut sw = Switch::new(Config::default(), scenario, T0);
    let uuid = "11111111-0000-4000-8000-000000000001";
    sw.bgapi(
        T0,
        "originate",
        &format!("{{origination_uuid={uuid}}}sofia/gateway/gw/15551234 &park"),
        "job",
        "",
    );
    let headers = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    sw.sendmsg(
        T0 + 1000,
        uuid,
        &headers(&[
            ("call-command", "execute"),
            ("execute-app-name", "play_and_get_digits"),
            (
                "execute-app-arg",
                "1 5 3 5000 # silence_stream://500 silence_stream://250 dlr_digits \\d+",
            ),
        ]),
    )
    .unwrap();
    sw.advance(T0 + 2_000_000);
    let ev = sw.take_events();
    let dtmf: Vec<_> = ev
        .iter()
        .filter(|e| e.name() == Some("DTMF"))
        .map(|e| e.get("DTMF-Digit").unwrap().to_string())
        .collect();
    assert_eq!(dtmf, vec!["4", "2", "#"]);
    assert_eq!(sw.channel(uuid).unwrap().vars.get("dlr_digits"), Some("42"));
    sw.sendmsg(
        T0 + 2_000_000,
        uuid,
        &headers(&[
            ("call-command", "execute"),
            ("execute-app-name", "bridge"),
            ("execute-app-arg", "sofia/gateway/gw/agent_7"),
        ]),
    )
    .unwrap();
    let ev = sw.take_events();
    assert!(
        ev.iter().any(|e| e.name() == Some("CHANNEL_BRIDGE")),
        "bridged"
    );
    // The agent hangs up after 5 s: both legs end.
    sw.advance(T0 + 8_000_000);
    let ev = sw.take_events();
    let hc: Vec<_> = ev
        .iter()
        .filter(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
        .collect();
    assert_eq!(hc.len(), 2);
    assert_eq!(sw.channel_count(), 0);
}

// ------------------------------------------------------------------ replays of the realfs-2026-12 captures

/// The capture's commands sent to a simulated switch configured as the captured one (its sounds under
/// /opt/freeswitch/sounds, its dialplan `fixtures/sim/realfs.toml`).
fn replay_capture(name: &str) -> (replay::Capture, replay::Replayed) {
    let cap = replay::load(name);
    let cfg = Config {
        sound_prefix: "/opt/freeswitch/sounds".into(),
        ..Config::default()
    };
    let r = replay::replay(&cap, cfg, replay::realfs_scenario(), 30);
    (cap, r)
}

fn event_of<'a>(r: &'a replay::Replayed, uuid: &str, name: &str) -> Vec<&'a Event> {
    r.events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.unique_id() == Some(uuid) && e.name() == Some(name))
        .collect()
}

#[test]
fn replay_vars_percent_escapes_are_not_encoded_again_in_event_plain() {
    let (cap, r) = replay_capture("vars");
    replay::assert_replays(&cap, &r, replay::Pairing::InOrder);
    // Stored as sent (uuid_getvar answers 50%25off); events carry it unencoded again, so it reads back decoded.
    let create = event_of(&r, "69301357-4065-52e0-8b70-5a6b4956469d", "CHANNEL_CREATE");
    assert_eq!(create[0].get("variable_v_pct"), Some("50%off"));
    assert!(r.api_replies.contains(&"50%25off".to_string()));
}

#[test]
fn replay_burst_sps_half_throttled_loopback_call_waits_in_cs_init_until_originate_timeout() {
    let (cap, r) = replay_capture("burst_sps");
    let (answered, half) = (
        "4928d868-3c3c-5e70-bf22-9d31fb10088c",
        "5e2c48a9-2ded-50ad-86ca-6384a68de2d2",
    );
    // Job bodies of all 40 (14 +OK, 25 refused, 1 NO_ANSWER) and both channels event by event.
    replay::assert_replays(&cap, &r, replay::Pairing::Ids(&[answered, half]));
    let at = |name: &str| {
        r.events
            .iter()
            .find(|(_, e)| e.unique_id() == Some(half) && e.name() == Some(name))
            .map(|(t, e)| (*t, e.get("Channel-State").map(str::to_string)))
            .unwrap()
    };
    let (created, _) = at("CHANNEL_CREATE");
    let (hungup, state) = at("CHANNEL_HANGUP");
    assert_eq!(state.as_deref(), Some("CS_INIT"), "never routed");
    assert_eq!(hungup - created, 10_000_000, "originate_timeout=10");
}

#[test]
fn replay_transfer_nowhere_hangs_up_no_route_destination() {
    let (cap, r) = replay_capture("transfer_nowhere");
    replay::assert_replays(&cap, &r, replay::Pairing::InOrder);
}

#[test]
fn replay_transfer_operator_runs_the_operator_extension() {
    let (cap, r) = replay_capture("transfer_operator");
    replay::assert_replays(&cap, &r, replay::Pairing::InOrder);
    let parks = event_of(&r, "5e85acd0-71c9-5783-854d-3fffc2746b91", "CHANNEL_PARK");
    assert_eq!(parks.len(), 2, "parked again by the operator extension");
    assert_eq!(parks[1].get("Caller-Destination-Number"), Some("operator"));
}

#[test]
fn replay_playback_missing_answers_file_not_found_at_once() {
    let (cap, r) = replay_capture("playback_missing");
    replay::assert_replays(&cap, &r, replay::Pairing::InOrder);
    let a = "c55b19fc-a368-5f6c-a999-10d4366eef73";
    let (start, done): (Vec<_>, Vec<_>) = r
        .events
        .iter()
        .filter(|(_, e)| e.unique_id() == Some(a) && e.get("Application") == Some("playback"))
        .partition(|(_, e)| e.name() == Some("CHANNEL_EXECUTE"));
    assert_eq!(
        done[0].1.get("Application-Response"),
        Some("FILE NOT FOUND")
    );
    assert_eq!(start[0].0, done[0].0, "at once");
    assert_eq!(done[1].1.get("Application-Response"), Some("FILE PLAYED"));
}

#[test]
fn replay_dtmf_pagd_ends_when_the_digit_arrives_with_read_result() {
    let (cap, r) = replay_capture("dtmf_pagd");
    // The a-leg, where the dialer's play_and_get_digits runs (the b-leg runs dialplan-demo.xml's confirm_N
    // extension step by step, which the scenario's rule does not model application by application).
    let a = "b1ba34b9-13f5-5f77-a432-2c081ca54b82";
    replay::assert_replays(&cap, &r, replay::Pairing::Ids(&[a]));
    let dtmf = event_of(&r, a, "DTMF");
    assert_eq!(dtmf.len(), 1);
    assert!(dtmf[0].headers().all(|(n, _)| !n.starts_with(b"variable_")));
    let at = |e: &Event| r.events.iter().find(|(_, x)| std::ptr::eq(x, e)).unwrap().0;
    let done = event_of(&r, a, "CHANNEL_EXECUTE_COMPLETE")
        .into_iter()
        .find(|e| e.get("Application") == Some("play_and_get_digits"))
        .unwrap();
    assert_eq!(
        at(done),
        at(dtmf[0]),
        "the step ends when the digit arrives"
    );
    assert_eq!(done.get("variable_read_result"), Some("success"));
}

/// Runs `play_and_get_digits <arg>` on an answered call to `number` of `scenario`; returns the events of the
/// application (from its CHANNEL_EXECUTE to its CHANNEL_EXECUTE_COMPLETE) with their times since it started.
fn digits_run(scenario: &str, number: &str, arg: &str) -> Vec<(u64, Event)> {
    let mut sw = Switch::new(
        Config::default(),
        Scenario::from_toml(scenario).unwrap(),
        T0,
    );
    let uuid = "22222222-0000-4000-8000-000000000002";
    sw.bgapi(
        T0,
        "originate",
        &format!("{{origination_uuid={uuid}}}loopback/{number}/default &park"),
        "job",
        "",
    );
    let start = T0 + 1_000_000;
    sw.advance(start);
    sw.take_events();
    let headers: Vec<(String, String)> = [
        ("call-command", "execute"),
        ("execute-app-name", "play_and_get_digits"),
        ("execute-app-arg", arg),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    sw.sendmsg(start, uuid, &headers).unwrap();
    let mut out: Vec<(u64, Event)> = sw.take_events().into_iter().map(|e| (0, e)).collect();
    while let Some(d) = sw.next_deadline() {
        sw.advance(d);
        out.extend(sw.take_events().into_iter().map(|e| (d - start, e)));
        if out.iter().any(|(_, e)| {
            e.name() == Some("CHANNEL_EXECUTE_COMPLETE")
                && e.get("Application") == Some("play_and_get_digits")
        }) {
            break;
        }
    }
    out.retain(|(_, e)| e.unique_id() == Some(uuid));
    out
}

fn timeline(events: &[(u64, Event)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(t, e)| {
            let what = match e.name()? {
                "PLAYBACK_START" | "PLAYBACK_STOP" => e.get("Playback-File-Path")?.to_string(),
                "DTMF" => e.get("DTMF-Digit")?.to_string(),
                "CHANNEL_EXECUTE_COMPLETE" => e.get("Application-Response")?.to_string(),
                _ => return None,
            };
            Some(format!("{} {} {what}", t / 1000, e.name()?))
        })
        .collect()
}

fn completion(events: &[(u64, Event)]) -> &Event {
    let (_, e) = events
        .iter()
        .find(|(_, e)| e.name() == Some("CHANNEL_EXECUTE_COMPLETE"))
        .unwrap();
    e
}

const PAGD: &str = "1 1 2 5000 # silence_stream://1000 silence_stream://500 choice ^[12]$";

#[test]
fn play_and_get_digits_without_input_takes_tries_times_prompt_and_timeout_with_the_invalid_prompt_between()
 {
    let ev = digits_run(
        "[[rule]]\nmatch = \"^quiet$\"\ncallee_hangs_up = false\n",
        "quiet",
        PAGD,
    );
    assert_eq!(
        timeline(&ev),
        [
            "0 PLAYBACK_START silence_stream://1000",
            "1000 PLAYBACK_STOP silence_stream://1000",
            "6000 PLAYBACK_START silence_stream://500",
            "6500 PLAYBACK_STOP silence_stream://500",
            "6500 PLAYBACK_START silence_stream://1000",
            "7500 PLAYBACK_STOP silence_stream://1000",
            "12500 PLAYBACK_START silence_stream://500",
            "13000 PLAYBACK_STOP silence_stream://500",
            "13000 CHANNEL_EXECUTE_COMPLETE _none_",
        ]
    );
    let done = completion(&ev);
    assert_eq!(done.get("variable_read_result"), Some("timeout"));
    assert_eq!(done.get("variable_choice"), None);
}

#[test]
fn play_and_get_digits_ends_at_the_digit_and_a_refused_entry_is_kept_as_var_invalid() {
    // Pressed 2 s after answering: during the first prompt's timeout; the entry is valid.
    let valid = "[[rule]]\nmatch = \"^two$\"\ncallee_hangs_up = false\ndigits = \"2\"\ndigits_after_ms = 3000\n";
    let ev = digits_run(valid, "two", PAGD);
    assert_eq!(
        timeline(&ev),
        [
            "0 PLAYBACK_START silence_stream://1000",
            "1000 PLAYBACK_STOP silence_stream://1000",
            "2000 DTMF 2",
            "2000 CHANNEL_EXECUTE_COMPLETE _none_",
        ]
    );
    let done = completion(&ev);
    assert_eq!(done.get("variable_read_result"), Some("success"));
    assert_eq!(done.get("variable_choice"), Some("2"));
    // A digit the regex refuses, pressed as soon as each prompt has played: both tries fail.
    let refused = "[[rule]]\nmatch = \"^seven$\"\ncallee_hangs_up = false\ndigits = \"7\"\n";
    let ev = digits_run(refused, "seven", PAGD);
    let done = completion(&ev);
    assert_eq!(
        timeline(&ev)
            .iter()
            .filter(|l| l.ends_with("DTMF 7"))
            .count(),
        2
    );
    assert_eq!(done.get("variable_read_result"), Some("success"));
    assert_eq!(done.get("variable_choice"), None);
    assert_eq!(done.get("variable_choice_invalid"), Some("7"));
}

#[test]
fn replay_sofia_answer_leg_has_no_channel_uuid_and_learns_codecs_from_the_answer() {
    let (cap, r) = replay_capture("sofia_answer");
    // The uac leg the originate created (the uas leg is the far end, on the same switch only in the capture).
    let uac = "3715500c-22a9-50cf-966d-3db68f5e1136";
    replay::assert_replays(&cap, &r, replay::Pairing::Ids(&[uac]));
    assert!(event_of(&r, uac, "CHANNEL_UUID").is_empty());
    let answer = event_of(&r, uac, "CHANNEL_ANSWER");
    assert_eq!(answer[0].get("Caller-Network-Addr"), Some("127.0.0.1"));
}

/// `sched_hangup +N <uuid>` (mod_commands) hangs the channel up N seconds later with ALLOTTED_TIMEOUT, or the
/// cause given; an unknown channel is `-ERR No such channel!`. switchio ends its load-test calls this way.
#[test]
fn sched_hangup_hangs_the_channel_up_when_due() {
    let mut sw = Switch::new(Config::default(), Scenario::builtin(), T0);
    sw.bgapi(T0, "originate", "loopback/answer_600 &park()", "job-1", "");
    sw.advance(T0 + 1_000_000);
    let events = sw.take_events();
    let uuid = events
        .iter()
        .find(|e| e.name() == Some("CHANNEL_PARK"))
        .and_then(|e| e.unique_id())
        .expect("the a-leg parks")
        .to_string();
    let arg = format!("+5 {uuid}");
    assert_eq!(
        sw.api(T0 + 1_000_000, "sched_hangup", &arg, 0).as_deref(),
        Some("+OK\n")
    );
    assert_eq!(
        sw.api(T0 + 1_000_000, "sched_hangup", "+5 no-such-uuid", 0)
            .as_deref(),
        Some("-ERR No such channel!\n")
    );
    sw.advance(T0 + 5_900_000);
    assert!(
        sw.take_events()
            .iter()
            .all(|e| e.name() != Some("CHANNEL_HANGUP")),
        "not before it is due"
    );
    sw.advance(T0 + 6_000_000);
    let hangup = sw
        .take_events()
        .into_iter()
        .find(|e| e.name() == Some("CHANNEL_HANGUP") && e.unique_id() == Some(uuid.as_str()))
        .expect("hung up when due");
    assert_eq!(hangup.hangup_cause(), Some("ALLOTTED_TIMEOUT"));
}

/// The `status` line `N session(s) per Sec out of max M, peak P, last 5min F ` of the reply.
fn status_rate_line(sw: &mut Switch, now: u64) -> String {
    let status = sw.api(now, "status", "", 0).unwrap();
    status
        .lines()
        .find(|l| l.contains("session(s) per Sec"))
        .unwrap_or_else(|| panic!("no session rate line in {status:?}"))
        .to_string()
}

#[test]
fn status_reports_the_session_rate_its_peak_and_the_five_minute_figures_as_freeswitch_does() {
    let mut sw = Switch::new(Config::default(), Scenario::builtin(), T0);
    // 14 loopback calls in one second: 28 session requests against sessions-per-second 30 (all accepted).
    for n in 0..14u64 {
        sw.bgapi(
            T0 + n * 10_000,
            "originate",
            "{dlr_node=load-1}loopback/answer_60/default &park",
            &format!("job-{n}"),
            "",
        );
    }
    sw.advance(T0 + 1_000_000);
    let line = status_rate_line(&mut sw, T0 + 1_000_000);
    assert_eq!(
        line, "28 session(s) per Sec out of max 30, peak 28, last 5min 28 ",
        "the real switch: `28 session(s) per Sec out of max 30, peak 115, last 5min 28 `"
    );
    assert_eq!(
        sw.api(T0 + 1_000_000, "fsctl", "last_sps", 0).as_deref(),
        Some("+OK last sessions per second: 28\n")
    );
    // A quiet second: the rate falls to 0, the peaks stay.
    sw.advance(T0 + 2_000_000);
    let line = status_rate_line(&mut sw, T0 + 2_000_000);
    assert_eq!(
        line,
        "0 session(s) per Sec out of max 30, peak 28, last 5min 28 "
    );
    let status = sw.api(T0 + 2_000_000, "status", "", 0).unwrap();
    assert!(
        status.contains("\n28 session(s) - peak 28, last 5min 28 \n"),
        "{status}"
    );
    // Hung up, and five minutes on: the five-minute figures start again, the all-time peaks stay.
    let reply = sw
        .api(
            T0 + 3_000_000,
            "hupall",
            "MANAGER_REQUEST dlr_node load-1",
            0,
        )
        .unwrap();
    assert_eq!(
        reply,
        "+OK hangup all channels matching [dlr_node]=[load-1] with cause: MANAGER_REQUEST\n"
    );
    sw.advance(T0 + 400_000_000);
    let status = sw.api(T0 + 400_000_000, "status", "", 0).unwrap();
    assert!(
        status.contains("\n0 session(s) - peak 28, last 5min 0 \n")
            && status.contains("\n0 session(s) per Sec out of max 30, peak 28, last 5min 0 \n"),
        "{status}"
    );
}

#[test]
fn hupall_answers_in_mod_commands_words_with_and_without_a_variable_filter() {
    let mut sw = Switch::new(Config::default(), Scenario::builtin(), T0);
    sw.bgapi(
        T0,
        "originate",
        "loopback/answer_60/default &park",
        "job-1",
        "",
    );
    assert_eq!(
        sw.api(T0 + 500_000, "hupall", "NORMAL_CLEARING", 0)
            .as_deref(),
        Some("+OK hangup all channels with cause NORMAL_CLEARING\n")
    );
    assert_eq!(
        sw.api(T0 + 600_000, "hupall", "", 0).as_deref(),
        Some("+OK hangup all channels with cause MANAGER_REQUEST\n")
    );
    // A variable without a value is no filter (mod_commands drops it).
    assert_eq!(
        sw.api(T0 + 700_000, "hupall", "MANAGER_REQUEST dlr_node", 0)
            .as_deref(),
        Some("+OK hangup all channels with cause MANAGER_REQUEST\n")
    );
    assert_eq!(
        sw.api(T0 + 800_000, "hupall", "USER_BUSY dlr_node x1", 0)
            .as_deref(),
        Some("+OK hangup all channels matching [dlr_node]=[x1] with cause: USER_BUSY\n")
    );
}
