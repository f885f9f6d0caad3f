//! Malformed input corpus over real HTTP against a real Redis: every malformed member body and CSV file of
//! `fixtures/api/` gets its precise error, and nothing partial is stored.

mod api_support;

use api_support::*;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct JsonCases {
    case: Vec<JsonCase>,
}

#[derive(Deserialize)]
struct JsonCase {
    name: String,
    body: String,
    status: u16,
    info: String,
}

#[tokio::test]
async fn every_malformed_member_body_gets_its_precise_error_and_nothing_is_stored() {
    let api = start().await;
    api.create_campaign("bad-json").await;
    let cases: JsonCases =
        toml::from_str(include_str!("../fixtures/api/bad_members.toml")).expect("fixture parses");
    assert!(cases.case.len() >= 20);
    for c in &cases.case {
        let a = api
            .raw(
                "POST",
                "/api/v2/dialer/bad-json/members",
                Some(WRITER),
                Some((c.body.clone().into_bytes(), "application/json")),
            )
            .await;
        assert_eq!(a.status, c.status, "{}: {}", c.name, a.text);
        assert_eq!(a.json["status"], "error", "{}", c.name);
        assert_eq!(a.json["info"], c.info.as_str(), "{}", c.name);
        assert_eq!(
            api.member_count("bad-json").await,
            0,
            "{}: something was stored",
            c.name
        );
    }
    // Per-member problems also come as a list of {path, error}.
    let a = api
        .call(
            "POST",
            "/api/v2/dialer/bad-json/members",
            Some(json!([{"name": "a", "communications": [{"number": ""}]}])),
        )
        .await;
    assert_eq!(
        a.json["errors"],
        json!([{"path": "[0].communications[0].number", "error": "empty"}])
    );
    api.shutdown().await;
}

#[tokio::test]
async fn a_large_batch_with_one_bad_member_at_the_end_writes_nothing() {
    let api = start().await;
    api.create_campaign("big").await;
    let mut batch: Vec<Value> = (0..500)
        .map(|i| member(&format!("m{i}"), &format!("{}", 1000 + i)))
        .collect();
    batch.push(json!({"name": "x".repeat(5000), "communications": [{"number": "1"}]}));
    let a = api
        .call(
            "POST",
            "/api/v2/dialer/big/members",
            Some(Value::Array(batch)),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.json["info"], "[500].name: longer than 4096 bytes");
    assert_eq!(api.member_count("big").await, 0);
    api.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413_and_nothing_stored() {
    let api = start().await;
    api.create_campaign("huge").await;
    let many: Vec<Value> = (0..3000)
        .map(|i| member(&format!("member {i}"), "380931234567"))
        .collect();
    let body = Value::Array(many).to_string();
    assert!(body.len() > MAX_BODY);
    let a = api
        .raw(
            "POST",
            "/api/v2/dialer/huge/members",
            Some(ADMIN),
            Some((body.into_bytes(), "application/json")),
        )
        .await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert_eq!(
        a.json,
        json!({"status": "error", "info": format!("body: larger than the limit of {MAX_BODY} bytes")})
    );
    // A campaign body too.
    let big_campaign = format!("{{\"name\": \"{}\"}}", "x".repeat(MAX_BODY));
    let c = api
        .raw(
            "POST",
            "/api/v2/dialer",
            Some(ADMIN),
            Some((big_campaign.into_bytes(), "application/json")),
        )
        .await;
    assert_eq!(c.status, 413);
    // A CSV upload over its own limit.
    let mut csv = String::from("name,number_1\n");
    while csv.len() as u64 <= MAX_IMPORT {
        csv.push_str("Some Member With A Long Name,380931234567\n");
    }
    let i = api
        .csv("/api/v2/dialer/huge/members/import", csv.as_bytes())
        .await;
    assert_eq!(i.status, 413, "{}", i.text);
    assert_eq!(
        i.json["info"],
        format!("body: larger than the limit of {MAX_IMPORT} bytes")
    );
    assert_eq!(api.member_count("huge").await, 0);
    api.shutdown().await;
}

#[derive(Deserialize)]
struct CsvCases {
    case: Vec<CsvCase>,
}

#[derive(Deserialize)]
struct CsvCase {
    file: String,
    #[serde(default)]
    query: String,
    status: u16,
    #[serde(default)]
    added: Option<u64>,
    stored: u64,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    errors: Vec<(u64, String)>,
    #[serde(default)]
    info: Option<String>,
    #[serde(default)]
    info_starts: Option<String>,
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/api/csv")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn every_csv_of_the_corpus_is_imported_or_refused_exactly_as_expected() {
    let api = start().await;
    let cases: CsvCases =
        toml::from_str(include_str!("../fixtures/api/csv/cases.toml")).expect("fixture parses");
    for (n, c) in cases.case.iter().enumerate() {
        let id = format!("csv-{n}");
        api.create_campaign(&id).await;
        let q = if c.query.is_empty() {
            String::new()
        } else {
            format!("?{}", c.query)
        };
        let a = api
            .raw(
                "POST",
                &format!("/api/v2/dialer/{id}/members/import{q}"),
                Some(WRITER),
                Some((fixture(&c.file), "text/csv")),
            )
            .await;
        let what = format!("{} {}", c.file, c.query);
        assert_eq!(a.status, c.status, "{what}: {}", a.text);
        let errors: Vec<(u64, String)> = if a.status == 200 {
            &a.json["data"]["errors"]
        } else {
            &a.json["errors"]
        }
        .as_array()
        .map(|v| {
            v.iter()
                .map(|e| {
                    (
                        e["line"].as_u64().unwrap(),
                        e["error"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
        assert_eq!(errors, c.errors, "{what}");
        if let Some(added) = c.added {
            assert_eq!(a.json["data"]["added"], added, "{what}");
            assert_eq!(a.json["data"]["rejected"], c.errors.len() as u64, "{what}");
        }
        if let Some(e) = &c.encoding {
            assert_eq!(a.json["data"]["encoding"], e.as_str(), "{what}");
        }
        if let Some(d) = &c.delimiter {
            assert_eq!(a.json["data"]["delimiter"], d.as_str(), "{what}");
        }
        if let Some(info) = &c.info {
            assert_eq!(a.json["info"], info.as_str(), "{what}");
        }
        if let Some(start) = &c.info_starts {
            assert!(
                a.json["info"].as_str().unwrap().starts_with(start.as_str()),
                "{what}: {}",
                a.text
            );
        }
        assert_eq!(
            api.member_count(&id).await,
            c.stored,
            "{what}: members stored"
        );
    }
    api.shutdown().await;
}

#[tokio::test]
async fn windows_1251_and_utf8_with_bom_are_decoded_faithfully() {
    let api = start().await;
    api.create_campaign("cp").await;
    let a = api
        .csv(
            "/api/v2/dialer/cp/members/import",
            &fixture("good_semicolon_cp1251.csv"),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let m1 = api.get("/api/v2/dialer/cp/members/1").await.json["data"].clone();
    assert_eq!(m1["name"], "Ірина Петренко");
    assert_eq!(m1["priority"], 1);
    assert_eq!(m1["timezone"], "Europe/Kyiv");
    assert_eq!(m1["variables"], json!({"language": "uk", "debt": "20000"}));
    assert_eq!(m1["communications"][0]["number"], "+380931234567");
    assert_eq!(m1["communications"][0]["priority"], 1);
    assert_eq!(m1["communications"][1]["description"], "домашній");
    let m3 = api.get("/api/v2/dialer/cp/members/3").await.json["data"].clone();
    assert_eq!(m3["name"], "Олег; Коваль");
    assert_eq!(m3["variables"], json!({"language": "uk"}));

    api.create_campaign("bom").await;
    let a = api
        .csv(
            "/api/v2/dialer/bom/members/import",
            &fixture("good_comma_utf8_bom_crlf.csv"),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let m1 = api.get("/api/v2/dialer/bom/members/1").await.json["data"].clone();
    assert_eq!(m1["name"], "Igor");
    assert_eq!(m1["expire"], "2030-01-01T00:00:00Z");
    assert_eq!(m1["external_id"], "crm-1");
    assert_eq!(m1["communications"][0]["type"], "mobile");
    let m2 = api.get("/api/v2/dialer/bom/members/2").await.json["data"].clone();
    assert_eq!(m2["name"], "Smith, John");
    assert_eq!(m2["variables"]["productID"], "a \"quoted\" id");
    // Importing again updates through external_id instead of duplicating.
    let again = api
        .csv(
            "/api/v2/dialer/bom/members/import",
            &fixture("good_comma_utf8_bom_crlf.csv"),
        )
        .await;
    assert_eq!(again.json["data"]["updated"], 2, "{}", again.text);
    assert_eq!(api.member_count("bom").await, 2);
    // autoRun starts the campaign after the import.
    let run = api
        .csv(
            "/api/v2/dialer/bom/members/import?autoRun=true",
            &fixture("good_comma_utf8_bom_crlf.csv"),
        )
        .await;
    assert_eq!(run.status, 200);
    assert_eq!(
        api.get("/api/v2/dialer/bom").await.json["data"]["run"],
        true
    );
    // Empty upload.
    let empty = api.csv("/api/v2/dialer/bom/members/import", b"").await;
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.json["info"],
        "body: empty; a CSV file with a header row is expected"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn member_data_is_bounded_integers_cannot_overflow_and_errors_quote_only_a_prefix() {
    let api = start().await;
    api.create_campaign("bounds").await;
    let post = |body: Value| api.call("POST", "/api/v2/dialer/bounds/members", Some(body));
    // i64::MIN passed validation when `abs()` wrapped (and panicked in a debug build).
    let min =
        post(json!({"name": "a", "priority": i64::MIN, "communications": [{"number": "1"}]})).await;
    assert_eq!(min.status, 422, "{}", min.text);
    assert_eq!(
        min.json["info"],
        "priority: -9223372036854775808 is outside ±549755813888"
    );
    let comm =
        post(json!({"name": "a", "communications": [{"number": "1", "priority": i64::MIN}]})).await;
    assert_eq!(comm.status, 422, "{}", comm.text);
    // More variables than the default limit (100).
    let vars: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("v{i}"), json!(i))).collect();
    let many =
        post(json!({"name": "a", "variables": vars, "communications": [{"number": "1"}]})).await;
    assert_eq!(many.status, 422, "{}", many.text);
    assert_eq!(
        many.json["info"],
        "variables: 101 variables; at most 100 are allowed"
    );
    // Each value within the per-field limit, the member over the configured 32 KiB in total.
    let vars: serde_json::Map<String, Value> = (0..10)
        .map(|i| (format!("v{i}"), json!("x".repeat(3500))))
        .collect();
    let body = json!({"name": "a", "variables": vars, "communications": [{"number": "1"}]});
    let big = post(body).await;
    assert_eq!(big.status, 422, "{}", big.text);
    let info = big.json["info"].as_str().unwrap();
    assert!(
        info.starts_with("the member's data is 35")
            && info.ends_with(&format!("at most {MAX_MEMBER} are allowed")),
        "{info}"
    );
    // A 60 KB variable name is quoted as a 64-character prefix.
    let name = "n".repeat(60_000);
    let long = post(
        json!({"name": "a", "variables": {name.clone(): 1}, "communications": [{"number": "1"}]}),
    )
    .await;
    assert_eq!(long.status, 422, "{}", long.text);
    assert!(
        long.text.len() < 400,
        "{} bytes: {}",
        long.text.len(),
        long.text
    );
    assert!(
        long.json["info"]
            .as_str()
            .unwrap()
            .starts_with(&format!("variables.{}…(60000 bytes)", &name[..64]))
    );
    // The same rules hold for CSV rows.
    let header: Vec<String> = (0..101).map(|i| format!("var_v{i}")).collect();
    let values: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let csv = format!(
        "name,number_1,priority,{}\nok,1,1,{}\nmin,2,{},{}\n",
        header.join(","),
        vec![""; 101].join(","),
        i64::MIN,
        vec![""; 101].join(","),
    );
    let many_csv = format!(
        "name,number_1,priority,{}\nmany,3,0,{}\n",
        header.join(","),
        values.join(","),
    );
    let a = api
        .csv("/api/v2/dialer/bounds/members/import", csv.as_bytes())
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["data"]["added"], 1);
    assert_eq!(
        a.json["data"]["errors"],
        json!([{"line": 3, "error": "priority: -9223372036854775808 is outside ±549755813888"}])
    );
    let a = api
        .csv("/api/v2/dialer/bounds/members/import", many_csv.as_bytes())
        .await;
    assert_eq!(
        a.json["data"]["errors"],
        json!([{"line": 2, "error": "variables: 101 variables; at most 100 are allowed"}]),
        "{}",
        a.text
    );
    // A far page would walk the whole campaign: refused, pointing at the cursor; `1e11` is not a page number.
    for (query, status, info) in [
        (
            "limit=10000&page=100",
            400,
            "page: skips 990000 members, more than 100000; page with after=<the previous answer's next> instead",
        ),
        (
            "limit=10000&page=1e11",
            400,
            "page: \"1e11\" is not a non-negative integer",
        ),
        ("limit=10000&page=11", 200, ""),
    ] {
        let a = api
            .get(&format!("/api/v2/dialer/bounds/members?{query}"))
            .await;
        assert_eq!(a.status, status, "{query}: {}", a.text);
        if status != 200 {
            assert_eq!(a.json["info"], info, "{query}");
        }
    }
    // JSON nested deeper than the limit (32 by default) is refused before it is parsed.
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let d = api
        .raw(
            "POST",
            "/api/v2/dialer/bounds/members",
            Some(WRITER),
            Some((deep.into_bytes(), "application/json")),
        )
        .await;
    assert_eq!(d.status, 400, "{}", d.text);
    assert_eq!(d.json["info"], "body: JSON nested deeper than 32 levels");
    assert_eq!(api.member_count("bounds").await, 1);
    api.shutdown().await;
}

/// A raw HTTP/1.1 request head with the writer's key.
fn head(method: &str, path: &str, content_length: u64) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nX-Key: {}\r\nX-Access-Token: {}\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n",
        WRITER.0, WRITER.1
    )
}

/// The status of the first answer read from `stream`, or None when the server closed it without one.
async fn status_of(stream: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test]
async fn idle_slowloris_and_slow_body_connections_neither_stay_forever_nor_slow_healthz() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let api = start_with_api_settings(
        "max_concurrent_requests = 8\nheader_read_timeout_sec = 2\nbody_idle_timeout_sec = 1\njson_body_deadline_sec = 3",
    )
    .await;
    api.create_campaign("slow").await;
    let addr = api.running.addr;
    // 200 connections that never send anything, 20 that send a head a byte at a time.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut dribblers = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /api/v2/dial").await.unwrap();
        dribblers.push(s);
    }
    // 12 keyed requests whose bodies arrive a byte every 300 ms: 8 take every slot, 4 are refused with 429.
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..12 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head("POST", "/api/v2/dialer/slow/members", 1000).as_bytes())
            .await
            .unwrap();
        slow.push(s);
    }
    let feeding = {
        let mut streams: Vec<TcpStream> = std::mem::take(&mut slow);
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(6);
            let mut open: Vec<bool> = vec![true; streams.len()];
            while Instant::now() < deadline && open.iter().any(|o| *o) {
                for (i, s) in streams.iter_mut().enumerate() {
                    if open[i] && s.write_all(b" ").await.is_err() {
                        open[i] = false;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            for s in &mut streams {
                statuses.push(status_of(s).await);
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile /healthz answers at once, every time.
    // reqwest is built without a crypto provider of its own: use the crate's (ring).
    fsdialer::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = client.get(api.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            t.elapsed() < Duration::from_millis(50),
            "/healthz took {:?}",
            t.elapsed()
        );
    }
    // Every slot is held by a slow body: one more API request is refused at once with 429.
    let busy = api.get("/api/v2/dialer").await;
    assert_eq!(busy.status, 429, "{}", busy.text);
    assert_eq!(busy.json["status"], "error");
    // The slow bodies end with 408 at the JSON deadline (the refused ones got 429 at once).
    let mut statuses = feeding.await.unwrap();
    statuses.sort();
    assert_eq!(
        statuses,
        [vec![Some(408); 8], vec![Some(429); 4]].concat(),
        "after {:?}",
        started.elapsed()
    );
    // Idle and slowloris connections were closed by the header timeout (2 s) without an answer.
    for s in idle.iter_mut().chain(dribblers.iter_mut()) {
        let closed = tokio::time::timeout(Duration::from_secs(3), status_of(s)).await;
        assert_eq!(closed, Ok(None), "an idle connection is still open");
    }
    // With the slots free again, the API answers.
    assert_eq!(api.get("/api/v2/dialer").await.status, 200);
    api.shutdown().await;
}

#[tokio::test]
async fn a_100_mb_body_is_refused_without_being_read() {
    use tokio::io::AsyncWriteExt;
    let api = start().await;
    api.create_campaign("huge100").await;
    for (path, limit) in [
        ("/api/v2/dialer/huge100/members", MAX_BODY as u64),
        ("/api/v2/dialer/huge100/members/import", MAX_IMPORT),
    ] {
        let mut s = tokio::net::TcpStream::connect(api.running.addr)
            .await
            .unwrap();
        s.write_all(head("POST", path, 100_000_000).as_bytes())
            .await
            .unwrap();
        let (mut rd, mut wr) = s.into_split();
        let writer = tokio::spawn(async move {
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0u64;
            while sent < 100_000_000 {
                if wr.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len() as u64;
            }
            sent
        });
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::io::AsyncReadExt::read_to_end(&mut rd, &mut answer),
        )
        .await;
        let sent = writer.await.unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
        assert!(
            text.contains(r#"{"status":"error","info":"body: larger than the limit of"#),
            "{text}"
        );
        // What the client managed to push before the server hung up: the drain allowance and socket buffers,
        // never the 100 MB.
        assert!(
            sent < limit + 32 * 1024 * 1024,
            "{path}: {sent} bytes were taken"
        );
    }
    assert_eq!(api.member_count("huge100").await, 0);
    api.shutdown().await;
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mark = if bom { Some('\u{FEFF}') } else { None };
    mark.into_iter()
        .chain(text.chars())
        .collect::<String>()
        .encode_utf16()
        .flat_map(|u| {
            if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            }
        })
        .collect()
}

#[tokio::test]
async fn utf16_files_are_decoded_and_files_that_read_as_garbage_are_refused_naming_the_encoding() {
    let api = start().await;
    let text = "name;number_1;var_місто\r\nАнна Коваль 😀;+380441234567;Київ\r\nБорис;380501234567;Львів\r\n";
    for (n, (bytes, encoding)) in [
        (utf16(text, false, true), "utf-16le"),
        (utf16(text, true, true), "utf-16be"),
        (utf16(text, false, false), "utf-16le"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("u16-{n}");
        api.create_campaign(&id).await;
        let a = api
            .csv(&format!("/api/v2/dialer/{id}/members/import"), &bytes)
            .await;
        assert_eq!(a.status, 200, "{encoding}: {}", a.text);
        assert_eq!(a.json["data"]["added"], 2, "{}", a.text);
        assert_eq!(a.json["data"]["encoding"], encoding);
        assert_eq!(a.json["data"]["delimiter"], ";");
        let m = api
            .get(&format!("/api/v2/dialer/{id}/members/1"))
            .await
            .json["data"]
            .clone();
        assert_eq!(m["name"], "Анна Коваль 😀");
        assert_eq!(m["variables"], json!({"місто": "Київ"}));
    }
    api.create_campaign("garbage").await;
    let url = "/api/v2/dialer/garbage/members/import";
    // UTF-8 forced as Windows-1251 would import as mojibake.
    let a = api
        .csv(&format!("{url}?encoding=windows-1251"), text.as_bytes())
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(
        a.json["info"],
        "the file does not read as windows-1251 text: it is UTF-8 text, which would import as mojibake (give encoding=utf-8)"
    );
    // UTF-16 forced as UTF-8, and a spreadsheet (zip) uploaded as CSV.
    let a = api
        .csv(&format!("{url}?encoding=utf-8"), &utf16(text, false, false))
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.json["info"].as_str().unwrap().starts_with(
            "the file does not read as utf-8 text: it holds the control character U+0000"
        ),
        "{}",
        a.text
    );
    let a = api
        .csv(url, b"PK\x03\x04\x14\x00\x06\x00\x08\x00name")
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    let info = a.json["info"].as_str().unwrap();
    assert!(
        info.starts_with("the file does not read as ") && info.contains("control character"),
        "{info}"
    );
    // UTF-16 with an unpaired surrogate: at the start the whole file is refused; in a row further on (past the
    // sample examined first), that row is refused naming the encoding.
    let broken = |rows: usize| {
        let mut bad = utf16("name,number_1\n", false, true);
        bad.extend(utf16(&"ok,1\n".repeat(rows), false, false));
        bad.extend(utf16("x", false, false));
        bad.extend([0x00, 0xD8]);
        bad.extend(utf16(",2\n", false, false));
        bad
    };
    let a = api.csv(url, &broken(1)).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(
        a.json["info"],
        "the file does not read as utf-16le text: it holds byte sequences that are not valid in it"
    );
    assert_eq!(api.member_count("garbage").await, 0);
    let a = api.csv(url, &broken(8000)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["data"]["added"], 8000);
    assert_eq!(
        a.json["data"]["errors"],
        json!([{"line": 8002, "error": "column 1: not valid UTF-16LE"}])
    );
    assert_eq!(api.member_count("garbage").await, 8000);
    api.shutdown().await;
}

#[tokio::test]
async fn an_upload_that_would_leave_too_little_free_disk_is_refused_with_507() {
    // Keep a whole exabyte free: no disk has that, so every upload is refused before it is written.
    let api = start_with_api_settings("min_free_disk_bytes = 1000000000000000000").await;
    api.create_campaign("disk").await;
    let a = api
        .csv(
            "/api/v2/dialer/disk/members/import",
            b"name,number_1\nA,1\n",
        )
        .await;
    assert_eq!(a.status, 507, "{}", a.text);
    let info = a.json["info"].as_str().unwrap();
    assert!(
        info.starts_with("body: not enough free disk space for the upload (")
            && info.ends_with("1000000000000000000 kept free)"),
        "{info}"
    );
    assert_eq!(api.member_count("disk").await, 0);
    api.shutdown().await;
}
