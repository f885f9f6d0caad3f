//! How the Redis store reaches Redis: one server (`redis://`, `rediss://`), a Sentinel-watched master
//! (`redis+sentinel://host:port,host:port/mastername`) or a Redis Cluster (`redis+cluster://host:port,host:port`,
//! seed nodes). The store's code talks to a [`StoreConnection`] and does not know which: every command it sends
//! names keys of one slot (a campaign's hash tag, a gateway's, or one global key), so the cluster client routes each
//! to the shard owning it, and the Sentinel connection sends everything to the master Sentinel names.
//!
//! The Sentinel connection keeps one multiplexed connection to the current master and forgets it on any error that
//! says the master is gone or demoted (I/O, timeout, refused connection, `READONLY`, or any error after which
//! redis-rs says the connection must be replaced); the next command asks the Sentinels again, so after a fail-over
//! commands reach the new master without a restart. The command that met the error fails (the caller retries it:
//! the scripts are idempotent under retries, see `claim.lua`).
//!
//! Only a master is ever used, reads included (a replica serves reads, possibly stale or, while it resyncs, of a
//! partial data set): every new connection is checked with `ROLE` before its first command, and a connection in use
//! is checked again once [`ROLE_RECHECK`] passed since its last check, before the command that follows, so a server
//! demoted under an open connection (a `REPLICAOF` that kept its clients) is left within that time. A server that
//! answers as a replica is dropped and the master asked for again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

use crate::store::error::{StoreError, StoreResult};

/// How long a connection attempt and a reply may take.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The Redis deployment a store URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// `redis://` or `rediss://`: one server (the URL as redis-rs reads it).
    Single { url: String },
    /// `redis+sentinel://[user:password@]host:port,host:port/mastername`: the master the Sentinels name; the
    /// credentials are the data nodes' (the Sentinels are reached without).
    Sentinel {
        sentinels: Vec<HostPort>,
        master: String,
        credentials: Credentials,
    },
    /// `redis+cluster://[user:password@]host:port,host:port`: a Redis Cluster found from these seed nodes.
    Cluster {
        seeds: Vec<HostPort>,
        credentials: Credentials,
    },
}

/// A `host:port` of a multi-host URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// The `user:password@` of a multi-host URL (both optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The URL schemes of multi-host deployments.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// Reads a store URL naming Redis (see [`RedisTarget`]); `Err` is the reason it is refused.
pub fn parse_target(url: &str) -> Result<RedisTarget, String> {
    if let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) {
        let (credentials, rest) = split_credentials(rest)?;
        let (hosts, master) = rest
            .split_once('/')
            .ok_or("a Sentinel URL ends with /mastername (the name the Sentinels monitor)")?;
        if master.is_empty() || master.contains(['/', '?', '#']) {
            return Err(format!(
                "master name {master:?} is empty or not a plain name"
            ));
        }
        Ok(RedisTarget::Sentinel {
            sentinels: host_list(hosts)?,
            master: master.to_string(),
            credentials,
        })
    } else if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
        let (credentials, rest) = split_credentials(rest)?;
        let hosts = rest.strip_suffix('/').unwrap_or(rest);
        if hosts.contains(['/', '?', '#']) {
            return Err(
                "a Cluster URL names seed nodes only (no database, path or options)".into(),
            );
        }
        Ok(RedisTarget::Cluster {
            seeds: host_list(hosts)?,
            credentials,
        })
    } else if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(RedisTarget::Single {
            url: url.to_string(),
        })
    } else {
        Err(format!(
            "not a Redis URL (redis://, rediss://, {SENTINEL_SCHEME}, {CLUSTER_SCHEME})"
        ))
    }
}

fn split_credentials(rest: &str) -> Result<(Credentials, &str), String> {
    let Some((user_info, hosts)) = rest.rsplit_once('@') else {
        return Ok((Credentials::default(), rest));
    };
    let (user, password) = match user_info.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (user_info, None),
    };
    let decode = |s: &str| -> Result<String, String> {
        percent_decode(s).ok_or_else(|| "the user or password has a bad %-escape".to_string())
    };
    Ok((
        Credentials {
            username: (!user.is_empty()).then(|| decode(user)).transpose()?,
            password: password.filter(|p| !p.is_empty()).map(decode).transpose()?,
        },
        hosts,
    ))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn host_list(hosts: &str) -> Result<Vec<HostPort>, String> {
    let list = hosts
        .split(',')
        .map(|h| {
            let (host, port) = h
                .rsplit_once(':')
                .ok_or_else(|| format!("{h:?} is not host:port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(format!("{h:?} has no host"));
            }
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{h:?}: the port is not a number from 1 to 65535"))?;
            Ok(HostPort {
                host: host.to_string(),
                port,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(list)
}

/// The store's connection to Redis, whatever the deployment. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub enum StoreConnection {
    Single(ConnectionManager),
    Sentinel(SentinelConnection),
    Cluster(ClusterConnection),
    /// Sends every script twice (tests of scripts under resends, `redis/resend.rs`).
    #[cfg(test)]
    Resending(super::resend::Resending),
}

impl StoreConnection {
    /// Connects to a Sentinel-watched master or a cluster (`Single` is built by the caller, which knows TLS).
    pub async fn connect_multi(target: &RedisTarget) -> Result<StoreConnection, StoreError> {
        let connect_err = |source| StoreError::Redis {
            op: "connect",
            source,
        };
        match target {
            RedisTarget::Single { .. } => Err(StoreError::InvalidUrl {
                url: String::new(),
                reason: "one server is connected by RedisStore::connect_with".into(),
            }),
            RedisTarget::Sentinel {
                sentinels,
                master,
                credentials,
            } => {
                let conn =
                    SentinelConnection::new(sentinels, master, credentials).map_err(connect_err)?;
                // Fails now, not at the first command, when no Sentinel knows the master.
                conn.master().await.map_err(connect_err)?;
                Ok(StoreConnection::Sentinel(conn))
            }
            RedisTarget::Cluster { seeds, credentials } => {
                let mut builder = redis::cluster::ClusterClientBuilder::new(
                    seeds
                        .iter()
                        .map(|s| redis::ConnectionAddr::Tcp(s.host.clone(), s.port))
                        .collect::<Vec<_>>(),
                )
                .connection_timeout(CONNECTION_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                // A fail-over takes the cluster a few seconds (node timeout + election): the client's own
                // retries, which refresh the slot map, span that.
                .retries(8)
                .min_retry_wait(100)
                .max_retry_wait(2000);
                if let Some(u) = &credentials.username {
                    builder = builder.username(u);
                }
                if let Some(p) = &credentials.password {
                    builder = builder.password(p);
                }
                let client = builder.build().map_err(connect_err)?;
                let conn = client.get_async_connection().await.map_err(connect_err)?;
                Ok(StoreConnection::Cluster(conn))
            }
        }
    }

    /// Whether this is a cluster connection (commands without keys then need an explicit route).
    pub fn cluster(&mut self) -> Option<&mut ClusterConnection> {
        match self {
            StoreConnection::Cluster(c) => Some(c),
            _ => None,
        }
    }
}

impl ConnectionLike for StoreConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            StoreConnection::Single(c) => c.req_packed_command(cmd),
            StoreConnection::Sentinel(c) => c.req_packed_command(cmd),
            StoreConnection::Cluster(c) => c.req_packed_command(cmd),
            #[cfg(test)]
            StoreConnection::Resending(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            StoreConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            StoreConnection::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            StoreConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(test)]
            StoreConnection::Resending(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            StoreConnection::Single(c) => c.get_db(),
            StoreConnection::Sentinel(c) => c.get_db(),
            StoreConnection::Cluster(c) => c.get_db(),
            #[cfg(test)]
            StoreConnection::Resending(c) => c.get_db(),
        }
    }
}

/// How long a Sentinel connection is used before its server is asked again whether it is still the master.
pub const ROLE_RECHECK: Duration = Duration::from_secs(1);

/// The connection to the master in use and when its role was last confirmed.
#[derive(Clone)]
struct Checked {
    conn: MultiplexedConnection,
    at: Instant,
}

/// A connection to the master the Sentinels name, found again after a fail-over (see the module doc).
#[derive(Clone)]
pub struct SentinelConnection {
    client: Arc<tokio::sync::Mutex<SentinelClient>>,
    current: Arc<Mutex<Option<Checked>>>,
    config: AsyncConnectionConfig,
}

/// Whether a `ROLE` reply is a master's.
fn is_master(role: &[Value]) -> bool {
    matches!(role.first(), Some(Value::BulkString(r)) if r == b"master")
}

fn not_master() -> RedisError {
    RedisError::from((
        ErrorKind::Server(redis::ServerErrorKind::ReadOnly),
        "the server the Sentinels name is not a master (yet)",
    ))
}

impl SentinelConnection {
    fn new(
        sentinels: &[HostPort],
        master: &str,
        credentials: &Credentials,
    ) -> redis::RedisResult<SentinelConnection> {
        let mut builder = SentinelClientBuilder::new(
            sentinels
                .iter()
                .map(|s| redis::ConnectionAddr::Tcp(s.host.clone(), s.port)),
            master,
            SentinelServerType::Master,
        )?;
        if let Some(u) = &credentials.username {
            builder = builder.set_client_to_redis_username(u);
        }
        if let Some(p) = &credentials.password {
            builder = builder.set_client_to_redis_password(p);
        }
        Ok(SentinelConnection {
            client: Arc::new(tokio::sync::Mutex::new(builder.build()?)),
            current: Arc::default(),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT)),
        })
    }

    fn cached(&self) -> Option<Checked> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn forget(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The connection to the current master: the cached one (its role confirmed again when [`ROLE_RECHECK`]
    /// passed), or a new one to the master the Sentinels name now, once it answered `ROLE` as a master.
    async fn master(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(c) = self.cached() {
            if c.at.elapsed() < ROLE_RECHECK {
                return Ok(c.conn);
            }
            match redis::cmd("ROLE")
                .query_async::<Vec<Value>>(&mut c.conn.clone())
                .await
            {
                Ok(role) if is_master(&role) => {
                    let mut g = self.current.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(cur) = g.as_mut() {
                        cur.at = Instant::now();
                    }
                    return Ok(c.conn);
                }
                Ok(_) => {
                    tracing::warn!(
                        "store: the server in use is a replica now; asking the Sentinels again"
                    );
                    self.forget();
                }
                Err(e) => {
                    self.after_error(&e);
                    return Err(e);
                }
            }
        }
        let mut client = self.client.lock().await;
        // Another command may have connected while this one waited for the lock.
        if let Some(c) = self.cached() {
            return Ok(c.conn);
        }
        let conn = client
            .get_async_connection_with_config(&self.config)
            .await?;
        // The address a Sentinel gives may still be the old master, now a replica: refuse it until promoted.
        let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut conn.clone()).await?;
        if !is_master(&role) {
            return Err(not_master());
        }
        tracing::info!("store: connected to the master the Sentinels name");
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Checked {
            conn: conn.clone(),
            at: Instant::now(),
        });
        Ok(conn)
    }

    /// Forgets the master after an error saying it is gone or no longer the master.
    fn after_error(&self, e: &RedisError) {
        let gone = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error()
            || e.kind() == ErrorKind::Server(redis::ServerErrorKind::ReadOnly);
        if gone {
            tracing::warn!(error = %e, "store: master lost; asking the Sentinels again");
            self.forget();
        }
    }
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut conn = self.master().await?;
            let out = conn.req_packed_command(cmd).await;
            if let Err(e) = &out {
                self.after_error(e);
            }
            out
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut conn = self.master().await?;
            let out = conn.req_packed_commands(pipeline, offset, count).await;
            if let Err(e) = &out {
                self.after_error(e);
            }
            out
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// Whether a URL names a multi-host deployment (the schemes [`StoreConnection::connect_multi`] serves).
pub fn is_multi_host(url: &str) -> bool {
    url.starts_with(SENTINEL_SCHEME) || url.starts_with(CLUSTER_SCHEME)
}

/// Checks a store URL naming Redis, with the reason when it is refused.
pub fn check_url(url: &str) -> StoreResult<RedisTarget> {
    parse_target(url).map_err(|reason| StoreError::InvalidUrl {
        url: crate::logging::redact_url(url).into_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn sentinel_url_names_the_sentinels_and_the_master() {
        assert_eq!(
            parse_target("redis+sentinel://app:s%40cret@h1:26379,h2:26380/mymaster").unwrap(),
            RedisTarget::Sentinel {
                sentinels: vec![hp("h1", 26379), hp("h2", 26380)],
                master: "mymaster".into(),
                credentials: Credentials {
                    username: Some("app".into()),
                    password: Some("s@cret".into()),
                },
            }
        );
    }

    #[test]
    fn cluster_url_names_the_seed_nodes() {
        assert_eq!(
            parse_target("redis+cluster://10.0.0.1:7000,10.0.0.2:7001").unwrap(),
            RedisTarget::Cluster {
                seeds: vec![hp("10.0.0.1", 7000), hp("10.0.0.2", 7001)],
                credentials: Credentials::default(),
            }
        );
    }

    #[test]
    fn malformed_multi_host_urls_are_refused_with_the_reason() {
        let err = |u: &str| parse_target(u).unwrap_err();
        assert!(err("redis+sentinel://h1:26379").contains("mastername"));
        assert!(err("redis+sentinel://h1:26379/").contains("master name"));
        assert!(err("redis+cluster://h1").contains("host:port"));
        assert!(err("redis+cluster://h1:0").contains("port"));
        assert!(err("redis+cluster://h1:7000/2").contains("seed nodes only"));
        assert!(err("redis+cluster://:7000").contains("no host"));
        assert!(err("http://h1:1").contains("not a Redis URL"));
    }
}
