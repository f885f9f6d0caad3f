//! An ESL client connected straight to a simulated switch (not through the test's proxy) that records when each
//! channel was created and hung up, on the engine's clock: the ground truth the engine's reconciliation is judged
//! against.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use fsdialer::engine::clock::Clock;
use fsdialer::esl::client::{Client, ClientConfig, ClientEvent, EventFormat};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// What the switch did with one channel, as seen live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub created: Option<DateTime<Utc>>,
    pub hangup: Option<DateTime<Utc>>,
    pub hangup_cause: Option<String>,
    /// `Caller-Caller-ID-Number` of its CHANNEL_CREATE: the caller ID it presents.
    pub caller_id: Option<String>,
}

/// Records CHANNEL_CREATE and CHANNEL_HANGUP_COMPLETE of every channel; dropping it disconnects.
pub struct Observer {
    seen: Arc<Mutex<HashMap<Uuid, Seen>>>,
    task: JoinHandle<()>,
    _client: Client,
}

impl Observer {
    pub async fn start(addr: SocketAddr, clock: Clock) -> Observer {
        let (client, mut events) = Client::connect(ClientConfig::new(addr.to_string(), "ClueCon"))
            .await
            .expect("observer connects to the switch");
        client
            .event(
                EventFormat::Plain,
                &["CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE"],
            )
            .await
            .expect("observer subscribes");
        let seen: Arc<Mutex<HashMap<Uuid, Seen>>> = Arc::default();
        let s = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let ClientEvent::Event(e) = ev else { continue };
                let Some(uuid) = e.unique_id().and_then(|u| u.parse::<Uuid>().ok()) else {
                    continue;
                };
                let now = clock.now();
                let mut map = s.lock().unwrap_or_else(|p| p.into_inner());
                let entry = map.entry(uuid).or_default();
                match e.name() {
                    Some("CHANNEL_CREATE") => {
                        entry.created = Some(now);
                        entry.caller_id = e.get("Caller-Caller-ID-Number").map(str::to_owned);
                    }
                    Some("CHANNEL_HANGUP_COMPLETE") => {
                        entry.hangup = Some(now);
                        entry.hangup_cause = e.hangup_cause().map(str::to_owned);
                    }
                    _ => {}
                }
            }
        });
        Observer {
            seen,
            task,
            _client: client,
        }
    }

    /// What was seen of the channel `uuid` (default: nothing).
    pub fn get(&self, uuid: Uuid) -> Seen {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&uuid)
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
