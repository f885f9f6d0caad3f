//! The engine's background tasks besides the core loop: the node registry heartbeat, the ordered campaign-history
//! writer, the take-over of a vanished node's calls that are still up or whose end the switch recorded (recovery
//! never hangs up a live call, and records an unobserved end with its real outcome), and the switch-side hangup
//! records (`engine::hangup_record`): read, deleted, swept.

use std::time::Duration;
use tokio::sync::mpsc;

use super::*;
use crate::engine::clock::Clock;
use crate::engine::core::Input;
use crate::engine::hangup_record::{self, HangupRecord};
use crate::engine::state::Transition;
use crate::engine::subscription;
use crate::esl::client::Client;
use crate::store::{AttemptId, Store};

/// Says every third of a lease that this node is alive, and tells the core how many nodes are (nodes silent for a
/// whole lease drop out), so each node takes a fair share of a campaign's limit.
pub(super) async fn announce_node(
    store: Store,
    node: String,
    lease: Duration,
    clock: Clock,
    tx: mpsc::Sender<Msg>,
) {
    let every = clock.to_real(lease / 3).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.node_alive(&node, clock.now(), lease).await {
            Ok(n) => {
                if tx.send(Msg::Input(Input::Nodes(n))).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot update the node registry"),
        }
    }
}

/// A campaign state transition to record, with the campaign's webhooks when it has any.
pub(super) struct HistoryJob {
    pub campaign: String,
    pub transition: Transition,
    pub hooks: Option<std::sync::Arc<[crate::campaign::WebhookConfig]>>,
}

/// Writes campaign transitions to the store in the order they happened (retrying a failed write a few times),
/// each with its `campaign_state` webhook events in the same store step (`Store::push_history_with_events`): a
/// transition in the history always has its events queued, whatever crashes when. `queued` is rung when events
/// were queued (the delivery task).
pub(super) async fn write_history(
    store: Store,
    mut rx: mpsc::Receiver<HistoryJob>,
    queued: std::sync::Arc<tokio::sync::Notify>,
) {
    while let Some(job) = rx.recv().await {
        let Ok(entry) = serde_json::to_string(&job.transition) else {
            continue;
        };
        let now = chrono::Utc::now();
        let group = job
            .hooks
            .as_deref()
            .map(|hooks| crate::store::outbox::EnqueueGroup {
                marker: None,
                deliveries: crate::webhooks::event::state_event(&job.campaign, &job.transition)
                    .deliveries(hooks, now),
            });
        let groups: &[_] = group.as_slice();
        for attempt in 0..5u32 {
            match store
                .push_history_with_events(&job.campaign, &entry, groups, now)
                .await
            {
                Ok(n) => {
                    if n > 0 {
                        queued.notify_one();
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(campaign = job.campaign, error = %e, attempt,
                        "writing the campaign history (and its webhook events) failed");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
    }
}

/// Expired leases (of vanished nodes, or this node's own from before a restart) whose calls are still up on a
/// switch, or ended with a hangup record there: taken over for this node (with an ESL filter for a dead node's
/// events on every switch, set before looking, so the call's end is heard), and returned as claims to adopt.
pub(super) async fn take_over_live_calls(
    store: &Store,
    clients: &[Client],
    campaign: &str,
    node: &str,
    lease: Duration,
    clock: Clock,
) -> Result<Vec<crate::store::Claim>, crate::store::StoreError> {
    let now = clock.now();
    let expired = store.expired_leases(campaign, now, 1000).await?;
    let mut taken = Vec::new();
    let mut listening: Vec<String> = Vec::new();
    // This node's own expired leases too: a restart after more than a lease (or a recovery that runs before
    // the restart's adoption) must not count its calls that are up, or that ended on record, as lost.
    for lease_of in &expired {
        if lease_of.node != node && !listening.contains(&lease_of.node) {
            match subscription::node_filter(&lease_of.node) {
                Ok(f) => {
                    for c in clients {
                        let _ = c.filter(&f.header, &f.value).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen to a vanished node's calls"),
            }
            listening.push(lease_of.node.clone());
        }
        // Up, or gone with its end on record: either way this node can record its real outcome.
        let mut ours_to_take = false;
        for c in clients {
            if uuid_exists(c, lease_of.attempt_id).await == Some(true) {
                ours_to_take = true;
                break;
            }
        }
        if !ours_to_take {
            for c in clients {
                if let Some(Some(_)) = hangup_record_on(c, lease_of.attempt_id).await {
                    ours_to_take = true;
                    break;
                }
            }
        }
        if !ours_to_take {
            continue;
        }
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        if store
            .take_over(
                campaign,
                lease_of.attempt_id,
                &lease_of.node,
                node,
                until,
                now,
            )
            .await?
        {
            tracing::info!(campaign, attempt = %lease_of.attempt_id, from = lease_of.node, "taking over a live call of a vanished node");
            taken.push(lease_of.attempt_id);
        }
    }
    if taken.is_empty() {
        return Ok(Vec::new());
    }
    let claims = store.held_claims(campaign, node, lease, now).await?;
    Ok(claims
        .into_iter()
        .filter(|c| taken.contains(&c.attempt_id))
        .collect())
}

/// `uuid_exists` on one switch: `None` when it could not be answered.
pub(super) async fn uuid_exists(client: &Client, attempt: AttemptId) -> Option<bool> {
    let asked = tokio::time::timeout(
        Duration::from_secs(5),
        client.api_text(&format!("uuid_exists {attempt}")),
    )
    .await;
    match asked {
        Ok(Ok(text)) => Some(text.trim() == "true"),
        Ok(Err(e)) => {
            tracing::warn!(%attempt, error = %e, "uuid_exists failed");
            None
        }
        Err(_) => {
            tracing::warn!(%attempt, "uuid_exists timed out");
            None
        }
    }
}

/// The hangup record of an attempt on one switch: `None` when it could not be asked; `Some(None)` when there is
/// none (or it cannot be read: logged, and treated as none, so a switch without mod_hash only loses the record).
pub(super) async fn hangup_record_on(
    client: &Client,
    attempt: AttemptId,
) -> Option<Option<HangupRecord>> {
    let asked = tokio::time::timeout(
        Duration::from_secs(5),
        client.api_text(&hangup_record::select_command(attempt)),
    )
    .await;
    match asked {
        Ok(Ok(text)) => match hangup_record::parse_select(&text) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(%attempt, error = %e, "unreadable hangup record");
                Some(None)
            }
        },
        Ok(Err(e)) => {
            tracing::warn!(%attempt, error = %e, "reading the hangup record failed");
            None
        }
        Err(_) => {
            tracing::warn!(%attempt, "reading the hangup record timed out");
            None
        }
    }
}

/// Deletes an attempt's hangup record on one switch (`-ERR Not found` when there was none is fine).
pub(super) async fn forget_hangup_record(client: &Client, attempt: AttemptId) {
    let asked = tokio::time::timeout(
        Duration::from_secs(5),
        client.api_text(&hangup_record::delete_command(attempt)),
    )
    .await;
    if !matches!(asked, Ok(Ok(_))) {
        tracing::debug!(%attempt, "deleting the hangup record failed: the sweep deletes it later");
    }
}

/// Every [`hangup_record::SWEEP_EVERY`], deletes on each connected switch the hangup records that ended more than
/// [`hangup_record::KEEP`] ago (the ones nobody came back for).
pub(super) async fn sweep_hangup_records(shared: Arc<Shared>, clock: Clock) {
    let mut tick = tokio::time::interval(hangup_record::SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now: Vec<Client> = lock(&shared.clients).iter().flatten().cloned().collect();
        let before = clock.now() - hangup_record::KEEP;
        for client in now {
            let dump = tokio::time::timeout(
                Duration::from_secs(30),
                client.api_text(&hangup_record::dump_command()),
            )
            .await;
            let Ok(Ok(dump)) = dump else {
                tracing::warn!("listing the hangup records failed");
                continue;
            };
            let stale = hangup_record::stale_in_dump(&dump, before);
            if !stale.is_empty() {
                tracing::info!(
                    records = stale.len(),
                    "deleting hangup records nobody came back for"
                );
            }
            for attempt in stale {
                forget_hangup_record(&client, attempt).await;
            }
        }
    }
}
