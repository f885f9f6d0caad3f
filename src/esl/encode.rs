//! Writing ESL the way FreeSWITCH 1.10 writes it: frames, and events in plain, json and xml.
//!
//! The simulated switch sends these bytes and the tests compare them with the real captures, so the shapes here
//! follow `fixtures/esl/*.bin` exactly: event frames put `Content-Length` before `Content-Type`; event-plain values
//! are URL-encoded with FreeSWITCH's unsafe set (space, `"#%&+:;<=>?@[\]^`{|}`, control and non-ASCII bytes) while
//! `,` `/` `(` `)` stay raw; an event body goes after an inner `Content-Length`; event-json is compact cJSON
//! with `Content-Length` and `_body` last; event-xml is pretty-printed with two-space indentation.

use super::event::Event;
use super::frame::ContentType;

/// The bytes FreeSWITCH's `switch_url_encode` escapes: outside printable ASCII, and ` "#%&+:;<=>?@[\]^`{|}`.
/// A table, so the per-byte test is one load on the hot path of encoding every event value.
const URL_UNSAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b < 0x20 || b > 0x7e;
        b += 1;
    }
    let special = b" \"#%&+:;<=>?@[\\]^`{|}";
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether FreeSWITCH's `switch_url_encode` escapes this byte.
#[inline]
fn url_unsafe(b: u8) -> bool {
    URL_UNSAFE[b as usize]
}

/// URL-encodes `value` as FreeSWITCH does for event-plain and event-xml values (`switch_url_encode`, which does
/// not double-encode): a `%` followed by two uppercase hex digits is taken as already encoded and kept, so a value
/// stored as `50%25off` goes out as `50%25off` and reads back `50%off`.
pub fn url_encode_into(value: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let encoded_already = |i: usize| {
        value[i] == b'%'
            && value
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(|c| HEX.contains(c)))
    };
    for (i, &b) in value.iter().enumerate() {
        if url_unsafe(b) && !encoded_already(i) {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
}

/// Appends a frame: the given headers in order, then `Content-Length` (when there is a body) and the body.
///
/// FreeSWITCH's own order differs by type; use [`event_frame`] for events and pass the headers in wire order
/// for the rest.
pub fn frame_into(out: &mut Vec<u8>, headers: &[(&str, &str)], body: &[u8]) {
    for (n, v) in headers {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    if !body.is_empty() {
        out.extend_from_slice(format!("Content-Length: {}\n", body.len()).as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(body);
}

/// `Content-Type: command/reply` with a `Reply-Text` (and extra headers after it, e.g. bgapi's `Job-UUID`).
pub fn command_reply(reply_text: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + reply_text.len());
    let mut headers = vec![
        ("Content-Type", "command/reply"),
        ("Reply-Text", reply_text),
    ];
    headers.extend_from_slice(extra);
    frame_into(&mut out, &headers, b"");
    out
}

/// `Content-Type: api/response` then `Content-Length` and the body (FreeSWITCH's order for api replies).
pub fn api_response(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + body.len());
    out.extend_from_slice(b"Content-Type: api/response\n");
    out.extend_from_slice(format!("Content-Length: {}\n\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// The text FreeSWITCH sends in the disconnect notice after `exit` or a failed auth.
pub const DISCONNECT_BODY: &str =
    "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

/// `Content-Type: text/disconnect-notice` with the standard goodbye body.
pub fn disconnect_notice() -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"Content-Type: text/disconnect-notice\n");
    out.extend_from_slice(format!("Content-Length: {}\n\n", DISCONNECT_BODY.len()).as_bytes());
    out.extend_from_slice(DISCONNECT_BODY.as_bytes());
    out
}

/// A whole event frame in the given format (`text/event-plain|json|xml`).
pub fn event_frame(event: &Event, format: ContentType) -> Vec<u8> {
    let body = match format {
        ContentType::EventJson => event_json(event),
        ContentType::EventXml => event_xml(event),
        _ => event_plain(event),
    };
    let content_type = match format {
        ContentType::EventJson => "text/event-json",
        ContentType::EventXml => "text/event-xml",
        _ => "text/event-plain",
    };
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(
        format!(
            "Content-Length: {}\nContent-Type: {content_type}\n\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    out
}

fn is_content_length(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"Content-Length")
}

/// The event-plain body: URL-encoded header lines, then the inner `Content-Length` and body, or a blank line.
pub fn event_plain(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.len() * 48);
    for (n, v) in event.headers() {
        if is_content_length(n) {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        url_encode_into(v, &mut out);
        out.push(b'\n');
    }
    match event.body() {
        Some(body) => {
            out.extend_from_slice(format!("Content-Length: {}\n\n", body.len()).as_bytes());
            out.extend_from_slice(body);
        }
        None => out.push(b'\n'),
    }
    out
}

fn json_string_into(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// The event-json body: compact, header order kept, `ARRAY::` values as arrays, `Content-Length` + `_body` last.
pub fn event_json(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.len() * 48);
    out.push(b'{');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b',');
        }
        first = false;
    };
    for (n, v) in event.headers() {
        if is_content_length(n) {
            continue;
        }
        sep(&mut out);
        json_string_into(n, &mut out);
        out.push(b':');
        match v.strip_prefix(b"ARRAY::") {
            Some(items) => {
                out.push(b'[');
                for (i, item) in items.split_str_pipe_colon().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    json_string_into(item, &mut out);
                }
                out.push(b']');
            }
            None => json_string_into(v, &mut out),
        }
    }
    if let Some(body) = event.body() {
        sep(&mut out);
        out.extend_from_slice(
            format!("\"Content-Length\":\"{}\",\"_body\":", body.len()).as_bytes(),
        );
        json_string_into(body, &mut out);
    }
    out.push(b'}');
    out
}

fn xml_text_into(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            c => out.push(c),
        }
    }
}

/// The event-xml body as FreeSWITCH's pretty-printer writes it.
pub fn event_xml(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(event.len() * 64);
    out.extend_from_slice(b"<event>\n  <headers>\n");
    for (n, v) in event.headers() {
        if is_content_length(n) {
            continue;
        }
        let items: Vec<&[u8]> = match v.strip_prefix(b"ARRAY::") {
            Some(items) => items.split_str_pipe_colon().collect(),
            None => vec![v],
        };
        for item in items {
            out.extend_from_slice(b"    <");
            out.extend_from_slice(n);
            out.push(b'>');
            url_encode_into(item, &mut out);
            out.extend_from_slice(b"</");
            out.extend_from_slice(n);
            out.extend_from_slice(b">\n");
        }
    }
    out.extend_from_slice(b"  </headers>\n");
    if let Some(body) = event.body() {
        out.extend_from_slice(
            format!("  <Content-Length>{}</Content-Length>\n", body.len()).as_bytes(),
        );
        out.extend_from_slice(b"  <body>");
        xml_text_into(body, &mut out);
        out.extend_from_slice(b"  </body>\n");
    }
    out.extend_from_slice(b"</event>\n");
    out
}

trait SplitPipeColon {
    fn split_str_pipe_colon(&self) -> std::vec::IntoIter<&[u8]>;
}

impl SplitPipeColon for [u8] {
    fn split_str_pipe_colon(&self) -> std::vec::IntoIter<&[u8]> {
        let mut parts = Vec::new();
        let mut rest = self;
        while let Some(i) = memchr::memmem::find(rest, b"|:") {
            parts.push(&rest[..i]);
            rest = &rest[i + 2..];
        }
        parts.push(rest);
        parts.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn the_unsafe_table_is_switch_url_encodes_set() {
        for b in 0..=255u8 {
            let expected = !(b' '..=b'~').contains(&b) || b" \"#%&+:;<=>?@[\\]^`{|}".contains(&b);
            assert_eq!(url_unsafe(b), expected, "byte {b:#04x}");
        }
    }

    fn sample() -> Event {
        Event::from_pairs(
            [
                ("Event-Name", "BACKGROUND_JOB"),
                ("Event-Date-GMT", "Wed, 25 Nov 2026 20:02:23 GMT"),
                (
                    "Job-Command-Arg",
                    "{a=b,c='x y'}loopback/answer_2/default &park",
                ),
                ("variable_multi", "ARRAY::a|:b"),
                ("utf", "кот"),
            ],
            Some(b"-ERR USER_BUSY\n"),
        )
    }

    #[test]
    fn plain_encoding_matches_freeswitch_escaping() {
        let plain = event_plain(&sample());
        let text = String::from_utf8(plain).unwrap();
        assert!(text.contains("Event-Date-GMT: Wed,%2025%20Nov%202026%2020%3A02%3A23%20GMT\n"));
        assert!(text.contains(
            "Job-Command-Arg: %7Ba%3Db,c%3D'x%20y'%7Dloopback/answer_2/default%20%26park\n"
        ));
        assert!(text.contains("utf: %D0%BA%D0%BE%D1%82\n"));
        assert!(text.ends_with("Content-Length: 15\n\n-ERR USER_BUSY\n"));
    }

    #[test]
    fn an_existing_uppercase_percent_escape_is_not_encoded_again() {
        let e = Event::from_pairs(
            [
                ("v_pct", "50%25off"),
                ("lower", "a%2fb"),
                ("lone", "100%"),
                ("short", "x%2"),
            ],
            None,
        );
        let text = String::from_utf8(event_plain(&e)).unwrap();
        assert!(text.contains("v_pct: 50%25off\n"), "{text}");
        // switch_url_encode's hex set is uppercase only; a lone or short `%` is encoded.
        assert!(text.contains("lower: a%252fb\n"), "{text}");
        assert!(text.contains("lone: 100%25\n"), "{text}");
        assert!(text.contains("short: x%252\n"), "{text}");
        let d = Event::decode_plain(Bytes::from(event_plain(&e))).unwrap();
        assert_eq!(d.get("v_pct"), Some("50%off"));
    }

    #[test]
    fn every_format_round_trips_through_the_decoder() {
        let e = sample();
        for (body, decode) in [
            (event_plain(&e), Event::decode_plain as fn(Bytes) -> _),
            (event_json(&e), Event::decode_json),
            (event_xml(&e), Event::decode_xml),
        ] {
            let d = decode(Bytes::from(body)).unwrap();
            assert_eq!(d.name(), Some("BACKGROUND_JOB"));
            assert_eq!(d.get("utf"), Some("кот"));
            assert_eq!(d.array("variable_multi"), vec![&b"a"[..], b"b"]);
            assert_eq!(d.body(), Some(&b"-ERR USER_BUSY\n"[..]));
        }
    }
}
