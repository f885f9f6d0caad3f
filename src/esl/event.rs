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
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

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

/// serde visitor that walks the JSON object without building a map, so duplicate keys and order survive and
/// unescaped strings are borrowed from the frame.
struct JsonEvent<'b> {
    b: &'b mut Builder,
}

impl<'de> Visitor<'de> for JsonEvent<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of event headers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<JsonText<'de>>()? {
            let value = map.next_value::<JsonValue<'de>>()?;
            let key_text = key.as_str();
            if key_text == "_body" {
                let span = match &value {
                    JsonValue::Text(t) => self.b.span_for_str(t.as_str()),
                    JsonValue::Joined(s) => self.b.push_decoded(s.as_bytes()),
                };
                self.b.body = Some(span);
                continue;
            }
            let name = self.b.span_for_str(key_text);
            let value = match &value {
                JsonValue::Text(t) => self.b.span_for_str(t.as_str()),
                JsonValue::Joined(s) => self.b.push_decoded(s.as_bytes()),
            };
            self.b.headers.push(HeaderSpan { name, value });
        }
        Ok(())
    }
}

/// A JSON string, borrowed when it had no escapes.
enum JsonText<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl JsonText<'_> {
    fn as_str(&self) -> &str {
        match self {
            JsonText::Borrowed(s) => s,
            JsonText::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for JsonText<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonText::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonText::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonText::Owned(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// A header value in event-json: a string, or an array of strings (joined to FreeSWITCH's `ARRAY::a|:b`).
/// Numbers, booleans and null, which FreeSWITCH never sends, are accepted as their JSON text.
enum JsonValue<'de> {
    Text(JsonText<'de>),
    Joined(String),
}

impl<'de> de::Deserialize<'de> for JsonValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonValue::Text(JsonText::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonValue::Text(JsonText::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonValue::Text(JsonText::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(JsonValue::Joined(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut joined = String::from("ARRAY::");
                let mut first = true;
                while let Some(item) = seq.next_element::<JsonText<'de>>()? {
                    if !first {
                        joined.push_str("|:");
                    }
                    first = false;
                    joined.push_str(item.as_str());
                }
                Ok(JsonValue::Joined(joined))
            }
        }
        d.deserialize_any(V)
    }
}

/// The event-xml reader. FreeSWITCH's serializer writes one fixed shape, so a small scanner is exact and
/// much cheaper than a general XML parser; it still rejects anything that does not fit with its offset.
mod xml {
    use super::{Builder, EventError, HeaderSpan};
    use crate::esl::header;

    fn err(what: &'static str, raw: &[u8], rest: &[u8]) -> EventError {
        EventError::Xml {
            what,
            offset: raw.len() - rest.len(),
        }
    }

    fn skip_ws(s: &[u8]) -> &[u8] {
        let n = s
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(s.len());
        &s[n..]
    }

    fn expect<'a>(
        raw: &[u8],
        s: &'a [u8],
        tag: &'static [u8],
        what: &'static str,
    ) -> Result<&'a [u8], EventError> {
        let s = skip_ws(s);
        s.strip_prefix(tag).ok_or_else(|| err(what, raw, s))
    }

    /// Reads `<name>` or `<name/>`; returns (name, self_closing, rest).
    fn open_tag<'a>(raw: &[u8], s: &'a [u8]) -> Result<(&'a [u8], bool, &'a [u8]), EventError> {
        let s = skip_ws(s);
        let inner = s
            .strip_prefix(b"<")
            .ok_or_else(|| err("expected '<'", raw, s))?;
        let close =
            memchr::memchr(b'>', inner).ok_or_else(|| err("unterminated tag", raw, inner))?;
        let tag = &inner[..close];
        let rest = &inner[close + 1..];
        match tag.strip_suffix(b"/") {
            Some(name) => Ok((name, true, rest)),
            None => Ok((tag, false, rest)),
        }
    }

    /// Text up to `</name>`; returns (text, rest after the closing tag).
    fn text_until_close<'a>(
        raw: &[u8],
        s: &'a [u8],
        name: &[u8],
    ) -> Result<(&'a [u8], &'a [u8]), EventError> {
        let end = memchr::memchr(b'<', s).ok_or_else(|| err("unterminated element", raw, s))?;
        let text = &s[..end];
        let after = &s[end..];
        let after = after
            .strip_prefix(b"</")
            .and_then(|a| a.strip_prefix(name))
            .and_then(|a| a.strip_prefix(b">"))
            .ok_or_else(|| err("mismatched closing tag", raw, after))?;
        Ok((text, after))
    }

    fn needs_unescape(s: &[u8]) -> bool {
        memchr::memchr(b'&', s).is_some()
    }

    /// Decodes the XML predefined entities and numeric character references.
    fn unescape_into(s: &[u8], out: &mut Vec<u8>) {
        let mut rest = s;
        while let Some(i) = memchr::memchr(b'&', rest) {
            out.extend_from_slice(&rest[..i]);
            let after = &rest[i..];
            let semi = memchr::memchr(b';', &after[..after.len().min(12)]);
            let decoded: Option<(char, usize)> = semi.and_then(|semi| {
                let ent = &after[1..semi];
                let c = match ent {
                    b"amp" => Some('&'),
                    b"lt" => Some('<'),
                    b"gt" => Some('>'),
                    b"quot" => Some('"'),
                    b"apos" => Some('\''),
                    [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .and_then(char::from_u32),
                    [b'#', dec @ ..] => std::str::from_utf8(dec)
                        .ok()
                        .and_then(|d| d.parse::<u32>().ok())
                        .and_then(char::from_u32),
                    _ => None,
                };
                c.map(|c| (c, semi + 1))
            });
            match decoded {
                Some((c, used)) => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    rest = &after[used..];
                }
                None => {
                    out.push(b'&');
                    rest = &after[1..];
                }
            }
        }
        out.extend_from_slice(rest);
    }

    pub(super) fn decode(raw: &[u8], b: &mut Builder) -> Result<(), EventError> {
        let s = expect(raw, raw, b"<event>", "expected <event>")?;
        let mut s = expect(raw, s, b"<headers>", "expected <headers>")?;
        loop {
            let t = skip_ws(s);
            if let Some(after) = t.strip_prefix(b"</headers>") {
                s = after;
                break;
            }
            let (name, self_closing, after) = open_tag(raw, t)?;
            let (value, after) = if self_closing {
                (&after[..0], after)
            } else {
                text_until_close(raw, after, name)?
            };
            s = after;
            let name_span = b.span_in_raw(name);
            let mut value_span = if needs_unescape(value) {
                let mut tmp = Vec::with_capacity(value.len());
                unescape_into(value, &mut tmp);
                if header::needs_decoding(&tmp) {
                    b.push_percent_decoded(&tmp)
                } else {
                    b.push_decoded(&tmp)
                }
            } else if header::needs_decoding(value) {
                b.push_percent_decoded(value)
            } else {
                b.span_in_raw(value)
            };
            // FreeSWITCH writes a multi-valued variable as consecutive elements of the same name; join them
            // into the `ARRAY::a|:b` form event-plain uses, so all three formats decode alike.
            if let Some(prev) = b.headers.last().copied()
                && b.text(prev.name) == name
            {
                value_span = b.join_array(prev.value, value_span);
                b.headers.pop();
            }
            b.headers.push(HeaderSpan {
                name: name_span,
                value: value_span,
            });
        }
        let mut declared: Option<usize> = None;
        loop {
            let t = skip_ws(s);
            if t.starts_with(b"</event>") {
                break;
            }
            let (name, self_closing, after) = open_tag(raw, t)?;
            let (text, after) = if self_closing {
                (&after[..0], after)
            } else {
                text_until_close_body(raw, after, name)?
            };
            s = after;
            match name {
                b"Content-Length" => {
                    declared = Some(super::parse_len(text)?);
                    let name_span = b.span_in_raw(name);
                    let value_span = b.span_in_raw(text);
                    b.headers.push(HeaderSpan {
                        name: name_span,
                        value: value_span,
                    });
                }
                b"body" => {
                    let mut body_span = if needs_unescape(text) {
                        let mut tmp = Vec::with_capacity(text.len());
                        unescape_into(text, &mut tmp);
                        b.push_decoded(&tmp)
                    } else {
                        b.span_in_raw(text)
                    };
                    // The pretty-printer adds indentation before `</body>`; Content-Length says where the body
                    // really ends.
                    if let Some(len) = declared {
                        let have = (body_span.end - body_span.start) as usize;
                        if len > have {
                            return Err(EventError::BodyTruncated {
                                declared: len,
                                available: have,
                            });
                        }
                        body_span.end = body_span.start + len as u32;
                    }
                    b.body = Some(body_span);
                }
                _ => return Err(err("unexpected element after </headers>", raw, t)),
            }
        }
        Ok(())
    }

    /// Like `text_until_close`, but the body may contain `<` only as `&lt;`, so the first `</name>` ends it.
    fn text_until_close_body<'a>(
        raw: &[u8],
        s: &'a [u8],
        name: &[u8],
    ) -> Result<(&'a [u8], &'a [u8]), EventError> {
        let mut close = Vec::with_capacity(name.len() + 3);
        close.extend_from_slice(b"</");
        close.extend_from_slice(name);
        close.push(b'>');
        let end =
            memchr::memmem::find(s, &close).ok_or_else(|| err("unterminated element", raw, s))?;
        Ok((&s[..end], &s[end + close.len()..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_event_values_are_percent_decoded_and_duplicates_kept() {
        let body = b"Event-Name: CHANNEL_HANGUP_COMPLETE\nEvent-Date-Local: 2026-11-25%2020%3A02%3A23\nHangup-Cause: NORMAL_CLEARING\nvariable_x: a%2Bb+c\nHangup-Cause: NORMAL_CLEARING\n\n";
        let e = Event::decode_plain(Bytes::from_static(body)).unwrap();
        assert_eq!(e.name(), Some("CHANNEL_HANGUP_COMPLETE"));
        assert_eq!(e.get("event-date-local"), Some("2026-11-25 20:02:23"));
        assert_eq!(e.variable("x"), Some("a+b+c"));
        assert_eq!(e.get_all("Hangup-Cause").count(), 2);
        assert!(e.body().is_none());
    }

    #[test]
    fn plain_background_job_body_follows_inner_content_length() {
        let body =
            b"Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: 15\n\n-ERR USER_BUSY\n";
        let e = Event::decode_plain(Bytes::from_static(body)).unwrap();
        assert_eq!(e.job_uuid(), Some("j1"));
        assert_eq!(e.body(), Some(&b"-ERR USER_BUSY\n"[..]));
    }

    #[test]
    fn plain_truncated_inner_body_is_an_error() {
        let body = b"Event-Name: BACKGROUND_JOB\nContent-Length: 99\n\nshort";
        assert_eq!(
            Event::decode_plain(Bytes::from_static(body)).unwrap_err(),
            EventError::BodyTruncated {
                declared: 99,
                available: 5
            }
        );
    }

    #[test]
    fn json_event_keeps_duplicate_keys_arrays_and_body() {
        let body = br#"{"Event-Name":"BACKGROUND_JOB","Hangup-Cause":"A","Hangup-Cause":"B","variable_v":["x","y"],"esc":"a\nb\u00e9","Content-Length":"4","_body":"+OK\n"}"#;
        let e = Event::decode_json(Bytes::from_static(body)).unwrap();
        assert_eq!(
            e.get_all("Hangup-Cause").collect::<Vec<_>>(),
            vec![&b"A"[..], b"B"]
        );
        assert_eq!(e.variable("v"), Some("ARRAY::x|:y"));
        assert_eq!(e.array("variable_v"), vec![&b"x"[..], b"y"]);
        assert_eq!(e.get("esc"), Some("a\nbé"));
        assert_eq!(e.body(), Some(&b"+OK\n"[..]));
    }

    #[test]
    fn json_that_is_not_an_object_is_a_clear_error() {
        let err = Event::decode_json(Bytes::from_static(b"[1,2]")).unwrap_err();
        assert!(matches!(err, EventError::Json(_)), "{err}");
    }

    #[test]
    fn xml_event_body_is_cut_at_content_length() {
        let body = b"<event>\n  <headers>\n    <Event-Name>BACKGROUND_JOB</Event-Name>\n    <Job-Command-Arg>%7Bx%3D1%7D</Job-Command-Arg>\n    <Empty/>\n  </headers>\n  <Content-Length>15</Content-Length>\n  <body>-ERR USER_BUSY\n  </body>\n</event>";
        let e = Event::decode_xml(Bytes::from_static(body)).unwrap();
        assert_eq!(e.name(), Some("BACKGROUND_JOB"));
        assert_eq!(e.get("Job-Command-Arg"), Some("{x=1}"));
        assert_eq!(e.get("Empty"), Some(""));
        assert_eq!(e.body(), Some(&b"-ERR USER_BUSY\n"[..]));
    }

    #[test]
    fn xml_mismatched_tag_names_the_offset() {
        let body = b"<event><headers><A>1</B></headers></event>";
        let err = Event::decode_xml(Bytes::from_static(body)).unwrap_err();
        assert!(matches!(err, EventError::Xml { offset: 20, .. }), "{err:?}");
    }

    #[test]
    fn xml_entities_in_body_are_decoded() {
        let body = b"<event><headers></headers><body>a &lt;b&gt; &amp; &#233;</body></event>";
        let e = Event::decode_xml(Bytes::from_static(body)).unwrap();
        assert_eq!(e.body_text().unwrap(), "a <b> & é");
    }

    #[test]
    fn invalid_utf8_value_is_bytes_not_panic() {
        let e = Event::decode_plain(Bytes::from_static(b"X: %FF%FE\n\n")).unwrap();
        assert_eq!(e.get_bytes("X"), Some(&b"\xff\xfe"[..]));
        assert_eq!(e.get("X"), None);
    }
}
