//! Local pacing on one engine node: token buckets for calls per second, and the session-rate window of a switch.
//!
//! The store holds the buckets shared by all nodes (campaign and gateway CPS); these local ones decide *when* this
//! node next has reason to ask. A FreeSWITCH node's `sessions-per-second` is not a bucket: the core resets a counter
//! to the limit once a second (from its timer thread, at a phase of its own) and refuses a session when the
//! decremented counter is not positive, so a burst plus a second's refill of a [`TokenBucket`] lands up to twice the
//! limit in one of its seconds. [`SessionWindow`] paces that: never more than the limit in any one-second window,
//! whatever the phase of FreeSWITCH's seconds. Pure: time comes in as an argument.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

/// A token bucket refilling continuously at `rate` tokens per second up to `burst`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: DateTime<Utc>,
}

impl TokenBucket {
    /// A full bucket. `rate` must be positive; `burst` at least 1.
    pub fn new(rate: f64, burst: f64, now: DateTime<Utc>) -> TokenBucket {
        let burst = burst.max(1.0);
        TokenBucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        if now > self.at {
            let secs = (now - self.at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            self.tokens = (self.tokens + secs * self.rate).min(self.burst);
            self.at = now;
        }
    }

    /// Whole tokens available now.
    pub fn available(&mut self, now: DateTime<Utc>) -> u32 {
        self.refill(now);
        self.tokens.floor().max(0.0) as u32
    }

    /// Takes `n` tokens (callers take at most what [`available`](Self::available) said).
    pub fn take(&mut self, n: u32, now: DateTime<Utc>) {
        self.refill(now);
        self.tokens -= f64::from(n);
    }

    /// Gives back `n` tokens that were taken but not used.
    pub fn give_back(&mut self, n: u32) {
        self.tokens = (self.tokens + f64::from(n)).min(self.burst);
    }

    /// When at least one whole token will be available.
    pub fn next_token_at(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.refill(now);
        if self.tokens >= 1.0 {
            return now;
        }
        let wait = (1.0 - self.tokens) / self.rate;
        now + chrono::Duration::microseconds((wait * 1e6).ceil() as i64)
    }
}

/// At most `limit` session starts in any window of one second (so in any whole second of any clock).
///
/// Same shape as [`TokenBucket`]: ask [`available`](Self::available), [`take`](Self::take) what is used,
/// [`next_token_at`](Self::next_token_at) to know when to come back.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionWindow {
    limit: u32,
    /// Starts within the last second, oldest first: (when, how many).
    recent: VecDeque<(DateTime<Utc>, u32)>,
    in_window: u32,
}

const WINDOW: TimeDelta = TimeDelta::seconds(1);

impl SessionWindow {
    /// At most `limit` starts per second (at least 1).
    pub fn new(limit: u32) -> SessionWindow {
        SessionWindow {
            limit: limit.max(1),
            recent: VecDeque::new(),
            in_window: 0,
        }
    }

    /// The window for a switch configured with `sessions-per-second = sps`: FreeSWITCH tests its counter after
    /// decrementing it, so `sps - 1` sessions get through per second. A loopback call is two sessions.
    pub fn for_switch(sps: u32) -> SessionWindow {
        SessionWindow::new(sps.saturating_sub(1))
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Follows a new `sessions-per-second` of the switch (as [`for_switch`](Self::for_switch)), keeping the starts
    /// of the last second: a new limit never lets a second see more than the old one already placed plus room.
    pub fn set_switch_sps(&mut self, sps: u32) {
        self.limit = sps.saturating_sub(1).max(1);
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        while let Some(&(at, n)) = self.recent.front() {
            if now - at < WINDOW {
                break;
            }
            self.recent.pop_front();
            self.in_window -= n;
        }
    }

    /// Starts allowed now.
    pub fn available(&mut self, now: DateTime<Utc>) -> u32 {
        self.expire(now);
        self.limit.saturating_sub(self.in_window)
    }

    /// Records `n` starts at `now` (callers take at most what [`available`](Self::available) said).
    pub fn take(&mut self, n: u32, now: DateTime<Utc>) {
        if n == 0 {
            return;
        }
        self.expire(now);
        match self.recent.back_mut() {
            Some((at, m)) if *at == now => *m += n,
            _ => self.recent.push_back((now, n)),
        }
        self.in_window += n;
    }

    /// When at least one start will be allowed.
    pub fn next_token_at(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.next_room_at(1, now)
    }

    /// When at least `n` starts (at most the limit) will be allowed together: a call of `n` sessions.
    pub fn next_room_at(&mut self, n: u32, now: DateTime<Utc>) -> DateTime<Utc> {
        let n = n.clamp(1, self.limit);
        if self.available(now) >= n {
            return now;
        }
        // Starts leave the window oldest first; the one that brings the count to `limit - n` decides.
        let mut over = self.in_window + n - self.limit;
        for &(at, n) in &self.recent {
            if n >= over {
                return at + WINDOW;
            }
            over -= n;
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn room_for_a_call_of_several_sessions_waits_until_that_many_left_the_window() {
        let mut w = SessionWindow::for_switch(6); // 5 a second
        w.take(2, t(0));
        w.take(2, t(100));
        assert_eq!(w.available(t(200)), 1);
        assert_eq!(w.next_token_at(t(200)), t(200));
        assert_eq!(w.next_room_at(2, t(200)), t(1000));
        w.take(1, t(200));
        assert_eq!(w.next_room_at(2, t(300)), t(1000));
        assert_eq!(w.next_room_at(3, t(300)), t(1100));
        assert_eq!(
            w.next_room_at(9, t(300)),
            t(1200),
            "never more than the limit"
        );
    }

    #[test]
    fn refills_at_rate_up_to_burst() {
        let mut b = TokenBucket::new(10.0, 10.0, t(0));
        assert_eq!(b.available(t(0)), 10);
        b.take(10, t(0));
        assert_eq!(b.available(t(0)), 0);
        assert_eq!(b.available(t(250)), 2);
        assert_eq!(b.available(t(60_000)), 10);
    }

    #[test]
    fn next_token_time_is_exact() {
        let mut b = TokenBucket::new(4.0, 1.0, t(0));
        b.take(1, t(0));
        assert_eq!(b.next_token_at(t(0)), t(250));
        assert_eq!(b.next_token_at(t(250)), t(250));
    }

    #[test]
    fn the_window_refuses_the_second_burst_a_bucket_lets_through() {
        // The bucket: 10 at once, then 10 more within the same second (its refill) — 20 in one second.
        let mut b = TokenBucket::new(10.0, 10.0, t(0));
        let all = b.available(t(0));
        b.take(all, t(0));
        assert_eq!(b.available(t(999)), 9);
        // The window: 10 at once, then nothing until a second after them.
        let mut w = SessionWindow::new(10);
        assert_eq!(w.available(t(0)), 10);
        w.take(10, t(0));
        assert_eq!(w.available(t(999)), 0);
        assert_eq!(w.next_token_at(t(500)), t(1000));
        assert_eq!(w.available(t(1000)), 10);
    }

    #[test]
    fn next_token_is_when_enough_old_starts_leave_the_window() {
        let mut w = SessionWindow::new(3);
        w.take(1, t(0));
        w.take(2, t(400));
        assert_eq!(w.available(t(500)), 0);
        assert_eq!(w.next_token_at(t(500)), t(1000));
        assert_eq!(w.available(t(1000)), 1);
        w.take(1, t(1000));
        assert_eq!(w.next_token_at(t(1000)), t(1400));
        assert_eq!(w.available(t(1400)), 2);
    }

    #[test]
    fn a_switch_window_lets_one_less_than_sessions_per_second_through() {
        assert_eq!(SessionWindow::for_switch(30).limit(), 29);
        assert_eq!(SessionWindow::for_switch(1).limit(), 1);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the limit and whatever the callers ask (when, how many per call), no second — neither a
            /// whole wall-clock second nor one starting at any other instant, as FreeSWITCH's are — gets more
            /// than the limit, and a caller who waits until `next_token_at` gets a start.
            #[test]
            fn never_more_than_the_limit_in_any_second(
                limit in 1u32..40,
                asks in prop::collection::vec((0i64..700, 1u32..6), 1..120),
            ) {
                let mut w = SessionWindow::new(limit);
                let mut now = t(0);
                let mut starts: Vec<DateTime<Utc>> = Vec::new();
                for (gap_ms, want) in asks {
                    now += TimeDelta::milliseconds(gap_ms);
                    let n = want.min(w.available(now));
                    w.take(n, now);
                    starts.extend(std::iter::repeat_n(now, n as usize));
                    if n < want {
                        let next = w.next_token_at(now);
                        prop_assert!(next > now || w.available(now) > 0);
                        // (looked at on a copy: time does not go back for the pacer itself)
                        prop_assert!(w.clone().available(next) > 0, "a start at next_token_at");
                    }
                }
                for &from in &starts {
                    let in_second = starts.iter().filter(|&&s| s >= from && s - from < WINDOW).count();
                    prop_assert!(in_second as u32 <= limit, "{in_second} starts in the second from {from}");
                }
                let mut per_whole_second = std::collections::HashMap::new();
                for s in &starts {
                    *per_whole_second.entry(s.timestamp()).or_insert(0u32) += 1;
                }
                prop_assert!(per_whole_second.values().all(|&n| n <= limit));
            }
        }
    }
}
