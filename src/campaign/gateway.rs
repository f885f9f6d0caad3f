//! Gateways (Webitel: "resources"): how a member's number becomes a FreeSWITCH dial string (SPEC §1).
//!
//! A [`Gateway`] is written by users; [`Gateways::compile`] validates a campaign's list into compiled form (regexes
//! built once, dial string templates split into pieces once), so routing a number on the hot path is one regex
//! match and a string concatenation.
//!
//! Routing picks the **first enabled gateway whose pattern matches** the number, in list order, and substitutes the
//! pattern's captures into the gateway's `dial_string`: `$0` is the whole match, `$1`…`$9` the groups (a group that
//! did not take part in the match is empty; `$` followed by anything but a digit is a literal `$`, so FreeSWITCH's
//! `${var}` passes through; only one digit is read, `$12` is group 1 then `2`).
//!
//! The number is member data and the dial string goes into an `originate` command where it cannot be quoted, so
//! the text substituted from the number may only contain ASCII letters, digits and `+ * # . - _`: a number whose
//! captured text has anything else (space, `,`, `/`, `@`, `{`, `$`, quotes, newline, non-ASCII) is refused with
//! [`RouteError::UnsafeNumber`] instead of being allowed to change the dial string's meaning.
//!
//! Caller ID: a gateway's `caller_id_pool` (rotation, local presence, daily cap: [`super::caller_id`]) is used
//! for its calls; the older `caller_id_numbers` list is a pool of those numbers taken round-robin without cap.

use super::caller_id::{CallerIdPool, CallerIdPoolConfig};
use super::error::{FieldError, FieldErrors};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A gateway as written in a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// Unique within the campaign; letters, digits, `_ . -`.
    pub name: String,
    /// Regex (Rust `regex` syntax) a number must match to go through this gateway.
    pub pattern: String,
    /// Template with `$0`…`$9`: `sofia/gateway/gw1/$1`, `loopback/$1/default`.
    pub dial_string: String,
    /// Max concurrent calls through this gateway; none = only the campaign limit applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Max new calls per second through this gateway; none = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cps: Option<f64>,
    /// Caller ID numbers, one per call, round-robin; empty = FreeSWITCH's default. Shorthand for a
    /// `caller_id_pool` without prefixes or cap (give one or the other).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caller_id_numbers: Vec<String>,
    /// The caller IDs this gateway's calls present (see [`super::caller_id`]); none: the campaign's pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id_pool: Option<CallerIdPoolConfig>,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// Hangup causes that mean the trunk or the switch failed, not the callee: such an attempt is Minus (it
    /// counts no try and ends no number) and counts toward the gateway's circuit breaker. Default:
    /// [`DEFAULT_LOCAL_FAILURE_CAUSES`]. `-ERR` replies naming no hangup cause count as local failures too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_failure_causes: Option<Vec<String>>,
    /// Consecutive local failures that open the gateway's circuit breaker (pause it with back-off, then let one
    /// probe call through). Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_threshold: Option<u32>,
}

/// Causes that, by default, are the trunk's or the switch's fault rather than the callee's (see
/// [`Gateway::local_failure_causes`]).
pub const DEFAULT_LOCAL_FAILURE_CAUSES: &[&str] = &[
    "GATEWAY_DOWN",
    "NETWORK_OUT_OF_ORDER",
    "SERVICE_UNAVAILABLE",
    "CHAN_NOT_IMPLEMENTED",
];

/// Default of [`Gateway::breaker_threshold`].
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 3;

fn enabled_default() -> bool {
    true
}

/// Characters allowed in text that goes unquoted into a dial string or a caller ID.
pub fn is_dial_safe(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+*#.-_".contains(&b))
}

/// One piece of a compiled dial string template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
}

fn parse_template(template: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        let group = match (c, chars.peek()) {
            ('$', Some(d)) => d.to_digit(10),
            _ => None,
        };
        match group {
            Some(n) => {
                chars.next();
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Group(n as usize));
            }
            None => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    pieces
}

/// A validated gateway.
#[derive(Debug, Clone)]
pub struct ValidGateway {
    config: Gateway,
    regex: Regex,
    template: Vec<Piece>,
    /// Shared by the clones of one validated campaign, so the round-robin turn survives them.
    caller_ids: Option<Arc<CallerIdPool>>,
}

/// Why a number could not be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No enabled gateway's pattern matches: the number can never be dialled as the campaign stands.
    #[error("no enabled gateway matches number {number:?}")]
    NoMatch { number: String },
    /// Gateways match, but the caller's `accept` refused every one of them (all busy, paused...): try later.
    #[error("every gateway matching number {number:?} is unavailable")]
    Unavailable { number: String },
    /// The number would put unsafe text into the dial string.
    #[error(
        "number {number:?}: gateway {gateway:?} would put {text:?} into the dial string \
         (only ASCII letters, digits and + * # . - _ are allowed)"
    )]
    UnsafeNumber {
        number: String,
        gateway: String,
        text: String,
    },
}

impl ValidGateway {
    fn compile(g: &Gateway) -> Result<ValidGateway, Vec<FieldError>> {
        let mut errors = Vec::new();
        if g.name.is_empty() {
            errors.push(FieldError::new("name", "must not be empty"));
        } else if !g
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            errors.push(FieldError::new(
                "name",
                format!(
                    "{:?}: only ASCII letters, digits and _ . - are allowed",
                    g.name
                ),
            ));
        }
        let regex = match Regex::new(&g.pattern) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(FieldError::new("pattern", format!("invalid regex: {e}")));
                None
            }
        };
        let template = parse_template(&g.dial_string);
        if g.dial_string.trim().is_empty() {
            errors.push(FieldError::new("dial_string", "must not be empty"));
        } else if g.dial_string.chars().any(char::is_whitespace) {
            errors.push(FieldError::new(
                "dial_string",
                format!(
                    "{:?} contains whitespace, which would split the originate command",
                    g.dial_string
                ),
            ));
        }
        if let Some(re) = &regex {
            let groups = re.captures_len() - 1;
            for piece in &template {
                if let Piece::Group(n) = piece
                    && *n > groups
                {
                    errors.push(FieldError::new(
                        "dial_string",
                        format!("${n} refers to a capture group the pattern does not have (it has {groups})"),
                    ));
                }
            }
        }
        if g.limit == Some(0) {
            errors.push(FieldError::new(
                "limit",
                "must be >= 1 (leave it out for no gateway limit)",
            ));
        }
        if let Some(cps) = g.cps
            && !(cps.is_finite() && cps > 0.0)
        {
            errors.push(FieldError::new(
                "cps",
                format!("must be a number > 0 (leave it out for unlimited), got {cps}"),
            ));
        }
        for (i, cause) in g.local_failure_causes.iter().flatten().enumerate() {
            if !crate::campaign::causes::is_known_cause(cause) {
                errors.push(FieldError::new(
                    format!("local_failure_causes[{i}]"),
                    format!("{cause:?} is not a FreeSWITCH hangup cause"),
                ));
            }
        }
        if g.breaker_threshold == Some(0) {
            errors.push(FieldError::new(
                "breaker_threshold",
                "must be >= 1 (leave it out for the default of 3)",
            ));
        }
        for (i, cid) in g.caller_id_numbers.iter().enumerate() {
            if cid.is_empty() || !is_dial_safe(cid) {
                errors.push(FieldError::new(
                    format!("caller_id_numbers[{i}]"),
                    format!("{cid:?}: must be non-empty ASCII letters, digits and + * # . - _"),
                ));
            }
        }
        let caller_ids = match (&g.caller_id_pool, g.caller_id_numbers.is_empty()) {
            (Some(_), false) => {
                errors.push(FieldError::new(
                    "caller_id_pool",
                    "give caller_id_numbers or caller_id_pool, not both",
                ));
                None
            }
            (Some(pool), true) => CallerIdPool::compile(pool)
                .map_err(|e| errors.extend(e.into_iter().map(|e| e.under("caller_id_pool"))))
                .ok()
                .map(Arc::new),
            (None, false) => Some(Arc::new(CallerIdPool::round_robin(&g.caller_id_numbers))),
            (None, true) => None,
        };
        match regex {
            Some(regex) if errors.is_empty() => Ok(ValidGateway {
                config: g.clone(),
                regex,
                template,
                caller_ids,
            }),
            _ => Err(errors),
        }
    }

    /// The gateway as written.
    pub fn config(&self) -> &Gateway {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn limit(&self) -> Option<u32> {
        self.config.limit
    }

    pub fn cps(&self) -> Option<f64> {
        self.config.cps
    }

    pub fn caller_id_numbers(&self) -> &[String] {
        &self.config.caller_id_numbers
    }

    /// Whether a hangup `cause` means the trunk or the switch failed (see [`Gateway::local_failure_causes`]).
    pub fn is_local_failure(&self, cause: &str) -> bool {
        match &self.config.local_failure_causes {
            Some(list) => list.iter().any(|c| c == cause),
            None => DEFAULT_LOCAL_FAILURE_CAUSES.contains(&cause),
        }
    }

    /// Consecutive local failures that open the circuit breaker.
    pub fn breaker_threshold(&self) -> u32 {
        self.config
            .breaker_threshold
            .unwrap_or(DEFAULT_BREAKER_THRESHOLD)
    }

    /// Whether the pattern matches `number` (enabled or not).
    pub fn matches(&self, number: &str) -> bool {
        self.regex.is_match(number)
    }

    /// The dial string for `number`, `Ok(None)` if the pattern does not match it.
    pub fn dial_string(&self, number: &str) -> Result<Option<String>, RouteError> {
        let Some(caps) = self.regex.captures(number) else {
            return Ok(None);
        };
        let mut out = String::with_capacity(self.config.dial_string.len() + number.len());
        for piece in &self.template {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Group(n) => {
                    let text = caps.get(*n).map_or("", |m| m.as_str());
                    if !is_dial_safe(text) {
                        return Err(RouteError::UnsafeNumber {
                            number: number.to_string(),
                            gateway: self.config.name.clone(),
                            text: text.to_string(),
                        });
                    }
                    out.push_str(text);
                }
            }
        }
        Ok(Some(out))
    }

    /// The gateway's caller-ID pool, if it has one.
    pub fn caller_id_pool(&self) -> Option<&Arc<CallerIdPool>> {
        self.caller_ids.as_ref()
    }
}

/// A number routed through a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    /// Index of the gateway in the campaign's list.
    pub index: usize,
    pub gateway: &'a str,
    pub dial_string: String,
}

/// A campaign's validated gateways, in their configured order.
#[derive(Debug, Clone)]
pub struct Gateways {
    list: Vec<ValidGateway>,
}

impl Gateways {
    /// Validates a campaign's gateway list. Errors have paths relative to the list (`[1].pattern`); the list must
    /// not be empty and names must be unique.
    pub fn compile(list: &[Gateway]) -> Result<Gateways, FieldErrors> {
        let mut errors = Vec::new();
        if list.is_empty() {
            errors.push(FieldError::new(
                "",
                "no gateway: a campaign needs at least one",
            ));
        }
        let mut compiled = Vec::with_capacity(list.len());
        for (i, g) in list.iter().enumerate() {
            if let Some(first) = list[..i].iter().position(|o| o.name == g.name) {
                errors.push(FieldError::new(
                    format!("[{i}].name"),
                    format!("{:?} is already the name of gateways[{first}]", g.name),
                ));
            }
            match ValidGateway::compile(g) {
                Ok(v) => compiled.push(v),
                Err(es) => errors.extend(es.into_iter().map(|e| e.under(&format!("[{i}]")))),
            }
        }
        if errors.is_empty() {
            Ok(Gateways { list: compiled })
        } else {
            Err(FieldErrors(errors))
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&ValidGateway> {
        self.list.get(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ValidGateway> {
        self.list.iter()
    }

    /// Index and gateway named `name`.
    pub fn by_name(&self, name: &str) -> Option<(usize, &ValidGateway)> {
        self.list.iter().enumerate().find(|(_, g)| g.name() == name)
    }

    /// Routes `number` through the first enabled gateway whose pattern matches.
    pub fn route(&self, number: &str) -> Result<Route<'_>, RouteError> {
        self.route_with(number, |_, _| true)
    }

    /// Routes `number` through the first enabled gateway whose pattern matches and that `accept` takes (the engine
    /// passes "has room under its limit and CPS, is not paused"). [`RouteError::NoMatch`] when no enabled gateway
    /// matches at all, [`RouteError::Unavailable`] when some match but `accept` refused them all.
    pub fn route_with(
        &self,
        number: &str,
        mut accept: impl FnMut(usize, &ValidGateway) -> bool,
    ) -> Result<Route<'_>, RouteError> {
        let mut matched = false;
        for (index, g) in self.list.iter().enumerate() {
            if !g.enabled() {
                continue;
            }
            let Some(dial_string) = g.dial_string(number)? else {
                continue;
            };
            matched = true;
            if accept(index, g) {
                return Ok(Route {
                    index,
                    gateway: g.name(),
                    dial_string,
                });
            }
        }
        let number = number.to_string();
        Err(if matched {
            RouteError::Unavailable { number }
        } else {
            RouteError::NoMatch { number }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(name: &str, pattern: &str, dial_string: &str) -> Gateway {
        Gateway {
            name: name.into(),
            pattern: pattern.into(),
            dial_string: dial_string.into(),
            limit: None,
            cps: None,
            caller_id_numbers: vec![],
            caller_id_pool: None,
            enabled: true,
            local_failure_causes: None,
            breaker_threshold: None,
        }
    }

    #[test]
    fn captures_are_substituted_into_the_dial_string() {
        let gws =
            Gateways::compile(&[gw("gw1", r"^\+?380(\d{9})$", "sofia/gateway/gw1/0$1")]).unwrap();
        let r = gws.route("+380501234567").unwrap();
        assert_eq!(r.dial_string, "sofia/gateway/gw1/0501234567");
        assert_eq!((r.index, r.gateway), (0, "gw1"));
    }

    #[test]
    fn whole_match_is_dollar_zero_and_other_dollars_are_literal() {
        let gws = Gateways::compile(&[gw("lb", r"\d+", "{x=${y}}loopback/$0/default$")]).unwrap();
        assert_eq!(
            gws.route("ab123cd").unwrap().dial_string,
            "{x=${y}}loopback/123/default$"
        );
    }

    #[test]
    fn a_group_that_did_not_participate_is_empty() {
        let gws = Gateways::compile(&[gw("g", r"^(\+)?(\d+)$", "sofia/gateway/g/$1$2")]).unwrap();
        assert_eq!(gws.route("123").unwrap().dial_string, "sofia/gateway/g/123");
        assert_eq!(
            gws.route("+123").unwrap().dial_string,
            "sofia/gateway/g/+123"
        );
    }

    #[test]
    fn first_enabled_matching_gateway_wins() {
        let mut off = gw("off", r"^0", "sofia/gateway/off/$0");
        off.enabled = false;
        let gws = Gateways::compile(&[
            off,
            gw("mobile", r"^05", "sofia/gateway/mobile/$0"),
            gw("any", r"^(.*)$", "sofia/gateway/any/$1"),
        ])
        .unwrap();
        assert_eq!(gws.route("0501").unwrap().gateway, "mobile");
        assert_eq!(gws.route("0441").unwrap().gateway, "any");
    }

    #[test]
    fn no_enabled_match_is_no_match_and_refused_matches_are_unavailable() {
        let gws = Gateways::compile(&[gw("a", r"^0", "x/$0"), gw("b", r"^00", "y/$0")]).unwrap();
        assert!(matches!(gws.route("123"), Err(RouteError::NoMatch { .. })));
        let r = gws.route_with("001", |i, _| i == 1).unwrap();
        assert_eq!(r.gateway, "b");
        assert!(matches!(
            gws.route_with("001", |_, _| false),
            Err(RouteError::Unavailable { .. })
        ));
    }

    #[test]
    fn number_text_that_could_inject_into_the_dial_string_is_refused() {
        // `(?s)` so that `.` also matches a newline: the pattern lets everything through.
        let gws = Gateways::compile(&[gw("lb", r"(?s)^(.*)$", "loopback/$1/default")]).unwrap();
        for bad in [
            "1 &park()",
            "1,2",
            "1/evil",
            "1@host",
            "{a=b}1",
            "1\n2",
            "١٢٣",
            "$1",
            "'1'",
        ] {
            let err = gws.route(bad).unwrap_err();
            assert!(
                matches!(err, RouteError::UnsafeNumber { .. }),
                "{bad:?}: {err}"
            );
        }
        assert_eq!(
            gws.route("+1-800.555_12*3#").unwrap().dial_string,
            "loopback/+1-800.555_12*3#/default"
        );
    }

    #[test]
    fn unsafe_text_outside_the_captures_does_not_reach_the_dial_string() {
        let gws = Gateways::compile(&[gw("g", r"(\d+)", "sofia/gateway/g/$1")]).unwrap();
        assert_eq!(
            gws.route("tel: 555").unwrap().dial_string,
            "sofia/gateway/g/555"
        );
    }

    #[test]
    fn invalid_regex_is_refused_with_its_path() {
        let err = Gateways::compile(&[gw("a", "^1", "x/$0"), gw("b", "^(1", "x/$0")])
            .unwrap_err()
            .under("gateways");
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].path, "gateways[1].pattern");
        assert!(
            err.0[0].message.starts_with("invalid regex:"),
            "{}",
            err.0[0].message
        );
    }

    #[test]
    fn every_bad_field_is_reported() {
        let mut g = gw("bad name", r"^(\d)$", "sofia/gateway/x/$2");
        g.limit = Some(0);
        g.cps = Some(f64::NAN);
        g.caller_id_numbers = vec!["380441234567".into(), "1 2".into()];
        let err = Gateways::compile(&[g])
            .unwrap_err()
            .under("gateways")
            .to_string();
        for want in [
            "gateways[0].name:",
            "gateways[0].dial_string: $2 refers to a capture group the pattern does not have (it has 1)",
            "gateways[0].limit: must be >= 1",
            "gateways[0].cps: must be a number > 0",
            "gateways[0].caller_id_numbers[1]:",
        ] {
            assert!(err.contains(want), "missing {want:?} in {err}");
        }
        assert!(!err.contains("caller_id_numbers[0]"), "{err}");
    }

    #[test]
    fn empty_list_and_duplicate_names_are_refused() {
        let err = Gateways::compile(&[]).unwrap_err().under("gateways");
        assert_eq!(
            err.to_string(),
            "gateways: no gateway: a campaign needs at least one"
        );
        let err = Gateways::compile(&[gw("a", "1", "x"), gw("a", "2", "y")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[1].name: \"a\" is already the name of gateways[0]"
        );
    }

    #[test]
    fn whitespace_in_the_dial_string_is_refused() {
        let err = Gateways::compile(&[gw("a", "1", "sofia/gateway/a/$0 &park")]).unwrap_err();
        assert!(err.to_string().starts_with("[0].dial_string:"), "{err}");
    }

    #[test]
    fn caller_ids_are_taken_round_robin() {
        let mut g = gw("a", "^(.*)$", "x/$1");
        g.caller_id_numbers = vec!["100".into(), "200".into(), "300".into()];
        let gws = Gateways::compile(&[g, gw("b", "^(.*)$", "y/$1")]).unwrap();
        let pool = gws.get(0).unwrap().caller_id_pool().unwrap();
        let none = std::collections::HashMap::new();
        let picked: Vec<_> = (0..5).map(|_| pool.select("1", &none, 0)).collect();
        let n = |s: &str| crate::campaign::caller_id::CallerIdChoice::Number(s.into());
        assert_eq!(picked, [n("100"), n("200"), n("300"), n("100"), n("200")]);
        assert!(gws.get(1).unwrap().caller_id_pool().is_none());
    }

    #[test]
    fn a_gateway_pool_is_validated_under_its_path_and_excludes_the_plain_list() {
        let mut g = gw("a", "^(.*)$", "x/$1");
        g.caller_id_pool = Some(
            serde_json::from_value(serde_json::json!({"numbers": [{"number": "1 2"}]})).unwrap(),
        );
        let err = Gateways::compile(&[g.clone()]).unwrap_err().to_string();
        assert!(
            err.contains("[0].caller_id_pool.numbers[0].number: "),
            "{err}"
        );
        g.caller_id_pool = Some(
            serde_json::from_value(serde_json::json!({"numbers": [{"number": "100"}]})).unwrap(),
        );
        g.caller_id_numbers = vec!["200".into()];
        let err = Gateways::compile(&[g]).unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
    }

    #[test]
    fn json_defaults_enabled_and_optional_limits() {
        let g: Gateway = serde_json::from_str(
            r#"{"name":"gw1","pattern":"^(.*)$","dial_string":"sofia/gateway/gw1/$1"}"#,
        )
        .unwrap();
        assert!(g.enabled);
        assert_eq!((g.limit, g.cps), (None, None));
        assert!(
            serde_json::from_str::<Gateway>(
                r#"{"name":"a","pattern":"1","dial_string":"x","limt":3}"#
            )
            .is_err()
        );
    }
}
