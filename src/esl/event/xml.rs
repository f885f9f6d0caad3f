//! The event-xml reader. FreeSWITCH's serializer writes one fixed shape, so a small scanner is exact and much
//! cheaper than a general XML parser; it still rejects anything that does not fit, naming its offset.

use super::{Builder, EventError, HeaderSpan};
use crate::esl::header;

fn err(what: &'static str, raw: &[u8], rest: &[u8]) -> EventError {
    EventError::Xml {
        what,
        offset: raw.len() - rest.len(),
    }
}

fn skip_ws(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[n..]
}

fn expect<'a>(
    raw: &[u8],
    s: &'a [u8],
    tag: &'static [u8],
    what: &'static str,
) -> Result<&'a [u8], EventError> {
    let s = skip_ws(s);
    s.strip_prefix(tag).ok_or_else(|| err(what, raw, s))
}

/// Reads `<name>` or `<name/>`; returns (name, self_closing, rest).
fn open_tag<'a>(raw: &[u8], s: &'a [u8]) -> Result<(&'a [u8], bool, &'a [u8]), EventError> {
    let s = skip_ws(s);
    let inner = s
        .strip_prefix(b"<")
        .ok_or_else(|| err("expected '<'", raw, s))?;
    let close = memchr::memchr(b'>', inner).ok_or_else(|| err("unterminated tag", raw, inner))?;
    let tag = &inner[..close];
    let rest = &inner[close + 1..];
    match tag.strip_suffix(b"/") {
        Some(name) => Ok((name, true, rest)),
        None => Ok((tag, false, rest)),
    }
}

/// Text up to `</name>`; returns (text, rest after the closing tag).
fn text_until_close<'a>(
    raw: &[u8],
    s: &'a [u8],
    name: &[u8],
) -> Result<(&'a [u8], &'a [u8]), EventError> {
    let end = memchr::memchr(b'<', s).ok_or_else(|| err("unterminated element", raw, s))?;
    let text = &s[..end];
    let after = &s[end..];
    let after = after
        .strip_prefix(b"</")
        .and_then(|a| a.strip_prefix(name))
        .and_then(|a| a.strip_prefix(b">"))
        .ok_or_else(|| err("mismatched closing tag", raw, after))?;
    Ok((text, after))
}

fn needs_unescape(s: &[u8]) -> bool {
    memchr::memchr(b'&', s).is_some()
}

/// Decodes the XML predefined entities and numeric character references.
fn unescape_into(s: &[u8], out: &mut Vec<u8>) {
    let mut rest = s;
    while let Some(i) = memchr::memchr(b'&', rest) {
        out.extend_from_slice(&rest[..i]);
        let after = &rest[i..];
        let semi = memchr::memchr(b';', &after[..after.len().min(12)]);
        let decoded: Option<(char, usize)> = semi.and_then(|semi| {
            let ent = &after[1..semi];
            let c = match ent {
                b"amp" => Some('&'),
                b"lt" => Some('<'),
                b"gt" => Some('>'),
                b"quot" => Some('"'),
                b"apos" => Some('\''),
                [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32),
                [b'#', dec @ ..] => std::str::from_utf8(dec)
                    .ok()
                    .and_then(|d| d.parse::<u32>().ok())
                    .and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, used)) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                rest = &after[used..];
            }
            None => {
                out.push(b'&');
                rest = &after[1..];
            }
        }
    }
    out.extend_from_slice(rest);
}

pub(super) fn decode(raw: &[u8], b: &mut Builder) -> Result<(), EventError> {
    let s = expect(raw, raw, b"<event>", "expected <event>")?;
    let mut s = expect(raw, s, b"<headers>", "expected <headers>")?;
    loop {
        let t = skip_ws(s);
        if let Some(after) = t.strip_prefix(b"</headers>") {
            s = after;
            break;
        }
        let (name, self_closing, after) = open_tag(raw, t)?;
        let (value, after) = if self_closing {
            (&after[..0], after)
        } else {
            text_until_close(raw, after, name)?
        };
        s = after;
        let name_span = b.span_in_raw(name);
        let mut value_span = if needs_unescape(value) {
            let mut tmp = Vec::with_capacity(value.len());
            unescape_into(value, &mut tmp);
            if header::needs_decoding(&tmp) {
                b.push_percent_decoded(&tmp)
            } else {
                b.push_decoded(&tmp)
            }
        } else if header::needs_decoding(value) {
            b.push_percent_decoded(value)
        } else {
            b.span_in_raw(value)
        };
        // FreeSWITCH writes a multi-valued variable as consecutive elements of the same name; join them
        // into the `ARRAY::a|:b` form event-plain uses, so all three formats decode alike.
        if let Some(prev) = b.headers.last().copied()
            && b.text(prev.name) == name
        {
            value_span = b.join_array(prev.value, value_span);
            b.headers.pop();
        }
        b.headers.push(HeaderSpan {
            name: name_span,
            value: value_span,
        });
    }
    let mut declared: Option<usize> = None;
    loop {
        let t = skip_ws(s);
        if t.starts_with(b"</event>") {
            break;
        }
        let (name, self_closing, after) = open_tag(raw, t)?;
        let (text, after) = if self_closing {
            (&after[..0], after)
        } else {
            text_until_close_body(raw, after, name)?
        };
        s = after;
        match name {
            b"Content-Length" => {
                declared = Some(super::parse_len(text)?);
                let name_span = b.span_in_raw(name);
                let value_span = b.span_in_raw(text);
                b.headers.push(HeaderSpan {
                    name: name_span,
                    value: value_span,
                });
            }
            b"body" => {
                let mut body_span = if needs_unescape(text) {
                    let mut tmp = Vec::with_capacity(text.len());
                    unescape_into(text, &mut tmp);
                    b.push_decoded(&tmp)
                } else {
                    b.span_in_raw(text)
                };
                // The pretty-printer adds indentation before `</body>`; Content-Length says where the body
                // really ends.
                if let Some(len) = declared {
                    let have = (body_span.end - body_span.start) as usize;
                    if len > have {
                        return Err(EventError::BodyTruncated {
                            declared: len,
                            available: have,
                        });
                    }
                    body_span.end = body_span.start + len as u32;
                }
                b.body = Some(body_span);
            }
            _ => return Err(err("unexpected element after </headers>", raw, t)),
        }
    }
    Ok(())
}

/// Like `text_until_close`, but the body may contain `<` only as `&lt;`, so the first `</name>` ends it.
fn text_until_close_body<'a>(
    raw: &[u8],
    s: &'a [u8],
    name: &[u8],
) -> Result<(&'a [u8], &'a [u8]), EventError> {
    let mut close = Vec::with_capacity(name.len() + 3);
    close.extend_from_slice(b"</");
    close.extend_from_slice(name);
    close.push(b'>');
    let end = memchr::memmem::find(s, &close).ok_or_else(|| err("unterminated element", raw, s))?;
    Ok((&s[..end], &s[end + close.len()..]))
}
