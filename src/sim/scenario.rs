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

use std::path::Path;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use regex::Regex;
use serde::Deserialize;

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
    fn draw(self, rng: &mut StdRng) -> u64 {
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
    /// The rule applies only from this many ms after the switch started (its own time, sped up by `--speed`).
    #[serde(default)]
    from_ms: Option<u64>,
    /// The rule applies only until this many ms after the switch started (an outage window with `from_ms`).
    #[serde(default)]
    until_ms: Option<u64>,
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
    rng: StdRng,
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
        Ok(Scenario {
            rules,
            missing_files,
            sounds: file.sounds.map(|s| s.into_iter().collect()),
            extensions,
            profile: file.default,
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

    /// The extension a transfer to `destination` in `context` runs, if any matches.
    pub fn extension(&self, destination: &str, context: &str) -> Option<&Extension> {
        self.extensions
            .iter()
            .find(|e| e.context == context && e.regex.is_match(destination))
    }

    /// The outcome for a call to `destination` placed as the switch starts.
    pub fn outcome(&mut self, destination: &str) -> Outcome {
        self.outcome_at(destination, 0)
    }

    /// The outcome for a call to `destination` placed `since_start_ms` after the switch started (rules with a
    /// `from_ms`/`until_ms` window apply only within it).
    pub fn outcome_at(&mut self, destination: &str, since_start_ms: u64) -> Outcome {
        let found = self
            .rules
            .iter()
            .find(|r| {
                r.spec.from_ms.is_none_or(|f| since_start_ms >= f)
                    && r.spec.until_ms.is_none_or(|u| since_start_ms < u)
                    && r.regex.is_match(destination)
            })
            .cloned();
        if let Some(rule) = found {
            return self.rule_outcome(&rule.spec, destination);
        }
        if let Some(profile) = self.profile.clone() {
            return self.profile_outcome(&profile);
        }
        builtin_outcome(destination)
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
mod tests {
    use super::*;

    #[test]
    fn builtin_dialplan_every_pattern() {
        assert!(matches!(
            builtin_outcome("answer_2"),
            Outcome::Answer {
                talk_ms: Some(2000),
                early_ms: None,
                ..
            }
        ));
        assert!(matches!(
            builtin_outcome("early_1_answer_3"),
            Outcome::Answer {
                talk_ms: Some(3000),
                early_ms: Some(1000),
                ..
            }
        ));
        assert_eq!(
            builtin_outcome("busy"),
            Outcome::Reject {
                ring_ms: 0,
                cause: "USER_BUSY".into()
            }
        );
        assert_eq!(builtin_outcome("noanswer"), Outcome::Ring { ms: None });
        assert_eq!(builtin_outcome("ring_4"), Outcome::Ring { ms: Some(4000) });
        assert_eq!(
            builtin_outcome("reject_CALL_REJECTED"),
            Outcome::Reject {
                ring_ms: 0,
                cause: "CALL_REJECTED".into()
            }
        );
        assert_eq!(builtin_outcome("nonexistent_999"), Outcome::NoRoute);
        assert_eq!(builtin_outcome("reject_NOT_A_CAUSE"), Outcome::NoRoute);
    }

    #[test]
    fn rules_match_in_order_and_fall_back_to_builtin() {
        let mut s = Scenario::from_toml(
            r#"
            [[rule]]
            match = "^1555"
            ring_ms = 1500
            talk_ms = 20000
            digits = "12#"
            [[rule]]
            match = "^1666"
            answer = false
            hangup_cause = "USER_BUSY"
            ring_ms = 500
            "#,
        )
        .unwrap();
        assert_eq!(
            s.outcome("15551234"),
            Outcome::Answer {
                ring_ms: 1500,
                early_ms: None,
                talk_ms: Some(20000),
                cause: "NORMAL_CLEARING".into(),
                digits: "12#".into(),
                digits_after_ms: None,
            }
        );
        assert_eq!(
            s.outcome("1666"),
            Outcome::Reject {
                ring_ms: 500,
                cause: "USER_BUSY".into()
            }
        );
        assert_eq!(
            s.outcome("busy"),
            Outcome::Reject {
                ring_ms: 0,
                cause: "USER_BUSY".into()
            }
        );
    }

    #[test]
    fn missing_files_name_the_playbacks_that_find_no_file() {
        let s = Scenario::from_toml("missing_files = \"^/nonexistent/\"").unwrap();
        assert!(!s.file_exists("/nonexistent/a.wav", "/snd"));
        assert!(s.file_exists("/snd/ivr/hello.wav", "/snd"));
        assert!(Scenario::builtin().file_exists("/nonexistent/a.wav", "/snd"));
        let e = Scenario::from_toml("missing_files = \"(\"").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("scenario missing_files: invalid regex"),
            "{e}"
        );
    }

    #[test]
    fn a_sounds_list_names_the_files_on_the_switch_and_streams_always_exist() {
        let s = Scenario::from_toml(r#"sounds = ["ivr/welcome.wav", "/abs/confirm.wav"]"#).unwrap();
        assert!(s.file_exists("/snd/ivr/welcome.wav", "/snd/"));
        assert!(s.file_exists("/abs/confirm.wav", "/snd"));
        assert!(!s.file_exists("/snd/ivr/other.wav", "/snd"));
        assert!(!s.file_exists("/abs/welcome.wav", "/snd"));
        assert!(
            !s.file_exists("/snd/ivr/welcome.wav", ""),
            "no prefix, no relative file"
        );
        assert!(s.file_exists("tone_stream://%(100,0,440)", "/snd"));
        assert!(s.file_exists("silence_stream://500", "/snd"));
    }

    #[test]
    fn extensions_match_destination_and_context_and_default_to_the_builtin_ones() {
        let s = Scenario::from_toml(
            r#"
            [[extension]]
            match = "^op(erator)?$"
            actions = [{ app = "answer" }, { app = "park" }]
            [[extension]]
            name = "sales"
            match = "^sales$"
            context = "public"
            actions = [{ app = "hangup", data = "USER_BUSY" }]
            "#,
        )
        .unwrap();
        let op = s.extension("operator", "default").unwrap();
        assert_eq!(op.actions.len(), 2);
        assert_eq!(op.actions[1].app, "park");
        assert!(s.extension("sales", "default").is_none(), "another context");
        assert_eq!(s.extension("sales", "public").unwrap().name, "sales");
        assert!(
            s.extension("park", "default").is_none(),
            "an explicit dialplan replaces the built-in one"
        );
        let b = Scenario::builtin();
        assert!(b.extension("operator", "default").is_some());
        assert!(b.extension("park", "default").is_some());
        assert!(b.extension("nowhere", "default").is_none());
        let e = Scenario::from_toml("[[extension]]\nmatch = \"x\"\nactions = []").unwrap_err();
        assert!(e.to_string().contains("at least one action"), "{e}");
    }

    #[test]
    fn random_profile_reproduces_with_the_same_seed_and_respects_the_rate() {
        let text = r#"
            seed = 7
            [default]
            answer_rate = 0.5
            ring_ms = [100, 900]
            talk_ms = [1000, 2000]
            causes = { USER_BUSY = 1, NO_ANSWER = 1 }
        "#;
        let mut a = Scenario::from_toml(text).unwrap();
        let mut b = Scenario::from_toml(text).unwrap();
        let xs: Vec<_> = (0..200).map(|_| a.outcome("x")).collect();
        let ys: Vec<_> = (0..200).map(|_| b.outcome("x")).collect();
        assert_eq!(xs, ys);
        let answered = xs
            .iter()
            .filter(|o| matches!(o, Outcome::Answer { .. }))
            .count();
        assert!((60..140).contains(&answered), "answered {answered} of 200");
        for o in &xs {
            if let Outcome::Answer {
                ring_ms,
                talk_ms: Some(t),
                ..
            } = o
            {
                assert!((100..=900).contains(ring_ms) && (1000..=2000).contains(t));
            }
        }
    }

    #[test]
    fn bad_files_are_refused_with_the_place() {
        let e = Scenario::from_toml("[[rule]]\nmatch = \"(\"\n").unwrap_err();
        assert!(e.to_string().contains("rule 1"), "{e}");
        let e =
            Scenario::from_toml("[[rule]]\nmatch = \"x\"\nhangup_cause = \"NOPE\"\n").unwrap_err();
        assert!(e.to_string().contains("NOPE"), "{e}");
        let e = Scenario::from_toml("[default]\nanswer_rate = 2.0\n").unwrap_err();
        assert!(e.to_string().contains("answer_rate"), "{e}");
        assert!(Scenario::from_toml("bogus = 1\n").is_err());
    }
}

#[cfg(test)]
mod example_file_tests {
    use super::*;

    #[test]
    fn shipped_example_scenario_loads_and_decides() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/sim/example_scenario.toml"
        ));
        let mut s = Scenario::from_file(path).unwrap();
        assert!(matches!(
            s.outcome("answer_2"),
            Outcome::Answer {
                talk_ms: Some(2000),
                ..
            }
        ));
        assert!(matches!(s.outcome("15551234"), Outcome::Answer { digits, .. } if digits == "1#"));
        assert_eq!(
            s.outcome("1666"),
            Outcome::Reject {
                ring_ms: 2000,
                cause: "USER_BUSY".into()
            }
        );
        assert_eq!(s.outcome("1777"), Outcome::Ring { ms: None });
        let e = Scenario::from_file(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.toml"));
    }

    #[test]
    fn a_rule_with_a_window_applies_only_within_it() {
        let mut s = Scenario::from_toml(
            "[[rule]]\nmatch = \"^x\"\nanswer = false\nhangup_cause = \"GATEWAY_DOWN\"\nfrom_ms = 1000\nuntil_ms = 5000\n\n[[rule]]\nmatch = \"^x\"\ntalk_ms = 1000\n",
        )
        .unwrap();
        let down = Outcome::Reject {
            ring_ms: 0,
            cause: "GATEWAY_DOWN".into(),
        };
        assert!(matches!(s.outcome_at("x1", 999), Outcome::Answer { .. }));
        assert_eq!(s.outcome_at("x1", 1000), down);
        assert_eq!(s.outcome_at("x1", 4999), down);
        assert!(matches!(s.outcome_at("x1", 5000), Outcome::Answer { .. }));
        let e = Scenario::from_toml("[[rule]]\nmatch = \"x\"\nfrom_ms = 5\nuntil_ms = 5\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("from_ms 5 is not before until_ms 5"),
            "{e}"
        );
    }
}
