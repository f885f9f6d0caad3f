//! The do-not-call routes over HTTP on a real Redis: add, check (with normalisation), sizes, remove, CSV import
//! and export, per campaign and global, with the key roles.

use super::*;

const C: &str = "dnc-campaign";

#[tokio::test]
async fn campaign_and_global_lists_are_added_checked_removed_and_need_a_writer() {
    let api = start().await;
    let mut c = campaign(C);
    c["e164"] = json!({"country_code": "380"});
    let a = api.call("POST", "/api/v2/dialer", Some(c)).await;
    assert_eq!(a.status, 200, "{}", a.text);

    // The campaign's rule makes national and international spellings one number.
    let add = api
        .call(
            "POST",
            &format!("/api/v2/dialer/{C}/dnc"),
            Some(json!({"numbers": ["050 123-45-67"], "prefixes": ["067"]})),
        )
        .await;
    assert_eq!(add.status, 200, "{}", add.text);
    assert_eq!(
        add.json["data"]["added"],
        json!({"numbers": 1, "prefixes": 1})
    );
    let check = api
        .get(&format!(
            "/api/v2/dnc/check/%2B380%2050%20123%204567?campaign={C}"
        ))
        .await;
    assert_eq!(check.status, 200, "{}", check.text);
    assert_eq!(check.json["data"]["normalized"], "+380501234567");
    assert_eq!(
        check.json["data"]["lists"],
        json!([{"list": format!("campaign:{C}"), "entry": "380501234567", "kind": "number"}])
    );
    let by_prefix = api
        .get(&format!("/api/v2/dnc/check/0671112233?campaign={C}"))
        .await;
    assert_eq!(
        by_prefix.json["data"]["lists"][0]["entry"], "38067",
        "{}",
        by_prefix.text
    );
    // Not on the global list, which it was not added to.
    let global = api.get("/api/v2/dnc/check/+380501234567").await;
    assert_eq!(global.json["data"]["listed"], false, "{}", global.text);

    // Global list: the rule comes with the request.
    let g = api
        .call(
            "POST",
            "/api/v2/dnc",
            Some(json!({"numbers": ["0501234567"], "e164": {"country_code": "380"}})),
        )
        .await;
    assert_eq!(g.status, 200, "{}", g.text);
    let both = api
        .get(&format!("/api/v2/dnc/check/0501234567?campaign={C}"))
        .await;
    let lists: Vec<&str> = both.json["data"]["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["list"].as_str().unwrap())
        .collect();
    assert_eq!(lists, ["global", &format!("campaign:{C}")]);
    let sizes = api.get(&format!("/api/v2/dialer/{C}/dnc")).await;
    assert_eq!(
        sizes.json["data"]["sizes"],
        json!({"numbers": 1, "prefixes": 1})
    );

    // One bad entry refuses the request, naming it; nothing is written.
    let bad = api
        .call(
            "POST",
            &format!("/api/v2/dialer/{C}/dnc"),
            Some(json!({"numbers": ["0991234567", "call me"]})),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.json["errors"][0]["path"], "numbers[1]", "{}", bad.text);
    let sizes = api.get(&format!("/api/v2/dialer/{C}/dnc")).await;
    assert_eq!(sizes.json["data"]["sizes"]["numbers"], 1);

    // Roles: a read-only key checks but cannot change a list.
    let ro = api
        .raw(
            "POST",
            "/api/v2/dnc",
            Some(READER),
            Some((
                br#"{"numbers": ["+12025550100"]}"#.to_vec(),
                "application/json",
            )),
        )
        .await;
    assert_eq!(ro.status, 403, "{}", ro.text);
    let ro_check = api
        .raw("GET", "/api/v2/dnc/check/+12025550100", Some(READER), None)
        .await;
    assert_eq!(ro_check.status, 200, "{}", ro_check.text);
    let anon = api.raw("GET", "/api/v2/dnc", None, None).await;
    assert_eq!(anon.status, 401);

    let removed = api
        .call(
            "DELETE",
            &format!("/api/v2/dialer/{C}/dnc"),
            Some(json!({"numbers": ["+380501234567"], "prefixes": ["+38067"]})),
        )
        .await;
    assert_eq!(
        removed.json["data"]["removed"],
        json!({"numbers": 1, "prefixes": 1}),
        "{}",
        removed.text
    );
    // The global list removes with its request's rule too; a campaign's list refuses a rule of its own.
    let g_removed = api
        .call(
            "DELETE",
            "/api/v2/dnc",
            Some(json!({"numbers": ["0501234567"], "e164": {"country_code": "380"}})),
        )
        .await;
    assert_eq!(
        (
            &g_removed.json["data"]["removed"],
            &g_removed.json["data"]["sizes"]
        ),
        (
            &json!({"numbers": 1, "prefixes": 0}),
            &json!({"numbers": 0, "prefixes": 0})
        ),
        "{}",
        g_removed.text
    );
    let ruled = api
        .call(
            "DELETE",
            &format!("/api/v2/dialer/{C}/dnc"),
            Some(json!({"numbers": ["0501234567"], "e164": {"country_code": "380"}})),
        )
        .await;
    assert_eq!(ruled.status, 400, "{}", ruled.text);
    let unknown = api.get("/api/v2/dialer/nope/dnc").await;
    assert_eq!(unknown.status, 404);
    api.shutdown().await;
}

#[tokio::test]
async fn a_csv_import_reports_bad_lines_and_the_export_gives_the_list_back() {
    let api = start().await;
    let mut csv = String::from("number,kind\n");
    for i in 0..25_000 {
        csv.push_str(&format!("+1202{i:07}\n"));
    }
    csv.push_str("44,prefix\nnot-a-number\n");
    let a = api
        .raw(
            "POST",
            "/api/v2/dnc/import",
            Some(WRITER),
            Some((csv.into_bytes(), "text/csv")),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let report = &a.json["data"]["import"];
    assert_eq!(report["entries"], 25_001, "{}", a.text);
    assert_eq!(report["added"], 25_001);
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["errors"][0]["line"], 25_003);
    assert_eq!(
        a.json["data"]["sizes"],
        json!({"numbers": 25_000, "prefixes": 1})
    );
    let out = api.get("/api/v2/dnc/export.csv").await;
    assert_eq!(out.status, 200);
    assert!(
        out.content_type.starts_with("text/csv"),
        "{}",
        out.content_type
    );
    let mut lines: Vec<&str> = out.text.lines().collect();
    assert_eq!(lines.remove(0), "number,kind");
    assert_eq!(lines.len(), 25_001);
    assert!(lines.contains(&"12020000042,number"));
    assert!(lines.contains(&"44,prefix"));
    let check = api.get("/api/v2/dnc/check/+442071234567").await;
    assert_eq!(
        check.json["data"]["lists"][0]["kind"], "prefix",
        "{}",
        check.text
    );
    api.shutdown().await;
}

/// A campaign's caller-ID pool through the API: the attempt shows the caller ID, the export has it as a column,
/// and the stats and `/metrics` give the caller ID's calls, answers and answer rate.
#[tokio::test]
async fn the_caller_id_shows_on_the_attempt_the_export_the_stats_and_the_metrics() {
    let api = start().await;
    let id = "cid";
    let mut body = campaign(id);
    body["caller_id_pool"] = json!({"numbers": [{"number": "+380441110000"}], "daily_cap": 100});
    let c = api.call("POST", "/api/v2/dialer", Some(body)).await;
    assert_eq!(c.status, 200, "{}", c.text);
    let mut bad = campaign("cid-bad");
    bad["caller_id_pool"] = json!({"numbers": [{"number": "100,origination_uuid=x"}]});
    let b = api.call("POST", "/api/v2/dialer", Some(bad)).await;
    assert_eq!(b.status, 422, "{}", b.text);
    assert!(
        b.text.contains("caller_id_pool.numbers[0].number"),
        "{}",
        b.text
    );
    let a = api
        .call(
            "POST",
            &format!("/api/v2/dialer/{id}/members?autoRun=true"),
            Some(member("Person", "answer_1")),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let stats = eventually(20, || async {
        let s = api.get(&format!("/api/v2/dialer/{id}/stats")).await.json["data"].clone();
        (s["ended"] == 1 && s["caller_ids"][0]["calls"] == 1).then_some(s)
    })
    .await
    .expect("the member ends and its caller ID is counted");
    assert_eq!(
        stats["caller_ids"],
        json!([{"caller_id": "+380441110000", "calls": 1, "answered": 1, "answer_rate": 1.0}])
    );
    let att = api
        .get(&format!("/api/v2/dialer/{id}/members/1/attempts"))
        .await;
    assert_eq!(
        att.json["data"][0]["caller_id"], "+380441110000",
        "{}",
        att.text
    );
    let exp = api
        .get(&format!("/api/v2/dialer/{id}/attempts/export.csv"))
        .await;
    let mut rdr = csv::Reader::from_reader(exp.text.as_bytes());
    let head = rdr.headers().unwrap().clone();
    let col = head
        .iter()
        .position(|h| h == "caller_id")
        .expect("caller_id column");
    let row = rdr.records().next().unwrap().unwrap();
    // Spreadsheet-safe: a leading + is quoted.
    assert_eq!(&row[col], "'+380441110000");
    let m = api.raw("GET", "/metrics", Some(READER), None).await;
    assert!(
        m.text.contains(
            "fsdialer_caller_id_answer_rate{campaign=\"cid\",caller_id=\"+380441110000\"} 1"
        ),
        "{}",
        m.text
    );
    api.shutdown().await;
}
