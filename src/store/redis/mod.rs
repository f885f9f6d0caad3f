//! The Redis backend: production store shared by many engine nodes.
//!
//! # Layout
//! Every key of campaign `C` starts with `dlr:{C}:` (a Redis Cluster hash tag: one campaign, one slot), see
//! [`keys`]. Member ids are written as 10 lowercase hex digits (`2a` → `000000002a`).
//!
//! | key | type | holds |
//! |---|---|---|
//! | `dlr:{C}:m:<id>` | string | one member, one line of state then its data (`packed.rs`): `h\|x\|z\|b\|s\|w\|t\|u\|r\|q\|y\|o\|p\|a` = `h` the next number under each number order (`by_priority,top_down`, written by `add` and every completion, emptied by every other writer of `u`), `x` expire ms, `z` timezone, `b` attempts, `s` state (`r` ready, `w` waiting, `a` active, `e` ended), `w` due ms, `t` counted tries, `u` per-number state (`prio,state,attempts,last_ms,cause;…`), `r` last number used + 1, `q` terminate pending, `y` end cause, `o` success, `p` priority, while active `a` = `attempt\|number index\|claim ms\|node` (`""` = a field's default); then a line each for the numbers (JSON `[[number, description?, type?]…]`), the variables (JSON) and the external id (JSON string), and the name to the end |
//! | `dlr:{C}:log` | hash | the attempt log: field `<id>.<attempt no>` → that attempt's `\|`-separated line (SPEC §10, see `record::LogEntry::parse_line`) |
//! | `dlr:{C}:ready` | zset | due members in claim order: score = order primary (see `rules::primary`), member = `hex11(due_ms) hex10(id)` (ties sort by due, then id) |
//! | `dlr:{C}:wait` | zset | members due later: score = due ms, member = id |
//! | `dlr:{C}:lease` | zset | active attempts: score = lease expiry ms, member = attempt id (the campaign's slots in use) |
//! | `dlr:{C}:act` | hash | attempt id → `<member id>\|<node>` for active attempts (`\|q` appended once the member was terminated in the call, `\|f<next ms>,<reset 0\|1>` once an agent gave a follow-up) |
//! | `dlr:{C}:ext` | hash | external id → member id |
//! | `dlr:{C}:seq` | string | last member id |
//! | `dlr:{C}:tzs` | set | the timezones members use (`""` = the calendar's) |
//! | `dlr:{C}:cnt` | hash | counters: `waiting in_retry active ended calls answered success ok retry error minus lost end:<CAUSE>` |
//! | `dlr:{C}:causes` | hash | attempts per hangup cause, written by the completion script (`store::causes`) |
//! | `dlr:{C}:meta` | hash | `order`: the member order the ready zset is ranked by; `layout`: `2`, this member layout (a campaign with members and no mark was written by a build that kept members as hashes, and is refused) |
//! | `dlr:{C}:cps` | hash | the campaign's calls-per-second bucket (`t` tokens, `ts` last ms) |
//! | `dlr:{gw:G}:slots` / `:cps` | zset / hash | a gateway's slots (attempt → lease expiry) and bucket |
//! | `dlr:campaigns` | set | campaign names |
//! | `dlr:campaign_docs` | hash | campaign id → the campaign document the API saved (`store::docs`) |
//!
//! # Operations
//! Every operation is one Lua script (`lua/*.lua`, each prefixed by `lua/prelude.lua`), hence atomic and one round
//! trip. Scripts never do timezone math: the Rust side evaluates the [`Schedule`] for each timezone of the campaign
//! (cached per campaign) and passes `{tz: [open, next_allowed(now), next_allowed(now + wait)]}`. A script that meets a
//! timezone it was not given changes nothing and names it; the call is repeated with it (once per new timezone).
//! Campaign scripts get `KEYS[1]` the campaign prefix, then the campaign's fixed keys (`keys::CAMPAIGN_SCRIPT_KEYS`),
//! all declared; the member keys they find while running are derived from the prefix and share its hash tag, so
//! every script touches one slot and runs on Redis Cluster. Global keys (`dlr:campaigns`, the campaign documents,
//! the node registry) are never touched by a campaign script: they are read and written by single commands.
//!
//! Why a member is one string: the claim and the completion each touch a whole batch of members, and with one
//! string per member that is one `MGET` and one `MSET` for the batch. A hash per member cost one `HMGET` and one
//! `HSET` per member, and Redis charges more for each call from Lua, and for each field looked up in a listpack,
//! than for the member's own logic. For the same reason the attempt log is one campaign hash written with one `HSET`
//! per batch rather than one `APPEND` per member, and the claim keeps Lua's slow number-to-string conversions out of
//! its loop.
//!
//! What a result does to its member (SPEC §4) is decided in Rust by `store::outcome`, the one implementation both
//! backends use: `complete.lua` only checks that each member is still in the attempt the decision was made for (the
//! attempt's `act` entry is still the one read; whatever changes an active member drops or changes that entry) and
//! writes what was decided. The node that made a claim decides from the record the claim returned; any other node
//! reads the record first (`peek.lua`) and decides again on a conflict (`results.rs`, `completion.rs`).
//!
//! Scripts start with `#!lua`, so a Redis that is out of memory refuses a writing script before it runs rather than
//! at its first write; read-only scripts carry `flags=no-writes`. Each script reads and checks what it needs before
//! it writes; Redis does not roll back a script that fails half-way, so only corrupted data (a record no version of
//! this store wrote) could leave a batch partly applied.

mod agents;
mod completion;
pub mod conn;
pub mod keys;
mod leases;
mod limits;
mod members;
mod packed;
mod queue;
mod reply;
#[cfg(test)]
mod resend;
mod results;

use super::error::{StoreError, StoreResult};
use super::ids::AttemptIds;
use super::record;
use super::rules;
use super::types::*;
use crate::campaign::schedule::Schedule;
use chrono::{DateTime, Utc};
use conn::{RedisTarget, StoreConnection};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use reply::resp;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Members per `add` script call, and how many such calls are in flight at once.
const ADD_CHUNK: usize = 1000;
const ADD_IN_FLIGHT: usize = 4;
/// Results per `complete` script call.
pub const COMPLETE_CHUNK: usize = 500;

const PRELUDE: &str = include_str!("lua/prelude.lua");
const REPLACE: &str = include_str!("lua/replace.lua");

struct Scripts {
    claim: Script,
    complete: Script,
    peek: Script,
    follow_up: Script,
    renew: Script,
    release: Script,
    add: Script,
    update: Script,
    delete: Script,
    terminate: Script,
    reset: Script,
    list: Script,
    get: Script,
    gw_acquire: Script,
    gw_renew: Script,
    bucket: Script,
}

impl Scripts {
    fn new() -> Scripts {
        // `#!lua` makes Redis check memory before the script runs: out of memory, a writing script is refused
        // whole instead of failing at its first write. Read-only scripts say so and still run.
        let with = |body: &str| Script::new(&format!("#!lua\n{PRELUDE}\n{body}"));
        let read_only =
            |body: &str| Script::new(&format!("#!lua flags=no-writes\n{PRELUDE}\n{body}"));
        let with_replace =
            |body: &str| Script::new(&format!("#!lua\n{PRELUDE}\n{REPLACE}\n{body}"));
        Scripts {
            claim: with(include_str!("lua/claim.lua")),
            complete: with(include_str!("lua/complete.lua")),
            peek: read_only(include_str!("lua/peek.lua")),
            follow_up: with(include_str!("lua/follow_up.lua")),
            renew: with(include_str!("lua/renew.lua")),
            release: with(include_str!("lua/release.lua")),
            add: with_replace(include_str!("lua/add.lua")),
            update: with_replace(include_str!("lua/update.lua")),
            delete: with(include_str!("lua/delete.lua")),
            terminate: with(include_str!("lua/terminate.lua")),
            reset: with(include_str!("lua/reset.lua")),
            list: read_only(include_str!("lua/list.lua")),
            get: read_only(include_str!("lua/get.lua")),
            gw_acquire: Script::new(include_str!("lua/gw_acquire.lua")),
            gw_renew: Script::new(include_str!("lua/gw_renew.lua")),
            bucket: Script::new(include_str!("lua/bucket.lua")),
        }
    }
}

/// The Redis member store. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: StoreConnection,
    scripts: Arc<Scripts>,
    ids: Arc<AttemptIds>,
    /// Timezones known per campaign (a cache of `dlr:{C}:tzs`, filled as scripts report new ones).
    tzs: Arc<Mutex<HashMap<String, BTreeSet<String>>>>,
    /// Campaigns already registered in `dlr:campaigns` by this process.
    registered: Arc<Mutex<HashSet<String>>>,
    /// What this store's claims saw of their members, to decide their results without a read (`completion.rs`).
    snapshots: Arc<completion::Snapshots>,
    /// The skew between the server's clock and this node's (`leases.rs`, `store::clock`).
    clock: Arc<crate::store::clock::StoreClock>,
    /// Replicas that must confirm completions before they are acknowledged (`WAIT`); `None`: the master's word.
    wait_replicas: Option<u32>,
}

/// How long a completion waits for its replicas (`WAIT`) before it fails with [`StoreError::NotReplicated`].
pub const WAIT_REPLICAS_TIMEOUT_MS: u64 = 2000;

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn policy_json(p: &QueuePolicy) -> String {
    serde_json::json!({
        "l": p.limit,
        "o": p.member_order,
        "no": p.number_order,
        "mt": p.max_tries,
        "tpn": p.tries_per_number,
    })
    .to_string()
}

fn opt_ms(v: Option<DateTime<Utc>>) -> i64 {
    v.map_or(-1, ms)
}

/// Arguments of one script call: the ARGV before and after the timezone map.
struct TzCall<'a> {
    op: &'static str,
    script: &'a Script,
    campaign: &'a str,
    before: Vec<String>,
    after: Vec<String>,
}

impl RedisStore {
    /// Connects to `redis://host:port[/db]`, `redis+sentinel://host:port,host:port/mastername` or
    /// `redis+cluster://host:port,host:port` (see [`conn`]). The connection reconnects by itself after Redis
    /// restarts or fails over; calls made while Redis is down fail with [`StoreError::Redis`].
    pub async fn connect(url: &str) -> StoreResult<RedisStore> {
        RedisStore::connect_with_ids(url, AttemptIds::Random).await
    }

    /// Like [`connect`](Self::connect), with attempt ids from the given source.
    pub async fn connect_with_ids(url: &str, ids: AttemptIds) -> StoreResult<RedisStore> {
        RedisStore::connect_with(url, &super::StoreTls::default(), ids).await
    }

    /// Like [`connect`](Self::connect), also `rediss://host:port[/db]` (TLS): the server's certificate must be
    /// signed by the CA of `tls.ca_file`, or by one of the system's when there is none.
    pub async fn connect_with(
        url: &str,
        tls: &super::StoreTls,
        ids: AttemptIds,
    ) -> StoreResult<RedisStore> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: crate::logging::redact_url(url).into_owned(),
            reason,
        };
        let target = conn::check_url(url)?;
        if !matches!(target, RedisTarget::Single { .. }) {
            if tls.ca_file.is_some() {
                return Err(invalid(
                    "store_ca_file is set but the URL is not rediss:// (TLS)".into(),
                ));
            }
            let conn = StoreConnection::connect_multi(&target).await?;
            return Ok(RedisStore::with_connection(conn, ids));
        }
        let encrypted = super::store_kind(url)? == super::StoreKind::RedisTls;
        if encrypted {
            crate::tls::install_crypto_provider();
        }
        let client = match (&tls.ca_file, encrypted) {
            (Some(ca), true) => {
                // Checked here so that a bad file is reported by name (redis-rs only says "invalid").
                let pem = crate::tls::read_certificate_pem(ca)
                    .map_err(|e| invalid(format!("store_ca_file: {e}")))?;
                redis::Client::build_with_tls(
                    url,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
            (Some(_), false) => {
                return Err(invalid(
                    "store_ca_file is set but the URL is not rediss:// (TLS)".into(),
                ));
            }
            (None, _) => redis::Client::open(url),
        }
        .map_err(|e| invalid(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(conn::CONNECTION_TIMEOUT))
            .set_response_timeout(Some(conn::RESPONSE_TIMEOUT))
            .set_number_of_retries(3);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|source| {
                if encrypted {
                    StoreError::TlsConnect { source }
                } else {
                    StoreError::Redis {
                        op: "connect",
                        source,
                    }
                }
            })?;
        Ok(RedisStore::with_connection(
            StoreConnection::Single(conn),
            ids,
        ))
    }

    fn with_connection(conn: StoreConnection, ids: AttemptIds) -> RedisStore {
        RedisStore {
            conn,
            scripts: Arc::new(Scripts::new()),
            ids: Arc::new(ids),
            tzs: Arc::default(),
            registered: Arc::default(),
            snapshots: Arc::default(),
            clock: Arc::new(crate::store::clock::StoreClock::system()),
            wait_replicas: None,
        }
    }

    fn conn(&self) -> StoreConnection {
        self.conn.clone()
    }

    /// A call of a campaign script with its declared keys (see `keys::CAMPAIGN_SCRIPT_KEYS`).
    fn campaign_script<'s>(
        &self,
        script: &'s Script,
        campaign: &str,
    ) -> redis::ScriptInvocation<'s> {
        let mut inv = script.prepare_invoke();
        for k in keys::campaign_script_keys(campaign) {
            inv.key(k);
        }
        inv
    }

    /// Like [`campaign_script`](Self::campaign_script), for a script that must give a resend of the call (by the
    /// client, after a lost connection) its first reply: adds the call's memo key (`keys::memo_key`).
    fn campaign_script_once<'s>(
        &self,
        script: &'s Script,
        campaign: &str,
    ) -> redis::ScriptInvocation<'s> {
        let mut inv = self.campaign_script(script, campaign);
        inv.key(keys::memo_key(campaign, &uuid::Uuid::new_v4()));
        inv
    }

    fn remember_tzs<'a>(&self, campaign: &str, tzs: impl IntoIterator<Item = &'a str>) {
        let mut g = self.tzs.lock().unwrap_or_else(|p| p.into_inner());
        let set = g.entry(campaign.to_string()).or_default();
        for t in tzs {
            if !set.contains(t) {
                set.insert(t.to_string());
            }
        }
    }

    fn tz_json(&self, campaign: &str, schedule: &dyn Schedule, now: i64, wait_ms: i64) -> String {
        let mut names: BTreeSet<String> = self
            .tzs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(campaign)
            .cloned()
            .unwrap_or_default();
        names.insert(String::new());
        let map: serde_json::Map<String, serde_json::Value> = names
            .into_iter()
            .map(|tz| {
                let p = rules::evaluate(schedule, &tz, now, wait_ms);
                let v = serde_json::json!([
                    u8::from(p.open),
                    p.next_now.unwrap_or(-1),
                    p.next_wait.unwrap_or(-1)
                ]);
                (tz, v)
            })
            .collect();
        serde_json::Value::Object(map).to_string()
    }

    /// Runs a script that needs the campaign's timezones, repeating it when it names timezones we did not pass.
    async fn eval_tz(
        &self,
        call: TzCall<'_>,
        schedule: &dyn Schedule,
        now: i64,
        wait_ms: i64,
    ) -> StoreResult<redis::Value> {
        for _ in 0..4 {
            let tz = self.tz_json(call.campaign, schedule, now, wait_ms);
            let mut inv = self.campaign_script_once(call.script, call.campaign);
            for a in &call.before {
                inv.arg(a);
            }
            inv.arg(tz);
            for a in &call.after {
                inv.arg(a);
            }
            let out: redis::Value = inv
                .invoke_async(&mut self.conn())
                .await
                .map_err(StoreError::redis(call.op))?;
            if let Some(need) = resp::need(&out) {
                tracing::debug!(
                    campaign = call.campaign,
                    ?need,
                    "script asked for more timezones"
                );
                self.remember_tzs(call.campaign, need.iter().map(String::as_str));
                continue;
            }
            return Ok(out);
        }
        Err(StoreError::Corrupt {
            op: call.op,
            detail: "the campaign's timezones keep changing".into(),
        })
    }

    async fn register(&self, campaign: &str) -> StoreResult<()> {
        let known = self
            .registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(campaign);
        if !known {
            let _: () = self
                .conn()
                .sadd(keys::CAMPAIGNS, campaign)
                .await
                .map_err(StoreError::redis("add"))?;
            self.registered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(campaign.to_string());
        }
        Ok(())
    }

    pub async fn campaigns(&self) -> StoreResult<Vec<String>> {
        let mut v: Vec<String> = self
            .conn()
            .smembers(keys::CAMPAIGNS)
            .await
            .map_err(StoreError::redis("campaigns"))?;
        v.sort();
        Ok(v)
    }

    /// Deletes every key of the campaign (in steps: not atomic; meant for removing a finished campaign).
    pub async fn drop_campaign(&self, campaign: &str) -> StoreResult<()> {
        record::check_campaign(campaign)?;
        let pattern = format!(
            "{}*",
            keys::campaign_prefix(campaign)
                .replace('\\', "\\\\")
                .replace('[', "\\[")
                .replace(']', "\\]")
                .replace('?', "\\?")
                .replace('*', "\\*")
        );
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            // On a cluster, SCAN walks one node: the one owning the campaign's slot.
            let reply = match conn.cluster() {
                Some(cluster) => {
                    use redis::cluster_routing::{
                        Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
                    };
                    let route = Route::with_key(keys::campaign_prefix(campaign), SlotAddr::Master);
                    cluster
                        .route_command(
                            scan,
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                        )
                        .await
                }
                None => scan.query_async(&mut conn).await,
            };
            let (next, batch): (u64, Vec<String>) = reply
                .and_then(|v| {
                    redis::FromRedisValue::from_redis_value(v).map_err(redis::RedisError::from)
                })
                .map_err(StoreError::redis("drop_campaign"))?;
            if !batch.is_empty() {
                let _: i64 = redis::cmd("UNLINK")
                    .arg(&batch)
                    .query_async(&mut conn)
                    .await
                    .map_err(StoreError::redis("drop_campaign"))?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let _: i64 = conn
            .srem(keys::CAMPAIGNS, campaign)
            .await
            .map_err(StoreError::redis("drop_campaign"))?;
        self.tzs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(campaign);
        self.registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(campaign);
        Ok(())
    }

    /// `MEMORY USAGE` of one member's record (for benchmarks and capacity planning).
    pub async fn member_memory_usage(
        &self,
        campaign: &str,
        id: MemberId,
    ) -> StoreResult<Option<u64>> {
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(keys::member_key(campaign, id.0))
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("memory usage"))
    }

    /// Makes completions wait until `n` replicas confirmed them (`WAIT n`, at most
    /// [`WAIT_REPLICAS_TIMEOUT_MS`]); 0: no waiting.
    pub fn with_wait_replicas(mut self, n: u32) -> RedisStore {
        self.wait_replicas = (n > 0).then_some(n);
        self
    }

    /// Waits until the configured replicas confirmed every write this store sent to the campaign's master.
    /// Redis's limit: `WAIT` makes a lost write unlikely, not impossible (a fail-over may still promote a replica
    /// that had not confirmed it when the timeout hit, and the write stays applied on the old master).
    async fn wait_replicas(&self, op: &'static str, campaign: &str) -> StoreResult<()> {
        let Some(wanted) = self.wait_replicas else {
            return Ok(());
        };
        let mut wait = redis::cmd("WAIT");
        wait.arg(wanted).arg(WAIT_REPLICAS_TIMEOUT_MS);
        let mut conn = self.conn();
        // On a cluster, WAIT goes to the master that took the campaign's writes.
        let reply = match conn.cluster() {
            Some(cluster) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = Route::with_key(keys::campaign_prefix(campaign), SlotAddr::Master);
                cluster
                    .route_command(
                        wait,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await
            }
            None => wait.query_async(&mut conn).await,
        };
        let acknowledged: i64 = reply
            .and_then(|v| {
                redis::FromRedisValue::from_redis_value(v).map_err(redis::RedisError::from)
            })
            .map_err(StoreError::redis(op))?;
        let acknowledged = u32::try_from(acknowledged.max(0)).unwrap_or(u32::MAX);
        if acknowledged < wanted {
            return Err(StoreError::NotReplicated {
                op,
                wanted,
                acknowledged,
            });
        }
        Ok(())
    }

    /// The underlying connection, for tools and tests that need raw commands.
    pub fn connection(&self) -> StoreConnection {
        self.conn()
    }
}

fn change_outcome(op: &'static str, r: Option<&str>) -> StoreResult<ChangeOutcome> {
    match r {
        Some("done") => Ok(ChangeOutcome::Done),
        Some("in_call") => Ok(ChangeOutcome::InCall),
        Some("not_found") => Ok(ChangeOutcome::NotFound),
        other => Err(StoreError::Corrupt {
            op,
            detail: format!("unknown outcome {other:?}"),
        }),
    }
}
