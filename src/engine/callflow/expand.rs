//! Making text survive FreeSWITCH's `${...}` expansion unchanged.
//!
//! FreeSWITCH expands channel variables in every application argument it executes (`switch_core_session_exec`,
//! unless the channel sets `app_disable_expand_variables`), and `set` expands its value a second time. Expansion
//! is not harmless text substitution: `${name}` reads any channel variable and `${api args}` runs an API command
//! (`${system ...}` where mod_commands allows it). fsdialer substitutes `${name}` itself (SPEC §7), so nothing it
//! sends is meant to be expanded; member data in particular must reach the application as written.
//!
//! The expansion pass (`switch_channel_expand_variables_check`, FreeSWITCH 1.10) only rewrites a string that
//! contains a variable reference (`$` followed by `{`, possibly with backslashes between) or an escape (a
//! backslash followed by `\`, `n`, `s`, `t` or `'`). When it does rewrite, `\$` becomes `$` and `\\` becomes `\`
//! (and `\'` disappears). So [`fs_literal`] doubles every backslash and escapes every `$`: if the result would be
//! rewritten, the pass turns it back into the original exactly; if it would not be rewritten, neither would the
//! original (it then holds no backslash and no `${`), and the original is sent as is. [`fs_literal_n`] repeats
//! that for arguments expanded more than once. The property is tested against a model of the expansion pass
//! below (`tests::expand_once`).

use std::borrow::Cow;

/// Whether FreeSWITCH's expansion pass would rewrite `s` at all.
pub fn would_expand(s: &str) -> bool {
    has_variable_reference(s) || has_escaped_data(s)
}

/// `$` followed (after any backslashes) by `{`: FreeSWITCH's `switch_string_var_check_const`.
fn has_variable_reference(s: &str) -> bool {
    let mut dollar = false;
    for b in s.bytes() {
        if b == b'$' {
            dollar = true;
        } else if dollar {
            if b == b'{' {
                return true;
            }
            if b != b'\\' {
                dollar = false;
            }
        }
    }
    false
}

/// A backslash followed by `\`, `n`, `s`, `t` or `'`: FreeSWITCH's `switch_string_has_escaped_data`.
fn has_escaped_data(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'\\' && matches!(bytes.get(i + 1), Some(b'\\' | b'n' | b's' | b't' | b'\''))
    })
}

/// `text` in a form that one FreeSWITCH expansion pass turns back into `text` exactly.
pub fn fs_literal(text: &str) -> Cow<'_, str> {
    if !text.contains(['$', '\\']) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '$' => escaped.push_str("\\$"),
            other => escaped.push(other),
        }
    }
    if would_expand(&escaped) {
        Cow::Owned(escaped)
    } else {
        // Not rewritten means `text` has no backslash and no `${`: FreeSWITCH leaves it alone too.
        Cow::Borrowed(text)
    }
}

/// `text` protected against `passes` successive expansion passes.
pub fn fs_literal_n(text: &str, passes: usize) -> String {
    let mut out = text.to_string();
    for _ in 0..passes {
        out = fs_literal(&out).into_owned();
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A model of one FreeSWITCH expansion pass, written from the behaviour of
    /// `switch_channel_expand_variables_check` in FreeSWITCH 1.10: escapes, `${var}` (here: `<var:NAME>`),
    /// `${api args}` / `${api(args)}` (here: `<api:TEXT>`), `$${global}` (here: `<global:NAME>`). Enough to tell
    /// whether anything got expanded; nested braces are followed like FreeSWITCH does.
    pub(crate) fn expand_once(input: &str) -> String {
        if !would_expand(input) {
            return input.to_string();
        }
        let b: Vec<char> = input.chars().collect();
        let mut out = String::new();
        let mut p = 0usize;
        while p < b.len() {
            let mut literal = false;
            if b[p] == '\\' {
                match b.get(p + 1) {
                    Some('$') => {
                        literal = true;
                        p += 1;
                        if b.get(p + 1) == Some(&'$') {
                            p += 1;
                        }
                    }
                    Some('\'') => {
                        p += 2;
                        continue;
                    }
                    Some('\\') => {
                        out.push('\\');
                        p += 2;
                        continue;
                    }
                    _ => {}
                }
            }
            let mut global = false;
            let mut reference = false;
            if b[p] == '$' && !literal {
                let mut q = p;
                if b.get(q + 1) == Some(&'$') {
                    q += 1;
                    global = true;
                }
                p = q;
                reference = b.get(q + 1) == Some(&'{');
            }
            if !reference {
                out.push(b[p]);
                p += 1;
                continue;
            }
            // p at the `$` before `{`: read up to the matching `}`.
            let mut e = p + 2;
            let mut depth = 1;
            let start = e;
            while e < b.len() {
                if b[e] == '{' {
                    depth += 1;
                } else if b[e] == '}' {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                e += 1;
            }
            let name: String = b[start..e.min(b.len())].iter().collect();
            if global {
                out.push_str(&format!("<global:{name}>"));
            } else if name.contains([' ', '(']) {
                out.push_str(&format!("<api:{name}>"));
            } else {
                out.push_str(&format!("<var:{name}>"));
            }
            p = e + 1;
        }
        out
    }

    #[test]
    fn the_model_expands_what_freeswitch_expands() {
        assert_eq!(expand_once("a${hostname}b"), "a<var:hostname>b");
        assert_eq!(expand_once("${system rm -rf /}"), "<api:system rm -rf />");
        assert_eq!(expand_once("$${sound_prefix}/x"), "<global:sound_prefix>/x");
        assert_eq!(expand_once("price $5"), "price $5");
        assert_eq!(expand_once("a\\b"), "a\\b");
        assert_eq!(expand_once("a\\\\b"), "a\\b");
        assert_eq!(expand_once("\\${x}"), "${x}");
    }

    #[test]
    fn hostile_values_come_out_of_expansion_as_written() {
        for text in [
            "${hostname}",
            "x${uuid}y",
            "${system(touch /tmp/pwned)}",
            "$${global}",
            "\\${hostname}",
            "\\\\${hostname}",
            "price $5",
            "C:\\new\\table",
            "it\\'s",
            "$",
            "\\",
            "$\\{a}",
            "plain text",
        ] {
            let sent = fs_literal(text);
            assert_eq!(expand_once(&sent), text, "sent {sent:?}");
            let twice = fs_literal_n(text, 2);
            assert_eq!(expand_once(&expand_once(&twice)), text, "sent {twice:?}");
        }
    }

    #[test]
    fn text_without_dollar_or_backslash_is_sent_unchanged() {
        assert!(matches!(fs_literal("ivr/hello.wav"), Cow::Borrowed(_)));
        assert_eq!(fs_literal("price $5"), "price $5");
        assert_eq!(fs_literal("${x}"), "\\${x}");
    }

    proptest! {
        #[test]
        fn one_pass_restores_any_text(text in "[a-z$\\\\{}' ()n]{0,24}") {
            let sent = fs_literal(&text);
            prop_assert_eq!(expand_once(&sent), text);
        }

        #[test]
        fn n_passes_restore_any_text(text in "[a-z$\\\\{}' ()st]{0,16}", passes in 1usize..4) {
            let mut sent = fs_literal_n(&text, passes);
            for _ in 0..passes {
                sent = expand_once(&sent);
            }
            prop_assert_eq!(sent, text);
        }
    }
}
