//! Agent routes (issue 16): CRUD `/api/v2/agents`, the agent's status, accept/skip of a preview, its live view
//! with the member it is offered or talking to, and the result callback of an agent call
//! (`PUT /api/v2/dialer/{id}/members/{mid}/status`, Webitel v3).
//!
//! Who may do what: the route table says which role each route needs (read-only to read, admin to change an agent
//! or act for it, members-writer to give results, as a CRM does), and which routes a key of role `agent` may also
//! use; the handlers here admit such a key only for its own agent ([`Caller`]), and its results only for members
//! that agent handles.
//!
//! Accept, skip and results are not applied here: they are posted to the inbox of the engine node that owns the
//! call (the reservation's node, or the attempt's lease holder), which applies them.

use super::super::ApiState;
use super::super::auth::{Caller, Role};
use super::super::error::ApiError;
use super::super::extract::{ApiPath, parse_json, read_body};
use super::super::reply::ok;
use crate::agents::{
    Agent, AgentMessage, AgentResult, AgentStatus, AgentView, DeleteAgentOutcome, PutAgentOutcome,
    ReservationState, ReservationView, TeamMembership,
};
use crate::store::{CommState, FollowUp, FollowUpOutcome, MemberId};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<ApiState>>;
type Res = Result<Json<Value>, ApiError>;

/// An agent as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentInput {
    /// Required on create; on replace, when given, it must be the path's id.
    id: Option<String>,
    #[serde(default)]
    name: String,
    dial_string: String,
    #[serde(default)]
    teams: Vec<TeamMembership>,
    #[serde(default = "one_line")]
    lines: u32,
    /// On replace: the version read (409 if it changed since).
    version: Option<u64>,
}

fn one_line() -> u32 {
    1
}

/// The body of a status change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusInput {
    reason: Option<String>,
    /// Pause only: back to ready by itself after this many seconds.
    timeout_sec: Option<u64>,
}

/// The result callback's body (Webitel v3 fields; `agent` for callers other than the agent itself).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultInput {
    success: bool,
    next_after_sec: Option<u64>,
    next_communication: Option<String>,
    #[serde(default)]
    stop_communications: bool,
    #[serde(default)]
    reset_retries: bool,
    description: Option<String>,
    agent: Option<String>,
}

/// Longest pause timeout accepted: 7 days.
const MAX_PAUSE_SEC: u64 = 7 * 24 * 3600;

/// Reads a JSON body into `T`; a value of the wrong shape is a 400 naming its path.
async fn body<T: DeserializeOwned>(
    st: &ApiState,
    headers: &HeaderMap,
    body: Body,
    empty_ok: bool,
) -> Result<Option<T>, ApiError> {
    let bytes = read_body(headers, body, st.config.max_body_bytes).await?;
    if empty_ok && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v = parse_json(&bytes, st.config.http.max_json_depth)?;
    serde_path_to_error::deserialize(v).map(Some).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            "body".to_string()
        } else {
            format!("body.{path}")
        };
        ApiError::bad_request(format!("{at}: {}", e.inner()))
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("agent {id:?} not found"))
}

/// The reservation the agent is busiest with: talking, else offered.
fn current(v: &AgentView) -> Option<&ReservationView> {
    let of = |s| v.reservations.iter().find(|r| r.state == s);
    of(ReservationState::Talking).or_else(|| of(ReservationState::Offering))
}

/// The agent's view, with the member it is offered or talking to (name, number, variables from the member store).
async fn agent_json(st: &ApiState, v: &AgentView) -> Result<Value, ApiError> {
    let mut out = serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
    out["occupancy"] = json!(v.stats.occupancy());
    out["member"] = Value::Null;
    if let Some(r) = current(v)
        && let Some(m) = st.store.get(&r.campaign, r.member).await?
    {
        let number = m
            .communications
            .iter()
            .find(|c| c.state == CommState::Active)
            .map(|c| c.number.clone());
        out["member"] = json!({
            "campaign": r.campaign,
            "id": m.id,
            "attempt": r.attempt,
            "reservation": r.id,
            "state": r.state,
            "name": m.name,
            "number": number,
            "variables": m.variables,
        });
    }
    Ok(out)
}

async fn view_of(st: &ApiState, id: &str) -> Result<AgentView, ApiError> {
    st.store
        .agent(id, st.now())
        .await?
        .ok_or_else(|| not_found(id))
}

/// `GET /api/v2/agents`
pub async fn list(State(st): St, Extension(caller): Extension<Caller>) -> Res {
    let mut out = Vec::new();
    for v in st.store.agents(st.now()).await? {
        if caller.may_read(&v.agent.id).is_ok() {
            out.push(agent_json(&st, &v).await?);
        }
    }
    Ok(ok(out))
}

/// `POST /api/v2/agents`: 409 if the id exists.
pub async fn create(State(st): St, headers: HeaderMap, b: Body) -> Res {
    let input: AgentInput = body(&st, &headers, b, false)
        .await?
        .ok_or_else(|| ApiError::bad_request("body: empty"))?;
    let Some(id) = input.id.clone() else {
        return Err(ApiError::unprocessable("id: required"));
    };
    let agent = Agent {
        id: id.clone(),
        name: input.name,
        dial_string: input.dial_string,
        teams: input.teams,
        lines: input.lines,
        version: 0,
    };
    match st.store.put_agent(&agent, Some(0), st.now()).await? {
        PutAgentOutcome::Conflict { .. } => {
            Err(ApiError::conflict(format!("agent {id:?} already exists")))
        }
        _ => Ok(ok(agent_json(&st, &view_of(&st, &id).await?).await?)),
    }
}

/// `GET /api/v2/agents/{id}`: live state and the member offered or talking.
pub async fn get(
    State(st): St,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Res {
    caller.may_read(&id)?;
    Ok(ok(agent_json(&st, &view_of(&st, &id).await?).await?))
}

/// `PUT /api/v2/agents/{id}`: replaces the configuration (status, state and figures are kept); with `version`,
/// only that version (409 if it changed since).
pub async fn update(
    State(st): St,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    b: Body,
) -> Res {
    let input: AgentInput = body(&st, &headers, b, false)
        .await?
        .ok_or_else(|| ApiError::bad_request("body: empty"))?;
    if input.id.as_ref().is_some_and(|i| *i != id) {
        return Err(ApiError::unprocessable(format!(
            "id: {:?} is not the path's {id:?}",
            input.id.unwrap_or_default()
        )));
    }
    let agent = Agent {
        id: id.clone(),
        name: input.name,
        dial_string: input.dial_string,
        teams: input.teams,
        lines: input.lines,
        version: 0,
    };
    match st.store.put_agent(&agent, input.version, st.now()).await? {
        PutAgentOutcome::Conflict { current: Some(v) } => Err(ApiError::conflict(format!(
            "version: the agent is at version {v}, not {}; read it again",
            input.version.unwrap_or_default()
        ))),
        PutAgentOutcome::Conflict { current: None } => Err(not_found(&id)),
        _ => Ok(ok(agent_json(&st, &view_of(&st, &id).await?).await?)),
    }
}

/// `DELETE /api/v2/agents/{id}`: 409 while it holds reservations.
pub async fn delete(State(st): St, ApiPath(id): ApiPath<String>) -> Res {
    match st.store.delete_agent(&id).await? {
        DeleteAgentOutcome::Deleted => Ok(ok(json!({"_id": id, "deleted": true}))),
        DeleteAgentOutcome::NotFound => Err(not_found(&id)),
        DeleteAgentOutcome::Busy { reservations } => Err(ApiError::conflict(format!(
            "agent {id:?} holds {reservations} reservation(s) (calls being set up or talking); delete it when they end"
        ))),
    }
}

/// `PUT /api/v2/agents/{id}/status/{status}` (`ready`, `pause`, `logout`, `on_demand`) with `{reason, timeout_sec}`.
pub async fn set_status(
    State(st): St,
    Extension(caller): Extension<Caller>,
    ApiPath((id, status)): ApiPath<(String, String)>,
    headers: HeaderMap,
    b: Body,
) -> Res {
    caller.may_act_for(&id)?;
    let input: StatusInput = body(&st, &headers, b, true).await?.unwrap_or_default();
    let now = st.now();
    if input.timeout_sec.is_some() && status != "pause" {
        return Err(ApiError::unprocessable(
            "timeout_sec: only a pause has a timeout",
        ));
    }
    let status = match status.as_str() {
        "ready" => AgentStatus::Ready,
        "logout" => AgentStatus::LoggedOut,
        "on_demand" => AgentStatus::OnDemand,
        "pause" => {
            let until = match input.timeout_sec {
                None => None,
                Some(s) if (1..=MAX_PAUSE_SEC).contains(&s) => {
                    Some(now + chrono::Duration::seconds(s as i64))
                }
                Some(s) => {
                    return Err(ApiError::unprocessable(format!(
                        "timeout_sec: {s}: must be 1..={MAX_PAUSE_SEC}"
                    )));
                }
            };
            AgentStatus::Paused {
                reason: input.reason.unwrap_or_else(|| "pause".into()),
                until,
            }
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "status: {other:?}: expected ready, pause, logout or on_demand"
            )));
        }
    };
    match st.store.set_agent_status(&id, status, now).await? {
        crate::agents::SetStatusOutcome::NotFound => Err(not_found(&id)),
        applied => {
            let v = view_of(&st, &id).await?;
            let mut out = agent_json(&st, &v).await?;
            out["applied"] = json!(if applied == crate::agents::SetStatusOutcome::Pending {
                "when_the_call_ends"
            } else {
                "now"
            });
            Ok(ok(out))
        }
    }
}

/// Posts `make(reservation)` for the agent's offered reservation to the node that owns it (409 when none).
async fn answer_offer(
    st: &ApiState,
    caller: &Caller,
    id: &str,
    make: fn(crate::agents::ReservationId) -> AgentMessage,
) -> Res {
    caller.may_act_for(id)?;
    let v = view_of(st, id).await?;
    let Some(r) = v.offered() else {
        return Err(ApiError::conflict(format!(
            "agent {id:?} has no call offered"
        )));
    };
    st.store.post_agent_message(&r.node, &make(r.id)).await?;
    Ok(ok(
        json!({"reservation": r.id, "campaign": r.campaign, "member": r.member, "node": r.node}),
    ))
}

/// `PUT /api/v2/agents/{id}/accept`: the agent takes the previewed member.
pub async fn accept(
    State(st): St,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Res {
    answer_offer(&st, &caller, &id, |reservation| AgentMessage::Accept {
        reservation,
    })
    .await
}

/// `PUT /api/v2/agents/{id}/skip`: the agent passes the previewed member (it goes back, no try counted).
pub async fn skip(
    State(st): St,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
) -> Res {
    answer_offer(&st, &caller, &id, |reservation| AgentMessage::Skip {
        reservation,
    })
    .await
}

/// Whether agent view `v` is handling (or last handled) the member's call.
fn handles(v: &AgentView, campaign: &str, member: MemberId) -> bool {
    v.reservations
        .iter()
        .any(|r| r.campaign == campaign && r.member == member)
        || v.last_call
            .as_ref()
            .is_some_and(|c| c.campaign == campaign && c.member == member)
}

/// The instant the result callback asks the member to be called again at (`next_communication`, RFC 3339), if any.
/// Refused: an instant that does not parse, one in the past, or one given with `next_after_sec` (two answers to
/// one question).
fn next_call_at(
    input: &ResultInput,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let Some(text) = &input.next_communication else {
        return Ok(None);
    };
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            ApiError::unprocessable(format!(
                "next_communication: {:?} is not an RFC 3339 instant such as 2024-03-04T15:30:00+02:00 ({e})",
                text.chars().take(64).collect::<String>()
            ))
        })?
        .with_timezone(&chrono::Utc);
    if at < now {
        return Err(ApiError::unprocessable(format!(
            "next_communication: {text} is in the past"
        )));
    }
    if input.next_after_sec.is_some() {
        return Err(ApiError::unprocessable(
            "next_communication and next_after_sec: give one of them",
        ));
    }
    Ok(Some(at))
}

/// `PUT /api/v2/dialer/{id}/members/{mid}/status`: the result of an agent call. Posted to the node holding the
/// member's attempt; ends the agent's wrap-up. 409 when the member has no attempt in progress.
/// `next_communication` and `reset_retries` are kept with the attempt in the store (`Store::follow_up`).
pub async fn result(
    State(st): St,
    Extension(caller): Extension<Caller>,
    ApiPath((campaign, mid)): ApiPath<(String, u64)>,
    headers: HeaderMap,
    b: Body,
) -> Res {
    let member = MemberId(mid);
    let input: ResultInput = body(&st, &headers, b, false)
        .await?
        .ok_or_else(|| ApiError::bad_request("body: empty"))?;
    let now = st.now();
    let next_at = next_call_at(&input, now)?;
    if input.description.as_ref().is_some_and(|d| d.len() > 1000) {
        return Err(ApiError::unprocessable("description: at most 1000 bytes"));
    }
    let agent = match caller.role {
        Role::Agent => {
            let id = caller.agent.clone().unwrap_or_default();
            if input.agent.as_ref().is_some_and(|a| *a != id) {
                return Err(ApiError::forbidden(format!(
                    "agent: an agent key gives results only as {id:?}"
                )));
            }
            let v = view_of(&st, &id).await?;
            if !handles(&v, &campaign, member) {
                return Err(ApiError::forbidden(format!(
                    "agent {id:?} is not handling member {mid} of campaign {campaign:?}"
                )));
            }
            Some(id)
        }
        Role::Admin | Role::MembersWriter => match input.agent.clone() {
            Some(a) => Some(a),
            None => st
                .store
                .agents(now)
                .await?
                .into_iter()
                .find(|v| handles(v, &campaign, member))
                .map(|v| v.agent.id),
        },
        // The route table admits no read-only key here; refused all the same (fail closed).
        Role::ReadOnly => {
            return Err(ApiError::forbidden(format!(
                "key {:?} has role read-only; giving a result needs members-writer, admin or the agent's key",
                caller.key
            )));
        }
    };
    let m = st.store.get(&campaign, member).await?.ok_or_else(|| {
        ApiError::not_found(format!("member {mid} of campaign {campaign:?} not found"))
    })?;
    let Some(attempt) = m.current_attempt else {
        return Err(ApiError::conflict(format!(
            "member {mid} of campaign {campaign:?} has no attempt in progress: a result is given while its call or wrap-up lasts"
        )));
    };
    let Some(node) = st.store.attempt_holder(&campaign, attempt).await? else {
        return Err(ApiError::conflict(format!(
            "attempt {attempt} of member {mid} is held by no engine node (it just ended or was recovered)"
        )));
    };
    // The follow-up is kept with the attempt in the store, and its completion applies it (`store::outcome`),
    // whichever node completes it.
    if next_at.is_some() || input.reset_retries {
        let follow_up = FollowUp {
            next_at,
            reset_tries: input.reset_retries,
        };
        if st
            .store
            .follow_up(&campaign, member, attempt, &follow_up)
            .await?
            == FollowUpOutcome::NotCurrent
        {
            return Err(ApiError::conflict(format!(
                "attempt {attempt} of member {mid} just ended: next_communication and reset_retries apply to the attempt in progress"
            )));
        }
    }
    let msg = AgentMessage::Result {
        campaign: campaign.clone(),
        member,
        attempt,
        result: AgentResult {
            success: input.success,
            next_after_sec: input.next_after_sec,
            next_communication: input.next_communication,
            stop_communications: input.stop_communications,
            reset_retries: input.reset_retries,
            description: input.description,
            agent: agent.clone(),
        },
    };
    st.store.post_agent_message(&node, &msg).await?;
    let wrap_up_ended = match &agent {
        Some(a) => st.store.end_wrap_up(a, now).await?,
        None => false,
    };
    Ok(ok(json!({
        "_id": mid,
        "attempt_id": attempt,
        "node": node,
        "agent": agent,
        "wrap_up_ended": wrap_up_ended,
    })))
}
