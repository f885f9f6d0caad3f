//! Client-side ESL throughput: the codec's decoder (framing only, no event decoding) over real captures, and
//! command round trips through the inbound client over loopback TCP (1,000 concurrent `api` calls, 1,000
//! concurrent `bgapi` jobs each resolved by its BACKGROUND_JOB event).
//!
//! The peer is a minimal responder written here with the crate's own command parser and FreeSWITCH-exact
//! encoders (auth, event, `api echo`, `bgapi echo` + BACKGROUND_JOB); it answers as fast as it can, so the numbers
//! are the client's cost plus loopback, not FreeSWITCH's.
//!
//! Run: `cargo bench --bench esl_client -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fsdialer::esl::client::{Client, ClientConfig};
use fsdialer::esl::codec::EslCodec;
use fsdialer::esl::command::{self, Command};
use fsdialer::esl::{ContentType, Event, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::codec::Decoder;

fn capture_stream(min: usize) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/esl");
    let one = std::fs::read(dir.join("plain_originate.bin")).expect("capture present");
    let mut out = Vec::with_capacity(min + one.len());
    while out.len() < min {
        out.extend_from_slice(&one);
    }
    out
}

fn codec(c: &mut Criterion) {
    let stream = capture_stream(16 << 20);
    let mut g = c.benchmark_group("esl_codec");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.sample_size(10);
    g.bench_function("decode_plain_originate_16MiB", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            |mut buf| {
                let mut codec = EslCodec::default();
                let mut n = 0usize;
                while let Some(f) = codec.decode(&mut buf).unwrap() {
                    n += f.body_bytes().len();
                }
                n
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

async fn responder() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                if sock
                    .write_all(b"Content-Type: auth/request\n\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut buf = BytesMut::with_capacity(64 << 10);
                let mut out = Vec::with_capacity(64 << 10);
                let mut seq = 0u64;
                loop {
                    while let Ok(Some(layout)) = command::check(&buf, 1 << 20) {
                        let raw = buf.split_to(layout.header_end + layout.body_len).freeze();
                        let cmd = Command::new(raw, layout);
                        let line = String::from_utf8_lossy(cmd.line()).into_owned();
                        if line.starts_with("auth ") {
                            out.extend(encode::command_reply("+OK accepted", &[]));
                        } else if let Some(arg) = line.strip_prefix("api echo ") {
                            out.extend(encode::api_response(arg.as_bytes()));
                        } else if let Some(arg) = line.strip_prefix("bgapi echo ") {
                            let job =
                                String::from_utf8_lossy(cmd.header("Job-UUID").unwrap_or(b""))
                                    .into_owned();
                            out.extend(encode::command_reply(
                                &format!("+OK Job-UUID: {job}"),
                                &[("Job-UUID", &job)],
                            ));
                            seq += 1;
                            let event = Event::from_pairs(
                                [
                                    ("Event-Name", "BACKGROUND_JOB"),
                                    ("Event-Sequence", seq.to_string().as_str()),
                                    ("Job-UUID", job.as_str()),
                                    ("Job-Command", "echo"),
                                    ("Job-Command-Arg", arg),
                                ],
                                Some(arg.as_bytes()),
                            );
                            out.extend(encode::event_frame(&event, ContentType::EventPlain));
                        } else {
                            out.extend(encode::command_reply("+OK", &[]));
                        }
                    }
                    if !out.is_empty() {
                        if sock.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                    match sock.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    addr
}

fn round_trips(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (client, events) = rt.block_on(async {
        let addr = responder().await;
        Client::connect(ClientConfig::new(addr, "ClueCon"))
            .await
            .unwrap()
    });
    let mut g = c.benchmark_group("esl_client");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(20);
    g.bench_function("api_1000_concurrent", |b| {
        b.iter(|| {
            let client = client.clone();
            rt.block_on(async move {
                let calls = (0..1000).map(|i| {
                    let client = client.clone();
                    async move { client.api(&format!("echo {i}")).await.unwrap() }
                });
                futures::future::join_all(calls).await
            })
        })
    });
    g.bench_function("bgapi_1000_concurrent_with_job_result", |b| {
        b.iter(|| {
            let client = client.clone();
            rt.block_on(async move {
                let jobs = (0..1000).map(|i| {
                    let client = client.clone();
                    async move {
                        let job = client.bgapi(&format!("echo {i}")).await.unwrap();
                        job.result().await.unwrap()
                    }
                });
                futures::future::join_all(jobs).await
            })
        })
    });
    g.finish();
    drop(events);
    rt.shutdown_timeout(Duration::from_secs(1));
}

criterion_group!(benches, codec, round_trips);
criterion_main!(benches);
