//! `fsdialer demo`: the embedded default, end to end, with nothing installed.
//!
//! A memory store (or Redis with `--store`), the simulated switch in-process at a speed factor (or an external
//! switch with `--esl`), the sample campaign of `fixtures/campaigns/demo.toml` and its ~1,000 members from
//! `fixtures/demo/members.json`. It runs the campaign to completion with a live progress line, then returns the
//! outcome table.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clock::Clock;
use super::core::CoreConfig;
use super::shell::{self, CallflowStarter, EngineConfig, SwitchEndpoint};
use super::state::CampaignState;
use crate::campaign::config::CampaignConfig;
use crate::campaign::member::MemberInput;
use crate::sim;
use crate::store::{Counters, Store};

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// `memory://` (default) or `redis://host:port`.
    pub store: String,
    /// An external switch (`host:port`, password); `None` starts the simulator in-process.
    pub esl: Option<(String, String)>,
    pub campaign: PathBuf,
    pub members: PathBuf,
    /// Scenario of the in-process simulated switch.
    pub scenario: Option<PathBuf>,
    /// Simulated seconds per real second (the engine's clock runs at the same speed).
    pub speed: f64,
    /// Show a live progress line on stderr.
    pub progress: bool,
    /// Give up after this much real time.
    pub timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        DemoOptions {
            store: "memory://".into(),
            esl: None,
            campaign: root.join("fixtures/campaigns/demo.toml"),
            members: root.join("fixtures/demo/members.json"),
            scenario: Some(root.join("fixtures/sim/demo.toml")),
            speed: 100.0,
            progress: true,
            timeout: Duration::from_secs(300),
        }
    }
}

/// The outcome of a demo run.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub members: usize,
    pub counters: Counters,
    pub elapsed: Duration,
    pub final_state: Option<CampaignState>,
    /// The campaign's id and the store it ran on (to read member and attempt records afterwards).
    pub campaign: String,
    pub store: Store,
}

impl DemoReport {
    /// Completed attempts per real second.
    pub fn attempts_per_sec(&self) -> f64 {
        self.counters.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The outcome table as text.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let c = &self.counters;
        let mut s = String::new();
        let _ = writeln!(s, "members            {:>8}", self.members);
        let _ = writeln!(s, "attempts           {:>8}", c.calls);
        let _ = writeln!(s, "  answered         {:>8}", c.answered);
        let _ = writeln!(s, "  ok / retry       {:>8} / {}", c.ok, c.retry);
        let _ = writeln!(s, "  error / minus    {:>8} / {}", c.error, c.minus);
        let _ = writeln!(s, "  lost             {:>8}", c.lost);
        let _ = writeln!(s, "members ended      {:>8}", c.ended);
        let _ = writeln!(s, "  success          {:>8}", c.success);
        for (cause, n) in &c.ended_by_cause {
            let _ = writeln!(s, "  {cause:<24} {n:>6}");
        }
        let _ = writeln!(s, "still waiting      {:>8}", c.waiting + c.active);
        let _ = writeln!(
            s,
            "elapsed            {:>8.1} s   ({:.0} attempts/s)",
            self.elapsed.as_secs_f64(),
            self.attempts_per_sec(),
        );
        s
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("simulated switch: {0}")]
    Sim(#[from] sim::server::ServerError),
    #[error("the engine stopped")]
    Engine,
    #[error("the campaign did not finish within {0:?}")]
    Timeout(Duration),
}

/// Runs the demo; `callflow` runs the campaign's callflow on answered calls.
pub async fn run(
    opts: DemoOptions,
    callflow: Option<CallflowStarter>,
) -> Result<DemoReport, DemoError> {
    let input_err = |path: &PathBuf, message: String| DemoError::Input {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(&opts.campaign)
        .map_err(|e| input_err(&opts.campaign, e.to_string()))?;
    let config = CampaignConfig::from_toml_str(&text)
        .map_err(|e| input_err(&opts.campaign, e.to_string()))?;
    let valid = Arc::new(
        config
            .validate()
            .map_err(|e| input_err(&opts.campaign, e.to_string()))?,
    );
    let id = valid.id().to_owned();
    let members_text = std::fs::read_to_string(&opts.members)
        .map_err(|e| input_err(&opts.members, e.to_string()))?;
    let members: Vec<MemberInput> =
        serde_json::from_str(&members_text).map_err(|e| input_err(&opts.members, e.to_string()))?;

    let store = Store::open(&opts.store).await?;
    store.drop_campaign(&id).await?;
    let clock = Clock::scaled(opts.speed);
    store.add(&id, &members, clock.now()).await?;

    let mut sim_handle = None;
    let endpoint = match &opts.esl {
        Some((addr, password)) => SwitchEndpoint {
            name: addr.clone(),
            addr: addr.clone(),
            password: password.clone(),
            max_sessions: 1000,
            sessions_per_second: 30,
            sessions_per_call: 2,
        },
        None => {
            let cfg = sim::server::ServerConfig {
                speed: opts.speed,
                scenario: opts.scenario.clone(),
                switch: sim::model::Config {
                    max_sessions: 10_000,
                    sessions_per_second: 1000,
                    ..Default::default()
                },
                ..Default::default()
            };
            let handle = sim::server::start(cfg).await?;
            let addr = handle.local_addr().to_string();
            sim_handle = Some(handle);
            SwitchEndpoint {
                name: "sim".into(),
                addr,
                password: "ClueCon".into(),
                max_sessions: 10_000,
                sessions_per_second: 1000,
                sessions_per_call: 2,
            }
        }
    };
    let core = CoreConfig {
        node: format!("demo-{}", uuid::Uuid::new_v4().simple()),
        ..CoreConfig::default()
    };
    let (engine, _join) = shell::start(
        EngineConfig {
            core,
            switches: vec![endpoint],
            clock,
            switch_stall_warn: crate::engine::shell::DEFAULT_SWITCH_STALL_WARN,
        },
        store.clone(),
        callflow,
    );
    engine
        .upsert(valid.clone())
        .await
        .map_err(|_| DemoError::Engine)?;
    engine.run(&id).await.map_err(|_| DemoError::Engine)?;

    let started = Instant::now();
    let bar = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new(members.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} members ended  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line = Instant::now();
    let final_state = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let counters = store.counts(&id).await?;
        let state = engine.state(&id).await.map_err(|_| DemoError::Engine)?;
        if opts.progress && !tty && last_line.elapsed() >= Duration::from_secs(2) {
            // Not a terminal (CI, a pipe): a plain progress line every two seconds.
            last_line = Instant::now();
            eprintln!(
                "[{:>5.1}s] {}/{} members ended, {} in calls, {} attempts, {} success",
                started.elapsed().as_secs_f64(),
                counters.ended,
                members.len(),
                counters.active,
                counters.calls,
                counters.success
            );
        }
        if let Some(bar) = &bar {
            bar.set_position(counters.ended);
            bar.set_message(format!(
                "{} in calls, {} attempts, {} success",
                counters.active, counters.calls, counters.success
            ));
        }
        match state {
            Some((
                s @ (CampaignState::Done | CampaignState::Expired | CampaignState::Stopped),
                0,
            )) => {
                break Some(s);
            }
            _ if started.elapsed() > opts.timeout => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                return Err(DemoError::Timeout(opts.timeout));
            }
            _ => {}
        }
    };
    let elapsed = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish();
    }
    let counters = store.counts(&id).await?;
    engine.shutdown().await;
    if let Some(h) = sim_handle {
        h.shutdown().await;
    }
    Ok(DemoReport {
        members: members.len(),
        counters,
        elapsed,
        final_state,
        campaign: id,
        store,
    })
}
