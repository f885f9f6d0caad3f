//! Reading a do-not-call CSV as it arrives: bytes in, complete lines out, each line to an entry or an error with
//! its line number. Memory holds one chunk and one partial line (a line longer than [`MAX_LINE`] is an error),
//! whatever the file's size.
//!
//! Format: one entry per line; the first field (`,` `;` or tab separated, optional double quotes) is the number;
//! an optional second field `prefix` makes it a prefix (`number` or empty: an exact number). A first line whose
//! first field is `number` or `phone` is a header. Blank lines are skipped. The bytes must be UTF-8 (a UTF-8 BOM is
//! skipped).

use super::DncKind;
use super::normalize::{E164Rule, NormalizedNumber};

/// Longest line accepted.
pub const MAX_LINE: usize = 1024;

/// One line read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportLine {
    Entry(DncKind, NormalizedNumber),
    /// A header, a blank line.
    Skipped,
    /// The line could not be read: why, with its 1-based number.
    Bad {
        line: u64,
        reason: String,
    },
}

/// Splits arriving bytes into lines and reads each one.
#[derive(Debug)]
pub struct LineReader {
    rule: E164Rule,
    partial: Vec<u8>,
    line: u64,
    overlong: bool,
}

impl LineReader {
    pub fn new(rule: E164Rule) -> LineReader {
        LineReader {
            rule,
            partial: Vec::new(),
            line: 0,
            overlong: false,
        }
    }

    /// Reads the complete lines of `chunk` (with what was left of the previous one) into `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<ImportLine>) {
        let mut rest = chunk;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let (head, tail) = rest.split_at(i);
            if self.partial.is_empty() {
                self.finish_line(head, out);
            } else {
                self.append(head);
                let line = std::mem::take(&mut self.partial);
                self.finish_line(&line, out);
            }
            rest = &tail[1..];
        }
        self.append(rest);
    }

    /// The last line, when the file does not end with a line break.
    pub fn finish(&mut self, out: &mut Vec<ImportLine>) {
        if !self.partial.is_empty() || self.overlong {
            let line = std::mem::take(&mut self.partial);
            self.finish_line(&line, out);
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.partial.len() + bytes.len() > MAX_LINE {
            self.overlong = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    fn finish_line(&mut self, bytes: &[u8], out: &mut Vec<ImportLine>) {
        self.line += 1;
        let line = self.line;
        if std::mem::take(&mut self.overlong) || bytes.len() > MAX_LINE {
            self.partial.clear();
            out.push(ImportLine::Bad {
                line,
                reason: format!("longer than {MAX_LINE} bytes"),
            });
            return;
        }
        out.push(self.read_line(line, bytes));
    }

    fn read_line(&self, line: u64, bytes: &[u8]) -> ImportLine {
        let bytes = if line == 1 {
            bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
        } else {
            bytes
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            return ImportLine::Bad {
                line,
                reason: "not UTF-8".into(),
            };
        };
        let text = text.trim_end_matches('\r');
        let mut fields = text
            .split([',', ';', '\t'])
            .map(|f| f.trim().trim_matches('"').trim());
        let first = fields.next().unwrap_or("");
        let kind = fields.next().unwrap_or("");
        if first.is_empty() && kind.is_empty() {
            return ImportLine::Skipped;
        }
        if line == 1
            && (first.eq_ignore_ascii_case("number") || first.eq_ignore_ascii_case("phone"))
        {
            return ImportLine::Skipped;
        }
        let (kind, normalized) = match kind.to_ascii_lowercase().as_str() {
            "" | "number" => (DncKind::Number, self.rule.normalize(first)),
            "prefix" => (DncKind::Prefix, self.rule.normalize_prefix(first)),
            other => {
                return ImportLine::Bad {
                    line,
                    reason: format!("second field {other:?}: expected number, prefix or nothing"),
                };
            }
        };
        match normalized {
            Ok(n) => ImportLine::Entry(kind, n),
            Err(e) => ImportLine::Bad {
                line,
                reason: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(chunks: &[&[u8]]) -> Vec<ImportLine> {
        let mut r = LineReader::new(E164Rule {
            country_code: Some("380".into()),
            ..E164Rule::default()
        });
        let mut out = Vec::new();
        for c in chunks {
            r.push(c, &mut out);
        }
        r.finish(&mut out);
        out
    }

    fn n(kind: DncKind, digits: &str) -> ImportLine {
        ImportLine::Entry(kind, E164Rule::default().normalize_prefix(digits).unwrap())
    }

    #[test]
    fn lines_split_across_chunks_are_read_whole_with_their_numbers() {
        let out = read(&[
            b"\xEF\xBB\xBFnumber,type\n050 123",
            b"4567\r\n\n\"+1 202 555 0100\";prefix\nabc\n",
            b"067",
        ]);
        assert_eq!(
            out,
            vec![
                ImportLine::Skipped,
                n(DncKind::Number, "380501234567"),
                ImportLine::Skipped,
                n(DncKind::Prefix, "12025550100"),
                ImportLine::Bad {
                    line: 5,
                    reason: "\"abc\": character 'a' is not part of a phone number".into()
                },
                n(DncKind::Number, "38067"),
            ]
        );
    }

    #[test]
    fn an_overlong_line_is_one_error_and_memory_stays_bounded() {
        let long = vec![b'1'; MAX_LINE * 4];
        let out = read(&[&long, &long, b"\n0501234567\n"]);
        assert!(
            matches!(&out[0], ImportLine::Bad { line: 1, reason } if reason.contains("longer")),
            "{out:?}"
        );
        assert_eq!(out[1], n(DncKind::Number, "380501234567"));
        let out = read(&[b"1,2,3\n5,maybe\n"]);
        assert!(
            matches!(&out[1], ImportLine::Bad { line: 2, reason } if reason.contains("maybe")),
            "{out:?}"
        );
    }
}
