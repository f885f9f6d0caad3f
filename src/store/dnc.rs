//! Do-not-call lists in the store (issue 21), shared by every node: the global list and one per campaign, each a
//! set of exact numbers and a set of prefixes, in international digits (`dnc::normalize`).
//!
//! Redis: `dlr:{dnc:global}:numbers` / `:prefixes` and `dlr:{dnc:c:<campaign>}:numbers` / `:prefixes`, plain sets;
//! a list's two sets share its hash tag (one slot on a Cluster, so one check of a list is one pipelined round
//! trip), different lists spread over the slots. A check asks `SISMEMBER` for the number and `SMISMEMBER` for each
//! of its prefixes (at most 15). Adds and removes take batches (the API's import sends 10,000 a command).
//! Export walks a set with `SSCAN` (each page bounded; an entry added or removed during the walk may be missed or
//! given twice, as `SSCAN` says).
//!
//! Memory: ordered sets, at most [`MEMORY_CAP`] entries over every list (an add past it is refused whole).

use super::error::{StoreError, StoreResult};
use super::{Store, record};
use crate::dnc::{DncHit, DncKind, DncList, NormalizedNumber, prefixes_of};
use std::collections::{BTreeSet, HashMap};

/// Most entries the memory backend keeps over every list.
pub const MEMORY_CAP: usize = 5_000_000;
/// Most entries in one page of [`Store::dnc_page`].
pub const MAX_PAGE: usize = 10_000;

/// The memory backend's lists.
#[derive(Debug, Default)]
pub(crate) struct DncBook {
    lists: HashMap<(DncList, DncKind), BTreeSet<String>>,
    total: usize,
}

/// What [`Store::dnc_change`] does to a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DncChange {
    Add,
    Remove,
}

impl DncChange {
    /// The Redis set command that makes the change.
    fn command(self) -> &'static str {
        match self {
            DncChange::Add => "SADD",
            DncChange::Remove => "SREM",
        }
    }

    /// The store operation's name in errors.
    fn op(self) -> &'static str {
        match self {
            DncChange::Add => "dnc_add",
            DncChange::Remove => "dnc_remove",
        }
    }
}

/// A list's sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DncSizes {
    pub numbers: u64,
    pub prefixes: u64,
}

/// One page of a list's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DncPage {
    /// International digits.
    pub entries: Vec<String>,
    /// Where the next page starts; `None`: this was the last.
    pub next: Option<String>,
}

fn list_tag(list: &DncList) -> StoreResult<String> {
    match list {
        DncList::Global => Ok("dnc:global".into()),
        DncList::Campaign(c) => {
            record::check_campaign(c)?;
            Ok(format!("dnc:c:{c}"))
        }
    }
}

fn key(list: &DncList, kind: DncKind) -> StoreResult<String> {
    let part = match kind {
        DncKind::Number => "numbers",
        DncKind::Prefix => "prefixes",
    };
    Ok(format!("dlr:{{{}}}:{part}", list_tag(list)?))
}

fn digits(entries: &[NormalizedNumber]) -> Vec<&str> {
    entries.iter().map(NormalizedNumber::digits).collect()
}

/// The entry of `list` that holds a number.
fn hit(list: &DncList, kind: DncKind, entry: &str) -> DncHit {
    DncHit {
        list: list.name(),
        entry: entry.to_owned(),
        kind: kind.as_str(),
    }
}

impl DncBook {
    /// Adds or removes `entries` (an add past [`MEMORY_CAP`] is refused whole); an emptied set is dropped.
    fn change(
        &mut self,
        change: DncChange,
        list: &DncList,
        kind: DncKind,
        entries: &[NormalizedNumber],
    ) -> StoreResult<u64> {
        if change == DncChange::Add && self.total + entries.len() > MEMORY_CAP {
            return Err(StoreError::InvalidArgument {
                what: "do-not-call list",
                reason: format!(
                    "the memory store keeps at most {MEMORY_CAP} entries over every list ({} held)",
                    self.total
                ),
            });
        }
        let slot = (list.clone(), kind);
        let set = self.lists.entry(slot.clone()).or_default();
        let changed = entries
            .iter()
            .filter(|e| match change {
                DncChange::Add => set.insert(e.digits().to_owned()),
                DncChange::Remove => set.remove(e.digits()),
            })
            .count();
        if set.is_empty() {
            self.lists.remove(&slot);
        }
        match change {
            DncChange::Add => self.total += changed,
            DncChange::Remove => self.total -= changed,
        }
        Ok(changed as u64)
    }

    /// The longest entry of `list` that holds `number`.
    fn lookup(&self, list: &DncList, number: &NormalizedNumber) -> Option<DncHit> {
        if let Some(set) = self.lists.get(&(list.clone(), DncKind::Number))
            && set.contains(number.digits())
        {
            return Some(hit(list, DncKind::Number, number.digits()));
        }
        let prefixes = self.lists.get(&(list.clone(), DncKind::Prefix))?;
        let best = prefixes_of(number).rfind(|p| prefixes.contains(*p))?;
        Some(hit(list, DncKind::Prefix, best))
    }
}

impl Store {
    /// Adds entries to a list; answers how many were new.
    pub async fn dnc_add(
        &self,
        list: &DncList,
        kind: DncKind,
        entries: &[NormalizedNumber],
    ) -> StoreResult<u64> {
        self.dnc_change(DncChange::Add, list, kind, entries).await
    }

    /// Removes entries from a list; answers how many were there.
    pub async fn dnc_remove(
        &self,
        list: &DncList,
        kind: DncKind,
        entries: &[NormalizedNumber],
    ) -> StoreResult<u64> {
        self.dnc_change(DncChange::Remove, list, kind, entries)
            .await
    }

    /// Adds entries to a list or removes them; answers how many were changed (new, or there).
    pub async fn dnc_change(
        &self,
        change: DncChange,
        list: &DncList,
        kind: DncKind,
        entries: &[NormalizedNumber],
    ) -> StoreResult<u64> {
        let key = key(list, kind)?;
        if entries.is_empty() {
            return Ok(0);
        }
        match self {
            Store::Memory(m) => m
                .dnc
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .change(change, list, kind, entries),
            Store::Redis(r) => redis::cmd(change.command())
                .arg(key)
                .arg(digits(entries))
                .query_async(&mut r.connection())
                .await
                .map_err(StoreError::redis(change.op())),
        }
    }

    /// Empties a list (both parts).
    pub async fn dnc_clear(&self, list: &DncList) -> StoreResult<()> {
        let (nk, pk) = (key(list, DncKind::Number)?, key(list, DncKind::Prefix)?);
        match self {
            Store::Memory(m) => {
                let mut book = m.dnc.lock().unwrap_or_else(|p| p.into_inner());
                for kind in [DncKind::Number, DncKind::Prefix] {
                    if let Some(set) = book.lists.remove(&(list.clone(), kind)) {
                        book.total -= set.len();
                    }
                }
                Ok(())
            }
            Store::Redis(r) => redis::cmd("UNLINK")
                .arg(nk)
                .arg(pk)
                .query_async::<()>(&mut r.connection())
                .await
                .map_err(StoreError::redis("dnc_clear")),
        }
    }

    /// How many numbers and prefixes a list holds.
    pub async fn dnc_sizes(&self, list: &DncList) -> StoreResult<DncSizes> {
        let (nk, pk) = (key(list, DncKind::Number)?, key(list, DncKind::Prefix)?);
        match self {
            Store::Memory(m) => {
                let book = m.dnc.lock().unwrap_or_else(|p| p.into_inner());
                let size = |kind| {
                    book.lists
                        .get(&(list.clone(), kind))
                        .map_or(0, |s| s.len() as u64)
                };
                Ok(DncSizes {
                    numbers: size(DncKind::Number),
                    prefixes: size(DncKind::Prefix),
                })
            }
            Store::Redis(r) => {
                let (numbers, prefixes): (u64, u64) = redis::pipe()
                    .scard(nk)
                    .scard(pk)
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("dnc_sizes"))?;
                Ok(DncSizes { numbers, prefixes })
            }
        }
    }

    /// Whether one list holds the number: the number itself, else its longest listed prefix.
    pub async fn dnc_lookup(
        &self,
        list: &DncList,
        number: &NormalizedNumber,
    ) -> StoreResult<Option<DncHit>> {
        let (nk, pk) = (key(list, DncKind::Number)?, key(list, DncKind::Prefix)?);
        match self {
            Store::Memory(m) => {
                let book = m.dnc.lock().unwrap_or_else(|p| p.into_inner());
                Ok(book.lookup(list, number))
            }
            Store::Redis(r) => {
                let prefixes: Vec<&str> = prefixes_of(number).collect();
                let (exact, found): (bool, Vec<bool>) = redis::pipe()
                    .sismember(nk, number.digits())
                    .cmd("SMISMEMBER")
                    .arg(pk)
                    .arg(&prefixes)
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("dnc_lookup"))?;
                if exact {
                    return Ok(Some(hit(list, DncKind::Number, number.digits())));
                }
                Ok(prefixes
                    .iter()
                    .zip(found)
                    .filter(|(_, f)| *f)
                    .map(|(p, _)| *p)
                    .next_back()
                    .map(|p| hit(list, DncKind::Prefix, p)))
            }
        }
    }

    /// Every list that holds the number for a call of `campaign`: the global list, then the campaign's (empty: the
    /// number may be called). `number` is normalised with the campaign's rule (`ValidCampaign::e164`).
    pub async fn dnc_check(
        &self,
        campaign: &str,
        number: &NormalizedNumber,
    ) -> StoreResult<Vec<DncHit>> {
        let mut hits = Vec::new();
        for list in [DncList::Global, DncList::Campaign(campaign.to_owned())] {
            if let Some(hit) = self.dnc_lookup(&list, number).await? {
                hits.push(hit);
            }
        }
        Ok(hits)
    }

    /// One page of a list's entries of one kind, from `cursor` (`None`: the start), about `count` long (at most
    /// [`MAX_PAGE`]).
    pub async fn dnc_page(
        &self,
        list: &DncList,
        kind: DncKind,
        cursor: Option<&str>,
        count: usize,
    ) -> StoreResult<DncPage> {
        let key = key(list, kind)?;
        let count = count.clamp(1, MAX_PAGE);
        match self {
            Store::Memory(m) => {
                let book = m.dnc.lock().unwrap_or_else(|p| p.into_inner());
                let Some(set) = book.lists.get(&(list.clone(), kind)) else {
                    return Ok(DncPage {
                        entries: vec![],
                        next: None,
                    });
                };
                let from = match cursor {
                    Some(c) => std::ops::Bound::Excluded(c.to_owned()),
                    None => std::ops::Bound::Unbounded,
                };
                let entries: Vec<String> = set
                    .range((from, std::ops::Bound::Unbounded))
                    .take(count)
                    .cloned()
                    .collect();
                let next = (entries.len() == count)
                    .then(|| entries.last().cloned())
                    .flatten();
                Ok(DncPage { entries, next })
            }
            Store::Redis(r) => {
                let (next, entries): (String, Vec<String>) = redis::cmd("SSCAN")
                    .arg(key)
                    .arg(cursor.unwrap_or("0"))
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("dnc_page"))?;
                Ok(DncPage {
                    entries,
                    next: (next != "0").then_some(next),
                })
            }
        }
    }
}
