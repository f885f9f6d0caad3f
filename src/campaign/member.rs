//! A member (contact) as it is submitted through the API, CSV import or a config file (SPEC §1).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One contact to call, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberInput {
    pub name: String,
    #[serde(default)]
    pub priority: i64,
    /// IANA timezone name; `None` means the calendar's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// After this instant the member is never called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<DateTime<Utc>>,
    /// Scalars only (string, number, bool): passed to FreeSWITCH and the callflow.
    #[serde(default)]
    pub variables: serde_json::Map<String, serde_json::Value>,
    pub communications: Vec<CommunicationInput>,
    /// Client key: a second insert with the same key updates instead of duplicating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// One phone number of a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunicationInput {
    pub number: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Default most variables one member may carry.
pub const DEFAULT_MAX_VARIABLES: usize = 100;
/// Default largest member ([`MemberInput::data_size`]), in bytes.
pub const DEFAULT_MAX_MEMBER_BYTES: usize = 64 * 1024;

/// How much data one member may carry: every variable reaches the originate command, which FreeSWITCH refuses
/// (dropping the whole ESL connection) beyond 10 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberLimits {
    pub max_variables: usize,
    pub max_bytes: usize,
}

impl Default for MemberLimits {
    fn default() -> MemberLimits {
        MemberLimits {
            max_variables: DEFAULT_MAX_VARIABLES,
            max_bytes: DEFAULT_MAX_MEMBER_BYTES,
        }
    }
}

/// A member over its [`MemberLimits`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberLimitError {
    #[error("{count} variables; at most {limit} are allowed")]
    TooManyVariables { count: usize, limit: usize },
    #[error("the member's data is {bytes} bytes; at most {limit} are allowed")]
    TooLarge { bytes: usize, limit: usize },
}

impl MemberLimitError {
    /// The field the error is about; `None`: the member as a whole.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            MemberLimitError::TooManyVariables { .. } => Some("variables"),
            MemberLimitError::TooLarge { .. } => None,
        }
    }
}

impl MemberLimits {
    /// The most any configuration may allow: what the store accepts from every caller. Even url-encoded (three
    /// bytes per byte), a member this large keeps the originate command far below FreeSWITCH's 10 MiB.
    pub const CEILING: MemberLimits = MemberLimits {
        max_variables: 10_000,
        max_bytes: 1024 * 1024,
    };

    /// Whether these limits are within [`MemberLimits::CEILING`] and allow at least one small member.
    pub fn within_ceiling(&self) -> bool {
        (1..=Self::CEILING.max_variables).contains(&self.max_variables)
            && (1024..=Self::CEILING.max_bytes).contains(&self.max_bytes)
    }

    pub fn check(&self, m: &MemberInput) -> Result<(), MemberLimitError> {
        if m.variables.len() > self.max_variables {
            return Err(MemberLimitError::TooManyVariables {
                count: m.variables.len(),
                limit: self.max_variables,
            });
        }
        let bytes = m.data_size();
        if bytes > self.max_bytes {
            return Err(MemberLimitError::TooLarge {
                bytes,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }
}

impl MemberInput {
    /// The bytes of text the member carries: name, timezone, external id, every variable's name and value (as
    /// text), every number with its description and type.
    pub fn data_size(&self) -> usize {
        let vars: usize = self
            .variables
            .iter()
            .map(|(k, v)| {
                k.len()
                    + match v {
                        serde_json::Value::String(s) => s.len(),
                        other => other.to_string().len(),
                    }
            })
            .sum();
        let comms: usize = self
            .communications
            .iter()
            .map(|c| {
                c.number.len()
                    + c.description.as_ref().map_or(0, String::len)
                    + c.kind.as_ref().map_or(0, String::len)
            })
            .sum();
        self.name.len()
            + self.timezone.as_ref().map_or(0, String::len)
            + self.external_id.as_ref().map_or(0, String::len)
            + vars
            + comms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn member(vars: serde_json::Value) -> MemberInput {
        MemberInput {
            name: "Ann".into(),
            priority: 0,
            timezone: None,
            expire: None,
            variables: vars.as_object().unwrap().clone(),
            communications: vec![CommunicationInput {
                number: "380441234567".into(),
                priority: 0,
                description: Some("home".into()),
                kind: None,
            }],
            external_id: None,
        }
    }

    #[test]
    fn data_size_counts_every_text_the_member_carries() {
        let m = member(json!({"ab": "xyz", "n": 12345, "b": true}));
        assert_eq!(m.data_size(), 3 + (2 + 3) + (1 + 5) + (1 + 4) + 12 + 4);
    }

    #[test]
    fn too_many_variables_or_too_many_bytes_are_refused() {
        let limits = MemberLimits {
            max_variables: 2,
            max_bytes: 1024,
        };
        assert_eq!(limits.check(&member(json!({"a": 1, "b": 2}))), Ok(()));
        assert_eq!(
            limits.check(&member(json!({"a": 1, "b": 2, "c": 3}))),
            Err(MemberLimitError::TooManyVariables { count: 3, limit: 2 })
        );
        let big = member(json!({"a": "x".repeat(1024)}));
        assert!(matches!(
            limits.check(&big),
            Err(MemberLimitError::TooLarge { limit: 1024, .. })
        ));
        assert!(MemberLimits::default().within_ceiling());
        assert!(
            !MemberLimits {
                max_variables: 1,
                max_bytes: usize::MAX
            }
            .within_ceiling()
        );
    }
}
