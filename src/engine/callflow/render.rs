//! Rendering a step's templates into application arguments that member data cannot change the meaning of.
//!
//! A substituted value (a member variable, the member's name or number, a channel variable, digits the callee
//! typed) lands in a *field* of an application argument, and what it may contain depends on how FreeSWITCH reads
//! that field. Each field has a [`Field`] kind:
//!
//! | kind | used by | a substituted value may contain | then |
//! |---|---|---|---|
//! | [`Field::Value`] | `set` values | anything but control characters | expansion-escaped with the whole argument |
//! | [`Field::File`] | `playback.file` | letters, digits, `_ - . / +` | expansion-escaped |
//! | [`Field::TokenFile`] | `play_and_get_digits.file/invalid_file`, `record_session.path` | letters, digits, `_ - . / +` | token-escaped, then expansion-escaped |
//! | [`Field::Word`] | `transfer.extension/dialplan/context` | letters, digits, `_ - . + * #` | token-escaped, then expansion-escaped |
//! | [`Field::Endpoint`] | `bridge.endpoint` | letters, digits, `_ - . + * # @` | expansion-escaped |
//!
//! A value with any other character **refuses the step** ([`Refusal`]): nothing is sent, the flow ends with the
//! error recorded and the call is hung up. Refusing rather than encoding, because these fields have no encoding
//! FreeSWITCH undoes for every character: a space splits `play_and_get_digits`' and `record_session`'s and
//! `transfer`'s arguments, `,` `|` `{}` `[]` `<>` `:_:` `^^` restructure a dial string, `{…}` in front of a file
//! sets variables, `!` chains files, `:` switches the file interface (`say:`, `http://`…), `@@` seeks, `'` `"`
//! `\` are quoting in tokenised arguments, `$` starts an expansion. Letters and digits include every script, so
//! names and numbers in any language pass. The whole rendered field must also not be empty (an empty token
//! shifts the following arguments) and a transfer extension must not start with `-` (`-bleg`, `-both` are flags).
//!
//! Literal text written by the flow author is trusted (it was validated when the campaign was saved), but it is
//! escaped the same way so it reaches the application as written: token escaping ([`token_escape`]) keeps a
//! space, quote or backslash inside one token of a space-separated argument, and expansion escaping
//! ([`super::expand::fs_literal`]) keeps FreeSWITCH from expanding anything in the final argument.

use crate::campaign::callflow::{Segment, Template};

/// How a field of an application argument is read by FreeSWITCH (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A variable's value after `name=` in `set`: free text.
    Value,
    /// The whole argument of `playback`: a file path or stream.
    File,
    /// A file path that is one space-separated token of the argument.
    TokenFile,
    /// A dialplan word (extension, dialplan, context) that is one space-separated token.
    Word,
    /// A `bridge` dial string.
    Endpoint,
}

impl Field {
    /// Whether a substituted value may contain `c` in this field.
    pub fn allows(self, c: char) -> bool {
        if c.is_control() {
            return false;
        }
        match self {
            Field::Value => true,
            Field::File | Field::TokenFile => {
                c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '+')
            }
            Field::Word => c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '*' | '#'),
            Field::Endpoint => {
                c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '*' | '#' | '@')
            }
        }
    }

    /// What the field is, for messages.
    fn describe(self) -> &'static str {
        match self {
            Field::Value => "a variable value",
            Field::File => "a file path",
            Field::TokenFile => "a file path inside a space-separated argument",
            Field::Word => "a dialplan word inside a space-separated argument",
            Field::Endpoint => "a bridge dial string",
        }
    }

    /// The characters a value may hold, for messages.
    fn allowed(self) -> &'static str {
        match self {
            Field::Value => "any character but control characters",
            Field::File | Field::TokenFile => "letters, digits and _ - . / +",
            Field::Word => "letters, digits and _ - . + * #",
            Field::Endpoint => "letters, digits and _ - . + * # @",
        }
    }

    /// Whether the field is a file path (member data may not make it climb or absolute).
    fn is_path(self) -> bool {
        matches!(self, Field::File | Field::TokenFile)
    }

    /// Whether the field is one token of a space-separated argument.
    fn tokenised(self) -> bool {
        matches!(self, Field::TokenFile | Field::Word)
    }
}

/// Why a field could not be rendered safely. The refused value itself is never repeated (it may be long or
/// hostile); the character and its position are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The variable whose value was refused, when one was.
    pub variable: Option<String>,
    pub message: String,
}

/// Renders `template` for `field`: each `${name}` is replaced by `lookup(name)` (missing = empty) after checking
/// its characters; the result is token-escaped when the field is a token. Expansion escaping is applied later, to
/// the whole argument.
pub fn render(
    template: &Template,
    lookup: &dyn Fn(&str) -> Option<String>,
    field: Field,
) -> Result<String, Refusal> {
    let mut out = String::with_capacity(template.source().len());
    let mut substituted: Vec<Substituted<'_>> = Vec::new();
    for segment in template.segments() {
        match segment {
            Segment::Literal(text) => out.push_str(text),
            Segment::Var(name) => {
                let Some(value) = lookup(name) else { continue };
                substituted.push(Substituted {
                    name,
                    bytes: out.len()..out.len() + value.len(),
                });
                if let Some((at, c)) = value.chars().enumerate().find(|(_, c)| !field.allows(*c)) {
                    return Err(Refusal {
                        variable: Some(name.clone()),
                        message: format!(
                            "the value of ${{{name}}} has {} at character {} and cannot go into {} \
                             (allowed: {})",
                            describe_char(c),
                            at + 1,
                            field.describe(),
                            field.allowed()
                        ),
                    });
                }
                out.push_str(&value);
            }
        }
    }
    if field.is_path() {
        path_escape(&out, &substituted)?;
    }
    if field != Field::Value && out.is_empty() {
        let vars: Vec<String> = template.variables().map(|v| format!("${{{v}}}")).collect();
        return Err(Refusal {
            variable: template.variables().next().map(str::to_string),
            message: format!(
                "renders empty ({} not set) and {} cannot be empty",
                vars.join(", "),
                field.describe()
            ),
        });
    }
    Ok(if field.tokenised() {
        token_escape(&out)
    } else {
        out
    })
}

/// Where a variable's value landed in a rendered field.
struct Substituted<'a> {
    name: &'a str,
    bytes: std::ops::Range<usize>,
}

/// Refuses a path that member data makes absolute (a value at its start beginning with `/`) or makes climb (a
/// `..` component holding substituted text): a value can then only name something inside the folder the flow's
/// author wrote (`/var/lib/fsdialer/recordings/${number}.wav`, `ivr/${lang}/hello.wav`).
fn path_escape(path: &str, substituted: &[Substituted<'_>]) -> Result<(), Refusal> {
    let culprit = |range: std::ops::Range<usize>| {
        substituted
            .iter()
            .find(|s| s.bytes.start < range.end && range.start < s.bytes.end)
    };
    if path.starts_with('/')
        && let Some(s) = culprit(0..1)
    {
        return Err(Refusal {
            variable: Some(s.name.to_string()),
            message: format!(
                "the value of ${{{}}} starts with / and would make the path absolute",
                s.name
            ),
        });
    }
    let mut at = 0;
    for component in path.split('/') {
        let range = at..at + component.len();
        at = range.end + 1;
        if component == ".."
            && let Some(s) = culprit(range)
        {
            return Err(Refusal {
                variable: Some(s.name.to_string()),
                message: format!(
                    "the value of ${{{}}} makes a .. path component, which would climb out of the folder",
                    s.name
                ),
            });
        }
    }
    Ok(())
}

/// Escapes one token of a space-separated FreeSWITCH argument (`switch_separate_string` with a blank delimiter)
/// so it is read back as written: `\` → `\\`, `'` → `\'`, `"` → `\"`, space → `\s`.
pub fn token_escape(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            ' ' => out.push_str("\\s"),
            other => out.push(other),
        }
    }
    out
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\n' => "a line break".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        c if c.is_control() => format!("control character U+{:04X}", c as u32),
        c => format!("{c:?}"),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A model of FreeSWITCH's blank-delimited `switch_separate_string` (quotes, backslash escapes, `\s`), written
    /// from its behaviour in 1.10: how a tokenised argument is read back.
    pub(crate) fn split_blank(input: &str) -> Vec<String> {
        let chars: Vec<char> = input.chars().collect();
        // Tokenise: a space outside quotes ends a token; a backslash protects the next character.
        let mut raw: Vec<Vec<char>> = Vec::new();
        let mut p = 0;
        while p < chars.len() {
            while p < chars.len() && chars[p] == ' ' {
                p += 1;
            }
            if p >= chars.len() {
                break;
            }
            let mut token = Vec::new();
            let mut quoted = false;
            while p < chars.len() {
                let c = chars[p];
                if c == '\\' {
                    token.push(c);
                    if let Some(&n) = chars.get(p + 1) {
                        token.push(n);
                    }
                    p += 2;
                    continue;
                }
                if c == '\'' {
                    quoted = !quoted;
                } else if c == ' ' && !quoted {
                    break;
                }
                token.push(c);
                p += 1;
            }
            raw.push(token);
        }
        raw.into_iter().map(|t| cleanup(&t)).collect()
    }

    fn cleanup(t: &[char]) -> String {
        let mut out = String::new();
        let mut quoted = false;
        let mut i = 0;
        while i < t.len() {
            let c = t[i];
            if c == '\\'
                && let Some(&e) = t.get(i + 1)
            {
                let unescaped = match e {
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    's' => Some(' '),
                    '\'' | '"' | '\\' => Some(e),
                    _ => None,
                };
                if let Some(u) = unescaped {
                    out.push(u);
                    i += 2;
                    continue;
                }
            }
            if c == '\'' && (quoted || t[i + 1..].contains(&'\'')) {
                quoted = !quoted;
            } else {
                out.push(c);
            }
            i += 1;
        }
        out.trim_end_matches(' ').to_string()
    }

    fn vars(name: &str) -> Option<String> {
        match name {
            "lang" => Some("uk".into()),
            "spaces" => Some("1 2 3 x.wav".into()),
            "dial" => Some("a,b|c".into()),
            "braces" => Some("{x=y}".into()),
            "expansion" => Some("${hostname}".into()),
            "newline" => Some("a\nb".into()),
            "app" => Some("&bridge(sofia/gateway/x/1)".into()),
            "name" => Some("Олена Петрівна".into()),
            "number" => Some("+380501234567".into()),
            "dash" => Some("-both".into()),
            _ => None,
        }
    }

    fn t(s: &str) -> Template {
        Template::parse(s).unwrap()
    }

    #[test]
    fn plain_values_render_in_every_field() {
        assert_eq!(
            render(&t("ivr/${lang}/hi.wav"), &vars, Field::File).unwrap(),
            "ivr/uk/hi.wav"
        );
        assert_eq!(
            render(&t("sofia/gateway/gw/${number}"), &vars, Field::Endpoint).unwrap(),
            "sofia/gateway/gw/+380501234567"
        );
        assert_eq!(
            render(&t("Hello ${name}"), &vars, Field::Value).unwrap(),
            "Hello Олена Петрівна"
        );
    }

    #[test]
    fn hostile_values_are_refused_outside_set_values() {
        for field in [Field::File, Field::TokenFile, Field::Word, Field::Endpoint] {
            for var in ["spaces", "dial", "braces", "expansion", "newline", "app"] {
                let e = render(&t(&format!("x${{{var}}}")), &vars, field).unwrap_err();
                assert_eq!(e.variable.as_deref(), Some(var), "{field:?}");
                assert!(e.message.contains(&format!("${{{var}}}")), "{}", e.message);
            }
        }
        let e = render(&t("${spaces}"), &vars, Field::TokenFile).unwrap_err();
        assert!(
            e.message.contains("a space at character 2"),
            "{}",
            e.message
        );
        let e = render(&t("${newline}"), &vars, Field::Value).unwrap_err();
        assert!(e.message.contains("a line break"), "{}", e.message);
    }

    #[test]
    fn member_data_cannot_climb_out_of_a_path_or_make_it_absolute() {
        let vars = |name: &str| -> Option<String> {
            match name {
                "up" => Some("..".into()),
                "climb" => Some("../../etc/passwd".into()),
                "abs" => Some("/etc/passwd".into()),
                "dot" => Some(".".into()),
                "ok" => Some("a..b/c.wav".into()),
                _ => None,
            }
        };
        for field in [Field::File, Field::TokenFile] {
            for (template, var) in [
                ("/rec/${climb}.wav", "climb"),
                ("ivr/${up}/x.wav", "up"),
                ("ivr/${dot}${dot}/x.wav", "dot"),
                ("${abs}", "abs"),
                ("${abs}.wav", "abs"),
            ] {
                let e = render(&t(template), &vars, field).unwrap_err();
                assert_eq!(e.variable.as_deref(), Some(var), "{template} {field:?}");
            }
            // Dots inside a name, a value in the middle of an absolute path written by the author, and the
            // author's own `..` are fine.
            assert_eq!(
                render(&t("/rec/${ok}"), &vars, field).unwrap(),
                "/rec/a..b/c.wav"
            );
            assert_eq!(
                render(&t("/rec${abs}"), &vars, field).unwrap(),
                "/rec/etc/passwd"
            );
            assert_eq!(
                render(&t("../ivr/${ok}"), &vars, field).unwrap(),
                "../ivr/a..b/c.wav"
            );
        }
        // Other fields are not paths.
        assert!(render(&t("${up}"), &vars, Field::Value).is_ok());
    }

    #[test]
    fn set_values_keep_hostile_text_as_data() {
        for var in ["spaces", "dial", "braces", "expansion", "app"] {
            assert_eq!(
                render(&t(&format!("${{{var}}}")), &vars, Field::Value).unwrap(),
                vars(var).unwrap()
            );
        }
    }

    #[test]
    fn empty_fields_are_refused_except_values() {
        let e = render(&t("${missing}"), &vars, Field::TokenFile).unwrap_err();
        assert_eq!(
            e.message,
            "renders empty (${missing} not set) and a file path inside a space-separated argument cannot be empty"
        );
        assert_eq!(render(&t("${missing}"), &vars, Field::Value).unwrap(), "");
    }

    #[test]
    fn author_text_in_a_token_stays_one_token() {
        let rendered = render(
            &t("my sounds/it's \"${lang}\"\\x.wav"),
            &vars,
            Field::TokenFile,
        )
        .unwrap();
        let args = format!("1 1 3 5000 # {rendered} silence_stream://250 digits");
        let tokens = split_blank(&args);
        assert_eq!(tokens.len(), 8, "{tokens:?}");
        assert_eq!(tokens[5], "my sounds/it's \"uk\"\\x.wav");
    }

    #[test]
    fn the_tokeniser_model_reads_quotes_and_escapes_like_freeswitch() {
        assert_eq!(split_blank("a  'b c' d\\se"), ["a", "b c", "d e"]);
        assert_eq!(split_blank("^[12]$ \\d+"), ["^[12]$", "\\d+"]);
    }
}
