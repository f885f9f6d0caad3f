//! Small enums of campaign parameters that the store and the engine both read (SPEC §2).

use serde::{Deserialize, Serialize};

/// Order in which due members are claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberOrder {
    /// Priority descending, then due time ascending, then insertion order.
    #[default]
    PriorityFirst,
    /// Webitel v3 order: members waiting for a retry before fresh ones.
    RetriesFirst,
    /// Nobody gets try k+1 before everyone due has had try k.
    StrictCircuit,
}

/// Which of a member's numbers is dialled next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberOrder {
    /// Highest priority number; ties → fewest attempts, then least recently called.
    #[default]
    ByPriority,
    /// Rotate through the numbers in list order.
    TopDown,
}

/// What an attempt whose outcome can never be known counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostAttempt {
    #[default]
    Retry,
    Minus,
    Error,
}

impl LostAttempt {
    /// The cause class an attempt lost this way counts as.
    pub fn class(self) -> crate::campaign::CauseClass {
        use crate::campaign::CauseClass;
        match self {
            LostAttempt::Retry => CauseClass::Retry,
            LostAttempt::Minus => CauseClass::Minus,
            LostAttempt::Error => CauseClass::Error,
        }
    }
}
