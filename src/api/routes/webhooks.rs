//! Webhook routes: how much a campaign's outbox holds, its dead letters, and replaying them (one, or all).

use super::super::ApiState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, ApiQuery};
use super::super::reply::ok;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<ApiState>>;
type Res = Result<Json<Value>, ApiError>;

/// `GET /api/v2/dialer/{id}/webhooks`
pub async fn counts(State(st): St, ApiPath(id): ApiPath<String>) -> Res {
    st.registry.require(&id).await?;
    Ok(ok(st.store.outbox_counts(&id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}
fn default_limit() -> usize {
    100
}

/// `GET /api/v2/dialer/{id}/webhooks/dead`
pub async fn dead(
    State(st): St,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Res {
    st.registry.require(&id).await?;
    Ok(ok(st
        .store
        .outbox_dead(&id, page.offset, page.limit)
        .await?))
}

/// `POST /api/v2/dialer/{id}/webhooks/dead/{did}/replay`
pub async fn replay(State(st): St, ApiPath((id, did)): ApiPath<(String, String)>) -> Res {
    st.registry.require(&id).await?;
    if !st
        .store
        .outbox_replay(&id, &did, chrono::Utc::now())
        .await?
    {
        return Err(ApiError::not_found(format!(
            "campaign {id}: no dead letter {did:?}"
        )));
    }
    Ok(ok(json!({"replayed": 1})))
}

/// `POST /api/v2/dialer/{id}/webhooks/dead/replay`: every dead letter, oldest first.
pub async fn replay_all(State(st): St, ApiPath(id): ApiPath<String>) -> Res {
    st.registry.require(&id).await?;
    // The dead letters as they are now (those dying again meanwhile wait for the next call).
    let mut ids = Vec::new();
    loop {
        let page = st.store.outbox_dead(&id, ids.len(), 1000).await?;
        let last = page.items.len() < 1000;
        ids.extend(page.items.into_iter().map(|r| r.id));
        if last || ids.len() >= crate::store::outbox::DEAD_CAP {
            break;
        }
    }
    let mut replayed = 0u64;
    for did in ids.iter().rev() {
        if st.store.outbox_replay(&id, did, chrono::Utc::now()).await? {
            replayed += 1;
        }
    }
    Ok(ok(json!({"replayed": replayed})))
}
