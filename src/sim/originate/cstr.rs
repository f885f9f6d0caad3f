//! Byte-level re-implementation of the FreeSWITCH 1.10 string splitters the originate path relies on.
//!
//! FreeSWITCH parses an originate string in place, in a mutable C string: it writes NUL bytes to cut tokens,
//! compacts quoted or escaped text inside the same buffer, and several helpers look past a NUL they just wrote.
//! The quirks the dialer's escaping must survive (a quoted comma is still a separator, `\,` is not, a space inside
//! `{}` ends the whole URL, a lone `'` swallows the rest of the command, …) all come from these exact mechanics,
//! so this module models the buffer literally: a `CBuf` is a byte vector whose "pointers" are indices, reads past
//! the end yield NUL, and every function follows the same steps as its C counterpart in `switch_utils.c`
//! (`switch_separate_string`, `cleanup_separated_string`, `switch_find_end_paren`, `switch_strchr_strict`,
//! `switch_separate_string_string`). The code is written from the behaviour, not copied.

/// The escape character of `switch_separate_string`.
const ESCAPE_META: u8 = b'\\';

/// A mutable NUL-terminated byte string; indices play the role of C pointers.
#[derive(Debug, Clone)]
pub struct CBuf {
    bytes: Vec<u8>,
}

impl CBuf {
    /// Copies `text` into a fresh buffer (like `strdup`).
    pub fn new(text: &[u8]) -> CBuf {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text);
        bytes.push(0);
        CBuf { bytes }
    }

    /// The byte at `i`, or NUL past the end (C code here sometimes reads one byte past a terminator).
    pub fn at(&self, i: usize) -> u8 {
        self.bytes.get(i).copied().unwrap_or(0)
    }

    /// Writes a byte, ignoring writes past the end (they would only ever write a terminator).
    pub fn set(&mut self, i: usize, b: u8) {
        if let Some(slot) = self.bytes.get_mut(i) {
            *slot = b;
        }
    }

    /// The C string starting at `i` (up to the next NUL).
    pub fn cstr(&self, i: usize) -> &[u8] {
        if i >= self.bytes.len() {
            return &[];
        }
        let rest = &self.bytes[i..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// `strchr(s, c)`: index of the first `c` in the C string at `i`.
    pub fn strchr(&self, i: usize, c: u8) -> Option<usize> {
        self.cstr(i).iter().position(|&b| b == c).map(|p| i + p)
    }

    /// `strstr(s, needle)`.
    pub fn strstr(&self, i: usize, needle: &[u8]) -> Option<usize> {
        let hay = self.cstr(i);
        if needle.is_empty() {
            return Some(i);
        }
        hay.windows(needle.len())
            .position(|w| w == needle)
            .map(|p| i + p)
    }

    /// The C string at `i` as owned text (lossy only for invalid UTF-8, which FreeSWITCH passes through as bytes).
    pub fn string(&self, i: usize) -> String {
        String::from_utf8_lossy(self.cstr(i)).into_owned()
    }
}

/// `unescape_char`: `\n \r \t \s` become LF, CR, TAB and space; anything else stays itself.
fn unescape_char(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b's' => b' ',
        other => other,
    }
}

/// `cleanup_separated_string`: strips quotes and leading/trailing spaces and resolves escapes, in place.
/// Returns the index where the cleaned token starts.
fn cleanup_separated_string(buf: &mut CBuf, str_start: usize, delim: u8) -> usize {
    let mut ptr = str_start;
    while buf.at(ptr) == b' ' {
        ptr += 1;
    }
    let start = ptr;
    let mut dest = ptr;
    let mut end: Option<usize> = None;
    let mut inside_quotes = false;
    while buf.at(ptr) != 0 {
        let mut escaped = false;
        if buf.at(ptr) == ESCAPE_META {
            let next = buf.at(ptr + 1);
            let special = next == b'\''
                || next == b'"'
                || (delim != 0 && next == delim)
                || next == ESCAPE_META;
            let e = if special { next } else { unescape_char(next) };
            if special || e != next {
                ptr += 1;
                buf.set(dest, e);
                dest += 1;
                end = Some(dest);
                escaped = true;
            }
        }
        if !escaped {
            let c = buf.at(ptr);
            if c == b'\'' && (inside_quotes || buf.strchr(ptr + 1, b'\'').is_some()) {
                inside_quotes = !inside_quotes;
                if inside_quotes {
                    end = Some(dest);
                }
            } else {
                buf.set(dest, c);
                dest += 1;
                if c != b' ' || inside_quotes {
                    end = Some(dest);
                }
            }
        }
        ptr += 1;
    }
    if let Some(e) = end {
        buf.set(e, 0);
    }
    start
}

/// Tokenizer for a delimiter other than space (`separate_string_char_delim`).
fn separate_char_delim(buf: &mut CBuf, start: usize, delim: u8, arraylen: usize) -> Vec<usize> {
    let mut array = Vec::new();
    let mut ptr = start;
    let mut in_token = false;
    let mut inside_quotes = false;
    while buf.at(ptr) != 0 && array.len() < arraylen {
        if !in_token {
            array.push(ptr);
            in_token = true;
            continue;
        }
        let c = buf.at(ptr);
        if c == ESCAPE_META {
            ptr += 1;
        } else if c == b'\'' && (inside_quotes || buf.strchr(ptr + 1, b'\'').is_some()) {
            inside_quotes = !inside_quotes;
        } else if c == delim && !inside_quotes {
            buf.set(ptr, 0);
            in_token = false;
        }
        ptr += 1;
    }
    array
        .into_iter()
        .map(|t| cleanup_separated_string(buf, t, delim))
        .collect()
}

/// Tokenizer for the space delimiter (`separate_string_blank_delim`): runs of spaces separate, a `'` toggles
/// quoting without looking for its partner.
fn separate_blank_delim(buf: &mut CBuf, start: usize, arraylen: usize) -> Vec<usize> {
    #[derive(PartialEq)]
    enum St {
        Start,
        SkipInitial,
        Find,
        SkipEnding,
    }
    let mut state = St::Start;
    let mut array = Vec::new();
    let mut ptr = start;
    let mut inside_quotes = false;
    while buf.at(ptr) != 0 && array.len() < arraylen {
        match state {
            St::Start => {
                array.push(ptr);
                state = St::SkipInitial;
            }
            St::SkipInitial => {
                if buf.at(ptr) == b' ' {
                    ptr += 1;
                } else {
                    state = St::Find;
                }
            }
            St::Find => {
                let c = buf.at(ptr);
                if c == ESCAPE_META {
                    ptr += 1;
                } else if c == b'\'' {
                    inside_quotes = !inside_quotes;
                } else if c == b' ' && !inside_quotes {
                    buf.set(ptr, 0);
                    state = St::SkipEnding;
                }
                ptr += 1;
            }
            St::SkipEnding => {
                if buf.at(ptr) == b' ' {
                    ptr += 1;
                } else {
                    state = St::Start;
                }
            }
        }
    }
    array
        .into_iter()
        .map(|t| cleanup_separated_string(buf, t, 0))
        .collect()
}

/// `switch_separate_string`: splits the C string at `start` on `delim` (at most `arraylen` tokens), honouring the
/// `^^X` prefix that replaces the delimiter with `X`. Returns the token start indices.
pub fn separate_string(buf: &mut CBuf, start: usize, delim: u8, arraylen: usize) -> Vec<usize> {
    if arraylen == 0 {
        return Vec::new();
    }
    let mut start = start;
    let mut delim = delim;
    if buf.at(start) == b'^' && buf.at(start + 1) == b'^' {
        let p = start + 2;
        if buf.at(p) != 0 && buf.at(p + 1) != 0 {
            delim = buf.at(p);
            start = p + 1;
        }
    }
    if delim == b' ' {
        separate_blank_delim(buf, start, arraylen)
    } else {
        separate_char_delim(buf, start, delim, arraylen)
    }
}

/// `switch_separate_string_string`: splits on a multi-byte delimiter, no quoting or escapes.
pub fn separate_string_string(
    buf: &mut CBuf,
    start: usize,
    delim: &[u8],
    arraylen: usize,
) -> Vec<usize> {
    let mut array = vec![start];
    while array.len() < arraylen {
        let last = *array.last().unwrap_or(&start);
        match buf.strstr(last, delim) {
            Some(d) => {
                buf.set(d, 0);
                array.push(d + delim.len());
            }
            None => break,
        }
    }
    array
}

/// `switch_find_end_paren`: after optional spaces, `s` must start with `open`; returns the index of the matching
/// `close` (nesting counted when the two differ).
pub fn find_end_paren(buf: &CBuf, s: usize, open: u8, close: u8) -> Option<usize> {
    let mut s = s;
    while buf.at(s) == b' ' {
        s += 1;
    }
    if buf.at(s) != open {
        return None;
    }
    let mut depth = 1usize;
    let mut e = s + 1;
    while buf.at(e) != 0 {
        let c = buf.at(e);
        if c == open && open != close {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(e);
            }
        }
        e += 1;
    }
    None
}

/// `switch_strchr_strict(in, find, " ")`: the index of `find` if only spaces precede it; the index of the
/// terminating NUL if the rest is only spaces; `None` if another byte comes first or the string is empty.
pub fn strchr_strict_spaces(buf: &CBuf, start: usize, find: u8) -> Option<usize> {
    let mut p = start;
    if buf.at(p) == 0 {
        return None;
    }
    while buf.at(p) != 0 {
        let c = buf.at(p);
        if c == find {
            break;
        }
        if c != b' ' {
            return None;
        }
        p += 1;
    }
    Some(p)
}

/// `strip_cr` of mod_event_socket: cuts at the first `\r`, or else at the first `\n`.
pub fn strip_cr(text: &[u8]) -> &[u8] {
    if let Some(p) = text.iter().position(|&b| b == b'\r') {
        return &text[..p];
    }
    if let Some(p) = text.iter().position(|&b| b == b'\n') {
        return &text[..p];
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, delim: u8, n: usize) -> Vec<String> {
        let mut b = CBuf::new(text.as_bytes());
        separate_string(&mut b, 0, delim, n)
            .into_iter()
            .map(|i| b.string(i))
            .collect()
    }

    #[test]
    fn comma_split_keeps_escaped_comma_and_strips_quotes() {
        assert_eq!(
            split(r"a=1,b=x\,y,c='q r'", b',', 10),
            vec!["a=1", "b=x,y", "c=q r"]
        );
    }

    #[test]
    fn quote_without_partner_is_literal_for_char_delims() {
        assert_eq!(split("a'b,c", b',', 10), vec!["a'b", "c"]);
    }

    #[test]
    fn blank_split_collapses_runs_of_spaces_and_honours_quotes() {
        assert_eq!(
            split("one  'two three'   four", b' ', 10),
            vec!["one", "two three", "four"]
        );
    }

    #[test]
    fn lone_quote_swallows_the_rest_in_blank_split() {
        assert_eq!(split("x a'b y z", b' ', 10), vec!["x", "a'b y z"]);
    }

    #[test]
    fn caret_prefix_changes_the_delimiter() {
        assert_eq!(split("^^:a=1,2:b=3", b',', 10), vec!["a=1,2", "b=3"]);
    }

    #[test]
    fn escapes_n_t_s_become_control_characters() {
        assert_eq!(split(r"a\nb\tc\sd", b' ', 10), vec!["a\nb\tc d"]);
    }

    #[test]
    fn second_token_keeps_rest_when_array_is_full() {
        assert_eq!(split("k=a=b", b'=', 2), vec!["k", "a=b"]);
        assert_eq!(split("k=", b'=', 2), vec!["k"]);
    }

    #[test]
    fn find_end_paren_counts_nesting() {
        let b = CBuf::new(b"{a={b}}x");
        assert_eq!(find_end_paren(&b, 0, b'{', b'}'), Some(6));
        let b = CBuf::new(b"{a{b");
        assert_eq!(find_end_paren(&b, 0, b'{', b'}'), None);
    }

    #[test]
    fn strip_cr_prefers_carriage_return() {
        assert_eq!(strip_cr(b"a\nb\rc"), b"a\nb");
        assert_eq!(strip_cr(b"a\nb"), b"a");
    }
}
