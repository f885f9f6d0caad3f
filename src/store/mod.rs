//! The member store: every member's state, the due queue, leases, attempt results, counters, shared limits
//! (SPEC §1–§5, §10).
//!
//! Two backends behave identically (one contract test-suite runs against both, and a property test holds them to
//! the same results on random operation sequences):
//! - [`RedisStore`]: production, shared by many engine nodes; one Lua script per operation (atomic, one round trip),
//!   except that what a result does to its member is decided in Rust and written by a script that checks the member
//!   is still in that attempt. The key layout is documented in [`redis`].
//!
//! What an attempt's result does to its member (SPEC §4) is written once, in `outcome.rs`, and both backends apply
//! it; the queue rules (ready order, number choice, calendar) are in `rules.rs`.
//! - [`MemoryStore`]: in-process, for the demo and single-node runs.
//!
//! [`Store`] holds either, chosen at run time from a URL (`memory://`, `redis://host:port`, `rediss://host:port`
//! for Redis over TLS with [`StoreTls`] naming the CA to trust, `redis+sentinel://host:port,host:port/mastername`
//! for a Sentinel-watched master, or `redis+cluster://host:port,host:port` for a Redis Cluster; see `redis::conn`).
//!
//! # How the engine uses it
//! 1. `take_tokens(Campaign)` for the CPS budget, then [`Store::claim`] up to that many members: the store applies the
//!    campaign `limit` (slots = unexpired leases), the member order, the calendar (per member timezone), expiry and
//!    the number order, and returns everything needed to originate.
//! 2. Per claim, pick a gateway: `acquire_gateway_slot` + `take_tokens(Gateway)`; if none has room,
//!    [`Store::release`] undoes the claim without counting it.
//! 3. [`Store::renew`] the leases of calls in progress; [`Store::complete`] each attempt exactly once with its final
//!    class; `release_gateway_slot`.
//! 4. Periodically [`Store::recover_expired`]: attempts of vanished nodes count as `lost_attempt` says.
//!
//! # Calendar
//! The store is calendar-agnostic: it keeps per member the instant it is due and asks the
//! [`Schedule`](crate::campaign::schedule::Schedule) where it may be called. A due member whose timezone is closed
//! now is moved to its next opening when a claim meets it (lazily, so claiming stays O(log n)). A member whose
//! timezone has no allowed instant left (`next_allowed` = None) can never be called: it ends with `QUEUE_EXPIRE`
//! (reset revives it if the calendar is extended). Rescheduling lands on `next_allowed(tz, now + wait)`; an
//! error-class result with numbers left is due at `next_allowed(tz, now)`.
//!
//! # Deviations worth knowing
//! - One claim promotes at most [`rules::PROMOTE_CAP`] members from "due later" to the ready order and examines at
//!   most `max_n + `[`rules::EXAMINE_EXTRA`] members, bounding each script's run time; with more members becoming
//!   due at once, the order among them is exact only within each promoted batch.
//! - A claim whose `member_order` differs from the one the ready order is ranked by re-ranks every due member in
//!   that one script (O(due members)); a campaign should keep its order, or change it while few members are due.
//! - `list` and `reset` walk ids in steps ([`memory::SCAN_SPAN`] per script); each step is atomic, the whole is not.
//! - An attempt recovered after its lease expired gets the cause [`LOST_ATTEMPT_CAUSE`].

pub mod agents;
pub mod caller_ids;
pub(crate) mod causes;
pub mod clock;
mod compliance;
pub mod dnc;
mod dnc_screen;
mod docs;
mod error;
mod health;
mod history;
mod ids;
pub mod local_redis;
mod memory;
mod nodes;
pub mod number_calls;
pub mod number_rules;
pub mod outbox;
mod outcome;
mod record;
pub mod redis;
mod rules;
mod sticky;
mod types;

pub use caller_ids::{CallerIdFigures, CallerIdTake};
pub use causes::{MAX_CAUSES, OTHER_CAUSE};
pub use compliance::COMPLIANCE_MAX_RANGE_DAYS;
pub use dnc::{DncChange, DncPage, DncSizes};
pub use error::{StoreError, StoreResult};
pub use history::HISTORY_KEEP;
pub use ids::AttemptIds;
pub use memory::MemoryStore;
pub use number_calls::{NumberCall, NumberCalls};
pub use record::{MAX_ABS_PRIORITY, priority_in_range};
pub use redis::RedisStore;
pub use rules::{EXAMINE_EXTRA, PROMOTE_CAP};
pub use types::*;

use crate::campaign::member::MemberInput;
use crate::campaign::schedule::Schedule;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A member store, either backend. Cheap to clone (clones share the backend).
#[derive(Debug, Clone)]
pub enum Store {
    Memory(Arc<MemoryStore>),
    Redis(RedisStore),
}

macro_rules! dispatch {
    ($self:ident, $m:ident ( $($a:expr),* )) => {
        match $self {
            Store::Memory(s) => s.$m($($a),*),
            Store::Redis(s) => s.$m($($a),*).await,
        }
    };
}

/// How a store is reached beyond its URL: for `rediss://`, which certificate authorities to trust.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreTls {
    /// PEM file of the CA(s) that signed the Redis server's certificate (only these are trusted then);
    /// `None`: the system's trust store.
    pub ca_file: Option<PathBuf>,
}

/// The kind of store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Redis,
    /// `rediss://`: Redis over TLS.
    RedisTls,
    /// `redis+sentinel://host:port,host:port/mastername`: the master a set of Sentinels watch.
    RedisSentinel,
    /// `redis+cluster://host:port,host:port`: a Redis Cluster, from seed nodes.
    RedisCluster,
}

/// What [`store_kind`] accepts, for error messages.
pub const STORE_URL_FORMS: &str = "expected memory://, redis://[user:password@]host:port[/db], rediss://[user:password@]host:port[/db], redis+sentinel://[user:password@]host:port,host:port/mastername or redis+cluster://[user:password@]host:port,host:port";

/// The kind of store `url` names, or why it names none. A `rediss://` URL may not carry a fragment: redis-rs
/// reads `#insecure` as "accept any certificate", which would silently turn TLS into encryption without
/// authentication; a private CA is trusted with [`StoreTls::ca_file`] instead.
pub fn store_kind(url: &str) -> StoreResult<StoreKind> {
    let invalid = |reason: &str| StoreError::InvalidUrl {
        url: crate::logging::redact_url(url).into_owned(),
        reason: reason.into(),
    };
    if url == "memory://" || url == "memory" {
        Ok(StoreKind::Memory)
    } else if url.starts_with("redis://") {
        Ok(StoreKind::Redis)
    } else if url.starts_with("rediss://") {
        if url.contains('#') {
            return Err(invalid(
                "a fragment such as #insecure is refused: certificate checks cannot be turned off; \
                 trust a private CA with store_ca_file",
            ));
        }
        Ok(StoreKind::RedisTls)
    } else if url.starts_with(self::redis::conn::SENTINEL_SCHEME) {
        self::redis::conn::check_url(url)?;
        Ok(StoreKind::RedisSentinel)
    } else if url.starts_with(self::redis::conn::CLUSTER_SCHEME) {
        self::redis::conn::check_url(url)?;
        Ok(StoreKind::RedisCluster)
    } else {
        Err(invalid(STORE_URL_FORMS))
    }
}

impl Store {
    /// Opens a store from a URL (see [`store_kind`]); `rediss://` trusts the system's certificate authorities.
    pub async fn open(url: &str) -> StoreResult<Store> {
        Store::open_with(url, &StoreTls::default(), AttemptIds::Random).await
    }

    /// Like [`open`](Self::open), with attempt ids from the given source (seeded ids make runs reproducible).
    pub async fn open_with_ids(url: &str, ids: AttemptIds) -> StoreResult<Store> {
        Store::open_with(url, &StoreTls::default(), ids).await
    }

    /// Like [`open`](Self::open), with the TLS settings of a `rediss://` URL and attempt ids from `ids`.
    pub async fn open_with(url: &str, tls: &StoreTls, ids: AttemptIds) -> StoreResult<Store> {
        match store_kind(url)? {
            StoreKind::Memory => Ok(Store::Memory(Arc::new(MemoryStore::with_attempt_ids(ids)))),
            StoreKind::Redis
            | StoreKind::RedisTls
            | StoreKind::RedisSentinel
            | StoreKind::RedisCluster => {
                Ok(Store::Redis(RedisStore::connect_with(url, tls, ids).await?))
            }
        }
    }

    /// The store's clock minus this node's (zero for the in-process store): added to every instant the store is
    /// given, so the store's clock decides (`store::clock`).
    pub(crate) async fn skew(&self) -> chrono::Duration {
        match self {
            Store::Memory(_) => chrono::Duration::zero(),
            Store::Redis(r) => r.skew().await,
        }
    }

    /// The same store for a node whose own clock is `local` instead of the system's (to test clock skew).
    pub fn with_local_clock(self, local: clock::LocalClock) -> Store {
        match self {
            Store::Memory(m) => Store::Memory(m),
            Store::Redis(r) => Store::Redis(r.with_local_clock(local)),
        }
    }

    /// Makes completions wait until `n` replicas confirmed them (Redis `WAIT`; see
    /// [`RedisStore::with_wait_replicas`]). Refused on the memory store, which has no replicas; 0 changes nothing.
    pub fn with_wait_replicas(self, n: u32) -> StoreResult<Store> {
        match self {
            Store::Redis(r) => Ok(Store::Redis(r.with_wait_replicas(n))),
            Store::Memory(_) if n == 0 => Ok(self),
            Store::Memory(_) => Err(StoreError::InvalidArgument {
                what: "wait_replicas",
                reason: "the memory store has no replicas to wait for".into(),
            }),
        }
    }

    /// A fresh in-process store.
    pub fn memory() -> Store {
        Store::Memory(Arc::new(MemoryStore::new()))
    }

    /// Adds members; a member whose `external_id` is already known updates that member instead (refused while it
    /// is in a call). Every member is validated first: one invalid member refuses the whole batch.
    pub async fn add(
        &self,
        campaign: &str,
        members: &[MemberInput],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AddOutcome>> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(self, add(campaign, members, now))
    }

    pub async fn get(&self, campaign: &str, id: MemberId) -> StoreResult<Option<Member>> {
        dispatch!(self, get(campaign, id))
    }

    /// The member's attempts, oldest first.
    pub async fn attempts(&self, campaign: &str, id: MemberId) -> StoreResult<Vec<AttemptRecord>> {
        dispatch!(self, attempts(campaign, id))
    }

    /// Replaces a member's data. Refused while it is in a call. Number state is kept when the numbers are the
    /// same (in the same order), else reset.
    pub async fn update(
        &self,
        campaign: &str,
        id: MemberId,
        m: &MemberInput,
        now: DateTime<Utc>,
    ) -> StoreResult<ChangeOutcome> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(self, update(campaign, id, m, now))
    }

    /// Deletes a member. Refused while it is in a call.
    pub async fn delete(&self, campaign: &str, id: MemberId) -> StoreResult<ChangeOutcome> {
        dispatch!(self, delete(campaign, id))
    }

    /// Keeps an agent's follow-up (next call at an instant, tries counted again) with the member's attempt: the
    /// attempt's completion applies it (`outcome.rs`). `NotCurrent` when the member is not in that attempt.
    pub async fn follow_up(
        &self,
        campaign: &str,
        id: MemberId,
        attempt: AttemptId,
        follow_up: &FollowUp,
    ) -> StoreResult<FollowUpOutcome> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let follow_up = FollowUp {
            next_at: follow_up.next_at.map(|t| t + skew),
            ..*follow_up
        };
        dispatch!(self, follow_up(campaign, id, attempt, &follow_up))
    }

    /// Ends a member with MANAGER_REQUEST; for a member in a call, says which call to kill.
    pub async fn terminate(&self, campaign: &str, id: MemberId) -> StoreResult<TerminateOutcome> {
        dispatch!(self, terminate(campaign, id))
    }

    /// Revives every ended, unsuccessful member: due now, tries and number attempts back to 0. Returns how many.
    pub async fn reset(&self, campaign: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(self, reset(campaign, now))
    }

    pub async fn counts(&self, campaign: &str) -> StoreResult<Counters> {
        dispatch!(self, counts(campaign))
    }

    /// Members in id order, filtered, one page at a time.
    pub async fn list(&self, campaign: &str, q: &ListQuery) -> StoreResult<ListPage> {
        dispatch!(self, list(campaign, q))
    }

    /// Claims up to `max_n` due members for `node`, each under a lease of `lease`.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        now: DateTime<Utc>,
        max_n: usize,
        node: &str,
        lease: Duration,
    ) -> StoreResult<ClaimBatch> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        let batch = dispatch!(
            self,
            claim(campaign, policy, schedule, now, max_n, node, lease)
        )?;
        for (member, cause) in &batch.ended {
            tracing::debug!(campaign, member = member.0, cause, "member ended at claim");
        }
        Ok(batch)
    }

    /// Applies an attempt's final result (SPEC §4), exactly once.
    pub async fn complete(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> StoreResult<CompleteOutcome> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(self, complete(campaign, policy, schedule, result, now))
    }

    /// Applies many results at once, in order (fewer round trips for an engine that batches its hangups).
    pub async fn complete_many(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        results: &[AttemptResult],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<CompleteOutcome>> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(
            self,
            complete_many(campaign, policy, schedule, results, now)
        )
    }

    /// Undoes a claim without counting it (no gateway had room, a local throttle...). The member is due again at
    /// its old due instant, or at `not_before` if later.
    pub async fn release(
        &self,
        campaign: &str,
        member: MemberId,
        attempt: AttemptId,
        not_before: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<ReleaseOutcome> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        let not_before = not_before.map(|t| t + skew);
        dispatch!(self, release(campaign, member, attempt, not_before, now))
    }

    /// Extends the leases of `node`'s attempts to `now + lease`; returns the attempts whose calls should be
    /// dropped (hung up and forgotten): those no longer this node's (completed, recovered after expiry), and those
    /// whose member was terminated through the API while in the call — completed here with cause
    /// `MANAGER_REQUEST`, class minus, so the member ends with MANAGER_REQUEST at the engine's next renewal.
    pub async fn renew(
        &self,
        campaign: &str,
        node: &str,
        attempts: &[AttemptId],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Vec<AttemptId>> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(self, renew(campaign, node, attempts, now, lease))
    }

    /// Applies `lost_attempt` to up to `max` attempts whose lease expired.
    pub async fn recover_expired(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        now: DateTime<Utc>,
        max: usize,
    ) -> StoreResult<Vec<Recovered>> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        let recovered = dispatch!(self, recover_expired(campaign, policy, schedule, now, max))?;
        for r in &recovered {
            tracing::info!(
                campaign,
                attempt = %r.attempt_id,
                member = r.member_id.0,
                node = %r.node,
                fate = ?r.fate,
                "attempt lease expired: counted as lost_attempt"
            );
        }
        Ok(recovered)
    }

    /// Expired leases not recovered yet (oldest first, at most `max`), with the node that held each: what a
    /// recovering node looks for on the switches before it counts anything as lost.
    pub async fn expired_leases(
        &self,
        campaign: &str,
        now: DateTime<Utc>,
        max: usize,
    ) -> StoreResult<Vec<ExpiredLease>> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(self, expired_leases(campaign, now, max))
    }

    /// The node holding the attempt's lease now, if it is still in a call.
    pub async fn attempt_holder(
        &self,
        campaign: &str,
        attempt: AttemptId,
    ) -> StoreResult<Option<String>> {
        dispatch!(self, attempt_holder(campaign, attempt))
    }

    /// Takes over an expired lease of node `from` for node `to` until `until` (a call still up whose node died:
    /// the new node tracks it to its real end). `false` if the lease is not `from`'s or not expired.
    pub async fn take_over(
        &self,
        campaign: &str,
        attempt: AttemptId,
        from: &str,
        to: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        let until = until + skew;
        dispatch!(self, take_over(campaign, attempt, from, to, until, now))
    }

    /// The attempts `node` holds in the campaign (its leases, expired or not, not recovered yet), rebuilt as the
    /// claims that started them: what a restarted node takes back. An attempt whose member moved on in the
    /// meantime is left out.
    pub async fn held_claims(
        &self,
        campaign: &str,
        node: &str,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Claim>> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        let held = dispatch!(self, held_by(campaign, node))?;
        let mut claims = Vec::with_capacity(held.len());
        for (attempt, member_id) in held {
            let Some(m) = self.get(campaign, member_id).await? else {
                continue;
            };
            if m.current_attempt != Some(attempt) {
                continue;
            }
            let Some(comm_index) = m
                .communications
                .iter()
                .position(|c| c.state == CommState::Active)
            else {
                continue;
            };
            claims.push(Claim {
                attempt_id: attempt,
                member_id,
                attempt_no: m.attempts,
                comm_index,
                number: m.communications[comm_index].number.clone(),
                name: m.name,
                timezone: m.timezone,
                variables: m.variables,
                priority: m.priority,
                lease_until: now + chrono::Duration::from_std(lease).unwrap_or_default(),
            });
        }
        Ok(claims)
    }

    /// The campaign's slots in use (unexpired leases), across all nodes.
    pub async fn slots_in_use(&self, campaign: &str, now: DateTime<Utc>) -> StoreResult<u32> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(self, slots_in_use(campaign, now))
    }

    /// Takes a slot of `gateway` for `attempt` until `until` if fewer than `limit` are held (expired ones freed).
    pub async fn acquire_gateway_slot(
        &self,
        gateway: &str,
        limit: u32,
        attempt: AttemptId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        let until = until + skew;
        dispatch!(
            self,
            acquire_gateway_slot(gateway, limit, attempt, until, now)
        )
    }

    pub async fn release_gateway_slot(&self, gateway: &str, attempt: AttemptId) -> StoreResult<()> {
        dispatch!(self, release_gateway_slot(gateway, attempt))
    }

    /// Extends gateway slots; returns the attempts whose slot had expired (not renewed).
    pub async fn renew_gateway_slots(
        &self,
        gateway: &str,
        attempts: &[AttemptId],
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AttemptId>> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        let until = until + skew;
        dispatch!(self, renew_gateway_slots(gateway, attempts, until, now))
    }

    pub async fn gateway_slots_in_use(
        &self,
        gateway: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u32> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(self, gateway_slots_in_use(gateway, now))
    }

    /// Token bucket shared across nodes: refills at `rate_per_sec` up to `burst`; grants up to `n` whole tokens.
    pub async fn take_tokens(
        &self,
        key: &LimitKey,
        rate_per_sec: f64,
        burst: f64,
        n: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<u32> {
        // The store's clock decides (see `store::clock`).
        let skew = self.skew().await;
        let now = now + skew;
        dispatch!(self, take_tokens(key, rate_per_sec, burst, n, now))
    }

    /// Campaigns that have (had) members.
    pub async fn campaigns(&self) -> StoreResult<Vec<String>> {
        dispatch!(self, campaigns())
    }

    /// Deletes a campaign's members, queue, counters and buckets.
    pub async fn drop_campaign(&self, campaign: &str) -> StoreResult<()> {
        dispatch!(self, drop_campaign(campaign))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::schedule::Always;

    fn is_send<T: Send>(_: T) {}

    #[test]
    fn store_futures_are_send_so_the_engine_can_spawn_them() {
        let s = Store::memory();
        let now = Utc::now();
        let p = QueuePolicy::default();
        let r = AttemptResult {
            attempt_id: uuid::Uuid::nil(),
            member_id: MemberId(1),
            cause: "NO_ANSWER".into(),
            class: crate::campaign::causes::CauseClass::Retry,
            answered_at: None,
            hangup_at: None,
            talk_secs: 0,
            note: None,
        };
        is_send(s.add("c", &[], now));
        is_send(s.claim("c", &p, &Always, now, 1, "n", Duration::from_secs(1)));
        is_send(s.complete("c", &p, &Always, &r, now));
        is_send(s.complete_many("c", &p, &Always, std::slice::from_ref(&r), now));
        is_send(s.recover_expired("c", &p, &Always, now, 1));
        is_send(s.list("c", &ListQuery::default()));
        is_send(s.reset("c", now));
        is_send(s.take_tokens(&LimitKey::Campaign("c".into()), 1.0, 1.0, 1, now));
    }

    #[tokio::test]
    async fn unknown_store_urls_are_refused_naming_the_url() {
        let e = Store::open("postgres://x").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("store url \"postgres://x\": {STORE_URL_FORMS}")
        );
        let e = Store::open("mysql://app:s3cr3t@h:6380").await.unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(matches!(
            Store::open("memory://").await,
            Ok(Store::Memory(_))
        ));
    }

    #[tokio::test]
    async fn rediss_with_a_fragment_is_refused_so_certificate_checks_cannot_be_turned_off() {
        assert_eq!(
            store_kind("rediss://app:pw@h:6380/2").unwrap(),
            StoreKind::RedisTls
        );
        let e = Store::open("rediss://app:s3cr3t@h:6380/#insecure")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("#insecure is refused"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_clear_error() {
        // Port 1 is never a redis-server.
        let e = Store::open("redis://127.0.0.1:1").await.unwrap_err();
        assert!(e.to_string().starts_with("redis connect:"), "{e}");
    }
}
