//! `/metrics` in Prometheus text format.
//!
//! The process installs one global `metrics` recorder (metrics-exporter-prometheus) the first time an API state is
//! built; everything recorded anywhere in the process with the `metrics` macros shows up:
//! - the engine: `fsdialer_originates_total{switch}`, `fsdialer_hangups_total{cause,class}`;
//! - the ESL client: `fsdialer_esl_connected{server}`, `fsdialer_esl_events_pending{server}` (reader lag: events
//!   read from the socket but not yet consumed), `fsdialer_esl_events_blocked_total`, `fsdialer_esl_reconnects_total`.
//!
//! At each scrape [`Metrics::refresh`] adds what is read rather than counted: per campaign the queue depth by
//! member state (`fsdialer_queue_members{campaign,state}`), calls in progress on this node
//! (`fsdialer_active_calls{campaign}`), the store's cumulative attempt counters
//! (`fsdialer_campaign_attempts_total{campaign,class}`), and one timed round trip to the store
//! (`fsdialer_store_ping_seconds`, `fsdialer_store_up`) — the Redis latency as the API sees it.

use super::ApiState;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

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
                Ok(h) => Some(h),
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
        if let Ok(Some((_, active))) = state.engine().state(&id).await {
            metrics::gauge!("fsdialer_active_calls", "campaign" => id.clone())
                .set(f64::from(active));
        }
    }
}
