//! Caller-ID pools (issue 21): the numbers a campaign or a gateway presents to callees, and the one rule that
//! picks the number for a call.
//!
//! A pool is written on a gateway (`caller_id_pool`) or on the campaign (`caller_id_pool`); a call uses its
//! gateway's pool when the gateway has one, the campaign's otherwise. A gateway's older `caller_id_numbers` list is
//! the same as a pool of those numbers, round-robin, without cap.
//!
//! **Selection** ([`CallerIdPool::select`], a pure function of the pool, the callee and the numbers' use today):
//! 1. numbers that reached the pool's `daily_cap` today are out;
//! 2. with `local_presence`, only the numbers whose `prefix` is the longest prefix of the callee's digits stay
//!    (none matching: every number not capped stays, those without a prefix first);
//! 3. `rotation` picks among them: `round_robin` (in turn, a cursor kept per pool in this process), `random`, or
//!    `least_used` (fewest calls today across every node, pool order on ties).
//!
//! The daily use is counted in the store (shared by every node; the UTC day of the store's clock); the engine's
//! shell takes the count for the chosen number before the originate is sent and the store refuses it at the cap
//! (another node may have used the last call), see `store::caller_ids`. A pool whose every number is capped does
//! not place the call: the claim goes back uncounted (`when_capped = "hold"`, the default), or the call is placed
//! with the switch's default caller ID (`when_capped = "switch_default"`).
//!
//! Numbers and prefixes are `+` then 1 to 20 digits (prefixes 1 to 15): nothing else can reach the originate.

use super::error::FieldError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most numbers in one pool.
pub const MAX_POOL_NUMBERS: usize = 1000;

/// One caller ID of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerIdNumber {
    /// The number presented (`origination_caller_id_number`): an optional `+` then 3 to 20 digits.
    pub number: String,
    /// Digits of the callees this number is local to (an area code, a country code and operator code...), used by
    /// `local_presence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// How a pool picks among its eligible numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    #[default]
    RoundRobin,
    Random,
    LeastUsed,
}

/// What happens to a call when every number of its pool reached the daily cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenCapped {
    /// The call is not placed: the claim goes back uncounted and the campaign waits.
    #[default]
    Hold,
    /// The call is placed without `origination_caller_id_number` (the switch's or the trunk's default).
    SwitchDefault,
}

/// A caller-ID pool as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerIdPoolConfig {
    pub numbers: Vec<CallerIdNumber>,
    #[serde(default)]
    pub rotation: Rotation,
    /// Prefer the number whose prefix best matches the callee.
    #[serde(default)]
    pub local_presence: bool,
    /// Most calls per caller ID per UTC day, across every node and campaign; none = no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_cap: Option<u32>,
    #[serde(default)]
    pub when_capped: WhenCapped,
}

/// A validated pool, with its round-robin cursor.
#[derive(Debug)]
pub struct CallerIdPool {
    config: CallerIdPoolConfig,
    cursor: AtomicU64,
}

impl Clone for CallerIdPool {
    fn clone(&self) -> Self {
        CallerIdPool {
            config: self.config.clone(),
            cursor: AtomicU64::new(self.cursor.load(Ordering::Relaxed)),
        }
    }
}

/// What [`CallerIdPool::select`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerIdChoice {
    /// Present this number.
    Number(String),
    /// Every number is capped today and the pool falls back to the switch's default caller ID.
    SwitchDefault,
    /// Every number is capped today: do not place the call.
    Exhausted,
}

fn is_digits(s: &str, min: usize, max: usize) -> bool {
    let d = s.strip_prefix('+').unwrap_or(s);
    (min..=max).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
}

/// The callee's digits as prefixes are compared with them: every ASCII digit of the number, in order (a leading
/// `+`, spaces or dashes do not count).
fn digits_of(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

impl CallerIdPool {
    /// Validates a pool; errors name the field (`numbers[2].prefix: ...`).
    pub fn compile(config: &CallerIdPoolConfig) -> Result<CallerIdPool, Vec<FieldError>> {
        let mut errors = Vec::new();
        if config.numbers.is_empty() {
            errors.push(FieldError::new(
                "numbers",
                "must hold at least one caller ID (leave the pool out for the switch's default)",
            ));
        }
        if config.numbers.len() > MAX_POOL_NUMBERS {
            errors.push(FieldError::new(
                "numbers",
                format!(
                    "{} caller IDs: at most {MAX_POOL_NUMBERS}",
                    config.numbers.len()
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, n) in config.numbers.iter().enumerate() {
            if !is_digits(&n.number, 3, 20) {
                errors.push(FieldError::new(
                    format!("numbers[{i}].number"),
                    format!(
                        "{:?}: a caller ID is an optional + then 3 to 20 digits (nothing else may reach the \
                         originate)",
                        n.number
                    ),
                ));
            } else if !seen.insert(n.number.as_str()) {
                errors.push(FieldError::new(
                    format!("numbers[{i}].number"),
                    format!("{:?} is already in the pool", n.number),
                ));
            }
            if let Some(p) = &n.prefix
                && !is_digits(p, 1, 15)
            {
                errors.push(FieldError::new(
                    format!("numbers[{i}].prefix"),
                    format!("{p:?}: a prefix is an optional + then 1 to 15 digits"),
                ));
            }
        }
        if config.daily_cap == Some(0) {
            errors.push(FieldError::new(
                "daily_cap",
                "must be >= 1 (leave it out for no cap)",
            ));
        }
        if errors.is_empty() {
            Ok(CallerIdPool {
                config: config.clone(),
                cursor: AtomicU64::new(0),
            })
        } else {
            Err(errors)
        }
    }

    /// A pool of numbers in turn, without cap: a gateway's `caller_id_numbers`, which the gateway validated
    /// with its own rule (`gateway::is_dial_safe`, kept for existing campaigns).
    pub fn round_robin(numbers: &[String]) -> CallerIdPool {
        CallerIdPool {
            config: CallerIdPoolConfig {
                numbers: numbers
                    .iter()
                    .map(|n| CallerIdNumber {
                        number: n.clone(),
                        prefix: None,
                    })
                    .collect(),
                rotation: Rotation::RoundRobin,
                local_presence: false,
                daily_cap: None,
                when_capped: WhenCapped::Hold,
            },
            cursor: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &CallerIdPoolConfig {
        &self.config
    }

    pub fn daily_cap(&self) -> Option<u32> {
        self.config.daily_cap
    }

    /// Every number of the pool, in order.
    pub fn numbers(&self) -> impl Iterator<Item = &str> {
        self.config.numbers.iter().map(|n| n.number.as_str())
    }

    /// Picks the caller ID for a call to `callee` (see the module documentation). `used_today` gives each
    /// number's calls today as last known (a missing number counts 0); `random` is any random value (used by
    /// `random` rotation only). Advances the round-robin cursor.
    pub fn select(
        &self,
        callee: &str,
        used_today: &HashMap<String, u32>,
        random: u64,
    ) -> CallerIdChoice {
        let used = |n: &CallerIdNumber| used_today.get(&n.number).copied().unwrap_or(0);
        let open: Vec<&CallerIdNumber> = self
            .config
            .numbers
            .iter()
            .filter(|n| self.config.daily_cap.is_none_or(|cap| used(n) < cap))
            .collect();
        if open.is_empty() {
            return match self.config.when_capped {
                WhenCapped::Hold => CallerIdChoice::Exhausted,
                WhenCapped::SwitchDefault => CallerIdChoice::SwitchDefault,
            };
        }
        let candidates = if self.config.local_presence {
            local_candidates(&open, &digits_of(callee))
        } else {
            open
        };
        let chosen = match self.config.rotation {
            Rotation::RoundRobin => {
                let turn = self.cursor.fetch_add(1, Ordering::Relaxed);
                candidates[(turn % candidates.len() as u64) as usize]
            }
            Rotation::Random => candidates[(random % candidates.len() as u64) as usize],
            Rotation::LeastUsed => candidates
                .iter()
                .copied()
                .min_by_key(|n| used(n))
                .expect("candidates are never empty"),
        };
        CallerIdChoice::Number(chosen.number.clone())
    }
}

/// The numbers whose prefix is the longest that starts the callee's digits; none matching: the numbers without a
/// prefix, or every open number when all have one.
fn local_candidates<'p>(open: &[&'p CallerIdNumber], callee: &str) -> Vec<&'p CallerIdNumber> {
    let matched = |n: &CallerIdNumber| {
        n.prefix
            .as_deref()
            .map(digits_of)
            .filter(|p| callee.starts_with(p.as_str()))
            .map(|p| p.len())
    };
    let best = open.iter().filter_map(|n| matched(n)).max();
    let chosen: Vec<_> = match best {
        Some(len) => open
            .iter()
            .copied()
            .filter(|n| matched(n) == Some(len))
            .collect(),
        None => open
            .iter()
            .copied()
            .filter(|n| n.prefix.is_none())
            .collect(),
    };
    if chosen.is_empty() {
        open.to_vec()
    } else {
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(json: serde_json::Value) -> CallerIdPool {
        CallerIdPool::compile(&serde_json::from_value(json).unwrap()).unwrap()
    }

    fn used(pairs: &[(&str, u32)]) -> HashMap<String, u32> {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    fn kyiv_lviv_pool(extra: serde_json::Value) -> CallerIdPool {
        let mut v = serde_json::json!({"numbers": [
            {"number": "+380441110000", "prefix": "38044"},
            {"number": "+380442220000", "prefix": "38044"},
            {"number": "+380322220000", "prefix": "38032"},
            {"number": "+380500000000", "prefix": "380"},
            {"number": "+12025550100"}
        ], "local_presence": true});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        pool(v)
    }

    fn pick(p: &CallerIdPool, callee: &str, u: &HashMap<String, u32>) -> CallerIdChoice {
        p.select(callee, u, 0)
    }

    fn number(n: &str) -> CallerIdChoice {
        CallerIdChoice::Number(n.into())
    }

    #[test]
    fn local_presence_takes_the_longest_matching_prefix_in_turn() {
        let p = kyiv_lviv_pool(serde_json::json!({}));
        let none = used(&[]);
        assert_eq!(pick(&p, "+380 44 123 4567", &none), number("+380441110000"));
        assert_eq!(pick(&p, "380441234567", &none), number("+380442220000"));
        assert_eq!(pick(&p, "380321234567", &none), number("+380322220000"));
        // Only the country matches: the country-wide number.
        assert_eq!(pick(&p, "380671234567", &none), number("+380500000000"));
        // Nothing matches: the numbers without a prefix.
        assert_eq!(pick(&p, "4930123456", &none), number("+12025550100"));
    }

    #[test]
    fn a_capped_number_gives_way_to_the_next_best_prefix() {
        let p = kyiv_lviv_pool(serde_json::json!({"daily_cap": 10, "rotation": "least_used"}));
        let u = used(&[("+380441110000", 10), ("+380442220000", 4)]);
        assert_eq!(pick(&p, "380441234567", &u), number("+380442220000"));
        let u = used(&[("+380441110000", 10), ("+380442220000", 10)]);
        assert_eq!(pick(&p, "380441234567", &u), number("+380500000000"));
        let all: Vec<(&str, u32)> = p.numbers().map(|n| (n, 10)).collect();
        assert_eq!(
            pick(&p, "380441234567", &used(&all)),
            CallerIdChoice::Exhausted
        );
    }

    #[test]
    fn an_exhausted_pool_falls_back_only_when_configured() {
        let p = pool(
            serde_json::json!({"numbers": [{"number": "1000"}], "daily_cap": 1,
            "when_capped": "switch_default"}),
        );
        assert_eq!(pick(&p, "1", &used(&[("1000", 0)])), number("1000"));
        assert_eq!(
            pick(&p, "1", &used(&[("1000", 1)])),
            CallerIdChoice::SwitchDefault
        );
    }

    #[test]
    fn least_used_takes_the_fewest_calls_and_pool_order_on_ties() {
        let p = pool(serde_json::json!({"rotation": "least_used",
            "numbers": [{"number": "100"}, {"number": "200"}, {"number": "300"}]}));
        assert_eq!(pick(&p, "1", &used(&[])), number("100"));
        assert_eq!(
            pick(&p, "1", &used(&[("100", 3), ("200", 1), ("300", 2)])),
            number("200")
        );
    }

    #[test]
    fn random_rotation_follows_the_random_value_and_round_robin_turns() {
        let p = pool(serde_json::json!({"rotation": "random",
            "numbers": [{"number": "100"}, {"number": "200"}, {"number": "300"}]}));
        assert_eq!(p.select("1", &used(&[]), 7), number("200"));
        assert_eq!(p.select("1", &used(&[]), 9), number("100"));
        let rr = CallerIdPool::round_robin(&["100".into(), "200".into()]);
        let seq: Vec<_> = (0..3).map(|_| pick(&rr, "1", &used(&[]))).collect();
        assert_eq!(seq, vec![number("100"), number("200"), number("100")]);
    }

    #[test]
    fn numbers_that_could_change_the_originate_are_refused_with_their_path() {
        let cfg: CallerIdPoolConfig = serde_json::from_value(serde_json::json!({"numbers": [
            {"number": "1000,origination_uuid=x"}, {"number": "1000}"}, {"number": "+38044", "prefix": "44 1"},
            {"number": "+38044"}], "daily_cap": 0})).unwrap();
        let errors = CallerIdPool::compile(&cfg).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert!(text[0].starts_with("numbers[0].number: "), "{text:?}");
        assert!(text[1].starts_with("numbers[1].number: "), "{text:?}");
        assert!(text[2].starts_with("numbers[2].prefix: "), "{text:?}");
        assert!(text[3].contains("already in the pool"), "{text:?}");
        assert!(text[4].starts_with("daily_cap: "), "{text:?}");
        let empty = CallerIdPoolConfig {
            numbers: vec![],
            rotation: Rotation::Random,
            local_presence: false,
            daily_cap: None,
            when_capped: WhenCapped::Hold,
        };
        assert!(CallerIdPool::compile(&empty).is_err());
    }

    proptest::proptest! {
        /// Whatever a user writes, a number the pool accepts is digits (and a leading `+`): it cannot add a
        /// variable, a leg or an argument to the originate.
        #[test]
        fn an_accepted_caller_id_is_only_digits(number in "[+0-9,{}$' =]{0,24}", prefix in proptest::option::of("\\PC{0,8}")) {
            let cfg = CallerIdPoolConfig {
                numbers: vec![CallerIdNumber { number: number.clone(), prefix }],
                rotation: Rotation::RoundRobin,
                local_presence: true,
                daily_cap: None,
                when_capped: WhenCapped::Hold,
            };
            if CallerIdPool::compile(&cfg).is_ok() {
                let digits = number.strip_prefix('+').unwrap_or(&number);
                proptest::prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
                proptest::prop_assert!(crate::campaign::gateway::is_dial_safe(&number));
            }
        }
    }
}
