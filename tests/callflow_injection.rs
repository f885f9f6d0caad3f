//! Member data cannot add arguments or applications to what a callflow sends (SPEC §2, §7), checked on the wire
//! against the simulated switch: in structured fields hostile values refuse the step before anything is sent; in
//! `set` values they arrive as data, escaped against FreeSWITCH's `${…}` expansion.

mod callflow_support;

use callflow_support::{Harness, flow, member};
use fsdialer::engine::callflow::{Ended, StepErrorKind};
use serde_json::json;

/// Values a member record could carry to break out of its argument.
const HOSTILE: &[&str] = &[
    "1 2 3 x.wav",
    "a,b|c",
    "{x=y}",
    "${hostname}",
    "a\nb",
    "&bridge(loopback/operator/default)",
    "x' 'y",
    "${system touch /tmp/pwned}",
];

#[tokio::test]
async fn hostile_values_in_structured_fields_refuse_the_step_before_anything_is_sent() {
    let h = Harness::start().await;
    let steps = [
        ("playback", json!({"playback": {"file": "ivr/${v}.wav"}})),
        (
            "play_and_get_digits",
            json!({"play_and_get_digits": {"file": "ivr/${v}.wav", "var": "choice"}}),
        ),
        (
            "bridge",
            json!({"bridge": {"endpoint": "loopback/${v}/default"}}),
        ),
        ("transfer", json!({"transfer": {"extension": "${v}"}})),
        (
            "record_session",
            json!({"record_session": {"path": "/rec/${v}.wav"}}),
        ),
    ];
    let mut runs = Vec::new();
    let h = &h;
    for (app, step) in &steps {
        for value in HOSTILE {
            runs.push(async move {
                let mut call = h.call("plain").await;
                let f = flow(json!([{"answer": {}}, step.clone(), {"hangup": {}}]));
                let out = h
                    .run(&mut call, &f, &member("X", "plain", json!({"v": value})))
                    .await;
                (app, value, call.uuid, out)
            });
        }
    }
    for (app, value, uuid, out) in futures::future::join_all(runs).await {
        assert_eq!(out.ended, Ended::Error, "{app} {value:?}");
        let error = out.error.as_ref().unwrap();
        assert_eq!(error.kind, StepErrorKind::Refused, "{app} {value:?}");
        assert_eq!(error.path, format!("callflow[1].{app}"));
        assert!(
            error.message.starts_with("the value of ${v} has "),
            "{}",
            error.message
        );
        // The switch ran the answer and nothing else: the runner hung the call up itself.
        assert_eq!(h.apps(uuid), ["answer"], "{app} {value:?}");
        let done = h.wait_for(uuid, "CHANNEL_HANGUP_COMPLETE").await;
        assert_eq!(done.hangup_cause(), Some("NORMAL_CLEARING"));
    }
}

#[tokio::test]
async fn hostile_values_in_set_arrive_as_data_escaped_against_expansion() {
    let h = Harness::start().await;
    let mut runs = Vec::new();
    let h = &h;
    for value in HOSTILE.iter().filter(|v| !v.contains('\n')) {
        runs.push(async move {
            let mut call = h.call("plain").await;
            let f = flow(json!([{"set": {"note": "${v}", "who": "${name}"}}, {"hangup": {}}]));
            let ctx = member("O'Brien, {Jr}", "plain", json!({"v": value}));
            let out = h.run(&mut call, &f, &ctx).await;
            (value, call.uuid, out)
        });
    }
    for (value, uuid, out) in futures::future::join_all(runs).await {
        assert_eq!(out.error, None, "{value:?}");
        assert_eq!(
            out.ended,
            Ended::FlowHangup {
                cause: "NORMAL_CLEARING".into()
            }
        );
        assert_eq!(out.variable("note"), Some(*value));
        assert_eq!(out.variable("who"), Some("O'Brien, {Jr}"));
        let executed: Vec<_> = h
            .executed(uuid)
            .into_iter()
            .filter(|(a, _)| a != "park")
            .collect();
        assert_eq!(
            executed.len(),
            3,
            "one set per variable, then hangup: {executed:?}"
        );
        assert_eq!(executed[0].0, "set");
        assert_eq!(
            executed[1],
            ("set".to_string(), "who=O'Brien, {Jr}".to_string())
        );
        assert_eq!(
            executed[2],
            ("hangup".to_string(), "NORMAL_CLEARING".to_string())
        );
        // Whatever FreeSWITCH does with the argument, it is `note=` and the value, nothing before or after; a
        // value FreeSWITCH would expand is sent with its `$` escaped for both expansion passes of `set`.
        let sent = &executed[0].1;
        assert!(sent.starts_with("note="), "{sent}");
        if value.contains("${") {
            assert_eq!(
                sent,
                &format!("note={}", value.replace('$', "\\\\\\$")),
                "{value:?}"
            );
        } else {
            assert_eq!(sent, &format!("note={value}"));
        }
    }
}

#[tokio::test]
async fn a_line_break_in_a_set_value_refuses_the_step() {
    let h = Harness::start().await;
    let mut call = h.call("plain").await;
    let f = flow(json!([{"set": {"ok": "1", "note": "${v}"}}, {"hangup": {}}]));
    let out = h
        .run(
            &mut call,
            &f,
            &member("X", "plain", json!({"v": "a\nexecute-app-name: hangup"})),
        )
        .await;
    let error = out.error.unwrap();
    assert_eq!(
        (error.path.as_str(), error.kind),
        ("callflow[0].set", StepErrorKind::Refused)
    );
    assert!(error.message.contains("a line break"), "{}", error.message);
    assert_eq!(out.variables, [("ok".to_string(), "1".to_string())]);
    let sets: Vec<_> = h
        .executed(call.uuid)
        .into_iter()
        .filter(|(a, _)| a == "set")
        .collect();
    assert_eq!(sets, [("set".to_string(), "ok=1".to_string())]);
}

#[tokio::test]
async fn names_and_numbers_in_any_script_pass_where_letters_are_allowed() {
    let h = Harness::start().await;
    let mut call = h.call("plain").await;
    let f = flow(json!([
        {"playback": {"file": "cities/${city}.wav"}},
        {"record_session": {"path": "/rec/${number}_${city}.wav"}},
        {"hangup": {}}
    ]));
    let out = h
        .run(
            &mut call,
            &f,
            &member("X", "+380501234567", json!({"city": "Київ"})),
        )
        .await;
    assert_eq!(out.error, None);
    let ran = h.executed(call.uuid);
    assert!(
        ran.contains(&("playback".into(), "cities/Київ.wav".into())),
        "{ran:?}"
    );
    assert!(ran.contains(&(
        "record_session".into(),
        "/rec/+380501234567_Київ.wav".into()
    )));
}

#[tokio::test]
async fn member_data_cannot_climb_out_of_the_folders_and_paths_stay_in_the_configured_ones() {
    use fsdialer::engine::callflow::{MediaFolders, RunnerConfig};
    let h = Harness::start().await;
    let config = RunnerConfig {
        folders: MediaFolders {
            sounds: Some("/snd".into()),
            recordings: Some("/rec".into()),
        },
        ..RunnerConfig::default()
    };
    // (step, member value, expected start of the refusal), with and without configured folders.
    let cases = [
        (
            json!({"playback": {"file": "ivr/${v}.wav"}}),
            "../../../etc/passwd",
            "the value of ${v} makes a .. path",
        ),
        (
            json!({"record_session": {"path": "/rec/${v}.wav"}}),
            "../etc/cron.d/x",
            "the value of ${v} makes a .. path",
        ),
        (
            json!({"record_session": {"path": "${v}.wav"}}),
            "/etc/cron.d/x",
            "the value of ${v} starts with /",
        ),
        (
            json!({"play_and_get_digits": {"file": "${v}", "var": "choice"}}),
            "/etc/shadow",
            "the value of ${v} starts with /",
        ),
    ];
    for (step, value, refusal) in &cases {
        for cfg in [&RunnerConfig::default(), &config] {
            let mut call = h.call("plain").await;
            let f = flow(json!([{"answer": {}}, step.clone(), {"hangup": {}}]));
            let out = h
                .run_with(
                    cfg,
                    &mut call,
                    &f,
                    &member("X", "plain", json!({"v": value})),
                )
                .await;
            let error = out.error.as_ref().expect("refused");
            assert_eq!(error.kind, StepErrorKind::Refused, "{step} {value}");
            assert!(error.message.starts_with(refusal), "{}", error.message);
            assert_eq!(h.apps(call.uuid), ["answer"], "nothing else ran: {step}");
        }
    }
    // With folders configured, the author's own path must be inside them too; inside, the step runs.
    let mut call = h.call("plain").await;
    let f = flow(json!([{"record_session": {"path": "/tmp/${number}.wav"}}, {"hangup": {}}]));
    let out = h
        .run_with(
            &config,
            &mut call,
            &f,
            &member("X", "380501234567", json!({})),
        )
        .await;
    assert_eq!(
        out.error.as_ref().map(|e| e.message.as_str()),
        Some("the path \"/tmp/380501234567.wav\" is outside the recordings folder /rec")
    );
    let mut call = h.call("plain").await;
    let f = flow(json!([
        {"playback": {"file": "ivr/${v}.wav"}},
        {"record_session": {"path": "/rec/${number}/${v}.wav"}},
        {"hangup": {}}
    ]));
    let out = h
        .run_with(
            &config,
            &mut call,
            &f,
            &member("X", "380501234567", json!({"v": "a..b"})),
        )
        .await;
    assert_eq!(out.error, None);
    let ran = h.executed(call.uuid);
    assert!(
        ran.contains(&("playback".into(), "ivr/a..b.wav".into())),
        "{ran:?}"
    );
    assert!(
        ran.contains(&("record_session".into(), "/rec/380501234567/a..b.wav".into())),
        "{ran:?}"
    );
}
