//! `fsdialer demo` end to end: memory store, in-process simulated switch over real ESL, the sample campaign with
//! its callflow and ~1,000 members. Every member must end, the outcome mix must be the one the sample's numbers
//! ask for, and the callflow's outcome must be recorded with the attempts. And the demo pointed at an external
//! switch (`--esl`, here an `fsdialer sim` server) with the small members file made for real switches.

use fsdialer::engine::demo::{DemoOptions, run};
use fsdialer::engine::state::CampaignState;
use fsdialer::store::{ListQuery, MemberState};
use std::time::Duration;

/// The demos run one at a time: the 1,000-member one is timing-sensitive (its callees press their
/// digit within simulated seconds), and a second demo beside it on a loaded two-core machine costs it confirmations.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_campaign_runs_to_done_with_every_member_accounted_for() {
    let _one = ONE_AT_A_TIME.lock().await;
    // ×30, not the CLI's ×100: every real millisecond of ESL round trip is 30 ms of the callee's patience, so a
    // busy machine (CI running other binaries) cannot make callees hang up before the callflow's first prompt.
    let opts = DemoOptions {
        progress: false,
        speed: 30.0,
        timeout: Some(Duration::from_secs(240)),
        ..DemoOptions::default()
    };
    let report = run(opts, fsdialer::engine::default_callflow())
        .await
        .expect("the demo runs");
    let c = &report.counters;
    assert_eq!(report.final_state, Some(CampaignState::Done));
    assert_eq!(report.members, 1000);
    assert_eq!(c.ended, 1000, "every member ended");
    assert_eq!(c.waiting + c.active, 0);
    assert_eq!(
        c.calls,
        c.ok + c.retry + c.error + c.minus,
        "every attempt classified once"
    );
    // The sample's numbers: confirm_/decline_/silent_/answer_ answer, busy/noanswer/ring_ never do,
    // reject_UNALLOCATED_NUMBER is an error.
    assert!(c.success > 400, "success {}", c.success);
    assert!(c.ended_by_cause.get("MAX_TRY_COUNT").copied().unwrap_or(0) > 200);
    assert!(
        c.ended_by_cause
            .get("UNALLOCATED_NUMBER")
            .copied()
            .unwrap_or(0)
            > 10
    );
    assert_eq!(c.lost, 0);

    // Members who pressed 1 ended with success decided by the callflow, and the attempt says so.
    let mut confirmed_with_note = 0;
    let mut after = None;
    loop {
        let page = report
            .store
            .list(
                &report.campaign,
                &ListQuery {
                    after,
                    limit: 200,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for m in &page.members {
            assert_eq!(m.state, MemberState::Ended);
            if m.communications
                .iter()
                .any(|n| n.number.starts_with("confirm_"))
                && m.success
            {
                let log = report.store.attempts(&report.campaign, m.id).await.unwrap();
                if log.iter().any(|a| {
                    a.note
                        .as_deref()
                        .is_some_and(|n| n.contains("\"result\":true"))
                }) {
                    confirmed_with_note += 1;
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert!(
        confirmed_with_note > 100,
        "{confirmed_with_note} confirmed attempts carry the callflow note"
    );
}

/// `fsdialer demo --esl HOST:PORT --speed S --members fixtures/demo/members-small.json` against an external
/// `fsdialer sim` at the same speed: every member of the small sample ends, with the outcomes its numbers ask for,
/// within the timeout scaled from the work (no timeout given).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_against_an_external_switch_ends_every_member_of_the_small_sample() {
    let _one = ONE_AT_A_TIME.lock().await;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let speed = 50.0;
    let sim = fsdialer::sim::server::start(fsdialer::sim::server::ServerConfig {
        speed,
        scenario: Some(root.join("fixtures/sim/demo.toml")),
        ..Default::default()
    })
    .await
    .expect("the simulated switch starts");
    let opts = DemoOptions {
        progress: false,
        esl: Some((sim.local_addr().to_string(), "ClueCon".into())),
        members: root.join("fixtures/demo/members-small.json"),
        scenario: None,
        speed,
        timeout: None,
        ..DemoOptions::default()
    };
    let report = run(opts, fsdialer::engine::default_callflow())
        .await
        .expect("the demo runs against the external switch");
    sim.shutdown().await;
    let c = &report.counters;
    assert_eq!(report.final_state, Some(CampaignState::Done));
    assert_eq!(report.members, 15);
    assert_eq!(c.ended, 15, "every member ended");
    assert_eq!(c.waiting + c.active, 0);
    assert_eq!(c.lost, 0);
    // confirm_11, confirm_25, confirm_7 press 1; reject_UNALLOCATED_NUMBER ends its member at once.
    assert!(c.success >= 3, "success {}", c.success);
    assert_eq!(c.ended_by_cause.get("UNALLOCATED_NUMBER").copied(), Some(1));
    // busy, noanswer and ring_5 never answer: three tries each.
    assert!(
        c.ended_by_cause.get("MAX_TRY_COUNT").copied().unwrap_or(0) >= 3,
        "{:?}",
        c.ended_by_cause
    );
}

/// Progressive dialling end to end over ESL: 1,000 members, 10 agents of the in-process simulated switch
/// (fixtures/sim/agents-e2e.toml: members who answer and wait a few seconds, busy and unanswered ones; agent
/// phones that answer in 0.3-1.5 s, miss 5 % of offers and talk 2-6 s). Every member is accounted for, no attempt
/// is lost, and no agent is ever in two calls (the joined stretches of each agent never overlap); the agents'
/// own figures add up to the joined calls and no reservation is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progressive_campaign_with_ten_agents_accounts_for_every_member_and_never_doubles_an_agent()
{
    use fsdialer::campaign::agents::DialMode;
    let _one = ONE_AT_A_TIME.lock().await;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<serde_json::Value> = (0..1000)
        .map(|i| {
            let number = match i % 50 {
                0..=41 => format!("cust_{i:04}"),
                42..=45 => "busy".to_string(),
                46..=48 => "noanswer".to_string(),
                _ => "reject_UNALLOCATED_NUMBER".to_string(),
            };
            serde_json::json!({"name": format!("m{i}"), "communications": [{"number": number}]})
        })
        .collect();
    let members_file = dir.path().join("members.json");
    std::fs::write(&members_file, serde_json::to_vec(&members).unwrap()).unwrap();
    let opts = DemoOptions {
        progress: false,
        members: members_file,
        scenario: Some(root.join("fixtures/sim/agents-e2e.toml")),
        speed: 40.0,
        timeout: Some(Duration::from_secs(240)),
        mode: Some(DialMode::Progressive),
        ..DemoOptions::default()
    };
    let report = run(opts, None).await.expect("the agent demo runs");
    let c = &report.counters;
    assert_eq!(report.final_state, Some(CampaignState::Done));
    assert_eq!(c.ended, 1000, "every member ended");
    assert_eq!(c.waiting + c.active, 0);
    assert_eq!(c.lost, 0);
    assert_eq!(c.calls, c.ok + c.retry + c.error + c.minus);
    assert!(c.success > 700, "success {}", c.success);
    assert_eq!(
        c.ended_by_cause.get("UNALLOCATED_NUMBER").copied(),
        Some(20)
    );

    // Every joined call of each agent, from the attempt log: (bridged, hung up).
    let mut joined: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    let mut bridged = 0u64;
    for id in 1..=1000u64 {
        for a in report
            .store
            .attempts(&report.campaign, fsdialer::store::MemberId(id))
            .await
            .unwrap()
        {
            let note: serde_json::Value =
                serde_json::from_str(a.note.as_deref().expect("agent calls carry a note")).unwrap();
            let call = &note["agent_call"];
            if let (Some(agent), Some(at)) = (call["agent"].as_str(), call["bridged_at"].as_str()) {
                bridged += 1;
                let end = a.hangup_at.expect("a joined call hung up").to_rfc3339();
                joined
                    .entry(agent.to_string())
                    .or_default()
                    .push((at.to_string(), end));
            }
        }
    }
    assert_eq!(joined.len(), 10, "every agent took calls");
    for (agent, mut calls) in joined {
        calls.sort();
        for pair in calls.windows(2) {
            let (a_end, b_start) = (
                chrono::DateTime::parse_from_rfc3339(&pair[0].1).unwrap(),
                chrono::DateTime::parse_from_rfc3339(&pair[1].0).unwrap(),
            );
            assert!(a_end <= b_start, "{agent} was in two calls: {pair:?}");
        }
    }
    let agents = &report.agents.as_ref().expect("an agent report").agents;
    assert_eq!(agents.iter().map(|a| a.stats.calls).sum::<u64>(), bridged);
    assert!(
        agents.iter().all(|a| a.reservations.is_empty()),
        "no reservation left behind"
    );
}

/// Preview end to end over ESL: the agent's leg rings first, the member is shown (the store says the agent is
/// offered it), a simulated desk accepts it through the store's inbox of the engine node that owns the call, and
/// only then is the member dialled and joined. Every member ends; every joined call was accepted first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_members_are_dialled_once_their_agent_accepts_through_the_inbox() {
    use fsdialer::campaign::agents::DialMode;
    let _one = ONE_AT_A_TIME.lock().await;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<serde_json::Value> = (0..60)
        .map(|i| serde_json::json!({"name": format!("m{i}"), "communications": [{"number": format!("cust_{i:04}")}]}))
        .collect();
    let members_file = dir.path().join("members.json");
    std::fs::write(&members_file, serde_json::to_vec(&members).unwrap()).unwrap();
    let opts = DemoOptions {
        progress: false,
        members: members_file,
        scenario: Some(root.join("fixtures/sim/agents-e2e.toml")),
        speed: 20.0,
        timeout: Some(Duration::from_secs(180)),
        mode: Some(DialMode::Preview),
        ..DemoOptions::default()
    };
    let report = run(opts, None).await.expect("the preview demo runs");
    let c = &report.counters;
    assert_eq!(report.final_state, Some(CampaignState::Done));
    assert_eq!(c.ended, 60, "every member ended");
    assert_eq!(c.lost, 0);
    assert!(c.success >= 50, "success {}", c.success);
    let mut joined = 0;
    for id in 1..=60u64 {
        for a in report
            .store
            .attempts(&report.campaign, fsdialer::store::MemberId(id))
            .await
            .unwrap()
        {
            let note: serde_json::Value = serde_json::from_str(a.note.as_deref().unwrap()).unwrap();
            let call = &note["agent_call"];
            assert_eq!(call["mode"], "preview");
            if let Some(bridged) = call["bridged_at"].as_str() {
                joined += 1;
                // The agent answered (and was shown the member) before the member was dialled and joined.
                let agent_answered = call["agent_answered_at"]
                    .as_str()
                    .expect("agent answered first");
                let (answered, bridged) = (
                    chrono::DateTime::parse_from_rfc3339(agent_answered).unwrap(),
                    chrono::DateTime::parse_from_rfc3339(bridged).unwrap(),
                );
                assert!(answered < bridged, "{call}");
                // Accepted through the inbox, not dialled by the 30 s preview timeout: the member rang 1-3 s.
                assert!(
                    bridged - answered < chrono::Duration::seconds(15),
                    "dialled only after the preview timeout: {call}"
                );
            }
        }
    }
    assert!(joined >= 50, "joined {joined}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_amd_splits_answers_by_result_and_leaves_messages_on_machines() {
    let _one = ONE_AT_A_TIME.lock().await;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let opts = DemoOptions {
        progress: false,
        speed: 30.0,
        timeout: Some(Duration::from_secs(240)),
        amd: true,
        scenario: Some(root.join(fsdialer::engine::demo::amd::DEMO_AMD_SCENARIO)),
        ..DemoOptions::default()
    };
    let report = run(opts, fsdialer::engine::default_callflow())
        .await
        .expect("the demo runs");
    assert_eq!(report.final_state, Some(CampaignState::Done));
    assert_eq!(report.counters.ended, 1000, "every member ended");
    let amd = report.amd.clone().expect("the AMD report");
    // ~650 answering callees, 70 of them machines; the detector is right most of the time.
    assert!(amd.human > 300, "{amd:?}");
    assert!((40..=150).contains(&amd.machine), "{amd:?}");
    assert!(amd.notsure > 0, "{amd:?}");
    assert!(amd.messages_left >= 40, "{amd:?}");
    assert!(amd.messages_left <= amd.machine + amd.notsure, "{amd:?}");
    let table = report.table();
    for line in ["HUMAN", "MACHINE", "NOTSURE", "messages left"] {
        assert!(table.contains(line), "{line} missing from\n{table}");
    }
    // Answered attempts are all accounted for by AMD.
    assert_eq!(
        amd.human + amd.machine + amd.notsure + amd.undecided,
        report.counters.answered,
        "{amd:?} {:?}",
        report.counters
    );
}
