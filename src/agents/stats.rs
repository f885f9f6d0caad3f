//! Per-agent figures, accumulated at every transition of the agent (see `record.rs`), so that they are right at
//! any instant: calls handled, talk, wrap-up, idle, missed offers, time logged in and paused.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStats {
    /// Calls the agent talked on (finished).
    pub calls: u64,
    pub talk_ms: u64,
    pub wrap_ms: u64,
    /// Time ready (or on demand) with nothing to do.
    pub idle_ms: u64,
    /// Offers the agent did not answer.
    pub missed: u64,
    /// Time in any status but `logged_out`.
    pub logged_in_ms: u64,
    pub paused_ms: u64,
}

impl AgentStats {
    /// (talk + wrap-up) / (logged in − paused); `None` before the agent was available at all.
    pub fn occupancy(&self) -> Option<f64> {
        let available = self.logged_in_ms.saturating_sub(self.paused_ms);
        (available > 0).then(|| (self.talk_ms + self.wrap_ms) as f64 / available as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_is_busy_time_over_available_time() {
        let s = AgentStats {
            talk_ms: 30_000,
            wrap_ms: 10_000,
            logged_in_ms: 100_000,
            paused_ms: 20_000,
            ..AgentStats::default()
        };
        assert_eq!(s.occupancy(), Some(0.5));
        assert_eq!(AgentStats::default().occupancy(), None);
    }
}
