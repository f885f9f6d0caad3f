//! Agent endpoints of a scenario (`[[agent]]`): the live operators a dialer connects answered calls to.
//!
//! An agent profile matches the whole dial string of an originated leg (endpoint and data without the `{vars}`,
//! e.g. `user/1001`, `loopback/agent_1/default`), before any `[[rule]]`. Its leg rings `answer_ms`, then answers,
//! unless a draw makes it ring until the originate's timeout (`no_answer_prob`: NO_ANSWER) or refuse after ringing
//! (`reject_prob`: `reject_cause`). Answered, it waits (parked) until bridged; once bridged it talks `talk_ms`,
//! then `hangup_by` ends the call: the agent's side or the customer's side hangs up NORMAL_CLEARING (`either`: a
//! fair draw). Every draw comes from the scenario's seeded generator, in a fixed order per leg, so a run
//! reproduces.

use rand::RngExt;
use rand::rngs::StdRng;
use rand_distr::{Distribution, LogNormal};
use regex::Regex;
use serde::Deserialize;

use super::{Millis, Outcome, ScenarioError, check_cause};

/// How long a bridged agent call lasts: a fixed number, a `[min, max]` range or a log-normal distribution given by
/// its median and sigma (the shape talk times have in call centres).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum TalkMillis {
    Fixed(u64),
    Range([u64; 2]),
    LogNormal { median: f64, sigma: f64 },
}

/// Which side of a bridged agent call hangs up when the talk time is over.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HangupBy {
    #[default]
    Agent,
    Customer,
    Either,
}

/// The side a draw picked to end a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ender {
    Agent,
    Customer,
}

/// What happens once an agent's answered leg is bridged: after `talk_ms`, `ender`'s far end hangs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkPlan {
    pub talk_ms: u64,
    pub ender: Ender,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentFile {
    #[serde(rename = "match")]
    pattern: String,
    #[serde(default)]
    answer_ms: Option<Millis>,
    #[serde(default)]
    no_answer_prob: Option<f64>,
    #[serde(default)]
    reject_prob: Option<f64>,
    #[serde(default)]
    reject_cause: Option<String>,
    #[serde(default)]
    talk_ms: Option<TalkMillis>,
    #[serde(default)]
    hangup_by: HangupBy,
    #[serde(default)]
    dtmf: Option<String>,
}

/// A checked `[[agent]]` table.
#[derive(Debug, Clone)]
pub(super) struct AgentProfile {
    regex: Regex,
    answer_ms: Millis,
    no_answer_prob: f64,
    reject_prob: f64,
    reject_cause: String,
    talk: TalkMillis,
    hangup_by: HangupBy,
    dtmf: String,
}

/// Default ring time of an agent's phone before it answers.
const DEFAULT_ANSWER_MS: u64 = 1000;
/// Default talk time of a bridged agent call.
const DEFAULT_TALK_MS: u64 = 30_000;

impl AgentProfile {
    /// Checks one `[[agent]]` table (`index` counts from 1, for the error).
    pub(super) fn check(index: usize, f: AgentFile) -> Result<AgentProfile, ScenarioError> {
        let place = format!("agent {index}");
        let invalid = |message: String| ScenarioError::Invalid {
            place: place.clone(),
            message,
        };
        let regex = Regex::new(&f.pattern)
            .map_err(|e| invalid(format!("invalid regex {:?}: {e}", f.pattern)))?;
        let no_answer_prob = f.no_answer_prob.unwrap_or(0.0);
        let reject_prob = f.reject_prob.unwrap_or(0.0);
        for (name, p) in [
            ("no_answer_prob", no_answer_prob),
            ("reject_prob", reject_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(format!("{name} {p} is not within 0..=1")));
            }
        }
        if no_answer_prob + reject_prob > 1.0 {
            return Err(invalid(format!(
                "no_answer_prob + reject_prob = {} is more than 1",
                no_answer_prob + reject_prob
            )));
        }
        let reject_cause = f.reject_cause.unwrap_or_else(|| "CALL_REJECTED".into());
        check_cause(&place, &reject_cause)?;
        let talk = f.talk_ms.unwrap_or(TalkMillis::Fixed(DEFAULT_TALK_MS));
        if let TalkMillis::LogNormal { median, sigma } = talk
            && (median.is_nan() || median <= 0.0 || sigma.is_nan() || sigma < 0.0)
        {
            return Err(invalid(format!(
                "talk_ms log-normal needs median > 0 and sigma >= 0 (got median {median}, sigma {sigma})"
            )));
        }
        Ok(AgentProfile {
            regex,
            answer_ms: f.answer_ms.unwrap_or(Millis::Fixed(DEFAULT_ANSWER_MS)),
            no_answer_prob,
            reject_prob,
            reject_cause,
            talk,
            hangup_by: f.hangup_by,
            dtmf: f.dtmf.unwrap_or_default(),
        })
    }

    pub(super) fn matches(&self, dial: &str) -> bool {
        self.regex.is_match(dial)
    }

    /// Draws one leg's fate: the outcome, and for an answering agent how the talk ends once bridged.
    pub(super) fn draw(&self, rng: &mut StdRng) -> (Outcome, Option<TalkPlan>) {
        let fate: f64 = rng.random();
        let ring_ms = self.answer_ms.draw(rng);
        if fate < self.no_answer_prob {
            return (Outcome::Ring { ms: None }, None);
        }
        if fate < self.no_answer_prob + self.reject_prob {
            let cause = self.reject_cause.clone();
            return (Outcome::Reject { ring_ms, cause }, None);
        }
        let talk_ms = draw_talk(self.talk, rng);
        let ender = match self.hangup_by {
            HangupBy::Agent => Ender::Agent,
            HangupBy::Customer => Ender::Customer,
            HangupBy::Either if rng.random_bool(0.5) => Ender::Agent,
            HangupBy::Either => Ender::Customer,
        };
        let outcome = Outcome::Answer {
            ring_ms,
            early_ms: None,
            talk_ms: None,
            cause: "NORMAL_CLEARING".into(),
            digits: self.dtmf.clone(),
            digits_after_ms: None,
        };
        (outcome, Some(TalkPlan { talk_ms, ender }))
    }
}

fn draw_talk(talk: TalkMillis, rng: &mut StdRng) -> u64 {
    match talk {
        TalkMillis::Fixed(v) => v,
        TalkMillis::Range(r) => Millis::Range(r).draw(rng),
        TalkMillis::LogNormal { median, sigma } => match LogNormal::new(median.ln(), sigma) {
            // Checked at load (median > 0, sigma >= 0): the distribution always exists.
            Ok(d) => d.sample(rng).round().min(u64::MAX as f64) as u64,
            Err(_) => median as u64,
        },
    }
}
