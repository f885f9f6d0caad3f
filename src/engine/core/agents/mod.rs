//! Agent modes in the core: reserving an agent, calling its leg, joining it to the member, abandoning.
//!
//! A call of a `preview` or `progressive` campaign carries an [`AgentCall`] beside its member leg. The store
//! holds the agents (shared by every node); the core only asks for a reservation ([`Action::ReserveAgent`]), says
//! how it is used ([`Action::AgentOffered`], [`Action::AgentTalking`]) and gives it back ([`Action::ReleaseAgent`]).
//!
//! - **Progressive**: the claim waits for a reservation before its originate is sent (none: the claim goes back
//!   uncounted and the campaign looks again shortly). On the member's answer the agent's leg is called
//!   (`&park()`); on its answer the two are joined with `uuid_bridge`. An agent that does not answer within
//!   `agent_answer_timeout_sec` is released as missed and another is looked for; with none found within
//!   `connect_timeout_ms` the member hears the abandon message and is hung up: the attempt is `ABANDONED`.
//!   With `lines > 1` an answer cancels the agent's other member legs on this node (`ORIGINATOR_CANCEL`, the
//!   claims go back uncounted).
//! - **Preview**: the agent's leg is called first; once it answers the member is shown to it
//!   ([`Action::Offer`]); it accepts (the member is dialled and joined on answer) or skips (the claim goes back,
//!   no try counted), or `preview_timeout_sec` passes (`preview_on_timeout`).
//! - **After the call** the agent is released as finished (its wrap-up starts in the store); the attempt waits up
//!   to `result_timeout_sec` for the agent's result ([`Input::AgentResult`]), which decides it like a callflow
//!   `result`; without one the hangup cause does, as for any call. A member answered and never joined is
//!   `ABANDONED` with the campaign's `abandoned_class`, whoever hung up.
//!
//! By concern: `connect` (reserving, dialling the agent and the member, joining, abandoning) and `events` (what
//! the switch, the agent and time say about a call). This file holds the types.
//!
//! Every phase has a deadline, so no reservation, agent leg or member waits forever; every path that forgets a
//! call gives its reservation back and hangs up an agent leg still up.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use uuid::Uuid;

use super::Action;
use crate::campaign::agents::{AgentSettings, DialMode, PreviewTimeout};
use crate::campaign::causes::CauseClass;
use crate::engine::originate::{self, OriginateSpec};
use crate::store::AttemptId;

/// Cause recorded for a member answered and never joined to an agent.
pub const ABANDONED_CAUSE: &str = "ABANDONED";
/// How often a member waiting for an agent asks the store again.
const RESERVE_RETRY: ChronoDuration = ChronoDuration::milliseconds(250);
/// Longest an abandon message may play before the member leg is looked at again.
const ABANDON_PLAY_MAX: ChronoDuration = ChronoDuration::seconds(120);

/// An agent held for one call, as the store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentReservation {
    /// The store's reservation id.
    pub id: Uuid,
    pub agent: String,
    pub dial_string: String,
}

/// How a reservation is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRelease {
    /// Never offered a call: as if never reserved.
    Unused,
    /// Its leg did not answer.
    Missed,
    /// It took the call (or previewed and dialled it): wrap-up follows.
    Finished { talk_ms: u64 },
}

/// The agent's verdict on a call (the result callback).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentOutcome {
    pub success: bool,
    /// Call the member again this long after now (a callback); counts as a try.
    pub next_after_sec: Option<u64>,
    /// End the member: it is not called again.
    pub stop_communications: bool,
    pub description: Option<String>,
}

/// Where an agent call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentPhase {
    /// Waiting for the store's reservation.
    Reserving,
    /// The agent's leg is ringing.
    AgentRinging,
    /// Preview: the agent sees the member and decides.
    Previewing,
    /// The member's leg is ringing.
    MemberRinging,
    /// The member answered and no agent is free yet: asking again until `abandon_at`.
    Waiting,
    /// `uuid_bridge` sent.
    Bridging,
    /// Member and agent are talking.
    Bridged,
    /// The abandon message plays; the member leg hangs up after it.
    Abandoning,
    /// The call is over; waiting for the agent's result.
    AwaitingResult,
}

/// The agent's leg of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLeg {
    pub uuid: Uuid,
    /// The originate's background job (`None` for a leg adopted from a previous run: its job is long done).
    pub job: Option<Uuid>,
    pub answered: bool,
}

/// What is recorded with the attempt about its agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFacts {
    pub agent: Option<String>,
    pub reserved_at: Option<DateTime<Utc>>,
    pub offered_at: Option<DateTime<Utc>>,
    pub agent_answered_at: Option<DateTime<Utc>>,
    pub bridged_at: Option<DateTime<Utc>>,
    /// From the member's answer to the bridge.
    pub wait_ms: Option<u64>,
    pub abandoned: bool,
    /// Agents that left this member unanswered.
    pub missed: Vec<String>,
}

/// The agent side of one call.
#[derive(Debug, Clone)]
pub struct AgentCall {
    pub mode: DialMode,
    pub settings: AgentSettings,
    pub phase: AgentPhase,
    pub reservation: Option<AgentReservation>,
    pub leg: Option<AgentLeg>,
    /// The member's originate, held until an agent is there (progressive) or accepts (preview).
    pub member_originate: Option<Action>,
    /// Answered and no agent: abandoned at this instant.
    pub abandon_at: Option<DateTime<Utc>>,
    /// Cancelled (a sibling line answered, or the agent left the preview): the claim goes back uncounted when the
    /// member leg ends.
    pub cancelled: bool,
    pub outcome: Option<AgentOutcome>,
    pub facts: AgentFacts,
}

impl AgentCall {
    fn member_dialled(&self) -> bool {
        self.member_originate.is_none()
    }

    /// The claim still waits for its first reservation (counted in the campaign's `agent_reserving`).
    fn awaiting_first_agent(&self) -> bool {
        self.phase == AgentPhase::Reserving
            && !self.member_dialled()
            && self.facts.reserved_at.is_none()
            && self.facts.missed.is_empty()
    }

    /// The attempt's note: the agent facts as compact JSON.
    pub fn note(&self) -> serde_json::Value {
        let f = &self.facts;
        let ts = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
        let mut o = serde_json::json!({
            "mode": self.mode.as_str(),
            "agent": f.agent,
            "reserved_at": ts(f.reserved_at),
            "offered_at": ts(f.offered_at),
            "agent_answered_at": ts(f.agent_answered_at),
            "bridged_at": ts(f.bridged_at),
            "wait_ms": f.wait_ms,
            "abandoned": f.abandoned,
            "wrap_up_sec": self.settings.wrap_up_sec,
        });
        if !f.missed.is_empty() {
            o["missed_by"] = serde_json::json!(f.missed);
        }
        if let Some(out) = &self.outcome {
            o["agent_result"] = serde_json::json!({
                "success": out.success,
                "next_after_sec": out.next_after_sec,
                "stop_communications": out.stop_communications,
                "description": out.description,
            });
        }
        o
    }
}

mod connect;
mod events;

/// Agent legs this node placed, by channel uuid and by originate job, to the attempt each serves.
#[derive(Debug, Default)]
pub struct LegIndex {
    pub legs: std::collections::HashMap<Uuid, AttemptId>,
    pub jobs: std::collections::HashMap<Uuid, AttemptId>,
}

impl LegIndex {
    fn insert(&mut self, leg: Uuid, job: Uuid, attempt: AttemptId) {
        self.legs.insert(leg, attempt);
        self.jobs.insert(job, attempt);
    }

    /// Forgets the leg and hangs it up with `cause` (when its switch is known).
    fn hang_up(
        &mut self,
        out: &mut Vec<Action>,
        switch: Option<usize>,
        leg: &AgentLeg,
        cause: &str,
    ) {
        self.legs.remove(&leg.uuid);
        if let Some(job) = leg.job {
            self.jobs.remove(&job);
        }
        if let Some(switch) = switch {
            out.push(Action::Kill {
                switch,
                uuid: leg.uuid,
                cause: cause.into(),
            });
        }
    }
}

/// The export columns of an attempt's agent facts ([`AGENT_EXPORT_COLUMNS`]), read from its note; empty cells
/// for an attempt without an agent.
pub fn agent_export_cells(note: Option<&str>) -> Vec<String> {
    let call = note
        .and_then(|n| serde_json::from_str::<serde_json::Value>(n).ok())
        .and_then(|v| v.get("agent_call").cloned());
    let Some(call) = call else {
        return vec![String::new(); AGENT_EXPORT_COLUMNS.len()];
    };
    let cell = |key: &str| match call.get(key) {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    vec![
        cell("agent"),
        cell("reserved_at"),
        cell("offered_at"),
        cell("agent_answered_at"),
        cell("bridged_at"),
        cell("wait_ms"),
        cell("abandoned"),
    ]
}

/// The attempt export's agent columns, in the order of [`agent_export_cells`].
pub const AGENT_EXPORT_COLUMNS: [&str; 7] = [
    "agent",
    "agent_reserved_at",
    "agent_offered_at",
    "agent_answered_at",
    "bridged_at",
    "wait_ms",
    "abandoned",
];

/// The action that gives a reservation back.
fn release_action(
    r: AgentReservation,
    how: AgentRelease,
    settings: Option<&AgentSettings>,
) -> Action {
    Action::ReleaseAgent {
        reservation: r.id,
        agent: r.agent,
        how,
        settings: settings.cloned(),
    }
}

/// Whether an agent's dial string can go into an originate as is: no spaces, braces, brackets, commas, quotes or
/// line breaks (which would add legs, variables or arguments).
pub fn is_safe_dial_string(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && !s.contains(":_:")
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'{' | b'}' | b'[' | b']' | b',' | b'\'' | b'"' | b'|' | b'\\' | b'<' | b'>'
                )
        })
        && !s.contains("${")
}
