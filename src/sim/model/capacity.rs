//! Capacity: FreeSWITCH's session limits, as `switch_core_session_request_uuid` applies them to every new session.
//!
//! `sessions_per_second` is a counter reset to the limit at each whole second of the core's clock, decremented by
//! every session request and tested *after* the decrement (so 29 of 30 get through); `max_sessions` counts the
//! live sessions. A loopback call asks twice (its `-a` and its `-b` leg), and the two asks can fall on either side
//! of the limit: that is the half-throttled call of `legs`. One place holds the rule; `fsctl` and `status`
//! report its numbers.

/// Why the core refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// "Throttle Error!": the second's `sessions_per_second` budget is spent.
    Throttle,
    /// "Over Session Limit!": `max_sessions` sessions are live.
    OverLimit,
}

/// The per-second session counter and the session ceiling.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub max_sessions: u32,
    pub per_second: u32,
    left: i64,
    second: u64,
    last: u32,
}

impl SessionLimits {
    pub fn new(max_sessions: u32, per_second: u32, now_us: u64) -> SessionLimits {
        SessionLimits {
            max_sessions,
            per_second,
            left: i64::from(per_second),
            second: now_us / 1_000_000,
            last: 0,
        }
    }

    /// Resets the counter when `now_us` is in a later whole second (the core's once-a-second heartbeat).
    pub fn tick(&mut self, now_us: u64) {
        let sec = now_us / 1_000_000;
        if sec != self.second {
            self.last = u32::try_from(i64::from(self.per_second) - self.left.max(0)).unwrap_or(0);
            self.second = sec;
            self.left = i64::from(self.per_second);
        }
    }

    /// Sessions still allowed in the second of `now_us` (the whole budget in a second not counted yet).
    pub fn left_at(&self, now_us: u64) -> u64 {
        if now_us / 1_000_000 == self.second {
            self.left.max(0) as u64
        } else {
            u64::from(self.per_second)
        }
    }

    /// Sessions started in the last whole second of the counter (`fsctl last_sps`).
    pub fn last_second(&self) -> u32 {
        self.last
    }

    /// One session request with `live` sessions up.
    pub fn request(&mut self, live: usize) -> Result<(), Refusal> {
        self.left -= 1;
        if self.left <= 0 {
            tracing::debug!("sim: throttle error (sessions_per_second)");
            return Err(Refusal::Throttle);
        }
        if live + 1 > self.max_sessions as usize {
            tracing::debug!("sim: over session limit");
            return Err(Refusal::OverLimit);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_tested_after_the_decrement_and_reset_each_whole_second() {
        let mut l = SessionLimits::new(1000, 3, 5_900_000);
        assert_eq!(l.request(0), Ok(()));
        assert_eq!(l.request(1), Ok(()));
        assert_eq!(l.request(2), Err(Refusal::Throttle));
        l.tick(5_999_999);
        assert_eq!(l.request(2), Err(Refusal::Throttle), "same second");
        l.tick(6_000_000);
        assert_eq!(l.request(2), Ok(()), "a new second");
    }

    #[test]
    fn max_sessions_counts_live_sessions() {
        let mut l = SessionLimits::new(2, 30, 0);
        assert_eq!(l.request(1), Ok(()));
        assert_eq!(l.request(2), Err(Refusal::OverLimit));
    }
}
