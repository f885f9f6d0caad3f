//! Shared harness of the callflow tests: the simulated switch on port 0 with `fixtures/callflows/sim_scenario.toml`,
//! the real ESL client, and an event dispatcher playing the engine's part (forwarding each call's events to its
//! runner with `callflow::wants`, and logging every event per call for the assertions).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fsdialer::campaign::callflow::Callflow;
use fsdialer::engine::callflow::{self, CallContext, CallflowOutcome, RunnerConfig};
use fsdialer::esl::Event;
use fsdialer::esl::client::{Client, ClientConfig, ClientEvent, EventFormat};
use fsdialer::sim::server::{self, ServerConfig, SimHandle};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Simulated seconds per real second: a one-second playback takes 50 ms.
pub const SPEED: f64 = 20.0;

type Routes = Arc<Mutex<HashMap<String, mpsc::Sender<Event>>>>;
type Log = Arc<Mutex<HashMap<String, Vec<Event>>>>;

pub struct Harness {
    pub sim: SimHandle,
    pub client: Client,
    routes: Routes,
    log: Log,
}

/// One originated, answered call.
pub struct Call {
    pub uuid: Uuid,
    pub events: mpsc::Receiver<Event>,
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/callflows")
        .join(name)
}

pub fn flow_fixture(name: &str) -> Callflow {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    Callflow::parse(&value).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn flow(value: serde_json::Value) -> Callflow {
    Callflow::parse(&value).unwrap_or_else(|e| panic!("{e}"))
}

/// A member context: name, number and variables.
pub fn member(name: &str, number: &str, vars: serde_json::Value) -> CallContext {
    CallContext::new(name, number).with_variables(vars.as_object().cloned().unwrap_or_default())
}

impl Harness {
    pub async fn start() -> Harness {
        let sim = server::start(ServerConfig {
            scenario: Some(fixture_path("sim_scenario.toml")),
            speed: SPEED,
            // Tests originate dozens of calls at once; FreeSWITCH's default 30 sessions/s would refuse some.
            switch: fsdialer::sim::model::Config {
                sessions_per_second: 100_000,
                ..Default::default()
            },
            ..ServerConfig::default()
        })
        .await
        .expect("sim starts");
        let (client, mut events) =
            Client::connect(ClientConfig::new(sim.local_addr().to_string(), "ClueCon"))
                .await
                .expect("client connects");
        let mut names = vec!["CHANNEL_ANSWER", "CHANNEL_EXECUTE", "DTMF"];
        names.extend_from_slice(callflow::EVENTS);
        client.event(EventFormat::Plain, &names).await.unwrap();
        let routes: Routes = Arc::default();
        let log: Log = Arc::default();
        let (r, l) = (routes.clone(), log.clone());
        tokio::spawn(async move {
            while let Some(item) = events.recv().await {
                let ClientEvent::Event(event) = item else {
                    continue;
                };
                let Some(uid) = event.unique_id().map(str::to_ascii_lowercase) else {
                    continue;
                };
                l.lock()
                    .unwrap()
                    .entry(uid.clone())
                    .or_default()
                    .push(event.clone());
                let tx = r.lock().unwrap().get(&uid).cloned();
                if let Some(tx) = tx
                    && callflow::wants(&event, &uid)
                {
                    // A blocking send, as the engine may do: the runner keeps draining.
                    let _ = tx.send(event).await;
                }
            }
        });
        Harness {
            sim,
            client,
            routes,
            log,
        }
    }

    /// Registers a route for `uuid` (before anything can happen on it).
    pub fn route(&self, uuid: Uuid, capacity: usize) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(capacity);
        self.routes
            .lock()
            .unwrap()
            .insert(uuid.hyphenated().to_string(), tx);
        rx
    }

    /// Originates `loopback/<number>/default &park()` and returns once it is answered.
    pub async fn call(&self, number: &str) -> Call {
        let uuid = Uuid::new_v4();
        let events = self.route(uuid, 8);
        let job = self
            .client
            .bgapi(&format!(
                "originate {{origination_uuid={uuid}}}loopback/{number}/default &park()"
            ))
            .await
            .expect("bgapi accepted");
        let result = job.result().await.expect("BACKGROUND_JOB");
        assert!(result.is_ok(), "originate {number}: {}", result.text());
        Call { uuid, events }
    }

    /// Runs `flow` on `call` with the default runner configuration, guarded so a stuck flow fails the test.
    pub async fn run(
        &self,
        call: &mut Call,
        flow: &Callflow,
        ctx: &CallContext,
    ) -> CallflowOutcome {
        self.run_with(&RunnerConfig::default(), call, flow, ctx)
            .await
    }

    pub async fn run_with(
        &self,
        config: &RunnerConfig,
        call: &mut Call,
        flow: &Callflow,
        ctx: &CallContext,
    ) -> CallflowOutcome {
        tokio::time::timeout(
            Duration::from_secs(60),
            callflow::run_with(config, &self.client, call.uuid, flow, ctx, &mut call.events),
        )
        .await
        .expect("the callflow ends")
    }

    /// Every event of the call so far.
    pub fn events(&self, uuid: Uuid) -> Vec<Event> {
        self.log
            .lock()
            .unwrap()
            .get(&uuid.hyphenated().to_string())
            .cloned()
            .unwrap_or_default()
    }

    /// Waits (at most 20 s) for an event named `name` on the call, and returns it.
    pub async fn wait_for(&self, uuid: Uuid, name: &str) -> Event {
        for _ in 0..1000 {
            if let Some(e) = self
                .events(uuid)
                .into_iter()
                .find(|e| e.name() == Some(name))
            {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no {name} for {uuid}");
    }

    /// `(Application, Application-Data)` of every CHANNEL_EXECUTE of the call: what the switch was asked to run.
    pub fn executed(&self, uuid: Uuid) -> Vec<(String, String)> {
        self.events(uuid)
            .iter()
            .filter(|e| e.name() == Some("CHANNEL_EXECUTE"))
            .map(|e| {
                (
                    e.get("Application").unwrap_or_default().to_string(),
                    e.get("Application-Data").unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The applications the switch ran on the call, in order, without the originate's `park`.
    pub fn apps(&self, uuid: Uuid) -> Vec<String> {
        self.executed(uuid)
            .into_iter()
            .map(|(a, _)| a)
            .filter(|a| a != "park")
            .collect()
    }
}
