//! A call whose end was missed: deadlines in every state, and reconciliation with the switch.
//!
//! Every tracked call has a deadline (`Core::arm`): ringing (`originate_timeout` + grace), answered (`max_call`),
//! after the hangup (the callflow's grace), reconciling (`check_timeout`), completing (`check_timeout`, then the
//! result is sent again), refused by the store (its back-off). When one passes, the call's state says what is due:
//! a call that should have ended is looked for on its switch (`uuid_exists`, or on every switch for an adopted call
//! whose switch is unknown); one still up is watched again, one truly gone is settled as the campaign's
//! `lost_attempt`; a check that keeps failing settles it after `max_check_failures`. So no call stays active forever,
//! and a call is never counted lost while its switch cannot answer for it.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::cmp::Reverse;

use super::calls::CallflowState;
use super::{Action, Core, HangupRecord, LOST_CAUSE, dur};
use crate::store::AttemptId;

impl Core {
    /// Asks the switch whether the call's channel still exists (when the switch is connected; else waits for it
    /// to come back, or to be lost).
    pub(super) fn reconcile(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        if call.completing || call.decided.is_some() {
            return;
        }
        call.reconciling = true;
        let switch = call.switch;
        let connected = switch
            .and_then(|i| self.switches.get(i))
            .is_some_and(|s| s.connected);
        if let (Some(switch), true) = (switch, connected) {
            self.out.push(Action::CheckExists { switch, attempt });
        } else if call.adopted && switch.is_none() {
            self.out.push(Action::Locate { attempt });
        }
        self.arm(attempt, now + dur(self.cfg.check_timeout));
    }

    pub(super) fn on_exists(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        exists: bool,
        ended: Option<HangupRecord>,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        if !call.reconciling || call.completing || call.hangup.is_some() {
            return;
        }
        call.reconciling = false;
        call.check_failures = 0;
        if let (false, Some(record)) = (exists, ended) {
            self.on_recorded_end(now, attempt, record);
            return;
        }
        if exists {
            // Still up: keep tracking; look again later.
            let wait = if call.answered_at.is_some() || call.adopted {
                self.cfg.max_call
            } else {
                self.cfg.originate_grace
            };
            self.arm(attempt, now + dur(wait));
            return;
        }
        let ringing_for =
            ChronoDuration::seconds(i64::from(call.version.config().originate_timeout_sec))
                + dur(self.cfg.originate_grace) * 2;
        if !call.job_done && !call.channel_seen && now < call.originated_at + ringing_for {
            // The originate is still in progress (its job unanswered): no channel yet proves nothing. Its job's
            // answer, or the connection's loss, will tell; look again once it is overdue.
            let at = call.originated_at + ringing_for;
            self.arm(attempt, at);
            return;
        }
        tracing::info!(%attempt, "channel gone and its end never seen: lost attempt");
        self.settle_lost(now, attempt);
    }

    /// `uuid_exists` failed or went unanswered: ask again, or settle the call as lost after too many failures.
    pub(super) fn on_check_failed(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        if !call.reconciling || call.completing {
            return;
        }
        let connected = call
            .switch
            .and_then(|i| self.switches.get(i))
            .is_some_and(|s| s.connected);
        if !connected && !call.adopted {
            // The switch is away: its return reconciles, its loss settles.
            let at = now + dur(self.cfg.check_timeout);
            self.arm(attempt, at);
            return;
        }
        call.check_failures += 1;
        if call.check_failures >= self.cfg.max_check_failures {
            tracing::warn!(%attempt, failures = call.check_failures, "cannot tell whether the call is up: lost attempt");
            self.settle_lost(now, attempt);
        } else {
            // Ask again after a back-off (1, 2, 4… s): the deadline's default branch reconciles.
            call.reconciling = false;
            let backoff = ChronoDuration::seconds(1 << (call.check_failures - 1).min(6));
            self.arm(attempt, now + backoff);
        }
    }

    /// Completes a call whose end can never be known as the campaign's `lost_attempt`.
    pub(super) fn settle_lost(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        call.reconciling = false;
        let class = call.version.lost_attempt_class();
        metrics::counter!("fsdialer_lost_attempts_total").increment(1);
        self.gateway_forget(attempt);
        self.complete(now, attempt, LOST_CAUSE.into(), class, 0);
    }

    /// Calls whose deadline passed.
    pub(super) fn poll_deadlines(&mut self, now: DateTime<Utc>) {
        let mut due: Vec<AttemptId> = Vec::new();
        while let Some(Reverse((at, a))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            // Cleared as it is taken, so a second entry for the same instant (armed twice) fires once.
            if let Some(c) = self.calls.get_mut(&a)
                && c.deadline == Some(at)
            {
                c.deadline = None;
                due.push(a);
            }
        }
        for a in due {
            let Some(call) = self.calls.get_mut(&a) else {
                continue;
            };
            call.deadline = None;
            if self.amd_deadline(now, a) || self.agent_deadline(now, a) {
                continue;
            }
            let Some(call) = self.calls.get_mut(&a) else {
                continue;
            };
            if call.completing {
                // The store never answered: send the result again.
                call.completing = false;
                self.send_result(now, a);
            } else if call.decided.is_some() {
                // The store refused it: its back-off is over.
                self.send_result(now, a);
            } else if call.hangup.is_some() {
                // The callflow did not report in time after the hangup: complete without it.
                call.callflow = CallflowState::Done(None);
                self.finish(now, a);
            } else if call.reconciling {
                self.on_check_failed(now, a);
            } else {
                self.reconcile(now, a);
            }
        }
    }
}
