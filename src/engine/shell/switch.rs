//! One switch's connection task: connect (retrying), read the switch's limits when the configuration leaves them
//! out, subscribe with the node's ESL filter, turn channel events into core inputs (and forward each to its
//! callflow), and watch the link's health. Also `uuid_exists`, asked by reconciliation and take-over.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::*;
use crate::engine::core::{AmdResult, Input};
use crate::engine::subscription;
use crate::engine::subscription::{AMD_APP, AMD_INFO, AVMD_BEEP};
use crate::engine::switch_info::{self, SwitchLimits};
use crate::esl::Event;
use crate::esl::client::{Client, ClientConfig, ClientEvent, StallWatch};

impl SwitchEndpoint {
    /// Both limits, when the configuration sets both (nothing to read from the switch).
    pub fn configured_limits(&self) -> Option<SwitchLimits> {
        Some(SwitchLimits {
            max_sessions: self.max_sessions?,
            sessions_per_second: self.sessions_per_second?,
        })
    }
}

/// FreeSWITCH's own defaults (`switch.conf.xml`), used for a switch that cannot tell its limits.
pub const FREESWITCH_DEFAULT_LIMITS: SwitchLimits = SwitchLimits {
    max_sessions: 1000,
    sessions_per_second: 30,
};

/// How long the switch has to answer the `fsctl` questions at connect.
const LIMITS_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The switch's limits: the configured ones, the rest read from the switch (`fsctl max_sessions`, `fsctl sps`).
///
/// The core places no call on a switch before its limits are known (fail closed: pacing at a guessed rate is the
/// overshoot issue 15 is about), and this runs right after connecting, before the switch is reported up. A switch
/// that cannot answer (`fsctl` refused by its ESL `apis` list, a timeout) gets [`FREESWITCH_DEFAULT_LIMITS`] with a
/// warning rather than no calls at all: its refusals (Minus, with back-off) cover a lower real limit.
pub async fn resolve_limits(sw: &SwitchEndpoint, client: &Client) -> SwitchLimits {
    if let Some(limits) = sw.configured_limits() {
        return limits;
    }
    let read = match tokio::time::timeout(LIMITS_READ_TIMEOUT, switch_info::read_limits(client))
        .await
    {
        Ok(Ok(limits)) => limits,
        Ok(Err(e)) => {
            tracing::warn!(switch = sw.name, error = %e, "cannot read the switch's session limits: using FreeSWITCH's defaults (set max_sessions and sessions_per_second in [[switches]])");
            FREESWITCH_DEFAULT_LIMITS
        }
        Err(_) => {
            tracing::warn!(
                switch = sw.name,
                "the switch did not tell its session limits in time: using FreeSWITCH's defaults (set max_sessions and sessions_per_second in [[switches]])"
            );
            FREESWITCH_DEFAULT_LIMITS
        }
    };
    SwitchLimits {
        max_sessions: sw.max_sessions.unwrap_or(read.max_sessions),
        sessions_per_second: sw.sessions_per_second.unwrap_or(read.sessions_per_second),
    }
}

/// Maps a channel event to the core's input (None for events the core does not need).
pub fn event_input(e: &Event) -> Option<Input> {
    // Routed by subclass first: the non-blocking mod_amd's `amd::info` has no Event-Name.
    if let Some(input) = amd_event_input(e) {
        return Some(input);
    }
    let name = e.name()?;
    if name == "BACKGROUND_JOB" {
        let job = e.job_uuid()?.parse().ok()?;
        let body = e.body_text().map(|b| b.into_owned()).unwrap_or_default();
        return Some(Input::JobResult { job, body });
    }
    let uuid: Uuid = e.unique_id()?.parse().ok()?;
    match name {
        "CHANNEL_CREATE" => Some(Input::ChannelSeen { uuid }),
        "CHANNEL_ANSWER" => Some(Input::Answered { uuid }),
        "CHANNEL_HANGUP" if e.get("Channel-State") == Some("CS_INIT") => {
            Some(Input::NeverRouted { uuid })
        }
        "CHANNEL_HANGUP_COMPLETE" => {
            let cause = e.hangup_cause().unwrap_or("NORMAL_UNSPECIFIED").to_owned();
            let billsec = e
                .variable("billsec")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let answered = e
                .variable("answer_epoch")
                .is_some_and(|v| v != "0" && !v.is_empty());
            let talk_ms = e
                .variable("billmsec")
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::from(billsec) * 1000);
            Some(Input::Hangup {
                uuid,
                cause,
                answered,
                billsec,
                talk_ms,
            })
        }
        _ => None,
    }
}

/// The AMD and beep-detection events: `CUSTOM amd::info` (with or without `Event-Name`), the blocking `amd`'s
/// CHANNEL_EXECUTE_COMPLETE once it set `amd_result`, `CUSTOM avmd::beep`, and a `playback` that completed
/// `FILE PLAYED` (the voicemail message left).
fn amd_event_input(e: &Event) -> Option<Input> {
    let decision = match (e.subclass(), e.name()) {
        (Some(AMD_INFO), _) => true,
        (Some(AVMD_BEEP), _) => {
            let uuid = e.unique_id()?.parse().ok()?;
            return Some(Input::AvmdBeep { uuid });
        }
        (_, Some("CHANNEL_EXECUTE_COMPLETE")) => {
            let app = e.get("Application").unwrap_or_default();
            if app.eq_ignore_ascii_case("playback")
                && e.get("Application-Response") == Some("FILE PLAYED")
            {
                let uuid = e.unique_id()?.parse().ok()?;
                let file = e.get("Application-Data").unwrap_or_default().to_owned();
                return Some(Input::PlaybackPlayed { uuid, file });
            }
            app.eq_ignore_ascii_case(AMD_APP) && e.variable("amd_result").is_some()
        }
        _ => false,
    };
    if !decision {
        return None;
    }
    let uuid = e.unique_id()?.parse().ok()?;
    Some(Input::AmdResult {
        uuid,
        result: e.variable("amd_result").and_then(AmdResult::parse),
        cause: e.variable("amd_cause").map(str::to_owned),
    })
}

pub(super) async fn switch_task(
    i: usize,
    sw: SwitchEndpoint,
    node: String,
    stall_warn: Duration,
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
) {
    let subscription = match subscription::for_node(&node) {
        Ok(s) => s,
        Err(e) => {
            // Checked at start-up; a task that cannot subscribe ends, and the supervisor stops the engine.
            tracing::error!(switch = sw.name, error = %e, "cannot subscribe");
            return;
        }
    };
    let mut backoff = Duration::from_millis(100);
    let (client, mut events) = loop {
        let mut cfg = ClientConfig::new(sw.addr.clone(), sw.password.clone());
        cfg.event_capacity = 65_536;
        match Client::connect(cfg).await {
            Ok(pair) => break pair,
            Err(e) => {
                tracing::warn!(switch = sw.name, error = %e, "cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                if tx.is_closed() {
                    return;
                }
            }
        }
    };
    // Only this node's calls (and the callflows') reach us, not every channel of a shared switch.
    if let Err(e) = subscription.apply(&client).await {
        tracing::error!(switch = sw.name, error = %e, "cannot subscribe to events");
    }
    lock(&shared.clients)[i] = Some(client.clone());
    if !send_limits(i, &sw, &client, &tx).await {
        return;
    }
    let _ = tx.send(Msg::Input(Input::SwitchUp(i))).await;
    tracing::info!(switch = sw.name, addr = sw.addr, "switch connected");
    let mut stall = StallWatch::new(stall_warn);
    let mut health_tick = tokio::time::interval(Duration::from_secs(1));
    health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ev = tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => ev,
                None => return,
            },
            _ = health_tick.tick() => {
                // A switch that answers nothing for switch_stall_warn_sec is logged and shown in metrics.
                let health = client.health();
                stall.observe(&health);
                health.record_metrics(stall_warn);
                continue;
            }
        };
        let input = match ev {
            // The first connection was reported above, before any call: only a reconnect asks about the calls.
            ClientEvent::Connected { generation } if generation <= 1 => None,
            ClientEvent::Connected { .. } => {
                // The switch may have restarted with other limits.
                if !send_limits(i, &sw, &client, &tx).await {
                    return;
                }
                Some(Input::SwitchUp(i))
            }
            ClientEvent::Disconnected { .. } => Some(Input::SwitchDown(i)),
            ClientEvent::Event(e) => {
                if let Some(uuid) = e.unique_id().and_then(|u| u.parse::<Uuid>().ok()) {
                    let flow = lock(&shared.flows).get(&uuid).cloned();
                    if let Some(flow) = flow {
                        let _ = flow.try_send(e.clone());
                    }
                }
                event_input(&e)
            }
            ClientEvent::Frame(_) => None,
        };
        if let Some(input) = input
            && tx.send(Msg::Input(input)).await.is_err()
        {
            return;
        }
    }
}

/// Reads the switch's limits when the configuration leaves any unset, and tells the core; false once the engine
/// stopped.
async fn send_limits(
    i: usize,
    sw: &SwitchEndpoint,
    client: &Client,
    tx: &mpsc::Sender<Msg>,
) -> bool {
    if sw.configured_limits().is_some() {
        return true;
    }
    let limits = resolve_limits(sw, client).await;
    tx.send(Msg::Input(Input::SwitchLimits { switch: i, limits }))
        .await
        .is_ok()
}
