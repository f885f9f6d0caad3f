//! Decoding tests for the three event formats: duplicates, bodies, arrays, errors with their offsets.

use super::*;

#[test]
fn plain_event_values_are_percent_decoded_and_duplicates_kept() {
    let body = b"Event-Name: CHANNEL_HANGUP_COMPLETE\nEvent-Date-Local: 2026-11-25%2020%3A02%3A23\nHangup-Cause: NORMAL_CLEARING\nvariable_x: a%2Bb+c\nHangup-Cause: NORMAL_CLEARING\n\n";
    let e = Event::decode_plain(Bytes::from_static(body)).unwrap();
    assert_eq!(e.name(), Some("CHANNEL_HANGUP_COMPLETE"));
    assert_eq!(e.get("event-date-local"), Some("2026-11-25 20:02:23"));
    assert_eq!(e.variable("x"), Some("a+b+c"));
    assert_eq!(e.get_all("Hangup-Cause").count(), 2);
    assert!(e.body().is_none());
}

#[test]
fn plain_background_job_body_follows_inner_content_length() {
    let body = b"Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: 15\n\n-ERR USER_BUSY\n";
    let e = Event::decode_plain(Bytes::from_static(body)).unwrap();
    assert_eq!(e.job_uuid(), Some("j1"));
    assert_eq!(e.body(), Some(&b"-ERR USER_BUSY\n"[..]));
}

#[test]
fn plain_truncated_inner_body_is_an_error() {
    let body = b"Event-Name: BACKGROUND_JOB\nContent-Length: 99\n\nshort";
    assert_eq!(
        Event::decode_plain(Bytes::from_static(body)).unwrap_err(),
        EventError::BodyTruncated {
            declared: 99,
            available: 5
        }
    );
}

#[test]
fn json_event_keeps_duplicate_keys_arrays_and_body() {
    let body = br#"{"Event-Name":"BACKGROUND_JOB","Hangup-Cause":"A","Hangup-Cause":"B","variable_v":["x","y"],"esc":"a\nb\u00e9","Content-Length":"4","_body":"+OK\n"}"#;
    let e = Event::decode_json(Bytes::from_static(body)).unwrap();
    assert_eq!(
        e.get_all("Hangup-Cause").collect::<Vec<_>>(),
        vec![&b"A"[..], b"B"]
    );
    assert_eq!(e.variable("v"), Some("ARRAY::x|:y"));
    assert_eq!(e.array("variable_v"), vec![&b"x"[..], b"y"]);
    assert_eq!(e.get("esc"), Some("a\nbé"));
    assert_eq!(e.body(), Some(&b"+OK\n"[..]));
}

#[test]
fn json_that_is_not_an_object_is_a_clear_error() {
    let err = Event::decode_json(Bytes::from_static(b"[1,2]")).unwrap_err();
    assert!(matches!(err, EventError::Json(_)), "{err}");
}

#[test]
fn xml_event_body_is_cut_at_content_length() {
    let body = b"<event>\n  <headers>\n    <Event-Name>BACKGROUND_JOB</Event-Name>\n    <Job-Command-Arg>%7Bx%3D1%7D</Job-Command-Arg>\n    <Empty/>\n  </headers>\n  <Content-Length>15</Content-Length>\n  <body>-ERR USER_BUSY\n  </body>\n</event>";
    let e = Event::decode_xml(Bytes::from_static(body)).unwrap();
    assert_eq!(e.name(), Some("BACKGROUND_JOB"));
    assert_eq!(e.get("Job-Command-Arg"), Some("{x=1}"));
    assert_eq!(e.get("Empty"), Some(""));
    assert_eq!(e.body(), Some(&b"-ERR USER_BUSY\n"[..]));
}

#[test]
fn xml_mismatched_tag_names_the_offset() {
    let body = b"<event><headers><A>1</B></headers></event>";
    let err = Event::decode_xml(Bytes::from_static(body)).unwrap_err();
    assert!(matches!(err, EventError::Xml { offset: 20, .. }), "{err:?}");
}

#[test]
fn xml_entities_in_body_are_decoded() {
    let body = b"<event><headers></headers><body>a &lt;b&gt; &amp; &#233;</body></event>";
    let e = Event::decode_xml(Bytes::from_static(body)).unwrap();
    assert_eq!(e.body_text().unwrap(), "a <b> & é");
}

#[test]
fn invalid_utf8_value_is_bytes_not_panic() {
    let e = Event::decode_plain(Bytes::from_static(b"X: %FF%FE\n\n")).unwrap();
    assert_eq!(e.get_bytes("X"), Some(&b"\xff\xfe"[..]));
    assert_eq!(e.get("X"), None);
}
