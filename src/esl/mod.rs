//! The FreeSWITCH Event Socket (ESL) protocol.
//!
//! - [`header`]: the `Name: value` line grammar and percent-decoding (nom, streaming).
//! - [`frame`]: the sans-IO frame parser: bytes in, complete frames (zero-copy) or "need more" out.
//! - [`event`]: event-plain / event-json / event-xml bodies decoded to one [`Event`] type.
//! - [`encode`]: writing frames and events exactly as FreeSWITCH does (used by the simulated switch).
//! - [`command`]: client commands, parsed (by the simulated switch) and written (by the client).
//! - [`dump`]: `fsdialer esl parse`, a capture to JSON lines.
//! - [`codec`]: the tokio-util codec (frames in, encoded commands out) over those.
//! - [`client`]: the inbound-mode client: auth, api, bgapi with Job-UUID, events, reconnect.

pub mod client;
pub mod codec;
pub mod command;
pub mod dump;
pub mod encode;
pub mod event;
pub mod frame;
pub mod header;

pub use event::{Event, EventError};
pub use frame::{ContentType, Frame, FrameError, Layout, Limits, Status};
