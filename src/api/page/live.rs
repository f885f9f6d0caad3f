//! The operator page's live stream: `GET /api/v2/live`, server-sent events, one `snapshot` event whenever the
//! figures change (looked at every [`TICK`]; at least every [`KEEP_ALIVE`] anyway), so a page is never more than
//! a tick behind the store. The key comes from the page's HttpOnly cookie (or the usual headers), never from the
//! URL. At most [`MAX_STREAMS`] streams at once per process; each ends when its page goes away. The figures are
//! read once per tick for all open pages ([`Hub`]).
//!
//! A snapshot holds, per campaign: state, active calls against `limit`, calls per second against its `cps` cap
//! (attempts completed over the last [`WINDOW`]), answer rate, the class counts, the hangup-cause histogram
//! (`store::causes`), members waiting (of which in retry: called before, due again) / in a call / ended, an ETA
//! (members left over the rate members ended in the window), each gateway's calls in progress against its limit
//! with its circuit breaker as this node sees it (`api::views::gateways`), the webhook outbox; and agents by state
//! with the abandonment rate (`ABANDONED` attempts over answered calls of the agent campaigns) once agents exist.

use super::super::ApiState;
use crate::api::campaigns::CampaignDoc;
use crate::engine::state::CampaignState;
use crate::store::StoreError;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the figures are read.
pub const TICK: Duration = Duration::from_millis(400);
/// A snapshot is sent at least this often, changed or not.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Live streams open at once per process.
pub const MAX_STREAMS: usize = 64;
/// The window of the rates (calls per second, ETA).
pub const WINDOW: Duration = Duration::from_secs(5);

static OPEN: AtomicUsize = AtomicUsize::new(0);

/// One open stream (counted while it lives).
struct Slot;
impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counters seen at an instant, for the rates.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    calls: u64,
    ended: u64,
}

/// What one stream remembers between ticks.
#[derive(Default)]
pub struct Sampler {
    samples: HashMap<String, VecDeque<Sample>>,
}

impl Sampler {
    /// Calls per second and members ended per second over the window, with this sample added.
    fn rates(&mut self, campaign: &str, now: Sample) -> (f64, f64) {
        let q = self.samples.entry(campaign.to_owned()).or_default();
        q.push_back(now);
        while q.len() > 2
            && q.front()
                .is_some_and(|s| now.at.duration_since(s.at) > WINDOW)
        {
            q.pop_front();
        }
        let Some(first) = q.front().copied() else {
            return (0.0, 0.0);
        };
        let secs = now.at.duration_since(first.at).as_secs_f64();
        if secs < 0.2 {
            return (0.0, 0.0);
        }
        (
            now.calls.saturating_sub(first.calls) as f64 / secs,
            now.ended.saturating_sub(first.ended) as f64 / secs,
        )
    }

    fn forget_except(&mut self, ids: &[String]) {
        self.samples.retain(|k, _| ids.contains(k));
    }
}

fn state_name(s: CampaignState) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

async fn campaign_view(
    st: &ApiState,
    doc: &CampaignDoc,
    sampler: &mut Sampler,
) -> Result<Value, StoreError> {
    let id = doc.id();
    let c = &doc.config;
    let counts = st.store.counts(id).await?;
    let causes = st.store.cause_counts(id).await?;
    let state = st
        .engine()
        .state(id)
        .await
        .ok()
        .flatten()
        .map_or(CampaignState::Idle, |(s, _)| s);
    let (cps, ended_per_sec) = sampler.rates(
        id,
        Sample {
            at: Instant::now(),
            calls: counts.calls,
            ended: counts.ended,
        },
    );
    let left = counts.waiting + counts.active;
    let eta = (left == 0)
        .then_some(0.0)
        .or_else(|| (ended_per_sec > 0.0).then(|| left as f64 / ended_per_sec));
    let gateways = crate::api::views::gateways(st, doc).await?;
    let webhooks = if c.webhooks.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(st.store.outbox_counts(id).await?).unwrap_or(Value::Null)
    };
    let answer_rate = (counts.calls > 0).then(|| counts.answered as f64 / counts.calls as f64);
    Ok(json!({
        "id": id,
        "name": c.name,
        "state": state_name(state),
        "mode": c.mode,
        "limit": c.limit,
        "cps_cap": c.cps,
        "active": counts.active,
        "cps": cps,
        "answer_rate": answer_rate,
        "counters": {"ok": counts.ok, "retry": counts.retry, "error": counts.error, "minus": counts.minus,
                     "calls": counts.calls, "answered": counts.answered, "success": counts.success, "lost": counts.lost},
        "causes": causes,
        "members": {"waiting": counts.waiting, "in_retry": counts.in_retry, "active": counts.active, "ended": counts.ended},
        "eta_secs": eta,
        "gateways": gateways,
        "webhooks": webhooks,
    }))
}

/// Everything the page shows, now.
pub async fn snapshot(st: &ApiState, sampler: &mut Sampler) -> Result<Value, String> {
    let docs = st.registry.list().await.map_err(|e| e.info)?;
    let mut campaigns = Vec::with_capacity(docs.len());
    let (mut abandoned, mut answered_in_agent_campaigns) = (0u64, 0u64);
    for d in &docs {
        let v = campaign_view(st, d, sampler)
            .await
            .map_err(|e| e.to_string())?;
        if d.config.mode.uses_agents() {
            abandoned += v["causes"]["ABANDONED"].as_u64().unwrap_or(0);
            answered_in_agent_campaigns += v["counters"]["answered"].as_u64().unwrap_or(0);
        }
        campaigns.push(v);
    }
    sampler.forget_except(&docs.iter().map(|d| d.id().to_owned()).collect::<Vec<_>>());
    let agents = st
        .store
        .agents(chrono::Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    let mut by_state = BTreeMap::<&str, u64>::new();
    for a in &agents {
        *by_state.entry(a.state.name()).or_default() += 1;
    }
    Ok(json!({
        "campaigns": campaigns,
        "agents": {
            "total": agents.len(),
            "by_state": by_state,
            "abandoned": abandoned,
            "abandon_rate": (answered_in_agent_campaigns > 0).then(|| abandoned as f64 / answered_in_agent_campaigns as f64),
        },
    }))
}

/// The snapshots every open page shares: one producer task reads the figures every [`TICK`] while at least one
/// stream is open (and stops when the last one closes), so the store's load does not grow with the pages.
#[derive(Debug)]
pub struct Hub {
    tx: watch::Sender<Option<Arc<str>>>,
    /// A producer runs. Checked and changed under this lock by both the producer (when it stops for want of
    /// streams) and a new stream (which starts one), so a stream is never left without a producer.
    producing: std::sync::Mutex<bool>,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            tx: watch::Sender::new(None),
            producing: std::sync::Mutex::new(false),
        }
    }
}

impl Hub {
    fn subscribe(&self, st: &Arc<ApiState>) -> watch::Receiver<Option<Arc<str>>> {
        let mut producing = self.producing.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        if !*producing {
            *producing = true;
            tokio::spawn(produce(Arc::downgrade(st)));
        }
        rx
    }
}

/// Reads the figures every tick and publishes those that changed (or every [`KEEP_ALIVE`]), until no stream is
/// left (or the API state is gone).
async fn produce(st: std::sync::Weak<ApiState>) {
    let mut sampler = Sampler::default();
    let mut last: Option<(String, Instant)> = None;
    loop {
        let Some(state) = st.upgrade() else { return };
        {
            let mut producing = state
                .live
                .producing
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if state.live.tx.receiver_count() == 0 {
                *producing = false;
                return;
            }
        }
        match snapshot(&state, &mut sampler).await {
            Ok(mut v) => {
                let text = v.to_string();
                let same = last
                    .as_ref()
                    .is_some_and(|(prev, at)| *prev == text && at.elapsed() < KEEP_ALIVE);
                if !same {
                    last = Some((text, Instant::now()));
                    v["at"] = json!(chrono::Utc::now());
                    state.live.tx.send_replace(Some(v.to_string().into()));
                }
            }
            Err(e) => tracing::warn!(error = e, "live snapshot failed"),
        }
        drop(state);
        tokio::time::sleep(TICK).await;
    }
}

/// `GET /api/v2/live`
pub async fn stream(State(st): State<Arc<ApiState>>) -> Response {
    if OPEN.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        OPEN.fetch_sub(1, Ordering::SeqCst);
        return crate::api::error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_STREAMS} live streams are open already"),
        )
        .into_response();
    }
    let slot = Slot;
    let mut rx = st.live.subscribe(&st);
    // The latest snapshot at once, if there is one.
    rx.mark_changed();
    let events = futures::stream::unfold((rx, slot), |(mut rx, slot)| async move {
        loop {
            rx.changed().await.ok()?;
            let data = rx.borrow_and_update().clone();
            if let Some(data) = data {
                let event = Event::default().event("snapshot").data(&*data);
                return Some((Ok::<_, std::convert::Infallible>(event), (rx, slot)));
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
