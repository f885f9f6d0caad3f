//! The harness's AMD side: a number `amd_<RESULT>_<T>` answers after 3 s, talks T s (then its callee hangs up),
//! and the detector reports RESULT (`HUMAN`, `MACHINE`, `NOTSURE`, or `SILENT`: never reports) 2 s after `amd`
//! starts; a machine beeps 5 s after its answer (heard only if `avmd_start` ran before); a voicemail message
//! plays 3 s, then the broadcast hangs the channel up NORMAL_CLEARING.

use super::*;
use fsdialer::engine::core::AmdResult;

/// When the harness's detector decides, after `amd` starts.
pub const AMD_DECISION_SECS: i64 = 2;
/// When a harness machine beeps, after its answer.
pub const BEEP_AFTER_ANSWER_SECS: i64 = 5;
/// How long a voicemail message plays in the harness.
pub const MESSAGE_SECS: i64 = 3;

/// What the harness saw of AMD.
#[derive(Debug, Default)]
pub struct AmdLog {
    /// `amd` started: when, on which call, with which argument.
    pub started: Vec<(DateTime<Utc>, Uuid, String)>,
    /// `avmd_start`: when, on which call.
    pub beep_detection: Vec<(DateTime<Utc>, Uuid)>,
    /// Beeps delivered.
    pub beeps: Vec<(DateTime<Utc>, Uuid)>,
    /// Messages played: when, on which call, which file.
    pub messages: Vec<(DateTime<Utc>, Uuid, String)>,
    /// Machines that never beep (a setting of the scripted switch).
    pub no_beep: bool,
}

impl Harness {
    /// The number dialled for a call.
    fn number_of(&self, uuid: Uuid) -> Option<String> {
        self.dialled
            .iter()
            .find(|(u, _)| *u == uuid)
            .map(|(_, n)| n.clone())
    }

    /// Carries out one AMD action; returns the core's answer, if any.
    pub fn amd_action(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::StartAmd { uuid, args, .. } => {
                self.amd.started.push((self.now, uuid, args));
                let number = self.number_of(uuid)?;
                let verdict = number.strip_prefix("amd_")?.split('_').next()?.to_owned();
                if verdict != "SILENT" && !self.gone.contains(&uuid) {
                    let cause = match verdict.as_str() {
                        "HUMAN" => "SILENCEAFTERGREETING",
                        "MACHINE" => "LONGGREETING",
                        _ => "TOOLONG",
                    };
                    self.pending.push((
                        self.now + Duration::seconds(AMD_DECISION_SECS),
                        Input::AmdResult {
                            uuid,
                            result: AmdResult::parse(&verdict),
                            cause: Some(cause.into()),
                        },
                    ));
                    self.pending.sort_by_key(|(t, _)| *t);
                }
                None
            }
            Action::StartBeepDetection { uuid, .. } => {
                self.amd.beep_detection.push((self.now, uuid));
                let beep_at =
                    *self.answered_at.get(&uuid)? + Duration::seconds(BEEP_AFTER_ANSWER_SECS);
                if beep_at >= self.now && !self.amd.no_beep {
                    self.pending.push((beep_at, Input::AvmdBeep { uuid }));
                    self.pending.sort_by_key(|(t, _)| *t);
                }
                None
            }
            Action::LeaveMessage { uuid, message, .. } => {
                self.amd.messages.push((self.now, uuid, message.clone()));
                // The message plays to its end unless the machine hangs up first.
                let end = self.now + Duration::seconds(MESSAGE_SECS);
                let machine_leaves_first = self.pending.iter().any(|(t, i)| {
                    *t <= end && matches!(i, Input::Hangup { uuid: u, .. } if *u == uuid)
                });
                if !machine_leaves_first {
                    self.pending.push((
                        end,
                        Input::PlaybackPlayed {
                            uuid,
                            file: message,
                        },
                    ));
                }
                self.hang_up_at(
                    uuid,
                    "NORMAL_CLEARING",
                    self.now + Duration::seconds(MESSAGE_SECS),
                );
                None
            }
            _ => None,
        }
    }

    /// Notes an AMD input as it is delivered.
    pub fn amd_sees(&mut self, input: &Input) {
        if let Input::AvmdBeep { uuid } = input {
            self.amd.beeps.push((self.now, *uuid));
        }
    }
}
