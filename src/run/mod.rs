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
    pub state: Arc<ApiState>,
    pub engine: EngineHandle,
    /// The keys and where each came from (for the banner).
    pub keys: Vec<(ApiKey, KeySource)>,
    /// Address of the in-process simulated switch, if one runs.
    pub sim_addr: Option<SocketAddr>,
    sim: Option<sim::server::SimHandle>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    sync: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

fn node_id(cfg: &RunConfig) -> String {
    cfg.node_id
        .clone()
        .unwrap_or_else(|| format!("fsdialer-{}", std::process::id()))
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
    let store = Store::open(&cfg.store).await?;

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
            max_sessions: s.max_sessions,
            sessions_per_second: s.sessions_per_second,
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
    let core = CoreConfig {
        node: node_id(&cfg),
        lease: Duration::from_secs(cfg.engine.lease_sec),
        claim_batch: cfg.engine.claim_batch,
        ..CoreConfig::default()
    };
    let (engine, _join) = shell::start(
        EngineConfig {
            core,
            switches,
            clock,
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
    };
    let state = ApiState::new(store.clone(), engine.clone(), api_config);
    for c in campaigns {
        let id = c.config.id.clone().unwrap_or_default();
        let stored_run = match store.campaign_doc(&id).await? {
            Some(text) => serde_json::from_str::<CampaignDoc>(&text)
                .map(|d| d.run)
                .unwrap_or(false),
            None => false,
        };
        let doc = CampaignDoc {
            config: c.config,
            run: c.run.unwrap_or(stored_run),
            updated_at: chrono::Utc::now(),
        };
        state
            .registry
            .put(doc)
            .await
            .map_err(|e| RunError::Campaign { id, info: e.info })?;
    }
    state.registry.sync().await.map_err(|_| RunError::Engine)?;

    let interval = Duration::from_secs(cfg.engine.sync_interval_sec);
    let sync_state = state.clone();
    let sync = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sync_state.registry.sync().await {
                tracing::warn!(error = %e, "campaign sync failed; retrying");
            }
        }
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
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::api::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        addr,
        state,
        engine,
        keys: key_list,
        sim_addr,
        sim: sim_handle,
        server,
        sync,
        stop,
    })
}

impl Running {
    /// The start-up banner: where the API listens and the keys that were not written in the file.
    pub fn banner(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "fsdialer: API on http://{} ({} store{})",
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
        self.engine.shutdown().await;
        if let Some(s) = self.sim {
            s.shutdown().await;
        }
    }

    /// Serves until Ctrl-C (or until the server fails), then shuts down.
    pub async fn wait(mut self) -> std::io::Result<()> {
        let result = tokio::select! {
            _ = tokio::signal::ctrl_c() => Ok(()),
            r = &mut self.server => match r {
                Ok(r) => r,
                Err(e) => Err(std::io::Error::other(e.to_string())),
            },
        };
        let _ = self.stop.send(());
        self.sync.abort();
        self.engine.shutdown().await;
        if let Some(s) = self.sim {
            s.shutdown().await;
        }
        result
    }
}
