//! CSV import of members (SPEC §9), shared by `POST /api/v2/dialer/{id}/members/import` and `fsdialer import`.
//!
//! The file is read as a stream ([`rows::Rows`]): a blocking task parses rows and hands batches of
//! [`BATCH`] members over a small bounded channel to the async side, which adds them to the store ([`IN_FLIGHT`]
//! batches at once). Memory therefore stays bounded by a few batches whatever the file's size. Bad rows are reported with
//! their line number and reason (the first [`MAX_ERRORS`] are kept, all are counted); good rows are imported —
//! or, with `all_or_nothing`, a first pass validates the whole file and nothing is written unless every row is
//! good (then a second pass imports it). Both passes read the file again rather than keeping it in memory.
//!
//! What "nothing written" covers: validation. A store failure in the middle of an import (Redis going away)
//! leaves the batches before it stored; the error says from which line on rows were not imported. Rows with an
//! `external_id` can simply be imported again (they update instead of duplicating).

pub mod detect;
pub mod header;
pub mod rows;
pub mod transcode;

use crate::campaign::member::MemberLimits;
use crate::store::{AddOutcome, Store, StoreError};
use chrono::{DateTime, Utc};
use detect::Encoding;
use futures::StreamExt;
use rows::{FileError, Format, RowError, Rows};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Members per store call.
pub const BATCH: usize = 5_000;
/// Batches being added to the store at once (each is sent as several pipelined script calls by the store).
pub const IN_FLIGHT: usize = 4;
/// Row errors kept in a report (all are counted).
pub const MAX_ERRORS: usize = 1000;

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    pub format: Format,
    /// Import nothing unless every row is valid.
    pub all_or_nothing: bool,
    /// How much data one member (row) may carry.
    pub limits: MemberLimits,
}

/// Which pass a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `all_or_nothing`'s first pass.
    Validating,
    Importing,
}

/// Called with the phase, the bytes of the file read so far and the rows seen so far.
pub type Progress = Arc<dyn Fn(Phase, u64, u64) + Send + Sync>;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Data rows read (header excluded).
    pub rows: u64,
    /// New members.
    pub added: u64,
    /// Members updated through their `external_id`.
    pub updated: u64,
    /// Members not changed because they are in a call (same `external_id`).
    pub in_call: u64,
    /// Rows refused.
    pub rejected: u64,
    /// The first refused rows, with line numbers.
    pub errors: Vec<RowError>,
    /// More rows were refused than `errors` lists.
    pub errors_truncated: bool,
    pub delimiter: String,
    pub encoding: &'static str,
    /// Whether anything was written (false when `all_or_nothing` refused the file).
    pub written: bool,
}

/// Why an import failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(#[from] FileError),
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `all_or_nothing` and some rows are bad: nothing was written.
    #[error("{} of {} rows are invalid; nothing was imported (all_or_nothing): {}", .0.rejected, .0.rows, first_errors(&.0.errors))]
    Rejected(ImportReport),
    #[error("store, rows from line {from_line} on were not imported: {source}")]
    Store {
        from_line: u64,
        #[source]
        source: StoreError,
    },
    #[error("import task failed: {0}")]
    Task(String),
}

/// The first few row errors as one line.
pub fn first_errors(errors: &[RowError]) -> String {
    let mut s = errors
        .iter()
        .take(5)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if errors.len() > 5 {
        s.push_str("; …");
    }
    s
}

fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".into(),
        d => (d as char).to_string(),
    }
}

struct Batch {
    first_line: u64,
    members: Vec<crate::campaign::member::MemberInput>,
    position: u64,
    rows: u64,
}

struct Summary {
    rows: u64,
    rejected: u64,
    errors: Vec<RowError>,
    encoding: Encoding,
    delimiter: u8,
}

fn open(path: &Path, format: Format) -> Result<Rows<std::fs::File>, ImportError> {
    let f = std::fs::File::open(path).map_err(|source| ImportError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Rows::new(f, format)?)
}

/// Parses the whole file; `sink` gets each good batch (returns false to stop).
fn parse(
    path: &Path,
    format: Format,
    limits: MemberLimits,
    phase: Phase,
    progress: Option<&Progress>,
    mut sink: impl FnMut(Batch) -> bool,
) -> Result<Summary, ImportError> {
    let mut rows = open(path, format)?;
    let mut s = Summary {
        rows: 0,
        rejected: 0,
        errors: Vec::new(),
        encoding: rows.encoding(),
        delimiter: rows.delimiter(),
    };
    let mut batch = Batch {
        first_line: 0,
        members: Vec::with_capacity(BATCH),
        position: 0,
        rows: 0,
    };
    while let Some(next) = rows.next_row() {
        let (line, row) = next?;
        s.rows += 1;
        let row = row.and_then(|m| match limits.check(&m) {
            Ok(()) => Ok(m),
            Err(e) => Err(RowError {
                line,
                error: match e.field() {
                    Some(field) => format!("{field}: {e}"),
                    None => e.to_string(),
                },
            }),
        });
        match row {
            Ok(m) => {
                if batch.members.is_empty() {
                    batch.first_line = line;
                }
                batch.members.push(m);
            }
            Err(e) => {
                s.rejected += 1;
                if s.errors.len() < MAX_ERRORS {
                    s.errors.push(e);
                }
            }
        }
        if batch.members.len() >= BATCH || s.rows.is_multiple_of(BATCH as u64) {
            batch.position = rows.position();
            batch.rows = s.rows;
            if let Some(p) = progress {
                p(phase, batch.position, s.rows);
            }
            if !batch.members.is_empty() {
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        first_line: 0,
                        members: Vec::with_capacity(BATCH),
                        position: 0,
                        rows: 0,
                    },
                );
                if !sink(full) {
                    return Ok(s);
                }
            }
        }
    }
    batch.position = rows.position();
    batch.rows = s.rows;
    if let Some(p) = progress {
        p(phase, batch.position, s.rows);
    }
    if !batch.members.is_empty() {
        sink(batch);
    }
    Ok(s)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImportError> + Send + 'static,
) -> Result<T, ImportError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ImportError::Task(e.to_string()))?
}

/// Imports the CSV file at `path` into `campaign`.
pub async fn import_file(
    store: &Store,
    campaign: &str,
    path: &Path,
    opts: ImportOptions,
    now: DateTime<Utc>,
    progress: Option<Progress>,
) -> Result<ImportReport, ImportError> {
    if opts.all_or_nothing {
        let (p, pr) = (path.to_path_buf(), progress.clone());
        let s = blocking(move || {
            parse(
                &p,
                opts.format,
                opts.limits,
                Phase::Validating,
                pr.as_ref(),
                |_| true,
            )
        })
        .await?;
        if s.rejected > 0 {
            return Err(ImportError::Rejected(ImportReport {
                rows: s.rows,
                added: 0,
                updated: 0,
                in_call: 0,
                rejected: s.rejected,
                errors_truncated: s.rejected as usize > s.errors.len(),
                errors: s.errors,
                delimiter: delimiter_name(s.delimiter),
                encoding: s.encoding.name(),
                written: false,
            }));
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(IN_FLIGHT);
    let p = path.to_path_buf();
    let (format, limits) = (opts.format, opts.limits);
    let producer = tokio::task::spawn_blocking(move || {
        parse(&p, format, limits, Phase::Importing, None, |b| {
            tx.blocking_send(b).is_ok()
        })
    });
    let batches =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let mut adds = std::pin::pin!(
        batches
            .map(|b| {
                let store = store.clone();
                async move {
                    let r = store.add(campaign, &b.members, now).await;
                    (b, r)
                }
            })
            .buffered(2)
    );
    let (mut added, mut updated, mut in_call) = (0u64, 0u64, 0u64);
    while let Some((b, r)) = adds.next().await {
        let outcomes = r.map_err(|source| ImportError::Store {
            from_line: b.first_line,
            source,
        })?;
        for o in outcomes {
            match o {
                AddOutcome::Added(_) => added += 1,
                AddOutcome::Updated(_) => updated += 1,
                AddOutcome::InCall(_) => in_call += 1,
            }
        }
        if let Some(p) = &progress {
            p(Phase::Importing, b.position, b.rows);
        }
    }
    let s = producer
        .await
        .map_err(|e| ImportError::Task(e.to_string()))??;
    if let Some(p) = &progress
        && let Ok(meta) = std::fs::metadata(path)
    {
        p(Phase::Importing, meta.len(), s.rows);
    }
    Ok(ImportReport {
        rows: s.rows,
        added,
        updated,
        in_call,
        rejected: s.rejected,
        errors_truncated: s.rejected as usize > s.errors.len(),
        errors: s.errors,
        delimiter: delimiter_name(s.delimiter),
        encoding: s.encoding.name(),
        written: added + updated > 0,
    })
}
