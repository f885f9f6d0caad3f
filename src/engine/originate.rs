//! Building the `originate` command for one attempt, so that member data can never change its meaning.
//!
//! FreeSWITCH 1.10 parses `{name=value,...}` with quirks (measured on a real switch, see
//! `fixtures/esl/README.md`, and reproduced by the simulator's port of its parser, which
//! `tests/originate_escaping.rs` uses as the judge): a comma splits even inside quotes unless escaped as `\,`; a
//! space splits the whole api argument list unless the value is single-quoted; quote handling spans the whole
//! block and strips quote pairs again after unescaping; a backslash is eaten before some characters; `{`/`}`
//! anywhere break the originate; a `${...}` value is refused; `:_:` splits enterprise branches; a newline ends the
//! command; leading and trailing spaces are trimmed; an empty value unsets the variable.
//!
//! So every value goes one of three ways, recorded per variable in [`Originate::vars`]:
//! - **sent** as is, with `,` escaped as `\,` and, when it holds a space or tab, wrapped in `'…'`;
//! - **url-encoded**: a value that FreeSWITCH cannot carry (braces, `${`, control characters other than tab,
//!   leading/trailing white space, a `'`, `:_:`, a backslash) is sent percent-encoded
//!   (RFC 3986 unreserved characters stay), and its name is listed in the channel variable
//!   `dlr_urlencoded_vars` (`;`-separated) so a dialplan can decode it with `${url_decode(${name})}`. FreeSWITCH
//!   never decodes `%XX` in originate variables, so the encoded text arrives exactly as sent. The callflow,
//!   which fsdialer substitutes itself, always sees the original value;
//! - **omitted**: an empty value (FreeSWITCH would unset the variable anyway), a name that is not a plain
//!   identifier, or a name reserved for the dialer or able to make FreeSWITCH execute something
//!   (`execute_on_*`, `api_on_*`, hooks…) when it comes from member data.
//!
//! The builder writes variables in a fixed order: the dialer's own first (`origination_uuid`, timeouts, caller id,
//! `dlr_*`), then campaign variables, then member variables; reserved names cannot be overridden by later ones.

use std::fmt::Write as _;
use uuid::Uuid;

/// How one variable went into the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarDisposition {
    /// Sent with its value unchanged (escaped only for the parser).
    Sent,
    /// Sent percent-encoded; listed in `dlr_urlencoded_vars`.
    UrlEncoded,
    /// Not sent, with the reason.
    Omitted(&'static str),
}

/// Where a variable came from; member data is trusted least.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarSource {
    Dialer,
    Campaign,
    Member,
}

/// Input for one originate.
#[derive(Debug, Clone)]
pub struct OriginateSpec<'a> {
    pub attempt_id: Uuid,
    /// Dial string from the gateway (`sofia/gateway/gw1/380441234567`); the gateway guarantees it has no spaces,
    /// braces or line breaks.
    pub dial_string: &'a str,
    pub originate_timeout_sec: u32,
    pub caller_id_number: Option<&'a str>,
    pub campaign_id: &'a str,
    pub member_id: &'a str,
    pub attempt_no: u32,
    pub campaign_vars: &'a [(String, String)],
    pub member_vars: &'a [(String, String)],
    /// What runs when the call is answered: `&park()` lets the engine drive the callflow over ESL.
    pub application: &'a str,
}

/// A built originate: the api argument string and what happened to each variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// `{…}dial_string &park()`: the argument of `originate` (send as `bgapi originate <args>`).
    pub args: String,
    /// Every variable considered, in order: (name, source, disposition). Values are not repeated here.
    pub vars: Vec<(String, VarSource, VarDisposition)>,
}

impl Originate {
    /// Names of the variables that were url-encoded.
    pub fn url_encoded(&self) -> impl Iterator<Item = &str> {
        self.vars
            .iter()
            .filter(|(_, _, d)| *d == VarDisposition::UrlEncoded)
            .map(|(n, _, _)| n.as_str())
    }
}

/// Names only the dialer sets.
const RESERVED: &[&str] = &[
    "origination_uuid",
    "originate_timeout",
    "ignore_early_media",
    "origination_caller_id_number",
    "dlr_urlencoded_vars",
];

/// Name prefixes member data may not set: the dialer's own, and those that make FreeSWITCH run applications or
/// APIs, or redirect the call.
const MEMBER_DENIED_PREFIXES: &[&str] = &[
    "dlr_",
    "origination_",
    "originate_",
    "execute_",
    "exec_",
    "api_",
    "session_in_hangup_hook",
    "bridge_pre_execute",
    "transfer_",
    "hangup_after",
    "park_after",
    "continue_on_fail",
    "failure_causes",
    "nolocal",
];

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && name.len() <= 128
}

/// Whether FreeSWITCH 1.10 can carry this value through `{…}` with the escaping below.
fn carriable(value: &str) -> bool {
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return false;
    }
    // `:_:` splits the dial string into enterprise branches before `{…}` is read.
    if value.contains(['{', '}']) || value.contains("${") || value.contains(":_:") {
        return false;
    }
    // FreeSWITCH's quote handling spans the whole `{…}` block and strips quote pairs again after unescaping
    // (`'\'a\''` gives `a`; two variables each holding an escaped quote corrupt each other): no `'` is sent raw.
    if value.contains('\'') {
        return false;
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return false;
    }
    // FreeSWITCH's unescaping eats a backslash before some characters and keeps it before others.
    if value.contains('\\') {
        return false;
    }
    true
}

fn push_escaped(out: &mut String, value: &str) {
    let quote = value.contains([' ', '\t']);
    if quote {
        out.push('\'');
    }
    for c in value.chars() {
        match c {
            ',' => out.push_str("\\,"),
            c => out.push(c),
        }
    }
    if quote {
        out.push('\'');
    }
}

fn push_url_encoded(out: &mut String, value: &str) {
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Builds the originate arguments for one attempt.
pub fn build(spec: &OriginateSpec<'_>) -> Originate {
    build_tagged(spec, None)
}

/// [`build`], tagging the channel with `dlr_node=<node>` (after `dlr_attempt`) so that the node's ESL filter
/// (`engine::subscription`) lets its events through; loopback b-legs inherit it.
pub fn build_on_node(spec: &OriginateSpec<'_>, node: &str) -> Originate {
    build_tagged(spec, Some(node))
}

fn build_tagged(spec: &OriginateSpec<'_>, node: Option<&str>) -> Originate {
    let mut vars: Vec<(String, VarSource, VarDisposition)> = Vec::new();
    let mut body = String::with_capacity(256);
    let mut encoded_names: Vec<&str> = Vec::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();

    let timeout = spec.originate_timeout_sec.to_string();
    let attempt_no = spec.attempt_no.to_string();
    let attempt_id = spec.attempt_id.to_string();
    let mut all: Vec<(&str, &str, VarSource)> = vec![
        ("origination_uuid", &attempt_id, VarSource::Dialer),
        ("originate_timeout", &timeout, VarSource::Dialer),
        ("ignore_early_media", "true", VarSource::Dialer),
    ];
    if let Some(cid) = spec.caller_id_number {
        all.push(("origination_caller_id_number", cid, VarSource::Dialer));
    }
    all.push(("dlr_campaign_id", spec.campaign_id, VarSource::Dialer));
    all.push(("dlr_member_id", spec.member_id, VarSource::Dialer));
    all.push(("dlr_attempt", &attempt_no, VarSource::Dialer));
    if let Some(node) = node {
        all.push(("dlr_node", node, VarSource::Dialer));
    }
    for (n, v) in spec.campaign_vars {
        all.push((n, v, VarSource::Campaign));
    }
    for (n, v) in spec.member_vars {
        all.push((n, v, VarSource::Member));
    }

    for (name, value, source) in all {
        let disposition = if !valid_name(name) {
            VarDisposition::Omitted("name is not a plain identifier")
        } else if source != VarSource::Dialer
            && (RESERVED.contains(&name) || name.starts_with("dlr_"))
        {
            VarDisposition::Omitted("reserved for the dialer")
        } else if source == VarSource::Member
            && MEMBER_DENIED_PREFIXES.iter().any(|p| name.starts_with(p))
        {
            VarDisposition::Omitted("member data may not set this variable")
        } else if !seen.insert(name) {
            VarDisposition::Omitted("set earlier in the same originate")
        } else if value.is_empty() {
            VarDisposition::Omitted("empty value")
        } else {
            if !body.is_empty() {
                body.push(',');
            }
            body.push_str(name);
            body.push('=');
            if carriable(value) {
                push_escaped(&mut body, value);
                VarDisposition::Sent
            } else {
                push_url_encoded(&mut body, value);
                encoded_names.push(name);
                VarDisposition::UrlEncoded
            }
        };
        vars.push((name.to_owned(), source, disposition));
    }
    if !encoded_names.is_empty() {
        let _ = write!(body, ",dlr_urlencoded_vars={}", encoded_names.join(";"));
    }
    let args = format!("{{{body}}}{} {}", spec.dial_string, spec.application);
    Originate { args, vars }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(
        campaign: &'a [(String, String)],
        member: &'a [(String, String)],
    ) -> OriginateSpec<'a> {
        OriginateSpec {
            attempt_id: Uuid::nil(),
            dial_string: "loopback/answer_2/default",
            originate_timeout_sec: 30,
            caller_id_number: Some("1000"),
            campaign_id: "c1",
            member_id: "m1",
            attempt_no: 1,
            campaign_vars: campaign,
            member_vars: member,
            application: "&park()",
        }
    }

    #[test]
    fn build_on_node_tags_the_channel_and_member_data_cannot_forge_the_tag() {
        let member = v(&[("dlr_node", "other-node")]);
        let o = build_on_node(&spec(&[], &member), "node-a");
        assert!(
            o.args.contains(",dlr_attempt=1,dlr_node=node-a}"),
            "{}",
            o.args
        );
        assert!(!o.args.contains("other-node"));
        assert!(!build(&spec(&[], &[])).args.contains("dlr_node"));
    }

    fn v(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn dialer_variables_come_first_in_fixed_order() {
        let o = build(&spec(&[], &[]));
        assert_eq!(
            o.args,
            "{origination_uuid=00000000-0000-0000-0000-000000000000,originate_timeout=30,ignore_early_media=true,origination_caller_id_number=1000,dlr_campaign_id=c1,dlr_member_id=m1,dlr_attempt=1}loopback/answer_2/default &park()"
        );
    }

    #[test]
    fn commas_quotes_and_spaces_are_escaped() {
        let m = v(&[("a", "x,y"), ("b", "O'Brien"), ("c", "two words")]);
        let o = build(&spec(&[], &m));
        assert!(o.args.contains(r"a=x\,y,"), "{}", o.args);
        assert!(o.args.contains("b=O%27Brien,"), "{}", o.args);
        assert!(
            o.args.contains("c='two words',dlr_urlencoded_vars=b}"),
            "{}",
            o.args
        );
    }

    #[test]
    fn uncarriable_values_are_url_encoded_and_listed() {
        let m = v(&[
            ("x", "a}b"),
            ("y", "${hostname}"),
            ("z", "line\nbreak"),
            ("w", " lead"),
        ]);
        let o = build(&spec(&[], &m));
        assert!(o.args.contains("x=a%7Db,"), "{}", o.args);
        assert!(o.args.contains("y=%24%7Bhostname%7D,"), "{}", o.args);
        assert!(o.args.contains("z=line%0Abreak,"), "{}", o.args);
        assert!(
            o.args.contains("dlr_urlencoded_vars=x;y;z;w}"),
            "{}",
            o.args
        );
        assert_eq!(o.url_encoded().count(), 4);
    }

    #[test]
    fn member_data_cannot_set_reserved_or_executing_variables() {
        let m = v(&[
            ("origination_uuid", "evil"),
            ("execute_on_answer", "system rm"),
            ("api_on_answer", "x"),
            ("dlr_member_id", "spoof"),
            ("bad name", "x"),
            ("a=b", "x"),
        ]);
        let o = build(&spec(&[], &m));
        assert!(!o.args.contains("evil"));
        assert!(!o.args.contains("execute_on_answer"));
        assert!(!o.args.contains("api_on_answer"));
        assert!(!o.args.contains("spoof"));
        assert!(!o.args.contains("bad name"));
        assert!(
            o.vars
                .iter()
                .filter(|(_, s, _)| *s == VarSource::Member)
                .all(|(_, _, d)| matches!(d, VarDisposition::Omitted(_)))
        );
    }

    #[test]
    fn campaign_may_set_channel_behaviour_but_not_dialer_fields() {
        let c = v(&[
            ("execute_on_answer", "playback foo.wav"),
            ("originate_timeout", "5"),
        ]);
        let o = build(&spec(&c, &[]));
        assert!(o.args.contains("execute_on_answer='playback foo.wav'"));
        assert!(o.args.contains("originate_timeout=30,"));
        assert!(!o.args.contains("originate_timeout=5"));
    }
}
