//! The Redis backend: production store shared by many engine nodes.
//!
//! # Layout
//! Every key of campaign `C` starts with `dlr:{C}:` (a Redis Cluster hash tag: one campaign, one slot), see
//! [`keys`]. Member ids are written as 10 lowercase hex digits (`2a` → `000000002a`).
//!
//! | key | type | holds |
//! |---|---|---|
//! | `dlr:{C}:m:<id>` | string | one member, one line of state then its data (`packed.rs`): `h\|x\|z\|b\|s\|w\|t\|u\|r\|q\|y\|o\|p\|a` = `h` the next number under each number order (`by_priority,top_down`, written by `add` and the completion fast path, emptied by every other writer of `u`), `x` expire ms, `z` timezone, `b` attempts, `s` state (`r` ready, `w` waiting, `a` active, `e` ended), `w` due ms, `t` counted tries, `u` per-number state (`prio,state,attempts,last_ms,cause;…`), `r` last number used + 1, `q` terminate pending, `y` end cause, `o` success, `p` priority, while active `a` = `attempt\|number index\|claim ms\|node` (`""` = a field's default); then a line each for the numbers (JSON `[[number, description?, type?]…]`), the variables (JSON) and the external id (JSON string), and the name to the end |
//! | `dlr:{C}:log` | hash | the attempt log: field `<id>.<attempt no>` → that attempt's `\|`-separated line (SPEC §10, see `record::LogEntry::parse_line`) |
//! | `dlr:{C}:ready` | zset | due members in claim order: score = order primary (see `rules::primary`), member = `hex11(due_ms) hex10(id)` (ties sort by due, then id) |
//! | `dlr:{C}:wait` | zset | members due later: score = due ms, member = id |
//! | `dlr:{C}:lease` | zset | active attempts: score = lease expiry ms, member = attempt id (the campaign's slots in use) |
//! | `dlr:{C}:act` | hash | attempt id → `<member id>\|<node>` for active attempts (`\|q` appended once the member was terminated in the call) |
//! | `dlr:{C}:ext` | hash | external id → member id |
//! | `dlr:{C}:seq` | string | last member id |
//! | `dlr:{C}:tzs` | set | the timezones members use (`""` = the calendar's) |
//! | `dlr:{C}:cnt` | hash | counters: `waiting active ended calls answered success ok retry error minus lost end:<CAUSE>` |
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
//! Scripts address member keys they derive from `KEYS[1]` (the campaign prefix); all share the hash tag, so this
//! works on Redis Cluster too.
//!
//! Why a member is one string: the claim and the completion each touch a whole batch of members, and with one
//! string per member that is one `MGET` and one `MSET` for the batch. A hash per member cost one `HMGET` and one
//! `HSET` per member, and Redis charges more for each call from Lua, and for each field looked up in a listpack,
//! than for the member's own logic. For the same reason the attempt log is one campaign hash written with one `HSET`
//! per batch rather than one `APPEND` per member, and the claim keeps Lua's slow number-to-string conversions out of
//! its loop.
//!
//! Completing attempts has a fast path (`redis/fast.rs`): the Rust side decides each result from the record the
//! claim wrote, and `complete_fast.lua` only checks that each attempt's `act` entry is still the one the claim wrote
//! (whatever changes an active member drops or marks that entry) and writes; `complete.lua` decides in Lua whenever
//! that check fails or the claim was not this process's.
//!
//! Scripts start with `#!lua`, so a Redis that is out of memory refuses a writing script before it runs rather than
//! at its first write; read-only scripts carry `flags=no-writes`. Each script reads and checks what it needs before
//! it writes; Redis does not roll back a script that fails half-way, so only corrupted data (a record no version of
//! this store wrote) could leave a batch partly applied.

mod agents;
mod fast;
pub mod keys;
mod leases;
mod packed;
mod reply;

use super::error::{StoreError, StoreResult};
use super::ids::AttemptIds;
use super::memory::{SCAN_SPAN, check_bucket, lease_ms};
use super::record::{self, Prepared};
use super::rules;
use super::types::*;
use crate::campaign::member::MemberInput;
use crate::campaign::params::NumberOrder;
use crate::campaign::schedule::Schedule;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use reply::{list, parse, resp};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    complete_fast: Script,
    recover: Script,
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
            complete_fast: with(include_str!("lua/complete_fast.lua")),
            recover: with(include_str!("lua/recover.lua")),
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
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    ids: Arc<AttemptIds>,
    /// Timezones known per campaign (a cache of `dlr:{C}:tzs`, filled as scripts report new ones).
    tzs: Arc<Mutex<HashMap<String, BTreeSet<String>>>>,
    /// Campaigns already registered in `dlr:campaigns` by this process.
    registered: Arc<Mutex<HashSet<String>>>,
    /// What this store's claims saw of their members, for the completion fast path (`fast.rs`).
    snapshots: Arc<fast::Snapshots>,
    /// The skew between the server's clock and this node's (`leases.rs`, `store::clock`).
    clock: Arc<crate::store::clock::StoreClock>,
}

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
    /// Connects to `redis://host:port[/db]`. The connection reconnects by itself after Redis restarts; calls made
    /// while Redis is down fail with [`StoreError::Redis`].
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
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(30)))
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
        Ok(RedisStore {
            conn,
            scripts: Arc::new(Scripts::new()),
            ids: Arc::new(ids),
            tzs: Arc::default(),
            registered: Arc::default(),
            snapshots: Arc::default(),
            clock: Arc::new(crate::store::clock::StoreClock::system()),
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
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
            let mut inv = call.script.key(keys::campaign_prefix(call.campaign));
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

    /// A member's arguments to `add.lua`/`update.lua`: its fields, then the number each number order would dial
    /// first (the claim's hint, see `claim.lua`).
    fn member_args(p: &Prepared) -> [String; 9] {
        let first = |order| {
            rules::choose_number(order, &p.nums, None).map_or(String::new(), |i| i.to_string())
        };
        [
            p.data.n.clone(),
            p.vars_json.clone(),
            p.comms_json.clone(),
            p.prio.to_string(),
            p.tz.clone().unwrap_or_default(),
            p.expire.map(|x| x.to_string()).unwrap_or_default(),
            record::pack_nums(&p.nums),
            p.ext.clone().unwrap_or_default(),
            format!(
                "{},{}",
                first(NumberOrder::ByPriority),
                first(NumberOrder::TopDown)
            ),
        ]
    }

    /// Adds members (upsert by external id), in pipelined chunks of [`ADD_CHUNK`]. Each chunk is atomic; if Redis
    /// fails mid-way, the chunks before the failure are stored (re-adding with external ids is idempotent).
    pub async fn add(
        &self,
        campaign: &str,
        members: &[MemberInput],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AddOutcome>> {
        record::check_campaign(campaign)?;
        let prepared = members
            .iter()
            .enumerate()
            .map(|(i, m)| record::prepare(i, m))
            .collect::<StoreResult<Vec<Prepared>>>()?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        self.register(campaign).await?;
        self.remember_tzs(campaign, prepared.iter().map(|p| rules::tz_key(&p.tz)));
        let now = ms(now);
        let prefix = keys::campaign_prefix(campaign);
        let futures: Vec<_> = prepared
            .chunks(ADD_CHUNK)
            .map(|chunk| {
                let args: Vec<String> = chunk.iter().flat_map(Self::member_args).collect();
                self.add_chunk(prefix.clone(), now, args)
            })
            .collect();
        let results: Vec<StoreResult<Vec<AddOutcome>>> = futures::stream::iter(futures)
            .buffered(ADD_IN_FLIGHT)
            .collect()
            .await;
        let mut out = Vec::with_capacity(prepared.len());
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }

    async fn add_chunk(
        &self,
        prefix: String,
        now: i64,
        args: Vec<String>,
    ) -> StoreResult<Vec<AddOutcome>> {
        let mut inv = self.scripts.add.key(prefix);
        inv.arg(now);
        for a in args {
            inv.arg(a);
        }
        let out: redis::Value = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("add"))?;
        const OP: &str = "add";
        let v = resp::array(OP, &out)?;
        let mut next_new = resp::int(OP, resp::at(OP, v, 0)?)? as u64;
        let codes = resp::string(OP, resp::at(OP, v, 1)?)?;
        let mut upserts = v[2..].iter();
        let mut upsert = || -> StoreResult<MemberId> {
            let id = upserts.next().ok_or_else(|| StoreError::Corrupt {
                op: OP,
                detail: "fewer upsert ids than upserts".into(),
            })?;
            Ok(MemberId(resp::int(OP, id)? as u64))
        };
        codes
            .chars()
            .map(|code| match code {
                'a' => {
                    next_new += 1;
                    Ok(AddOutcome::Added(MemberId(next_new - 1)))
                }
                'u' => Ok(AddOutcome::Updated(upsert()?)),
                'c' => Ok(AddOutcome::InCall(upsert()?)),
                other => Err(StoreError::Corrupt {
                    op: OP,
                    detail: format!("unknown add outcome {other:?}"),
                }),
            })
            .collect()
    }

    async fn get_raw(
        &self,
        campaign: &str,
        id: MemberId,
        with_log: bool,
    ) -> StoreResult<Option<(Member, record::StaticData, Option<String>)>> {
        record::check_campaign(campaign)?;
        let out: String = self
            .scripts
            .get
            .key(keys::campaign_prefix(campaign))
            .arg(id.0)
            .arg(if with_log { "1" } else { "0" })
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("get"))?;
        #[derive(Deserialize)]
        struct R {
            missing: Option<u8>,
            v: Option<(u64, Vec<serde_json::Value>)>,
            h: Option<serde_json::Value>,
        }
        let r: R = parse("get", &out)?;
        if r.missing.is_some() {
            return Ok(None);
        }
        let (mid, fields) = r.v.ok_or_else(|| StoreError::Corrupt {
            op: "get",
            detail: "reply without member".into(),
        })?;
        let (m, data) = reply::member_view(mid, &fields)
            .map_err(|detail| StoreError::Corrupt { op: "get", detail })?;
        let h = match r.h {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        Ok(Some((m, data, h)))
    }

    pub async fn get(&self, campaign: &str, id: MemberId) -> StoreResult<Option<Member>> {
        Ok(self.get_raw(campaign, id, false).await?.map(|(m, _, _)| m))
    }

    pub async fn attempts(&self, campaign: &str, id: MemberId) -> StoreResult<Vec<AttemptRecord>> {
        match self.get_raw(campaign, id, true).await? {
            None => Ok(Vec::new()),
            Some((_, data, h)) => reply::log_lines(id, &data, h.as_deref().unwrap_or("")),
        }
    }

    pub async fn update(
        &self,
        campaign: &str,
        id: MemberId,
        m: &MemberInput,
        now: DateTime<Utc>,
    ) -> StoreResult<ChangeOutcome> {
        record::check_campaign(campaign)?;
        let p = record::prepare(0, m)?;
        self.remember_tzs(campaign, [rules::tz_key(&p.tz)]);
        let mut inv = self.scripts.update.key(keys::campaign_prefix(campaign));
        inv.arg(ms(now)).arg(id.0);
        for a in Self::member_args(&p) {
            inv.arg(a);
        }
        let out: String = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("update"))?;
        #[derive(Deserialize)]
        struct R {
            taken: Option<u64>,
            r: Option<String>,
        }
        let r: R = parse("update", &out)?;
        if let Some(owner) = r.taken {
            return Err(StoreError::ExternalIdTaken {
                external_id: p.ext.unwrap_or_default(),
                owner,
            });
        }
        change_outcome("update", r.r.as_deref())
    }

    pub async fn delete(&self, campaign: &str, id: MemberId) -> StoreResult<ChangeOutcome> {
        record::check_campaign(campaign)?;
        let out: String = self
            .scripts
            .delete
            .key(keys::campaign_prefix(campaign))
            .arg(id.0)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("delete"))?;
        #[derive(Deserialize)]
        struct R {
            r: String,
        }
        let r: R = parse("delete", &out)?;
        change_outcome("delete", Some(&r.r))
    }

    pub async fn terminate(&self, campaign: &str, id: MemberId) -> StoreResult<TerminateOutcome> {
        record::check_campaign(campaign)?;
        let out: String = self
            .scripts
            .terminate
            .key(keys::campaign_prefix(campaign))
            .arg(id.0)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("terminate"))?;
        #[derive(Deserialize)]
        struct R {
            r: String,
            a: Option<uuid::Uuid>,
            g: Option<String>,
        }
        let r: R = parse("terminate", &out)?;
        Ok(match (r.r.as_str(), r.a, r.g) {
            ("terminated", _, _) => TerminateOutcome::Terminated,
            ("ended", _, _) => TerminateOutcome::AlreadyEnded,
            ("not_found", _, _) => TerminateOutcome::NotFound,
            ("kill", Some(attempt_id), Some(node)) => {
                TerminateOutcome::KillCall { attempt_id, node }
            }
            _ => {
                return Err(StoreError::Corrupt {
                    op: "terminate",
                    detail: out,
                });
            }
        })
    }

    /// Revives ended, unsuccessful members; runs in steps of [`SCAN_SPAN`] ids (each step atomic).
    pub async fn reset(&self, campaign: &str, now: DateTime<Utc>) -> StoreResult<u64> {
        record::check_campaign(campaign)?;
        let mut total = 0;
        let mut after: i64 = 0;
        loop {
            let out: String = self
                .scripts
                .reset
                .key(keys::campaign_prefix(campaign))
                .arg(ms(now))
                .arg(after)
                .arg(SCAN_SPAN)
                .invoke_async(&mut self.conn())
                .await
                .map_err(StoreError::redis("reset"))?;
            #[derive(Deserialize)]
            struct R {
                n: u64,
                next: i64,
            }
            let r: R = parse("reset", &out)?;
            total += r.n;
            if r.next < 0 {
                return Ok(total);
            }
            after = r.next;
        }
    }

    pub async fn counts(&self, campaign: &str) -> StoreResult<Counters> {
        record::check_campaign(campaign)?;
        let raw: HashMap<String, i64> = self
            .conn()
            .hgetall(keys::campaign_key(campaign, "cnt"))
            .await
            .map_err(StoreError::redis("counts"))?;
        let mut c = Counters::default();
        for (k, v) in raw {
            let v = v.max(0) as u64;
            match k.as_str() {
                "waiting" => c.waiting = v,
                "active" => c.active = v,
                "ended" => c.ended = v,
                "calls" => c.calls = v,
                "answered" => c.answered = v,
                "success" => c.success = v,
                "ok" => c.ok = v,
                "retry" => c.retry = v,
                "error" => c.error = v,
                "minus" => c.minus = v,
                "lost" => c.lost = v,
                other => {
                    if let Some(cause) = other.strip_prefix("end:")
                        && v > 0
                    {
                        c.ended_by_cause.insert(cause.to_string(), v);
                    }
                }
            }
        }
        Ok(c)
    }

    pub async fn list(&self, campaign: &str, q: &ListQuery) -> StoreResult<ListPage> {
        record::check_campaign(campaign)?;
        let state = match q.state {
            None => "",
            Some(MemberState::Waiting) => "waiting",
            Some(MemberState::Active) => "active",
            Some(MemberState::Ended) => "ended",
        };
        let cause = q.end_cause.clone().unwrap_or_default();
        let mut after = q.after.map_or(0, |a| a.0);
        let mut limit = q.limit;
        let mut members = Vec::new();
        loop {
            let out: String = self
                .scripts
                .list
                .key(keys::campaign_prefix(campaign))
                .arg(after)
                .arg(SCAN_SPAN)
                .arg(limit)
                .arg(state)
                .arg(&cause)
                .invoke_async(&mut self.conn())
                .await
                .map_err(StoreError::redis("list"))?;
            #[derive(Deserialize)]
            struct R {
                #[serde(deserialize_with = "list")]
                v: Vec<(u64, Vec<serde_json::Value>)>,
                last: u64,
                more: u8,
            }
            let r: R = parse("list", &out)?;
            for (id, f) in r.v {
                let (m, _) = reply::member_view(id, &f)
                    .map_err(|detail| StoreError::Corrupt { op: "list", detail })?;
                members.push(m);
            }
            limit = q.limit - members.len();
            if r.more == 0 {
                return Ok(ListPage {
                    members,
                    next: None,
                });
            }
            after = r.last;
            if limit == 0 {
                return Ok(ListPage {
                    members,
                    next: Some(MemberId(after)),
                });
            }
        }
    }

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
        record::check_campaign(campaign)?;
        record::check_node(node)?;
        let lease = lease_ms(lease)?;
        let now = ms(now);
        let ids = self.ids.take(max_n.min(policy.limit as usize));
        let out = self
            .eval_tz(
                TzCall {
                    op: "claim",
                    script: &self.scripts.claim,
                    campaign,
                    before: vec![
                        now.to_string(),
                        max_n.to_string(),
                        node.to_string(),
                        lease.to_string(),
                        policy_json(policy),
                    ],
                    after: ids.iter().map(|u| u.to_string()).collect(),
                },
                schedule,
                now,
                policy.wait_ms(),
            )
            .await?;
        const OP: &str = "claim";
        let top = resp::array(OP, &out)?;
        let (claimed, ended) = (resp::at(OP, top, 0)?, resp::at(OP, top, 1)?);
        let claimed = resp::array(OP, claimed)?;
        let mut claims = Vec::with_capacity(claimed.len());
        let mut snapshots = Vec::with_capacity(claimed.len());
        for pair in claimed.chunks(2) {
            let hid = resp::string(OP, resp::at(OP, pair, 0)?)?;
            let id = u64::from_str_radix(&hid, 16).map_err(|e| StoreError::Corrupt {
                op: OP,
                detail: format!("member id {hid:?}: {e}"),
            })?;
            let record = resp::string(OP, resp::at(OP, pair, 1)?)?;
            let (claim, snapshot) = claimed_member(id, record, lease)
                .map_err(|detail| StoreError::Corrupt { op: OP, detail })?;
            snapshots.push((claim.attempt_id, snapshot));
            claims.push(claim);
        }
        let ended = resp::array(OP, ended)?
            .iter()
            .map(|e| {
                let e = resp::array(OP, e)?;
                Ok((
                    MemberId(resp::int(OP, resp::at(OP, e, 0)?)? as u64),
                    resp::string(OP, resp::at(OP, e, 1)?)?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.snapshots.insert_all(snapshots);
        Ok(ClaimBatch { claims, ended })
    }

    pub async fn complete(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        result: &AttemptResult,
        now: DateTime<Utc>,
    ) -> StoreResult<CompleteOutcome> {
        let mut v = self
            .complete_many(
                campaign,
                policy,
                schedule,
                std::slice::from_ref(result),
                now,
            )
            .await?;
        v.pop().ok_or_else(|| StoreError::Corrupt {
            op: "complete",
            detail: "no outcome".into(),
        })
    }

    /// Completes many attempts, in order, [`COMPLETE_CHUNK`] per script call (each call atomic).
    pub async fn complete_many(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        results: &[AttemptResult],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<CompleteOutcome>> {
        record::check_campaign(campaign)?;
        for r in results {
            record::check_cause(&r.cause)?;
        }
        let now = ms(now);
        let mut outcomes = Vec::with_capacity(results.len());
        for chunk in results.chunks(COMPLETE_CHUNK) {
            if let Some(fates) = self
                .complete_fast(campaign, policy, schedule, chunk, now)
                .await?
            {
                outcomes.extend(fates.into_iter().map(CompleteOutcome::Applied));
                continue;
            }
            let mut after = Vec::with_capacity(chunk.len() * 8);
            for r in chunk {
                after.extend([
                    r.attempt_id.to_string(),
                    r.member_id.0.to_string(),
                    r.cause.clone(),
                    class_code(r.class).to_string(),
                    r.answered_at.map(|t| ms(t).to_string()).unwrap_or_default(),
                    r.hangup_at.map(|t| ms(t).to_string()).unwrap_or_default(),
                    r.talk_secs.to_string(),
                    r.note
                        .as_deref()
                        .map(record::escape_note)
                        .unwrap_or_default(),
                ]);
            }
            let out = self
                .eval_tz(
                    TzCall {
                        op: "complete",
                        script: &self.scripts.complete,
                        campaign,
                        before: vec![now.to_string(), policy_json(policy)],
                        after,
                    },
                    schedule,
                    now,
                    policy.wait_ms(),
                )
                .await?;
            const OP: &str = "complete";
            let v = resp::array(OP, &out)?;
            if v.len() != chunk.len() {
                return Err(StoreError::Corrupt {
                    op: OP,
                    detail: format!("{} outcomes for {} results", v.len(), chunk.len()),
                });
            }
            for one in v {
                let code = resp::string(OP, resp::at(OP, resp::array(OP, one)?, 0)?)?;
                outcomes.push(match code.as_str() {
                    "dup" => CompleteOutcome::Duplicate,
                    "nc" => CompleteOutcome::NotCurrent,
                    _ => CompleteOutcome::Applied(resp::fate(OP, one)?),
                });
            }
        }
        Ok(outcomes)
    }

    /// The fast path of [`complete_many`](Self::complete_many) for one chunk: `None` when the chunk must take
    /// the slow path (see `fast.rs`). The chunk's snapshots are used up either way.
    async fn complete_fast(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        chunk: &[AttemptResult],
        now: i64,
    ) -> StoreResult<Option<Vec<MemberFate>>> {
        const OP: &str = "complete";
        let snaps: Vec<Option<fast::Snapshot>> = chunk
            .iter()
            .map(|r| self.snapshots.take(&r.attempt_id))
            .collect();
        let mut members = HashSet::with_capacity(chunk.len());
        let mut fits = Vec::with_capacity(chunk.len());
        for (r, s) in chunk.iter().zip(snaps) {
            match s {
                Some(s) if s.member == r.member_id.0 && members.insert(s.member) => fits.push(s),
                _ => return Ok(None),
            }
        }
        let order = policy.member_order;
        let mut points: HashMap<String, rules::TzPoint> = HashMap::new();
        let mut deltas = fast::Deltas::new();
        let mut batch = fast::FastBatch::default();
        let mut fates = Vec::with_capacity(chunk.len());
        for (r, s) in chunk.iter().zip(&fits) {
            let decided = packed::Record::parse(&s.record).and_then(|rec| {
                let point = match points.get(rec.z) {
                    Some(p) => *p,
                    None => {
                        let p = rules::evaluate(schedule, rec.z, now, policy.wait_ms());
                        points.insert(rec.z.to_string(), p);
                        p
                    }
                };
                fast::decide(s, &rec, r, policy, point, order, now, &mut deltas)
            });
            match decided {
                Ok(d) => {
                    fates.push(d.fate.clone());
                    batch.push(
                        d,
                        &r.attempt_id,
                        &s.node,
                        keys::member_key(campaign, s.member),
                    );
                }
                Err(detail) => {
                    tracing::warn!(campaign, member = s.member, %detail, "completion snapshot unusable");
                    return Ok(None);
                }
            }
        }
        // The order's name as `policy_json` writes it for the other scripts.
        let order_name = match serde_json::to_value(order) {
            Ok(serde_json::Value::String(name)) => name,
            other => {
                return Err(StoreError::Corrupt {
                    op: OP,
                    detail: format!("member order {order:?} serialized as {other:?}"),
                });
            }
        };
        let deltas = serde_json::to_string(&deltas).map_err(|e| StoreError::Corrupt {
            op: OP,
            detail: e.to_string(),
        })?;
        let mut inv = self
            .scripts
            .complete_fast
            .key(keys::campaign_prefix(campaign));
        for a in batch.into_args(now, &order_name, deltas) {
            inv.arg(a);
        }
        let out: String = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis(OP))?;
        match out.as_str() {
            "ok" => Ok(Some(fates)),
            "conflict" => Ok(None),
            other => Err(StoreError::Corrupt {
                op: OP,
                detail: format!("unknown fast-path reply {other:?}"),
            }),
        }
    }

    pub async fn release(
        &self,
        campaign: &str,
        member: MemberId,
        attempt: AttemptId,
        not_before: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<ReleaseOutcome> {
        record::check_campaign(campaign)?;
        self.snapshots.take(&attempt);
        let out: String = self
            .scripts
            .release
            .key(keys::campaign_prefix(campaign))
            .arg(ms(now))
            .arg(member.0)
            .arg(attempt.to_string())
            .arg(opt_ms(not_before))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("release"))?;
        #[derive(Deserialize)]
        struct R {
            r: String,
        }
        let r: R = parse("release", &out)?;
        Ok(if r.r == "released" {
            ReleaseOutcome::Released
        } else {
            ReleaseOutcome::NotCurrent
        })
    }

    pub async fn renew(
        &self,
        campaign: &str,
        node: &str,
        attempts: &[AttemptId],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Vec<AttemptId>> {
        record::check_campaign(campaign)?;
        let lease = lease_ms(lease)?;
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.scripts.renew.key(keys::campaign_prefix(campaign));
        inv.arg(ms(now)).arg(lease).arg(node);
        for a in attempts {
            inv.arg(a.to_string());
        }
        let out: String = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("renew"))?;
        #[derive(Deserialize)]
        struct R {
            #[serde(deserialize_with = "list")]
            v: Vec<uuid::Uuid>,
        }
        Ok(parse::<R>("renew", &out)?.v)
    }

    pub async fn recover_expired(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        now: DateTime<Utc>,
        max: usize,
    ) -> StoreResult<Vec<Recovered>> {
        record::check_campaign(campaign)?;
        let now = ms(now);
        let out = self
            .eval_tz(
                TzCall {
                    op: "recover",
                    script: &self.scripts.recover,
                    campaign,
                    before: vec![now.to_string(), policy_json(policy)],
                    after: vec![
                        max.to_string(),
                        class_code(lost_class(policy.lost_attempt)).to_string(),
                    ],
                },
                schedule,
                now,
                policy.wait_ms(),
            )
            .await?;
        const OP: &str = "recover";
        resp::array(OP, &out)?
            .iter()
            .map(|r| {
                let r = resp::array(OP, r)?;
                Ok(Recovered {
                    attempt_id: resp::uuid(OP, resp::at(OP, r, 0)?)?,
                    member_id: MemberId(resp::int(OP, resp::at(OP, r, 1)?)? as u64),
                    node: resp::string(OP, resp::at(OP, r, 2)?)?,
                    fate: resp::fate(OP, resp::at(OP, r, 3)?)?,
                })
            })
            .collect()
    }

    pub async fn slots_in_use(&self, campaign: &str, now: DateTime<Utc>) -> StoreResult<u32> {
        record::check_campaign(campaign)?;
        let n: u64 = self
            .conn()
            .zcount(
                keys::campaign_key(campaign, "lease"),
                format!("({}", ms(now)),
                "+inf",
            )
            .await
            .map_err(StoreError::redis("slots_in_use"))?;
        Ok(n as u32)
    }

    pub async fn acquire_gateway_slot(
        &self,
        gateway: &str,
        limit: u32,
        attempt: AttemptId,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        record::check_campaign(gateway)?;
        let got: i64 = self
            .scripts
            .gw_acquire
            .key(keys::gateway_slots(gateway))
            .arg(ms(now))
            .arg(limit)
            .arg(attempt.to_string())
            .arg(ms(until))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("acquire_gateway_slot"))?;
        Ok(got == 1)
    }

    pub async fn release_gateway_slot(&self, gateway: &str, attempt: AttemptId) -> StoreResult<()> {
        record::check_campaign(gateway)?;
        let _: i64 = self
            .conn()
            .zrem(keys::gateway_slots(gateway), attempt.to_string())
            .await
            .map_err(StoreError::redis("release_gateway_slot"))?;
        Ok(())
    }

    pub async fn renew_gateway_slots(
        &self,
        gateway: &str,
        attempts: &[AttemptId],
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AttemptId>> {
        record::check_campaign(gateway)?;
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.scripts.gw_renew.key(keys::gateway_slots(gateway));
        inv.arg(ms(now)).arg(ms(until));
        for a in attempts {
            inv.arg(a.to_string());
        }
        let lost: Vec<String> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("renew_gateway_slots"))?;
        lost.iter()
            .map(|s| {
                uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt {
                    op: "renew_gateway_slots",
                    detail: e.to_string(),
                })
            })
            .collect()
    }

    pub async fn gateway_slots_in_use(
        &self,
        gateway: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u32> {
        record::check_campaign(gateway)?;
        let n: u64 = self
            .conn()
            .zcount(
                keys::gateway_slots(gateway),
                format!("({}", ms(now)),
                "+inf",
            )
            .await
            .map_err(StoreError::redis("gateway_slots_in_use"))?;
        Ok(n as u32)
    }

    pub async fn take_tokens(
        &self,
        key: &LimitKey,
        rate_per_sec: f64,
        burst: f64,
        n: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<u32> {
        check_bucket(rate_per_sec, burst)?;
        let k = match key {
            LimitKey::Campaign(c) => {
                record::check_campaign(c)?;
                keys::campaign_bucket(c)
            }
            LimitKey::Gateway(g) => {
                record::check_campaign(g)?;
                keys::gateway_bucket(g)
            }
        };
        let granted: u32 = self
            .scripts
            .bucket
            .key(k)
            .arg(rate_per_sec.to_string())
            .arg(burst.to_string())
            .arg(n)
            .arg(ms(now))
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("take_tokens"))?;
        Ok(granted)
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
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
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

    /// The underlying connection, for tools and tests that need raw commands.
    pub fn connection(&self) -> ConnectionManager {
        self.conn()
    }
}

/// A claimed member from the record the claim wrote (see `packed.rs`): what the engine needs to place the call,
/// and what the completion fast path needs to decide its result.
fn claimed_member(id: u64, record: String, lease: i64) -> Result<(Claim, fast::Snapshot), String> {
    let r = packed::Record::parse(&record)?;
    let active = r
        .active()?
        .ok_or_else(|| format!("member {id}: claimed without an active attempt"))?;
    let attempt_id = uuid::Uuid::parse_str(active.attempt)
        .map_err(|e| format!("attempt id {:?}: {e}", active.attempt))?;
    let int = |name: &str, v: &str| -> Result<Option<i64>, String> {
        if v.is_empty() {
            return Ok(None);
        }
        record::parse_int(v)
            .map(Some)
            .ok_or_else(|| format!("member {id}: field {name} is not an integer: {v:?}"))
    };
    let data = reply::static_data(r.n.to_string(), Some(r.v), r.c)?;
    let k = active.k;
    let number = data
        .c
        .get(k)
        .map(|c| c.number.clone())
        .ok_or_else(|| format!("member {id}: no number #{k}"))?;
    let attempt_no = int("b", r.b)?.unwrap_or(0) as u32;
    let priority = int("p", r.p)?.unwrap_or(0);
    let (tries, expire) = (int("t", r.t)?.unwrap_or(0) as u32, int("x", r.x)?);
    let (tz, node) = (r.z.to_string(), active.node.to_string());
    let claim = Claim {
        attempt_id,
        member_id: MemberId(id),
        attempt_no,
        comm_index: k,
        number,
        name: data.n,
        timezone: (!tz.is_empty()).then_some(tz),
        variables: data.v,
        priority,
        lease_until: from_ms(active.claimed + lease),
    };
    let snapshot = fast::Snapshot {
        member: id,
        k,
        claimed: active.claimed,
        node,
        attempts: attempt_no,
        tries,
        expire,
        prio: priority,
        record,
    };
    Ok((claim, snapshot))
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
