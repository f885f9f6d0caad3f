//! The engine end to end: `engine::shell` driving real parts — the simulated FreeSWITCH over real ESL on a local
//! port, the member store in memory or on a private `redis-server` — with engine and switch on time sped up by the
//! same factor. Each test runs a campaign to its end and audits the store (`engine_support::audit`): every member
//! ended exactly once, every attempt completed exactly once, counters equal to the logs, SPEC §4 histories.
//!
//! Each test is bounded in real time and fails naming what it was waiting for. The tests of this binary run one at
//! a time (see `engine_support::serial`).

mod engine_support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use engine_support::audit::{Audit, Rules, audit};
use engine_support::proxy::CutProxy;
use engine_support::*;
use fsdialer::campaign::causes::CauseClass;
use fsdialer::engine::clock::Clock;
use fsdialer::engine::state::CampaignState;
use fsdialer::store::{LOST_ATTEMPT_CAUSE, MemberState, Store};

/// Longest real time one campaign may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn rules(campaign: &fsdialer::campaign::config::ValidCampaign) -> Rules {
    Rules {
        max_tries: campaign.config().max_tries,
        wait: Some(Duration::from_secs(
            campaign.config().wait_between_retries_sec,
        )),
    }
}

/// The kind of a member of `members/mix.json` (its external id is `<kind>-NN`).
fn kind(external_id: &str) -> &str {
    external_id.split('-').next().unwrap_or("")
}

use CauseClass::{Error as E, Minus as M, Ok as O, Retry as R};

/// The exact history SPEC §4 prescribes for each kind of `members/mix.json` (max_tries 3, min success 2 s):
/// (class, cause, number index) per attempt, and the member's end.
fn expected_history(kind: &str) -> (Vec<(CauseClass, &'static str, usize)>, &'static str, bool) {
    match kind {
        // Answered, 3 s of talk: success with the hangup cause.
        "ok" => (vec![(O, "NORMAL_CLEARING", 0)], "NORMAL_CLEARING", true),
        // Answered but 1 s < min_success_duration_sec: retried until MAX_TRY_COUNT.
        "short" => (vec![(R, "NORMAL_CLEARING", 0); 3], "MAX_TRY_COUNT", false),
        "busy" => (vec![(R, "USER_BUSY", 0); 3], "MAX_TRY_COUNT", false),
        // Rings 2 s, then NO_ANSWER (a retry cause).
        "noanswer" => (vec![(R, "NO_ANSWER", 0); 3], "MAX_TRY_COUNT", false),
        // An error cause on the only number ends the member with it.
        "bad" => (
            vec![(E, "UNALLOCATED_NUMBER", 0)],
            "UNALLOCATED_NUMBER",
            false,
        ),
        // An error on the first number moves to the next one at once.
        "fallback" => (
            vec![(E, "UNALLOCATED_NUMBER", 0), (O, "NORMAL_CLEARING", 1)],
            "NORMAL_CLEARING",
            true,
        ),
        // Errors on both numbers: the member ends with the last error's cause.
        "twoerrors" => (
            vec![
                (E, "UNALLOCATED_NUMBER", 0),
                (E, "INVALID_NUMBER_FORMAT", 1),
            ],
            "INVALID_NUMBER_FORMAT",
            false,
        ),
        // Minus does not count; the other number (same priority, not called yet) answers.
        "minus" => (
            vec![(M, "NORMAL_TEMPORARY_FAILURE", 0), (O, "NORMAL_CLEARING", 1)],
            "NORMAL_CLEARING",
            true,
        ),
        other => panic!("unknown member kind {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_engine_runs_a_known_outcome_mix_to_done_with_spec_histories() {
    let _serial = serial().await;
    const SPEED: f64 = 50.0;
    let sim = start_sim(&SimSpec::roomy(SPEED)).await;
    let store = Store::memory();
    let clock = Clock::scaled(SPEED);
    let campaign = validate(&campaign_config("mix"));
    let id = campaign.id().to_owned();
    let mut members = members("mix");
    // `expire` members only ever get minus results: they end when their expiry passes (20 s virtual).
    let expire_at = clock.now() + chrono::Duration::seconds(20);
    for m in &mut members {
        if kind(m.external_id.as_deref().unwrap_or("")) == "expire" {
            m.expire = Some(expire_at);
        }
    }
    store.add(&id, &members, clock.now()).await.unwrap();

    let node = Node::start(
        "node-1",
        StoreSpec::Shared(store.clone()),
        vec![endpoint("sim", sim.local_addr(), 20_000, 20_000)],
        clock,
        Duration::from_secs(60),
    )
    .await;
    node.run_campaign(&campaign).await;
    let end = wait_finished(&[&node], &store, &id, RUN_TIMEOUT).await;
    assert_eq!(end, CampaignState::Done);

    let a = audit(&store, &id, members.len(), rules(&campaign)).await;
    let mut kinds_seen = BTreeMap::new();
    for h in &a.histories {
        let k = kind(h.external_id()).to_owned();
        *kinds_seen.entry(k.clone()).or_insert(0) += 1;
        let ctx = format!("{}: {:#?}", h.external_id(), h.attempts);
        if k == "expire" {
            assert_eq!(h.member.end_cause.as_deref(), Some("MEMBER_EXPIRED"), "{ctx}");
            assert!(!h.attempts.is_empty(), "{ctx}");
            assert!(
                h.attempts
                    .iter()
                    .all(|a| a.class == M && a.cause == "NORMAL_TEMPORARY_FAILURE"),
                "{ctx}"
            );
            assert_eq!(h.member.tries, 0, "minus attempts are not counted: {ctx}");
            assert!(h.attempts.iter().all(|a| a.originate_at < expire_at), "{ctx}");
            continue;
        }
        let (outline, end_cause, success) = expected_history(&k);
        let got: Vec<(CauseClass, &str, usize)> = h
            .attempts
            .iter()
            .map(|a| (a.class, a.cause.as_str(), a.comm_index))
            .collect();
        assert_eq!(got, outline, "{ctx}");
        assert_eq!(h.member.end_cause.as_deref(), Some(end_cause), "{ctx}");
        assert_eq!(h.member.success, success, "{ctx}");
        // Answer and talk time come from the channel events.
        for a in &h.attempts {
            let answered = a.cause == "NORMAL_CLEARING";
            assert_eq!(a.answer_at.is_some(), answered, "{ctx}");
            if answered {
                let talk = if k == "short" { 1 } else { 3 };
                assert_eq!(a.talk_secs, talk, "{ctx}");
            }
            assert_eq!(a.node, "node-1");
        }
    }
    assert_eq!(kinds_seen.len(), 9, "{kinds_seen:?}");
    assert!(kinds_seen.values().all(|n| *n == 10), "{kinds_seen:?}");
    let c = &a.counts;
    assert_eq!(c.success, 30, "{c:?}");
    assert_eq!(c.ended_by_cause.get("MAX_TRY_COUNT"), Some(&30), "{c:?}");
    assert_eq!(c.ended_by_cause.get("MEMBER_EXPIRED"), Some(&10), "{c:?}");
    assert_eq!(c.lost, 0, "{c:?}");
    assert!(a.attempts_with_cause(LOST_ATTEMPT_CAUSE).is_empty());
    let history: Vec<_> = node
        .handle
        .history(&id)
        .iter()
        .map(|t| (t.from, t.to))
        .collect();
    assert_eq!(
        history,
        vec![
            (CampaignState::Idle, CampaignState::Running),
            (CampaignState::Running, CampaignState::Done)
        ]
    );
    node.stop().await;
    sim.shutdown().await;
}
