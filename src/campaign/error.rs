//! The one error shape of campaign validation: "what is wrong, and where".
//!
//! Every validator in `campaign/` (calendar, gateways, callflow, the config as a whole) reports problems as
//! [`FieldError`]s whose `path` names the offending field the way a user would point at it in their JSON or TOML
//! (`gateways[1].pattern`, `callflow[3].if.then[0].playback`). Validators of nested parts report paths relative to
//! themselves and the caller prefixes them with [`FieldError::under`], so each validator stays usable on its own
//! (the API validates a lone calendar or callflow the same way a whole campaign is validated).

use std::fmt;

/// One validation problem: the path of the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FieldError {
    /// Dotted / indexed path from the root of the validated document (`calendar.timezone`, `gateways[1].pattern`);
    /// empty when the problem concerns the document itself.
    pub path: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error seen from one level up: `prefix` is prepended to the path (`pattern` under `gateways[1]`
    /// becomes `gateways[1].pattern`; `[0].playback` under `callflow` becomes `callflow[0].playback`).
    pub fn under(mut self, prefix: &str) -> FieldError {
        self.path = join_path(prefix, &self.path);
        self
    }
}

/// Joins a parent path and a child path with a `.` unless the child is an index (`[3]`) or either is empty.
pub fn join_path(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else if child.is_empty() {
        parent.to_string()
    } else if child.starts_with('[') {
        format!("{parent}{child}")
    } else {
        format!("{parent}.{child}")
    }
}

/// Several validation problems, reported together so a user fixes them in one round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl FieldErrors {
    /// Every error, prefixed with `prefix`.
    pub fn under(self, prefix: &str) -> FieldErrors {
        FieldErrors(self.0.into_iter().map(|e| e.under(prefix)).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }
}

impl From<FieldError> for FieldErrors {
    fn from(e: FieldError) -> Self {
        FieldErrors(vec![e])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_joins_names_with_a_dot_and_indexes_without() {
        assert_eq!(
            FieldError::new("pattern", "bad").under("gateways[1]").path,
            "gateways[1].pattern"
        );
        assert_eq!(
            FieldError::new("[0].playback", "bad")
                .under("callflow")
                .path,
            "callflow[0].playback"
        );
        assert_eq!(
            FieldError::new("", "bad").under("gateways").path,
            "gateways"
        );
    }

    #[test]
    fn display_is_path_colon_message_or_message_alone() {
        assert_eq!(
            FieldError::new("limit", "must be >= 1").to_string(),
            "limit: must be >= 1"
        );
        assert_eq!(FieldError::new("", "empty").to_string(), "empty");
        let all = FieldErrors(vec![FieldError::new("a", "x"), FieldError::new("b", "y")]);
        assert_eq!(all.to_string(), "a: x; b: y");
    }
}
