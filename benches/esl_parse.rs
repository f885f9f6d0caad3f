//! ESL parsing throughput on a ≥ 64 MiB stream built from the real FreeSWITCH captures (event-plain, including
//! CHANNEL_HANGUP_COMPLETE with its ~140 headers).
//!
//! Run: `cargo bench --bench esl_parse`. Groups:
//! - `framing`: `frame::check` + splitting each frame's outer header lines (the work the codec does per frame),
//!   against a baseline in the same run: one `memchr` pass counting newlines over the same bytes.
//! - `decode`: framing plus full event decoding (every inner header split and percent-decoded).
//!
//! Allocations per decoded event are counted with a counting global allocator and printed before the groups run.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fsdialer::esl::{ContentType, Event, Frame, Limits, Status, frame};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TARGET: usize = 64 * 1024 * 1024;

/// The event-plain frames of the real captures, repeated until the stream is at least 64 MiB.
fn stream() -> Bytes {
    let mut events = Vec::new();
    for name in ["plain_originate", "filters_nixevent_noevents"] {
        let path = format!("{}/fixtures/esl/{name}.bin", env!("CARGO_MANIFEST_DIR"));
        let data = Bytes::from(std::fs::read(path).expect("fixture"));
        let mut at = 0;
        while let Ok(Some((f, used))) = Frame::parse(&data.slice(at..), &Limits::default()) {
            if f.content_type() == ContentType::EventPlain {
                events.extend_from_slice(f.raw());
            }
            at += used;
        }
    }
    let mut out = Vec::with_capacity(TARGET + events.len());
    while out.len() < TARGET {
        out.extend_from_slice(&events);
    }
    Bytes::from(out)
}

fn framing(stream: &Bytes) -> usize {
    let limits = Limits::default();
    let mut at = 0;
    let mut headers = 0;
    while at < stream.len() {
        match frame::check(&stream[at..], &limits).unwrap() {
            Status::Complete(layout) => {
                let f = Frame::new(stream.slice(at..at + layout.total()), layout);
                headers += f.headers().count();
                at += layout.total();
            }
            Status::Partial => unreachable!("the stream holds whole frames"),
        }
    }
    headers
}

fn decode(stream: &Bytes) -> usize {
    let limits = Limits::default();
    let mut at = 0;
    let mut events = 0;
    while at < stream.len() {
        let Status::Complete(layout) = frame::check(&stream[at..], &limits).unwrap() else {
            unreachable!()
        };
        let f = Frame::new(stream.slice(at..at + layout.total()), layout);
        let e = Event::from_frame(&f).unwrap();
        black_box(e.name());
        events += 1;
        at += layout.total();
    }
    events
}

fn bench(c: &mut Criterion) {
    let stream = stream();
    let events = decode(&stream);

    let before = ALLOCS.load(Ordering::Relaxed);
    decode(&stream);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    println!(
        "esl_parse: stream {} MiB, {} events, {:.2} allocations per decoded event (framing + decode)",
        stream.len() / (1024 * 1024),
        events,
        allocs as f64 / events as f64
    );

    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.sample_size(10);
    g.bench_function("baseline_memchr_newlines", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(&stream)).count())
    });
    g.bench_function("frame_check_and_header_split", |b| {
        b.iter(|| framing(black_box(&stream)))
    });
    g.finish();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(events as u64));
    g.sample_size(10);
    g.bench_function("frame_and_event_plain", |b| {
        b.iter(|| decode(black_box(&stream)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
