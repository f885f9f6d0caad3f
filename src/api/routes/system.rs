//! Service routes: `/healthz`, `/metrics`, `/api/v2/openapi.json`, and the JSON answers for unknown routes.

use super::super::ApiState;
use super::super::error::ApiError;
use super::super::openapi;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// `GET /healthz`: 200 when the store answers, 503 otherwise (no key needed: for load balancers).
pub async fn healthz(State(st): State<Arc<ApiState>>) -> Response {
    match st.store.ping().await {
        Ok(d) => Json(json!({
            "status": "OK",
            "store": st.store.backend(),
            "store_ping_ms": d.as_secs_f64() * 1000.0,
        }))
        .into_response(),
        Err(e) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")).into_response()
        }
    }
}

/// How long the engine loop may go without turning before the process counts as not alive (it turns at least
/// every second).
pub const LIVENESS_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the store may take to answer a ping for the node to count as ready.
pub const STORE_READY_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

/// `GET /livez`: 200 while the engine's loop turns (no key needed: for the process supervisor). 503 when it is
/// stuck or stopped — restart the process.
pub async fn livez(State(st): State<Arc<ApiState>>) -> Response {
    let since = st.engine().since_last_turn();
    let body = json!({
        "status": if since <= LIVENESS_BUDGET { "OK" } else { "STUCK" },
        "engine_last_turn_ms": since.as_millis() as u64,
    });
    let code = if since <= LIVENESS_BUDGET {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// `GET /readyz`: 200 when this node can take work — the engine runs (its loop turns), every switch's event
/// socket is up, the store answers within its budget, and the process is not draining; else 503. The body says
/// which part is not ready (no key needed: for load balancers and orchestrators).
pub async fn readyz(State(st): State<Arc<ApiState>>) -> Response {
    let engine_turn = st.engine().since_last_turn();
    let engine_ok = engine_turn <= LIVENESS_BUDGET;
    let warn = st.engine().switch_stall_warn();
    let mut switches_ok = true;
    let switches: Vec<Value> = st
        .engine()
        .switch_health()
        .into_iter()
        .map(|(name, health)| {
            let stalled = health.as_ref().and_then(|h| h.stalled_for(warn));
            let up = health.as_ref().is_some_and(|h| h.connected);
            switches_ok &= up && stalled.is_none();
            json!({
                "name": name,
                "connected": up,
                "stalled_sec": stalled.map(|d| d.as_secs_f64()),
                "health": health,
            })
        })
        .collect();
    let ping = tokio::time::timeout(STORE_READY_BUDGET, st.store.ping()).await;
    let (store_ok, store) = match ping {
        Ok(Ok(d)) => (
            true,
            json!({"ok": true, "ping_ms": d.as_secs_f64() * 1000.0}),
        ),
        Ok(Err(e)) => (false, json!({"ok": false, "error": e.to_string()})),
        Err(_) => (
            false,
            json!({"ok": false, "error": format!("no answer within {} ms", STORE_READY_BUDGET.as_millis())}),
        ),
    };
    let draining = st.is_draining();
    let mut not_ready = Vec::new();
    if !engine_ok {
        not_ready.push("engine");
    }
    if !switches_ok {
        not_ready.push("switches");
    }
    if !store_ok {
        not_ready.push("store");
    }
    if draining {
        not_ready.push("draining");
    }
    let ready = not_ready.is_empty();
    let body = json!({
        "status": if ready { "READY" } else { "NOT_READY" },
        "not_ready": not_ready,
        "engine": {"ok": engine_ok, "last_turn_ms": engine_turn.as_millis() as u64,
                   "calls_in_flight": st.engine().calls_in_flight()},
        "switches": switches,
        "store": store,
        "draining": draining,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(st): State<Arc<ApiState>>) -> Response {
    let text = st.metrics.render(&st).await;
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `GET /api/v2/openapi.json`: the document built from the route table.
pub async fn openapi_json(State(st): State<Arc<ApiState>>) -> Json<Value> {
    Json(openapi::document(&super::table(&st.config)))
}

/// Any other path: 404 in the API's error shape.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

/// A known path with another method: 405 in the API's error shape.
pub async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed on {}", uri.path()),
    )
}
