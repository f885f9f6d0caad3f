//! The tokio-util codec: ESL frames in, encoded commands out.
//!
//! The decoder is a thin shell over the sans-IO [`frame::check`]: it asks whether a whole frame sits at the front
//! of the read buffer and, when one does, splits exactly those bytes off the `BytesMut` and freezes them into the
//! frame's `Bytes` (no copy: header names, values and the body stay slices of the bytes read from the socket). It
//! counts the bytes it has consumed so an error can name the stream offset where the bad frame starts, which is
//! what an operator needs to find it in a tcpdump of port 8021.
//!
//! The encoder writes a [`Request`]: a command already validated and encoded by [`command::write`] when it was
//! built, in the caller's task. Doing that work before the command reaches the connection means a command with an
//! injected line break is refused to its caller immediately and the connection's writer never sees it.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::command::{self, UnsendableCommand};
use super::frame::{self, Frame, FrameError, Limits, Status};

/// A read that cannot go on: the frame parser refused the bytes, the stream ended inside a frame, or IO failed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The frame starting at `offset` (bytes from the start of the stream) can never be parsed.
    #[error("bad ESL frame at stream offset {offset}: {source}")]
    Frame {
        offset: u64,
        #[source]
        source: FrameError,
    },
    /// The peer closed the stream with part of a frame still unread.
    #[error(
        "stream ended inside a frame at stream offset {offset} ({buffered} bytes of it received)"
    )]
    Truncated { offset: u64, buffered: usize },
    /// Reading or writing the socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Decoder of ESL frames and encoder of [`Request`]s.
#[derive(Debug, Clone)]
pub struct EslCodec {
    limits: Limits,
    /// Bytes consumed from the stream so far (the offset of the next frame).
    offset: u64,
}

impl EslCodec {
    /// A codec with the given limits (the maximum frame size bounds memory per connection).
    pub fn new(limits: Limits) -> EslCodec {
        EslCodec { limits, offset: 0 }
    }

    /// Stream offset of the next frame: the number of bytes decoded so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl Default for EslCodec {
    fn default() -> Self {
        EslCodec::new(Limits::default())
    }
}

impl Decoder for EslCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match frame::check(src, &self.limits) {
            Ok(Status::Partial) => {
                // Blank lines before a frame are tolerated by `check`; a buffer of nothing but blank lines stays
                // partial, so drop them here rather than let them accumulate.
                let blank = src
                    .iter()
                    .take_while(|&&b| b == b'\n' || b == b'\r')
                    .count();
                if blank == src.len() && blank > 0 {
                    src.advance(blank);
                    self.offset += blank as u64;
                }
                Ok(None)
            }
            Ok(Status::Complete(layout)) => {
                let total = layout.total();
                let raw: Bytes = src.split_to(total).freeze();
                self.offset += total as u64;
                Ok(Some(Frame::new(raw, layout)))
            }
            Err(source) => Err(CodecError::Frame {
                offset: self.offset,
                source,
            }),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.iter().all(|&b| b == b'\n' || b == b'\r') => {
                self.offset += src.len() as u64;
                src.clear();
                Ok(None)
            }
            None => Err(CodecError::Truncated {
                offset: self.offset,
                buffered: src.len(),
            }),
        }
    }
}

/// One client command, validated and encoded, ready to write. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    bytes: Bytes,
    line_len: usize,
}

impl Request {
    /// Encodes a command: its line (`api status`), header lines, and an optional body (sent with its
    /// `Content-Length`). Refuses line breaks in the line or header values, which would inject a second command.
    pub fn new(
        line: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Request, UnsendableCommand> {
        let mut out = Vec::with_capacity(line.len() + 2 + body.len() + headers.len() * 32);
        command::write(&mut out, line, headers, body)?;
        Ok(Request {
            bytes: Bytes::from(out),
            line_len: line.len(),
        })
    }

    /// A command that is only a line (`noevents`, `api status`).
    pub fn line(line: &str) -> Result<Request, UnsendableCommand> {
        Request::new(line, &[], b"")
    }

    /// The command line, without its terminator.
    pub fn command_line(&self) -> &str {
        // `new` built the bytes from a `&str` line, so this slice is valid UTF-8.
        std::str::from_utf8(&self.bytes[..self.line_len]).unwrap_or("")
    }

    /// The encoded bytes, exactly as they go on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("line", &self.command_line())
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Encoder<Request> for EslCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Request, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(&item.bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esl::ContentType;

    const STREAM: &[u8] = b"Content-Type: auth/request\n\n\
Content-Type: command/reply\nReply-Text: +OK accepted\n\n\
Content-Type: api/response\nContent-Length: 4\n\ntrue\
Content-Length: 23\nContent-Type: text/event-plain\n\nEvent-Name: HEARTBEAT\n\n";

    fn decode_all(codec: &mut EslCodec, buf: &mut BytesMut) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = codec.decode(buf).unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn decodes_consecutive_frames_and_counts_offset() {
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::from(STREAM);
        let frames = decode_all(&mut codec, &mut buf);
        let types: Vec<_> = frames.iter().map(Frame::content_type).collect();
        assert_eq!(
            types,
            [
                ContentType::AuthRequest,
                ContentType::CommandReply,
                ContentType::ApiResponse,
                ContentType::EventPlain
            ]
        );
        assert_eq!(&frames[2].body()[..], b"true");
        assert!(buf.is_empty());
        assert_eq!(codec.offset(), STREAM.len() as u64);
    }

    #[test]
    fn frame_bytes_share_the_read_buffer_allocation() {
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::from(STREAM);
        let base = buf.as_ptr() as usize;
        let frames = decode_all(&mut codec, &mut buf);
        let body = frames[2].body();
        let offset = body.as_ptr() as usize - base;
        assert_eq!(
            &STREAM[offset..offset + 4],
            b"true",
            "body is a view, not a copy"
        );
    }

    #[test]
    fn error_names_the_stream_offset_of_the_bad_frame() {
        let mut codec = EslCodec::default();
        let mut bytes = STREAM[..28].to_vec(); // auth/request frame
        bytes.extend_from_slice(b"Content-Type: api/response\nContent-Length: x1\n\n");
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(codec.decode(&mut buf).unwrap().is_some());
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Frame {
                    offset: 28,
                    source: FrameError::BadContentLength { offset: 27, .. }
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("stream offset 28"), "{err}");
    }

    #[test]
    fn oversized_frame_is_refused_by_the_configured_limit() {
        let mut codec = EslCodec::new(Limits { max_frame: 100 });
        let mut buf = BytesMut::from(&b"Content-Type: api/response\nContent-Length: 1000\n\n"[..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            CodecError::Frame {
                offset: 0,
                source: FrameError::TooLarge {
                    length: 1000,
                    limit: 100,
                    ..
                }
            }
        ));
    }

    #[test]
    fn eof_inside_a_frame_is_a_truncation_error() {
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::from(&STREAM[..40]);
        assert!(codec.decode_eof(&mut buf).unwrap().is_some());
        let err = codec.decode_eof(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Truncated {
                    offset: 28,
                    buffered: 12
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn eof_after_trailing_blank_lines_is_clean() {
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::from(&b"Content-Type: auth/request\n\n\n\n"[..]);
        assert!(codec.decode_eof(&mut buf).unwrap().is_some());
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        assert_eq!(codec.offset(), 30);
    }

    #[test]
    fn request_encoding_refuses_injection_and_keeps_the_line() {
        assert!(Request::line("api status\n\napi hupall").is_err());
        let r = Request::new("bgapi status", &[("Job-UUID", "42")], b"").unwrap();
        assert_eq!(r.command_line(), "bgapi status");
        let mut dst = BytesMut::new();
        EslCodec::default().encode(r, &mut dst).unwrap();
        assert_eq!(&dst[..], b"bgapi status\nJob-UUID: 42\n\n");
    }

    /// Real captures back to back, plus CRLF lines and a body of multi-byte UTF-8 (Content-Length counts bytes).
    fn capture_stream() -> &'static [u8] {
        static STREAM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        STREAM.get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/esl");
            let mut out = Vec::new();
            for name in [
                "auth_and_errors",
                "api_replies",
                "filters_nixevent_noevents",
                "log_data",
                "outbound_socket",
            ] {
                out.extend(
                    std::fs::read(dir.join(format!("{name}.bin"))).expect("capture present"),
                );
            }
            let body = "кот 😀 café\n";
            out.extend_from_slice(
                format!(
                    "Content-Type: api/response\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            out
        })
    }

    fn frames_of(
        chunks: impl Iterator<Item = std::ops::Range<usize>>,
        data: &[u8],
    ) -> Vec<(u64, Frame)> {
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for range in chunks {
            buf.extend_from_slice(&data[range]);
            loop {
                let offset = codec.offset();
                match codec.decode(&mut buf).expect("valid stream") {
                    Some(f) => out.push((offset, f)),
                    None => break,
                }
            }
        }
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        assert_eq!(codec.offset(), data.len() as u64);
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Splitting a valid stream anywhere (inside a UTF-8 character, inside `\n\n`, inside a body) gives the
        /// same frames, at the same offsets, as decoding it from one buffer.
        #[test]
        fn split_stream_decodes_like_one_buffer(
            random in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..300),
            dense_start in proptest::prelude::any::<proptest::sample::Index>(),
            dense_step in 1usize..8,
        ) {
            let data = capture_stream();
            let whole = frames_of(std::iter::once(0..data.len()), data);
            proptest::prop_assert!(whole.len() > 250, "stream has {} frames", whole.len());
            let start = dense_start.index(data.len());
            let mut cuts: Vec<usize> = random.iter().map(|i| i.index(data.len() + 1)).collect();
            cuts.extend((start..data.len().min(start + 3000)).step_by(dense_step));
            cuts.push(data.len());
            cuts.sort_unstable();
            cuts.dedup();
            let mut prev = 0;
            let ranges: Vec<_> = cuts.into_iter().map(|c| { let r = prev..c; prev = c; r }).collect();
            let split = frames_of(ranges.into_iter(), data);
            proptest::prop_assert_eq!(split.len(), whole.len());
            for ((o1, f1), (o2, f2)) in whole.iter().zip(&split) {
                proptest::prop_assert_eq!(o1, o2);
                proptest::prop_assert_eq!(f1.raw(), f2.raw());
                proptest::prop_assert_eq!(f1.layout(), f2.layout());
            }
        }
    }
}
