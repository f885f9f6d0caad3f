//! The engine end to end: `engine::shell` driving real parts — the simulated FreeSWITCH over real ESL on a local
//! port, the member store in memory or on a private `redis-server` — with engine and switch on time sped up by the
//! same factor. Each test runs a campaign to its end and audits the store (`engine_support::audit`): every member
//! ended exactly once, every attempt completed exactly once, counters equal to the logs, SPEC §4 histories.
//!
//! Each test is bounded in real time and fails naming what it was waiting for. The tests of this binary run one at
//! a time (see `engine_support::serial`).

#[path = "engine_e2e_cases/amd.rs"]
mod amd;
#[path = "engine_e2e_cases/dialling_rules.rs"]
mod dialling_rules;
mod engine_support;
#[path = "engine_e2e_cases/webhook_state.rs"]
mod webhook_state;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use engine_support::audit::{Audit, Rules, audit};
use engine_support::observer::Observer;
use engine_support::proxy::CutProxy;
use engine_support::*;
use fsdialer::campaign::causes::CauseClass;
use fsdialer::engine::clock::Clock;
use fsdialer::engine::state::CampaignState;
use fsdialer::store::{LOST_ATTEMPT_CAUSE, MemberState, Store};

/// Longest real time one campaign may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The audit rules of a campaign with an always-open calendar run at `speed` by one node: a next attempt may
/// start up to 20 ms of real time before its due instant (one store round trip, see `Rules::skew`).
fn rules(campaign: &fsdialer::campaign::config::ValidCampaign, speed: f64) -> Rules {
    Rules {
        max_tries: campaign.config().max_tries,
        wait: Some(Duration::from_secs(
            campaign.config().wait_between_retries_sec,
        )),
        skew: Duration::from_millis(20).mul_f64(speed),
    }
}

/// The same with several nodes: a node's claim in flight may take a member another node's later claim made ready,
/// so the skew is that claim's whole latency under load (seen up to ~55 ms of real time on two busy cores).
fn rules_multi_node(campaign: &fsdialer::campaign::config::ValidCampaign, speed: f64) -> Rules {
    Rules {
        skew: Duration::from_millis(150).mul_f64(speed),
        ..rules(campaign, speed)
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
            vec![
                (M, "NORMAL_TEMPORARY_FAILURE", 0),
                (O, "NORMAL_CLEARING", 1),
            ],
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
    // `expire` members only ever get minus results: they end when their expiry passes (60 s virtual: 1.2 s of
    // real time, so a busy machine still calls them before it).
    let expire_at = clock.now() + chrono::Duration::seconds(60);
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

    let a = audit(&store, &id, members.len(), rules(&campaign, SPEED)).await;
    let mut kinds_seen = BTreeMap::new();
    for h in &a.histories {
        let k = kind(h.external_id()).to_owned();
        *kinds_seen.entry(k.clone()).or_insert(0) += 1;
        let ctx = format!("{}: {:#?}", h.external_id(), h.attempts);
        if k == "expire" {
            assert_eq!(
                h.member.end_cause.as_deref(),
                Some("MEMBER_EXPIRED"),
                "{ctx}"
            );
            assert!(!h.attempts.is_empty(), "{ctx}");
            assert!(
                h.attempts
                    .iter()
                    .all(|a| a.class == M && a.cause == "NORMAL_TEMPORARY_FAILURE"),
                "{ctx}"
            );
            assert_eq!(h.member.tries, 0, "minus attempts are not counted: {ctx}");
            assert!(
                h.attempts.iter().all(|a| a.originate_at < expire_at),
                "{ctx}"
            );
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
        .history(&id)
        .await
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

/// Attempts per node.
fn per_node(a: &Audit) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for at in a.attempts() {
        *m.entry(at.node.clone()).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_redis_and_two_switches_account_for_every_member_once() {
    let _serial = serial().await;
    const SPEED: f64 = 50.0;
    let redis = redis_server();
    let spec = SimSpec {
        scenario: Some(fixture("scenarios/population.toml")),
        ..SimSpec::roomy(SPEED)
    };
    let (sim_a, sim_b) = (start_sim(&spec).await, start_sim(&spec).await);
    let store = Store::open(&redis.url()).await.unwrap();
    // One clock for both nodes: leases and due instants are compared across nodes.
    let clock = Clock::scaled(SPEED);
    let campaign = validate(&campaign_config("population"));
    let id = campaign.id().to_owned();
    let members = members("population");
    store.add(&id, &members, clock.now()).await.unwrap();

    let switches = vec![
        endpoint("sim-a", sim_a.local_addr(), 20_000, 20_000),
        endpoint("sim-b", sim_b.local_addr(), 20_000, 20_000),
    ];
    let lease = Duration::from_secs(60);
    let a = Node::start(
        "node-a",
        StoreSpec::Url(redis.url()),
        switches.clone(),
        clock,
        lease,
    )
    .await;
    let b = Node::start(
        "node-b",
        StoreSpec::Url(redis.url()),
        switches,
        clock,
        lease,
    )
    .await;
    a.run_campaign(&campaign).await;
    b.run_campaign(&campaign).await;

    // Meanwhile, the campaign limit holds across both nodes.
    let sampler = {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            loop {
                let c = store.counts(&id).await.unwrap();
                peak = peak.max(c.active);
                if c.waiting + c.active == 0 {
                    return peak;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    for n in [&a, &b] {
        assert_eq!(
            wait_finished(&[n], &store, &id, RUN_TIMEOUT).await,
            CampaignState::Done
        );
    }
    let peak = sampler.await.unwrap();
    assert!(
        peak <= u64::from(campaign.config().limit) && peak > 1,
        "peak concurrent calls across nodes {peak}, limit {}",
        campaign.config().limit
    );

    let audit = audit(
        &store,
        &id,
        members.len(),
        rules_multi_node(&campaign, SPEED),
    )
    .await;
    let nodes = per_node(&audit);
    assert!(
        nodes.len() == 2 && nodes.values().all(|n| *n >= 20),
        "both nodes dial: {nodes:?}"
    );
    assert_eq!(audit.counts.lost, 0, "{:?}", audit.counts);
    assert!(audit.attempts_with_cause(LOST_ATTEMPT_CAUSE).is_empty());
    // The random profile produced every class; each member ended one of the SPEC ways.
    let c = &audit.counts;
    assert!(
        c.ok > 0 && c.retry > 0 && c.error > 0 && c.minus > 0,
        "{c:?}"
    );
    for cause in audit.counts.ended_by_cause.keys() {
        assert!(
            ["NORMAL_CLEARING", "MAX_TRY_COUNT", "UNALLOCATED_NUMBER"].contains(&cause.as_str()),
            "unexpected end cause {cause}: {c:?}"
        );
    }
    a.stop().await;
    b.stop().await;
    sim_a.shutdown().await;
    sim_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_engine_loses_nothing_and_its_calls_are_recovered_per_lost_attempt() {
    let _serial = serial().await;
    // The lease is 1 s of real time: long enough that the survivor's never expires on a busy machine.
    const SPEED: f64 = 40.0;
    let lease = Duration::from_secs(40);
    let redis = redis_server();
    let sim = start_sim(&SimSpec::roomy(SPEED)).await;
    // Ground truth from the switch: when each channel was created and hung up.
    let observer = Observer::start(sim.local_addr(), Clock::scaled(SPEED)).await;
    let store = Store::open(&redis.url()).await.unwrap();
    let clock = Clock::scaled(SPEED);
    // The gateway has a shared limit too: the victim's gateway slots must expire with its leases, or the
    // survivor could never dial through it again.
    let mut config = campaign_config("calls");
    config.gateways[0].limit = Some(config.limit);
    let campaign = validate(&config);
    let id = campaign.id().to_owned();
    let members: Vec<_> = members("calls").into_iter().take(30).collect();
    store.add(&id, &members, clock.now()).await.unwrap();
    let switches = vec![endpoint("sim", sim.local_addr(), 20_000, 20_000)];
    let mut victim = Node::start(
        "node-victim",
        StoreSpec::Url(redis.url()),
        switches.clone(),
        clock,
        lease,
    )
    .await;
    let survivor = Node::start(
        "node-survivor",
        StoreSpec::Url(redis.url()),
        switches,
        clock,
        lease,
    )
    .await;
    // The victim starts first, so it surely holds calls (a node whose call ends claims the freed slot at once,
    // so the one that starts first keeps most of the limit); the survivor runs beside it before the kill.
    victim.run_campaign(&campaign).await;
    wait_until(
        "the victim to have 5 calls in progress",
        Duration::from_secs(20),
        || async { victim.state(&id).await.is_some_and(|(_, n)| n >= 5) },
    )
    .await;
    survivor.run_campaign(&campaign).await;
    assert!(
        survivor
            .state(&id)
            .await
            .is_some_and(|(s, _)| s == CampaignState::Running)
    );
    assert!(victim.state(&id).await.is_some_and(|(_, n)| n >= 1));
    let killed_at = clock.now();
    victim.kill();
    // The victim's in-flight attempts, as the store sees them right after the kill.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let in_flight: HashSet<_> = store
        .list(
            &id,
            &fsdialer::store::ListQuery {
                state: Some(MemberState::Active),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .members
        .iter()
        .filter_map(|m| m.current_attempt)
        .collect();
    assert!(!in_flight.is_empty());

    let end = wait_finished(&[&survivor], &store, &id, RUN_TIMEOUT).await;
    assert_eq!(end, CampaignState::Done);
    let audit = audit(
        &store,
        &id,
        members.len(),
        rules_multi_node(&campaign, SPEED),
    )
    .await;
    let lost = audit.attempts_with_cause(LOST_ATTEMPT_CAUSE);
    assert!(!lost.is_empty(), "the victim had calls in progress");
    assert_eq!(audit.counts.lost, lost.len() as u64, "{:?}", audit.counts);
    let half_lease = chrono::Duration::from_std(lease / 2).unwrap();
    for l in &lost {
        assert_eq!(
            l.node, "node-victim",
            "only the victim's attempts are lost: {l:?}"
        );
        assert_eq!(l.class, CauseClass::Retry, "lost_attempt = retry: {l:?}");
        assert!(
            in_flight.contains(&l.attempt_id),
            "lost but not in flight at the kill: {l:?}"
        );
        assert!(
            l.completed_at > killed_at + half_lease,
            "recovered before its lease could expire: {l:?}"
        );
        // Counted lost only if its channel was gone when the survivor looked: a call still up is taken over,
        // never hung up and never counted lost (so the member is never in two calls at once either).
        let seen = observer.get(l.attempt_id);
        if seen.created.is_some() {
            let hangup = seen
                .hangup
                .unwrap_or_else(|| panic!("the lost call {} is still up", l.attempt_id));
            assert!(
                hangup <= l.completed_at,
                "the call {} was counted lost while up: hung up {hangup}, recovered {}",
                l.attempt_id,
                l.completed_at
            );
        }
    }
    // Every attempt the victim had in flight is accounted for: lost if its call was gone when its lease was
    // recovered, else taken over by the survivor and recorded with its real outcome, the end the switch saw.
    let by_id: BTreeMap<_, _> = audit.attempts().map(|a| (a.attempt_id, a)).collect();
    for att in &in_flight {
        let rec = by_id.get(att).unwrap_or_else(|| {
            panic!("attempt {att} in flight at the kill is missing from the logs")
        });
        if rec.node == "node-victim" && rec.cause != LOST_ATTEMPT_CAUSE {
            let seen = observer.get(*att);
            assert_eq!(
                seen.hangup_cause.as_deref(),
                Some(rec.cause.as_str()),
                "taken over: its real end {rec:?} {seen:?}"
            );
        }
    }
    // A lost attempt counted one try; the members were called again and answered.
    assert_eq!(
        audit.counts.success,
        members.len() as u64,
        "{:?}",
        audit.counts
    );
    let after_kill = audit
        .attempts()
        .filter(|a| a.originate_at > killed_at)
        .collect::<Vec<_>>();
    assert!(after_kill.iter().all(|a| a.node == "node-survivor"));
    survivor.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_esl_socket_cut_mid_run_is_reconciled_and_nothing_is_lost_or_counted_twice() {
    let _serial = serial().await;
    const SPEED: f64 = 50.0;
    let sim = start_sim(&SimSpec::roomy(SPEED)).await;
    let proxy = CutProxy::start(sim.local_addr()).await;
    let store = Store::memory();
    let clock = Clock::scaled(SPEED);
    let observer = Observer::start(sim.local_addr(), clock).await;
    let campaign = validate(&campaign_config("calls"));
    let id = campaign.id().to_owned();
    let members = members("calls");
    store.add(&id, &members, clock.now()).await.unwrap();
    let node = Node::start(
        "node-1",
        StoreSpec::Shared(store.clone()),
        vec![endpoint("sim", proxy.local_addr(), 20_000, 20_000)],
        clock,
        Duration::from_secs(60),
    )
    .await;
    node.run_campaign(&campaign).await;
    wait_until(
        "10 calls in progress and 5 completed",
        Duration::from_secs(20),
        || async {
            let active = node.state(&id).await.map_or(0, |(_, n)| n);
            let calls = store.counts(&id).await.unwrap().calls;
            active >= 10 && calls >= 5
        },
    )
    .await;
    // Cut for 10 s of virtual time: 2 s calls in progress end unseen; 90 s calls outlive the cut and the
    // engine's reconnect (its back-off runs on real time: up to ~1.5 s = 75 s virtual).
    let cut_at = clock.now();
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let restored_at = clock.now();
    proxy.restore();

    let end = wait_finished(&[&node], &store, &id, RUN_TIMEOUT).await;
    assert_eq!(end, CampaignState::Done);
    assert!(proxy.proxied() >= 2, "the engine reconnected");
    let audit = audit(&store, &id, members.len(), rules(&campaign, SPEED)).await;
    // Calls whose channel ended during the cut: found gone by uuid_exists after the reconnect, and recorded with
    // their real outcome, read from the hangup record their `api_hangup_hook` left on the switch.
    let recorded: Vec<_> = audit
        .attempts()
        .filter(|a| {
            a.number == "answer_2" && a.originate_at < cut_at && a.completed_at >= restored_at
        })
        .filter(|a| a.cause != LOST_ATTEMPT_CAUSE)
        .collect();
    assert!(
        !recorded.is_empty(),
        "2 s calls answered before the cut end unseen during it"
    );
    for a in &recorded {
        assert_eq!(a.cause, "NORMAL_CLEARING", "{a:?}");
        assert_eq!(a.talk_secs, 2, "{a:?}");
        assert!(a.answer_at.is_some(), "{a:?}");
        assert!(
            a.hangup_at
                .is_some_and(|h| h <= restored_at && a.answer_at.is_some_and(|t| t < h)),
            "{a:?}"
        );
    }
    // Only calls that never reached the switch (an originate written as the socket died) are counted once as
    // lost_attempt.
    let lost = audit.attempts_with_cause(LOST_ATTEMPT_CAUSE);
    for l in &lost {
        assert!(l.originate_at < restored_at, "{l:?}");
        assert!(
            l.completed_at >= restored_at,
            "reconciled after the reconnect: {l:?}"
        );
        assert_eq!(l.class, CauseClass::Retry, "{l:?}");
        // Ground truth from the switch: the channel never existed, or it had ended before the engine gave up.
        let seen = observer.get(l.attempt_id);
        assert!(
            seen.created.is_none() || seen.hangup.is_some_and(|h| h <= l.completed_at),
            "counted lost while its channel was up: {l:?} {seen:?}"
        );
    }
    // Every other attempt had a channel at the switch.
    for a in audit.attempts().filter(|a| a.cause != LOST_ATTEMPT_CAUSE) {
        assert!(observer.get(a.attempt_id).created.is_some(), "{a:?}");
    }
    // Every lost attempt counts in `lost`, and only those (no lease expired: the engine kept its attempts).
    assert_eq!(audit.counts.lost, lost.len() as u64, "{:?}", audit.counts);
    // Calls that outlived the cut were kept and completed normally from their events after the reconnect.
    let survived: Vec<_> = audit
        .attempts()
        .filter(|a| a.originate_at < cut_at && a.completed_at > restored_at)
        .filter(|a| a.class == CauseClass::Ok && a.number != "answer_2")
        .collect();
    assert!(!survived.is_empty(), "some 90 s calls span the cut");
    assert!(survived.iter().all(|a| a.talk_secs == 90), "{survived:?}");
    // Answered calls are recorded answered, even when the answer happened while the socket was cut (the
    // `early_10_answer_90` calls dialled in the 5 s before the cut).
    for a in audit.attempts().filter(|a| a.class == CauseClass::Ok) {
        assert!(
            a.answer_at.is_some(),
            "an ok attempt without its answer time: {a:?}"
        );
    }
    let ten = chrono::Duration::seconds(10);
    assert!(
        survived
            .iter()
            .any(|a| a.number == "early_10_answer_90" && a.originate_at + ten > cut_at),
        "a call answered during the cut completed ok: {survived:#?}"
    );
    assert_eq!(
        audit.counts.success,
        members.len() as u64,
        "{:?}",
        audit.counts
    );
    node.stop().await;
    drop(proxy);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_capacity_refusals_are_minus_and_the_campaign_still_completes() {
    let _serial = serial().await;
    const SPEED: f64 = 50.0;
    // The switch lets ~3 loopback calls (2 sessions each) through per second; the engine is told 1,000.
    let sim = start_sim(&SimSpec {
        sessions_per_second: 8,
        ..SimSpec::roomy(SPEED)
    })
    .await;
    let store = Store::memory();
    let clock = Clock::scaled(SPEED);
    let campaign = validate(&campaign_config("calls"));
    let id = campaign.id().to_owned();
    let members = members("calls");
    store.add(&id, &members, clock.now()).await.unwrap();
    let node = Node::start(
        "node-1",
        StoreSpec::Shared(store.clone()),
        vec![endpoint("sim", sim.local_addr(), 20_000, 1000)],
        clock,
        Duration::from_secs(60),
    )
    .await;
    node.run_campaign(&campaign).await;
    let end = wait_finished(&[&node], &store, &id, RUN_TIMEOUT).await;
    assert_eq!(end, CampaignState::Done);
    let audit = audit(&store, &id, members.len(), rules(&campaign, SPEED)).await;
    let refused = audit.attempts_with_cause("DESTINATION_OUT_OF_ORDER");
    assert!(!refused.is_empty(), "the switch refused sessions");
    for r in &refused {
        assert_eq!(
            r.class,
            CauseClass::Minus,
            "a capacity refusal is ours: minus {r:?}"
        );
        assert!(r.answer_at.is_none() && r.talk_secs == 0, "{r:?}");
    }
    // A loopback call whose a-leg got a session and whose b-leg did not waits in CS_INIT until originate_timeout
    // and fails NO_ANSWER (real FreeSWITCH, capture burst_sps): ours as well, never the callee's.
    let half_throttled = audit.attempts_with_cause("NO_ANSWER");
    for r in &half_throttled {
        assert_eq!(
            r.class,
            CauseClass::Minus,
            "a half-throttled call is ours: {r:?}"
        );
        assert!(r.answer_at.is_none() && r.talk_secs == 0, "{r:?}");
    }
    assert_eq!(
        audit.counts.minus,
        (refused.len() + half_throttled.len()) as u64,
        "{:?}",
        audit.counts
    );
    // Minus never counts: every member still answered, with no counted try.
    assert_eq!(
        audit.counts.success,
        members.len() as u64,
        "{:?}",
        audit.counts
    );
    assert!(audit.histories.iter().all(|h| h.member.tries == 0));
    node.stop().await;
    sim.shutdown().await;
}

/// A calendar open all week in UTC, with the given holidays.
fn calendar_with(
    except: Vec<fsdialer::campaign::calendar::ExceptDate>,
    start: Option<chrono::DateTime<Utc>>,
) -> fsdialer::campaign::calendar::Calendar {
    let mut c = fsdialer::campaign::calendar::Calendar::always_open("UTC");
    c.except = except;
    c.start = start;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_whose_calendar_is_closed_sleeps_makes_no_calls_and_records_it() {
    let _serial = serial().await;
    const SPEED: f64 = 50.0;
    let sim = start_sim(&SimSpec::roomy(SPEED)).await;
    let store = Store::memory();
    let clock = Clock::scaled(SPEED);
    // Today and tomorrow (UTC) are holidays.
    let today = clock.now().date_naive();
    let holidays = [today, today.succ_opt().unwrap()]
        .into_iter()
        .map(|date| fsdialer::campaign::calendar::ExceptDate {
            date,
            repeat_yearly: false,
        })
        .collect();
    let mut config = campaign_config("calls");
    config.calendar = Some(calendar_with(holidays, None));
    let campaign = validate(&config);
    let id = campaign.id().to_owned();
    let members = members("calls");
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
    wait_until("the campaign to sleep", Duration::from_secs(10), || async {
        node.state(&id)
            .await
            .is_some_and(|(s, _)| s == CampaignState::Sleeping)
    })
    .await;
    // 50 s of virtual time: more than one sleeping look at the queue.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        node.state(&id).await,
        Some((CampaignState::Sleeping, 0)),
        "still sleeping, no call in progress"
    );
    let c = store.counts(&id).await.unwrap();
    assert_eq!(
        (c.calls, c.waiting, c.active),
        (0, members.len() as u64, 0),
        "no call made: {c:?}"
    );
    // Members wait for the first allowed instant: midnight after the holidays.
    let reopen = today
        .succ_opt()
        .and_then(|d| d.succ_opt())
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let m = store
        .get(&id, fsdialer::store::MemberId(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.next_due, Some(reopen), "{m:?}");

    node.handle.stop(&id).await.unwrap();
    wait_until("the campaign to stop", Duration::from_secs(10), || async {
        node.state(&id)
            .await
            .is_some_and(|(s, _)| s == CampaignState::Stopped)
    })
    .await;
    let history: Vec<_> = node
        .history(&id)
        .await
        .into_iter()
        .map(|t| (t.from, t.to, t.reason))
        .collect();
    assert_eq!(
        history,
        vec![
            (
                CampaignState::Idle,
                CampaignState::Running,
                "run requested".to_string()
            ),
            (
                CampaignState::Running,
                CampaignState::Sleeping,
                "outside every calendar window".to_string()
            ),
            (
                CampaignState::Sleeping,
                CampaignState::Stopped,
                "stop requested".to_string()
            ),
        ]
    );
    assert_eq!(store.counts(&id).await.unwrap().calls, 0);
    node.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_campaign_wakes_when_its_calendar_starts_and_runs_to_done() {
    let _serial = serial().await;
    const SPEED: f64 = 50.0;
    let sim = start_sim(&SimSpec::roomy(SPEED)).await;
    let store = Store::memory();
    let clock = Clock::scaled(SPEED);
    // The calendar starts in 30 s of virtual time (0.6 s real).
    let start = clock.now() + chrono::Duration::seconds(30);
    let mut config = campaign_config("calls");
    config.calendar = Some(calendar_with(Vec::new(), Some(start)));
    let campaign = validate(&config);
    let id = campaign.id().to_owned();
    let members: Vec<_> = members("calls").into_iter().take(20).collect();
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
    let audit = audit(&store, &id, members.len(), rules(&campaign, SPEED)).await;
    assert!(
        audit.attempts().all(|a| a.originate_at >= start),
        "no call before the calendar start"
    );
    assert_eq!(audit.counts.success, members.len() as u64);
    let history: Vec<_> = node
        .history(&id)
        .await
        .into_iter()
        .map(|t| (t.from, t.to, t.reason, t.at))
        .collect();
    let path: Vec<_> = history.iter().map(|h| (h.0, h.1)).collect();
    assert_eq!(
        path,
        vec![
            (CampaignState::Idle, CampaignState::Running),
            (CampaignState::Running, CampaignState::Sleeping),
            (CampaignState::Sleeping, CampaignState::Running),
            (CampaignState::Running, CampaignState::Done),
        ],
        "{history:?}"
    );
    assert_eq!(history[2].2, "calendar window open");
    assert!(history[1].3 < start && history[2].3 >= start, "{history:?}");
    node.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_calls_in_progress_finish_places_no_new_call_and_run_resumes_to_done() {
    let _serial = serial().await;
    const SPEED: f64 = 50.0;
    let sim = start_sim(&SimSpec::roomy(SPEED)).await;
    let store = Store::memory();
    let clock = Clock::scaled(SPEED);
    let campaign = validate(&campaign_config("calls"));
    let id = campaign.id().to_owned();
    let members = members("calls");
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
    wait_until("10 calls in progress", Duration::from_secs(20), || async {
        node.state(&id).await.is_some_and(|(_, n)| n >= 10)
    })
    .await;
    node.handle.stop(&id).await.unwrap();
    let (state, in_progress) = node.state(&id).await.unwrap();
    assert_eq!(state, CampaignState::Stopping);
    assert!(in_progress > 0);
    wait_until("the campaign to stop", RUN_TIMEOUT, || async {
        node.state(&id).await == Some((CampaignState::Stopped, 0))
    })
    .await;
    let stopping_at = node
        .history(&id)
        .await
        .iter()
        .find(|t| t.to == CampaignState::Stopping)
        .expect("stopping recorded")
        .at;
    let stopped = store.counts(&id).await.unwrap();
    assert_eq!(stopped.active, 0, "{stopped:?}");
    assert!(
        stopped.waiting > 0,
        "members are left for later: {stopped:?}"
    );
    // Calls in progress at the stop finished normally; nothing was dialled after it.
    let mut finished_after_stop = 0;
    for mid in 1..=members.len() as u64 {
        for a in store
            .attempts(&id, fsdialer::store::MemberId(mid))
            .await
            .unwrap()
        {
            assert!(
                a.originate_at < stopping_at,
                "dialled after the stop: {a:?}"
            );
            assert_ne!(a.cause, LOST_ATTEMPT_CAUSE, "{a:?}");
            if a.completed_at > stopping_at {
                finished_after_stop += 1;
                assert_eq!(a.class, CauseClass::Ok, "{a:?}");
            }
        }
    }
    assert!(finished_after_stop > 0);
    // Stopped means stopped: 30 s of virtual time later, still no call.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.counts(&id).await.unwrap(), stopped);

    node.handle.run(&id).await.unwrap();
    assert_eq!(
        wait_finished(&[&node], &store, &id, RUN_TIMEOUT).await,
        CampaignState::Done
    );
    let audit = audit(&store, &id, members.len(), rules(&campaign, SPEED)).await;
    assert_eq!(audit.counts.success, members.len() as u64);
    let path: Vec<_> = node
        .history(&id)
        .await
        .into_iter()
        .map(|t| (t.from, t.to, t.reason))
        .collect();
    use CampaignState::*;
    assert_eq!(
        path,
        vec![
            (Idle, Running, "run requested".into()),
            (
                Running,
                Stopping,
                "stop requested; calls in progress finish".into()
            ),
            (Stopping, Stopped, "last call finished".into()),
            (Stopped, Running, "run requested".into()),
            (Running, Done, "no member can be called again".into()),
        ]
    );
    node.stop().await;
    sim.shutdown().await;
}

/// Every attempt of the members, oldest first per member.
async fn attempts_of(
    store: &Store,
    campaign: &str,
    members: &[fsdialer::store::MemberId],
) -> Vec<fsdialer::store::AttemptRecord> {
    let mut all = Vec::new();
    for m in members {
        all.extend(store.attempts(campaign, *m).await.unwrap());
    }
    all
}

/// Caller-ID pools end to end on the simulated switch: local presence picks the number of the callee's area,
/// least-used rotation with a daily cap of 2 moves on to the pool's other number when the local one is capped, the
/// switch sees the chosen number as the channel's caller ID, every attempt records it, and once every number is
/// capped the remaining members are not called (no attempt, no try counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_ids_follow_the_callee_area_and_the_daily_cap_and_reach_the_switch_and_the_attempts()
{
    let _serial = serial().await;
    const SPEED: f64 = 50.0;
    const KYIV: &str = "+380441110000";
    const US: &str = "+12025550100";
    let sim = start_sim(&SimSpec::roomy(SPEED)).await;
    let clock = Clock::scaled(SPEED);
    let observer = Observer::start(sim.local_addr(), clock).await;
    let store = Store::memory();
    let mut config = campaign_config("mix");
    config.id = Some("e2e-cid".into());
    config.gateways[0].pattern = "^[0-9]+_(.*)$".into();
    config.caller_id_pool = Some(
        serde_json::from_value(serde_json::json!({
            "numbers": [{"number": KYIV, "prefix": "38044"}, {"number": US}],
            "local_presence": true, "rotation": "least_used", "daily_cap": 2
        }))
        .unwrap(),
    );
    let campaign = validate(&config);
    let id = campaign.id().to_owned();
    let mut numbers = vec!["4930_answer_1".to_owned()];
    numbers.extend((0..5).map(|i| format!("38044{i}_answer_1")));
    let members: Vec<fsdialer::campaign::member::MemberInput> = numbers
        .iter()
        .map(|n| {
            serde_json::from_value(
                serde_json::json!({"name": n, "communications": [{"number": n}]}),
            )
            .unwrap()
        })
        .collect();
    let added = store.add(&id, &members, clock.now()).await.unwrap();

    let node = Node::start(
        "node-1",
        StoreSpec::Shared(store.clone()),
        vec![endpoint("sim", sim.local_addr(), 20_000, 20_000)],
        clock,
        Duration::from_secs(60),
    )
    .await;
    node.run_campaign(&campaign).await;
    let ids: Vec<_> = added.iter().map(|a| a.id()).collect();
    wait_until("four calls recorded", RUN_TIMEOUT, || {
        let (store, id, ids) = (store.clone(), id.clone(), ids.clone());
        async move { attempts_of(&store, &id, &ids).await.len() >= 4 }
    })
    .await;
    // Two more holds of the capped members (60 s virtual each).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = attempts_of(&store, &id, &ids).await;
    assert_eq!(attempts.len(), 4, "{attempts:#?}");
    let mut by_caller_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in &attempts {
        let cid = a
            .caller_id
            .clone()
            .expect("every attempt records its caller ID");
        assert_eq!(
            observer.get(a.attempt_id).caller_id.as_deref(),
            Some(cid.as_str()),
            "{a:?}"
        );
        by_caller_id.entry(cid).or_default().push(a.number.clone());
    }
    assert_eq!(by_caller_id[KYIV].len(), 2, "{by_caller_id:?}");
    assert!(
        by_caller_id[KYIV].iter().all(|n| n.starts_with("38044")),
        "{by_caller_id:?}"
    );
    assert_eq!(by_caller_id[US].len(), 2, "{by_caller_id:?}");
    assert!(
        by_caller_id[US].contains(&"4930_answer_1".to_owned()),
        "{by_caller_id:?}"
    );
    let used = store
        .caller_ids_used_today(&[KYIV.into(), US.into()], clock.now())
        .await
        .unwrap();
    assert_eq!((used[KYIV], used[US]), (2, 2));
    let mut held = 0;
    for a in &added {
        let m = store.get(&id, a.id()).await.unwrap().unwrap();
        if m.attempts == 0 {
            held += 1;
            assert_eq!((m.tries, m.state), (0, MemberState::Waiting), "{m:?}");
        }
    }
    assert_eq!(held, 2);
    let stats = store.caller_id_stats(&id).await.unwrap();
    assert_eq!(stats.iter().map(|s| s.calls).sum::<u64>(), 4, "{stats:?}");
    node.stop().await;
    sim.shutdown().await;
}
