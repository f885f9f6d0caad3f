//! Running one step of a callflow: render it, execute it, read its result, decide what comes next.
//!
//! Each executed step is recorded in the outcome with its path and the application's response (or the branch
//! taken, the digits read, the destination). What a failure of each kind means is decided here: a refused
//! argument, an `-ERR` response, `FILE NOT FOUND` / `PLAYBACK ERROR`, a bridge that does not connect, a time
//! limit, a lost connection end the flow with a [`StepError`]; a hangup ends it as the callee's.

use std::time::Duration;

use super::command::{self, Command};
use super::link::{Bridge, Stop};
use super::outcome::{DigitsInput, Ended, StepError, StepErrorKind, StepRun};
use super::render::Refusal;
use super::runner::{Run, Walk};
use crate::campaign::callflow::{PlayAndGetDigits, Step, Template};
use crate::esl::Event;

impl Run<'_, '_> {
    /// Runs one step.
    pub(super) async fn step<'f>(&mut self, step: &'f Step, path: &str) -> Next<'f> {
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
            Step::Answer => {
                let limit = self.config.quick_timeout;
                self.simple(path, step, Ok(command::answer()), limit).await
            }
            Step::Sleep { ms } => {
                let limit = Duration::from_millis(*ms) + self.config.quick_timeout;
                self.simple(path, step, Ok(command::sleep(*ms)), limit)
                    .await
            }
            Step::Playback { file } => {
                let cmd =
                    command::playback(file, &self.lookup(), self.config.folders.sounds.as_deref());
                let limit = self.config.playback_timeout + self.config.quick_timeout;
                self.simple(path, step, cmd, limit).await
            }
            Step::RecordSession { path: file } => {
                let cmd = command::record_session(
                    file,
                    &self.lookup(),
                    self.config.folders.recordings.as_deref(),
                );
                let limit = self.config.quick_timeout;
                self.simple(path, step, cmd, limit).await
            }
            Step::Set { vars } => self.set(path, step, vars).await,
            Step::PlayAndGetDigits(p) => self.play_and_get_digits(path, step, p).await,
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
                    Err(refusal) => return self.refused(path, step, refusal),
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
                let done = self
                    .link
                    .execute(
                        &mut self.scope,
                        cmd.app,
                        &cmd.arg,
                        self.config.quick_timeout,
                    )
                    .await;
                match done {
                    Ok(_) => Next::Stop(Walk::Over(flow_hangup)),
                    // The hangup the step asked for.
                    Err(Stop::Hangup { cause }) => {
                        self.outcome.hangup_cause = cause;
                        Next::Stop(Walk::Over(flow_hangup))
                    }
                    Err(stop) => self.stopped(path, stop),
                }
            }
        }
    }

    /// `set`: one `set` application per variable, in the order written; each value becomes the flow's own.
    async fn set<'f>(&mut self, path: &str, step: &Step, vars: &[(String, Template)]) -> Next<'f> {
        self.record(path, step, None);
        for (name, template) in vars {
            let built = command::set(name, template, &self.lookup());
            let (cmd, value) = match built {
                Ok(b) => b,
                Err(refusal) => return failed(path, StepErrorKind::Refused, refusal.message),
            };
            if let Err(next) = self.exec(path, &cmd, self.config.quick_timeout).await {
                return next;
            }
            self.scope.flow.insert(name.clone(), value.clone());
            self.outcome.variables.push((name.clone(), value));
        }
        Next::Continue
    }

    /// `play_and_get_digits`: the entry is read from the completion's `variable_<var>` and checked again; an
    /// invalid or missing entry is the empty string.
    async fn play_and_get_digits<'f>(
        &mut self,
        path: &str,
        step: &Step,
        p: &PlayAndGetDigits,
    ) -> Next<'f> {
        let built =
            command::play_and_get_digits(p, &self.lookup(), self.config.folders.sounds.as_deref());
        let cmd = match built {
            Ok(c) => c,
            Err(refusal) => return self.refused(path, step, refusal),
        };
        // Each try plays the prompt, waits for the digits, and may play the invalid-entry file.
        let per_try = Duration::from_millis(p.timeout_ms) + self.config.playback_timeout * 2;
        let limit = per_try * p.tries + self.config.quick_timeout;
        let event = match self.exec(path, &cmd, limit).await {
            Ok(event) => event,
            Err(next) => {
                self.record(path, step, None);
                return next;
            }
        };
        // FreeSWITCH unsets the variable when the regex refuses the entry and keeps it in `<var>_invalid`.
        let entered = event
            .variable(&p.var)
            .or_else(|| event.variable(&format!("{}_invalid", p.var)))
            .unwrap_or_default()
            .to_string();
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

    /// `bridge`: prepares the channel (see the runner's module doc), then waits for CHANNEL_BRIDGE.
    async fn bridge<'f>(&mut self, path: &str, step: &Step, endpoint: &Template) -> Next<'f> {
        let built = command::bridge(endpoint, &self.lookup());
        let (cmd, rendered) = match built {
            Ok(b) => b,
            Err(refusal) => return self.refused(path, step, refusal),
        };
        self.record(path, step, Some(rendered.clone()));
        for (name, value) in [
            ("hangup_after_bridge", "true"),
            ("continue_on_fail", "true"),
        ] {
            let prepare = command::set_literal(name, value);
            if let Err(next) = self.exec(path, &prepare, self.config.quick_timeout).await {
                return next;
            }
        }
        let done = self
            .link
            .bridge(&mut self.scope, &cmd.arg, self.config.bridge_timeout)
            .await;
        match done {
            Ok(Bridge::Connected) => Next::Stop(Walk::Over(Ended::Bridged { endpoint: rendered })),
            Ok(Bridge::Failed(event)) => {
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

    /// Executes a built command within `limit`, records the step with the application's response, and fails
    /// it on `FILE NOT FOUND` / `PLAYBACK ERROR`.
    async fn simple<'f>(
        &mut self,
        path: &str,
        step: &Step,
        cmd: Result<Command, Refusal>,
        limit: Duration,
    ) -> Next<'f> {
        let cmd = match cmd {
            Ok(c) => c,
            Err(refusal) => return self.refused(path, step, refusal),
        };
        match self.exec(path, &cmd, limit).await {
            Ok(event) => {
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
    ) -> Result<Event, Next<'f>> {
        let done = self
            .link
            .execute(&mut self.scope, cmd.app, &cmd.arg, limit)
            .await;
        match done {
            Ok(event) => match response(&event) {
                Some(r) if r.starts_with("-ERR") => Err(failed(
                    path,
                    StepErrorKind::Failed,
                    format!("{} {}: {r}", cmd.app, cmd.arg),
                )),
                _ => Ok(event),
            },
            Err(stop) => Err(self.stopped(path, stop)),
        }
    }

    /// Records a step whose argument was refused, and ends the flow on it.
    fn refused<'f>(&mut self, path: &str, step: &Step, refusal: Refusal) -> Next<'f> {
        self.record(path, step, None);
        failed(path, StepErrorKind::Refused, refusal.message)
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
pub(super) enum Next<'f> {
    Continue,
    /// Run these steps now (an `if` / `switch` branch), under `path.label`.
    Enter {
        steps: &'f [Step],
        label: String,
    },
    Stop(Walk),
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
