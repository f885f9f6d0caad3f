//! Local token buckets: calls-per-second pacing on one engine node.
//!
//! The store holds the buckets shared by all nodes (campaign and gateway CPS); these local ones decide *when* this
//! node next has reason to ask, and pace the FreeSWITCH node's `sessions_per_second`, which is per switch. Pure:
//! time comes in as an argument.

use chrono::{DateTime, Utc};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
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
}
