//! The operator page's update latency: a member added through the REST API until the live stream
//! (`GET /api/v2/live`, server-sent events) sends the snapshot that counts it — what a page shows one change
//! later. `fsdialer run` in-process (memory store, the embedded simulated switch; the campaign is not running, so
//! the member just waits). After the criterion run, p50 and p99 of 200 updates are printed.
//!
//! Run: `cargo bench --bench live_page -- --warm-up-time 1 --measurement-time 5`

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: (&str, &str) = ("admin", "bench-admin-0123456789");

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let text = format!(
        "node_id = \"bench\"\nstore = \"memory://\"\n[api]\nlisten = \"127.0.0.1:0\"\n[[api.keys]]\nid = \"{}\"\n\
         secret = \"{}\"\nrole = \"admin\"\n[sim]\nspeed = 1.0\n",
        KEY.0, KEY.1
    );
    let cfg = fsdialer::run::config::RunConfig::from_toml(&text).unwrap();
    let running = rt
        .block_on(fsdialer::run::start(cfg, |_| None, false))
        .unwrap();
    let addr = running.addr;
    let base = format!("http://{addr}");
    fsdialer::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let accept: Vec<_> = (1..=7)
        .map(|d| json!({"weekday": d, "start_min": 0, "end_min": 1440}))
        .collect();
    let campaign = json!({"id": "live", "name": "live", "calendar": {"timezone": "UTC", "accept": accept},
        "gateways": [{"name": "lb", "pattern": "^(.*)$", "dial_string": "loopback/$1/default"}]});
    let post = |path: String, body: serde_json::Value| {
        let rq = http
            .post(format!("{base}{path}"))
            .header("X-Key", KEY.0)
            .header("X-Access-Token", KEY.1)
            .json(&body);
        async move {
            let r = rq.send().await.unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        }
    };
    rt.block_on(post("/api/v2/dialer".into(), campaign));
    // The stream, read raw: each snapshot arrives whole in one chunk.
    let mut sse = rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let rq = format!(
            "GET /api/v2/live HTTP/1.1\r\nHost: {addr}\r\nX-Key: {}\r\nX-Access-Token: {}\r\nAccept: text/event-stream\r\n\r\n",
            KEY.0, KEY.1
        );
        s.write_all(rq.as_bytes()).await.unwrap();
        s
    });
    let mut waiting = 0u64;
    let mut buf = Vec::new();
    let mut one = || -> Duration {
        rt.block_on(async {
            waiting += 1;
            let marker = format!("\"waiting\":{waiting},");
            let t = Instant::now();
            post(
                "/api/v2/dialer/live/members".into(),
                json!({"name": "m", "communications": [{"number": "answer_1"}]}),
            )
            .await;
            let mut chunk = [0u8; 65536];
            loop {
                if memchr::memmem::find(&buf, marker.as_bytes()).is_some() {
                    buf.clear();
                    return t.elapsed();
                }
                let n = sse.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the live stream ended");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
    };
    let mut g = c.benchmark_group("live_page");
    g.sample_size(10);
    g.bench_function("update", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| one()).sum())
    });
    g.finish();
    let mut samples: Vec<Duration> = (0..200).map(|_| one()).collect();
    samples.sort();
    eprintln!(
        "live_page/update over 200 changes: p50 {:?}, p99 {:?}, max {:?}",
        samples[99], samples[197], samples[199]
    );
    rt.block_on(running.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
