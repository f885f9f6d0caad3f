//! Agents: the live operators that preview and progressive campaigns connect answered calls to (issue 16,
//! `design/agents.md`).
//!
//! This folder owns the agent model and its rules, independent of where it is stored:
//! - [`model`]: an agent's configuration ([`Agent`]), the status the agent chooses ([`AgentStatus`]) and the state
//!   the engine keeps ([`AgentState`]), with validation.
//! - [`strategy`]: how a team picks among free agents ([`Strategy`], [`TeamRules`]).
//! - [`reservation`]: what the engine asks the store for ([`ReserveRequest`]) and gets back ([`Reservation`]), and
//!   how a reservation ends ([`Release`]).
//! - [`message`]: what the API posts to the engine node that owns a call ([`AgentMessage`]).
//! - [`stats`]: per-agent figures ([`AgentStats`], occupancy).
//! - [`record`]: the stored form of one agent and every transition of it. Both store backends run these same
//!   transitions (memory under its lock, Redis under a compare-and-set script), so each rule lives here once.
//! - [`view`]: what the API shows of an agent ([`AgentView`]).

pub mod message;
pub mod model;
pub mod record;
pub mod reservation;
pub mod stats;
pub mod strategy;
pub mod view;

pub use message::{AgentMessage, AgentResult};
pub use model::{Agent, AgentInvalid, AgentState, AgentStatus, TeamMembership};
pub use record::AgentRecord;
pub use reservation::{
    AdoptedReservation, CallRef, DeleteAgentOutcome, PutAgentOutcome, Release, ReleaseAgentOutcome,
    Reservation, ReservationId, ReservationState, ReservationView, ReserveRequest,
    SetStatusOutcome,
};
pub use stats::AgentStats;
pub use strategy::{Strategy, TeamRules};
pub use view::AgentView;
