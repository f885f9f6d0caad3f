//! Webhook benchmarks against a private local redis-server (started by the bench):
//! - `webhooks/outbox_cycle_100`: 100 events (100 members) queued in one step, taken, and each settled as
//!   delivered: the events per second one node's outbox sustains, without HTTP;
//! - `webhooks/delivery_loopback`: one event queued until a receiver on loopback has it (the real delivery task,
//!   signing, HTTP/1.1 keep-alive); after it, p50 and p99 of 1,000 such deliveries are printed.
//!
//! Run: `cargo bench --bench webhooks -- --warm-up-time 1 --measurement-time 3`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fsdialer::store::Store;
use fsdialer::store::local_redis::{LocalRedis, LocalRedisOptions};
use fsdialer::store::outbox::{DeliveryRecord, EnqueueGroup, Settle};
use fsdialer::webhooks::deliver::{DeliveryConfig, run as deliver};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

const SECRET: &str = "bench-secret-0123456789";

fn record(seq: u64, member: u64, url: &str) -> DeliveryRecord {
    DeliveryRecord {
        id: format!("attempt_end:{seq}@bench"),
        event_id: format!("attempt_end:{seq}"),
        event: "attempt_end".into(),
        url: url.into(),
        body: json!({"type": "attempt_end", "id": format!("attempt_end:{seq}"), "member": {"id": member},
                     "cause": "NORMAL_CLEARING", "class": "ok", "talk_secs": 42})
        .to_string(),
        member: Some(member),
        created_ms: chrono::Utc::now().timestamp_millis(),
        attempts: 0,
        last_error: None,
        dead_at_ms: None,
    }
}

fn bench(c: &mut Criterion) {
    let redis = LocalRedis::start(LocalRedisOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(Store::open(&redis.url())).unwrap();
    let seq = AtomicU64::new(0);
    let mut g = c.benchmark_group("webhooks");

    g.throughput(Throughput::Elements(100));
    g.bench_function("outbox_cycle_100", |b| {
        b.iter(|| {
            rt.block_on(async {
                let now = chrono::Utc::now();
                let deliveries: Vec<DeliveryRecord> = (0..100)
                    .map(|m| {
                        record(
                            seq.fetch_add(1, Ordering::Relaxed),
                            m,
                            "http://127.0.0.1:9/h",
                        )
                    })
                    .collect();
                let group = EnqueueGroup {
                    marker: None,
                    deliveries,
                };
                assert_eq!(
                    store.outbox_enqueue("cyc", &[group], now).await.unwrap(),
                    100
                );
                let taken = store
                    .outbox_take("cyc", now, Duration::from_secs(30), 100)
                    .await
                    .unwrap();
                assert_eq!(taken.len(), 100);
                for rec in &taken {
                    assert!(
                        store
                            .outbox_settle("cyc", rec, &Settle::Delivered, now)
                            .await
                            .unwrap()
                    );
                }
            })
        })
    });

    // The receiver: answers 204 and says when each event arrived.
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel::<String>();
    let port = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let tx = arrived_tx.clone();
                async move {
                    let key = headers
                        .get("Idempotency-Key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(key);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    });
    let url = format!("http://127.0.0.1:{port}/hook");
    let doc = json!({"config": {"id": "lat", "name": "lat", "gateways": [],
        "webhooks": [{"url": url, "events": ["attempt_end"], "secret": SECRET}]},
        "run": false, "updated_at": chrono::Utc::now(), "version": 1});
    rt.block_on(store.put_campaign_doc("lat", &doc.to_string()))
        .unwrap();
    let wake = Arc::new(Notify::new());
    let delivery = rt.spawn(deliver(
        store.clone(),
        DeliveryConfig::default(),
        wake.clone(),
    ));
    // Let the task read the campaign's webhooks.
    std::thread::sleep(Duration::from_millis(1500));
    let mut one = |member: u64| -> Duration {
        rt.block_on(async {
            let rec = record(seq.fetch_add(1, Ordering::Relaxed), member, &url);
            let key = rec.event_id.clone();
            let t = Instant::now();
            let group = EnqueueGroup {
                marker: None,
                deliveries: vec![rec],
            };
            store
                .outbox_enqueue("lat", &[group], chrono::Utc::now())
                .await
                .unwrap();
            wake.notify_one();
            while let Some(got) = arrived.recv().await {
                if got == key {
                    break;
                }
            }
            t.elapsed()
        })
    };
    g.throughput(Throughput::Elements(1));
    g.bench_function("delivery_loopback", |b| {
        b.iter_custom(|iters| (0..iters).map(|i| one(i % 1000)).sum())
    });
    g.finish();
    let mut samples: Vec<Duration> = (0..1000).map(|i| one(i % 1000)).collect();
    samples.sort();
    eprintln!(
        "webhooks/delivery_loopback over 1000 deliveries: p50 {:?}, p99 {:?}, max {:?}",
        samples[499], samples[989], samples[999]
    );
    delivery.abort();
}

criterion_group!(benches, bench);
criterion_main!(benches);
