//! What running a callflow on one call produced, for the attempt record.
//!
//! Serializable so the engine can store it with the attempt as is (JSON).

use serde::{Deserialize, Serialize};

/// The record of one callflow run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallflowOutcome {
    /// What the flow decided with `result {success}` (the last one run), if any.
    pub result: Option<bool>,
    /// How the flow ended.
    pub ended: Ended,
    /// Every step run, in order, including `if`/`switch` (with the branch taken) and the failing step.
    pub steps: Vec<StepRun>,
    /// Every `play_and_get_digits` answered (or not).
    pub digits: Vec<DigitsInput>,
    /// Variables the flow wrote (`set` steps and digits), in order, as fsdialer rendered them.
    pub variables: Vec<(String, String)>,
    /// The step that failed, when the flow ended on an error.
    pub error: Option<StepError>,
    /// The channel's hangup cause, when the flow saw the hangup (CHANNEL_HANGUP).
    pub hangup_cause: Option<String>,
}

impl CallflowOutcome {
    pub(super) fn new() -> CallflowOutcome {
        CallflowOutcome {
            result: None,
            ended: Ended::EndOfFlow,
            steps: Vec::new(),
            digits: Vec::new(),
            variables: Vec::new(),
            error: None,
            hangup_cause: None,
        }
    }

    /// The paths of the steps run (`callflow[2].switch.cases.1[0].bridge`).
    pub fn paths(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.path.as_str()).collect()
    }

    /// The applications run, in order.
    pub fn applications(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.application.as_str()).collect()
    }

    /// The last value the flow wrote to `name`.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the flow ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ended {
    /// The channel hung up while the flow ran (the callee, or anything but the flow): `cause` from the event.
    CalleeHangup { cause: Option<String> },
    /// A `hangup` step hung up.
    FlowHangup { cause: String },
    /// The flow ran off its end; fsdialer hung up with NORMAL_CLEARING.
    EndOfFlow,
    /// A `transfer` step handed the call to the dialplan.
    Transferred { destination: String },
    /// A `bridge` step connected the call (the flow ends; the call goes on until either side hangs up).
    Bridged { endpoint: String },
    /// A step failed (see [`CallflowOutcome::error`]); fsdialer hung up with NORMAL_CLEARING.
    Error,
}

/// One step run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRun {
    /// Where in the flow: `callflow[3].if.then[0].playback`.
    pub path: String,
    /// The application as written in the flow.
    pub application: String,
    /// What came of it: the `Application-Response` of an executed step (when FreeSWITCH gave one other than
    /// `_none_`), the branch taken by `if` (`then`/`else`) and `switch` (the case key or `default`), the value of
    /// `result`.
    pub detail: Option<String>,
}

/// One `play_and_get_digits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigitsInput {
    pub path: String,
    /// The variable the digits went to.
    pub var: String,
    /// The accepted entry (`min..=max` digits matching `regex`), or `None` for no valid input.
    pub digits: Option<String>,
    /// What the channel reported, valid or not (empty for no input).
    pub entered: String,
}

/// Why the flow stopped on a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// The failing step.
    pub path: String,
    pub kind: StepErrorKind,
    pub message: String,
}

/// The kinds of step failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepErrorKind {
    /// fsdialer refused to send the step: a substituted value cannot go safely into the argument.
    Refused,
    /// FreeSWITCH refused the command (`-ERR …` reply to `sendmsg`).
    Rejected,
    /// The application ran and failed (`FILE NOT FOUND`, `PLAYBACK ERROR`, a bridge that did not connect).
    Failed,
    /// No completion within the step's time limit.
    Timeout,
    /// The ESL connection failed or the engine stopped forwarding the call's events.
    Connection,
}
