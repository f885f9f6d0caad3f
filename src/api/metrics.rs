//! `/metrics` in Prometheus text format.
//!
//! The process installs one global `metrics` recorder (metrics-exporter-prometheus) the first time an API state is
//! built; everything recorded anywhere in the process with the `metrics` macros shows up:
//! - the engine: `fsdialer_originates_total{switch}`, `fsdialer_hangups_total{cause,class}`; answering-machine
//!   detection: answers by result `fsdialer_amd_results_total{campaign,result}` (`HUMAN`, `MACHINE`, `NOTSURE`,
//!   `NONE`), `fsdialer_amd_messages_left_total{campaign}` and the decision time `fsdialer_amd_decision_seconds`;
//! - the ESL client: `fsdialer_esl_connected{server}`, `fsdialer_esl_events_pending{server}` (reader lag: events
//!   read from the socket but not yet consumed), `fsdialer_esl_events_blocked_total`, `fsdialer_esl_reconnects_total`.
//!
//! At each scrape [`Metrics::refresh`] adds what is read rather than counted: per campaign the queue depth by
//! member state (`fsdialer_queue_members{campaign,state}`), calls in progress on this node
//! (`fsdialer_active_calls{campaign}`), the store's cumulative attempt counters
//! (`fsdialer_campaign_attempts_total{campaign,class}`), and one timed round trip to the store
//! (`fsdialer_store_ping_seconds`, `fsdialer_store_up`) — the Redis latency as the API sees it; and the agents:
//! how many are in each state and status (`fsdialer_agents{state}`, `fsdialer_agents_status{status}`), and per
//! agent (the first [`MAX_AGENT_SERIES`] in id order, so the label set stays bounded; beyond, only the totals)
//! `fsdialer_agent_calls_total`, `fsdialer_agent_missed_total`, `fsdialer_agent_talk_seconds`,
//! `fsdialer_agent_wrap_seconds`, `fsdialer_agent_idle_seconds` and `fsdialer_agent_occupancy`
//! (label `agent`); per campaign and caller ID (every node's calls, from the store; the first
//! [`MAX_CALLER_ID_SERIES`] by number) `fsdialer_caller_id_calls_total`, `fsdialer_caller_id_answered_total` and
//! `fsdialer_caller_id_answer_rate` (labels `campaign`, `caller_id`).

use super::ApiState;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Most caller IDs of one campaign given their own series in `/metrics`.
pub const MAX_CALLER_ID_SERIES: usize = 1000;

/// Most agents given their own series in `/metrics`.
pub const MAX_AGENT_SERIES: usize = 500;

/// How often the recorder's pending histogram samples are folded into their summaries. The recorder keeps every
/// sample recorded since the last fold; without a scrape (or a Prometheus that stopped scraping) an agent campaign
/// records one sample per call, so the fold must not wait for `/metrics`.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder (absent if another recorder was installed first).
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
}

impl Metrics {
    /// Installs the recorder once per process; later calls share it.
    pub fn install() -> Metrics {
        let handle = HANDLE
            .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
                Ok(h) => {
                    spawn_upkeep(h.clone());
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
                    None
                }
            })
            .clone();
        Metrics { handle }
    }

    /// Reads the gauges that are sampled rather than counted, then renders everything.
    pub async fn render(&self, state: &ApiState) -> String {
        refresh(state).await;
        match &self.handle {
            Some(h) => {
                h.run_upkeep();
                h.render()
            }
            None => String::new(),
        }
    }
}

/// Folds pending histogram samples every [`UPKEEP_EVERY`] for the life of the process. `install_recorder`, unlike
/// the exporter's own listener, starts no such task; a plain thread because the recorder is process-wide and
/// outlives any one runtime (tests build many).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started; histograms fold only at each scrape");
    }
}

async fn refresh(state: &ApiState) {
    match state.store.ping().await {
        Ok(d) => {
            metrics::gauge!("fsdialer_store_up", "backend" => state.store.backend()).set(1.0);
            metrics::gauge!("fsdialer_store_ping_seconds", "backend" => state.store.backend())
                .set(d.as_secs_f64());
        }
        Err(e) => {
            tracing::warn!(error = %e, "store ping failed");
            metrics::gauge!("fsdialer_store_up", "backend" => state.store.backend()).set(0.0);
        }
    }
    agent_figures(state).await;
    let Ok(docs) = state.store.campaign_docs().await else {
        return;
    };
    for (id, _) in docs {
        if let Ok(c) = state.store.counts(&id).await {
            for (st, n) in [
                ("waiting", c.waiting),
                ("active", c.active),
                ("ended", c.ended),
            ] {
                metrics::gauge!("fsdialer_queue_members", "campaign" => id.clone(), "state" => st)
                    .set(n as f64);
            }
            for (class, n) in [
                ("ok", c.ok),
                ("retry", c.retry),
                ("error", c.error),
                ("minus", c.minus),
            ] {
                metrics::counter!("fsdialer_campaign_attempts_total", "campaign" => id.clone(), "class" => class)
                    .absolute(n);
            }
            metrics::counter!("fsdialer_campaign_calls_total", "campaign" => id.clone())
                .absolute(c.calls);
            metrics::counter!("fsdialer_campaign_answered_total", "campaign" => id.clone())
                .absolute(c.answered);
        }
        caller_id_figures(state, &id).await;
        if let Ok(Some((_, active))) = state.engine().state(&id).await {
            metrics::gauge!("fsdialer_active_calls", "campaign" => id.clone())
                .set(f64::from(active));
        }
    }
}

/// The campaign's figures per caller ID, from the store (every node's calls).
async fn caller_id_figures(state: &ApiState, campaign: &str) {
    let figures = match state.store.caller_id_stats(campaign).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(campaign, error = %e, "caller ID figures not read for /metrics");
            return;
        }
    };
    for f in figures.into_iter().take(MAX_CALLER_ID_SERIES) {
        let labels = [
            ("campaign", campaign.to_owned()),
            ("caller_id", f.caller_id),
        ];
        metrics::counter!("fsdialer_caller_id_calls_total", &labels).absolute(f.calls);
        metrics::counter!("fsdialer_caller_id_answered_total", &labels).absolute(f.answered);
        metrics::gauge!("fsdialer_caller_id_answer_rate", &labels)
            .set(f.answer_rate.unwrap_or(0.0));
    }
}

async fn agent_figures(state: &ApiState) {
    let agents = match state.store.agents(state.now()).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "agents not read for /metrics");
            return;
        }
    };
    let mut by_state = std::collections::BTreeMap::<&str, u32>::new();
    let mut by_status = std::collections::BTreeMap::<&str, u32>::new();
    for name in [
        "idle", "reserved", "offering", "talking", "wrap_up", "missed",
    ] {
        by_state.insert(name, 0);
    }
    for name in ["logged_out", "ready", "paused", "on_demand"] {
        by_status.insert(name, 0);
    }
    for v in &agents {
        *by_state.entry(v.state.name()).or_default() += 1;
        *by_status.entry(v.status.name()).or_default() += 1;
    }
    for (s, n) in by_state {
        metrics::gauge!("fsdialer_agents", "state" => s).set(f64::from(n));
    }
    for (s, n) in by_status {
        metrics::gauge!("fsdialer_agents_status", "status" => s).set(f64::from(n));
    }
    metrics::gauge!("fsdialer_agents_without_series")
        .set(agents.len().saturating_sub(MAX_AGENT_SERIES) as f64);
    for v in agents.iter().take(MAX_AGENT_SERIES) {
        let id = v.agent.id.clone();
        let s = &v.stats;
        metrics::counter!("fsdialer_agent_calls_total", "agent" => id.clone()).absolute(s.calls);
        metrics::counter!("fsdialer_agent_missed_total", "agent" => id.clone()).absolute(s.missed);
        for (name, ms) in [
            ("fsdialer_agent_talk_seconds", s.talk_ms),
            ("fsdialer_agent_wrap_seconds", s.wrap_ms),
            ("fsdialer_agent_idle_seconds", s.idle_ms),
        ] {
            metrics::gauge!(name, "agent" => id.clone()).set(ms as f64 / 1000.0);
        }
        metrics::gauge!("fsdialer_agent_occupancy", "agent" => id)
            .set(s.occupancy().unwrap_or(0.0));
    }
}
