//! `fsdialer esl parse`: a raw ESL byte stream (a capture, a tcpdump of port 8021) in, one JSON line per frame
//! out.
//!
//! This is how anyone checks the parser against a capture from outside. It streams: the input is read in chunks
//! and frames are cut off the buffer as they complete, so memory stays bounded by the largest frame. A malformed
//! frame prints an error line with its byte offset and the reader resynchronises after the next blank line, so
//! one damaged frame does not hide the rest; the summary says whether every frame parsed.

use bytes::BytesMut;
use serde_json::{Value, json};
use std::io::{self, Read, Write};

use super::event::Event;
use super::frame::{self, Frame, Limits, Status};

/// What a dump saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub frames: u64,
    pub errors: u64,
    pub bytes: u64,
}

impl Summary {
    /// Whether every byte belonged to a frame that parsed.
    pub fn all_parsed(&self) -> bool {
        self.errors == 0
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn pairs<'a>(it: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Value {
    Value::Array(it.map(|(n, v)| json!([text(n), text(v)])).collect())
}

/// The JSON object for one frame at `offset`.
pub fn frame_json(offset: u64, frame: &Frame) -> Value {
    let mut obj = json!({
        "offset": offset,
        "content_type": frame.content_type_raw().map(text),
        "headers": pairs(frame.headers()),
        "body": text(frame.body_bytes()),
    });
    if frame.content_type().is_event() {
        obj["event"] = match Event::from_frame(frame) {
            Ok(event) => json!({
                "headers": pairs(event.headers()),
                "body": event.body().map(text),
            }),
            Err(e) => json!({ "error": e.to_string() }),
        };
    }
    obj
}

/// Reads the whole stream, writing one JSON line per frame (or per error) to `out`.
pub fn dump(mut input: impl Read, mut out: impl Write, limits: &Limits) -> io::Result<Summary> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut summary = Summary::default();
    let mut offset: u64 = 0; // stream offset of buf[0]
    let mut eof = false;
    loop {
        // Cut every complete frame off the buffer.
        loop {
            if buf.is_empty() {
                break;
            }
            match frame::check(&buf, limits) {
                Ok(Status::Complete(layout)) => {
                    let total = layout.total();
                    let frame = Frame::new(buf.split_to(total).freeze(), layout);
                    let mut line = frame_json(offset, &frame);
                    if frame.content_type().is_event() && line["event"].get("error").is_some() {
                        summary.errors += 1;
                        line["error"] = line["event"]["error"].clone();
                    }
                    writeln!(out, "{line}")?;
                    summary.frames += 1;
                    offset += total as u64;
                }
                Ok(Status::Partial) if !eof => break,
                Ok(Status::Partial) => {
                    writeln!(
                        out,
                        "{}",
                        json!({"offset": offset, "error": format!("incomplete frame at end of input ({} bytes)", buf.len())})
                    )?;
                    summary.errors += 1;
                    offset += buf.len() as u64;
                    buf.clear();
                }
                Err(e) => {
                    writeln!(out, "{}", json!({"offset": offset, "error": e.to_string()}))?;
                    summary.errors += 1;
                    // Resynchronise after the next blank line (or drop what we have if there is none yet).
                    let skip = match memchr::memmem::find(&buf, b"\n\n") {
                        Some(i) => i + 2,
                        None if eof => buf.len(),
                        None => {
                            // Keep the tail that may hold the start of "\n\n".
                            buf.len().saturating_sub(1).max(1)
                        }
                    };
                    let _ = buf.split_to(skip);
                    offset += skip as u64;
                }
            }
        }
        if eof {
            break;
        }
        let before = buf.len();
        buf.reserve(64 * 1024);
        let mut chunk = [0u8; 64 * 1024];
        let n = input.read(&mut chunk)?;
        if n == 0 {
            eof = true;
        } else {
            buf.extend_from_slice(&chunk[..n]);
            summary.bytes += n as u64;
        }
        debug_assert!(buf.len() >= before);
    }
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<Value>, Summary) {
        let mut out = Vec::new();
        let summary = dump(input, &mut out, &Limits::default()).unwrap();
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines, summary)
    }

    #[test]
    fn prints_one_line_per_frame_with_decoded_event() {
        let input = b"Content-Type: auth/request\n\nContent-Length: 43\nContent-Type: text/event-plain\n\nEvent-Name: HEARTBEAT\nX: a%20b\nUp-Time: 1\n\n";
        let (lines, summary) = run(input);
        assert!(summary.all_parsed());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["content_type"], "auth/request");
        assert_eq!(lines[1]["offset"], 28);
        assert_eq!(lines[1]["event"]["headers"][1], json!(["X", "a b"]));
    }

    #[test]
    fn malformed_frame_reports_offset_and_the_rest_still_parses() {
        let input = b"Content-Type: command/reply\nReply-Text: +OK\n\nbroken line\n\nContent-Type: command/reply\nReply-Text: +OK 2\n\n";
        let (lines, summary) = run(input);
        assert_eq!(summary.errors, 1);
        assert_eq!(lines[1]["offset"], 45);
        assert!(
            lines[1]["error"]
                .as_str()
                .unwrap()
                .contains("without a colon")
        );
        assert_eq!(lines[2]["headers"][1], json!(["Reply-Text", "+OK 2"]));
    }

    #[test]
    fn truncated_stream_is_an_error_not_silence() {
        let (lines, summary) = run(b"Content-Type: api/response\nContent-Length: 10\n\nabc");
        assert!(!summary.all_parsed());
        assert!(lines[0]["error"].as_str().unwrap().contains("incomplete"));
    }
}
