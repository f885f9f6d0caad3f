//! Predictive dialling on virtual time, with the real memory store's agents: the pacer dials more members than
//! free agents once its model is warm, an answered member is joined to a free agent or abandoned 2 s after its
//! answer (the abandon message started then), an abandoned member waits `abandon_redial_after_sec`, and the
//! compliance record equals a recount from the attempt log.

use super::core_support::*;
use chrono::{Duration, NaiveDate};
use fsdialer::agents::ReserveRequest;
use fsdialer::agents::compliance::DayCounts;
use fsdialer::agents::pacer::PacingRule;
use fsdialer::engine::core::{ABANDONED_CAUSE, AgentRelease, Input};
use fsdialer::engine::shell::team_rules;
use fsdialer::store::MemberId;
use std::collections::BTreeMap;

const TEAM: &str = "sales";

fn predictive(extra: &str) -> std::sync::Arc<fsdialer::campaign::config::ValidCampaign> {
    campaign(&format!(
        "mode = \"predictive\"\nlimit = 100\n[agents]\nteam = \"{TEAM}\"\nresult_timeout_sec = 0\n\
         abandon_message = \"/prompts/sorry.wav\"\n{extra}\n"
    ))
}

/// The compliance counts of the campaign's attempt log, recounted from each attempt's answer and agent note.
async fn recount(h: &Harness, members: u64) -> BTreeMap<NaiveDate, DayCounts> {
    let mut days: BTreeMap<NaiveDate, DayCounts> = BTreeMap::new();
    for id in 1..=members {
        for a in h.history(id).await {
            let Some(answer) = a.answer_at else { continue };
            let note: serde_json::Value = serde_json::from_str(a.note.as_deref().unwrap()).unwrap();
            let call = &note["agent_call"];
            let day = days.entry(answer.date_naive()).or_default();
            if note["amd"]["answer"] == "machine" {
                day.machine_answers += 1;
                continue;
            }
            day.live_answers += 1;
            let late = call["wait_ms"].as_u64().is_none_or(|w| w > 2000);
            if call["abandoned"] == true || late {
                day.abandoned += 1;
            }
            if call["abandon_message_played"] == true {
                day.messages_played += 1;
            }
        }
    }
    days
}

async fn recorded(h: &Harness) -> BTreeMap<NaiveDate, DayCounts> {
    let day = h.now.date_naive();
    h.store
        .compliance_days(CAMPAIGN, day - Duration::days(2), day)
        .await
        .unwrap()
}

/// Member calls of this node still ringing.
fn ringing(h: &Harness) -> usize {
    h.core
        .calls()
        .values()
        .filter(|c| c.answered_at.is_none() && c.hangup.is_none())
        .count()
}

#[tokio::test]
async fn a_warm_pacer_dials_more_members_than_free_agents_within_the_line_cap() {
    // One member in four answers (and talks a minute); the others ring out after 30 s.
    let members: Vec<_> = (0..300)
        .map(|i| {
            let n = if i % 4 == 0 { "answer_60" } else { "noanswer" };
            member(&format!("M{i}"), &[n])
        })
        .collect();
    let mut h = Harness::new(
        predictive("[agents.pacing]\nwarmup_answers = 3\nmax_lines_per_agent = 2.0\n"),
        &members,
    )
    .await;
    for i in 0..5 {
        add_agent(&h.store, &format!("a{i}"), TEAM, "agentans_0", 1, h.now).await;
    }
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(1).await;
    assert_eq!(ringing(&h), 5, "warm-up: one member per free agent");
    assert_eq!(
        h.core.pacer(CAMPAIGN).unwrap().last.unwrap().rule,
        PacingRule::WarmUp
    );
    let mut most = 0;
    for _ in 0..60 {
        h.run_for(5).await;
        most = most.max(ringing(&h));
        assert!(
            ringing(&h) <= 10,
            "at most 2 lines per ready agent: {}",
            ringing(&h)
        );
    }
    assert!(
        most > 5,
        "the pacer dialled more members than agents: {most}"
    );
    let p = h.core.pacer(CAMPAIGN).unwrap();
    assert!(p.state.model.live_answers_seen >= 3);
    let e = p.state.model.estimates().unwrap();
    assert!((0.1..0.5).contains(&e.live_prob), "{e:?}");
    // Every answered call is in the compliance record, exactly as the attempt log says.
    h.run_for(300).await;
    let recounted = recount(&h, 300).await;
    assert!(recounted.values().map(|d| d.live_answers).sum::<u64>() > 10);
    assert_eq!(recorded(&h).await, recounted);
}

#[tokio::test]
async fn a_live_answer_with_no_free_agent_hears_the_abandon_message_two_seconds_after_it() {
    let mut h = Harness::new(
        predictive(
            "abandon_redial_after_sec = 259200\n[agents.pacing]\nmin_agents_for_predictive = 1\n",
        ),
        &[member("A", &["answer_100"]), member("B", &["answer_100"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_0", 1, h.now).await;
    add_agent(&h.store, "a2", TEAM, "agentans_0", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(1).await;
    assert_eq!(h.dialled.len(), 2, "two free agents, two members (warm-up)");
    assert_eq!(
        h.reservations, 0,
        "predictive reserves an agent only at the answer"
    );
    // Another engine node takes one of the agents before the members answer.
    let req = ReserveRequest {
        rules: team_rules(h.valid.agents().unwrap()),
        campaign: "other".into(),
        member: MemberId(99),
        attempt: uuid::Uuid::new_v4(),
        node: "other-node".into(),
        lease: std::time::Duration::from_secs(600),
        prefer: None,
        exclude: vec![],
    };
    h.store.reserve_agent(&req, h.now).await.unwrap().unwrap();
    let answered = h.now + Duration::seconds(2); // the members answer 3 s after their originate
    h.run_for(10).await;
    assert_eq!(h.bridged.len(), 2, "one member joined to the agent left");
    assert_eq!(h.abandons.len(), 1, "the other hears the abandon message");
    assert_eq!(h.abandons[0].1.as_deref(), Some("/prompts/sorry.wav"));
    let abandoned = h.abandons[0].0;
    let abandoned_id = if h.dialled[0].0 == abandoned { 1 } else { 2 };
    // Started within 2 s of the answer: the answer is at `answered`, the core gave up at its 2 s mark.
    let attempts = h.history(abandoned_id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].cause, ABANDONED_CAUSE);
    let answer_at = attempts[0].answer_at.unwrap();
    assert_eq!(answer_at, answered);
    // The message (3 s in the harness) started exactly 2 s after the answer.
    assert_eq!(
        attempts[0].hangup_at.unwrap(),
        answer_at + Duration::seconds(2) + Duration::seconds(ABANDON_MESSAGE_SECS)
    );
    let note: serde_json::Value =
        serde_json::from_str(attempts[0].note.as_deref().unwrap()).unwrap();
    assert_eq!(note["agent_call"]["abandoned"], true);
    assert_eq!(note["agent_call"]["abandon_message_played"], true);
    // Ofcom: not called again for 72 h.
    let m = h.member(abandoned_id).await;
    assert!(
        m.next_due.unwrap() >= answer_at + Duration::hours(72) - Duration::seconds(5),
        "{:?}",
        m.next_due
    );
    // The abandoned member's agent search released nothing as missed.
    assert!(!h.agent_releases.contains(&AgentRelease::Missed));
    h.run_for(200).await;
    let day = recorded(&h).await;
    let today = day.get(&answer_at.date_naive()).copied().unwrap();
    assert_eq!(
        today,
        DayCounts {
            live_answers: 2,
            abandoned: 1,
            machine_answers: 0,
            messages_played: 1
        }
    );
    assert_eq!(recorded(&h).await, recount(&h, 2).await);
}

#[tokio::test]
async fn an_agent_phone_still_ringing_two_seconds_after_the_answer_is_given_up_and_the_member_abandoned()
 {
    let mut h = Harness::new(
        predictive("[agents.pacing]\nmin_agents_for_predictive = 1\n"),
        &[member("A", &["answer_100"])],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_5", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(3).await;
    assert_eq!(
        h.agent_legs_dialled.len(),
        1,
        "the agent is called at the answer"
    );
    assert!(h.abandons.is_empty());
    h.run_for(1).await;
    assert!(h.abandons.is_empty(), "1 s after the answer: still waiting");
    h.run_for(1).await;
    assert_eq!(h.abandons.len(), 1, "2 s after the answer: abandoned");
    assert!(h.bridged.is_empty());
    assert_eq!(h.agent_releases, vec![AgentRelease::Unused]);
    h.run_for(60).await;
    assert_eq!(h.history(1).await[0].cause, ABANDONED_CAUSE);
}

#[tokio::test]
async fn with_amd_a_machine_is_a_machine_answer_and_a_person_waits_from_the_greetings_end() {
    // Both answer at 3 s; the detector decides at 5 s. The person's agent answers 1 s after it is called.
    let mut h = Harness::new(
        predictive("[amd]\n"),
        &[
            member("M", &["amd_MACHINE_40"]),
            member("P", &["amd_HUMAN_40"]),
        ],
    )
    .await;
    add_agent(&h.store, "a1", TEAM, "agentans_1", 1, h.now).await;
    add_agent(&h.store, "a2", TEAM, "agentans_1", 1, h.now).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(120).await;
    let person = h.history(2).await;
    let note: serde_json::Value = serde_json::from_str(person[0].note.as_deref().unwrap()).unwrap();
    assert_eq!(note["amd"]["result"], "HUMAN");
    assert_eq!(
        note["agent_call"]["wait_ms"], 1000,
        "joined 1 s after the decision (3 s after the answer): not abandoned"
    );
    assert_ne!(person[0].cause, ABANDONED_CAUSE);
    let machine = h.history(1).await;
    assert!(
        h.history(1).await[0]
            .note
            .as_deref()
            .unwrap()
            .contains("\"machine\"")
    );
    assert_ne!(machine[0].cause, ABANDONED_CAUSE);
    let record = recorded(&h).await;
    let total = record.values().fold(DayCounts::default(), |mut t, d| {
        t.add(*d);
        t
    });
    // The machine is retried (machine_class = retry): each of its answers is a machine answer.
    assert_eq!(
        (total.live_answers, total.abandoned, total.machine_answers),
        (1, 0, machine.len() as u64),
        "{record:?}"
    );
    assert_eq!(record, recount(&h, 2).await);
}
