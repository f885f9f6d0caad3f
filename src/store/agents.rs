//! Agents in the store: their records, reservations (under node leases), status changes and the per-node inbox
//! of agent messages (see [`crate::agents`] for the model and the rules).
//!
//! Every operation here is written once, as a function over the loaded agent records ([`Slot`]s), and run by
//! [`Store::agent_tx`] atomically in either backend:
//! - memory: under the agent map's lock;
//! - Redis: the records are read in one script, the function runs in Rust, and one compare-and-set script writes
//!   the records it changed (with the indexes: teams, reservation → agent, lease expiries) only if none of them
//!   changed in between; otherwise the whole operation runs again on fresh records after a short random pause
//!   (at most [`TX_ATTEMPTS`] times, then [`StoreError::AgentsContended`]). Two nodes reserving the same agent therefore never both succeed: the second one's write is refused
//!   and it picks again among what is left. All keys share the `{agents}` hash tag (one Redis Cluster slot).
//!
//! The agent rules stay in Rust (one place for both backends); the price is two round trips per operation.

use super::AttemptId;
use super::Store;
use super::error::{StoreError, StoreResult};
use super::record::{check_campaign, check_node};
use crate::agents::model::check_name;
use crate::agents::strategy::pick;
use crate::agents::{
    AdoptedReservation, Agent, AgentMessage, AgentRecord, AgentStatus, AgentView,
    DeleteAgentOutcome, PutAgentOutcome, Release, ReleaseAgentOutcome, Reservation, ReservationId,
    ReserveRequest, SetStatusOutcome, TeamRules,
};
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

/// Most agents a store holds (checked before a create, outside its atomic write: concurrent creates may pass it
/// by a few).
pub const MAX_AGENTS: usize = 5000;
/// Most messages waiting in one node's agent inbox; posting to a full inbox is refused.
pub const INBOX_CAP: usize = 10_000;
/// How often a Redis agent operation is tried when concurrent writes keep changing its agents.
pub const TX_ATTEMPTS: usize = 32;
/// Most expired reservations one recovery pass looks at.
pub const RECOVER_BATCH: usize = 1000;

/// Which agents an operation loads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// These agents (absent ones come as empty slots).
    Ids(&'a [String]),
    /// The agents serving a team.
    Team(&'a str),
    /// The agents holding these reservations.
    Reservations(&'a [ReservationId]),
    /// The agents holding reservations whose lease expired by `now` (at most `max` reservations looked at).
    Expired { now: DateTime<Utc>, max: usize },
    /// Every agent.
    All,
}

/// One agent loaded by an operation: `record` is `None` for an absent agent; the operation may create, change or
/// delete it (never change its id).
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub id: String,
    pub record: Option<AgentRecord>,
}

fn lease_of(lease: Duration) -> StoreResult<chrono::Duration> {
    let ms = super::memory::lease_ms(lease)?;
    Ok(chrono::Duration::milliseconds(ms))
}

impl Store {
    /// Runs `f` over the agents of `scope` atomically (see the module doc); `f` may run more than once on Redis.
    pub(crate) async fn agent_tx<T>(
        &self,
        op: &'static str,
        scope: Scope<'_>,
        f: impl FnMut(&mut [Slot]) -> StoreResult<T>,
    ) -> StoreResult<T> {
        match self {
            Store::Memory(m) => m.agents.transact(scope, f),
            Store::Redis(r) => r.agent_tx(op, scope, f).await,
        }
    }

    /// Creates or replaces an agent's configuration (its status, state and figures are kept).
    /// `expected_version`: `None` writes whatever is stored; `Some(0)` only creates; `Some(v)` only replaces
    /// version `v` (compare-and-set) — otherwise nothing is written and the outcome is a conflict.
    pub async fn put_agent(
        &self,
        agent: &Agent,
        expected_version: Option<u64>,
        now: DateTime<Utc>,
    ) -> StoreResult<PutAgentOutcome> {
        agent.validate()?;
        let ids = [agent.id.clone()];
        let count = self.agent_count().await?;
        self.agent_tx("put_agent", Scope::Ids(&ids), |slots| {
            let slot = &mut slots[0];
            let current = slot.record.as_ref().map(|r| r.agent.version);
            let conflict = match expected_version {
                None => false,
                Some(0) => current.is_some(),
                Some(v) => current != Some(v),
            };
            if conflict {
                return Ok(PutAgentOutcome::Conflict { current });
            }
            match &mut slot.record {
                Some(r) => {
                    r.settle(now);
                    r.agent = Agent {
                        version: r.agent.version + 1,
                        ..agent.clone()
                    };
                    Ok(PutAgentOutcome::Replaced {
                        version: r.agent.version,
                    })
                }
                None if count >= MAX_AGENTS => Err(StoreError::TooManyAgents { max: MAX_AGENTS }),
                None => {
                    let a = Agent {
                        version: 1,
                        ..agent.clone()
                    };
                    slot.record = Some(AgentRecord::new(a, now));
                    Ok(PutAgentOutcome::Created { version: 1 })
                }
            }
        })
        .await
    }

    /// An agent as of `now`.
    pub async fn agent(&self, id: &str, now: DateTime<Utc>) -> StoreResult<Option<AgentView>> {
        check_name("agent id", id)?;
        let ids = [id.to_owned()];
        self.agent_tx("agent", Scope::Ids(&ids), |slots| {
            Ok(slots[0].record.as_ref().map(|r| r.view(now)))
        })
        .await
    }

    /// Every agent as of `now`, in id order.
    pub async fn agents(&self, now: DateTime<Utc>) -> StoreResult<Vec<AgentView>> {
        let mut v = self
            .agent_tx("agents", Scope::All, |slots| {
                Ok(slots
                    .iter()
                    .filter_map(|s| s.record.as_ref().map(|r| r.view(now)))
                    .collect::<Vec<_>>())
            })
            .await?;
        v.sort_by(|a, b| a.agent.id.cmp(&b.agent.id));
        Ok(v)
    }

    /// A team's agents by what they can do for a predictive campaign now (free, busy, in wrap-up), with the instant
    /// each talking agent began to talk.
    pub async fn team_counts(
        &self,
        team: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<crate::agents::pacer::TeamSnapshot> {
        check_name("team", team)?;
        let views = self
            .agent_tx("team_counts", Scope::Team(team), |slots| {
                Ok(slots
                    .iter()
                    .filter_map(|s| s.record.as_ref().map(|r| r.view(now)))
                    .collect::<Vec<_>>())
            })
            .await?;
        Ok(crate::agents::pacer::TeamSnapshot::of_team(&views))
    }

    /// How many agents the store holds.
    pub async fn agent_count(&self) -> StoreResult<usize> {
        match self {
            Store::Memory(m) => Ok(m.agents.count()),
            Store::Redis(r) => r.agent_count().await,
        }
    }

    /// Deletes an agent; refused while it holds reservations.
    pub async fn delete_agent(&self, id: &str) -> StoreResult<DeleteAgentOutcome> {
        check_name("agent id", id)?;
        let ids = [id.to_owned()];
        self.agent_tx("delete_agent", Scope::Ids(&ids), |slots| {
            let slot = &mut slots[0];
            Ok(match &slot.record {
                None => DeleteAgentOutcome::NotFound,
                Some(r) if !r.reservations.is_empty() => DeleteAgentOutcome::Busy {
                    reservations: r.reservations.len(),
                },
                Some(_) => {
                    slot.record = None;
                    DeleteAgentOutcome::Deleted
                }
            })
        })
        .await
    }

    /// The agent chose a status. A logout or pause while it holds reservations applies when they end (pending);
    /// a pause with `until` ends by itself then; on demand: offered one call, then paused (`on_demand`).
    pub async fn set_agent_status(
        &self,
        id: &str,
        status: AgentStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<SetStatusOutcome> {
        check_name("agent id", id)?;
        if let AgentStatus::Paused { reason, .. } = &status
            && (reason.len() > 200 || reason.chars().any(char::is_control))
        {
            return Err(StoreError::InvalidArgument {
                what: "reason",
                reason: "at most 200 bytes, no control characters".into(),
            });
        }
        let ids = [id.to_owned()];
        self.agent_tx("set_agent_status", Scope::Ids(&ids), |slots| {
            Ok(match &mut slots[0].record {
                None => SetStatusOutcome::NotFound,
                Some(r) => r.set_status(status.clone(), now),
            })
        })
        .await
    }

    /// Reserves a free agent of the request's team for one member's attempt, atomically across nodes (see the
    /// module doc): the preferred agent if it is eligible, else the team strategy's pick among the highest level
    /// of eligible agents. `None`: no agent is free.
    pub async fn reserve_agent(
        &self,
        req: &ReserveRequest,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Reservation>> {
        check_campaign(&req.campaign)?;
        check_node(&req.node)?;
        check_name("team", &req.rules.team)?;
        lease_of(req.lease)?;
        let id = uuid::Uuid::new_v4();
        self.agent_tx("reserve_agent", Scope::Team(&req.rules.team), |slots| {
            let mut probes: Vec<(usize, AgentRecord, u32)> = Vec::new();
            for (i, s) in slots.iter().enumerate() {
                let Some(r) = &s.record else { continue };
                let mut probe = r.clone();
                probe.settle(now);
                if let Some(level) = probe.eligible(req) {
                    probes.push((i, probe, level));
                }
            }
            let preferred = req
                .prefer
                .as_ref()
                .and_then(|p| probes.iter().position(|(_, r, _)| r.agent.id == *p));
            let chosen = preferred.or_else(|| {
                let candidates: Vec<_> = probes.iter().map(|(_, r, l)| r.candidate(*l)).collect();
                pick(req.rules.strategy, &candidates)
            });
            let Some(k) = chosen else { return Ok(None) };
            let (slot, mut rec, _) = probes.swap_remove(k);
            let reservation = rec.reserve(req, id, now);
            slots[slot].record = Some(rec);
            Ok(Some(reservation))
        })
        .await
    }

    /// Runs `f` on the agent holding reservation `id`; `none` when no agent holds it.
    async fn with_reservation<T: Clone>(
        &self,
        op: &'static str,
        id: ReservationId,
        none: T,
        mut f: impl FnMut(&mut AgentRecord) -> T,
    ) -> StoreResult<T> {
        let ids = [id];
        self.agent_tx(op, Scope::Reservations(&ids), |slots| {
            for s in slots.iter_mut() {
                if let Some(r) = &mut s.record
                    && r.holds(id)
                {
                    return Ok(f(r));
                }
            }
            Ok(none.clone())
        })
        .await
    }

    /// The agent's leg `leg` rings (or the preview is shown). `false`: no such reservation.
    pub async fn agent_offering(
        &self,
        id: ReservationId,
        leg: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.with_reservation("agent_offering", id, false, |r| r.offering(id, leg, now))
            .await
    }

    /// Hands the reservations serving `attempts` to `node` with a fresh lease and returns them: the node adopted
    /// those calls (after its own restart, or from a vanished node) and follows them to their end, so their agents
    /// stay held (talking, then wrap-up) instead of being released by lease expiry while still on the call.
    /// Agents are few and adoption is rare, so this looks at every agent.
    pub async fn adopt_agent_reservations(
        &self,
        node: &str,
        attempts: &[AttemptId],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Vec<AdoptedReservation>> {
        check_node(node)?;
        let until = now + lease_of(lease)?;
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        self.agent_tx("adopt_agent_reservations", Scope::All, |slots| {
            Ok(slots
                .iter_mut()
                .filter_map(|s| s.record.as_mut())
                .flat_map(|r| r.adopt(node, attempts, until))
                .collect())
        })
        .await
    }

    /// The agent answered: returns its other reservations, released unused by this call, whose member calls the
    /// engine must cancel (agents with several lines). `None`: no such reservation.
    pub async fn agent_talking(
        &self,
        id: ReservationId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<Reservation>>> {
        self.with_reservation("agent_talking", id, None, |r| r.talking(id, now))
            .await
    }

    /// Ends a reservation (see [`Release`]); an unknown or already recovered reservation changes nothing.
    pub async fn release_agent(
        &self,
        id: ReservationId,
        release: Release,
        rules: &TeamRules,
        now: DateTime<Utc>,
    ) -> StoreResult<ReleaseAgentOutcome> {
        self.with_reservation("release_agent", id, ReleaseAgentOutcome::Unknown, |r| {
            if r.release(id, release, rules, now) {
                ReleaseAgentOutcome::Released {
                    agent: r.agent.id.clone(),
                }
            } else {
                ReleaseAgentOutcome::Unknown
            }
        })
        .await
    }

    /// Ends an agent's wrap-up now (its result came). `false`: unknown agent, or not in wrap-up.
    pub async fn end_wrap_up(&self, agent: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        check_name("agent id", agent)?;
        let ids = [agent.to_owned()];
        self.agent_tx("end_wrap_up", Scope::Ids(&ids), |slots| {
            Ok(slots[0].record.as_mut().is_some_and(|r| r.end_wrap_up(now)))
        })
        .await
    }

    /// Extends `node`'s reservations to `now + lease`; returns those it no longer holds (released, recovered).
    pub async fn renew_agent_reservations(
        &self,
        node: &str,
        ids: &[ReservationId],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Vec<ReservationId>> {
        check_node(node)?;
        let until = now + lease_of(lease)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.agent_tx(
            "renew_agent_reservations",
            Scope::Reservations(ids),
            |slots| {
                let mut lost = Vec::new();
                for id in ids {
                    let renewed = slots
                        .iter_mut()
                        .filter_map(|s| s.record.as_mut())
                        .any(|r| r.renew(node, *id, until));
                    if !renewed {
                        lost.push(*id);
                    }
                }
                Ok(lost)
            },
        )
        .await
    }

    /// Releases, unused, the reservations whose lease expired (their node died); returns how many.
    pub async fn recover_agent_reservations(&self, now: DateTime<Utc>) -> StoreResult<u32> {
        let n = self
            .agent_tx(
                "recover_agent_reservations",
                Scope::Expired {
                    now,
                    max: RECOVER_BATCH,
                },
                |slots| {
                    let mut n = 0u32;
                    for s in slots.iter_mut() {
                        if let Some(r) = &mut s.record {
                            for id in r.expire_leases(now) {
                                tracing::info!(agent = %r.agent.id, reservation = %id, "agent reservation lease expired: released");
                                n += 1;
                            }
                        }
                    }
                    Ok(n)
                },
            )
            .await?;
        Ok(n)
    }

    /// Queues a message for the engine node `node` (bounded: refused when [`INBOX_CAP`] messages wait).
    pub async fn post_agent_message(&self, node: &str, msg: &AgentMessage) -> StoreResult<()> {
        check_node(node)?;
        match self {
            Store::Memory(m) => m.agents.post(node, msg),
            Store::Redis(r) => r.post_agent_message(node, msg).await,
        }
    }

    /// Takes up to `max` messages waiting for `node`, oldest first.
    pub async fn take_agent_messages(
        &self,
        node: &str,
        max: usize,
    ) -> StoreResult<Vec<AgentMessage>> {
        check_node(node)?;
        match self {
            Store::Memory(m) => Ok(m.agents.take(node, max)),
            Store::Redis(r) => r.take_agent_messages(node, max).await,
        }
    }
}
