//! A predictive campaign's pacing settings (`agents.pacing`): the abandonment target and the hard limits, the
//! model's half-life and warm-up, the closed loop's window, and the policy (fsdialer's own, or a baseline the
//! pacing simulator compares it with).

use serde::{Deserialize, Serialize};

use crate::campaign::FieldError;

/// Which controller paces the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PacingPolicy {
    /// The model-based pacer with its closed loop (the default).
    #[default]
    Fsdialer,
    /// Webitel's published formula (a baseline).
    Webitel,
    /// ViciDial's adaptive controller (a baseline).
    Vicidial,
    /// One call per free agent.
    Progressive,
}

impl PacingPolicy {
    pub const ALL: [PacingPolicy; 4] = [
        PacingPolicy::Fsdialer,
        PacingPolicy::Webitel,
        PacingPolicy::Vicidial,
        PacingPolicy::Progressive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PacingPolicy::Fsdialer => "fsdialer",
            PacingPolicy::Webitel => "webitel",
            PacingPolicy::Vicidial => "vicidial",
            PacingPolicy::Progressive => "progressive",
        }
    }
}

fn default_target_abandon_pct() -> f64 {
    2.0
}
fn default_max_abandon_pct() -> f64 {
    3.0
}
fn default_max_lines_per_agent() -> f64 {
    3.0
}
fn default_min_agents_for_predictive() -> u32 {
    5
}
fn default_half_life_sec() -> f64 {
    40.0
}
fn default_durations_half_life_sec() -> f64 {
    600.0
}
fn default_warmup_answers() -> u32 {
    20
}
fn default_window_sec() -> u64 {
    300
}

/// The `agents.pacing` section of a predictive campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacingSettings {
    /// The abandonment rate (% of live answers) the closed loop steers to.
    #[serde(default = "default_target_abandon_pct")]
    pub target_abandon_pct: f64,
    /// A rolling 30-day rate at or over this falls back to one call per free agent.
    #[serde(default = "default_max_abandon_pct")]
    pub max_abandon_pct: f64,
    /// Never more member calls ringing than this many per ready agent.
    #[serde(default = "default_max_lines_per_agent")]
    pub max_lines_per_agent: f64,
    /// With fewer ready agents (free, talking or in wrap-up) the campaign dials one call per free agent.
    #[serde(default = "default_min_agents_for_predictive")]
    pub min_agents_for_predictive: u32,
    /// Half-life, in seconds, of the model's answer probabilities (live, machine).
    #[serde(default = "default_half_life_sec")]
    pub half_life_sec: f64,
    /// Half-life, in seconds, of the model's durations: time to answer, talk (its mean and lognormal shape),
    /// wrap-up.
    #[serde(default = "default_durations_half_life_sec")]
    pub durations_half_life_sec: f64,
    /// Live answers seen before the model is trusted (one call per free agent until then).
    #[serde(default = "default_warmup_answers")]
    pub warmup_answers: u32,
    /// The closed loop's rolling window of live answers, in seconds.
    #[serde(default = "default_window_sec")]
    pub window_sec: u64,
    #[serde(default)]
    pub policy: PacingPolicy,
}

impl Default for PacingSettings {
    fn default() -> Self {
        PacingSettings {
            target_abandon_pct: default_target_abandon_pct(),
            max_abandon_pct: default_max_abandon_pct(),
            max_lines_per_agent: default_max_lines_per_agent(),
            min_agents_for_predictive: default_min_agents_for_predictive(),
            half_life_sec: default_half_life_sec(),
            durations_half_life_sec: default_durations_half_life_sec(),
            warmup_answers: default_warmup_answers(),
            window_sec: default_window_sec(),
            policy: PacingPolicy::default(),
        }
    }
}

impl PacingSettings {
    /// Every problem with the section, paths under `prefix` (e.g. `agents.pacing`).
    pub fn check(&self, prefix: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let at = |f: &str| format!("{prefix}.{f}");
        let floats: [(&str, f64, f64, f64); 5] = [
            ("target_abandon_pct", self.target_abandon_pct, 0.1, 10.0),
            ("max_abandon_pct", self.max_abandon_pct, 0.1, 10.0),
            ("max_lines_per_agent", self.max_lines_per_agent, 1.0, 10.0),
            ("half_life_sec", self.half_life_sec, 1.0, 3600.0),
            (
                "durations_half_life_sec",
                self.durations_half_life_sec,
                1.0,
                86_400.0,
            ),
        ];
        for (name, value, min, max) in floats {
            if !value.is_finite() || !(min..=max).contains(&value) {
                errors.push(FieldError::new(
                    at(name),
                    format!("must be {min} to {max}, got {value}"),
                ));
            }
        }
        if self.target_abandon_pct.is_finite()
            && self.max_abandon_pct.is_finite()
            && self.target_abandon_pct > self.max_abandon_pct
        {
            errors.push(FieldError::new(
                at("target_abandon_pct"),
                format!(
                    "must not exceed max_abandon_pct ({}), got {}",
                    self.max_abandon_pct, self.target_abandon_pct
                ),
            ));
        }
        let ints: [(&str, u64, u64, u64); 3] = [
            (
                "min_agents_for_predictive",
                u64::from(self.min_agents_for_predictive),
                1,
                10_000,
            ),
            ("warmup_answers", u64::from(self.warmup_answers), 0, 100_000),
            ("window_sec", self.window_sec, 10, 86_400),
        ];
        for (name, value, min, max) in ints {
            if !(min..=max).contains(&value) {
                errors.push(FieldError::new(
                    at(name),
                    format!("must be {min} to {max}, got {value}"),
                ));
            }
        }
        errors
    }
}
