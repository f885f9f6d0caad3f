//! Hands attempt results to the store in batches.
//!
//! The core emits one `Complete` action per hung-up call. One store call per result would pay a script call's
//! fixed cost (argument decoding, the timezone map, the round trip) for every attempt, and keep the store's
//! completion fast path (decide in Rust, check and write in one script) at a batch of one. The completer takes
//! whatever results are queued when it is free, up to [`MAX_BATCH`], and completes each campaign's share with one
//! `complete_many`: no timer, so an idle engine adds no delay and a busy one gets bigger batches.
//! Each result's outcome goes back to the core as `Input::Completed`, as before; a failed batch fails each of its
//! results, and the core sends them again (completion is idempotent).
//! For a campaign with webhooks, the batch's write-ahead markers are written first and the completed attempts go
//! to the webhook resolver after (`crate::webhooks`).

use super::clock::Clock;
use super::core::{Input, policy_of};
use super::shell::Msg;
use crate::campaign::config::ValidCampaign;
use crate::store::{AttemptResult, Store};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Results per store call at most (the Redis store splits larger calls anyway).
pub const MAX_BATCH: usize = 500;

/// One result to complete, with the campaign it belongs to and, when the call held one, its gateway slot.
pub(super) struct Completion {
    pub campaign: Arc<ValidCampaign>,
    pub result: AttemptResult,
    pub gateway: Option<String>,
}

/// Runs until every sender is gone.
pub(super) async fn run(
    store: Store,
    clock: Clock,
    mut rx: mpsc::UnboundedReceiver<Completion>,
    tx: mpsc::Sender<Msg>,
    webhooks: mpsc::Sender<crate::webhooks::resolve::Job>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        // Each campaign version's results in arrival order (a callback's result carries its own wait, so its own
        // version), versions in order of their first result.
        let mut groups: Vec<Vec<Completion>> = Vec::new();
        for c in batch {
            match groups
                .iter_mut()
                .find(|g| Arc::ptr_eq(&g[0].campaign, &c.campaign))
            {
                Some(g) => g.push(c),
                None => groups.push(vec![c]),
            }
        }
        for group in groups {
            complete_group(&store, clock, group, &tx, &webhooks).await;
        }
    }
}

async fn complete_group(
    store: &Store,
    clock: Clock,
    group: Vec<Completion>,
    tx: &mpsc::Sender<Msg>,
    webhooks: &mpsc::Sender<crate::webhooks::resolve::Job>,
) {
    let valid = group[0].campaign.clone();
    let policy = policy_of(&valid);
    let results: Vec<AttemptResult> = group.iter().map(|c| c.result.clone()).collect();
    // Webhooks: a marker before the completion, the events after it (see `crate::webhooks`).
    let marked =
        crate::webhooks::hooks::before_completion(store, &valid, &results, clock.now()).await;
    let outcomes = store
        .complete_many(valid.id(), &policy, valid.calendar(), &results, clock.now())
        .await;
    let outcomes: Vec<_> = match outcomes {
        Ok(v) if v.len() == group.len() => v.into_iter().map(Ok).collect(),
        Ok(v) => {
            let e = format!("{} outcomes for {} results", v.len(), group.len());
            group.iter().map(|_| Err(e.clone())).collect()
        }
        Err(e) => group.iter().map(|_| Err(e.to_string())).collect(),
    };
    if marked {
        let done: Vec<_> = group
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| {
                matches!(
                    o,
                    Ok(crate::store::CompleteOutcome::Applied(_)
                        | crate::store::CompleteOutcome::Duplicate)
                )
            })
            .map(|(c, _)| (c.result.attempt_id, c.result.member_id))
            .collect();
        crate::webhooks::hooks::completed(webhooks, &valid, done);
    }
    let slots: Vec<_> = group
        .iter()
        .filter_map(|c| c.gateway.clone().map(|g| (g, c.result.attempt_id)))
        .collect();
    if !slots.is_empty() {
        let store = store.clone();
        tokio::spawn(async move {
            for (gw, attempt) in slots {
                let _ = store.release_gateway_slot(&gw, attempt).await;
            }
        });
    }
    for (c, outcome) in group.iter().zip(outcomes) {
        let _ = tx
            .send(Msg::Input(Input::Completed {
                attempt: c.result.attempt_id,
                outcome,
            }))
            .await;
    }
}
