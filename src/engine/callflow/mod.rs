//! Running a campaign's callflow (SPEC §7) on one answered call, over ESL.
//!
//! The engine calls [`run`] once per answered call, after the originate's `&park()` has parked the channel:
//!
//! ```text
//! let (tx, mut rx) = tokio::sync::mpsc::channel(64);
//! // the engine's event dispatcher: for every ESL event whose Unique-ID is the call's uuid,
//! //     if callflow::wants(&event) { let _ = tx.send(event).await; }   // Err = the flow has ended
//! let ctx = CallContext::new(member_name, number).with_variables(member_variables);
//! let outcome = callflow::run(&client, attempt_id, flow, &ctx, &mut rx).await;
//! // record `outcome` with the attempt; the call's CHANNEL_HANGUP_COMPLETE is tracked as for any call
//! ```
//!
//! **Events.** The runner needs the call's [`EVENTS`] (CHANNEL_EXECUTE_COMPLETE to finish each step,
//! CHANNEL_BRIDGE for `bridge`, CHANNEL_HANGUP / CHANNEL_HANGUP_COMPLETE to stop at once; every forwarded event's
//! `variable_*` headers refresh the channel variables `${name}` can read). Forwarding more is harmless; events of
//! other calls are ignored. The runner keeps draining the receiver even while it waits for a command's reply, so
//! the engine may forward with a blocking `send` without stalling the ESL reader. Once [`run`] has returned the
//! receiver is dropped: a failed `send` just means the flow is over. The switch must be subscribed to those
//! events (`event plain CHANNEL_EXECUTE_COMPLETE CHANNEL_BRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE …`).
//!
//! **Safety.** Member data cannot add arguments or applications: values are checked per argument field and
//! whole arguments are escaped against FreeSWITCH's `${…}` expansion ([`render`], [`command`], [`expand`]).
//!
//! Layout: [`context`] (the call's variables and their lookup order), [`render`] (fields and what member data
//! may hold in each), [`expand`] (surviving `${…}` expansion), [`command`] (each step's application and
//! argument), `link` (commands out, events in), `runner` (the walk, its limits and ending), `steps` (one step
//! at a time), [`outcome`] (the record).

pub mod command;
pub mod context;
pub mod expand;
pub mod folders;
mod link;
pub mod outcome;
pub mod render;
mod runner;
mod steps;

pub use context::CallContext;
pub use folders::MediaFolders;
pub use outcome::{CallflowOutcome, DigitsInput, Ended, StepError, StepErrorKind, StepRun};
pub use runner::{RUNNER_HANGUP_CAUSE, RunnerConfig, run, run_with};

use crate::esl::Event;

/// The events of a call the runner reads; the engine forwards those whose `Unique-ID` is the call's uuid.
pub const EVENTS: &[&str] = &[
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_BRIDGE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
];

/// Whether the runner of call `uuid` wants `event` (it is the call's and one of [`EVENTS`]).
pub fn wants(event: &Event, uuid: &str) -> bool {
    event
        .unique_id()
        .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
        && event.name().is_some_and(|n| EVENTS.contains(&n))
}
