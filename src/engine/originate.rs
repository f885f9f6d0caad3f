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
//! Names: the dialer's variables first (`origination_uuid`, timeouts, caller id, `dlr_*`, and the hangup hook of
//! `engine::hangup_record`, sent verbatim with `origination_nested_vars=true`), then the campaign's
//! (any name but the dialer's own), then the member's — each member variable `x` as `dlr_v_x` unless the campaign
//! allowlists `x` (the rule lives in [`crate::campaign::channel_vars`]). Names are compared without regard to case,
//! as FreeSWITCH does, and the first writer of a name wins: nothing later can override `origination_uuid`.
//!
//! Values go one of three ways, recorded per variable in [`Originate::vars`]:
//! - **sent** as is, with `,` escaped as `\,` and, when it holds a space or tab, wrapped in `'…'`;
//! - **url-encoded**: a value that FreeSWITCH cannot carry (braces, `${`, control characters other than tab,
//!   leading/trailing white space, a `'`, `:_:`, a backslash) is sent percent-encoded
//!   (RFC 3986 unreserved characters stay), and its channel name is listed in the channel variable
//!   `dlr_urlencoded_vars` (`;`-separated) so a dialplan can decode it with `${url_decode(${name})}`. FreeSWITCH
//!   never decodes `%XX` in originate variables, so the encoded text arrives exactly as sent. The callflow,
//!   which fsdialer substitutes itself, always sees the original value;
//! - **omitted**: an empty value (FreeSWITCH would unset the variable anyway), a name that is not a plain
//!   identifier, a name owned by the dialer, or a name already set.
//!
//! Length: FreeSWITCH drops the whole ESL connection on a command over its 10 MiB packet limit (failing every
//! other call's job on it), so [`try_build`] refuses to build arguments longer than [`MAX_ARGS_BYTES`].

use crate::campaign::channel_vars::{MemberChannelVars, is_dialer_owned, is_plain_name};
use std::collections::HashSet;
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
    /// The engine node placing the call: sent as `dlr_node` (after `dlr_attempt`) so that the node's ESL filter
    /// (`engine::subscription`) lets the call's events through; loopback b-legs inherit it.
    pub node: Option<&'a str>,
}

/// One variable considered for the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltVar {
    /// The name as given (a member variable's own name).
    pub name: String,
    /// The channel variable it is sent as (`dlr_v_<name>` for a member variable not allowlisted).
    pub channel_name: String,
    pub source: VarSource,
    pub disposition: VarDisposition,
}

/// A built originate: the api argument string and what happened to each variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// `{…}dial_string &park()`: the argument of `originate` (send as `bgapi originate <args>`).
    pub args: String,
    /// Every variable considered, in order. Values are not repeated here.
    pub vars: Vec<BuiltVar>,
}

impl Originate {
    /// Channel names of the variables that were url-encoded.
    pub fn url_encoded(&self) -> impl Iterator<Item = &str> {
        self.vars
            .iter()
            .filter(|v| v.disposition == VarDisposition::UrlEncoded)
            .map(|v| v.channel_name.as_str())
    }
}

/// Longest originate argument string built: FreeSWITCH's ESL command limit
/// ([`crate::esl::command::MAX_COMMAND_BYTES`]) less room for `bgapi originate ` and the `Job-UUID` header.
pub const MAX_ARGS_BYTES: usize = crate::esl::command::MAX_COMMAND_BYTES - 1024;

/// The arguments would be longer than FreeSWITCH accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the originate command would be {len} bytes, over FreeSWITCH's limit of {limit}")]
pub struct OriginateTooLong {
    pub len: usize,
    pub limit: usize,
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

/// One variable to consider, in order.
struct Candidate<'a> {
    name: &'a str,
    channel_name: String,
    value: &'a str,
    source: VarSource,
}

fn candidates<'a>(
    spec: &'a OriginateSpec<'a>,
    member_names: &MemberChannelVars,
    dialer: &'a [(&'static str, String)],
) -> Vec<Candidate<'a>> {
    let mut all: Vec<Candidate<'a>> = dialer
        .iter()
        .map(|(n, v)| Candidate {
            name: n,
            channel_name: (*n).to_owned(),
            value: v,
            source: VarSource::Dialer,
        })
        .collect();
    all.extend(spec.campaign_vars.iter().map(|(n, v)| Candidate {
        name: n,
        channel_name: n.clone(),
        value: v,
        source: VarSource::Campaign,
    }));
    all.extend(spec.member_vars.iter().map(|(n, v)| Candidate {
        name: n,
        channel_name: member_names.channel_name(n),
        value: v,
        source: VarSource::Member,
    }));
    all
}

/// Why a candidate is not sent, if it is not.
fn refusal(c: &Candidate<'_>, seen: &HashSet<String>) -> Option<&'static str> {
    if !is_plain_name(c.name) {
        Some("name is not a plain identifier")
    } else if c.channel_name == c.name && is_dialer_owned(c.name) {
        // Sent under its own name (campaign, or allowlisted member variable): never one of the dialer's.
        Some("reserved for the dialer")
    } else if seen.contains(&c.channel_name.to_ascii_lowercase()) {
        Some("set earlier in the same originate")
    } else if c.value.is_empty() {
        Some("empty value")
    } else {
        None
    }
}

/// Builds the originate arguments for one attempt, member variables named by `member_names`; refuses a command
/// longer than FreeSWITCH accepts.
pub fn try_build(
    spec: &OriginateSpec<'_>,
    member_names: &MemberChannelVars,
) -> Result<Originate, OriginateTooLong> {
    let built = assemble(spec, member_names);
    if built.args.len() > MAX_ARGS_BYTES {
        return Err(OriginateTooLong {
            len: built.args.len(),
            limit: MAX_ARGS_BYTES,
        });
    }
    Ok(built)
}

/// [`try_build`] with no member variable allowlisted (every member variable as `dlr_v_<name>`), for callers that
/// cannot handle a refusal: a command that would be too long is built without any member variable (each
/// recorded as omitted). Member and campaign data are bounded at input, so that one fits; were it still too long,
/// the ESL client refuses to send it ([`crate::esl::command::MAX_COMMAND_BYTES`]). Prefer [`try_build`].
pub fn build(spec: &OriginateSpec<'_>) -> Originate {
    let names = MemberChannelVars::none();
    try_build(spec, &names).unwrap_or_else(|_| {
        let bare = OriginateSpec {
            member_vars: &[],
            ..spec.clone()
        };
        let mut o = assemble(&bare, &names);
        o.vars
            .extend(spec.member_vars.iter().map(|(n, _)| BuiltVar {
                name: n.clone(),
                channel_name: names.channel_name(n),
                source: VarSource::Member,
                disposition: VarDisposition::Omitted(
                    "the command would be longer than FreeSWITCH accepts",
                ),
            }));
        o
    })
}

/// The arguments, whatever their length.
fn assemble(spec: &OriginateSpec<'_>, member_names: &MemberChannelVars) -> Originate {
    let mut dialer: Vec<(&'static str, String)> = vec![
        ("origination_uuid", spec.attempt_id.to_string()),
        ("originate_timeout", spec.originate_timeout_sec.to_string()),
        ("ignore_early_media", "true".to_owned()),
    ];
    if let Some(cid) = spec.caller_id_number {
        dialer.push(("origination_caller_id_number", cid.to_owned()));
    }
    dialer.push(("dlr_campaign_id", spec.campaign_id.to_owned()));
    dialer.push(("dlr_member_id", spec.member_id.to_owned()));
    dialer.push(("dlr_attempt", spec.attempt_no.to_string()));
    if let Some(node) = spec.node {
        dialer.push(("dlr_node", node.to_owned()));
    }
    // The call's outcome, left in the switch at hangup (`engine::hangup_record`); `${…}` needs nested vars.
    dialer.push(("origination_nested_vars", "true".to_owned()));
    dialer.push((
        "api_hangup_hook",
        crate::engine::hangup_record::hook_value(spec.attempt_id),
    ));

    let mut vars = Vec::new();
    let mut body = String::with_capacity(256);
    let mut encoded_names: Vec<String> = Vec::new();
    // Lower-cased: FreeSWITCH matches names without regard to case, and the first writer of a name wins.
    let mut seen: HashSet<String> = HashSet::new();
    for c in candidates(spec, member_names, &dialer) {
        let refused = if c.source == VarSource::Dialer {
            None
        } else {
            refusal(&c, &seen)
        };
        let disposition = match refused {
            Some(reason) => VarDisposition::Omitted(reason),
            None => {
                seen.insert(c.channel_name.to_ascii_lowercase());
                if !body.is_empty() {
                    body.push(',');
                }
                body.push_str(&c.channel_name);
                body.push('=');
                if carriable(c.value)
                    || c.source == VarSource::Dialer && c.name == "api_hangup_hook"
                {
                    // The hook's `${…}` is meant for FreeSWITCH (expanded at hangup); its braces are balanced.
                    push_escaped(&mut body, c.value);
                    VarDisposition::Sent
                } else {
                    push_url_encoded(&mut body, c.value);
                    encoded_names.push(c.channel_name.clone());
                    VarDisposition::UrlEncoded
                }
            }
        };
        vars.push(BuiltVar {
            name: c.name.to_owned(),
            channel_name: c.channel_name,
            source: c.source,
            disposition,
        });
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
            node: None,
        }
    }

    #[test]
    fn the_node_tags_the_channel_and_member_data_cannot_forge_the_tag() {
        let member = v(&[("dlr_node", "other-node")]);
        let o = build(&OriginateSpec {
            node: Some("node-a"),
            ..spec(&[], &member)
        });
        assert!(
            o.args.contains(",dlr_attempt=1,dlr_node=node-a,"),
            "{}",
            o.args
        );
        // The member's value travels only as data, under its own namespaced name.
        assert!(!o.args.contains(",dlr_node=other-node"), "{}", o.args);
        assert!(o.args.contains(",dlr_v_dlr_node=other-node"), "{}", o.args);
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
            "{origination_uuid=00000000-0000-0000-0000-000000000000,originate_timeout=30,ignore_early_media=true,origination_caller_id_number=1000,dlr_campaign_id=c1,dlr_member_id=m1,dlr_attempt=1,origination_nested_vars=true,api_hangup_hook='hash insert/fsdialer/00000000-0000-0000-0000-000000000000/${hangup_cause}|${answer_uepoch}|${end_uepoch}|${billsec}|${billmsec}'}loopback/answer_2/default &park()"
        );
    }

    #[test]
    fn the_hangup_hook_reaches_the_channel_verbatim_and_campaigns_cannot_replace_it() {
        let campaign = v(&[
            ("api_hangup_hook", "system rm -rf /"),
            ("origination_nested_vars", "false"),
        ]);
        let o = build(&spec(&campaign, &[]));
        let parsed = crate::sim::originate::parse(&o.args).unwrap();
        let leg = parsed.first_leg().unwrap();
        let hook = crate::engine::hangup_record::hook_value(Uuid::nil());
        assert_eq!(
            leg.channel_vars.get("api_hangup_hook"),
            Some(hook.as_str()),
            "{}",
            o.args
        );
        assert_eq!(
            leg.channel_vars.get("origination_nested_vars"),
            Some("true")
        );
        assert!(leg.refused_vars.is_empty(), "{:?}", leg.refused_vars);
    }

    #[test]
    fn commas_quotes_and_spaces_are_escaped() {
        let m = v(&[("a", "x,y"), ("b", "O'Brien"), ("c", "two words")]);
        let o = build(&spec(&[], &m));
        assert!(o.args.contains(r"dlr_v_a=x\,y,"), "{}", o.args);
        assert!(o.args.contains("dlr_v_b=O%27Brien,"), "{}", o.args);
        assert!(
            o.args
                .contains("dlr_v_c='two words',dlr_urlencoded_vars=dlr_v_b}"),
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
        assert!(o.args.contains("dlr_v_x=a%7Db,"), "{}", o.args);
        assert!(o.args.contains("dlr_v_y=%24%7Bhostname%7D,"), "{}", o.args);
        assert!(o.args.contains("dlr_v_z=line%0Abreak,"), "{}", o.args);
        assert!(
            o.args
                .contains("dlr_urlencoded_vars=dlr_v_x;dlr_v_y;dlr_v_z;dlr_v_w}"),
            "{}",
            o.args
        );
        assert_eq!(o.url_encoded().count(), 4);
    }

    #[test]
    fn member_variables_reach_the_channel_only_under_the_dialer_namespace() {
        let m = v(&[
            ("origination_uuid", "evil"),
            ("Origination_Uuid", "evil"),
            ("execute_on_answer", "system rm"),
            ("API_ON_ANSWER", "x"),
            ("sip_invite_req_uri", "sip:premium@evil"),
            ("dlr_member_id", "spoof"),
            ("bad name", "x"),
            ("a=b", "x"),
        ]);
        let o = build(&spec(&[], &m));
        assert!(
            o.args
                .starts_with("{origination_uuid=00000000-0000-0000-0000-000000000000,"),
            "{}",
            o.args
        );
        assert!(
            o.args.contains(",dlr_v_origination_uuid=evil,"),
            "{}",
            o.args
        );
        assert!(
            !o.args.contains("dlr_v_Origination_Uuid"),
            "same name in another case: {}",
            o.args
        );
        assert!(
            o.args.contains(",dlr_v_execute_on_answer='system rm',"),
            "{}",
            o.args
        );
        assert!(o.args.contains(",dlr_v_API_ON_ANSWER=x,"), "{}", o.args);
        assert!(
            o.args
                .contains(",dlr_v_sip_invite_req_uri=sip:premium@evil,"),
            "{}",
            o.args
        );
        assert!(o.args.contains(",dlr_v_dlr_member_id=spoof"), "{}", o.args);
        assert!(!o.args.contains("bad name") && !o.args.contains("a=b"));
        for name in [
            ",execute_on_answer=",
            ",API_ON_ANSWER=",
            ",sip_invite_req_uri=",
            ",Origination_Uuid=",
        ] {
            assert!(!o.args.contains(name), "{name} in {}", o.args);
        }
    }

    #[test]
    fn allowlisted_member_variables_keep_their_name_but_never_a_dialer_one() {
        let m = v(&[
            ("Language", "uk"),
            ("ORIGINATION_UUID", "x"),
            ("other", "y"),
        ]);
        let names = MemberChannelVars::new(&["language".into()]).unwrap();
        let o = try_build(&spec(&[], &m), &names).unwrap();
        assert!(o.args.contains(",Language=uk,"), "{}", o.args);
        assert!(
            o.args.contains(",dlr_v_ORIGINATION_UUID=x,dlr_v_other=y}"),
            "{}",
            o.args
        );
    }

    #[test]
    fn campaign_may_set_channel_behaviour_but_not_dialer_fields_in_any_case() {
        let c = v(&[
            ("execute_on_answer", "playback foo.wav"),
            ("originate_timeout", "5"),
            ("ORIGINATE_TIMEOUT", "6"),
            ("Ignore_Early_Media", "false"),
            ("DLR_attempt", "9"),
        ]);
        let o = build(&spec(&c, &[]));
        assert!(o.args.contains("execute_on_answer='playback foo.wav'"));
        assert!(o.args.contains("originate_timeout=30,"));
        for bad in ["=5", "=6", "=false", "=9"] {
            assert!(!o.args.contains(bad), "{bad} in {}", o.args);
        }
    }

    #[test]
    fn a_command_over_freeswitch_limit_is_refused_and_build_drops_member_variables() {
        let big = "x".repeat(MAX_ARGS_BYTES / 2);
        let m = v(&[("a", &big), ("b", &big), ("c", "1")]);
        let e = try_build(&spec(&[], &m), &MemberChannelVars::none()).unwrap_err();
        assert_eq!(e.limit, MAX_ARGS_BYTES);
        assert!(e.len > MAX_ARGS_BYTES);
        let o = build(&spec(&[], &m));
        assert!(o.args.len() < 1024, "{} bytes", o.args.len());
        let member: Vec<_> = o
            .vars
            .iter()
            .filter(|b| b.source == VarSource::Member)
            .collect();
        assert_eq!(member.len(), 3);
        assert!(
            member
                .iter()
                .all(|b| matches!(b.disposition, VarDisposition::Omitted(_)))
        );
    }

    #[test]
    fn a_member_at_the_store_ceiling_fits_even_when_every_byte_is_url_encoded() {
        use crate::campaign::member::MemberLimits;
        let per = 4096;
        let count = MemberLimits::CEILING.max_bytes / per;
        let m: Vec<(String, String)> = (0..count)
            .map(|i| (format!("v{i}"), "{".repeat(per - 8)))
            .collect();
        let o = try_build(&spec(&[], &m), &MemberChannelVars::none()).unwrap();
        assert!(o.args.len() > 3 * (count * (per - 8)), "{}", o.args.len());
    }
}
