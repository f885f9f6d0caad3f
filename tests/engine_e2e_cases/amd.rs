//! Answering-machine detection end to end over ESL, with both mod_amd variants on the simulated switch
//! (`fixtures/engine/scenarios/amd.toml`): a person goes on (talk time after the analysis), a voicemail gets the
//! message after its beep (ok), a NOTSURE is a person, a machine that hangs up before its beep is retried; the
//! non-blocking variant's `amd::info` arrives without Event-Name and is routed by its subclass and Unique-ID.

use super::engine_support::*;

use fsdialer::campaign::amd::{AmdModule, AmdSettings, MachineAction};
use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::member::MemberInput;
use fsdialer::engine::clock::Clock;
use fsdialer::store::{AttemptRecord, MemberId, Store};

const SPEED: f64 = 20.0;

fn member(name: &str, number: &str) -> MemberInput {
    serde_json::from_value(
        serde_json::json!({"name": name, "communications": [{"number": number}]}),
    )
    .unwrap()
}

fn note(a: &AttemptRecord) -> serde_json::Value {
    serde_json::from_str(a.note.as_deref().expect("a note")).unwrap()
}

/// Runs the four callees once with `module` on both sides; returns each member's only attempt.
async fn run(module: AmdModule) -> Vec<AttemptRecord> {
    let _serial = serial().await;
    let text = std::fs::read_to_string(fixture("scenarios/amd.toml")).unwrap();
    let text = text.replace(
        "module = \"mod_amd\"",
        &format!("module = \"{}\"", module.as_str()),
    );
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("amd.toml");
    std::fs::write(&scenario, text).unwrap();
    let sim = start_sim(&SimSpec {
        scenario: Some(scenario),
        ..SimSpec::roomy(SPEED)
    })
    .await;
    let mut config = campaign_config("calls");
    config.id = Some("e2e-amd".into());
    config.max_tries = 1;
    config.min_success_duration_sec = 10;
    config.amd = Some(AmdSettings {
        module,
        machine: MachineAction::LeaveMessage,
        machine_message: Some("/var/lib/prompts/vm-drop.wav".into()),
        ..AmdSettings::default()
    });
    let campaign = validate(&config);
    let id = campaign.id().to_owned();
    let store = Store::memory();
    let clock = Clock::scaled(SPEED);
    let members = [
        member("Person", "human_1"),
        member("Voicemail", "vm_1"),
        member("Unsure", "unsure_1"),
        member("Short voicemail", "vm_short_1"),
    ];
    store.add(&id, &members, clock.now()).await.unwrap();
    let node = run_to_done(&store, sim.local_addr(), &campaign, clock).await;
    let mut out = Vec::new();
    for i in 1..=members.len() as u64 {
        let mut a = store.attempts(&id, MemberId(i)).await.unwrap();
        assert_eq!(a.len(), 1, "member {i}: {a:?}");
        out.push(a.remove(0));
    }
    node.stop().await;
    sim.shutdown().await;
    out
}

fn check(attempts: &[AttemptRecord], human_cause: &str) {
    let [person, voicemail, unsure, short] = attempts else {
        panic!("{attempts:?}");
    };
    // The person: HUMAN, goes on, its talk time counted after the analysis.
    let n = note(person);
    assert_eq!(n["amd"]["result"], "HUMAN", "{n}");
    assert_eq!(n["amd"]["cause"], human_cause, "{n}");
    assert_eq!(n["amd"]["answer"], "live");
    let decision_ms = n["amd"]["decision_ms"].as_u64().unwrap();
    assert!((1000..=2300).contains(&decision_ms), "{n}");
    assert_eq!(person.class, CauseClass::Ok, "{person:?}");
    assert!(
        person.talk_secs < 30 && person.talk_secs >= 27,
        "30 s of talk less {decision_ms} ms of analysis: {person:?}"
    );
    // The voicemail: MACHINE, the message after the beep, ok.
    let n = note(voicemail);
    assert_eq!(n["amd"]["result"], "MACHINE", "{n}");
    assert_eq!(n["amd"]["cause"], "LONGGREETING");
    assert_eq!(n["amd"]["message_left"], true, "{n}");
    let beep: chrono::DateTime<chrono::Utc> =
        n["amd"]["beep_at"].as_str().unwrap().parse().unwrap();
    let message: chrono::DateTime<chrono::Utc> =
        n["amd"]["message_at"].as_str().unwrap().parse().unwrap();
    assert!(message >= beep, "the message played before the beep: {n}");
    let answer = voicemail.answer_at.unwrap();
    assert!(
        beep - answer >= chrono::Duration::milliseconds(5500),
        "the beep comes 6 s after the answer: {n}"
    );
    assert_eq!(voicemail.class, CauseClass::Ok, "{voicemail:?}");
    // NOTSURE is a person by default.
    let n = note(unsure);
    assert_eq!(n["amd"]["result"], "NOTSURE", "{n}");
    assert_eq!(n["amd"]["answer"], "live");
    assert_eq!(unsure.class, CauseClass::Ok, "{unsure:?}");
    // A machine that hangs up before its beep: no message, retry class (and no try left: max_tries = 1).
    let n = note(short);
    assert_eq!(n["amd"]["result"], "MACHINE", "{n}");
    assert_eq!(n["amd"]["message_left"], false, "{n}");
    assert!(n["amd"]["message_at"].is_null(), "{n}");
    assert_eq!(short.class, CauseClass::Retry, "{short:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amd_with_the_blocking_mod_amd_over_esl() {
    let attempts = run(AmdModule::ModAmd).await;
    check(&attempts, "HUMAN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amd_with_the_non_blocking_mod_amd_and_its_headerless_amd_info_over_esl() {
    let attempts = run(AmdModule::ModAmdNonblocking).await;
    check(&attempts, "SILENCEAFTERGREETING");
}
