//! Fuzz target: arbitrary bytes through the ESL frame parser, every event decoder and the command parser.
//! Run: `cd fuzz && cargo +nightly fuzz run esl_frame`.
#![no_main]

use bytes::{Bytes, BytesMut};
use fsdialer::esl::{Event, Frame, Limits, Status, command, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_frame: 1 << 16 };
    // Whole buffer, frame after frame, as the codec does.
    let mut buf = BytesMut::from(data);
    while let Ok(Status::Complete(layout)) = frame::check(&buf, &limits) {
        let f = Frame::new(buf.split_to(layout.total()).freeze(), layout);
        let _ = f.headers().count();
        let _ = f.reply_text();
        if let Ok(e) = Event::from_frame(&f) {
            let _ = e.headers().count();
            let _ = e.array("variable_x");
            let _ = fsdialer::esl::encode::event_plain(&e);
        }
    }
    // Every decoder on the raw bytes.
    let raw = Bytes::copy_from_slice(data);
    let _ = Event::decode_plain(raw.clone());
    let _ = Event::decode_json(raw.clone());
    let _ = Event::decode_xml(raw);
    // The server side: client commands.
    if let Ok(Some(layout)) = command::check(data, 1 << 16) {
        let c = command::Command::new(Bytes::copy_from_slice(data), layout);
        let _ = c.line();
        let _ = c.headers().count();
        let _ = c.body();
    }
});
