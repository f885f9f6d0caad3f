//! Client → server commands: what an ESL client writes (`api status\n\n`, `bgapi …\nJob-UUID: …\n\n`,
//! `sendmsg <uuid>\ncall-command: execute\n…\n\n`).
//!
//! A command is a first line without a colon, optional header lines, a blank line, and a body when a
//! `Content-Length` header says so (sendmsg may carry one). The simulated switch parses them with [`check`] /
//! [`Command`]; the client writes them with [`write`]. Same sans-IO shape as [`super::frame`].

use bytes::Bytes;

use super::header::{self, Line};

/// Where a complete command lies at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandLayout {
    /// Blank lines skipped before the command line.
    pub skip: usize,
    /// End of the command line (without its line terminator).
    pub line_end: usize,
    /// End of the header block, blank line included.
    pub header_end: usize,
    /// Body length.
    pub body_len: usize,
}

/// A command that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("command longer than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("invalid Content-Length {0:?} in command")]
    BadContentLength(String),
}

/// Looks for one complete command at the start of `buf`: `Ok(None)` means read more.
pub fn check(buf: &[u8], max: usize) -> Result<Option<CommandLayout>, CommandError> {
    let mut pos = 0;
    let mut skip = 0;
    let mut line_end = None;
    let mut body_len = 0usize;
    loop {
        match header::line(&buf[pos..]) {
            Ok((after, line)) => {
                let start = pos;
                pos = buf.len() - after.len();
                match (line, line_end) {
                    (Line::End, None) => skip = pos,
                    (Line::End, Some(line_end)) => {
                        if pos + body_len > buf.len() {
                            return Ok(None);
                        }
                        return Ok(Some(CommandLayout {
                            skip,
                            line_end,
                            header_end: pos,
                            body_len,
                        }));
                    }
                    (Line::Bare(text) | Line::Header { name: text, .. }, None) => {
                        // The first line is the command itself, colons and all (`api uuid_getvar x a:b`).
                        let _ = text;
                        let mut end = pos - 1;
                        if end > start && buf[end - 1] == b'\r' {
                            end -= 1;
                        }
                        line_end = Some(end);
                    }
                    (Line::Header { name, value }, Some(_)) => {
                        if name.eq_ignore_ascii_case(b"Content-Length") {
                            body_len = std::str::from_utf8(value)
                                .ok()
                                .and_then(|v| v.parse().ok())
                                .ok_or_else(|| {
                                    CommandError::BadContentLength(
                                        String::from_utf8_lossy(value).into_owned(),
                                    )
                                })?;
                            if body_len > max {
                                return Err(CommandError::TooLarge { limit: max });
                            }
                        }
                    }
                    (Line::Bare(_), Some(_)) => {
                        // A header line without a colon: FreeSWITCH ignores it; so do we.
                    }
                }
                if pos > max {
                    return Err(CommandError::TooLarge { limit: max });
                }
            }
            Err(_) => {
                return if buf.len() > max {
                    Err(CommandError::TooLarge { limit: max })
                } else {
                    Ok(None)
                };
            }
        }
    }
}

/// A parsed client command; all parts are slices of one `Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    raw: Bytes,
    layout: CommandLayout,
}

impl Command {
    /// Wraps the bytes of a command found by [`check`].
    pub fn new(raw: Bytes, layout: CommandLayout) -> Command {
        Command { raw, layout }
    }

    /// The command line, e.g. `bgapi originate {…}loopback/x/default &park`.
    pub fn line(&self) -> &[u8] {
        &self.raw[self.layout.skip..self.layout.line_end]
    }

    /// Header lines after the command line, raw.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut rest = &self.raw[self.layout.line_end..self.layout.header_end];
        // Skip the command line's terminator.
        if let Ok((after, _)) = header::line(rest) {
            rest = after;
        }
        std::iter::from_fn(move || {
            loop {
                let (after, line) = header::line(rest).ok()?;
                rest = after;
                match line {
                    Line::Header { name, value } => return Some((name, value)),
                    Line::End => return None,
                    Line::Bare(_) => continue,
                }
            }
        })
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The body (sendmsg with Content-Length).
    pub fn body(&self) -> &[u8] {
        &self.raw[self.layout.header_end..self.layout.header_end + self.layout.body_len]
    }
}

/// Largest command FreeSWITCH accepts: it cuts an ESL packet at 10 MiB and drops the whole connection (failing
/// every other job on it) on a longer one.
pub const MAX_COMMAND_BYTES: usize = 10 * 1024 * 1024;

/// Writes a command: its line, headers, a blank line, and the body (with its `Content-Length`).
///
/// The command line and header values must not contain `\n`: a newline would end the command early and let the
/// rest be read as another command. Callers building commands from outside data must check; this returns an error
/// naming the offending part instead of writing it. A command longer than [`MAX_COMMAND_BYTES`] is refused too
/// (nothing is left in `out`), so it can never reach a socket.
pub fn write(
    out: &mut Vec<u8>,
    line: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), UnsendableCommand> {
    if line.contains(['\n', '\r']) {
        return Err(UnsendableCommand::LineBreak("command line".into()));
    }
    for (n, v) in headers {
        if n.contains(['\n', '\r', ':']) || v.contains(['\n', '\r']) {
            return Err(UnsendableCommand::LineBreak(format!("header {n:?}")));
        }
    }
    let start = out.len();
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
    // After the command line, a command is laid out like a frame: headers, Content-Length, blank line, body.
    super::encode::frame_into(out, headers, body);
    let len = out.len() - start;
    if len > MAX_COMMAND_BYTES {
        out.truncate(start);
        return Err(UnsendableCommand::TooLong {
            len,
            limit: MAX_COMMAND_BYTES,
        });
    }
    Ok(())
}

/// A command the client must not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsendableCommand {
    /// A command part contained a line break (which would inject a second command).
    #[error("line break in the {0} of an ESL command")]
    LineBreak(String),
    /// Longer than FreeSWITCH accepts.
    #[error("ESL command of {len} bytes, over FreeSWITCH's limit of {limit}")]
    TooLong { len: usize, limit: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Command {
        let layout = check(buf, 1 << 20).unwrap().unwrap();
        Command::new(Bytes::copy_from_slice(buf), layout)
    }

    #[test]
    fn bgapi_with_job_uuid_header() {
        let c = parse(b"bgapi originate {a=b}loopback/x/default &park\nJob-UUID: 42\n\n");
        assert_eq!(c.line(), b"bgapi originate {a=b}loopback/x/default &park");
        assert_eq!(c.header("job-uuid"), Some(&b"42"[..]));
    }

    #[test]
    fn command_line_with_colon_is_still_the_command() {
        let c = parse(b"api uuid_setvar u k a:b\n\n");
        assert_eq!(c.line(), b"api uuid_setvar u k a:b");
        assert_eq!(c.headers().count(), 0);
    }

    #[test]
    fn sendmsg_with_body() {
        let c = parse(b"sendmsg u\ncall-command: execute\nContent-Length: 3\n\nabc");
        assert_eq!(c.header("call-command"), Some(&b"execute"[..]));
        assert_eq!(c.body(), b"abc");
    }

    #[test]
    fn incomplete_command_asks_for_more() {
        assert_eq!(check(b"api status\n", 1024).unwrap(), None);
    }

    #[test]
    fn writer_refuses_newline_injection() {
        let mut out = Vec::new();
        assert!(write(&mut out, "api status\n\napi hupall", &[], b"").is_err());
        assert!(
            write(
                &mut out,
                "sendmsg u",
                &[("execute-app-arg", "x\nY: z")],
                b""
            )
            .is_err()
        );
        assert!(out.is_empty());
    }

    #[test]
    fn writer_refuses_a_command_longer_than_freeswitch_accepts_and_writes_nothing() {
        let mut out = b"before".to_vec();
        let arg = "x".repeat(MAX_COMMAND_BYTES);
        let e = write(&mut out, &format!("bgapi originate {arg}"), &[], b"").unwrap_err();
        assert!(
            matches!(
                e,
                UnsendableCommand::TooLong {
                    limit: MAX_COMMAND_BYTES,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(out, b"before");
        // Exactly the limit (line, its newline, the blank line) is written.
        let line = "x".repeat(MAX_COMMAND_BYTES - 2);
        write(&mut out, &line, &[], b"").unwrap();
        assert_eq!(out.len(), 6 + MAX_COMMAND_BYTES);
    }
}
