//! Hangup cause classes (SPEC §4): which FreeSWITCH hangup causes count as OK, Retry, Error or Minus.
//!
//! The table is validated against the full list of cause names FreeSWITCH 1.10 knows
//! (`switch_cause_t` in `switch_types.h`) plus the dialer's own end causes, so a typo in a campaign is refused
//! instead of silently classified as Retry.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a hangup cause means for the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseClass {
    Ok,
    Retry,
    Error,
    Minus,
}

impl CauseClass {
    pub fn as_str(self) -> &'static str {
        match self {
            CauseClass::Ok => "ok",
            CauseClass::Retry => "retry",
            CauseClass::Error => "error",
            CauseClass::Minus => "minus",
        }
    }
}

/// Every hangup cause name FreeSWITCH 1.10 can report (`switch_cause_t`), plus the dialer's own end causes.
pub const KNOWN_CAUSES: &[&str] = &[
    "NONE",
    "UNALLOCATED_NUMBER",
    "NO_ROUTE_TRANSIT_NET",
    "NO_ROUTE_DESTINATION",
    "CHANNEL_UNACCEPTABLE",
    "CALL_AWARDED_DELIVERED",
    "NORMAL_CLEARING",
    "USER_BUSY",
    "NO_USER_RESPONSE",
    "NO_ANSWER",
    "SUBSCRIBER_ABSENT",
    "CALL_REJECTED",
    "NUMBER_CHANGED",
    "REDIRECTION_TO_NEW_DESTINATION",
    "EXCHANGE_ROUTING_ERROR",
    "DESTINATION_OUT_OF_ORDER",
    "INVALID_NUMBER_FORMAT",
    "FACILITY_REJECTED",
    "RESPONSE_TO_STATUS_ENQUIRY",
    "NORMAL_UNSPECIFIED",
    "NORMAL_CIRCUIT_CONGESTION",
    "NETWORK_OUT_OF_ORDER",
    "NORMAL_TEMPORARY_FAILURE",
    "SWITCH_CONGESTION",
    "ACCESS_INFO_DISCARDED",
    "REQUESTED_CHAN_UNAVAIL",
    "PRE_EMPTED",
    "FACILITY_NOT_SUBSCRIBED",
    "OUTGOING_CALL_BARRED",
    "INCOMING_CALL_BARRED",
    "BEARERCAPABILITY_NOTAUTH",
    "BEARERCAPABILITY_NOTAVAIL",
    "SERVICE_UNAVAILABLE",
    "BEARERCAPABILITY_NOTIMPL",
    "CHAN_NOT_IMPLEMENTED",
    "FACILITY_NOT_IMPLEMENTED",
    "SERVICE_NOT_IMPLEMENTED",
    "INVALID_CALL_REFERENCE",
    "INCOMPATIBLE_DESTINATION",
    "INVALID_MSG_UNSPECIFIED",
    "MANDATORY_IE_MISSING",
    "MESSAGE_TYPE_NONEXIST",
    "WRONG_MESSAGE",
    "IE_NONEXIST",
    "INVALID_IE_CONTENTS",
    "WRONG_CALL_STATE",
    "RECOVERY_ON_TIMER_EXPIRE",
    "MANDATORY_IE_LENGTH_ERROR",
    "PROTOCOL_ERROR",
    "INTERWORKING",
    "SUCCESS",
    "ORIGINATOR_CANCEL",
    "CRASH",
    "SYSTEM_SHUTDOWN",
    "LOSE_RACE",
    "MANAGER_REQUEST",
    "BLIND_TRANSFER",
    "ATTENDED_TRANSFER",
    "ALLOTTED_TIMEOUT",
    "USER_CHALLENGE",
    "MEDIA_TIMEOUT",
    "PICKED_OFF",
    "USER_NOT_REGISTERED",
    "PROGRESS_TIMEOUT",
    "INVALID_GATEWAY",
    "GATEWAY_DOWN",
    "INVALID_URL",
    "INVALID_PROFILE",
    "NO_PICKUP",
    "SRTP_READ_ERROR",
    "BOWOUT",
    "BUSY_EVERYWHERE",
    "DECLINE",
    "DOES_NOT_EXIST_ANYWHERE",
    "NOT_ACCEPTABLE",
    "UNWANTED",
    "NO_IDENTITY",
    "BAD_IDENTITY_INFO",
    "UNSUPPORTED_CERTIFICATE",
    "INVALID_IDENTITY",
    "STALE_DATE",
    "REJECT_ALL",
    // The dialer's own end causes (SPEC §4).
    "MEMBER_EXPIRED",
    "NO_COMMUNICATIONS",
    "MAX_TRY_COUNT",
    "QUEUE_EXPIRE",
];

const DEFAULT_ERROR: &[&str] = &[
    "UNALLOCATED_NUMBER",
    "NO_ROUTE",
    "MEMBER_EXPIRED",
    "INVALID_NUMBER_FORMAT",
    "NETWORK_OUT_OF_ORDER",
    "OUTGOING_CALL_BARRED",
    "SERVICE_UNAVAILABLE",
    "CHAN_NOT_IMPLEMENTED",
    "SERVICE_NOT_IMPLEMENTED",
    "INCOMPATIBLE_DESTINATION",
    "MANDATORY_IE_MISSING",
    "PROGRESS_TIMEOUT",
    "GATEWAY_DOWN",
];
const DEFAULT_RETRY: &[&str] = &[
    "NO_ROUTE_DESTINATION",
    "DESTINATION_OUT_OF_ORDER",
    "USER_BUSY",
    "CALL_REJECTED",
    "NO_USER_RESPONSE",
    "NO_ANSWER",
    "SUBSCRIBER_ABSENT",
    "NUMBER_CHANGED",
    "NORMAL_UNSPECIFIED",
    "NORMAL_CIRCUIT_CONGESTION",
    "ORIGINATOR_CANCEL",
    "LOSE_RACE",
    "USER_NOT_REGISTERED",
];
const DEFAULT_OK: &[&str] = &["NORMAL_CLEARING"];
const DEFAULT_MINUS: &[&str] = &["RECOVERY_ON_TIMER_EXPIRE", "NORMAL_TEMPORARY_FAILURE"];

/// Whether `name` is a cause name the dialer accepts in a cause table.
///
/// `NO_ROUTE` is Webitel's historical shorthand in its default error list; it is kept so the defaults (and campaigns
/// copied from Webitel) validate.
pub fn is_known_cause(name: &str) -> bool {
    name == "NO_ROUTE" || KNOWN_CAUSES.contains(&name)
}

/// The `causes` parameter as written in a campaign: four lists of cause names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CauseLists {
    #[serde(default = "default_ok")]
    pub ok: Vec<String>,
    #[serde(default = "default_retry")]
    pub retry: Vec<String>,
    #[serde(default = "default_error")]
    pub error: Vec<String>,
    #[serde(default = "default_minus")]
    pub minus: Vec<String>,
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}
fn default_ok() -> Vec<String> {
    owned(DEFAULT_OK)
}
fn default_retry() -> Vec<String> {
    owned(DEFAULT_RETRY)
}
fn default_error() -> Vec<String> {
    owned(DEFAULT_ERROR)
}
fn default_minus() -> Vec<String> {
    owned(DEFAULT_MINUS)
}

impl Default for CauseLists {
    fn default() -> Self {
        CauseLists {
            ok: default_ok(),
            retry: default_retry(),
            error: default_error(),
            minus: default_minus(),
        }
    }
}

/// A cause table that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CauseTableError {
    #[error("causes.{list}[{index}]: unknown hangup cause {name:?}")]
    Unknown {
        list: &'static str,
        index: usize,
        name: String,
    },
    #[error("causes.{list}[{index}]: {name:?} is already in causes.{first}")]
    Duplicate {
        list: &'static str,
        index: usize,
        name: String,
        first: &'static str,
    },
}

/// A validated cause → class lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseTable {
    map: HashMap<String, CauseClass>,
}

impl Default for CauseTable {
    fn default() -> Self {
        CauseTable::new(&CauseLists::default()).expect("the default cause lists are valid")
    }
}

impl CauseTable {
    /// Validates the lists: every name known, no name in two lists.
    pub fn new(lists: &CauseLists) -> Result<CauseTable, CauseTableError> {
        let mut map: HashMap<String, CauseClass> = HashMap::new();
        let all = [
            ("ok", CauseClass::Ok, &lists.ok),
            ("retry", CauseClass::Retry, &lists.retry),
            ("error", CauseClass::Error, &lists.error),
            ("minus", CauseClass::Minus, &lists.minus),
        ];
        for (list, class, names) in all {
            for (index, name) in names.iter().enumerate() {
                if !is_known_cause(name) {
                    return Err(CauseTableError::Unknown {
                        list,
                        index,
                        name: name.clone(),
                    });
                }
                if let Some(prev) = map.insert(name.clone(), class)
                    && prev != class
                {
                    return Err(CauseTableError::Duplicate {
                        list,
                        index,
                        name: name.clone(),
                        first: prev.as_str(),
                    });
                }
            }
        }
        Ok(CauseTable { map })
    }

    /// The class of a hangup cause; a cause in no list counts as Retry (SPEC §4).
    pub fn classify(&self, cause: &str) -> CauseClass {
        self.map.get(cause).copied().unwrap_or(CauseClass::Retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_classifies_per_spec() {
        let t = CauseTable::default();
        assert_eq!(t.classify("NORMAL_CLEARING"), CauseClass::Ok);
        assert_eq!(t.classify("USER_BUSY"), CauseClass::Retry);
        assert_eq!(t.classify("UNALLOCATED_NUMBER"), CauseClass::Error);
        assert_eq!(t.classify("NORMAL_TEMPORARY_FAILURE"), CauseClass::Minus);
    }

    #[test]
    fn cause_in_no_list_counts_as_retry() {
        assert_eq!(
            CauseTable::default().classify("MEDIA_TIMEOUT"),
            CauseClass::Retry
        );
        assert_eq!(
            CauseTable::default().classify("WHATEVER"),
            CauseClass::Retry
        );
    }

    #[test]
    fn unknown_cause_name_is_refused_with_its_place() {
        let lists = CauseLists {
            error: vec!["USER_BUSY_TYPO".into()],
            ..CauseLists::default()
        };
        let err = CauseTable::new(&lists).unwrap_err();
        assert_eq!(
            err.to_string(),
            "causes.error[0]: unknown hangup cause \"USER_BUSY_TYPO\""
        );
    }

    #[test]
    fn cause_in_two_lists_is_refused() {
        let lists = CauseLists {
            ok: vec!["NORMAL_CLEARING".into(), "USER_BUSY".into()],
            ..CauseLists::default()
        };
        let err = CauseTable::new(&lists).unwrap_err();
        assert!(err.to_string().contains("causes.retry"), "{err}");
    }
}
