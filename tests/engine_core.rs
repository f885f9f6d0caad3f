//! The engine core on virtual time: every rule of SPEC §4 with the exact member history it must leave.
//!
//! The core is pure, so these tests play the switch themselves: each dialled number names its outcome
//! (`answer_N`, `busy`, `reject_CAUSE`, `refused` = the switch refusing the session for capacity, `silent` = no
//! answer from the switch at all), and the harness feeds the core the events FreeSWITCH would send, at virtual
//! instants. The store is the real in-memory backend (the Redis one is held to identical behaviour by the store's
//! own property tests), so the member histories below are what production would record.

#[path = "engine_core_cases/agents.rs"]
mod agents;
#[path = "engine_core_cases/amd.rs"]
mod amd;
mod core_support;
#[path = "engine_core_cases/production.rs"]
mod production;

use chrono::Duration;
use core_support::*;
use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::member::MemberInput;
use fsdialer::engine::core::Input;
use fsdialer::engine::state::CampaignState;
use fsdialer::store::{AttemptRecord, MemberState};
use std::sync::Arc;

fn classes(h: &[AttemptRecord]) -> Vec<(String, CauseClass)> {
    h.iter().map(|a| (a.cause.clone(), a.class)).collect()
}

#[tokio::test]
async fn answered_long_enough_ends_the_member_with_success() {
    let mut h = Harness::new(campaign(""), &[member("A", &["answer_20"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    let m = h.member(1).await;
    assert_eq!(m.state, MemberState::Ended);
    assert!(m.success);
    assert_eq!(m.end_cause.as_deref(), Some("NORMAL_CLEARING"));
    assert_eq!(
        classes(&h.history(1).await),
        vec![("NORMAL_CLEARING".into(), CauseClass::Ok)]
    );
    assert_eq!(h.history(1).await[0].talk_secs, 20);
    // The duplicated hangup was not applied twice.
    assert_eq!(h.completes, 1);
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Done));
}

#[tokio::test]
async fn answered_but_shorter_than_min_success_duration_is_retried() {
    let mut h = Harness::new(campaign(""), &[member("A", &["answer_5"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(3600).await;
    let hist = h.history(1).await;
    assert_eq!(
        classes(&hist),
        vec![("NORMAL_CLEARING".into(), CauseClass::Retry); 3]
    );
    // Each retry waited wait_between_retries_sec after the previous hangup.
    for pair in hist.windows(2) {
        let gap = pair[1].originate_at - pair[0].hangup_at.unwrap();
        assert!(gap >= Duration::seconds(60), "gap {gap}");
    }
    let m = h.member(1).await;
    assert_eq!(m.end_cause.as_deref(), Some("MAX_TRY_COUNT"));
    assert!(!m.success);
}

#[tokio::test]
async fn retry_causes_count_until_max_try_count() {
    let mut h = Harness::new(campaign(""), &[member("A", &["busy"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(3600).await;
    assert_eq!(
        classes(&h.history(1).await),
        vec![("USER_BUSY".into(), CauseClass::Retry); 3]
    );
    let m = h.member(1).await;
    assert_eq!(m.tries, 3);
    assert_eq!(m.end_cause.as_deref(), Some("MAX_TRY_COUNT"));
}

#[tokio::test]
async fn error_on_one_number_moves_to_the_next_at_once() {
    let mut h = Harness::new(
        campaign(""),
        &[member("A", &["reject_UNALLOCATED_NUMBER", "answer_30"])],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    let hist = h.history(1).await;
    assert_eq!(
        classes(&hist),
        vec![
            ("UNALLOCATED_NUMBER".into(), CauseClass::Error),
            ("NORMAL_CLEARING".into(), CauseClass::Ok)
        ]
    );
    assert_eq!(hist[0].number, "reject_UNALLOCATED_NUMBER");
    assert_eq!(hist[1].number, "answer_30");
    // "Due again at once": no retry wait between the two.
    assert!(hist[1].originate_at - hist[0].hangup_at.unwrap() < Duration::seconds(5));
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn error_on_the_last_number_ends_the_member_with_that_cause() {
    let mut h = Harness::new(campaign(""), &[member("A", &["reject_UNALLOCATED_NUMBER"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    let m = h.member(1).await;
    assert_eq!(m.end_cause.as_deref(), Some("UNALLOCATED_NUMBER"));
    assert_eq!(h.history(1).await.len(), 1);
}

#[tokio::test]
async fn minus_does_not_count_toward_max_tries() {
    let mut h = Harness::new(
        campaign(""),
        &[member("A", &["reject_NORMAL_TEMPORARY_FAILURE"])],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60 * 10).await;
    let hist = h.history(1).await;
    assert!(hist.len() > 3, "minus attempts keep coming: {}", hist.len());
    assert!(hist.iter().all(|a| a.class == CauseClass::Minus));
    let m = h.member(1).await;
    assert_eq!(m.tries, 0);
    assert_eq!(m.state, MemberState::Waiting);
}

#[tokio::test]
async fn switch_refusing_a_session_for_capacity_is_minus_whatever_the_table_says() {
    // DESTINATION_OUT_OF_ORDER is a retry cause in the default table; refused without a channel it is ours.
    let mut h = Harness::new(campaign(""), &[member("A", &["refused"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(30).await;
    let hist = h.history(1).await;
    assert!(!hist.is_empty());
    assert!(
        hist.iter().all(|a| a.class == CauseClass::Minus),
        "{:?}",
        classes(&hist)
    );
    assert_eq!(h.member(1).await.tries, 0);
}

#[tokio::test]
async fn talk_time_is_judged_on_billmsec_not_whole_second_billsec() {
    // min_success_duration_sec = 10: billsec 10 but 9.6 s of talk is too short.
    let mut h = Harness::new(campaign(""), &[member("A", &["billed_10_talked_9600ms"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(30).await;
    assert_eq!(
        classes(&h.history(1).await)[0],
        ("NORMAL_CLEARING".into(), CauseClass::Retry)
    );
}

#[tokio::test]
async fn a_loopback_call_whose_b_leg_the_switch_throttled_is_minus() {
    let mut h = Harness::new(campaign(""), &[member("A", &["half_throttled"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(120).await;
    let hist = h.history(1).await;
    assert!(!hist.is_empty());
    assert!(
        hist.iter()
            .all(|a| a.class == CauseClass::Minus && a.cause == "NO_ANSWER"),
        "{:?}",
        classes(&hist)
    );
    assert_eq!(h.member(1).await.tries, 0);
}

#[test]
fn a_hangup_in_cs_init_is_a_call_that_never_got_routed() {
    use fsdialer::engine::shell::event_input;
    use fsdialer::esl::Event;
    let uuid = "5e2c48a9-2ded-50ad-86ca-6384a68de2d2";
    let hangup = |state: &str| {
        Event::from_pairs(
            [
                ("Event-Name", "CHANNEL_HANGUP"),
                ("Channel-State", state),
                ("Unique-ID", uuid),
                ("Hangup-Cause", "NO_ANSWER"),
            ],
            None,
        )
    };
    assert!(matches!(
        event_input(&hangup("CS_INIT")),
        Some(Input::NeverRouted { .. })
    ));
    assert!(event_input(&hangup("CS_CONSUME_MEDIA")).is_none());
}

#[tokio::test]
async fn originate_timeout_no_answer_is_a_retry() {
    let mut h = Harness::new(campaign(""), &[member("A", &["noanswer"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(3600).await;
    assert_eq!(
        classes(&h.history(1).await),
        vec![("NO_ANSWER".into(), CauseClass::Retry); 3]
    );
}

#[tokio::test]
async fn expired_member_is_never_called() {
    let mut expired = member("A", &["answer_20"]);
    expired.expire = Some("2026-11-23T11:00:00Z".parse().unwrap());
    let mut h = Harness::new(campaign(""), &[expired, member("B", &["answer_20"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    assert_eq!(
        h.member(1).await.end_cause.as_deref(),
        Some("MEMBER_EXPIRED")
    );
    assert!(h.history(1).await.is_empty());
    assert_eq!(h.dialled.len(), 1);
    assert_eq!(h.dialled[0].1, "answer_20");
}

#[tokio::test]
async fn closed_calendar_makes_no_call_and_the_campaign_sleeps() {
    // Open only on Sundays; the harness starts on a Monday.
    let valid = campaign(
        "[calendar]\ntimezone = \"UTC\"\naccept = [{ weekday = 7, start_min = 0, end_min = 1440 }]\n",
    );
    let mut h = Harness::new(valid, &[member("A", &["answer_20"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(3600).await;
    assert!(h.dialled.is_empty());
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Sleeping));
    assert_eq!(
        h.history,
        vec![
            (CampaignState::Idle, CampaignState::Running),
            (CampaignState::Running, CampaignState::Sleeping)
        ]
    );
    // Sunday comes: it wakes and calls.
    h.run_for(6 * 24 * 3600).await;
    assert_eq!(h.dialled.len(), 1);
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn higher_priority_members_are_called_first() {
    let mut low = member("low", &["answer_20"]);
    low.priority = 0;
    let mut high = member("high", &["answer_20"]);
    high.priority = 10;
    let valid = campaign("").as_ref().clone();
    let mut cfg = valid.config().clone();
    cfg.limit = 1;
    let valid = Arc::new(cfg.validate().unwrap());
    let mut h = Harness::new(valid, &[low, high]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    let m2 = h.history(2).await;
    let m1 = h.history(1).await;
    assert!(m2[0].originate_at < m1[0].originate_at);
}

#[tokio::test]
async fn campaign_limit_caps_calls_in_progress() {
    let members: Vec<MemberInput> = (0..30)
        .map(|i| member(&format!("m{i}"), &["answer_100"]))
        .collect();
    let mut h = Harness::new(campaign(""), &members).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    assert_eq!(h.core.active(CAMPAIGN), 10);
    assert_eq!(h.dialled.len(), 10);
    h.run_for(3600).await;
    assert_eq!(h.dialled.len(), 30);
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Done));
}

#[tokio::test]
async fn silent_originate_is_reconciled_and_counted_as_lost_attempt() {
    let mut h = Harness::new(
        campaign("lost_attempt = \"minus\""),
        &[member("A", &["silent"])],
    )
    .await;
    h.exists_answer = Some(false);
    h.input(Input::Run(CAMPAIGN.into())).await;
    // originate_timeout 30 s + 30 s grace: uuid_exists says no channel, but the originate's job is still
    // unanswered, so that proves nothing yet; another grace later it is overdue and counts as lost.
    h.run_for(61).await;
    assert!(
        h.history(1).await.is_empty(),
        "not lost while its originate may still be in progress"
    );
    h.run_for(30).await;
    let hist = h.history(1).await;
    assert_eq!(
        classes(&hist)[0],
        ("LOST_ATTEMPT".into(), CauseClass::Minus)
    );
}

#[tokio::test]
async fn stop_lets_calls_in_progress_finish() {
    let members: Vec<MemberInput> = (0..3)
        .map(|i| member(&format!("m{i}"), &["answer_50"]))
        .collect();
    let mut h = Harness::new(campaign(""), &members).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    h.input(Input::Stop(CAMPAIGN.into())).await;
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Stopping));
    h.run_for(600).await;
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Stopped));
    for id in 1..=3 {
        assert!(h.member(id).await.success);
    }
}
