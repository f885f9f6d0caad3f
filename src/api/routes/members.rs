//! Member routes: add (one or many, `autoRun`), list, count, read, change, delete, terminate, reset, attempts.

use super::super::ApiState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, ApiQuery, parse_json, read_body};
use super::super::reply::{ok, ok_info};
use super::super::validate;
use super::super::views;
use crate::store::{AddOutcome, ChangeOutcome, ListQuery, MemberId, MemberState, TerminateOutcome};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<ApiState>>;
type Res = Result<Json<Value>, ApiError>;

/// Largest page of `GET .../members`.
pub const MAX_PAGE: usize = 10_000;
/// Page size when `limit` is not given.
pub const DEFAULT_PAGE: usize = 100;
/// Most members `page` may skip: each skipped member is read from the store, so a far page would walk the whole
/// campaign on every request. Beyond it, page with `after`.
pub const MAX_SKIP: usize = 100_000;

pub(super) fn member_id(raw: &str) -> Result<MemberId, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .map(MemberId)
        .ok_or_else(|| {
            ApiError::bad_request(format!("member id {raw:?}: must be a positive integer"))
        })
}

fn member_not_found(campaign: &str, id: MemberId) -> ApiError {
    ApiError::not_found(format!("member {id} not found in campaign {campaign:?}"))
}

pub(super) fn parse_bool(name: &str, v: Option<&str>) -> Result<bool, ApiError> {
    match v {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name}: {other:?} is not a boolean (true or false)"
        ))),
    }
}

fn parse_usize(name: &str, v: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match v {
        None | Some("") => Ok(default),
        Some(s) => s.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "{name}: {:?} is not a non-negative integer",
                crate::text::prefix(s)
            ))
        }),
    }
}

#[derive(Debug, Deserialize)]
pub struct AddParams {
    #[serde(rename = "autoRun")]
    auto_run: Option<String>,
}

fn outcome_json(o: AddOutcome) -> Value {
    let result = match o {
        AddOutcome::Added(_) => "added",
        AddOutcome::Updated(_) => "updated",
        AddOutcome::InCall(_) => "in_call",
    };
    json!({"_id": o.id().to_string(), "id": o.id().0, "result": result})
}

/// `POST /api/v2/dialer/{id}/members[?autoRun=true]`: one member object or an array. Every member is validated
/// before anything is written: one bad member refuses the whole request (422, each problem with its path).
pub async fn add(
    State(st): St,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<AddParams>,
    headers: HeaderMap,
    body: Body,
) -> Res {
    let auto_run = parse_bool("autoRun", q.auto_run.as_deref())?;
    st.registry.require(&id).await?;
    let bytes = read_body(&headers, body, st.config.max_body_bytes).await?;
    let value = parse_json(&bytes, st.config.http.max_json_depth)?;
    let (members, array) =
        validate::members(&value, &st.config.member_limits).map_err(|errors| {
            ApiError::unprocessable(validate::join(&errors)).with_errors(
                errors
                    .iter()
                    .map(|e| json!({"path": e.path, "error": e.message}))
                    .collect(),
            )
        })?;
    let outcomes = st.store.add(&id, &members, st.now()).await?;
    if auto_run {
        st.registry.set_run(&id, true).await?;
    }
    st.engine().wake(&id).await?;
    let out: Vec<Value> = outcomes.into_iter().map(outcome_json).collect();
    if array {
        Ok(ok(out))
    } else {
        Ok(ok(out.into_iter().next().unwrap_or(Value::Null)))
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    limit: Option<String>,
    page: Option<String>,
    sort: Option<String>,
    state: Option<String>,
    end_cause: Option<String>,
    after: Option<String>,
    name: Option<String>,
}

/// Longest `name` a member search takes (characters).
pub const MAX_NAME_QUERY: usize = 100;
/// Member ids one search by name examines at most per request; when it stops there, `next` goes on.
pub const NAME_SEARCH_SPAN: u64 = 100_000;

/// The `name` filter: trimmed, 1 to [`MAX_NAME_QUERY`] characters; empty = no filter.
fn parse_name(v: Option<&str>) -> Result<Option<String>, ApiError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) if n.chars().count() > MAX_NAME_QUERY => Err(ApiError::bad_request(format!(
            "name: at most {MAX_NAME_QUERY} characters"
        ))),
        Some(n) => Ok(Some(n.to_owned())),
    }
}

fn parse_state(v: Option<&str>) -> Result<Option<MemberState>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some("waiting") => Ok(Some(MemberState::Waiting)),
        Some("active") => Ok(Some(MemberState::Active)),
        Some("ended") => Ok(Some(MemberState::Ended)),
        Some(other) => Err(ApiError::bad_request(format!(
            "state: {:?} is not a member state (waiting, active or ended)",
            crate::text::prefix(other)
        ))),
    }
}

/// `GET /api/v2/dialer/{id}/members?limit&page&sort&state&end_cause&after&name`: members in id order. `page`
/// (from 1) skips `(page-1)*limit` matching members; `after` (the previous answer's `next`) is the cheap way to
/// page. `name` searches: members whose name contains it (ASCII letters case-insensitive), at most `limit`; one
/// request examines at most [`NAME_SEARCH_SPAN`] member ids, so a search that matches few answers what it found
/// with `next` (go on with `after=next`; `next` null: the whole campaign was searched). With `name`, page with
/// `after`, not `page`.
pub async fn list(
    State(st): St,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Res {
    st.registry.require(&id).await?;
    let limit = parse_usize("limit", q.limit.as_deref(), DEFAULT_PAGE)?;
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit: must be 1 to {MAX_PAGE}"
        )));
    }
    let page = parse_usize("page", q.page.as_deref(), 1)?;
    if page == 0 {
        return Err(ApiError::bad_request("page: pages are numbered from 1"));
    }
    match q.sort.as_deref() {
        None | Some("") | Some("id") | Some("_id") | Some("id=1") | Some("_id=1") | Some("+id") => {
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sort: {:?} is not supported; members are listed in ascending id order (sort=id)",
                crate::text::prefix(other)
            )));
        }
    }
    let after = match q.after.as_deref() {
        None | Some("") => None,
        Some(s) => Some(member_id(s).map_err(|_| {
            ApiError::bad_request(format!(
                "after: {:?} is not a member id",
                crate::text::prefix(s)
            ))
        })?),
    };
    let mut query = ListQuery {
        state: parse_state(q.state.as_deref())?,
        end_cause: q.end_cause.filter(|c| !c.is_empty()),
        after,
        limit,
        name: parse_name(q.name.as_deref())?,
        max_examined: None,
    };
    if query.name.is_some() {
        if page > 1 {
            return Err(ApiError::bad_request(
                "page: a search by name pages with after=<the previous answer's next>",
            ));
        }
        query.max_examined = Some(NAME_SEARCH_SPAN);
    }
    let mut skip = (page - 1).saturating_mul(limit);
    if skip > MAX_SKIP {
        return Err(ApiError::bad_request(format!(
            "page: skips {skip} members, more than {MAX_SKIP}; page with after=<the previous answer's next> instead"
        )));
    }
    let mut out = Vec::with_capacity(limit);
    let next = loop {
        let want = if skip > 0 {
            skip.min(MAX_PAGE)
        } else {
            limit - out.len()
        };
        query.limit = want;
        let p = st.store.list(&id, &query).await?;
        let got = p.members.len();
        if skip > 0 {
            skip -= got.min(skip);
        } else {
            out.extend(p.members.iter().map(|m| views::member(&id, m)));
        }
        match p.next {
            None => break None,
            Some(n) if skip == 0 && (out.len() >= limit || query.max_examined.is_some()) => {
                break Some(n);
            }
            Some(n) => query.after = Some(n),
        }
    };
    Ok(Json(
        json!({"status": "OK", "data": out, "next": next.map(|n| n.0)}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct CountParams {
    state: Option<String>,
    end_cause: Option<String>,
}

/// `GET /api/v2/dialer/{id}/members/count?state&end_cause`
pub async fn count(
    State(st): St,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CountParams>,
) -> Res {
    st.registry.require(&id).await?;
    let state = parse_state(q.state.as_deref())?;
    let c = st.store.counts(&id).await?;
    let n = match (state, q.end_cause.as_deref().filter(|s| !s.is_empty())) {
        (None, None) => c.waiting + c.active + c.ended,
        (Some(MemberState::Waiting), None) => c.waiting,
        (Some(MemberState::Active), None) => c.active,
        (Some(MemberState::Ended), None) => c.ended,
        (None | Some(MemberState::Ended), Some(cause)) => {
            c.ended_by_cause.get(cause).copied().unwrap_or(0)
        }
        (Some(_), Some(_)) => 0,
    };
    Ok(ok(n))
}

/// `GET /api/v2/dialer/{id}/members/{mid}`
pub async fn get(State(st): St, ApiPath((id, mid)): ApiPath<(String, String)>) -> Res {
    st.registry.require(&id).await?;
    let mid = member_id(&mid)?;
    let m = st
        .store
        .get(&id, mid)
        .await?
        .ok_or_else(|| member_not_found(&id, mid))?;
    Ok(ok(views::member(&id, &m)))
}

/// A stored member in the input form (what a PUT body is merged onto).
fn input_form(m: &crate::store::Member) -> Value {
    let comms: Vec<Value> = m
        .communications
        .iter()
        .map(|c| json!({"number": c.number, "priority": c.priority, "description": c.description, "type": c.kind}))
        .collect();
    json!({
        "name": m.name,
        "priority": m.priority,
        "timezone": m.timezone,
        "expire": m.expire.map(|t| t.to_rfc3339()),
        "variables": m.variables,
        "communications": comms,
        "external_id": m.external_id,
    })
}

/// `PUT /api/v2/dialer/{id}/members/{mid}`: the fields given replace the member's (Webitel's partial update; a
/// whole member, or a member read with GET, works too); the result is validated as a whole. 409 while the member
/// is in a call.
pub async fn update(
    State(st): St,
    ApiPath((id, mid)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Res {
    st.registry.require(&id).await?;
    let mid = member_id(&mid)?;
    let bytes = read_body(&headers, body, st.config.max_body_bytes).await?;
    let patch = match parse_json(&bytes, st.config.http.max_json_depth)? {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(ApiError::unprocessable(
                "body: expected one member object, got an array",
            ));
        }
        _ => return Err(ApiError::unprocessable("body: expected a member object")),
    };
    let current = st
        .store
        .get(&id, mid)
        .await?
        .ok_or_else(|| member_not_found(&id, mid))?;
    let mut merged = input_form(&current);
    for (k, v) in patch {
        merged[k] = v;
    }
    let m = validate::member("", &merged, &st.config.member_limits)
        .map_err(|errors| ApiError::unprocessable(validate::join(&errors)))?;
    match st.store.update(&id, mid, &m, st.now()).await? {
        ChangeOutcome::Done => {}
        ChangeOutcome::InCall => {
            return Err(ApiError::conflict(format!(
                "member {mid} is in a call; retry when it ends (or terminate it first)"
            )));
        }
        ChangeOutcome::NotFound => return Err(member_not_found(&id, mid)),
    }
    st.engine().wake(&id).await?;
    let m = st
        .store
        .get(&id, mid)
        .await?
        .ok_or_else(|| member_not_found(&id, mid))?;
    Ok(ok(views::member(&id, &m)))
}

/// `DELETE /api/v2/dialer/{id}/members/{mid}` (409 while it is in a call).
pub async fn delete(State(st): St, ApiPath((id, mid)): ApiPath<(String, String)>) -> Res {
    st.registry.require(&id).await?;
    let mid = member_id(&mid)?;
    match st.store.delete(&id, mid).await? {
        ChangeOutcome::Done => Ok(ok(json!({"_id": mid.to_string(), "deleted": true}))),
        ChangeOutcome::InCall => Err(ApiError::conflict(format!(
            "member {mid} is in a call; retry when it ends (or terminate it first)"
        ))),
        ChangeOutcome::NotFound => Err(member_not_found(&id, mid)),
    }
}

/// `PUT /api/v2/dialer/{id}/members/{mid}/terminate`: ends the member with MANAGER_REQUEST. A call in progress
/// is hung up by the engine that holds it (at its next lease renewal); the member ends when that call completes.
pub async fn terminate(State(st): St, ApiPath((id, mid)): ApiPath<(String, String)>) -> Res {
    st.registry.require(&id).await?;
    let mid = member_id(&mid)?;
    let v = match st.store.terminate(&id, mid).await? {
        TerminateOutcome::Terminated => json!({"_id": mid.to_string(), "result": "terminated"}),
        TerminateOutcome::KillCall { attempt_id, node } => json!({
            "_id": mid.to_string(), "result": "call_ending", "attempt_id": attempt_id, "node": node
        }),
        TerminateOutcome::AlreadyEnded => {
            json!({"_id": mid.to_string(), "result": "already_ended"})
        }
        TerminateOutcome::NotFound => return Err(member_not_found(&id, mid)),
    };
    Ok(ok(v))
}

/// `PUT /api/v2/dialer/{id}/members/reset`: revives every ended, unsuccessful member; answers how many.
pub async fn reset(State(st): St, ApiPath(id): ApiPath<String>) -> Res {
    st.registry.require(&id).await?;
    let n = st.store.reset(&id, st.now()).await?;
    st.engine().wake(&id).await?;
    Ok(ok_info(n))
}

/// `GET /api/v2/dialer/{id}/members/{mid}/attempts`: the member's attempts, oldest first (SPEC §10).
pub async fn attempts(State(st): St, ApiPath((id, mid)): ApiPath<(String, String)>) -> Res {
    st.registry.require(&id).await?;
    let mid = member_id(&mid)?;
    if st.store.get(&id, mid).await?.is_none() {
        return Err(member_not_found(&id, mid));
    }
    Ok(ok(st.store.attempts(&id, mid).await?))
}
