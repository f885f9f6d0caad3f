//! fsdialer: an outbound auto-dialer engine for FreeSWITCH.
//!
//! The crate is organised by concern, following `ARCHITECTURE.md`:
//! - [`esl`]: the FreeSWITCH Event Socket protocol (sans-IO frame parser, event decoding, async client).
//! - [`sim`]: a simulated FreeSWITCH that speaks real ESL, for tests, the demo and load benchmarks.
//! - [`store`]: the member queue (Redis sorted sets + Lua, and an in-process twin).
//! - [`campaign`]: campaign configuration, validation, calendar math, cause table, callflow AST.
//! - [`engine`]: the dialing state machine and the async shell that wires it to IO.
//! - [`agents`]: the agents of preview and progressive campaigns: model, rules, strategies, figures.
//! - [`api`]: the REST API (Webitel v3 compatible), CSV import, metrics.
//! - [`load`]: `fsdialer load`: a load generator for FreeSWITCH deployments (the engine's originate, pacing and ESL
//!   client; HDR latency figures; no store).
//! - [`run`]: `fsdialer run`: the production configuration file and start-up.
//! - [`logging`]: what logs may contain (no secrets; phone numbers masked unless allowed).
//! - [`text`]: how input is quoted back in error messages (a short prefix only).
//! - [`tls`]: TLS material of the encrypted transports (`rediss://` store, HTTPS API): provider, PEM files.

pub mod agents;
pub mod api;
pub mod campaign;
pub mod dnc;
pub mod engine;
pub mod esl;
pub mod load;
pub mod logging;
pub mod run;
pub mod sim;
pub mod store;
pub mod text;
pub mod tls;
pub mod webhooks;
