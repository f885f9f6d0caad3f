//! Answering-machine detection on virtual time: nothing happens on an answer before the decision; a live answer
//! goes on to the callflow or agent with its talk time counted after the analysis; a machine is hung up (retry) or
//! gets the voicemail drop after the beep (ok), never before, and never reaches an agent.

use super::core_support::*;
use chrono::Duration;
use fsdialer::campaign::causes::CauseClass;
use fsdialer::engine::core::{
    AgentRelease, AnswerKind, ENGINE_TIMEOUT_CAUSE, Input, MACHINE_HANGUP_CAUSE,
};
use std::sync::Arc;

const TEAM: &str = "sales";

fn with_amd(amd: &str) -> Arc<fsdialer::campaign::config::ValidCampaign> {
    campaign(&format!("[amd]\n{amd}\n"))
}

fn note_of(h: &[fsdialer::store::AttemptRecord]) -> serde_json::Value {
    let note = h.last().unwrap().note.clone().expect("a note");
    serde_json::from_str(&note).unwrap()
}

#[tokio::test]
async fn a_human_answer_goes_on_after_the_decision_and_its_talk_time_excludes_the_analysis() {
    // min_success_duration_sec = 10: 11 s of billed talk less 2 s of analysis is too short; 30 s is not.
    let mut h = Harness::new(
        with_amd(""),
        &[
            member("A", &["amd_HUMAN_11"]),
            member("B", &["amd_HUMAN_30"]),
        ],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(4).await;
    assert_eq!(h.amd.started.len(), 2, "amd starts on each answer");
    assert!(
        h.amd.started[0].2.contains("total_analysis_time=5000"),
        "{:?}",
        h.amd.started
    );
    let kinds: Vec<_> = h.core.calls().values().map(|c| c.answer_kind()).collect();
    assert!(
        kinds.iter().all(|k| *k == Some(AnswerKind::Undecided)),
        "{kinds:?}"
    );
    h.run_for(2).await;
    let kinds: Vec<_> = h.core.calls().values().map(|c| c.answer_kind()).collect();
    assert!(
        kinds.iter().all(|k| *k == Some(AnswerKind::Live)),
        "{kinds:?}"
    );
    h.run_for(60).await;
    let short = h.history(1).await;
    assert_eq!(short[0].class, CauseClass::Retry, "{short:?}");
    assert_eq!(short[0].talk_secs, 9, "11 s billed less 2 s of analysis");
    let long = h.history(2).await;
    assert_eq!(long[0].class, CauseClass::Ok, "{long:?}");
    assert_eq!(long[0].talk_secs, 28);
    let note = note_of(&long);
    assert_eq!(note["amd"]["result"], "HUMAN");
    assert_eq!(note["amd"]["cause"], "SILENCEAFTERGREETING");
    assert_eq!(note["amd"]["decision_ms"], 2000);
    assert_eq!(note["amd"]["answer"], "live");
    assert!(h.core.calls().is_empty());
}

#[tokio::test]
async fn without_amd_nothing_changes() {
    let mut h = Harness::new(campaign(""), &[member("A", &["answer_11"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60).await;
    assert!(h.amd.started.is_empty());
    let a = h.history(1).await;
    assert_eq!((a[0].class, a[0].talk_secs), (CauseClass::Ok, 11));
}

#[tokio::test]
async fn a_machine_is_hung_up_and_its_class_is_retry() {
    let mut h = Harness::new(with_amd(""), &[member("A", &["amd_MACHINE_40"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60).await;
    assert_eq!(h.kills, 1, "the machine is hung up");
    let a = h.history(1).await;
    assert_eq!(a[0].cause, MACHINE_HANGUP_CAUSE);
    assert_eq!(a[0].class, CauseClass::Retry);
    let note = note_of(&a);
    assert_eq!(note["amd"]["result"], "MACHINE");
    assert_eq!(note["amd"]["answer"], "machine");
    assert_eq!(note["amd"]["message_left"], false);
    assert!(h.amd.beep_detection.is_empty());
}

#[tokio::test]
async fn voicemail_drop_plays_after_the_beep_and_not_before() {
    let mut h = Harness::new(
        with_amd("machine = \"leave_message\"\nmachine_message = \"/var/lib/prompts/vm.wav\""),
        &[member("A", &["amd_MACHINE_60"])],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    // Answer at 3 s, decision at 5 s, beep at 8 s.
    h.run_for(7).await;
    assert_eq!(h.amd.beep_detection.len(), 1, "avmd starts on MACHINE");
    assert!(h.amd.messages.is_empty(), "no message before the beep");
    h.run_for(2).await;
    assert_eq!(h.amd.beeps.len(), 1);
    assert_eq!(h.amd.messages.len(), 1);
    assert_eq!(
        h.amd.messages[0].0, h.amd.beeps[0].0,
        "the message starts on the beep"
    );
    assert_eq!(h.amd.messages[0].2, "/var/lib/prompts/vm.wav");
    h.run_for(60).await;
    let a = h.history(1).await;
    assert_eq!(a[0].class, CauseClass::Ok, "a message left is ok: {a:?}");
    let note = note_of(&a);
    assert_eq!(note["amd"]["message_left"], true);
    assert!(note["amd"]["beep_at"].is_string());
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn without_a_beep_the_message_plays_after_machine_message_after_sec() {
    let mut h = Harness::new(
        with_amd(
            "machine = \"leave_message\"\nmachine_message = \"/m.wav\"\nmachine_message_after_sec = 10",
        ),
        &[member("A", &["amd_MACHINE_60"])],
    )
    .await;
    h.amd.no_beep = true;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(14).await;
    assert!(h.amd.messages.is_empty(), "still waiting for a beep");
    h.run_for(2).await;
    assert_eq!(h.amd.messages.len(), 1);
    assert_eq!(
        h.amd.messages[0].0 - h.amd.beep_detection[0].0,
        Duration::seconds(10)
    );
    h.run_for(60).await;
    assert_eq!(h.history(1).await[0].class, CauseClass::Ok);
}

#[tokio::test]
async fn a_machine_that_hangs_up_before_the_message_is_retried() {
    let mut h = Harness::new(
        with_amd("machine = \"leave_message\"\nmachine_message = \"/m.wav\""),
        &[member("A", &["amd_MACHINE_4"])],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60).await;
    assert!(h.amd.messages.is_empty());
    let a = h.history(1).await;
    assert_eq!(a[0].class, CauseClass::Retry);
    assert_eq!(note_of(&a)["amd"]["message_left"], false);
}

#[tokio::test]
async fn notsure_is_human_unless_configured_and_a_silent_detector_is_notsure() {
    let mut h = Harness::new(
        with_amd(""),
        &[
            member("A", &["amd_NOTSURE_30"]),
            member("B", &["amd_SILENT_30"]),
        ],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(90).await;
    let a = h.history(1).await;
    assert_eq!(a[0].class, CauseClass::Ok);
    assert_eq!(note_of(&a)["amd"]["answer"], "live");
    let b = h.history(2).await;
    let note = note_of(&b);
    assert_eq!(note["amd"]["result"], "NOTSURE");
    assert_eq!(note["amd"]["cause"], ENGINE_TIMEOUT_CAUSE);
    assert_eq!(
        note["amd"]["decision_ms"], 8000,
        "total_analysis_time + grace"
    );

    let mut h = Harness::new(
        with_amd("notsure = \"machine\""),
        &[member("A", &["amd_NOTSURE_30"])],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60).await;
    let a = h.history(1).await;
    assert_eq!(a[0].class, CauseClass::Retry);
    assert_eq!(note_of(&a)["amd"]["answer"], "machine");
}

#[tokio::test]
async fn a_machine_never_reaches_an_agent_and_a_human_does_after_the_decision() {
    let valid = campaign(&format!(
        "mode = \"progressive\"\n[agents]\nteam = \"{TEAM}\"\nagent_answer_timeout_sec = 5\nresult_timeout_sec = 0\n[amd]\n"
    ));
    let mut h = Harness::new(valid, &[member("A", &["amd_MACHINE_40"])]).await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60).await;
    assert!(
        h.agent_legs_dialled.is_empty(),
        "the agent's phone never rang for a machine"
    );
    assert_eq!(h.agent_releases, [AgentRelease::Unused]);
    let a = h.history(1).await;
    assert_ne!(a[0].cause, fsdialer::engine::core::ABANDONED_CAUSE);
    assert_eq!(a[0].class, CauseClass::Retry);
    assert!(note_of(&a).get("agent_call").is_none());

    let valid = campaign(&format!(
        "mode = \"progressive\"\n[agents]\nteam = \"{TEAM}\"\nagent_answer_timeout_sec = 5\nresult_timeout_sec = 0\n[amd]\n"
    ));
    let mut h = Harness::new(valid, &[member("A", &["amd_HUMAN_40"])]).await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(4).await;
    assert!(
        h.agent_legs_dialled.is_empty(),
        "answered at 3 s: the agent waits for the decision"
    );
    h.run_for(2).await;
    assert_eq!(
        h.agent_legs_dialled.len(),
        1,
        "HUMAN at 5 s: the agent is called"
    );
    h.run_for(60).await;
    let a = h.history(1).await;
    assert_eq!(a[0].class, CauseClass::Ok, "{a:?}");
    let note = note_of(&a);
    assert_eq!(note["amd"]["result"], "HUMAN");
    assert_eq!(note["agent_call"]["agent"], "a1");
}

#[tokio::test]
async fn a_member_who_hangs_up_during_the_analysis_is_no_abandoned_call() {
    let valid = campaign(&format!(
        "mode = \"progressive\"\n[agents]\nteam = \"{TEAM}\"\nagent_answer_timeout_sec = 5\nresult_timeout_sec = 0\n[amd]\n"
    ));
    let mut h = Harness::new(valid, &[member("A", &["amd_HUMAN_1"])]).await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60).await;
    let a = h.history(1).await;
    assert_ne!(a[0].cause, fsdialer::engine::core::ABANDONED_CAUSE, "{a:?}");
    assert_eq!(a[0].class, CauseClass::Retry);
    assert_eq!(a[0].talk_secs, 0);
    assert_eq!(h.agent_releases, [AgentRelease::Unused]);
    assert_eq!(note_of(&a)["amd"]["answer"], "undecided");
}

#[tokio::test]
async fn a_machine_that_hangs_up_during_the_message_has_no_message_left() {
    // Answer at 3 s, MACHINE at 5 s, beep and message at 8 s; the machine hangs up at 9 s, mid-message.
    let mut h = Harness::new(
        with_amd("machine = \"leave_message\"\nmachine_message = \"/m.wav\""),
        &[member("A", &["amd_MACHINE_6"])],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60).await;
    assert_eq!(h.amd.messages.len(), 1, "the message started");
    let a = h.history(1).await;
    assert_eq!(a[0].class, CauseClass::Retry, "{a:?}");
    assert_eq!(note_of(&a)["amd"]["message_left"], false);
    assert_eq!(h.core.amd_counts(CAMPAIGN).messages_left, 0);
}
