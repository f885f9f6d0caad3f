//! The engine's clock: real time, or real time sped up by a factor (the demo and load tests run a day of calls in
//! minutes against a simulated switch running at the same speed).
//!
//! Real time is the system clock read on every call (not a start instant plus monotonic time), so a step of the
//! system clock — NTP correcting a drifted host — moves calendars and leases with it.
//!
//! The core never reads a clock; the shell asks this one for "now" and converts the core's next wake-up instant
//! into a real sleep.

use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// Wall-clock time scaled by `speed` from a starting instant.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    real_start: Instant,
    virtual_start: DateTime<Utc>,
    speed: f64,
}

impl Clock {
    /// Real time.
    pub fn real() -> Clock {
        Clock::scaled(1.0)
    }

    /// Time running `speed` times faster than the wall clock, starting now.
    pub fn scaled(speed: f64) -> Clock {
        Clock {
            real_start: Instant::now(),
            virtual_start: Utc::now(),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The current (virtual) instant. At real speed it is the system clock itself, read each time, so an NTP
    /// step is honoured at once (calendars, leases); a sped-up clock runs from its start on the monotonic clock.
    pub fn now(&self) -> DateTime<Utc> {
        if self.speed == 1.0 {
            return Utc::now();
        }
        let real = self.real_start.elapsed().as_secs_f64() * self.speed;
        self.virtual_start + chrono::Duration::microseconds((real * 1e6) as i64)
    }

    /// Real time to wait until the virtual instant `at` (zero if it has passed).
    pub fn real_until(&self, at: DateTime<Utc>) -> Duration {
        let virt = (at - self.now()).num_microseconds().unwrap_or(i64::MAX);
        if virt <= 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(virt as f64 / 1e6 / self.speed)
        }
    }

    /// A virtual duration as real time.
    pub fn to_real(&self, d: Duration) -> Duration {
        d.div_f64(self.speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_converts_waits() {
        let c = Clock::scaled(100.0);
        let later = c.now() + chrono::Duration::seconds(10);
        let wait = c.real_until(later);
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::from_millis(50),
            "{wait:?}"
        );
        assert_eq!(c.to_real(Duration::from_secs(1)), Duration::from_millis(10));
    }
}
