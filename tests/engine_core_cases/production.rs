//! The core's production rules on virtual time: campaign edits with calls in flight, the gateway circuit breaker,
//! deadlines in every call state, a poison result, a lost switch, drain, adoption after a restart, deletion.

use super::core_support::*;
use chrono::Duration;
use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::member::MemberInput;
use fsdialer::engine::core::{BreakerState, CoreConfig, HangupRecord, Input, LOST_CAUSE};
use fsdialer::engine::state::CampaignState;
use fsdialer::store::{MemberId, MemberState};
use uuid::Uuid;

fn members(n: usize, number: &str) -> Vec<MemberInput> {
    (0..n)
        .map(|i| member(&format!("m{i}"), &[number]))
        .collect()
}

/// Every completion freed the slot of the gateway its call was placed on.
fn assert_slots_released_where_taken(h: &Harness) {
    for (attempt, gw) in &h.completed_on {
        assert_eq!(
            gw.as_deref(),
            h.originated_on.get(attempt).map(String::as_str),
            "attempt {attempt}"
        );
    }
}

#[tokio::test]
async fn removing_a_gateway_with_calls_in_flight_keeps_each_call_on_its_own_gateway() {
    let two = campaign_with_gateways(
        "",
        &format!("{}{}", gateway("first", "limit = 2"), gateway("second", "")),
    );
    let mut h = Harness::new(two, &members(5, "answer_100")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    assert_eq!(h.core.gateway_active(CAMPAIGN, "first"), 2);
    assert_eq!(h.core.gateway_active(CAMPAIGN, "second"), 3);
    // The edit keeps only the second gateway (what panicked before: positions shifted under calls in flight).
    h.edit(campaign_with_gateways("", &gateway("second", "")))
        .await;
    assert_eq!(
        h.core.gateway_active(CAMPAIGN, "first"),
        2,
        "calls keep their gateway"
    );
    h.run_for(3600).await;
    for id in 1..=5 {
        assert!(h.member(id).await.success, "member {id}");
    }
    assert_eq!(h.core.gateway_active(CAMPAIGN, "first"), 0);
    assert_eq!(h.core.gateway_active(CAMPAIGN, "second"), 0);
    assert_slots_released_where_taken(&h);
}

#[tokio::test]
async fn reordering_and_renaming_gateways_moves_no_slot() {
    let v1 = campaign_with_gateways(
        "",
        &format!(
            "{}{}",
            gateway("alpha", "limit = 1"),
            gateway("beta", "limit = 1")
        ),
    );
    let mut h = Harness::new(v1, &members(4, "answer_100")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    assert_eq!(h.core.gateway_active(CAMPAIGN, "alpha"), 1);
    assert_eq!(h.core.gateway_active(CAMPAIGN, "beta"), 1);
    // beta first, alpha renamed to gamma: the call on alpha stays alpha's; gamma is a new gateway with room.
    h.edit(campaign_with_gateways(
        "",
        &format!(
            "{}{}",
            gateway("beta", "limit = 1"),
            gateway("gamma", "limit = 1")
        ),
    ))
    .await;
    h.run_for(1).await;
    assert_eq!(h.core.gateway_active(CAMPAIGN, "alpha"), 1);
    assert_eq!(h.core.gateway_active(CAMPAIGN, "beta"), 1);
    assert_eq!(h.core.gateway_active(CAMPAIGN, "gamma"), 1);
    h.run_for(3600).await;
    for id in 1..=4 {
        assert!(h.member(id).await.success, "member {id}");
    }
    assert_slots_released_where_taken(&h);
    assert_eq!(h.core.gateway_active(CAMPAIGN, "alpha"), 0);
}

#[tokio::test]
async fn lowering_the_limit_below_the_calls_in_progress_places_nothing_until_under_it_and_kills_nothing()
 {
    let mut h = Harness::new(campaign(""), &members(20, "answer_100")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    assert_eq!(h.core.active(CAMPAIGN), 10);
    h.edit(campaign("limit = 3")).await;
    h.run_for(60).await;
    assert_eq!(h.core.active(CAMPAIGN), 10, "nothing killed, nothing added");
    assert_eq!(h.dialled.len(), 10);
    assert_eq!(h.kills, 0);
    // The ten end at ~103 s; then at most three at a time.
    h.run_for(40).await;
    assert!(h.core.active(CAMPAIGN) <= 3);
    h.run_for(3600).await;
    assert_eq!(h.dialled.len(), 20);
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Done));
}

#[tokio::test]
async fn making_a_campaign_eternal_in_flight_keeps_it_running_when_the_queue_empties() {
    let mut h = Harness::new(campaign(""), &members(2, "answer_20")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(5).await;
    h.edit(campaign("eternal = true")).await;
    h.run_for(600).await;
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Running));
    // And the other way round: no longer eternal, it gets done.
    h.edit(campaign("eternal = false")).await;
    h.run_for(60).await;
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Done));
}

#[tokio::test]
async fn an_expired_campaign_runs_again_when_its_calendar_end_is_extended() {
    let calendar = |end: &str| {
        format!(
            "[calendar]\ntimezone = \"UTC\"\nend = \"{end}\"\naccept = [{}]\n",
            (1..=7)
                .map(|d| format!("{{ weekday = {d}, start_min = 0, end_min = 1440 }}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut h = Harness::new(
        campaign(&calendar("2026-11-23T12:01:00Z")),
        &members(3, "busy"),
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(120).await;
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Expired));
    h.edit(campaign(&calendar("2026-11-30T00:00:00Z"))).await;
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Idle));
    h.store
        .add(CAMPAIGN, &[member("late", &["answer_20"])], h.now)
        .await
        .unwrap();
    h.input(Input::Run(CAMPAIGN.into())).await;
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Running));
    h.run_for(600).await;
    assert!(h.member(4).await.success, "it dials again");
}

#[tokio::test]
async fn calls_in_progress_are_judged_by_the_version_they_were_placed_with() {
    // v1: 10 s is enough for success; v2 (edited while the call is up) wants 60 s.
    let mut h = Harness::new(campaign(""), &[member("A", &["answer_20"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(5).await;
    h.edit(campaign("min_success_duration_sec = 60")).await;
    h.run_for(600).await;
    let m = h.member(1).await;
    assert!(m.success, "judged by v1");
    // A call placed after the edit is judged by v2.
    h.store
        .add(CAMPAIGN, &[member("B", &["answer_20"])], h.now)
        .await
        .unwrap();
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(100).await;
    let b = h.history(2).await;
    assert_eq!(b[0].class, CauseClass::Retry, "judged by v2: too short");
}

#[tokio::test]
async fn a_trunk_down_opens_the_breaker_costs_no_try_and_dialling_resumes_after() {
    let mut h = Harness::new(campaign(""), &members(20, "trunk_20")).await;
    h.trunk_down_until = Some(h.now + Duration::seconds(60));
    h.input(Input::Run(CAMPAIGN.into())).await;
    // The first calls are in flight before any failure comes back (limit 10, and a few more while the first
    // three failures arrive); three failures open the breaker.
    h.run_for(1).await;
    let burst = h.dialled.len();
    assert!(burst <= 13, "{burst} in the first burst");
    // From then on, only the probe each back-off lets through (at 2, 6, 14 and 30 s).
    h.run_for(29).await;
    let probes = h.dialled.len() - burst;
    assert!(
        (1..=4).contains(&probes),
        "{probes} calls after the breaker opened"
    );
    assert!(h.core.gateway_paused(CAMPAIGN, "loop", h.now));
    // What the API and the operator page show of it: open until an instant, or half-open with its probe out.
    let status = h.core.gateway_status(CAMPAIGN, h.now);
    assert_eq!(status.len(), 1, "{status:?}");
    let b = status[0].breaker;
    assert_eq!(status[0].name, "loop");
    assert!(b.consecutive_failures >= 3, "{b:?}");
    match b.state {
        BreakerState::Open => assert!(b.paused_until.is_some_and(|t| t > h.now), "{b:?}"),
        BreakerState::HalfOpen => assert!(b.probe_in_flight, "{b:?}"),
        BreakerState::Closed => panic!("a paused gateway shown closed: {b:?}"),
    }
    for id in 1..=20 {
        let m = h.member(id).await;
        assert_eq!(m.tries, 0, "member {id}");
        assert_ne!(m.state, MemberState::Ended, "member {id}");
        for a in h.history(id).await {
            assert_eq!(
                (a.cause.as_str(), a.class),
                ("GATEWAY_DOWN", CauseClass::Minus)
            );
        }
    }
    // The trunk comes back: a probe closes the breaker and everyone is called.
    h.run_for(3600).await;
    assert!(!h.core.gateway_paused(CAMPAIGN, "loop", h.now));
    let b = h.core.gateway_status(CAMPAIGN, h.now)[0].breaker;
    assert_eq!(
        (b.state, b.paused_until, b.consecutive_failures),
        (BreakerState::Closed, None, 0)
    );
    for id in 1..=20 {
        assert!(h.member(id).await.success, "member {id}");
    }
}

#[tokio::test]
async fn a_hangup_never_seen_on_an_answered_call_is_found_after_max_call_sec() {
    let cfg = CoreConfig {
        max_call: std::time::Duration::from_secs(600),
        ..CoreConfig::default()
    };
    let store = fsdialer::store::Store::memory();
    store
        .add(CAMPAIGN, &[member("A", &["answered_silent"])], start())
        .await
        .unwrap();
    let mut h = Harness::with_store(campaign(""), store, start(), cfg).await;
    h.exists_answer = Some(true);
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(700).await;
    assert_eq!(h.core.active(CAMPAIGN), 1, "still up: kept");
    assert!(h.history(1).await.is_empty());
    h.exists_answer = Some(false);
    // The next look, max_call_sec later, finds it gone.
    h.run_for(510).await;
    let hist = h.history(1).await;
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].cause, LOST_CAUSE);
    assert_eq!(hist[0].answer_at, Some(start() + Duration::seconds(3)));
}

#[tokio::test]
async fn uuid_exists_failures_are_retried_then_the_call_is_settled_as_lost() {
    let mut h = Harness::new(campaign(""), &[member("A", &["silent"])]).await;
    h.exists_answer = None;
    h.input(Input::Run(CAMPAIGN.into())).await;
    // originate_timeout 30 s + grace 30 s, then five failed checks 10 s apart.
    h.run_for(100).await;
    assert_eq!(h.core.active(CAMPAIGN), 0);
    assert_eq!(h.history(1).await[0].cause, LOST_CAUSE);
    assert_eq!(h.core.calls().len(), 0);
}

#[tokio::test]
async fn a_poison_result_is_given_up_after_bounded_retries_and_the_rest_go_through() {
    let mut h = Harness::new(campaign(""), &members(3, "answer_20")).await;
    h.poisoned.insert(MemberId(2));
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    assert!(h.member(1).await.success);
    assert!(h.member(3).await.success);
    assert_eq!(h.failed.len(), 1, "the poison result was given up once");
    assert_eq!(h.core.active(CAMPAIGN), 0, "its slot is free");
    assert_eq!(h.core.calls().len(), 0);
}

#[tokio::test]
async fn a_switch_lost_for_good_has_its_calls_settled_and_their_slots_freed() {
    let mut h = Harness::new(campaign(""), &members(4, "answer_1000")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    assert_eq!(h.core.active(CAMPAIGN), 4);
    h.pending.clear();
    h.input(Input::SwitchDown(0)).await;
    h.run_for(60).await;
    assert_eq!(h.core.active(CAMPAIGN), 4, "not yet: it may come back");
    h.run_for(70).await;
    assert_eq!(h.core.active(CAMPAIGN), 0);
    for id in 1..=4 {
        assert_eq!(h.history(id).await[0].cause, LOST_CAUSE);
    }
    assert_eq!(
        h.store.counts(CAMPAIGN).await.unwrap().lost,
        4,
        "counted as lost"
    );
}

#[tokio::test]
async fn drain_claims_nothing_more_and_ends_when_the_calls_in_progress_are_over() {
    let mut h = Harness::new(campaign("limit = 2"), &members(6, "answer_50")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    assert_eq!(h.dialled.len(), 2);
    h.input(Input::Drain).await;
    assert!(!h.core.is_drained());
    h.run_for(600).await;
    assert!(h.core.is_drained());
    assert_eq!(h.dialled.len(), 2, "no new call while draining");
    assert!(h.member(1).await.success);
    assert!(h.member(2).await.success);
    // The campaign is still "running" for the next process: draining is not a stop.
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Running));
}

/// A first process runs `n` members calling `number` for 10 s and dies; a second one with the same node id starts
/// over the same store. Returns the second and the claims the first held.
async fn restarted(n: usize, number: &str) -> (Harness, Vec<fsdialer::store::Claim>) {
    let mut first = Harness::new(campaign(""), &members(n, number)).await;
    first.input(Input::Run(CAMPAIGN.into())).await;
    first.run_for(10).await;
    let claims: Vec<_> = first
        .core
        .calls()
        .values()
        .map(|c| c.claim.clone())
        .collect();
    let second = Harness::with_store(
        campaign(""),
        first.store.clone(),
        first.now,
        CoreConfig::default(),
    )
    .await;
    (second, claims)
}

#[tokio::test]
async fn a_restarted_node_adopts_its_calls_still_up_and_records_their_real_outcome() {
    let (mut second, claims) = restarted(3, "answer_100").await;
    assert_eq!(claims.len(), 3);
    second.located = Some(0);
    second
        .input(Input::Adopt {
            campaign: CAMPAIGN.into(),
            claims: claims.clone(),
        })
        .await;
    assert_eq!(second.core.active(CAMPAIGN), 3);
    // The calls end normally on the switch; the new process hears it.
    second.run_for(90).await;
    for c in &claims {
        second
            .input(Input::Hangup {
                uuid: c.attempt_id,
                cause: "NORMAL_CLEARING".into(),
                answered: true,
                billsec: 97,
                talk_ms: 97_000,
            })
            .await;
    }
    for id in 1..=3 {
        let m = second.member(id).await;
        assert!(m.success, "member {id}");
        assert_eq!(m.attempts, 1);
        let hist = second.history(id).await;
        assert_eq!(hist.len(), 1);
        assert_eq!(hist[0].talk_secs, 97);
    }
}

#[tokio::test]
async fn an_adopted_call_on_no_switch_is_lost_once() {
    let (mut second, claims) = restarted(1, "answer_100").await;
    second.located = None;
    second
        .input(Input::Adopt {
            campaign: CAMPAIGN.into(),
            claims,
        })
        .await;
    assert_eq!(second.core.active(CAMPAIGN), 0);
    let hist = second.history(1).await;
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].cause, LOST_CAUSE);
}

#[tokio::test]
async fn calls_that_ended_while_their_node_was_down_are_recorded_from_the_switch_hangup_records() {
    let (mut second, claims) = restarted(3, "answer_100").await;
    assert_eq!(claims.len(), 3);
    // Two ended while the node was down and their hooks recorded it; the third left no record.
    let ended_at = second.now - chrono::Duration::seconds(5);
    let records = [
        HangupRecord {
            cause: "NORMAL_CLEARING".into(),
            answered_at: Some(ended_at - chrono::Duration::seconds(42)),
            ended_at,
            talk_secs: 42,
            talk_ms: 42_300,
        },
        HangupRecord {
            cause: "USER_BUSY".into(),
            answered_at: None,
            ended_at,
            talk_secs: 0,
            talk_ms: 0,
        },
    ];
    for (member, r) in [1u64, 2].into_iter().zip(records) {
        let c = claims
            .iter()
            .find(|c| c.member_id == MemberId(member))
            .unwrap();
        second.hangup_records.insert(c.attempt_id, r);
    }
    second.located = None;
    second
        .input(Input::Adopt {
            campaign: CAMPAIGN.into(),
            claims: claims.clone(),
        })
        .await;
    assert_eq!(second.core.active(CAMPAIGN), 0);
    let answered = second.history(1).await;
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].cause, "NORMAL_CLEARING");
    assert_eq!(answered[0].talk_secs, 42);
    assert_eq!(answered[0].hangup_at, Some(ended_at));
    assert!(
        second.member(1).await.success,
        "42 s ≥ min_success_duration"
    );
    let busy = second.history(2).await;
    assert_eq!(busy[0].cause, "USER_BUSY");
    assert_eq!(busy[0].talk_secs, 0);
    assert_eq!(
        second.history(3).await[0].cause,
        LOST_CAUSE,
        "no record: lost"
    );
    let counts = second.store.counts(CAMPAIGN).await.unwrap();
    assert_eq!(counts.lost, 1);
    // The records read are deleted on the switch once the results are in.
    assert!(second.hangup_records.is_empty());
    assert_eq!(second.forgotten_records.len(), 2);
}

#[tokio::test]
async fn expired_leases_are_not_recovered_while_a_switch_cannot_answer_for_its_calls() {
    let mut h = Harness::new(campaign(""), &members(2, "answer_1000")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(5).await;
    assert!(
        !h.recovers.is_empty(),
        "recovery runs while the switch is up"
    );
    h.input(Input::SwitchDown(0)).await;
    let down_at = h.now;
    h.recovers.clear();
    // Down for less than switch_lost_after (120 s): its calls may be up, so no lease is recovered as lost.
    h.run_for(100).await;
    assert!(h.recovers.is_empty(), "{:?}", h.recovers);
    // Lost for good: recovery resumes.
    h.run_for(60).await;
    assert!(
        h.recovers
            .iter()
            .all(|t| *t >= down_at + Duration::seconds(120))
    );
    assert!(!h.recovers.is_empty());
}

#[tokio::test]
async fn a_call_completed_normally_has_its_hangup_record_deleted_on_its_switch() {
    let mut h = Harness::new(campaign(""), &members(2, "answer_30")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(120).await;
    assert!(h.member(1).await.success && h.member(2).await.success);
    let mut dialled: Vec<Uuid> = h.dialled.iter().map(|(a, _)| *a).collect();
    let mut forgotten = h.forgotten_records.clone();
    dialled.sort();
    forgotten.sort();
    assert_eq!(forgotten, dialled);
}

#[tokio::test]
async fn a_deleted_campaign_is_forgotten_once_its_calls_are_over() {
    let mut h = Harness::new(campaign(""), &members(2, "answer_30")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(5).await;
    h.input(Input::Remove(CAMPAIGN.into())).await;
    assert!(
        h.core.campaign(CAMPAIGN).is_some(),
        "kept while calls are up"
    );
    h.run_for(600).await;
    assert!(h.core.campaign(CAMPAIGN).is_none());
    assert!(h.member(1).await.success);
}

/// A campaign named `id` (a copy of the harness's with another id).
fn campaign_named(id: &str) -> std::sync::Arc<fsdialer::campaign::config::ValidCampaign> {
    let mut cfg = campaign("limit = 100").config().clone();
    cfg.id = Some(id.into());
    std::sync::Arc::new(cfg.validate().unwrap())
}

fn fake_claims(n: u32, from: u64) -> fsdialer::store::ClaimBatch {
    fsdialer::store::ClaimBatch {
        claims: (0..n as u64)
            .map(|i| fsdialer::store::Claim {
                attempt_id: uuid::Uuid::new_v4(),
                member_id: MemberId(from + i),
                attempt_no: 1,
                comm_index: 0,
                number: "answer_100".into(),
                name: format!("m{i}"),
                timezone: None,
                variables: Default::default(),
                priority: 0,
                lease_until: start() + Duration::seconds(60),
            })
            .collect(),
        ended: vec![],
    }
}

/// What a core did while [`drive`] fed it.
#[derive(Default)]
struct Driven {
    /// Each originate: its campaign and instant.
    originates: Vec<(String, chrono::DateTime<chrono::Utc>)>,
    claims: u32,
    released: u32,
}

/// Runs the core from `t` for `secs` seconds in 100 ms steps, the store answering every claim at once with as
/// many members as asked (numbered from `from`); `pending` are actions still to carry out.
fn drive(
    core: &mut fsdialer::engine::core::Core,
    pending: &mut Vec<fsdialer::engine::core::Action>,
    from: &mut u64,
    t: &mut chrono::DateTime<chrono::Utc>,
    secs: i64,
) -> Driven {
    use fsdialer::engine::core::Action;
    let mut out = Driven::default();
    let end = *t + Duration::seconds(secs);
    while *t < end {
        while let Some(a) = pending.pop() {
            match a {
                Action::Claim { campaign, max } => {
                    out.claims += 1;
                    let batch = fake_claims(max, *from);
                    *from += u64::from(max);
                    pending.extend(core.handle(*t, Input::Claimed { campaign, batch }));
                }
                Action::Originate { campaign, .. } => out.originates.push((campaign, *t)),
                Action::Release { .. } => out.released += 1,
                _ => {}
            }
        }
        *t += Duration::milliseconds(100);
        pending.extend(core.poll(*t));
    }
    out
}

/// The most originates in any one-second window.
fn most_in_a_second(originates: &[(String, chrono::DateTime<chrono::Utc>)]) -> usize {
    originates
        .iter()
        .map(|(_, from)| {
            originates
                .iter()
                .filter(|(_, at)| *at >= *from && *at - *from < Duration::seconds(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn campaigns_on_one_node_share_the_switch_budget_and_none_claims_what_it_cannot_dial() {
    use fsdialer::engine::core::{Action, Core, SwitchConfig, SwitchLimits};
    let now = start();
    // The switch takes 10 new calls a second (sessions_per_second 11, paced at one less).
    let mut core = Core::new(
        CoreConfig::default(),
        vec![SwitchConfig {
            name: "fs".into(),
            limits: Some(SwitchLimits {
                max_sessions: 1000,
                sessions_per_second: 11,
            }),
            sessions_per_call: 1,
        }],
        now,
    );
    core.handle(now, Input::SwitchUp(0));
    for id in ["aaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb"] {
        core.handle(now, Input::Upsert(campaign_named(id)));
    }
    let mut pending: Vec<Action> = Vec::new();
    for id in ["aaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb"] {
        pending.extend(core.handle(now, Input::Run(id.into())));
    }
    // Ten seconds.
    let (mut from, mut t) = (1u64, now);
    let driven = drive(&mut core, &mut pending, &mut from, &mut t, 10);
    let count = |id: &str| driven.originates.iter().filter(|(c, _)| c == id).count();
    let a = count("aaaaaaaaaaaaaaaaaaaaaaaa");
    let b = count("bbbbbbbbbbbbbbbbbbbbbbbb");
    // The switch's budget (10 a second, plus its first burst), split about evenly.
    assert!(a + b <= 10 * 10 + 10, "{a} + {b}");
    assert!(
        a.abs_diff(b) <= (a + b) / 5,
        "a fair share each: {a} and {b}"
    );
    // Every claimed member was dialled: nothing claimed only to be given back.
    assert_eq!(driven.released, 0);
}

/// A switch whose limits the configuration leaves to the switch takes no call until the shell has read them
/// (`Input::SwitchLimits`), then is paced by them; limits read again (a reconnect) change the pacing.
#[test]
fn a_switch_takes_no_call_until_its_limits_are_read_and_then_is_paced_by_them() {
    use fsdialer::engine::core::{Action, Core, SwitchConfig, SwitchLimits};
    let now = start();
    let mut core = Core::new(
        CoreConfig::default(),
        vec![SwitchConfig {
            name: "fs".into(),
            limits: None,
            sessions_per_call: 1,
        }],
        now,
    );
    core.handle(now, Input::SwitchUp(0));
    core.handle(now, Input::Upsert(campaign_named(CAMPAIGN)));
    let mut pending: Vec<Action> = core.handle(now, Input::Run(CAMPAIGN.into()));
    let (mut from, mut t) = (1u64, now);
    let unknown = drive(&mut core, &mut pending, &mut from, &mut t, 3);
    assert!(
        unknown.originates.is_empty() && unknown.claims == 0,
        "limits unknown: {} originates, {} claims",
        unknown.originates.len(),
        unknown.claims
    );

    let limits = |sessions_per_second| SwitchLimits {
        max_sessions: 1000,
        sessions_per_second,
    };
    pending.extend(core.handle(
        t,
        Input::SwitchLimits {
            switch: 0,
            limits: limits(11),
        },
    ));
    let read = drive(&mut core, &mut pending, &mut from, &mut t, 5);
    assert_eq!(
        most_in_a_second(&read.originates),
        10,
        "sps 11: 10 a second"
    );
    assert!(read.originates.len() >= 40, "{}", read.originates.len());

    pending.extend(core.handle(
        t,
        Input::SwitchLimits {
            switch: 0,
            limits: limits(4),
        },
    ));
    // The new rate counts the starts of the last second: skip it, then 3 a second.
    drive(&mut core, &mut pending, &mut from, &mut t, 1);
    let lowered = drive(&mut core, &mut pending, &mut from, &mut t, 5);
    assert_eq!(
        most_in_a_second(&lowered.originates),
        3,
        "sps 4: 3 a second"
    );
    assert!(
        lowered.originates.len() >= 12,
        "{}",
        lowered.originates.len()
    );
    assert_eq!(read.released + lowered.released, 0);
}

#[tokio::test]
async fn a_reconnect_while_an_originate_is_in_flight_does_not_count_it_lost() {
    let mut h = Harness::new(campaign(""), &[member("A", &["answer_20"])]).await;
    h.exists_answer = Some(false);
    h.input(Input::Run(CAMPAIGN.into())).await;
    // The socket drops and comes back before the channel exists: uuid_exists says "no such channel", but the
    // originate's job has not answered yet, so that proves nothing.
    h.input(Input::SwitchDown(0)).await;
    h.input(Input::SwitchUp(0)).await;
    h.run_for(600).await;
    let hist = h.history(1).await;
    assert_eq!(hist.len(), 1, "{hist:?}");
    assert_eq!(hist[0].cause, "NORMAL_CLEARING");
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn a_claim_whose_reply_was_lost_is_released_uncounted_instead_of_waiting_for_its_lease() {
    let mut h = Harness::new(campaign(""), &members(3, "answer_20")).await;
    h.lose_claim_replies = 1;
    h.input(Input::Run(CAMPAIGN.into())).await;
    // The store claimed the three members, the reply never came: they are found and released at once (not
    // after the 60 s lease, which would count a lost try), then claimed again and called.
    h.run_for(5).await;
    assert_eq!(h.releases, 3);
    h.run_for(120).await;
    for id in 1..=3 {
        let m = h.member(id).await;
        assert!(m.success, "member {id}");
        let log = h.history(id).await;
        assert_eq!(
            log.len(),
            1,
            "member {id}: one attempt, nothing lost: {log:?}"
        );
    }
    assert_eq!(h.store.counts(CAMPAIGN).await.unwrap().lost, 0);
}

#[tokio::test]
async fn a_lost_claim_reply_with_the_store_still_down_holds_claims_until_the_orphans_are_found_and_released()
 {
    let mut h = Harness::new(campaign(""), &members(3, "answer_20")).await;
    h.lose_claim_replies = 1;
    // The store is still down when the engine looks for what the lost reply claimed: twice it cannot say.
    h.fail_orphan_checks = 2;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(2).await;
    assert_eq!(h.releases, 0, "nothing known yet");
    assert_eq!(
        h.core.active(CAMPAIGN),
        0,
        "no claim while the orphans are unknown"
    );
    // Asked again (1 s, then 2 s later): found and released uncounted, never left to the 60 s lease.
    h.run_for(5).await;
    assert_eq!(h.orphan_checks, 3);
    assert_eq!(h.releases, 3);
    h.run_for(120).await;
    for id in 1..=3 {
        assert!(h.member(id).await.success, "member {id}");
        let log = h.history(id).await;
        assert_eq!(
            log.len(),
            1,
            "member {id}: one attempt, nothing lost: {log:?}"
        );
    }
    assert_eq!(h.store.counts(CAMPAIGN).await.unwrap().lost, 0);
}

#[tokio::test]
async fn a_call_another_node_took_over_is_dropped_without_hanging_it_up() {
    let mut h = Harness::new(campaign(""), &members(2, "answer_100")).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    let mut calls: Vec<_> = h.core.calls().keys().copied().collect();
    calls.sort();
    h.input(Input::Revoked {
        hang_up: vec![],
        handed_over: vec![calls[0]],
    })
    .await;
    assert_eq!(
        h.kills, 0,
        "a live call another node follows is never hung up"
    );
    assert_eq!(h.core.active(CAMPAIGN), 1);
    // A member terminated through the API: its call is hung up.
    h.input(Input::Revoked {
        hang_up: vec![calls[1]],
        handed_over: vec![],
    })
    .await;
    assert_eq!(h.kills, 1);
    assert_eq!(h.core.active(CAMPAIGN), 0);
}

#[tokio::test]
async fn nodes_sharing_a_campaign_each_take_a_fair_share_of_its_limit() {
    let mut h = Harness::new(campaign(""), &members(30, "answer_100")).await;
    h.input(Input::Nodes(3)).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    // limit 10 over three live nodes: this one takes at most 4, leaving the rest to the others.
    assert_eq!(h.core.active(CAMPAIGN), 4);
    // One node left: its share comes back.
    h.input(Input::Nodes(2)).await;
    h.run_for(5).await;
    assert_eq!(h.core.active(CAMPAIGN), 5);
}

#[tokio::test]
async fn the_deadline_heap_follows_the_calls_in_flight_not_every_call_of_the_last_max_call() {
    // Every call arms several deadlines (ringing, answered: `max_call` = 4 h, completing); an ended call's entries
    // would stay until they came due, hours of calls at full rate.
    const N: usize = 3000;
    let mut h = Harness::new(
        campaign("limit = 50\nmin_success_duration_sec = 1"),
        &members(N, "answer_2"),
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    let c = h.store.counts(CAMPAIGN).await.unwrap();
    assert_eq!(c.ended, N as u64, "{c:?}");
    let entries = h.core.deadline_entries();
    assert!(
        entries <= 2 * 50 + 1024,
        "{entries} deadline entries left after {N} calls with none in flight"
    );
}
