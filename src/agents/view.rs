//! What the API (and the engine's operators) see of an agent: its configuration, status, live state, the calls it
//! is held for, and its figures as of now.

use crate::agents::model::{Agent, AgentState, AgentStatus};
use crate::agents::reservation::{CallRef, ReservationView};
use crate::agents::stats::AgentStats;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub agent: Agent,
    pub status: AgentStatus,
    /// A status asked for while the agent was in a call: it applies when the call ends.
    pub pending_status: Option<AgentStatus>,
    pub state: AgentState,
    pub state_since: DateTime<Utc>,
    pub reservations: Vec<ReservationView>,
    /// Offers missed in a row.
    pub no_answer_streak: u32,
    /// The call the agent last talked on (for its result callback).
    pub last_call: Option<CallRef>,
    pub stats: AgentStats,
}

impl AgentView {
    /// The reservation being offered to the agent (a preview or its ringing leg), if any.
    pub fn offered(&self) -> Option<&ReservationView> {
        self.reservations
            .iter()
            .find(|r| r.state == crate::agents::ReservationState::Offering)
    }
}
