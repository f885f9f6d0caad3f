//! mod_hash's key/value store (`hash` and `hash_dump` apis) and the `api_hangup_hook` channel variable, as
//! FreeSWITCH 1.10 has them, so a dialer can leave a call's outcome in the switch itself when nobody listens.
//!
//! - `hash insert|insert_ifempty|select|delete|delete_ifmatch/<realm>/<key>[/<value>]` (mod_hash.c
//!   `hash_api_function`): split on `/` into at most four fields (the value keeps any further `/`), keyed
//!   `<realm>_<key>`. `insert` replaces and answers `+OK\n`; `insert_ifempty` answers `-ERR key already exists\n`
//!   when set; `select` answers the value, or nothing; `delete` answers `+OK\n` or `-ERR Not found\n`;
//!   `delete_ifmatch` also `-ERR Doesn't match\n`; anything else `-ERR Usage: hash <usage>\n`. Entries never
//!   expire: mod_hash has no expiry for its db hash (only its `limit` backend has intervals).
//! - `hash_dump db [<realm>]` lists `D/<realm>_<key>/<value>\n` lines (the realm as a substring of the key, as
//!   mod_hash's `strstr`).
//! - `api_hangup_hook` (switch_core_state_machine.c `api_hook`, run in the hangup state after the timestamps and
//!   `hangup_cause` are set): the command is split from its argument at the first `::` or else the first space,
//!   only the argument is expanded against the channel's variables, and the api runs (its output only logged).
//!   Expansion here covers plain `${name}` references (an unset one expands to nothing), which is what the
//!   dialer's hook uses; FreeSWITCH's `${api(args)}` function form is not simulated and expands to nothing.

use std::collections::BTreeMap;

use super::Switch;
use crate::sim::originate::VarSet;

const HASH_API_USAGE: &str = "insert|insert_ifempty|select|delete|delete_ifmatch/realm/key[/value]";
const HASH_DUMP_USAGE: &str = "Usage: all|limit|db [<realm>]\n";

/// mod_hash's db hash.
#[derive(Debug, Default)]
pub struct HashDb {
    entries: BTreeMap<String, String>,
}

impl HashDb {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `hash` api's reply.
    pub fn api(&mut self, arg: &str) -> String {
        let usage = || format!("-ERR Usage: hash {HASH_API_USAGE}\n");
        let argv: Vec<&str> = if arg.is_empty() {
            Vec::new()
        } else {
            arg.splitn(4, '/').collect()
        };
        if argv.len() < 3 {
            return usage();
        }
        let key = format!("{}_{}", argv[1], argv[2]);
        let value = argv.get(3).copied();
        match argv[0].to_ascii_lowercase().as_str() {
            "insert" => match value {
                Some(v) => {
                    self.entries.insert(key, v.to_owned());
                    "+OK\n".into()
                }
                None => usage(),
            },
            "insert_ifempty" => match value {
                Some(_) if self.entries.contains_key(&key) => "-ERR key already exists\n".into(),
                Some(v) => {
                    self.entries.insert(key, v.to_owned());
                    "+OK\n".into()
                }
                None => usage(),
            },
            "delete" => match self.entries.remove(&key) {
                Some(_) => "+OK\n".into(),
                None => "-ERR Not found\n".into(),
            },
            "delete_ifmatch" => match (value, self.entries.get(&key)) {
                (None, _) => usage(),
                (Some(_), None) => "-ERR Not found\n".into(),
                (Some(v), Some(have)) if v == have => {
                    self.entries.remove(&key);
                    "+OK\n".into()
                }
                (Some(_), Some(_)) => "-ERR Doesn't match\n".into(),
            },
            "select" => self.entries.get(&key).cloned().unwrap_or_default(),
            _ => usage(),
        }
    }

    /// The `hash_dump` api's reply (only the `db` part exists here: the simulator has no `limit` hash).
    pub fn dump(&self, arg: &str) -> String {
        let mut words = arg.split_whitespace();
        let mode = words.next().unwrap_or("");
        if !matches!(mode, "all" | "db" | "limit") {
            return HASH_DUMP_USAGE.into();
        }
        if mode == "limit" {
            return String::new();
        }
        let realm = words.next().map(|r| format!("{r}_"));
        let mut out = String::new();
        for (k, v) in &self.entries {
            if realm.as_deref().is_none_or(|r| k.contains(r)) {
                out.push_str(&format!("D/{k}/{v}\n"));
            }
        }
        out
    }
}

/// Expands `${name}` references against `vars` (see the module documentation).
pub fn expand(text: &str, vars: &VarSet) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if let Some(v) = vars.get(name) {
                    out.push_str(v);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a hook variable into the api command and its argument as `api_hook` does.
fn split_hook(hook: &str) -> (&str, &str) {
    if let Some(i) = hook.find(':')
        && hook[i + 1..].starts_with(':')
    {
        return (&hook[..i], &hook[i + 2..]);
    }
    match hook.split_once(' ') {
        Some((cmd, arg)) => (cmd, arg),
        None => (hook, ""),
    }
}

impl Switch {
    /// Runs the channel's `api_hangup_hook`, if it has one (once its hangup variables are set).
    pub(super) fn run_hangup_hook(&mut self, uuid: &str) {
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        let Some(hook) = ch.vars.get("api_hangup_hook").filter(|h| !h.is_empty()) else {
            return;
        };
        let (cmd, arg) = split_hook(hook);
        let (cmd, expanded) = (cmd.to_owned(), expand(arg, &ch.vars));
        if !cmd.eq_ignore_ascii_case("originate") {
            let _ = self.api_reply(&cmd, &expanded);
        }
    }

    /// mod_hash's db hash (for tests and diagnostics).
    pub fn hash_db(&self) -> &HashDb {
        &self.hash_db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_api_answers_as_mod_hash_does() {
        let mut db = HashDb::default();
        assert_eq!(db.api("insert/r/k/a|b/c"), "+OK\n");
        assert_eq!(
            db.api("select/r/k"),
            "a|b/c",
            "the value keeps later slashes"
        );
        assert_eq!(db.api("insert_ifempty/r/k/x"), "-ERR key already exists\n");
        assert_eq!(db.api("delete_ifmatch/r/k/x"), "-ERR Doesn't match\n");
        assert_eq!(db.api("insert/r/k/x"), "+OK\n");
        assert_eq!(db.api("select/r/k"), "x");
        assert_eq!(db.dump("db r"), "D/r_k/x\n");
        assert_eq!(db.dump("db other"), "");
        assert_eq!(db.api("delete/r/k"), "+OK\n");
        assert_eq!(db.api("delete/r/k"), "-ERR Not found\n");
        assert_eq!(
            db.api("select/r/k"),
            "",
            "select of a missing key answers nothing"
        );
        let usage = format!("-ERR Usage: hash {HASH_API_USAGE}\n");
        assert_eq!(db.api("insert/r/k"), usage);
        assert_eq!(db.api("get/r/k"), usage);
        assert_eq!(db.api("select/r"), usage);
        assert_eq!(db.api(""), usage);
        assert_eq!(db.dump("nope"), HASH_DUMP_USAGE);
        assert!(db.is_empty());
    }

    #[test]
    fn hook_splits_at_double_colon_or_first_space_and_expands_plain_references() {
        assert_eq!(
            split_hook("hash insert/a/b/c d"),
            ("hash", "insert/a/b/c d")
        );
        assert_eq!(split_hook("lua::x.lua a"), ("lua", "x.lua a"));
        assert_eq!(split_hook("status"), ("status", ""));
        let mut vars = VarSet::new();
        vars.add("hangup_cause", "USER_BUSY");
        assert_eq!(
            expand("c=${hangup_cause}|${unset}|${oops", &vars),
            "c=USER_BUSY||${oops"
        );
    }

    const T0: u64 = 1_795_636_943_000_000;
    const HOOK: &str =
        "'hash insert/fsdialer/${uuid}/${hangup_cause}|${answer_epoch}|${end_epoch}|${billsec}'";

    /// Plays one originate to its end; the switch after it.
    fn play(args: &str) -> Switch {
        use crate::sim::model::Config;
        use crate::sim::scenario::Scenario;
        let mut sw = Switch::new(Config::default(), Scenario::builtin(), T0);
        sw.bgapi(T0, "originate", args, "job-1", "");
        while let Some(d) = sw.next_deadline() {
            if d > T0 + 100_000_000 {
                break;
            }
            sw.advance(d);
        }
        assert_eq!(sw.channel_count(), 0, "the call ended");
        sw
    }

    #[test]
    fn an_answered_call_leaves_its_outcome_through_its_hangup_hook() {
        let u = "5d0c6f0e-1111-4a5e-9d9e-000000000001";
        let mut sw = play(&format!(
            "{{origination_uuid={u},origination_nested_vars=true,api_hangup_hook={HOOK}}}loopback/answer_2/default &park()"
        ));
        let answered = (T0 / 1_000_000).to_string();
        let got = sw.api(T0 + 100_000_000, "hash", &format!("select/fsdialer/{u}"), 0);
        let got = got.unwrap();
        let fields: Vec<&str> = got.split('|').collect();
        assert_eq!(fields[0], "NORMAL_CLEARING", "{got}");
        assert!(fields[1] >= answered.as_str() && fields[1] != "0", "{got}");
        assert_eq!(fields[3], "2", "{got}");
        assert_eq!(
            sw.hash_db().len(),
            1,
            "the loopback b-leg refuses the inherited hook"
        );
    }

    #[test]
    fn a_busy_callee_is_recorded_unanswered_and_without_nested_vars_the_hook_is_refused() {
        let u = "5d0c6f0e-1111-4a5e-9d9e-000000000002";
        let mut sw = play(&format!(
            "{{origination_uuid={u},origination_nested_vars=true,api_hangup_hook={HOOK}}}sofia/gateway/gw/busy &park()"
        ));
        let got = sw.api(T0 + 100_000_000, "hash", &format!("select/fsdialer/{u}"), 0);
        assert!(
            got.as_deref().unwrap().starts_with("USER_BUSY|0|"),
            "{got:?}"
        );
        let sw = play(&format!(
            "{{origination_uuid={u},api_hangup_hook={HOOK}}}sofia/gateway/gw/busy &park()"
        ));
        assert!(sw.hash_db().is_empty(), "`${{` refused by the var check");
    }
}
