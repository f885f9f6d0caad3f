//! Webhooks: each attempt's result, each ended member and each campaign state change POSTed to the CRM as it
//! happens, signed, **at least once**, ordered per member, without ever slowing the dialling.
//!
//! A campaign lists its endpoints in `webhooks: [{url, events, secret, timeout_ms, max_attempts, retry_min_ms,
//! retry_max_ms}]` (`campaign::webhook`, validated with the campaign). Each request carries
//! `X-Fsdialer-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` ([`sign`]), `X-Fsdialer-Event`
//! and `Idempotency-Key` (the event's id, the same on every retry); payloads are in [`event`].
//!
//! # Why nothing is lost: write-ahead markers and events derived from durable records
//! The engine completes attempts through the store (`engine::completer`, the store's completion scripts, which
//! this module does not touch). Queuing the event after the completion alone would lose it if the engine died
//! in between; queuing it before would announce outcomes that never happened. So:
//! 1. **Before** a batch is completed (or expired leases are recovered), the completer writes a *marker* per
//!    attempt in the store (`wh:pend`, attempt → member; one round trip, only for campaigns with webhooks).
//! 2. The completion makes the attempt's record durable (cause, class, talk time, note with AMD and agent
//!    facts, what it did to the member) — the store's own exactly-once rule.
//! 3. **After** it, the resolver ([`resolve`]) reads the member's records and queues the events in one atomic
//!    store step that also removes the marker; a step whose marker is gone queues nothing, so two resolvers
//!    never queue an event twice.
//! 4. If the engine dies between 1 and 3, the marker stays. Every node's delivery task sweeps markers older
//!    than 30 s: a completed attempt's events are queued from its record (the same bytes and key as the live
//!    path would have made); an attempt still in a call keeps its marker (its completion or recovery resolves
//!    it later); one that will never have a record (claim released, member deleted) is dropped.
//!
//! A member is always resolved as a whole, oldest attempt first, so an attempt left by a crash and the member's
//! next attempt reach the outbox in order. A campaign state transition's events are queued in the same store step
//! as its history entry (`Store::push_history_with_events`: one script on Redis, one critical section in memory),
//! so every transition the history shows has its events queued and none is queued without its entry; a transition
//! the process made but had not written when it died is in neither (the restarted engine records its own).
//!
//! # Delivery
//! The outbox (`store::outbox`, both backends, under the campaign's hash tag, bounded) keeps one chain per
//! endpoint × member; only a chain's head is tried, so a member's events arrive in order while other members'
//! go on. The delivery task ([`deliver`], supervised, at most 64 requests in flight, separate from the engine)
//! takes due heads under a lease (a node that dies mid-request leaves the head to another after the lease:
//! at-least-once), POSTs them, and settles each: 2xx → gone; otherwise retried with exponential back-off and
//! jitter ([`backoff`]); after `max_attempts` → the dead-letter list, readable and replayable through the API
//! (`/api/v2/dialer/{id}/webhooks/...`). Receivers must dedupe on `Idempotency-Key`: a crash after a POST and
//! before its settle sends it again.

pub mod backoff;
pub mod deliver;
pub mod event;
pub mod hooks;
pub mod resolve;
pub mod sign;
