//! Simulator throughput: originates per second and 10,000 concurrent calls, in the call model (virtual time),
//! building the events a dialer subscribes to (BACKGROUND_JOB, CHANNEL_ANSWER, CHANNEL_HANGUP_COMPLETE).
//!
//! Run: `cargo bench --bench sim -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashSet;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fsdialer::esl::{ContentType, encode};
use fsdialer::sim::model::{Config, Interest, Switch};
use fsdialer::sim::scenario::Scenario;

const T0: u64 = 1_795_636_943_000_000;

fn switch() -> Switch {
    let cfg = Config {
        max_sessions: 100_000,
        sessions_per_second: 1_000_000,
        ..Config::default()
    };
    let mut sw = Switch::new(cfg, Scenario::builtin(), T0);
    let names: HashSet<String> = [
        "BACKGROUND_JOB",
        "CHANNEL_ANSWER",
        "CHANNEL_HANGUP_COMPLETE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sw.set_interest(Interest::Only(names));
    sw
}

/// Originates `n` answered single-channel calls, encodes their events as event-plain, and plays them to the end.
fn calls(n: u64, talk_s: u64) -> usize {
    let mut sw = switch();
    let mut bytes = 0;
    for i in 0..n {
        let args = format!(
            "{{origination_uuid=00000000-0000-4000-8000-{i:012},originate_timeout=30,dlr_member_id={i}}}sofia/gateway/gw/answer_{talk_s} &park"
        );
        sw.bgapi(T0 + i, "originate", &args, "job", "");
        for e in sw.take_events() {
            bytes += encode::event_frame(&e, ContentType::EventPlain).len();
        }
    }
    assert_eq!(sw.channel_count() as u64, n, "all calls up at once");
    sw.advance(T0 + (talk_s + 1) * 1_000_000);
    for e in sw.take_events() {
        bytes += encode::event_frame(&e, ContentType::EventPlain).len();
    }
    assert_eq!(sw.channel_count(), 0);
    bytes
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    g.throughput(Throughput::Elements(5_000));
    g.bench_function("originate_answer_hangup_5000_calls", |b| {
        b.iter(|| calls(5_000, 1))
    });
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("concurrent_10000_calls", |b| {
        b.iter_batched(|| (), |_| calls(10_000, 600), BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
