//! Shared helpers of the API integration tests: a whole `fsdialer run` (real Redis started for the test, the
//! engine, an in-process simulated switch, the API on a free port) and a small HTTP client.
#![allow(dead_code)]

use fsdialer::run::{self, Running, config::RunConfig};
use fsdialer::store::local_redis::{LocalRedis, LocalRedisOptions};
use serde_json::{Value, json};

pub const ADMIN: (&str, &str) = ("admin", "0123456789abcdef-admin");
pub const WRITER: (&str, &str) = ("crm", "0123456789abcdef-crm-writer");
pub const READER: (&str, &str) = ("ro", "0123456789abcdef-read-only");
/// A key of role `agent` acting as agent `a1`.
pub const AGENT_A1: (&str, &str) = ("agent-a1", "0123456789abcdef-agent-a1");

/// Small limits so the 413 tests stay small.
pub const MAX_BODY: usize = 64 * 1024;
pub const MAX_IMPORT: u64 = 4 * 1024 * 1024;
/// Below the body limit, so that an over-large member can be sent.
pub const MAX_MEMBER: usize = 32 * 1024;

pub struct Api {
    pub running: Running,
    pub redis: LocalRedis,
    pub base: String,
    pub http: reqwest::Client,
}

/// What a request answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub text: String,
    pub content_type: String,
}

pub fn config_text(redis_url: &str) -> String {
    format!(
        r#"
node_id = "test-node"
store = "{redis_url}"
[api]
listen = "127.0.0.1:0"
max_body_bytes = {MAX_BODY}
max_import_bytes = {MAX_IMPORT}
max_member_bytes = {MAX_MEMBER}
[[api.keys]]
id = "{}"
secret = "{}"
role = "admin"
[[api.keys]]
id = "{}"
secret = "{}"
role = "members-writer"
[[api.keys]]
id = "{}"
secret = "{}"
role = "read-only"
[[api.keys]]
id = "{}"
secret = "{}"
role = "agent"
agent = "a1"
[engine]
lease_sec = 3
sync_interval_sec = 1
[sim]
speed = 1.0
"#,
        ADMIN.0, ADMIN.1, WRITER.0, WRITER.1, READER.0, READER.1, AGENT_A1.0, AGENT_A1.1
    )
}

/// Starts a private redis-server and a whole `fsdialer run` on it.
pub async fn start() -> Api {
    let redis = LocalRedis::start(LocalRedisOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    start_on(redis).await
}

pub async fn start_on(redis: LocalRedis) -> Api {
    start_configured(redis, "").await
}

/// Starts with `api_settings` (TOML lines) added to the `[api]` section of the test configuration.
pub async fn start_with_api_settings(api_settings: &str) -> Api {
    let redis = LocalRedis::start(LocalRedisOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    start_configured(redis, api_settings).await
}

async fn start_configured(redis: LocalRedis, api_settings: &str) -> Api {
    let text =
        config_text(&redis.url()).replacen("[api]\n", &format!("[api]\n{api_settings}\n"), 1);
    let cfg = RunConfig::from_toml(&text).expect("test config");
    let running = run::start(cfg, |_| None, false)
        .await
        .expect("fsdialer run starts");
    let scheme = if running.https { "https" } else { "http" };
    let base = format!("{scheme}://{}", running.addr);
    // reqwest is built without a crypto provider of its own: use the crate's (ring).
    fsdialer::tls::install_crypto_provider();
    Api {
        running,
        redis,
        base,
        http: reqwest::Client::new(),
    }
}

/// Starts with the API behind TLS (`cert_file` / `key_file`) and `api_settings`; the client trusts only the CA
/// `ca_pem`.
pub async fn start_https(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
    ca_pem: &str,
    api_settings: &str,
) -> Api {
    let settings = format!(
        "tls_cert_file = {:?}\ntls_key_file = {:?}\n{api_settings}",
        cert_file.display().to_string(),
        key_file.display().to_string()
    );
    let mut api = start_with_api_settings(&settings).await;
    api.http = client_trusting(ca_pem);
    api
}

/// An HTTP client that trusts only the CA `ca_pem`.
pub fn client_trusting(ca_pem: &str) -> reqwest::Client {
    fsdialer::tls::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA certificate");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("HTTPS client")
}

/// A campaign open around the clock, dialling through `loopback/` (the simulator's built-in dialplan).
pub fn campaign(id: &str) -> Value {
    let accept: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start_min": 0, "end_min": 1440}))
        .collect();
    json!({
        "id": id,
        "name": format!("campaign {id}"),
        "limit": 5,
        "wait_between_retries_sec": 3600,
        "max_tries": 3,
        "calendar": {"timezone": "Europe/Kyiv", "accept": accept},
        "gateways": [{"name": "lb", "pattern": "^(.*)$", "dial_string": "loopback/$1/default"}],
    })
}

/// The Webitel documentation's member body.
pub fn webitel_member() -> Value {
    json!({
        "name": "Igor Navrotskyj",
        "priority": 0,
        "timezone": "Europe/Kiev",
        "variables": {"debt": 20000, "language": "ru", "productID": "8fd26a17-eb28-4c74-aa6f-a3794f4f466c"},
        "communications": [{"number": "380931234567", "priority": 1}, {"number": "380441234567", "priority": 0}]
    })
}

pub fn member(name: &str, number: &str) -> Value {
    json!({"name": name, "communications": [{"number": number}]})
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with a key (headers) and an optional raw body.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        key: Option<(&str, &str)>,
        body: Option<(Vec<u8>, &str)>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rq = self.http.request(method, self.url(path));
        if let Some((id, secret)) = key {
            rq = rq.header("X-Key", id).header("X-Access-Token", secret);
        }
        if let Some((bytes, ct)) = body {
            rq = rq.header("Content-Type", ct).body(bytes);
        }
        let r = rq.send().await.expect("request sent");
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        // A live stream (server-sent events) never ends: its body is not read (dropping it closes the stream).
        let text = if content_type.starts_with("text/event-stream") {
            String::new()
        } else {
            r.text().await.expect("body read")
        };
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            json,
            text,
            content_type,
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.raw(
            method,
            path,
            Some(ADMIN),
            body.map(|b| (b.to_string().into_bytes(), "application/json")),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    pub async fn csv(&self, path: &str, body: &[u8]) -> Answer {
        self.raw("POST", path, Some(ADMIN), Some((body.to_vec(), "text/csv")))
            .await
    }

    /// Creates a campaign through the API (asserting success).
    pub async fn create_campaign(&self, id: &str) -> Value {
        let a = self
            .call("POST", "/api/v2/dialer", Some(campaign(id)))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json
    }

    /// How many members the campaign has, from the store.
    pub async fn member_count(&self, id: &str) -> u64 {
        let c = self.running.state.store.counts(id).await.expect("counts");
        c.waiting + c.active + c.ended
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// Polls `f` every 50 ms until it returns Some, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
