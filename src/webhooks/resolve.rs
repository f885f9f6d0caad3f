//! Turning durable outcomes into queued deliveries: the engine's resolver task (fed after each completion, never
//! waited on by it) and the sweep of markers a crash left behind (run by every node's delivery task).
//!
//! A member's events are always resolved together, oldest attempt first, from its stored attempt records: an
//! attempt whose marker a crash left and a later attempt of the same member land in the outbox in attempt order,
//! whichever resolver gets there first (an attempt whose marker is gone is skipped by the store).

use crate::campaign::webhook::WebhookConfig;
use crate::store::{AttemptId, MemberId, Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

use super::event;

/// Jobs waiting for the resolver at most; beyond, a completion's events wait for the marker sweep instead.
pub const RESOLVE_QUEUE: usize = 10_000;
/// Attempt records of a member looked at per resolution (the newest).
const RECORDS_PER_MEMBER: usize = 50;

/// Work for the resolver.
#[derive(Debug, Clone)]
pub enum Job {
    /// Attempts whose completion is durable now.
    Attempts {
        campaign: String,
        hooks: Arc<[WebhookConfig]>,
        attempts: Vec<(AttemptId, MemberId)>,
    },
}

/// Queues a member's events from its stored attempt records; returns how many deliveries were queued.
/// `Ok(None)` when the member is gone.
pub async fn resolve_member(
    store: &Store,
    campaign: &str,
    hooks: &[WebhookConfig],
    member: MemberId,
    now: DateTime<Utc>,
) -> Result<Option<usize>, StoreError> {
    let Some(m) = store.get(campaign, member).await? else {
        return Ok(None);
    };
    let mut records = store.attempts(campaign, member).await?;
    records.sort_by_key(|r| r.attempt_no);
    let skip = records.len().saturating_sub(RECORDS_PER_MEMBER);
    let groups: Vec<_> = records[skip..]
        .iter()
        .map(|r| event::attempt_group(campaign, hooks, &m, r, now))
        .collect();
    store.outbox_enqueue(campaign, &groups, now).await.map(Some)
}

/// Resolves markers older than `grace`: their attempts' events are queued if the attempts are completed; a
/// marker whose attempt will never have a record (member deleted, claim released uncounted) is dropped; one
/// whose call is still going stays. Returns the deliveries queued.
pub async fn sweep_markers(
    store: &Store,
    campaign: &str,
    hooks: &[WebhookConfig],
    now: DateTime<Utc>,
    grace: Duration,
) -> Result<usize, StoreError> {
    let older = now - chrono::Duration::from_std(grace).unwrap_or_default();
    let stale = store.outbox_stale_markers(campaign, older, 1000).await?;
    let mut by_member: BTreeMap<u64, Vec<AttemptId>> = BTreeMap::new();
    for m in stale {
        by_member.entry(m.member.0).or_default().push(m.attempt);
    }
    let mut queued = 0;
    for (member, attempts) in by_member {
        match resolve_member(store, campaign, hooks, MemberId(member), now).await? {
            None => {
                for a in attempts {
                    store.outbox_drop_marker(campaign, a).await?;
                }
            }
            Some(n) => {
                queued += n;
                let m = store.get(campaign, MemberId(member)).await?;
                let recorded = store.attempts(campaign, MemberId(member)).await?;
                for a in attempts {
                    let in_call = m.as_ref().and_then(|m| m.current_attempt) == Some(a);
                    if !in_call && !recorded.iter().any(|r| r.attempt_id == a) {
                        tracing::debug!(campaign, attempt = %a, "webhook marker of an attempt with no result dropped");
                        store.outbox_drop_marker(campaign, a).await?;
                    }
                }
            }
        }
    }
    if queued > 0 {
        tracing::info!(
            campaign,
            queued,
            "webhook events of attempts completed before a crash queued"
        );
    }
    Ok(queued)
}

async fn handle(store: &Store, job: Job, now: DateTime<Utc>) -> Result<usize, StoreError> {
    match job {
        Job::Attempts {
            campaign,
            hooks,
            attempts,
        } => {
            let mut members: Vec<MemberId> = attempts.iter().map(|(_, m)| *m).collect();
            members.sort_by_key(|m| m.0);
            members.dedup();
            let mut queued = 0;
            for m in members {
                queued += resolve_member(store, &campaign, &hooks, m, now)
                    .await?
                    .unwrap_or(0);
            }
            Ok(queued)
        }
    }
}

/// The engine's resolver: queues the events of each job, waking the local delivery task. A job that fails is
/// logged; its markers stay for the sweep.
pub async fn run(store: Store, mut rx: mpsc::Receiver<Job>, wake: Arc<Notify>) {
    while let Some(job) = rx.recv().await {
        for attempt in 0..3u32 {
            match handle(&store, job.clone(), Utc::now()).await {
                Ok(n) => {
                    if n > 0 {
                        wake.notify_one();
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "queueing webhook events failed");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
    }
}
