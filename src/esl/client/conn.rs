//! The connection task: connect and authenticate, then one writer path and one reader task per socket, and
//! reconnection with back-off when the socket dies.
//!
//! Why this shape: FreeSWITCH answers the commands of one socket strictly in order, with exactly one reply each
//! (`command/reply` or `api/response`), interleaved with events. So correlation needs no ids, only a FIFO of
//! commands awaiting replies — provided an entry is queued before its bytes can reach the switch and in the
//! same order. A single writer (this task) guarantees both; the handles only enqueue [`Outgoing`] messages, which
//! is cancel-safe (a caller that gives up never leaves half a command on the wire). The reader task (`reader`) owns the read
//! half, pops the FIFO on each reply, resolves background jobs, and pushes everything else to the event channel
//! (waiting when it is full). When the socket dies, everything still in the FIFO, every pending job and every
//! queued command fails with a clear error, then the task reconnects, re-authenticates and replays the
//! subscriptions (see `subscriptions`). Each connection has a generation number; a command is only written on the
//! connection its caller saw, so it can never silently cross a reconnect.
//!
//! Liveness: with [`ClientConfig::liveness`] set, the writer also queues its own probe (`api uptime`) every
//! interval, so something always awaits a reply; the reader declares the connection dead when the probe has had no
//! reply and nothing else arrived for the liveness timeout, and the usual reconnect path follows. Every frame read
//! and every probe answered is recorded in the shared [`HealthState`].

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::ConnectionState;
use super::config::ClientConfig;
use super::error::ClientError;
use super::events::{ClientEvent, EventSink, LagState};
use super::health::HealthState;
use super::job::Jobs;
use super::reader::{ProbeLimit, Reader, read_loop};
use super::subscriptions::{ConnectionView, Effect, Subscriptions};
use crate::esl::codec::{EslCodec, Request};
use crate::esl::{ContentType, Frame};

/// How long FreeSWITCH gets to close the socket after `exit` is acknowledged or a disconnect notice arrives.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Most commands written per flush.
const MAX_BATCH: usize = 256;

pub(crate) type ReplySender = oneshot::Sender<Result<Frame, ClientError>>;

/// A command on its way from a handle to the writer.
pub(crate) struct Outgoing {
    pub(crate) request: Request,
    pub(crate) effect: Effect,
    /// The connection generation the caller saw; the command is written only on that connection.
    pub(crate) generation: u64,
    /// `None` for the client's own commands (replay, BACKGROUND_JOB upkeep): their replies are only logged.
    pub(crate) reply: Option<ReplySender>,
}

/// A written command awaiting its reply.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(super) request: Request,
    pub(super) effect: Effect,
    pub(super) reply: Option<ReplySender>,
    pub(super) sent_at: Instant,
    /// The client's liveness probe: its reply goes to the health state.
    pub(super) probe: bool,
}

pub(crate) type Fifo = Arc<Mutex<VecDeque<Pending>>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State shared by the handles, the connection task and the reader.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) addr: String,
    pub(crate) jobs: Jobs,
    pub(crate) state: watch::Sender<ConnectionState>,
    pub(crate) subs: Mutex<Subscriptions>,
    pub(crate) lag: Arc<LagState>,
    pub(crate) health: Mutex<HealthState>,
    /// The commands awaiting replies on the current connection (`None` between connections).
    pub(crate) current: Mutex<Option<Fifo>>,
}

impl Shared {
    /// When the oldest command still awaiting its reply on the current connection was written.
    pub(crate) fn oldest_waiting(&self) -> Option<Instant> {
        let fifo = lock(&self.current).clone()?;
        lock(&fifo).front().map(|p| p.sent_at)
    }
}

/// An authenticated socket, split.
pub(crate) struct Established {
    read: FramedRead<OwnedReadHalf, EslCodec>,
    write: FramedWrite<OwnedWriteHalf, EslCodec>,
}

fn protocol(addr: &str, reason: impl Into<String>) -> ClientError {
    ClientError::Protocol {
        addr: addr.to_owned(),
        reason: reason.into(),
    }
}

fn describe(frame: &Frame) -> String {
    match frame.content_type_raw() {
        Some(ct) => format!("a {} frame", String::from_utf8_lossy(ct)),
        None => "a frame without Content-Type".to_owned(),
    }
}

pub(super) fn body_text(frame: &Frame) -> String {
    String::from_utf8_lossy(frame.body_bytes())
        .trim()
        .to_owned()
}

/// Connects and authenticates (`auth/request` → `auth`/`userauth` → `+OK accepted`).
pub(crate) async fn establish(config: &ClientConfig) -> Result<Established, ClientError> {
    let addr = config.addr.as_str();
    let connect_err = |reason: String| ClientError::Connect {
        addr: addr.to_owned(),
        reason,
    };
    let stream = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await
    {
        Err(_) => {
            return Err(connect_err(format!(
                "timed out after {:?}",
                config.connect_timeout
            )));
        }
        Ok(Err(e)) => return Err(connect_err(e.to_string())),
        Ok(Ok(s)) => s,
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%e, "TCP_NODELAY not set");
    }
    let (r, w) = stream.into_split();
    let mut est = Established {
        read: FramedRead::new(r, EslCodec::new(config.limits)),
        write: FramedWrite::new(w, EslCodec::new(config.limits)),
    };
    match tokio::time::timeout(config.auth_timeout, handshake(&mut est, config)).await {
        Err(_) => Err(protocol(
            addr,
            format!(
                "authentication did not complete within {:?}",
                config.auth_timeout
            ),
        )),
        Ok(result) => result.map(|()| est),
    }
}

async fn next_frame(
    read: &mut FramedRead<OwnedReadHalf, EslCodec>,
    addr: &str,
    expecting: &str,
) -> Result<Frame, ClientError> {
    match read.next().await {
        Some(Ok(frame)) => {
            tracing::debug!(addr, frame = ?frame, "<- ESL (handshake)");
            Ok(frame)
        }
        Some(Err(e)) => Err(protocol(addr, e.to_string())),
        None => Err(protocol(
            addr,
            format!("connection closed while waiting for {expecting}"),
        )),
    }
}

async fn handshake(est: &mut Established, config: &ClientConfig) -> Result<(), ClientError> {
    let addr = config.addr.as_str();
    let greeting = next_frame(&mut est.read, addr, "auth/request").await?;
    match greeting.content_type() {
        ContentType::AuthRequest => {}
        ContentType::RudeRejection => {
            return Err(ClientError::Rejected {
                addr: addr.to_owned(),
                text: body_text(&greeting),
            });
        }
        _ => {
            return Err(protocol(
                addr,
                format!("expected auth/request, got {}", describe(&greeting)),
            ));
        }
    }
    let request = Request::line(&config.auth.command_line())
        .map_err(|_| ClientError::InvalidConfig("credentials contain a line break".into()))?;
    tracing::debug!(addr, "-> ESL auth (credentials not logged)");
    est.write
        .send(request)
        .await
        .map_err(|e| protocol(addr, format!("writing auth failed: {e}")))?;
    let reply = next_frame(&mut est.read, addr, "the auth reply").await?;
    match reply.content_type() {
        ContentType::CommandReply => {
            let text = reply.reply_text().unwrap_or_default().into_owned();
            if text.starts_with("+OK") {
                Ok(())
            } else {
                Err(ClientError::AuthFailed {
                    addr: addr.to_owned(),
                    reply: text,
                })
            }
        }
        ContentType::RudeRejection => Err(ClientError::Rejected {
            addr: addr.to_owned(),
            text: body_text(&reply),
        }),
        ContentType::DisconnectNotice => Err(ClientError::AuthFailed {
            addr: addr.to_owned(),
            reply: format!("disconnected: {}", body_text(&reply)),
        }),
        _ => Err(protocol(
            addr,
            format!("expected the auth reply, got {}", describe(&reply)),
        )),
    }
}

/// Why a connection ended.
enum End {
    /// Lost; reconnect.
    Lost(String),
    /// `exit` was sent: closed on purpose.
    Exited(String),
    /// Every client handle was dropped.
    Abandoned,
}

/// The long-lived task behind a `Client`.
pub(crate) struct Supervisor {
    pub(crate) config: ClientConfig,
    pub(crate) shared: Arc<Shared>,
    pub(crate) sink: EventSink,
    pub(crate) rx: mpsc::Receiver<Outgoing>,
    pub(crate) generation: u64,
    pub(crate) last_error: String,
}

fn reject(message: Outgoing, error: ClientError) {
    if let Some(tx) = message.reply {
        let _ = tx.send(Err(error));
    }
}

/// Runs `fut` while refusing every command that arrives meanwhile (there is no connection to write it on).
/// `None` when every handle is gone.
async fn while_down<T>(
    rx: &mut mpsc::Receiver<Outgoing>,
    reason: &str,
    fut: impl Future<Output = T>,
) -> Option<T> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Some(out),
            msg = rx.recv() => match msg {
                Some(m) => reject(m, ClientError::NotConnected { reason: reason.to_owned() }),
                None => return None,
            },
        }
    }
}

impl Supervisor {
    pub(crate) async fn run(mut self, first: Established) {
        let mut next = Some(first);
        let reason = loop {
            let conn = match next.take() {
                Some(c) => c,
                None => match self.reconnect().await {
                    Ok(c) => c,
                    Err(reason) => break reason,
                },
            };
            self.generation += 1;
            match self.serve(conn).await {
                End::Lost(reason) => {
                    metrics::counter!("fsdialer_esl_reconnects_total", "server" => self.shared.addr.clone())
                        .increment(1);
                    self.last_error = reason;
                }
                End::Exited(reason) => break reason,
                End::Abandoned => break "every client handle was dropped".to_owned(),
            }
        };
        self.close(reason);
    }

    async fn reconnect(&mut self) -> Result<Established, String> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if let Some(max) = self.config.reconnect.max_attempts
                && attempt > max
            {
                return Err(format!(
                    "gave up reconnecting after {max} attempts; last error: {}",
                    self.last_error
                ));
            }
            self.shared
                .state
                .send_replace(ConnectionState::Reconnecting {
                    attempt,
                    last_error: self.last_error.clone(),
                });
            let delay = self.config.reconnect.next_delay(attempt);
            tracing::info!(addr = %self.shared.addr, attempt, ?delay, last_error = %self.last_error, "reconnecting to FreeSWITCH");
            let reason = self.last_error.clone();
            if while_down(&mut self.rx, &reason, tokio::time::sleep(delay))
                .await
                .is_none()
            {
                return Err("every client handle was dropped".into());
            }
            match while_down(&mut self.rx, &reason, establish(&self.config)).await {
                None => return Err("every client handle was dropped".into()),
                Some(Ok(conn)) => return Ok(conn),
                Some(Err(e)) => {
                    tracing::warn!(addr = %self.shared.addr, attempt, error = %e, "reconnect attempt failed");
                    self.last_error = e.to_string();
                }
            }
        }
    }

    fn close(mut self, reason: String) {
        tracing::info!(addr = %self.shared.addr, %reason, "ESL client closed");
        self.shared.state.send_replace(ConnectionState::Closed {
            reason: reason.clone(),
        });
        self.rx.close();
        while let Ok(m) = self.rx.try_recv() {
            reject(
                m,
                ClientError::Closed {
                    reason: reason.clone(),
                },
            );
        }
        self.shared.jobs.fail_all(&ClientError::Closed { reason });
        // Dropping `self.sink` closes the event channel once the consumer has read what is queued.
    }

    /// Serves one authenticated connection until it ends, then fails whatever was in flight on it.
    async fn serve(&mut self, conn: Established) -> End {
        let generation = self.generation;
        let Established { read, mut write } = conn;
        self.shared
            .state
            .send_replace(ConnectionState::Connected { generation });
        metrics::gauge!("fsdialer_esl_connected", "server" => self.shared.addr.clone()).set(1.0);
        tracing::info!(addr = %self.shared.addr, generation, "ESL connected");

        let fifo: Fifo = Arc::new(Mutex::new(VecDeque::new()));
        let (stop_tx, stop_rx) = oneshot::channel();
        let mut reader: JoinHandle<String> = tokio::spawn(read_loop(
            read,
            Reader {
                shared: self.shared.clone(),
                sink: self.sink.clone(),
                fifo: fifo.clone(),
                generation,
                reply_timeout: self.config.reply_timeout,
                liveness: self.config.liveness.as_ref().map(|l| ProbeLimit {
                    command: format!("api {}", l.command),
                    timeout: l.timeout,
                }),
                check_period: self.config.check_period(),
            },
            stop_rx,
        ));
        *lock(&self.shared.current) = Some(fifo.clone());
        let probe_request = self
            .config
            .liveness
            .as_ref()
            .and_then(|l| Request::line(&format!("api {}", l.command)).ok());
        let mut probe_tick = self.config.liveness.as_ref().map(|l| {
            let mut t =
                tokio::time::interval_at(tokio::time::Instant::now() + l.interval, l.interval);
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        });

        // Restore subscriptions before any queued command is written.
        let subs = lock(&self.shared.subs).clone();
        let mut view = ConnectionView::after_replay(&subs);
        let mut items = subs.replay();
        for r in &items {
            push(&fifo, r.clone(), Effect::None, None, false);
            tracing::debug!(generation, command = %r.command_line(), "-> ESL (replay)");
        }
        let mut closing = false;
        let mut abandoned = false;
        let mut reader_end: Option<String> = None;
        let mut write_error: Option<String> = None;
        loop {
            if !items.is_empty() {
                tokio::select! {
                    res = write_all(&mut write, &mut items) => if let Err(e) = res {
                        write_error = Some(format!("write failed: {e}"));
                        break;
                    },
                    end = &mut reader => { reader_end = Some(joined(end)); break; }
                }
            }
            let first = tokio::select! {
                end = &mut reader => { reader_end = Some(joined(end)); break; }
                msg = self.rx.recv() => match msg {
                    Some(m) => m,
                    None => { abandoned = true; break; }
                },
                () = probe_due(&mut probe_tick) => {
                    if let Some(request) = &probe_request && !closing {
                        self.stage_probe(request, &fifo, &mut items);
                    }
                    continue;
                }
            };
            stage(
                first,
                generation,
                &fifo,
                &mut view,
                &mut closing,
                &mut items,
            );
            while items.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(m) => stage(m, generation, &fifo, &mut view, &mut closing, &mut items),
                    Err(_) => break,
                }
            }
        }

        let reason = match reader_end {
            Some(reason) => reason,
            None => {
                let _ = stop_tx.send(());
                let end = if abandoned {
                    // Nobody can send commands any more; give the reader a moment to hand over what it holds.
                    match tokio::time::timeout(Duration::from_secs(1), &mut reader).await {
                        Ok(end) => joined(end),
                        Err(_) => {
                            reader.abort();
                            "abandoned".to_owned()
                        }
                    }
                } else {
                    joined(reader.await)
                };
                write_error.unwrap_or(end)
            }
        };
        drop(write);
        *lock(&self.shared.current) = None;
        lock(&self.shared.health).connection_ended();
        metrics::gauge!("fsdialer_esl_connected", "server" => self.shared.addr.clone()).set(0.0);

        let end = if closing {
            End::Exited(reason.clone())
        } else if abandoned {
            End::Abandoned
        } else {
            End::Lost(reason.clone())
        };
        // State first, so new calls fail fast; then everything that was in flight on this connection.
        match &end {
            End::Lost(_) => {
                tracing::warn!(addr = %self.shared.addr, generation, %reason, "ESL connection lost");
                self.shared
                    .state
                    .send_replace(ConnectionState::Reconnecting {
                        attempt: 0,
                        last_error: reason.clone(),
                    });
            }
            _ => {
                self.shared.state.send_replace(ConnectionState::Closed {
                    reason: reason.clone(),
                });
            }
        }
        while let Ok(m) = self.rx.try_recv() {
            reject(
                m,
                ClientError::NotConnected {
                    reason: reason.clone(),
                },
            );
        }
        let lost = ClientError::ConnectionLost {
            reason: reason.clone(),
        };
        let in_flight: Vec<Pending> = lock(&fifo).drain(..).collect();
        let commands = in_flight.len();
        for p in in_flight {
            if let Some(tx) = p.reply {
                let _ = tx.send(Err(lost.clone()));
            }
        }
        let jobs = self.shared.jobs.fail_all(&lost);
        if commands + jobs > 0 {
            tracing::warn!(generation, commands, jobs, %reason, "in-flight ESL commands and jobs failed");
        }
        self.sink
            .deliver(ClientEvent::Disconnected { generation, reason })
            .await;
        end
    }

    /// Queues the liveness probe unless the previous one is still unanswered.
    fn stage_probe(&self, request: &Request, fifo: &Fifo, items: &mut Vec<Request>) {
        let mut health = lock(&self.shared.health);
        if health.probe_sent().is_some() {
            return;
        }
        health.probe_written(Instant::now());
        drop(health);
        tracing::trace!(generation = self.generation, command = %request.command_line(), "-> ESL (probe)");
        push(fifo, request.clone(), Effect::None, None, true);
        items.push(request.clone());
    }
}

/// Waits for the next probe tick; never, when the probe is off.
async fn probe_due(tick: &mut Option<Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn push(fifo: &Fifo, request: Request, effect: Effect, reply: Option<ReplySender>, probe: bool) {
    lock(fifo).push_back(Pending {
        request,
        effect,
        reply,
        sent_at: Instant::now(),
        probe,
    });
}

/// Queues one handle message for writing: its FIFO entry (and those of any upkeep commands around it) first.
fn stage(
    m: Outgoing,
    generation: u64,
    fifo: &Fifo,
    view: &mut ConnectionView,
    closing: &mut bool,
    items: &mut Vec<Request>,
) {
    if m.generation != generation {
        return reject(
            m,
            ClientError::NotConnected {
                reason: "the connection was replaced before the command was written".into(),
            },
        );
    }
    if *closing {
        return reject(
            m,
            ClientError::Closed {
                reason: "exit was sent".into(),
            },
        );
    }
    let (pre, post) = view.plan(&m.effect);
    for r in pre {
        tracing::debug!(generation, command = %r.command_line(), "-> ESL (upkeep)");
        push(fifo, r.clone(), Effect::None, None, false);
        items.push(r);
    }
    if m.effect == Effect::Exit {
        *closing = true;
    }
    tracing::debug!(generation, command = %m.request.command_line(), "-> ESL");
    items.push(m.request.clone());
    push(fifo, m.request, m.effect, m.reply, false);
    for r in post {
        tracing::debug!(generation, command = %r.command_line(), "-> ESL (upkeep)");
        push(fifo, r.clone(), Effect::None, None, false);
        items.push(r);
    }
}

async fn write_all(
    write: &mut FramedWrite<OwnedWriteHalf, EslCodec>,
    items: &mut Vec<Request>,
) -> Result<(), crate::esl::codec::CodecError> {
    for r in items.drain(..) {
        write.feed(r).await?;
    }
    write.flush().await
}

fn joined(end: Result<String, tokio::task::JoinError>) -> String {
    end.unwrap_or_else(|e| format!("the ESL reader task failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(
        line: &str,
        effect: Effect,
        generation: u64,
    ) -> (Outgoing, oneshot::Receiver<Result<Frame, ClientError>>) {
        let (tx, rx) = oneshot::channel();
        (
            Outgoing {
                request: Request::line(line).unwrap(),
                effect,
                generation,
                reply: Some(tx),
            },
            rx,
        )
    }

    fn staged(fifo: &Fifo) -> Vec<String> {
        lock(fifo)
            .iter()
            .map(|p| p.request.command_line().to_owned())
            .collect()
    }

    #[test]
    fn a_command_from_an_older_connection_is_never_written() {
        let fifo: Fifo = Arc::default();
        let mut view = ConnectionView::after_replay(&Subscriptions::default());
        let (mut closing, mut items) = (false, Vec::new());
        let (m, mut rx) = outgoing("api status", Effect::None, 1);
        stage(m, 2, &fifo, &mut view, &mut closing, &mut items);
        assert!(items.is_empty() && lock(&fifo).is_empty());
        assert!(matches!(
            rx.try_recv().unwrap(),
            Err(ClientError::NotConnected { .. })
        ));
    }

    #[test]
    fn upkeep_commands_are_queued_in_wire_order_around_the_users() {
        let fifo: Fifo = Arc::default();
        let mut view = ConnectionView::after_replay(&Subscriptions::default());
        let (mut closing, mut items) = (false, Vec::new());
        let (m, _rx) = outgoing(
            "filter Unique-ID u",
            Effect::FilterAdd {
                header: "Unique-ID".into(),
                value: "u".into(),
            },
            3,
        );
        stage(m, 3, &fifo, &mut view, &mut closing, &mut items);
        let (m, _rx2) = outgoing("noevents", Effect::NoEvents, 3);
        stage(m, 3, &fifo, &mut view, &mut closing, &mut items);
        let expected = [
            "filter Event-Name BACKGROUND_JOB",
            "filter Unique-ID u",
            "noevents",
            "event plain BACKGROUND_JOB",
        ];
        assert_eq!(staged(&fifo), expected);
        let written: Vec<_> = items.iter().map(|r| r.command_line()).collect();
        assert_eq!(written, expected);
    }

    #[test]
    fn nothing_is_written_after_exit() {
        let fifo: Fifo = Arc::default();
        let mut view = ConnectionView::after_replay(&Subscriptions::default());
        let (mut closing, mut items) = (false, Vec::new());
        let (m, _rx) = outgoing("exit", Effect::Exit, 1);
        stage(m, 1, &fifo, &mut view, &mut closing, &mut items);
        assert!(closing);
        let (m, mut rx) = outgoing("api status", Effect::None, 1);
        stage(m, 1, &fifo, &mut view, &mut closing, &mut items);
        assert_eq!(staged(&fifo), ["exit"]);
        assert!(matches!(
            rx.try_recv().unwrap(),
            Err(ClientError::Closed { .. })
        ));
    }
}
