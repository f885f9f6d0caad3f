//! The do-not-call routes (issue 21): the global list under `/api/v2/dnc`, a campaign's under
//! `/api/v2/dialer/{id}/dnc`. Add and remove take `{"numbers": [...], "prefixes": [...]}` (every entry is
//! normalised first; one bad entry refuses the whole request with 422 naming it); `check/{number}` says which lists
//! hold a number; the list's `GET` gives its sizes; `import` streams a CSV of any size into the list
//! (`dnc::load`); `export.csv` streams it out.
//!
//! Normalisation: a campaign's list uses the campaign's `e164` rule; the global list uses the rule given in the
//! body (`"e164": {...}`) or the query (`country_code`, `trunk_prefix`, `international_prefix`), none by default
//! (numbers must then be international). A check with `?campaign=ID` uses that campaign's rule and looks in its list
//! too.

use super::super::ApiState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, ApiQuery, parse_json, read_body};
use super::super::reply::ok;
use crate::dnc::load::{DncImportError, import_stream};
use crate::dnc::{DncKind, DncList, E164Rule, NormalizedNumber};
use crate::store::DncChange;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::SinkExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type St = State<Arc<ApiState>>;
type Res = Result<Json<Value>, ApiError>;

/// Entries of one export page.
const EXPORT_PAGE: usize = 5_000;

/// The body of add and remove.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entries {
    #[serde(default)]
    numbers: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
    /// The global list's rule for this request (a campaign's list uses the campaign's).
    #[serde(default)]
    e164: Option<E164Rule>,
}

/// The rule given in the query.
#[derive(Debug, Deserialize)]
pub struct RuleQuery {
    country_code: Option<String>,
    trunk_prefix: Option<String>,
    international_prefix: Option<String>,
    campaign: Option<String>,
}

impl RuleQuery {
    fn rule(&self) -> Result<E164Rule, ApiError> {
        checked(E164Rule {
            country_code: self.country_code.clone(),
            trunk_prefix: self.trunk_prefix.clone(),
            international_prefix: self.international_prefix.clone(),
        })
    }
}

fn checked(rule: E164Rule) -> Result<E164Rule, ApiError> {
    rule.check()
        .map_err(|(field, message)| ApiError::bad_request(format!("e164.{field}: {message}")))?;
    Ok(rule)
}

/// The campaign's rule (404 for an unknown campaign).
async fn campaign_rule(st: &ApiState, id: &str) -> Result<E164Rule, ApiError> {
    let doc = st.registry.get(id).await?;
    Ok(doc.config.e164.clone().unwrap_or_default())
}

/// Both parts of a body, normalised; every bad entry named.
fn normalise(
    e: &Entries,
    rule: &E164Rule,
) -> Result<[(DncKind, Vec<NormalizedNumber>); 2], ApiError> {
    if e.numbers.is_empty() && e.prefixes.is_empty() {
        return Err(ApiError::bad_request(
            "body: give \"numbers\" and/or \"prefixes\" (arrays of strings)",
        ));
    }
    let mut errors = Vec::new();
    let mut read = |field: &str, list: &[String], kind: DncKind| -> Vec<NormalizedNumber> {
        list.iter()
            .enumerate()
            .filter_map(|(i, text)| {
                let n = match kind {
                    DncKind::Number => rule.normalize(text),
                    DncKind::Prefix => rule.normalize_prefix(text),
                };
                n.map_err(|err| {
                    errors
                        .push(json!({"path": format!("{field}[{i}]"), "message": err.to_string()}))
                })
                .ok()
            })
            .collect()
    };
    let numbers = read("numbers", &e.numbers, DncKind::Number);
    let prefixes = read("prefixes", &e.prefixes, DncKind::Prefix);
    if !errors.is_empty() {
        return Err(ApiError::unprocessable(format!(
            "{} entries are not phone numbers; nothing was changed",
            errors.len()
        ))
        .with_errors(Value::Array(errors)));
    }
    Ok([(DncKind::Number, numbers), (DncKind::Prefix, prefixes)])
}

/// What a request's method does to a list: `POST` adds, `DELETE` removes (the routes take no other).
fn change_of(method: &Method) -> Result<DncChange, ApiError> {
    match *method {
        Method::POST => Ok(DncChange::Add),
        Method::DELETE => Ok(DncChange::Remove),
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method}: a do-not-call list takes POST (add) or DELETE (remove)"),
        )),
    }
}

/// Adds a request's entries to a list or removes them: the global list (`campaign` none; the rule from the body)
/// or a campaign's (its own rule; a rule in the body is refused). Answers the changed counts and the list's sizes.
async fn change(
    st: &ApiState,
    method: &Method,
    campaign: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Res {
    let change = change_of(method)?;
    let (list, rule, body) = match campaign {
        None => {
            let e = entries(st, headers, body).await?;
            let rule = checked(e.e164.clone().unwrap_or_default())?;
            (DncList::Global, rule, e)
        }
        Some(id) => {
            let rule = campaign_rule(st, &id).await?;
            let e = entries(st, headers, body).await?;
            if e.e164.is_some() {
                return Err(ApiError::bad_request(
                    "body: e164: a campaign's list uses the campaign's own e164 rule",
                ));
            }
            (DncList::Campaign(id), rule, e)
        }
    };
    let [(_, numbers), (_, prefixes)] = normalise(&body, &rule)?;
    let mut changed = [0u64; 2];
    for (slot, (kind, entries)) in [(DncKind::Number, numbers), (DncKind::Prefix, prefixes)]
        .into_iter()
        .enumerate()
    {
        for batch in entries.chunks(crate::dnc::load::BATCH) {
            changed[slot] += st.store.dnc_change(change, &list, kind, batch).await?;
        }
    }
    let verb = match change {
        DncChange::Add => "added",
        DncChange::Remove => "removed",
    };
    Ok(ok(json!({
        "list": list.name(),
        verb: {"numbers": changed[0], "prefixes": changed[1]},
        "sizes": st.store.dnc_sizes(&list).await?,
    })))
}

async fn entries(st: &ApiState, headers: &HeaderMap, body: Body) -> Result<Entries, ApiError> {
    let bytes = read_body(headers, body, st.config.max_body_bytes).await?;
    let v = parse_json(&bytes, st.config.http.max_json_depth)?;
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("body: {e}")))
}

/// `POST|DELETE /api/v2/dnc`
pub async fn change_global(State(st): St, method: Method, headers: HeaderMap, body: Body) -> Res {
    change(&st, &method, None, &headers, body).await
}

/// `POST|DELETE /api/v2/dialer/{id}/dnc`
pub async fn change_campaign(
    State(st): St,
    method: Method,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Res {
    change(&st, &method, Some(id), &headers, body).await
}

/// `GET /api/v2/dnc/check/{number}?campaign&country_code&trunk_prefix&international_prefix`
pub async fn check(
    State(st): St,
    ApiPath(number): ApiPath<String>,
    ApiQuery(q): ApiQuery<RuleQuery>,
) -> Res {
    let rule = match &q.campaign {
        Some(id) => campaign_rule(&st, id).await?,
        None => q.rule()?,
    };
    let n = rule
        .normalize(&number)
        .map_err(|e| ApiError::bad_request(format!("number: {e}")))?;
    let lists = match &q.campaign {
        Some(id) => st.store.dnc_check(id, &n).await?,
        None => st
            .store
            .dnc_lookup(&DncList::Global, &n)
            .await?
            .into_iter()
            .collect(),
    };
    Ok(ok(json!({
        "number": number,
        "normalized": n.to_string(),
        "listed": !lists.is_empty(),
        "lists": lists,
    })))
}

/// `GET /api/v2/dnc`
pub async fn sizes_global(State(st): St) -> Res {
    Ok(ok(
        json!({"list": "global", "sizes": st.store.dnc_sizes(&DncList::Global).await?}),
    ))
}

/// `GET /api/v2/dialer/{id}/dnc`
pub async fn sizes_campaign(State(st): St, ApiPath(id): ApiPath<String>) -> Res {
    st.registry.require(&id).await?;
    let list = DncList::Campaign(id);
    Ok(ok(
        json!({"list": list.name(), "sizes": st.store.dnc_sizes(&list).await?}),
    ))
}

async fn import(st: &ApiState, list: DncList, rule: E164Rule, body: Body) -> Res {
    let stream = body.into_data_stream();
    let report = import_stream(&st.store, &list, rule, stream, st.config.max_import_bytes)
        .await
        .map_err(|e| {
            let message = e.to_string();
            match e {
                DncImportError::TooLarge { limit } => ApiError::too_large(limit as usize),
                DncImportError::Body { .. } => ApiError::bad_request(message),
                DncImportError::Store { source, .. } => {
                    ApiError::new(ApiError::from(source).status, message)
                }
            }
        })?;
    Ok(ok(
        json!({"list": list.name(), "import": report, "sizes": st.store.dnc_sizes(&list).await?}),
    ))
}

/// `POST /api/v2/dnc/import?country_code&trunk_prefix&international_prefix`: a CSV body.
pub async fn import_global(State(st): St, ApiQuery(q): ApiQuery<RuleQuery>, body: Body) -> Res {
    let rule = q.rule()?;
    import(&st, DncList::Global, rule, body).await
}

/// `POST /api/v2/dialer/{id}/dnc/import`: a CSV body, normalised with the campaign's rule.
pub async fn import_campaign(State(st): St, ApiPath(id): ApiPath<String>, body: Body) -> Res {
    let rule = campaign_rule(&st, &id).await?;
    import(&st, DncList::Campaign(id), rule, body).await
}

/// Streams a list as CSV (`number,kind`): international digits without the `+`, so a spreadsheet reads them as
/// text-safe numbers and an import (any rule) reads them back as the same entries.
fn export(st: &ApiState, list: DncList) -> Response {
    let store = st.store.clone();
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let name = format!("dnc-{}.csv", list.name().replace(':', "-"));
    tokio::spawn(async move {
        if tx
            .send(Ok(Bytes::from_static(b"number,kind\n")))
            .await
            .is_err()
        {
            return;
        }
        for kind in [DncKind::Number, DncKind::Prefix] {
            let mut cursor: Option<String> = None;
            loop {
                let page = match store
                    .dnc_page(&list, kind, cursor.as_deref(), EXPORT_PAGE)
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return;
                    }
                };
                let mut text = String::with_capacity(page.entries.len() * 20);
                for e in &page.entries {
                    text.push_str(e);
                    text.push(',');
                    text.push_str(kind.as_str());
                    text.push('\n');
                }
                if !text.is_empty() && tx.send(Ok(Bytes::from(text))).await.is_err() {
                    return;
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    });
    let mut r = Body::from_stream(rx).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    *r.status_mut() = StatusCode::OK;
    r
}

/// `GET /api/v2/dnc/export.csv`
pub async fn export_global(State(st): St) -> Response {
    export(&st, DncList::Global)
}

/// `GET /api/v2/dialer/{id}/dnc/export.csv`
pub async fn export_campaign(
    State(st): St,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    st.registry.require(&id).await?;
    Ok(export(&st, DncList::Campaign(id)))
}
