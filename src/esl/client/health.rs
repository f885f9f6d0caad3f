//! How alive one switch looks from its ESL link: when it was last heard from, how long a command has waited for
//! its reply, the round trip of the client's liveness probe, and what its last HEARTBEAT said.
//!
//! The connection task and its reader write [`HealthState`] as frames arrive; [`super::Client::health`] turns it
//! into a [`SwitchHealth`] snapshot (durations measured at that moment) that the engine can show in `/readyz`
//! and `/metrics`. [`StallWatch`] turns successive snapshots into one warning when a switch stops answering for
//! `switch_stall_warn_sec` and one notice when it answers again, so a frozen switch is logged once, not per check.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::esl::Event;

/// What the reader has seen, shared with the handles. Survives reconnects (a switch that froze keeps its
/// silence through the failed reconnect attempts).
#[derive(Debug, Default)]
pub(crate) struct HealthState {
    last_frame: Option<Instant>,
    /// The liveness probe written and not yet answered, and when it was written.
    probe_sent: Option<Instant>,
    last_probe: Option<ProbeReply>,
    heartbeat: Option<HeartbeatSeen>,
}

#[derive(Debug, Clone, Copy)]
struct ProbeReply {
    at: Instant,
    rtt: Duration,
}

#[derive(Debug, Clone, Copy)]
struct HeartbeatSeen {
    at: Instant,
    session_count: Option<u64>,
    idle_cpu: Option<f64>,
}

impl HealthState {
    pub(crate) fn frame_seen(&mut self, at: Instant) {
        self.last_frame = Some(at);
    }

    pub(crate) fn last_frame(&self) -> Option<Instant> {
        self.last_frame
    }

    pub(crate) fn probe_sent(&self) -> Option<Instant> {
        self.probe_sent
    }

    pub(crate) fn probe_written(&mut self, at: Instant) {
        self.probe_sent = Some(at);
    }

    pub(crate) fn probe_answered(&mut self, sent_at: Instant, at: Instant) {
        self.probe_sent = None;
        let rtt = at.saturating_duration_since(sent_at);
        self.last_probe = Some(ProbeReply { at, rtt });
    }

    /// The connection ended: an unanswered probe will never be answered.
    pub(crate) fn connection_ended(&mut self) {
        self.probe_sent = None;
    }

    pub(crate) fn heartbeat(&mut self, event: &Event, at: Instant) {
        self.heartbeat = Some(HeartbeatSeen {
            at,
            session_count: event.get("Session-Count").and_then(|v| v.parse().ok()),
            idle_cpu: event.get("Idle-CPU").and_then(|v| v.parse().ok()),
        });
    }

    /// A snapshot at `now`; `oldest_waiting` is when the oldest command still awaiting its reply was written.
    pub(crate) fn snapshot(
        &self,
        addr: &str,
        connected: bool,
        oldest_waiting: Option<Instant>,
        now: Instant,
    ) -> SwitchHealth {
        let age = |t: Instant| now.saturating_duration_since(t);
        SwitchHealth {
            addr: addr.to_owned(),
            connected,
            last_heard: self.last_frame,
            silent_for: self.last_frame.map(age),
            unanswered_for: oldest_waiting.map(age),
            probe_rtt: self.last_probe.map(|p| p.rtt),
            since_probe_reply: self.last_probe.map(|p| age(p.at)),
            heartbeat: self.heartbeat.map(|h| HeartbeatInfo {
                age: age(h.at),
                session_count: h.session_count,
                idle_cpu: h.idle_cpu,
            }),
        }
    }
}

fn secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn secs_plain<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A snapshot of one switch link's health. Durations are measured when the snapshot was taken and serialize as
/// seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchHealth {
    pub addr: String,
    /// Authenticated and serving commands right now.
    pub connected: bool,
    /// When the last frame of any kind (reply, event, notice) came from the switch; `None` before the first.
    #[serde(skip)]
    pub last_heard: Option<Instant>,
    /// Time since `last_heard`.
    #[serde(serialize_with = "secs")]
    pub silent_for: Option<Duration>,
    /// How long the oldest command still awaiting its reply has waited; `None` when nothing is waiting. With the
    /// liveness probe on, something is always waiting within one interval, so this grows on a switch that answers
    /// nothing.
    #[serde(serialize_with = "secs")]
    pub unanswered_for: Option<Duration>,
    /// Round trip of the last answered liveness probe (queueing behind other commands included).
    #[serde(serialize_with = "secs")]
    pub probe_rtt: Option<Duration>,
    /// Time since that reply.
    #[serde(serialize_with = "secs")]
    pub since_probe_reply: Option<Duration>,
    /// The last HEARTBEAT event (delivered only when subscribed, and let through any filters).
    pub heartbeat: Option<HeartbeatInfo>,
}

/// What the switch's last HEARTBEAT said.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeartbeatInfo {
    #[serde(serialize_with = "secs_plain")]
    pub age: Duration,
    pub session_count: Option<u64>,
    pub idle_cpu: Option<f64>,
}

impl SwitchHealth {
    /// How long the switch has left a command unanswered, when that is at least `warn_after` on a live
    /// connection. A disconnected switch is down, not stalled.
    pub fn stalled_for(&self, warn_after: Duration) -> Option<Duration> {
        self.unanswered_for
            .filter(|waited| self.connected && *waited >= warn_after)
    }

    /// Sets the gauges `fsdialer_esl_silent_seconds`, `fsdialer_esl_unanswered_seconds` and
    /// `fsdialer_esl_stalled` (1 or 0 against `warn_after`), labelled by server; absent values as 0. (The client
    /// itself records each probe's round trip in the histogram `fsdialer_esl_probe_rtt_seconds`.)
    pub fn record_metrics(&self, warn_after: Duration) {
        let server = self.addr.clone();
        let secs = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("fsdialer_esl_silent_seconds", "server" => server.clone())
            .set(secs(self.silent_for));
        metrics::gauge!("fsdialer_esl_unanswered_seconds", "server" => server.clone())
            .set(secs(self.unanswered_for));
        let stalled = self.stalled_for(warn_after).is_some();
        metrics::gauge!("fsdialer_esl_stalled", "server" => server)
            .set(f64::from(u8::from(stalled)));
    }
}

/// A change [`StallWatch`] noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallChange {
    /// The switch has left a command unanswered for this long (at least the warning threshold).
    Began { unanswered_for: Duration },
    /// It answers again, or the connection ended (then the link's own state says why).
    Ended,
}

/// Logs a stalled switch once when the stall begins and once when it ends. Feed it a snapshot per check.
#[derive(Debug, Clone)]
pub struct StallWatch {
    warn_after: Duration,
    stalled: bool,
}

impl StallWatch {
    /// `warn_after` is `switch_stall_warn_sec`.
    pub fn new(warn_after: Duration) -> StallWatch {
        StallWatch {
            warn_after,
            stalled: false,
        }
    }

    /// Whether the last snapshot showed a stall.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    pub fn observe(&mut self, health: &SwitchHealth) -> Option<StallChange> {
        match (self.stalled, health.stalled_for(self.warn_after)) {
            (false, Some(unanswered_for)) => {
                self.stalled = true;
                tracing::warn!(
                    addr = %health.addr,
                    ?unanswered_for,
                    silent_for = ?health.silent_for,
                    "FreeSWITCH is not answering"
                );
                Some(StallChange::Began { unanswered_for })
            }
            (true, None) => {
                self.stalled = false;
                tracing::info!(addr = %health.addr, connected = health.connected, "FreeSWITCH stall over");
                Some(StallChange::Ended)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat_event() -> Event {
        Event::from_pairs(
            [
                ("Event-Name", "HEARTBEAT"),
                ("Session-Count", "4"),
                ("Idle-CPU", "85.533333"),
            ],
            None,
        )
    }

    #[test]
    fn snapshot_measures_silence_waiting_and_probe_round_trip_at_its_own_instant() {
        let t0 = Instant::now();
        let mut state = HealthState::default();
        let empty = state.snapshot("fs:8021", true, None, t0);
        assert_eq!(
            (empty.last_heard, empty.silent_for, empty.probe_rtt),
            (None, None, None)
        );
        state.frame_seen(t0);
        state.probe_written(t0);
        state.probe_answered(t0, t0 + Duration::from_millis(30));
        state.heartbeat(&heartbeat_event(), t0 + Duration::from_secs(1));
        let later = t0 + Duration::from_secs(5);
        let h = state.snapshot("fs:8021", true, Some(t0 + Duration::from_secs(2)), later);
        assert_eq!(h.last_heard, Some(t0));
        assert_eq!(h.silent_for, Some(Duration::from_secs(5)));
        assert_eq!(h.unanswered_for, Some(Duration::from_secs(3)));
        assert_eq!(h.probe_rtt, Some(Duration::from_millis(30)));
        assert_eq!(h.since_probe_reply, Some(Duration::from_millis(4970)));
        let hb = h.heartbeat.expect("heartbeat recorded");
        assert_eq!(hb.age, Duration::from_secs(4));
        assert_eq!((hb.session_count, hb.idle_cpu), (Some(4), Some(85.533333)));
        assert_eq!(state.probe_sent(), None);
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["silent_for"], 5.0);
        assert_eq!(json["unanswered_for"], 3.0);
        assert_eq!(json["heartbeat"]["session_count"], 4);
    }

    #[test]
    fn a_stall_is_reported_once_when_it_begins_and_once_when_it_ends() {
        let t0 = Instant::now();
        let state = HealthState::default();
        let mut watch = StallWatch::new(Duration::from_secs(10));
        let waiting = |secs: u64, connected: bool| {
            state.snapshot(
                "fs:8021",
                connected,
                Some(t0),
                t0 + Duration::from_secs(secs),
            )
        };
        assert_eq!(watch.observe(&waiting(9, true)), None);
        assert_eq!(
            watch.observe(&waiting(10, true)),
            Some(StallChange::Began {
                unanswered_for: Duration::from_secs(10)
            })
        );
        assert!(watch.is_stalled());
        assert_eq!(watch.observe(&waiting(11, true)), None);
        assert_eq!(
            watch.observe(&state.snapshot("fs:8021", true, None, t0)),
            Some(StallChange::Ended)
        );
        assert_eq!(
            watch.observe(&waiting(30, false)),
            None,
            "down is not stalled"
        );
    }
}
