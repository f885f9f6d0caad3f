//! A command's reply (`Content-Type: command/reply`), and the checks that keep command arguments from changing a
//! command's meaning.

use std::borrow::Cow;

use super::error::ClientError;
use crate::esl::{ContentType, Frame};

/// FreeSWITCH's answer to a command: `Reply-Text` and any extra headers (bgapi's `Job-UUID`).
#[derive(Debug, Clone)]
pub struct Reply {
    frame: Frame,
}

impl Reply {
    pub(crate) fn new(frame: Frame) -> Reply {
        Reply { frame }
    }

    /// `Reply-Text`, decoded (empty when absent).
    pub fn text(&self) -> Cow<'_, str> {
        self.frame.reply_text().unwrap_or(Cow::Borrowed(""))
    }

    /// Whether the reply starts with `+OK`.
    pub fn is_ok(&self) -> bool {
        self.text().starts_with("+OK")
    }

    /// Another header of the reply, decoded.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.frame.header_text(name)
    }

    /// The whole frame.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }
}

/// Reads a reply frame as a command's success: a `command/reply` starting with `+`, else `CommandFailed`.
pub(crate) fn accept(command: &str, frame: Frame) -> Result<Reply, ClientError> {
    if frame.content_type() == ContentType::CommandReply {
        let reply = Reply::new(frame);
        if reply.text().starts_with('+') {
            return Ok(reply);
        }
        return Err(ClientError::CommandFailed {
            command: command.to_owned(),
            reply: reply.text().into_owned(),
        });
    }
    Err(ClientError::CommandFailed {
        command: command.to_owned(),
        reply: format!(
            "unexpected {} reply",
            frame
                .content_type_raw()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_else(|| "untyped".into())
        ),
    })
}

/// A single token (event name, header name, uuid): non-empty, no whitespace or control characters.
pub(crate) fn word<'a>(what: &str, value: &'a str) -> Result<&'a str, ClientError> {
    if value.is_empty() {
        return Err(ClientError::InvalidArgument(format!("{what} is empty")));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ClientError::InvalidArgument(format!(
            "{what} {value:?} contains whitespace or a control character"
        )));
    }
    Ok(value)
}

/// Free text for the end of a command line (api arguments, a filter value): non-empty, no line breaks.
pub(crate) fn text<'a>(what: &str, value: &'a str) -> Result<&'a str, ClientError> {
    if value.trim().is_empty() {
        return Err(ClientError::InvalidArgument(format!("{what} is empty")));
    }
    if value.contains(['\n', '\r']) {
        return Err(ClientError::InvalidArgument(format!(
            "{what} {value:?} contains a line break"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esl::Limits;
    use bytes::Bytes;

    fn frame(raw: &'static [u8]) -> Frame {
        Frame::parse(&Bytes::from_static(raw), &Limits::default())
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn plus_reply_is_accepted_and_minus_reply_names_command_and_text() {
        let ok = accept(
            "event plain ALL",
            frame(b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"),
        )
        .unwrap();
        assert!(ok.is_ok());
        let err = accept(
            "noevents",
            frame(b"Content-Type: command/reply\nReply-Text: -ERR not listening for events\n\n"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "FreeSWITCH refused `noevents`: -ERR not listening for events"
        );
    }

    #[test]
    fn words_and_texts_refuse_what_would_split_a_command() {
        assert!(word("event name", "CHANNEL ANSWER").is_err());
        assert!(word("uuid", "").is_err());
        assert!(word("header", "Unique-ID").is_ok());
        assert!(text("filter value", "a b").is_ok());
        assert!(text("filter value", "a\nb").is_err());
        assert!(text("api command", "  ").is_err());
    }
}
