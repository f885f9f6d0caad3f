//! The dialing engine: claim → originate → track → classify → reschedule.
//!
//! - [`callflow`]: running a campaign's callflow on an answered call, injection-safe.
//! - [`originate`]: the originate command for one attempt, with escaping member data cannot break.
//! - [`state`]: campaign states and their history.

pub mod callflow;
pub mod originate;
pub mod state;
