//! The agents' store contract: records with compare-and-set, atomic reservations under node leases, every
//! strategy's pick, lines, missed offers, wrap-up, statuses, recovery of a dead node's reservations, the inbox.

use super::*;
use fsdialer::agents::*;
use fsdialer::store::agents::INBOX_CAP;
use uuid::Uuid;

const TEAM: &str = "sales";

fn agent(id: &str, level: u32, lines: u32) -> Agent {
    Agent {
        id: id.into(),
        name: format!("Agent {id}"),
        dial_string: format!("loopback/{id}/default"),
        teams: vec![TeamMembership {
            team: TEAM.into(),
            level,
        }],
        lines,
        version: 0,
    }
}

fn rules(strategy: Strategy) -> TeamRules {
    TeamRules {
        strategy,
        ..TeamRules::new(TEAM)
    }
}

fn request(rules: &TeamRules, member: u64, node: &str) -> ReserveRequest {
    ReserveRequest {
        rules: rules.clone(),
        campaign: C.into(),
        member: MemberId(member),
        attempt: Uuid::new_v4(),
        node: node.into(),
        lease: LEASE,
        prefer: None,
        exclude: Vec::new(),
    }
}

/// Creates ready agents at `t(9, 0)`.
async fn ready_agents(s: &Store, agents: &[Agent]) {
    for a in agents {
        s.put_agent(a, Some(0), t(9, 0)).await.unwrap();
        s.set_agent_status(&a.id, AgentStatus::Ready, t(9, 0))
            .await
            .unwrap();
    }
}

async fn reserve(
    s: &Store,
    r: &TeamRules,
    member: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Reservation> {
    s.reserve_agent(&request(r, member, NODE), now)
        .await
        .unwrap()
}

async fn view(s: &Store, id: &str, now: chrono::DateTime<chrono::Utc>) -> AgentView {
    s.agent(id, now).await.unwrap().expect("agent stored")
}

/// Reserves (`prefer` first), offers, talks and finishes a call of `talk_min` minutes starting at `start`.
async fn call(
    s: &Store,
    r: &TeamRules,
    prefer: Option<&str>,
    member: u64,
    start: chrono::DateTime<chrono::Utc>,
    talk_min: i64,
) -> String {
    let mut req = request(r, member, NODE);
    req.prefer = prefer.map(str::to_owned);
    let res = s
        .reserve_agent(&req, start)
        .await
        .unwrap()
        .expect("a free agent");
    assert!(
        s.agent_offering(res.id, Uuid::new_v4(), start)
            .await
            .unwrap()
    );
    assert_eq!(s.agent_talking(res.id, start).await.unwrap(), Some(vec![]));
    let end = start + CDuration::minutes(talk_min);
    let talk = Duration::from_secs(talk_min as u64 * 60);
    assert_eq!(
        s.release_agent(res.id, Release::Finished { talk }, r, end)
            .await
            .unwrap(),
        ReleaseAgentOutcome::Released {
            agent: res.agent.clone()
        }
    );
    res.agent
}

pub async fn agents_are_created_replaced_by_version_and_deleted_when_free(s: &Store) {
    let a = agent("a1", 1, 1);
    assert_eq!(
        s.put_agent(&a, Some(0), t(9, 0)).await.unwrap(),
        PutAgentOutcome::Created { version: 1 }
    );
    assert_eq!(
        s.put_agent(&a, Some(0), t(9, 0)).await.unwrap(),
        PutAgentOutcome::Conflict { current: Some(1) },
        "create-only refuses an existing agent"
    );
    let renamed = Agent {
        name: "Ann".into(),
        ..a.clone()
    };
    assert_eq!(
        s.put_agent(&renamed, Some(1), t(9, 1)).await.unwrap(),
        PutAgentOutcome::Replaced { version: 2 }
    );
    assert_eq!(
        s.put_agent(&a, Some(1), t(9, 2)).await.unwrap(),
        PutAgentOutcome::Conflict { current: Some(2) },
        "a stale version is refused"
    );
    let v = view(s, "a1", t(9, 3)).await;
    assert_eq!((v.agent.name.as_str(), v.agent.version), ("Ann", 2));
    assert_eq!(v.status, AgentStatus::LoggedOut);
    let bad = Agent {
        lines: 0,
        ..a.clone()
    };
    let e = s.put_agent(&bad, None, t(9, 3)).await.unwrap_err();
    assert_eq!(e.to_string(), "agent: lines: 0: must be 1..=10");

    s.set_agent_status("a1", AgentStatus::Ready, t(9, 4))
        .await
        .unwrap();
    let res = reserve(s, &rules(Strategy::LongestIdle), 1, t(9, 5))
        .await
        .unwrap();
    assert_eq!(
        s.delete_agent("a1").await.unwrap(),
        DeleteAgentOutcome::Busy { reservations: 1 }
    );
    s.release_agent(
        res.id,
        Release::Unused,
        &rules(Strategy::LongestIdle),
        t(9, 6),
    )
    .await
    .unwrap();
    assert_eq!(
        s.delete_agent("a1").await.unwrap(),
        DeleteAgentOutcome::Deleted
    );
    assert_eq!(
        s.delete_agent("a1").await.unwrap(),
        DeleteAgentOutcome::NotFound
    );
    assert!(s.agent("a1", t(9, 7)).await.unwrap().is_none());
    assert!(s.agents(t(9, 7)).await.unwrap().is_empty());
    assert!(
        reserve(s, &rules(Strategy::LongestIdle), 2, t(9, 8))
            .await
            .is_none(),
        "a deleted agent leaves its team"
    );
}

pub async fn concurrent_nodes_never_reserve_an_agent_beyond_its_lines(s: &Store) {
    ready_agents(s, &[agent("one", 1, 1), agent("two", 1, 2)]).await;
    let r = rules(Strategy::LongestIdle);
    let mut tasks = Vec::new();
    for i in 0..24u64 {
        let (s, r) = (s.clone(), r.clone());
        let node = if i % 2 == 0 { "node-a" } else { "node-b" };
        tasks.push(tokio::spawn(async move {
            s.reserve_agent(&request(&r, i, node), t(9, 1))
                .await
                .unwrap()
        }));
    }
    let mut got = Vec::new();
    for task in tasks {
        if let Some(res) = task.await.unwrap() {
            got.push(res);
        }
    }
    let count = |id: &str| got.iter().filter(|r| r.agent == id).count();
    assert_eq!((count("one"), count("two")), (1, 2), "{got:?}");
    let mut lines: Vec<u32> = got
        .iter()
        .filter(|r| r.agent == "two")
        .map(|r| r.line)
        .collect();
    lines.sort();
    assert_eq!(lines, vec![1, 2]);
    assert_eq!(view(s, "two", t(9, 1)).await.reservations.len(), 2);
    assert_eq!(view(s, "one", t(9, 1)).await.state, AgentState::Reserved);
}

pub async fn each_strategy_picks_its_agent_among_the_highest_level(s: &Store) {
    ready_agents(
        s,
        &[
            agent("a", 5, 1),
            agent("b", 5, 1),
            agent("c", 5, 1),
            agent("low", 1, 1),
        ],
    )
    .await;
    // b: 2 calls of 1 min ending 9:05; a: 1 call of 10 min ending 9:20; c: none (free since 9:00).
    let r = rules(Strategy::TopDown);
    assert_eq!(call(s, &r, Some("b"), 1, t(9, 2), 1).await, "b");
    assert_eq!(call(s, &r, Some("b"), 2, t(9, 4), 1).await, "b");
    assert_eq!(call(s, &r, None, 3, t(9, 10), 10).await, "a");
    let pick = |st| async move { reserve(s, &rules(st), 9, t(9, 30)).await.unwrap() };
    for (st, want) in [
        (Strategy::LongestIdle, "c"),
        (Strategy::FewestCalls, "c"),
        (Strategy::LeastTalkTime, "c"),
        (Strategy::TopDown, "a"),
    ] {
        let res = pick(st).await;
        assert_eq!(res.agent, want, "{st:?}");
        s.release_agent(res.id, Release::Unused, &rules(st), t(9, 30))
            .await
            .unwrap();
    }
    // Without c: least talk is b (2 min), fewest calls is a (1).
    let mut req = request(&rules(Strategy::LeastTalkTime), 9, NODE);
    req.exclude = vec!["c".into()];
    assert_eq!(
        s.reserve_agent(&req, t(9, 30))
            .await
            .unwrap()
            .unwrap()
            .agent,
        "b"
    );
    req.rules.strategy = Strategy::FewestCalls;
    req.attempt = Uuid::new_v4();
    assert_eq!(
        s.reserve_agent(&req, t(9, 30))
            .await
            .unwrap()
            .unwrap()
            .agent,
        "a"
    );
    // Only c is left at level 5: the preferred low-level agent still comes first.
    req.exclude.clear();
    req.prefer = Some("low".into());
    req.attempt = Uuid::new_v4();
    assert_eq!(
        s.reserve_agent(&req, t(9, 30))
            .await
            .unwrap()
            .unwrap()
            .agent,
        "low"
    );
    req.prefer = None;
    req.attempt = Uuid::new_v4();
    assert_eq!(
        s.reserve_agent(&req, t(9, 30))
            .await
            .unwrap()
            .unwrap()
            .agent,
        "c"
    );
    assert!(
        s.reserve_agent(&req, t(9, 30)).await.unwrap().is_none(),
        "everyone is reserved"
    );
}

pub async fn round_robin_and_random_take_turns_among_free_agents(s: &Store) {
    ready_agents(s, &[agent("a", 1, 1), agent("b", 1, 1), agent("c", 1, 1)]).await;
    let r = rules(Strategy::RoundRobin);
    let mut order = Vec::new();
    for i in 0..6 {
        order.push(call(s, &r, None, i, t(9, 10 + i as u32), 0).await);
    }
    assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);
    let r = rules(Strategy::Random);
    for i in 0..6 {
        let res = reserve(s, &r, 100 + i, t(10, 0)).await;
        assert_eq!(res.is_some(), i < 3, "three agents, three reservations");
    }
}

pub async fn a_talking_line_releases_the_agents_other_lines(s: &Store) {
    ready_agents(s, &[agent("a", 1, 3)]).await;
    let r = rules(Strategy::LongestIdle);
    let first = reserve(s, &r, 1, t(9, 1)).await.unwrap();
    let second = reserve(s, &r, 2, t(9, 1)).await.unwrap();
    let third = reserve(s, &r, 3, t(9, 1)).await.unwrap();
    assert_eq!((first.line, second.line, third.line), (1, 2, 3));
    assert!(
        reserve(s, &r, 4, t(9, 1)).await.is_none(),
        "three lines held"
    );
    let mut siblings = s.agent_talking(second.id, t(9, 2)).await.unwrap().unwrap();
    siblings.sort_by_key(|r| r.line);
    assert_eq!(siblings, vec![first.clone(), third.clone()]);
    let v = view(s, "a", t(9, 2)).await;
    assert_eq!(v.state, AgentState::Talking);
    assert_eq!(v.reservations.len(), 1);
    assert_eq!(v.last_call.as_ref().map(|c| c.member), Some(MemberId(2)));
    assert!(
        reserve(s, &r, 5, t(9, 2)).await.is_none(),
        "a talking agent gets no line"
    );
    assert_eq!(
        s.release_agent(first.id, Release::Unused, &r, t(9, 3))
            .await
            .unwrap(),
        ReleaseAgentOutcome::Unknown,
        "a sibling released by the answer is gone"
    );
}

pub async fn missed_offers_pause_the_agent_at_max_no_answer(s: &Store) {
    ready_agents(s, &[agent("a", 1, 1)]).await;
    let r = TeamRules {
        max_no_answer: 2,
        no_answer_delay: Duration::from_secs(30),
        ..rules(Strategy::LongestIdle)
    };
    let res = reserve(s, &r, 1, t(9, 0)).await.unwrap();
    s.agent_offering(res.id, Uuid::new_v4(), t(9, 0))
        .await
        .unwrap();
    s.release_agent(res.id, Release::Missed, &r, t(9, 1))
        .await
        .unwrap();
    let v = view(s, "a", t(9, 1)).await;
    let until = t(9, 1) + CDuration::seconds(30);
    assert_eq!(v.state, AgentState::Missed { until });
    assert_eq!((v.stats.missed, v.no_answer_streak), (1, 1));
    assert!(
        reserve(s, &r, 2, t(9, 1)).await.is_none(),
        "not offered during the no-answer delay"
    );
    let res = reserve(s, &r, 2, t(9, 2))
        .await
        .expect("free again after the delay");
    s.release_agent(res.id, Release::Missed, &r, t(9, 3))
        .await
        .unwrap();
    let v = view(s, "a", t(9, 4)).await;
    assert_eq!(
        v.status,
        AgentStatus::Paused {
            reason: "no_answer".into(),
            until: None
        }
    );
    assert_eq!(v.stats.missed, 2);
    assert!(reserve(s, &r, 3, t(9, 10)).await.is_none());
}

pub async fn wrap_up_holds_the_agent_until_it_ends_or_is_ended(s: &Store) {
    ready_agents(s, &[agent("a", 1, 1)]).await;
    let r = TeamRules {
        wrap_up: Duration::from_secs(120),
        ..rules(Strategy::LongestIdle)
    };
    call(s, &r, None, 1, t(9, 10), 5).await;
    let v = view(s, "a", t(9, 16)).await;
    assert_eq!(v.state, AgentState::WrapUp { until: t(9, 17) });
    assert_eq!(v.state_since, t(9, 15));
    assert!(reserve(s, &r, 2, t(9, 16)).await.is_none(), "in wrap-up");
    let res = reserve(s, &r, 2, t(9, 17)).await.expect("wrap-up over");
    s.release_agent(
        res.id,
        Release::Finished {
            talk: Duration::from_secs(60),
        },
        &r,
        t(9, 20),
    )
    .await
    .unwrap();
    assert!(
        s.end_wrap_up("a", t(9, 21)).await.unwrap(),
        "the result ends it early"
    );
    assert!(!s.end_wrap_up("a", t(9, 21)).await.unwrap());
    let v = view(s, "a", t(9, 30)).await;
    assert_eq!(v.state, AgentState::Idle);
    assert_eq!(v.stats.calls, 2);
    assert_eq!(v.stats.talk_ms, 6 * 60_000);
    assert_eq!(v.stats.wrap_ms, 3 * 60_000, "2 min, then 1 min ended early");
    assert_eq!(v.stats.logged_in_ms, 30 * 60_000);
    // Idle: 9:00–9:10, 9:17 (reserved then), 9:21–9:30.
    assert_eq!(v.stats.idle_ms, 19 * 60_000);
    assert_eq!(v.stats.occupancy(), Some(9.0 / 30.0));
}

pub async fn a_pause_with_until_returns_to_ready_by_itself(s: &Store) {
    ready_agents(s, &[agent("a", 1, 1)]).await;
    let r = rules(Strategy::LongestIdle);
    let until = t(9, 20);
    let pause = AgentStatus::Paused {
        reason: "break".into(),
        until: Some(until),
    };
    assert_eq!(
        s.set_agent_status("a", pause.clone(), t(9, 10))
            .await
            .unwrap(),
        SetStatusOutcome::Applied
    );
    assert_eq!(view(s, "a", t(9, 15)).await.status, pause);
    assert!(reserve(s, &r, 1, t(9, 15)).await.is_none(), "paused");
    let v = view(s, "a", t(9, 30)).await;
    assert_eq!(v.status, AgentStatus::Ready);
    assert_eq!(v.stats.paused_ms, 10 * 60_000);
    assert_eq!(v.stats.occupancy(), Some(0.0));
    assert!(reserve(s, &r, 1, t(9, 30)).await.is_some());
    assert_eq!(
        s.set_agent_status("nobody", AgentStatus::Ready, t(9, 30))
            .await
            .unwrap(),
        SetStatusOutcome::NotFound
    );
}

pub async fn logout_while_talking_applies_when_the_call_ends(s: &Store) {
    ready_agents(s, &[agent("a", 1, 1)]).await;
    let r = TeamRules {
        wrap_up: Duration::from_secs(60),
        ..rules(Strategy::LongestIdle)
    };
    let res = reserve(s, &r, 1, t(9, 1)).await.unwrap();
    s.agent_talking(res.id, t(9, 2)).await.unwrap();
    assert_eq!(
        s.set_agent_status("a", AgentStatus::LoggedOut, t(9, 3))
            .await
            .unwrap(),
        SetStatusOutcome::Pending
    );
    let v = view(s, "a", t(9, 4)).await;
    assert_eq!(
        (v.status.clone(), v.state.clone()),
        (AgentStatus::Ready, AgentState::Talking)
    );
    assert_eq!(v.pending_status, Some(AgentStatus::LoggedOut));
    s.release_agent(
        res.id,
        Release::Finished {
            talk: Duration::from_secs(180),
        },
        &r,
        t(9, 5),
    )
    .await
    .unwrap();
    let v = view(s, "a", t(9, 6)).await;
    assert_eq!(
        (v.status, v.state, v.pending_status),
        (AgentStatus::LoggedOut, AgentState::Idle, None)
    );
    assert_eq!(v.stats.calls, 1);
    assert_eq!(v.stats.logged_in_ms, 5 * 60_000);
    assert!(reserve(s, &r, 2, t(9, 7)).await.is_none());
}

pub async fn on_demand_offers_one_call_then_pauses(s: &Store) {
    s.put_agent(&agent("a", 1, 2), None, t(9, 0)).await.unwrap();
    s.set_agent_status("a", AgentStatus::OnDemand, t(9, 0))
        .await
        .unwrap();
    let r = rules(Strategy::LongestIdle);
    let res = reserve(s, &r, 1, t(9, 1)).await.unwrap();
    assert!(
        reserve(s, &r, 2, t(9, 1)).await.is_none(),
        "one call only, despite two lines"
    );
    s.release_agent(res.id, Release::Unused, &r, t(9, 2))
        .await
        .unwrap();
    assert_eq!(
        view(s, "a", t(9, 2)).await.status,
        AgentStatus::OnDemand,
        "an unused reservation gives it back"
    );
    call(s, &r, None, 3, t(9, 3), 1).await;
    assert_eq!(
        view(s, "a", t(9, 5)).await.status,
        AgentStatus::Paused {
            reason: "on_demand".into(),
            until: None
        }
    );
}

pub async fn expired_leases_of_a_dead_node_release_its_reservations(s: &Store) {
    ready_agents(s, &[agent("a", 1, 1), agent("b", 1, 1)]).await;
    let r = rules(Strategy::TopDown);
    let alive = s
        .reserve_agent(&request(&r, 1, "node-a"), t(9, 0))
        .await
        .unwrap()
        .unwrap();
    let dead = s
        .reserve_agent(&request(&r, 2, "node-b"), t(9, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((alive.agent.as_str(), dead.agent.as_str()), ("a", "b"));
    let lost = s
        .renew_agent_reservations(
            "node-a",
            &[alive.id, dead.id],
            t(9, 0) + CDuration::seconds(50),
            LEASE,
        )
        .await
        .unwrap();
    assert_eq!(
        lost,
        vec![dead.id],
        "another node's reservation is not renewed"
    );
    assert_eq!(
        s.recover_agent_reservations(t(9, 0) + CDuration::seconds(59))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.recover_agent_reservations(t(9, 0) + CDuration::seconds(61))
            .await
            .unwrap(),
        1
    );
    let v = view(s, "b", t(9, 2)).await;
    assert_eq!((v.state, v.reservations.len()), (AgentState::Idle, 0));
    assert_eq!(
        view(s, "a", t(9, 2)).await.reservations.len(),
        1,
        "renewed: kept"
    );
    assert_eq!(
        s.release_agent(dead.id, Release::Missed, &r, t(9, 2))
            .await
            .unwrap(),
        ReleaseAgentOutcome::Unknown
    );
    assert_eq!(
        view(s, "b", t(9, 2)).await.stats.missed,
        0,
        "an unknown release changes nothing"
    );
    let lost = s
        .renew_agent_reservations("node-b", &[dead.id], t(9, 2), LEASE)
        .await
        .unwrap();
    assert_eq!(lost, vec![dead.id]);
}

pub async fn a_node_adopting_calls_takes_their_reservations_with_the_agent_leg_and_a_fresh_lease(
    s: &Store,
) {
    let r = rules(Strategy::LongestIdle);
    ready_agents(s, &[agent("a", 1, 1), agent("b", 1, 1)]).await;
    let talking = reserve(s, &r, 1, t(9, 0)).await.unwrap();
    let ringing = reserve(s, &r, 2, t(9, 0)).await.unwrap();
    let (talking_leg, ringing_leg) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(
        s.agent_offering(talking.id, talking_leg, t(9, 0))
            .await
            .unwrap()
    );
    s.agent_talking(talking.id, t(9, 0)).await.unwrap();
    assert!(
        s.agent_offering(ringing.id, ringing_leg, t(9, 0))
            .await
            .unwrap()
    );
    let attempt_of = |v: AgentView, id: ReservationId| {
        v.reservations.iter().find(|h| h.id == id).unwrap().attempt
    };
    let talking_attempt = attempt_of(view(s, &talking.agent, t(9, 0)).await, talking.id);
    let ringing_attempt = attempt_of(view(s, &ringing.agent, t(9, 0)).await, ringing.id);
    // Another node adopts both calls after the first one died (50 s later, its leases nearly out).
    let now = t(9, 0) + CDuration::seconds(50);
    let mut adopted = s
        .adopt_agent_reservations(
            "node-b",
            &[talking_attempt, ringing_attempt, Uuid::new_v4()],
            now,
            LEASE,
        )
        .await
        .unwrap();
    adopted.sort_by_key(|a| a.reservation.agent.clone());
    assert_eq!(adopted.len(), 2, "{adopted:?}");
    assert_eq!(
        (adopted[0].attempt, adopted[0].state, adopted[0].agent_leg),
        (
            talking_attempt,
            ReservationState::Talking,
            Some(talking_leg)
        )
    );
    assert_eq!(adopted[0].reservation.id, talking.id);
    assert_eq!(
        (adopted[1].attempt, adopted[1].state, adopted[1].agent_leg),
        (
            ringing_attempt,
            ReservationState::Offering,
            Some(ringing_leg)
        )
    );
    // The lease runs from the adoption and belongs to the new node: no recovery frees the agents at the old
    // lease's end, the old node no longer renews them, the new one does.
    assert_eq!(
        s.recover_agent_reservations(t(9, 0) + CDuration::seconds(61))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        view(s, &talking.agent, t(9, 1) + CDuration::seconds(1))
            .await
            .state,
        AgentState::Talking
    );
    let ids = [talking.id, ringing.id];
    assert_eq!(
        s.renew_agent_reservations(NODE, &ids, now, LEASE)
            .await
            .unwrap(),
        ids.to_vec()
    );
    assert!(
        s.renew_agent_reservations("node-b", &ids, now, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.adopt_agent_reservations("node-b", &[], now, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn the_agent_inbox_is_bounded_and_taken_oldest_first(s: &Store) {
    let msg = |i: u32| AgentMessage::Skip {
        reservation: Uuid::from_u128(u128::from(i)),
    };
    for i in 0..INBOX_CAP as u32 {
        s.post_agent_message("node-a", &msg(i)).await.unwrap();
    }
    let e = s.post_agent_message("node-a", &msg(0)).await.unwrap_err();
    assert!(e.to_string().contains("is full"), "{e}");
    s.post_agent_message("node-b", &msg(7)).await.unwrap();
    assert_eq!(
        s.take_agent_messages("node-a", 2).await.unwrap(),
        vec![msg(0), msg(1)]
    );
    s.post_agent_message("node-a", &msg(0)).await.unwrap();
    let rest = s
        .take_agent_messages("node-a", INBOX_CAP * 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), INBOX_CAP - 1);
    assert_eq!(rest.last(), Some(&msg(0)));
    assert!(
        s.take_agent_messages("node-a", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let result = AgentMessage::Result {
        campaign: C.into(),
        member: MemberId(3),
        attempt: Uuid::new_v4(),
        result: AgentResult {
            success: true,
            next_after_sec: Some(60),
            ..AgentResult::default()
        },
    };
    s.post_agent_message("node-b", &result).await.unwrap();
    assert_eq!(
        s.take_agent_messages("node-b", 10).await.unwrap(),
        vec![msg(7), result]
    );
}

/// The pacer's view of a team: free, busy (reserved, offered or talking) and in wrap-up, with the instant each
/// talking agent began to talk (its `state_since`), so the pacer can tell a call just begun from one near its end.
pub async fn the_team_snapshot_gives_each_talking_agent_its_talk_start(s: &Store) {
    ready_agents(
        s,
        &[
            agent("a", 1, 1),
            agent("b", 1, 1),
            agent("c", 1, 1),
            agent("d", 1, 1),
        ],
    )
    .await;
    let r = TeamRules {
        wrap_up: Duration::from_secs(600),
        ..rules(Strategy::LongestIdle)
    };
    // "a" talks from 9:02, "b" from 9:04 (offered at 9:03), "c" is reserved, "d" idle.
    let talk = |id: Uuid, offered: chrono::DateTime<chrono::Utc>, talking| async move {
        assert!(s.agent_offering(id, Uuid::new_v4(), offered).await.unwrap());
        assert!(s.agent_talking(id, talking).await.unwrap().is_some());
    };
    let first = reserve(s, &r, 1, t(9, 1)).await.unwrap();
    talk(first.id, t(9, 1), t(9, 2)).await;
    let second = reserve(s, &r, 2, t(9, 3)).await.unwrap();
    talk(second.id, t(9, 3), t(9, 4)).await;
    reserve(s, &r, 3, t(9, 5)).await.unwrap();
    let team = s.team_counts(TEAM, t(9, 6)).await.unwrap();
    assert_eq!(
        (team.counts.free, team.counts.busy, team.counts.wrapping),
        (1, 3, 0)
    );
    let mut started = team.talk_started.clone();
    started.sort();
    assert_eq!(started, vec![t(9, 2), t(9, 4)]);
    let mut ages = team.talk_ages_sec(t(9, 6));
    ages.sort_by(f64::total_cmp);
    assert_eq!(ages, vec![120.0, 240.0]);
    // A finished call leaves wrap-up, with no talk start.
    s.release_agent(
        first.id,
        Release::Finished {
            talk: Duration::from_secs(300),
        },
        &r,
        t(9, 7),
    )
    .await
    .unwrap();
    let team = s.team_counts(TEAM, t(9, 8)).await.unwrap();
    assert_eq!(
        (team.counts.free, team.counts.busy, team.counts.wrapping),
        (1, 2, 1)
    );
    assert_eq!(team.talk_started, vec![t(9, 4)]);
}

contract!(
    the_team_snapshot_gives_each_talking_agent_its_talk_start,
    agents_are_created_replaced_by_version_and_deleted_when_free,
    concurrent_nodes_never_reserve_an_agent_beyond_its_lines,
    each_strategy_picks_its_agent_among_the_highest_level,
    round_robin_and_random_take_turns_among_free_agents,
    a_talking_line_releases_the_agents_other_lines,
    missed_offers_pause_the_agent_at_max_no_answer,
    wrap_up_holds_the_agent_until_it_ends_or_is_ended,
    a_pause_with_until_returns_to_ready_by_itself,
    logout_while_talking_applies_when_the_call_ends,
    on_demand_offers_one_call_then_pauses,
    expired_leases_of_a_dead_node_release_its_reservations,
    a_node_adopting_calls_takes_their_reservations_with_the_agent_leg_and_a_fresh_lease,
    the_agent_inbox_is_bounded_and_taken_oldest_first,
);
