//! The store's error type: what went wrong, and where, for every operation of either backend.
//!
//! Redis failures keep the operation's name so a log line says which step failed; bad input names the member
//! (its position in the batch) and the field.

/// An error from a [`crate::store::Store`] operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A member submitted for add/update is not valid; nothing of the batch was stored.
    #[error("member #{index}: {field}: {reason}")]
    InvalidMember {
        /// Position of the member in the submitted batch (0 for single-member operations).
        index: usize,
        field: &'static str,
        reason: String,
    },
    /// A campaign name the store cannot use as a key part.
    #[error("campaign name {name:?}: {reason}")]
    InvalidCampaign { name: String, reason: String },
    /// A store URL that is not `memory://`, `redis://host:port` or `rediss://host:port` (or a bad CA file).
    #[error("store url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A parameter of a call is out of range.
    #[error("{what}: {reason}")]
    InvalidArgument { what: &'static str, reason: String },
    /// Redis refused or failed the command (connection lost, script error, out of memory...).
    #[error("redis {op}: {source}")]
    Redis {
        op: &'static str,
        #[source]
        source: redis::RedisError,
    },
    /// Connecting to a `rediss://` server failed; most often its certificate is not signed by a trusted CA.
    #[error(
        "redis connect over TLS: {source} (the server's certificate must be signed by a CA of store_ca_file, or of \
         the system's trust store without it)"
    )]
    TlsConnect {
        #[source]
        source: redis::RedisError,
    },
    /// Redis answered something this version of the store cannot read (a different layout or a bug).
    #[error("redis {op}: unexpected reply: {detail}")]
    Corrupt { op: &'static str, detail: String },
    /// An agent submitted for create/replace is not valid (the field is named).
    #[error("agent: {0}")]
    InvalidAgent(#[from] crate::agents::AgentInvalid),
    /// The store already holds the most agents it accepts.
    #[error("too many agents: at most {max}")]
    TooManyAgents { max: usize },
    /// Other nodes kept changing the same agents: the operation gave up after its retries.
    #[error("agent store {op}: the agents kept changing under concurrent writes; try again")]
    AgentsContended { op: &'static str },
    /// A node's agent inbox is full (the node is not taking its messages).
    #[error(
        "agent inbox of node {node:?} is full ({cap} messages waiting): the node is not taking them"
    )]
    InboxFull { node: String, cap: usize },
    /// A write was applied on the Redis master but fewer replicas than `store_wait_replicas` confirmed it in time:
    /// it would be lost if the master failed now. Repeating the call is safe (it answers as applied or duplicate).
    #[error(
        "redis {op}: written to the master, confirmed by {acknowledged} of {wanted} replicas in time"
    )]
    NotReplicated {
        op: &'static str,
        wanted: u32,
        acknowledged: u32,
    },
    /// The external_id of an update already belongs to another member.
    #[error("external_id {external_id:?} already belongs to member {owner}")]
    ExternalIdTaken { external_id: String, owner: u64 },
}

impl StoreError {
    pub(crate) fn redis(op: &'static str) -> impl FnOnce(redis::RedisError) -> StoreError {
        move |source| StoreError::Redis { op, source }
    }
}

/// Result alias of the store.
pub type StoreResult<T> = Result<T, StoreError>;
