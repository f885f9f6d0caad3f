//! Capture replay: the commands a client sent to a real FreeSWITCH 1.10.12 (`fixtures/esl/realfs-2026-12/NAME.json`,
//! made by `scripts/realfs_fixture.py`) are sent, at the same offsets, to the simulated switch in virtual time, and
//! what comes back is compared with what FreeSWITCH sent:
//!
//! - per channel (channels in order of first appearance), the event names in order;
//! - per pair of events at the same place of the same channel, the header names that are not channel variables;
//! - the values the engine reads ([`COMPARED`], the variables the client set, job bodies and api replies).
//!
//! Allowed to differ ([`ALLOWED_TO_DIFFER`]): uuids FreeSWITCH makes, times, hostnames and addresses, Core-UUID,
//! sequence numbers — by leaving them out of [`COMPARED`], which lists no such header.

use std::collections::{BTreeSet, HashMap};

use fsdialer::esl::Event;
use fsdialer::sim::model::{Config, Switch};
use fsdialer::sim::scenario::Scenario;

/// Header values that differ between any two runs of FreeSWITCH itself, so between FreeSWITCH and the simulator.
pub const ALLOWED_TO_DIFFER: &[&str] = &[
    "Core-UUID",
    "FreeSWITCH-Hostname",
    "FreeSWITCH-Switchname",
    "FreeSWITCH-IPv4",
    "FreeSWITCH-IPv6",
    "Event-Date-Local",
    "Event-Date-GMT",
    "Event-Date-Timestamp",
    "Event-Sequence",
    "Unique-ID (of a leg FreeSWITCH names)",
    "Application-UUID",
    "Job-UUID",
    "every *-Time / *_time / *epoch / *stamp header",
    "*msec values, within MSEC_SLACK",
];

/// The header values the engine reads, compared wherever both events carry them.
pub const COMPARED: &[&str] = &[
    "Event-Name",
    "Channel-State",
    "Channel-Call-State",
    "Original-Channel-Call-State",
    "Channel-Call-State-Number",
    "Answer-State",
    "Call-Direction",
    "Hangup-Cause",
    "Channel-Name",
    "Caller-RDNIS",
    "Caller-Transfer-Source",
    "Caller-Profile-Index",
    "Caller-Callee-ID-Name",
    "Caller-Callee-ID-Number",
    "Caller-Destination-Number",
    "Caller-Logical-Direction",
    "Caller-Context",
    "Application",
    "Application-Data",
    "Application-Response",
    "DTMF-Digit",
    "DTMF-Source",
    "Playback-File-Path",
    "variable_hangup_cause",
    "variable_endpoint_disposition",
    "variable_originate_disposition",
    "variable_billsec",
    "variable_billmsec",
    "variable_origination_uuid",
    "variable_other_loopback_leg_uuid",
    "variable_current_application_response",
    "variable_read_result",
    "variable_current_application",
    "variable_transfer_history",
    "variable_transfer_source",
];

/// One thing the client sent, `t_us` after the start.
#[derive(Debug, Clone)]
pub struct Sent {
    pub t_us: u64,
    pub text: String,
}

/// One event FreeSWITCH sent.
#[derive(Debug, Clone)]
pub struct Captured {
    pub t_us: u64,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl Captured {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn name(&self) -> &str {
        self.get("Event-Name").unwrap_or("")
    }
}

/// A capture: what was sent, the events and the api replies that came back.
#[derive(Debug, Clone)]
pub struct Capture {
    pub scenario: String,
    /// When the capture started (µs since the epoch): the replay runs at the same wall-clock instants, so whole
    /// seconds (billsec, the per-second session counter) fall where they fell.
    pub t0_us: u64,
    pub sent: Vec<Sent>,
    pub events: Vec<Captured>,
    pub api_replies: Vec<String>,
}

fn secs_to_us(v: &serde_json::Value) -> u64 {
    (v.as_f64().unwrap() * 1e6).round() as u64
}

/// The scenario of the switch the captures were made on (`../shared/real-freeswitch/dialplan-demo.xml`).
pub fn realfs_scenario() -> Scenario {
    Scenario::from_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sim/realfs.toml"
    )))
    .unwrap()
}

/// Loads `fixtures/esl/realfs-2026-12/NAME.json`.
pub fn load(name: &str) -> Capture {
    let path = format!(
        "{}/fixtures/esl/realfs-2026-12/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).unwrap();
    let mut cap = Capture {
        scenario: name.into(),
        t0_us: 0,
        sent: Vec::new(),
        events: Vec::new(),
        api_replies: Vec::new(),
    };
    for f in d["frames"].as_array().unwrap() {
        let t_us = secs_to_us(&f["t"]);
        if let Some(text) = f["sent"].as_str() {
            cap.sent.push(Sent {
                t_us,
                text: text.into(),
            });
        } else if let Some(ev) = f["event"].as_array() {
            let headers = ev
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_string(),
                        p[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            cap.events.push(Captured {
                t_us,
                headers,
                body: f["event_body"].as_str().map(str::to_string),
            });
        } else if f["content_type"] == "api/response" {
            cap.api_replies
                .push(f["body"].as_str().unwrap_or("").to_string());
        }
    }
    let first = cap.events.first().expect("events");
    let stamp: u64 = first.get("Event-Date-Timestamp").unwrap().parse().unwrap();
    cap.t0_us = stamp - first.t_us;
    cap
}

/// What the simulator sent back, each event with its virtual time.
pub struct Replayed {
    pub events: Vec<(u64, Event)>,
    pub api_replies: Vec<String>,
    /// `-ERR` replies to commands FreeSWITCH accepted.
    pub command_errors: Vec<String>,
    pub switch: Switch,
}

/// Sends the capture's commands to a simulated switch at the capture's offsets, then lets every timer run (until
/// every channel is gone, at most `tail_s` seconds after the last command).
pub fn replay(cap: &Capture, cfg: Config, scenario: Scenario, tail_s: u64) -> Replayed {
    let t0 = cap.t0_us;
    let mut sw = Switch::new(cfg, scenario, t0);
    let mut out = Replayed {
        events: Vec::new(),
        api_replies: Vec::new(),
        command_errors: Vec::new(),
        switch: Switch::new(Config::default(), Scenario::builtin(), t0),
    };
    let mut last = t0;
    for s in &cap.sent {
        let now = t0 + s.t_us;
        run_timers(&mut sw, last, now, &mut out);
        last = now;
        let mut lines = s.text.lines();
        let first = lines.next().unwrap_or("");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (verb, rest) = first.split_once(' ').unwrap_or((first, ""));
        let (cmd, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        match verb {
            "bgapi" => {
                let job = headers
                    .iter()
                    .find(|(k, _)| k == "Job-UUID")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                sw.bgapi(now, cmd, arg, &job, "");
            }
            "api" => {
                if let Some(r) = sw.api(now, cmd, arg, 0) {
                    out.api_replies.push(r);
                }
            }
            "sendmsg" => {
                if let Err(reply) = sw.sendmsg(now, rest, &headers) {
                    out.command_errors.push(reply);
                }
            }
            other => panic!("{}: cannot replay {other:?}", cap.scenario),
        }
        drain(&mut sw, now, &mut out);
    }
    run_timers(&mut sw, last, last + tail_s * 1_000_000, &mut out);
    out.switch = sw;
    out
}

/// Takes the switch's events as a client reads them: serialised to event-plain and parsed back.
fn drain(sw: &mut Switch, now: u64, out: &mut Replayed) {
    out.events.extend(sw.take_events().into_iter().map(|e| {
        let wire = bytes::Bytes::from(fsdialer::esl::encode::event_plain(&e));
        (now, Event::decode_plain(wire).expect("event-plain parses"))
    }));
}

/// Runs the timers due after `from` up to `until`.
fn run_timers(sw: &mut Switch, from: u64, until: u64, out: &mut Replayed) {
    while let Some(d) = sw.next_deadline() {
        if d > until {
            break;
        }
        sw.advance(d);
        drain(sw, d.max(from), out);
    }
    sw.advance(until);
    drain(sw, until, out);
}

/// Groups `(channel id, item)` by channel, channels in order of first appearance (items without an id dropped).
pub fn by_channel<T: Clone>(
    items: impl Iterator<Item = (Option<String>, T)>,
) -> Vec<(String, Vec<T>)> {
    let mut order: Vec<String> = Vec::new();
    let mut map: HashMap<String, Vec<T>> = HashMap::new();
    for (id, item) in items {
        let Some(id) = id else { continue };
        if !map.contains_key(&id) {
            order.push(id.clone());
        }
        map.entry(id).or_default().push(item);
    }
    order
        .into_iter()
        .map(|id| {
            let v = map.remove(&id).unwrap();
            (id, v)
        })
        .collect()
}

/// Channel events of FreeSWITCH's capture, per channel.
pub fn capture_channels(cap: &Capture) -> Vec<(String, Vec<&Captured>)> {
    by_channel(
        cap.events
            .iter()
            .map(|e| (e.get("Unique-ID").map(str::to_string), e)),
    )
}

/// Channel events of the simulator, per channel.
pub fn sim_channels(r: &Replayed) -> Vec<(String, Vec<&Event>)> {
    by_channel(
        r.events
            .iter()
            .map(|(_, e)| (e.unique_id().map(str::to_string), e)),
    )
}

fn names_cap(v: &[&Captured]) -> Vec<String> {
    v.iter().map(|e| e.name().to_string()).collect()
}

fn names_sim(v: &[&Event]) -> Vec<String> {
    v.iter()
        .map(|e| e.name().unwrap_or("").to_string())
        .collect()
}

/// The variables the client set in its originate (`{a=b,...}`), as `variable_a`.
fn client_variables(cap: &Capture) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in &cap.sent {
        let Some(open) = s.text.find('{') else {
            continue;
        };
        let Some(close) = s.text[open..].find('}') else {
            continue;
        };
        let inner = &s.text[open + 1..open + close];
        for part in inner.split(',') {
            if let Some((k, _)) = part.split_once('=')
                && !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                out.insert(format!("variable_{k}"));
            }
        }
    }
    out
}

/// Which channels to compare.
pub enum Pairing<'a> {
    /// Every channel, the capture's and the replay's in order of first appearance.
    InOrder,
    /// Only the channels with these Unique-IDs (uuids the client chose), each with the one of the same id.
    Ids(&'a [&'a str]),
}

/// CHANNEL_CALLSTATE is queued by the channel's own thread (`switch_channel_perform_set_callstate`), so its place
/// among the other events of its channel changes from run to run of FreeSWITCH: callstate events are compared in
/// their own order, everything else in its order.
fn split_callstate<T>(v: Vec<T>, name: impl Fn(&T) -> &str) -> (Vec<T>, Vec<T>) {
    v.into_iter().partition(|e| name(e) != "CHANNEL_CALLSTATE")
}

/// Every difference between the capture and the replay that is not allowed; empty when they agree.
pub fn differences(cap: &Capture, r: &Replayed, pairing: Pairing) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut want = capture_channels(cap);
    let mut got = sim_channels(r);
    match pairing {
        Pairing::InOrder => {
            if want.len() != got.len() {
                diffs.push(format!(
                    "{} channels in the capture, {} in the replay",
                    want.len(),
                    got.len()
                ));
            }
        }
        Pairing::Ids(ids) => {
            want = ids
                .iter()
                .filter_map(|id| want.iter().find(|(w, _)| w == id).cloned())
                .collect();
            got = ids
                .iter()
                .filter_map(|id| got.iter().find(|(g, _)| g == id).cloned())
                .collect();
            if want.len() != ids.len() || got.len() != ids.len() {
                diffs.push(format!(
                    "channels {ids:?}: {} in the capture, {} in the replay",
                    want.len(),
                    got.len()
                ));
            }
        }
    }
    let compared: BTreeSet<String> = COMPARED
        .iter()
        .map(|s| s.to_string())
        .chain(client_variables(cap))
        .collect();
    let client_uuids = client_uuids(cap);
    for (i, ((_, w), (_, g))) in want.into_iter().zip(got).enumerate() {
        let (w_other, w_cs) = split_callstate(w, |e| e.name());
        let (g_other, g_cs) = split_callstate(g, |e| e.name().unwrap_or(""));
        for (what, w, g) in [("events", w_other, g_other), ("callstates", w_cs, g_cs)] {
            let (wn, gn) = (names_cap(&w), names_sim(&g));
            if wn != gn {
                diffs.push(format!(
                    "channel {i}: {what}\n  capture: {}\n  replay:  {}",
                    wn.join(" "),
                    gn.join(" ")
                ));
                continue;
            }
            for (j, (we, ge)) in w.iter().zip(g.iter()).enumerate() {
                let place = format!("channel {i} {what}[{j}]");
                compare_event(&mut diffs, &place, we, ge, &compared, &client_uuids);
            }
        }
    }
    let bodies = |v: Vec<Option<String>>| v.into_iter().flatten().collect::<Vec<_>>();
    let want_jobs = bodies(
        cap.events
            .iter()
            .filter(|e| e.name() == "BACKGROUND_JOB")
            .map(|e| e.body.clone())
            .collect(),
    );
    let got_jobs = bodies(
        r.events
            .iter()
            .filter(|(_, e)| e.name() == Some("BACKGROUND_JOB"))
            .map(|(_, e)| e.body_text().map(|b| b.into_owned()))
            .collect(),
    );
    // Jobs of concurrent originates complete on their own threads, in any order.
    let (mut want_jobs, mut got_jobs) = (want_jobs, got_jobs);
    want_jobs.sort();
    got_jobs.sort();
    if want_jobs != got_jobs {
        diffs.push(format!(
            "job bodies: capture {want_jobs:?}, replay {got_jobs:?}"
        ));
    }
    if !r.command_errors.is_empty() {
        diffs.push(format!("commands refused: {:?}", r.command_errors));
    }
    if cap.api_replies != r.api_replies {
        diffs.push(format!(
            "api replies: capture {:?}, replay {:?}",
            cap.api_replies, r.api_replies
        ));
    }
    diffs
}

/// Values with what FreeSWITCH makes up itself masked: uuids the client did not choose become `<uuid>`, epoch
/// seconds (ten digits) become `<epoch>` (e.g. `transfer_history` = `<epoch>:<uuid>:bl_xfer:operator/default/XML`).
fn normalise(value: &str, client_uuids: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while !rest.is_empty() {
        let uuid_here = rest.get(..36).filter(|c| uuid::Uuid::parse_str(c).is_ok());
        if let Some(u) = uuid_here {
            out.push_str(if client_uuids.contains(u) {
                u
            } else {
                "<uuid>"
            });
            rest = &rest[36..];
            continue;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str(if digits == 10 {
                "<epoch>"
            } else {
                &rest[..digits]
            });
            rest = &rest[digits..];
            continue;
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Millisecond durations are measured by FreeSWITCH's threads: equal within [`MSEC_SLACK`].
fn within_ms(want: Option<&str>, got: Option<&str>) -> bool {
    let ms = |v: Option<&str>| v.and_then(|v| v.parse::<i64>().ok());
    matches!((ms(want), ms(got)), (Some(w), Some(g)) if (w - g).abs() <= MSEC_SLACK)
}

/// How far FreeSWITCH's own scheduling moves a millisecond duration (`variable_billmsec` of the same scenario
/// differs by up to 34 ms between the captures and the replays).
const MSEC_SLACK: i64 = 100;

/// The uuids the client chose (every uuid in what it sent).
fn client_uuids(cap: &Capture) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in &cap.sent {
        for (i, _) in s.text.char_indices() {
            if let Some(c) = s.text.get(i..i + 36)
                && uuid::Uuid::parse_str(c).is_ok()
            {
                out.insert(c.to_string());
            }
        }
    }
    out
}

/// Header names (but channel variables) and the compared values of one pair of events.
///
/// FreeSWITCH sets a callstate from the thread that changes it but the channel's state from the channel's own
/// thread, so a CHANNEL_CALLSTATE event's `Channel-State` and caller profile, and the `Channel-Call-State` of the
/// events around it, are whatever the other thread had done by then: those are left out.
fn compare_event(
    diffs: &mut Vec<String>,
    place: &str,
    we: &Captured,
    ge: &Event,
    compared: &BTreeSet<String>,
    client_uuids: &BTreeSet<String>,
) {
    let callstate = we.name() == "CHANNEL_CALLSTATE";
    let racy = |n: &str| {
        if callstate {
            n.starts_with("Caller-") || n == "Channel-State"
        } else {
            n == "Channel-Call-State"
        }
    };
    let wnames: BTreeSet<&str> = we
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !n.starts_with("variable_") && !racy(n))
        .collect();
    let gnames_owned: Vec<String> = ge
        .headers()
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
        .collect();
    let gnames: BTreeSet<&str> = gnames_owned
        .iter()
        .map(String::as_str)
        .filter(|n| !n.starts_with("variable_") && !racy(n))
        .collect();
    if wnames != gnames {
        diffs.push(format!(
            "{place} {}: headers only in the capture {:?}, only in the replay {:?}",
            we.name(),
            wnames.difference(&gnames).collect::<Vec<_>>(),
            gnames.difference(&wnames).collect::<Vec<_>>()
        ));
    }
    for key in compared.iter().filter(|k| !racy(k)) {
        let norm = |v: Option<&str>| v.map(|v| normalise(v, client_uuids));
        let (wv, gv) = (norm(we.get(key)), norm(ge.get(key)));
        if key.ends_with("msec") && within_ms(wv.as_deref(), gv.as_deref()) {
            continue;
        }
        if wv.is_some() && wv != gv {
            diffs.push(format!(
                "{place} {}: {key} = {wv:?} in the capture, {gv:?} in the replay",
                we.name()
            ));
        }
    }
}

/// Panics with every difference.
pub fn assert_replays(cap: &Capture, r: &Replayed, pairing: Pairing) {
    let d = differences(cap, r, pairing);
    assert!(
        d.is_empty(),
        "{}: {} differences from FreeSWITCH (allowed to differ: {})\n{}",
        cap.scenario,
        d.len(),
        ALLOWED_TO_DIFFER.join(", "),
        d.join("\n")
    );
}
