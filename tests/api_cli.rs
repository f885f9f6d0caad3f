//! The `fsdialer run` and `fsdialer import` commands as a user runs them (the real binary), against a real Redis.

mod api_support;
mod tls_support;

use api_support::*;
use fsdialer::store::Store;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_fsdialer");

fn fixture(name: &str) -> String {
    format!("{}/fixtures/api/csv/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn fsdialer_import_loads_a_csv_reports_bad_rows_by_line_and_honours_all_or_nothing() {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&redis.url()).await.unwrap();
    store.put_campaign_doc("cli", "{}").await.unwrap();

    let out = Command::new(BIN)
        .args([
            "import",
            "--campaign",
            "cli",
            "--store",
            &redis.url(),
            &fixture("good_semicolon_cp1251.csv"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("3 rows: 3 added, 0 updated, 0 in a call (unchanged), 0 refused (windows-1251, ';'-separated)"),
        "{stdout}"
    );
    let m = store
        .get("cli", fsdialer::store::MemberId(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.name, "Ірина Петренко");

    // Bad rows: the good ones are imported, each bad one is named by file and line, exit status 1.
    let out = Command::new(BIN)
        .args([
            "import",
            "--campaign",
            "cli",
            "--store",
            &redis.url(),
            &fixture("bad_rows.csv"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad_rows.csv: line 5: timezone: unknown timezone \"Mars/Olympus\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad_rows.csv: line 10: 7 fields, the header has 6"),
        "{stderr}"
    );
    assert_eq!(store.counts("cli").await.unwrap().waiting, 5);

    // --all-or-nothing: nothing is written.
    let out = Command::new(BIN)
        .args([
            "import",
            "--all-or-nothing",
            "--campaign",
            "cli",
            "--store",
            &redis.url(),
            &fixture("bad_rows.csv"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("7 of 9 rows are invalid; nothing was imported")
    );
    assert_eq!(store.counts("cli").await.unwrap().waiting, 5);

    // An unknown campaign is refused before reading the file.
    let out = Command::new(BIN)
        .args([
            "import",
            "--campaign",
            "nope",
            "--store",
            &redis.url(),
            &fixture("bad_rows.csv"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("campaign \"nope\" is not known to the store"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn fsdialer_import_reaches_a_rediss_store_trusting_the_ca_of_store_ca_file() {
    let pki = tls_support::TestPki::new("fsdialer test CA");
    let redis = fsdialer::store::local_redis::LocalRedis::start(
        fsdialer::store::local_redis::LocalRedisOptions {
            tls: Some(fsdialer::store::local_redis::LocalRedisTls {
                cert_file: pki.cert_file.clone(),
                key_file: pki.key_file.clone(),
                ca_file: pki.ca_file.clone(),
            }),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let tls = fsdialer::store::StoreTls {
        ca_file: Some(pki.ca_file.clone()),
    };
    let store = Store::open_with(&redis.url(), &tls, fsdialer::store::AttemptIds::Random)
        .await
        .unwrap();
    store.put_campaign_doc("cli", "{}").await.unwrap();
    let import = |ca: Option<&std::path::Path>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["import", "--campaign", "cli", "--store", &redis.url()]);
        if let Some(ca) = ca {
            cmd.arg("--store-ca-file").arg(ca);
        }
        cmd.arg(fixture("good_semicolon_cp1251.csv"))
            .output()
            .unwrap()
    };
    // Without the CA, the system's trust store does not know the server: refused, with the remedy named.
    let out = import(None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
    assert!(stderr.contains("store_ca_file"), "{stderr}");
    assert_eq!(store.counts("cli").await.unwrap().waiting, 0);
    let out = import(Some(&pki.ca_file));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(store.counts("cli").await.unwrap().waiting, 3);
}

/// Kills the child when dropped (a failing test must not leave the server running).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn fsdialer_run_with_a_config_file_serves_the_api_on_redis() {
    let redis = fsdialer::store::local_redis::LocalRedis::start(Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let campaign_file = dir.path().join("c.json");
    std::fs::write(&campaign_file, campaign("from-file").to_string()).unwrap();
    let config = format!(
        "{}\n[[campaigns]]\nfile = \"c.json\"\nrun = true\n",
        config_text(&redis.url())
    );
    let config_path = dir.path().join("fsdialer.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Child(
        Command::new(BIN)
            .args(["run", "--config", config_path.to_str().unwrap()])
            .env_remove("FSDIALER_API_KEY")
            .env_remove("FSDIALER_API_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    assert!(line.contains("(redis store, simulated switch on"), "{line}");
    // reqwest is built without a crypto provider of its own: use the crate's (ring).
    fsdialer::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let r = http
        .get(format!("http://{addr}/api/v2/dialer/from-file"))
        .header("X-Key", ADMIN.0)
        .header("X-Access-Token", ADMIN.1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["data"]["run"], true);
    assert_eq!(v["data"]["name"], "campaign from-file");
    // The file's campaign is in the store, for every node.
    let store = Store::open(&redis.url()).await.unwrap();
    assert!(store.campaign_doc("from-file").await.unwrap().is_some());
}

#[tokio::test]
async fn fsdialer_run_refuses_a_bad_config_naming_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "store = \"redis://127.0.0.1:1\"\n[api]\nlisten = \"nowhere\"\n[[campaigns]]\nfile = \"missing.toml\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .env_remove("FSDIALER_API_KEY")
        .env_remove("FSDIALER_API_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "api.listen: \"nowhere\" is not an address like 127.0.0.1:8080",
        "switches: none configured",
        "campaigns[0].file: ",
        "missing.toml: No such file or directory",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from {stderr}");
    }
}

#[tokio::test]
async fn the_embedded_default_generates_an_admin_key_that_works() {
    let mut cfg = fsdialer::run::config::RunConfig::embedded();
    cfg.api.listen = "127.0.0.1:0".into();
    let running = fsdialer::run::start(cfg, |_| None, true).await.unwrap();
    let banner = running.banner();
    assert!(
        banner.contains("(memory store, simulated switch on"),
        "{banner}"
    );
    let secret = banner
        .split("X-Access-Token: ")
        .nth(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no key in {banner}"));
    assert!(
        banner.contains("generated admin key: X-Key: admin"),
        "{banner}"
    );
    let base = format!("http://{}", running.addr);
    // reqwest is built without a crypto provider of its own: use the crate's (ring).
    fsdialer::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/api/v2/dialer"))
        .header("X-Key", "admin")
        .header("X-Access-Token", &secret)
        .header("Content-Type", "application/json")
        .body(campaign("embedded").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!(
            "{base}/api/v2/dialer/embedded/members?autoRun=true"
        ))
        .header("X-Key", "admin")
        .header("X-Access-Token", &secret)
        .body(member("Answering", "answer_1").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let store = running.state.store.clone();
    let done = eventually(15, || async {
        let c = store.counts("embedded").await.ok()?;
        (c.success == 1).then_some(c)
    })
    .await;
    assert!(
        done.is_some(),
        "the member is called and succeeds on the simulated switch"
    );
    running.shutdown().await;
}
#[path = "cli_cases/ha_stores.rs"]
mod ha_stores;
#[path = "cli_cases/lifecycle.rs"]
mod lifecycle;
#[path = "cli_cases/page.rs"]
mod page;
#[path = "cli_cases/webhooks.rs"]
mod webhooks;
