//! `sendmsg <uuid>`: controlling a channel (execute an application, hang up) from an inbound connection.
//!
//! An application argument goes in the `execute-app-arg` header when it is one line; a multi-line argument goes
//! in the body with `content-type: text/plain`, which FreeSWITCH reads as the argument when the header is absent.
//! That keeps any argument from injecting extra headers or commands.

use super::error::ClientError;
use super::reply::word;
use crate::esl::codec::Request;

/// A message for `sendmsg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMsg {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl SendMsg {
    /// `call-command: execute` of `app` with `arg` (may be empty).
    pub fn execute(app: &str, arg: &str) -> SendMsg {
        let mut headers = vec![
            ("call-command".to_owned(), "execute".to_owned()),
            ("execute-app-name".to_owned(), app.to_owned()),
        ];
        let mut body = Vec::new();
        if arg.contains(['\n', '\r']) {
            headers.push(("content-type".to_owned(), "text/plain".to_owned()));
            body = arg.as_bytes().to_vec();
        } else if !arg.is_empty() {
            headers.push(("execute-app-arg".to_owned(), arg.to_owned()));
        }
        SendMsg { headers, body }
    }

    /// `call-command: hangup` with a cause (e.g. `NORMAL_CLEARING`).
    pub fn hangup(cause: &str) -> SendMsg {
        SendMsg {
            headers: vec![
                ("call-command".to_owned(), "hangup".to_owned()),
                ("hangup-cause".to_owned(), cause.to_owned()),
            ],
            body: Vec::new(),
        }
    }

    /// `event-lock: true`: the application runs before the next queued message (run steps in order).
    pub fn event_lock(self, lock: bool) -> SendMsg {
        self.header("event-lock", if lock { "true" } else { "false" })
    }

    /// `loops: n`: run the application n times.
    pub fn loops(self, n: u32) -> SendMsg {
        self.header("loops", &n.to_string())
    }

    /// `Event-UUID`: tags the CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE events (`Application-UUID`) so a step's
    /// completion can be matched exactly.
    pub fn event_uuid(self, id: &str) -> SendMsg {
        self.header("Event-UUID", id)
    }

    /// Any other header.
    pub fn header(mut self, name: &str, value: &str) -> SendMsg {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Encodes `sendmsg <uuid>` with these headers; refuses a bad uuid or a line break in a header.
    pub(crate) fn request(&self, uuid: &str) -> Result<Request, ClientError> {
        word("channel uuid", uuid)?;
        for (name, _) in &self.headers {
            word("sendmsg header name", name)?;
        }
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        Ok(Request::new(
            &format!("sendmsg {uuid}"),
            &headers,
            &self.body,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_argument_goes_in_a_header() {
        let r = SendMsg::execute("playback", "/tmp/a b.wav")
            .event_lock(true)
            .request("u-1")
            .unwrap();
        assert_eq!(
            &r.as_bytes()[..],
            b"sendmsg u-1\ncall-command: execute\nexecute-app-name: playback\n\
execute-app-arg: /tmp/a b.wav\nevent-lock: true\n\n"
        );
    }

    #[test]
    fn multi_line_argument_goes_in_the_body() {
        let r = SendMsg::execute("set", "x=1\nhangup: now")
            .request("u-1")
            .unwrap();
        assert_eq!(
            &r.as_bytes()[..],
            b"sendmsg u-1\ncall-command: execute\nexecute-app-name: set\ncontent-type: text/plain\n\
Content-Length: 15\n\nx=1\nhangup: now"
        );
    }

    #[test]
    fn injection_through_uuid_or_header_is_refused() {
        assert!(SendMsg::hangup("NORMAL_CLEARING").request("u 1").is_err());
        assert!(
            SendMsg::hangup("NORMAL_CLEARING\ncall-command: execute")
                .request("u")
                .is_err()
        );
        assert!(
            SendMsg::execute("answer", "")
                .header("a b", "c")
                .request("u")
                .is_err()
        );
    }
}
