//! Preview and progressive dialling on virtual time, with the real memory store's agents: reservation before
//! dialling, the agent's leg on answer, the join, no-answer to the next agent, abandonment, wrap-up, pauses,
//! logout while talking, sibling lines, preview accept/skip/timeout, two engines sharing one agent.

use super::core_support::*;
use chrono::Duration;
use fsdialer::agents::{AgentState, AgentStatus};
use fsdialer::campaign::causes::CauseClass;
use fsdialer::engine::core::{ABANDONED_CAUSE, AgentRelease, CoreConfig, Input};
use fsdialer::store::{MemberId, MemberState, Store};

const TEAM: &str = "sales";

fn progressive(extra: &str) -> std::sync::Arc<fsdialer::campaign::config::ValidCampaign> {
    campaign(&format!(
        "mode = \"progressive\"\n[agents]\nteam = \"{TEAM}\"\nagent_answer_timeout_sec = 5\nresult_timeout_sec = 0\n{extra}\n"
    ))
}

fn preview(extra: &str) -> std::sync::Arc<fsdialer::campaign::config::ValidCampaign> {
    campaign(&format!(
        "mode = \"preview\"\n[agents]\nteam = \"{TEAM}\"\nagent_answer_timeout_sec = 5\nresult_timeout_sec = 0\npreview_timeout_sec = 20\n{extra}\n"
    ))
}

async fn agent_state(h: &Harness, id: &str) -> (AgentStatus, AgentState) {
    let v = h.store.agent(id, h.now).await.unwrap().unwrap();
    (v.status, v.state)
}

fn note_of(h: &[fsdialer::store::AttemptRecord]) -> serde_json::Value {
    let note = h.last().unwrap().note.clone().expect("a note");
    serde_json::from_str(&note).unwrap()
}

#[tokio::test]
async fn progressive_joins_the_answered_member_to_the_reserved_agent() {
    let mut h = Harness::new(progressive(""), &[member("A", &["answer_30"])]).await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(1).await;
    assert_eq!(
        h.reservations, 1,
        "the agent is reserved before the member is dialled"
    );
    assert_eq!(h.dialled.len(), 1);
    assert!(
        h.agent_legs_dialled.is_empty(),
        "the agent's phone rings only once the member answers"
    );
    h.run_for(3).await;
    assert_eq!(h.agent_legs_dialled.len(), 1);
    assert_eq!(h.bridged.len(), 2, "member and agent joined");
    assert_eq!(agent_state(&h, "a1").await.1, AgentState::Talking);
    h.run_for(120).await;
    let m = h.member(1).await;
    assert!(m.success, "{m:?}");
    let attempts = h.history(1).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].class, CauseClass::Ok);
    let note = note_of(&attempts);
    assert_eq!(note["agent_call"]["agent"], "a1");
    assert_eq!(
        note["agent_call"]["wait_ms"], 1000,
        "answer at 3 s, agent answered and joined at 4 s"
    );
    assert_eq!(note["agent_call"]["abandoned"], false);
    assert!(matches!(
        h.agent_releases.as_slice(),
        [AgentRelease::Finished { talk_ms }] if *talk_ms == 29_000
    ));
    let v = h.store.agent("a1", h.now).await.unwrap().unwrap();
    assert_eq!(v.stats.calls, 1);
    assert_eq!(v.state, AgentState::Idle);
    assert!(h.core.calls().is_empty());
}

#[tokio::test]
async fn with_no_agent_free_nothing_is_dialled_and_no_try_is_counted() {
    let mut h = Harness::new(progressive(""), &[member("A", &["answer_30"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(30).await;
    assert!(h.dialled.is_empty());
    let m = h.member(1).await;
    assert_eq!(m.attempts, 0, "released claims count nothing");
    assert_eq!(m.state, MemberState::Waiting);
    assert!(h.releases >= 1);
    // The agent logs in: the member is called.
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.run_for(120).await;
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn an_agent_that_does_not_answer_passes_the_member_to_the_next_then_it_is_abandoned() {
    let mut h = Harness::new(
        progressive("abandon_message = \"/prompts/sorry.wav\"\nno_answer_delay_sec = 60"),
        &[member("A", &["answer_60"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentnoans", 1, h.now).await;
    add_agent(&h.store, "a2", TEAM, "agentnoans", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60).await;
    // Two agent legs rang 5 s each; then no agent was left and the abandon message started within 2 s.
    assert_eq!(h.agent_legs_dialled.len(), 2);
    assert_eq!(
        h.agent_releases
            .iter()
            .filter(|r| **r == AgentRelease::Missed)
            .count(),
        2
    );
    assert_eq!(h.abandons.len(), 1);
    assert_eq!(h.abandons[0].1.as_deref(), Some("/prompts/sorry.wav"));
    let attempts = h.history(1).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].cause, ABANDONED_CAUSE);
    assert_eq!(attempts[0].class, CauseClass::Retry);
    let note = note_of(&attempts);
    assert_eq!(note["agent_call"]["abandoned"], true);
    assert_eq!(
        note["agent_call"]["missed_by"],
        serde_json::json!(["a1", "a2"])
    );
    // The member answered at 3 s; each agent rang 5 s (to 8 s and 13 s); abandoned at 15 s; the message ended
    // (and the call) 3 s later.
    let hangup = attempts[0].hangup_at.unwrap();
    assert_eq!((hangup - start()).num_seconds(), 18);
    for a in ["a1", "a2"] {
        assert!(
            matches!(agent_state(&h, a).await.1, AgentState::Missed { .. }),
            "{a}"
        );
    }
}

#[tokio::test]
async fn missing_offers_in_a_row_pause_the_agent() {
    let mut h = Harness::new(
        progressive("max_no_answer = 2\nno_answer_delay_sec = 0"),
        &[member("A", &["answer_60"]), member("B", &["answer_60"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentnoans", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(300).await;
    let (status, _) = agent_state(&h, "a1").await;
    assert!(
        matches!(&status, AgentStatus::Paused { reason, .. } if reason == "no_answer"),
        "{status:?}"
    );
}

#[tokio::test]
async fn wrap_up_keeps_the_agent_from_the_next_call() {
    let mut h = Harness::new(
        progressive("wrap_up_sec = 30"),
        &[member("A", &["answer_20"]), member("B", &["answer_20"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    assert!(h.member(1).await.success);
    assert!(h.member(2).await.success);
    let first = h.history(1).await[0].hangup_at.unwrap();
    let second_dialled = h.history(2).await[0].originate_at;
    assert!(
        second_dialled >= first + Duration::seconds(30),
        "second call placed {second_dialled}, first ended {first}"
    );
}

#[tokio::test]
async fn a_pause_with_a_timeout_ends_by_itself() {
    let mut h = Harness::new(progressive(""), &[member("A", &["answer_20"])]).await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.store
        .set_agent_status(
            "a1",
            AgentStatus::Paused {
                reason: "lunch".into(),
                until: Some(h.now + Duration::seconds(60)),
            },
            h.now,
        )
        .await
        .unwrap();
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(59).await;
    assert!(h.dialled.is_empty(), "paused: nobody to call for");
    h.run_for(120).await;
    assert_eq!(h.dialled.len(), 1);
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn logging_out_while_talking_finishes_the_call_then_logs_out() {
    let mut h = Harness::new(
        progressive(""),
        &[member("A", &["answer_30"]), member("B", &["answer_30"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    assert_eq!(agent_state(&h, "a1").await.1, AgentState::Talking);
    h.store
        .set_agent_status("a1", AgentStatus::LoggedOut, h.now)
        .await
        .unwrap();
    h.run_for(600).await;
    assert!(h.member(1).await.success, "the call in progress finished");
    assert_eq!(agent_state(&h, "a1").await.0, AgentStatus::LoggedOut);
    assert_eq!(h.dialled.len(), 1, "nothing more for a logged-out agent");
    assert_eq!(h.member(2).await.attempts, 0);
}

#[tokio::test]
async fn an_answer_on_one_line_cancels_the_agents_other_lines_uncounted() {
    let mut h = Harness::new(
        progressive(""),
        &[member("A", &["answer_30"]), member("B", &["noanswer"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 2, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(2).await;
    assert_eq!(h.dialled.len(), 2, "two lines, two members ringing");
    h.run_for(5).await;
    let b = h.member(2).await;
    assert_eq!(b.attempts, 0, "the cancelled line counts no try: {b:?}");
    assert!(h.history(2).await.is_empty());
    h.run_for(30).await;
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn preview_shows_the_member_and_dials_it_once_accepted() {
    let mut h = Harness::new(preview(""), &[member("A", &["answer_30"])]).await;
    add_agent(&h.store, "a1", TEAM, "agentans_2", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(5).await;
    assert_eq!(h.agent_legs_dialled.len(), 1, "the agent first");
    assert_eq!(
        h.offers.len(),
        1,
        "the member is shown once the agent answers"
    );
    assert!(h.dialled.is_empty(), "not dialled before the agent decides");
    let attempt = *h.core.calls().keys().next().unwrap();
    h.input(Input::PreviewDecision {
        attempt,
        accept: true,
    })
    .await;
    assert_eq!(h.dialled.len(), 1);
    h.run_for(120).await;
    assert!(h.member(1).await.success);
    assert_eq!(h.bridged.len(), 2);
}

#[tokio::test]
async fn a_skipped_preview_costs_no_try() {
    let mut h = Harness::new(preview(""), &[member("A", &["answer_30"])]).await;
    add_agent(&h.store, "a1", TEAM, "agentans_2", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(5).await;
    let attempt = *h.core.calls().keys().next().unwrap();
    h.input(Input::PreviewDecision {
        attempt,
        accept: false,
    })
    .await;
    assert!(h.dialled.is_empty());
    let m = h.member(1).await;
    assert_eq!(m.attempts, 0, "{m:?}");
    assert_eq!(m.state, MemberState::Waiting);
    assert_eq!(h.agent_releases, vec![AgentRelease::Unused]);
    h.run_for(1).await;
    assert!(
        h.gone.contains(&h.agent_legs_dialled[0].0),
        "the agent's leg is hung up"
    );
}

#[tokio::test]
async fn a_preview_nobody_decides_is_dialled_after_the_timeout() {
    let mut h = Harness::new(preview(""), &[member("A", &["answer_30"])]).await;
    add_agent(&h.store, "a1", TEAM, "agentans_2", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(21).await;
    assert!(h.dialled.is_empty());
    h.run_for(2).await;
    assert_eq!(h.dialled.len(), 1, "preview_on_timeout = dial");
    h.run_for(120).await;
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn two_engines_sharing_one_agent_never_offer_it_two_calls() {
    let store = Store::memory();
    let members: Vec<_> = (0..6)
        .map(|i| member(&format!("m{i}"), &["answer_20"]))
        .collect();
    store.add(CAMPAIGN, &members, start()).await.unwrap();
    add_agent(&store, "a1", TEAM, "agentans_1", 1, start()).await;
    let mut one = Harness::with_store(
        progressive(""),
        store.clone(),
        start(),
        CoreConfig::default(),
    )
    .await;
    let mut two = Harness::with_store(
        progressive(""),
        store.clone(),
        start(),
        CoreConfig::default(),
    )
    .await;
    one.input(Input::Run(CAMPAIGN.into())).await;
    two.input(Input::Run(CAMPAIGN.into())).await;
    for _ in 0..900 {
        one.run_for(1).await;
        two.run_for(1).await;
        let busy = one.core.calls().len() + two.core.calls().len();
        assert!(
            busy <= 1,
            "one agent, at most one call in flight across both engines: {busy}"
        );
    }
    for id in 1..=6 {
        assert!(one.member(id).await.success, "member {id}");
    }
    let _ = MemberId(1);
}

#[tokio::test]
async fn the_agents_result_decides_the_call_and_a_callback_sets_when_it_is_called_again() {
    use fsdialer::engine::core::AgentOutcome;
    let mut h = Harness::new(
        progressive("").config().clone().pipe_result_timeout(120),
        &[member("A", &["answer_30"]), member("B", &["answer_30"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    add_agent(&h.store, "a2", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    let calls: Vec<_> = h.core.calls().keys().copied().collect();
    assert_eq!(calls.len(), 2);
    let attempt_of = |h: &Harness, member: u64| {
        *h.core
            .calls()
            .iter()
            .find(|(_, c)| c.claim.member_id == MemberId(member))
            .unwrap()
            .0
    };
    let (a, b) = (attempt_of(&h, 1), attempt_of(&h, 2));
    // Both calls end at 33 s; the attempts wait for the agents' results.
    h.run_for(30).await;
    assert_eq!(h.core.calls().len(), 2, "held for the results");
    // A: "call me back in 2 hours" (not a success); B: a sale.
    h.input(Input::AgentResult {
        attempt: a,
        outcome: AgentOutcome {
            success: false,
            next_after_sec: Some(7200),
            ..Default::default()
        },
    })
    .await;
    h.input(Input::AgentResult {
        attempt: b,
        outcome: AgentOutcome {
            success: true,
            ..Default::default()
        },
    })
    .await;
    assert!(h.core.calls().is_empty());
    let ma = h.member(1).await;
    assert_eq!(ma.state, MemberState::Waiting);
    assert_eq!(ma.attempts, 1);
    let due = ma.next_due.expect("a callback is due");
    assert_eq!(
        (due - h.now).num_seconds(),
        7200,
        "the agent's wait, not the campaign's 60 s"
    );
    let mb = h.member(2).await;
    assert!(mb.success);
    let note = note_of(&h.history(2).await);
    assert_eq!(note["agent_call"]["agent_result"]["success"], true);
}

#[tokio::test]
async fn without_a_result_in_time_the_hangup_cause_decides() {
    let mut h = Harness::new(
        progressive("").config().clone().pipe_result_timeout(60),
        &[member("A", &["answer_30"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(40).await;
    assert_eq!(h.core.calls().len(), 1, "waiting for the result");
    h.run_for(60).await;
    assert!(h.core.calls().is_empty());
    assert!(
        h.member(1).await.success,
        "NORMAL_CLEARING after 29 s of talk is OK"
    );
}

#[tokio::test]
async fn an_agent_asking_to_stop_ends_the_member() {
    use fsdialer::engine::core::AgentOutcome;
    let mut h = Harness::new(
        progressive("").config().clone().pipe_result_timeout(60),
        &[member("A", &["answer_30", "answer_30"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(40).await;
    let attempt = *h.core.calls().keys().next().unwrap();
    h.input(Input::AgentResult {
        attempt,
        outcome: AgentOutcome {
            success: false,
            stop_communications: true,
            ..Default::default()
        },
    })
    .await;
    h.run_for(600).await;
    let m = h.member(1).await;
    assert_eq!(m.state, MemberState::Ended, "{m:?}");
    assert!(!m.success);
    assert_eq!(m.attempts, 1, "its second number is not called");
}

/// Campaign documents with another `result_timeout_sec`, revalidated.
trait ResultTimeout {
    fn pipe_result_timeout(
        self,
        secs: u64,
    ) -> std::sync::Arc<fsdialer::campaign::config::ValidCampaign>;
}

impl ResultTimeout for fsdialer::campaign::config::CampaignConfig {
    fn pipe_result_timeout(
        mut self,
        secs: u64,
    ) -> std::sync::Arc<fsdialer::campaign::config::ValidCampaign> {
        self.agents.as_mut().unwrap().result_timeout_sec = secs;
        std::sync::Arc::new(self.validate().unwrap())
    }
}

#[tokio::test]
async fn a_callback_goes_back_to_the_agent_that_scheduled_it() {
    use fsdialer::engine::core::AgentOutcome;
    let mut h = Harness::new(
        progressive("strategy = \"fewest_calls\"")
            .config()
            .clone()
            .pipe_result_timeout(60),
        &[member("A", &["answer_30"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(40).await;
    // a2 logs in now: with no call yet, fewest_calls would give it the next one.
    add_agent(&h.store, "a2", TEAM, "agentans_1", 1, h.now).await;
    let attempt = *h.core.calls().keys().next().unwrap();
    h.input(Input::AgentResult {
        attempt,
        outcome: AgentOutcome {
            success: false,
            next_after_sec: Some(600),
            ..Default::default()
        },
    })
    .await;
    h.run_for(700).await;
    let attempts = h.history(1).await;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(
        note_of(&attempts)["agent_call"]["agent"],
        "a1",
        "sticky to a1"
    );
}

/// A first process dials `number` to one member with agent `phone` for `secs` s and dies; a second one with the
/// same node id starts over the same store, finds the call still up on switch 0 and adopts it. Returns the second
/// and the attempt.
async fn restarted_with_an_agent_call(
    number: &str,
    phone: &str,
    secs: i64,
) -> (Harness, fsdialer::store::AttemptId) {
    let mut first = Harness::new(
        progressive("abandon_message = \"/prompts/sorry.wav\""),
        &[member("A", &[number])],
    )
    .await;
    add_agent(&first.store, "a1", TEAM, phone, 1, first.now).await;
    first.input(Input::Run(CAMPAIGN.into())).await;
    first.run_for(secs).await;
    let claims: Vec<_> = first
        .core
        .calls()
        .values()
        .map(|c| c.claim.clone())
        .collect();
    assert_eq!(claims.len(), 1);
    let attempt = claims[0].attempt_id;
    let member_answered_at = first.answered_at.get(&attempt).copied();
    let mut second = Harness::with_store(
        progressive("abandon_message = \"/prompts/sorry.wav\""),
        first.store.clone(),
        first.now,
        CoreConfig::default(),
    )
    .await;
    // The switch still has the member's channel, as the first process left it.
    if let Some(t) = member_answered_at {
        second.answered.insert(attempt);
        second.answered_at.insert(attempt, t);
    }
    second.located = Some(0);
    second
        .input(Input::Adopt {
            campaign: CAMPAIGN.into(),
            claims,
        })
        .await;
    (second, attempt)
}

#[tokio::test]
async fn after_a_restart_a_call_whose_agent_was_talking_keeps_its_agent_until_it_ends() {
    // Member answers at 3 s, the agent at 4 s: joined and talking when the first process dies at 10 s.
    let (mut h, attempt) = restarted_with_an_agent_call("answer_100", "agentans_1", 10).await;
    assert_eq!(h.core.active(CAMPAIGN), 1);
    // Held by this node now: still talking long after the old lease would have run out, never offered again.
    h.run_for(90).await;
    assert_eq!(agent_state(&h, "a1").await.1, AgentState::Talking);
    let v = h.store.agent("a1", h.now).await.unwrap().unwrap();
    assert_eq!(v.reservations.len(), 1);
    assert!(v.reservations[0].lease_until > h.now - Duration::seconds(40));
    assert!(h.agent_releases.is_empty(), "{:?}", h.agent_releases);
    // The call ends on the switch: the agent goes to wrap-up with the switch's talk time, the attempt is the
    // agent's call.
    h.input(Input::Hangup {
        uuid: attempt,
        cause: "NORMAL_CLEARING".into(),
        answered: true,
        billsec: 97,
        talk_ms: 97_000,
    })
    .await;
    h.run_for(1).await;
    assert!(matches!(
        h.agent_releases.as_slice(),
        [AgentRelease::Finished { talk_ms: 97_000 }]
    ));
    let attempts = h.history(1).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].class, CauseClass::Ok);
    assert_eq!(note_of(&attempts)["agent_call"]["agent"], "a1");
    assert!(h.member(1).await.success);
    let v = h.store.agent("a1", h.now).await.unwrap().unwrap();
    assert_eq!(v.stats.calls, 1);
    assert!(v.reservations.is_empty());
    assert!(h.core.calls().is_empty());
}

#[tokio::test]
async fn after_a_restart_an_answered_member_not_yet_joined_hears_the_abandon_message_and_frees_the_agent()
 {
    // Member answers at 3 s; the agent's phone is still ringing when the first process dies at 5 s.
    let (mut h, attempt) = restarted_with_an_agent_call("answer_100", "agentnoans", 5).await;
    h.run_for(1).await;
    // The agent is given back unused and its ringing leg hung up; the member hears the message.
    assert_eq!(h.agent_releases, vec![AgentRelease::Unused]);
    assert_eq!(agent_state(&h, "a1").await.1, AgentState::Idle);
    assert_eq!(
        h.abandons,
        vec![(attempt, Some("/prompts/sorry.wav".to_owned()))]
    );
    h.run_for(10).await;
    let attempts = h.history(1).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].cause, ABANDONED_CAUSE);
    assert!(note_of(&attempts)["agent_call"]["abandoned"] == true);
    assert!(h.kills >= 1, "the agent's ringing leg is hung up");
    assert!(h.core.calls().is_empty());
}
