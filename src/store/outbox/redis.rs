//! The Redis webhook outbox: one small script per step (enqueue under a marker, take due heads, settle a head,
//! replay a dead letter), each atomic; the key layout is in `outbox/mod.rs`. Chain lists (`wh:q:<chain>`) are
//! found while a script runs and share the campaign's hash tag (like member records), so a script's keys all
//! live in one Cluster slot.

use super::{
    DEAD_CAP, DeadPage, DeliveryRecord, EnqueueGroup, MARKER_CAP, OUTBOX_CAP, OutboxCounts,
    PendingMarker, Settle, parse_marker, reset_for_replay,
};
use crate::store::error::{StoreError, StoreResult};
use crate::store::redis::{RedisStore, keys};
use crate::store::types::{AttemptId, MemberId, ms};
use redis::Script;
use std::sync::LazyLock;

fn key(campaign: &str, name: &str) -> String {
    keys::campaign_key(campaign, name)
}

/// The campaign's fixed outbox keys, in the order every script declares them.
fn outbox_keys(campaign: &str) -> [String; 5] {
    [
        key(campaign, "wh:pend"),
        key(campaign, "wh:dlv"),
        key(campaign, "wh:due"),
        key(campaign, "wh:dead"),
        key(campaign, "wh:deadt"),
    ]
}

/// Shared by the scripts: the keys, the chain list key, burying a record with the dead-letter bound.
const PRELUDE: &str = r"
local K_PEND, K_DLV, K_DUE, K_DEAD, K_DEADT = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local NOW, PREFIX, DEAD_CAP = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local function qkey(chain) return PREFIX .. 'wh:q:' .. chain end
local function bury(id, rec)
  redis.call('HSET', K_DEAD, id, rec)
  redis.call('ZADD', K_DEADT, NOW, id)
  local over = redis.call('ZCARD', K_DEADT) - DEAD_CAP
  if over > 0 then
    local old = redis.call('ZRANGE', K_DEADT, 0, over - 1)
    redis.call('ZREMRANGEBYRANK', K_DEADT, 0, over - 1)
    redis.call('HDEL', K_DEAD, unpack(old))
  end
end
local function push(id, chain, rec)
  redis.call('HSET', K_DLV, id, rec)
  if redis.call('RPUSH', qkey(chain), id) == 1 then redis.call('ZADD', K_DUE, NOW, chain) end
end
-- Queues each group's deliveries (groups_json: `[{m: marker or '', d: [[id, chain, record, record if buried]]}]`)
-- unless its marker is gone or a delivery of the same id is waiting or dead; at most `cap` waiting, beyond which
-- a delivery is buried. Returns how many were queued.
local function enqueue_groups(cap, groups_json)
  local queued = 0
  for _, g in ipairs(cjson.decode(groups_json)) do
    if g.m == '' or redis.call('HDEL', K_PEND, g.m) == 1 then
      for _, d in ipairs(g.d) do
        if redis.call('HEXISTS', K_DLV, d[1]) == 0 and redis.call('HEXISTS', K_DEAD, d[1]) == 0 then
          if redis.call('HLEN', K_DLV) >= cap then bury(d[1], d[4])
          else push(d[1], d[2], d[3]); queued = queued + 1 end
        end
      end
    end
  end
  return queued
end
local function pop_head(chain)
  local q = qkey(chain)
  redis.call('LPOP', q)
  if redis.call('LLEN', q) > 0 then redis.call('ZADD', K_DUE, NOW, chain) else redis.call('ZREM', K_DUE, chain) end
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// ARGV[4]: cap; ARGV[5]: JSON `[{m: marker or '', d: [[id, chain, record, record if buried]]}]`.
static ENQUEUE: LazyLock<Script> =
    LazyLock::new(|| script("return enqueue_groups(tonumber(ARGV[4]), ARGV[5])"));

/// A campaign state transition: its history entry and its events in one step. KEYS[6]: the history list;
/// ARGV[4], ARGV[5]: as [`ENQUEUE`]; ARGV[6]: the entry; ARGV[7]: entries kept. An entry equal to the latest one
/// is a resend of the same transition (entries carry their instant): neither is written again.
static TRANSITION: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local hist = KEYS[6]
if redis.call('LINDEX', hist, -1) == ARGV[6] then return 0 end
redis.call('RPUSH', hist, ARGV[6])
redis.call('LTRIM', hist, -tonumber(ARGV[7]), -1)
return enqueue_groups(tonumber(ARGV[4]), ARGV[5])
",
    )
});

/// ARGV[4]: lease ms; ARGV[5]: max. Returns the taken records.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local out = {}
for _, chain in ipairs(redis.call('ZRANGEBYSCORE', K_DUE, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[5]))) do
  local id = redis.call('LINDEX', qkey(chain), 0)
  local rec = id and redis.call('HGET', K_DLV, id)
  if rec then
    redis.call('ZADD', K_DUE, NOW + tonumber(ARGV[4]), chain)
    out[#out + 1] = rec
  elseif id then pop_head(chain)
  else redis.call('ZREM', K_DUE, chain) end
end
return out
",
    )
});

/// ARGV[4]: chain; ARGV[5]: id; ARGV[6]: delivered | retry | dead; ARGV[7]: retry at ms; ARGV[8]: record.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local chain, id, kind = ARGV[4], ARGV[5], ARGV[6]
if redis.call('LINDEX', qkey(chain), 0) ~= id then return 0 end
if kind == 'retry' then
  redis.call('HSET', K_DLV, id, ARGV[8])
  redis.call('ZADD', K_DUE, tonumber(ARGV[7]), chain)
  return 1
end
redis.call('HDEL', K_DLV, id)
if kind == 'dead' then bury(id, ARGV[8]) end
pop_head(chain)
return 1
",
    )
});

/// ARGV[4]: id; ARGV[5]: chain; ARGV[6]: the record reset for its new tries.
static REPLAY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if redis.call('HDEL', K_DEAD, ARGV[4]) == 0 then return 0 end
redis.call('ZREM', K_DEADT, ARGV[4])
push(ARGV[4], ARGV[5], ARGV[6])
return 1
",
    )
});

fn invocation<'s>(s: &'s Script, campaign: &str, now: i64) -> redis::ScriptInvocation<'s> {
    let mut inv = s.prepare_invoke();
    for k in outbox_keys(campaign) {
        inv.key(k);
    }
    inv.arg(now)
        .arg(keys::campaign_prefix(campaign))
        .arg(DEAD_CAP);
    inv
}

fn to_json(rec: &DeliveryRecord) -> StoreResult<String> {
    serde_json::to_string(rec).map_err(|e| StoreError::InvalidArgument {
        what: "webhook delivery",
        reason: e.to_string(),
    })
}

fn from_json(op: &'static str, text: &str) -> StoreResult<DeliveryRecord> {
    serde_json::from_str(text).map_err(|e| StoreError::InvalidArgument {
        what: op,
        reason: format!("corrupt webhook delivery record: {e}"),
    })
}

pub(super) async fn mark(
    r: &RedisStore,
    campaign: &str,
    attempts: &[(AttemptId, MemberId)],
    now: i64,
) -> StoreResult<()> {
    let pend = key(campaign, "wh:pend");
    let n: usize = redis::cmd("HLEN")
        .arg(&pend)
        .query_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_mark"))?;
    if n + attempts.len() > MARKER_CAP {
        return Err(StoreError::InvalidArgument {
            what: "webhook marker",
            reason: format!("too many pending (at most {MARKER_CAP})"),
        });
    }
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (attempt, member) in attempts {
        pipe.cmd("HSETNX")
            .arg(&pend)
            .arg(attempt.to_string())
            .arg(format!("{}|{now}", member.0))
            .ignore();
    }
    pipe.query_async::<()>(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_mark"))
}

/// The `enqueue_groups` argument of a script: the groups as JSON, each delivery with its buried form.
fn groups_json(groups: &[EnqueueGroup], now: i64) -> StoreResult<String> {
    let mut arg = Vec::with_capacity(groups.len());
    for g in groups {
        let mut d = Vec::with_capacity(g.deliveries.len());
        for rec in &g.deliveries {
            let mut buried = rec.clone();
            buried.last_error = Some("outbox full".into());
            buried.dead_at_ms = Some(now);
            d.push(serde_json::json!([
                rec.id,
                rec.chain(),
                to_json(rec)?,
                to_json(&buried)?
            ]));
        }
        let marker = g.marker.map(|m| m.to_string()).unwrap_or_default();
        arg.push(serde_json::json!({"m": marker, "d": d}));
    }
    Ok(serde_json::Value::Array(arg).to_string())
}

pub(super) async fn enqueue(
    r: &RedisStore,
    campaign: &str,
    groups: &[EnqueueGroup],
    now: i64,
) -> StoreResult<usize> {
    invocation(&ENQUEUE, campaign, now)
        .arg(OUTBOX_CAP)
        .arg(groups_json(groups, now)?)
        .invoke_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_enqueue"))
}

/// Appends a history entry (bounded to `keep`) and queues the groups, in one script.
pub(super) async fn transition(
    r: &RedisStore,
    campaign: &str,
    entry: &str,
    keep: usize,
    groups: &[EnqueueGroup],
    now: i64,
) -> StoreResult<usize> {
    let mut inv = invocation(&TRANSITION, campaign, now);
    inv.key(key(campaign, "history"))
        .arg(OUTBOX_CAP)
        .arg(groups_json(groups, now)?)
        .arg(entry)
        .arg(keep);
    inv.invoke_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("push_history"))
}

pub(super) async fn markers(r: &RedisStore, campaign: &str) -> StoreResult<Vec<PendingMarker>> {
    let all: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(key(campaign, "wh:pend"))
        .query_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_markers"))?;
    Ok(all.iter().filter_map(|(a, v)| parse_marker(a, v)).collect())
}

pub(super) async fn drop_marker(
    r: &RedisStore,
    campaign: &str,
    attempt: AttemptId,
) -> StoreResult<()> {
    redis::cmd("HDEL")
        .arg(key(campaign, "wh:pend"))
        .arg(attempt.to_string())
        .query_async::<()>(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_drop_marker"))
}

pub(super) async fn take(
    r: &RedisStore,
    campaign: &str,
    now: i64,
    lease_ms: i64,
    max: usize,
) -> StoreResult<Vec<DeliveryRecord>> {
    let texts: Vec<String> = invocation(&TAKE, campaign, now)
        .arg(lease_ms)
        .arg(max)
        .invoke_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_take"))?;
    texts.iter().map(|t| from_json("outbox_take", t)).collect()
}

pub(super) async fn settle(
    r: &RedisStore,
    campaign: &str,
    rec: &DeliveryRecord,
    settle: &Settle,
    now: i64,
) -> StoreResult<bool> {
    let (kind, at) = match settle {
        Settle::Delivered => ("delivered", now),
        Settle::RetryAt(at) => ("retry", ms(*at)),
        Settle::Dead => ("dead", now),
    };
    let n: i64 = invocation(&SETTLE, campaign, now)
        .arg(rec.chain())
        .arg(&rec.id)
        .arg(kind)
        .arg(at)
        .arg(to_json(rec)?)
        .invoke_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_settle"))?;
    Ok(n == 1)
}

pub(super) async fn dead(
    r: &RedisStore,
    campaign: &str,
    offset: usize,
    limit: usize,
) -> StoreResult<DeadPage> {
    let deadt = key(campaign, "wh:deadt");
    let (total, ids): (u64, Vec<String>) = redis::pipe()
        .zcard(&deadt)
        .zrevrange(&deadt, offset as isize, (offset + limit) as isize - 1)
        .query_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_dead"))?;
    if ids.is_empty() {
        return Ok(DeadPage {
            total,
            items: Vec::new(),
        });
    }
    let texts: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(key(campaign, "wh:dead"))
        .arg(&ids)
        .query_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_dead"))?;
    let items = texts
        .iter()
        .flatten()
        .map(|t| from_json("outbox_dead", t))
        .collect::<StoreResult<_>>()?;
    Ok(DeadPage { total, items })
}

pub(super) async fn replay(
    r: &RedisStore,
    campaign: &str,
    id: &str,
    now: i64,
) -> StoreResult<bool> {
    let text: Option<String> = redis::cmd("HGET")
        .arg(key(campaign, "wh:dead"))
        .arg(id)
        .query_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_replay"))?;
    let Some(text) = text else {
        return Ok(false);
    };
    let mut rec = from_json("outbox_replay", &text)?;
    reset_for_replay(&mut rec);
    let n: i64 = invocation(&REPLAY, campaign, now)
        .arg(id)
        .arg(rec.chain())
        .arg(to_json(&rec)?)
        .invoke_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_replay"))?;
    Ok(n == 1)
}

pub(super) async fn counts(r: &RedisStore, campaign: &str) -> StoreResult<OutboxCounts> {
    let (markers, queued, dead): (u64, u64, u64) = redis::pipe()
        .hlen(key(campaign, "wh:pend"))
        .hlen(key(campaign, "wh:dlv"))
        .hlen(key(campaign, "wh:dead"))
        .query_async(&mut r.connection())
        .await
        .map_err(StoreError::redis("outbox_counts"))?;
    Ok(OutboxCounts {
        markers,
        queued,
        dead,
    })
}
