//! A private Sentinel set-up for tests and benchmarks: one master, one replica and three Sentinels (quorum 2), all
//! plain `redis-server` processes on free ports (killed when dropped). The Sentinels call the master down after
//! one second without an answer (`down-after-milliseconds 1000`) and promote the replica.

use std::time::Duration;

use super::{LocalRedis, LocalRedisError, LocalRedisOptions, Role};

/// The name the Sentinels monitor the master under.
pub const SENTINEL_MASTER_NAME: &str = "fsdialer";
const SENTINELS: usize = 3;

/// A running Sentinel set-up: `data[0]` started as the master, `data[1]` as its replica.
#[derive(Debug)]
pub struct LocalSentinel {
    data: Vec<LocalRedis>,
    sentinels: Vec<LocalRedis>,
}

fn setup(reason: impl Into<String>) -> LocalRedisError {
    LocalRedisError::Setup {
        what: "sentinel",
        reason: reason.into(),
    }
}

/// Waits for a condition of the sentinel set-up (see [`super::wait_until`]).
fn wait_for(
    what: &str,
    within: Duration,
    ok: impl FnMut() -> Result<bool, LocalRedisError>,
) -> Result<(), LocalRedisError> {
    super::wait_until("sentinel", what, within, ok)
}

impl LocalSentinel {
    /// Starts the master, its replica and the Sentinels, and waits until the replica is in sync and every
    /// Sentinel knows the replica and the other Sentinels (a fail-over needs both).
    pub fn start() -> Result<LocalSentinel, LocalRedisError> {
        let master = LocalRedis::start(LocalRedisOptions::default())?;
        let replica = LocalRedis::start_as(
            LocalRedisOptions::default(),
            Role {
                config: None,
                args: vec![
                    "--replicaof".into(),
                    "127.0.0.1".into(),
                    master.port().to_string(),
                ],
            },
        )?;
        let config = format!(
            "sentinel monitor {SENTINEL_MASTER_NAME} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {SENTINEL_MASTER_NAME} 1000\n\
             sentinel failover-timeout {SENTINEL_MASTER_NAME} 10000\n\
             sentinel parallel-syncs {SENTINEL_MASTER_NAME} 1\n",
            port = master.port()
        );
        let sentinels = (0..SENTINELS)
            .map(|_| {
                LocalRedis::start_as(
                    LocalRedisOptions::default(),
                    Role {
                        config: Some(config.clone()),
                        args: vec!["--sentinel".into()],
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let set = LocalSentinel {
            data: vec![master, replica],
            sentinels,
        };
        set.wait_formed()?;
        Ok(set)
    }

    fn wait_formed(&self) -> Result<(), LocalRedisError> {
        let mut replica = self.data[1].admin()?;
        wait_for("the replica in sync", Duration::from_secs(20), || {
            let info: String = redis::cmd("INFO").arg("replication").query(&mut replica)?;
            Ok(info.contains("master_link_status:up"))
        })?;
        let mut admins = self
            .sentinels
            .iter()
            .map(LocalRedis::admin)
            .collect::<Result<Vec<_>, _>>()?;
        wait_for(
            "every Sentinel knowing the replica and the other Sentinels",
            Duration::from_secs(30),
            || {
                for admin in admins.iter_mut() {
                    let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
                        .arg("REPLICAS")
                        .arg(SENTINEL_MASTER_NAME)
                        .query(admin)?;
                    let others: Vec<redis::Value> = redis::cmd("SENTINEL")
                        .arg("SENTINELS")
                        .arg(SENTINEL_MASTER_NAME)
                        .query(admin)?;
                    if replicas.is_empty() || others.len() < SENTINELS - 1 {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
    }

    /// `redis+sentinel://` naming every Sentinel and the master's name.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        format!(
            "redis+sentinel://{}/{SENTINEL_MASTER_NAME}",
            hosts.join(",")
        )
    }

    /// The port of the master the Sentinels name now.
    pub fn master_port(&self) -> Result<u16, LocalRedisError> {
        let mut admin = self
            .sentinels
            .first()
            .ok_or_else(|| setup("no Sentinel"))?
            .admin()?;
        let (_, port): (String, String) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(SENTINEL_MASTER_NAME)
            .query(&mut admin)?;
        port.parse()
            .map_err(|_| setup(format!("the Sentinel named port {port:?}")))
    }

    /// Kills (SIGKILL) the current master; returns its port. The Sentinels promote the replica.
    pub fn kill_master(&mut self) -> Result<u16, LocalRedisError> {
        let port = self.master_port()?;
        let node = self
            .data
            .iter_mut()
            .find(|n| n.port() == port && n.running())
            .ok_or_else(|| setup(format!("the master on port {port} is not running")))?;
        node.kill();
        Ok(port)
    }

    /// Starts the killed servers again on their ports, as replicas of the master the Sentinels name now (an old
    /// master without persistence must not come back as an empty master; the Sentinels then adopt it as a replica).
    pub fn restart_killed(&mut self) -> Result<(), LocalRedisError> {
        let master = self.master_port()?;
        for node in self.data.iter_mut().filter(|n| !n.running()) {
            node.restart_as_replica_of(master)?;
        }
        Ok(())
    }

    /// Waits until the Sentinels name a running master that answers as one; returns its port.
    pub fn wait_promoted(&self, within: Duration) -> Result<u16, LocalRedisError> {
        let mut port = 0;
        wait_for("a promoted master", within, || {
            let p = self.master_port()?;
            let Some(node) = self.data.iter().find(|n| n.port() == p && n.running()) else {
                return Ok(false);
            };
            let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut node.admin()?)?;
            port = p;
            Ok(matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master"))
        })?;
        Ok(port)
    }
}

/// A test that fails with a Sentinel set-up running shows what the servers did (fail-overs, promotions,
/// replicas' syncs): the last lines of each server's log, on the test's captured output.
impl Drop for LocalSentinel {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let servers = self
            .data
            .iter()
            .map(|n| ("data", n))
            .chain(self.sentinels.iter().map(|n| ("sentinel", n)));
        for (what, node) in servers {
            let log = node.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_LINES_SHOWN)..];
            eprintln!(
                "--- {what} server on port {} (last {} lines of its log):\n{}",
                node.port(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// How many lines of each server's log a failed test shows.
const LOG_LINES_SHOWN: usize = 40;
