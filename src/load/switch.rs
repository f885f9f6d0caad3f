//! One switch under load: its ESL connection, the events of our calls routed to the call that placed them, its
//! limits, and its own `status` figures.
//!
//! Our calls carry `dlr_node=<run tag>` (set by [`crate::engine::originate`]) and the connection subscribes to
//! CHANNEL_ANSWER and CHANNEL_HANGUP_COMPLETE behind the engine's node filter
//! ([`crate::engine::subscription::node_filter`]), so a busy switch sends us the events of our calls only. A call
//! registers its channel uuid before its originate is written ([`Calls::register`]) and is removed on every path
//! when its [`Registration`] drops: the map never holds more than the calls up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::LoadError;
use crate::engine::subscription::{Subscription, node_filter};
use crate::engine::switch_info;
use crate::esl::client::{Client, ClientConfig, ClientEvent, Events};

/// What the switch said about one of our channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelNews {
    Answered { at: Instant },
    HungUp { cause: String, at: Instant },
}

/// Events a call can be sent before it reads them (an answer and a hangup; room to spare).
const NEWS_CAPACITY: usize = 4;

/// The calls up, by channel uuid, across every switch of the run.
#[derive(Debug, Default)]
pub struct Calls {
    map: Mutex<HashMap<Uuid, mpsc::Sender<ChannelNews>>>,
}

/// A call's place in [`Calls`]; removed when dropped.
#[derive(Debug)]
pub struct Registration {
    calls: Arc<Calls>,
    uuid: Uuid,
    pub news: mpsc::Receiver<ChannelNews>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.calls.lock().remove(&self.uuid);
    }
}

impl Calls {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, mpsc::Sender<ChannelNews>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn register(self: &Arc<Self>, uuid: Uuid) -> Registration {
        let (tx, news) = mpsc::channel(NEWS_CAPACITY);
        self.lock().insert(uuid, tx);
        Registration {
            calls: self.clone(),
            uuid,
            news,
        }
    }

    fn tell(&self, uuid: Uuid, news: ChannelNews) {
        if let Some(tx) = self.lock().get(&uuid) {
            // A call reads its news as they come; a full channel means news it no longer needs.
            let _ = tx.try_send(news);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The events a load run needs.
pub const EVENTS: &[&str] = &["CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"];

/// The switch's own figures, from `status` (each `None` when the line is not there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SwitchStatus {
    pub sessions_since_startup: Option<u64>,
    pub sessions: Option<u64>,
    pub sessions_peak: Option<u64>,
    pub sessions_per_second: Option<u64>,
    pub sessions_per_second_max: Option<u64>,
    pub sessions_per_second_peak: Option<u64>,
    pub max_sessions: Option<u64>,
    /// The whole answer, as the switch gave it.
    pub text: String,
}

/// The first number after `marker` in `line`.
fn number_after(line: &str, marker: &str) -> Option<u64> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())?
        .parse()
        .ok()
}

impl SwitchStatus {
    /// Reads FreeSWITCH 1.10's `status` answer.
    pub fn parse(text: &str) -> SwitchStatus {
        let mut s = SwitchStatus {
            text: text.trim_end().to_owned(),
            ..SwitchStatus::default()
        };
        for line in text.lines() {
            let line = line.trim();
            if line.ends_with("session(s) since startup") {
                s.sessions_since_startup = number_after(line, "");
            } else if line.contains("session(s) per Sec") {
                s.sessions_per_second = number_after(line, "");
                s.sessions_per_second_max = number_after(line, "out of max");
                s.sessions_per_second_peak = number_after(line, "peak");
            } else if line.contains("session(s) - peak") {
                s.sessions = number_after(line, "");
                s.sessions_peak = number_after(line, "peak");
            } else if line.ends_with("session(s) max") {
                s.max_sessions = number_after(line, "");
            }
        }
        s
    }
}

/// One connected switch.
#[derive(Debug)]
pub struct Switch {
    pub addr: String,
    pub client: Client,
    /// Its `sessions-per-second` and `max-sessions`, when it answers `fsctl`.
    pub limits: Option<switch_info::SwitchLimits>,
    dispatcher: tokio::task::JoinHandle<()>,
    /// Set by [`Switch::close`]: the disconnection that follows is ours, not news.
    closing: Arc<AtomicBool>,
}

impl Switch {
    /// Connects, subscribes to our calls' events and reads the switch's limits.
    pub async fn connect(
        addr: &str,
        password: &str,
        tag: &str,
        calls: Arc<Calls>,
    ) -> Result<Switch, LoadError> {
        let esl = |what: &str, e: &dyn std::fmt::Display| LoadError::Switch {
            addr: addr.to_owned(),
            why: format!("{what}: {e}"),
        };
        let (client, events) = Client::connect(ClientConfig::new(addr, password))
            .await
            .map_err(|e| esl("cannot connect", &e))?;
        let filter = node_filter(tag).map_err(|e| esl("run tag", &e))?;
        let subscription = Subscription {
            events: EVENTS.to_vec(),
            filters: vec![filter],
        };
        subscription
            .apply(&client)
            .await
            .map_err(|e| esl("cannot subscribe to channel events", &e))?;
        let limits = match switch_info::read_limits(&client).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(switch = %addr, error = %e, "cannot read the switch's session limits");
                None
            }
        };
        let closing = Arc::new(AtomicBool::new(false));
        let dispatcher = tokio::spawn(dispatch(events, calls, addr.to_owned(), closing.clone()));
        Ok(Switch {
            addr: addr.to_owned(),
            client,
            limits,
            dispatcher,
            closing,
        })
    }

    /// `status`, read; `None` (logged) when the switch does not answer.
    pub async fn status(&self) -> Option<SwitchStatus> {
        match self.client.api_text("status").await {
            Ok(text) => Some(SwitchStatus::parse(&text)),
            Err(e) => {
                tracing::warn!(switch = %self.addr, error = %e, "status");
                None
            }
        }
    }

    /// Hangs up every channel of this run still on the switch (`hupall MANAGER_REQUEST dlr_node <tag>`): the
    /// last word of a stopped run, for originates whose channel did not exist yet when their call was told
    /// to stop.
    pub async fn hang_up_all(&self, tag: &str) {
        let command = format!(
            "hupall MANAGER_REQUEST {} {tag}",
            crate::engine::subscription::NODE_VARIABLE
        );
        if let Err(e) = self.client.api_text(&command).await {
            tracing::warn!(switch = %self.addr, error = %e, "hupall");
        }
    }

    /// Closes the connection and ends the event task.
    pub async fn close(self) {
        self.closing.store(true, Ordering::Relaxed);
        let _ = self.client.exit().await;
        let _ = self.dispatcher.await;
    }
}

/// Passes each event of our calls to the call (supervised by [`Switch::close`]; ends with the connection).
async fn dispatch(mut events: Events, calls: Arc<Calls>, addr: String, closing: Arc<AtomicBool>) {
    while let Some(item) = events.recv().await {
        match item {
            ClientEvent::Event(event) => {
                let Some(uuid) = event.unique_id().and_then(|u| Uuid::parse_str(u).ok()) else {
                    continue;
                };
                let at = Instant::now();
                let news = match event.name() {
                    Some("CHANNEL_ANSWER") => ChannelNews::Answered { at },
                    Some("CHANNEL_HANGUP_COMPLETE") => ChannelNews::HungUp {
                        cause: event.hangup_cause().unwrap_or("UNKNOWN").to_owned(),
                        at,
                    },
                    _ => continue,
                };
                calls.tell(uuid, news);
            }
            ClientEvent::Disconnected { reason, .. } if !closing.load(Ordering::Relaxed) => {
                tracing::warn!(switch = %addr, %reason, "connection lost; calls in flight are counted as failed");
            }
            ClientEvent::Disconnected { .. }
            | ClientEvent::Connected { .. }
            | ClientEvent::Frame(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_figures_are_read_from_freeswitch_1_10s_answer() {
        let text = "UP 0 years, 0 days, 1 hours, 2 minutes, 3 seconds, 4 milliseconds, 5 microseconds\n\
                    FreeSWITCH (Version 1.10.12-release  64bit) is ready\n\
                    1234 session(s) since startup\n\
                    12 session(s) - peak 40, last 5min 33 \n\
                    7 session(s) per Sec out of max 30, peak 25, last 5min 20 \n\
                    1000 session(s) max\n\
                    min idle cpu 0.00/100.00\n";
        let s = SwitchStatus::parse(text);
        assert_eq!(s.sessions_since_startup, Some(1234));
        assert_eq!((s.sessions, s.sessions_peak), (Some(12), Some(40)));
        assert_eq!(
            (
                s.sessions_per_second,
                s.sessions_per_second_max,
                s.sessions_per_second_peak
            ),
            (Some(7), Some(30), Some(25))
        );
        assert_eq!(s.max_sessions, Some(1000));
        let nothing = SwitchStatus::parse("-ERR no\n");
        assert_eq!(nothing.sessions, None);
    }

    #[test]
    fn a_registration_is_removed_when_its_call_ends() {
        let calls = Arc::new(Calls::default());
        let uuid = Uuid::new_v4();
        let mut reg = calls.register(uuid);
        calls.tell(
            uuid,
            ChannelNews::HungUp {
                cause: "NORMAL_CLEARING".into(),
                at: Instant::now(),
            },
        );
        assert!(matches!(
            reg.news.try_recv(),
            Ok(ChannelNews::HungUp { .. })
        ));
        drop(reg);
        assert!(calls.is_empty());
        calls.tell(uuid, ChannelNews::Answered { at: Instant::now() });
    }
}
