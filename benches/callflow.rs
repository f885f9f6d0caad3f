//! Callflow costs: building step arguments (rendering, field checks, expansion escaping) and whole survey flows
//! run over real ESL against the simulated switch (100 calls at once, at 1000× simulated speed so a one-second
//! playback takes 1 ms: the numbers are the runner's, the client's and the simulator's cost, not audio time).
//!
//! Run: `cargo bench --bench callflow -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fsdialer::campaign::callflow::{Callflow, Step, Template};
use fsdialer::engine::callflow::{self, CallContext, command};
use fsdialer::esl::Event;
use fsdialer::esl::client::{Client, ClientConfig, ClientEvent, EventFormat};
use fsdialer::sim::server::{self, ServerConfig};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

fn survey() -> Callflow {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/callflows/survey.json");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Callflow::parse(&value).unwrap()
}

fn commands(c: &mut Criterion) {
    let flow = survey();
    let Step::PlayAndGetDigits(pagd) = &flow.steps()[2] else {
        panic!("survey step 2 is play_and_get_digits")
    };
    let lookup = |name: &str| match name {
        "language" => Some("uk".to_string()),
        "note" => Some("${hostname} owes $5 \\ 'quoted'".to_string()),
        _ => None,
    };
    let note = Template::parse("Note: ${note}").unwrap();
    let mut g = c.benchmark_group("callflow_command");
    g.throughput(Throughput::Elements(1));
    g.bench_function("play_and_get_digits", |b| {
        b.iter(|| command::play_and_get_digits(pagd, &lookup, None).unwrap())
    });
    g.bench_function("set_hostile_value", |b| {
        b.iter(|| command::set("note", &note, &lookup).unwrap())
    });
    g.finish();
}

type Routes = Arc<Mutex<HashMap<String, mpsc::Sender<Event>>>>;

fn flows_over_sim(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let routes: Routes = Arc::default();
    let (sim, client) = rt.block_on(async {
        let sim = server::start(ServerConfig {
            scenario: Some(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/callflows/sim_scenario.toml"),
            ),
            speed: 1000.0,
            switch: fsdialer::sim::model::Config {
                sessions_per_second: 1_000_000,
                ..Default::default()
            },
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        let (client, mut events) =
            Client::connect(ClientConfig::new(sim.local_addr().to_string(), "ClueCon"))
                .await
                .unwrap();
        client
            .event(EventFormat::Plain, callflow::EVENTS)
            .await
            .unwrap();
        let r = routes.clone();
        tokio::spawn(async move {
            while let Some(item) = events.recv().await {
                let ClientEvent::Event(event) = item else {
                    continue;
                };
                let Some(uid) = event.unique_id().map(str::to_ascii_lowercase) else {
                    continue;
                };
                let tx = r.lock().unwrap().get(&uid).cloned();
                if let Some(tx) = tx
                    && callflow::wants(&event, &uid)
                {
                    let _ = tx.send(event).await;
                }
            }
        });
        (sim, client)
    });
    let flow = Arc::new(survey());
    let ctx = Arc::new(
        CallContext::new("Bench", "press_1")
            .with_variables(json!({"language": "uk"}).as_object().unwrap().clone()),
    );
    let mut g = c.benchmark_group("callflow_sim");
    g.throughput(Throughput::Elements(100));
    g.sample_size(10);
    g.bench_function("survey_100_concurrent_calls", |b| {
        b.iter(|| {
            rt.block_on(async {
                let runs = (0..100).map(|_| {
                    let (client, routes, flow, ctx) = (client.clone(), routes.clone(), flow.clone(), ctx.clone());
                    async move {
                        let uuid = Uuid::new_v4();
                        let (tx, mut rx) = mpsc::channel(16);
                        routes.lock().unwrap().insert(uuid.to_string(), tx);
                        let job = client
                            .bgapi(&format!("originate {{origination_uuid={uuid}}}loopback/press_1/default &park()"))
                            .await
                            .unwrap();
                        assert!(job.result().await.unwrap().is_ok());
                        let out = callflow::run(&client, uuid, &flow, &ctx, &mut rx).await;
                        routes.lock().unwrap().remove(&uuid.to_string());
                        assert_eq!(out.result, Some(true), "{out:?}");
                    }
                });
                futures::future::join_all(runs).await
            })
        })
    });
    g.finish();
    rt.block_on(sim.shutdown());
    rt.shutdown_timeout(Duration::from_secs(1));
}

criterion_group!(benches, commands, flows_over_sim);
criterion_main!(benches);
