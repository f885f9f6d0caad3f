//! Walking a callflow's step tree on one answered call.
//!
//! Steps run one at a time, in order; `if` and `switch` pick a branch locally (from the flow's, the member's and
//! the channel's variables) and run it in place. Each executed step renders its argument
//! ([`command`](super::command)), sends it with event-lock and a fresh `Event-UUID`, and waits for the matching
//! CHANNEL_EXECUTE_COMPLETE within a limit derived from the step ([`RunnerConfig`]). The flow ends:
//! - at `transfer` (completed), `bridge` (CHANNEL_BRIDGE seen) or `hangup`;
//! - when the channel hangs up, at once, whatever step was waiting;
//! - on a failing step (refused argument, `-ERR` reply, `FILE NOT FOUND`/`PLAYBACK ERROR`, bridge not connected,
//!   time limit, lost connection): recorded, then the call is hung up with NORMAL_CLEARING;
//! - off its end: the call is hung up with NORMAL_CLEARING, so no call lingers parked.
//!
//! Before a `bridge` the runner sets `hangup_after_bridge=true` (the caller hangs up when the far side does, it
//! does not fall back into park with no flow to drive it) and `continue_on_fail=true` (a bridge that does not
//! connect returns to the flow, which records it, instead of FreeSWITCH hanging the caller up with the far end's
//! cause).

use super::folders::MediaFolders;
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::context::{CallContext, Scope};
use super::link::{Link, Stop};
use super::outcome::{CallflowOutcome, Ended, StepError};
use super::steps::Next;
use crate::campaign::callflow::{Callflow, Step};
use crate::esl::Event;
use crate::esl::client::Client;

/// Time limits and options of the runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Applications that complete at once (`answer`, `set`, `record_session`, `transfer`, `hangup`), and the
    /// slack added to every timed limit. Default 10 s.
    pub quick_timeout: Duration,
    /// Longest playback expected of one file (its length is unknown). Default 5 min.
    pub playback_timeout: Duration,
    /// From `bridge` until the call is bridged or the bridge failed. Default 2 min.
    pub bridge_timeout: Duration,
    /// The channel variable `result {success}` writes (`success` / `failure`) so the CDR carries it; `None` to
    /// keep the result local. Default `dlr_result`.
    pub result_variable: Option<String>,
    /// Where files may be played from and recorded into. Default: not confined beyond the render rules.
    pub folders: MediaFolders,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            quick_timeout: Duration::from_secs(10),
            playback_timeout: Duration::from_secs(300),
            bridge_timeout: Duration::from_secs(120),
            result_variable: Some("dlr_result".into()),
            folders: MediaFolders::default(),
        }
    }
}

/// The cause the runner hangs up with when the flow ends without a `hangup` step or on an error.
pub const RUNNER_HANGUP_CAUSE: &str = "NORMAL_CLEARING";

/// Runs `flow` on the answered, parked channel `uuid` with the default [`RunnerConfig`]. See [`run_with`].
pub async fn run(
    client: &Client,
    uuid: Uuid,
    flow: &Callflow,
    ctx: &CallContext,
    events: &mut mpsc::Receiver<Event>,
) -> CallflowOutcome {
    run_with(&RunnerConfig::default(), client, uuid, flow, ctx, events).await
}

/// Runs `flow` on the answered, parked channel `uuid`. `events` must carry every event whose `Unique-ID` is
/// `uuid` (see the module doc of [`super`] for the names the runner reads); it is drained continuously. Returns
/// when the flow has ended; the call is then transferred, bridged or hung up (or hanging up).
pub async fn run_with(
    config: &RunnerConfig,
    client: &Client,
    uuid: Uuid,
    flow: &Callflow,
    ctx: &CallContext,
    events: &mut mpsc::Receiver<Event>,
) -> CallflowOutcome {
    let mut run = Run {
        config,
        link: Link::new(client, uuid, events),
        scope: Scope::new(ctx),
        outcome: CallflowOutcome::new(),
    };
    run.scope
        .channel
        .entry("uuid".into())
        .or_insert_with(|| uuid.hyphenated().to_string());
    let walk = run.walk(flow).await;
    let outcome = run.finish(walk).await;
    tracing::debug!(
        uuid = %uuid,
        ended = ?outcome.ended,
        result = ?outcome.result,
        steps = outcome.steps.len(),
        "callflow ended"
    );
    outcome
}

/// What ended the walk.
pub(super) enum Walk {
    /// Ran off the end of the flow.
    End,
    /// A final step or a hangup: nothing more to do.
    Over(Ended),
    /// A step failed; the call must be hung up.
    Failed(StepError),
}

pub(super) struct Run<'a, 'c> {
    pub(super) config: &'a RunnerConfig,
    pub(super) link: Link<'a>,
    pub(super) scope: Scope<'c>,
    pub(super) outcome: CallflowOutcome,
}

/// A branch being run: its steps, the next index and the path prefix of its steps.
struct Frame<'f> {
    steps: &'f [Step],
    next: usize,
    prefix: String,
}

impl Run<'_, '_> {
    async fn walk(&mut self, flow: &Callflow) -> Walk {
        let mut stack = vec![Frame {
            steps: flow.steps(),
            next: 0,
            prefix: "callflow".into(),
        }];
        while let Some(top) = stack.last_mut() {
            let Some(step) = top.steps.get(top.next) else {
                stack.pop();
                continue;
            };
            let path = format!("{}[{}].{}", top.prefix, top.next, step.application());
            top.next += 1;
            match self.step(step, &path).await {
                Next::Continue => {}
                Next::Enter { steps, label } => stack.push(Frame {
                    steps,
                    next: 0,
                    prefix: format!("{path}.{label}"),
                }),
                Next::Stop(walk) => return walk,
            }
        }
        Walk::End
    }

    /// Ends the run: hangs the call up when the flow left it up, fills in how it ended.
    async fn finish(mut self, walk: Walk) -> CallflowOutcome {
        let ended = match walk {
            Walk::Over(ended) => ended,
            // A hangup already delivered makes this the callee's ending, not the flow's.
            Walk::End => match self.link.settle(&mut self.scope) {
                Err(stop) => self.stopped_at_end(stop),
                Ok(()) => {
                    self.kill().await;
                    Ended::EndOfFlow
                }
            },
            Walk::Failed(error) => {
                tracing::info!(
                    uuid = %self.link.uuid(),
                    path = %error.path,
                    error = %error.message,
                    "callflow step failed"
                );
                self.outcome.error = Some(error);
                match self.link.settle(&mut self.scope) {
                    Err(stop) => {
                        self.stopped_at_end(stop);
                    }
                    Ok(()) => self.kill().await,
                }
                Ended::Error
            }
        };
        self.outcome.ended = ended;
        self.outcome
    }

    async fn kill(&mut self) {
        if let Err(e) = self
            .link
            .kill(RUNNER_HANGUP_CAUSE, self.config.quick_timeout)
            .await
        {
            tracing::warn!(uuid = %self.link.uuid(), error = %e, "could not hang up the call after its callflow");
        }
    }

    /// The ending a hangup seen after the last step means (`settle` stops only at a hangup).
    fn stopped_at_end(&mut self, stop: Stop) -> Ended {
        let cause = match stop {
            Stop::Hangup { cause } => cause,
            _ => None,
        };
        self.outcome.hangup_cause.clone_from(&cause);
        Ended::CalleeHangup { cause }
    }
}
