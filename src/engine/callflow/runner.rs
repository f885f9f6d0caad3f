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

use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::command::{self, Command};
use super::context::{CallContext, Scope};
use super::link::{Done, Link, Stop};
use super::outcome::{CallflowOutcome, DigitsInput, Ended, StepError, StepErrorKind, StepRun};
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
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            quick_timeout: Duration::from_secs(10),
            playback_timeout: Duration::from_secs(300),
            bridge_timeout: Duration::from_secs(120),
            result_variable: Some("dlr_result".into()),
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
enum Walk {
    /// Ran off the end of the flow.
    End,
    /// A final step or a hangup: nothing more to do.
    Over(Ended),
    /// A step failed; the call must be hung up.
    Failed(StepError),
}

struct Run<'a, 'c> {
    config: &'a RunnerConfig,
    link: Link<'a>,
    scope: Scope<'c>,
    outcome: CallflowOutcome,
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

    fn record(&mut self, path: &str, step: &Step, detail: Option<String>) {
        self.outcome.steps.push(StepRun {
            path: path.to_string(),
            application: step.application().to_string(),
            detail,
        });
    }

    fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.scope.get(name)
    }

    /// Runs one step.
    async fn step<'f>(&mut self, step: &'f Step, path: &str) -> Next<'f> {
        match step {
            Step::If(s) => {
                let then = s.expr.eval(self.lookup());
                let (steps, label) = if then {
                    (&s.then[..], "then")
                } else {
                    (&s.otherwise[..], "else")
                };
                self.record(path, step, Some(label.into()));
                Next::Enter {
                    steps,
                    label: label.into(),
                }
            }
            Step::Switch(s) => {
                let value = self.scope.get(&s.var).unwrap_or_default();
                let steps = s.branch(Some(&value));
                let label = match s.cases.iter().find(|(k, _)| *k == value) {
                    Some((key, _)) => case_label(key),
                    None => "default".to_string(),
                };
                self.record(path, step, Some(label.clone()));
                Next::Enter { steps, label }
            }
            Step::Result { success } => {
                self.outcome.result = Some(*success);
                self.record(path, step, Some(success.to_string()));
                let Some(var) = self.config.result_variable.clone() else {
                    return Next::Continue;
                };
                let value = if *success { "success" } else { "failure" };
                let cmd = command::set_literal(&var, value);
                match self.exec(path, &cmd, self.config.quick_timeout).await {
                    Ok(_) => Next::Continue,
                    Err(next) => next,
                }
            }
            Step::Answer => self.simple(path, step, Ok(command::answer())).await,
            Step::Sleep { ms } => {
                let limit = Duration::from_millis(*ms) + self.config.quick_timeout;
                self.timed(path, step, Ok(command::sleep(*ms)), limit).await
            }
            Step::Playback { file } => {
                let cmd = command::playback(file, &self.lookup());
                let limit = self.config.playback_timeout + self.config.quick_timeout;
                self.timed(path, step, cmd, limit).await
            }
            Step::RecordSession { path: file } => {
                let cmd = command::record_session(file, &self.lookup());
                self.simple(path, step, cmd).await
            }
            Step::Set { vars } => {
                self.record(path, step, None);
                for (name, template) in vars {
                    let built = command::set(name, template, &self.lookup());
                    let (cmd, value) = match built {
                        Ok(b) => b,
                        Err(refusal) => return refused(path, refusal),
                    };
                    if let Err(next) = self.exec(path, &cmd, self.config.quick_timeout).await {
                        return next;
                    }
                    self.scope.flow.insert(name.clone(), value.clone());
                    self.outcome.variables.push((name.clone(), value));
                }
                Next::Continue
            }
            Step::PlayAndGetDigits(p) => {
                let built = command::play_and_get_digits(p, &self.lookup());
                let cmd = match built {
                    Ok(c) => c,
                    Err(refusal) => {
                        self.record(path, step, None);
                        return refused(path, refusal);
                    }
                };
                let per_try =
                    Duration::from_millis(p.timeout_ms) + self.config.playback_timeout * 2;
                let limit = per_try * p.tries + self.config.quick_timeout;
                let done = self.exec(path, &cmd, limit).await;
                let event = match done {
                    Ok(Done::Completed(event)) => event,
                    Ok(Done::Bridged) => unreachable!("bridge not awaited"),
                    Err(next) => {
                        self.record(path, step, None);
                        return next;
                    }
                };
                let entered = event.variable(&p.var).unwrap_or_default().to_string();
                let digits = command::accept_digits(p, &entered);
                let value = digits.clone().unwrap_or_default();
                self.record(path, step, Some(value.clone()));
                self.outcome.digits.push(DigitsInput {
                    path: path.to_string(),
                    var: p.var.clone(),
                    digits,
                    entered,
                });
                self.scope.flow.insert(p.var.clone(), value.clone());
                self.outcome.variables.push((p.var.clone(), value));
                Next::Continue
            }
            Step::Transfer {
                extension,
                dialplan,
                context,
            } => {
                let built = command::transfer(
                    extension,
                    dialplan.as_ref(),
                    context.as_ref(),
                    &self.lookup(),
                );
                let (cmd, destination) = match built {
                    Ok(b) => b,
                    Err(refusal) => {
                        self.record(path, step, None);
                        return refused(path, refusal);
                    }
                };
                self.record(path, step, Some(destination.clone()));
                match self.exec(path, &cmd, self.config.quick_timeout).await {
                    Ok(_) => Next::Stop(Walk::Over(Ended::Transferred { destination })),
                    Err(next) => next,
                }
            }
            Step::Bridge { endpoint } => self.bridge(path, step, endpoint).await,
            Step::Hangup { cause } => {
                let cmd = command::hangup(cause.as_deref());
                self.record(path, step, Some(cmd.arg.clone()));
                let flow_hangup = Ended::FlowHangup {
                    cause: cmd.arg.clone(),
                };
                match self
                    .link
                    .execute(
                        &mut self.scope,
                        cmd.app,
                        &cmd.arg,
                        self.config.quick_timeout,
                        false,
                    )
                    .await
                {
                    Ok(_) => Next::Stop(Walk::Over(flow_hangup)),
                    Err(Stop::Hangup { cause }) => {
                        self.outcome.hangup_cause = cause;
                        Next::Stop(Walk::Over(flow_hangup))
                    }
                    Err(stop) => self.stopped(path, stop),
                }
            }
        }
    }

    async fn bridge<'f>(
        &mut self,
        path: &str,
        step: &Step,
        endpoint: &crate::campaign::callflow::Template,
    ) -> Next<'f> {
        let built = command::bridge(endpoint, &self.lookup());
        let (cmd, rendered) = match built {
            Ok(b) => b,
            Err(refusal) => {
                self.record(path, step, None);
                return refused(path, refusal);
            }
        };
        self.record(path, step, Some(rendered.clone()));
        for (name, value) in [
            ("hangup_after_bridge", "true"),
            ("continue_on_fail", "true"),
        ] {
            if let Err(next) = self
                .exec(
                    path,
                    &command::set_literal(name, value),
                    self.config.quick_timeout,
                )
                .await
            {
                return next;
            }
        }
        match self
            .link
            .execute(
                &mut self.scope,
                cmd.app,
                &cmd.arg,
                self.config.bridge_timeout,
                true,
            )
            .await
        {
            Ok(Done::Bridged) => Next::Stop(Walk::Over(Ended::Bridged { endpoint: rendered })),
            Ok(Done::Completed(event)) => {
                let why = event
                    .variable("originate_failed_cause")
                    .or_else(|| event.variable("originate_disposition"))
                    .or_else(|| response(&event))
                    .unwrap_or("no cause given")
                    .to_string();
                failed(
                    path,
                    StepErrorKind::Failed,
                    format!("bridge to {rendered} did not connect: {why}"),
                )
            }
            Err(stop) => self.stopped(path, stop),
        }
    }

    /// An application that completes at once.
    async fn simple<'f>(
        &mut self,
        path: &str,
        step: &Step,
        cmd: Result<Command, super::render::Refusal>,
    ) -> Next<'f> {
        self.timed(path, step, cmd, self.config.quick_timeout).await
    }

    /// Records the step, executes it within `limit` and checks its response.
    async fn timed<'f>(
        &mut self,
        path: &str,
        step: &Step,
        cmd: Result<Command, super::render::Refusal>,
        limit: Duration,
    ) -> Next<'f> {
        let cmd = match cmd {
            Ok(c) => c,
            Err(refusal) => {
                self.record(path, step, None);
                return refused(path, refusal);
            }
        };
        match self.exec(path, &cmd, limit).await {
            Ok(Done::Completed(event)) => {
                let resp = response(&event).map(str::to_string);
                self.record(path, step, resp.clone());
                match resp.as_deref() {
                    Some(r @ ("FILE NOT FOUND" | "PLAYBACK ERROR")) => failed(
                        path,
                        StepErrorKind::Failed,
                        format!("{} {}: {r}", cmd.app, cmd.arg),
                    ),
                    _ => Next::Continue,
                }
            }
            Ok(Done::Bridged) => {
                self.record(path, step, None);
                Next::Continue
            }
            Err(next) => {
                self.record(path, step, None);
                next
            }
        }
    }

    /// Executes one command; a stop, or an `-ERR …` application response, becomes the step's ending.
    async fn exec<'f>(
        &mut self,
        path: &str,
        cmd: &Command,
        limit: Duration,
    ) -> Result<Done, Next<'f>> {
        let done = self
            .link
            .execute(&mut self.scope, cmd.app, &cmd.arg, limit, false)
            .await;
        match done {
            Ok(Done::Completed(event)) => match response(&event) {
                Some(r) if r.starts_with("-ERR") => Err(failed(
                    path,
                    StepErrorKind::Failed,
                    format!("{} {}: {r}", cmd.app, cmd.arg),
                )),
                _ => Ok(Done::Completed(event)),
            },
            Ok(other) => Ok(other),
            Err(stop) => Err(self.stopped(path, stop)),
        }
    }

    fn stopped<'f>(&mut self, path: &str, stop: Stop) -> Next<'f> {
        let kind = match &stop {
            Stop::Hangup { cause } => {
                self.outcome.hangup_cause.clone_from(cause);
                return Next::Stop(Walk::Over(Ended::CalleeHangup {
                    cause: cause.clone(),
                }));
            }
            Stop::Gone { .. } => {
                return Next::Stop(Walk::Over(Ended::CalleeHangup { cause: None }));
            }
            Stop::Rejected { .. } => StepErrorKind::Rejected,
            Stop::Timeout { .. } => StepErrorKind::Timeout,
            Stop::Connection { .. } | Stop::EventsClosed => StepErrorKind::Connection,
        };
        failed(path, kind, describe_stop(&stop))
    }
}

/// What to do after a step.
enum Next<'f> {
    Continue,
    /// Run these steps now (an `if` / `switch` branch), under `path.label`.
    Enter {
        steps: &'f [Step],
        label: String,
    },
    Stop(Walk),
}

fn refused<'f>(path: &str, refusal: super::render::Refusal) -> Next<'f> {
    failed(path, StepErrorKind::Refused, refusal.message)
}

fn failed<'f>(path: &str, kind: StepErrorKind, message: String) -> Next<'f> {
    Next::Stop(Walk::Failed(StepError {
        path: path.to_string(),
        kind,
        message,
    }))
}

/// `Application-Response`, unless it is FreeSWITCH's "nothing" (`_none_`).
fn response(event: &Event) -> Option<&str> {
    event
        .get("Application-Response")
        .filter(|r| !r.is_empty() && *r != "_none_")
}

/// The path label of a switch case, as the validator writes it.
fn case_label(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_') {
        format!("cases.{key}")
    } else {
        format!("cases[{key:?}]")
    }
}

fn describe_stop(stop: &Stop) -> String {
    match stop {
        Stop::Hangup { cause } => format!(
            "the channel hung up ({})",
            cause.as_deref().unwrap_or("no cause")
        ),
        Stop::Gone { reply } => format!("the channel is gone: {reply}"),
        Stop::Rejected { reply } => format!("FreeSWITCH refused the command: {reply}"),
        Stop::Timeout { waited } => format!(
            "no CHANNEL_EXECUTE_COMPLETE within {:.1} s",
            waited.as_secs_f64()
        ),
        Stop::Connection { error } => format!("ESL: {error}"),
        Stop::EventsClosed => "the engine stopped forwarding the call's events".into(),
    }
}
