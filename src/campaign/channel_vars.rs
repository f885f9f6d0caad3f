//! Who may set which FreeSWITCH channel variable, and under which name (SPEC §3 step 2): the one place of that rule.
//!
//! - The **dialer** owns `origination_uuid` (the attempt id it tracks), `originate_timeout` and every `dlr_*`
//!   name. Nobody else may set them.
//! - A **campaign** (admin-only) may set any other variable by its own name.
//! - A **member** (API or CSV data, trusted least) never sets a variable by its own name: its variable `x` is sent
//!   as `dlr_v_x`, where neither FreeSWITCH nor a dialplan gives it any meaning unless asked to
//!   (`${dlr_v_x}`). Only the names an admin lists in the campaign's `member_channel_variables` are sent as
//!   themselves — an allowlist, never a denylist.
//!
//! FreeSWITCH compares variable names without regard to case (`Origination_Uuid` is `origination_uuid`), so every
//! comparison here is ASCII case-insensitive.

use super::error::FieldError;

/// Prefix of every variable the dialer owns.
pub const DIALER_PREFIX: &str = "dlr_";
/// Prefix under which member variables reach the channel (`x` → `dlr_v_x`).
pub const MEMBER_PREFIX: &str = "dlr_v_";
/// Variables the dialer sets on every originate and nobody else may set (besides the `dlr_` prefix).
pub const DIALER_VARIABLES: &[&str] = &[
    "origination_uuid",
    "originate_timeout",
    "origination_nested_vars",
    "api_hangup_hook",
];
/// Longest variable name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Whether `name` belongs to the dialer (case-insensitive).
pub fn is_dialer_owned(name: &str) -> bool {
    name.get(..DIALER_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(DIALER_PREFIX))
        || DIALER_VARIABLES
            .iter()
            .any(|d| d.eq_ignore_ascii_case(name))
}

/// A name FreeSWITCH reads as one plain variable name inside `{…}`: an ASCII letter or `_`, then letters, digits,
/// `_`, `-` or `.`; at most [`MAX_NAME_LEN`] bytes.
pub fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && name.len() <= MAX_NAME_LEN
}

/// A campaign's allowlist of member variables sent under their own name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChannelVars {
    /// Lower-cased.
    allowed: Vec<String>,
}

impl MemberChannelVars {
    /// Checks an allowlist as written in a campaign (`member_channel_variables`): plain names, none owned by the
    /// dialer. Errors carry the index (`member_channel_variables[2]`).
    pub fn new(names: &[String]) -> Result<MemberChannelVars, Vec<FieldError>> {
        let mut errors = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let at = format!("member_channel_variables[{i}]");
            if !is_plain_name(name) {
                errors.push(FieldError::new(
                    at,
                    format!(
                        "{:?} is not a variable name (ASCII letter or _, then letters, digits, _ - .; at most {MAX_NAME_LEN} bytes)",
                        crate::text::prefix(name)
                    ),
                ));
            } else if is_dialer_owned(name) {
                errors.push(FieldError::new(
                    at,
                    format!("{name:?} is set by the dialer itself"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(MemberChannelVars {
                allowed: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
            })
        } else {
            Err(errors)
        }
    }

    /// No member variable sent under its own name.
    pub fn none() -> MemberChannelVars {
        MemberChannelVars::default()
    }

    /// Whether the member variable `name` is sent under its own name.
    pub fn allows(&self, name: &str) -> bool {
        self.allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// The channel variable a member variable `name` is sent as: itself when allowed, else `dlr_v_<name>`.
    pub fn channel_name(&self, name: &str) -> String {
        if self.allows(name) {
            name.to_owned()
        } else {
            format!("{MEMBER_PREFIX}{name}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialer_names_are_recognised_whatever_their_case() {
        for n in [
            "origination_uuid",
            "Origination_Uuid",
            "ORIGINATE_TIMEOUT",
            "dlr_member_id",
            "DLR_MEMBER_ID",
            "Dlr_v_x",
        ] {
            assert!(is_dialer_owned(n), "{n}");
        }
        for n in [
            "dl",
            "execute_on_answer",
            "origination_caller_id_number",
            "xdlr_",
        ] {
            assert!(!is_dialer_owned(n), "{n}");
        }
    }

    #[test]
    fn member_variables_go_under_the_namespace_unless_allowed_by_name() {
        let list = MemberChannelVars::new(&["Language".into(), "x.y".into()]).unwrap();
        assert_eq!(list.channel_name("language"), "language");
        assert_eq!(list.channel_name("X.Y"), "X.Y");
        assert_eq!(
            list.channel_name("sip_invite_req_uri"),
            "dlr_v_sip_invite_req_uri"
        );
        assert_eq!(
            MemberChannelVars::none().channel_name("Language"),
            "dlr_v_Language"
        );
    }

    #[test]
    fn an_allowlist_naming_dialer_variables_or_non_names_is_refused_with_the_index() {
        let e = MemberChannelVars::new(&[
            "ok".into(),
            "Origination_UUID".into(),
            "a b".into(),
            "DLR_x".into(),
        ])
        .unwrap_err();
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "member_channel_variables[1]",
                "member_channel_variables[2]",
                "member_channel_variables[3]"
            ]
        );
    }
}
