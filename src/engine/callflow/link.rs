//! The flow's connection to its channel: commands out over the shared ESL client, the call's events in.
//!
//! Two rules keep this safe:
//! - **Always drain.** While a command waits for its reply, the call's events keep being taken from the
//!   receiver into a local backlog. The engine forwards events from the one ESL event stream, and replies travel
//!   on the same socket behind those events: if the flow stopped reading while it waited, a full forwarding
//!   channel could stall the ESL reader and the reply would never come.
//! - **Hangup wins.** CHANNEL_HANGUP (or CHANNEL_HANGUP_COMPLETE, should HANGUP be missed) for the call ends
//!   whatever the flow was waiting for, at once.
//!
//! A step is matched to its completion by the `Event-UUID` sent with it, which FreeSWITCH copies into the
//! `Application-UUID` of CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::context::Scope;
use crate::esl::Event;
use crate::esl::client::{Client, ClientError, SendMsg};

/// Why waiting on the channel stopped without the awaited event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    /// The channel hung up (cause from the event).
    Hangup { cause: Option<String> },
    /// FreeSWITCH says the channel does not exist (any more).
    Gone { reply: String },
    /// FreeSWITCH refused the command.
    Rejected { reply: String },
    /// Nothing within the time limit.
    Timeout { waited: Duration },
    /// The ESL client failed.
    Connection { error: String },
    /// The engine stopped forwarding this call's events.
    EventsClosed,
}

/// How a `bridge` came out.
#[derive(Debug)]
pub(super) enum Bridge {
    /// CHANNEL_BRIDGE for the call: connected.
    Connected,
    /// The bridge application completed without connecting: its CHANNEL_EXECUTE_COMPLETE.
    Failed(Event),
}

pub(super) struct Link<'a> {
    client: &'a Client,
    uuid: String,
    events: &'a mut mpsc::Receiver<Event>,
    backlog: VecDeque<Event>,
    closed: bool,
}

impl<'a> Link<'a> {
    pub fn new(client: &'a Client, uuid: Uuid, events: &'a mut mpsc::Receiver<Event>) -> Link<'a> {
        Link {
            client,
            uuid: uuid.hyphenated().to_string(),
            events,
            backlog: VecDeque::new(),
            closed: false,
        }
    }

    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// Takes every event already delivered; stops at a hangup.
    pub fn settle(&mut self, scope: &mut Scope<'_>) -> Result<(), Stop> {
        while !self.closed {
            match self.events.try_recv() {
                Ok(e) => self.backlog.push_back(e),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.closed = true,
            }
        }
        while let Some(event) = self.backlog.pop_front() {
            if let Some(stop) = self.observe(scope, &event) {
                return Err(stop);
            }
        }
        Ok(())
    }

    /// Executes `app arg` with event-lock and waits, at most `limit`, for its CHANNEL_EXECUTE_COMPLETE.
    pub async fn execute(
        &mut self,
        scope: &mut Scope<'_>,
        app: &str,
        arg: &str,
        limit: Duration,
    ) -> Result<Event, Stop> {
        let app_uuid = self.send(scope, app, arg).await?;
        self.wait(scope, limit, |e| completes(&e, &app_uuid).then_some(e))
            .await
    }

    /// Executes `bridge endpoint` and waits, at most `limit`, for the call to be bridged or the bridge to fail.
    pub async fn bridge(
        &mut self,
        scope: &mut Scope<'_>,
        endpoint: &str,
        limit: Duration,
    ) -> Result<Bridge, Stop> {
        let app_uuid = self.send(scope, "bridge", endpoint).await?;
        self.wait(scope, limit, |e| {
            if completes(&e, &app_uuid) {
                Some(Bridge::Failed(e))
            } else {
                (e.name() == Some("CHANNEL_BRIDGE")).then_some(Bridge::Connected)
            }
        })
        .await
    }

    /// Sends `sendmsg execute` with event-lock and a fresh `Event-UUID`, which it returns.
    async fn send(&mut self, scope: &mut Scope<'_>, app: &str, arg: &str) -> Result<String, Stop> {
        self.settle(scope)?;
        let app_uuid = Uuid::new_v4().hyphenated().to_string();
        let message = SendMsg::execute(app, arg)
            .event_lock(true)
            .event_uuid(&app_uuid);
        let client = self.client;
        let uuid = self.uuid.clone();
        let sent = self
            .drive(async move { client.sendmsg(&uuid, &message).await })
            .await;
        match sent {
            Ok(_) => Ok(app_uuid),
            Err(e) => {
                // A hangup that raced the command explains the refusal best.
                self.settle(scope)?;
                Err(match e {
                    ClientError::CommandFailed { reply, .. } if is_no_channel(&reply) => {
                        Stop::Gone { reply }
                    }
                    ClientError::CommandFailed { reply, .. } => Stop::Rejected { reply },
                    other => Stop::Connection {
                        error: other.to_string(),
                    },
                })
            }
        }
    }

    /// Takes the call's events until `pick` returns something, the call hangs up, or `limit` passes.
    async fn wait<T>(
        &mut self,
        scope: &mut Scope<'_>,
        limit: Duration,
        mut pick: impl FnMut(Event) -> Option<T>,
    ) -> Result<T, Stop> {
        let started = Instant::now();
        let deadline = started + limit;
        loop {
            let event = self.next_event(deadline, started).await?;
            if let Some(stop) = self.observe(scope, &event) {
                return Err(stop);
            }
            if self.is_ours(&event)
                && let Some(found) = pick(event)
            {
                return Ok(found);
            }
        }
    }

    /// Hangs the call up with `api uuid_kill` (which works whatever the channel is running). A channel already
    /// gone is fine.
    pub async fn kill(&mut self, cause: &str, limit: Duration) -> Result<(), String> {
        let client = self.client;
        let command = format!("uuid_kill {} {cause}", self.uuid);
        let reply = self
            .drive(async move { tokio::time::timeout(limit, client.api_text(&command)).await })
            .await;
        match reply {
            Err(_) => Err(format!("uuid_kill had no reply within {limit:?}")),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(text)) if text.starts_with("+OK") || is_no_channel(&text) => Ok(()),
            Ok(Ok(text)) => Err(format!("uuid_kill: {}", text.trim())),
        }
    }

    /// Runs `fut` while moving the call's events into the backlog.
    async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        tokio::pin!(fut);
        loop {
            if self.closed {
                return fut.await;
            }
            tokio::select! {
                biased;
                out = &mut fut => return out,
                event = self.events.recv() => match event {
                    Some(e) => self.backlog.push_back(e),
                    None => self.closed = true,
                },
            }
        }
    }

    async fn next_event(&mut self, deadline: Instant, started: Instant) -> Result<Event, Stop> {
        if let Some(e) = self.backlog.pop_front() {
            return Ok(e);
        }
        if self.closed {
            return Err(Stop::EventsClosed);
        }
        match tokio::time::timeout_at(deadline, self.events.recv()).await {
            Ok(Some(e)) => Ok(e),
            Ok(None) => {
                self.closed = true;
                Err(Stop::EventsClosed)
            }
            Err(_) => Err(Stop::Timeout {
                waited: started.elapsed(),
            }),
        }
    }

    fn is_ours(&self, event: &Event) -> bool {
        event
            .unique_id()
            .is_some_and(|u| u.eq_ignore_ascii_case(&self.uuid))
    }

    /// Absorbs the event's channel variables; a hangup of the call stops.
    fn observe(&self, scope: &mut Scope<'_>, event: &Event) -> Option<Stop> {
        if !self.is_ours(event) {
            return None;
        }
        scope.absorb(event);
        match event.name() {
            Some("CHANNEL_HANGUP" | "CHANNEL_HANGUP_COMPLETE") => Some(Stop::Hangup {
                cause: event.hangup_cause().map(str::to_string),
            }),
            _ => None,
        }
    }
}

/// Whether `event` is the CHANNEL_EXECUTE_COMPLETE of the application sent with `app_uuid`.
fn completes(event: &Event, app_uuid: &str) -> bool {
    event.name() == Some("CHANNEL_EXECUTE_COMPLETE")
        && event
            .get("Application-UUID")
            .is_some_and(|u| u.eq_ignore_ascii_case(app_uuid))
}

/// FreeSWITCH's ways of saying the channel does not exist: `-ERR invalid session id [..]` (sendmsg),
/// `-ERR No such channel!` (uuid_* api commands).
fn is_no_channel(reply: &str) -> bool {
    let r = reply.to_ascii_lowercase();
    r.contains("invalid session id") || r.contains("no such channel")
}
