//! Header lines: the `Name: value\n` grammar shared by ESL frames, event-plain bodies and client commands.
//!
//! Written with nom in streaming mode over `&[u8]`: a parser either returns the line it recognised, or
//! `Incomplete` when the buffer ends before the line does. Nothing here allocates; names and values come back as
//! sub-slices of the input. Percent-decoding is separate ([`percent_decode_into`]) because only values that
//! contain `%` need it, and the caller decides where decoded bytes go (one shared buffer per event keeps event
//! decoding at two allocations).
//!
//! Tolerance mirrors FreeSWITCH's own `esl.c`: a `\r` before `\n` is ignored, spaces and tabs after the colon are
//! skipped, and a blank line (`\n` or `\r\n`) ends a header block.

use nom::{
    IResult, Parser,
    bytes::streaming::{tag, take_until},
};

/// One line of a header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// `Name: value`.
    Header { name: &'a [u8], value: &'a [u8] },
    /// A line with no colon (the first line of a client command such as `api status`).
    Bare(&'a [u8]),
    /// The blank line that ends a header block.
    End,
}

/// Parses one line (streaming: `Incomplete` until the `\n` is in the buffer).
pub fn line(input: &[u8]) -> IResult<&[u8], Line<'_>> {
    let (rest, (mut text, _)) = (take_until("\n"), tag("\n")).parse(input)?;
    if let [head @ .., b'\r'] = text {
        text = head;
    }
    if text.is_empty() {
        return Ok((rest, Line::End));
    }
    Ok((rest, split_header(text)))
}

/// Splits `Name: value` (no line terminator) as FreeSWITCH does: the name ends at the first `:`, then spaces and
/// tabs are skipped. A line without a colon is [`Line::Bare`].
pub fn split_header(text: &[u8]) -> Line<'_> {
    match memchr::memchr(b':', text) {
        Some(colon) => {
            let name = &text[..colon];
            let mut value = &text[colon + 1..];
            while let [b' ' | b'\t', tail @ ..] = value {
                value = tail;
            }
            Line::Header { name, value }
        }
        None => Line::Bare(text),
    }
}

/// Whether `value` needs percent-decoding at all.
#[inline]
pub fn needs_decoding(value: &[u8]) -> bool {
    memchr::memchr(b'%', value).is_some()
}

/// Appends the percent-decoded form of `value` to `out`. Only `%XX` with two hex digits is decoded; `+` stays `+`
/// (FreeSWITCH encodes a plus as `%2B`), and a `%` not followed by two hex digits is kept as it is.
pub fn percent_decode_into(value: &[u8], out: &mut impl Extend<u8>) {
    let mut rest = value;
    while let Some(pos) = memchr::memchr(b'%', rest) {
        out.extend(rest[..pos].iter().copied());
        let after = &rest[pos + 1..];
        match (
            after.first().and_then(|&b| hex(b)),
            after.get(1).and_then(|&b| hex(b)),
        ) {
            (Some(hi), Some(lo)) => {
                out.extend(std::iter::once(hi << 4 | lo));
                rest = &after[2..];
            }
            _ => {
                out.extend(std::iter::once(b'%'));
                rest = after;
            }
        }
    }
    out.extend(rest.iter().copied());
}

/// Percent-decodes into a fresh vector (convenience for values read one at a time).
pub fn percent_decode(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    percent_decode_into(value, &mut out);
    out
}

#[inline]
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_containing_colon_space_is_kept_whole() {
        let (_, l) = line(b"Reply-Text: +OK Job-UUID: 7f4d\n").unwrap();
        assert_eq!(
            l,
            Line::Header {
                name: b"Reply-Text",
                value: b"+OK Job-UUID: 7f4d"
            }
        );
    }

    #[test]
    fn crlf_is_tolerated_and_blank_crlf_ends_block() {
        let (rest, l) = line(b"A: b\r\n\r\n").unwrap();
        assert_eq!(
            l,
            Line::Header {
                name: b"A",
                value: b"b"
            }
        );
        assert_eq!(line(rest).unwrap().1, Line::End);
    }

    #[test]
    fn empty_value_after_colon_space() {
        let (_, l) = line(b"User-Data: \n").unwrap();
        assert_eq!(
            l,
            Line::Header {
                name: b"User-Data",
                value: b""
            }
        );
    }

    #[test]
    fn line_without_newline_is_incomplete() {
        assert!(matches!(line(b"Content-Len"), Err(nom::Err::Incomplete(_))));
    }

    #[test]
    fn bare_line_is_a_command() {
        assert_eq!(line(b"api status\n").unwrap().1, Line::Bare(b"api status"));
    }

    #[test]
    fn percent_decoding_keeps_plus_and_broken_escapes() {
        assert_eq!(percent_decode(b"a%20b+c%2B"), b"a b+c+");
        assert_eq!(percent_decode(b"100%"), b"100%");
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
        assert_eq!(percent_decode(b"caf%C3%A9"), "café".as_bytes());
    }
}
