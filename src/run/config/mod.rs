//! The production configuration file of `fsdialer run` (TOML), and the embedded default used without one.
//!
//! ```toml
//! node_id = "node-1"                      # this engine node's id (leases are held in its name); default: the
//!                                         # host name, so a restarted node takes its calls back (never the pid)
//! store = "redis://127.0.0.1:6379"        # or "memory://" (single node, nothing persisted), or
//!                                         # "rediss://[user:password@]host:6380[/db]" (Redis over TLS)
//!                                         # "redis+sentinel://host:26379,host:26380/mastername" (Sentinel)
//!                                         # "redis+cluster://host:7000,host:7001,host:7002" (Redis Cluster)
//! store_ca_file = "redis-ca.pem"          # optional, rediss:// only: trust only the CA(s) of this PEM file
//!                                         # (a private CA); default: the system's trust store
//! store_wait_replicas = 0                 # Redis only: replicas that must confirm each completion (WAIT) before
//!                                         # it is acknowledged; 1 keeps results through a fail-over (see README)
//! log_numbers = false                     # true: whole phone numbers in logs (default: last 3 characters)
//!
//! [api]
//! listen = "0.0.0.0:8080"
//! tls_cert_file = "api-cert.pem"          # optional, with tls_key_file: serve HTTPS (rustls); the PEM chain,
//! tls_key_file = "api-key.pem"            # server certificate first, and its private key (PKCS#8, PKCS#1, SEC1)
//! max_body_bytes = 4194304                # JSON bodies (413 beyond)
//! max_json_depth = 32                     # deepest JSON nesting (400 beyond)
//! header_read_timeout_sec = 10            # request head must arrive within; also the idle connection timeout
//! body_idle_timeout_sec = 10              # longest pause inside a body (408)
//! json_body_deadline_sec = 30             # a whole JSON body must arrive within (408)
//! max_concurrent_requests = 256           # API requests at once (429 beyond; /healthz is not counted)
//! max_import_bytes = 2147483648           # CSV uploads (413 beyond; streamed to a temporary file)
//! min_free_disk_bytes = 1073741824        # an upload must leave this much free in the temporary folder (507)
//! metrics_public = false                  # true: /metrics without a key
//! max_member_variables = 100              # most variables per member (API and CSV)
//! max_member_bytes = 65536                # largest member (name, variables, numbers), bytes
//! [[api.keys]]
//! id = "ops"                              # sent as X-Key
//! secret = "a long random secret"         # sent as X-Access-Token (at least 16 bytes)
//! role = "admin"                          # admin | members-writer | read-only | agent
//! # agent = "a1"                          # role agent only: the agent id the key acts as (its own status,
//!                                         # accept/skip, results; nothing else)
//!
//! [engine]
//! lease_sec = 60                          # lease of a claimed attempt
//! claim_batch = 100
//! sync_interval_sec = 5                   # a full re-read of the campaigns (changes are followed within 1 s anyway)
//! drain_timeout_sec = 300                 # SIGTERM/SIGINT: how long calls in progress may take to finish; the
//!                                         # rest are left up for the next start to adopt (never killed)
//! max_call_sec = 14400                    # an answered call is looked at (uuid_exists) after this long
//! switch_lost_after_sec = 120             # a switch disconnected this long has its calls settled as lost
//! switch_stall_warn_sec = 10              # a switch leaving a command unanswered this long: logged, /readyz 503
//! sounds_dir = "/usr/share/freeswitch/sounds"   # optional: callflow playback files must be inside
//! recordings_dir = "/var/lib/fsdialer/rec"      # optional: record_session paths must be inside
//!
//! [[switches]]                            # FreeSWITCH nodes (event socket)
//! name = "fs1"
//! address = "10.0.0.5:8021"
//! password = "ClueCon"                   # or password_env = "FS1_ESL_PASSWORD", or password_file = "fs1.secret"
//! max_sessions = 1000                     # optional: absent = read from the switch at connect (fsctl)
//! sessions_per_second = 30                # optional: absent = read from the switch at connect (fsctl)
//! sessions_per_call = 1                   # 2 for loopback/ dial strings
//!
//! [sim]                                   # optional: an in-process simulated switch (added to the switches)
//! speed = 1.0
//! scenario = "scenario.toml"              # optional (see `sim::scenario`); default: answer_N, busy, ring_N... numbers
//!
//! [[campaigns]]                           # campaigns from files (TOML or JSON, by extension) ...
//! file = "campaigns/debt.toml"
//! run = true                              # optional: run/stop at start-up; absent = keep the stored command
//! [[campaigns]]                           # ... or inline
//! [campaigns.config]
//! id = "sales"
//! gateways = [{ name = "gw", pattern = "^(.*)$", dial_string = "sofia/gateway/gw/$1" }]
//! ```
//!
//! Campaigns of the file are written to the store at start-up (replacing a stored campaign with the same id), so
//! the file is their source of truth; campaigns created through the API live in the store only. Relative paths
//! are relative to the configuration file. Every problem is reported with its path (`campaigns[1].config.limit:
//! ...`, `switches[0].address: ...`).

use crate::api::auth::{ApiKey, Keys, Role};
use crate::api::server::{self, HttpLimits};
use crate::campaign::config::CampaignConfig;
use crate::campaign::member::MemberLimits;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Environment variables that give the admin key (both or neither).
pub const ENV_KEY: &str = "FSDIALER_API_KEY";
pub const ENV_TOKEN: &str = "FSDIALER_API_TOKEN";

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_store() -> String {
    "memory://".into()
}
fn default_max_body() -> usize {
    crate::api::DEFAULT_MAX_BODY
}
fn default_max_import() -> u64 {
    crate::api::DEFAULT_MAX_IMPORT
}
fn default_max_member_variables() -> usize {
    crate::campaign::member::DEFAULT_MAX_VARIABLES
}
fn default_max_member_bytes() -> usize {
    crate::campaign::member::DEFAULT_MAX_MEMBER_BYTES
}
fn default_header_read_timeout() -> u64 {
    server::DEFAULT_HEADER_READ_TIMEOUT.as_secs()
}
fn default_body_idle_timeout() -> u64 {
    server::DEFAULT_BODY_IDLE_TIMEOUT.as_secs()
}
fn default_json_body_deadline() -> u64 {
    server::DEFAULT_JSON_BODY_DEADLINE.as_secs()
}
fn default_max_concurrent_requests() -> usize {
    server::DEFAULT_MAX_CONCURRENT_REQUESTS
}
fn default_max_json_depth() -> usize {
    server::DEFAULT_MAX_JSON_DEPTH
}
fn default_min_free_disk() -> u64 {
    crate::api::DEFAULT_MIN_FREE_DISK
}
fn default_lease() -> u64 {
    60
}
fn default_claim_batch() -> u32 {
    100
}
fn default_sync() -> u64 {
    5
}
fn default_max_sessions() -> u32 {
    1000
}
fn default_sps() -> u32 {
    30
}
fn default_spc() -> u32 {
    1
}
fn default_password() -> String {
    "ClueCon".into()
}
fn default_speed() -> f64 {
    1.0
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    #[serde(default = "default_max_import")]
    pub max_import_bytes: u64,
    /// Free disk space a CSV upload must leave in the temporary folder (507 otherwise).
    #[serde(default = "default_min_free_disk")]
    pub min_free_disk_bytes: u64,
    #[serde(default)]
    pub metrics_public: bool,
    /// Most variables one member may carry (API and CSV).
    #[serde(default = "default_max_member_variables")]
    pub max_member_variables: usize,
    /// Largest member, in bytes of text (name, variables, numbers...).
    #[serde(default = "default_max_member_bytes")]
    pub max_member_bytes: usize,
    /// Time to receive a request head; also how long an idle connection stays open.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_sec: u64,
    /// Longest pause inside a request body (408 beyond).
    #[serde(default = "default_body_idle_timeout")]
    pub body_idle_timeout_sec: u64,
    /// Time to receive a whole JSON body (408 beyond).
    #[serde(default = "default_json_body_deadline")]
    pub json_body_deadline_sec: u64,
    /// Most API requests served at once (429 beyond; /healthz and /metrics are not counted).
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Deepest JSON nesting accepted in a body (400 beyond).
    #[serde(default = "default_max_json_depth")]
    pub max_json_depth: usize,
    #[serde(default)]
    pub keys: Vec<ApiKey>,
    /// PEM certificate chain of HTTPS (with `tls_key_file`); neither: plain HTTP.
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
}

impl ApiSection {
    /// The connection and request limits of this section.
    pub fn http_limits(&self) -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_sec),
            body_idle_timeout: Duration::from_secs(self.body_idle_timeout_sec),
            json_body_deadline: Duration::from_secs(self.json_body_deadline_sec),
            max_concurrent_requests: self.max_concurrent_requests,
            max_json_depth: self.max_json_depth,
        }
    }

    /// The TLS configuration of the API: `None` without `tls_cert_file` and `tls_key_file` (plain HTTP). Errors
    /// name the configuration key and the file, never the file's content.
    pub fn tls(&self) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(
                "api.tls_key_file: missing (api.tls_cert_file is set; give both or neither)".into(),
            ),
            (None, Some(_)) => Err(
                "api.tls_cert_file: missing (api.tls_key_file is set; give both or neither)".into(),
            ),
            (Some(cert), Some(key)) => {
                let chain = crate::tls::read_certificates(cert)
                    .map_err(|e| format!("api.tls_cert_file: {e}"))?;
                let private = crate::tls::read_private_key(key)
                    .map_err(|e| format!("api.tls_key_file: {e}"))?;
                crate::tls::server_config(chain, private)
                    .map(Some)
                    .map_err(|e| {
                        format!(
                            "api.tls_cert_file / api.tls_key_file: {} / {}: {e}",
                            cert.display(),
                            key.display()
                        )
                    })
            }
        }
    }

    /// The member limits of this section.
    pub fn member_limits(&self) -> MemberLimits {
        MemberLimits {
            max_variables: self.max_member_variables,
            max_bytes: self.max_member_bytes,
        }
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: default_listen(),
            max_body_bytes: default_max_body(),
            max_import_bytes: default_max_import(),
            min_free_disk_bytes: default_min_free_disk(),
            metrics_public: false,
            max_member_variables: default_max_member_variables(),
            max_member_bytes: default_max_member_bytes(),
            header_read_timeout_sec: default_header_read_timeout(),
            body_idle_timeout_sec: default_body_idle_timeout(),
            json_body_deadline_sec: default_json_body_deadline(),
            max_concurrent_requests: default_max_concurrent_requests(),
            max_json_depth: default_max_json_depth(),
            keys: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// `[engine]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    #[serde(default = "default_lease")]
    pub lease_sec: u64,
    #[serde(default = "default_claim_batch")]
    pub claim_batch: u32,
    #[serde(default = "default_sync")]
    pub sync_interval_sec: u64,
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_sec: u64,
    #[serde(default = "default_max_call")]
    pub max_call_sec: u64,
    #[serde(default = "default_switch_lost_after")]
    pub switch_lost_after_sec: u64,
    #[serde(default = "default_switch_stall_warn")]
    pub switch_stall_warn_sec: u64,
    /// Where callflow `playback` / `play_and_get_digits` files must be (relative paths are taken inside it).
    #[serde(default)]
    pub sounds_dir: Option<PathBuf>,
    /// Where callflow `record_session` may write.
    #[serde(default)]
    pub recordings_dir: Option<PathBuf>,
}

fn default_switch_stall_warn() -> u64 {
    10
}

fn default_drain_timeout() -> u64 {
    300
}
fn default_max_call() -> u64 {
    4 * 3600
}
fn default_switch_lost_after() -> u64 {
    120
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            lease_sec: default_lease(),
            claim_batch: default_claim_batch(),
            sync_interval_sec: default_sync(),
            drain_timeout_sec: default_drain_timeout(),
            max_call_sec: default_max_call(),
            switch_lost_after_sec: default_switch_lost_after(),
            switch_stall_warn_sec: default_switch_stall_warn(),
            sounds_dir: None,
            recordings_dir: None,
        }
    }
}

/// `[[switches]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSection {
    pub name: String,
    pub address: String,
    #[serde(default = "default_password")]
    pub password: String,
    /// Read the password from this environment variable instead (see `run::secrets`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Read the password from this file instead (relative to the configuration file).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The switch's `max-sessions`; absent: read from the switch when the engine connects (`fsctl max_sessions`).
    #[serde(default)]
    pub max_sessions: Option<u32>,
    /// The switch's `sessions-per-second`; absent: read from the switch when the engine connects (`fsctl sps`).
    #[serde(default)]
    pub sessions_per_second: Option<u32>,
    #[serde(default = "default_spc")]
    pub sessions_per_call: u32,
}

/// `[sim]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSection {
    #[serde(default = "default_speed")]
    pub speed: f64,
    #[serde(default = "default_max_sessions")]
    pub max_sessions: u32,
    #[serde(default = "default_sps")]
    pub sessions_per_second: u32,
    /// A scenario file (see `sim::scenario`); none = the built-in dialplan of the captures (`answer_N`, `busy`...).
    #[serde(default)]
    pub scenario: Option<PathBuf>,
}

/// `[[campaigns]]`: a file or an inline configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignEntry {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub config: Option<CampaignConfig>,
    /// Run (true) or stop (false) at start-up; absent = keep the stored command.
    #[serde(default)]
    pub run: Option<bool>,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default = "default_store")]
    pub store: String,
    /// For a `rediss://` store: PEM file of the CA(s) to trust instead of the system's.
    #[serde(default)]
    pub store_ca_file: Option<PathBuf>,
    /// Replicas that must confirm each completion before it counts as written (Redis `WAIT`); 0: the master's word.
    #[serde(default)]
    pub store_wait_replicas: u32,
    /// Whole phone numbers in logs (personal data); default: only their last 3 characters.
    #[serde(default)]
    pub log_numbers: bool,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub switches: Vec<SwitchSection>,
    #[serde(default)]
    pub sim: Option<SimSection>,
    #[serde(default)]
    pub campaigns: Vec<CampaignEntry>,
}

/// A campaign of the file, loaded and validated.
#[derive(Debug, Clone)]
pub struct LoadedCampaign {
    pub config: CampaignConfig,
    pub run: Option<bool>,
}

/// Why the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct RunConfigError(pub Vec<String>);

/// Where a generated key came from (for the start-up banner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    File,
    Environment,
    Generated,
}

impl RunConfig {
    /// The embedded default: memory store, in-process simulated switch, API on 127.0.0.1:8080.
    pub fn embedded() -> RunConfig {
        RunConfig {
            node_id: None,
            store: default_store(),
            store_ca_file: None,
            store_wait_replicas: 0,
            log_numbers: false,
            api: ApiSection::default(),
            engine: EngineSection::default(),
            switches: Vec::new(),
            sim: Some(SimSection {
                speed: 1.0,
                max_sessions: default_max_sessions(),
                sessions_per_second: default_sps(),
                scenario: None,
            }),
            campaigns: Vec::new(),
        }
    }

    /// Reads a configuration file.
    pub fn from_file(path: &Path) -> Result<RunConfig, RunConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RunConfigError(vec![format!("{}: {e}", path.display())]))?;
        let mut cfg = RunConfig::from_toml(&text).map_err(|e| {
            RunConfigError(
                e.0.into_iter()
                    .map(|m| format!("{}: {m}", path.display()))
                    .collect(),
            )
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for f in [
            &mut cfg.store_ca_file,
            &mut cfg.api.tls_cert_file,
            &mut cfg.api.tls_key_file,
        ]
        .into_iter()
        .flatten()
        {
            if f.is_relative() {
                *f = base.join(&*f);
            }
        }
        if let Some(sim) = &mut cfg.sim
            && let Some(f) = &sim.scenario
            && f.is_relative()
        {
            sim.scenario = Some(base.join(f));
        }
        for s in &mut cfg.switches {
            if let Some(f) = &s.password_file
                && f.is_relative()
            {
                s.password_file = Some(base.join(f));
            }
        }
        for c in &mut cfg.campaigns {
            if let Some(f) = &c.file
                && f.is_relative()
            {
                c.file = Some(base.join(f));
            }
        }
        Ok(cfg)
    }

    /// Parses configuration text.
    pub fn from_toml(text: &str) -> Result<RunConfig, RunConfigError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| RunConfigError(vec![e.to_string().trim_end().to_string()]))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let line = inner
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = match (path.as_str(), line) {
                (".", Some(l)) => format!("line {l}: "),
                (".", None) => String::new(),
                (p, Some(l)) => format!("{p} (line {l}): "),
                (p, None) => format!("{p}: "),
            };
            RunConfigError(vec![format!("{at}{}", inner.message())])
        })
    }

    /// The API keys: the file's, plus the admin key of [`ENV_KEY`] + [`ENV_TOKEN`]; with none at all and
    /// `generate`, an admin key is generated. `env` reads a variable (the process environment in production).
    pub fn keys(
        &self,
        env: impl Fn(&str) -> Option<String>,
        generate: bool,
    ) -> Result<(Keys, Vec<(ApiKey, KeySource)>), RunConfigError> {
        let mut keys: Vec<(ApiKey, KeySource)> = self
            .api
            .keys
            .iter()
            .cloned()
            .map(|k| (k, KeySource::File))
            .collect();
        match (env(ENV_KEY), env(ENV_TOKEN)) {
            (Some(id), Some(secret)) => keys.push((
                ApiKey {
                    id,
                    secret,
                    role: Role::Admin,
                    agent: None,
                },
                KeySource::Environment,
            )),
            (None, None) => {}
            _ => {
                return Err(RunConfigError(vec![format!(
                    "{ENV_KEY} and {ENV_TOKEN} must be set together"
                )]));
            }
        }
        if keys.is_empty() {
            if !generate {
                return Err(RunConfigError(vec![format!(
                    "api.keys: no key configured; add [[api.keys]] or set {ENV_KEY} and {ENV_TOKEN}"
                )]));
            }
            let secret = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            keys.push((
                ApiKey {
                    id: "admin".into(),
                    secret,
                    role: Role::Admin,
                    agent: None,
                },
                KeySource::Generated,
            ));
        }
        let set = Keys::new(keys.iter().map(|(k, _)| k.clone()).collect()).map_err(|e| {
            let k = &keys[e.index];
            let mut m = e.to_string();
            if k.1 == KeySource::Environment {
                m = format!("{ENV_KEY}/{ENV_TOKEN}: {}: {}", e.field, e.reason);
            }
            RunConfigError(vec![m])
        })?;
        Ok((set, keys))
    }

    /// How the store is reached over TLS (`rediss://`).
    pub fn store_tls(&self) -> crate::store::StoreTls {
        crate::store::StoreTls {
            ca_file: self.store_ca_file.clone(),
        }
    }

    /// Checks everything that can be checked without the network and loads the campaigns.
    pub fn check(&self) -> Result<Vec<LoadedCampaign>, RunConfigError> {
        let mut problems = Vec::new();
        match crate::store::store_kind(&self.store) {
            Err(crate::store::StoreError::InvalidUrl { url, reason }) => {
                problems.push(format!("store: {url:?}: {reason}"));
            }
            Err(e) => problems.push(format!("store: {e}")),
            Ok(kind) => {
                if kind == crate::store::StoreKind::Memory && self.store_wait_replicas > 0 {
                    problems.push(
                        "store_wait_replicas: only used with a Redis store (memory:// has no replicas)".into(),
                    );
                }
                if let Some(ca) = &self.store_ca_file {
                    if kind != crate::store::StoreKind::RedisTls {
                        problems
                            .push("store_ca_file: only used with a rediss:// (TLS) store".into());
                    } else if let Err(e) = crate::tls::read_certificates(ca) {
                        problems.push(format!("store_ca_file: {e}"));
                    }
                }
            }
        }
        if let Err(e) = self.api.tls() {
            problems.push(e);
        }
        if self.api.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "api.listen: {:?} is not an address like 127.0.0.1:8080",
                self.api.listen
            ));
        }
        if !self.api.member_limits().within_ceiling() {
            let c = MemberLimits::CEILING;
            problems.push(format!(
                "api.max_member_variables / api.max_member_bytes: must be 1 to {} variables and 1024 to {} bytes",
                c.max_variables, c.max_bytes
            ));
        }
        let a = &self.api;
        for (name, value) in [
            ("header_read_timeout_sec", a.header_read_timeout_sec),
            ("body_idle_timeout_sec", a.body_idle_timeout_sec),
            ("json_body_deadline_sec", a.json_body_deadline_sec),
            ("max_concurrent_requests", a.max_concurrent_requests as u64),
            ("max_json_depth", a.max_json_depth as u64),
        ] {
            if value == 0 {
                problems.push(format!("api.{name}: must be at least 1"));
            }
        }
        if self.engine.lease_sec == 0 {
            problems.push("engine.lease_sec: must be at least 1".into());
        }
        if self.engine.claim_batch == 0 {
            problems.push("engine.claim_batch: must be at least 1".into());
        }
        if self.engine.sync_interval_sec == 0 {
            problems.push("engine.sync_interval_sec: must be at least 1".into());
        }
        if self.engine.max_call_sec == 0 {
            problems.push("engine.max_call_sec: must be at least 1".into());
        }
        if self.engine.switch_stall_warn_sec == 0 {
            problems.push("engine.switch_stall_warn_sec: must be at least 1".into());
        }
        if let Some(n) = &self.node_id
            && let Err(e) = crate::engine::subscription::validate_node_id(n)
        {
            problems.push(format!("node_id: {e}"));
        }
        if self.engine.switch_lost_after_sec == 0 {
            problems.push("engine.switch_lost_after_sec: must be at least 1".into());
        }
        if self.switches.is_empty() && self.sim.is_none() {
            problems.push(
                "switches: none configured (add [[switches]], or [sim] for a simulated switch)"
                    .into(),
            );
        }
        for (i, s) in self.switches.iter().enumerate() {
            if s.name.is_empty() {
                problems.push(format!("switches[{i}].name: empty"));
            }
            if self.switches[..i].iter().any(|o| o.name == s.name) {
                problems.push(format!(
                    "switches[{i}].name: {:?} is used by another switch",
                    s.name
                ));
            }
            if !s.address.contains(':') {
                problems.push(format!(
                    "switches[{i}].address: {:?} is not host:port",
                    s.address
                ));
            }
            if s.max_sessions == Some(0)
                || s.sessions_per_second == Some(0)
                || s.sessions_per_call == 0
            {
                problems.push(format!(
                    "switches[{i}]: max_sessions, sessions_per_second and sessions_per_call must be at least 1"
                ));
            }
        }
        if let Some(sim) = &self.sim
            && !(sim.speed.is_finite() && sim.speed > 0.0)
        {
            problems.push("sim.speed: must be a positive number".into());
        }
        let mut loaded = Vec::new();
        for (i, c) in self.campaigns.iter().enumerate() {
            let at = format!("campaigns[{i}]");
            let config = match (&c.file, &c.config) {
                (Some(_), Some(_)) => {
                    problems.push(format!("{at}: give either file or config, not both"));
                    continue;
                }
                (None, None) => {
                    problems.push(format!(
                        "{at}: needs file = \"...\" or a [campaigns.config] table"
                    ));
                    continue;
                }
                (None, Some(cfg)) => cfg.clone(),
                (Some(f), None) => {
                    let text = match std::fs::read_to_string(f) {
                        Ok(t) => t,
                        Err(e) => {
                            problems.push(format!("{at}.file: {}: {e}", f.display()));
                            continue;
                        }
                    };
                    let parsed = if f.extension().is_some_and(|e| e == "json") {
                        CampaignConfig::from_json_str(&text)
                    } else {
                        CampaignConfig::from_toml_str(&text)
                    };
                    match parsed {
                        Ok(c) => c,
                        Err(e) => {
                            problems.push(format!("{at}.file: {}: {e}", f.display()));
                            continue;
                        }
                    }
                }
            };
            match config.validate() {
                Ok(v) => {
                    if loaded
                        .iter()
                        .any(|l: &LoadedCampaign| l.config.id.as_deref() == Some(v.id()))
                    {
                        problems.push(format!("{at}: campaign id {:?} appears twice", v.id()));
                    }
                    loaded.push(LoadedCampaign { config, run: c.run });
                }
                Err(e) => {
                    let where_ = match &c.file {
                        Some(f) => format!("{at}.file: {}", f.display()),
                        None => format!("{at}.config"),
                    };
                    for p in e.problems() {
                        problems.push(format!("{where_}: {p}"));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(loaded)
        } else {
            Err(RunConfigError(problems))
        }
    }
}

#[cfg(test)]
mod tests;
