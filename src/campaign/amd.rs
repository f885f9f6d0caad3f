//! A campaign's answering-machine detection: its `amd` section (the detector's parameters, which module runs it,
//! what each result does and the class it gives), validated, and the `amd` application's argument string.
//!
//! FreeSWITCH has no AMD of its own; operators load `mod_amd`, a port of Asterisk's app_amd in two variants, and
//! `mod_avmd` (in the tree) for the voicemail beep (see the team's `design/amd.md`):
//! - `module = "mod_amd"`: the blocking `amd` application; the result is in `amd_result` / `amd_cause` when its
//!   CHANNEL_EXECUTE_COMPLETE arrives;
//! - `module = "mod_amd_nonblocking"`: the `amd` application starts a media bug and returns at once; the decision
//!   fires `CUSTOM amd::info` (cloned without `Event-Name`, `Core-UUID` or dates) carrying the channel's data.
//!
//! Results: `human` goes on to the callflow or an agent (by the campaign's mode); `machine` is hung up, or gets a
//! voicemail drop (`leave_message`: `avmd_start`, then `machine_message` after `avmd::beep`, or after
//! `machine_message_after_sec` without one, then hang up); `notsure` is a human unless `notsure = "machine"`.
//! Classes: a machine hung up is `machine_class` (retry), a message left `message_left_class` (ok), a human as its
//! hangup cause says — on the talk time after the analysis, so a machine's greeting never meets
//! `min_success_duration_sec`.
//!
//! Everything here goes into api and application argument strings: the parameters are integers, and
//! `machine_message` passes the same media-path rule as the abandon message ([`super::agents::check_media_path`]).

use serde::{Deserialize, Serialize};

use super::causes::CauseClass;
use super::error::FieldError;

/// Which mod_amd variant the switch has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmdModule {
    /// The blocking `amd` application: the result is in the variables when it completes.
    #[default]
    ModAmd,
    /// The media-bug variant: `amd` returns at once and `CUSTOM amd::info` carries the decision.
    ModAmdNonblocking,
}

impl AmdModule {
    pub fn as_str(self) -> &'static str {
        match self {
            AmdModule::ModAmd => "mod_amd",
            AmdModule::ModAmdNonblocking => "mod_amd_nonblocking",
        }
    }
}

/// What a machine answer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineAction {
    /// Hung up at once.
    #[default]
    Hangup,
    /// `machine_message` after the beep, then hung up.
    LeaveMessage,
}

/// How a NOTSURE result is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotSureAs {
    #[default]
    Human,
    Machine,
}

fn default_true() -> bool {
    true
}
fn d_silence_threshold() -> u32 {
    256
}
fn d_maximum_word_length() -> u32 {
    5000
}
fn d_maximum_number_of_words() -> u32 {
    3
}
fn d_between_words_silence() -> u32 {
    50
}
fn d_min_word_length() -> u32 {
    100
}
fn d_total_analysis_time() -> u32 {
    5000
}
fn d_after_greeting_silence() -> u32 {
    800
}
fn d_greeting() -> u32 {
    1500
}
fn d_initial_silence() -> u32 {
    2500
}
fn d_machine_message_after_sec() -> u32 {
    20
}
fn d_machine_class() -> CauseClass {
    CauseClass::Retry
}
fn d_message_left_class() -> CauseClass {
    CauseClass::Ok
}

/// The campaign's `amd` section. The detector's parameters are in milliseconds (`silence_threshold` and
/// `maximum_number_of_words` aside), with mod_amd's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmdSettings {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub module: AmdModule,
    #[serde(default = "d_silence_threshold")]
    pub silence_threshold: u32,
    #[serde(default = "d_maximum_word_length")]
    pub maximum_word_length: u32,
    #[serde(default = "d_maximum_number_of_words")]
    pub maximum_number_of_words: u32,
    #[serde(default = "d_between_words_silence")]
    pub between_words_silence: u32,
    #[serde(default = "d_min_word_length")]
    pub min_word_length: u32,
    #[serde(default = "d_total_analysis_time")]
    pub total_analysis_time: u32,
    #[serde(default = "d_after_greeting_silence")]
    pub after_greeting_silence: u32,
    #[serde(default = "d_greeting")]
    pub greeting: u32,
    #[serde(default = "d_initial_silence")]
    pub initial_silence: u32,
    /// What a machine answer gets.
    #[serde(default)]
    pub machine: MachineAction,
    /// The voicemail message (`leave_message`): a file or tone stream the switch plays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_message: Option<String>,
    /// `leave_message`: with no beep heard this long after the MACHINE decision, the message plays anyway.
    #[serde(default = "d_machine_message_after_sec")]
    pub machine_message_after_sec: u32,
    #[serde(default)]
    pub notsure: NotSureAs,
    /// The class of a machine answer that got no message (hung up, or hung up before the message).
    #[serde(default = "d_machine_class")]
    pub machine_class: CauseClass,
    /// The class of a machine answer that got the message.
    #[serde(default = "d_message_left_class")]
    pub message_left_class: CauseClass,
}

impl Default for AmdSettings {
    fn default() -> Self {
        AmdSettings {
            enabled: true,
            module: AmdModule::default(),
            silence_threshold: d_silence_threshold(),
            maximum_word_length: d_maximum_word_length(),
            maximum_number_of_words: d_maximum_number_of_words(),
            between_words_silence: d_between_words_silence(),
            min_word_length: d_min_word_length(),
            total_analysis_time: d_total_analysis_time(),
            after_greeting_silence: d_after_greeting_silence(),
            greeting: d_greeting(),
            initial_silence: d_initial_silence(),
            machine: MachineAction::default(),
            machine_message: None,
            machine_message_after_sec: d_machine_message_after_sec(),
            notsure: NotSureAs::default(),
            machine_class: d_machine_class(),
            message_left_class: d_message_left_class(),
        }
    }
}

impl AmdSettings {
    /// The detector's parameters by mod_amd's names, in the order of its configuration file.
    fn parameters(&self) -> [(&'static str, u32); 9] {
        [
            ("silence_threshold", self.silence_threshold),
            ("maximum_word_length", self.maximum_word_length),
            ("maximum_number_of_words", self.maximum_number_of_words),
            ("between_words_silence", self.between_words_silence),
            ("min_word_length", self.min_word_length),
            ("total_analysis_time", self.total_analysis_time),
            ("after_greeting_silence", self.after_greeting_silence),
            ("greeting", self.greeting),
            ("initial_silence", self.initial_silence),
        ]
    }

    /// The `amd` application's argument: `key=value` pairs separated by spaces (both variants read this form;
    /// every value is an integer, so nothing in it can name another application).
    pub fn app_args(&self) -> String {
        self.parameters()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Every problem with the section, paths relative to `amd`.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let at = |f: &str| format!("amd.{f}");
        // mod_amd ignores a value that is not a positive integer and keeps its default: refuse it instead.
        let ranges: [(&str, u32, u32); 9] = [
            ("silence_threshold", 1, 32_767),
            ("maximum_word_length", 10, 60_000),
            ("maximum_number_of_words", 1, 100),
            ("between_words_silence", 10, 10_000),
            ("min_word_length", 10, 10_000),
            ("total_analysis_time", 500, 60_000),
            ("after_greeting_silence", 10, 10_000),
            ("greeting", 10, 60_000),
            ("initial_silence", 10, 60_000),
        ];
        for ((name, value), (_, min, max)) in self.parameters().iter().zip(ranges) {
            if !(min..=max).contains(value) {
                errors.push(FieldError::new(
                    at(name),
                    format!("must be {min} to {max}, got {value}"),
                ));
            }
        }
        if !(1..=600).contains(&self.machine_message_after_sec) {
            errors.push(FieldError::new(
                at("machine_message_after_sec"),
                format!("must be 1 to 600, got {}", self.machine_message_after_sec),
            ));
        }
        match (&self.machine, &self.machine_message) {
            (MachineAction::LeaveMessage, None) => errors.push(FieldError::new(
                at("machine_message"),
                "missing: machine = \"leave_message\" plays this file after the beep",
            )),
            (_, Some(m)) => {
                if let Err(e) = super::agents::check_media_path(m) {
                    errors.push(FieldError::new(at("machine_message"), e));
                }
            }
            (MachineAction::Hangup, None) => {}
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AmdSettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_are_mod_amds_and_the_app_argument_lists_them() {
        let s = parse("");
        assert!(s.enabled);
        assert_eq!(s.module, AmdModule::ModAmd);
        assert_eq!(s.machine, MachineAction::Hangup);
        assert_eq!(s.notsure, NotSureAs::Human);
        assert_eq!(s.machine_class, CauseClass::Retry);
        assert_eq!(s.message_left_class, CauseClass::Ok);
        assert_eq!(
            s.app_args(),
            "silence_threshold=256 maximum_word_length=5000 maximum_number_of_words=3 \
             between_words_silence=50 min_word_length=100 total_analysis_time=5000 \
             after_greeting_silence=800 greeting=1500 initial_silence=2500"
        );
        assert!(s.check().is_empty());
        assert_eq!(s, AmdSettings::default());
    }

    #[test]
    fn bad_values_are_named_and_a_message_cannot_smuggle_an_application() {
        let s = parse(
            "total_analysis_time = 0\nmachine = \"leave_message\"\nmachine_message_after_sec = 0",
        );
        let e: Vec<String> = s.check().iter().map(ToString::to_string).collect();
        assert!(
            e.iter()
                .any(|e| e.contains("amd.total_analysis_time: must be 500 to 60000, got 0")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.contains("amd.machine_message: missing")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("amd.machine_message_after_sec")),
            "{e:?}"
        );
        for bad in [
            "/a.wav!hangup",
            "/a.wav::system",
            "/a b.wav",
            "x'y",
            "${system(id)}",
            "a\nb",
        ] {
            let s = AmdSettings {
                machine: MachineAction::LeaveMessage,
                machine_message: Some(bad.into()),
                ..AmdSettings::default()
            };
            let e = s.check();
            assert!(
                e.iter()
                    .any(|e| e.to_string().starts_with("amd.machine_message")),
                "{bad:?} accepted"
            );
        }
        let ok = AmdSettings {
            machine: MachineAction::LeaveMessage,
            machine_message: Some("/var/lib/prompts/vm-drop.wav".into()),
            ..AmdSettings::default()
        };
        assert!(ok.check().is_empty());
    }

    #[test]
    fn unknown_fields_and_modules_are_refused() {
        assert!(toml::from_str::<AmdSettings>("modul = \"mod_amd\"").is_err());
        assert!(toml::from_str::<AmdSettings>("module = \"mod_vmd\"").is_err());
        let s = parse("module = \"mod_amd_nonblocking\"\nnotsure = \"machine\"");
        assert_eq!(s.module, AmdModule::ModAmdNonblocking);
        assert_eq!(s.notsure, NotSureAs::Machine);
    }
}
