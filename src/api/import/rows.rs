//! Reading member rows from CSV bytes, one at a time (so memory does not grow with the file): each row becomes a
//! [`MemberInput`] or a [`RowError`] with its line number.
//!
//! UTF-16 files are read through `transcode` (so the CSV reader sees UTF-8); a file whose start does not read as
//! text in the chosen encoding is refused whole ([`FileError::Encoding`]). Fields are decoded in the file's
//! encoding. When the encoding was detected (not given) a row that does not fit
//! it — invalid UTF-8 in a UTF-8 file, or UTF-8 Cyrillic inside a Windows-1251 file (which would otherwise be read
//! as mojibake) — is refused as "mixed encodings". Rows whose field count differs from the header's are refused,
//! with a hint when a field spans lines (an unclosed quote swallows the following lines).

use super::detect::{self, Encoding};
use super::header::{Column, Header, MAX_NUMBERS};
use super::transcode::{Source, Utf16ToUtf8};
use crate::api::validate::{
    MAX_TEXT, check_number, check_timezone, check_variable, parse_expire_text,
};
use crate::campaign::member::{CommunicationInput, MemberInput};
use crate::store::{MAX_ABS_PRIORITY, priority_in_range};
use std::io::{BufRead, BufReader, Read};

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub line: u64,
    pub error: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

/// A problem with the file as a whole (header, reading).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("line {line}: {message}")]
    Header { line: u64, message: String },
    #[error("empty file: a header row is expected")]
    Empty,
    /// The start of the file does not read as text in the chosen encoding.
    #[error("the file does not read as {encoding} text: {reason}")]
    Encoding {
        encoding: &'static str,
        reason: String,
    },
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
}

/// How to read the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Format {
    /// `None`: detect.
    pub delimiter: Option<u8>,
    /// `None`: detect.
    pub encoding: Option<Encoding>,
}

/// A streaming reader of member rows.
pub struct Rows<R: Read> {
    rdr: csv::Reader<BufReader<Source<BufReader<R>>>>,
    header: Header,
    encoding: Encoding,
    detected: bool,
    delimiter: u8,
    record: csv::ByteRecord,
}

impl<R: Read> Rows<R> {
    /// Reads the header (sniffing delimiter and encoding unless given).
    pub fn new(inner: R, format: Format) -> Result<Rows<R>, FileError> {
        let mut raw = BufReader::with_capacity(detect::SAMPLE, inner);
        // The encoding: given, or announced by a byte order mark (which is not part of the first column's name),
        // or UTF-16 recognised by its zero bytes, or sniffed.
        let (encoding, detected) = {
            let sample = fill(&mut raw)?;
            if sample.is_empty() {
                return Err(FileError::Empty);
            }
            let complete = sample.len() < detect::SAMPLE;
            let bom = detect::bom(sample);
            let chosen = match (format.encoding, bom) {
                (Some(e), _) => (e, false),
                (None, Some((e, _))) => (e, true),
                (None, None) => match detect::utf16_without_bom(sample) {
                    Some(e) => (e, true),
                    None => (detect::encoding(sample, complete), true),
                },
            };
            if let Some((e, len)) = bom
                && e == chosen.0
            {
                raw.consume(len);
            }
            chosen
        };
        let source = match encoding {
            Encoding::Utf16Le | Encoding::Utf16Be => {
                Source::Utf16(Utf16ToUtf8::new(raw, encoding == Encoding::Utf16Be))
            }
            Encoding::Utf8 | Encoding::Windows1251 => Source::Plain(raw),
        };
        let mut buf = BufReader::with_capacity(detect::SAMPLE, source);
        let delimiter = {
            let sample = fill(&mut buf)?;
            if sample.is_empty() {
                return Err(FileError::Empty);
            }
            let decoded = match encoding {
                Encoding::Windows1251 => {
                    encoding_rs::WINDOWS_1251
                        .decode_without_bom_handling(sample)
                        .0
                }
                _ => String::from_utf8_lossy(sample),
            };
            if let Some(reason) = detect::garbage(sample, &decoded, encoding) {
                return Err(FileError::Encoding {
                    encoding: encoding.name(),
                    reason,
                });
            }
            format
                .delimiter
                .unwrap_or_else(|| detect::delimiter(sample))
        };
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(buf);
        let mut record = csv::ByteRecord::new();
        let read = rdr.read_byte_record(&mut record).map_err(csv_io)?;
        if !read {
            return Err(FileError::Empty);
        }
        let line = record.position().map_or(1, |p| p.line());
        let names = record
            .iter()
            .enumerate()
            .map(|(i, f)| {
                decode(f, encoding, detected).map_err(|e| FileError::Header {
                    line,
                    message: format!("column {}: {e}", i + 1),
                })
            })
            .collect::<Result<Vec<String>, FileError>>()?;
        let header = Header::parse(&names).map_err(|message| {
            // Column names are ASCII but for var_ names: letters beyond it in a bad header suggest the wrong
            // encoding, so name the one used.
            let hint = if names.iter().any(|n| !n.is_ascii()) {
                format!(
                    " (the header was read as {}: is that the file's encoding?)",
                    encoding.name()
                )
            } else {
                String::new()
            };
            FileError::Header {
                line,
                message: format!("{message}{hint}"),
            }
        })?;
        Ok(Rows {
            rdr,
            header,
            encoding,
            detected,
            delimiter,
            record,
        })
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Bytes of the file consumed so far (for progress).
    pub fn position(&self) -> u64 {
        self.rdr.position().byte()
    }

    /// The next row: `None` at the end; `Err(FileError)` only when the file cannot be read any further.
    #[allow(clippy::type_complexity)]
    pub fn next_row(&mut self) -> Option<Result<(u64, Result<MemberInput, RowError>), FileError>> {
        match self.rdr.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                Some(Ok((line, self.member(line))))
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(_) => Some(Err(csv_io(e))),
                // Any other csv error is about this row (the reader goes on with the next one).
                _ => {
                    let line = e.position().map_or(0, |p| p.line());
                    Some(Ok((
                        line,
                        Err(RowError {
                            line,
                            error: e.to_string(),
                        }),
                    )))
                }
            },
        }
    }

    fn member(&self, line: u64) -> Result<MemberInput, RowError> {
        let bad = |error: String| RowError { line, error };
        let rec = &self.record;
        let cols = &self.header.columns;
        if rec.len() != cols.len() {
            let spans = rec.iter().position(|f| f.contains(&b'\n'));
            let hint = match spans {
                Some(i) => format!(" (field {} spans several lines: an unclosed quote?)", i + 1),
                None => String::new(),
            };
            return Err(bad(format!(
                "{} field{}, the header has {}{hint}",
                rec.len(),
                if rec.len() == 1 { "" } else { "s" },
                cols.len()
            )));
        }
        let mut name = None;
        let mut priority = 0i64;
        let mut timezone = None;
        let mut expire = None;
        let mut external_id = None;
        let mut numbers: [Option<String>; MAX_NUMBERS] = Default::default();
        let mut extras: [(i64, Option<String>, Option<String>, bool); MAX_NUMBERS] =
            Default::default();
        let mut variables = serde_json::Map::new();
        let mut problems: Vec<String> = Vec::new();
        for (i, (col, raw)) in cols.iter().zip(rec.iter()).enumerate() {
            if *col == Column::Ignored {
                continue;
            }
            let text = match decode(raw, self.encoding, self.detected) {
                // A cell exported with a `'` against spreadsheet formulas comes back without it.
                Ok(t) => crate::api::spreadsheet::restore_owned(t),
                Err(e) => {
                    problems.push(format!("column {}: {e}", i + 1));
                    continue;
                }
            };
            if text.len() > MAX_TEXT {
                problems.push(format!("{}: longer than {MAX_TEXT} bytes", col_name(col)));
                continue;
            }
            match col {
                Column::Name => {
                    if text.trim().is_empty() {
                        problems.push("name: empty".into());
                    } else {
                        name = Some(text);
                    }
                }
                Column::Priority => match int(&text) {
                    Ok(p) => priority = p,
                    Err(e) => problems.push(format!("priority: {e}")),
                },
                Column::Timezone => match check_timezone(&text) {
                    Ok(t) => timezone = t,
                    Err(e) => problems.push(format!("timezone: {e}")),
                },
                Column::Expire => match parse_expire_text(&text) {
                    Ok(t) => expire = t,
                    Err(e) => problems.push(format!("expire: {e}")),
                },
                Column::ExternalId => {
                    if !text.is_empty() {
                        external_id = Some(text);
                    }
                }
                Column::Number(k) => {
                    if !text.trim().is_empty() {
                        match check_number(&text) {
                            Ok(n) => numbers[*k] = Some(n),
                            Err(e) => problems.push(format!("number_{}: {e}", k + 1)),
                        }
                    }
                }
                Column::NumberPriority(k) => {
                    if !text.trim().is_empty() {
                        extras[*k].3 = true;
                        match int(&text) {
                            Ok(p) => extras[*k].0 = p,
                            Err(e) => problems.push(format!("priority_{}: {e}", k + 1)),
                        }
                    }
                }
                Column::Description(k) => {
                    if !text.is_empty() {
                        extras[*k].1 = Some(text);
                        extras[*k].3 = true;
                    }
                }
                Column::Type(k) => {
                    if !text.is_empty() {
                        extras[*k].2 = Some(text);
                        extras[*k].3 = true;
                    }
                }
                Column::Var(v) => {
                    if !text.is_empty() {
                        let value = serde_json::Value::String(text);
                        match check_variable(v, &value) {
                            Ok(()) => {
                                variables.insert(v.clone(), value);
                            }
                            Err(e) => problems.push(format!("var_{}: {e}", crate::text::prefix(v))),
                        }
                    }
                }
                Column::Ignored => {}
            }
        }
        let mut communications = Vec::new();
        for k in 0..MAX_NUMBERS {
            let (prio, description, kind, given) = std::mem::take(&mut extras[k]);
            match numbers[k].take() {
                Some(number) => communications.push(CommunicationInput {
                    number,
                    priority: prio,
                    description,
                    kind,
                }),
                None if given
                    && !problems
                        .iter()
                        .any(|p| p.starts_with(&format!("number_{}:", k + 1))) =>
                {
                    problems.push(format!(
                        "number_{}: empty, but its priority, description or type is given",
                        k + 1
                    ));
                }
                None => {}
            }
        }
        if communications.is_empty() && !problems.iter().any(|p| p.starts_with("number_")) {
            problems.push("no number: every number_N column is empty".into());
        }
        if name.is_none()
            && !problems
                .iter()
                .any(|p| p.starts_with("name:") || p.starts_with("column"))
        {
            problems.push("name: empty".into());
        }
        if !problems.is_empty() {
            return Err(bad(problems.join("; ")));
        }
        Ok(MemberInput {
            name: name.unwrap_or_default(),
            priority,
            timezone,
            expire,
            variables,
            communications,
            external_id,
        })
    }
}

fn col_name(c: &Column) -> String {
    match c {
        Column::Name => "name".into(),
        Column::Priority => "priority".into(),
        Column::Timezone => "timezone".into(),
        Column::Expire => "expire".into(),
        Column::ExternalId => "external_id".into(),
        Column::Number(k) => format!("number_{}", k + 1),
        Column::NumberPriority(k) => format!("priority_{}", k + 1),
        Column::Description(k) => format!("description_{}", k + 1),
        Column::Type(k) => format!("type_{}", k + 1),
        Column::Var(v) => format!("var_{}", crate::text::prefix(v)),
        Column::Ignored => "ignored".into(),
    }
}

fn int(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(0);
    }
    match t.parse::<i64>() {
        Ok(v) if priority_in_range(v) => Ok(v),
        Ok(v) => Err(format!("{v} is outside ±{MAX_ABS_PRIORITY}")),
        Err(_) => Err(format!("{:?} is not an integer", crate::text::prefix(t))),
    }
}

/// The first bytes of the file, not consumed. One read of the buffer's capacity: for files (the API spools
/// uploads to one) that is the whole sample or the whole file.
fn fill<R: Read>(buf: &mut BufReader<R>) -> std::io::Result<&[u8]> {
    buf.fill_buf()
}

fn csv_io(e: csv::Error) -> FileError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => FileError::Io(io),
        other => FileError::Header {
            line: 1,
            message: format!("{other:?}"),
        },
    }
}

/// Decodes one field. `detected`: the encoding was guessed, so a field that contradicts it is an error.
pub fn decode(raw: &[u8], encoding: Encoding, detected: bool) -> Result<String, String> {
    match encoding {
        // Decoded from UTF-16 into UTF-8 already (see `transcode`); its invalid sequences became U+FFFD.
        Encoding::Utf16Le | Encoding::Utf16Be => match std::str::from_utf8(raw) {
            Ok(text) if !text.contains('\u{FFFD}') => Ok(text.to_string()),
            _ => Err(format!("not valid {}", encoding.name().to_uppercase())),
        },
        Encoding::Utf8 => std::str::from_utf8(raw).map(str::to_string).map_err(|e| {
            format!(
                "not valid UTF-8 (byte {} of the field){}",
                e.valid_up_to() + 1,
                if detected {
                    "; the file began as UTF-8: mixed encodings? (give encoding=windows-1251 if the file is Windows-1251)"
                } else {
                    ""
                }
            )
        }),
        Encoding::Windows1251 => {
            if detected && !raw.is_ascii() && std::str::from_utf8(raw).is_ok() {
                return Err("looks UTF-8 encoded while the file is Windows-1251: mixed encodings?".into());
            }
            let (text, _) = encoding_rs::WINDOWS_1251.decode_without_bom_handling(raw);
            Ok(text.into_owned())
        }
    }
}
