//! Where the engine touches webhooks: a marker before an attempt is completed (or recovered), a job for the
//! resolver after. (A campaign state transition's events are written with its history entry, in one store step:
//! `engine::shell::tasks::write_history`.) Each costs nothing for a campaign without webhooks, and none of them waits on a receiver: the
//! store writes are one round trip per batch, and the resolver's queue is never waited on (when it is full, the
//! markers' sweep queues those events a little later).

use super::resolve::Job;
use crate::campaign::config::ValidCampaign;
use crate::store::{AttemptId, AttemptResult, MemberId, Store};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// The campaign's endpoints, `None` when it has none.
pub fn hooks_of(valid: &ValidCampaign) -> Option<std::sync::Arc<[crate::campaign::WebhookConfig]>> {
    let hooks = &valid.config().webhooks;
    (!hooks.is_empty()).then(|| hooks.as_slice().into())
}

fn send(tx: &mpsc::Sender<Job>, job: Job) {
    if let Err(e) = tx.try_send(job) {
        tracing::warn!(error = %e, "webhook resolver queue full: these events wait for the marker sweep");
    }
}

/// Writes the write-ahead markers of results about to be completed. `false` when the campaign has no webhooks.
pub async fn before_completion(
    store: &Store,
    valid: &ValidCampaign,
    results: &[AttemptResult],
    now: DateTime<Utc>,
) -> bool {
    if valid.config().webhooks.is_empty() {
        return false;
    }
    let attempts: Vec<(AttemptId, MemberId)> = results
        .iter()
        .map(|r| (r.attempt_id, r.member_id))
        .collect();
    if let Err(e) = store.outbox_mark(valid.id(), &attempts, now).await {
        tracing::error!(campaign = valid.id(), error = %e,
            "webhook markers not written: a crash before these events are queued would lose them");
    }
    true
}

/// Writes the markers of the attempts a recovery may complete (expired leases). `false` without webhooks.
pub async fn before_recovery(store: &Store, valid: &ValidCampaign, now: DateTime<Utc>) -> bool {
    if valid.config().webhooks.is_empty() {
        return false;
    }
    let marked = match store.expired_leases(valid.id(), now, 1000).await {
        Ok(expired) => {
            let attempts: Vec<_> = expired
                .iter()
                .map(|l| (l.attempt_id, l.member_id))
                .collect();
            store.outbox_mark(valid.id(), &attempts, now).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = marked {
        tracing::error!(campaign = valid.id(), error = %e, "webhook markers of a recovery not written");
    }
    true
}

/// Attempts whose completion is durable: their events go to the resolver.
pub fn completed(
    tx: &mpsc::Sender<Job>,
    valid: &ValidCampaign,
    attempts: Vec<(AttemptId, MemberId)>,
) {
    if let Some(hooks) = hooks_of(valid)
        && !attempts.is_empty()
    {
        send(
            tx,
            Job::Attempts {
                campaign: valid.id().to_owned(),
                hooks,
                attempts,
            },
        );
    }
}
