//! How input text is quoted back in error messages: at most a short prefix, so that a 1 MB variable name cannot
//! make a 2 MB error (issue 14). Every error that echoes user input goes through [`prefix`].

use std::borrow::Cow;

/// Most characters of an input quoted in an error message.
pub const QUOTE_CHARS: usize = 64;

/// `s` when it has at most [`QUOTE_CHARS`] characters, else its first [`QUOTE_CHARS`] characters followed by
/// `…(N bytes)` giving the full length.
pub fn prefix(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(QUOTE_CHARS) {
        None => Cow::Borrowed(s),
        Some((cut, _)) => Cow::Owned(format!("{}…({} bytes)", &s[..cut], s.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole_and_long_text_cut_on_a_char_boundary() {
        assert_eq!(prefix("abc"), "abc");
        let exact = "é".repeat(QUOTE_CHARS);
        assert_eq!(prefix(&exact), exact.as_str());
        let long = "é".repeat(1_000_000);
        let q = prefix(&long);
        assert!(q.starts_with(&exact), "{q}");
        assert!(q.ends_with("…(2000000 bytes)"), "{q}");
        assert!(q.len() < 200);
    }
}
