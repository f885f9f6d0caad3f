//! The application and argument each step sends, built from the step and the call's variables. Pure: no IO.
//!
//! Every argument goes through [`render()`](super::render::render) (which refuses member data that would change
//! the argument's structure) and, whole, through [`fs_literal`] (so FreeSWITCH's `${…}` expansion gives back
//! exactly what fsdialer rendered). Per application:
//!
//! | step | sends | fields | expansion passes |
//! |---|---|---|---|
//! | `answer` | `answer` | — | — |
//! | `playback` | `playback <file>` | File | 1 |
//! | `sleep` | `sleep <ms>` | — | — |
//! | `set` | one `set <name>=<value>` per variable | Value | 2 (the execution, then `set` itself) |
//! | `play_and_get_digits` | `<min> <max> <tries> <timeout> # <file> <invalid_file> <var> [<regex>]` | TokenFile | 1 |
//! | `transfer` | `<extension> [<dialplan> [<context>]]` | Word | 1 |
//! | `bridge` | `bridge <endpoint>` | Endpoint | 1 |
//! | `record_session` | `record_session <path>` | TokenFile | 1 |
//! | `hangup` | `hangup <cause>` | — (a validated cause name) | — |
//!
//! The pass counts assume FreeSWITCH's default (`app_disable_expand_variables` unset). A channel that disables
//! expansion gets one pass fewer: text holding `$` or `\` would then keep one level of escaping, a visible
//! corruption of that text, never an expansion.
//!
//! `play_and_get_digits` without `invalid_file` plays `silence_stream://250` after a bad entry (FreeSWITCH needs
//! the field to read the ones after it); its terminator is `#`. The regex, written by the flow author, is
//! token-escaped so quotes and backslashes reach PCRE as written.

use super::expand::{fs_literal, fs_literal_n};
use super::folders::confine;
use super::render::{Field, Refusal, render, token_escape};
use crate::campaign::callflow::{PlayAndGetDigits, Template};
use std::path::Path;

/// One `sendmsg execute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub app: &'static str,
    pub arg: String,
}

impl Command {
    fn new(app: &'static str, arg: impl Into<String>) -> Command {
        Command {
            app,
            arg: arg.into(),
        }
    }
}

/// What `play_and_get_digits` plays after a bad entry when the flow names no `invalid_file`.
pub const DEFAULT_INVALID_FILE: &str = "silence_stream://250";

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn answer() -> Command {
    Command::new("answer", "")
}

pub fn playback(
    template: &Template,
    lookup: Lookup<'_>,
    sounds: Option<&Path>,
) -> Result<Command, Refusal> {
    let file = render(template, lookup, Field::File)?;
    confine(sounds, "sounds", &file, template)?;
    Ok(Command::new("playback", fs_literal(&file)))
}

pub fn sleep(ms: u64) -> Command {
    Command::new("sleep", ms.to_string())
}

/// `set name=value`; also returns the rendered value (what the flow's `${name}` reads afterwards).
pub fn set(name: &str, value: &Template, lookup: Lookup<'_>) -> Result<(Command, String), Refusal> {
    let value = render(value, lookup, Field::Value)?;
    Ok((set_literal(name, &value), value))
}

/// `set name=value` with a value fsdialer chose itself (still escaped: it may hold anything).
pub fn set_literal(name: &str, value: &str) -> Command {
    Command::new("set", fs_literal_n(&format!("{name}={value}"), 2))
}

pub fn play_and_get_digits(
    p: &PlayAndGetDigits,
    lookup: Lookup<'_>,
    sounds: Option<&Path>,
) -> Result<Command, Refusal> {
    let file = render(&p.file, lookup, Field::TokenFile)?;
    confine(sounds, "sounds", &file, &p.file)?;
    let invalid = match &p.invalid_file {
        Some(t) => {
            let f = render(t, lookup, Field::TokenFile)?;
            confine(sounds, "sounds", &f, t)?;
            f
        }
        None => DEFAULT_INVALID_FILE.to_string(),
    };
    let mut arg = format!(
        "{} {} {} {} # {file} {invalid} {}",
        p.min, p.max, p.tries, p.timeout_ms, p.var
    );
    if let Some(regex) = &p.regex {
        arg.push(' ');
        arg.push_str(&token_escape(regex.as_str()));
    }
    Ok(Command::new("play_and_get_digits", fs_literal(&arg)))
}

/// The entry `play_and_get_digits` accepted: `min..=max` characters matching the regex (any, without one).
/// FreeSWITCH checks the same, but leaves a too-short entry in the variable after the last try, so the runner
/// checks again.
pub fn accept_digits(p: &PlayAndGetDigits, entered: &str) -> Option<String> {
    let len = entered.chars().count();
    if entered.is_empty() || len < p.min as usize || len > p.max as usize {
        return None;
    }
    match &p.regex {
        Some(r) if !r.is_match(entered) => None,
        _ => Some(entered.to_string()),
    }
}

/// `transfer`; also returns the destination as rendered (`extension dialplan context`, unescaped).
pub fn transfer(
    extension: &Template,
    dialplan: Option<&Template>,
    context: Option<&Template>,
    lookup: Lookup<'_>,
) -> Result<(Command, String), Refusal> {
    let ext = render(extension, lookup, Field::Word)?;
    if ext.starts_with('-') {
        return Err(Refusal {
            variable: extension.variables().next().map(str::to_string),
            message: format!(
                "the extension renders as {:?}, which transfer reads as a flag",
                truncate(&ext)
            ),
        });
    }
    let mut words = vec![ext];
    if dialplan.is_some() || context.is_some() {
        words.push(match dialplan {
            Some(t) => render(t, lookup, Field::Word)?,
            None => "XML".to_string(),
        });
    }
    if let Some(t) = context {
        words.push(render(t, lookup, Field::Word)?);
    }
    let arg = words.join(" ");
    refuse_custom_delimiter(&arg, extension)?;
    let destination = arg.clone();
    Ok((Command::new("transfer", fs_literal(&arg)), destination))
}

/// `bridge`; also returns the endpoint as rendered.
pub fn bridge(endpoint: &Template, lookup: Lookup<'_>) -> Result<(Command, String), Refusal> {
    let endpoint = render(endpoint, lookup, Field::Endpoint)?;
    Ok((Command::new("bridge", fs_literal(&endpoint)), endpoint))
}

pub fn record_session(
    path: &Template,
    lookup: Lookup<'_>,
    recordings: Option<&Path>,
) -> Result<Command, Refusal> {
    let path_text = render(path, lookup, Field::TokenFile)?;
    confine(recordings, "recordings", &path_text, path)?;
    refuse_custom_delimiter(&path_text, path)?;
    Ok(Command::new("record_session", fs_literal(&path_text)))
}

pub fn hangup(cause: Option<&str>) -> Command {
    Command::new("hangup", cause.unwrap_or("NORMAL_CLEARING"))
}

/// `^^X` at the start of a space-separated argument makes FreeSWITCH split on X instead.
fn refuse_custom_delimiter(arg: &str, template: &Template) -> Result<(), Refusal> {
    if arg.starts_with("^^") {
        return Err(Refusal {
            variable: template.variables().next().map(str::to_string),
            message:
                "the argument starts with \"^^\", which FreeSWITCH reads as a custom delimiter"
                    .into(),
        });
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::super::expand::tests::expand_once;
    use super::super::render::tests::split_blank;
    use super::*;

    const HOSTILE: &[(&str, &str)] = &[
        ("spaces", "1 2 3 x.wav"),
        ("dial", "a,b|c"),
        ("braces", "{x=y}"),
        ("expansion", "${hostname}"),
        ("api", "${system touch /tmp/x}"),
        ("newline", "a\nb"),
        ("app", "&bridge(sofia/gateway/x/1)"),
        ("quote", "it's"),
        ("backslash", "a\\ b"),
        ("delim", "^^:a:b"),
        ("flag", "-both"),
    ];

    fn lookup(name: &str) -> Option<String> {
        match name {
            "lang" => Some("uk".into()),
            "ext" => Some("1000".into()),
            "number" => Some("+380501234567".into()),
            "domain" => Some("192.0.2.2".into()),
            _ => HOSTILE
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string()),
        }
    }

    fn t(s: &str) -> Template {
        Template::parse(s).unwrap()
    }

    fn pagd(file: &str) -> PlayAndGetDigits {
        PlayAndGetDigits {
            min: 1,
            max: 1,
            tries: 3,
            timeout_ms: 5000,
            file: t(file),
            invalid_file: None,
            var: "choice".into(),
            regex: Some(regex::Regex::new(r"^[12]\d*$").unwrap()),
        }
    }

    #[test]
    fn ordinary_steps_send_what_freeswitch_expects() {
        assert_eq!(
            playback(&t("ivr/${lang}/hello.wav"), &lookup, None).unwrap(),
            Command::new("playback", "ivr/uk/hello.wav")
        );
        let c = play_and_get_digits(&pagd("ivr/${lang}/menu.wav"), &lookup, None).unwrap();
        assert_eq!(c.app, "play_and_get_digits");
        let read = split_blank(&expand_once(&c.arg));
        assert_eq!(
            read,
            [
                "1",
                "1",
                "3",
                "5000",
                "#",
                "ivr/uk/menu.wav",
                DEFAULT_INVALID_FILE,
                "choice",
                r"^[12]\d*$"
            ]
        );
        let (c, dest) = transfer(&t("${ext}"), None, Some(&t("default")), &lookup).unwrap();
        assert_eq!(
            (c.arg.as_str(), dest.as_str()),
            ("1000 XML default", "1000 XML default")
        );
        let (c, _) = bridge(&t("user/operator@${domain}"), &lookup).unwrap();
        assert_eq!(c.arg, "user/operator@192.0.2.2");
        assert_eq!(hangup(None).arg, "NORMAL_CLEARING");
        assert_eq!(sleep(250).arg, "250");
    }

    #[test]
    fn hostile_member_values_cannot_change_any_structured_argument() {
        for (var, _) in HOSTILE.iter().filter(|(v, _)| *v != "flag") {
            let r = format!("x${{{var}}}");
            assert!(playback(&t(&r), &lookup, None).is_err(), "playback {var}");
            assert!(
                play_and_get_digits(&pagd(&r), &lookup, None).is_err(),
                "pagd {var}"
            );
            assert!(
                transfer(&t(&r), None, None, &lookup).is_err(),
                "transfer {var}"
            );
            assert!(
                bridge(&t(&format!("sofia/gateway/gw/{r}")), &lookup).is_err(),
                "bridge {var}"
            );
            assert!(
                record_session(&t(&r), &lookup, None).is_err(),
                "record_session {var}"
            );
        }
    }

    #[test]
    fn hostile_member_values_in_set_arrive_as_data() {
        for (var, value) in HOSTILE {
            let template = t(&format!("${{{var}}}"));
            match set("note", &template, &lookup) {
                Ok((c, rendered)) => {
                    assert_eq!(rendered, *value);
                    // Two expansion passes (the execution, then `set`) give back exactly `note=<value>`.
                    let stored = expand_once(&expand_once(&c.arg));
                    assert_eq!(stored, format!("note={value}"), "sent {:?}", c.arg);
                }
                Err(e) => {
                    assert_eq!(*var, "newline", "only control characters are refused: {e}");
                }
            }
        }
    }

    #[test]
    fn a_leading_dash_or_custom_delimiter_is_refused() {
        let e = transfer(&t("-${lang}"), None, None, &lookup).unwrap_err();
        assert!(e.message.contains("flag"), "{e}");
        let e = transfer(&t("${flag}"), None, None, &lookup).unwrap_err();
        assert_eq!(e.variable.as_deref(), Some("flag"));
        // Inside a path a dash is just a character.
        assert_eq!(
            playback(&t("ivr/${flag}.wav"), &lookup, None).unwrap().arg,
            "ivr/-both.wav"
        );
        let e = record_session(&t("^^:a"), &lookup, None).unwrap_err();
        assert!(e.message.contains("custom delimiter"), "{e}");
    }

    #[test]
    fn digits_are_accepted_by_length_and_regex() {
        let mut p = pagd("m.wav");
        assert_eq!(accept_digits(&p, "1").as_deref(), Some("1"));
        assert_eq!(accept_digits(&p, "7"), None);
        assert_eq!(accept_digits(&p, ""), None);
        p.max = 3;
        p.min = 2;
        assert_eq!(accept_digits(&p, "1"), None);
        assert_eq!(accept_digits(&p, "123").as_deref(), Some("123"));
        assert_eq!(accept_digits(&p, "1234"), None);
        p.regex = None;
        assert_eq!(accept_digits(&p, "*9").as_deref(), Some("*9"));
    }

    proptest::proptest! {
        #[test]
        fn any_member_value_either_is_refused_or_stays_inside_its_field(
            value in "[a-zA-Zа-я0-9 '\"\\$%{}(),|&^:!@#*+=._/-]{0,16}",
        ) {
            let lookup = |name: &str| (name == "v").then(|| value.clone());
            if let Ok(c) = play_and_get_digits(&pagd("ivr/${v}.wav"), &lookup, None) {
                let read = split_blank(&expand_once(&c.arg));
                proptest::prop_assert_eq!(read.len(), 9, "{:?}", read);
                proptest::prop_assert_eq!(&read[5], &format!("ivr/{value}.wav"));
            }
            if let Ok((c, _)) = transfer(&t("${v}"), None, Some(&t("default")), &lookup) {
                let read = split_blank(&expand_once(&c.arg));
                proptest::prop_assert_eq!(read, vec![value.clone(), "XML".to_string(), "default".to_string()]);
            }
            if let Ok((c, _)) = bridge(&t("sofia/gateway/gw/${v}"), &lookup) {
                let sent = expand_once(&c.arg);
                let tail = sent.strip_prefix("sofia/gateway/gw/").unwrap_or("");
                proptest::prop_assert!(!tail.contains([',', '|', '{', '}', '[', ']', '<', '>', ':', '^', '/', ' ']), "{}", sent);
            }
            let (c, rendered) = set("note", &t("${v}"), &lookup).unwrap();
            proptest::prop_assert_eq!(&rendered, &value);
            proptest::prop_assert_eq!(expand_once(&expand_once(&c.arg)), format!("note={value}"));
        }
    }
}
