//! The operator page in a real browser: headless Chromium (Debian's `chromium` + `chromium-driver`, installed by
//! `scripts/test`) driven over WebDriver (fantoccini → chromedriver) against `fsdialer run` on Redis with a
//! `fsdialer sim` switch. Logs in with an API key, creates a campaign from the page, uploads a CSV, runs it, and
//! checks that the counters, members in retry and the hangup-cause histogram change live and end equal to the API's
//! figures, that the gateway's row shows its load and breaker state as the API does, and searches members by
//! name. A screenshot of the final page is written to `target/operator-page.png`.

use super::Child;
use super::api_support::*;
use super::lifecycle::{signal, spawn_run, spawn_sim, wait_exit, write_node_config};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CAMPAIGN: &str = "browser";

/// chromedriver on a free port, or a clear failure naming what to install.
async fn start_chromedriver() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "chromedriver not found ({e}): the browser test needs Debian's chromium and chromium-driver \
                 (scripts/test installs them: apt-get install chromium chromium-driver)"
            )
        });
    let url = format!("http://127.0.0.1:{port}");
    let up = eventually(20, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    assert!(up.is_some(), "chromedriver did not listen on {port}");
    (Child(child), url)
}

async fn browser(webdriver: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--window-size=1280,2400"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(webdriver)
        .await
        .unwrap_or_else(|e| panic!("headless chromium did not start through chromedriver: {e}"))
}

/// The text of the element with this id, `None` while there is none.
async fn text_of(c: &Client, id: &str) -> Option<String> {
    c.execute(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
        vec![json!(id)],
    )
    .await
    .ok()?
    .as_str()
    .map(str::to_owned)
}

async fn number_of(c: &Client, id: &str) -> Option<u64> {
    text_of(c, id).await?.trim().parse().ok()
}

/// Waits until the element's text satisfies `ok`, at most `secs`.
async fn wait_text(c: &Client, id: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
    let got = eventually(secs, || async { text_of(c, id).await.filter(|t| ok(t)) }).await;
    match got {
        Some(t) => t,
        None => panic!("#{id}: {:?} after {secs} s", text_of(c, id).await),
    }
}

/// Clicks through the page's script (the live cards are redrawn on every change, so a found element may be
/// replaced before a WebDriver click lands).
async fn click_id(c: &Client, id: &str) {
    let clicked = c
        .execute(
            "const e = document.getElementById(arguments[0]); if (!e || e.disabled) return false; e.click(); return true;",
            vec![json!(id)],
        )
        .await
        .unwrap();
    assert_eq!(clicked, json!(true), "#{id} clickable");
}

async fn click_css(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn fill(c: &Client, id: &str, value: &str) {
    let e = c.find(Locator::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// The histogram as the page shows it: cause → count.
async fn histogram(c: &Client) -> serde_json::Map<String, Value> {
    let v = c
        .execute(
            "const out = {}; for (const b of document.querySelectorAll('#hist-browser .bar')) \
             out[b.dataset.cause] = Number(b.querySelector('output').textContent); return out;",
            vec![],
        )
        .await
        .unwrap();
    v.as_object().cloned().unwrap_or_default()
}

async fn stats(http: &reqwest::Client, base: &str) -> Value {
    let r = http
        .get(format!("{base}/api/v2/dialer/{CAMPAIGN}/stats"))
        .header("X-Key", ADMIN.0)
        .header("X-Access-Token", ADMIN.1)
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_page_logs_in_creates_uploads_runs_and_shows_live_figures_equal_to_the_api() {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let (_sim, sim_addr) = spawn_sim("10");
    let dir = tempfile::tempdir().unwrap();
    let config = write_node_config(dir.path(), "page-node", &redis.url(), &sim_addr);
    let (mut node, base) = spawn_run(&config);
    let (_driver, webdriver) = start_chromedriver().await;
    let c = browser(&webdriver).await;
    fsdialer::tls::install_crypto_provider();
    let http = reqwest::Client::new();

    // Log in: a wrong token is refused on the page, the right one opens it.
    c.goto(&format!("{base}/")).await.unwrap();
    wait_text(&c, "login-title", 10, |t| t == "Log in").await;
    fill(&c, "login-key", ADMIN.0).await;
    fill(&c, "login-token", "wrong-token-0123456789").await;
    click_css(&c, "#login-form button").await;
    wait_text(&c, "login-error", 10, |t| !t.is_empty()).await;
    fill(&c, "login-token", ADMIN.1).await;
    click_css(&c, "#login-form button").await;
    wait_text(&c, "live", 10, |t| t == "live").await;
    let cookie_visible_to_scripts = c.execute("return document.cookie;", vec![]).await.unwrap();
    assert_eq!(
        cookie_visible_to_scripts,
        json!(""),
        "the key is in HttpOnly cookies"
    );

    // Create the campaign from the page.
    fill(&c, "c-id", CAMPAIGN).await;
    fill(&c, "c-name", "Browser test").await;
    fill(&c, "c-limit", "4").await;
    fill(&c, "c-tries", "2").await;
    fill(&c, "c-wait", "1").await;
    click_css(&c, "#create-form button").await;
    wait_text(&c, "create-result", 10, |t| t.contains("created")).await;
    wait_text(&c, &format!("state-{CAMPAIGN}"), 5, |t| t == "idle").await;

    // Upload a CSV and run: answering members (4 s calls: 40 s at ×10, so the page is sampled through several waves) and busy ones.
    let csv = dir.path().join("members.csv");
    let mut text = String::from("name,number_1\n");
    const N: u64 = 16;
    for i in 0..N {
        let number = if i % 4 == 0 { "busy" } else { "answer_40" };
        text.push_str(&format!("Member {i},{number}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    c.find(Locator::Id("u-campaign"))
        .await
        .unwrap()
        .select_by_value(CAMPAIGN)
        .await
        .unwrap();
    c.find(Locator::Id("u-file"))
        .await
        .unwrap()
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    click_css(&c, "#u-run").await;
    click_css(&c, "#upload-form button").await;
    wait_text(&c, "upload-result", 15, |t| {
        t.contains(&format!("{N} added"))
    })
    .await;
    let progress = c
        .execute(
            "return document.getElementById('u-progress').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(progress, json!(100));

    // Stop and run again from the page's buttons.
    let state_id = format!("state-{CAMPAIGN}");
    wait_text(&c, &state_id, 10, |t| t == "running").await;
    click_id(&c, &format!("stop-{CAMPAIGN}")).await;
    wait_text(&c, &state_id, 10, |t| t == "stopping" || t == "stopped").await;
    wait_text(&c, &state_id, 30, |t| t == "stopped").await;
    click_id(&c, &format!("run-{CAMPAIGN}")).await;
    wait_text(&c, &state_id, 10, |t| t == "running").await;

    // The figures move while the campaign runs: several distinct values of `calls` before the end.
    let mut seen_calls = std::collections::BTreeSet::new();
    let mut seen_hist = std::collections::BTreeSet::new();
    let mut most_in_retry = 0;
    let started = Instant::now();
    let ended_id = format!("ended-{CAMPAIGN}");
    loop {
        // `ended` is read before the other figures: once it shows the end, the figures read after it are the
        // final ones (one snapshot updates them all), so the last value of `calls` is never missed.
        let ended_all = number_of(&c, &ended_id).await == Some(N);
        if let Some(n) = number_of(&c, &format!("calls-{CAMPAIGN}")).await {
            seen_calls.insert(n);
        }
        // Busy members wait 1 s between their two tries: in retry meanwhile.
        if let Some(n) = number_of(&c, &format!("inretry-{CAMPAIGN}")).await {
            most_in_retry = most_in_retry.max(n);
        }
        seen_hist.insert(serde_json::to_string(&histogram(&c).await).unwrap());
        if ended_all {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the campaign did not end on the page: ended = {:?}",
            text_of(&c, &ended_id).await
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    eprintln!("calls seen live on the page: {seen_calls:?}");
    assert!(
        seen_calls.len() >= 3,
        "the calls counter changed live through several values: {seen_calls:?}"
    );
    assert!(
        seen_hist.len() >= 3,
        "the histogram changed live: {seen_hist:?}"
    );
    assert!(
        most_in_retry >= 1,
        "busy members were shown in retry between their tries"
    );

    // At the end the page shows what the API says (after one more tick).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let api = stats(&http, &base).await;
    for (page_id, field) in [
        ("ok", "ok"),
        ("retry", "retry"),
        ("error", "error"),
        ("minus", "minus"),
        ("calls", "calls"),
        ("ended", "ended"),
        ("inretry", "in_retry"),
    ] {
        assert_eq!(
            number_of(&c, &format!("{page_id}-{CAMPAIGN}")).await,
            api[field].as_u64(),
            "{field}: page against API {api}"
        );
    }
    let hist = histogram(&c).await;
    assert_eq!(
        hist.get("NORMAL_CLEARING").and_then(Value::as_u64),
        api["ok"].as_u64(),
        "{hist:?} {api}"
    );
    assert_eq!(
        hist.values().filter_map(Value::as_u64).sum::<u64>(),
        api["calls"].as_u64().unwrap(),
        "every attempt is in the histogram: {hist:?}"
    );
    assert!(hist.contains_key("USER_BUSY"), "{hist:?}");
    // The gateway's row: its calls against its limit and its breaker's state, as the API tells them.
    let gw = &api["gateways"][0];
    assert_eq!(gw["name"], "main", "{api}");
    assert_eq!(gw["breaker"]["state"], "closed", "{api}");
    let row = c
        .execute(
            "const r = document.querySelector('#card-browser tr[data-gateway=\"main\"]'); \
             return r ? [r.cells[1].textContent, r.querySelector('.gw-state').dataset.state] : null;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(row, json!([format!("{} / ∞", gw["in_use"]), "closed"]));

    // Member search and attempt history.
    c.find(Locator::Id("s-campaign"))
        .await
        .unwrap()
        .select_by_value(CAMPAIGN)
        .await
        .unwrap();
    fill(&c, "s-member", "1").await;
    click_css(&c, "#search-form button").await;
    wait_text(&c, "search-result", 10, |t| t.contains("Member 0")).await;
    click_css(&c, "#search-result button").await;
    wait_text(&c, "attempts", 10, |t| t.contains("USER_BUSY")).await;
    // Search by name, any case: "Member 1" and "Member 10" to "Member 15".
    fill(&c, "s-member", "").await;
    fill(&c, "s-name", "mEmBeR 1").await;
    click_css(&c, "#search-form button").await;
    wait_text(&c, "search-count", 10, |t| t == "7 found").await;
    let names = c
        .execute(
            "return [...document.querySelectorAll('#search-result tbody tr')].map((r) => r.cells[1].textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        names,
        json!([
            "Member 1",
            "Member 10",
            "Member 11",
            "Member 12",
            "Member 13",
            "Member 14",
            "Member 15"
        ])
    );

    let png = c.screenshot().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/operator-page.png");
    std::fs::write(&path, png).unwrap();

    let _ = c.close().await;
    signal(&node, "-TERM");
    wait_exit(&mut node, 30);
}
