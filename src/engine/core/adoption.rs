//! Adoption: the attempts this node holds in the store but does not track yet (after a restart, or taken over
//! from a vanished node) are tracked again and looked for on the switches. One still up finishes with its real
//! outcome; one gone that left a hangup record on a switch (`engine::hangup_record`, the call's `api_hangup_hook`)
//! is recorded with the outcome the record holds; only one gone without a trace is lost.
//!
//! A call of an agent campaign also had an agent: its reservation, under the lease of the node that placed it,
//! would expire and free the agent while it is still on the call. So the core first asks the store for those
//! reservations ([`Action::AdoptAgents`]: they move to this node's lease) and looks for the calls once they are back
//! ([`Core::on_agents_adopted`]). A call whose agent was talking is followed as joined: its end releases the agent
//! into wrap-up and waits for the agent's result, as if the node had never stopped. A call that had not reached its
//! agent yet gets none: its reservation goes back, the agent's leg is hung up, and the member hears the abandon
//! message if they answered (or when they answer): a live answer never waits in silence for an agent that will
//! not come.

use chrono::{DateTime, Utc};

use super::agents::{AgentCall, AgentFacts, AgentLeg, AgentPhase, AgentRelease, AgentReservation};
use super::{Action, Core, HangupRecord, dur};
use crate::agents::{AdoptedReservation, ReservationState};
use crate::store::{AttemptId, Claim};

impl Core {
    /// Takes back attempts this node held before it restarted (see the module documentation).
    pub(super) fn adopt(&mut self, now: DateTime<Utc>, id: &str, claims: Vec<Claim>) {
        if !self.campaigns.contains_key(id) {
            tracing::warn!(
                campaign = id,
                claims = claims.len(),
                "cannot adopt calls of an unknown campaign"
            );
            return;
        }
        let agent_mode = self.campaigns[id].valid.agents().is_some();
        let mut adopted = Vec::new();
        for claim in claims {
            let attempt = claim.attempt_id;
            if self.calls.contains_key(&attempt) {
                continue;
            }
            self.track(now, id, claim, None, None, None);
            if let Some(call) = self.calls.get_mut(&attempt) {
                call.adopted = true;
                call.channel_seen = true;
            }
            tracing::info!(campaign = id, %attempt, "adopting a call of the previous run");
            if agent_mode {
                adopted.push(attempt);
            } else {
                self.reconcile(now, attempt);
            }
        }
        if !adopted.is_empty() {
            // Looked for once their agents are back (`on_agents_adopted`).
            self.out.push(Action::AdoptAgents {
                campaign: id.to_owned(),
                attempts: adopted,
            });
        }
    }

    /// The store handed this node the reservations of its adopted agent calls (see the module documentation);
    /// `attempts` are the calls asked about (an empty `reservations` when the store could not be asked).
    pub(super) fn on_agents_adopted(
        &mut self,
        now: DateTime<Utc>,
        attempts: Vec<AttemptId>,
        reservations: Vec<AdoptedReservation>,
    ) {
        let mut reservations = reservations;
        for attempt in attempts {
            let (held, rest): (Vec<_>, Vec<_>) =
                reservations.into_iter().partition(|r| r.attempt == attempt);
            reservations = rest;
            self.attach_adopted_agent(now, attempt, held);
            self.reconcile(now, attempt);
        }
        // Reservations of calls not asked about (none expected): given back.
        for r in reservations {
            self.release_adopted(r, None);
        }
    }

    /// Gives the agent call of an adopted attempt its state back from its reservations.
    fn attach_adopted_agent(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        held: Vec<AdoptedReservation>,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            for r in held {
                self.release_adopted(r, None);
            }
            return;
        };
        let Some(settings) = call.version.agents().cloned() else {
            for r in held {
                self.release_adopted(r, None);
            }
            return;
        };
        let mut a = AgentCall {
            mode: call.version.mode(),
            settings,
            phase: AgentPhase::Waiting,
            reservation: None,
            leg: None,
            member_originate: None,
            // Not joined before the restart: no agent comes; the member hears the abandon message.
            abandon_at: Some(now),
            cancelled: false,
            outcome: None,
            facts: AgentFacts::default(),
        };
        let mut others = Vec::new();
        for r in held {
            if r.state == ReservationState::Talking && a.reservation.is_none() {
                tracing::info!(%attempt, agent = %r.reservation.agent, "adopted call: its agent is still on it");
                a.phase = AgentPhase::Bridged;
                a.abandon_at = None;
                a.facts.agent = Some(r.reservation.agent.clone());
                a.leg = r.agent_leg.map(|uuid| AgentLeg {
                    uuid,
                    job: None,
                    answered: true,
                });
                a.reservation = Some(AgentReservation {
                    id: r.reservation.id,
                    agent: r.reservation.agent,
                    dial_string: r.reservation.dial_string,
                });
            } else {
                others.push(r);
            }
        }
        if a.phase == AgentPhase::Waiting {
            // Its agent's leg, if one was called, is hung up with the member's leg.
            a.leg = others
                .iter()
                .find_map(|r| r.agent_leg)
                .map(|uuid| AgentLeg {
                    uuid,
                    job: None,
                    answered: false,
                });
            tracing::info!(%attempt, "adopted call had not reached an agent: it gets none");
        }
        if let Some(leg) = &a.leg {
            self.agent_legs.legs.insert(leg.uuid, attempt);
        }
        let settings = a.settings.clone();
        call.agent = Some(a);
        for r in others {
            self.release_adopted(r, Some(&settings));
        }
    }

    /// Gives back a reservation of an adopted call that will not be followed (a talking one into wrap-up).
    fn release_adopted(
        &mut self,
        r: AdoptedReservation,
        settings: Option<&crate::campaign::agents::AgentSettings>,
    ) {
        let how = if r.state == ReservationState::Talking {
            AgentRelease::Finished { talk_ms: 0 }
        } else {
            AgentRelease::Unused
        };
        self.out.push(Action::ReleaseAgent {
            reservation: r.reservation.id,
            agent: r.reservation.agent,
            how,
            settings: settings.cloned(),
        });
    }

    /// An adopted agent call found on a switch that never reached its agent: the abandon message now.
    fn abandon_if_waiting(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let waiting = self
            .calls
            .get(&attempt)
            .and_then(|c| c.agent.as_ref())
            .is_some_and(|a| {
                a.phase == AgentPhase::Waiting && a.abandon_at.is_some_and(|t| t <= now)
            });
        if waiting {
            self.abandon(now, attempt);
        }
    }

    pub(super) fn on_located(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        switch: Option<usize>,
        ended: Option<HangupRecord>,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        if !call.adopted || call.switch.is_some() || call.completing || call.hangup.is_some() {
            return;
        }
        match switch {
            Some(i) if i < self.switches.len() && ended.is_some() => {
                // Gone, but its end is on record on switch `i` (whose record is deleted once the result is in).
                call.switch = Some(i);
                call.reconciling = false;
                call.check_failures = 0;
                self.switches[i].calls += 1;
                if let Some(record) = ended {
                    self.on_recorded_end(now, attempt, record);
                }
            }
            Some(i) if i < self.switches.len() => {
                call.switch = Some(i);
                call.reconciling = false;
                call.check_failures = 0;
                self.switches[i].calls += 1;
                let at = now + dur(self.cfg.max_call);
                self.arm(attempt, at);
                self.abandon_if_waiting(now, attempt);
            }
            _ => {
                tracing::info!(%attempt, "adopted call is on no switch: lost attempt");
                self.settle_lost(now, attempt);
            }
        }
    }

    /// A call whose channel is gone and whose end was never heard, but whose hangup hook left its outcome on the
    /// switch: ended as the record says.
    pub(super) fn on_recorded_end(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        record: HangupRecord,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        // Answer and end both on the switch's clock (the answer as this node heard it is on another).
        if record.answered_at.is_some() {
            call.answered_at = record.answered_at;
        }
        tracing::info!(%attempt, cause = record.cause, "the call ended unobserved: its outcome is read from the switch's hangup record");
        metrics::counter!("fsdialer_recorded_hangups_total").increment(1);
        // The record's end may lie in the future of a node whose clock is behind the switch's.
        let at = record.ended_at.min(now);
        let answered = record.answered_at.is_some();
        self.hangup_at(
            now,
            at,
            attempt,
            record.cause,
            answered,
            record.talk_secs,
            record.talk_ms,
        );
    }
}
