//! The dialing engine: claim → originate → track → classify → reschedule.
//!
//! - [`originate`]: the originate command for one attempt, with escaping member data cannot break.
//! - [`state`]: campaign states and their history.

pub mod originate;
pub mod state;
