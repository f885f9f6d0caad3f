//! The shell's side of caller-ID pools (issue 21): counting the chosen caller ID in the store before its
//! originate is sent (the store refuses it at the pool's daily cap, across every node), and recording each
//! finished call's caller ID for its answer rate (store figures per campaign, which the stats and `/metrics` read).

use tokio::sync::mpsc;

use super::Msg;
use crate::engine::core::{CallerIdCount, Input};
use crate::store::Store;

/// Takes one call of the caller ID in the store; reports the number's count today to the core. False: the call
/// must not be placed (capped, or the store failed: fail closed, the claim goes back uncounted).
pub(super) async fn take_caller_id(
    store: &Store,
    tx: &mpsc::Sender<Msg>,
    cid: CallerIdCount,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    match store.take_caller_id(&cid.number, cid.cap, now).await {
        Ok(take) => {
            let _ = tx
                .send(Msg::Input(Input::CallerIdUsed {
                    number: cid.number,
                    used_today: take.used_today,
                }))
                .await;
            take.taken
        }
        Err(e) => {
            tracing::warn!(caller_id = cid.number, error = %e, "caller ID count failed: the call is not placed");
            false
        }
    }
}

/// Records a finished call presented as `caller_id` in the campaign's figures in the store (in the background; a
/// failure is logged). `/metrics` reads them from there.
pub(super) fn record_caller_id_result(
    store: &Store,
    campaign: &str,
    caller_id: String,
    answered: bool,
) {
    metrics::counter!("fsdialer_caller_id_calls_total", "caller_id" => caller_id.clone())
        .increment(1);
    if answered {
        metrics::counter!("fsdialer_caller_id_answered_total", "caller_id" => caller_id.clone())
            .increment(1);
    }
    let (store, campaign) = (store.clone(), campaign.to_owned());
    tokio::spawn(async move {
        if let Err(e) = store
            .record_caller_id_result(&campaign, &caller_id, answered)
            .await
        {
            tracing::warn!(campaign, caller_id, error = %e, "caller ID figures not recorded");
        }
    });
}
