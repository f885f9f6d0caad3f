//! Campaign documents: the configuration of each campaign as the API saved it, kept in the store so that every
//! engine node sharing a Redis sees the same campaigns (and a restarted node finds them again).
//!
//! The store treats a document as an opaque string (the API layer owns its format); it only offers "create if
//! absent", "replace", "read", "list" and "delete". Redis keeps every document in one hash, `dlr:campaign_docs`
//! (campaign id → document): campaign configurations are few and small, and one key makes listing them a single
//! `HGETALL`. The memory backend keeps them in a map beside its queue.
//!
//! Every change bumps a **generation** counter (`dlr:campaign_docs_gen`), so a node follows changes made on
//! other nodes by polling one integer (cheap enough to do several times a second) and re-reads the documents
//! only when it moved. Edits are **compare-and-set** ([`Store::replace_campaign_doc`]): the API reads a document,
//! changes it, and writes it only if nobody wrote it in between — so a stop can never be undone by an edit that
//! read the document before the stop.

use super::error::{StoreError, StoreResult};
use super::record;
use super::{Store, redis::keys};
use redis::AsyncCommands;

/// Replaces the document only if it still is the expected one (`KEYS[1]` the hash, `ARGV` id, expected, new).
const REPLACE_IF: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
";

impl Store {
    /// The generation of the campaign documents: it changes whenever any document is written or deleted.
    pub async fn campaign_docs_generation(&self) -> StoreResult<u64> {
        match self {
            Store::Memory(m) => Ok(m.docs_generation.load(std::sync::atomic::Ordering::SeqCst)),
            Store::Redis(r) => {
                let v: Option<u64> = r
                    .connection()
                    .get(keys::CAMPAIGN_DOCS_GENERATION)
                    .await
                    .map_err(StoreError::redis("campaign_docs_generation"))?;
                Ok(v.unwrap_or(0))
            }
        }
    }

    async fn bump_docs_generation(&self) -> StoreResult<()> {
        match self {
            Store::Memory(m) => {
                m.docs_generation
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Store::Redis(r) => {
                let _: i64 = r
                    .connection()
                    .incr(keys::CAMPAIGN_DOCS_GENERATION, 1)
                    .await
                    .map_err(StoreError::redis("campaign_docs_generation"))?;
                Ok(())
            }
        }
    }

    /// Replaces a campaign's document only if it still is `expected`; `false` (nothing written) if another write
    /// came in between.
    pub async fn replace_campaign_doc(
        &self,
        id: &str,
        expected: &str,
        doc: &str,
    ) -> StoreResult<bool> {
        record::check_campaign(id)?;
        let replaced = match self {
            Store::Memory(m) => {
                let mut docs = m.docs.lock().unwrap_or_else(|p| p.into_inner());
                match docs.get_mut(id) {
                    Some(current) if current == expected => {
                        *current = doc.to_string();
                        true
                    }
                    _ => false,
                }
            }
            Store::Redis(r) => {
                let n: i64 = redis::Script::new(REPLACE_IF)
                    .key(keys::CAMPAIGN_DOCS)
                    .arg(id)
                    .arg(expected)
                    .arg(doc)
                    .invoke_async(&mut r.connection())
                    .await
                    .map_err(StoreError::redis("replace_campaign_doc"))?;
                n == 1
            }
        };
        if replaced {
            self.bump_docs_generation().await?;
        }
        Ok(replaced)
    }

    /// Stores the document of a new campaign; `false` (nothing written) if the campaign already has one.
    pub async fn insert_campaign_doc(&self, id: &str, doc: &str) -> StoreResult<bool> {
        record::check_campaign(id)?;
        match self {
            Store::Memory(m) => {
                let inserted = {
                    let mut docs = m.docs.lock().unwrap_or_else(|p| p.into_inner());
                    !docs.contains_key(id) && docs.insert(id.to_string(), doc.to_string()).is_none()
                };
                if inserted {
                    self.bump_docs_generation().await?;
                }
                Ok(inserted)
            }
            Store::Redis(r) => {
                let inserted: bool = r
                    .connection()
                    .hset_nx(keys::CAMPAIGN_DOCS, id, doc)
                    .await
                    .map_err(StoreError::redis("insert_campaign_doc"))?;
                if inserted {
                    self.bump_docs_generation().await?;
                }
                Ok(inserted)
            }
        }
    }

    /// Creates or replaces a campaign's document.
    pub async fn put_campaign_doc(&self, id: &str, doc: &str) -> StoreResult<()> {
        record::check_campaign(id)?;
        match self {
            Store::Memory(m) => {
                m.docs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.to_string(), doc.to_string());
            }
            Store::Redis(r) => {
                let _: i64 = r
                    .connection()
                    .hset(keys::CAMPAIGN_DOCS, id, doc)
                    .await
                    .map_err(StoreError::redis("put_campaign_doc"))?;
            }
        }
        self.bump_docs_generation().await
    }

    /// A campaign's document, if it has one.
    pub async fn campaign_doc(&self, id: &str) -> StoreResult<Option<String>> {
        record::check_campaign(id)?;
        match self {
            Store::Memory(m) => Ok(m
                .docs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(id)
                .cloned()),
            Store::Redis(r) => r
                .connection()
                .hget(keys::CAMPAIGN_DOCS, id)
                .await
                .map_err(StoreError::redis("campaign_doc")),
        }
    }

    /// Every campaign document, by campaign id.
    pub async fn campaign_docs(&self) -> StoreResult<Vec<(String, String)>> {
        match self {
            Store::Memory(m) => Ok(m
                .docs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()),
            Store::Redis(r) => {
                let mut v: Vec<(String, String)> = r
                    .connection()
                    .hgetall(keys::CAMPAIGN_DOCS)
                    .await
                    .map_err(StoreError::redis("campaign_docs"))?;
                v.sort();
                Ok(v)
            }
        }
    }

    /// Deletes a campaign's document; `false` if it had none.
    pub async fn delete_campaign_doc(&self, id: &str) -> StoreResult<bool> {
        record::check_campaign(id)?;
        let deleted = match self {
            Store::Memory(m) => m
                .docs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id)
                .is_some(),
            Store::Redis(r) => {
                let n: i64 = r
                    .connection()
                    .hdel(keys::CAMPAIGN_DOCS, id)
                    .await
                    .map_err(StoreError::redis("delete_campaign_doc"))?;
                n > 0
            }
        };
        if deleted {
            self.bump_docs_generation().await?;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_documents_insert_once_replace_list_and_delete() {
        let s = Store::memory();
        assert!(s.insert_campaign_doc("c1", "{\"a\":1}").await.unwrap());
        assert!(!s.insert_campaign_doc("c1", "{\"a\":2}").await.unwrap());
        assert_eq!(
            s.campaign_doc("c1").await.unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        s.put_campaign_doc("c1", "{\"a\":3}").await.unwrap();
        s.put_campaign_doc("c0", "{}").await.unwrap();
        assert_eq!(
            s.campaign_docs().await.unwrap(),
            vec![
                ("c0".to_string(), "{}".to_string()),
                ("c1".to_string(), "{\"a\":3}".to_string())
            ]
        );
        let g = s.campaign_docs_generation().await.unwrap();
        assert!(
            !s.replace_campaign_doc("c1", "{\"a\":1}", "{\"b\":1}")
                .await
                .unwrap(),
            "not the current document"
        );
        assert_eq!(
            s.campaign_docs_generation().await.unwrap(),
            g,
            "a refused replace changes nothing"
        );
        assert!(
            s.replace_campaign_doc("c1", "{\"a\":3}", "{\"b\":2}")
                .await
                .unwrap()
        );
        assert_eq!(
            s.campaign_doc("c1").await.unwrap().as_deref(),
            Some("{\"b\":2}")
        );
        assert!(s.campaign_docs_generation().await.unwrap() > g);
        assert!(s.delete_campaign_doc("c1").await.unwrap());
        assert!(!s.delete_campaign_doc("c1").await.unwrap());
        assert!(s.insert_campaign_doc("bad id", "{}").await.is_err());
    }
}
