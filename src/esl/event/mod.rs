//! Events: the bodies of `text/event-plain`, `text/event-json` and `text/event-xml` frames, decoded to one type.
//!
//! An [`Event`] keeps its headers in wire order with duplicates (CHANNEL_HANGUP_COMPLETE carries `Hangup-Cause`
//! twice) and its optional body. Values are stored as spans: a span points either into the frame body itself
//! (zero-copy, for values that need no decoding) or into one per-event buffer that holds every value that had to be
//! percent-decoded (plain, xml) or JSON-unescaped. So decoding an event costs at most two allocations, the header
//! table and that buffer, whatever the number of headers; the header table is sized by counting lines first so it
//! never grows.
//!
//! The three formats agree: plain and xml values are URL-encoded by FreeSWITCH and decoded here; JSON values are
//! plain strings; the body is the inner `Content-Length` bytes (plain), `_body` (json) or `<body>` (xml). A
//! multi-valued variable arrives as `ARRAY::a|:b` (plain), a JSON array (joined here into that same form) or
//! repeated XML elements; [`Event::get_all`] and [`Event::array`] read every form.

use bytes::Bytes;
use serde::Deserializer;
use std::fmt;

mod json;
mod xml;

use json::JsonEvent;

use super::frame::{ContentType, Frame};
use super::header::{self, Line};

/// An event body that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("frame of type {0} does not carry an event")]
    NotAnEvent(String),
    #[error("event-plain header line without a colon at byte {offset} of the body")]
    Malformed { offset: usize },
    #[error("event body Content-Length {declared} but only {available} bytes follow")]
    BodyTruncated { declared: usize, available: usize },
    #[error("invalid event Content-Length {0:?}")]
    BadContentLength(String),
    #[error("event-json: {0}")]
    Json(String),
    #[error("event-xml: {what} at byte {offset}")]
    Xml { what: &'static str, offset: usize },
    #[error("event is larger than 4 GiB")]
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    decoded: bool,
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeaderSpan {
    name: Span,
    value: Span,
}

/// A decoded event. Cheap to move; cloning copies the header table.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    raw: Bytes,
    decoded: Vec<u8>,
    headers: Vec<HeaderSpan>,
    body: Option<Span>,
}

impl Event {
    /// Decodes the event carried by a frame.
    pub fn from_frame(frame: &Frame) -> Result<Event, EventError> {
        let body = frame.body();
        match frame.content_type() {
            ContentType::EventPlain => Event::decode_plain(body),
            ContentType::EventJson => Event::decode_json(body),
            ContentType::EventXml => Event::decode_xml(body),
            other => Err(EventError::NotAnEvent(
                other
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| {
                        frame
                            .content_type_raw()
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                    })
                    .unwrap_or_else(|| "(none)".into()),
            )),
        }
    }

    /// Builds an event from decoded header pairs and an optional body (for the simulator and tests).
    pub fn from_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (N, V)>,
        body: Option<&[u8]>,
    ) -> Event {
        let mut b = Builder::new(Bytes::new(), 256);
        for (n, v) in pairs {
            let name = b.push_decoded(n.as_ref());
            let value = b.push_decoded(v.as_ref());
            b.headers.push(HeaderSpan { name, value });
        }
        if let Some(body) = body {
            b.body = Some(b.push_decoded(body));
        }
        b.finish()
    }

    /// Decodes a `text/event-plain` body: URL-encoded header lines, then optionally `Content-Length` body bytes.
    pub fn decode_plain(raw: Bytes) -> Result<Event, EventError> {
        check_size(&raw)?;
        let lines = memchr::memchr_iter(b'\n', &raw).count();
        let mut b = Builder::new(raw.clone(), lines);
        let mut rest: &[u8] = &raw;
        let mut body_len: Option<usize> = None;
        let mut body_start = raw.len();
        loop {
            let offset = raw.len() - rest.len();
            let (line, after) = match header::line(rest) {
                Ok((after, line)) => (line, after),
                // The last line may lack its newline: treat the remainder as a line.
                Err(_) if !rest.is_empty() => (header::split_header(rest), &rest[rest.len()..]),
                Err(_) => break,
            };
            rest = after;
            match line {
                Line::End => {
                    body_start = raw.len() - rest.len();
                    break;
                }
                Line::Bare(_) => return Err(EventError::Malformed { offset }),
                Line::Header { name, value } => {
                    if name.eq_ignore_ascii_case(b"Content-Length") {
                        body_len = Some(parse_len(value)?);
                    }
                    let name = b.span_in_raw(name);
                    let value = if header::needs_decoding(value) {
                        b.push_percent_decoded(value)
                    } else {
                        b.span_in_raw(value)
                    };
                    b.headers.push(HeaderSpan { name, value });
                }
            }
        }
        if let Some(len) = body_len {
            let available = raw.len() - body_start.min(raw.len());
            if len > available {
                return Err(EventError::BodyTruncated {
                    declared: len,
                    available,
                });
            }
            b.body = Some(b.span_in_raw(&raw[body_start..body_start + len]));
        }
        Ok(b.finish())
    }

    /// Decodes a `text/event-json` body: one JSON object of string values (arrays for multi-valued variables),
    /// duplicate keys kept, `_body` as the body.
    pub fn decode_json(raw: Bytes) -> Result<Event, EventError> {
        check_size(&raw)?;
        // Every key and value is at least 3 bytes of JSON plus a separator.
        let estimate = raw.len() / 24 + 8;
        let mut b = Builder::new(raw.clone(), estimate);
        let mut de = serde_json::Deserializer::from_slice(&raw);
        de.deserialize_map(JsonEvent { b: &mut b })
            .map_err(|e| EventError::Json(e.to_string()))?;
        de.end().map_err(|e| EventError::Json(e.to_string()))?;
        Ok(b.finish())
    }

    /// Decodes a `text/event-xml` body: `<event><headers><Name>value</Name>…</headers>[<Content-Length>N
    /// </Content-Length><body>…</body>]</event>`, values URL-encoded, body XML-escaped.
    pub fn decode_xml(raw: Bytes) -> Result<Event, EventError> {
        check_size(&raw)?;
        let lines = memchr::memchr_iter(b'\n', &raw).count();
        let mut b = Builder::new(raw.clone(), lines);
        xml::decode(&raw, &mut b)?;
        Ok(b.finish())
    }

    /// Headers in wire order, decoded, duplicates kept.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(|h| (self.resolve(h.name), self.resolve(h.value)))
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether the event has no headers.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The first value of a header (name compared case-insensitively, as FreeSWITCH does), as bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| self.resolve(h.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| self.resolve(h.value))
    }

    /// The first value of a header as text; `None` if absent or not valid UTF-8 (use [`Event::get_bytes`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of a header, in order (duplicated headers, repeated XML elements).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| self.resolve(h.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| self.resolve(h.value))
    }

    /// The elements of a multi-valued header: `ARRAY::a|:b` split, or every repeated value.
    pub fn array(&self, name: &str) -> Vec<&[u8]> {
        let all: Vec<&[u8]> = self
            .headers
            .iter()
            .filter(|h| self.resolve(h.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| self.resolve(h.value))
            .collect();
        if let [single] = all.as_slice()
            && let Some(items) = single.strip_prefix(b"ARRAY::")
        {
            return split_array(items);
        }
        all
    }

    /// A channel variable: the `variable_<name>` header.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| {
                self.resolve(h.name)
                    .strip_prefix(b"variable_")
                    .is_some_and(|n| n == name.as_bytes())
            })
            .and_then(|h| std::str::from_utf8(self.resolve(h.value)).ok())
    }

    /// The body, if the event has one.
    pub fn body(&self) -> Option<&[u8]> {
        self.body.map(|s| self.resolve(s))
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.body().map(String::from_utf8_lossy)
    }

    /// `Event-Name`.
    pub fn name(&self) -> Option<&str> {
        self.get("Event-Name")
    }
    /// `Event-Subclass` (CUSTOM events).
    pub fn subclass(&self) -> Option<&str> {
        self.get("Event-Subclass")
    }
    /// `Unique-ID`: the channel's uuid (the dialer's attempt id for its calls).
    pub fn unique_id(&self) -> Option<&str> {
        self.get("Unique-ID")
    }
    /// `Job-UUID` of a BACKGROUND_JOB.
    pub fn job_uuid(&self) -> Option<&str> {
        self.get("Job-UUID")
    }
    /// `Hangup-Cause`.
    pub fn hangup_cause(&self) -> Option<&str> {
        self.get("Hangup-Cause")
    }
    /// `Event-Sequence` as a number.
    pub fn sequence(&self) -> Option<u64> {
        self.get("Event-Sequence")?.parse().ok()
    }

    fn resolve(&self, span: Span) -> &[u8] {
        let (s, e) = (span.start as usize, span.end as usize);
        if span.decoded {
            &self.decoded[s..e]
        } else {
            &self.raw[s..e]
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self
            .headers()
            .map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v)))
            .collect();
        f.debug_struct("Event")
            .field("headers", &headers)
            .field("body", &self.body_text())
            .finish()
    }
}

fn split_array(items: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = items;
    loop {
        match memchr::memmem::find(rest, b"|:") {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + 2..];
            }
            None => {
                out.push(rest);
                return out;
            }
        }
    }
}

fn check_size(raw: &Bytes) -> Result<(), EventError> {
    if raw.len() > u32::MAX as usize {
        Err(EventError::TooLarge)
    } else {
        Ok(())
    }
}

fn parse_len(value: &[u8]) -> Result<usize, EventError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or_else(|| EventError::BadContentLength(String::from_utf8_lossy(value).into_owned()))
}

/// Accumulates spans while decoding. `decoded` is allocated on first use only.
struct Builder {
    raw: Bytes,
    decoded: Vec<u8>,
    headers: Vec<HeaderSpan>,
    body: Option<Span>,
}

impl Builder {
    fn new(raw: Bytes, header_capacity: usize) -> Builder {
        Builder {
            raw,
            decoded: Vec::new(),
            headers: Vec::with_capacity(header_capacity),
            body: None,
        }
    }

    /// A span for a sub-slice of `raw` (the slice must point into it).
    fn span_in_raw(&self, slice: &[u8]) -> Span {
        let start = slice.as_ptr() as usize - self.raw.as_ptr() as usize;
        debug_assert!(start + slice.len() <= self.raw.len());
        Span {
            decoded: false,
            start: start as u32,
            end: (start + slice.len()) as u32,
        }
    }

    fn reserve_decoded(&mut self, at_least: usize) {
        if self.decoded.capacity() == 0 {
            // One allocation for the whole event: decoded text is never longer than its source.
            self.decoded.reserve(self.raw.len().max(at_least));
        }
    }

    fn push_percent_decoded(&mut self, value: &[u8]) -> Span {
        self.reserve_decoded(value.len());
        let start = self.decoded.len();
        header::percent_decode_into(value, &mut self.decoded);
        Span {
            decoded: true,
            start: start as u32,
            end: self.decoded.len() as u32,
        }
    }

    fn push_decoded(&mut self, value: &[u8]) -> Span {
        self.reserve_decoded(value.len());
        let start = self.decoded.len();
        self.decoded.extend_from_slice(value);
        Span {
            decoded: true,
            start: start as u32,
            end: self.decoded.len() as u32,
        }
    }

    /// A span for text that may borrow from `raw` (serde's borrowed strings) or must be copied.
    fn span_for_str(&mut self, s: &str) -> Span {
        let p = s.as_ptr() as usize;
        let base = self.raw.as_ptr() as usize;
        if p >= base && p + s.len() <= base + self.raw.len() {
            self.span_in_raw(s.as_bytes())
        } else {
            self.push_decoded(s.as_bytes())
        }
    }

    fn text(&self, span: Span) -> &[u8] {
        let (s, e) = (span.start as usize, span.end as usize);
        if span.decoded {
            &self.decoded[s..e]
        } else {
            &self.raw[s..e]
        }
    }

    /// Appends `ARRAY::<first>|:<next>` (or `<first>|:<next>` when `first` is already an array) to the decoded
    /// buffer.
    fn join_array(&mut self, first: Span, next: Span) -> Span {
        let mut joined =
            Vec::with_capacity(16 + (first.end - first.start + next.end - next.start) as usize);
        let a = self.text(first);
        if !a.starts_with(b"ARRAY::") {
            joined.extend_from_slice(b"ARRAY::");
        }
        joined.extend_from_slice(a);
        joined.extend_from_slice(b"|:");
        joined.extend_from_slice(self.text(next));
        self.push_decoded(&joined)
    }

    fn finish(self) -> Event {
        Event {
            raw: self.raw,
            decoded: self.decoded,
            headers: self.headers,
            body: self.body,
        }
    }
}

#[cfg(test)]
mod tests;
