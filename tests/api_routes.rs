//! Every route of the REST API over real HTTP, against a real Redis, with the engine and a simulated switch.

mod api_support;
mod tls_support;

use api_support::*;
use serde_json::{Value, json};

const WEBITEL_ID: &str = "571f2e2e6ea6478aba60581a";

#[tokio::test]
async fn the_webitel_documentation_request_is_accepted_as_is() {
    let api = start().await;
    api.create_campaign(WEBITEL_ID).await;
    let body = r#"{"name": "Igor Navrotskyj", "priority": 0, "timezone": "Europe/Kiev", "variables": {"debt": 20000, "language": "ru", "productID": "8fd26a17-eb28-4c74-aa6f-a3794f4f466c"}, "communications": [{"number": "380931234567", "priority": 1}, {"number": "380441234567", "priority": 0}]}"#;
    let r = api
        .http
        .post(api.url(&format!("/api/v2/dialer/{WEBITEL_ID}/members?autoRun=true")))
        .header("Content-Type", "application/json")
        .header("X-Access-Token", ADMIN.1)
        .header("X-Key", ADMIN.0)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "OK");
    assert_eq!(v["data"]["_id"], "1");
    assert_eq!(v["data"]["result"], "added");
    let m = api
        .get(&format!("/api/v2/dialer/{WEBITEL_ID}/members/1"))
        .await;
    assert_eq!(m.status, 200);
    assert_eq!(m.json["data"]["name"], "Igor Navrotskyj");
    assert_eq!(m.json["data"]["timezone"], "Europe/Kiev");
    assert_eq!(m.json["data"]["variables"]["debt"], 20000);
    assert_eq!(
        m.json["data"]["variables"]["productID"],
        "8fd26a17-eb28-4c74-aa6f-a3794f4f466c"
    );
    assert_eq!(
        m.json["data"]["communications"][0]["number"],
        "380931234567"
    );
    assert_eq!(m.json["data"]["communications"][0]["priority"], 1);
    // autoRun started the campaign, and the command is stored for every node.
    let c = api.get(&format!("/api/v2/dialer/{WEBITEL_ID}")).await;
    assert_eq!(c.json["data"]["run"], true);
    assert_eq!(c.json["data"]["state"], 1, "{}", c.text);
    api.shutdown().await;
}

#[tokio::test]
async fn campaigns_are_created_read_changed_run_stopped_and_deleted() {
    let api = start().await;
    // Created without an id: one is generated, Webitel-style.
    let mut body = campaign("x");
    body.as_object_mut().unwrap().remove("id");
    let a = api.call("POST", "/api/v2/dialer", Some(body)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let id = a.json["data"]["_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 24);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(a.json["data"]["state_name"], "idle");

    // A second campaign with the same id is a conflict.
    let dup = api
        .call("POST", "/api/v2/dialer", Some(campaign(&id)))
        .await;
    assert_eq!(dup.status, 409, "{}", dup.text);
    assert_eq!(dup.json["status"], "error");

    let list = api.get("/api/v2/dialer").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.json["data"][0]["_id"], id.as_str());

    // PUT changes only the fields given.
    let p = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}"),
            Some(json!({"limit": 7})),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.json["data"]["limit"], 7);
    assert_eq!(p.json["data"]["max_tries"], 3);
    // A view read with GET can be PUT back unchanged.
    let got = api.get(&format!("/api/v2/dialer/{id}")).await;
    let back = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}"),
            Some(got.json["data"].clone()),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.text);
    // The same view PUT again carries a version that is no longer current: refused, nothing changes.
    let mut stale = got.json["data"].clone();
    stale["limit"] = serde_json::json!(9);
    let refused = api
        .call("PUT", &format!("/api/v2/dialer/{id}"), Some(stale))
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("version"), "{}", refused.text);
    // An invalid change is refused with its path and nothing changes.
    let bad = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}"),
            Some(json!({"limit": 0})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(
        bad.json["info"].as_str().unwrap().contains("limit"),
        "{}",
        bad.text
    );
    assert_eq!(
        api.get(&format!("/api/v2/dialer/{id}")).await.json["data"]["limit"],
        7
    );
    let other_id = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}"),
            Some(json!({"id": "other"})),
        )
        .await;
    assert_eq!(other_id.status, 422, "{}", other_id.text);

    // Run (1) and stop (3); anything else is refused.
    let run = api
        .call("PUT", &format!("/api/v2/dialer/{id}/state/1"), None)
        .await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(run.json["data"]["run"], true);
    let s = api.get(&format!("/api/v2/dialer/{id}/stats")).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.json["data"]["waiting"], 0);
    assert_eq!(s.json["data"]["in_retry"], 0);
    // Each gateway: its load against its limit and, from this node's engine, its circuit breaker.
    let gateways = s.json["data"]["gateways"].as_array().unwrap();
    assert!(!gateways.is_empty(), "{}", s.text);
    for g in gateways {
        assert_eq!(g["in_use"], 0, "{g}");
        assert_eq!(g["breaker"]["state"], "closed", "{g}");
        assert_eq!(g["breaker"]["consecutive_failures"], 0, "{g}");
        assert_eq!(g["breaker"]["paused_until"], Value::Null, "{g}");
    }
    let stop = api
        .call("PUT", &format!("/api/v2/dialer/{id}/state/3"), None)
        .await;
    assert_eq!(stop.status, 200);
    assert_eq!(stop.json["data"]["run"], false);
    let bad_state = api
        .call("PUT", &format!("/api/v2/dialer/{id}/state/2"), None)
        .await;
    assert_eq!(bad_state.status, 400);
    assert_eq!(
        bad_state.json["info"],
        "state: \"2\" is not supported (1 = run, 3 = stop)"
    );
    let h = api.get(&format!("/api/v2/dialer/{id}/history")).await;
    assert_eq!(h.status, 200);
    let transitions = h.json["data"].as_array().unwrap();
    assert!(
        transitions
            .iter()
            .any(|t| t["from"] == "idle" && t["to"] != "idle"),
        "{}",
        h.text
    );

    // Delete: the campaign and its members go.
    api.call(
        "POST",
        &format!("/api/v2/dialer/{id}/members"),
        Some(member("A", "busy")),
    )
    .await;
    assert_eq!(api.member_count(&id).await, 1);
    let d = api
        .call("DELETE", &format!("/api/v2/dialer/{id}"), None)
        .await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(api.get(&format!("/api/v2/dialer/{id}")).await.status, 404);
    assert_eq!(
        api.running.engine.state(&id).await.unwrap(),
        None,
        "the engine forgot the deleted campaign"
    );
    assert_eq!(api.member_count(&id).await, 0);
    assert_eq!(
        api.get(&format!("/api/v2/dialer/{id}/members"))
            .await
            .status,
        404
    );
    api.shutdown().await;
}

#[tokio::test]
async fn members_are_added_listed_paged_counted_read_changed_and_deleted() {
    let api = start().await;
    let id = "members-1";
    api.create_campaign(id).await;
    let batch: Vec<Value> = (1..=5)
        .map(|i| member(&format!("M{i}"), &format!("10{i}")))
        .collect();
    let a = api
        .call(
            "POST",
            &format!("/api/v2/dialer/{id}/members"),
            Some(Value::Array(batch)),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let ids: Vec<&str> = a.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);

    let page = api
        .get(&format!("/api/v2/dialer/{id}/members?limit=2&page=2"))
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let names: Vec<&str> = page.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["M3", "M4"]);
    assert_eq!(page.json["next"], 4);
    let after = api
        .get(&format!("/api/v2/dialer/{id}/members?limit=10&after=4"))
        .await;
    assert_eq!(after.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(after.json["data"][0]["name"], "M5");
    assert_eq!(after.json["next"], Value::Null);
    let waiting = api
        .get(&format!(
            "/api/v2/dialer/{id}/members?state=waiting&sort=id"
        ))
        .await;
    assert_eq!(waiting.json["data"].as_array().unwrap().len(), 5);
    // Search by name: a substring, ASCII letters in any case.
    let found = api
        .get(&format!(
            "/api/v2/dialer/{id}/members?name=%20m4%20&limit=10"
        ))
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(found.json["data"][0]["name"], "M4");
    assert_eq!(found.json["next"], Value::Null);
    let two = api
        .get(&format!("/api/v2/dialer/{id}/members?name=m&limit=2"))
        .await;
    assert_eq!(two.json["data"].as_array().unwrap().len(), 2);
    assert_eq!(two.json["next"], 2);

    assert_eq!(
        api.get(&format!("/api/v2/dialer/{id}/members/count"))
            .await
            .json["data"],
        5
    );
    assert_eq!(
        api.get(&format!("/api/v2/dialer/{id}/members/count?state=waiting"))
            .await
            .json["data"],
        5
    );
    assert_eq!(
        api.get(&format!("/api/v2/dialer/{id}/members/count?state=ended"))
            .await
            .json["data"],
        0
    );

    let one = api.get(&format!("/api/v2/dialer/{id}/members/2")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json["data"]["name"], "M2");
    assert_eq!(one.json["data"]["dialer"], id);

    let put = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}/members/2"),
            Some(json!({"name": "M2 renamed", "priority": 5, "communications": [{"number": "999", "type": "mobile"}]})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json["data"]["name"], "M2 renamed");
    assert_eq!(put.json["data"]["priority"], 5);
    assert_eq!(put.json["data"]["communications"][0]["type"], "mobile");
    // A partial PUT changes only the fields given (Webitel's update).
    let partial = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}/members/3"),
            Some(json!({"priority": 9})),
        )
        .await;
    assert_eq!(partial.status, 200, "{}", partial.text);
    assert_eq!(partial.json["data"]["priority"], 9);
    assert_eq!(partial.json["data"]["name"], "M3");
    assert_eq!(partial.json["data"]["communications"][0]["number"], "103");
    let invalid = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}/members/3"),
            Some(json!({"communications": []})),
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert_eq!(
        invalid.json["info"],
        "communications: empty (at least one number is required)"
    );
    assert_eq!(
        api.get(&format!("/api/v2/dialer/{id}/members/3"))
            .await
            .json["data"]["communications"][0]["number"],
        "103"
    );
    // The changed member read back can be PUT again as is.
    let again = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}/members/2"),
            Some(put.json["data"].clone()),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);

    let del = api
        .call("DELETE", &format!("/api/v2/dialer/{id}/members/2"), None)
        .await;
    assert_eq!(del.status, 200);
    assert_eq!(
        api.get(&format!("/api/v2/dialer/{id}/members/2"))
            .await
            .status,
        404
    );
    assert_eq!(
        api.call("DELETE", &format!("/api/v2/dialer/{id}/members/2"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        api.get(&format!("/api/v2/dialer/{id}/members/count"))
            .await
            .json["data"],
        4
    );

    // Bad parameters are 400 naming the parameter.
    let cases = [
        (
            "/members/abc",
            "member id \"abc\": must be a positive integer",
        ),
        (
            "/members?state=sleeping",
            "state: \"sleeping\" is not a member state (waiting, active or ended)",
        ),
        (
            "/members?sort=-name",
            "sort: \"-name\" is not supported; members are listed in ascending id order (sort=id)",
        ),
        ("/members?limit=0", "limit: must be 1 to 10000"),
        (
            "/members?limit=x",
            "limit: \"x\" is not a non-negative integer",
        ),
        ("/members?page=0", "page: pages are numbered from 1"),
        (
            "/members?name=m&page=2",
            "page: a search by name pages with after=<the previous answer's next>",
        ),
    ];
    for (path, info) in cases {
        let r = api.get(&format!("/api/v2/dialer/{id}{path}")).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.json["info"], info, "{path}");
    }
    let long = api
        .get(&format!(
            "/api/v2/dialer/{id}/members?name={}",
            "x".repeat(101)
        ))
        .await;
    assert_eq!(long.status, 400, "{}", long.text);
    assert_eq!(long.json["info"], "name: at most 100 characters");
    // Unknown campaign: 404.
    let r = api
        .call(
            "POST",
            "/api/v2/dialer/nope/members",
            Some(member("a", "1")),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json["info"], "campaign \"nope\" not found");
    api.shutdown().await;
}

async fn member_state(api: &Api, id: &str, mid: u64) -> Value {
    api.get(&format!("/api/v2/dialer/{id}/members/{mid}"))
        .await
        .json["data"]
        .clone()
}

#[tokio::test]
async fn a_member_in_a_call_cannot_be_changed_and_terminate_hangs_the_call_up() {
    let api = start().await;
    let id = "in-call";
    api.create_campaign(id).await;
    let a = api
        .call(
            "POST",
            &format!("/api/v2/dialer/{id}/members?autoRun=true"),
            Some(member("Long talker", "answer_600")),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let active = eventually(10, || async {
        let m = member_state(&api, id, 1).await;
        (m["state"] == "active").then_some(m)
    })
    .await
    .expect("the member gets into a call");
    assert!(active["current_attempt"].is_string());

    let put = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}/members/1"),
            Some(member("x", "1")),
        )
        .await;
    assert_eq!(put.status, 409, "{}", put.text);
    assert_eq!(
        put.json["info"],
        "member 1 is in a call; retry when it ends (or terminate it first)"
    );
    let del = api
        .call("DELETE", &format!("/api/v2/dialer/{id}/members/1"), None)
        .await;
    assert_eq!(del.status, 409);
    let del_campaign = api
        .call("DELETE", &format!("/api/v2/dialer/{id}"), None)
        .await;
    assert_eq!(del_campaign.status, 409, "{}", del_campaign.text);
    assert_eq!(
        api.get(&format!("/api/v2/dialer/{id}/stats")).await.json["data"]["active"],
        1
    );

    let t = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}/members/1/terminate"),
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.json["data"]["result"], "call_ending");
    assert_eq!(t.json["data"]["node"], "test-node");
    // The engine drops the call at its next lease renewal; the member ends with MANAGER_REQUEST.
    let ended = eventually(15, || async {
        let m = member_state(&api, id, 1).await;
        (m["state"] == "ended").then_some(m)
    })
    .await
    .expect("the call is hung up and the member ends");
    assert_eq!(ended["end_cause"], "MANAGER_REQUEST");
    let again = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}/members/1/terminate"),
            None,
        )
        .await;
    assert_eq!(again.json["data"]["result"], "already_ended");
    // Terminating a waiting member ends it at once.
    api.call("PUT", &format!("/api/v2/dialer/{id}/state/3"), None)
        .await;
    api.call(
        "POST",
        &format!("/api/v2/dialer/{id}/members"),
        Some(member("w", "busy")),
    )
    .await;
    let t2 = api
        .call(
            "PUT",
            &format!("/api/v2/dialer/{id}/members/2/terminate"),
            None,
        )
        .await;
    assert_eq!(t2.json["data"]["result"], "terminated", "{}", t2.text);
    assert_eq!(
        member_state(&api, id, 2).await["end_cause"],
        "MANAGER_REQUEST"
    );
    api.shutdown().await;
}

/// A member name a spreadsheet would run.
const FORMULA: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";

/// No cell of a CSV export starts a spreadsheet formula (`=`, `+`, `-`, `@`, tab, CR).
fn assert_spreadsheet_safe(csv_text: &str) {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_text.as_bytes());
    let mut cells = 0;
    for record in rdr.records() {
        for cell in record.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "cell {cell:?} in {csv_text}"
            );
            cells += 1;
        }
    }
    assert!(cells > 0);
}

#[tokio::test]
async fn results_are_listed_exported_and_reset_revives_unsuccessful_members() {
    let api = start().await;
    let id = "results";
    api.create_campaign(id).await;
    let a = api
        .call(
            "POST",
            &format!("/api/v2/dialer/{id}/members?autoRun=true"),
            Some(json!([
                {"name": FORMULA, "communications": [{"number": "reject_UNALLOCATED_NUMBER", "description": "+cmd|' /C calc'!A0"}], "variables": {"segment": "a", "note": "@SUM(1)", "tab": "\tx"}},
                {"name": "Good", "communications": [{"number": "answer_1"}, {"number": "+380441234567"}], "external_id": "crm-2"}
            ])),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let ended = eventually(15, || async {
        let c = api.get(&format!("/api/v2/dialer/{id}/stats")).await.json["data"].clone();
        (c["ended"] == 2).then_some(c)
    })
    .await
    .expect("both members end");
    assert_eq!(ended["ended_by_cause"]["UNALLOCATED_NUMBER"], 1);
    assert_eq!(ended["success"], 1);
    assert_eq!(
        api.get(&format!(
            "/api/v2/dialer/{id}/members/count?end_cause=UNALLOCATED_NUMBER"
        ))
        .await
        .json["data"],
        1
    );
    let by_cause = api
        .get(&format!(
            "/api/v2/dialer/{id}/members?end_cause=NORMAL_CLEARING"
        ))
        .await;
    assert_eq!(by_cause.json["data"][0]["name"], "Good");

    let att = api
        .get(&format!("/api/v2/dialer/{id}/members/1/attempts"))
        .await;
    assert_eq!(att.status, 200);
    assert_eq!(att.json["data"][0]["cause"], "UNALLOCATED_NUMBER");
    assert_eq!(att.json["data"][0]["class"], "error");

    let exp = api
        .get(&format!("/api/v2/dialer/{id}/attempts/export.csv"))
        .await;
    assert_eq!(exp.status, 200);
    assert!(
        exp.content_type.starts_with("text/csv"),
        "{}",
        exp.content_type
    );
    assert_spreadsheet_safe(&exp.text);
    let lines: Vec<&str> = exp.text.lines().collect();
    assert!(
        lines[0].starts_with("campaign,member_id,member_name,attempt_no,attempt_id"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 3, "{}", exp.text);
    assert!(
        lines[1].contains(",UNALLOCATED_NUMBER,error,ended,UNALLOCATED_NUMBER,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(",NORMAL_CLEARING,ok,success,NORMAL_CLEARING,"),
        "{}",
        lines[2]
    );

    let mexp = api
        .get(&format!("/api/v2/dialer/{id}/members/export.csv"))
        .await;
    assert_eq!(mexp.status, 200);
    assert_spreadsheet_safe(&mexp.text);
    let mut rdr = csv::Reader::from_reader(mexp.text.as_bytes());
    let head = rdr.headers().unwrap().clone();
    assert!(head.iter().any(|h| h == "var_segment"));
    assert!(head.iter().any(|h| h == "number_1"));
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][col("end_cause")], "UNALLOCATED_NUMBER");
    assert_eq!(&rows[0][col("var_segment")], "a");
    assert_eq!(&rows[1][col("external_id")], "crm-2");
    assert_eq!(&rows[0][col("name")], format!("'{FORMULA}"));
    assert_eq!(&rows[0][col("var_note")], "'@SUM(1)");
    assert_eq!(&rows[0][col("description_1")], "'+cmd|' /C calc'!A0");
    assert_eq!(&rows[1][col("number_2")], "'+380441234567");

    // The export imports again: into a fresh campaign, same members.
    api.create_campaign("copy").await;
    let imp = api
        .csv("/api/v2/dialer/copy/members/import", mexp.text.as_bytes())
        .await;
    assert_eq!(imp.status, 200, "{}", imp.text);
    assert_eq!(imp.json["data"]["added"], 2);
    let copy = member_state(&api, "copy", 1).await;
    assert_eq!(copy["name"], FORMULA);
    assert_eq!(
        copy["variables"],
        json!({"segment": "a", "note": "@SUM(1)", "tab": "\tx"})
    );
    assert_eq!(
        copy["communications"][0]["description"],
        "+cmd|' /C calc'!A0"
    );
    let good = member_state(&api, "copy", 2).await;
    assert_eq!(good["communications"][1]["number"], "+380441234567");
    assert_eq!(copy["state"], "waiting");

    // Reset revives the unsuccessful member only.
    api.call("PUT", &format!("/api/v2/dialer/{id}/state/3"), None)
        .await;
    let reset = api
        .call("PUT", &format!("/api/v2/dialer/{id}/members/reset"), None)
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(reset.json["info"], 1);
    assert_eq!(member_state(&api, id, 1).await["state"], "waiting");
    assert_eq!(member_state(&api, id, 2).await["state"], "ended");
    api.shutdown().await;
}

#[tokio::test]
async fn service_routes_health_metrics_openapi_and_json_404_405() {
    let api = start().await;
    api.create_campaign("m1").await;
    api.call(
        "POST",
        "/api/v2/dialer/m1/members",
        Some(member("a", "busy")),
    )
    .await;
    let h = api.raw("GET", "/healthz", None, None).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.json["store"], "redis");

    let m = api.raw("GET", "/metrics", None, None).await;
    assert_eq!(m.status, 401);
    let m = api.raw("GET", "/metrics", Some(READER), None).await;
    assert_eq!(m.status, 200);
    assert!(m.content_type.starts_with("text/plain"));
    for needle in [
        "fsdialer_store_ping_seconds{backend=\"redis\"}",
        "fsdialer_store_up{backend=\"redis\"} 1",
        "fsdialer_queue_members{campaign=\"m1\",state=\"waiting\"} 1",
        "fsdialer_active_calls{campaign=\"m1\"} 0",
        "fsdialer_esl_connected{server=",
    ] {
        assert!(
            m.text.contains(needle),
            "{needle} missing from:\n{}",
            m.text
        );
    }

    let o = api.raw("GET", "/api/v2/openapi.json", None, None).await;
    assert_eq!(o.status, 200);
    assert_eq!(o.json["openapi"], "3.1.0");
    let paths = o.json["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v2/dialer", "get"),
        ("/api/v2/dialer", "post"),
        ("/api/v2/dialer/{id}", "put"),
        ("/api/v2/dialer/{id}/state/{state}", "put"),
        ("/api/v2/dialer/{id}/members", "post"),
        ("/api/v2/dialer/{id}/members/import", "post"),
        ("/api/v2/dialer/{id}/members/export.csv", "get"),
        ("/api/v2/dialer/{id}/attempts/export.csv", "get"),
        ("/api/v2/dialer/{id}/members/{mid}/terminate", "put"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    assert_eq!(paths["/api/v2/dialer"]["post"]["x-required-role"], "admin");
    assert_eq!(
        paths["/api/v2/dialer/{id}/members"]["post"]["x-required-role"],
        "members-writer"
    );

    let nf = api.get("/api/v2/nothing").await;
    assert_eq!(nf.status, 404);
    assert_eq!(
        nf.json,
        json!({"status": "error", "info": "no route /api/v2/nothing"})
    );
    let na = api.call("PATCH", "/api/v2/dialer", None).await;
    assert_eq!(na.status, 405);
    assert_eq!(na.json["status"], "error");
    api.shutdown().await;
}

#[tokio::test]
async fn campaigns_created_on_one_node_are_run_by_another_node_sharing_redis() {
    let a = start().await;
    let cfg = fsdialer::run::config::RunConfig::from_toml(&config_text(&a.redis.url())).unwrap();
    let b = fsdialer::run::start(cfg, |_| None, false).await.unwrap();
    a.create_campaign("shared").await;
    let engine_b = b.engine.clone();
    let seen = eventually(10, || async {
        engine_b.state("shared").await.ok().flatten()
    })
    .await;
    assert!(
        seen.is_some(),
        "node B picks up the campaign created on node A"
    );
    a.call("PUT", "/api/v2/dialer/shared/state/1", None).await;
    let running = eventually(10, || async {
        match engine_b.state("shared").await.ok().flatten() {
            Some((s, _)) if s.webitel_code() == 1 || s.webitel_code() == 4 => Some(s),
            _ => None,
        }
    })
    .await;
    assert!(
        running.is_some(),
        "node B follows the run command given on node A"
    );
    // Node B's API serves it too.
    // reqwest is built without a crypto provider of its own: use the crate's (ring).
    fsdialer::tls::install_crypto_provider();
    let r = reqwest::Client::new()
        .get(format!("http://{}/api/v2/dialer/shared", b.addr))
        .header("X-Key", ADMIN.0)
        .header("X-Access-Token", ADMIN.1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn a_redis_with_a_password_is_reached_through_its_url_and_the_password_never_shows() {
    use fsdialer::run::{self, config::RunConfig};
    use fsdialer::store::local_redis::{LocalRedis, LocalRedisOptions};
    let redis = LocalRedis::start(LocalRedisOptions {
        durable: false,
        password: Some("s3cr3t-pass".into()),
        tls: None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(redis.url().starts_with("redis://default:s3cr3t-pass@"));
    // A wrong password: the start fails, and the error does not echo it.
    let wrong = redis.url().replace("s3cr3t-pass", "wrong-pass");
    let cfg = RunConfig::from_toml(&config_text(&wrong)).unwrap();
    match run::start(cfg, |_| None, false).await {
        Ok(_) => panic!("started with a wrong Redis password"),
        Err(e) => {
            let e = e.to_string();
            assert!(!e.contains("wrong-pass"), "{e}");
            assert!(
                e.to_ascii_uppercase().contains("AUTH") || e.contains("WRONGPASS"),
                "{e}"
            );
        }
    }
    // The right one: the whole service runs on it.
    let api = start_on(redis).await;
    api.create_campaign("pw").await;
    assert_eq!(api.get("/healthz").await.json["store"], "redis");
    api.shutdown().await;
}

#[tokio::test]
async fn the_api_with_a_certificate_serves_https_to_clients_trusting_its_ca_and_nothing_in_plain_http()
 {
    let pki = tls_support::TestPki::new("fsdialer test CA");
    let api = start_https(
        &pki.cert_file,
        &pki.key_file,
        &pki.ca_pem,
        "header_read_timeout_sec = 1",
    )
    .await;
    assert!(api.base.starts_with("https://127.0.0.1:"), "{}", api.base);
    assert!(api.running.banner().contains("API on https://"));
    // A public route and authenticated ones, over TLS.
    let h = api.raw("GET", "/healthz", None, None).await;
    assert_eq!(h.status, 200, "{}", h.text);
    api.create_campaign("tls").await;
    assert_eq!(api.get("/api/v2/dialer/tls").await.status, 200);
    assert_eq!(
        api.raw("GET", "/api/v2/dialer/tls", None, None)
            .await
            .status,
        401
    );
    // Plain HTTP to the TLS port: no answer.
    fsdialer::tls::install_crypto_provider();
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", api.running.addr))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    // A client that does not trust the CA refuses the server.
    let other = tls_support::TestPki::new("another CA");
    let refused = client_trusting(&other.ca_pem)
        .get(api.url("/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "untrusted server accepted: {refused:?}");
    // A connection that never starts its handshake is closed after header_read_timeout_sec, like a slowloris.
    let mut idle = tokio::net::TcpStream::connect(api.running.addr)
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut idle, &mut buf),
    )
    .await
    .expect("the server closes a connection that does not handshake");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(t0.elapsed() >= std::time::Duration::from_millis(900));
    api.shutdown().await;
}

#[path = "api_routes_cases/agents.rs"]
mod agents;

/// Answering-machine detection through the API: a campaign's `amd` section is validated with named errors; its
/// answers are split by AMD result in `/stats` and `/metrics`, and the attempt export has the AMD columns.
#[tokio::test]
async fn amd_is_validated_and_its_results_show_in_stats_metrics_and_the_export() {
    let api = start().await;
    let mut bad = campaign("amd-bad");
    bad["amd"] =
        json!({"machine": "leave_message", "machine_message": "/a.wav!system", "greeting": 0});
    let r = api.call("POST", "/api/v2/dialer", Some(bad)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("amd.machine_message"), "{}", r.text);
    assert!(r.text.contains("amd.greeting"), "{}", r.text);

    let id = "amd";
    let mut body = campaign(id);
    body["amd"] = json!({"module": "mod_amd"});
    let c = api.call("POST", "/api/v2/dialer", Some(body)).await;
    assert_eq!(c.status, 200, "{}", c.text);
    let a = api
        .call(
            "POST",
            &format!("/api/v2/dialer/{id}/members?autoRun=true"),
            Some(member("Person", "answer_3")),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let stats = eventually(20, || async {
        let c = api.get(&format!("/api/v2/dialer/{id}/stats")).await.json["data"].clone();
        (c["ended"] == 1).then_some(c)
    })
    .await
    .expect("the member ends");
    // The built-in dialplan's callees are people: the simulated mod_amd says HUMAN.
    assert_eq!(stats["amd"]["human"], 1, "{stats}");
    assert_eq!(stats["amd"]["machine"], 0, "{stats}");
    let m = api.raw("GET", "/metrics", Some(READER), None).await;
    assert!(
        m.text
            .contains("fsdialer_amd_results_total{campaign=\"amd\",result=\"HUMAN\"} 1"),
        "{}",
        m.text
    );
    let exp = api
        .get(&format!("/api/v2/dialer/{id}/attempts/export.csv"))
        .await;
    let mut rdr = csv::Reader::from_reader(exp.text.as_bytes());
    let head = rdr.headers().unwrap().clone();
    let col = |name: &str| head.iter().position(|h| h == name).expect(name);
    let row = rdr.records().next().unwrap().unwrap();
    assert_eq!(&row[col("amd_result")], "HUMAN");
    assert_eq!(&row[col("message_left")], "false");
    api.shutdown().await;
}

#[path = "api_routes_cases/compliance.rs"]
mod compliance;
#[path = "api_routes_cases/dnc.rs"]
mod dnc;
