//! The production processes on the high-availability store URLs (issue 19): `fsdialer run` with
//! `store = "redis+cluster://…"` or `store = "redis+sentinel://…"`, `fsdialer import --store <url>`, and the REST API,
//! against a `fsdialer sim` switch. Several campaigns (spread over the cluster's shards) are created through the
//! API, filled by the import command, run through the API and dialled to the end; the invariants are then checked
//! from the raw data and the API's `/stats` is compared with the store.

use super::api_support::*;
use super::lifecycle::{
    assert_campaign_called_once_each, post, signal, spawn_run, spawn_sim, wait_exit,
    write_node_config,
};
use fsdialer::store::Store;
use fsdialer::store::local_redis::{LocalCluster, LocalSentinel};
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_fsdialer");
/// Members per campaign, all imported from one CSV.
const MEMBERS: usize = 12;
/// Campaigns: enough that their hash tags land on every shard of a 3-master cluster.
const CAMPAIGNS: [&str; 6] = ["ha-a", "ha-b", "ha-c", "ha-d", "ha-e", "ha-f"];

/// A CSV of `MEMBERS` members whose calls answer and talk 2 s (switch time).
fn write_members_csv(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("name,number_1\n");
    for i in 0..MEMBERS {
        text.push_str(&format!("member {i},answer_2\n"));
    }
    let path = dir.join("members.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// An API request with the admin key; the body of its 200 answer.
async fn call_text(http: &reqwest::Client, method: reqwest::Method, url: String) -> String {
    let response = http
        .request(method, url.clone())
        .header("X-Key", ADMIN.0)
        .header("X-Access-Token", ADMIN.1)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{url}: {text}");
    text
}

/// An API request with the admin key; its 200 answer as JSON.
async fn call(http: &reqwest::Client, method: reqwest::Method, url: String) -> serde_json::Value {
    let text = call_text(http, method, url.clone()).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
}

/// Creates the campaign through the API (not running: its members come from the import).
async fn create_campaign(http: &reqwest::Client, base: &str, id: &str) {
    let mut c = campaign(id);
    c["limit"] = json!(6);
    c["max_tries"] = json!(1);
    c["wait_between_retries_sec"] = json!(1);
    c["originate_timeout_sec"] = json!(60);
    post(http, format!("{base}/api/v2/dialer"), c).await;
}

/// `fsdialer import --store <url> --campaign <id> <csv>`: every row added.
fn import(url: &str, id: &str, csv: &Path) {
    let out = Command::new(BIN)
        .args(["import", "--campaign", id, "--store", url])
        .arg(csv)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "import into {id} on {url}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{MEMBERS} rows: {MEMBERS} added")),
        "import into {id}: {stdout}"
    );
}

/// The whole run on one store URL: API-created campaigns, CSV import by the CLI, dialling by `fsdialer run`, the
/// invariants, `/stats` equal to the store, and a clean SIGTERM exit.
async fn engine_api_and_import_work_on(url: &str, label: &str) {
    fsdialer::tls::install_crypto_provider();
    let started = Instant::now();
    let (_sim, sim_addr) = spawn_sim("10");
    let dir = tempfile::tempdir().unwrap();
    let config = write_node_config(dir.path(), &format!("ha-{label}"), url, &sim_addr);
    let csv = write_members_csv(dir.path());
    let store = Store::open(url).await.unwrap();
    let http = reqwest::Client::new();

    let (mut run, base) = spawn_run(&config);
    for id in CAMPAIGNS {
        create_campaign(&http, &base, id).await;
        import(url, id, &csv);
    }
    for id in CAMPAIGNS {
        call(
            &http,
            reqwest::Method::PUT,
            format!("{base}/api/v2/dialer/{id}/state/1"),
        )
        .await;
    }
    let done = eventually(90, || async {
        for id in CAMPAIGNS {
            if store.counts(id).await.ok()?.ended != MEMBERS as u64 {
                return None;
            }
        }
        Some(())
    })
    .await;
    let mut progress = Vec::new();
    for id in CAMPAIGNS {
        progress.push(store.counts(id).await);
    }
    assert!(
        done.is_some(),
        "{label}: every campaign dialled to the end: {progress:?}"
    );

    let mut attempt_ids = HashSet::new();
    for id in CAMPAIGNS {
        assert_campaign_called_once_each(&store, id, MEMBERS, &mut attempt_ids).await;
        let stats = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/api/v2/dialer/{id}/stats"),
        )
        .await;
        let counts = serde_json::to_value(store.counts(id).await.unwrap()).unwrap();
        for (field, value) in counts.as_object().unwrap() {
            assert_eq!(
                &stats["data"][field], value,
                "{label} {id}: /stats {field} equals the store"
            );
        }
    }
    assert_eq!(attempt_ids.len(), CAMPAIGNS.len() * MEMBERS);

    // The campaign list (a global registry, outside every campaign's slot) and each campaign's attempt export.
    let list = call(&http, reqwest::Method::GET, format!("{base}/api/v2/dialer")).await;
    let listed: HashSet<String> = list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: campaign list {list}"))
        .iter()
        .filter_map(|c| c["id"].as_str().or(c["_id"].as_str()).map(str::to_owned))
        .collect();
    for id in CAMPAIGNS {
        assert!(listed.contains(id), "{label}: {id} listed in {list}");
        let csv = call_text(
            &http,
            reqwest::Method::GET,
            format!("{base}/api/v2/dialer/{id}/attempts/export.csv"),
        )
        .await;
        assert_eq!(
            csv.lines().count(),
            1 + MEMBERS,
            "{label} {id}: a header and one line per attempt: {csv}"
        );
    }
    // A deleted campaign leaves the list.
    let gone = CAMPAIGNS[0];
    call(
        &http,
        reqwest::Method::DELETE,
        format!("{base}/api/v2/dialer/{gone}"),
    )
    .await;
    let list = call(&http, reqwest::Method::GET, format!("{base}/api/v2/dialer")).await;
    assert!(
        !list.to_string().contains(&format!("\"{gone}\"")),
        "{label}: {gone} deleted: {list}"
    );

    signal(&run, "-TERM");
    assert_eq!(wait_exit(&mut run, 30), Some(0), "{label}: drained exit");
    eprintln!("{label}: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_api_and_import_work_unchanged_on_a_redis_cluster_and_on_sentinel() {
    let cluster = LocalCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let shards: HashSet<u16> = CAMPAIGNS
        .iter()
        .map(|c| cluster.master_port_of(&format!("dlr:{{{c}}}:")).unwrap())
        .collect();
    assert_eq!(shards.len(), 3, "the campaigns are spread over every shard");
    engine_api_and_import_work_on(&cluster.url(), "cluster").await;
    drop(cluster);

    let sentinel = LocalSentinel::start().unwrap_or_else(|e| panic!("{e}"));
    engine_api_and_import_work_on(&sentinel.url(), "sentinel").await;
}
