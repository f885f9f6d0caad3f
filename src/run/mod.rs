//! `fsdialer run`: the production process — store, engine, switches, campaigns and the REST API — from a
//! configuration file ([`config`]), or the embedded default without one (memory store, in-process simulated
//! switch, API on 127.0.0.1:8080, an admin key from the environment or generated).
//!
//! [`start`] brings everything up and returns a [`Running`] handle (tests use it with `listen = 127.0.0.1:0`);
//! [`Running::wait`] serves until Ctrl-C. Start-up order: check the configuration (every problem reported at
//! once), open the store, start the simulated switch if asked, start the engine, write the file's campaigns to
//! the store, apply every stored campaign to the engine, start the periodic campaign sync, then listen.

pub mod config;
pub mod secrets;

use crate::api::auth::ApiKey;
use crate::api::campaigns::CampaignDoc;
use crate::api::{ApiConfig, ApiState};
use crate::engine::clock::Clock;
use crate::engine::core::CoreConfig;
use crate::engine::shell::{self, EngineConfig, EngineHandle, SwitchEndpoint};
use crate::sim;
use crate::store::Store;
use config::{KeySource, RunConfig, RunConfigError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How often a node looks for campaign changes made on other nodes.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// Why `fsdialer run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("configuration:\n{0}")]
    Config(#[from] RunConfigError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("simulated switch: {0}")]
    Sim(#[from] sim::server::ServerError),
    #[error("campaign {id}: {info}")]
    Campaign { id: String, info: String },
    #[error("api: cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("the engine stopped")]
    Engine,
}

/// A running process.
pub struct Running {
    pub addr: SocketAddr,
    /// The API serves HTTPS (`[api] tls_cert_file` / `tls_key_file`).
    pub https: bool,
    pub state: Arc<ApiState>,
    pub engine: EngineHandle,
    /// The keys and where each came from (for the banner).
    pub keys: Vec<(ApiKey, KeySource)>,
    /// Address of the in-process simulated switch, if one runs.
    pub sim_addr: Option<SocketAddr>,
    sim: Option<sim::server::SimHandle>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    sync: tokio::task::JoinHandle<()>,
    /// The webhook delivery task (`crate::webhooks::deliver`), supervised.
    webhooks: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    engine_join: tokio::task::JoinHandle<Result<(), shell::EngineFailure>>,
    drain_timeout: Duration,
}

/// How `fsdialer run` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Drained after a signal: every call in progress ended and its result is stored.
    Drained,
    /// The drain timed out (or a second signal came): these calls are left up for the next start to adopt.
    LeftCalls(usize),
    /// The engine failed (a task ended or panicked): the process must exit non-zero so it is restarted.
    EngineFailed(String),
    /// The API server stopped on its own.
    ServerFailed(String),
}

/// The node takes back the attempts it still holds in the store (its previous run's calls): at once, so a
/// restarted node neither waits out its own leases nor counts live calls as lost.
async fn adopt(
    store: &Store,
    engine: &EngineHandle,
    node: &str,
    lease: Duration,
) -> Result<(), RunError> {
    for id in store.campaigns().await? {
        let claims = store
            .held_claims(&id, node, lease, chrono::Utc::now())
            .await?;
        if claims.is_empty() {
            continue;
        }
        tracing::info!(
            campaign = id,
            calls = claims.len(),
            node,
            "taking back the calls of the previous run"
        );
        engine
            .adopt(&id, claims)
            .await
            .map_err(|_| RunError::Engine)?;
    }
    Ok(())
}

/// This node's id: the configured one, else the host name — stable across restarts (a container's pid is 1 in
/// every container, and a new pid per start would leave every call of the previous run to its lease), so a
/// restarted node finds its own leases and takes its calls back.
pub fn node_id(cfg: &RunConfig) -> String {
    if let Some(id) = &cfg.node_id {
        return id.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| crate::engine::subscription::validate_node_id(h).is_ok());
    match host {
        Some(h) => h,
        None => "fsdialer".into(),
    }
}

/// Starts everything described by `cfg`. `env` reads environment variables (for the admin key); `generate_key`
/// allows a generated admin key when none is configured (the embedded default).
pub async fn start(
    cfg: RunConfig,
    env: impl Fn(&str) -> Option<String>,
    generate_key: bool,
) -> Result<Running, RunError> {
    let campaigns = cfg.check()?;
    let (keys, key_list) = cfg.keys(&env, generate_key)?;
    crate::logging::set_log_numbers(cfg.log_numbers);
    let api_tls = cfg.api.tls().map_err(|e| RunConfigError(vec![e]))?;
    let store = Store::open_with(
        &cfg.store,
        &cfg.store_tls(),
        crate::store::AttemptIds::Random,
    )
    .await?
    .with_wait_replicas(cfg.store_wait_replicas)?;

    let mut switches: Vec<SwitchEndpoint> = cfg
        .switches
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(SwitchEndpoint {
                name: s.name.clone(),
                addr: s.address.clone(),
                password: secrets::switch_password(i, s, &env)?,
                max_sessions: s.max_sessions,
                sessions_per_second: s.sessions_per_second,
                sessions_per_call: s.sessions_per_call,
            })
        })
        .collect::<Result<_, String>>()
        .map_err(|e| RunConfigError(vec![e]))?;
    let mut sim_handle = None;
    if let Some(s) = &cfg.sim {
        let handle = sim::server::start(sim::server::ServerConfig {
            speed: s.speed,
            scenario: s.scenario.clone(),
            switch: sim::model::Config {
                max_sessions: s.max_sessions,
                sessions_per_second: s.sessions_per_second,
                ..Default::default()
            },
            ..Default::default()
        })
        .await?;
        switches.push(SwitchEndpoint {
            name: "sim".into(),
            addr: handle.local_addr().to_string(),
            password: "ClueCon".into(),
            max_sessions: Some(s.max_sessions),
            sessions_per_second: Some(s.sessions_per_second),
            // Dial strings of the embedded default are loopback/ ones: two sessions per call.
            sessions_per_call: 2,
        });
        sim_handle = Some(handle);
    }
    let sim_addr = sim_handle.as_ref().map(|h| h.local_addr());
    let clock = match &cfg.sim {
        Some(s) if cfg.switches.is_empty() => Clock::scaled(s.speed),
        _ => Clock::real(),
    };
    let node = node_id(&cfg);
    let lease = Duration::from_secs(cfg.engine.lease_sec);
    let core = CoreConfig {
        node: node.clone(),
        lease,
        claim_batch: cfg.engine.claim_batch,
        max_call: Duration::from_secs(cfg.engine.max_call_sec),
        switch_lost_after: Duration::from_secs(cfg.engine.switch_lost_after_sec),
        ..CoreConfig::default()
    };
    let (engine, engine_join) = shell::start(
        EngineConfig {
            core,
            switches,
            clock,
            switch_stall_warn: Duration::from_secs(cfg.engine.switch_stall_warn_sec),
        },
        store.clone(),
        crate::engine::callflow_in_folders(crate::engine::callflow::MediaFolders {
            sounds: cfg.engine.sounds_dir.clone(),
            recordings: cfg.engine.recordings_dir.clone(),
        }),
    );

    let api_config = ApiConfig {
        keys,
        max_body_bytes: cfg.api.max_body_bytes,
        max_import_bytes: cfg.api.max_import_bytes,
        min_free_disk_bytes: cfg.api.min_free_disk_bytes,
        metrics_public: cfg.api.metrics_public,
        member_limits: cfg.api.member_limits(),
        http: cfg.api.http_limits(),
        https: api_tls.is_some(),
    };
    let state = ApiState::new(store.clone(), engine.clone(), api_config);
    for c in campaigns {
        let id = c.config.id.clone().unwrap_or_default();
        let stored = match store.campaign_doc(&id).await? {
            Some(text) => serde_json::from_str::<CampaignDoc>(&text)
                .map(|d| (d.run, d.version))
                .unwrap_or((false, 0)),
            None => (false, 0),
        };
        let doc = CampaignDoc {
            config: c.config,
            run: c.run.unwrap_or(stored.0),
            updated_at: chrono::Utc::now(),
            version: stored.1 + 1,
        };
        state
            .registry
            .put(doc)
            .await
            .map_err(|e| RunError::Campaign { id, info: e.info })?;
    }
    state.registry.sync().await.map_err(|_| RunError::Engine)?;
    adopt(&store, &engine, &node, lease).await?;

    // Changes made on other nodes are followed within FOLLOW_INTERVAL (one integer read from the store each
    // time), with a full re-read every sync_interval_sec anyway.
    let full_every = Duration::from_secs(cfg.engine.sync_interval_sec);
    let sync_state = state.clone();
    let sync = tokio::spawn(async move {
        sync_state
            .registry
            .follow(FOLLOW_INTERVAL, full_every)
            .await;
    });

    let listener = tokio::net::TcpListener::bind(&cfg.api.listen)
        .await
        .map_err(|source| RunError::Listen {
            addr: cfg.api.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| RunError::Listen {
        addr: cfg.api.listen.clone(),
        source,
    })?;
    let webhooks = tokio::spawn(crate::webhooks::deliver::supervise(
        store.clone(),
        crate::webhooks::deliver::DeliveryConfig::default(),
        engine.webhooks_queued(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let https = api_tls.is_some();
    let server = tokio::spawn(crate::api::serve(
        listener,
        state.clone(),
        api_tls,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Running {
        addr,
        https,
        state,
        engine,
        keys: key_list,
        sim_addr,
        sim: sim_handle,
        server,
        sync,
        webhooks,
        stop,
        engine_join,
        drain_timeout: Duration::from_secs(cfg.engine.drain_timeout_sec),
    })
}

impl Running {
    /// The start-up banner: where the API listens and the keys that were not written in the file.
    pub fn banner(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "fsdialer: API on {}://{} ({} store{})",
            if self.https { "https" } else { "http" },
            self.addr,
            self.state.store.backend(),
            self.sim_addr
                .map(|a| format!(", simulated switch on {a}"))
                .unwrap_or_default()
        );
        for (k, src) in &self.keys {
            match src {
                KeySource::Generated => {
                    let _ = writeln!(
                        s,
                        "  generated {} key: X-Key: {}  X-Access-Token: {}",
                        k.role.as_str(),
                        k.id,
                        k.secret
                    );
                }
                KeySource::Environment => {
                    let _ = writeln!(
                        s,
                        "  {} key {:?} from the environment",
                        k.role.as_str(),
                        k.id
                    );
                }
                KeySource::File => {}
            }
        }
        s
    }

    /// Stops serving, the sync, the engine and the simulated switch.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.sync.abort();
        self.webhooks.abort();
        self.engine.shutdown().await;
        if let Some(s) = self.sim {
            s.shutdown().await;
        }
    }

    /// Serves until SIGTERM or SIGINT, then drains: no new claims, calls in progress finish and their results
    /// are stored, up to `drain_timeout_sec`; what is left stays up for the next start to adopt (never killed).
    /// A second signal ends the drain at once. Ends early if the engine or the API server fails.
    pub async fn wait(mut self) -> Exit {
        let mut signals = Signals::new();
        let early = tokio::select! {
            _ = signals.next() => None,
            r = &mut self.server => Some(Exit::ServerFailed(match r {
                Ok(Ok(())) => "the API server stopped".into(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            })),
            r = &mut self.engine_join => Some(Exit::EngineFailed(match r {
                Ok(Ok(())) => "the engine stopped".into(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            })),
        };
        if let Some(exit) = early {
            tracing::error!(?exit, "fsdialer is going down");
            let _ = self.stop.send(());
            self.sync.abort();
            self.webhooks.abort();
            if let Some(s) = self.sim {
                s.shutdown().await;
            }
            return exit;
        }
        let calls = self.engine.calls_in_flight();
        tracing::info!(
            calls,
            timeout_sec = self.drain_timeout.as_secs(),
            "draining: no new calls; waiting for the calls in progress"
        );
        self.state.set_draining();
        let exit = tokio::select! {
            r = self.engine.drain() => match r {
                Ok(()) => Exit::Drained,
                Err(_) => Exit::EngineFailed("the engine stopped while draining".into()),
            },
            _ = tokio::time::sleep(self.drain_timeout) => Exit::LeftCalls(self.engine.calls_in_flight()),
            _ = signals.next() => Exit::LeftCalls(self.engine.calls_in_flight()),
        };
        match &exit {
            Exit::Drained => tracing::info!("drained: every call ended and its result is stored"),
            Exit::LeftCalls(n) => tracing::warn!(
                calls = n,
                "leaving calls in progress up for the next start to adopt"
            ),
            _ => {}
        }
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.sync.abort();
        self.webhooks.abort();
        self.engine.shutdown().await;
        if let Some(s) = self.sim {
            s.shutdown().await;
        }
        exit
    }
}

/// SIGTERM and SIGINT, as one stream.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            let term = async {
                match self.term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
