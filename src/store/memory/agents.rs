//! The memory backend's agents: the records in one map behind a lock (an operation runs under it, so it is
//! atomic like the Redis compare-and-set), and each node's inbox of agent messages.
//!
//! Scopes are answered by scanning the map (a single-node store holds few agents); the Redis backend keeps
//! indexes instead.

use crate::agents::{AgentMessage, AgentRecord};
use crate::store::agents::{INBOX_CAP, Scope, Slot};
use crate::store::error::{StoreError, StoreResult};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// Agents and inboxes of the memory store.
#[derive(Debug, Default)]
pub struct AgentBook {
    records: Mutex<BTreeMap<String, AgentRecord>>,
    /// Node → its messages, oldest first; an emptied inbox is removed.
    inbox: Mutex<HashMap<String, VecDeque<AgentMessage>>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AgentBook {
    pub(crate) fn transact<T>(
        &self,
        scope: Scope<'_>,
        mut f: impl FnMut(&mut [Slot]) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut map = locked(&self.records);
        let ids: Vec<String> = match scope {
            Scope::Ids(ids) => ids.to_vec(),
            Scope::Team(team) => map
                .values()
                .filter(|r| r.agent.level_in(team).is_some())
                .map(|r| r.agent.id.clone())
                .collect(),
            Scope::Reservations(rids) => map
                .values()
                .filter(|r| rids.iter().any(|id| r.holds(*id)))
                .map(|r| r.agent.id.clone())
                .collect(),
            Scope::Expired { now, .. } => map
                .values()
                .filter(|r| r.reservations.iter().any(|h| h.lease_until <= now))
                .map(|r| r.agent.id.clone())
                .collect(),
            Scope::All => map.keys().cloned().collect(),
        };
        let mut slots: Vec<Slot> = ids
            .into_iter()
            .map(|id| Slot {
                record: map.get(&id).cloned(),
                id,
            })
            .collect();
        let out = f(&mut slots)?;
        for s in slots {
            match s.record {
                Some(r) => {
                    map.insert(s.id, r);
                }
                None => {
                    map.remove(&s.id);
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn count(&self) -> usize {
        locked(&self.records).len()
    }

    pub(crate) fn post(&self, node: &str, msg: &AgentMessage) -> StoreResult<()> {
        let mut inbox = locked(&self.inbox);
        let q = inbox.entry(node.to_owned()).or_default();
        if q.len() >= INBOX_CAP {
            return Err(StoreError::InboxFull {
                node: node.to_owned(),
                cap: INBOX_CAP,
            });
        }
        q.push_back(msg.clone());
        Ok(())
    }

    pub(crate) fn take(&self, node: &str, max: usize) -> Vec<AgentMessage> {
        let mut inbox = locked(&self.inbox);
        let Some(q) = inbox.get_mut(node) else {
            return Vec::new();
        };
        let out: Vec<AgentMessage> = q.drain(..max.min(q.len())).collect();
        if q.is_empty() {
            inbox.remove(node);
        }
        out
    }
}
