//! Event delivery: a bounded channel from the connection's reader to the consumer, with back-pressure and a lag
//! gauge.
//!
//! When the channel is full the reader waits for room instead of dropping the event, so it stops reading the
//! socket and FreeSWITCH's own send buffer absorbs the burst. That is correct but must be visible: [`Lag`] says
//! how many events have been read and not yet taken by the consumer (`pending`), whether the reader is waiting
//! right now, and how long it has waited in total. The same numbers go to the `metrics` gauges
//! `fsdialer_esl_events_pending` and `fsdialer_esl_reader_blocked_seconds_total` (labelled by server).
//!
//! Connection changes travel on the same channel ([`ClientEvent::Connected`] / [`ClientEvent::Disconnected`]),
//! in order with the events, so the consumer knows exactly which events came before a gap.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::esl::{Event, Frame};

/// What arrives on the event channel.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// A new connection is authenticated and its subscriptions are being restored. `generation` counts
    /// connections from 1; above 1 it is a reconnect, and anything in flight on the previous one has failed with
    /// `ConnectionLost`: reconcile (e.g. `uuid_exists` on the calls you track).
    Connected { generation: u64 },
    /// An event (`text/event-plain|json|xml`), decoded.
    Event(Event),
    /// Any other frame that is not a reply: `log/data`, a linger notice, an unknown content type, an event whose
    /// body could not be decoded (logged with the reason), or a reply nobody was waiting for.
    Frame(Frame),
    /// The connection ended. Nothing after this belongs to `generation`.
    Disconnected { generation: u64, reason: String },
}

/// How far behind the consumer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Items read from FreeSWITCH and not yet taken by the consumer (queued, plus the one the reader holds while
    /// it waits for room).
    pub pending: u64,
    /// Channel capacity.
    pub capacity: usize,
    /// Whether the reader is waiting for room right now (it reads nothing from the socket meanwhile).
    pub blocked: bool,
    /// Total time the reader has waited for room.
    pub blocked_total: Duration,
    /// Times the reader found the channel full.
    pub stalls: u64,
    /// Items delivered to the consumer so far.
    pub delivered: u64,
}

#[derive(Debug)]
pub(crate) struct LagState {
    capacity: usize,
    pending: AtomicU64,
    blocked: AtomicBool,
    blocked_nanos: AtomicU64,
    stalls: AtomicU64,
    delivered: AtomicU64,
    pending_gauge: metrics::Gauge,
    blocked_counter: metrics::Counter,
}

impl LagState {
    pub(crate) fn new(capacity: usize, server: &str) -> LagState {
        let server = server.to_owned();
        LagState {
            capacity,
            pending: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
            blocked_nanos: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            pending_gauge: metrics::gauge!("fsdialer_esl_events_pending", "server" => server.clone()),
            blocked_counter: metrics::counter!(
                "fsdialer_esl_reader_blocked_microseconds_total",
                "server" => server
            ),
        }
    }

    pub(crate) fn snapshot(&self) -> Lag {
        Lag {
            pending: self.pending.load(Ordering::Relaxed),
            capacity: self.capacity,
            blocked: self.blocked.load(Ordering::Relaxed),
            blocked_total: Duration::from_nanos(self.blocked_nanos.load(Ordering::Relaxed)),
            stalls: self.stalls.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
        }
    }

    fn taken(&self) {
        let before = self.pending.fetch_sub(1, Ordering::Relaxed);
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.pending_gauge.set(before.saturating_sub(1) as f64);
    }
}

/// The reader's side of the channel.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    tx: mpsc::Sender<ClientEvent>,
    lag: Arc<LagState>,
    consumer_gone: Arc<AtomicBool>,
}

impl EventSink {
    /// Delivers one item, waiting for room when the channel is full. If the consumer has dropped its receiver the
    /// item is discarded (logged once): nobody is listening.
    pub(crate) async fn deliver(&self, item: ClientEvent) {
        let pending = self.lag.pending.fetch_add(1, Ordering::Relaxed) + 1;
        self.lag.pending_gauge.set(pending as f64);
        let item = match self.tx.try_send(item) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(item)) => item,
            Err(mpsc::error::TrySendError::Closed(_)) => return self.gone(),
        };
        self.lag.stalls.fetch_add(1, Ordering::Relaxed);
        self.lag.blocked.store(true, Ordering::Relaxed);
        tracing::debug!(pending, "event channel full; reader waits for the consumer");
        let started = Instant::now();
        let sent = self.tx.send(item).await;
        let waited = started.elapsed();
        self.lag.blocked.store(false, Ordering::Relaxed);
        self.lag
            .blocked_nanos
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        self.lag
            .blocked_counter
            .increment(waited.as_micros() as u64);
        if sent.is_err() {
            self.gone();
        }
    }

    fn gone(&self) {
        self.lag.pending.fetch_sub(1, Ordering::Relaxed);
        if !self.consumer_gone.swap(true, Ordering::Relaxed) {
            tracing::warn!("ESL event receiver dropped; events from now on are discarded");
        }
    }
}

/// The consumer's side: receives [`ClientEvent`]s in wire order. Also a `futures::Stream`.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<ClientEvent>,
    lag: Arc<LagState>,
}

impl Events {
    /// The next item; `None` once the client is closed and everything before has been received.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        let item = self.rx.recv().await;
        if item.is_some() {
            self.lag.taken();
        }
        item
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
        let item = self.rx.try_recv().ok();
        if item.is_some() {
            self.lag.taken();
        }
        item
    }

    /// How far behind this consumer is.
    pub fn lag(&self) -> Lag {
        self.lag.snapshot()
    }
}

impl futures::Stream for Events {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        let poll = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(_)) = &poll {
            self.lag.taken();
        }
        poll
    }
}

/// A bounded event channel with its lag accounting.
pub(crate) fn channel(capacity: usize, server: &str) -> (EventSink, Events, Arc<LagState>) {
    let (tx, rx) = mpsc::channel(capacity);
    let lag = Arc::new(LagState::new(capacity, server));
    (
        EventSink {
            tx,
            lag: lag.clone(),
            consumer_gone: Arc::new(AtomicBool::new(false)),
        },
        Events {
            rx,
            lag: lag.clone(),
        },
        lag,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(generation: u64) -> ClientEvent {
        ClientEvent::Connected { generation }
    }

    #[tokio::test]
    async fn full_channel_blocks_the_sender_and_counts_the_lag() {
        let (sink, mut events, _) = channel(2, "test");
        sink.deliver(marker(1)).await;
        sink.deliver(marker(2)).await;
        assert_eq!(events.lag().pending, 2);
        let blocked = tokio::spawn({
            let sink = sink.clone();
            async move { sink.deliver(marker(3)).await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let lag = events.lag();
        assert!(
            lag.blocked && lag.pending == 3 && lag.stalls == 1,
            "{lag:?}"
        );
        for want in 1..=3 {
            match events.recv().await {
                Some(ClientEvent::Connected { generation }) => assert_eq!(generation, want),
                other => panic!("{other:?}"),
            }
        }
        blocked.await.unwrap();
        let lag = events.lag();
        assert_eq!((lag.pending, lag.delivered, lag.blocked), (0, 3, false));
        assert!(lag.blocked_total >= Duration::from_millis(20), "{lag:?}");
    }

    #[tokio::test]
    async fn dropped_consumer_does_not_block_the_reader() {
        let (sink, events, lag) = channel(1, "test");
        drop(events);
        sink.deliver(marker(1)).await;
        sink.deliver(marker(2)).await;
        assert_eq!(lag.snapshot().pending, 0);
    }
}
