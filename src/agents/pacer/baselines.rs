//! The anchors' predictive controllers, reimplemented from their published formulas (`design/agents.md`), so
//! the pacing simulator can run them in the same engine core on the same seeds as fsdialer's own policy.
//!
//! - **Webitel (Go)**: every 30 s, from the last 60 minutes: `hit_rate = connected / attempts`,
//!   `over_dial = 1 / hit_rate` (no hit yet: `attempts / max(agents, 1) − 1`), `abandoned% = abandoned /
//!   connected · 100`; with target `t` = 3, maximum `m` = 3 and load factor `q` = 10: `abandoned% ≥ m` → 1;
//!   `dx = t − abandoned%` (0 becomes 0.99); `dx > 0` → `over + over·dx·q/100`, else
//!   `over · ((m − abandoned%)·(100 + q)/m) / 100`. Dials: free agents × over_dial, less the calls ringing.
//! - **ViciDial adaptive** (AST_VDadapt.pl): every 15 s, `differential = ready agents − waiting calls` (its
//!   one-minute average), `mul = differential / agents`, `level = level · (1 + mul·factor)` with the intensity
//!   factor at its default (1), capped at `adaptive_maximum_level` 3.0 and never under 1.0; the drop guard
//!   (HARD_LIMIT, over 3 % dropped since the start) holds the level at 1.0. Dials: agents × level, less the
//!   campaign's calls (ringing, waiting and talking).

use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;

use super::{PacerInputs, PacerState};

/// Webitel's refresh period.
const WEBITEL_REFRESH: Duration = Duration::seconds(30);
/// Webitel's target, maximum and load factor (its defaults).
const WEBITEL_TARGET: f64 = 3.0;
const WEBITEL_MAX: f64 = 3.0;
const WEBITEL_LOAD: f64 = 10.0;

/// ViciDial's adjustment period, averaging window and limits.
const VICIDIAL_PERIOD: Duration = Duration::seconds(15);
const VICIDIAL_AVERAGE: Duration = Duration::seconds(60);
const VICIDIAL_MAX_LEVEL: f64 = 3.0;
const VICIDIAL_DROP_PCT: f64 = 3.0;
/// Most samples kept for the average (one per decision; the window bounds them in time as well).
const VICIDIAL_MAX_SAMPLES: usize = 10_000;

/// Webitel's memory: its current over-dial factor and when it is refreshed.
#[derive(Debug, Clone, PartialEq)]
pub struct WebitelState {
    pub over_dial: f64,
    pub next_refresh: Option<DateTime<Utc>>,
}

impl Default for WebitelState {
    fn default() -> Self {
        WebitelState {
            over_dial: 1.0,
            next_refresh: None,
        }
    }
}

/// ViciDial's memory: its dial level, the differential samples of the last minute and the next adjustment.
#[derive(Debug, Clone, PartialEq)]
pub struct VicidialState {
    pub level: f64,
    pub samples: VecDeque<(DateTime<Utc>, f64)>,
    pub next_adjust: Option<DateTime<Utc>>,
}

impl Default for VicidialState {
    fn default() -> Self {
        VicidialState {
            level: 1.0,
            samples: VecDeque::new(),
            next_adjust: None,
        }
    }
}

/// Webitel's dials now.
pub fn webitel(state: &mut PacerState, inputs: &PacerInputs<'_>, now: DateTime<Utc>) -> u32 {
    if state.webitel.next_refresh.is_none_or(|t| now >= t) {
        state.webitel.next_refresh = Some(now + WEBITEL_REFRESH);
        let w = state.hour.total(now);
        let agents = inputs.agents.ready().max(1);
        // Webitel's `connected` is answered and human: live answers.
        let over = if w.live == 0 {
            if w.attempts == 0 {
                1.0
            } else {
                (w.attempts as f64 / f64::from(agents) - 1.0).max(1.0)
            }
        } else {
            w.attempts as f64 / w.live as f64
        };
        let abandoned = w.abandon_pct().unwrap_or(0.0);
        state.webitel.over_dial = if abandoned >= WEBITEL_MAX {
            1.0
        } else {
            let mut dx = WEBITEL_TARGET - abandoned;
            if dx == 0.0 {
                dx = 0.99;
            }
            if dx > 0.0 {
                over + over * dx * WEBITEL_LOAD / 100.0
            } else {
                over * ((WEBITEL_MAX - abandoned) * (100.0 + WEBITEL_LOAD) / WEBITEL_MAX) / 100.0
            }
        };
    }
    let want = (f64::from(inputs.agents.free) * state.webitel.over_dial).floor() as u32;
    want.saturating_sub(inputs.outstanding())
}

/// ViciDial's dials now.
pub fn vicidial(state: &mut PacerState, inputs: &PacerInputs<'_>, now: DateTime<Utc>) -> u32 {
    let v = &mut state.vicidial;
    let differential = f64::from(inputs.agents.free) - f64::from(inputs.waiting);
    v.samples.push_back((now, differential));
    while v
        .samples
        .front()
        .is_some_and(|(t, _)| *t < now - VICIDIAL_AVERAGE)
        || v.samples.len() > VICIDIAL_MAX_SAMPLES
    {
        v.samples.pop_front();
    }
    let agents = inputs.agents.ready();
    if v.next_adjust.is_none_or(|t| now >= t) {
        v.next_adjust = Some(now + VICIDIAL_PERIOD);
        let dropped = state.since_start.abandon_pct().unwrap_or(0.0);
        if dropped > VICIDIAL_DROP_PCT {
            v.level = 1.0;
        } else if agents > 0 && !v.samples.is_empty() {
            let average = v.samples.iter().map(|(_, d)| d).sum::<f64>() / v.samples.len() as f64;
            let mul = average / f64::from(agents);
            // Intensity 0 (the default): the factor is |0 − 1| = 1 going down and 0 + 1 = 1 going up.
            v.level = (v.level * (1.0 + mul)).clamp(1.0, VICIDIAL_MAX_LEVEL);
        }
    }
    let goal = (f64::from(agents) * v.level).floor() as u32;
    goal.saturating_sub(inputs.outstanding() + inputs.agents.busy)
}
