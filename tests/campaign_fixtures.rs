//! The sample campaigns under `fixtures/campaigns/` load, validate, and mean what their comments say.

use chrono::{DateTime, Utc};
use fsdialer::campaign::callflow::Step;
use fsdialer::campaign::{CampaignConfig, CauseClass, Schedule, ValidCampaign};
use std::path::Path;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/campaigns")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn demo() -> ValidCampaign {
    CampaignConfig::from_toml_str(&fixture("demo.toml"))
        .unwrap()
        .validate()
        .unwrap_or_else(|e| panic!("demo.toml: {e}"))
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn demo_campaign_validates() {
    let c = demo();
    assert_eq!(c.name(), "Demo: payment reminder");
    assert_eq!(c.config().limit, 50);
    assert_eq!(
        c.channel_variables(),
        [("campaign_kind".to_string(), "payment_reminder".to_string())]
    );
}

#[test]
fn demo_calendar_is_open_at_any_instant() {
    let c = demo();
    for at in [
        "2025-03-30T01:30:00Z",
        "2025-11-02T06:30:00Z",
        "2026-01-01T00:00:00Z",
    ] {
        assert_eq!(c.calendar().next_allowed(None, t(at)), Some(t(at)));
        assert!(
            c.calendar()
                .allowed_until(Some("America/New_York"), t(at))
                .unwrap()
                > t(at)
        );
    }
}

#[test]
fn demo_gateway_dials_numbers_through_loopback() {
    let c = demo();
    let route = c.gateways().route("0501234567").unwrap();
    assert_eq!(route.dial_string, "loopback/0501234567/default");
    let gw = c.gateways().get(route.index).unwrap();
    let pool = gw.caller_id_pool().unwrap();
    let none = std::collections::HashMap::new();
    let n = |s: &str| fsdialer::campaign::caller_id::CallerIdChoice::Number(s.into());
    assert_eq!(pool.select("0501234567", &none, 0), n("380441234567"));
    assert_eq!(pool.select("0501234567", &none, 0), n("380441234568"));
    assert!(c.gateways().route("050 123").is_err());
}

#[test]
fn demo_callflow_confirms_on_1_and_transfers_otherwise() {
    let c = demo();
    let steps = c.callflow().unwrap().steps();
    let apps: Vec<_> = steps.iter().map(Step::application).collect();
    assert_eq!(apps, ["answer", "playback", "play_and_get_digits", "if"]);
    let Step::PlayAndGetDigits(p) = &steps[2] else {
        unreachable!()
    };
    assert_eq!(p.var, "digits");
    let Step::If(branch) = &steps[3] else {
        unreachable!()
    };
    let pressed = |d: &'static str| move |name: &str| (name == "digits").then(|| d.to_string());
    let confirmed: Vec<_> = branch
        .branch(pressed("1"))
        .iter()
        .map(Step::application)
        .collect();
    assert_eq!(confirmed, ["playback", "result", "hangup"]);
    assert!(matches!(
        branch.branch(pressed("1"))[1],
        Step::Result { success: true }
    ));
    for other in ["2", ""] {
        let Step::Transfer { extension, .. } = &branch.branch(pressed(other))[0] else {
            panic!("{other:?} should transfer")
        };
        assert_eq!(extension.render(|_| None), "operator");
    }
}

#[test]
fn demo_survives_a_json_round_trip() {
    let c = demo();
    let json = serde_json::to_string_pretty(c.config()).unwrap();
    let again = CampaignConfig::from_json_str(&json)
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(again.config(), c.config());
}

#[test]
fn debt_reminder_json_validates_and_uses_office_hours() {
    let c = CampaignConfig::from_json_str(&fixture("debt_reminder.json"))
        .unwrap()
        .validate()
        .unwrap_or_else(|e| panic!("debt_reminder.json: {e}"));
    assert_eq!(c.id(), "571f2e2e6ea6478aba60581a");
    // Monday 2025-06-02 08:00 in Kyiv (05:00 UTC): opens at 09:00 Kyiv = 06:00 UTC.
    assert_eq!(
        c.calendar().next_allowed(None, t("2025-06-02T05:00:00Z")),
        Some(t("2025-06-02T06:00:00Z"))
    );
    // Independence Day (24 August, repeated yearly) is skipped: 2026-08-24 is a Monday.
    assert_eq!(
        c.calendar().next_allowed(None, t("2026-08-24T08:00:00Z")),
        Some(t("2026-08-25T06:00:00Z"))
    );
    // Mobile numbers go through the mobile gateway, others through pstn; the disabled backup is never used.
    assert_eq!(
        c.gateways().route("+380501234567").unwrap().dial_string,
        "sofia/gateway/mobile/0501234567"
    );
    assert_eq!(
        c.gateways().route("0441234567").unwrap().dial_string,
        "sofia/gateway/pstn/0441234567"
    );
    assert!(c.gateways().route("123").is_err());
    assert_eq!(
        c.effective_class("NORMAL_CLEARING", true, 4),
        CauseClass::Retry
    );
    assert_eq!(
        c.effective_class("NO_ROUTE_DESTINATION", false, 0),
        CauseClass::Error
    );
    // On billmsec: just under the minimum is too short even when the whole-second billsec reached it.
    let min_ms = c.config().min_success_duration_sec * 1000;
    assert_eq!(
        c.effective_class_ms("NORMAL_CLEARING", true, min_ms - 400),
        CauseClass::Retry
    );
    assert_eq!(
        c.effective_class_ms("NORMAL_CLEARING", true, min_ms),
        CauseClass::Ok
    );
}
