//! The webhook outbox: events waiting to be POSTed, kept in the store so an engine crash or a receiver down for
//! hours loses none (at-least-once), and the write-ahead markers that make that true across a crash between an
//! attempt's completion and its event (see `crate::webhooks` for the whole design).
//!
//! Per campaign, all under the campaign's hash tag (Redis `dlr:{c}:wh:…`, one slot; the memory backend mirrors
//! it in [`memory::CampaignOutbox`]):
//! - `wh:pend` — write-ahead markers, attempt → `member|since_ms`: written before an attempt is completed,
//!   consumed atomically by the enqueue of its events (an enqueue whose marker is gone does nothing, so two
//!   resolvers never queue an event twice).
//! - `wh:dlv` — deliveries waiting, id → [`DeliveryRecord`] JSON; at most [`OUTBOX_CAP`] (beyond, an event goes
//!   straight to the dead-letter list with `outbox full`, replayable, never dropped silently).
//! - `wh:q:<chain>` — a chain's deliveries in order. A chain is one endpoint × one member (or the campaign for
//!   state events): deliveries of a chain go one at a time, in order (ordered per member), chains in parallel.
//! - `wh:due` — chain → when its head may be tried (ms). Taking a head moves it a lease ahead, so another node
//!   takes it only if this one died mid-delivery.
//! - `wh:dead`, `wh:deadt` — dead letters (id → record, id → dead-at ms); the oldest beyond [`DEAD_CAP`] go.

mod memory;
mod redis;

pub(crate) use memory::MemoryOutbox;

use super::error::{StoreError, StoreResult};
use super::types::{AttemptId, MemberId, from_ms, ms};
use super::{Store, record};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Deliveries waiting per campaign at most.
pub const OUTBOX_CAP: usize = 100_000;
/// Dead letters kept per campaign (the oldest go first).
pub const DEAD_CAP: usize = 10_000;
/// Write-ahead markers per campaign at most (calls in flight, plus those a crash left).
pub const MARKER_CAP: usize = 100_000;

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// `<event id>@<endpoint tag>`: unique in the campaign's outbox.
    pub id: String,
    /// The event's id, sent as `Idempotency-Key` (the same on every retry and for every endpoint).
    pub event_id: String,
    /// `attempt_end`, `member_end` or `campaign_state` (`X-Fsdialer-Event`).
    pub event: String,
    pub url: String,
    /// The JSON body, as signed.
    pub body: String,
    /// The member the event is about (its chain); `None` for campaign events.
    pub member: Option<u64>,
    pub created_ms: i64,
    /// Deliveries tried so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When it went to the dead-letter list.
    pub dead_at_ms: Option<i64>,
}

impl DeliveryRecord {
    /// The chain the delivery belongs to: endpoint × member (or the campaign).
    pub fn chain(&self) -> String {
        let member = self
            .member
            .map_or_else(|| "c".to_owned(), |m| m.to_string());
        format!("{}:{member}", endpoint_tag(&self.url))
    }
}

/// A short stable tag of an endpoint URL (first 8 bytes of its SHA-256, hex).
pub fn endpoint_tag(url: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(url.as_bytes())[..8])
}

/// Deliveries to queue together, optionally under an attempt's write-ahead marker: then they are queued only if
/// the marker is still there, and it goes in the same step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnqueueGroup {
    pub marker: Option<AttemptId>,
    pub deliveries: Vec<DeliveryRecord>,
}

/// A write-ahead marker: an attempt whose events may not be queued yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingMarker {
    pub attempt: AttemptId,
    pub member: MemberId,
    pub since: DateTime<Utc>,
}

/// What became of a delivery that was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Delivered,
    /// Failed; try again at this instant (the record carries the new attempt count and error).
    RetryAt(DateTime<Utc>),
    /// Failed for the last time: to the dead-letter list.
    Dead,
}

/// How much a campaign's outbox holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct OutboxCounts {
    pub markers: u64,
    pub queued: u64,
    pub dead: u64,
}

/// One page of dead letters, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadPage {
    pub total: u64,
    pub items: Vec<DeliveryRecord>,
}

pub(super) fn parse_marker(attempt: &str, value: &str) -> Option<PendingMarker> {
    let (member, since) = value.split_once('|')?;
    Some(PendingMarker {
        attempt: attempt.parse().ok()?,
        member: MemberId(member.parse().ok()?),
        since: from_ms(since.parse().ok()?),
    })
}

/// A dead letter put back: tried afresh.
pub(super) fn reset_for_replay(rec: &mut DeliveryRecord) {
    rec.attempts = 0;
    rec.dead_at_ms = None;
}

fn check_page(limit: usize) -> StoreResult<()> {
    if limit == 0 || limit > 1000 {
        return Err(StoreError::InvalidArgument {
            what: "limit",
            reason: format!("must be 1 to 1000, got {limit}"),
        });
    }
    Ok(())
}

impl Store {
    /// Writes a write-ahead marker per attempt (before the attempts are completed). Refused beyond
    /// [`MARKER_CAP`] markers.
    pub async fn outbox_mark(
        &self,
        campaign: &str,
        attempts: &[(AttemptId, MemberId)],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        record::check_campaign(campaign)?;
        if attempts.is_empty() {
            return Ok(());
        }
        match self {
            Store::Memory(m) => m.outbox.lock().mark(campaign, attempts, ms(now)),
            Store::Redis(r) => redis::mark(r, campaign, attempts, ms(now)).await,
        }
    }

    /// Queues each group's deliveries (in order, each at the end of its chain) unless its marker is gone or a
    /// delivery of the same id is already waiting or dead. Returns how many were queued.
    pub async fn outbox_enqueue(
        &self,
        campaign: &str,
        groups: &[EnqueueGroup],
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => Ok(m.outbox.lock().enqueue(campaign, groups, ms(now))),
            Store::Redis(r) => redis::enqueue(r, campaign, groups, ms(now)).await,
        }
    }

    /// Appends a campaign state transition's history entry (`store::history`) and queues its webhook events
    /// (`campaign_state`, no marker) in **one** store step: one script on Redis, both locks held on the memory
    /// store. So a transition in the history always has its events queued, whatever crashes when: there is no
    /// moment where one is written and the other not. A resend of the same entry (equal to the latest: entries
    /// carry their instant) writes neither again. Returns how many deliveries were queued.
    pub async fn push_history_with_events(
        &self,
        campaign: &str,
        entry: &str,
        groups: &[EnqueueGroup],
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => {
                // The history's lock, then the outbox's (the only place that holds both, so no other order).
                let mut history = m.history.lock().unwrap_or_else(|p| p.into_inner());
                let mut outbox = m.outbox.lock();
                let list = history.entry(campaign.to_owned()).or_default();
                if !super::history::push_bounded(list, entry) {
                    return Ok(0);
                }
                Ok(outbox.enqueue(campaign, groups, ms(now)))
            }
            Store::Redis(r) => {
                redis::transition(r, campaign, entry, super::HISTORY_KEEP, groups, ms(now)).await
            }
        }
    }

    /// Markers written before `older_than` (at most `max`): attempts whose events a crash may have lost.
    pub async fn outbox_stale_markers(
        &self,
        campaign: &str,
        older_than: DateTime<Utc>,
        max: usize,
    ) -> StoreResult<Vec<PendingMarker>> {
        record::check_campaign(campaign)?;
        let mut all = match self {
            Store::Memory(m) => m.outbox.lock().markers(campaign),
            Store::Redis(r) => redis::markers(r, campaign).await?,
        };
        all.retain(|p| p.since < older_than);
        all.sort_by_key(|p| p.since);
        all.truncate(max);
        Ok(all)
    }

    /// Removes a marker whose attempt will have no event (released uncounted, member deleted).
    pub async fn outbox_drop_marker(&self, campaign: &str, attempt: AttemptId) -> StoreResult<()> {
        record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => {
                m.outbox.lock().drop_marker(campaign, attempt);
                Ok(())
            }
            Store::Redis(r) => redis::drop_marker(r, campaign, attempt).await,
        }
    }

    /// Takes up to `max` chain heads that are due, each for `lease` (another taker gets it only after that).
    pub async fn outbox_take(
        &self,
        campaign: &str,
        now: DateTime<Utc>,
        lease: Duration,
        max: usize,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        record::check_campaign(campaign)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        match self {
            Store::Memory(m) => Ok(m.outbox.lock().take(campaign, ms(now), lease_ms, max)),
            Store::Redis(r) => redis::take(r, campaign, ms(now), lease_ms, max).await,
        }
    }

    /// Records what became of a taken delivery (`record` as it is now: attempts, error). `false` if it was no
    /// longer its chain's head (settled by another taker).
    pub async fn outbox_settle(
        &self,
        campaign: &str,
        record: &DeliveryRecord,
        settle: &Settle,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        record::check_campaign(campaign)?;
        let mut rec = record.clone();
        if *settle == Settle::Dead {
            rec.dead_at_ms = Some(ms(now));
        }
        match self {
            Store::Memory(m) => Ok(m.outbox.lock().settle(campaign, &rec, settle, ms(now))),
            Store::Redis(r) => redis::settle(r, campaign, &rec, settle, ms(now)).await,
        }
    }

    /// Dead letters, newest first.
    pub async fn outbox_dead(
        &self,
        campaign: &str,
        offset: usize,
        limit: usize,
    ) -> StoreResult<DeadPage> {
        record::check_campaign(campaign)?;
        check_page(limit)?;
        match self {
            Store::Memory(m) => Ok(m.outbox.lock().dead(campaign, offset, limit)),
            Store::Redis(r) => redis::dead(r, campaign, offset, limit).await,
        }
    }

    /// Puts a dead letter back at the end of its chain with its attempts reset. `false` if there is no such
    /// dead letter.
    pub async fn outbox_replay(
        &self,
        campaign: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => Ok(m.outbox.lock().replay(campaign, id, ms(now))),
            Store::Redis(r) => redis::replay(r, campaign, id, ms(now)).await,
        }
    }

    pub async fn outbox_counts(&self, campaign: &str) -> StoreResult<OutboxCounts> {
        record::check_campaign(campaign)?;
        match self {
            Store::Memory(m) => Ok(m.outbox.lock().counts(campaign)),
            Store::Redis(r) => redis::counts(r, campaign).await,
        }
    }
}

#[cfg(test)]
mod tests;
