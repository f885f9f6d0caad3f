//! `fsdialer pacing-sim`: whole shifts of a predictive campaign on virtual time, run by the engine's own core.
//!
//! - [`profile`]: the TOML traffic profile (agents, customers, changes of answer rate during the shift);
//! - [`world`]: the simulated callees and agents around the core (playing the switch and the store's agents);
//! - [`metrics`]: what a shift measured.
//!
//! Each seed runs every policy — fsdialer's pacer and the baselines (Webitel's formula, ViciDial's adaptive
//! controller, progressive 1:1), which are alternative pacer policies feeding the same core — on the same
//! customers, so their figures compare like for like.

pub mod cli;
pub mod metrics;
pub mod profile;
pub mod world;

use serde::Serialize;

use crate::agents::pacer::PacingPolicy;
pub use metrics::Metrics;
pub use profile::{Profile, ProfileError};

/// One policy on one seed.
#[derive(Debug, Clone, Serialize)]
pub struct ShiftResult {
    pub policy: &'static str,
    pub seed: u64,
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// Simulates one shift of `policy` on `seed`.
pub fn simulate(profile: &Profile, seed: u64, policy: PacingPolicy) -> Result<ShiftResult, String> {
    let valid = world::campaign(profile, policy)?;
    let metrics = world::World::new(profile, seed, valid).run();
    Ok(ShiftResult {
        policy: policy.as_str(),
        seed,
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(agents: u32, hours: f64, answer: f64) -> Profile {
        Profile::from_toml_str(&format!(
            "agents = {agents}\nshift_hours = {hours}\n[customer]\nanswer_prob = {answer}\n\
             time_to_answer_sec = {{ median = 8.0, sigma = 0.5 }}\npatience_sec = {{ min = 1.0, max = 3.0 }}\n\
             [agent]\ntalk_sec = {{ median = 90.0, sigma = 0.6 }}\nwrap_sec = {{ mean = 10.0 }}\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_shift_is_reproducible_and_predictive_keeps_agents_busier_than_progressive() {
        let p = profile(20, 1.0, 0.3);
        let a = simulate(&p, 7, PacingPolicy::Fsdialer).unwrap();
        let b = simulate(&p, 7, PacingPolicy::Fsdialer).unwrap();
        assert_eq!(a.metrics.calls, b.metrics.calls, "same seed, same shift");
        let progressive = simulate(&p, 7, PacingPolicy::Progressive).unwrap();
        assert!(a.metrics.live_answers > 0 && progressive.metrics.live_answers > 0);
        assert!(
            a.metrics.talk_min_per_agent_hour > progressive.metrics.talk_min_per_agent_hour,
            "{a:?} vs {progressive:?}"
        );
        assert!(a.metrics.calls > progressive.metrics.calls);
    }
}
