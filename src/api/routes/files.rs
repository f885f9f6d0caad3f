//! File routes: CSV import of members, and the CSV exports of members and attempts (SPEC §9, §10).
//!
//! Exports stream: the answer is written page by page as the store is read, so a campaign of millions of members
//! is exported in constant memory. The members export has the import's column names (`name`, `number_1`,
//! `var_x`…) plus read-only columns (`id`, `state`, `tries`, `state_1`…) that the import ignores, so an export can
//! be edited and imported again. A store failure half-way through an export cuts the answer short (the status
//! line is already sent); the error is logged. Every exported cell is made safe for spreadsheets
//! ([`crate::api::spreadsheet`]).
//!
//! An upload is spooled to a temporary file (the import reads it twice with `all_or_nothing`), so it cannot fill
//! the disk: it must fit under `max_import_bytes`, and the temporary folder must keep `min_free_disk_bytes` free —
//! checked before the upload (against its declared length) and again every [`DISK_CHECK_EVERY`] bytes written;
//! otherwise **507** and the partial file is removed.

use super::super::ApiState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, ApiQuery};
use super::super::import::{self, ImportError, ImportOptions, detect};
use super::super::reply::ok;
use super::members::parse_bool;
use crate::store::{ListQuery, Member, MemberFate, Store};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

type St = State<Arc<ApiState>>;

/// A temporary file holding an upload; removed when dropped.
struct Spool {
    path: PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How often (in bytes written) an upload checks the free disk space again.
pub const DISK_CHECK_EVERY: u64 = 8 << 20;

/// Refuses with 507 unless the file system of `dir` has room for `more` bytes while keeping `reserve` free.
fn disk_room(dir: &std::path::Path, reserve: u64, more: u64) -> Result<(), ApiError> {
    let st = rustix::fs::statvfs(dir).map_err(|e| {
        ApiError::internal(format!(
            "cannot read the free space of {}: {e}",
            dir.display()
        ))
    })?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    if free < reserve.saturating_add(more) {
        return Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!(
                "body: not enough free disk space for the upload ({free} bytes free, {more} more needed, \
                 {reserve} kept free)"
            ),
        ));
    }
    Ok(())
}

async fn spool(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
    reserve: u64,
) -> Result<(Spool, u64), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit as usize));
    }
    let dir = std::env::temp_dir();
    disk_room(&dir, reserve, declared.unwrap_or(0))?;
    let spool = Spool {
        path: dir.join(format!(
            "fsdialer-import-{}.csv",
            uuid::Uuid::new_v4().simple()
        )),
    };
    let file = tokio::fs::File::create(&spool.path).await.map_err(|e| {
        ApiError::internal(format!(
            "cannot create a temporary file for the upload: {e}"
        ))
    })?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(crate::api::extract::body_error)?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(ApiError::too_large(limit as usize));
        }
        out.write_all(&chunk).await.map_err(|e| {
            ApiError::internal(format!("writing the upload to a temporary file: {e}"))
        })?;
        if (total - chunk.len() as u64) / DISK_CHECK_EVERY != total / DISK_CHECK_EVERY {
            disk_room(&dir, reserve, 0)?;
        }
    }
    out.flush()
        .await
        .map_err(|e| ApiError::internal(format!("writing the upload to a temporary file: {e}")))?;
    Ok((spool, total))
}

#[derive(Debug, Deserialize)]
pub struct ImportParams {
    delimiter: Option<String>,
    encoding: Option<String>,
    all_or_nothing: Option<String>,
    #[serde(rename = "autoRun")]
    auto_run: Option<String>,
}

/// `POST /api/v2/dialer/{id}/members/import?delimiter&encoding&all_or_nothing&autoRun`: a CSV body (SPEC §9).
pub async fn import(
    State(st): St,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ImportParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let delimiter = detect::parse_delimiter(q.delimiter.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("delimiter: {e}")))?;
    let encoding = detect::Encoding::parse(q.encoding.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("encoding: {e}")))?;
    let all_or_nothing = parse_bool("all_or_nothing", q.all_or_nothing.as_deref())?;
    let auto_run = parse_bool("autoRun", q.auto_run.as_deref())?;
    st.registry.require(&id).await?;
    let (file, size) = spool(
        &headers,
        body,
        st.config.max_import_bytes,
        st.config.min_free_disk_bytes,
    )
    .await?;
    if size == 0 {
        return Err(ApiError::bad_request(
            "body: empty; a CSV file with a header row is expected",
        ));
    }
    let opts = ImportOptions {
        format: import::rows::Format {
            delimiter,
            encoding,
        },
        all_or_nothing,
        limits: st.config.member_limits,
    };
    let report = import::import_file(&st.store, &id, &file.path, opts, st.now(), None)
        .await
        .map_err(|e| match e {
            ImportError::File(import::rows::FileError::Io(_))
            | ImportError::Open { .. }
            | ImportError::Task(_) => ApiError::internal(e.to_string()),
            ImportError::File(_) => ApiError::bad_request(e.to_string()),
            ImportError::Rejected(ref r) => {
                let errors = serde_json::to_value(&r.errors).unwrap_or(Value::Null);
                ApiError::unprocessable(e.to_string()).with_errors(errors)
            }
            ImportError::Store { ref source, .. } => {
                let status = match source {
                    crate::store::StoreError::Redis { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    crate::store::StoreError::InvalidMember { .. } => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                ApiError::new(status, e.to_string())
            }
        })?;
    if auto_run {
        st.registry.set_run(&id, true).await?;
    }
    st.engine().wake(&id).await?;
    Ok(ok(report))
}

fn csv_response(name: &str, body: Body) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// Pages through every member of a campaign.
async fn each_member(
    store: &Store,
    campaign: &str,
    mut f: impl FnMut(Vec<Member>) -> futures::future::BoxFuture<'static, bool>,
) -> Result<(), crate::store::StoreError> {
    let mut q = ListQuery {
        limit: 1000,
        ..Default::default()
    };
    loop {
        let page = store.list(campaign, &q).await?;
        if !page.members.is_empty() && !f(page.members).await {
            return Ok(());
        }
        match page.next {
            Some(n) => q.after = Some(n),
            None => return Ok(()),
        }
    }
}

type Tx = futures::channel::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Rows as CSV, every cell [`neutralise`](crate::api::spreadsheet::neutralise)d: all exports go through here.
fn csv_chunk(rows: &[Vec<String>]) -> Bytes {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    for r in rows {
        let _ = w.write_record(
            r.iter()
                .map(|c| crate::api::spreadsheet::neutralise(c).into_owned()),
        );
    }
    Bytes::from(w.into_inner().unwrap_or_default())
}

fn opt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

const MEMBER_COLUMNS: &[&str] = &[
    "id",
    "name",
    "priority",
    "timezone",
    "expire",
    "external_id",
    "state",
    "tries",
    "attempts",
    "end_cause",
    "success",
    "next_due",
];
const NUMBER_COLUMNS: &[&str] = &[
    "number",
    "priority",
    "description",
    "type",
    "state",
    "attempts",
    "last_call_at",
    "last_cause",
];

fn member_row(m: &Member, numbers: usize, vars: &[String]) -> Vec<String> {
    let mut r = vec![
        m.id.to_string(),
        m.name.clone(),
        m.priority.to_string(),
        m.timezone.clone().unwrap_or_default(),
        opt_time(m.expire),
        m.external_id.clone().unwrap_or_default(),
        json!(m.state).as_str().unwrap_or_default().to_string(),
        m.tries.to_string(),
        m.attempts.to_string(),
        m.end_cause.clone().unwrap_or_default(),
        m.success.to_string(),
        opt_time(m.next_due),
    ];
    for k in 0..numbers {
        match m.communications.get(k) {
            Some(c) => r.extend([
                c.number.clone(),
                c.priority.to_string(),
                c.description.clone().unwrap_or_default(),
                c.kind.clone().unwrap_or_default(),
                json!(c.state).as_str().unwrap_or_default().to_string(),
                c.attempts.to_string(),
                opt_time(c.last_call_at),
                c.last_cause.clone().unwrap_or_default(),
            ]),
            None => r.extend(std::iter::repeat_n(String::new(), NUMBER_COLUMNS.len())),
        }
    }
    for v in vars {
        r.push(m.variables.get(v).map(scalar).unwrap_or_default());
    }
    r
}

async fn send(tx: &mut Tx, b: Bytes) -> bool {
    tx.send(Ok(b)).await.is_ok()
}

/// `GET /api/v2/dialer/{id}/members/export.csv`
pub async fn export_members(
    State(st): St,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    st.registry.require(&id).await?;
    let store = st.store.clone();
    // First pass: the columns (most numbers of a member, every variable name).
    let shape = Arc::new(std::sync::Mutex::new((1usize, BTreeSet::<String>::new())));
    {
        let shape = shape.clone();
        each_member(&store, &id, move |ms| {
            let mut g = shape.lock().unwrap_or_else(|p| p.into_inner());
            for m in &ms {
                g.0 = g.0.max(m.communications.len());
                for k in m.variables.keys() {
                    if !g.1.contains(k) {
                        g.1.insert(k.clone());
                    }
                }
            }
            Box::pin(async { true })
        })
        .await?;
    }
    let (numbers, vars) = {
        let g = shape.lock().unwrap_or_else(|p| p.into_inner());
        (g.0, g.1.iter().cloned().collect::<Vec<_>>())
    };
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let name = format!("{id}-members.csv");
    tokio::spawn(async move {
        let mut head: Vec<String> = MEMBER_COLUMNS.iter().map(|s| s.to_string()).collect();
        for k in 1..=numbers {
            head.extend(NUMBER_COLUMNS.iter().map(|c| format!("{c}_{k}")));
        }
        head.extend(vars.iter().map(|v| format!("var_{v}")));
        if !send(&mut tx, csv_chunk(&[head])).await {
            return;
        }
        let vars = Arc::new(vars);
        let result = each_member(&store, &id, |ms| {
            let rows: Vec<Vec<String>> = ms.iter().map(|m| member_row(m, numbers, &vars)).collect();
            let mut tx = tx.clone();
            Box::pin(async move { send(&mut tx, csv_chunk(&rows)).await })
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(campaign = %id, error = %e, "members export cut short");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok(csv_response(&name, Body::from_stream(rx)))
}

const ATTEMPT_COLUMNS: &[&str] = &[
    "campaign",
    "member_id",
    "member_name",
    "attempt_no",
    "attempt_id",
    "number_index",
    "number",
    "node",
    "originate_at",
    "answer_at",
    "hangup_at",
    "talk_secs",
    "cause",
    "class",
    "outcome",
    "end_cause",
    "next_due",
    "completed_at",
];

/// `GET /api/v2/dialer/{id}/attempts/export.csv`: every recorded attempt of the campaign (SPEC §10), by member.
pub async fn export_attempts(
    State(st): St,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    st.registry.require(&id).await?;
    let store = st.store.clone();
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let name = format!("{id}-attempts.csv");
    tokio::spawn(async move {
        let head: Vec<String> = ATTEMPT_COLUMNS
            .iter()
            .chain(crate::engine::core::AGENT_EXPORT_COLUMNS.iter())
            .chain(crate::engine::core::AMD_EXPORT_COLUMNS.iter())
            .map(|s| s.to_string())
            .collect();
        if !send(&mut tx, csv_chunk(&[head])).await {
            return;
        }
        let result = each_member(&store, &id, |ms| {
            let store = store.clone();
            let id = id.clone();
            let mut tx = tx.clone();
            Box::pin(async move {
                let mut rows = Vec::new();
                for m in ms.iter().filter(|m| m.attempts > 0) {
                    let attempts = match store.attempts(&id, m.id).await {
                        Ok(a) => a,
                        Err(e) => {
                            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                            return false;
                        }
                    };
                    for a in attempts {
                        let (outcome, end_cause, next_due) = match &a.fate {
                            MemberFate::Ended {
                                cause,
                                success: true,
                            } => ("success", cause.clone(), String::new()),
                            MemberFate::Ended {
                                cause,
                                success: false,
                            } => ("ended", cause.clone(), String::new()),
                            MemberFate::Due(t) => ("due", String::new(), t.to_rfc3339()),
                        };
                        let agent = crate::engine::core::agent_export_cells(a.note.as_deref());
                        let mut row = vec![
                            id.clone(),
                            m.id.to_string(),
                            m.name.clone(),
                            a.attempt_no.to_string(),
                            a.attempt_id.to_string(),
                            (a.comm_index + 1).to_string(),
                            a.number.clone(),
                            a.node.clone(),
                            a.originate_at.to_rfc3339(),
                            opt_time(a.answer_at),
                            opt_time(a.hangup_at),
                            a.talk_secs.to_string(),
                            a.cause.clone(),
                            a.class.as_str().to_string(),
                            outcome.to_string(),
                            end_cause,
                            next_due,
                            a.completed_at.to_rfc3339(),
                        ];
                        row.extend(agent);
                        row.extend(crate::engine::core::amd_export_cells(a.note.as_deref()));
                        rows.push(row);
                    }
                }
                rows.is_empty() || send(&mut tx, csv_chunk(&rows)).await
            })
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(campaign = %id, error = %e, "attempts export cut short");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok(csv_response(&name, Body::from_stream(rx)))
}
