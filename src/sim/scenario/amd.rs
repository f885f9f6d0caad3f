//! Who answers, for answering-machine detection: per rule `callee = "human" | "machine"` (a machine with
//! `greeting_ms` of greeting, then its beep), `machine_rate` in `[default]`, and the scenario's `[amd]` table —
//! which mod_amd variant the switch has, the detector's confusion matrix and its decision delays by cause.
//!
//! ```toml
//! [amd]
//! module = "mod_amd_nonblocking"   # or "mod_amd" (the default): which variant the `amd` application is
//! # What the detector reports, by who really answered (weights; default: always right).
//! human = { HUMAN = 85, NOTSURE = 10, MACHINE = 5 }
//! machine = { MACHINE = 80, NOTSURE = 10, HUMAN = 10 }
//! # When it reports, by amd_cause, in ms after `amd` starts (a value or a range; defaults below). A delay past the
//! # `total_analysis_time` argument gives NOTSURE / TOOLONG at that time, as mod_amd does.
//! delays_ms = { LONGGREETING = [1500, 2500], SILENCEAFTERGREETING = [1000, 2200] }
//! [[rule]]
//! match = "^vm_"
//! callee = "machine"
//! greeting_ms = [3000, 6000]   # the beep comes this long after the answer (default 4000)
//! talk_ms = 40000              # the machine records this long after answering, then hangs up
//! [[rule]]
//! match = "^unsure_"
//! amd_result = "NOTSURE"       # what the detector reports on this rule's calls, whatever the matrix says
//! ```
//!
//! Causes: HUMAN reports `HUMAN` (blocking variant) or `SILENCEAFTERGREETING` (non-blocking); MACHINE reports
//! `LONGGREETING` for a machine and `MAXWORDS` for a talkative person; NOTSURE reports `TOOLONG`.

use std::collections::BTreeMap;

use rand::RngExt;
use rand::rngs::StdRng;
use serde::Deserialize;

use super::{Millis, ScenarioError};

/// Which mod_amd variant the simulated switch has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmdVariant {
    /// The blocking `amd` application.
    #[default]
    ModAmd,
    /// The media-bug `amd`: returns at once, fires `CUSTOM amd::info`.
    ModAmdNonblocking,
}

/// Who answers a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Callee {
    #[default]
    Human,
    /// An answering machine: its beep comes `greeting_ms` after the answer.
    Machine { greeting_ms: u64 },
}

/// What the detector makes of one call's callee: who it is, and a report a rule forces (`amd_result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CalleePlan {
    pub callee: Callee,
    pub forced: Option<&'static str>,
}

/// A rule's `callee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalleeKind {
    Human,
    Machine,
}

/// Default greeting of a machine before its beep.
pub const DEFAULT_GREETING_MS: u64 = 4000;

/// The `[amd]` table as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmdFile {
    #[serde(default)]
    module: AmdVariant,
    #[serde(default)]
    human: BTreeMap<String, u32>,
    #[serde(default)]
    machine: BTreeMap<String, u32>,
    #[serde(default)]
    delays_ms: BTreeMap<String, Millis>,
}

/// The simulated detector (by default always right, with the default delays).
#[derive(Debug, Clone)]
pub struct Detector {
    pub variant: AmdVariant,
    human: Vec<(&'static str, u32)>,
    machine: Vec<(&'static str, u32)>,
    delays: BTreeMap<String, Millis>,
}

/// What the detector reports on one call, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub result: &'static str,
    pub cause: &'static str,
    pub after_ms: u64,
}

const RESULTS: [&str; 3] = ["HUMAN", "MACHINE", "NOTSURE"];
const CAUSES: [&str; 7] = [
    "HUMAN",
    "SILENCEAFTERGREETING",
    "INITIALSILENCE",
    "MAXWORDLENGTH",
    "MAXWORDS",
    "LONGGREETING",
    "TOOLONG",
];

fn default_delay(cause: &str) -> Millis {
    match cause {
        "HUMAN" | "SILENCEAFTERGREETING" => Millis::Range([1000, 2200]),
        "LONGGREETING" => Millis::Range([1600, 2600]),
        "MAXWORDS" => Millis::Range([2000, 3500]),
        "INITIALSILENCE" => Millis::Fixed(2500),
        _ => Millis::Fixed(5000),
    }
}

fn matrix(
    place: &str,
    weights: &BTreeMap<String, u32>,
    right: &'static str,
) -> Result<Vec<(&'static str, u32)>, ScenarioError> {
    if weights.is_empty() {
        return Ok(vec![(right, 1)]);
    }
    let mut out = Vec::new();
    for (k, w) in weights {
        let Some(r) = RESULTS.iter().find(|r| **r == k.as_str()) else {
            return Err(ScenarioError::Invalid {
                place: place.into(),
                message: format!("unknown AMD result {k:?} (HUMAN, MACHINE or NOTSURE)"),
            });
        };
        out.push((*r, *w));
    }
    if out.iter().all(|(_, w)| *w == 0) {
        return Err(ScenarioError::Invalid {
            place: place.into(),
            message: "every weight is 0".into(),
        });
    }
    Ok(out)
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            variant: AmdVariant::default(),
            human: vec![("HUMAN", 1)],
            machine: vec![("MACHINE", 1)],
            delays: BTreeMap::new(),
        }
    }
}

impl Detector {
    pub fn from_file(file: AmdFile) -> Result<Detector, ScenarioError> {
        for k in file.delays_ms.keys() {
            if !CAUSES.contains(&k.as_str()) {
                return Err(ScenarioError::Invalid {
                    place: "[amd].delays_ms".into(),
                    message: format!("unknown amd_cause {k:?} (one of {})", CAUSES.join(", ")),
                });
            }
        }
        Ok(Detector {
            variant: file.module,
            human: matrix("[amd].human", &file.human, "HUMAN")?,
            machine: matrix("[amd].machine", &file.machine, "MACHINE")?,
            delays: file.delays_ms,
        })
    }

    /// Draws the detector's report on `plan`'s callee, within `total_analysis_ms` (the `amd` argument, mod_amd's
    /// 5000 by default).
    pub fn judge(&self, plan: CalleePlan, total_analysis_ms: u64, rng: &mut StdRng) -> Verdict {
        let callee = plan.callee;
        let row = match callee {
            Callee::Human => &self.human,
            Callee::Machine { .. } => &self.machine,
        };
        let total: u32 = row.iter().map(|(_, w)| *w).sum();
        let mut pick = rng.random_range(0..total.max(1));
        let mut result = match callee {
            Callee::Human => "HUMAN",
            Callee::Machine { .. } => "MACHINE",
        };
        for (r, w) in row {
            if pick < *w {
                result = r;
                break;
            }
            pick -= w;
        }
        if let Some(forced) = plan.forced {
            result = forced;
        }
        let cause = match (result, callee, self.variant) {
            ("HUMAN", _, AmdVariant::ModAmd) => "HUMAN",
            ("HUMAN", _, AmdVariant::ModAmdNonblocking) => "SILENCEAFTERGREETING",
            ("MACHINE", Callee::Machine { .. }, _) => "LONGGREETING",
            ("MACHINE", Callee::Human, _) => "MAXWORDS",
            _ => "TOOLONG",
        };
        let delay = self
            .delays
            .get(cause)
            .copied()
            .unwrap_or_else(|| default_delay(cause))
            .draw(rng);
        if delay > total_analysis_ms || cause == "TOOLONG" {
            return Verdict {
                result: "NOTSURE",
                cause: "TOOLONG",
                after_ms: total_analysis_ms,
            };
        }
        Verdict {
            result,
            cause,
            after_ms: delay,
        }
    }
}

/// A rule's `amd_result`, checked.
pub(super) fn forced_result(
    place: &str,
    text: Option<&str>,
) -> Result<Option<&'static str>, ScenarioError> {
    let Some(text) = text else {
        return Ok(None);
    };
    RESULTS
        .iter()
        .find(|r| **r == text)
        .map(|r| Some(*r))
        .ok_or_else(|| ScenarioError::Invalid {
            place: place.into(),
            message: format!("amd_result {text:?} is not HUMAN, MACHINE or NOTSURE"),
        })
}

/// The callee a rule or profile gives a call.
pub(super) fn draw_callee(
    kind: Option<CalleeKind>,
    machine_rate: Option<f64>,
    greeting_ms: Option<Millis>,
    rng: &mut StdRng,
) -> Callee {
    let machine = match (kind, machine_rate) {
        (Some(k), _) => k == CalleeKind::Machine,
        (None, Some(rate)) => rng.random_bool(rate.clamp(0.0, 1.0)),
        (None, None) => false,
    };
    if !machine {
        return Callee::Human;
    }
    Callee::Machine {
        greeting_ms: greeting_ms.map_or(DEFAULT_GREETING_MS, |g| g.draw(rng)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_default_detector_is_always_right_and_the_variant_names_the_human_cause() {
        let mut rng = StdRng::seed_from_u64(1);
        let built_in = Detector::default();
        assert_eq!(
            built_in.judge(CalleePlan::default(), 5000, &mut rng).result,
            "HUMAN"
        );
        let d = Detector::from_file(AmdFile::default()).unwrap();
        let human = CalleePlan::default();
        let v = d.judge(human, 5000, &mut rng);
        assert_eq!((v.result, v.cause), ("HUMAN", "HUMAN"));
        assert!((1000..=2200).contains(&v.after_ms));
        let machine = CalleePlan {
            callee: Callee::Machine { greeting_ms: 4000 },
            forced: None,
        };
        let v = d.judge(machine, 5000, &mut rng);
        assert_eq!((v.result, v.cause), ("MACHINE", "LONGGREETING"));
        let forced = CalleePlan {
            forced: Some("NOTSURE"),
            ..human
        };
        assert_eq!(d.judge(forced, 5000, &mut rng).cause, "TOOLONG");
        let file: AmdFile = toml::from_str("module = \"mod_amd_nonblocking\"").unwrap();
        let d = Detector::from_file(file).unwrap();
        assert_eq!(d.judge(human, 5000, &mut rng).cause, "SILENCEAFTERGREETING");
    }

    #[test]
    fn the_confusion_matrix_makes_mistakes_in_proportion_and_slow_decisions_are_toolong() {
        let file: AmdFile =
            toml::from_str("human = { HUMAN = 3, MACHINE = 1 }\ndelays_ms = { HUMAN = 9000 }")
                .unwrap();
        let d = Detector::from_file(file).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = BTreeMap::new();
        for _ in 0..4000 {
            *counts
                .entry(d.judge(CalleePlan::default(), 5000, &mut rng).result)
                .or_insert(0) += 1;
        }
        // HUMAN takes 9 s > 5 s of analysis: NOTSURE/TOOLONG; MACHINE (MAXWORDS) about a quarter.
        assert!((800..1200).contains(&counts["MACHINE"]), "{counts:?}");
        assert!((2800..3200).contains(&counts["NOTSURE"]), "{counts:?}");
        assert!(!counts.contains_key("HUMAN"));
    }

    #[test]
    fn unknown_results_and_causes_are_refused() {
        let bad: AmdFile = toml::from_str("human = { PERSON = 1 }").unwrap();
        assert!(
            Detector::from_file(bad)
                .unwrap_err()
                .to_string()
                .contains("PERSON")
        );
        let bad: AmdFile = toml::from_str("delays_ms = { SLOW = 1 }").unwrap();
        assert!(
            Detector::from_file(bad)
                .unwrap_err()
                .to_string()
                .contains("SLOW")
        );
        assert!(toml::from_str::<AmdFile>("module = \"mod_vmd\"").is_err());
    }
}
