//! Recycle rules by cause (issue 21): `retry_rules: [{causes: [...], after_sec, max}]` in a campaign, each
//! overriding `wait_between_retries_sec` for a result with one of its causes (BUSY again after 5 min, NO_ANSWER
//! after 2 h) and, with `max`, capping the member's counted tries when such a result is counted.
//!
//! This file owns the rule as written and its validation; what a matching result does to a member is decided in
//! `store::outcome` (the first rule listing the cause wins).

use super::error::FieldError;
use serde::{Deserialize, Serialize};

/// Most rules in one campaign.
pub const MAX_RULES: usize = 32;
/// Longest wait a rule may set (30 days).
pub const MAX_AFTER_SEC: u32 = 30 * 24 * 3600;

/// One recycle rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    /// Hangup causes (as classified, e.g. `USER_BUSY`, `NO_ANSWER`) this rule applies to.
    pub causes: Vec<String>,
    /// Wait before the member is called again after such a result (instead of `wait_between_retries_sec`).
    pub after_sec: u32,
    /// At most this many counted tries for a member whose result has one of these causes (at most
    /// `max_tries`); none: `max_tries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

/// Checks a campaign's rules: each names at least one cause, a cause in one rule only, waits within
/// [`MAX_AFTER_SEC`], `max` at least 1; every problem is reported under `retry_rules[i]`.
pub fn check(rules: &[RetryRule]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if rules.len() > MAX_RULES {
        errors.push(FieldError::new(
            "retry_rules",
            format!("{} rules, at most {MAX_RULES}", rules.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let at = |field: &str| format!("retry_rules[{i}].{field}");
        if rule.causes.is_empty() {
            errors.push(FieldError::new(at("causes"), "names no cause"));
        }
        for cause in &rule.causes {
            let valid = !cause.is_empty()
                && cause.len() <= 64
                && cause
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                errors.push(FieldError::new(
                    at("causes"),
                    format!("{cause:?} is not a cause name (A-Z, 0-9, _)"),
                ));
            } else if !seen.insert(cause.as_str()) {
                errors.push(FieldError::new(
                    at("causes"),
                    format!("{cause} is already in an earlier rule"),
                ));
            }
        }
        if rule.after_sec > MAX_AFTER_SEC {
            errors.push(FieldError::new(
                at("after_sec"),
                format!("{} s, at most {MAX_AFTER_SEC}", rule.after_sec),
            ));
        }
        if rule.max == Some(0) {
            errors.push(FieldError::new(at("max"), "must be at least 1"));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(causes: &[&str], after_sec: u32, max: Option<u32>) -> RetryRule {
        RetryRule {
            causes: causes.iter().map(|c| c.to_string()).collect(),
            after_sec,
            max,
        }
    }

    #[test]
    fn bad_rules_are_reported_by_position_and_field() {
        assert!(check(&[rule(&["USER_BUSY"], 300, Some(3))]).is_empty());
        let errors = check(&[
            rule(&["USER_BUSY"], 300, None),
            rule(&[], 10, Some(0)),
            rule(&["user busy", "USER_BUSY"], MAX_AFTER_SEC + 1, None),
        ]);
        let fields: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let joined = fields.join("\n");
        for expected in [
            "retry_rules[1].causes",
            "retry_rules[1].max",
            "retry_rules[2].causes",
            "retry_rules[2].after_sec",
            "already in an earlier rule",
        ] {
            assert!(joined.contains(expected), "{expected} missing in {joined}");
        }
    }

    #[test]
    fn a_campaign_reads_its_rules_and_refuses_bad_ones_and_unknown_fields() {
        use crate::campaign::config::CampaignConfig;
        let campaign = |rules: serde_json::Value| {
            CampaignConfig::from_json_value(serde_json::json!({
                "id": "c1", "name": "Rules",
                "calendar": {"timezone": "UTC", "accept": [{"weekday": 1, "start_min": 0, "end_min": 60}]},
                "gateways": [{"name": "gw1", "pattern": "^(\\d+)$", "dial_string": "sofia/gateway/gw1/$1"}],
                "retry_rules": rules
            }))
        };
        let ok = campaign(serde_json::json!([
            {"causes": ["USER_BUSY"], "after_sec": 300},
            {"causes": ["NO_ANSWER"], "after_sec": 7200, "max": 3}
        ]))
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(ok.config().retry_rules[1].max, Some(3));
        let bad = campaign(serde_json::json!([{"causes": [], "after_sec": 1}]))
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(bad.to_string().contains("retry_rules[0].causes"), "{bad}");
        let unknown = campaign(serde_json::json!([{"causes": ["X"], "after": 1}])).unwrap_err();
        assert!(unknown.to_string().contains("after"), "{unknown}");
    }
}
