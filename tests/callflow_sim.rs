//! Callflows run over real ESL against the simulated switch: the sample survey and debt reminder with scripted
//! digits, transfer and bridge, the callee hanging up mid-flow, failing steps, and the flow's ending.

mod callflow_support;

use callflow_support::{Harness, flow, flow_fixture, member};
use fsdialer::engine::callflow::{DigitsInput, Ended, RunnerConfig, StepErrorKind};
use serde_json::json;
use std::time::Duration;

fn survey_member(number: &str) -> fsdialer::engine::callflow::CallContext {
    member("Олена", number, json!({"language": "uk"}))
}

#[tokio::test]
async fn survey_press_1_records_yes_and_success() {
    let h = Harness::start().await;
    let mut call = h.call("press_1").await;
    let out = h
        .run(
            &mut call,
            &flow_fixture("survey.json"),
            &survey_member("press_1"),
        )
        .await;
    assert_eq!(out.result, Some(true));
    assert_eq!(
        out.ended,
        Ended::FlowHangup {
            cause: "NORMAL_CLEARING".into()
        }
    );
    assert_eq!(out.error, None);
    assert_eq!(
        out.digits,
        [DigitsInput {
            path: "callflow[2].play_and_get_digits".into(),
            var: "answer".into(),
            digits: Some("1".into()),
            entered: "1".into(),
        }]
    );
    assert_eq!(out.variable("survey_answer"), Some("yes"));
    assert_eq!(
        out.paths(),
        [
            "callflow[0].answer",
            "callflow[1].playback",
            "callflow[2].play_and_get_digits",
            "callflow[3].switch",
            "callflow[3].switch.cases.1[0].set",
            "callflow[3].switch.cases.1[1].result",
            "callflow[3].switch.cases.1[2].playback",
            "callflow[4].hangup",
        ]
    );
    assert_eq!(out.steps[1].detail.as_deref(), Some("FILE PLAYED"));
    assert_eq!(out.steps[3].detail.as_deref(), Some("cases.1"));
    // What the switch ran, in order: the result also went onto the channel for the CDR.
    assert_eq!(
        h.executed(call.uuid)
            .into_iter()
            .filter(|(a, _)| a != "park")
            .collect::<Vec<_>>(),
        [
            ("answer".to_string(), String::new()),
            ("playback".into(), "survey/hello_uk.wav".into()),
            (
                "play_and_get_digits".into(),
                "1 1 3 5000 # survey/question_uk.wav survey/invalid_uk.wav answer ^[12]$".into()
            ),
            ("set".into(), "survey_answer=yes".into()),
            ("set".into(), "dlr_result=success".into()),
            ("playback".into(), "survey/thanks_uk.wav".into()),
            ("hangup".into(), "NORMAL_CLEARING".into()),
        ]
    );
    let done = h.wait_for(call.uuid, "CHANNEL_HANGUP_COMPLETE").await;
    assert_eq!(done.variable("dlr_result"), Some("success"));
    assert_eq!(done.variable("survey_answer"), Some("yes"));
}

#[tokio::test]
async fn survey_press_2_records_no() {
    let h = Harness::start().await;
    let mut call = h.call("press_2").await;
    let out = h
        .run(
            &mut call,
            &flow_fixture("survey.json"),
            &survey_member("press_2"),
        )
        .await;
    assert_eq!(out.result, Some(true));
    assert_eq!(out.variable("survey_answer"), Some("no"));
    assert_eq!(out.digits[0].digits.as_deref(), Some("2"));
    assert!(out.paths().contains(&"callflow[3].switch.cases.2[0].set"));
}

#[tokio::test]
async fn survey_without_input_takes_the_default_branch_and_fails() {
    let h = Harness::start().await;
    let mut call = h.call("silent").await;
    let out = h
        .run(
            &mut call,
            &flow_fixture("survey.json"),
            &survey_member("silent"),
        )
        .await;
    assert_eq!(out.result, Some(false));
    assert_eq!(out.digits[0].digits, None);
    assert_eq!(out.digits[0].entered, "");
    assert_eq!(out.variable("answer"), Some(""));
    assert_eq!(out.steps[3].detail.as_deref(), Some("default"));
    assert!(
        out.paths()
            .contains(&"callflow[3].switch.default[1].playback")
    );
    assert_eq!(
        out.ended,
        Ended::FlowHangup {
            cause: "NORMAL_CLEARING".into()
        }
    );
    let done = h.wait_for(call.uuid, "CHANNEL_HANGUP_COMPLETE").await;
    assert_eq!(done.variable("dlr_result"), Some("failure"));
}

#[tokio::test]
async fn survey_with_invalid_input_is_no_valid_answer() {
    let h = Harness::start().await;
    let mut call = h.call("press_7").await;
    let out = h
        .run(
            &mut call,
            &flow_fixture("survey.json"),
            &survey_member("press_7"),
        )
        .await;
    assert_eq!(out.result, Some(false));
    assert_eq!(out.digits[0].digits, None);
    assert_eq!(out.digits[0].entered, "7");
    assert_eq!(out.steps[3].detail.as_deref(), Some("default"));
    assert_eq!(out.variable("survey_answer"), None);
}

#[tokio::test]
async fn a_member_variable_cannot_pre_seed_the_answer() {
    let h = Harness::start().await;
    let mut call = h.call("silent").await;
    // The member's own `answer` variable says 1; the callee pressed nothing.
    let ctx = member("X", "silent", json!({"language": "uk", "answer": 1}));
    let out = h.run(&mut call, &flow_fixture("survey.json"), &ctx).await;
    assert_eq!(out.result, Some(false));
    assert_eq!(out.steps[3].detail.as_deref(), Some("default"));
}

fn debtor(number: &str, debt: f64) -> fsdialer::engine::callflow::CallContext {
    let mut ctx = member(
        "Петро Іваненко",
        number,
        json!({"debt": debt, "callback_slot": "evening"}),
    );
    // Campaign variables reach the flow as channel variables.
    ctx.channel
        .insert("operator_queue".into(), "operator".into());
    ctx
}

#[tokio::test]
async fn debt_reminder_large_debt_press_1_bridges_to_an_operator() {
    let h = Harness::start().await;
    let mut call = h.call("press_1").await;
    let out = h
        .run(
            &mut call,
            &flow_fixture("debt_reminder.json"),
            &debtor("press_1", 1500.0),
        )
        .await;
    assert_eq!(out.error, None);
    assert_eq!(out.result, Some(true));
    assert_eq!(
        out.ended,
        Ended::Bridged {
            endpoint: "loopback/operator/default".into()
        }
    );
    assert_eq!(out.steps[2].detail.as_deref(), Some("then"));
    assert_eq!(out.paths()[3], "callflow[2].if.then[0].playback");
    assert_eq!(out.variable("dlr_debt"), Some("1500.0"));
    assert_eq!(out.variable("dlr_greeting"), Some("Hello Петро Іваненко"));
    let ran = h.executed(call.uuid);
    let pos = |needle: (&str, &str)| ran.iter().position(|(a, d)| a == needle.0 && d == needle.1);
    let bridge = pos(("bridge", "loopback/operator/default")).expect("bridge ran");
    assert!(pos(("set", "hangup_after_bridge=true")).unwrap() < bridge);
    assert!(pos(("set", "continue_on_fail=true")).unwrap() < bridge);
    assert!(pos(("playback", "debt/large_debt.wav")).is_some());
    h.wait_for(call.uuid, "CHANNEL_BRIDGE").await;
    // The flow has ended but the call goes on, bridged: nothing hung it up.
    assert!(
        h.events(call.uuid)
            .iter()
            .all(|e| e.name() != Some("CHANNEL_HANGUP"))
    );
    h.client
        .api(&format!("uuid_kill {}", call.uuid))
        .await
        .unwrap();
    h.wait_for(call.uuid, "CHANNEL_HANGUP_COMPLETE").await;
}

#[tokio::test]
async fn debt_reminder_small_debt_press_2_transfers_to_the_callback_extension() {
    let h = Harness::start().await;
    let mut call = h.call("press_2").await;
    let out = h
        .run(
            &mut call,
            &flow_fixture("debt_reminder.json"),
            &debtor("press_2", 200.0),
        )
        .await;
    assert_eq!(out.error, None);
    assert_eq!(out.result, Some(true));
    assert_eq!(
        out.ended,
        Ended::Transferred {
            destination: "callback_evening XML default".into()
        }
    );
    assert_eq!(out.steps[2].detail.as_deref(), Some("else"));
    assert!(out.paths().contains(&"callflow[2].if.else[0].playback"));
    assert!(
        h.executed(call.uuid)
            .contains(&("transfer".into(), "callback_evening XML default".into()))
    );
    // The transferred call is not hung up by the flow.
    assert!(
        h.events(call.uuid)
            .iter()
            .all(|e| e.name() != Some("CHANNEL_HANGUP"))
    );
    h.client
        .api(&format!("uuid_kill {}", call.uuid))
        .await
        .unwrap();
}

#[tokio::test]
async fn debt_reminder_without_input_records_the_call_and_hangs_up() {
    let h = Harness::start().await;
    let mut call = h.call("silent").await;
    let out = h
        .run(
            &mut call,
            &flow_fixture("debt_reminder.json"),
            &debtor("silent", 5000.0),
        )
        .await;
    assert_eq!(out.result, Some(false));
    assert_eq!(
        out.ended,
        Ended::FlowHangup {
            cause: "NORMAL_CLEARING".into()
        }
    );
    let path = format!("/var/lib/fsdialer/no_input/{}.wav", call.uuid);
    assert!(
        h.executed(call.uuid)
            .contains(&("record_session".into(), path))
    );
}

#[tokio::test]
async fn a_bridge_that_does_not_connect_ends_the_flow_with_an_error_and_hangs_up() {
    let h = Harness::start().await;
    let mut call = h.call("press_1").await;
    let mut ctx = debtor("press_1", 1500.0);
    ctx.channel
        .insert("operator_queue".into(), "operator_busy".into());
    let out = h
        .run(&mut call, &flow_fixture("debt_reminder.json"), &ctx)
        .await;
    assert_eq!(out.ended, Ended::Error);
    assert_eq!(
        out.result,
        Some(true),
        "the result decided before the bridge stands"
    );
    let error = out.error.expect("error recorded");
    assert_eq!(error.path, "callflow[4].switch.cases.1[1].bridge");
    assert_eq!(error.kind, StepErrorKind::Failed);
    assert!(error.message.contains("USER_BUSY"), "{}", error.message);
    let done = h.wait_for(call.uuid, "CHANNEL_HANGUP_COMPLETE").await;
    assert_eq!(done.hangup_cause(), Some("NORMAL_CLEARING"));
}

#[tokio::test]
async fn the_callee_hanging_up_mid_flow_ends_it_at_once() {
    let h = Harness::start().await;
    let mut call = h.call("hangs_up_early").await;
    // A one-hour sleep: only the hangup can end this flow within the harness's guard.
    let f = flow(json!([
        {"answer": {}},
        {"sleep": {"ms": 3_600_000}},
        {"playback": {"file": "never.wav"}}
    ]));
    let out = h
        .run(&mut call, &f, &member("X", "hangs_up_early", json!({})))
        .await;
    assert_eq!(
        out.ended,
        Ended::CalleeHangup {
            cause: Some("NORMAL_CLEARING".into())
        }
    );
    assert_eq!(out.hangup_cause.as_deref(), Some("NORMAL_CLEARING"));
    assert_eq!(out.error, None);
    assert_eq!(out.applications(), ["answer", "sleep"]);
    assert_eq!(out.steps[1].detail, None, "the sleep never completed");
    assert!(!h.apps(call.uuid).contains(&"playback".to_string()));
}

#[tokio::test]
async fn a_missing_file_fails_the_step_and_the_call_is_hung_up() {
    let h = Harness::start().await;
    let mut call = h.call("plain").await;
    let f = flow(json!([
        {"answer": {}},
        {"playback": {"file": "/nonexistent/${language}/greeting.wav"}},
        {"result": {"success": true}},
        {"playback": {"file": "after.wav"}}
    ]));
    let out = h
        .run(
            &mut call,
            &f,
            &member("X", "plain", json!({"language": "uk"})),
        )
        .await;
    assert_eq!(out.ended, Ended::Error);
    assert_eq!(out.result, None);
    assert_eq!(out.applications(), ["answer", "playback"]);
    let error = out.error.unwrap();
    assert_eq!(error.path, "callflow[1].playback");
    assert_eq!(error.kind, StepErrorKind::Failed);
    assert_eq!(
        error.message,
        "playback /nonexistent/uk/greeting.wav: FILE NOT FOUND"
    );
    let done = h.wait_for(call.uuid, "CHANNEL_HANGUP_COMPLETE").await;
    assert_eq!(done.hangup_cause(), Some("NORMAL_CLEARING"));
    assert!(!h.apps(call.uuid).iter().any(|a| a == "set"));
}

#[tokio::test]
async fn a_flow_that_runs_off_its_end_hangs_the_call_up() {
    let h = Harness::start().await;
    let mut call = h.call("plain").await;
    let f = flow(json!([{"answer": {}}, {"playback": {"file": "silence_stream://500"}}]));
    let out = h.run(&mut call, &f, &member("X", "plain", json!({}))).await;
    assert_eq!(out.ended, Ended::EndOfFlow);
    assert_eq!(out.result, None);
    let done = h.wait_for(call.uuid, "CHANNEL_HANGUP_COMPLETE").await;
    assert_eq!(done.hangup_cause(), Some("NORMAL_CLEARING"));
}

#[tokio::test]
async fn a_channel_that_is_already_gone_ends_the_flow_as_a_hangup() {
    let h = Harness::start().await;
    let uuid = uuid::Uuid::new_v4();
    let mut call = callflow_support::Call {
        uuid,
        events: h.route(uuid, 8),
    };
    let f = flow(json!([{"answer": {}}, {"playback": {"file": "a.wav"}}]));
    let out = h.run(&mut call, &f, &member("X", "1", json!({}))).await;
    assert_eq!(out.ended, Ended::CalleeHangup { cause: None });
    assert_eq!(out.error, None);
    assert_eq!(out.applications(), ["answer"]);
}

#[tokio::test]
async fn a_step_without_completion_times_out_and_the_call_is_hung_up() {
    let h = Harness::start().await;
    let mut call = h.call("plain").await;
    // The engine forwards nothing to this runner (its route is replaced by one nobody feeds).
    let (_keep, events) = tokio::sync::mpsc::channel(1);
    call.events = events;
    let config = RunnerConfig {
        quick_timeout: Duration::from_millis(300),
        ..RunnerConfig::default()
    };
    let f = flow(json!([{"answer": {}}, {"hangup": {}}]));
    let out = h
        .run_with(&config, &mut call, &f, &member("X", "plain", json!({})))
        .await;
    assert_eq!(out.ended, Ended::Error);
    let error = out.error.unwrap();
    assert_eq!(
        (error.path.as_str(), error.kind),
        ("callflow[0].answer", StepErrorKind::Timeout)
    );
    assert!(
        error
            .message
            .starts_with("no CHANNEL_EXECUTE_COMPLETE within"),
        "{}",
        error.message
    );
    h.wait_for(call.uuid, "CHANNEL_HANGUP_COMPLETE").await;
}

#[tokio::test]
async fn events_that_stop_arriving_end_the_flow_with_a_connection_error() {
    let h = Harness::start().await;
    let mut call = h.call("plain").await;
    let (tx, events) = tokio::sync::mpsc::channel(1);
    drop(tx);
    call.events = events;
    let f = flow(json!([{"answer": {}}, {"hangup": {}}]));
    let out = h.run(&mut call, &f, &member("X", "plain", json!({}))).await;
    assert_eq!(out.ended, Ended::Error);
    assert_eq!(out.error.unwrap().kind, StepErrorKind::Connection);
    h.wait_for(call.uuid, "CHANNEL_HANGUP_COMPLETE").await;
}

fn demo_campaign_flow() -> fsdialer::campaign::callflow::Callflow {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/campaigns/demo.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let campaign = fsdialer::campaign::CampaignConfig::from_toml_str(&text)
        .unwrap()
        .validate()
        .unwrap();
    campaign
        .callflow()
        .expect("the demo campaign has a callflow")
        .clone()
}

#[tokio::test]
async fn the_demo_campaign_flow_confirms_on_1_and_hands_over_otherwise() {
    let h = Harness::start().await;
    let f = demo_campaign_flow();
    let mut call = h.call("press_1").await;
    let out = h
        .run(&mut call, &f, &member("A", "press_1", json!({})))
        .await;
    assert_eq!(
        (out.result, out.ended),
        (
            Some(true),
            Ended::FlowHangup {
                cause: "NORMAL_CLEARING".into()
            }
        )
    );
    let mut call = h.call("silent").await;
    let out = h
        .run(&mut call, &f, &member("B", "silent", json!({})))
        .await;
    assert_eq!(out.result, None);
    assert_eq!(
        out.ended,
        Ended::Transferred {
            destination: "operator XML default".into()
        }
    );
}

#[tokio::test]
async fn an_error_response_from_the_application_fails_the_step() {
    let h = Harness::start().await;
    let mut call = h.call("plain").await;
    // Something else keeps the channel busy: the simulated switch answers the flow's step with `-ERR busy`.
    let busy = fsdialer::esl::client::SendMsg::execute("sleep", "3600000");
    h.client
        .sendmsg(&call.uuid.to_string(), &busy)
        .await
        .unwrap();
    let f = flow(json!([{"set": {"a": "1"}}, {"hangup": {}}]));
    let out = h.run(&mut call, &f, &member("X", "plain", json!({}))).await;
    assert_eq!(out.ended, Ended::Error);
    let error = out.error.unwrap();
    assert_eq!(
        (error.path.as_str(), error.kind),
        ("callflow[0].set", StepErrorKind::Failed)
    );
    assert_eq!(error.message, "set a=1: -ERR busy");
    assert_eq!(out.variables, []);
    h.wait_for(call.uuid, "CHANNEL_HANGUP_COMPLETE").await;
}

#[tokio::test]
async fn a_member_variable_cannot_redirect_what_the_flow_reads_from_the_channel() {
    let h = Harness::start().await;
    let mut call = h.call("press_1").await;
    // The member's record names the busy queue; the flow reads the queue from the channel.
    let mut ctx = debtor("press_1", 1500.0);
    ctx.variables
        .insert("operator_queue".into(), json!("operator_busy"));
    let out = h
        .run(&mut call, &flow_fixture("debt_reminder.json"), &ctx)
        .await;
    assert_eq!(
        out.ended,
        Ended::Bridged {
            endpoint: "loopback/operator/default".into()
        }
    );
    h.client
        .api(&format!("uuid_kill {}", call.uuid))
        .await
        .unwrap();
}
