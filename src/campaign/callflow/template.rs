//! `${name}` substitution in callflow strings (SPEC §7), parsed once when the campaign is validated.
//!
//! A [`Template`] is a string split into literal text and variable references. `${name}` refers to a member
//! variable, the member's `name` / `number`, or a channel variable: which one is the engine's business — it
//! supplies the `lookup` function. A missing variable renders as the empty string. A `$` not followed by `{` is
//! literal text; there is no escape for a literal `${`.
//!
//! Rendering never re-parses: substituted values are inserted verbatim (or through the caller's `escape`), so a
//! value containing `${other}` is not expanded a second time — member data cannot reach other variables.

use std::fmt;

/// Whether `name` may appear inside `${...}`: one or more letters, digits, `_`, `.`, `-` (Unicode letters and
/// digits included, so member variables named in any language can be referenced).
pub fn is_reference_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether `name` can be set as a FreeSWITCH channel variable: ASCII letters, digits and `_`.
pub fn is_channel_var_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Var(String),
}

/// A string with `${name}` references, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Template {
    /// Parses `source`. Errors say what is wrong and at which character (1-based):
    /// `"${" at character 5 is not closed by "}"`, `bad variable name "a b" at character 3`.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        let mut consumed_chars = 0usize;
        while let Some(pos) = rest.find("${") {
            literal.push_str(&rest[..pos]);
            let at_char = consumed_chars + rest[..pos].chars().count() + 1;
            let after = &rest[pos + 2..];
            let Some(close) = after.find('}') else {
                return Err(format!(
                    "\"${{\" at character {at_char} is not closed by \"}}\""
                ));
            };
            let name = &after[..close];
            if !is_reference_name(name) {
                return Err(format!(
                    "bad variable name {name:?} in \"${{...}}\" at character {at_char} \
                     (letters, digits, _ . - only)"
                ));
            }
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Var(name.to_string()));
            let used = pos + 2 + close + 1;
            consumed_chars += rest[..used].chars().count();
            rest = &rest[used..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Template {
            source: source.to_string(),
            segments,
        })
    }

    /// A template of literal text only (no parsing: `${` in `text` stays literal).
    pub fn literal(text: &str) -> Template {
        Template {
            source: text.to_string(),
            segments: if text.is_empty() {
                vec![]
            } else {
                vec![Segment::Literal(text.to_string())]
            },
        }
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the template has no variable reference.
    pub fn is_literal(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The names referenced, in order (with repetitions).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(name) => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Substitutes every `${name}` with `lookup(name)`, or the empty string when it is `None`.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        self.render_escaped(lookup, |value| value.to_string())
    }

    /// Like [`render`](Self::render), passing each substituted value (never the literal text) through `escape`:
    /// the engine uses it to encode member data for the application argument it is sent in.
    pub fn render_escaped(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
        escape: impl Fn(&str) -> String,
    ) -> String {
        let mut out = String::with_capacity(self.source.len());
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Var(name) => {
                    if let Some(value) = lookup(name) {
                        out.push_str(&escape(&value));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "name" => Some("Олена".into()),
            "debt" => Some("150.50".into()),
            "evil" => Some("${debt}".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_are_substituted_and_missing_ones_are_empty() {
        let t = Template::parse("Hello ${name}, you owe ${debt} UAH${missing}.").unwrap();
        assert_eq!(t.render(vars), "Hello Олена, you owe 150.50 UAH.");
        assert_eq!(
            t.variables().collect::<Vec<_>>(),
            ["name", "debt", "missing"]
        );
        assert!(!t.is_literal());
    }

    #[test]
    fn substituted_values_are_not_expanded_again() {
        let t = Template::parse("x${evil}y").unwrap();
        assert_eq!(t.render(vars), "x${debt}y");
    }

    #[test]
    fn dollar_without_brace_is_literal() {
        let t = Template::parse("$5 and $$ and $").unwrap();
        assert!(t.is_literal());
        assert_eq!(t.render(vars), "$5 and $$ and $");
    }

    #[test]
    fn unclosed_reference_is_refused_with_its_position() {
        let err = Template::parse("ab ${name").unwrap_err();
        assert_eq!(err, "\"${\" at character 4 is not closed by \"}\"");
        let err = Template::parse("ñ ${ok} ${a b}").unwrap_err();
        assert!(
            err.contains("\"a b\"") && err.contains("character 9"),
            "{err}"
        );
        assert!(Template::parse("${}").is_err());
    }

    #[test]
    fn escape_applies_to_substituted_values_only() {
        let t = Template::parse("'${name}'").unwrap();
        assert_eq!(t.render_escaped(vars, |v| v.to_uppercase()), "'ОЛЕНА'");
    }

    #[test]
    fn names_allowed_in_references_and_channel_variables() {
        assert!(is_reference_name("member.debt-2_х"));
        assert!(!is_reference_name("a b") && !is_reference_name(""));
        assert!(is_channel_var_name("dlr_digits_1"));
        assert!(!is_channel_var_name("a.b") && !is_channel_var_name("х"));
    }
}
