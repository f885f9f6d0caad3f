//! The memory backend's webhook outbox: the same structures and rules as the Redis scripts in `outbox/redis.rs`
//! (markers, deliveries, ordered chains, due heads, bounded dead letters), one campaign per [`CampaignOutbox`].

use super::{
    DEAD_CAP, DeadPage, DeliveryRecord, EnqueueGroup, MARKER_CAP, OUTBOX_CAP, OutboxCounts,
    PendingMarker, Settle,
};
use crate::store::error::{StoreError, StoreResult};
use crate::store::types::{AttemptId, MemberId, from_ms, ms};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// Every campaign's outbox.
#[derive(Debug, Default)]
pub(crate) struct MemoryOutbox(Mutex<HashMap<String, CampaignOutbox>>);

impl MemoryOutbox {
    pub(super) fn lock(&self) -> OutboxGuard<'_> {
        OutboxGuard(self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Drops a campaign's outbox (the campaign is deleted).
    pub(crate) fn forget(&self, campaign: &str) {
        self.lock().0.remove(campaign);
    }
}

pub(super) struct OutboxGuard<'a>(MutexGuard<'a, HashMap<String, CampaignOutbox>>);

/// One campaign's outbox.
#[derive(Debug, Default)]
pub(crate) struct CampaignOutbox {
    /// attempt → (member, since ms).
    markers: HashMap<AttemptId, (u64, i64)>,
    deliveries: HashMap<String, DeliveryRecord>,
    chains: HashMap<String, VecDeque<String>>,
    /// chain → when its head may be tried (ms).
    due: HashMap<String, i64>,
    dead: HashMap<String, DeliveryRecord>,
    /// (dead-at ms, id), oldest first.
    dead_order: BTreeMap<(i64, String), ()>,
}

impl CampaignOutbox {
    fn push(&mut self, rec: DeliveryRecord, now: i64) {
        let chain = rec.chain();
        let q = self.chains.entry(chain.clone()).or_default();
        q.push_back(rec.id.clone());
        if q.len() == 1 {
            self.due.insert(chain, now);
        }
        self.deliveries.insert(rec.id.clone(), rec);
    }

    fn bury(&mut self, rec: DeliveryRecord, at: i64) {
        self.dead_order.insert((at, rec.id.clone()), ());
        self.dead.insert(rec.id.clone(), rec);
        while self.dead.len() > DEAD_CAP {
            let Some(((_, id), ())) = self.dead_order.pop_first() else {
                break;
            };
            self.dead.remove(&id);
        }
    }

    /// The chain's head is done (delivered or dead): the next one is due now.
    fn pop_head(&mut self, chain: &str, now: i64) {
        let Some(q) = self.chains.get_mut(chain) else {
            return;
        };
        q.pop_front();
        if q.is_empty() {
            self.chains.remove(chain);
            self.due.remove(chain);
        } else {
            self.due.insert(chain.to_owned(), now);
        }
    }
}

impl OutboxGuard<'_> {
    fn campaign(&mut self, campaign: &str) -> &mut CampaignOutbox {
        self.0.entry(campaign.to_owned()).or_default()
    }

    pub(super) fn mark(
        &mut self,
        campaign: &str,
        attempts: &[(AttemptId, MemberId)],
        now: i64,
    ) -> StoreResult<()> {
        let c = self.campaign(campaign);
        if c.markers.len() + attempts.len() > MARKER_CAP {
            return Err(StoreError::InvalidArgument {
                what: "webhook marker",
                reason: format!("too many pending (at most {MARKER_CAP})"),
            });
        }
        for (attempt, member) in attempts {
            c.markers.entry(*attempt).or_insert((member.0, now));
        }
        Ok(())
    }

    pub(super) fn enqueue(&mut self, campaign: &str, groups: &[EnqueueGroup], now: i64) -> usize {
        let c = self.campaign(campaign);
        let mut queued = 0;
        for g in groups {
            if let Some(m) = g.marker
                && c.markers.remove(&m).is_none()
            {
                continue;
            }
            for d in &g.deliveries {
                if c.deliveries.contains_key(&d.id) || c.dead.contains_key(&d.id) {
                    continue;
                }
                if c.deliveries.len() >= OUTBOX_CAP {
                    let mut rec = d.clone();
                    rec.last_error = Some("outbox full".into());
                    rec.dead_at_ms = Some(now);
                    c.bury(rec, now);
                } else {
                    c.push(d.clone(), now);
                    queued += 1;
                }
            }
        }
        queued
    }

    pub(super) fn markers(&mut self, campaign: &str) -> Vec<PendingMarker> {
        self.campaign(campaign)
            .markers
            .iter()
            .map(|(a, (m, since))| PendingMarker {
                attempt: *a,
                member: MemberId(*m),
                since: from_ms(*since),
            })
            .collect()
    }

    pub(super) fn drop_marker(&mut self, campaign: &str, attempt: AttemptId) {
        self.campaign(campaign).markers.remove(&attempt);
    }

    pub(super) fn take(
        &mut self,
        campaign: &str,
        now: i64,
        lease_ms: i64,
        max: usize,
    ) -> Vec<DeliveryRecord> {
        let c = self.campaign(campaign);
        let mut ready: Vec<(i64, String)> = c
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(chain, at)| (*at, chain.clone()))
            .collect();
        ready.sort();
        ready.truncate(max);
        let mut out = Vec::with_capacity(ready.len());
        for (_, chain) in ready {
            let head = c.chains.get(&chain).and_then(|q| q.front()).cloned();
            match head.and_then(|id| c.deliveries.get(&id).cloned()) {
                Some(rec) => {
                    c.due.insert(chain, now.saturating_add(lease_ms));
                    out.push(rec);
                }
                None => c.pop_head(&chain, now),
            }
        }
        out
    }

    pub(super) fn settle(
        &mut self,
        campaign: &str,
        rec: &DeliveryRecord,
        settle: &Settle,
        now: i64,
    ) -> bool {
        let c = self.campaign(campaign);
        let chain = rec.chain();
        if c.chains.get(&chain).and_then(|q| q.front()) != Some(&rec.id) {
            return false;
        }
        match settle {
            Settle::RetryAt(at) => {
                c.deliveries.insert(rec.id.clone(), rec.clone());
                c.due.insert(chain, ms(*at));
            }
            Settle::Delivered => {
                c.deliveries.remove(&rec.id);
                c.pop_head(&chain, now);
            }
            Settle::Dead => {
                c.deliveries.remove(&rec.id);
                c.bury(rec.clone(), now);
                c.pop_head(&chain, now);
            }
        }
        true
    }

    pub(super) fn dead(&mut self, campaign: &str, offset: usize, limit: usize) -> DeadPage {
        let c = self.campaign(campaign);
        let items = c
            .dead_order
            .keys()
            .rev()
            .skip(offset)
            .take(limit)
            .filter_map(|(_, id)| c.dead.get(id).cloned())
            .collect();
        DeadPage {
            total: c.dead.len() as u64,
            items,
        }
    }

    pub(super) fn replay(&mut self, campaign: &str, id: &str, now: i64) -> bool {
        let c = self.campaign(campaign);
        let Some(mut rec) = c.dead.remove(id) else {
            return false;
        };
        if let Some(at) = rec.dead_at_ms {
            c.dead_order.remove(&(at, rec.id.clone()));
        }
        super::reset_for_replay(&mut rec);
        c.push(rec, now);
        true
    }

    pub(super) fn counts(&mut self, campaign: &str) -> OutboxCounts {
        let c = self.campaign(campaign);
        OutboxCounts {
            markers: c.markers.len() as u64,
            queued: c.deliveries.len() as u64,
            dead: c.dead.len() as u64,
        }
    }
}
