//! The frame parser and event decoder against real FreeSWITCH 1.10 captures (`fixtures/esl/`).
//!
//! Each `NAME.bin` is exactly what FreeSWITCH sent; `NAME.frames.jsonl` indexes every frame (offset, length,
//! outer headers in order, body length, and a few inner event headers). Every frame must parse and agree.

use bytes::{Bytes, BytesMut};
use fsdialer::esl::{ContentType, Event, Frame, Limits, Status, frame};
use serde_json::Value;
use std::path::PathBuf;

const CAPTURES: &[&str] = &[
    "api_replies",
    "auth_and_errors",
    "auth_and_errors_badpass",
    "filters_nixevent_noevents",
    "json_originate",
    "log_data",
    "outbound_socket",
    "plain_originate",
    "xml_originate",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/esl")
        .join(name)
}

fn load(name: &str) -> (Bytes, Vec<Value>) {
    let bin = std::fs::read(fixture(&format!("{name}.bin"))).expect("capture present");
    let index = std::fs::read_to_string(fixture(&format!("{name}.frames.jsonl"))).unwrap();
    let rows = index
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (Bytes::from(bin), rows)
}

fn parse_all(stream: &Bytes) -> Vec<(usize, Frame)> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < stream.len() {
        let rest = stream.slice(offset..);
        let (frame, used) = Frame::parse(&rest, &Limits::default())
            .unwrap_or_else(|e| panic!("frame at {offset}: {e}"))
            .unwrap_or_else(|| panic!("incomplete frame at {offset}"));
        out.push((offset, frame));
        offset += used;
    }
    out
}

#[test]
fn every_captured_frame_parses_and_agrees_with_the_index() {
    for name in CAPTURES {
        let (stream, index) = load(name);
        let frames = parse_all(&stream);
        assert_eq!(frames.len(), index.len(), "{name}: frame count");
        for ((offset, frame), row) in frames.iter().zip(&index) {
            let ctx = format!("{name} @ {offset}");
            assert_eq!(*offset as u64, row["offset"].as_u64().unwrap(), "{ctx}");
            assert_eq!(
                frame.raw().len() as u64,
                row["length"].as_u64().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                frame.body().len() as u64,
                row["body_length"].as_u64().unwrap(),
                "{ctx}"
            );
            let expected: Vec<(String, String)> = row["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_owned(),
                        p[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            let got: Vec<(String, String)> = frame
                .headers()
                .map(|(n, v)| {
                    (
                        String::from_utf8(n.to_vec()).unwrap(),
                        String::from_utf8(v.to_vec()).unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, expected, "{ctx}");
            if let Some(inner) = row.get("event").and_then(Value::as_object) {
                assert!(frame.content_type().is_event(), "{ctx}");
                let event = Event::from_frame(frame).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                for (k, v) in inner {
                    assert_eq!(event.get(k), v.as_str(), "{ctx}: event header {k}");
                }
            }
        }
    }
}

#[test]
fn byte_at_a_time_feeding_gives_the_same_frames() {
    for name in [
        "api_replies",
        "log_data",
        "outbound_socket",
        "auth_and_errors",
    ] {
        let (stream, _) = load(name);
        let whole: Vec<Bytes> = parse_all(&stream)
            .into_iter()
            .map(|(_, f)| f.raw().clone())
            .collect();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in stream.iter() {
            buf.extend_from_slice(&[b]);
            while let Status::Complete(layout) = frame::check(&buf, &Limits::default()).unwrap() {
                got.push(buf.split_to(layout.total()).freeze());
            }
        }
        assert!(buf.is_empty(), "{name}: leftover bytes");
        assert_eq!(got, whole, "{name}");
    }
}

#[test]
fn the_three_event_formats_decode_to_the_same_events() {
    let decode_events = |name: &str| -> Vec<Event> {
        let (stream, _) = load(name);
        parse_all(&stream)
            .iter()
            .filter(|(_, f)| f.content_type().is_event())
            .map(|(_, f)| Event::from_frame(f).unwrap())
            .collect()
    };
    let plain = decode_events("plain_originate");
    let json = decode_events("json_originate");
    let xml = decode_events("xml_originate");
    assert!(plain.len() > 500);
    // The captures are three separate runs, so event order differs with thread timing; but every format
    // carries the same kinds of events, and the same event serialises the same header names in the same order.
    let kinds = |evs: &[Event]| -> std::collections::BTreeSet<String> {
        evs.iter().map(|e| e.name().unwrap().to_owned()).collect()
    };
    assert_eq!(kinds(&plain), kinds(&json));
    assert_eq!(kinds(&plain), kinds(&xml));
    let first = |evs: &[Event], name: &str| -> Vec<String> {
        evs.iter()
            .find(|e| e.name() == Some(name))
            .unwrap()
            .headers()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect()
    };
    for name in [
        "CHANNEL_HANGUP_COMPLETE",
        "BACKGROUND_JOB",
        "CHANNEL_ANSWER",
    ] {
        assert_eq!(
            first(&plain, name),
            first(&json, name),
            "{name}: plain vs json"
        );
        assert_eq!(
            first(&plain, name),
            first(&xml, name),
            "{name}: plain vs xml"
        );
    }
    // A multi-valued variable: plain `ARRAY::…`, json array, xml repeated elements — one value everywhere.
    let dp = |evs: &[Event]| -> Vec<Vec<u8>> {
        let e = evs
            .iter()
            .find(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
            .unwrap();
        e.array("variable_DP_MATCH")
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    };
    assert_eq!(dp(&plain).len(), 2);
    assert_eq!(dp(&plain), dp(&json));
    assert_eq!(dp(&plain), dp(&xml));
}

#[test]
fn hangup_complete_carries_hangup_cause_twice_and_billing_variables() {
    let (stream, _) = load("plain_originate");
    let frames = parse_all(&stream);
    let hangup = frames
        .iter()
        .filter(|(_, f)| f.content_type() == ContentType::EventPlain)
        .map(|(_, f)| Event::from_frame(f).unwrap())
        .find(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
        .expect("a CHANNEL_HANGUP_COMPLETE");
    assert!(hangup.len() > 100, "{} headers", hangup.len());
    assert_eq!(hangup.get_all("Hangup-Cause").count(), 2);
    assert_eq!(hangup.hangup_cause(), Some("NORMAL_CLEARING"));
    assert_eq!(hangup.variable("hangup_cause_q850"), Some("16"));
    assert!(hangup.variable("billsec").is_some());
    assert!(hangup.variable("answersec").is_some());
}

#[test]
fn background_job_bodies_match_the_scenario_index() {
    let scenarios: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("originate_scenarios.json")).unwrap(),
    )
    .unwrap();
    for fmt in ["plain", "json", "xml"] {
        let (stream, _) = load(&format!("{fmt}_originate"));
        let jobs: Vec<Event> = parse_all(&stream)
            .iter()
            .filter(|(_, f)| f.content_type().is_event())
            .map(|(_, f)| Event::from_frame(f).unwrap())
            .filter(|e| e.name() == Some("BACKGROUND_JOB"))
            .collect();
        let list = scenarios[format!("{fmt}_originate")].as_array().unwrap();
        assert!(!list.is_empty());
        for s in list {
            let job = s["Job-UUID"].as_str().unwrap();
            let event = jobs
                .iter()
                .find(|e| e.job_uuid() == Some(job))
                .unwrap_or_else(|| panic!("{fmt}: no BACKGROUND_JOB for {job}"));
            // The index keeps xml's pretty-printer indentation after the body; Content-Length excludes it.
            let indexed = s["background_job_body"].as_str().unwrap();
            let expected = if fmt == "xml" {
                indexed.trim_end_matches(' ')
            } else {
                indexed
            };
            assert_eq!(
                event.body_text().unwrap(),
                expected,
                "{fmt} {}",
                s["scenario"]
            );
        }
    }
}

#[test]
fn disconnect_notice_body_is_the_goodbye_text() {
    let (stream, _) = load("auth_and_errors_badpass");
    let frames = parse_all(&stream);
    let (_, notice) = frames.last().unwrap();
    assert_eq!(notice.content_type(), ContentType::DisconnectNotice);
    assert_eq!(
        notice.body_bytes(),
        fsdialer::esl::encode::DISCONNECT_BODY.as_bytes()
    );
}

#[test]
fn re_encoding_captured_events_reproduces_freeswitch_bytes() {
    for (name, format) in [
        ("plain_originate", ContentType::EventPlain),
        ("json_originate", ContentType::EventJson),
        ("xml_originate", ContentType::EventXml),
        ("filters_nixevent_noevents", ContentType::EventPlain),
    ] {
        let (stream, _) = load(name);
        let mut checked = 0;
        for (offset, frame) in parse_all(&stream) {
            if frame.content_type() != format {
                continue;
            }
            let event = Event::from_frame(&frame).unwrap();
            let encoded = fsdialer::esl::encode::event_frame(&event, format);
            assert_eq!(
                String::from_utf8_lossy(&encoded),
                String::from_utf8_lossy(frame.raw()),
                "{name} @ {offset}"
            );
            checked += 1;
        }
        assert!(checked > 0, "{name}");
    }
}

/// The AMD modules' events (`amd_module_events.bin`, constructed: see `fixtures/esl/README.md`): the
/// non-blocking mod_amd's `amd::info` has no Event-Name, Core-UUID or dates and must still parse and reach the
/// engine as a decision, by its Event-Subclass and Unique-ID; so must mod_avmd's beep and the blocking amd's
/// completion.
#[test]
fn amd_and_avmd_events_parse_and_route_by_subclass_and_unique_id() {
    use fsdialer::engine::core::{AmdResult, Input};
    use fsdialer::engine::shell::event_input;

    let stream = Bytes::from(std::fs::read(fixture("amd_module_events.bin")).unwrap());
    let frames = parse_all(&stream);
    assert_eq!(frames.len(), 3);
    let events: Vec<Event> = frames
        .iter()
        .map(|(offset, f)| {
            assert_eq!(f.content_type(), ContentType::EventPlain, "@{offset}");
            Event::from_frame(f).unwrap_or_else(|e| panic!("@{offset}: {e}"))
        })
        .collect();
    let uuid: uuid::Uuid = "7f4de4bc-17d7-11ee-9c6a-0242ac120003".parse().unwrap();

    let info = &events[0];
    assert_eq!(info.name(), None, "a cloned event has no Event-Name");
    assert_eq!(info.get("Core-UUID"), None);
    assert_eq!(info.get("Event-Date-Timestamp"), None);
    assert_eq!(info.subclass(), Some("amd::info"));
    assert_eq!(
        info.unique_id(),
        Some("7f4de4bc-17d7-11ee-9c6a-0242ac120003")
    );
    assert_eq!(info.get("Channel-Name"), Some("loopback/vm_1-a"));
    match event_input(info) {
        Some(Input::AmdResult {
            uuid: u,
            result,
            cause,
        }) => {
            assert_eq!(u, uuid);
            assert_eq!(result, Some(AmdResult::Machine));
            assert_eq!(cause.as_deref(), Some("LONGGREETING"));
        }
        other => panic!("amd::info routed as {other:?}"),
    }

    let beep = &events[1];
    assert_eq!(beep.name(), Some("CUSTOM"));
    assert_eq!(beep.subclass(), Some("avmd::beep"));
    assert_eq!(beep.get("Beep-Status"), Some("DETECTED"));
    assert!(matches!(event_input(beep), Some(Input::AvmdBeep { uuid: u }) if u == uuid));

    let done = &events[2];
    assert_eq!(done.get("Application"), Some("amd"));
    match event_input(done) {
        Some(Input::AmdResult { result, cause, .. }) => {
            assert_eq!(result, Some(AmdResult::Human));
            assert_eq!(cause.as_deref(), Some("HUMAN"));
        }
        other => panic!("the blocking amd's completion routed as {other:?}"),
    }
}
