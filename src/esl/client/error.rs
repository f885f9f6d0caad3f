//! What can go wrong talking to FreeSWITCH, as one cloneable error type.
//!
//! Cloneable because one event fans out to many waiters: when a socket dies, every command in flight and every
//! pending background job fails with the same [`ClientError::ConnectionLost`]. Sources that are not `Clone`
//! (IO and codec errors) are kept as their message.

use crate::esl::command::UnsendableCommand;

/// An error from the inbound ESL client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// TCP connect failed or timed out.
    #[error("cannot connect to FreeSWITCH at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// FreeSWITCH answered `auth`/`userauth` with `-ERR …` (wrong password or user); it then disconnects.
    #[error("FreeSWITCH at {addr} refused the credentials: {reply}")]
    AuthFailed { addr: String, reply: String },
    /// FreeSWITCH's access list refused this client (`text/rude-rejection`) before asking for a password.
    #[error("FreeSWITCH at {addr} refused the connection by its access list: {text}")]
    Rejected { addr: String, text: String },
    /// The peer did not speak ESL as expected (e.g. no `auth/request` greeting, or a bad frame).
    #[error("ESL protocol error from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
    /// The connection was lost (socket closed or broken, bad frame, reply timeout) while this waited: a
    /// command whose reply never came, or a background job whose `BACKGROUND_JOB` never came. Whether the command
    /// ran is unknown; reconcile (e.g. `uuid_exists`).
    #[error("ESL connection lost: {reason}")]
    ConnectionLost { reason: String },
    /// No connection right now (the client is reconnecting); the command was not sent.
    #[error("not connected to FreeSWITCH (reconnecting): {reason}")]
    NotConnected { reason: String },
    /// The client was closed (`exit`, reconnect attempts exhausted, or every handle dropped).
    #[error("ESL client closed: {reason}")]
    Closed { reason: String },
    /// FreeSWITCH answered the command with an error reply (`-ERR …`, `-USAGE …`).
    #[error("FreeSWITCH refused `{command}`: {reply}")]
    CommandFailed { command: String, reply: String },
    /// A command built from outside data contained a line break (which would inject another command) or was
    /// longer than FreeSWITCH accepts; it was not sent.
    #[error(transparent)]
    InvalidCommand(#[from] UnsendableCommand),
    /// An argument the client refuses before sending (empty list, whitespace in a name, …).
    #[error("invalid ESL command argument: {0}")]
    InvalidArgument(String),
    /// The client configuration is unusable.
    #[error("invalid ESL client configuration: {0}")]
    InvalidConfig(String),
}

impl ClientError {
    /// Whether the failure is about the connection (retrying later may succeed), not the command itself.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::ConnectionLost { .. }
                | ClientError::NotConnected { .. }
                | ClientError::Protocol { .. }
        )
    }
}
