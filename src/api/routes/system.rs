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
