//! The campaigns the API manages: their documents in the store, and keeping this node's engine in step with them.
//!
//! A campaign created or changed through the API is saved in the store ([`Store::put_campaign_doc`]: on Redis
//! one hash shared by every node), then applied to the local engine at once. Other nodes sharing the store pick
//! the change up with [`Registry::sync`], which `fsdialer run` calls every few seconds; a restarted node finds its
//! campaigns the same way. The document is `{"config": <campaign as in SPEC §2>, "run": bool, "updated_at": ...}`;
//! `run` is the operator's last command (run = 1 / stop = 3, or `autoRun`), so every node runs or stops the
//! campaign alike and a restarted node resumes what was running.

use super::error::ApiError;
use crate::campaign::config::{CampaignConfig, ValidCampaign};
use crate::engine::shell::EngineHandle;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignDoc {
    pub config: CampaignConfig,
    /// The operator's last command: run (true) or stop (false).
    #[serde(default)]
    pub run: bool,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write: the document's version (edits are compare-and-set on the stored document).
    #[serde(default)]
    pub version: u64,
}

impl CampaignDoc {
    pub fn id(&self) -> &str {
        self.config.id.as_deref().unwrap_or_default()
    }
}

/// Why a stored document could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the engine is not running")]
    Engine,
}

struct Applied {
    text: String,
    run: bool,
}

/// The campaign registry of one node.
pub struct Registry {
    store: Store,
    engine: EngineHandle,
    /// What this node's engine was last given, per campaign. Held while writing and applying so two changes of
    /// the same node cannot interleave.
    applied: tokio::sync::Mutex<HashMap<String, Applied>>,
}

fn parse_doc(id: &str, text: &str) -> Result<(CampaignDoc, ValidCampaign), String> {
    let doc: CampaignDoc =
        serde_json::from_str(text).map_err(|e| format!("campaign {id}: stored document: {e}"))?;
    let valid = doc
        .config
        .validate()
        .map_err(|e| format!("campaign {id}: stored configuration: {e}"))?;
    Ok((doc, valid))
}

impl Registry {
    pub fn new(store: Store, engine: EngineHandle) -> Registry {
        Registry {
            store,
            engine,
            applied: tokio::sync::Mutex::default(),
        }
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    /// Every campaign, by id. Documents that no longer validate are skipped with a warning.
    pub async fn list(&self) -> Result<Vec<CampaignDoc>, ApiError> {
        let mut out = Vec::new();
        for (id, text) in self.store.campaign_docs().await? {
            match parse_doc(&id, &text) {
                Ok((doc, _)) => out.push(doc),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable campaign"),
            }
        }
        Ok(out)
    }

    /// 404 unless the campaign exists (one store lookup, no parsing: member routes call it on every request).
    pub async fn require(&self, id: &str) -> Result<(), ApiError> {
        match self.store.campaign_doc(id).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) | Err(StoreError::InvalidCampaign { .. }) => Err(not_found(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// One campaign, or 404.
    pub async fn get(&self, id: &str) -> Result<CampaignDoc, ApiError> {
        self.get_with_text(id).await.map(|(doc, _)| doc)
    }

    /// Creates a campaign (409 if the id exists) and gives it to the engine.
    pub async fn create(&self, config: CampaignConfig) -> Result<CampaignDoc, ApiError> {
        let valid = config.validate()?;
        let id = valid.id().to_owned();
        let doc = CampaignDoc {
            config,
            run: false,
            updated_at: Utc::now(),
            version: 1,
        };
        let text = to_text(&doc)?;
        let mut applied = self.applied.lock().await;
        if !self.store.insert_campaign_doc(&id, &text).await? {
            return Err(ApiError::conflict(format!(
                "campaign {id:?} already exists"
            )));
        }
        self.apply(&mut applied, &id, text, &doc, valid)
            .await
            .map_err(|_| ApiError::from(crate::engine::shell::EngineStopped))?;
        Ok(doc)
    }

    /// Saves a campaign (new or replacing its document, as a configuration file does) and applies it.
    pub async fn put(&self, doc: CampaignDoc) -> Result<(), ApiError> {
        let valid = doc.config.validate()?;
        let id = valid.id().to_owned();
        let text = to_text(&doc)?;
        let mut applied = self.applied.lock().await;
        self.store.put_campaign_doc(&id, &text).await?;
        self.apply(&mut applied, &id, text, &doc, valid)
            .await
            .map_err(|_| ApiError::from(crate::engine::shell::EngineStopped))
    }

    /// Changes a campaign's document with `f` (read, change, validate, save if unchanged since the read, apply).
    /// A write by anyone else in between (a stop on another node, another edit) makes it read again and apply `f`
    /// to the newer document, so no concurrent change is ever undone.
    pub async fn modify(
        &self,
        id: &str,
        mut f: impl FnMut(&mut CampaignDoc) -> Result<(), ApiError>,
    ) -> Result<CampaignDoc, ApiError> {
        for _ in 0..CAS_TRIES {
            let (mut doc, read) = self.get_with_text(id).await?;
            f(&mut doc)?;
            if doc.id() != id {
                return Err(ApiError::unprocessable(format!(
                    "id: {:?} differs from the campaign in the path ({id:?}); a campaign's id cannot change",
                    doc.id()
                )));
            }
            if let Some(doc) = self.write_if_unchanged(id, &read, doc).await? {
                return Ok(doc);
            }
        }
        Err(ApiError::conflict(format!(
            "campaign {id:?} kept changing while this edit was applied; retry"
        )))
    }

    /// Writes `doc` (its version bumped) if the stored document still is `read`, and applies it; `None` if
    /// another write came in between.
    async fn write_if_unchanged(
        &self,
        id: &str,
        read: &str,
        mut doc: CampaignDoc,
    ) -> Result<Option<CampaignDoc>, ApiError> {
        let valid = doc.config.validate()?;
        doc.updated_at = Utc::now();
        doc.version += 1;
        let text = to_text(&doc)?;
        let mut applied = self.applied.lock().await;
        if !self.store.replace_campaign_doc(id, read, &text).await? {
            return Ok(None);
        }
        self.apply(&mut applied, id, text, &doc, valid)
            .await
            .map_err(|_| ApiError::from(crate::engine::shell::EngineStopped))?;
        Ok(Some(doc))
    }

    /// One campaign and the stored text it was read from, or 404.
    async fn get_with_text(&self, id: &str) -> Result<(CampaignDoc, String), ApiError> {
        let text = self
            .store
            .campaign_doc(id)
            .await
            .map_err(|e| match e {
                StoreError::InvalidCampaign { .. } => not_found(id),
                e => e.into(),
            })?
            .ok_or_else(|| not_found(id))?;
        let doc = parse_doc(id, &text)
            .map(|(d, _)| d)
            .map_err(ApiError::internal)?;
        Ok((doc, text))
    }

    /// Deletes a campaign: refused (409) while it has calls in progress; its members and results go too.
    pub async fn delete(&self, id: &str) -> Result<(), ApiError> {
        self.get(id).await?;
        let counts = self.store.counts(id).await?;
        if counts.active > 0 {
            return Err(ApiError::conflict(format!(
                "campaign {id:?} has {} calls in progress; stop it (PUT /api/v2/dialer/{id}/state/3) and retry when they end",
                counts.active
            )));
        }
        let mut applied = self.applied.lock().await;
        self.store.delete_campaign_doc(id).await?;
        applied.remove(id);
        // Stopped and forgotten by the engine (at once: it has no call in progress).
        self.engine.remove(id).await?;
        self.store.drop_campaign(id).await?;
        Ok(())
    }

    async fn apply(
        &self,
        applied: &mut HashMap<String, Applied>,
        id: &str,
        text: String,
        doc: &CampaignDoc,
        valid: ValidCampaign,
    ) -> Result<(), SyncError> {
        let prev = applied.get(id);
        let changed = prev.is_none_or(|p| p.text != text);
        let was_running = prev.is_some_and(|p| p.run);
        tracing::debug!(
            campaign = id,
            changed,
            was_running,
            run = doc.run,
            version = doc.version,
            "applying a campaign"
        );
        if changed {
            self.engine
                .upsert(Arc::new(valid))
                .await
                .map_err(|_| SyncError::Engine)?;
        }
        if doc.run && (!was_running || prev.is_none()) {
            self.engine.run(id).await.map_err(|_| SyncError::Engine)?;
        } else if !doc.run && was_running {
            self.engine.stop(id).await.map_err(|_| SyncError::Engine)?;
        }
        applied.insert(id.to_string(), Applied { text, run: doc.run });
        Ok(())
    }

    /// Brings this node's engine in step with the stored documents: new and changed campaigns are given to it,
    /// run/stop commands of other nodes are followed, deleted campaigns are stopped. Returns how many campaigns
    /// changed.
    pub async fn sync(&self) -> Result<usize, SyncError> {
        let mut applied = self.applied.lock().await;
        let docs = self.store.campaign_docs().await?;
        let mut changed = 0;
        for (id, text) in &docs {
            if applied.get(id).is_some_and(|a| &a.text == text) {
                continue;
            }
            match parse_doc(id, text) {
                Ok((doc, valid)) => {
                    self.apply(&mut applied, id, text.clone(), &doc, valid)
                        .await?;
                    changed += 1;
                }
                Err(e) => tracing::warn!(error = %e, "not applying an unreadable campaign"),
            }
        }
        let gone: Vec<String> = applied
            .keys()
            .filter(|id| !docs.iter().any(|(d, _)| d == *id))
            .cloned()
            .collect();
        for id in gone {
            applied.remove(&id);
            // Deleted on another node: stopped here, forgotten once its calls here are over.
            self.engine
                .remove(&id)
                .await
                .map_err(|_| SyncError::Engine)?;
            changed += 1;
        }
        Ok(changed)
    }

    /// Sets the operator's run/stop command. Running a campaign whose stored command already is "run" (an
    /// `autoRun` with every added member) does not rewrite the document: this node's engine is told to run (a
    /// done campaign with new members starts again) and the other nodes keep what they have.
    pub async fn set_run(&self, id: &str, run: bool) -> Result<CampaignDoc, ApiError> {
        for _ in 0..CAS_TRIES {
            let (mut doc, read) = self.get_with_text(id).await?;
            if run && doc.run {
                self.engine.run(id).await?;
                return Ok(doc);
            }
            doc.run = run;
            if let Some(doc) = self.write_if_unchanged(id, &read, doc).await? {
                return Ok(doc);
            }
        }
        Err(ApiError::conflict(format!(
            "campaign {id:?} kept changing while its state was set; retry"
        )))
    }

    /// Follows changes made on other nodes within about `interval`: polls the store's document generation and
    /// syncs when it moved (and every `full_every` anyway). Runs until the task is dropped.
    pub async fn follow(&self, interval: std::time::Duration, full_every: std::time::Duration) {
        let mut seen: Option<u64> = None;
        let mut last_full = std::time::Instant::now();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let generation = match self.store.campaign_docs_generation().await {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the campaign generation; retrying");
                    continue;
                }
            };
            if seen == Some(generation) && last_full.elapsed() < full_every {
                continue;
            }
            tracing::debug!(generation, ?seen, "campaign documents moved: syncing");
            match self.sync().await {
                Ok(changed) => {
                    if changed > 0 {
                        tracing::info!(changed, generation, "followed campaign changes");
                    }
                    seen = Some(generation);
                    last_full = std::time::Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "campaign sync failed; retrying"),
            }
        }
    }
}

/// How many times an edit is re-read and re-applied when others keep writing the same campaign.
const CAS_TRIES: usize = 20;

fn to_text(doc: &CampaignDoc) -> Result<String, ApiError> {
    serde_json::to_string(doc).map_err(|e| ApiError::internal(format!("campaign document: {e}")))
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("campaign {id:?} not found"))
}
