//! `fsdialer demo --mode progressive|preview`: the sample campaign joined to simulated agents.
//!
//! The campaign of the broadcast demo is turned into an agent campaign (its callflow dropped, the `demo` team,
//! a short wrap-up, the abandon message); [`DEMO_AGENTS`] agents are created in the store, ready, each with the
//! dial string `loopback/agent_NN/default`, which the demo's simulated switch answers as an agent phone
//! (`fixtures/sim/demo-agents.toml`). In preview mode a simulated agent desk accepts every member it is shown
//! ([`auto_accept`]), as an agent clicking "call" would. The report adds a line per agent (calls, talk, wrap-up,
//! occupancy) and the campaign's abandoned calls.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::agents::{Agent, AgentMessage, AgentStatus, AgentView, TeamMembership};
use crate::campaign::agents::{AgentSettings, DialMode};
use crate::campaign::config::CampaignConfig;
use crate::engine::core::ABANDONED_CAUSE;
use crate::store::{MemberId, Store, StoreResult};

/// The in-process simulator's speed for agent demos (see `fsdialer demo --mode`).
pub const AGENT_SIM_SPEED: f64 = 30.0;
/// Agents the demo logs in.
pub const DEMO_AGENTS: usize = 10;
/// The demo's team.
pub const DEMO_TEAM: &str = "demo";
/// How often the simulated agent desk looks for previews to accept (real time).
const DESK_POLL: Duration = Duration::from_millis(100);

/// The broadcast demo's campaign as an agent campaign of `mode`.
pub fn agent_campaign(mut config: CampaignConfig, mode: DialMode) -> CampaignConfig {
    config.mode = mode;
    config.callflow = None;
    let mut settings: AgentSettings =
        serde_json::from_value(serde_json::json!({ "team": DEMO_TEAM }))
            .expect("a team is all the section needs");
    settings.wrap_up_sec = 5;
    settings.agent_answer_timeout_sec = 10;
    settings.preview_timeout_sec = 30;
    settings.result_timeout_sec = 0;
    settings.abandon_message = Some("ivr/ivr-we_are_sorry.wav".into());
    config.agents = Some(settings);
    config
}

/// The demo's agents, ready.
pub async fn add_agents(store: &Store, now: DateTime<Utc>) -> StoreResult<Vec<String>> {
    let mut ids = Vec::with_capacity(DEMO_AGENTS);
    for i in 1..=DEMO_AGENTS {
        let id = format!("agent{i:02}");
        let agent = Agent {
            id: id.clone(),
            name: format!("Demo agent {i}"),
            dial_string: format!("loopback/agent_{i:02}/default"),
            teams: vec![TeamMembership {
                team: DEMO_TEAM.into(),
                level: 1,
            }],
            lines: 1,
            version: 0,
        };
        store.put_agent(&agent, None, now).await?;
        store.set_agent_status(&id, AgentStatus::Ready, now).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// A simulated agent desk: accepts every preview offered to the demo's agents, until the task is aborted. An
/// accept the engine does not expect yet (the agent's phone still ringing) is ignored by it, so the desk keeps
/// accepting while the offer stands.
pub async fn auto_accept(store: Store, clock: crate::engine::clock::Clock) {
    loop {
        tokio::time::sleep(DESK_POLL).await;
        let Ok(agents) = store.agents(clock.now()).await else {
            continue;
        };
        for view in agents {
            if let Some(offer) = view.offered() {
                let msg = AgentMessage::Accept {
                    reservation: offer.id,
                };
                if let Err(e) = store.post_agent_message(&offer.node, &msg).await {
                    tracing::warn!(agent = view.agent.id, error = %e, "demo desk: accept not posted");
                }
            }
        }
    }
}

/// Per-agent lines and the abandoned count, for the report.
#[derive(Debug, Clone)]
pub struct AgentReport {
    pub agents: Vec<AgentView>,
    pub abandoned: u64,
}

impl AgentReport {
    /// Reads the agents and counts the campaign's abandoned attempts.
    pub async fn read(
        store: &Store,
        campaign: &str,
        members: usize,
        now: DateTime<Utc>,
    ) -> StoreResult<AgentReport> {
        let mut agents = store.agents(now).await?;
        agents.retain(|a| a.agent.teams.iter().any(|t| t.team == DEMO_TEAM));
        let mut abandoned = 0;
        for id in 1..=members as u64 {
            abandoned += store
                .attempts(campaign, MemberId(id))
                .await?
                .iter()
                .filter(|a| a.cause == ABANDONED_CAUSE)
                .count() as u64;
        }
        Ok(AgentReport { agents, abandoned })
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "agent       calls   talk (s)   wrap-up (s)   missed   occupancy"
        );
        for a in &self.agents {
            let st = &a.stats;
            let occupancy = st
                .occupancy()
                .map_or_else(|| "-".to_string(), |o| format!("{:.0} %", o * 100.0));
            let _ = writeln!(
                s,
                "{:<10} {:>6} {:>10.0} {:>13.0} {:>8} {:>11}",
                a.agent.id,
                st.calls,
                st.talk_ms as f64 / 1000.0,
                st.wrap_ms as f64 / 1000.0,
                st.missed,
                occupancy
            );
        }
        let _ = writeln!(s, "abandoned attempts {:>8}", self.abandoned);
        s
    }
}
