//! The Redis backend's agents (see `store::agents` for how an operation runs): one script reads the agents of a
//! scope, one compare-and-set script writes back what the operation changed, with the indexes, atomically.
//!
//! Keys, all under the hash tag `{agents}` (one Redis Cluster slot, so each script is atomic there too):
//! - `dlr:{agents}:rec`: hash agent id → the agent's record (JSON of [`AgentRecord`]);
//! - `dlr:{agents}:team:<team>`: set of the ids of the agents serving the team;
//! - `dlr:{agents}:res`: hash reservation id → agent id;
//! - `dlr:{agents}:leases`: sorted set reservation id → lease expiry (epoch ms), for recovery;
//! - `dlr:{agents}:inbox:<node>`: list of the node's agent messages (JSON of [`AgentMessage`]), capped, expiring
//!   an hour after its last message.

use super::RedisStore;
use crate::agents::{AgentMessage, AgentRecord};
use crate::store::agents::{INBOX_CAP, Scope, Slot, TX_ATTEMPTS};
use crate::store::error::{StoreError, StoreResult};
use crate::store::types::ms;
use redis::Script;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

const REC: &str = "dlr:{agents}:rec";
const RES: &str = "dlr:{agents}:res";
const LEASES: &str = "dlr:{agents}:leases";
/// How long an inbox nobody takes from is kept after its last message: 1 hour.
const INBOX_TTL_MS: u64 = 3_600_000;

fn team_key(team: &str) -> String {
    format!("dlr:{{agents}}:team:{team}")
}

fn inbox_key(node: &str) -> String {
    format!("dlr:{{agents}}:inbox:{node}")
}

/// Reads the records of a scope: `ARGV[1]` the mode (`ids`, `team`, `res`, `expired`, `all`), then the ids, the
/// reservation ids, or `now max`. Returns id, record ('' when absent) pairs.
static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local rec, res, leases = KEYS[1], KEYS[2], KEYS[3]
local mode = ARGV[1]
local ids = {}
if mode == 'ids' then
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
elseif mode == 'team' then
  ids = redis.call('SMEMBERS', KEYS[4])
elseif mode == 'all' then
  ids = redis.call('HKEYS', rec)
else
  local rids = {}
  if mode == 'res' then
    for i = 2, #ARGV do rids[#rids + 1] = ARGV[i] end
  else
    rids = redis.call('ZRANGEBYSCORE', leases, '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
  end
  local seen = {}
  for _, r in ipairs(rids) do
    local a = redis.call('HGET', res, r)
    if a and not seen[a] then
      seen[a] = true
      ids[#ids + 1] = a
    end
  end
end
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', rec, id) or ''
end
return out
",
    )
});

/// Writes records only if each still is what was read (`ARGV[1]`: JSON of [`Writes`]); 0 when one changed.
static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = cjson.decode(ARGV[1])
for _, c in ipairs(p.cas) do
  if (redis.call('HGET', KEYS[1], c[1]) or '') ~= c[2] then return 0 end
end
for _, c in ipairs(p.cas) do
  if c[3] == '' then redis.call('HDEL', KEYS[1], c[1]) else redis.call('HSET', KEYS[1], c[1], c[3]) end
end
for _, r in ipairs(p.res_del) do
  redis.call('HDEL', KEYS[2], r)
  redis.call('ZREM', KEYS[3], r)
end
for _, r in ipairs(p.res_set) do
  redis.call('HSET', KEYS[2], r[1], r[2])
  redis.call('ZADD', KEYS[3], r[3], r[1])
end
for _, t in ipairs(p.team_del) do redis.call('SREM', KEYS[t[1]], t[2]) end
for _, t in ipairs(p.team_add) do redis.call('SADD', KEYS[t[1]], t[2]) end
return 1
",
    )
});

/// Appends a message unless the inbox holds `ARGV[2]` already; the inbox expires `ARGV[3]` ms after the last post
/// (a node that is gone for good leaves no inbox behind).
static POST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
",
    )
});

/// Pops up to `ARGV[1]` messages, oldest first.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = tonumber(ARGV[1])
local v = redis.call('LRANGE', KEYS[1], 0, n - 1)
redis.call('LTRIM', KEYS[1], n, -1)
return v
",
    )
});

/// One record to write: id, the record as read ('' absent), the new record ('' deletes).
#[derive(Debug, Serialize)]
struct Cas<'a>(&'a str, &'a str, String);

/// A reservation index entry: reservation id, agent id, lease expiry (epoch ms, as text).
#[derive(Debug, Serialize)]
struct ResEntry(String, String, String);

/// A team index entry: the team key's position in `KEYS`, agent id.
#[derive(Debug, Serialize)]
struct TeamEntry(usize, String);

/// What the compare-and-set script writes.
#[derive(Debug, Serialize, Default)]
struct Writes<'a> {
    cas: Vec<Cas<'a>>,
    res_set: Vec<ResEntry>,
    res_del: Vec<String>,
    team_add: Vec<TeamEntry>,
    team_del: Vec<TeamEntry>,
}

fn corrupt(op: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { op, detail }
}

fn teams_of(r: Option<&AgentRecord>) -> BTreeSet<&str> {
    r.map(|r| r.agent.teams.iter().map(|t| t.team.as_str()).collect())
        .unwrap_or_default()
}

fn leases_of(r: Option<&AgentRecord>) -> BTreeMap<String, i64> {
    r.map(|r| {
        r.reservations
            .iter()
            .map(|h| (h.id.to_string(), ms(h.lease_until)))
            .collect()
    })
    .unwrap_or_default()
}

impl RedisStore {
    async fn load_agents(
        &self,
        op: &'static str,
        scope: Scope<'_>,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut inv = LOAD.prepare_invoke();
        inv.key(REC).key(RES).key(LEASES);
        match scope {
            Scope::Ids(ids) => {
                inv.arg("ids").arg(ids);
            }
            Scope::Team(team) => {
                inv.key(team_key(team)).arg("team");
            }
            Scope::Reservations(rids) => {
                inv.arg("res");
                for r in rids {
                    inv.arg(r.to_string());
                }
            }
            Scope::Expired { now, max } => {
                inv.arg("expired").arg(ms(now)).arg(max);
            }
            Scope::All => {
                inv.arg("all");
            }
        }
        let flat: Vec<String> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis(op))?;
        if !flat.len().is_multiple_of(2) {
            return Err(corrupt(op, format!("{} items, expected pairs", flat.len())));
        }
        let mut it = flat.into_iter();
        let mut out = Vec::new();
        while let (Some(id), Some(raw)) = (it.next(), it.next()) {
            out.push((id, raw));
        }
        Ok(out)
    }

    /// See `store::agents`: read, run `f`, compare-and-set, again on conflict.
    pub(crate) async fn agent_tx<T>(
        &self,
        op: &'static str,
        scope: Scope<'_>,
        mut f: impl FnMut(&mut [Slot]) -> StoreResult<T>,
    ) -> StoreResult<T> {
        for attempt in 0..TX_ATTEMPTS {
            if attempt > 0 {
                // Writers that lost a race all reread at once and tend to pick the same agent again: spread them.
                let cap_us = 200 * attempt.min(10) as u64;
                tokio::time::sleep(std::time::Duration::from_micros(rand::random_range(
                    0..=cap_us,
                )))
                .await;
            }
            let loaded = self.load_agents(op, scope).await?;
            let mut before = Vec::with_capacity(loaded.len());
            for (id, raw) in &loaded {
                let rec = if raw.is_empty() {
                    None
                } else {
                    Some(
                        serde_json::from_str::<AgentRecord>(raw)
                            .map_err(|e| corrupt(op, format!("agent {id:?}: {e}")))?,
                    )
                };
                before.push(rec);
            }
            let mut slots: Vec<Slot> = loaded
                .iter()
                .zip(&before)
                .map(|((id, _), r)| Slot {
                    id: id.clone(),
                    record: r.clone(),
                })
                .collect();
            let out = f(&mut slots)?;
            let mut writes = Writes::default();
            let mut team_keys: Vec<String> = Vec::new();
            let mut team_pos = |team: &str| -> usize {
                let k = team_key(team);
                let i = team_keys.iter().position(|t| *t == k).unwrap_or_else(|| {
                    team_keys.push(k);
                    team_keys.len() - 1
                });
                i + 4 // KEYS[1..3] are rec, res, leases
            };
            for (((id, raw), old), slot) in loaded.iter().zip(&before).zip(&slots) {
                let new = match &slot.record {
                    Some(r) => serde_json::to_string(r)
                        .map_err(|e| corrupt(op, format!("agent {id:?}: {e}")))?,
                    None => String::new(),
                };
                if new == *raw {
                    continue;
                }
                writes.cas.push(Cas(id, raw, new));
                let (old_leases, new_leases) =
                    (leases_of(old.as_ref()), leases_of(slot.record.as_ref()));
                for (rid, until) in &new_leases {
                    if old_leases.get(rid) != Some(until) {
                        writes
                            .res_set
                            .push(ResEntry(rid.clone(), id.clone(), until.to_string()));
                    }
                }
                for rid in old_leases.keys() {
                    if !new_leases.contains_key(rid) {
                        writes.res_del.push(rid.clone());
                    }
                }
                let (old_teams, new_teams) =
                    (teams_of(old.as_ref()), teams_of(slot.record.as_ref()));
                for t in new_teams.difference(&old_teams) {
                    writes.team_add.push(TeamEntry(team_pos(t), id.clone()));
                }
                for t in old_teams.difference(&new_teams) {
                    writes.team_del.push(TeamEntry(team_pos(t), id.clone()));
                }
            }
            if writes.cas.is_empty() {
                return Ok(out);
            }
            let payload = serde_json::to_string(&writes).map_err(|e| corrupt(op, e.to_string()))?;
            let mut inv = CAS.prepare_invoke();
            inv.key(REC).key(RES).key(LEASES);
            for k in &team_keys {
                inv.key(k);
            }
            let ok: i64 = inv
                .arg(payload)
                .invoke_async(&mut self.conn())
                .await
                .map_err(StoreError::redis(op))?;
            if ok == 1 {
                return Ok(out);
            }
        }
        Err(StoreError::AgentsContended { op })
    }

    pub(crate) async fn agent_count(&self) -> StoreResult<usize> {
        redis::cmd("HLEN")
            .arg(REC)
            .query_async(&mut self.conn())
            .await
            .map_err(StoreError::redis("agent_count"))
    }

    pub(crate) async fn post_agent_message(
        &self,
        node: &str,
        msg: &AgentMessage,
    ) -> StoreResult<()> {
        const OP: &str = "post_agent_message";
        let json = serde_json::to_string(msg).map_err(|e| corrupt(OP, e.to_string()))?;
        let ok: i64 = POST
            .key(inbox_key(node))
            .arg(json)
            .arg(INBOX_CAP)
            .arg(INBOX_TTL_MS)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis(OP))?;
        if ok == 1 {
            Ok(())
        } else {
            Err(StoreError::InboxFull {
                node: node.to_owned(),
                cap: INBOX_CAP,
            })
        }
    }

    pub(crate) async fn take_agent_messages(
        &self,
        node: &str,
        max: usize,
    ) -> StoreResult<Vec<AgentMessage>> {
        const OP: &str = "take_agent_messages";
        if max == 0 {
            return Ok(Vec::new());
        }
        let raw: Vec<String> = TAKE
            .key(inbox_key(node))
            .arg(max)
            .invoke_async(&mut self.conn())
            .await
            .map_err(StoreError::redis(OP))?;
        raw.iter()
            .map(|m| {
                serde_json::from_str(m).map_err(|e| corrupt(OP, format!("inbox of {node:?}: {e}")))
            })
            .collect()
    }
}
