//! Campaign routes (Webitel "dialer"): list, create, read, change, delete, run/stop, stats, history.

use super::super::ApiState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, parse_json, read_body};
use super::super::reply::ok;
use super::super::views::{self, CAMPAIGN_VIEW_ONLY};
use crate::api::auth::Caller;
use crate::campaign::config::{CampaignConfig, new_campaign_id};
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<ApiState>>;
type Res = Result<Json<Value>, ApiError>;

async fn view(
    st: &ApiState,
    doc: &super::super::campaigns::CampaignDoc,
) -> Result<Value, ApiError> {
    let state = st.engine().state(doc.id()).await?;
    let missing = st.engine().missing_prompts(doc.id());
    Ok(views::campaign(doc, state, &missing))
}

/// Webhook secrets sign what the CRM trusts: only admin keys (which may change them) read them back; other keys
/// see `"secret": "(hidden)"`.
fn hide_secrets(mut v: Value, caller: &Caller) -> Value {
    if caller.role < crate::api::auth::Role::Admin
        && let Some(hooks) = v.get_mut("webhooks").and_then(Value::as_array_mut)
    {
        for h in hooks {
            h["secret"] = json!("(hidden)");
        }
    }
    v
}

/// `GET /api/v2/dialer`
pub async fn list(State(st): St, Extension(caller): Extension<Caller>) -> Res {
    let docs = st.registry.list().await?;
    let mut out = Vec::with_capacity(docs.len());
    for d in &docs {
        out.push(hide_secrets(view(&st, d).await?, &caller));
    }
    Ok(ok(out))
}

fn object(v: Value, what: &str) -> Result<serde_json::Map<String, Value>, ApiError> {
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::bad_request(format!(
            "body: {what} must be a JSON object"
        ))),
    }
}

/// `POST /api/v2/dialer`: the body is a campaign (SPEC §2); `id` is generated when absent.
pub async fn create(State(st): St, headers: HeaderMap, body: Body) -> Res {
    let bytes = read_body(&headers, body, st.config.max_body_bytes).await?;
    let mut o = object(
        parse_json(&bytes, st.config.http.max_json_depth)?,
        "a campaign",
    )?;
    for k in CAMPAIGN_VIEW_ONLY {
        o.remove(*k);
    }
    if o.get("id").is_none_or(Value::is_null) {
        o.insert("id".into(), json!(new_campaign_id()));
    }
    let config = CampaignConfig::from_json_value(Value::Object(o))?;
    let doc = st.registry.create(config).await?;
    Ok(ok(view(&st, &doc).await?))
}

/// `GET /api/v2/dialer/{id}`
pub async fn get(
    State(st): St,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Res {
    let doc = st.registry.get(&id).await?;
    Ok(ok(hide_secrets(view(&st, &doc).await?, &caller)))
}

/// `PUT /api/v2/dialer/{id}`: the fields given replace the campaign's (Webitel's partial update); the result is
/// validated as a whole. View-only fields (`_id`, `state`...) are ignored so a GET can be changed and PUT back.
pub async fn update(
    State(st): St,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Res {
    let bytes = read_body(&headers, body, st.config.max_body_bytes).await?;
    let patch = object(
        parse_json(&bytes, st.config.http.max_json_depth)?,
        "a campaign",
    )?;
    let doc = st
        .registry
        .modify(&id, |doc| {
            // A client that sends the version it read edits only that version (409 if it changed since).
            if let Some(v) = patch.get("version")
                && v.as_u64() != Some(doc.version)
            {
                return Err(ApiError::conflict(format!(
                    "version: the campaign is at version {}, not {v}; read it again",
                    doc.version
                )));
            }
            let current =
                serde_json::to_value(&doc.config).map_err(|e| ApiError::internal(e.to_string()))?;
            let mut merged = object(current, "a campaign")?;
            for (k, v) in &patch {
                if CAMPAIGN_VIEW_ONLY.contains(&k.as_str()) {
                    continue;
                }
                merged.insert(k.clone(), v.clone());
            }
            doc.config = CampaignConfig::from_json_value(Value::Object(merged))?;
            doc.config.validate()?;
            Ok(())
        })
        .await?;
    Ok(ok(view(&st, &doc).await?))
}

/// `DELETE /api/v2/dialer/{id}`: the campaign, its members and results (409 while calls are in progress).
pub async fn delete(State(st): St, ApiPath(id): ApiPath<String>) -> Res {
    st.registry.delete(&id).await?;
    Ok(ok(json!({"_id": id, "deleted": true})))
}

/// `PUT /api/v2/dialer/{id}/state/{state}`: 1 = run, 3 = stop (calls in progress finish).
pub async fn set_state(State(st): St, ApiPath((id, state)): ApiPath<(String, String)>) -> Res {
    let run = match state.as_str() {
        "1" => true,
        "3" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "state: {other:?} is not supported (1 = run, 3 = stop)"
            )));
        }
    };
    let doc = st.registry.set_run(&id, run).await?;
    Ok(ok(view(&st, &doc).await?))
}

/// `GET /api/v2/dialer/{id}/stats`: counters (SPEC §10), the state on this node, and each gateway's load and
/// circuit breaker (`views::gateways`).
pub async fn stats(State(st): St, ApiPath(id): ApiPath<String>) -> Res {
    let doc = st.registry.get(&id).await?;
    let counters = st.store.counts(&id).await?;
    let state = st.engine().state(&id).await?;
    let mut v = serde_json::to_value(&counters).map_err(|e| ApiError::internal(e.to_string()))?;
    let (s, active) = state.unwrap_or((crate::engine::state::CampaignState::Idle, 0));
    v["state"] = json!(s.webitel_code());
    v["state_name"] = json!(views::state_name(s));
    v["active_calls"] = json!(active);
    // Results the store kept refusing on this node (given up after bounded retries), with the reason.
    v["failed_results"] = json!(st.engine().failed_results(&id));
    // Each caller ID's calls, answered calls and answer rate (a number flagged as spam shows a falling rate).
    v["caller_ids"] = json!(st.store.caller_id_stats(&id).await?);
    // Answers by AMD result and messages left, on this node since it started (campaigns with `amd`).
    v["amd"] = json!(st.engine().amd_counts(&id).await?);
    v["gateways"] = json!(views::gateways(&st, &doc).await?);
    Ok(ok(v))
}

/// `GET /api/v2/dialer/{id}/history`: the campaign's latest state transitions (time, from, to, reason), whichever
/// node made them, oldest first (kept in the store, bounded).
pub async fn history(State(st): St, ApiPath(id): ApiPath<String>) -> Res {
    st.registry.require(&id).await?;
    Ok(ok(st.engine().history(&id).await?))
}
