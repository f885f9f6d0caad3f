//! Campaign documents: the configuration of each campaign as the API saved it, kept in the store so that every
//! engine node sharing a Redis sees the same campaigns (and a restarted node finds them again).
//!
//! The store treats a document as an opaque string (the API layer owns its format); it only offers "create if
//! absent", "replace", "read", "list" and "delete". Redis keeps every document in one hash, `dlr:campaign_docs`
//! (campaign id → document): campaign configurations are few and small, and one key makes listing them a single
//! `HGETALL`. The memory backend keeps them in a map beside its queue.

use super::error::{StoreError, StoreResult};
use super::record;
use super::{Store, redis::keys};
use redis::AsyncCommands;

impl Store {
    /// Stores the document of a new campaign; `false` (nothing written) if the campaign already has one.
    pub async fn insert_campaign_doc(&self, id: &str, doc: &str) -> StoreResult<bool> {
        record::check_campaign(id)?;
        match self {
            Store::Memory(m) => {
                let mut docs = m.docs.lock().unwrap_or_else(|p| p.into_inner());
                if docs.contains_key(id) {
                    return Ok(false);
                }
                docs.insert(id.to_string(), doc.to_string());
                Ok(true)
            }
            Store::Redis(r) => r
                .connection()
                .hset_nx(keys::CAMPAIGN_DOCS, id, doc)
                .await
                .map_err(StoreError::redis("insert_campaign_doc")),
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
                Ok(())
            }
            Store::Redis(r) => {
                let _: i64 = r
                    .connection()
                    .hset(keys::CAMPAIGN_DOCS, id, doc)
                    .await
                    .map_err(StoreError::redis("put_campaign_doc"))?;
                Ok(())
            }
        }
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
        match self {
            Store::Memory(m) => Ok(m
                .docs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id)
                .is_some()),
            Store::Redis(r) => {
                let n: i64 = r
                    .connection()
                    .hdel(keys::CAMPAIGN_DOCS, id)
                    .await
                    .map_err(StoreError::redis("delete_campaign_doc"))?;
                Ok(n > 0)
            }
        }
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
        assert!(s.delete_campaign_doc("c1").await.unwrap());
        assert!(!s.delete_campaign_doc("c1").await.unwrap());
        assert!(s.insert_campaign_doc("bad id", "{}").await.is_err());
    }
}
