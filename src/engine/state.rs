//! Campaign states and their history (SPEC §6).
//!
//! `idle → running ⇄ sleeping → stopping → stopped`; `done` when no member can ever be called again (unless the
//! campaign is `eternal`); `expired` after the calendar's end. Every transition is recorded with its time and
//! reason. This module is pure: the engine core feeds it facts (a command, "the calendar is closed for every
//! timezone in use", "nothing is left to call", the number of calls in progress) and it answers with the new
//! state, refusing transitions that make no sense (stopping a stopped campaign is a no-op, not an error).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A campaign's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Never run.
    Idle,
    /// Calling.
    Running,
    /// Running, but no member may be called now (outside every calendar window, or before the calendar start).
    Sleeping,
    /// Stop requested: no new calls; calls in progress finish.
    Stopping,
    /// Stopped by command; `run` starts it again.
    Stopped,
    /// No member can ever be called again.
    Done,
    /// The calendar's end has passed (`QUEUE_EXPIRE`).
    Expired,
}

impl CampaignState {
    /// Whether new calls may be placed in this state.
    pub fn dials(self) -> bool {
        self == CampaignState::Running
    }

    /// Whether the engine keeps the campaign scheduled (running, sleeping or finishing its calls).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            CampaignState::Running | CampaignState::Sleeping | CampaignState::Stopping
        )
    }

    /// The Webitel v3 numeric state (`PUT /dialer/{id}/state/{n}`: 1 = run, 3 = stop).
    pub fn webitel_code(self) -> u8 {
        match self {
            CampaignState::Idle => 0,
            CampaignState::Running | CampaignState::Sleeping => 1,
            CampaignState::Stopping => 2,
            CampaignState::Stopped => 3,
            CampaignState::Done | CampaignState::Expired => 4,
        }
    }
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub from: CampaignState,
    pub to: CampaignState,
    pub reason: String,
}

/// What happened, as far as the state machine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateInput {
    /// Operator: run.
    Run,
    /// Operator: stop.
    Stop,
    /// The calendar allows calls now for at least one timezone in use.
    WindowOpen,
    /// The calendar allows no call now for any timezone in use (or its start is still ahead).
    WindowClosed,
    /// The calendar's end has passed.
    CalendarEnded,
    /// The queue has nothing that can ever be called again.
    QueueExhausted,
    /// New members arrived (a done campaign wakes only with `run`; eternal campaigns never get done).
    MembersAdded,
    /// The number of calls in progress changed to this value.
    ActiveCalls(u32),
    /// The calendar's end was moved later (or removed): an expired campaign may run again.
    CalendarExtended,
}

/// The state machine with its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMachine {
    state: CampaignState,
    eternal: bool,
    active_calls: u32,
    history: Vec<Transition>,
}

impl StateMachine {
    pub fn new(eternal: bool) -> StateMachine {
        StateMachine {
            state: CampaignState::Idle,
            eternal,
            active_calls: 0,
            history: Vec::new(),
        }
    }

    /// Restores a machine in a known state (after a restart, from the store's record).
    pub fn restore(state: CampaignState, eternal: bool) -> StateMachine {
        StateMachine {
            state,
            eternal,
            active_calls: 0,
            history: Vec::new(),
        }
    }

    pub fn state(&self) -> CampaignState {
        self.state
    }

    /// Follows an edit of the campaign's `eternal` flag.
    pub fn set_eternal(&mut self, eternal: bool) {
        self.eternal = eternal;
    }

    pub fn history(&self) -> &[Transition] {
        &self.history
    }

    /// Takes the transitions recorded since the last call (for the store to persist).
    pub fn drain_history(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.history)
    }

    fn go(&mut self, now: DateTime<Utc>, to: CampaignState, reason: &str) -> Option<Transition> {
        if to == self.state {
            return None;
        }
        let t = Transition {
            at: now,
            from: self.state,
            to,
            reason: reason.to_owned(),
        };
        self.state = to;
        self.history.push(t.clone());
        Some(t)
    }

    /// Applies one input; returns the transition it caused, if any.
    pub fn apply(&mut self, now: DateTime<Utc>, input: StateInput) -> Option<Transition> {
        use CampaignState::*;
        match input {
            StateInput::Run => match self.state {
                Idle | Stopped | Done | Stopping => self.go(now, Running, "run requested"),
                Running | Sleeping | Expired => None,
            },
            StateInput::Stop => match self.state {
                Running | Sleeping if self.active_calls > 0 => {
                    self.go(now, Stopping, "stop requested; calls in progress finish")
                }
                Running | Sleeping | Idle => self.go(now, Stopped, "stop requested"),
                Stopping | Stopped | Done | Expired => None,
            },
            StateInput::WindowOpen => match self.state {
                Sleeping => self.go(now, Running, "calendar window open"),
                _ => None,
            },
            StateInput::WindowClosed => match self.state {
                Running => self.go(now, Sleeping, "outside every calendar window"),
                _ => None,
            },
            StateInput::CalendarEnded => match self.state {
                Idle | Running | Sleeping | Stopping | Stopped | Done => {
                    self.go(now, Expired, "QUEUE_EXPIRE: calendar end passed")
                }
                Expired => None,
            },
            StateInput::QueueExhausted => match self.state {
                Running | Sleeping if !self.eternal && self.active_calls == 0 => {
                    self.go(now, Done, "no member can be called again")
                }
                _ => None,
            },
            StateInput::MembersAdded => None,
            StateInput::CalendarExtended => match self.state {
                Expired => self.go(now, Idle, "calendar end moved later"),
                _ => None,
            },
            StateInput::ActiveCalls(n) => {
                self.active_calls = n;
                if n == 0 && self.state == Stopping {
                    self.go(now, Stopped, "last call finished")
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignState::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn run_sleep_wake_stop_is_recorded_with_reasons() {
        let mut m = StateMachine::new(false);
        m.apply(t(0), StateInput::Run);
        m.apply(t(1), StateInput::WindowClosed);
        m.apply(t(2), StateInput::WindowOpen);
        m.apply(t(3), StateInput::Stop);
        let path: Vec<_> = m.history().iter().map(|h| (h.from, h.to)).collect();
        assert_eq!(
            path,
            vec![
                (Idle, Running),
                (Running, Sleeping),
                (Sleeping, Running),
                (Running, Stopped)
            ]
        );
        assert_eq!(m.history()[1].reason, "outside every calendar window");
        assert_eq!(m.history()[3].at, t(3));
    }

    #[test]
    fn stop_with_calls_in_progress_waits_for_them() {
        let mut m = StateMachine::new(false);
        m.apply(t(0), StateInput::Run);
        m.apply(t(1), StateInput::ActiveCalls(2));
        m.apply(t(2), StateInput::Stop);
        assert_eq!(m.state(), Stopping);
        assert!(!m.state().dials());
        m.apply(t(3), StateInput::ActiveCalls(1));
        assert_eq!(m.state(), Stopping);
        m.apply(t(4), StateInput::ActiveCalls(0));
        assert_eq!(m.state(), Stopped);
    }

    #[test]
    fn exhausted_queue_ends_a_campaign_only_when_calls_are_over_and_not_eternal() {
        let mut m = StateMachine::new(false);
        m.apply(t(0), StateInput::Run);
        m.apply(t(0), StateInput::ActiveCalls(1));
        assert_eq!(m.apply(t(1), StateInput::QueueExhausted), None);
        m.apply(t(2), StateInput::ActiveCalls(0));
        m.apply(t(2), StateInput::QueueExhausted);
        assert_eq!(m.state(), Done);

        let mut eternal = StateMachine::new(true);
        eternal.apply(t(0), StateInput::Run);
        eternal.apply(t(1), StateInput::QueueExhausted);
        assert_eq!(eternal.state(), Running);
    }

    #[test]
    fn calendar_end_expires_from_any_state_and_run_cannot_revive_it() {
        let mut m = StateMachine::new(true);
        m.apply(t(0), StateInput::Run);
        m.apply(t(1), StateInput::CalendarEnded);
        assert_eq!(m.state(), Expired);
        assert_eq!(m.apply(t(2), StateInput::Run), None);
        assert_eq!(m.state(), Expired);
    }

    #[test]
    fn an_expired_campaign_whose_calendar_end_moved_later_can_run_again() {
        let mut m = StateMachine::new(false);
        m.apply(t(0), StateInput::Run);
        m.apply(t(1), StateInput::CalendarEnded);
        assert_eq!(m.apply(t(2), StateInput::Run), None);
        m.apply(t(3), StateInput::CalendarExtended);
        assert_eq!(m.state(), Idle);
        m.apply(t(4), StateInput::Run);
        assert_eq!(m.state(), Running);
    }

    #[test]
    fn repeated_commands_are_no_ops() {
        let mut m = StateMachine::new(false);
        m.apply(t(0), StateInput::Stop);
        assert_eq!(m.apply(t(1), StateInput::Stop), None);
        assert_eq!(m.history().len(), 1);
    }
}
