//! How a campaign uses live agents: its dialling `mode` and its `agents` section (the team's rules, the timeouts
//! of joining a member to an agent, the abandon message).
//!
//! A broadcast campaign (the default) never touches agents. The agent modes:
//! - `preview`: an agent is reserved and called first; the member is shown to it and dialled only once it accepts
//!   (or `preview_timeout_sec` passes and `preview_on_timeout` says `dial`);
//! - `progressive`: an agent (one per line) is reserved before the member is dialled; on answer the agent's leg is
//!   called and the two are joined; a member nobody takes within `connect_timeout_ms` hears the abandon message.
//!
//! The team settings (strategy, wrap-up, no-answer limits) live here, in the campaign that uses the team, and
//! travel with every reservation, so the store needs no separate team document.

use serde::{Deserialize, Serialize};

use super::causes::CauseClass;
use super::error::FieldError;
use crate::agents::Strategy;

/// How the campaign dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialMode {
    /// Voice broadcast / IVR: answered calls run the callflow (or park). No agents.
    #[default]
    Broadcast,
    /// The agent sees the member first and accepts or skips it.
    Preview,
    /// One call per reserved agent line; answered calls are joined to the agent.
    Progressive,
}

impl DialMode {
    /// Whether the mode connects answered calls to agents.
    pub fn uses_agents(self) -> bool {
        !matches!(self, DialMode::Broadcast)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DialMode::Broadcast => "broadcast",
            DialMode::Preview => "preview",
            DialMode::Progressive => "progressive",
        }
    }
}

/// What a preview does when the agent neither accepts nor skips in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewTimeout {
    /// Dial the member anyway (the agent had time to read it).
    #[default]
    Dial,
    /// Give the member back (no try counted) and free the agent.
    Skip,
}

fn default_sticky_agent_sec() -> u64 {
    30
}
fn default_agent_answer_timeout_sec() -> u32 {
    15
}
fn default_connect_timeout_ms() -> u64 {
    2000
}
fn default_preview_timeout_sec() -> u64 {
    30
}
fn default_no_answer_delay_sec() -> u64 {
    10
}
fn default_result_timeout_sec() -> u64 {
    60
}
fn default_abandoned_class() -> CauseClass {
    CauseClass::Retry
}

/// The `agents` section of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// The team whose agents take this campaign's calls (an agent serves the teams it lists).
    pub team: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// After-call work: the agent is offered nothing for this long after a call (the result callback ends it
    /// early).
    #[serde(default)]
    pub wrap_up_sec: u64,
    /// Offers in a row an agent may leave unanswered before it is paused (reason `no_answer`); 0 = never.
    #[serde(default)]
    pub max_no_answer: u32,
    /// How long an agent that missed an offer is passed over.
    #[serde(default = "default_no_answer_delay_sec")]
    pub no_answer_delay_sec: u64,
    /// A callback the agent scheduled goes to that agent first for this long after it is due.
    #[serde(default = "default_sticky_agent_sec")]
    pub sticky_agent_sec: u64,
    /// Ring time of the agent's leg before the member is offered to another agent.
    #[serde(default = "default_agent_answer_timeout_sec")]
    pub agent_answer_timeout_sec: u32,
    /// How long an answered member may wait for an agent before the abandon message (progressive).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long the agent has to accept or skip a previewed member.
    #[serde(default = "default_preview_timeout_sec")]
    pub preview_timeout_sec: u64,
    #[serde(default)]
    pub preview_on_timeout: PreviewTimeout,
    /// Played to a member no agent took in time, then the call is hung up (a path or a `tone_stream://`); none:
    /// hung up at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abandon_message: Option<String>,
    /// The class of an abandoned attempt.
    #[serde(default = "default_abandoned_class")]
    pub abandoned_class: CauseClass,
    /// How long after an agent call ends the engine waits for the agent's result callback before the hangup
    /// cause decides the attempt.
    #[serde(default = "default_result_timeout_sec")]
    pub result_timeout_sec: u64,
}

/// Longest team name accepted.
const MAX_TEAM_LEN: usize = 64;

impl AgentSettings {
    /// Every problem with the section, paths relative to `agents`.
    pub fn check(&self, mode: DialMode) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let at = |f: &str| format!("agents.{f}");
        if self.team.is_empty()
            || self.team.len() > MAX_TEAM_LEN
            || !self
                .team
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            errors.push(FieldError::new(
                at("team"),
                format!(
                    "must be 1 to {MAX_TEAM_LEN} ASCII letters, digits, _ or -, got {:?}",
                    crate::text::prefix(&self.team)
                ),
            ));
        }
        let ranges: [(&str, u64, u64, u64); 7] = [
            ("wrap_up_sec", self.wrap_up_sec, 0, 3600),
            ("no_answer_delay_sec", self.no_answer_delay_sec, 0, 3600),
            ("sticky_agent_sec", self.sticky_agent_sec, 0, 86_400),
            (
                "agent_answer_timeout_sec",
                u64::from(self.agent_answer_timeout_sec),
                1,
                300,
            ),
            ("connect_timeout_ms", self.connect_timeout_ms, 100, 60_000),
            ("preview_timeout_sec", self.preview_timeout_sec, 1, 3600),
            ("result_timeout_sec", self.result_timeout_sec, 0, 3600),
        ];
        for (name, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                errors.push(FieldError::new(
                    at(name),
                    format!("must be {min} to {max}, got {value}"),
                ));
            }
        }
        if self.max_no_answer > 1000 {
            errors.push(FieldError::new(
                at("max_no_answer"),
                format!("must be 0 to 1000, got {}", self.max_no_answer),
            ));
        }
        if let Some(m) = &self.abandon_message
            && let Err(e) = check_media_path(m)
        {
            errors.push(FieldError::new(at("abandon_message"), e));
        }
        if mode != DialMode::Preview && self.preview_on_timeout != PreviewTimeout::default() {
            // Harmless, but a sign the operator expects preview behaviour from another mode.
            errors.push(FieldError::new(
                at("preview_on_timeout"),
                format!(
                    "applies to preview campaigns only (mode is {})",
                    mode.as_str()
                ),
            ));
        }
        errors
    }
}

/// A file (or tone stream) FreeSWITCH plays: it goes into an API command line, so no spaces, quotes or control
/// characters, no `::`/`!` that would change what `uuid_broadcast` runs, and no `$`, `{`, `}` that the
/// application's variable expansion would evaluate (`${api(args)}` calls an api).
pub(super) fn check_media_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 512 {
        return Err("must be 1 to 512 characters".into());
    }
    if let Some(c) = path.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '!' | '`' | '$' | '{' | '}')
    }) {
        return Err(format!("must not contain {c:?}"));
    }
    if path.contains("::") {
        return Err("must not contain \"::\"".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AgentSettings {
        serde_json::from_value(serde_json::json!({"team": "sales"})).unwrap()
    }

    #[test]
    fn defaults_follow_the_call_centre_conventions() {
        let s = settings();
        assert_eq!(s.strategy, Strategy::LongestIdle);
        assert_eq!(s.connect_timeout_ms, 2000);
        assert_eq!(s.sticky_agent_sec, 30);
        assert_eq!(s.wrap_up_sec, 0);
        assert_eq!(s.abandoned_class, CauseClass::Retry);
        assert!(s.check(DialMode::Progressive).is_empty());
    }

    #[test]
    fn an_abandon_message_cannot_smuggle_an_application_or_a_second_argument() {
        for bad in [
            "a.wav both",
            "playback!NORMAL_CLEARING::x",
            "x::y",
            "a\nb",
            "",
        ] {
            let mut s = settings();
            s.abandon_message = Some(bad.into());
            let errors = s.check(DialMode::Progressive);
            assert!(
                errors.iter().any(|e| e.path == "agents.abandon_message"),
                "{bad:?}: {errors:?}"
            );
        }
        let mut s = settings();
        s.abandon_message = Some("/var/lib/prompts/sorry.wav".into());
        assert!(s.check(DialMode::Progressive).is_empty());
    }

    #[test]
    fn out_of_range_timeouts_and_bad_team_names_are_named() {
        let mut s = settings();
        s.team = "sales team".into();
        s.connect_timeout_ms = 0;
        s.agent_answer_timeout_sec = 0;
        let paths: Vec<String> = s
            .check(DialMode::Progressive)
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert!(paths.contains(&"agents.team".to_string()));
        assert!(paths.contains(&"agents.connect_timeout_ms".to_string()));
        assert!(paths.contains(&"agents.agent_answer_timeout_sec".to_string()));
    }
}
