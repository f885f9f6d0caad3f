//! ESL frames: the sans-IO, incremental, zero-copy frame parser.
//!
//! FreeSWITCH sends a stream of frames, each a block of `Name: value\n` header lines ended by a blank line, followed
//! by exactly `Content-Length` bytes of body when that header is present. The parser works like httparse or
//! mini-redis' `Frame::check`: [`check`] looks at whatever bytes have arrived and says either
//! [`Status::Complete`] with the frame's [`Layout`], or [`Status::Partial`] ("read more"). It never copies and
//! never allocates; it only finds boundaries, splits the header lines and validates `Content-Length`. The caller
//! (the codec, the CLI, a benchmark) then cuts the frame off its buffer as one [`Bytes`] and wraps it in a
//! [`Frame`], whose header names, values and body are sub-slices of that `Bytes`.
//!
//! Header order differs by content type (events send `Content-Length` first, api/response last), so nothing here
//! depends on order. Unknown content types are not errors: they pass through as [`ContentType::Other`].
//! A maximum frame size bounds memory: a header block or a `Content-Length` past it is an error, found as soon as
//! it can be known, not after buffering the whole thing.

use bytes::Bytes;
use std::borrow::Cow;
use std::fmt;

use super::header::{self, Line};

/// Default maximum size of one frame (headers + body): 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Parser limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, header block plus body, in bytes.
    pub max_frame: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// Where a complete frame lies at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Blank lines skipped before the first header (FreeSWITCH sends none; tolerated).
    pub skip: usize,
    /// End of the header block, blank line included, from the start of the buffer.
    pub header_end: usize,
    /// Body length (`Content-Length`, 0 when absent).
    pub body_len: usize,
    /// The frame's content type, recognised while scanning.
    pub content_type: ContentType,
}

impl Layout {
    /// Bytes the frame occupies from the start of the buffer.
    pub fn total(&self) -> usize {
        self.header_end + self.body_len
    }
}

/// Result of [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A whole frame is in the buffer.
    Complete(Layout),
    /// The frame is not complete yet: read more bytes and call again.
    Partial,
}

/// A frame that can never be parsed. Offsets are from the start of the frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("header block has no end within the {limit}-byte frame limit")]
    HeaderTooLarge { limit: usize },
    #[error("Content-Length {length} at byte {offset} is over the {limit}-byte frame limit")]
    TooLarge {
        offset: usize,
        length: usize,
        limit: usize,
    },
    #[error("invalid Content-Length {value:?} at byte {offset}")]
    BadContentLength { offset: usize, value: String },
    #[error("header line without a colon at byte {offset}: {line:?}")]
    Malformed { offset: usize, line: String },
}

/// The content types FreeSWITCH sends; anything else is kept as [`ContentType::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    AuthRequest,
    CommandReply,
    ApiResponse,
    EventPlain,
    EventJson,
    EventXml,
    DisconnectNotice,
    LogData,
    RudeRejection,
    /// No `Content-Type` header, or one this parser does not know: passed through raw.
    Other,
}

impl ContentType {
    /// Recognises a `Content-Type` value.
    pub fn from_bytes(value: &[u8]) -> ContentType {
        match value {
            b"auth/request" => ContentType::AuthRequest,
            b"command/reply" => ContentType::CommandReply,
            b"api/response" => ContentType::ApiResponse,
            b"text/event-plain" => ContentType::EventPlain,
            b"text/event-json" => ContentType::EventJson,
            b"text/event-xml" => ContentType::EventXml,
            b"text/disconnect-notice" => ContentType::DisconnectNotice,
            b"log/data" => ContentType::LogData,
            b"text/rude-rejection" => ContentType::RudeRejection,
            _ => ContentType::Other,
        }
    }

    /// The wire name (`None` for [`ContentType::Other`], whose name is in the frame itself).
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            ContentType::AuthRequest => "auth/request",
            ContentType::CommandReply => "command/reply",
            ContentType::ApiResponse => "api/response",
            ContentType::EventPlain => "text/event-plain",
            ContentType::EventJson => "text/event-json",
            ContentType::EventXml => "text/event-xml",
            ContentType::DisconnectNotice => "text/disconnect-notice",
            ContentType::LogData => "log/data",
            ContentType::RudeRejection => "text/rude-rejection",
            ContentType::Other => return None,
        })
    }

    /// Whether frames of this type carry an event in their body.
    pub fn is_event(self) -> bool {
        matches!(
            self,
            ContentType::EventPlain | ContentType::EventJson | ContentType::EventXml
        )
    }
}

/// Looks for one complete frame at the start of `buf`.
///
/// Pure and incremental: call it again with more bytes after [`Status::Partial`]. Cost is one pass over the header
/// block; the body is skipped by length.
pub fn check(buf: &[u8], limits: &Limits) -> Result<Status, FrameError> {
    let mut pos = 0;
    let mut skip = 0;
    let mut seen_header = false;
    let mut content_length: Option<usize> = None;
    let mut content_type = ContentType::Other;
    loop {
        let rest = &buf[pos..];
        match header::line(rest) {
            Ok((after, line)) => {
                let line_start = pos;
                pos = buf.len() - after.len();
                match line {
                    Line::End if !seen_header => skip = pos,
                    Line::End => {
                        let body_len = content_length.unwrap_or(0);
                        if pos + body_len > buf.len() {
                            return Ok(Status::Partial);
                        }
                        return Ok(Status::Complete(Layout {
                            skip,
                            header_end: pos,
                            body_len,
                            content_type,
                        }));
                    }
                    Line::Header { name, value } => {
                        seen_header = true;
                        if name.eq_ignore_ascii_case(b"Content-Length") {
                            let length = parse_length(value).ok_or_else(|| {
                                FrameError::BadContentLength {
                                    offset: line_start,
                                    value: String::from_utf8_lossy(value).into_owned(),
                                }
                            })?;
                            if length > limits.max_frame {
                                return Err(FrameError::TooLarge {
                                    offset: line_start,
                                    length,
                                    limit: limits.max_frame,
                                });
                            }
                            content_length = Some(length);
                        } else if name.eq_ignore_ascii_case(b"Content-Type") {
                            content_type = ContentType::from_bytes(value);
                        }
                    }
                    Line::Bare(text) => {
                        return Err(FrameError::Malformed {
                            offset: line_start,
                            line: String::from_utf8_lossy(&text[..text.len().min(80)]).into_owned(),
                        });
                    }
                }
                if pos > limits.max_frame {
                    return Err(FrameError::HeaderTooLarge {
                        limit: limits.max_frame,
                    });
                }
            }
            Err(nom::Err::Incomplete(_)) => {
                return if buf.len() > limits.max_frame {
                    Err(FrameError::HeaderTooLarge {
                        limit: limits.max_frame,
                    })
                } else {
                    Ok(Status::Partial)
                };
            }
            Err(nom::Err::Error(_) | nom::Err::Failure(_)) => {
                // `header::line` only fails by needing more input; treat anything else as "need more" would
                // hide a bug, so report it as malformed at this point.
                return Err(FrameError::Malformed {
                    offset: pos,
                    line: String::from_utf8_lossy(&rest[..rest.len().min(80)]).into_owned(),
                });
            }
        }
    }
}

/// Parses a decimal `Content-Length`: ASCII digits only, no sign, no overflow.
fn parse_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    let mut n: usize = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
    }
    Some(n)
}

/// One complete ESL frame. Cloning is cheap (reference-counted bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    raw: Bytes,
    layout: Layout,
}

impl Frame {
    /// Wraps the bytes of a frame found by [`check`]. `raw` must start where the checked buffer started and be
    /// at least `layout.total()` long; extra bytes are ignored.
    pub fn new(raw: Bytes, layout: Layout) -> Frame {
        let raw = if raw.len() > layout.total() {
            raw.slice(..layout.total())
        } else {
            raw
        };
        debug_assert_eq!(raw.len(), layout.total());
        Frame { raw, layout }
    }

    /// Parses exactly one frame from a buffer holding at least one whole frame (a convenience for tests and
    /// tools; the codec uses [`check`] directly). Returns the frame and the bytes it used.
    pub fn parse(buf: &Bytes, limits: &Limits) -> Result<Option<(Frame, usize)>, FrameError> {
        match check(buf, limits)? {
            Status::Partial => Ok(None),
            Status::Complete(layout) => {
                let total = layout.total();
                Ok(Some((Frame::new(buf.slice(..total), layout), total)))
            }
        }
    }

    /// The content type recognised while parsing.
    pub fn content_type(&self) -> ContentType {
        self.layout.content_type
    }

    /// The raw `Content-Type` value (useful for [`ContentType::Other`]).
    pub fn content_type_raw(&self) -> Option<&[u8]> {
        self.header("Content-Type")
    }

    /// Header lines in wire order, names and values as sent (values not decoded).
    pub fn headers(&self) -> Headers<'_> {
        Headers {
            rest: &self.raw[self.layout.skip..self.layout.header_end],
        }
    }

    /// The first header of that name (case-insensitive), raw.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first header of that name, percent-decoded when it contains `%` (outbound-mode `connect` replies
    /// encode their headers), as text (lossy for invalid UTF-8).
    pub fn header_text(&self, name: &str) -> Option<Cow<'_, str>> {
        let raw = self.header(name)?;
        Some(if header::needs_decoding(raw) {
            Cow::Owned(String::from_utf8_lossy(&header::percent_decode(raw)).into_owned())
        } else {
            String::from_utf8_lossy(raw)
        })
    }

    /// `Reply-Text` of a command/reply.
    pub fn reply_text(&self) -> Option<Cow<'_, str>> {
        self.header_text("Reply-Text")
    }

    /// The body (empty when there is none), sharing the frame's memory.
    pub fn body(&self) -> Bytes {
        self.raw.slice(self.layout.header_end..)
    }

    /// The body as a slice.
    pub fn body_bytes(&self) -> &[u8] {
        &self.raw[self.layout.header_end..]
    }

    /// The whole frame as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The frame's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Frame");
        d.field("content_type", &self.layout.content_type);
        let headers: Vec<(Cow<'_, str>, Cow<'_, str>)> = self
            .headers()
            .map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v)))
            .collect();
        d.field("headers", &headers);
        d.field("body_len", &self.layout.body_len);
        d.finish()
    }
}

/// Iterator over a frame's header lines.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (after, line) = header::line(self.rest).ok()?;
            self.rest = after;
            match line {
                Line::Header { name, value } => return Some((name, value)),
                Line::End => return None,
                // `check` refused bare lines; never reached for a checked frame.
                Line::Bare(_) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> Frame {
        let bytes = Bytes::copy_from_slice(buf);
        let (frame, used) = Frame::parse(&bytes, &Limits::default()).unwrap().unwrap();
        assert_eq!(used, buf.len());
        frame
    }

    #[test]
    fn command_reply_without_body() {
        let f = one(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n");
        assert_eq!(f.content_type(), ContentType::CommandReply);
        assert_eq!(f.reply_text().unwrap(), "+OK accepted");
        assert!(f.body().is_empty());
    }

    #[test]
    fn api_response_with_length_after_type_and_no_final_newline() {
        let f = one(b"Content-Type: api/response\nContent-Length: 4\n\ntrue");
        assert_eq!(f.content_type(), ContentType::ApiResponse);
        assert_eq!(&f.body()[..], b"true");
    }

    #[test]
    fn body_is_counted_in_bytes_not_characters() {
        let body = "кот 😀";
        let frame = format!(
            "Content-Type: api/response\nContent-Length: {}\n\n{body}",
            body.len()
        );
        assert_eq!(one(frame.as_bytes()).body_bytes(), body.as_bytes());
    }

    #[test]
    fn partial_until_the_last_body_byte() {
        let full = b"Content-Length: 3\nContent-Type: text/event-plain\n\nabc";
        for cut in 0..full.len() {
            assert_eq!(
                check(&full[..cut], &Limits::default()).unwrap(),
                Status::Partial,
                "cut at {cut}"
            );
        }
        assert!(matches!(
            check(full, &Limits::default()).unwrap(),
            Status::Complete(_)
        ));
    }

    #[test]
    fn unknown_content_type_passes_through() {
        let f = one(b"Content-Type: x-custom/thing\nContent-Length: 2\n\nhi");
        assert_eq!(f.content_type(), ContentType::Other);
        assert_eq!(f.content_type_raw().unwrap(), b"x-custom/thing");
    }

    #[test]
    fn oversized_content_length_is_refused_before_buffering() {
        let limits = Limits { max_frame: 1024 };
        let err = check(b"Content-Length: 5000\n", &limits).unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { length: 5000, .. }),
            "{err}"
        );
    }

    #[test]
    fn endless_header_block_is_refused_at_the_limit() {
        let limits = Limits { max_frame: 64 };
        let buf = vec![b'a'; 100];
        assert_eq!(
            check(&buf, &limits).unwrap_err(),
            FrameError::HeaderTooLarge { limit: 64 }
        );
    }

    #[test]
    fn bad_content_length_names_value_and_offset() {
        let err = check(
            b"Content-Type: api/response\nContent-Length: 12x\n\n",
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "invalid Content-Length \"12x\" at byte 27");
    }

    #[test]
    fn line_without_colon_is_malformed() {
        let err = check(b"garbage line\n\n", &Limits::default()).unwrap_err();
        assert!(matches!(err, FrameError::Malformed { offset: 0, .. }));
    }

    #[test]
    fn connect_reply_headers_are_percent_decoded_on_request() {
        let f =
            one(b"Event-Name: CHANNEL_DATA\nContent-Type: command/reply\nReply-Text: %2BOK%0A\n\n");
        assert_eq!(f.reply_text().unwrap(), "+OK\n");
        assert_eq!(f.header("Reply-Text").unwrap(), b"%2BOK%0A");
    }

    #[test]
    fn invalid_utf8_in_values_is_kept_as_bytes() {
        let f = one(b"Content-Type: command/reply\nReply-Text: \xff\xfe\n\n");
        assert_eq!(f.header("reply-text").unwrap(), b"\xff\xfe");
    }
}
