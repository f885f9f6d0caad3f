//! Variable sets with FreeSWITCH's event-header semantics, used for originate variables and channel variables.
//!
//! A FreeSWITCH `CHANNEL_DATA` event (the type behind `{}`/`[]`/`<>` variables and behind a channel's variable
//! table) has "unique headers": adding a name that exists removes the old header and appends the new one at the
//! end, an empty value deletes the name, and names compare case-insensitively. Setting a channel variable also
//! refuses, by default, any value that contains `${` (the "var check"), which is why `{x=${hostname}}` leaves
//! `x` unset rather than expanded. Keeping these rules in one type makes the parser and the call model agree.

/// An ordered, case-insensitive, unique-name variable list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VarSet {
    items: Vec<(String, String)>,
}

impl VarSet {
    pub fn new() -> VarSet {
        VarSet::default()
    }

    /// `switch_event_add_header_string` on a unique-header event: an empty value deletes, else replace-and-append.
    /// An index suffix (`name[3]`) is reduced to the bare name (array headers are not modelled).
    pub fn add(&mut self, name: &str, value: &str) {
        let name = match name.find('[') {
            Some(p) => &name[..p],
            None => name,
        };
        self.remove(name);
        if value.is_empty() {
            return;
        }
        self.items.push((name.to_string(), value.to_string()));
    }

    /// `switch_channel_set_variable_var_check`: like [`VarSet::add`], but when `var_check` is on a value holding a
    /// variable reference (`${`, also `$\{`) is refused and the variable is left as it was. Returns false when
    /// refused.
    pub fn set_checked(&mut self, name: &str, value: &str, var_check: bool) -> bool {
        if name.is_empty() {
            return true;
        }
        if value.is_empty() {
            self.remove(name);
            return true;
        }
        if var_check && has_variable_reference(value) {
            return false;
        }
        self.add(name, value);
        true
    }

    /// Deletes every header with this name (case-insensitive).
    pub fn remove(&mut self, name: &str) {
        self.items.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.items.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `switch_event_merge`: every header of `other` added in order.
    pub fn merge(&mut self, other: &VarSet) {
        for (n, v) in other.iter() {
            self.add(n, v);
        }
    }
}

/// `switch_string_var_check_const`: a `$` followed (after any backslashes) by `{`.
pub fn has_variable_reference(value: &str) -> bool {
    let mut dollar = false;
    for b in value.bytes() {
        if b == b'$' {
            dollar = true;
        } else if dollar {
            if b == b'{' {
                return true;
            } else if b != b'\\' {
                dollar = false;
            }
        }
    }
    false
}

/// FreeSWITCH's `switch_true`: yes/on/true/t/enabled/active/allow (any case) or a non-zero number.
pub fn switch_true(value: Option<&str>) -> bool {
    let Some(v) = value else { return false };
    let lower = v.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "yes" | "on" | "true" | "t" | "enabled" | "active" | "allow"
    ) || (v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() && atoi(v) != 0)
}

/// C `atoi`: optional spaces and sign, then digits; anything else ends the number (0 when none).
pub fn atoi(value: &str) -> i64 {
    let s = value.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg { -n } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_an_existing_name_moves_it_to_the_end_case_insensitively() {
        let mut v = VarSet::new();
        v.add("a", "1");
        v.add("b", "2");
        v.add("A", "3");
        assert_eq!(v.iter().collect::<Vec<_>>(), vec![("b", "2"), ("A", "3")]);
        assert_eq!(v.get("a"), Some("3"));
    }

    #[test]
    fn empty_value_deletes() {
        let mut v = VarSet::new();
        v.add("a", "1");
        v.add("a", "");
        assert!(v.is_empty());
    }

    #[test]
    fn var_check_refuses_variable_references_only() {
        let mut v = VarSet::new();
        assert!(!v.set_checked("x", "${hostname}", true));
        assert!(!v.set_checked("x", "a$\\{b", true));
        assert!(v.set_checked("y", "a$b{c}", true));
        assert!(v.set_checked("z", "${raw}", false));
        assert_eq!(v.get("x"), None);
        assert_eq!(v.get("z"), Some("${raw}"));
    }

    #[test]
    fn atoi_and_switch_true_follow_c() {
        assert_eq!(atoi(" 12abc"), 12);
        assert_eq!(atoi("x"), 0);
        assert_eq!(atoi("-3"), -3);
        assert!(switch_true(Some("TRUE")));
        assert!(switch_true(Some("1")));
        assert!(!switch_true(Some("0")));
        assert!(!switch_true(Some("nope")));
    }
}
