//! Agent calls on the simulated switch, in virtual time: `uuid_bridge` of two parked legs (events on each leg in
//! FreeSWITCH's order, variables, hang-up of the pair from either side, `-ERR` replies), `uuid_broadcast` with a
//! hang-up after the application, agent endpoints drawn from the scenario, and members who run out of patience.

use fsdialer::esl::Event;
use fsdialer::sim::model::{Config, Switch};
use fsdialer::sim::scenario::Scenario;

pub(super) const T0: u64 = 1_795_636_943_000_000;
const MEMBER: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const AGENT: &str = "bbbbbbbb-0000-4000-8000-000000000002";

/// Members (`1555…`) answer and never hang up by themselves; agents are `user/10xx` and `loopback/agent_N`.
const SCENARIO: &str = r#"
seed = 11
[[rule]]
match = "^1555"
callee_hangs_up = false
[[rule]]
match = "^1666"
callee_hangs_up = false
patience_ms = 3000
[[agent]]
match = "^user/10(0[1-9]|10)$"
answer_ms = 2000
talk_ms = 10000
hangup_by = "agent"
[[agent]]
match = "^loopback/agent_1/"
answer_ms = 500
talk_ms = 4000
hangup_by = "customer"
[[agent]]
match = "^user/2001$"
answer_ms = 1000
no_answer_prob = 1.0
[[agent]]
match = "^user/2002$"
answer_ms = 1000
reject_prob = 1.0
reject_cause = "USER_BUSY"
"#;

/// A switch on virtual time that keeps every event with the instant it fired.
pub(super) struct Bench {
    pub(super) sw: Switch,
    pub(super) now: u64,
    pub(super) events: Vec<(u64, Event)>,
}

impl Bench {
    pub(super) fn new(scenario: &str) -> Bench {
        let sw = Switch::new(
            Config::default(),
            Scenario::from_toml(scenario).unwrap(),
            T0,
        );
        Bench {
            sw,
            now: T0,
            events: Vec::new(),
        }
    }

    pub(super) fn collect(&mut self) {
        let now = self.now;
        self.events
            .extend(self.sw.take_events().into_iter().map(|e| (now, e)));
    }

    /// Runs every timer up to `ms` after T0, events stamped with when they fired.
    pub(super) fn until(&mut self, ms: u64) {
        let end = T0 + ms * 1000;
        while let Some(d) = self.sw.next_deadline().filter(|d| *d <= end) {
            self.now = d.max(self.now);
            self.sw.advance(d);
            self.collect();
        }
        self.now = end.max(self.now);
        self.sw.advance(self.now);
        self.collect();
    }

    pub(super) fn originate(&mut self, uuid: &str, vars: &str, dial: &str) {
        let arg = format!("{{origination_uuid={uuid}{vars}}}{dial} &park()");
        self.sw
            .bgapi(self.now, "originate", &arg, &format!("job-{uuid}"), "");
        self.collect();
    }

    pub(super) fn api(&mut self, cmd: &str, arg: &str) -> String {
        let r = self.sw.api(self.now, cmd, arg, 0).unwrap();
        self.collect();
        r
    }

    /// `NAME` or `NAME(detail)` of each event on `uuid` fired after index `from`.
    pub(super) fn trail(&self, uuid: &str, from: usize) -> Vec<String> {
        self.events[from..]
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e.unique_id() == Some(uuid))
            .map(|e| {
                let name = e.name().unwrap_or("");
                let detail = match name {
                    "CHANNEL_STATE" => e.get("Channel-State"),
                    "CHANNEL_EXECUTE" | "CHANNEL_EXECUTE_COMPLETE" => e.get("Application"),
                    "CHANNEL_HANGUP" => e.get("Hangup-Cause"),
                    _ => None,
                };
                match detail {
                    Some(d) => format!("{name}({d})"),
                    None => name.to_string(),
                }
            })
            .collect()
    }

    pub(super) fn last(&self, uuid: &str, name: &str) -> &Event {
        self.events
            .iter()
            .rev()
            .map(|(_, e)| e)
            .find(|e| e.unique_id() == Some(uuid) && e.name() == Some(name))
            .unwrap_or_else(|| panic!("no {name} on {uuid}"))
    }

    pub(super) fn job_body(&self, uuid: &str) -> String {
        let job = format!("job-{uuid}");
        self.events
            .iter()
            .map(|(_, e)| e)
            .find(|e| e.name() == Some("BACKGROUND_JOB") && e.get("Job-UUID") == Some(&job))
            .and_then(|e| e.body_text().map(|b| b.into_owned()))
            .unwrap_or_else(|| panic!("no BACKGROUND_JOB for {uuid}"))
    }

    /// A member (sofia, answers at once) and an agent (`user/1001`, answers after 2 s), both parked.
    fn parked_pair(scenario: &str) -> Bench {
        let mut b = Bench::new(scenario);
        b.originate(MEMBER, ",dlr_node=n1", "sofia/gateway/gw/15551234");
        b.originate(AGENT, ",dlr_node=n1", "user/1001");
        b.until(2500);
        assert_eq!(b.job_body(MEMBER), format!("+OK {MEMBER}\n"));
        assert_eq!(b.job_body(AGENT), format!("+OK {AGENT}\n"));
        b
    }
}

fn states(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn uuid_bridge_of_two_parked_legs_fires_freeswitch_events_on_each_leg_in_order() {
    let mut b = Bench::parked_pair(SCENARIO);
    let from = b.events.len();
    assert_eq!(
        b.api("uuid_bridge", &format!("{MEMBER} {AGENT}")),
        format!("+OK {AGENT}\n")
    );
    assert_eq!(
        b.trail(MEMBER, from),
        states(&[
            "CHANNEL_UNPARK",
            "CHANNEL_EXECUTE_COMPLETE(park)",
            "CHANNEL_STATE(CS_HIBERNATE)",
            "CHANNEL_STATE(CS_RESET)",
            "CHANNEL_STATE(CS_SOFT_EXECUTE)",
            "CHANNEL_EXECUTE(uuid_bridge)",
            "CHANNEL_BRIDGE",
        ])
    );
    assert_eq!(
        b.trail(AGENT, from),
        states(&[
            "CHANNEL_UNPARK",
            "CHANNEL_EXECUTE_COMPLETE(park)",
            "CHANNEL_STATE(CS_HIBERNATE)",
            "CHANNEL_STATE(CS_RESET)",
            "CHANNEL_STATE(CS_SOFT_EXECUTE)",
            "CHANNEL_EXECUTE(uuid_bridge)",
            "CHANNEL_STATE(CS_CONSUME_MEDIA)",
            "CHANNEL_STATE(CS_EXCHANGE_MEDIA)",
        ]),
        "CHANNEL_BRIDGE fires on the originator only"
    );
    let br = b.last(MEMBER, "CHANNEL_BRIDGE");
    assert_eq!(br.get("Bridge-A-Unique-ID"), Some(MEMBER));
    assert_eq!(br.get("Bridge-B-Unique-ID"), Some(AGENT));
    assert_eq!(br.get("Other-Type"), Some("originatee"));
    assert_eq!(br.get("Other-Leg-Unique-ID"), Some(AGENT));
    assert_eq!(br.get("Other-Leg-Channel-Name"), Some("user/1001"));
    assert_eq!(br.get("variable_bridge_uuid"), Some(AGENT));
    assert_eq!(br.get("variable_signal_bond"), Some(AGENT));
    assert_eq!(br.get("variable_bridge_channel"), Some("user/1001"));
    assert_eq!(
        br.get("variable_uuid_bridge"),
        None,
        "cleared before the bridge runs"
    );
    assert_eq!(br.get("Caller-Profile-Index"), Some("2"));
    assert!(
        br.get("Caller-Transfer-Source")
            .is_some_and(|s| s.ends_with(&format!(":{MEMBER}:uuid_br:{AGENT}")))
    );
    assert_ne!(br.get("Caller-Channel-Bridged-Time"), Some("0"));
    let ex = b.last(AGENT, "CHANNEL_EXECUTE");
    assert_eq!(ex.get("Application-Data"), Some(MEMBER));
    assert_eq!(ex.get("Other-Type"), Some("originator"));
    assert_eq!(ex.get("Other-Leg-Unique-ID"), Some(MEMBER));
    let agent = b.sw.channel(AGENT).unwrap();
    assert_eq!(agent.vars.get("bridge_to"), Some(MEMBER));
    assert_eq!(agent.vars.get("last_bridge_to"), Some(MEMBER));
    assert_eq!(agent.vars.get("call_uuid"), Some(MEMBER));
}

#[test]
fn a_bridged_pair_hangs_up_together_when_the_agent_side_is_killed() {
    let mut b = Bench::parked_pair(SCENARIO);
    b.api("uuid_bridge", &format!("{MEMBER} {AGENT}"));
    b.until(4000);
    let from = b.events.len();
    assert_eq!(b.api("uuid_kill", &format!("{AGENT} USER_BUSY")), "+OK\n");
    let member = b.trail(MEMBER, from);
    assert_eq!(
        &member[..4],
        &states(&[
            "CHANNEL_UNBRIDGE",
            "CHANNEL_STATE(CS_EXECUTE)",
            "CHANNEL_HANGUP(NORMAL_CLEARING)",
            "CHANNEL_STATE(CS_HANGUP)",
        ]),
        "the originator returns to CS_EXECUTE, finds nothing to run and hangs up NORMAL_CLEARING"
    );
    let unbridge = b.last(MEMBER, "CHANNEL_UNBRIDGE");
    assert_eq!(unbridge.get("Bridge-A-Unique-ID"), Some(MEMBER));
    assert_eq!(unbridge.get("Bridge-B-Unique-ID"), Some(AGENT));
    assert!(
        !b.trail(AGENT, from).iter().any(|n| n.contains("UNBRIDGE")),
        "no UNBRIDGE on the originatee"
    );
    let m = b.last(MEMBER, "CHANNEL_HANGUP_COMPLETE");
    assert_eq!(m.get("Hangup-Cause"), Some("NORMAL_CLEARING"));
    assert_eq!(m.get("variable_bridge_hangup_cause"), Some("USER_BUSY"));
    assert_eq!(m.get("variable_last_bridge_to"), Some(AGENT));
    assert_eq!(m.get("variable_bridge_uuid"), Some(AGENT));
    assert_eq!(
        m.get("variable_bridge_to"),
        None,
        "the bridge thread removes it"
    );
    assert_ne!(m.get("variable_bridge_uepoch"), Some("0"));
    let a = b.last(AGENT, "CHANNEL_HANGUP_COMPLETE");
    assert_eq!(a.get("Hangup-Cause"), Some("USER_BUSY"));
    assert_eq!(a.get("variable_last_bridge_to"), Some(MEMBER));
    assert_eq!(a.get("variable_bridge_uuid"), Some(MEMBER));
    assert_eq!(a.get("variable_call_uuid"), Some(AGENT));
    assert_eq!(b.sw.channel_count(), 0);
}

#[test]
fn a_bridged_pair_hangs_up_together_when_the_member_side_is_killed() {
    let mut b = Bench::parked_pair(SCENARIO);
    b.api("uuid_bridge", &format!("{MEMBER} {AGENT}"));
    let from = b.events.len();
    b.api("uuid_kill", MEMBER);
    assert_eq!(
        &b.trail(MEMBER, from)[..2],
        &states(&["CHANNEL_HANGUP(NORMAL_CLEARING)", "CHANNEL_UNBRIDGE"])
    );
    assert_eq!(
        b.trail(AGENT, from)[0],
        "CHANNEL_HANGUP(NORMAL_CLEARING)",
        "the originatee hangs up NORMAL_CLEARING (audio_bridge_on_exchange_media)"
    );
    assert_eq!(
        b.last(AGENT, "CHANNEL_HANGUP_COMPLETE")
            .get("variable_bridge_hangup_cause"),
        Some("NORMAL_CLEARING")
    );
    assert_eq!(b.sw.channel_count(), 0);
}

#[test]
fn hangup_after_bridge_passes_the_cause_and_park_after_bridge_keeps_the_survivor() {
    let mut b = Bench::new(SCENARIO);
    b.originate(
        MEMBER,
        ",hangup_after_bridge=true",
        "sofia/gateway/gw/15551234",
    );
    b.originate(AGENT, "", "user/1001");
    b.until(2500);
    b.api("uuid_bridge", &format!("{MEMBER} {AGENT}"));
    b.api("uuid_kill", &format!("{AGENT} USER_BUSY"));
    assert_eq!(
        b.last(MEMBER, "CHANNEL_HANGUP_COMPLETE")
            .get("Hangup-Cause"),
        Some("USER_BUSY")
    );

    let mut b = Bench::new(SCENARIO);
    b.originate(
        MEMBER,
        ",park_after_bridge=true",
        "sofia/gateway/gw/15551234",
    );
    b.originate(AGENT, "", "user/1001");
    b.until(2500);
    b.api("uuid_bridge", &format!("{MEMBER} {AGENT}"));
    let from = b.events.len();
    b.api("uuid_kill", AGENT);
    assert_eq!(
        b.trail(MEMBER, from),
        states(&["CHANNEL_UNBRIDGE", "CHANNEL_STATE(CS_PARK)", "CHANNEL_PARK"])
    );
    assert!(b.sw.channel(MEMBER).is_some(), "the member waits, parked");
    assert_eq!(b.sw.channel_count(), 1);
}

#[test]
fn uuid_bridge_refuses_missing_and_unanswered_channels_with_freeswitch_texts() {
    let mut b = Bench::parked_pair(SCENARIO);
    let missing = "cccccccc-0000-4000-8000-000000000003";
    assert_eq!(
        b.api("uuid_bridge", &format!("{MEMBER} {missing}")),
        "-ERR Invalid uuid\n"
    );
    assert_eq!(
        b.api("uuid_bridge", &format!("{missing} {AGENT}")),
        "-ERR Invalid uuid\n"
    );
    assert_eq!(
        b.api("uuid_bridge", MEMBER),
        "-USAGE: <uuid> <other_uuid>\n"
    );
    assert_eq!(
        b.api("uuid_bridge", &format!("{MEMBER} {missing} {AGENT}")),
        format!("+OK {AGENT}\n"),
        "the third uuid is tried when the second fails"
    );
    // An answered member and a ringing agent: the simulator does not bridge a leg still being originated.
    let mut b = Bench::new(SCENARIO);
    b.originate(MEMBER, "", "sofia/gateway/gw/15551234");
    b.originate(AGENT, "", "user/1001");
    b.until(100);
    assert_eq!(
        b.api("uuid_bridge", &format!("{MEMBER} {AGENT}")),
        "-ERR Invalid uuid\n"
    );
    // Two ringing channels cannot be bridged; over bgapi the reply is the job's body.
    let mut b = Bench::new(SCENARIO);
    b.originate(MEMBER, "", "user/1002");
    b.originate(AGENT, "", "user/1003");
    b.sw.bgapi(
        b.now,
        "uuid_bridge",
        &format!("{MEMBER} {AGENT}"),
        "job-bridge",
        "",
    );
    b.collect();
    assert_eq!(b.job_body("bridge"), "-ERR Invalid uuid\n");
}

#[test]
fn uuid_broadcast_plays_the_abandon_message_then_hangs_up_with_the_cause() {
    let mut b = Bench::new(SCENARIO);
    b.originate(MEMBER, "", "sofia/gateway/gw/15551234");
    b.until(100);
    assert_eq!(
        b.api(
            "uuid_broadcast",
            "cccccccc-0000-4000-8000-000000000003 /p/a.wav aleg"
        ),
        "-ERR invalid uuid\n"
    );
    assert_eq!(
        b.api("uuid_broadcast", MEMBER),
        "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"
    );
    let from = b.events.len();
    assert_eq!(
        b.api(
            "uuid_broadcast",
            &format!("{MEMBER} playback!NORMAL_CLEARING::/p/abandon.wav aleg")
        ),
        "+OK Message sent\n"
    );
    b.until(5000);
    let trail = b.trail(MEMBER, from);
    assert_eq!(
        &trail[..7],
        &states(&[
            "CHANNEL_EXECUTE(playback)",
            "PLAYBACK_START",
            "PLAYBACK_STOP",
            "CHANNEL_EXECUTE_COMPLETE(playback)",
            "PRIVATE_COMMAND",
            "CHANNEL_EXECUTE(hangup)",
            "CHANNEL_HANGUP(NORMAL_CLEARING)",
        ]),
        "{trail:?}"
    );
    let done = b.last(MEMBER, "CHANNEL_EXECUTE_COMPLETE");
    assert_eq!(
        done.get("Application"),
        Some("park"),
        "park ends at the hang-up"
    );
    let played = b
        .events
        .iter()
        .map(|(t, e)| (t, e))
        .find(|(_, e)| {
            e.get("Application") == Some("playback") && e.name() == Some("CHANNEL_EXECUTE_COMPLETE")
        })
        .unwrap();
    assert_eq!(played.1.get("Application-Response"), Some("FILE PLAYED"));
    assert_eq!(
        *played.0,
        T0 + 1_100_000,
        "the prompt plays its length (1 s)"
    );
    let commands: Vec<_> = b
        .events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.name() == Some("PRIVATE_COMMAND"))
        .map(|e| {
            (
                e.get("execute-app-name"),
                e.get("execute-app-arg"),
                e.get("event-lock"),
            )
        })
        .collect();
    assert_eq!(
        commands,
        [
            (Some("playback"), Some("/p/abandon.wav"), Some("true")),
            (Some("hangup"), Some("NORMAL_CLEARING"), Some("true")),
        ],
        "each queued command comes back once its application returns"
    );
    assert_eq!(b.sw.channel_count(), 0);
}

#[test]
fn agent_profiles_ring_answer_refuse_or_never_answer_as_the_scenario_says() {
    let mut b = Bench::new(SCENARIO);
    b.originate(AGENT, "", "user/1001");
    b.originate(MEMBER, ",originate_timeout=5", "user/2001");
    let busy = "cccccccc-0000-4000-8000-000000000003";
    b.originate(busy, "", "user/2002");
    b.until(1999);
    assert_eq!(
        b.sw.channel(AGENT).unwrap().answered_us,
        0,
        "rings answer_ms"
    );
    b.until(2001);
    assert_eq!(b.job_body(AGENT), format!("+OK {AGENT}\n"));
    assert_eq!(b.job_body(busy), "-ERR USER_BUSY\n");
    assert!(b.sw.channel(AGENT).unwrap().park.is_some(), "waits parked");
    b.until(6000);
    assert_eq!(
        b.job_body(MEMBER),
        "-ERR NO_ANSWER\n",
        "rings until originate_timeout"
    );
    assert!(
        b.sw.channel(AGENT).is_some(),
        "an agent hangs up only once bridged"
    );
}

#[test]
fn a_bridged_agent_talks_then_the_side_its_profile_names_hangs_up() {
    // hangup_by = "agent": 10 s after the bridge the agent's side hangs up, the member follows.
    let mut b = Bench::parked_pair(SCENARIO);
    b.until(5000);
    b.api("uuid_bridge", &format!("{MEMBER} {AGENT}"));
    b.until(14_999);
    assert_eq!(b.sw.channel_count(), 2);
    let from = b.events.len();
    b.until(15_001);
    assert_eq!(b.trail(AGENT, from)[0], "CHANNEL_HANGUP(NORMAL_CLEARING)");
    assert!(
        b.trail(MEMBER, from)
            .contains(&"CHANNEL_UNBRIDGE".to_string())
    );
    assert_eq!(b.sw.channel_count(), 0);

    // hangup_by = "customer" on a loopback agent: the member's side hangs up 4 s after the bridge.
    let mut b = Bench::new(SCENARIO);
    b.originate(MEMBER, "", "sofia/gateway/gw/15551234");
    b.originate(AGENT, "", "loopback/agent_1/default");
    b.until(1000);
    assert_eq!(b.job_body(AGENT), format!("+OK {AGENT}\n"));
    b.api("uuid_bridge", &format!("{MEMBER} {AGENT}"));
    let from = b.events.len();
    b.until(5001);
    assert_eq!(b.trail(MEMBER, from)[0], "CHANNEL_HANGUP(NORMAL_CLEARING)");
    assert_eq!(
        b.last(MEMBER, "CHANNEL_HANGUP_COMPLETE")
            .get("variable_sip_term_status"),
        Some("200"),
        "the customer's far end hung up"
    );
    assert_eq!(
        b.sw.channel_count(),
        0,
        "the agent's loopback pair ends too"
    );
}

#[test]
fn agent_draws_reproduce_with_the_seed() {
    let text = r#"
        seed = 5
        [[agent]]
        match = "^user/"
        answer_ms = [500, 3000]
        no_answer_prob = 0.2
        reject_prob = 0.1
        talk_ms = { median = 30000, sigma = 0.6 }
        hangup_by = "either"
    "#;
    let draws = |n: usize| {
        let mut s = Scenario::from_toml(text).unwrap();
        (0..n)
            .map(|_| s.plan("user", "1001", "1001", 0))
            .collect::<Vec<_>>()
    };
    let (x, y) = (draws(300), draws(300));
    assert_eq!(x, y);
    let answered: Vec<_> = x.iter().filter_map(|p| p.talk).collect();
    assert!(
        (180..240).contains(&answered.len()),
        "{} answered",
        answered.len()
    );
    let mut talks: Vec<u64> = answered.iter().map(|t| t.talk_ms).collect();
    talks.sort_unstable();
    let median = talks[talks.len() / 2];
    assert!((24_000..37_000).contains(&median), "median talk {median}");
    let by_agent = answered
        .iter()
        .filter(|t| t.ender == fsdialer::sim::scenario::Ender::Agent)
        .count();
    assert!(
        by_agent > 60 && by_agent < answered.len() - 60,
        "either: {by_agent}"
    );
}

#[test]
fn a_member_waiting_in_silence_hangs_up_when_its_patience_runs_out() {
    let mut b = Bench::new(SCENARIO);
    b.originate(MEMBER, "", "sofia/gateway/gw/16661234");
    b.until(2000);
    // A 1 s prompt at 2 s breaks the silence: the 3 s start again when it ends (3 s), so it hangs up at 6 s.
    b.api(
        "uuid_broadcast",
        &format!("{MEMBER} /p/please_wait.wav aleg"),
    );
    b.until(5999);
    assert!(b.sw.channel(MEMBER).is_some());
    let from = b.events.len();
    b.until(6001);
    assert_eq!(b.trail(MEMBER, from)[0], "CHANNEL_HANGUP(NORMAL_CLEARING)");
    assert_eq!(b.sw.channel_count(), 0);

    // Bridged in time, it does not hang up; after the bridge it is gone with the agent anyway.
    let mut b = Bench::new(SCENARIO);
    b.originate(MEMBER, "", "sofia/gateway/gw/16661234");
    b.originate(AGENT, "", "user/1001");
    b.until(2500);
    b.api("uuid_bridge", &format!("{MEMBER} {AGENT}"));
    b.until(10_000);
    assert_eq!(b.sw.channel_count(), 2, "talking, not waiting");
}

#[test]
fn uuid_broadcast_bleg_plays_on_the_bridged_partner_and_both_on_each() {
    let mut b = Bench::parked_pair(SCENARIO);
    b.api("uuid_bridge", &format!("{MEMBER} {AGENT}"));
    let from = b.events.len();
    assert_eq!(
        b.api("uuid_broadcast", &format!("{MEMBER} /p/whisper.wav bleg")),
        "+OK Message sent\n"
    );
    b.until(3000);
    assert!(
        b.trail(AGENT, from)
            .contains(&"CHANNEL_EXECUTE(playback)".to_string())
    );
    assert!(
        !b.trail(MEMBER, from)
            .contains(&"CHANNEL_EXECUTE(playback)".to_string())
    );
    let from = b.events.len();
    b.api("uuid_broadcast", &format!("{MEMBER} /p/both.wav both"));
    b.until(4500);
    for leg in [MEMBER, AGENT] {
        assert!(
            b.trail(leg, from)
                .contains(&"CHANNEL_EXECUTE_COMPLETE(playback)".to_string()),
            "{leg}"
        );
    }
    assert_eq!(
        b.sw.channel_count(),
        2,
        "still bridged: a broadcast does not end the bridge"
    );
}

/// The preview offer: the engine runs `event` on the agent's parked leg (`sendmsg … execute event`); the switch
/// fires the CUSTOM `dlr::offer` event its argument names, with the pairs it carries and the channel's own data
/// (so an ESL filter on `variable_dlr_node` passes it), and the leg stays parked.
#[test]
fn the_event_application_fires_a_custom_event_with_the_channels_data() {
    let mut b = Bench::parked_pair(SCENARIO);
    let arg = fsdialer::engine::shell::offer_event_arg(
        "c1",
        uuid::Uuid::nil(),
        fsdialer::store::MemberId(7),
        "Smith, John",
        "15551234",
        &serde_json::Map::new(),
    );
    let headers = vec![
        ("call-command".to_string(), "execute".to_string()),
        ("execute-app-name".to_string(), "event".to_string()),
        ("execute-app-arg".to_string(), arg),
    ];
    b.sw.sendmsg(b.now, AGENT, &headers).unwrap();
    b.collect();
    b.until(3000);
    let e = b.last(AGENT, "CUSTOM");
    assert_eq!(e.get("Event-Subclass"), Some("dlr::offer"));
    assert_eq!(e.get("dlr_member"), Some("7"));
    assert_eq!(e.get("dlr_member_name"), Some("Smith%2C John"));
    assert_eq!(e.get("variable_dlr_node"), Some("n1"));
    assert_eq!(e.unique_id(), Some(AGENT));
    // Still parked: a bridge takes it.
    assert_eq!(
        b.api("uuid_bridge", &format!("{MEMBER} {AGENT}")),
        format!("+OK {AGENT}\n")
    );
}
