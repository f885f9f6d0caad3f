//! The agent routes over real HTTP against a real Redis: CRUD with versions, the `agent` role bound to its agent,
//! statuses, accept/skip and results posted to the inbox of the node owning the call, the live view with the
//! member, per-agent metrics and the OpenAPI entries.

use super::api_support::*;
use fsdialer::agents::*;
use fsdialer::campaign::schedule::Always;
use fsdialer::store::{MemberId, QueuePolicy};
use serde_json::{Value, json};
use std::time::Duration;

/// A node that no engine runs here: what is posted to it stays in its inbox for the test to read.
const OTHER_NODE: &str = "other-node";

fn agent_body(id: &str) -> Value {
    json!({"id": id, "name": format!("Agent {id}"), "dial_string": format!("loopback/{id}/default"),
           "teams": [{"team": "sales", "level": 1}]})
}

async fn as_agent(api: &Api, method: &str, path: &str, body: Option<Value>) -> Answer {
    api.raw(
        method,
        path,
        Some(AGENT_A1),
        body.map(|b| (b.to_string().into_bytes(), "application/json")),
    )
    .await
}

#[tokio::test]
async fn agents_are_created_versioned_and_refused_with_clear_errors() {
    let api = start().await;
    let a = api
        .call("POST", "/api/v2/agents", Some(agent_body("a1")))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["data"]["agent"]["version"], 1);
    assert_eq!(a.json["data"]["agent"]["lines"], 1);
    assert_eq!(a.json["data"]["status"]["type"], "logged_out");
    assert_eq!(a.json["data"]["state"]["type"], "idle");
    let again = api
        .call("POST", "/api/v2/agents", Some(agent_body("a1")))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    let mut bad = agent_body("a2");
    bad["lines"] = json!(0);
    let e = api.call("POST", "/api/v2/agents", Some(bad)).await;
    assert_eq!(
        (e.status, e.json["info"].as_str()),
        (422, Some("agent: lines: 0: must be 1..=10"))
    );
    bad = agent_body("a2");
    bad["teams"][0]["level"] = json!("high");
    let e = api.call("POST", "/api/v2/agents", Some(bad)).await;
    assert_eq!(e.status, 400);
    assert!(
        e.json["info"]
            .as_str()
            .unwrap()
            .starts_with("body.teams[0].level: invalid type"),
        "{}",
        e.text
    );
    bad = agent_body("a2");
    bad["colour"] = json!("red");
    let e = api.call("POST", "/api/v2/agents", Some(bad)).await;
    assert!(
        e.json["info"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{}",
        e.text
    );

    let mut change = agent_body("a1");
    change["name"] = json!("Ann");
    change["version"] = json!(7);
    let stale = api
        .call("PUT", "/api/v2/agents/a1", Some(change.clone()))
        .await;
    assert_eq!(stale.status, 409);
    assert_eq!(
        stale.json["info"],
        "version: the agent is at version 1, not 7; read it again"
    );
    change["version"] = json!(1);
    let ok = api.call("PUT", "/api/v2/agents/a1", Some(change)).await;
    assert_eq!(
        (ok.status, &ok.json["data"]["agent"]["version"]),
        (200, &json!(2)),
        "{}",
        ok.text
    );
    assert_eq!(
        api.call("PUT", "/api/v2/agents/zz", Some(agent_body("zz")))
            .await
            .status,
        200,
        "PUT without version creates"
    );
    let list = api.get("/api/v2/agents").await;
    assert_eq!(list.json["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        api.call("DELETE", "/api/v2/agents/zz", None).await.status,
        200
    );
    assert_eq!(
        api.call("DELETE", "/api/v2/agents/zz", None).await.status,
        404
    );
    assert_eq!(api.get("/api/v2/agents/zz").await.status, 404);
    api.shutdown().await;
}

#[tokio::test]
async fn an_agent_key_acts_only_for_its_own_agent() {
    let api = start().await;
    for id in ["a1", "a2"] {
        assert_eq!(
            api.call("POST", "/api/v2/agents", Some(agent_body(id)))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        as_agent(&api, "GET", "/api/v2/agents/a1", None)
            .await
            .status,
        200
    );
    assert_eq!(
        as_agent(&api, "GET", "/api/v2/agents/a2", None)
            .await
            .status,
        403
    );
    let mine = as_agent(&api, "GET", "/api/v2/agents", None).await;
    assert_eq!(
        mine.json["data"].as_array().unwrap().len(),
        1,
        "an agent lists itself only"
    );
    assert_eq!(
        as_agent(&api, "PUT", "/api/v2/agents/a1", Some(agent_body("a1")))
            .await
            .status,
        403
    );
    assert_eq!(
        as_agent(&api, "GET", "/api/v2/dialer", None).await.status,
        403,
        "no campaign routes"
    );
    assert_eq!(
        as_agent(&api, "PUT", "/api/v2/agents/a2/status/ready", None)
            .await
            .status,
        403
    );
    let ready = as_agent(&api, "PUT", "/api/v2/agents/a1/status/ready", None).await;
    assert_eq!(
        (ready.status, &ready.json["data"]["applied"]),
        (200, &json!("now")),
        "{}",
        ready.text
    );
    assert_eq!(ready.json["data"]["status"]["type"], "ready");
    let pause = as_agent(
        &api,
        "PUT",
        "/api/v2/agents/a1/status/pause",
        Some(json!({"reason": "lunch", "timeout_sec": 600})),
    )
    .await;
    assert_eq!(
        pause.json["data"]["status"]["reason"], "lunch",
        "{}",
        pause.text
    );
    assert!(pause.json["data"]["status"]["until"].is_string());
    let bad = as_agent(&api, "PUT", "/api/v2/agents/a1/status/sleep", None).await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json["info"],
        "status: \"sleep\": expected ready, pause, logout or on_demand"
    );
    let bad = as_agent(
        &api,
        "PUT",
        "/api/v2/agents/a1/status/ready",
        Some(json!({"timeout_sec": 5})),
    )
    .await;
    assert_eq!(bad.status, 422);
    let ro = api
        .raw("PUT", "/api/v2/agents/a1/status/ready", Some(READER), None)
        .await;
    assert_eq!(ro.status, 403, "read-only changes no status");
    assert_eq!(
        api.call("PUT", "/api/v2/agents/a2/status/on_demand", None)
            .await
            .status,
        200,
        "admin acts for anyone"
    );
    let nothing = as_agent(&api, "PUT", "/api/v2/agents/a1/accept", None).await;
    assert_eq!(
        (nothing.status, nothing.json["info"].as_str()),
        (409, Some("agent \"a1\" has no call offered"))
    );
    api.shutdown().await;
}

#[tokio::test]
async fn offers_and_results_go_to_the_node_owning_the_call_and_show_the_member() {
    let api = start().await;
    let store = api.running.state.store.clone();
    api.create_campaign("c1").await;
    let mut m = member("Ann", "380441234567");
    m["variables"] = json!({"debt": 100});
    assert_eq!(
        api.call("POST", "/api/v2/dialer/c1/members", Some(m))
            .await
            .status,
        200
    );
    assert_eq!(
        api.call("POST", "/api/v2/agents", Some(agent_body("a1")))
            .await
            .status,
        200
    );
    assert_eq!(
        as_agent(&api, "PUT", "/api/v2/agents/a1/status/ready", None)
            .await
            .status,
        200
    );

    // The result of a member without an attempt in progress is refused.
    let early = as_agent(
        &api,
        "PUT",
        "/api/v2/dialer/c1/members/1/status",
        Some(json!({"success": true})),
    )
    .await;
    assert_eq!(
        early.status, 403,
        "a1 is not handling member 1 yet: {}",
        early.text
    );
    let early = api
        .call(
            "PUT",
            "/api/v2/dialer/c1/members/1/status",
            Some(json!({"success": true})),
        )
        .await;
    assert_eq!(early.status, 409, "{}", early.text);
    assert!(
        early.json["info"]
            .as_str()
            .unwrap()
            .contains("has no attempt in progress")
    );

    // Another node claims the member and reserves the agent for it, then shows the preview.
    let now = chrono::Utc::now();
    let lease = Duration::from_secs(60);
    let claim = store
        .claim(
            "c1",
            &QueuePolicy::default(),
            &Always,
            now,
            1,
            OTHER_NODE,
            lease,
        )
        .await
        .unwrap()
        .claims
        .remove(0);
    let rules = TeamRules {
        wrap_up: Duration::from_secs(600),
        ..TeamRules::new("sales")
    };
    let req = ReserveRequest {
        rules: rules.clone(),
        campaign: "c1".into(),
        member: MemberId(1),
        attempt: claim.attempt_id,
        node: OTHER_NODE.into(),
        lease,
        prefer: None,
        exclude: vec![],
    };
    let res = store
        .reserve_agent(&req, now)
        .await
        .unwrap()
        .expect("a1 is ready");
    assert_eq!(
        api.call("DELETE", "/api/v2/agents/a1", None).await.status,
        409,
        "reserved"
    );
    assert!(
        store
            .agent_offering(res.id, uuid::Uuid::new_v4(), now)
            .await
            .unwrap()
    );
    let v = as_agent(&api, "GET", "/api/v2/agents/a1", None).await;
    assert_eq!(v.json["data"]["state"]["type"], "offering", "{}", v.text);
    let member = &v.json["data"]["member"];
    assert_eq!(
        (member["name"].as_str(), member["number"].as_str()),
        (Some("Ann"), Some("380441234567"))
    );
    assert_eq!(member["variables"]["debt"], 100);
    assert_eq!(member["campaign"], "c1");

    let acc = as_agent(&api, "PUT", "/api/v2/agents/a1/accept", None).await;
    assert_eq!(
        (acc.status, &acc.json["data"]["node"]),
        (200, &json!(OTHER_NODE)),
        "{}",
        acc.text
    );
    assert_eq!(
        api.call("PUT", "/api/v2/agents/a1/skip", None).await.status,
        200
    );
    assert_eq!(
        store.take_agent_messages(OTHER_NODE, 10).await.unwrap(),
        vec![
            AgentMessage::Accept {
                reservation: res.id
            },
            AgentMessage::Skip {
                reservation: res.id
            }
        ]
    );

    // The call is answered, then ends: wrap-up; the result ends it and reaches the node.
    store.agent_talking(res.id, now).await.unwrap();
    store
        .release_agent(
            res.id,
            Release::Finished {
                talk: Duration::from_secs(30),
            },
            &rules,
            now,
        )
        .await
        .unwrap();
    let body =
        json!({"success": false, "next_after_sec": 3600, "description": "call back tomorrow"});
    let r = as_agent(
        &api,
        "PUT",
        "/api/v2/dialer/c1/members/1/status",
        Some(body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.json["data"]["node"], &r.json["data"]["wrap_up_ended"]),
        (&json!(OTHER_NODE), &json!(true))
    );
    let got = store.take_agent_messages(OTHER_NODE, 10).await.unwrap();
    let [
        AgentMessage::Result {
            campaign,
            member,
            attempt,
            result,
        },
    ] = got.as_slice()
    else {
        panic!("one result expected: {got:?}");
    };
    assert_eq!(
        (campaign.as_str(), *member, *attempt),
        ("c1", MemberId(1), claim.attempt_id)
    );
    assert_eq!(result.next_after_sec, Some(3600));
    assert_eq!(result.agent.as_deref(), Some("a1"));
    // Fields the engine does not apply yet are refused, not accepted and ignored.
    for (body, field) in [
        (
            json!({"success": false, "reset_retries": true}),
            "reset_retries",
        ),
        (
            json!({"success": false, "next_communication": "380501112233"}),
            "next_communication",
        ),
    ] {
        let r = as_agent(
            &api,
            "PUT",
            "/api/v2/dialer/c1/members/1/status",
            Some(body),
        )
        .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.text.contains(field), "{}", r.text);
    }
    assert!(
        store
            .take_agent_messages(OTHER_NODE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let ro = api
        .raw(
            "PUT",
            "/api/v2/dialer/c1/members/1/status",
            Some(READER),
            Some((b"{\"success\":true}".to_vec(), "application/json")),
        )
        .await;
    assert_eq!(ro.status, 403);
    let w = api
        .raw(
            "PUT",
            "/api/v2/dialer/c1/members/1/status",
            Some(WRITER),
            Some((b"{\"success\":true}".to_vec(), "application/json")),
        )
        .await;
    assert_eq!(
        (w.status, &w.json["data"]["agent"]),
        (200, &json!("a1")),
        "a CRM's result finds the agent: {}",
        w.text
    );

    let m = api.raw("GET", "/metrics", Some(READER), None).await;
    for needle in [
        "fsdialer_agent_calls_total{agent=\"a1\"} 1",
        "fsdialer_agent_talk_seconds{agent=\"a1\"} 30",
        "fsdialer_agent_occupancy{agent=\"a1\"}",
        "fsdialer_agents{state=\"idle\"} 1",
        "fsdialer_agents_status{status=\"ready\"} 1",
    ] {
        assert!(m.text.contains(needle), "{needle} missing from /metrics");
    }
    let o = api.raw("GET", "/api/v2/openapi.json", None, None).await;
    let paths = &o.json["paths"];
    for (path, method) in [
        ("/api/v2/agents", "get"),
        ("/api/v2/agents", "post"),
        ("/api/v2/agents/{id}", "put"),
        ("/api/v2/agents/{id}/status/{status}", "put"),
        ("/api/v2/agents/{id}/accept", "put"),
        ("/api/v2/agents/{id}/skip", "put"),
        ("/api/v2/dialer/{id}/members/{mid}/status", "put"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    api.shutdown().await;
}
