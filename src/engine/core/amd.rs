//! Answering-machine detection in the core: what an answer is worth before anything else happens on it.
//!
//! A call of a campaign with `amd` enabled starts the `amd` application on its answer ([`Action::StartAmd`]) and
//! waits for the decision — CHANNEL_EXECUTE_COMPLETE of `amd` (blocking mod_amd) or `CUSTOM amd::info`
//! (non-blocking), both [`Input::AmdResult`](super::Input::AmdResult) — at most `total_analysis_time` plus
//! [`AMD_GRACE`] (then it is NOTSURE, cause [`ENGINE_TIMEOUT_CAUSE`]). Only then:
//! - **live** (HUMAN, or NOTSURE unless `notsure = "machine"`): the callflow runs, or the agent is called — so
//!   **a machine never reaches an agent**, and the agent reserved for the member stays held, unused, during the
//!   analysis;
//! - **machine**: the agent reservation goes back unused (a preview agent's leg is hung up); then either the call
//!   is hung up (`NORMAL_UNSPECIFIED`, as Webitel does), or — `leave_message` — beep detection starts
//!   ([`Action::StartBeepDetection`]) and the message plays after `avmd::beep`
//!   ([`Input::AvmdBeep`](super::Input::AvmdBeep)), or `machine_message_after_sec` after the decision without
//!   one ([`Action::LeaveMessage`]; it hangs up after the message). Never before either.
//!
//! The hook for pacing: [`Call::answer_kind`] says whether an answer is live, a machine, or still undecided; an
//! abandonment rate counts live answers only (a machine is never abandoned, it is never offered to an agent).
//!
//! Classes: a machine answer is `machine_class` (retry) or, once the message played to its end (the broadcast's
//! `playback` completed `FILE PLAYED`, [`Input::PlaybackPlayed`](super::Input::PlaybackPlayed); a machine that
//! hangs up during it gets `PLAYBACK ERROR`), `message_left_class` (ok); a live answer as its cause says, judged
//! on the talk time after the analysis. A member who hangs up during the analysis is no abandoned
//! call: the agent goes back unused and the cause decides on no talk time.
//!
//! The attempt's note records `amd`: result, cause, decision time, beep and message instants, message left.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use uuid::Uuid;

use super::calls::Call;
use super::{Action, Core, dur};
use crate::campaign::amd::{AmdSettings, MachineAction, NotSureAs};
use crate::campaign::causes::CauseClass;

/// How long after `total_analysis_time` the decision may come before the core stops waiting for it.
pub const AMD_GRACE: ChronoDuration = ChronoDuration::seconds(3);
/// `amd_cause` recorded when the detector never decided in time.
pub const ENGINE_TIMEOUT_CAUSE: &str = "ENGINE_TIMEOUT";
/// The cause a machine answer is hung up with (Webitel's: a retry cause in every table).
pub const MACHINE_HANGUP_CAUSE: &str = "NORMAL_UNSPECIFIED";
/// Longest a machine's message (or its hang-up) may take before the call is looked at on the switch.
const MACHINE_END_MAX: ChronoDuration = ChronoDuration::seconds(300);

/// What the detector said (`amd_result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdResult {
    Human,
    Machine,
    NotSure,
}

impl AmdResult {
    /// Reads `amd_result` as both variants write it (`NOTSURE`, or `NOT_SURE`); `CANCEL` and anything else is no
    /// decision.
    pub fn parse(text: &str) -> Option<AmdResult> {
        match text.trim().to_ascii_uppercase().as_str() {
            "HUMAN" => Some(AmdResult::Human),
            "MACHINE" => Some(AmdResult::Machine),
            "NOTSURE" | "NOT_SURE" => Some(AmdResult::NotSure),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AmdResult::Human => "HUMAN",
            AmdResult::Machine => "MACHINE",
            AmdResult::NotSure => "NOTSURE",
        }
    }
}

/// Where a call's detection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdPhase {
    /// `amd` runs; nothing else happens on the call.
    Analysing,
    /// A live answer: the callflow or the agent has it.
    Live,
    /// A machine being hung up.
    MachineHangup,
    /// A machine: waiting for the beep before the message.
    AwaitingBeep,
    /// The message plays; the broadcast hangs up after it.
    Message,
    /// Hung up before any decision.
    Unanswered,
}

/// The AMD side of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdCall {
    pub phase: AmdPhase,
    pub started_at: DateTime<Utc>,
    pub result: Option<AmdResult>,
    pub cause: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub beep_at: Option<DateTime<Utc>>,
    pub message_at: Option<DateTime<Utc>>,
    pub message_left: bool,
}

/// Answers of one campaign on this node by AMD result, and messages left (`/stats`' `amd`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AmdCounts {
    pub human: u64,
    pub machine: u64,
    pub notsure: u64,
    /// Hung up before the detector reported (or it reported no result, e.g. `CANCEL`).
    pub undecided: u64,
    pub messages_left: u64,
}

/// Whether an answer is worth a live person, as far as the core knows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// AMD is still deciding.
    Undecided,
    /// A person (or no AMD on the campaign): the callflow or an agent gets it.
    Live,
    /// An answering machine: never offered to an agent, never abandoned.
    Machine,
}

impl AmdCall {
    fn new(now: DateTime<Utc>) -> AmdCall {
        AmdCall {
            phase: AmdPhase::Analysing,
            started_at: now,
            result: None,
            cause: None,
            decided_at: None,
            beep_at: None,
            message_at: None,
            message_left: false,
        }
    }

    /// The analysis time: from the start to the decision (to `end` when there was none).
    pub fn analysis_ms(&self, end: DateTime<Utc>) -> u64 {
        let to = self.decided_at.unwrap_or(end);
        (to - self.started_at).num_milliseconds().max(0) as u64
    }

    fn is_machine(&self) -> bool {
        matches!(
            self.phase,
            AmdPhase::MachineHangup | AmdPhase::AwaitingBeep | AmdPhase::Message
        )
    }

    /// The class this detection gives the attempt, when it decides it (a machine answer).
    fn class(&self, settings: &AmdSettings) -> Option<CauseClass> {
        match (self.is_machine(), self.message_left) {
            (true, true) => Some(settings.message_left_class),
            (true, false) => Some(settings.machine_class),
            (false, _) => None,
        }
    }

    /// What is recorded with the attempt.
    pub fn note(&self) -> serde_json::Value {
        let ts = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
        serde_json::json!({
            "result": self.result.map(AmdResult::as_str),
            "cause": self.cause,
            "decision_ms": self.decided_at.map(|_| self.analysis_ms(self.started_at)),
            "answer": match self.phase {
                AmdPhase::Analysing | AmdPhase::Unanswered => "undecided",
                AmdPhase::Live => "live",
                _ => "machine",
            },
            "beep_at": ts(self.beep_at),
            "message_at": ts(self.message_at),
            "message_left": self.message_left,
        })
    }
}

impl Call {
    /// Whether this call's answer is live, a machine or undecided; `None` while it is not answered.
    pub fn answer_kind(&self) -> Option<AnswerKind> {
        self.answered_at?;
        Some(match &self.amd {
            None => AnswerKind::Live,
            Some(a) if a.is_machine() => AnswerKind::Machine,
            Some(a) if a.phase == AmdPhase::Live => AnswerKind::Live,
            Some(_) => AnswerKind::Undecided,
        })
    }

    /// The class AMD gives this answered call, if it decides it.
    pub(super) fn amd_class(&self) -> Option<CauseClass> {
        let settings = self.version.amd()?;
        self.amd.as_ref()?.class(settings)
    }
}

/// The export columns of an attempt's AMD facts, in the order of [`amd_export_cells`].
pub const AMD_EXPORT_COLUMNS: [&str; 4] =
    ["amd_result", "amd_cause", "amd_decision_ms", "message_left"];

/// The AMD cells of the attempt export, read from its note; empty for an attempt without AMD.
pub fn amd_export_cells(note: Option<&str>) -> Vec<String> {
    let amd = note
        .and_then(|n| serde_json::from_str::<serde_json::Value>(n).ok())
        .and_then(|v| v.get("amd").cloned());
    let Some(amd) = amd else {
        return vec![String::new(); AMD_EXPORT_COLUMNS.len()];
    };
    ["result", "cause", "decision_ms", "message_left"]
        .iter()
        .map(|key| match amd.get(key) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        })
        .collect()
}

impl Core {
    /// On an answer: starts the detection when the call's campaign has it; returns whether it did (the rest of
    /// the answer waits for the decision).
    pub(super) fn amd_start(&mut self, now: DateTime<Utc>, uuid: Uuid) -> bool {
        let Some(call) = self.calls.get_mut(&uuid) else {
            return false;
        };
        let (Some(settings), Some(switch), None) = (call.version.amd(), call.switch, &call.amd)
        else {
            return false;
        };
        let wait =
            ChronoDuration::milliseconds(i64::from(settings.total_analysis_time)) + AMD_GRACE;
        self.out.push(Action::StartAmd {
            switch,
            uuid,
            args: settings.app_args(),
        });
        call.amd = Some(AmdCall::new(now));
        self.arm(uuid, now + wait);
        true
    }

    /// The detector decided (`amd_result`, `amd_cause`); a second report, or one after the hangup, changes
    /// nothing.
    pub(super) fn on_amd_result(
        &mut self,
        now: DateTime<Utc>,
        uuid: Uuid,
        result: Option<AmdResult>,
        cause: Option<String>,
    ) {
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        let (Some(settings), Some(amd)) = (call.version.amd().cloned(), call.amd.as_mut()) else {
            return;
        };
        if amd.phase != AmdPhase::Analysing || call.hangup.is_some() || call.decided.is_some() {
            return;
        }
        amd.result = result;
        amd.cause = cause;
        amd.decided_at = Some(now);
        let label = result.map_or("NONE", AmdResult::as_str);
        let counts = self.amd_counts.entry(call.campaign.clone()).or_default();
        match result {
            Some(AmdResult::Human) => counts.human += 1,
            Some(AmdResult::Machine) => counts.machine += 1,
            Some(AmdResult::NotSure) => counts.notsure += 1,
            None => counts.undecided += 1,
        }
        metrics::counter!("fsdialer_amd_results_total", "campaign" => call.campaign.clone(), "result" => label)
            .increment(1);
        metrics::histogram!("fsdialer_amd_decision_seconds")
            .record(amd.analysis_ms(now) as f64 / 1000.0);
        let machine = match result {
            Some(AmdResult::Machine) => true,
            Some(AmdResult::NotSure) | None => settings.notsure == NotSureAs::Machine,
            Some(AmdResult::Human) => false,
        };
        if !machine {
            amd.phase = AmdPhase::Live;
            self.answer_live(now, uuid);
            return;
        }
        self.amd_release_agent(uuid);
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        let (Some(amd), Some(switch)) = (call.amd.as_mut(), call.switch) else {
            return;
        };
        match settings.machine {
            MachineAction::Hangup => {
                amd.phase = AmdPhase::MachineHangup;
                self.out.push(Action::Kill {
                    switch,
                    uuid,
                    cause: MACHINE_HANGUP_CAUSE.into(),
                });
                self.arm(uuid, now + MACHINE_END_MAX);
            }
            MachineAction::LeaveMessage => {
                amd.phase = AmdPhase::AwaitingBeep;
                self.out.push(Action::StartBeepDetection { switch, uuid });
                let wait = ChronoDuration::seconds(i64::from(settings.machine_message_after_sec));
                self.arm(uuid, now + wait);
            }
        }
    }

    /// `avmd::beep` on a call: the message plays now if it waits for the beep.
    pub(super) fn on_avmd_beep(&mut self, now: DateTime<Utc>, uuid: Uuid) {
        let Some(amd) = self.calls.get_mut(&uuid).and_then(|c| c.amd.as_mut()) else {
            return;
        };
        if amd.phase != AmdPhase::AwaitingBeep {
            return;
        }
        amd.beep_at = Some(now);
        self.amd_play_message(now, uuid);
    }

    fn amd_play_message(&mut self, now: DateTime<Utc>, uuid: Uuid) {
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        let message = call.version.amd().and_then(|s| s.machine_message.clone());
        let (Some(amd), Some(switch), Some(message)) = (call.amd.as_mut(), call.switch, message)
        else {
            return;
        };
        amd.phase = AmdPhase::Message;
        amd.message_at = Some(now);
        self.out.push(Action::LeaveMessage {
            switch,
            uuid,
            message,
        });
        self.arm(uuid, now + MACHINE_END_MAX);
    }

    /// A machine never reaches an agent: the reservation goes back unused (a preview agent's leg is hung up) and
    /// the call is no agent call any more (so its end is no abandoned call).
    fn amd_release_agent(&mut self, uuid: Uuid) {
        let Some(mut call) = self.calls.remove(&uuid) else {
            return;
        };
        if call.agent.is_some() {
            self.agent_forget(&mut call);
            call.agent = None;
        }
        self.calls.insert(uuid, call);
    }

    /// The call hung up at `at`: closes its detection and returns the analysis time to take off its talk time.
    pub(super) fn amd_hangup(&mut self, uuid: Uuid, at: DateTime<Utc>) -> u64 {
        let Some(amd) = self.calls.get_mut(&uuid).and_then(|c| c.amd.as_mut()) else {
            return 0;
        };
        let analysis = amd.analysis_ms(at);
        if amd.phase != AmdPhase::Analysing {
            return analysis;
        }
        amd.phase = AmdPhase::Unanswered;
        if let Some(campaign) = self.calls.get(&uuid).map(|c| c.campaign.clone()) {
            self.amd_counts.entry(campaign).or_default().undecided += 1;
        }
        // Hung up before the decision: nobody was waiting for an agent.
        self.amd_release_agent(uuid);
        analysis
    }

    /// A playback on a call played to its end: the voicemail message, if it is the one being left.
    pub(super) fn on_playback_played(&mut self, uuid: Uuid, file: &str) {
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        let ours = call
            .version
            .amd()
            .and_then(|s| s.machine_message.as_deref())
            .is_some_and(|m| m == file);
        let Some(amd) = call.amd.as_mut() else {
            return;
        };
        if !ours || amd.phase != AmdPhase::Message || amd.message_left {
            return;
        }
        amd.message_left = true;
        let campaign = call.campaign.clone();
        self.amd_counts
            .entry(campaign.clone())
            .or_default()
            .messages_left += 1;
        metrics::counter!("fsdialer_amd_messages_left_total", "campaign" => campaign).increment(1);
    }

    /// A call's deadline passed while AMD holds it; returns whether it was handled here.
    pub(super) fn amd_deadline(&mut self, now: DateTime<Utc>, uuid: Uuid) -> bool {
        let Some(call) = self.calls.get(&uuid) else {
            return false;
        };
        if call.hangup.is_some() || call.decided.is_some() {
            return false;
        }
        match call.amd.as_ref().map(|a| a.phase) {
            Some(AmdPhase::Analysing) => {
                tracing::info!(attempt = %uuid, "no AMD decision in time: not sure");
                self.on_amd_result(
                    now,
                    uuid,
                    Some(AmdResult::NotSure),
                    Some(ENGINE_TIMEOUT_CAUSE.into()),
                );
                true
            }
            Some(AmdPhase::AwaitingBeep) => {
                // No beep heard: the message plays anyway.
                self.amd_play_message(now, uuid);
                true
            }
            _ => false,
        }
    }

    /// The answer is live (no AMD, or AMD said so): the agent is called, or the callflow runs.
    pub(super) fn answer_live(&mut self, now: DateTime<Utc>, uuid: Uuid) {
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        if call.agent.is_some() {
            self.agent_member_answered(now, uuid);
            return;
        }
        let flow = call
            .version
            .callflow()
            .is_some()
            .then(|| (call.campaign.clone(), call.version.clone(), call.switch));
        if let Some((campaign, version, Some(switch))) = flow {
            call.callflow = super::CallflowState::Running;
            self.out.push(Action::StartCallflow {
                campaign,
                version,
                switch,
                attempt: uuid,
            });
        }
        // An answered call may last long: look at it again after max_call if its end is not seen.
        self.arm(uuid, now + dur(self.cfg.max_call));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_variants_results_are_read_and_cancel_is_no_decision() {
        assert_eq!(AmdResult::parse("HUMAN"), Some(AmdResult::Human));
        assert_eq!(AmdResult::parse("MACHINE"), Some(AmdResult::Machine));
        assert_eq!(AmdResult::parse("NOTSURE"), Some(AmdResult::NotSure));
        assert_eq!(AmdResult::parse("NOT_SURE"), Some(AmdResult::NotSure));
        assert_eq!(AmdResult::parse("CANCEL"), None);
        assert_eq!(AmdResult::parse(""), None);
    }

    #[test]
    fn export_cells_come_from_the_note() {
        let note = r#"{"amd":{"result":"MACHINE","cause":"LONGGREETING","decision_ms":1800,"message_left":true}}"#;
        assert_eq!(
            amd_export_cells(Some(note)),
            ["MACHINE", "LONGGREETING", "1800", "true"]
        );
        assert_eq!(amd_export_cells(Some("{}")), ["", "", "", ""]);
        assert_eq!(amd_export_cells(None).len(), AMD_EXPORT_COLUMNS.len());
    }
}
