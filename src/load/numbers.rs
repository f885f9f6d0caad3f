//! The dial string of each call: the `--dial-string` template with `{n}` replaced by the call's sequence number or
//! the next line of `--numbers`.
//!
//! Nothing that reaches the switch may change what the originate means: the template may not hold white space (it
//! would end the dial string and start the application), braces other than `{n}` (a `{var=…}` block would set
//! channel variables), quotes or control characters; a number may only hold the characters the campaign gateways
//! accept in a dial string ([`crate::campaign::gateway::is_dial_safe`]). The originate itself is built by
//! [`crate::engine::originate`], which escapes every variable.

use std::path::Path;

use super::LoadError;

/// The placeholder replaced by each call's number.
pub const PLACEHOLDER: &str = "{n}";

/// The endpoint whose calls take two sessions.
const LOOPBACK: &str = "loopback/";

/// A checked `--dial-string`, split around its `{n}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialTemplate {
    /// The literal parts; `{n}` goes between each two.
    parts: Vec<String>,
}

impl DialTemplate {
    pub fn parse(text: &str) -> Result<DialTemplate, LoadError> {
        let bad = |why: String| LoadError::Option {
            option: "--dial-string",
            why: format!("{:?}: {why}", crate::text::prefix(text)),
        };
        if text.is_empty() {
            return Err(bad("empty".into()));
        }
        let parts: Vec<String> = text.split(PLACEHOLDER).map(str::to_owned).collect();
        for part in &parts {
            if let Some(c) = part.chars().find(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '{' | '}' | '\'' | '"')
            }) {
                return Err(bad(format!(
                    "{c:?} is not allowed in a dial string (only {PLACEHOLDER} may use braces; no spaces, quotes \
                     or control characters)"
                )));
            }
            if part.contains(":_:") {
                return Err(bad("`:_:` (enterprise originate) is not supported".into()));
            }
        }
        Ok(DialTemplate { parts })
    }

    /// Whether the template uses `{n}` at all.
    pub fn has_placeholder(&self) -> bool {
        self.parts.len() > 1
    }

    /// Sessions one call of this dial string takes on the switch: 2 for `loopback/` (the endpoint creates an `-a`
    /// and a `-b` leg, each a session counted by `sessions-per-second` and `max-sessions`), 1 for any other.
    pub fn sessions_per_call(&self) -> u32 {
        let start = self.parts.first().map(String::as_str).unwrap_or_default();
        let loopback = start
            .get(..LOOPBACK.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(LOOPBACK));
        if loopback { 2 } else { 1 }
    }

    /// The dial string for one number (already checked by [`Numbers`]).
    pub fn expand(&self, number: &str) -> String {
        self.parts.join(number)
    }
}

/// Where `{n}` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Numbers {
    /// The call's sequence number, from 1.
    Sequence,
    /// The lines of a file, in turn, starting again at the first after the last.
    Lines(Vec<String>),
}

/// Longest numbers file read (a load test needs numbers, not a phone book).
pub const MAX_NUMBERS_FILE: u64 = 256 * 1024 * 1024;

impl Numbers {
    /// Reads a numbers file: one number a line; blank lines and lines starting with `#` are skipped; every other
    /// line must be dial-safe (it goes into the dial string), else the file is refused naming the line.
    pub fn from_file(path: &Path) -> Result<Numbers, LoadError> {
        let unreadable = |why: String| LoadError::Numbers {
            path: path.to_owned(),
            why,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| unreadable(e.to_string()))?
            .len();
        if size > MAX_NUMBERS_FILE {
            return Err(unreadable(format!(
                "{size} bytes, over the {MAX_NUMBERS_FILE} accepted"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            unreadable(format!(
                "not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let number = line.trim();
            if number.is_empty() || number.starts_with('#') {
                continue;
            }
            if !crate::campaign::gateway::is_dial_safe(number) {
                return Err(unreadable(format!(
                    "line {}: {:?} may only hold letters, digits and + * # . - _",
                    i + 1,
                    crate::text::prefix(number)
                )));
            }
            lines.push(number.to_owned());
        }
        if lines.is_empty() {
            return Err(unreadable("no number in it".into()));
        }
        Ok(Numbers::Lines(lines))
    }

    /// The number of the call with sequence number `seq` (from 1).
    pub fn number(&self, seq: u64) -> String {
        match self {
            Numbers::Sequence => seq.to_string(),
            Numbers::Lines(lines) => {
                let i = (seq.saturating_sub(1) % lines.len() as u64) as usize;
                lines[i].clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_loopback_call_takes_two_sessions_any_other_one() {
        let spc = |d: &str| DialTemplate::parse(d).unwrap().sessions_per_call();
        assert_eq!(spc("loopback/{n}/default"), 2);
        assert_eq!(spc("Loopback/answer_60/default"), 2);
        assert_eq!(spc("sofia/gateway/gw1/{n}"), 1);
        assert_eq!(spc("user/loopback/{n}"), 1);
        assert_eq!(spc("{n}"), 1);
    }

    #[test]
    fn the_placeholder_takes_the_sequence_number_or_the_next_line_in_turn() {
        let t = DialTemplate::parse("sofia/gateway/gw1/{n}").unwrap();
        assert!(t.has_placeholder());
        assert_eq!(
            t.expand(&Numbers::Sequence.number(7)),
            "sofia/gateway/gw1/7"
        );
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "# numbers\n380441\n\n  380442  \n380443").unwrap();
        let n = Numbers::from_file(f.path()).unwrap();
        let got: Vec<String> = (1..=4).map(|s| t.expand(&n.number(s))).collect();
        assert_eq!(
            got,
            [
                "sofia/gateway/gw1/380441",
                "sofia/gateway/gw1/380442",
                "sofia/gateway/gw1/380443",
                "sofia/gateway/gw1/380441"
            ]
        );
    }

    #[test]
    fn a_template_that_could_set_variables_or_start_an_application_is_refused() {
        for bad in [
            "{origination_caller_id_number=1}sofia/gateway/gw1/{n}",
            "sofia/gateway/gw1/{n} &bridge(user/1000)",
            "sofia/gateway/gw1/'{n}'",
            "sofia/gateway/gw1/{n}\n",
            "a/{n}:_:b/{n}",
            "",
        ] {
            let e = DialTemplate::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--dial-string"), "{bad:?}: {e}");
        }
        assert!(DialTemplate::parse("loopback/answer_600").is_ok());
        assert!(DialTemplate::parse("sofia/gateway/gw1/{n}|sofia/gateway/gw2/{n}").is_ok());
    }

    #[test]
    fn a_numbers_file_with_a_number_that_is_not_dial_safe_is_refused_naming_its_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "380441\n380442,origination_uuid=x").unwrap();
        let e = Numbers::from_file(f.path()).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = Numbers::from_file(Path::new("/nonexistent/numbers.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/numbers.txt"), "{e}");
        let empty = tempfile::NamedTempFile::new().unwrap();
        let e = Numbers::from_file(empty.path()).unwrap_err().to_string();
        assert!(e.contains("no number"), "{e}");
    }
}
