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
