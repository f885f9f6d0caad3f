//! Capacity: FreeSWITCH's session limits, as `switch_core_session_request_uuid` applies them to every new session.
//!
//! `sessions_per_second` is a counter reset to the limit at each whole second of the core's clock, decremented by
//! every session request and tested *after* the decrement (so 29 of 30 get through); `max_sessions` counts the
//! live sessions. A loopback call asks twice (its `-a` and its `-b` leg), and the two asks can fall on either side
//! of the limit: that is the half-throttled call of `legs`. One place holds the rule; `fsctl`, `status` and the
//! HEARTBEAT report its numbers.
//!
//! It also keeps the rate and session statistics the core's once-a-second timer keeps (`switch_time.c`): the
//! last whole second's session requests (`sps_last`), their all-time peak (`sps_peak`) and their peak over the
//! current five-minute window (`sps_peak_fivemin`), and the live sessions' peak (`sessions_peak`) and five-minute
//! peak (`sessions_peak_fivemin`). Every 300 ticks the window starts again: the rate peak from 0, the session peak
//! from the sessions up then.

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
    rate_peak: u32,
    rate_peak_fivemin: u32,
    sessions_peak: usize,
    sessions_peak_fivemin: usize,
    /// The whole second (of the core's clock) the current five-minute window began.
    window_start: u64,
}

/// Seconds (ticks of the core's timer) in FreeSWITCH's "last 5min" window.
const FIVE_MINUTES_SEC: u64 = 300;

/// The numbers `status` prints on its sessions and session-rate lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStats {
    /// Session requests in the last whole second (`fsctl last_sps`).
    pub last_second: u32,
    pub rate_peak: u32,
    pub rate_peak_fivemin: u32,
    pub sessions_peak: usize,
    pub sessions_peak_fivemin: usize,
}

impl SessionLimits {
    pub fn new(max_sessions: u32, per_second: u32, now_us: u64) -> SessionLimits {
        SessionLimits {
            max_sessions,
            per_second,
            left: i64::from(per_second),
            second: now_us / 1_000_000,
            last: 0,
            rate_peak: 0,
            rate_peak_fivemin: 0,
            sessions_peak: 0,
            sessions_peak_fivemin: 0,
            window_start: now_us / 1_000_000,
        }
    }

    /// Resets the counter when `now_us` is in a later whole second (the core's once-a-second timer), `live`
    /// sessions being up. A second the clock skipped counted no requests, so after a gap the last second's
    /// figure is 0; the second just ended still counts towards the peaks.
    pub fn tick(&mut self, now_us: u64, live: usize) {
        let sec = now_us / 1_000_000;
        if sec <= self.second {
            return;
        }
        // Every request counts, the refused ones too (the core decrements its counter below 0): under a burst the
        // figure passes the limit, as the real switch's "peak 115 ... out of max 30" does.
        let ended = u32::try_from(i64::from(self.per_second) - self.left).unwrap_or(0);
        self.last = if sec == self.second + 1 { ended } else { 0 };
        if sec - self.window_start >= FIVE_MINUTES_SEC {
            self.window_start = sec;
            self.rate_peak_fivemin = 0;
            self.sessions_peak_fivemin = live;
        }
        self.rate_peak = self.rate_peak.max(ended);
        self.rate_peak_fivemin = self.rate_peak_fivemin.max(ended);
        self.second = sec;
        self.left = i64::from(self.per_second);
    }

    /// A session came up: `live` are up now (the peaks of `status`).
    pub fn note_sessions(&mut self, live: usize) {
        self.sessions_peak = self.sessions_peak.max(live);
        self.sessions_peak_fivemin = self.sessions_peak_fivemin.max(live);
    }

    /// The rate and session statistics as of the last tick.
    pub fn stats(&self) -> RateStats {
        RateStats {
            last_second: self.last,
            rate_peak: self.rate_peak,
            rate_peak_fivemin: self.rate_peak_fivemin,
            sessions_peak: self.sessions_peak,
            sessions_peak_fivemin: self.sessions_peak_fivemin,
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

    /// Session requests (refused ones too) in the last whole second of the counter (`fsctl last_sps`).
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
        l.tick(5_999_999, 2);
        assert_eq!(l.request(2), Err(Refusal::Throttle), "same second");
        l.tick(6_000_000, 2);
        assert_eq!(l.request(2), Ok(()), "a new second");
    }

    #[test]
    fn max_sessions_counts_live_sessions() {
        let mut l = SessionLimits::new(2, 30, 0);
        assert_eq!(l.request(1), Ok(()));
        assert_eq!(l.request(2), Err(Refusal::OverLimit));
    }

    #[test]
    fn the_rate_statistics_follow_the_core_timer_last_second_peak_and_five_minute_window() {
        let mut l = SessionLimits::new(1000, 30, 0);
        for live in 0..20 {
            l.request(live).unwrap();
            l.note_sessions(live + 1);
        }
        l.tick(1_000_000, 20);
        let s = l.stats();
        assert_eq!(
            (s.last_second, s.rate_peak, s.rate_peak_fivemin),
            (20, 20, 20)
        );
        assert_eq!((s.sessions_peak, s.sessions_peak_fivemin), (20, 20));
        for live in 0..5 {
            l.request(live).unwrap();
        }
        l.tick(2_000_000, 5);
        let s = l.stats();
        assert_eq!(
            (s.last_second, s.rate_peak, s.rate_peak_fivemin),
            (5, 20, 20)
        );
        // Refused requests count too: 40 asked against 30 is 40.
        for live in 0..40 {
            let _ = l.request(live);
        }
        l.tick(3_000_000, 5);
        let s = l.stats();
        assert_eq!(
            (s.last_second, s.rate_peak, s.rate_peak_fivemin),
            (40, 40, 40)
        );
        // A gap: the skipped seconds counted nothing.
        l.tick(10_000_000, 5);
        assert_eq!(l.stats().last_second, 0);
        // Five minutes on, the window starts again: the rate peak from 0, the session peak from those up.
        l.tick(301_000_000, 3);
        let s = l.stats();
        assert_eq!((s.rate_peak, s.rate_peak_fivemin), (40, 0));
        assert_eq!((s.sessions_peak, s.sessions_peak_fivemin), (20, 3));
    }
}
