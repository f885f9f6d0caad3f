//! The reader task of one ESL connection: it owns the socket's read half, pops the command FIFO on each reply,
//! hands background-job results and events on (waiting when the event channel is full), and judges the liveness
//! probe and the reply timeout. It ends, saying why, when the socket ends, a frame is unreadable, a reply is
//! overdue, or the writer (`conn`) tells it to stop; `conn` then fails what was waiting and reconnects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::oneshot;
use tokio::time::MissedTickBehavior;
use tokio_util::codec::FramedRead;

use super::conn::{CLOSE_GRACE, Fifo, Shared, body_text, lock};
use super::events::{ClientEvent, EventSink};
use super::subscriptions::{BACKGROUND_JOB, Effect};
use crate::esl::codec::EslCodec;
use crate::esl::{ContentType, Event, Frame};

/// What the reader of one connection needs: where replies, jobs and events go, and its limits.
pub(super) struct Reader {
    pub(super) shared: Arc<Shared>,
    pub(super) sink: EventSink,
    pub(super) fifo: Fifo,
    pub(super) generation: u64,
    pub(super) reply_timeout: Option<Duration>,
    pub(super) liveness: Option<ProbeLimit>,
    pub(super) check_period: Duration,
}

/// What the reader needs to judge the liveness probe.
pub(super) struct ProbeLimit {
    pub(super) command: String,
    pub(super) timeout: Duration,
}

impl Reader {
    /// The oldest unanswered command and when it was written.
    fn oldest(&self) -> Option<(String, Instant)> {
        lock(&self.fifo)
            .front()
            .map(|p| (p.request.command_line().to_owned(), p.sent_at))
    }

    /// Matches a reply to the oldest command. Returns true when the reply acknowledged `exit`.
    async fn reply(&self, frame: Frame) -> bool {
        let Some(p) = lock(&self.fifo).pop_front() else {
            tracing::warn!(frame = ?frame, "ESL reply with no command waiting for it");
            self.sink.deliver(ClientEvent::Frame(frame)).await;
            return false;
        };
        let accepted = match frame.content_type() {
            ContentType::ApiResponse => true,
            _ => frame.reply_text().is_some_and(|t| t.starts_with('+')),
        };
        tracing::debug!(
            generation = self.generation,
            command = %p.request.command_line(),
            reply = ?frame,
            "<- ESL reply"
        );
        if accepted && !matches!(p.effect, Effect::None | Effect::Exit) {
            lock(&self.shared.subs).apply(&p.effect);
        }
        let exit = p.effect == Effect::Exit;
        if p.probe {
            let now = Instant::now();
            lock(&self.shared.health).probe_answered(p.sent_at, now);
            let rtt = now.saturating_duration_since(p.sent_at);
            metrics::histogram!("fsdialer_esl_probe_rtt_seconds", "server" => self.shared.addr.clone())
                .record(rtt.as_secs_f64());
        }
        match p.reply {
            Some(tx) => {
                let _ = tx.send(Ok(frame));
            }
            None if !accepted => tracing::warn!(
                command = %p.request.command_line(),
                reply = %frame.reply_text().unwrap_or_default(),
                "FreeSWITCH refused a command the client sent on its own"
            ),
            None => {}
        }
        exit
    }

    async fn event(&self, frame: Frame, offset: u64) {
        match Event::from_frame(&frame) {
            Ok(event) => {
                tracing::debug!(generation = self.generation, name = ?event.name(), "<- ESL event");
                if event.name() == Some("HEARTBEAT") {
                    lock(&self.shared.health).heartbeat(&event, Instant::now());
                }
                let event = if event.name() == Some(BACKGROUND_JOB) {
                    match self.shared.jobs.resolve(event) {
                        Some(unclaimed) => unclaimed,
                        None => return,
                    }
                } else {
                    event
                };
                self.sink.deliver(ClientEvent::Event(event)).await;
            }
            Err(error) => {
                tracing::warn!(%error, offset, "ESL event body could not be decoded; passed on as a raw frame");
                self.sink.deliver(ClientEvent::Frame(frame)).await;
            }
        }
    }
}

/// Reads frames until the socket ends, a frame is unreadable, the reply timeout passes, or the writer says stop.
/// Returns why it ended.
pub(super) async fn read_loop(
    mut read: FramedRead<OwnedReadHalf, EslCodec>,
    ctx: Reader,
    mut stop: oneshot::Receiver<()>,
) -> String {
    ctx.sink
        .deliver(ClientEvent::Connected {
            generation: ctx.generation,
        })
        .await;
    let mut tick = tokio::time::interval(ctx.check_period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_frame = Instant::now();
    // Set once the end is announced (exit acknowledged, disconnect notice): deadline and why.
    let mut closing: Option<(Instant, String)> = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut stop => return "connection stopped by the client".to_owned(),
            next = read.next() => next,
            _ = tick.tick() => {
                let now = Instant::now();
                if let Some((deadline, why)) = &closing && now >= *deadline {
                    return format!("{why}; FreeSWITCH did not close the socket within {CLOSE_GRACE:?}");
                }
                if let Some(probe) = &ctx.liveness
                    && let Some(sent) = lock(&ctx.shared.health).probe_sent()
                {
                    let quiet = now.duration_since(sent.max(last_frame));
                    if quiet >= probe.timeout {
                        return format!(
                            "no reply to the liveness probe `{}` and nothing else from FreeSWITCH for {quiet:?} \
                             (liveness timeout {:?})",
                            probe.command, probe.timeout
                        );
                    }
                }
                if let Some(limit) = ctx.reply_timeout
                    && let Some((command, since)) = ctx.oldest()
                {
                    let quiet = now.duration_since(since.max(last_frame));
                    if quiet >= limit {
                        return format!(
                            "no reply to `{command}` and nothing else from FreeSWITCH for {quiet:?} \
                             (reply timeout {limit:?})"
                        );
                    }
                }
                continue;
            }
        };
        let frame = match next {
            None => {
                return match closing {
                    Some((_, why)) => why,
                    None => "FreeSWITCH closed the connection".to_owned(),
                };
            }
            Some(Err(e)) => return format!("read failed: {e}"),
            Some(Ok(frame)) => frame,
        };
        let offset = read.decoder().offset() - frame.raw().len() as u64;
        match frame.content_type() {
            ContentType::CommandReply | ContentType::ApiResponse => {
                if ctx.reply(frame).await && closing.is_none() {
                    closing = Some((Instant::now() + CLOSE_GRACE, "exit acknowledged".into()));
                }
            }
            ct if ct.is_event() => ctx.event(frame, offset).await,
            ContentType::DisconnectNotice => {
                if frame.header("Content-Disposition") == Some(&b"linger"[..]) {
                    ctx.sink.deliver(ClientEvent::Frame(frame)).await;
                } else {
                    let text = body_text(&frame);
                    tracing::debug!(generation = ctx.generation, notice = %text, "<- ESL disconnect notice");
                    closing = Some((
                        Instant::now() + CLOSE_GRACE,
                        format!("FreeSWITCH sent a disconnect notice: {text}"),
                    ));
                }
            }
            ContentType::RudeRejection => {
                return format!("FreeSWITCH sent a rude rejection: {}", body_text(&frame));
            }
            _ => {
                tracing::debug!(generation = ctx.generation, frame = ?frame, "<- ESL frame");
                ctx.sink.deliver(ClientEvent::Frame(frame)).await;
            }
        }
        // Taken after delivery: time spent waiting for the event consumer is not FreeSWITCH being silent.
        last_frame = Instant::now();
        lock(&ctx.shared.health).frame_seen(last_frame);
    }
}
