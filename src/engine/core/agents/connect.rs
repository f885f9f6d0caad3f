//! Getting an agent and a member together: the reservation, the member's held originate, the agent's leg,
//! `uuid_bridge`, sibling lines, and the abandon message when no agent comes in time.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use uuid::Uuid;

use super::*;
use crate::engine::core::{Action, Core, dur};

impl Core {
    /// A claim of an agent campaign was routed: reserve an agent before anything is dialled.
    pub(in crate::engine::core) fn agent_call_placed(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        originate: Action,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let Some(settings) = call.version.agents().cloned() else {
            return;
        };
        call.agent = Some(AgentCall {
            mode: call.version.mode(),
            settings,
            phase: AgentPhase::Reserving,
            reservation: None,
            leg: None,
            member_originate: Some(originate),
            abandon_at: None,
            cancelled: false,
            outcome: None,
            facts: AgentFacts::default(),
        });
        if let Some(c) = self.campaigns.get_mut(&call.campaign) {
            c.agent_reserving += 1;
        }
        self.reserve(now, attempt);
    }

    /// Asks the store for an agent for the call.
    pub(in crate::engine::core) fn reserve(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        a.phase = AgentPhase::Reserving;
        let action = Action::ReserveAgent {
            campaign: call.campaign.clone(),
            attempt,
            member: call.claim.member_id,
            settings: a.settings.clone(),
            exclude: a.facts.missed.clone(),
        };
        self.out.push(action);
        self.arm(attempt, now + dur(self.cfg.check_timeout));
    }

    /// The store's answer to [`Action::ReserveAgent`] (`None`: no agent free, or the store failed).
    pub(in crate::engine::core) fn on_agent_reserved(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        reservation: Option<AgentReservation>,
    ) {
        let usable = self.calls.get(&attempt).is_some_and(|c| {
            c.decided.is_none()
                && !c.completing
                && c.hangup.is_none()
                && c.agent
                    .as_ref()
                    .is_some_and(|a| a.phase == AgentPhase::Reserving && !a.cancelled)
        });
        if !usable {
            // Nobody waits for it any more: give it straight back.
            if let Some(r) = reservation {
                self.release_agent(now, attempt, r, AgentRelease::Unused);
            }
            return;
        }
        let call = self.calls.get_mut(&attempt).expect("checked");
        let campaign = call.campaign.clone();
        let a = call.agent.as_mut().expect("checked");
        let first = a.awaiting_first_agent();
        let dialled = a.member_dialled();
        let preview = a.mode == DialMode::Preview;
        if first && let Some(c) = self.campaigns.get_mut(&campaign) {
            c.agent_reserving = c.agent_reserving.saturating_sub(1);
            c.agent_room_feedback(reservation.is_some());
        }
        let Some(r) = reservation else {
            if !dialled {
                // No agent for this member: it goes back uncounted, the campaign looks again shortly.
                self.release_call(now, attempt);
                if let Some(c) = self.campaigns.get_mut(&campaign) {
                    c.no_agent(now);
                }
                return;
            }
            // The member answered and waits: ask again until it is abandoned.
            let a = call.agent.as_mut().expect("checked");
            a.phase = AgentPhase::Waiting;
            let abandon_at = *a.abandon_at.get_or_insert(
                now + ChronoDuration::milliseconds(a.settings.connect_timeout_ms as i64),
            );
            self.arm(attempt, (now + RESERVE_RETRY).min(abandon_at));
            return;
        };
        a.facts.agent = Some(r.agent.clone());
        a.facts.reserved_at.get_or_insert(now);
        a.reservation = Some(r);
        if dialled || preview {
            // Preview: the agent first. Progressive: the member answered and waits for this agent.
            self.call_agent_leg(now, attempt);
        } else {
            self.dial_member(now, attempt);
        }
    }

    /// Sends the member's held originate.
    pub(in crate::engine::core) fn dial_member(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        let Some(originate) = a.member_originate.take() else {
            return;
        };
        a.phase = AgentPhase::MemberRinging;
        call.originated_at = now;
        let timeout = call.version.config().originate_timeout_sec;
        self.out.push(originate);
        let at = now + ChronoDuration::seconds(i64::from(timeout)) + dur(self.cfg.originate_grace);
        self.arm(attempt, at);
    }

    /// Originates the reserved agent's leg (`&park()`), on the member's switch.
    pub(in crate::engine::core) fn call_agent_leg(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
    ) {
        let node = self.cfg.node.clone();
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let Some(switch) = call.switch else {
            return;
        };
        let member_id = call.claim.member_id.to_string();
        let campaign = call.campaign.clone();
        let attempt_no = call.claim.attempt_no;
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        let Some(r) = a.reservation.clone() else {
            return;
        };
        let timeout = a.settings.agent_answer_timeout_sec;
        if !is_safe_dial_string(&r.dial_string) {
            tracing::error!(
                campaign,
                agent = r.agent,
                "agent dial string refused (spaces, braces, commas or line breaks): agent passed over"
            );
            self.agent_missed(now, attempt);
            return;
        }
        let leg = Uuid::new_v4();
        let vars = [("dlr_agent_for".to_string(), attempt.to_string())];
        let spec = OriginateSpec {
            attempt_id: leg,
            dial_string: &r.dial_string,
            originate_timeout_sec: timeout,
            caller_id_number: None,
            campaign_id: &campaign,
            member_id: &member_id,
            attempt_no,
            campaign_vars: &vars,
            member_vars: &[],
            application: "&park()",
            node: Some(&node),
        };
        let built = originate::build(&spec);
        let job = Uuid::new_v4();
        a.leg = Some(AgentLeg {
            uuid: leg,
            job: Some(job),
            answered: false,
        });
        a.phase = AgentPhase::AgentRinging;
        a.facts.offered_at.get_or_insert(now);
        self.agent_legs.insert(leg, job, attempt);
        self.out.push(Action::AgentOffered {
            reservation: r.id,
            leg,
        });
        self.out.push(Action::OriginateAgent {
            switch,
            attempt,
            leg,
            job,
            originate: built,
        });
        let at = now + ChronoDuration::seconds(i64::from(timeout)) + ChronoDuration::seconds(1);
        self.arm(attempt, at);
    }

    /// The agent's leg did not answer (failed, rejected, timed out): release it as missed and look for another.
    pub(in crate::engine::core) fn agent_missed(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let switch = call.switch;
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        let leg = a.leg.take();
        let reservation = a.reservation.take();
        if let Some(r) = &reservation {
            a.facts.missed.push(r.agent.clone());
        }
        if let Some(leg) = &leg {
            self.agent_legs
                .hang_up(&mut self.out, switch, leg, "ORIGINATOR_CANCEL");
        }
        if let Some(r) = reservation {
            self.release_agent(now, attempt, r, AgentRelease::Missed);
        }
        self.reserve(now, attempt);
    }

    /// Gives a reservation back to the store.
    pub(in crate::engine::core) fn release_agent(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        r: AgentReservation,
        how: AgentRelease,
    ) {
        let call = self.calls.get(&attempt);
        let settings = call.and_then(|c| c.agent.as_ref().map(|a| &a.settings));
        if let (AgentRelease::Finished { .. }, Some(call), Some(s)) = (how, call, settings)
            && let Some(c) = self.campaigns.get_mut(&call.campaign)
        {
            c.agent_free_at(now, now + ChronoDuration::seconds(s.wrap_up_sec as i64));
        }
        self.out.push(release_action(r, how, settings));
    }

    /// Joins the member and the agent's answered leg.
    pub(in crate::engine::core) fn bridge(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let Some(switch) = call.switch else {
            return;
        };
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        let Some(leg) = a.leg.as_ref() else {
            return;
        };
        let agent = leg.uuid;
        a.phase = AgentPhase::Bridging;
        self.out.push(Action::Bridge {
            switch,
            attempt,
            agent,
        });
        self.arm(
            attempt,
            now + dur(self.cfg.check_timeout).min(ChronoDuration::seconds(10)),
        );
    }

    /// The answer to [`Action::Bridge`].
    pub(in crate::engine::core) fn on_bridged(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        ok: bool,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let switch = call.switch;
        let answered_at = call.answered_at;
        let Some(a) = call
            .agent
            .as_mut()
            .filter(|a| a.phase == AgentPhase::Bridging)
        else {
            return;
        };
        if ok {
            a.phase = AgentPhase::Bridged;
            a.facts.bridged_at = Some(now);
            a.facts.wait_ms = answered_at.map(|t| (now - t).num_milliseconds().max(0) as u64);
            if let Some(r) = &a.reservation {
                self.out.push(Action::AgentTalking {
                    attempt,
                    reservation: r.id,
                });
            }
            if let Some(w) = a.facts.wait_ms {
                metrics::histogram!("fsdialer_answer_to_bridge_seconds").record(w as f64 / 1000.0);
            }
            self.arm(attempt, now + dur(self.cfg.max_call));
            return;
        }
        // The member (or the agent) is gone: its hangup follows. Free the agent and hang its leg up.
        tracing::info!(%attempt, "uuid_bridge refused");
        let leg = a.leg.take();
        let reservation = a.reservation.take();
        a.phase = AgentPhase::Waiting;
        if let (Some(leg), Some(switch)) = (leg, switch) {
            self.agent_legs
                .hang_up(&mut self.out, Some(switch), &leg, "NORMAL_CLEARING");
        }
        if let Some(r) = reservation {
            self.release_agent(now, attempt, r, AgentRelease::Unused);
        }
        self.reserve(now, attempt);
    }

    /// Cancels this node's other member legs still ringing for a matching reservation (lines > 1): the agent is
    /// taken. Their claims go back uncounted when they end.
    pub(in crate::engine::core) fn cancel_siblings(
        &mut self,
        now: DateTime<Utc>,
        except: AttemptId,
        matches: impl Fn(&AgentReservation) -> bool,
    ) {
        let mut kills = Vec::new();
        let mut releases = Vec::new();
        for (id, call) in self.calls.iter_mut() {
            if *id == except {
                continue;
            }
            let Some(a) = call.agent.as_mut() else {
                continue;
            };
            if a.phase != AgentPhase::MemberRinging || a.cancelled {
                continue;
            }
            if !a.reservation.as_ref().is_some_and(&matches) {
                continue;
            }
            a.cancelled = true;
            if let Some(r) = a.reservation.take() {
                releases.push((*id, r));
            }
            if let Some(switch) = call.switch {
                kills.push((switch, *id));
            }
        }
        for (switch, uuid) in kills {
            self.out.push(Action::Kill {
                switch,
                uuid,
                cause: "ORIGINATOR_CANCEL".into(),
            });
        }
        for (attempt, r) in releases {
            self.release_agent(now, attempt, r, AgentRelease::Unused);
        }
    }

    /// The store released these reservations (the agent took another call on one of its lines).
    pub(in crate::engine::core) fn on_agent_siblings(&mut self, reservations: Vec<Uuid>) {
        if reservations.is_empty() {
            return;
        }
        // They are the store's now: do not release them again.
        for call in self.calls.values_mut() {
            if let Some(a) = call.agent.as_mut()
                && a.reservation
                    .as_ref()
                    .is_some_and(|r| reservations.contains(&r.id))
                && a.phase == AgentPhase::MemberRinging
            {
                a.cancelled = true;
                a.reservation = None;
                if let Some(switch) = call.switch {
                    self.out.push(Action::Kill {
                        switch,
                        uuid: call.claim.attempt_id,
                        cause: "ORIGINATOR_CANCEL".into(),
                    });
                }
            }
        }
    }

    /// No agent in time for an answered member: play the abandon message and hang up.
    pub(in crate::engine::core) fn abandon(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let Some(switch) = call.switch else {
            return;
        };
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        a.phase = AgentPhase::Abandoning;
        a.facts.abandoned = true;
        let message = a.settings.abandon_message.clone();
        self.out.push(Action::Abandon {
            switch,
            uuid: attempt,
            message,
        });
        self.arm(attempt, now + ABANDON_PLAY_MAX);
    }
}
