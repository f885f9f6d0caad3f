//! Tests of campaign validation: every field's rule, the agent, AMD, webhook and dialling-rule sections, and
//! the errors they name.

use super::*;
use crate::campaign::Schedule;
use serde_json::json;

fn minimal() -> Value {
    json!({
        "id": "571f2e2e6ea6478aba60581a",
        "name": "Debt reminder",
        "calendar": {"timezone": "Europe/Kyiv", "accept": [{"weekday": 1, "start_min": 540, "end_min": 1080}]},
        "gateways": [{"name": "gw1", "pattern": "^(\\d+)$", "dial_string": "sofia/gateway/gw1/$1"}]
    })
}

fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[test]
fn an_agent_mode_needs_a_team_and_refuses_a_callflow() {
    let e = invalid(with(minimal(), json!({"mode": "progressive"})));
    assert!(e.contains("agents: missing: mode progressive"), "{e}");
    let e = invalid(with(minimal(), json!({"agents": {"team": "sales"}})));
    assert!(e.contains("agents: applies to the agent modes only"), "{e}");
    let e = invalid(with(
        minimal(),
        json!({"mode": "preview", "agents": {"team": "sales"}, "callflow": [{"playback": {"file": "x.wav"}}]}),
    ));
    assert!(
        e.contains("callflow: a preview campaign joins answered calls to agents"),
        "{e}"
    );
    let e = invalid(with(
        minimal(),
        json!({"mode": "predictive", "originate_timeout_sec": 10, "agents": {"team": "sales"}}),
    ));
    assert!(
        e.contains("originate_timeout_sec: must be at least 15 in predictive mode"),
        "{e}"
    );
    let predictive = CampaignConfig::from_json_value(with(
        minimal(),
        json!({"mode": "predictive", "originate_timeout_sec": 15,
               "agents": {"team": "sales", "abandon_redial_after_sec": 259200,
                          "pacing": {"target_abandon_pct": 1.5}}}),
    ))
    .unwrap()
    .validate()
    .unwrap();
    assert_eq!(predictive.mode(), DialMode::Predictive);
    let agents = predictive.agents().unwrap();
    assert_eq!(agents.pacing().target_abandon_pct, 1.5);
    assert_eq!(agents.pacing().max_abandon_pct, 3.0);
    assert_eq!(agents.abandon_redial_after_sec, Some(259_200));
    let ok = CampaignConfig::from_json_value(with(
        minimal(),
        json!({"mode": "progressive", "agents": {"team": "sales", "wrap_up_sec": 10}}),
    ))
    .unwrap()
    .validate()
    .unwrap();
    assert_eq!(ok.mode(), DialMode::Progressive);
    assert_eq!(ok.agents().unwrap().wrap_up_sec, 10);
    // A broadcast campaign's document does not grow a `mode` field.
    let plain = CampaignConfig::from_json_value(minimal()).unwrap();
    assert!(serde_json::to_value(&plain).unwrap().get("mode").is_none());
}

fn invalid(v: Value) -> String {
    CampaignConfig::from_json_value(v)
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string()
}

#[test]
fn defaults_follow_the_spec() {
    let c = CampaignConfig::from_json_value(minimal()).unwrap();
    assert_eq!(c.limit, 10);
    assert_eq!(c.wait_between_retries_sec, 60);
    assert_eq!(c.max_tries, 5);
    assert_eq!(c.min_success_duration_sec, 0);
    assert_eq!(c.originate_timeout_sec, 30);
    assert_eq!(c.causes, CauseLists::default());
    assert_eq!(c.cps, None);
    assert_eq!(c.member_order, MemberOrder::PriorityFirst);
    assert_eq!(c.number_order, NumberOrder::ByPriority);
    assert!(!c.tries_per_number && !c.eternal);
    assert_eq!(c.lost_attempt, LostAttempt::Retry);
    let v = c.validate().unwrap();
    assert_eq!(v.id(), "571f2e2e6ea6478aba60581a");
    assert!(v.callflow().is_none());
    assert_eq!(v.lost_attempt_class(), CauseClass::Retry);
}

#[test]
fn every_parameter_reads_from_json() {
    let v = with(
        minimal(),
        json!({
            "limit": 3, "wait_between_retries_sec": 120, "max_tries": 2, "min_success_duration_sec": 10,
            "originate_timeout_sec": 25, "cps": 2.5, "member_order": "strict_circuit",
            "number_order": "top_down", "tries_per_number": true, "eternal": true,
            "variables": {"campaign": "may", "n": 3, "vip": false},
            "callflow": [{"answer": {}}], "lost_attempt": "minus",
            "causes": {"ok": ["NORMAL_CLEARING"], "retry": [], "error": ["USER_BUSY"], "minus": []}
        }),
    );
    let c = CampaignConfig::from_json_value(v)
        .unwrap()
        .validate()
        .unwrap();
    let cfg = c.config();
    assert_eq!(
        (cfg.limit, cfg.wait_between_retries_sec, cfg.max_tries),
        (3, 120, 2)
    );
    assert_eq!(
        (
            cfg.min_success_duration_sec,
            cfg.originate_timeout_sec,
            cfg.cps
        ),
        (10, 25, Some(2.5))
    );
    assert_eq!(
        (cfg.member_order, cfg.number_order),
        (MemberOrder::StrictCircuit, NumberOrder::TopDown)
    );
    assert!(cfg.tries_per_number && cfg.eternal);
    assert_eq!(c.lost_attempt_class(), CauseClass::Minus);
    assert_eq!(c.causes().classify("USER_BUSY"), CauseClass::Error);
    assert_eq!(
        c.channel_variables(),
        [
            ("campaign".into(), "may".into()),
            ("n".into(), "3".into()),
            ("vip".into(), "false".into())
        ]
    );
    assert_eq!(c.callflow().unwrap().steps().len(), 1);
}

#[test]
fn limit_below_one_is_refused() {
    assert_eq!(
        invalid(with(minimal(), json!({"limit": 0}))),
        "limit: must be >= 1"
    );
}

#[test]
fn unknown_timezone_is_refused_with_the_calendar_path() {
    let e = invalid(with(
        minimal(),
        json!({"calendar": {"timezone": "Europe/Kiev2", "accept": [{"weekday": 1, "start_min": 0, "end_min": 60}]}}),
    ));
    assert!(
        e.starts_with("calendar.timezone: unknown timezone \"Europe/Kiev2\""),
        "{e}"
    );
}

#[test]
fn invalid_gateway_regex_is_refused_with_its_index() {
    let e = invalid(with(
        minimal(),
        json!({"gateways": [
            {"name": "a", "pattern": "^1", "dial_string": "x/$0"},
            {"name": "b", "pattern": "^(1", "dial_string": "x/$0"}]}),
    ));
    assert!(e.starts_with("gateways[1].pattern: invalid regex: "), "{e}");
}

#[test]
fn unknown_cause_is_refused_with_its_place() {
    let e = invalid(with(
        minimal(),
        json!({"causes": {"error": ["UNALLOCATED_NUMBER", "NO_ROUTE", "GATEWAY_DOWN", "USER_BUSSY"]}}),
    ));
    assert_eq!(e, "causes.error[3]: unknown hangup cause \"USER_BUSSY\"");
}

#[test]
fn campaign_without_gateway_is_refused() {
    let mut v = minimal();
    v.as_object_mut().unwrap().remove("gateways");
    assert_eq!(
        invalid(v),
        "gateways: no gateway: a campaign needs at least one"
    );
}

#[test]
fn all_problems_are_reported_together_and_nothing_is_built() {
    let e = CampaignConfig::from_json_value(json!({
        "limit": 0, "max_tries": 0, "originate_timeout_sec": 0, "cps": -1,
        "variables": {"origination_uuid": "x", "dlr_member_id": "y", "bad name": 1, "obj": {}, "Origination_UUID": "z"},
        "member_channel_variables": ["language", "DLR_Member_Id"],
        "callflow": [{"playback": {}}]
    }))
    .unwrap()
    .validate()
    .unwrap_err();
    let paths: Vec<String> = e.problems().into_iter().map(|p| p.path).collect();
    for want in [
        "id",
        "name",
        "limit",
        "max_tries",
        "originate_timeout_sec",
        "cps",
        "variables.origination_uuid",
        "variables.dlr_member_id",
        "variables.Origination_UUID",
        "member_channel_variables[1]",
        "variables.bad name",
        "variables.obj",
        "calendar",
        "gateways",
        "callflow[0].playback",
    ] {
        assert!(paths.iter().any(|p| p == want), "no {want} in {paths:?}");
    }
}

#[test]
fn load_errors_name_the_field() {
    let e = CampaignConfig::from_json_str(
        r#"{"name":"x","gateways":[{"name":"a","pattern":"1","dial_string":"x","limit":"many"}]}"#,
    )
    .unwrap_err();
    let ConfigError::Syntax { path, message, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(path, "gateways[0].limit");
    assert!(message.contains("invalid type"), "{message}");
    let e =
        CampaignConfig::from_json_str(r#"{"name":"x","wait_between_retry_sec":5}"#).unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown field `wait_between_retry_sec`"),
        "{e}"
    );
    let e = CampaignConfig::from_toml_str("name = \"x\"\nlimit = \"ten\"\n").unwrap_err();
    let ConfigError::Syntax { path, format, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!((*format, path.as_str()), ("TOML", "limit"));
    assert!(CampaignConfig::from_toml_str("name = ").is_err());
    assert!(CampaignConfig::from_json_str("{} x").is_err());
}

#[test]
fn json_round_trip_keeps_the_document() {
    let c = CampaignConfig::from_json_value(with(
        minimal(),
        json!({"cps": 5.0, "callflow": [{"answer": {}}]}),
    ))
    .unwrap();
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(CampaignConfig::from_json_str(&text).unwrap(), c);
}

#[test]
fn ok_counts_only_when_answered_long_enough() {
    let mut c = CampaignConfig::from_json_value(minimal()).unwrap();
    c.min_success_duration_sec = 10;
    let v = c.validate().unwrap();
    assert_eq!(
        v.effective_class("NORMAL_CLEARING", true, 10),
        CauseClass::Ok
    );
    assert_eq!(
        v.effective_class("NORMAL_CLEARING", true, 9),
        CauseClass::Retry
    );
    assert_eq!(
        v.effective_class("NORMAL_CLEARING", false, 0),
        CauseClass::Retry
    );
    assert_eq!(v.effective_class("USER_BUSY", false, 0), CauseClass::Retry);
    assert_eq!(
        v.effective_class("UNALLOCATED_NUMBER", false, 0),
        CauseClass::Error
    );
    assert_eq!(
        v.effective_class("NORMAL_TEMPORARY_FAILURE", true, 100),
        CauseClass::Minus
    );
}

#[test]
fn with_zero_minimum_an_answered_ok_call_of_zero_seconds_is_ok() {
    let v = CampaignConfig::from_json_value(minimal())
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(
        v.effective_class("NORMAL_CLEARING", true, 0),
        CauseClass::Ok
    );
}

#[test]
fn calendar_is_queryable_as_a_schedule() {
    let v = CampaignConfig::from_json_value(minimal())
        .unwrap()
        .validate()
        .unwrap();
    let monday_noon_kyiv = "2025-06-02T09:00:00Z".parse().unwrap();
    assert_eq!(
        v.calendar().next_allowed(None, monday_noon_kyiv),
        Some(monday_noon_kyiv)
    );
}

#[test]
fn valid_campaign_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<ValidCampaign>();
}

#[test]
fn new_ids_look_like_webitel_ids_and_validate() {
    let id = new_campaign_id();
    assert_eq!(id.len(), 24);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(id, new_campaign_id());
    let v = with(minimal(), json!({"id": id}));
    assert!(
        CampaignConfig::from_json_value(v)
            .unwrap()
            .validate()
            .is_ok()
    );
    assert!(invalid(with(minimal(), json!({"id": "a b"}))).starts_with("id:"));
}
