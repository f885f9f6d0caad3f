//! The dialing engine: claim → originate → track → classify → reschedule.
//!
//! - [`originate`]: the originate command for one attempt, with escaping member data cannot break.
//! - [`state`]: campaign states and their history.
//! - [`pacing`]: local token buckets.
//! - [`core`]: the pure engine state machine (inputs and time in, actions out).
//! - [`shell`]: the async shell wiring the core to the store and the ESL clients.
//! - [`clock`]: real or sped-up time.
//! - [`demo`]: `fsdialer demo`, the embedded default end to end.

pub mod clock;
pub mod core;
pub mod demo;
pub mod originate;
pub mod pacing;
pub mod shell;
pub mod state;

/// The callflow runner the engine uses for answered calls (none until `engine::callflow` lands).
pub fn default_callflow() -> Option<shell::CallflowStarter> {
    None
}
