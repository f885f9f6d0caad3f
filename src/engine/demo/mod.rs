//! `fsdialer demo`: the embedded default, end to end, with nothing installed.
//!
//! A memory store (or Redis with `--store`), the simulated switch in-process at a speed factor (or an external
//! switch with `--esl`), the sample campaign of `fixtures/campaigns/demo.toml` and its ~1,000 members from
//! `fixtures/demo/members.json`. It runs the campaign to completion with a live progress line, then returns the
//! outcome table.
//!
//! **Against an external switch** (`--esl`): the engine's clock must run at the switch's speed. A real FreeSWITCH
//! runs in real time, so the demo does too unless `--speed` is given (only right when the switch is an
//! `fsdialer sim` at that speed): see [`choose_speed`]. The run gives up after [`scaled_timeout`] of the work
//! unless a timeout is given; `fixtures/demo/members-small.json` is a sample small enough for real time.

pub mod agents;
pub mod amd;

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
    /// `memory://` (default), or a Redis store URL (`redis://host:port`, `redis+sentinel://…`, `redis+cluster://…`).
    pub store: String,
    /// An external switch (`host:port`, password); `None` starts the simulator in-process.
    pub esl: Option<(String, String)>,
    pub campaign: PathBuf,
    pub members: PathBuf,
    /// Scenario of the in-process simulated switch.
    pub scenario: Option<PathBuf>,
    /// Simulated seconds per real second (the engine's clock runs at the same speed); see [`choose_speed`].
    pub speed: f64,
    /// Show a live progress line on stderr.
    pub progress: bool,
    /// Give up after this much real time; `None`: [`scaled_timeout`] of the campaign and its members.
    pub timeout: Option<Duration>,
    /// Join answered calls to [`agents::DEMO_AGENTS`] simulated agents in this mode (`None`: the campaign's own).
    pub mode: Option<crate::campaign::agents::DialMode>,
    /// Answering-machine detection on (see [`amd`]).
    pub amd: bool,
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
            timeout: None,
            mode: None,
            amd: false,
        }
    }
}

/// What `fsdialer demo` says when it runs against an external switch in real time.
pub const REAL_TIME_NOTE: &str = "external switch: running in real time (speed 1); pass --speed only if that switch is a `fsdialer sim` at the same speed";

/// The speed the demo runs at, and whether it was forced to real time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedChoice {
    pub speed: f64,
    /// An external switch and no `--speed`: real time (say so, [`REAL_TIME_NOTE`]).
    pub real_time: bool,
}

/// Speed of the in-process simulated switch when none is asked for.
pub const SIM_SPEED: f64 = 100.0;

/// Decides the demo's speed: `asked` (`--speed`) if given; else real time against an external switch (a real
/// FreeSWITCH cannot be sped up, and an engine clock ahead of the switch's would time calls out early), and
/// [`SIM_SPEED`] with the in-process simulator. A speed that is not a positive number is an error.
pub fn choose_speed(external: bool, asked: Option<f64>) -> Result<SpeedChoice, DemoError> {
    match asked {
        Some(speed) if speed.is_finite() && speed > 0.0 => Ok(SpeedChoice {
            speed,
            real_time: false,
        }),
        Some(speed) => Err(DemoError::Speed(speed)),
        None if external => Ok(SpeedChoice {
            speed: 1.0,
            real_time: true,
        }),
        None => Ok(SpeedChoice {
            speed: SIM_SPEED,
            real_time: false,
        }),
    }
}

/// How much calling a demo run has to do, for [`scaled_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoWork {
    pub members: usize,
    pub max_tries: u32,
    /// The campaign's concurrent calls (`limit`).
    pub limit: u32,
    pub originate_timeout_sec: u32,
    pub wait_between_retries_sec: u64,
}

/// The longest a demo callee keeps the line (the demo scenario talks 30-60 s, the real dialplan's 30-39 s).
pub const EXPECTED_TALK_SEC: u64 = 60;
/// Bounds of [`scaled_timeout`].
pub const MIN_TIMEOUT: Duration = Duration::from_secs(60);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Real time added to the scaled work: connecting, the last results reaching the store.
const TIMEOUT_SLACK: Duration = Duration::from_secs(30);

/// The demo's timeout when none is given: the worst case of the work, in real time, twice over.
///
/// Every member may take `max_tries` attempts and each attempt at most `originate_timeout + EXPECTED_TALK_SEC`;
/// `limit` run at once, so the attempts take `ceil(members × max_tries / limit)` such waves (at least `max_tries`:
/// one member's tries follow one another); between a member's tries it waits `wait_between_retries_sec`
/// (`max_tries − 1` times). That simulated time over `speed` is real
/// time; doubled (a loaded machine, pacing) plus [`TIMEOUT_SLACK`], within [`MIN_TIMEOUT`]..[`MAX_TIMEOUT`].
/// The shipped demo (1,000 members, 3 tries, limit 50, 20 s + 60 s, 30 s between): 60 waves × 80 s + 60 s =
/// 4,860 s simulated: 127 s at speed 100, 2 h 42 min in real time.
pub fn scaled_timeout(work: &DemoWork, speed: f64) -> Duration {
    let attempts = work.members as u64 * u64::from(work.max_tries.max(1));
    // A member's tries follow one another: never fewer waves than tries.
    let waves = attempts
        .div_ceil(u64::from(work.limit.max(1)))
        .max(u64::from(work.max_tries.max(1)));
    let per_attempt = u64::from(work.originate_timeout_sec) + EXPECTED_TALK_SEC;
    let waits = u64::from(work.max_tries.saturating_sub(1)) * work.wait_between_retries_sec;
    let simulated = waves
        .saturating_mul(per_attempt)
        .saturating_add(waits)
        .min(MAX_TIMEOUT.as_secs());
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    let real = Duration::from_secs_f64(simulated as f64 / speed * 2.0) + TIMEOUT_SLACK;
    real.clamp(MIN_TIMEOUT, MAX_TIMEOUT)
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
    /// Agent modes: per-agent figures and the abandoned count.
    pub agents: Option<agents::AgentReport>,
    /// With `--amd`: answers by AMD result and messages left.
    pub amd: Option<amd::AmdReport>,
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
        if let Some(a) = &self.agents {
            s.push_str(&a.table());
        }
        if let Some(a) = &self.amd {
            s.push_str(&a.table());
        }
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
    #[error("the campaign did not finish within {0:?} (give a longer one with --timeout SEC)")]
    Timeout(Duration),
    #[error("--speed must be a positive number of simulated seconds per real second, not {0}")]
    Speed(f64),
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
    let mut config = CampaignConfig::from_toml_str(&text)
        .map_err(|e| input_err(&opts.campaign, e.to_string()))?;
    let agent_mode = opts.mode.filter(|m| m.uses_agents());
    if let Some(mode) = agent_mode {
        config = agents::agent_campaign(config, mode);
    }
    if opts.amd {
        config = amd::amd_campaign(config);
    }
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

    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        return Err(DemoError::Speed(opts.speed));
    }
    let timeout = opts.timeout.unwrap_or_else(|| {
        let c = valid.config();
        let work = DemoWork {
            members: members.len(),
            max_tries: c.max_tries,
            limit: c.limit,
            originate_timeout_sec: c.originate_timeout_sec,
            wait_between_retries_sec: c.wait_between_retries_sec,
        };
        scaled_timeout(&work, opts.speed)
    });
    let store = Store::open(&opts.store).await?;
    store.drop_campaign(&id).await?;
    let clock = Clock::scaled(opts.speed);
    store.add(&id, &members, clock.now()).await?;
    if agent_mode.is_some() {
        agents::add_agents(&store, clock.now()).await?;
    }

    let mut sim_handle = None;
    let endpoint = match &opts.esl {
        Some((addr, password)) => SwitchEndpoint {
            name: addr.clone(),
            addr: addr.clone(),
            password: password.clone(),
            // Read from the switch at connect.
            max_sessions: None,
            sessions_per_second: None,
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
                max_sessions: Some(10_000),
                sessions_per_second: Some(1000),
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
    let desk = (agent_mode == Some(crate::campaign::agents::DialMode::Preview))
        .then(|| tokio::spawn(agents::auto_accept(store.clone(), clock)));

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
            _ if started.elapsed() > timeout => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                return Err(DemoError::Timeout(timeout));
            }
            _ => {}
        }
    };
    let elapsed = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish();
    }
    let counters = store.counts(&id).await?;
    if let Some(desk) = desk {
        desk.abort();
    }
    let agent_report = match agent_mode {
        Some(_) => Some(agents::AgentReport::read(&store, &id, members.len(), clock.now()).await?),
        None => None,
    };
    let amd_report = match opts.amd {
        true => Some(amd::AmdReport::read(&store, &id, members.len()).await?),
        false => None,
    };
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
        agents: agent_report,
        amd: amd_report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_external_switch_runs_in_real_time_unless_a_speed_is_asked_for() {
        let real = choose_speed(true, None).unwrap();
        assert_eq!(
            real,
            SpeedChoice {
                speed: 1.0,
                real_time: true
            }
        );
        assert_eq!(choose_speed(true, Some(20.0)).unwrap().speed, 20.0);
        assert!(!choose_speed(true, Some(20.0)).unwrap().real_time);
        assert_eq!(choose_speed(false, None).unwrap().speed, SIM_SPEED);
        assert_eq!(choose_speed(false, Some(5.0)).unwrap().speed, 5.0);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                choose_speed(true, Some(bad)),
                Err(DemoError::Speed(_))
            ));
        }
    }

    fn demo_work(members: usize) -> DemoWork {
        DemoWork {
            members,
            max_tries: 3,
            limit: 50,
            originate_timeout_sec: 20,
            wait_between_retries_sec: 30,
        }
    }

    #[test]
    fn the_timeout_scales_with_members_tries_and_speed_within_bounds() {
        // 1,000 members: 60 waves of 80 s and two 30 s waits = 4,860 s simulated, doubled, plus the slack.
        assert_eq!(
            scaled_timeout(&demo_work(1000), 100.0),
            Duration::from_secs_f64(97.2) + TIMEOUT_SLACK
        );
        assert_eq!(
            scaled_timeout(&demo_work(1000), 1.0),
            Duration::from_secs(9720) + TIMEOUT_SLACK
        );
        // Fifteen members in real time: one wave per try, 3 × 80 s + 60 s = 300 s simulated.
        assert_eq!(
            scaled_timeout(&demo_work(15), 1.0),
            Duration::from_secs(600) + TIMEOUT_SLACK
        );
        // More members, more time; a higher limit, less.
        assert!(scaled_timeout(&demo_work(2000), 1.0) > scaled_timeout(&demo_work(1000), 1.0));
        let wide = DemoWork {
            limit: 500,
            ..demo_work(1000)
        };
        assert!(scaled_timeout(&wide, 1.0) < scaled_timeout(&demo_work(1000), 1.0));
        // Bounded both ways; a zero limit or speed does not divide by zero.
        assert_eq!(scaled_timeout(&demo_work(1), 1000.0), MIN_TIMEOUT);
        assert_eq!(scaled_timeout(&demo_work(10_000_000), 1.0), MAX_TIMEOUT);
        let zero = DemoWork {
            limit: 0,
            max_tries: 0,
            ..demo_work(10)
        };
        assert!(scaled_timeout(&zero, 0.0) >= MIN_TIMEOUT);
    }
}
