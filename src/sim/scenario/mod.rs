//! What the far end does with each call: a TOML scenario file, or the built-in dialplan of the real captures.
//!
//! The built-in dialplan mirrors the one the FreeSWITCH captures in `fixtures/esl/` were made with, matched on the
//! destination number whatever the endpoint: `answer_N` answers and hangs up NORMAL_CLEARING after N s,
//! `early_E_answer_N` gives E s of early media first, `busy` → USER_BUSY, `noanswer` rings until the originate
//! times out, `ring_N` rings N s then NO_ANSWER, `reject_CAUSE` hangs up with CAUSE, anything else →
//! NO_ROUTE_DESTINATION. So one test can run against the simulator and against a real switch.
//!
//! A scenario file replaces it with rules (`[[rule]]`, first regex match on the destination wins) and an optional
//! random `[default]` profile; random draws come from a seeded generator so a run reproduces.
//!
//! ```toml
//! seed = 42
//! [[rule]]
//! match = "^1555"
//! answer = true
//! ring_ms = 2000
//! talk_ms = 30000
//! hangup_cause = "NORMAL_CLEARING"
//! digits = "1#"
//! digits_after_ms = 3000    # pressed 3 s after answering (default: as soon as a prompt has played)
//! missing_files = "^/nonexistent/"  # playback of a matching path answers FILE NOT FOUND
//! [[rule]]                # an outage: only from 0 to 60 s after the switch started (switch time)
//! match = "^1666"
//! answer = false
//! hangup_cause = "GATEWAY_DOWN"
//! until_ms = 60000        # and/or from_ms
//! [default]               # random profile for numbers no rule matches
//! answer_rate = 0.6
//! ring_ms = [1000, 8000]  # uniform range
//! talk_ms = [5000, 120000]
//! causes = { USER_BUSY = 3, NO_ANSWER = 5, CALL_REJECTED = 1 }
//! # The prompt files on the switch, relative to sound_prefix or absolute; tone_stream:// and silence_stream://
//! # always exist. Without a list every file exists (only `missing_files` are missing).
//! sounds = ["ivr/ivr-welcome.wav", "/var/lib/prompts/confirm.wav"]
//! # The dialplan a `transfer` re-runs: first extension whose `match` finds the destination (in `context`,
//! # default "default") runs its actions in order; no match hangs the channel up NO_ROUTE_DESTINATION.
//! # Without any extension the scenario keeps the built-in ones (`park` and `operator`, both park).
//! [[extension]]
//! name = "operator"
//! match = "^operator$"
//! actions = [{ app = "answer" }, { app = "park" }]
//! ```
//!
//! Agent calls. `patience_ms` (a value or a range, in `[[rule]]` and `[default]`): an answered member leg left
//! parked in silence (not bridged, nothing playing) that long is hung up NORMAL_CLEARING by its callee, as a
//! person waiting for an agent would; a member meant for agents also wants `callee_hangs_up = false` (the agent's
//! profile ends the talk). `[[agent]]` tables ([`agents`]) describe operators' phones; each matches the whole dial
//! string (`endpoint/data` without `{vars}`, e.g. `user/1001`, `loopback/agent_1/default`) and is tried before any
//! rule:
//!
//! ```toml
//! [[agent]]
//! match = "^user/10(0[1-9]|10)$"
//! answer_ms = [1000, 3000]      # rings this long, then answers (default 1000); the leg then waits, parked
//! no_answer_prob = 0.05         # rings until originate_timeout / leg_timeout: -ERR NO_ANSWER
//! reject_prob = 0.02            # refuses after answer_ms with reject_cause (default CALL_REJECTED)
//! reject_cause = "USER_BUSY"
//! talk_ms = { median = 30000, sigma = 0.6 }  # once bridged (or a value, or [min, max]; default 30000)
//! hangup_by = "either"          # who hangs up when talk_ms is over: agent (default), customer, either (50/50)
//! dtmf = "1"                    # digits the agent presses for play_and_get_digits
//! ```

mod agents;
mod amd;

use std::path::Path;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use regex::Regex;
use serde::Deserialize;

use agents::{AgentFile, AgentProfile};
pub use agents::{Ender, HangupBy, TalkMillis, TalkPlan};
pub use amd::{AmdVariant, Callee, CalleePlan, Detector, Verdict};

/// What the callee does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No dialplan match: the callee leg hangs up NO_ROUTE_DESTINATION at once.
    NoRoute,
    /// Hangs up with `cause` without answering, after ringing `ring_ms` (0 = at once, no ringing).
    Reject { ring_ms: u64, cause: String },
    /// Rings; `None` = until the originate times out, `Some(ms)` = then NO_ANSWER.
    Ring { ms: Option<u64> },
    /// Answers after `ring_ms` (with `early_ms` of early media first), talks `talk_ms`, then hangs up with
    /// `cause`; `talk_ms = None` means the callee never hangs up (the caller must).
    Answer {
        ring_ms: u64,
        early_ms: Option<u64>,
        talk_ms: Option<u64>,
        cause: String,
        digits: String,
        /// When the callee presses `digits`, in ms after answering; `None`: as soon as a prompt has played.
        digits_after_ms: Option<u64>,
    },
}

/// A scenario file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("scenario rule {index}: invalid regex {pattern:?}: {message}")]
    Regex {
        index: usize,
        pattern: String,
        message: String,
    },
    #[error("scenario {place}: unknown hangup cause {cause:?}")]
    Cause { place: String, cause: String },
    #[error("scenario {place}: {message}")]
    Invalid { place: String, message: String },
}

/// A millisecond duration: a fixed number or a `[min, max]` uniform range.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Millis {
    Fixed(u64),
    Range([u64; 2]),
}

impl Millis {
    pub(super) fn draw(self, rng: &mut StdRng) -> u64 {
        match self {
            Millis::Fixed(v) => v,
            Millis::Range([a, b]) if a >= b => a,
            Millis::Range([a, b]) => rng.random_range(a..=b),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(rename = "match")]
    pattern: String,
    #[serde(default)]
    answer: Option<bool>,
    #[serde(default)]
    ring_ms: Option<Millis>,
    #[serde(default)]
    early_media_ms: Option<Millis>,
    #[serde(default)]
    talk_ms: Option<Millis>,
    /// The callee hangs up after talk_ms (true, default) or waits for the caller (false).
    #[serde(default)]
    callee_hangs_up: Option<bool>,
    #[serde(default)]
    hangup_cause: Option<String>,
    #[serde(default)]
    digits: Option<String>,
    /// When the callee presses `digits`, in ms after answering (default: as soon as a prompt has played).
    #[serde(default)]
    digits_after_ms: Option<u64>,
    /// Rings until the originate timeout (no answer, no reject).
    #[serde(default)]
    ring_forever: Option<bool>,
    /// Use the built-in dialplan for the numbers this rule matches.
    #[serde(default)]
    builtin: Option<bool>,
    /// Answered and left parked in silence this long, the callee hangs up NORMAL_CLEARING.
    #[serde(default)]
    patience_ms: Option<Millis>,
    /// The rule applies only from this many ms after the switch started (its own time, sped up by `--speed`).
    #[serde(default)]
    from_ms: Option<u64>,
    /// The rule applies only until this many ms after the switch started (an outage window with `from_ms`).
    #[serde(default)]
    until_ms: Option<u64>,
    /// Who answers: a person (default) or an answering machine (see [`amd`]).
    #[serde(default)]
    callee: Option<amd::CalleeKind>,
    /// A machine's greeting before its beep, from the answer.
    #[serde(default)]
    greeting_ms: Option<Millis>,
    /// What the detector reports on this rule's calls (HUMAN, MACHINE, NOTSURE), whatever its matrix says.
    #[serde(default)]
    amd_result: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    answer_rate: f64,
    #[serde(default)]
    ring_ms: Option<Millis>,
    #[serde(default)]
    talk_ms: Option<Millis>,
    /// Weights of the causes used when the call is not answered (`NO_ANSWER` rings until timeout).
    #[serde(default)]
    causes: std::collections::BTreeMap<String, u32>,
    #[serde(default)]
    digits: Option<String>,
    /// Answered and left parked in silence this long, the callee hangs up NORMAL_CLEARING.
    #[serde(default)]
    patience_ms: Option<Millis>,
    /// The share of answered calls an answering machine takes (0..=1).
    #[serde(default)]
    machine_rate: Option<f64>,
    /// A machine's greeting before its beep, from the answer.
    #[serde(default)]
    greeting_ms: Option<Millis>,
}

/// One application of an extension.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub app: String,
    #[serde(default)]
    pub data: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "match")]
    pattern: String,
    #[serde(default)]
    context: Option<String>,
    actions: Vec<Action>,
}

/// A dialplan extension: where a transfer to a matching destination goes, and what it does there.
#[derive(Debug, Clone)]
pub struct Extension {
    pub name: String,
    regex: Regex,
    context: String,
    pub actions: Vec<Action>,
}

impl Extension {
    fn parking(name: &str) -> Extension {
        Extension {
            name: name.into(),
            regex: Regex::new(&format!("^{name}$")).expect("a literal name"),
            context: "default".into(),
            actions: vec![Action {
                app: "park".into(),
                data: String::new(),
            }],
        }
    }
}

/// The dialplan of the real captures' switch (`dialplan-demo.xml`) as far as an originated leg can be transferred
/// into it: `park` and the demo's `operator` both park the call.
fn builtin_extensions() -> Vec<Extension> {
    vec![Extension::parking("park"), Extension::parking("operator")]
}

/// Whether a playback path is a generated stream (`tone_stream://…`, `silence_stream://…`), which always exists.
fn is_stream(path: &str) -> bool {
    path.starts_with("tone_stream://") || path.starts_with("silence_stream://")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    seed: Option<u64>,
    /// The files on the switch (relative to `sound_prefix`, or absolute).
    #[serde(default)]
    sounds: Option<Vec<String>>,
    #[serde(default, rename = "extension")]
    extensions: Vec<ExtensionFile>,
    /// Regex of `playback` paths that do not exist (FreeSWITCH answers `FILE NOT FOUND`).
    #[serde(default)]
    missing_files: Option<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
    #[serde(default)]
    default: Option<ProfileFile>,
    #[serde(default, rename = "agent")]
    agents: Vec<AgentFile>,
    /// The simulated mod_amd (see [`amd`]).
    #[serde(default)]
    amd: Option<amd::AmdFile>,
}

#[derive(Debug, Clone)]
struct Rule {
    regex: Regex,
    spec: RuleFile,
}

/// Decides outcomes: a scenario file's rules and random profile, falling back to the built-in dialplan.
#[derive(Debug)]
pub struct Scenario {
    rules: Vec<Rule>,
    missing_files: Option<Regex>,
    sounds: Option<std::collections::HashSet<String>>,
    extensions: Vec<Extension>,
    profile: Option<ProfileFile>,
    agents: Vec<AgentProfile>,
    detector: Detector,
    rng: StdRng,
}

/// Everything a scenario decides for one originated leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub outcome: Outcome,
    /// An agent's leg: how the call ends once it is bridged.
    pub talk: Option<TalkPlan>,
    /// A member's leg: how long, answered and parked in silence, the callee waits before hanging up.
    pub patience_ms: Option<u64>,
    /// Who answers (what `amd` and `avmd` find).
    pub callee: CalleePlan,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario::builtin()
    }
}

impl Scenario {
    /// The built-in dialplan only.
    pub fn builtin() -> Scenario {
        Scenario {
            rules: Vec::new(),
            missing_files: None,
            sounds: None,
            extensions: builtin_extensions(),
            profile: None,
            agents: Vec::new(),
            detector: Detector::default(),
            rng: StdRng::seed_from_u64(0),
        }
    }

    /// Loads a TOML scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::from_toml(&text).map_err(|e| match e {
            ScenarioError::Parse { message, .. } => ScenarioError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses scenario TOML text.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: "(text)".into(),
            message: e.to_string(),
        })?;
        let mut rules = Vec::new();
        for (i, spec) in file.rules.into_iter().enumerate() {
            let regex = Regex::new(&spec.pattern).map_err(|e| ScenarioError::Regex {
                index: i + 1,
                pattern: spec.pattern.clone(),
                message: e.to_string(),
            })?;
            if let Some(c) = &spec.hangup_cause {
                check_cause(&format!("rule {}", i + 1), c)?;
            }
            amd::forced_result(&format!("rule {}", i + 1), spec.amd_result.as_deref())?;
            if let (Some(from), Some(until)) = (spec.from_ms, spec.until_ms)
                && from >= until
            {
                return Err(ScenarioError::Invalid {
                    place: format!("rule {}", i + 1),
                    message: format!("from_ms {from} is not before until_ms {until}"),
                });
            }
            rules.push(Rule { regex, spec });
        }
        if let Some(p) = &file.default {
            if !(0.0..=1.0).contains(&p.answer_rate) {
                return Err(ScenarioError::Invalid {
                    place: "[default]".into(),
                    message: format!("answer_rate {} is not within 0..=1", p.answer_rate),
                });
            }
            for c in p.causes.keys() {
                check_cause("[default].causes", c)?;
            }
            if let Some(rate) = p.machine_rate
                && !(0.0..=1.0).contains(&rate)
            {
                return Err(ScenarioError::Invalid {
                    place: "[default]".into(),
                    message: format!("machine_rate {rate} is not within 0..=1"),
                });
            }
        }
        let missing_files = match &file.missing_files {
            None => None,
            Some(pattern) => Some(Regex::new(pattern).map_err(|e| ScenarioError::Invalid {
                place: "missing_files".into(),
                message: format!("invalid regex {pattern:?}: {e}"),
            })?),
        };
        let mut extensions = Vec::new();
        for (i, e) in file.extensions.into_iter().enumerate() {
            let place = format!("extension {}", i + 1);
            let regex = Regex::new(&e.pattern).map_err(|err| ScenarioError::Invalid {
                place: place.clone(),
                message: format!("invalid regex {:?}: {err}", e.pattern),
            })?;
            if e.actions.is_empty() {
                return Err(ScenarioError::Invalid {
                    place,
                    message: "an extension needs at least one action".into(),
                });
            }
            extensions.push(Extension {
                name: e.name.unwrap_or_else(|| e.pattern.clone()),
                regex,
                context: e.context.unwrap_or_else(|| "default".into()),
                actions: e.actions,
            });
        }
        if extensions.is_empty() {
            extensions = builtin_extensions();
        }
        let agents = file
            .agents
            .into_iter()
            .enumerate()
            .map(|(i, a)| AgentProfile::check(i + 1, a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scenario {
            rules,
            missing_files,
            sounds: file.sounds.map(|s| s.into_iter().collect()),
            extensions,
            profile: file.default,
            agents,
            detector: Detector::from_file(file.amd.unwrap_or_default())?,
            rng: StdRng::seed_from_u64(file.seed.unwrap_or(0)),
        })
    }

    /// Whether a file exists on the switch. A listed relative path is under `sound_prefix`, so
    /// `<sound_prefix>/<listed>` exists too (what `playback` of the relative path opens and what `file_exists`
    /// must be asked).
    pub fn file_exists(&self, path: &str, sound_prefix: &str) -> bool {
        if is_stream(path) {
            return true;
        }
        if self
            .missing_files
            .as_ref()
            .is_some_and(|r| r.is_match(path))
        {
            return false;
        }
        let Some(sounds) = &self.sounds else {
            return true;
        };
        if sounds.contains(path) {
            return true;
        }
        let prefix = sound_prefix.trim_end_matches('/');
        !prefix.is_empty()
            && path
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rel| sounds.contains(rel))
    }

    /// Which mod_amd variant the switch has.
    pub fn amd_variant(&self) -> AmdVariant {
        self.detector.variant
    }

    /// The detector's report on `callee` (see [`amd`]).
    pub fn amd_verdict(&mut self, callee: CalleePlan, total_analysis_ms: u64) -> Verdict {
        self.detector
            .judge(callee, total_analysis_ms, &mut self.rng)
    }

    /// The extension a transfer to `destination` in `context` runs, if any matches.
    pub fn extension(&self, destination: &str, context: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|e| e.context == context && e.regex.is_match(destination))
    }

    /// The outcome for a call to `destination` placed as the switch starts.
    pub fn outcome(&mut self, destination: &str) -> Outcome {
        self.member_plan(destination, 0).outcome
    }

    /// The outcome for a call to `destination` placed `since_start_ms` after the switch started (rules with a
    /// `from_ms`/`until_ms` window apply only within it).
    pub fn outcome_at(&mut self, destination: &str, since_start_ms: u64) -> Outcome {
        self.member_plan(destination, since_start_ms).outcome
    }

    /// What a leg dialled as `endpoint/data` (no variables) to `destination`, placed `since_start_ms` after the
    /// switch started, does: an `[[agent]]` matching the dial string first, then the rules (within their
    /// windows), the random profile and the built-in dialplan on the destination.
    pub fn plan(
        &mut self,
        endpoint: &str,
        data: &str,
        destination: &str,
        since_start_ms: u64,
    ) -> Plan {
        let agent = match self.agents.is_empty() {
            true => None,
            false => {
                let dial = format!("{endpoint}/{data}");
                self.agents.iter().find(|a| a.matches(&dial)).cloned()
            }
        };
        if let Some(agent) = agent {
            let (outcome, talk) = agent.draw(&mut self.rng);
            return Plan {
                outcome,
                talk,
                patience_ms: None,
                callee: CalleePlan::default(),
            };
        }
        self.member_plan(destination, since_start_ms)
    }

    fn member_plan(&mut self, destination: &str, since_start_ms: u64) -> Plan {
        let found = self
            .rules
            .iter()
            .find(|r| {
                r.spec.from_ms.is_none_or(|f| since_start_ms >= f)
                    && r.spec.until_ms.is_none_or(|u| since_start_ms < u)
                    && r.regex.is_match(destination)
            })
            .cloned();
        let mut forced = None;
        let (outcome, patience, callee) = if let Some(rule) = found {
            let callee = (rule.spec.callee, None, rule.spec.greeting_ms);
            forced = amd::forced_result("rule", rule.spec.amd_result.as_deref())
                .ok()
                .flatten();
            (
                self.rule_outcome(&rule.spec, destination),
                rule.spec.patience_ms,
                callee,
            )
        } else if let Some(profile) = self.profile.clone() {
            let callee = (None, profile.machine_rate, profile.greeting_ms);
            (self.profile_outcome(&profile), profile.patience_ms, callee)
        } else {
            (builtin_outcome(destination), None, (None, None, None))
        };
        let (kind, rate, greeting) = callee;
        Plan {
            outcome,
            talk: None,
            patience_ms: patience.map(|p| p.draw(&mut self.rng)),
            callee: CalleePlan {
                callee: amd::draw_callee(kind, rate, greeting, &mut self.rng),
                forced,
            },
        }
    }

    fn rule_outcome(&mut self, r: &RuleFile, destination: &str) -> Outcome {
        if r.builtin == Some(true) {
            return builtin_outcome(destination);
        }
        let ring_ms = r.ring_ms.map(|m| m.draw(&mut self.rng)).unwrap_or(0);
        if r.ring_forever == Some(true) {
            return Outcome::Ring { ms: None };
        }
        if r.answer.unwrap_or(true) {
            let talk = r.talk_ms.map(|m| m.draw(&mut self.rng)).unwrap_or(0);
            Outcome::Answer {
                ring_ms,
                early_ms: r.early_media_ms.map(|m| m.draw(&mut self.rng)),
                talk_ms: if r.callee_hangs_up == Some(false) {
                    None
                } else {
                    Some(talk)
                },
                cause: r
                    .hangup_cause
                    .clone()
                    .unwrap_or_else(|| "NORMAL_CLEARING".into()),
                digits: r.digits.clone().unwrap_or_default(),
                digits_after_ms: r.digits_after_ms,
            }
        } else {
            match r.hangup_cause.as_deref() {
                None | Some("NO_ANSWER") => Outcome::Ring {
                    ms: Some(ring_ms).filter(|m| *m > 0),
                },
                Some(c) => Outcome::Reject {
                    ring_ms,
                    cause: c.to_string(),
                },
            }
        }
    }

    fn profile_outcome(&mut self, p: &ProfileFile) -> Outcome {
        let ring_ms = p.ring_ms.map(|m| m.draw(&mut self.rng)).unwrap_or(1000);
        let answered = self.rng.random_bool(p.answer_rate.clamp(0.0, 1.0));
        if answered {
            return Outcome::Answer {
                ring_ms,
                early_ms: None,
                talk_ms: Some(p.talk_ms.map(|m| m.draw(&mut self.rng)).unwrap_or(10_000)),
                cause: "NORMAL_CLEARING".into(),
                digits: p.digits.clone().unwrap_or_default(),
                digits_after_ms: None,
            };
        }
        let total: u32 = p.causes.values().sum();
        if total == 0 {
            return Outcome::Ring { ms: None };
        }
        let mut pick = self.rng.random_range(0..total);
        for (cause, w) in &p.causes {
            if pick < *w {
                return match cause.as_str() {
                    "NO_ANSWER" => Outcome::Ring { ms: None },
                    "NO_ROUTE_DESTINATION" => Outcome::NoRoute,
                    _ => Outcome::Reject {
                        ring_ms,
                        cause: cause.clone(),
                    },
                };
            }
            pick -= w;
        }
        Outcome::Ring { ms: None }
    }
}

fn check_cause(place: &str, cause: &str) -> Result<(), ScenarioError> {
    if crate::sim::causes::code_of(cause).is_none() {
        return Err(ScenarioError::Cause {
            place: place.into(),
            cause: cause.into(),
        });
    }
    Ok(())
}

/// The dialplan of the real captures, by destination number.
pub fn builtin_outcome(dest: &str) -> Outcome {
    let secs = |s: &str| s.parse::<u64>().ok().map(|n| n * 1000);
    if let Some(n) = dest.strip_prefix("answer_").and_then(secs) {
        return Outcome::Answer {
            ring_ms: 0,
            early_ms: None,
            talk_ms: Some(n),
            cause: "NORMAL_CLEARING".into(),
            digits: String::new(),
            digits_after_ms: None,
        };
    }
    if let Some(rest) = dest.strip_prefix("early_")
        && let Some((e, n)) = rest.split_once("_answer_")
        && let (Some(e), Some(n)) = (secs(e), secs(n))
    {
        return Outcome::Answer {
            ring_ms: 0,
            early_ms: Some(e),
            talk_ms: Some(n),
            cause: "NORMAL_CLEARING".into(),
            digits: String::new(),
            digits_after_ms: None,
        };
    }
    if dest == "busy" {
        return Outcome::Reject {
            ring_ms: 0,
            cause: "USER_BUSY".into(),
        };
    }
    if dest == "noanswer" {
        return Outcome::Ring { ms: None };
    }
    if let Some(n) = dest.strip_prefix("ring_").and_then(secs) {
        return Outcome::Ring { ms: Some(n) };
    }
    if let Some(c) = dest.strip_prefix("reject_")
        && crate::sim::causes::code_of(c).is_some()
    {
        return Outcome::Reject {
            ring_ms: 0,
            cause: c.to_ascii_uppercase(),
        };
    }
    Outcome::NoRoute
}

#[cfg(test)]
mod tests;
