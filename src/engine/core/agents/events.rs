//! What the switch, the agent and time say about an agent call: the agent leg's job, answer and hangup, the
//! member's answer and hangup, preview decisions, the agent's result, phase deadlines, and forgetting a call.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use uuid::Uuid;

use super::*;
use crate::engine::core::{Action, Core, dur};

impl Core {
    /// An event of a channel this node tracks as an agent leg; returns whether `uuid` was one.
    pub(in crate::engine::core) fn agent_leg_answered(
        &mut self,
        now: DateTime<Utc>,
        uuid: Uuid,
    ) -> bool {
        let Some(&attempt) = self.agent_legs.legs.get(&uuid) else {
            return false;
        };
        let Some(call) = self.calls.get_mut(&attempt) else {
            return true;
        };
        let switch = call.switch;
        let Some(a) = call.agent.as_mut() else {
            return true;
        };
        let Some(leg) = a.leg.as_mut().filter(|l| l.uuid == uuid) else {
            return true;
        };
        if leg.answered {
            return true;
        }
        leg.answered = true;
        a.facts.agent_answered_at = Some(now);
        if a.phase != AgentPhase::AgentRinging {
            return true;
        }
        if !a.member_dialled() {
            // Preview: show the member to the agent.
            a.phase = AgentPhase::Previewing;
            let wait = a.settings.preview_timeout_sec;
            let offer = Action::Offer {
                switch: switch.unwrap_or_default(),
                agent_leg: uuid,
                attempt,
                campaign: call.campaign.clone(),
                member: call.claim.member_id,
                name: call.claim.name.clone(),
                number: call.claim.number.clone(),
                variables: call.claim.variables.clone(),
            };
            self.out.push(offer);
            self.arm(attempt, now + ChronoDuration::seconds(wait as i64));
            return true;
        }
        self.bridge(now, attempt);
        true
    }

    /// The agent's leg originate's job: `-ERR` means it will never answer.
    pub(in crate::engine::core) fn agent_job(
        &mut self,
        now: DateTime<Utc>,
        job: Uuid,
        body: &str,
    ) -> bool {
        let Some(&attempt) = self.agent_legs.jobs.get(&job) else {
            return false;
        };
        let leg = self
            .calls
            .get(&attempt)
            .and_then(|c| c.agent.as_ref())
            .and_then(|a| a.leg.clone())
            .filter(|l| l.job == Some(job));
        let Some(leg) = leg else {
            return true;
        };
        if body.trim_start().starts_with("+OK") {
            self.agent_leg_answered(now, leg.uuid);
        } else if !leg.answered {
            self.agent_missed(now, attempt);
        }
        true
    }

    /// The agent's leg hung up; returns whether `uuid` was one.
    pub(in crate::engine::core) fn agent_leg_hangup(
        &mut self,
        now: DateTime<Utc>,
        uuid: Uuid,
    ) -> bool {
        let Some(attempt) = self.agent_legs.legs.remove(&uuid) else {
            return false;
        };
        let Some(call) = self.calls.get_mut(&attempt) else {
            return true;
        };
        let switch = call.switch;
        let Some(a) = call.agent.as_mut() else {
            return true;
        };
        let Some(leg) = a.leg.as_ref().filter(|l| l.uuid == uuid).cloned() else {
            return true;
        };
        if let Some(job) = leg.job {
            self.agent_legs.jobs.remove(&job);
        }
        match a.phase {
            // Joined: the member's own hangup follows and settles everything.
            AgentPhase::Bridged | AgentPhase::AwaitingResult | AgentPhase::Abandoning => {}
            AgentPhase::AgentRinging | AgentPhase::Bridging if !leg.answered => {
                self.agent_missed(now, attempt);
            }
            AgentPhase::Previewing => {
                // The agent left the preview: as a skip.
                a.leg = None;
                self.preview_skip(now, attempt);
            }
            AgentPhase::MemberRinging if a.mode == DialMode::Preview => {
                // The agent hung up while its member rings: cancel the member, uncounted.
                a.leg = None;
                a.cancelled = true;
                if let Some(switch) = switch {
                    self.out.push(Action::Kill {
                        switch,
                        uuid: attempt,
                        cause: "ORIGINATOR_CANCEL".into(),
                    });
                }
                if let Some(r) = a.reservation.take() {
                    self.out
                        .push(release_action(r, AgentRelease::Unused, Some(&a.settings)));
                }
            }
            _ => {
                // Answered, then gone before the join: look for another agent.
                a.leg = None;
                if let Some(r) = a.reservation.take() {
                    self.out
                        .push(release_action(r, AgentRelease::Unused, Some(&a.settings)));
                }
                if call.answered_at.is_some() && call.hangup.is_none() {
                    self.reserve(now, attempt);
                }
            }
        }
        true
    }

    /// The agent's preview decision (accept: dial the member; skip: give it back uncounted).
    pub(in crate::engine::core) fn on_preview_decision(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        accept: bool,
    ) {
        let previewing = self
            .calls
            .get(&attempt)
            .and_then(|c| c.agent.as_ref())
            .is_some_and(|a| a.phase == AgentPhase::Previewing);
        if !previewing {
            return;
        }
        if accept {
            self.dial_member(now, attempt);
        } else {
            self.preview_skip(now, attempt);
        }
    }

    /// Skips a previewed member: the agent is freed, its leg hung up, the claim given back uncounted.
    pub(in crate::engine::core) fn preview_skip(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let switch = call.switch;
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        if let (Some(leg), Some(switch)) = (a.leg.take(), switch) {
            self.agent_legs
                .hang_up(&mut self.out, Some(switch), &leg, "NORMAL_CLEARING");
        }
        if let Some(r) = a.reservation.take() {
            self.release_agent(now, attempt, r, AgentRelease::Unused);
        }
        self.release_call(now, attempt);
    }

    /// The member answered an agent call; returns whether the call is an agent call (handled here).
    pub(in crate::engine::core) fn agent_member_answered(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return false;
        };
        let Some(a) = call.agent.as_mut() else {
            return false;
        };
        if a.phase != AgentPhase::MemberRinging {
            return true;
        }
        match a.mode {
            DialMode::Preview => self.bridge(now, attempt),
            _ => {
                let agent = a.reservation.as_ref().map(|r| r.agent.clone());
                self.call_agent_leg(now, attempt);
                if let Some(agent) = agent {
                    self.cancel_siblings(now, attempt, |r| r.agent == agent);
                }
            }
        }
        true
    }

    /// The member leg of an agent call hung up; returns whether the call is an agent call (handled here).
    pub(in crate::engine::core) fn agent_member_hangup(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return false;
        };
        let switch = call.switch;
        let answered = call.answered_at.is_some();
        let talk = call.hangup.as_ref().map_or(0, |h| h.talk_secs);
        let switch_talk_ms = call.hangup.as_ref().map_or(0, |h| h.talk_ms);
        let Some(a) = call.agent.as_mut() else {
            return false;
        };
        if a.cancelled {
            // A sibling line took the agent, or the agent left: the claim goes back uncounted.
            self.gateway_forget(attempt);
            self.release_call(now, attempt);
            return true;
        }
        let leg = a.leg.clone();
        let reservation = a.reservation.take();
        match a.phase {
            AgentPhase::Bridged => {
                // A call adopted after a restart has no join instant here: the switch's talk time stands in.
                let talk_ms = a.facts.bridged_at.map_or(switch_talk_ms, |t| {
                    (now - t).num_milliseconds().max(0) as u64
                });
                if let Some(r) = reservation {
                    self.release_agent(now, attempt, r, AgentRelease::Finished { talk_ms });
                }
                self.agent_await_result(now, attempt);
            }
            _ if answered => {
                // Answered and never joined to an agent: abandoned, whoever hung up.
                a.facts.abandoned = true;
                if let (Some(leg), Some(switch)) = (leg, switch) {
                    self.agent_legs
                        .hang_up(&mut self.out, Some(switch), &leg, "ORIGINATOR_CANCEL");
                }
                if let Some(r) = reservation {
                    self.out
                        .push(release_action(r, AgentRelease::Unused, Some(&a.settings)));
                }
                let class = a.settings.abandoned_class;
                metrics::counter!("fsdialer_abandoned_total").increment(1);
                self.gateway_forget(attempt);
                self.complete(now, attempt, ABANDONED_CAUSE.into(), class, talk);
            }
            _ => {
                // The member never answered. Preview: the agent previewed and dialled (wrap-up follows);
                // progressive: the agent was only held.
                let how = if a.mode == DialMode::Preview {
                    AgentRelease::Finished { talk_ms: 0 }
                } else {
                    AgentRelease::Unused
                };
                if let (Some(leg), Some(switch)) = (leg, switch) {
                    self.agent_legs
                        .hang_up(&mut self.out, Some(switch), &leg, "NORMAL_CLEARING");
                }
                if let Some(r) = reservation {
                    self.release_agent(now, attempt, r, how);
                }
                return false;
            }
        }
        true
    }

    /// After a joined call: wait for the agent's result (unless it came already, or none is waited for).
    pub(in crate::engine::core) fn agent_await_result(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
    ) {
        let Some(a) = self.calls.get_mut(&attempt).and_then(|c| c.agent.as_mut()) else {
            return;
        };
        a.phase = AgentPhase::AwaitingResult;
        let wait = a.settings.result_timeout_sec;
        if a.outcome.is_some() || wait == 0 {
            self.agent_finish(now, attempt);
        } else {
            self.arm(attempt, now + ChronoDuration::seconds(wait as i64));
        }
    }

    /// The agent's result callback.
    pub(in crate::engine::core) fn on_agent_result(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        outcome: AgentOutcome,
    ) {
        let Some(a) = self.calls.get_mut(&attempt).and_then(|c| c.agent.as_mut()) else {
            tracing::info!(%attempt, "agent result for a call no longer tracked here: ignored");
            return;
        };
        a.outcome = Some(outcome);
        if a.phase == AgentPhase::AwaitingResult {
            self.agent_finish(now, attempt);
        }
    }

    /// Decides a joined call: the agent's result when given, else the hangup cause.
    pub(in crate::engine::core) fn agent_finish(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        let Some(h) = call.hangup.clone() else {
            return;
        };
        let outcome = call.agent.as_ref().and_then(|a| a.outcome.clone());
        let class = match &outcome {
            Some(o) if o.success => CauseClass::Ok,
            Some(_) => CauseClass::Retry,
            None => call
                .version
                .effective_class_ms(&h.cause, h.answered, h.talk_ms),
        };
        if let Some(o) = outcome.filter(|o| !o.success) {
            if o.stop_communications {
                // Not called again: the member ends (MANAGER_REQUEST) once this result is applied.
                self.out.push(Action::StopMember {
                    campaign: call.campaign.clone(),
                    member: call.claim.member_id,
                });
            } else if let Some(after) = o.next_after_sec {
                // A callback: that agent takes it first, for `sticky_agent_sec` after it is due.
                let sticky = call.agent.as_ref().and_then(|a| {
                    let agent = a.facts.agent.clone()?;
                    let secs = after.saturating_add(a.settings.sticky_agent_sec);
                    (a.settings.sticky_agent_sec > 0).then_some((agent, secs))
                });
                if let Some((agent, secs)) = sticky {
                    self.out.push(Action::StickyAgent {
                        campaign: call.campaign.clone(),
                        member: call.claim.member_id,
                        agent,
                        until: now
                            + ChronoDuration::seconds(
                                i64::try_from(secs).unwrap_or(i64::MAX / 2_000),
                            ),
                    });
                }
                if let Some(call) = self.calls.get_mut(&attempt) {
                    call.retry_wait = Some(after);
                }
            }
        }
        self.complete(now, attempt, h.cause, class, h.talk_secs);
    }

    /// A deadline of an agent phase passed; returns whether it was one.
    pub(in crate::engine::core) fn agent_deadline(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return false;
        };
        if call.completing || call.decided.is_some() {
            return false;
        }
        let switch = call.switch;
        let hung_up = call.hangup.is_some();
        let Some(a) = call.agent.as_mut() else {
            return false;
        };
        match a.phase {
            AgentPhase::AwaitingResult => {
                self.agent_finish(now, attempt);
                true
            }
            _ if hung_up => false,
            AgentPhase::Reserving => {
                // The store never answered: ask again (an answered member also checks its abandon time).
                if a.abandon_at.is_some_and(|t| now >= t) {
                    self.abandon(now, attempt);
                } else {
                    self.reserve(now, attempt);
                }
                true
            }
            AgentPhase::Waiting => {
                if a.abandon_at.is_some_and(|t| now >= t) {
                    self.abandon(now, attempt);
                } else {
                    self.reserve(now, attempt);
                }
                true
            }
            AgentPhase::AgentRinging => {
                tracing::debug!(%attempt, "agent did not answer in time");
                self.agent_missed(now, attempt);
                true
            }
            AgentPhase::Previewing => {
                let dial = a.settings.preview_on_timeout == PreviewTimeout::Dial;
                self.on_preview_decision(now, attempt, dial);
                true
            }
            AgentPhase::Bridging => {
                // No answer to uuid_bridge: treat as refused.
                self.on_bridged(now, attempt, false);
                true
            }
            AgentPhase::Abandoning => {
                // The message should be over: hang up.
                if let Some(switch) = switch {
                    self.out.push(Action::Kill {
                        switch,
                        uuid: attempt,
                        cause: "NORMAL_CLEARING".into(),
                    });
                }
                self.arm(attempt, now + dur(self.cfg.check_timeout));
                true
            }
            AgentPhase::MemberRinging | AgentPhase::Bridged => false,
        }
    }

    /// A call is forgotten: its reservation goes back, an agent leg still up is hung up.
    pub(in crate::engine::core) fn agent_forget(&mut self, call: &mut crate::engine::core::Call) {
        let Some(a) = call.agent.as_mut() else {
            return;
        };
        if let Some(leg) = a.leg.take() {
            let up = self.agent_legs.legs.remove(&leg.uuid).is_some();
            if let Some(job) = leg.job {
                self.agent_legs.jobs.remove(&job);
            }
            if up && let Some(switch) = call.switch {
                self.out.push(Action::Kill {
                    switch,
                    uuid: leg.uuid,
                    cause: "NORMAL_CLEARING".into(),
                });
            }
        }
        if let Some(r) = a.reservation.take() {
            self.out.push(Action::ReleaseAgent {
                reservation: r.id,
                agent: r.agent,
                how: AgentRelease::Unused,
                settings: Some(a.settings.clone()),
            });
        }
        if a.awaiting_first_agent()
            && let Some(c) = self.campaigns.get_mut(&call.campaign)
        {
            c.agent_reserving = c.agent_reserving.saturating_sub(1);
        }
    }
}
