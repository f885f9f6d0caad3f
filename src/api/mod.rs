//! The REST API (SPEC §8–§10): Webitel v3's `/api/v2/dialer` routes, so a client written for Webitel works
//! unchanged, plus CSV import, exports, `/healthz`, `/metrics` and the OpenAPI document.
//!
//! - [`routes`]: the route table. Each entry is both the axum handler and its documentation (method, path,
//!   required role, parameters, body, answers): the router and `/api/v2/openapi.json` ([`openapi`]) are built
//!   from the same table, so they cannot disagree.
//! - [`auth`]: keys, roles, constant-time checks (401 vs 403).
//! - [`validate`]: member validation with field paths; [`import`]: streaming CSV import (also used by
//!   `fsdialer import`).
//! - [`campaigns`]: campaign documents in the store and this node's engine kept in step with them.
//! - `routes::agents`: the agents (CRUD, status, accept/skip, the result callback), schemas in [`openapi_agents`].
//! - `routes::webhooks`: a campaign's webhook outbox and dead letters (list, replay), schemas in
//!   [`openapi_webhooks`].
//! - [`page`]: the live operator page at `/` (embedded assets, cookie login, the server-sent-events stream).
//! - [`metrics`]: the Prometheus exporter and the gauges read at scrape time.
//! - [`error`] / [`reply`] / [`views`]: the answer shapes; [`spreadsheet`]: CSV cells safe for spreadsheets.
//!
//! [`serve`] ([`server`]: connection timeouts, concurrency limit) runs the API on a listener; `fsdialer run` (see [`crate::run`]) builds the state from its
//! configuration.

pub mod auth;
pub mod campaigns;
pub mod error;
pub mod extract;
pub mod import;
pub mod metrics;
pub mod openapi;
pub mod openapi_agents;
pub mod openapi_dnc;
pub mod openapi_webhooks;
pub mod page;
pub mod reply;
pub mod routes;
pub mod server;
pub mod spreadsheet;
pub mod validate;
pub mod views;

use crate::campaign::member::MemberLimits;
use crate::engine::shell::EngineHandle;
use crate::store::Store;
use auth::Keys;
use std::sync::Arc;

/// Default largest JSON body (members, campaigns): 4 MiB.
pub const DEFAULT_MAX_BODY: usize = 4 << 20;
/// Default largest CSV import body: 2 GiB (it is streamed to a temporary file, not held in memory).
pub const DEFAULT_MAX_IMPORT: u64 = 2 << 30;
/// Default free disk space an upload must leave: 1 GiB.
pub const DEFAULT_MIN_FREE_DISK: u64 = 1 << 30;

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub keys: Keys,
    /// Largest JSON body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Largest CSV import accepted (413 beyond).
    pub max_import_bytes: u64,
    /// Free disk space an upload must leave in the temporary folder (507 otherwise).
    pub min_free_disk_bytes: u64,
    /// Serve `/metrics` without a key (for scrapers that cannot send one).
    pub metrics_public: bool,
    /// How much data one member may carry (API and CSV import).
    pub member_limits: MemberLimits,
    /// Connection and request limits (timeouts, concurrency, JSON depth).
    pub http: server::HttpLimits,
    /// The API is served over HTTPS: the page's cookies are `Secure`.
    pub https: bool,
}

impl ApiConfig {
    pub fn new(keys: Keys) -> ApiConfig {
        ApiConfig {
            keys,
            max_body_bytes: DEFAULT_MAX_BODY,
            max_import_bytes: DEFAULT_MAX_IMPORT,
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK,
            metrics_public: false,
            member_limits: MemberLimits::default(),
            http: server::HttpLimits::default(),
            https: false,
        }
    }
}

/// What every handler gets.
pub struct ApiState {
    pub store: Store,
    pub registry: campaigns::Registry,
    pub config: ApiConfig,
    pub metrics: metrics::Metrics,
    /// The process drains (a signal came): not ready for new work.
    draining: std::sync::atomic::AtomicBool,
    /// The operator page's live snapshots, computed once for every open page (`page::live`).
    pub live: page::live::Hub,
}

impl ApiState {
    pub fn new(store: Store, engine: EngineHandle, config: ApiConfig) -> Arc<ApiState> {
        Arc::new(ApiState {
            registry: campaigns::Registry::new(store.clone(), engine),
            store,
            config,
            metrics: metrics::Metrics::install(),
            draining: std::sync::atomic::AtomicBool::new(false),
            live: page::live::Hub::default(),
        })
    }

    /// The process drains: `/readyz` answers 503 from now on.
    pub fn set_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn engine(&self) -> &EngineHandle {
        self.registry.engine()
    }

    /// "Now" on the engine's clock (real time in production).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.engine().clock().now()
    }
}

pub use server::serve;
