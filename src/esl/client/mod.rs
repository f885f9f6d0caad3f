//! The inbound-mode ESL client: one TCP connection to FreeSWITCH's event socket, shared by the whole engine.
//!
//! [`Client::connect`] authenticates and returns a cheap-to-clone [`Client`] handle plus the [`Events`] receiver.
//! Any number of tasks may call the handle at once: commands are pipelined on the one socket and each caller gets
//! its own reply (FreeSWITCH answers in order). `bgapi` results come back as futures resolved by their
//! `BACKGROUND_JOB` event, matched by a `Job-UUID` the client chooses. Events flow on a bounded channel with
//! back-pressure. When the socket dies, in-flight commands and jobs fail with [`ClientError::ConnectionLost`], the
//! client reconnects with back-off, re-authenticates and restores its subscriptions, and says so on the event
//! channel ([`ClientEvent::Connected`] with a new generation) and on [`Client::state`].
//!
//! Layout: [`conn`] (the connection task: handshake, writer, reader, reconnect), [`subscriptions`] (what to
//! replay), [`events`] (delivery and lag), [`job`] (background jobs), [`sendmsg`], [`reply`], [`config`],
//! [`error`], [`health`] (liveness and stall snapshots).

mod config;
mod conn;
mod error;
mod events;
mod health;
mod job;
mod reader;
mod reply;
mod sendmsg;
mod subscriptions;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

pub use config::{Auth, Backoff, ClientConfig, EventFormat, Liveness};
pub use error::ClientError;
pub use events::{ClientEvent, Events, Lag};
pub use health::{HeartbeatInfo, StallChange, StallWatch, SwitchHealth};
pub use job::{BackgroundJob, JobOutcome, JobResult};
pub use reply::Reply;
pub use sendmsg::SendMsg;

use crate::esl::codec::Request;
use crate::esl::{ContentType, Frame};
use conn::{Outgoing, Shared, Supervisor, lock};
use job::JobGuard;
use reply::{accept, text, word};
use subscriptions::{BACKGROUND_JOB, Effect, Subscriptions};

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Authenticated; commands are written on connection number `generation` (1 = the first).
    Connected { generation: u64 },
    /// The connection was lost; `attempt` counts reconnect attempts since (0 = about to start).
    Reconnecting { attempt: u32, last_error: String },
    /// Closed for good (`exit`, reconnect attempts exhausted, or every handle dropped).
    Closed { reason: String },
}

/// A handle to the client. Cheap to clone; every clone drives the same connection. The connection closes when
/// the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
}

impl Client {
    /// Connects, authenticates, subscribes to `BACKGROUND_JOB` (needed by `bgapi`) and starts the connection task.
    /// Fails at once, without retrying, if the first connection cannot be made or is refused; later losses are
    /// retried by the back-off policy.
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), ClientError> {
        config.validate()?;
        let first = conn::establish(&config).await?;
        let (sink, events, lag) = events::channel(config.event_capacity, &config.addr);
        let (tx, rx) = mpsc::channel(config.command_capacity);
        let (state, _) = watch::channel(ConnectionState::Connected { generation: 1 });
        let shared = Arc::new(Shared {
            addr: config.addr.clone(),
            jobs: job::Jobs::default(),
            state,
            subs: Mutex::new(Subscriptions::new(config.event_format)),
            lag,
            health: Mutex::default(),
            current: Mutex::default(),
        });
        let supervisor = Supervisor {
            config,
            shared: shared.clone(),
            sink,
            rx,
            generation: 0,
            last_error: String::new(),
        };
        tokio::spawn(supervisor.run(first));
        Ok((Client { tx, shared }, events))
    }

    /// The server address.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Connection state changes (a `watch`: the latest state, and a wake-up on each change).
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.subscribe()
    }

    /// Waits until connected and returns the connection generation; fails if the client is closed.
    pub async fn wait_connected(&self) -> Result<u64, ClientError> {
        let mut rx = self.shared.state.subscribe();
        let state = rx
            .wait_for(|s| !matches!(s, ConnectionState::Reconnecting { .. }))
            .await
            .map_err(|_| ClientError::Closed {
                reason: "the connection task ended".into(),
            })?
            .clone();
        match state {
            ConnectionState::Connected { generation } => Ok(generation),
            ConnectionState::Closed { reason } => Err(ClientError::Closed { reason }),
            ConnectionState::Reconnecting { .. } => unreachable!("waited for another state"),
        }
    }

    /// How far behind the event consumer is (same numbers as [`Events::lag`]).
    pub fn lag(&self) -> Lag {
        self.shared.lag.snapshot()
    }

    /// When the last frame (reply, event or notice) came from the switch; `None` before the first after connect.
    pub fn last_heard(&self) -> Option<Instant> {
        lock(&self.shared.health).last_frame()
    }

    /// The link's health now: silence, the oldest unanswered command, the probe's round trip, the last HEARTBEAT.
    pub fn health(&self) -> SwitchHealth {
        let connected = matches!(
            *self.shared.state.borrow(),
            ConnectionState::Connected { .. }
        );
        let oldest = self.shared.oldest_waiting();
        lock(&self.shared.health).snapshot(&self.shared.addr, connected, oldest, Instant::now())
    }

    /// Background jobs still waiting for their BACKGROUND_JOB event.
    pub fn pending_jobs(&self) -> usize {
        self.shared.jobs.len()
    }

    fn generation(&self) -> Result<u64, ClientError> {
        match &*self.shared.state.borrow() {
            ConnectionState::Connected { generation } => Ok(*generation),
            ConnectionState::Reconnecting { last_error, .. } => Err(ClientError::NotConnected {
                reason: last_error.clone(),
            }),
            ConnectionState::Closed { reason } => Err(ClientError::Closed {
                reason: reason.clone(),
            }),
        }
    }

    async fn call(&self, request: Request, effect: Effect) -> Result<Frame, ClientError> {
        let generation = self.generation()?;
        let (tx, rx) = oneshot::channel();
        let message = Outgoing {
            request,
            effect,
            generation,
            reply: Some(tx),
        };
        if self.tx.send(message).await.is_err() {
            return Err(match self.generation() {
                Err(e) => e,
                Ok(_) => ClientError::Closed {
                    reason: "the connection task ended".into(),
                },
            });
        }
        rx.await.unwrap_or_else(|_| {
            Err(ClientError::ConnectionLost {
                reason: "the connection task ended before the reply".into(),
            })
        })
    }

    async fn command(&self, line: String, effect: Effect) -> Result<Reply, ClientError> {
        let frame = self.call(Request::line(&line)?, effect).await?;
        accept(&line, frame)
    }

    /// Sends a command as is and returns its reply frame, whatever it says. For commands without a method here;
    /// subscription changes made this way are not restored after a reconnect.
    pub async fn send(&self, request: Request) -> Result<Frame, ClientError> {
        self.call(request, Effect::None).await
    }

    /// `api <command>`: runs a command synchronously and returns its output (the api/response body, which may
    /// itself say `-ERR …`: that is the command's answer, not a protocol error).
    pub async fn api(&self, command: &str) -> Result<Bytes, ClientError> {
        let line = format!("api {}", text("api command", command)?);
        let frame = self.call(Request::line(&line)?, Effect::None).await?;
        match frame.content_type() {
            ContentType::ApiResponse => Ok(frame.body()),
            _ => Err(match accept(&line, frame) {
                Err(e) => e,
                Ok(reply) => ClientError::CommandFailed {
                    command: line,
                    reply: format!("command/reply instead of api/response: {}", reply.text()),
                },
            }),
        }
    }

    /// [`Client::api`] as text (invalid UTF-8 replaced).
    pub async fn api_text(&self, command: &str) -> Result<String, ClientError> {
        let body = self.api(command).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `bgapi <command>` with a fresh v4 `Job-UUID`. Returns once FreeSWITCH accepted the job; await the
    /// [`BackgroundJob`] for its result.
    pub async fn bgapi(&self, command: &str) -> Result<BackgroundJob, ClientError> {
        self.bgapi_with_uuid(command, Uuid::new_v4()).await
    }

    /// `bgapi <command>` with the caller's `Job-UUID` (e.g. one derived from the attempt id). The job is
    /// registered before the command is written; a Job-UUID already pending is refused.
    pub async fn bgapi_with_uuid(
        &self,
        command: &str,
        job_uuid: Uuid,
    ) -> Result<BackgroundJob, ClientError> {
        let line = format!("bgapi {}", text("bgapi command", command)?);
        if lock(&self.shared.subs).myevents_active() {
            return Err(ClientError::InvalidArgument(
                "bgapi on a connection restricted by myevents: FreeSWITCH would never deliver its \
                 BACKGROUND_JOB (it has no Unique-ID)"
                    .into(),
            ));
        }
        let uuid_text = job_uuid.hyphenated().to_string();
        let request = Request::new(&line, &[("Job-UUID", &uuid_text)], b"")?;
        let rx = self.shared.jobs.register(job_uuid)?;
        let mut guard = JobGuard {
            shared: self.shared.clone(),
            uuid: job_uuid,
            armed: true,
        };
        let frame = self.call(request, Effect::None).await?;
        let reply = accept(&line, frame)?;
        if let Some(echoed) = reply.header("Job-UUID")
            && !echoed.eq_ignore_ascii_case(&uuid_text)
        {
            tracing::warn!(sent = %uuid_text, echoed = %echoed, "FreeSWITCH did not keep the client's Job-UUID");
        }
        guard.armed = false;
        Ok(BackgroundJob {
            job_uuid,
            reply,
            rx,
        })
    }

    /// `event <format> <names…>`: subscribe (names are event names, `ALL`, or `CUSTOM` followed by subclasses).
    /// Sets the format for the whole connection, as FreeSWITCH does. Restored after a reconnect.
    pub async fn event(&self, format: EventFormat, names: &[&str]) -> Result<Reply, ClientError> {
        let tokens = tokens("event name", names)?;
        let line = format!("event {format} {}", tokens.join(" "));
        self.command(line, Effect::Event { format, tokens }).await
    }

    /// `nixevent <names…>`: unsubscribe. `BACKGROUND_JOB` is refused (bgapi results need it); `ALL` is allowed
    /// and the client re-subscribes `BACKGROUND_JOB` right after.
    pub async fn nixevent(&self, names: &[&str]) -> Result<Reply, ClientError> {
        let tokens = tokens("event name", names)?;
        if tokens
            .iter()
            .any(|t| t.eq_ignore_ascii_case(BACKGROUND_JOB))
        {
            return Err(ClientError::InvalidArgument(
                "nixevent BACKGROUND_JOB: the client needs it to resolve bgapi jobs".into(),
            ));
        }
        let line = format!("nixevent {}", tokens.join(" "));
        self.command(line, Effect::Nix { tokens }).await
    }

    /// `noevents`: stop all event subscriptions (the client keeps `BACKGROUND_JOB`, re-subscribing it at once).
    pub async fn noevents(&self) -> Result<Reply, ClientError> {
        self.command("noevents".into(), Effect::NoEvents).await
    }

    /// `filter <header> <value>`: only events matching a filter are delivered (filters are OR-ed). While any
    /// filter is in place the client keeps `filter Event-Name BACKGROUND_JOB` beside them.
    pub async fn filter(&self, header: &str, value: &str) -> Result<Reply, ClientError> {
        let header = word("filter header", header)?;
        if header.eq_ignore_ascii_case("delete") {
            return Err(ClientError::InvalidArgument(
                "a filter on a header named `delete` reads as `filter delete`; use filter_delete"
                    .into(),
            ));
        }
        let value = text("filter value", value)?;
        self.command(
            format!("filter {header} {value}"),
            Effect::FilterAdd {
                header: header.to_owned(),
                value: value.to_owned(),
            },
        )
        .await
    }

    /// `filter delete <header> [<value>]`: remove one filter, or every filter on that header.
    pub async fn filter_delete(
        &self,
        header: &str,
        value: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let header = word("filter header", header)?;
        if header.eq_ignore_ascii_case("all") {
            return Err(ClientError::InvalidArgument(
                "`filter delete all` removes every filter; use filter_delete_all".into(),
            ));
        }
        let line = match value {
            Some(v) => format!("filter delete {header} {}", text("filter value", v)?),
            None => format!("filter delete {header}"),
        };
        self.command(
            line,
            Effect::FilterDelete {
                header: header.to_owned(),
                value: value.map(str::to_owned),
            },
        )
        .await
    }

    /// `filter delete all`.
    pub async fn filter_delete_all(&self) -> Result<Reply, ClientError> {
        self.command("filter delete all".into(), Effect::FilterDeleteAll)
            .await
    }

    /// `myevents <uuid> [format]`: restrict this connection to one channel's events. FreeSWITCH then delivers
    /// nothing without that `Unique-ID`, not even BACKGROUND_JOB, so `bgapi` is refused afterwards.
    pub async fn myevents(
        &self,
        uuid: &str,
        format: Option<EventFormat>,
    ) -> Result<Reply, ClientError> {
        let uuid = word("channel uuid", uuid)?;
        let line = match format {
            Some(f) => format!("myevents {uuid} {f}"),
            None => format!("myevents {uuid}"),
        };
        self.command(
            line,
            Effect::MyEvents {
                uuid: uuid.to_owned(),
                format,
            },
        )
        .await
    }

    /// `linger [seconds]` (FreeSWITCH only accepts it on a connection controlling a session).
    pub async fn linger(&self, seconds: Option<u32>) -> Result<Reply, ClientError> {
        let line = match seconds {
            Some(s) => format!("linger {s}"),
            None => "linger".to_owned(),
        };
        self.command(line, Effect::None).await
    }

    /// `nolinger`.
    pub async fn nolinger(&self) -> Result<Reply, ClientError> {
        self.command("nolinger".into(), Effect::None).await
    }

    /// `sendmsg <uuid>` with a message (execute an application, hang up).
    pub async fn sendmsg(&self, uuid: &str, message: &SendMsg) -> Result<Reply, ClientError> {
        let request = message.request(uuid)?;
        let line = request.command_line().to_owned();
        let frame = self.call(request, Effect::None).await?;
        accept(&line, frame)
    }

    /// `exit`: FreeSWITCH answers `+OK bye`, sends a disconnect notice and closes. Returns once the connection is
    /// closed; the client does not reconnect and the event channel ends after a final `Disconnected`.
    pub async fn exit(&self) -> Result<(), ClientError> {
        self.command("exit".into(), Effect::Exit).await?;
        let mut rx = self.shared.state.subscribe();
        // The sender lives in `Shared`, which this handle keeps alive, so this cannot fail.
        let _ = rx
            .wait_for(|s| matches!(s, ConnectionState::Closed { .. }))
            .await;
        Ok(())
    }
}

fn tokens(what: &str, names: &[&str]) -> Result<Vec<String>, ClientError> {
    if names.is_empty() {
        return Err(ClientError::InvalidArgument(format!("no {what} given")));
    }
    names
        .iter()
        .map(|n| word(what, n).map(str::to_owned))
        .collect()
}
