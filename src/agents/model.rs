//! An agent's configuration, the status the agent chooses and the state the engine keeps, and the validation of
//! what the API submits.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most lines (simultaneous progressive reservations) an agent may have.
pub const MAX_LINES: u32 = 10;
/// Most teams an agent may serve.
pub const MAX_TEAMS: usize = 64;
/// Longest agent id or team name (they are parts of store keys).
pub const MAX_ID_LEN: usize = 64;
/// Longest dial string.
pub const MAX_DIAL_STRING_LEN: usize = 512;
/// Longest display name.
pub const MAX_NAME_LEN: usize = 200;

/// An agent as configured through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    /// What FreeSWITCH dials to reach the agent: `user/1001`, `sofia/gateway/x/…`, `loopback/agent_1/default`.
    pub dial_string: String,
    /// The teams the agent serves, with its level in each.
    pub teams: Vec<TeamMembership>,
    /// Progressive lines: how many member calls may be placed for the agent at once (1..=10).
    pub lines: u32,
    /// Bumped by the store on every write; the API compares it for compare-and-set edits.
    pub version: u64,
}

/// One team an agent serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMembership {
    pub team: String,
    /// Higher is preferred: a team offers calls to its highest level of free agents first.
    pub level: u32,
}

/// The status an agent chooses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentStatus {
    LoggedOut,
    Ready,
    /// Not offered calls; back to `Ready` by itself at `until` when given.
    Paused {
        reason: String,
        until: Option<DateTime<Utc>>,
    },
    /// Offered one call, then paused with reason `on_demand`.
    OnDemand,
}

impl AgentStatus {
    /// The status name used in the API paths and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            AgentStatus::LoggedOut => "logged_out",
            AgentStatus::Ready => "ready",
            AgentStatus::Paused { .. } => "paused",
            AgentStatus::OnDemand => "on_demand",
        }
    }

    /// Whether the agent may be offered calls in this status.
    pub fn takes_calls(&self) -> bool {
        matches!(self, AgentStatus::Ready | AgentStatus::OnDemand)
    }
}

/// The state the engine keeps of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentState {
    Idle,
    /// Held for a call being set up (the member is being dialed, or waits to be offered).
    Reserved,
    /// The agent's leg is ringing (or the preview is shown).
    Offering,
    Talking,
    /// After a call, until `until` or the result callback.
    WrapUp {
        until: DateTime<Utc>,
    },
    /// Did not answer an offer; not offered again before `until`.
    Missed {
        until: DateTime<Utc>,
    },
}

impl AgentState {
    pub fn name(&self) -> &'static str {
        match self {
            AgentState::Idle => "idle",
            AgentState::Reserved => "reserved",
            AgentState::Offering => "offering",
            AgentState::Talking => "talking",
            AgentState::WrapUp { .. } => "wrap_up",
            AgentState::Missed { .. } => "missed",
        }
    }
}

/// Why an agent (or a name used as a key part) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct AgentInvalid {
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> AgentInvalid {
    AgentInvalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks an agent id or a team name: it becomes part of store keys and API paths.
pub fn check_name(field: &str, value: &str) -> Result<(), AgentInvalid> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(invalid(field, format!("longer than {MAX_ID_LEN} bytes")));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')))
    {
        return Err(invalid(
            field,
            format!("{c:?} not allowed (letters, digits, '_', '-', '.', '@' only)"),
        ));
    }
    Ok(())
}

impl Agent {
    /// Checks every field; the first problem is named with its field.
    pub fn validate(&self) -> Result<(), AgentInvalid> {
        check_name("id", &self.id)?;
        if self.name.len() > MAX_NAME_LEN || self.name.chars().any(char::is_control) {
            return Err(invalid(
                "name",
                format!("at most {MAX_NAME_LEN} bytes, no control characters"),
            ));
        }
        let d = self.dial_string.trim();
        if d.is_empty() {
            return Err(invalid("dial_string", "must not be empty"));
        }
        if self.dial_string.len() > MAX_DIAL_STRING_LEN
            || self.dial_string.chars().any(char::is_control)
        {
            return Err(invalid(
                "dial_string",
                format!("at most {MAX_DIAL_STRING_LEN} bytes, no control characters"),
            ));
        }
        if !(1..=MAX_LINES).contains(&self.lines) {
            return Err(invalid(
                "lines",
                format!("{}: must be 1..={MAX_LINES}", self.lines),
            ));
        }
        if self.teams.len() > MAX_TEAMS {
            return Err(invalid("teams", format!("at most {MAX_TEAMS} teams")));
        }
        for (i, t) in self.teams.iter().enumerate() {
            check_name(&format!("teams[{i}].team"), &t.team)?;
            if self.teams[..i].iter().any(|o| o.team == t.team) {
                return Err(invalid(
                    format!("teams[{i}].team"),
                    format!("{:?} listed twice", t.team),
                ));
            }
        }
        Ok(())
    }

    /// The agent's level in `team`, if it serves it.
    pub fn level_in(&self, team: &str) -> Option<u32> {
        self.teams.iter().find(|t| t.team == team).map(|t| t.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        Agent {
            id: "a1".into(),
            name: "Ann".into(),
            dial_string: "user/1001".into(),
            teams: vec![TeamMembership {
                team: "sales".into(),
                level: 1,
            }],
            lines: 1,
            version: 0,
        }
    }

    #[test]
    fn a_valid_agent_passes_and_each_bad_field_is_named() {
        assert_eq!(agent().validate(), Ok(()));
        let bad = |f: fn(&mut Agent)| {
            let mut a = agent();
            f(&mut a);
            a.validate().unwrap_err().to_string()
        };
        assert!(bad(|a| a.id = "a b".into()).starts_with("id: ' ' not allowed"));
        assert!(bad(|a| a.id = String::new()).starts_with("id: must not be empty"));
        assert!(bad(|a| a.lines = 0).starts_with("lines: 0: must be 1..=10"));
        assert!(bad(|a| a.lines = 11).starts_with("lines: 11"));
        assert!(bad(|a| a.dial_string = " ".into()).starts_with("dial_string: must not be empty"));
        assert!(
            bad(|a| a.teams.push(a.teams[0].clone()))
                .starts_with("teams[1].team: \"sales\" listed twice")
        );
        assert!(
            bad(|a| a.teams[0].team = "{x}".into()).starts_with("teams[0].team: '{' not allowed")
        );
    }

    #[test]
    fn statuses_serialize_with_their_names() {
        let p = AgentStatus::Paused {
            reason: "lunch".into(),
            until: None,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"type":"paused","reason":"lunch","until":null}"#
        );
        assert_eq!(p.name(), "paused");
        assert!(!p.takes_calls() && AgentStatus::OnDemand.takes_calls());
    }
}
