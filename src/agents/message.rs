//! Messages the API posts to the engine node that owns a call (its inbox in the store): a preview accepted or
//! skipped, and the result callback of an agent call.

use crate::agents::reservation::ReservationId;
use crate::store::{AttemptId, MemberId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// The agent accepts the previewed member: dial it.
    Accept { reservation: ReservationId },
    /// The agent skips the previewed member: it goes back, no try counted.
    Skip { reservation: ReservationId },
    /// The result callback (`PUT /api/v2/dialer/{id}/members/{mid}/status`) of the attempt.
    Result {
        campaign: String,
        member: MemberId,
        attempt: AttemptId,
        result: AgentResult,
    },
}

/// The result an agent (or its CRM) gives for a call (Webitel v3 fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentResult {
    pub success: bool,
    /// Call the member again after this many seconds (a callback, sticky to the agent).
    pub next_after_sec: Option<u64>,
    /// Call the member again at this instant (RFC 3339; the API keeps it with the attempt in the store, see
    /// `Store::follow_up`).
    pub next_communication: Option<String>,
    pub stop_communications: bool,
    /// Count the member's tries from zero again (kept with the attempt in the store like `next_communication`).
    pub reset_retries: bool,
    pub description: Option<String>,
    /// The agent that gave the result, when known.
    pub agent: Option<String>,
}
