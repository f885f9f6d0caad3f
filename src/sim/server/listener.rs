//! One ESL inbound client's state and FreeSWITCH's command rules for it (`parse_command` of mod_event_socket).
//!
//! Replies are the exact texts of mod_event_socket 1.10.12 (checked against `fixtures/esl/auth_and_errors.*`,
//! `filters_nixevent_noevents.*`, `api_replies.*`), including its quirks: before auth every command but
//! `auth`/`userauth`/`exit` is "-ERR command not found" and the connection stays; `event bogusformat ALL` is plain;
//! `linger` needs a controlled session; `myevents <uuid> json` keeps plain (the 1.10.12 bug); filters decide with
//! FreeSWITCH's first-match algorithm below.

use std::collections::HashSet;

use crate::esl::{ContentType, Event};

/// Every event name FreeSWITCH 1.10 knows (`EVENT_NAMES` in switch_event.c).
pub const EVENT_NAMES: &[&str] = &[
    "CUSTOM",
    "CLONE",
    "CHANNEL_CREATE",
    "CHANNEL_DESTROY",
    "CHANNEL_STATE",
    "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_OUTGOING",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "API",
    "LOG",
    "INBOUND_CHAN",
    "OUTBOUND_CHAN",
    "STARTUP",
    "SHUTDOWN",
    "PUBLISH",
    "UNPUBLISH",
    "TALK",
    "NOTALK",
    "SESSION_CRASH",
    "MODULE_LOAD",
    "MODULE_UNLOAD",
    "DTMF",
    "MESSAGE",
    "PRESENCE_IN",
    "NOTIFY_IN",
    "PRESENCE_OUT",
    "PRESENCE_PROBE",
    "MESSAGE_WAITING",
    "MESSAGE_QUERY",
    "ROSTER",
    "CODEC",
    "BACKGROUND_JOB",
    "DETECTED_SPEECH",
    "DETECTED_TONE",
    "PRIVATE_COMMAND",
    "HEARTBEAT",
    "TRAP",
    "ADD_SCHEDULE",
    "DEL_SCHEDULE",
    "EXE_SCHEDULE",
    "RE_SCHEDULE",
    "RELOADXML",
    "NOTIFY",
    "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE",
    "SEND_MESSAGE",
    "RECV_MESSAGE",
    "REQUEST_PARAMS",
    "CHANNEL_DATA",
    "GENERAL",
    "COMMAND",
    "SESSION_HEARTBEAT",
    "CLIENT_DISCONNECTED",
    "SERVER_DISCONNECTED",
    "SEND_INFO",
    "RECV_INFO",
    "RECV_RTCP_MESSAGE",
    "SEND_RTCP_MESSAGE",
    "CALL_SECURE",
    "NAT",
    "RECORD_START",
    "RECORD_STOP",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "CALL_UPDATE",
    "FAILURE",
    "SOCKET_DATA",
    "MEDIA_BUG_START",
    "MEDIA_BUG_STOP",
    "CONFERENCE_DATA_QUERY",
    "CONFERENCE_DATA",
    "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT",
    "CALL_DETAIL",
    "DEVICE_STATE",
    "TEXT",
    "SHUTDOWN_REQUESTED",
    "ALL",
];

/// Events `myevents` subscribes to.
const MYEVENTS: &[&str] = &[
    "CHANNEL_ANSWER",
    "CHANNEL_APPLICATION",
    "CHANNEL_BRIDGE",
    "CHANNEL_CREATE",
    "CHANNEL_DATA",
    "CHANNEL_DESTROY",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "CHANNEL_OUTGOING",
    "CHANNEL_PARK",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_STATE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_UNPARK",
    "DETECTED_SPEECH",
    "DTMF",
    "NOTALK",
    "TALK",
];

fn known_event(name: &str) -> Option<&'static str> {
    EVENT_NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .copied()
}

/// A client connection's subscription state.
#[derive(Debug, Clone)]
pub struct Listener {
    pub id: u64,
    pub uuid: String,
    pub authed: bool,
    pub events_on: bool,
    pub all: bool,
    pub subscribed: HashSet<&'static str>,
    pub custom: HashSet<String>,
    pub format: ContentType,
    /// Filters in order (`filter <header> <value>`), duplicates allowed.
    pub filters: Vec<(String, String)>,
    pub myevents: Option<String>,
    pub log_level: Option<u8>,
    pub linger: bool,
}

impl Listener {
    pub fn new(id: u64) -> Listener {
        Listener {
            id,
            uuid: uuid::Uuid::new_v4().to_string(),
            authed: false,
            events_on: false,
            all: false,
            subscribed: HashSet::new(),
            custom: HashSet::new(),
            format: ContentType::EventPlain,
            filters: Vec::new(),
            myevents: None,
            log_level: None,
            linger: false,
        }
    }

    /// The event names this listener may receive (`None` = all).
    pub fn interest(&self) -> Option<Vec<&'static str>> {
        if !self.events_on {
            return Some(Vec::new());
        }
        if self.all {
            return None;
        }
        Some(self.subscribed.iter().copied().collect())
    }

    /// `event_handler` of mod_event_socket: subscription, then filters, then myevents.
    pub fn wants(&self, event: &Event) -> bool {
        if !self.authed || !self.events_on {
            return false;
        }
        // FreeSWITCH dispatches on the event's id, not its headers: an event created as a clone
        // (`SWITCH_EVENT_CLONE`, as the non-blocking mod_amd's `amd::info`) has no Event-Name and the id of CUSTOM.
        let name = event.name().unwrap_or(if event.subclass().is_some() {
            "CUSTOM"
        } else {
            ""
        });
        let mut send = self.all || self.subscribed.contains(name);
        if name == "CUSTOM" && !self.all {
            send = event.subclass().is_some_and(|s| self.custom.contains(s));
        }
        if send && !self.filters.is_empty() {
            send = false;
            for (hname, hval) in &self.filters {
                let Some(value) = event.get(hname) else {
                    continue;
                };
                let mut comp = hval.as_str();
                let mut pos = true;
                while let Some(c) = comp.chars().next() {
                    match c {
                        '+' => pos = true,
                        '-' => pos = false,
                        ' ' => {}
                        _ => break,
                    }
                    comp = &comp[1..];
                }
                if send && pos {
                    continue;
                }
                let cmp = if hval.starts_with('/') {
                    regex_matches(value, comp)
                } else {
                    value.eq_ignore_ascii_case(comp)
                };
                if cmp {
                    if pos {
                        send = true;
                    } else {
                        send = false;
                        break;
                    }
                }
            }
        }
        if send && let Some(uuid) = &self.myevents {
            send = event.unique_id() == Some(uuid.as_str())
                || event.get("Job-Owner-UUID") == Some(self.uuid.as_str());
        }
        send
    }

    /// `event [plain|json|xml] NAME…`.
    pub fn event_cmd(&mut self, line: &str) -> String {
        let mut keys = 0;
        let mut custom = false;
        if let Some(rest) = line.get(5..).and_then(|r| r.find(' ').map(|p| &r[p + 1..])) {
            for (i, cur) in rest.split(' ').enumerate() {
                if i == 0 {
                    match cur.to_ascii_lowercase().as_str() {
                        "xml" => {
                            self.format = ContentType::EventXml;
                            continue;
                        }
                        "plain" => {
                            self.format = ContentType::EventPlain;
                            continue;
                        }
                        "json" => {
                            self.format = ContentType::EventJson;
                            continue;
                        }
                        _ => {}
                    }
                }
                if custom {
                    self.custom.insert(cur.to_string());
                } else if let Some(name) = known_event(cur) {
                    keys += 1;
                    if name == "ALL" {
                        self.all = true;
                    } else {
                        self.subscribed.insert(name);
                    }
                    if name == "CUSTOM" {
                        custom = true;
                    }
                }
            }
        }
        if keys == 0 {
            return "-ERR no keywords supplied".into();
        }
        self.events_on = true;
        format!("+OK event listener enabled {}", format_name(self.format))
    }

    /// `nixevent NAME…`.
    pub fn nixevent_cmd(&mut self, line: &str) -> String {
        let mut keys = 0;
        let mut custom = false;
        if let Some(rest) = line.get(8..).and_then(|r| r.find(' ').map(|p| &r[p + 1..])) {
            for cur in rest.split(' ') {
                if custom {
                    self.custom.remove(cur);
                } else if let Some(name) = known_event(cur) {
                    keys += 1;
                    if name == "CUSTOM" {
                        custom = true;
                    } else if name == "ALL" {
                        self.all = false;
                        self.subscribed.clear();
                    } else {
                        if self.all {
                            self.all = false;
                            self.subscribed = EVENT_NAMES
                                .iter()
                                .copied()
                                .filter(|n| *n != "ALL")
                                .collect();
                        }
                        self.subscribed.remove(name);
                    }
                }
            }
        }
        if keys == 0 {
            return "-ERR no keywords supplied".into();
        }
        self.events_on = true;
        "+OK events nixed".into()
    }

    pub fn noevents_cmd(&mut self) -> String {
        if self.events_on {
            self.events_on = false;
            self.all = false;
            self.subscribed.clear();
            self.custom.clear();
            "+OK no longer listening for events".into()
        } else {
            "-ERR not listening for events".into()
        }
    }

    /// `filter <header> <value>`, `filter delete <header> [value]`, `filter delete all`.
    pub fn filter_cmd(&mut self, line: &str) -> String {
        let rest = line[7..].trim_start_matches(' ');
        let (name, val) = match rest.split_once(' ') {
            Some((n, v)) => (n, Some(v)),
            None => (rest, None),
        };
        if name.eq_ignore_ascii_case("delete")
            && let Some(v) = val
        {
            let (n, v2) = match v.split_once(' ') {
                Some((n, v2)) => (n, Some(v2)),
                None => (v, None),
            };
            if n.eq_ignore_ascii_case("all") {
                self.filters.clear();
            } else {
                // `switch_event_del_header_val`: an empty value (`zstr`) deletes every filter on the header.
                self.filters.retain(|(fname, fval)| {
                    !(fname.eq_ignore_ascii_case(n)
                        && v2.is_none_or(|v2| v2.is_empty() || fval == v2))
                });
            }
            return format!("+OK filter deleted. [{n}][{}]", v2.unwrap_or(""));
        }
        match val {
            Some(v) => {
                let (n, v) = if name.eq_ignore_ascii_case("add") {
                    match v.split_once(' ') {
                        Some((n, v)) => (n, Some(v)),
                        None => (v, None),
                    }
                } else {
                    (name, Some(v))
                };
                // `filter add <name>` has no value: FreeSWITCH adds nothing and glibc prints the NULL.
                match v {
                    Some(v) => {
                        self.filters.push((n.to_string(), v.to_string()));
                        format!("+OK filter added. [{n}]=[{v}]")
                    }
                    None => format!("+OK filter added. [{n}]=[(null)]"),
                }
            }
            None => "-ERR invalid syntax".into(),
        }
    }

    /// `myevents [<uuid> [format]]` on an inbound connection.
    pub fn myevents_cmd(&mut self, line: &str, exists: impl Fn(&str) -> bool) -> String {
        if self.myevents.is_some() {
            return "-ERR aready enabled.".into();
        }
        let arg = line.get(9..).unwrap_or("");
        let (uuid, fmt) = match arg.split_once(' ') {
            Some((u, f)) => (u, Some(f)),
            None => (arg, None),
        };
        if !exists(uuid) && fmt.is_some() {
            return "-ERR invalid uuid".into();
        }
        // FreeSWITCH 1.10.12 cuts the command before looking for the format: a format argument is ignored.
        self.myevents = Some(uuid.to_string());
        for n in MYEVENTS {
            self.subscribed.insert(n);
        }
        self.events_on = true;
        "+OK Events Enabled".into()
    }

    /// `log [level]`.
    pub fn log_cmd(&mut self, line: &str) -> String {
        let level_s = line[3..]
            .trim_start_matches(' ')
            .split(' ')
            .next()
            .unwrap_or("");
        let level = if level_s.is_empty() {
            Some(7)
        } else {
            log_level(level_s)
        };
        match level {
            Some(l) => {
                self.log_level = Some(l);
                format!("+OK log level {level_s} [{l}]")
            }
            None => "-ERR invalid log level".into(),
        }
    }
}

fn log_level(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    [
        "console", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ]
    .iter()
    .position(|n| n.eq_ignore_ascii_case(s))
    .map(|p| if p == 0 { 0 } else { p as u8 })
}

/// `switch_regex_perform` for a filter value that starts with `/`: the pattern runs to the last `/`, after which
/// `i` makes it case-insensitive and `s` lets `.` match a newline; without a closing `/` FreeSWITCH logs an error
/// and nothing matches. (FreeSWITCH uses PCRE2; the simulator, Rust's `regex`, which agrees on common patterns.)
fn regex_matches(subject: &str, expression: &str) -> bool {
    let Some((pattern, flags)) = expression
        .strip_prefix('/')
        .and_then(|rest| rest.rsplit_once('/'))
    else {
        return false;
    };
    regex::RegexBuilder::new(pattern)
        .case_insensitive(flags.contains('i'))
        .dot_matches_new_line(flags.contains('s'))
        .build()
        .is_ok_and(|r| r.is_match(subject))
}

pub fn format_name(f: ContentType) -> &'static str {
    match f {
        ContentType::EventJson => "json",
        ContentType::EventXml => "xml",
        _ => "plain",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(filters: &[&str]) -> Listener {
        let mut l = Listener::new(1);
        l.authed = true;
        l.event_cmd("event plain ALL");
        for f in filters {
            assert!(
                l.filter_cmd(&format!("filter {f}")).starts_with("+OK"),
                "{f}"
            );
        }
        l
    }

    fn event(pairs: &[(&str, &str)]) -> Event {
        Event::from_pairs(pairs.iter().copied(), None)
    }

    /// A CHANNEL_ANSWER of a call tagged with `dlr_node`.
    fn answer_on(node: &str) -> Event {
        event(&[
            ("Event-Name", "CHANNEL_ANSWER"),
            ("variable_dlr_node", node),
        ])
    }

    #[test]
    fn filters_are_ored_over_any_header_including_channel_variables() {
        let l = listener(&["variable_dlr_node node-a", "Event-Name BACKGROUND_JOB"]);
        let ours = answer_on("NODE-A");
        let theirs = answer_on("node-b");
        let bare = event(&[("Event-Name", "CHANNEL_STATE")]);
        let job = event(&[("Event-Name", "BACKGROUND_JOB")]);
        assert!(
            l.wants(&ours),
            "strcasecmp: the value is compared case-insensitively"
        );
        assert!(!l.wants(&theirs));
        assert!(
            !l.wants(&bare),
            "an event without the header matches no filter"
        );
        assert!(l.wants(&job));
    }

    #[test]
    fn regex_values_take_flags_after_the_last_slash_and_need_it() {
        let e = event(&[
            ("Event-Name", "CHANNEL_ANSWER"),
            ("Caller-Caller-ID-Number", "ABC123"),
        ]);
        assert!(listener(&["Caller-Caller-ID-Number /^abc/i"]).wants(&e));
        assert!(!listener(&["Caller-Caller-ID-Number /^abc/"]).wants(&e));
        assert!(listener(&["Caller-Caller-ID-Number /^ABC[0-9]+$/"]).wants(&e));
        assert!(
            !listener(&["Caller-Caller-ID-Number /^ABC"]).wants(&e),
            "no closing slash: FreeSWITCH's regex fails and nothing matches"
        );
    }

    #[test]
    fn a_negative_filter_vetoes_what_a_positive_one_let_through() {
        let l = listener(&["Event-Name CHANNEL_ANSWER", "variable_dlr_node -node-b"]);
        assert!(!l.wants(&answer_on("node-b")));
        assert!(l.wants(&answer_on("node-a")));
    }

    #[test]
    fn delete_with_an_empty_value_removes_every_filter_on_the_header_and_add_without_value_adds_none()
     {
        let mut l = listener(&["Unique-ID a", "Unique-ID b", "Event-Name HEARTBEAT"]);
        assert_eq!(
            l.filter_cmd("filter delete Unique-ID "),
            "+OK filter deleted. [Unique-ID][]"
        );
        assert_eq!(
            l.filters,
            [("Event-Name".to_owned(), "HEARTBEAT".to_owned())]
        );
        assert_eq!(
            l.filter_cmd("filter add Unique-ID"),
            "+OK filter added. [Unique-ID]=[(null)]"
        );
        assert_eq!(l.filters.len(), 1);
    }
}
