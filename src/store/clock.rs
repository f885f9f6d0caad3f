//! The store's clock: every instant a node hands the store (`now`, a lease's `until`, a `not_before`) is moved
//! onto the clock of the Redis server (`TIME`) before the store decides with it, so that clock skew between nodes
//! cannot make one node see another's live leases as expired (and recover its calls), nor dial a calendar early.
//!
//! Why an offset and not `TIME` inside each script: the scripts take `now` from the caller so that the store
//! contract suite (and the engine-core tests) drive both backends on virtual time; reading `TIME` in the scripts
//! would make that impossible. Instead a [`StoreClock`] measures `skew = TIME − the node's clock` when the store
//! connects and again every [`REFRESH`] (one `TIME` round trip, lazily, before an operation), and the store adds
//! it to every instant it is given. A skew under [`TOLERANCE`] is taken as none: leases are seconds long, NTP keeps
//! honest nodes far closer, and it leaves virtual-time tests exact (a test's virtual instant is not shifted by the
//! few milliseconds between the machine's clock and its Redis). The node's clock is the system clock, or one
//! injected ([`StoreClock::with_local`]) to test a node whose clock is off. The in-memory store is one process's
//! and has no skew.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How often the skew is measured again.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(30);
/// A skew smaller than this is taken as none.
pub const TOLERANCE: Duration = Duration::seconds(1);

/// The node's own clock.
pub type LocalClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The measured difference between the store's clock and the node's.
pub struct StoreClock {
    local: LocalClock,
    skew_ms: AtomicI64,
    measured: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for StoreClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreClock")
            .field("skew_ms", &self.skew_ms.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl StoreClock {
    /// A node on the system clock.
    pub fn system() -> StoreClock {
        StoreClock::with_local(Arc::new(Utc::now))
    }

    /// A node on the given clock.
    pub fn with_local(local: LocalClock) -> StoreClock {
        StoreClock {
            local,
            skew_ms: AtomicI64::new(0),
            measured: Mutex::new(None),
        }
    }

    /// The skew to add to the node's instants (zero until measured).
    pub fn skew(&self) -> Duration {
        Duration::milliseconds(self.skew_ms.load(Ordering::Relaxed))
    }

    /// Whether the skew is due to be measured (never measured, or more than [`REFRESH`] ago).
    pub fn needs_measure(&self) -> bool {
        let measured = *self.measured.lock().unwrap_or_else(|e| e.into_inner());
        measured.is_none_or(|at| at.elapsed() >= REFRESH)
    }

    /// Records the store's time as read now (`TIME`), against the node's clock read now too.
    pub fn record(&self, store_now: DateTime<Utc>) {
        let skew = store_now - (self.local)();
        let skew = if skew.abs() < TOLERANCE {
            Duration::zero()
        } else {
            skew
        };
        let old = self
            .skew_ms
            .swap(skew.num_milliseconds(), Ordering::Relaxed);
        if old != skew.num_milliseconds() && !skew.is_zero() {
            tracing::warn!(
                skew_ms = skew.num_milliseconds(),
                "this node's clock differs from the store's: the store's clock decides leases and due times"
            );
        }
        *self.measured.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skew_under_the_tolerance_is_none_and_a_larger_one_is_kept() {
        let c = StoreClock::with_local(Arc::new(|| DateTime::from_timestamp(1_000, 0).unwrap()));
        assert!(c.needs_measure());
        c.record(DateTime::from_timestamp_millis(1_000_400).unwrap());
        assert_eq!(c.skew(), Duration::zero());
        assert!(!c.needs_measure());
        c.record(DateTime::from_timestamp(400, 0).unwrap());
        assert_eq!(c.skew(), Duration::seconds(-600), "a node 10 minutes ahead");
    }
}
