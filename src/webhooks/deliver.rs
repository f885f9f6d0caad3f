//! The delivery task: takes due chain heads from every campaign's outbox, POSTs them signed, and settles each
//! (delivered, retry later with back-off and jitter, or dead letter after `max_attempts`). It runs beside the
//! engine, never inside it: a slow or dead receiver holds at most [`DeliveryConfig::max_in_flight`] requests of
//! this task and nothing of the dialling. It also sweeps the write-ahead markers a crash left behind.
//!
//! [`supervise`] restarts the task if it ever ends or panics (logged as an error), so delivery cannot silently
//! stop while the process lives.

use super::backoff::retry_delay;
use super::resolve::sweep_markers;
use super::sign::{EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signature};
use crate::api::campaigns::CampaignDoc;
use crate::campaign::webhook::WebhookConfig;
use crate::store::outbox::{DeliveryRecord, Settle};
use crate::store::{Store, StoreError};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// How the delivery task runs.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Requests in flight at most, over all campaigns and endpoints.
    pub max_in_flight: usize,
    /// How often the outboxes are looked at when nothing wakes the task (events queued by other nodes).
    pub poll: Duration,
    /// How often the campaign list (and their webhooks) is re-read.
    pub refresh: Duration,
    /// A marker older than this is resolved by the sweep (its engine crashed or its resolver queue overflowed).
    pub marker_grace: Duration,
    /// How often the markers are swept.
    pub sweep_every: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            max_in_flight: 64,
            poll: Duration::from_millis(100),
            refresh: Duration::from_secs(1),
            marker_grace: Duration::from_secs(30),
            sweep_every: Duration::from_secs(5),
        }
    }
}

/// Why a delivery failed.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The HTTP client: no redirects (a 3xx is a failure: the event goes where it was configured or nowhere), no
/// proxy from the environment.
pub fn client() -> reqwest::Client {
    crate::tls::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("fsdialer/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "webhook HTTP client with defaults instead");
            reqwest::Client::new()
        })
}

/// POSTs one delivery; `Ok` on a 2xx answer.
pub async fn post(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    rec: &DeliveryRecord,
) -> Result<(), String> {
    let t = Utc::now().timestamp();
    let answer = client
        .post(&rec.url)
        .timeout(Duration::from_millis(hook.timeout_ms))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            SIGNATURE_HEADER,
            signature(&hook.secret, t, rec.body.as_bytes()),
        )
        .header(EVENT_HEADER, &rec.event)
        .header(IDEMPOTENCY_HEADER, &rec.event_id)
        .body(rec.body.clone())
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// Tries one delivery and records what became of it.
async fn deliver_one(
    store: Store,
    client: reqwest::Client,
    campaign: String,
    hook: Option<WebhookConfig>,
    mut rec: DeliveryRecord,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let result = match &hook {
        Some(h) => post(&client, h, &rec).await,
        None => Err("the webhook is no longer configured on the campaign".into()),
    };
    let now = Utc::now();
    let settle = match (result, &hook) {
        (Ok(()), _) => {
            metrics::counter!("fsdialer_webhook_deliveries_total", "result" => "delivered")
                .increment(1);
            metrics::histogram!("fsdialer_webhook_delivery_seconds")
                .record((now.timestamp_millis() - rec.created_ms).max(0) as f64 / 1000.0);
            Settle::Delivered
        }
        (Err(e), hook) => {
            rec.attempts += 1;
            let last = hook.as_ref().is_none_or(|h| rec.attempts >= h.max_attempts);
            tracing::debug!(
                campaign,
                id = rec.id,
                attempts = rec.attempts,
                error = e,
                took_ms = started.elapsed().as_millis() as u64,
                "webhook delivery failed"
            );
            rec.last_error = Some(e);
            if last {
                metrics::counter!("fsdialer_webhook_deliveries_total", "result" => "dead")
                    .increment(1);
                tracing::warn!(
                    campaign,
                    id = rec.id,
                    url = rec.url,
                    attempts = rec.attempts,
                    error = rec.last_error.as_deref().unwrap_or_default(),
                    "webhook event moved to the dead-letter list"
                );
                Settle::Dead
            } else {
                metrics::counter!("fsdialer_webhook_deliveries_total", "result" => "retry")
                    .increment(1);
                let h = hook
                    .as_ref()
                    .unwrap_or_else(|| unreachable!("no hook is always last"));
                let delay = retry_delay(h, rec.attempts, rand::random::<f64>());
                Settle::RetryAt(now + chrono::Duration::from_std(delay).unwrap_or_default())
            }
        }
    };
    store.outbox_settle(&campaign, &rec, &settle, now).await?;
    Ok(())
}

/// The campaigns with webhooks, from the stored documents.
async fn campaigns_with_hooks(
    store: &Store,
) -> Result<HashMap<String, Vec<WebhookConfig>>, StoreError> {
    let mut out = HashMap::new();
    for (id, text) in store.campaign_docs().await? {
        match serde_json::from_str::<CampaignDoc>(&text) {
            Ok(doc) if !doc.config.webhooks.is_empty() => {
                out.insert(id, doc.config.webhooks);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(campaign = id, error = %e, "unreadable campaign document: its webhooks wait")
            }
        }
    }
    Ok(out)
}

/// Runs the delivery loop until the process ends.
pub async fn run(store: Store, cfg: DeliveryConfig, wake: Arc<Notify>) {
    let client = client();
    let mut in_flight: JoinSet<Result<(), StoreError>> = JoinSet::new();
    let mut hooks: HashMap<String, Vec<WebhookConfig>> = HashMap::new();
    let mut refreshed: Option<Instant> = None;
    let mut swept = Instant::now();
    loop {
        if refreshed.is_none_or(|t| t.elapsed() >= cfg.refresh) {
            match campaigns_with_hooks(&store).await {
                Ok(h) => hooks = h,
                Err(e) => tracing::warn!(error = %e, "reading the campaigns' webhooks failed"),
            }
            refreshed = Some(Instant::now());
        }
        if swept.elapsed() >= cfg.sweep_every {
            swept = Instant::now();
            for (campaign, list) in &hooks {
                if let Err(e) =
                    sweep_markers(&store, campaign, list, Utc::now(), cfg.marker_grace).await
                {
                    tracing::warn!(campaign, error = %e, "sweeping webhook markers failed");
                }
            }
        }
        for (campaign, list) in &hooks {
            let room = cfg.max_in_flight.saturating_sub(in_flight.len());
            if room == 0 {
                break;
            }
            let longest = list.iter().map(|h| h.timeout_ms).max().unwrap_or(5_000);
            let lease = Duration::from_millis(longest) + Duration::from_secs(10);
            let taken = match store.outbox_take(campaign, Utc::now(), lease, room).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(campaign, error = %e, "taking webhook deliveries failed");
                    continue;
                }
            };
            for rec in taken {
                let hook = list.iter().find(|h| h.url == rec.url).cloned();
                in_flight.spawn(deliver_one(
                    store.clone(),
                    client.clone(),
                    campaign.clone(),
                    hook,
                    rec,
                ));
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(cfg.poll) => {}
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "recording a webhook delivery failed (it is tried again after its lease)"),
                    Err(e) => tracing::error!(error = %e, "a webhook delivery task failed"),
                }
            }
        }
    }
}

/// Runs [`run`] and starts it again (after a second) if it ever ends or panics.
pub async fn supervise(store: Store, cfg: DeliveryConfig, wake: Arc<Notify>) {
    /// Ends the running task when the supervisor itself is dropped or aborted.
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    loop {
        let mut task = AbortOnDrop(tokio::spawn(run(store.clone(), cfg.clone(), wake.clone())));
        match (&mut task.0).await {
            Ok(()) => tracing::error!("webhook delivery task ended: restarting it"),
            Err(e) if e.is_cancelled() => return,
            Err(e) => tracing::error!(error = %e, "webhook delivery task panicked: restarting it"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
