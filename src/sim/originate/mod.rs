//! `originate` argument parsing, exactly as FreeSWITCH 1.10.12 does it — quirks included.
//!
//! This is both the simulator's front door for `api/bgapi originate` and the judge of the dialer's escaping:
//! [`parse`] tells what FreeSWITCH would make of an originate string — which legs, which endpoint, which
//! variables end up on the channel (and which are silently dropped), or which error comes back.
//!
//! The pipeline follows the real code paths (read from the FreeSWITCH sources, re-implemented here):
//! 1. the ESL socket keeps only the first line of a command (`strip_cr`): a newline inside a value cuts it;
//! 2. `originate_function` (mod_commands) splits the arguments on spaces with `switch_separate_string`, which
//!    honours `'…'` and `\` but strips them; 2..=7 arguments, else `-USAGE`;
//! 3. `switch_ivr_originate` strips leading spaces, reads `<…>` then `{…}` blocks with
//!    `switch_event_create_brackets` (nested braces counted; no closing brace = parse error =
//!    `DESTINATION_OUT_OF_ORDER`), splits the rest on `|` (failover groups) and `,` (simultaneous legs; commas
//!    inside `[…]` are protected), reads each leg's `[…]` blocks, and cuts endpoint and data at the first `/`;
//! 4. `:_:` anywhere selects the enterprise originate (branches dialled in parallel, each with its own `{}`).
//!
//! Variables: inside a block, pairs are split on `,` (or the `{^^X…}` separator) and then on the first `=`;
//! a pair without `=` is ignored, an empty value unsets, quotes are removed but do not protect the separator,
//! and a value holding `${` is refused when installed on the channel (unless `origination_nested_vars=true`).

mod cstr;
mod vars;

#[cfg(test)]
mod tests;

pub use cstr::strip_cr;
pub use vars::{VarSet, atoi, has_variable_reference, switch_true};

use cstr::{CBuf, find_end_paren, separate_string, separate_string_string, strchr_strict_spaces};

/// The `-USAGE` text of `originate`.
pub const ORIGINATE_SYNTAX: &str = "<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]";

/// FreeSWITCH's default originate timeout when neither the api argument nor `originate_timeout` gives one.
pub const DEFAULT_TIMEOUT_SEC: u32 = 60;

/// Endpoints the simulator implements; any other endpoint name fails with `CHAN_NOT_IMPLEMENTED`.
pub const KNOWN_ENDPOINTS: &[&str] = &["loopback", "sofia", "user", "error", "null"];

/// `MAX_PEERS` in switch_ivr_originate.c: the most legs per group and groups per dial string.
const MAX_PEERS: usize = 128;
/// Size of `var_array` in `switch_event_create_brackets`.
const MAX_VARS: usize = 1024;
/// Comma markers `switch_ivr_originate` writes inside `[…]` before splitting legs.
const QUOTED_ESC_COMMA: u8 = 1;
const UNQUOTED_ESC_COMMA: u8 = 2;

/// Why an originate string is refused before any call is placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginateError {
    /// Wrong argument count (also an unbalanced `'`, which swallows the rest of the line): `-USAGE: …`.
    #[error("-USAGE: {ORIGINATE_SYNTAX}")]
    Usage,
    /// The originate fails with this hangup cause without creating a channel (`-ERR <CAUSE>`).
    #[error("-ERR {0}")]
    Failed(String),
}

impl OriginateError {
    /// The exact api/response (and BACKGROUND_JOB) body FreeSWITCH sends, newline included.
    pub fn reply(&self) -> String {
        format!("{self}\n")
    }
}

/// What the originated channel does once answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `&app(args)`: runs one application (`args` is everything between the first `(` and the first `)`).
    App { name: String, arg: Option<String> },
    /// An extension, transferred to `dialplan`/`context`.
    Extension(String),
}

/// One leg of a dial string: an endpoint plus its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    /// The text before the first `/` (`loopback`, `sofia`, `error`, …).
    pub endpoint: String,
    /// Everything after the first `/`, if there was one.
    pub data: Option<String>,
    /// Variables from this leg's `[…]` blocks.
    pub local_vars: VarSet,
    /// The variables the originate installs on the channel, in FreeSWITCH's order: the `[…]` ones first, then
    /// the `<…>`/`{…}` ones (which therefore win over `[…]` for the same name), then `originate_early_media`.
    /// Values refused by the `${` check are absent (see `refused_vars`). Endpoint-specific variables are not here.
    pub channel_vars: VarSet,
    /// Names whose value was refused because it holds `${…}` (FreeSWITCH logs "Invalid data" and leaves them unset).
    pub refused_vars: Vec<String>,
}

/// A simultaneous leg, or the point where FreeSWITCH hit a `[…]` parse error (the group stops there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegSlot {
    Leg(Leg),
    /// An unterminated `[` (or a `[]` that parses to nothing): the group fails at this point.
    ParseError,
}

/// Legs separated by `,`: dialled at once, the first to answer wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub legs: Vec<LegSlot>,
}

/// One dial string (the whole URL, or one `:_:` branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// Variables of the `<…>` and `{…}` blocks (FreeSWITCH's `var_event`), before per-leg additions.
    pub vars: VarSet,
    /// Failover groups separated by `|`, tried in order.
    pub groups: Vec<Group>,
    /// False when `origination_nested_vars=true` turns the `${` check off.
    pub check_vars: bool,
}

/// A parsed `originate` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// One branch normally; several with the enterprise `:_:` separator.
    pub branches: Vec<Branch>,
    pub enterprise: bool,
    pub target: Target,
    /// The `[<dialplan>]` argument (`XML` when absent or `undef`).
    pub dialplan: String,
    /// The `[<context>]` argument (`default` when absent or `undef`).
    pub context: String,
    pub cid_name: Option<String>,
    pub cid_num: Option<String>,
    /// The `[<timeout_sec>]` argument as FreeSWITCH reads it (`atoi`, 60 when absent or not positive).
    pub timeout_arg_sec: u32,
}

impl Originate {
    /// The ring timeout in seconds: `originate_timeout` (when a positive number) else the api argument.
    pub fn timeout_sec(&self, branch: &Branch) -> u32 {
        match branch.vars.get("originate_timeout").map(atoi) {
            Some(n) if n > 0 => u32::try_from(n).unwrap_or(u32::MAX),
            _ => self.timeout_arg_sec,
        }
    }

    /// Every leg of every group and branch, in dialling order.
    pub fn legs(&self) -> impl Iterator<Item = &Leg> {
        self.branches.iter().flat_map(|b| {
            b.groups.iter().flat_map(|g| {
                g.legs.iter().filter_map(|s| match s {
                    LegSlot::Leg(l) => Some(l),
                    LegSlot::ParseError => None,
                })
            })
        })
    }

    /// The first leg (what a one-leg dial string is about).
    pub fn first_leg(&self) -> Option<&Leg> {
        self.legs().next()
    }
}

/// How creating one leg went, as the group logic needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegStart<T> {
    /// A channel exists and is being dialled.
    Created(T),
    /// No channel: `reason` is the hangup cause FreeSWITCH reports for it.
    Refused(String),
}

/// Runs FreeSWITCH's per-group leg loop: creates each leg in order with `start`, and decides the group's fate.
/// `Ok(created)` when at least one channel exists (the call goes on), else `Err(cause)`. A `[…]` parse error stops
/// the loop: the channels created so far are returned in `Err` too (the caller hangs them up) and the cause is
/// what FreeSWITCH derives from the last leg's result (none yet → `DESTINATION_OUT_OF_ORDER`, a created leg →
/// `ORIGINATOR_CANCEL`).
pub fn run_group<T>(
    group: &Group,
    mut start: impl FnMut(&Leg) -> LegStart<T>,
) -> Result<Vec<T>, (String, Vec<T>)> {
    let mut created = Vec::new();
    let mut last_reason: Option<String> = None;
    for slot in &group.legs {
        match slot {
            LegSlot::ParseError => {
                let cause = match last_reason {
                    None => "DESTINATION_OUT_OF_ORDER".to_string(),
                    Some(r) if r == "SUCCESS" => "ORIGINATOR_CANCEL".to_string(),
                    Some(r) => r,
                };
                return Err((cause, created));
            }
            LegSlot::Leg(leg) => match start(leg) {
                LegStart::Created(t) => {
                    created.push(t);
                    last_reason = Some("SUCCESS".to_string());
                }
                LegStart::Refused(r) => last_reason = Some(r),
            },
        }
    }
    if created.is_empty() {
        Err((
            last_reason.unwrap_or_else(|| "DESTINATION_OUT_OF_ORDER".to_string()),
            created,
        ))
    } else {
        Ok(created)
    }
}

/// What FreeSWITCH's `error` endpoint fails with: the named (or numeric) cause, else `DESTINATION_OUT_OF_ORDER`.
pub fn error_endpoint_cause(data: Option<&str>) -> String {
    let d = data.unwrap_or("");
    crate::sim::causes::str2cause(d)
        .map(str::to_string)
        .unwrap_or_else(|| "DESTINATION_OUT_OF_ORDER".to_string())
}

/// How a leg starts when nothing but the dial string is known (no capacity limits, every known endpoint up).
fn static_start(leg: &Leg) -> LegStart<()> {
    if !KNOWN_ENDPOINTS.contains(&leg.endpoint.as_str()) {
        LegStart::Refused("CHAN_NOT_IMPLEMENTED".to_string())
    } else if leg.endpoint == "error" {
        LegStart::Refused(error_endpoint_cause(leg.data.as_deref()))
    } else {
        LegStart::Created(())
    }
}

/// Parses the arguments of `originate` (what follows `api originate ` / `bgapi originate `).
///
/// `Err(Usage)` and `Err(Failed(cause))` are exactly the refusals FreeSWITCH 1.10.12 gives before ringing anyone:
/// wrong argument count, unparsable blocks, no dial string, or no leg that can even be created (unknown
/// endpoint → `CHAN_NOT_IMPLEMENTED`, `error/CAUSE` → `CAUSE`). Everything else is `Ok`, and what the call then
/// does is up to the callee.
pub fn parse(args: &str) -> Result<Originate, OriginateError> {
    let parsed = parse_syntax(args)?;
    // Each branch (only one without `:_:`) fails statically only if every group of it does.
    let mut last_cause = None;
    for branch in &parsed.branches {
        for group in &branch.groups {
            match run_group(group, static_start) {
                Ok(_) => return Ok(parsed),
                Err((cause, _)) => last_cause = Some(cause),
            }
        }
    }
    Err(OriginateError::Failed(
        last_cause.unwrap_or_else(|| "DESTINATION_OUT_OF_ORDER".to_string()),
    ))
}

/// The syntactic part of [`parse`]: never decides about endpoints.
pub fn parse_syntax(args: &str) -> Result<Originate, OriginateError> {
    // The event socket reads one line per command.
    let line = strip_cr(args.as_bytes());
    if line.is_empty() {
        return Err(OriginateError::Usage);
    }
    let mut buf = CBuf::new(line);
    let argv: Vec<Option<String>> = separate_string(&mut buf, 0, b' ', 10)
        .into_iter()
        .map(|i| {
            let s = buf.string(i);
            if s.eq_ignore_ascii_case("undef") {
                None
            } else {
                Some(s)
            }
        })
        .collect();
    if argv.len() < 2 || argv.len() > 7 {
        return Err(OriginateError::Usage);
    }
    let arg = |i: usize| argv.get(i).cloned().flatten();
    // An `undef` call URL is a NULL dial string: FreeSWITCH then finds no origination URL.
    let aleg = arg(0).unwrap_or_default();
    let exten = arg(1).unwrap_or_default();
    let timeout_arg = match arg(6).map(|t| atoi(&t)) {
        Some(t) if t > 0 => u32::try_from(t).unwrap_or(u32::MAX),
        _ => DEFAULT_TIMEOUT_SEC,
    };
    let target = if exten.len() > 1 && exten.starts_with('&') {
        // mod_commands: cut at the first ')', then split at the first '('.
        let mut app = exten[1..].to_string();
        if let Some(p) = app.find(')') {
            app.truncate(p);
        }
        match app.find('(') {
            Some(p) => Target::App {
                name: app[..p].to_string(),
                arg: Some(app[p + 1..].to_string()),
            },
            None => Target::App {
                name: app,
                arg: None,
            },
        }
    } else {
        Target::Extension(exten)
    };
    let (branches, enterprise) = parse_dial_string(&aleg)?;
    let mut originate = Originate {
        branches,
        enterprise,
        target,
        dialplan: arg(2).unwrap_or_else(|| "XML".to_string()),
        context: arg(3).unwrap_or_else(|| "default".to_string()),
        cid_name: arg(4),
        cid_num: arg(5),
        timeout_arg_sec: timeout_arg,
    };
    install_channel_vars(&mut originate);
    Ok(originate)
}

fn parse_error() -> OriginateError {
    OriginateError::Failed("DESTINATION_OUT_OF_ORDER".to_string())
}

/// `switch_ivr_originate` / `switch_ivr_enterprise_originate` up to the point where channels are created.
fn parse_dial_string(data: &str) -> Result<(Vec<Branch>, bool), OriginateError> {
    if data.contains(":_:") {
        let mut buf = CBuf::new(data.as_bytes());
        let mut pos = 0;
        while buf.at(pos) == b' ' {
            pos += 1;
        }
        let mut ultra = VarSet::new();
        while buf.at(pos) == b'<' {
            pos = create_brackets(&mut buf, pos, b'<', b'>', b',', &mut ultra)
                .ok_or_else(parse_error)?;
        }
        while buf.at(pos) == b' ' {
            pos += 1;
        }
        ultra.add("ignore_early_media", "true");
        let parts = separate_string_string(&mut buf, pos, b":_:", MAX_PEERS);
        let mut branches = Vec::new();
        for p in parts {
            let text = buf.string(p);
            branches.push(parse_branch(&text, Some(&ultra))?);
        }
        return Ok((branches, true));
    }
    Ok((vec![parse_branch(data, None)?], false))
}

/// One dial string: `<>`, `{}`, then `|` groups of `,` legs with their `[]`.
fn parse_branch(data: &str, ovars: Option<&VarSet>) -> Result<Branch, OriginateError> {
    let mut buf = CBuf::new(data.as_bytes());
    let mut vars = ovars.cloned().unwrap_or_default();
    let mut pos = 0;
    while buf.at(pos) == b' ' {
        pos += 1;
    }
    let nested = switch_true(vars.get("origination_nested_vars"))
        || buf
            .string(pos)
            .to_ascii_lowercase()
            .contains("origination_nested_vars=true");
    while buf.at(pos) == b'<' {
        pos =
            create_brackets(&mut buf, pos, b'<', b'>', b',', &mut vars).ok_or_else(parse_error)?;
    }
    while buf.at(pos) == b'{' {
        pos =
            create_brackets(&mut buf, pos, b'{', b'}', b',', &mut vars).ok_or_else(parse_error)?;
    }
    while buf.at(pos) == b' ' {
        pos += 1;
    }
    if buf.at(pos) == 0 {
        // "No origination URL specified!"
        return Err(parse_error());
    }
    let rest = buf.cstr(pos).to_vec();
    let mut groups = Vec::new();
    let mut pipe_buf = CBuf::new(&rest);
    for g in separate_string(&mut pipe_buf, 0, b'|', MAX_PEERS) {
        let text = pipe_buf.cstr(g).to_vec();
        groups.push(parse_group(&text));
    }
    Ok(Branch {
        vars,
        groups,
        check_vars: !nested,
    })
}

/// Marks commas inside `[…]` and splits one `|` group into legs.
fn parse_group(text: &[u8]) -> Group {
    let mut buf = CBuf::new(text);
    let mut p = 0;
    let mut end: Option<usize> = None;
    let mut quoted = false;
    let mut alt = false;
    while buf.at(p) != 0 {
        if end.is_none() && buf.at(p) == b'[' {
            end = find_end_paren(&buf, p, b'[', b']');
            alt = buf.at(p + 1) == b'^' && buf.at(p + 2) == b'^';
            quoted = false;
        }
        if buf.at(p) == b'\'' {
            quoted = !quoted;
        }
        if let Some(e) = end
            && p < e
            && buf.at(p) == b','
            && (p == 0 || buf.at(p - 1) != b'\\')
        {
            buf.set(
                p,
                if quoted || alt {
                    QUOTED_ESC_COMMA
                } else {
                    UNQUOTED_ESC_COMMA
                },
            );
        }
        if Some(p) == end {
            end = None;
        }
        p += 1;
    }
    let mut legs = Vec::new();
    for l in separate_string(&mut buf, 0, b',', MAX_PEERS) {
        let leg_text = buf.cstr(l).to_vec();
        match parse_leg(&leg_text) {
            Some(leg) => legs.push(LegSlot::Leg(leg)),
            None => {
                legs.push(LegSlot::ParseError);
                break;
            }
        }
    }
    Group { legs }
}

/// One leg: `[…]` blocks, then `endpoint/data`. `None` on a `[…]` parse error.
fn parse_leg(text: &[u8]) -> Option<Leg> {
    let mut buf = CBuf::new(text);
    let mut pos = 0;
    while buf.at(pos) == b' ' {
        pos += 1;
    }
    let mut local = VarSet::new();
    while buf.at(pos) == b'[' {
        if let Some(bend) = find_end_paren(&buf, pos, b'[', b']') {
            for q in pos + 1..bend {
                if buf.at(q) == QUOTED_ESC_COMMA {
                    buf.set(q, b',');
                }
            }
        }
        let parsed = create_brackets(&mut buf, pos, b'[', b']', UNQUOTED_ESC_COMMA, &mut local)?;
        if parsed == pos {
            return None;
        }
        pos = parsed;
    }
    while buf.at(pos) == b' ' {
        pos += 1;
    }
    let chan = buf.cstr(pos).to_vec();
    let (endpoint, data) = match chan.iter().position(|&b| b == b'/') {
        Some(s) => (
            String::from_utf8_lossy(&chan[..s]).into_owned(),
            Some(String::from_utf8_lossy(&chan[s + 1..]).into_owned()),
        ),
        None => (String::from_utf8_lossy(&chan).into_owned(), None),
    };
    Some(Leg {
        endpoint,
        data,
        local_vars: local,
        channel_vars: VarSet::new(),
        refused_vars: Vec::new(),
    })
}

/// `switch_event_create_brackets`: parses the block opening at `data` (`a`…`b`, pairs separated by `c`) into
/// `vars`, and returns where the text after the block starts. `None` when the block is not closed.
fn create_brackets(
    buf: &mut CBuf,
    data: usize,
    a: u8,
    b: u8,
    c: u8,
    vars: &mut VarSet,
) -> Option<usize> {
    let end = find_end_paren(buf, data, a, b)?;
    // FreeSWITCH then looks for another block right after the closing char; since it starts looking *at* the
    // closing char, which is neither a space nor `a`, that search never finds anything.
    let mut c = c;
    let mut vdata = data + 1;
    buf.set(end, 0);
    let new_data = end + 1;
    // The "next block" probe after the closing char.
    let mut vnext = {
        let mut n = new_data;
        if let Some(p) = strchr_strict_spaces(buf, n, a) {
            n = p + 1;
        }
        find_end_paren(buf, n, a, b)
    };
    loop {
        if buf.at(vdata) == b'^' && buf.at(vdata + 1) == b'^' {
            vdata += 2;
            c = buf.at(vdata);
            vdata += 1;
        }
        for var in separate_string(buf, vdata, c, MAX_VARS) {
            let pair = separate_string(buf, var, b'=', 2);
            if pair.len() == 2 {
                let name = buf.string(pair[0]);
                let value = buf.string(pair[1]);
                vars.add(&name, &value);
            }
        }
        match vnext.take() {
            Some(v) => vdata = v,
            None => break,
        }
    }
    Some(new_data)
}

/// Fills in each leg's `channel_vars` the way `switch_ivr_originate` installs them on the new channel: local
/// `[]` variables first, then the global ones (`originate_early_media` included), each through the `${` check.
fn install_channel_vars(originate: &mut Originate) {
    for branch in &mut originate.branches {
        let early_ok = !switch_true(branch.vars.get("ignore_early_media"))
            && branch
                .vars
                .get("group_confirm_early_ok")
                .is_none_or(|v| switch_true(Some(v)));
        let mut global = branch.vars.clone();
        global.add(
            "originate_early_media",
            if early_ok { "true" } else { "false" },
        );
        for group in &mut branch.groups {
            for slot in &mut group.legs {
                if let LegSlot::Leg(leg) = slot {
                    let mut ch = VarSet::new();
                    let mut refused = Vec::new();
                    let clobber = switch_true(global.get("local_var_clobber"));
                    let (first, second) = if clobber {
                        (&global, &leg.local_vars)
                    } else {
                        (&leg.local_vars, &global)
                    };
                    for set in [first, second] {
                        for (n, v) in set.iter() {
                            if !ch.set_checked(n, v, branch.check_vars) {
                                refused.push(n.to_string());
                            }
                        }
                    }
                    leg.channel_vars = ch;
                    leg.refused_vars = refused;
                }
            }
        }
    }
}
