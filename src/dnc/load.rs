//! Streaming a do-not-call CSV into a list: chunks in, batches of [`BATCH`] entries out to the store, one batch
//! written while the next is read. Memory holds one chunk, the batch being read and the batch being written,
//! whatever the file's size; lines that cannot be read are counted and the first [`MAX_REPORTED`] reported with
//! their line numbers, the rest of the file is still imported.

use super::import::{ImportLine, LineReader};
use super::{DncKind, DncList, E164Rule, NormalizedNumber};
use crate::store::{Store, StoreError};
use bytes::Bytes;
use futures::{Stream, StreamExt};

/// Entries per store write.
pub const BATCH: usize = 10_000;
/// Bad lines reported one by one (beyond, only counted).
pub const MAX_REPORTED: usize = 100;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DncImportReport {
    /// Lines read (headers and blank lines included).
    pub lines: u64,
    /// Entries read from the file, numbers and prefixes.
    pub entries: u64,
    /// Entries the list did not hold before.
    pub added: u64,
    /// Lines that could not be read.
    pub rejected: u64,
    /// The first bad lines: `{line, reason}`.
    pub errors: Vec<LineError>,
}

/// One bad line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    pub line: u64,
    pub reason: String,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum DncImportError {
    #[error("reading the upload after {bytes} bytes: {reason}")]
    Body { bytes: u64, reason: String },
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("writing to the store after {written} entries: {source}")]
    Store {
        written: u64,
        #[source]
        source: StoreError,
    },
}

/// A batch of one kind being filled.
struct Pending {
    kind: DncKind,
    entries: Vec<NormalizedNumber>,
}

/// Imports a CSV stream into `list` (format: [`super::import`]), normalising with `rule`; at most `limit` bytes.
pub async fn import_stream<S, E>(
    store: &Store,
    list: &DncList,
    rule: E164Rule,
    mut body: S,
    limit: u64,
) -> Result<DncImportReport, DncImportError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut reader = LineReader::new(rule);
    let mut report = DncImportReport::default();
    let mut numbers = Pending {
        kind: DncKind::Number,
        entries: Vec::with_capacity(BATCH),
    };
    let mut prefixes = Pending {
        kind: DncKind::Prefix,
        entries: Vec::new(),
    };
    let mut writing: Option<futures::future::BoxFuture<'_, Result<u64, StoreError>>> = None;
    let mut lines = Vec::new();
    let mut bytes = 0u64;
    let mut done = false;
    while !done {
        match body.next().await {
            Some(Ok(chunk)) => {
                bytes += chunk.len() as u64;
                if bytes > limit {
                    return Err(DncImportError::TooLarge { limit });
                }
                reader.push(&chunk, &mut lines);
            }
            Some(Err(e)) => {
                return Err(DncImportError::Body {
                    bytes,
                    reason: e.to_string(),
                });
            }
            None => {
                reader.finish(&mut lines);
                done = true;
            }
        }
        for line in lines.drain(..) {
            report.lines += 1;
            match line {
                ImportLine::Skipped => {}
                ImportLine::Bad { line, reason } => {
                    report.rejected += 1;
                    if report.errors.len() < MAX_REPORTED {
                        report.errors.push(LineError { line, reason });
                    }
                }
                ImportLine::Entry(kind, n) => {
                    report.entries += 1;
                    let batch = match kind {
                        DncKind::Number => &mut numbers,
                        DncKind::Prefix => &mut prefixes,
                    };
                    batch.entries.push(n);
                }
            }
        }
        for batch in [&mut numbers, &mut prefixes] {
            if batch.entries.len() >= BATCH || (done && !batch.entries.is_empty()) {
                // One write in flight: wait for the previous one, then start this one.
                if let Some(w) = writing.take() {
                    report.added += w.await.map_err(|source| DncImportError::Store {
                        written: report.added,
                        source,
                    })?;
                }
                let entries = std::mem::replace(&mut batch.entries, Vec::with_capacity(BATCH));
                let (kind, store, list) = (batch.kind, store.clone(), list.clone());
                let task = tokio::spawn(async move { store.dnc_add(&list, kind, &entries).await });
                writing = Some(Box::pin(async move {
                    task.await.unwrap_or_else(|e| {
                        Err(StoreError::InvalidArgument {
                            what: "do-not-call import",
                            reason: format!("the write task failed: {e}"),
                        })
                    })
                }));
            }
        }
    }
    if let Some(w) = writing.take() {
        report.added += w.await.map_err(|source| DncImportError::Store {
            written: report.added,
            source,
        })?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        text: &str,
        size: usize,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        let parts: Vec<Result<Bytes, std::io::Error>> = text
            .as_bytes()
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(parts)
    }

    #[tokio::test]
    async fn an_import_adds_numbers_and_prefixes_and_reports_bad_lines() {
        let store = Store::memory();
        let rule = E164Rule {
            country_code: Some("380".into()),
            ..E164Rule::default()
        };
        let csv = "number,kind\n050 123 4567\n+380501234567\n044,prefix\nnope\n";
        let list = DncList::Campaign("c1".into());
        let report = import_stream(&store, &list, rule, chunks(csv, 7), 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            (report.lines, report.entries, report.added, report.rejected),
            (5, 3, 2, 1)
        );
        assert_eq!(report.errors[0].line, 5);
        let sizes = store.dnc_sizes(&list).await.unwrap();
        assert_eq!((sizes.numbers, sizes.prefixes), (1, 1));
        let too_big = import_stream(&store, &list, E164Rule::default(), chunks(csv, 7), 10).await;
        assert!(matches!(
            too_big,
            Err(DncImportError::TooLarge { limit: 10 })
        ));
    }
}
