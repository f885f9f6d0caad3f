//! How a team picks among its free agents, and the team settings that travel with every request.
//!
//! Every strategy looks only at the highest level among the eligible agents (levels: higher preferred); within
//! it:
//! - `longest_idle` (default): the agent free for the longest time (since its last call, wrap-up or login);
//! - `least_talk_time`: the least talk time so far; `fewest_calls`: the fewest calls so far (ties: longest idle);
//! - `round_robin`: the agent offered a call least recently (each agent in turn);
//! - `top_down`: always the first agent in id order;
//! - `random`: any of them.
//!
//! Remaining ties are broken by agent id, so the pick is deterministic except for `random`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    LongestIdle,
    LeastTalkTime,
    FewestCalls,
    RoundRobin,
    TopDown,
    Random,
}

/// A team's settings (they live in the campaign's `agents` section; the engine passes them with each request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRules {
    pub team: String,
    pub strategy: Strategy,
    /// Wrap-up after each call (zero: none).
    pub wrap_up: Duration,
    /// Offers missed in a row that pause the agent (reason `no_answer`); 0: never.
    pub max_no_answer: u32,
    /// How long an agent that missed an offer is not offered another.
    pub no_answer_delay: Duration,
}

impl TeamRules {
    /// Rules with the defaults for `team`.
    pub fn new(team: impl Into<String>) -> TeamRules {
        TeamRules {
            team: team.into(),
            strategy: Strategy::default(),
            wrap_up: Duration::ZERO,
            max_no_answer: 0,
            no_answer_delay: Duration::ZERO,
        }
    }
}

/// What a strategy compares of an eligible agent.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub level: u32,
    /// Since when the agent is free (last call's end plus wrap-up, login, end of a pause).
    pub available_since: DateTime<Utc>,
    pub talk_ms: u64,
    pub calls: u64,
    /// When the agent was last reserved; `None`: never.
    pub last_reserved_at: Option<DateTime<Utc>>,
}

/// The index in `candidates` of the agent `strategy` picks, `None` when there is none.
pub fn pick(strategy: Strategy, candidates: &[Candidate<'_>]) -> Option<usize> {
    let top = candidates.iter().map(|c| c.level).max()?;
    let best: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].level == top)
        .collect();
    if strategy == Strategy::Random {
        return Some(best[rand::random_range(0..best.len())]);
    }
    let idle = |a: &Candidate<'_>, b: &Candidate<'_>| a.available_since.cmp(&b.available_since);
    let order = |a: &Candidate<'_>, b: &Candidate<'_>| -> Ordering {
        let first = match strategy {
            Strategy::LongestIdle => idle(a, b),
            Strategy::LeastTalkTime => a.talk_ms.cmp(&b.talk_ms).then_with(|| idle(a, b)),
            Strategy::FewestCalls => a.calls.cmp(&b.calls).then_with(|| idle(a, b)),
            Strategy::RoundRobin => a.last_reserved_at.cmp(&b.last_reserved_at),
            Strategy::TopDown | Strategy::Random => Ordering::Equal,
        };
        first.then_with(|| a.id.cmp(b.id))
    };
    best.into_iter()
        .min_by(|&a, &b| order(&candidates[a], &candidates[b]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn c(
        id: &str,
        level: u32,
        idle_since: i64,
        talk_ms: u64,
        calls: u64,
        rr: Option<i64>,
    ) -> Candidate<'_> {
        Candidate {
            id,
            level,
            available_since: at(idle_since),
            talk_ms,
            calls,
            last_reserved_at: rr.map(at),
        }
    }

    #[test]
    fn each_strategy_picks_within_the_highest_level() {
        let cs = [
            c("low", 1, 0, 0, 0, None),
            c("b", 5, 10, 500, 2, Some(30)),
            c("a", 5, 20, 900, 1, Some(20)),
            c("c", 5, 30, 100, 3, Some(10)),
        ];
        let name = |s| cs[pick(s, &cs).unwrap()].id;
        assert_eq!(name(Strategy::LongestIdle), "b");
        assert_eq!(name(Strategy::LeastTalkTime), "c");
        assert_eq!(name(Strategy::FewestCalls), "a");
        assert_eq!(name(Strategy::RoundRobin), "c");
        assert_eq!(name(Strategy::TopDown), "a");
        for _ in 0..20 {
            assert_ne!(name(Strategy::Random), "low");
        }
        assert_eq!(pick(Strategy::LongestIdle, &[]), None);
    }

    #[test]
    fn never_reserved_agents_come_first_in_round_robin() {
        let cs = [c("a", 1, 0, 0, 0, Some(5)), c("b", 1, 0, 0, 0, None)];
        assert_eq!(pick(Strategy::RoundRobin, &cs), Some(1));
    }
}
