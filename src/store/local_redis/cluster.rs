//! A private Redis Cluster for tests and benchmarks: three masters sharing the 16384 slots, each with one replica,
//! all plain `redis-server` processes on free ports (killed when dropped). Replicas fail over after one second
//! without a master (`cluster-node-timeout 1000`) and always may (`cluster-replica-validity-factor 0`: a fresh
//! replica would otherwise count as too stale to take over).

use std::time::Duration;

use super::{LocalRedis, LocalRedisError, LocalRedisOptions, Role};

/// Masters of the local cluster (each gets one replica).
pub const CLUSTER_MASTERS: usize = 3;
/// How long a node may be unreachable before the cluster fails it over, in ms.
pub const CLUSTER_NODE_TIMEOUT_MS: u64 = 1000;
const SLOTS: u16 = 16384;

/// A running local cluster: `nodes[..CLUSTER_MASTERS]` started as masters, the rest as their replicas (in order).
#[derive(Debug)]
pub struct LocalCluster {
    nodes: Vec<LocalRedis>,
}

fn setup(reason: impl Into<String>) -> LocalRedisError {
    LocalRedisError::Setup {
        what: "cluster",
        reason: reason.into(),
    }
}

/// Waits for a condition of the cluster set-up (see [`super::wait_until`]).
fn wait_for(
    what: &str,
    within: Duration,
    ok: impl FnMut() -> Result<bool, LocalRedisError>,
) -> Result<(), LocalRedisError> {
    super::wait_until("cluster", what, within, ok)
}

impl LocalCluster {
    /// Starts the six nodes, assigns the slots, attaches the replicas and waits until the cluster says `ok` and
    /// every replica is in sync.
    pub fn start() -> Result<LocalCluster, LocalRedisError> {
        let role = Role {
            config: None,
            args: [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                &CLUSTER_NODE_TIMEOUT_MS.to_string(),
                "--cluster-replica-validity-factor",
                "0",
            ]
            .map(String::from)
            .to_vec(),
        };
        let nodes = (0..2 * CLUSTER_MASTERS)
            .map(|_| LocalRedis::start_as(LocalRedisOptions::default(), role.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let cluster = LocalCluster { nodes };
        cluster.form()?;
        Ok(cluster)
    }

    fn form(&self) -> Result<(), LocalRedisError> {
        let mut admins = self
            .nodes
            .iter()
            .map(LocalRedis::admin)
            .collect::<Result<Vec<_>, _>>()?;
        let ids = admins
            .iter_mut()
            .map(|c| redis::cmd("CLUSTER").arg("MYID").query::<String>(c))
            .collect::<Result<Vec<_>, _>>()?;
        let per = SLOTS / CLUSTER_MASTERS as u16;
        for (i, admin) in admins.iter_mut().take(CLUSTER_MASTERS).enumerate() {
            let first = i as u16 * per;
            let last = if i + 1 == CLUSTER_MASTERS {
                SLOTS - 1
            } else {
                first + per - 1
            };
            let _: () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first)
                .arg(last)
                .query(admin)?;
            let _: () = redis::cmd("CLUSTER")
                .arg("SET-CONFIG-EPOCH")
                .arg(i + 1)
                .query(admin)?;
        }
        let first_port = self.nodes[0].port();
        for admin in admins.iter_mut().skip(1) {
            let _: () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(first_port)
                .query(admin)?;
        }
        wait_for(
            "every node knowing the others",
            Duration::from_secs(20),
            || {
                for admin in admins.iter_mut() {
                    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(admin)?;
                    if nodes.lines().count() < self.nodes.len() || nodes.contains("handshake") {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )?;
        for r in 0..CLUSTER_MASTERS {
            let _: () = redis::cmd("CLUSTER")
                .arg("REPLICATE")
                .arg(&ids[r])
                .query(&mut admins[CLUSTER_MASTERS + r])?;
        }
        wait_for(
            "cluster_state:ok with replicas in sync",
            Duration::from_secs(30),
            || {
                for admin in admins.iter_mut() {
                    let info: String = redis::cmd("CLUSTER").arg("INFO").query(admin)?;
                    if !info.contains("cluster_state:ok") {
                        return Ok(false);
                    }
                }
                for admin in admins.iter_mut().skip(CLUSTER_MASTERS) {
                    let info: String = redis::cmd("INFO").arg("replication").query(admin)?;
                    if !info.contains("master_link_status:up") {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// Kills (SIGKILL) the master serving `key`'s slot now; returns its port. Its replica takes over after
    /// [`CLUSTER_NODE_TIMEOUT_MS`] and an election.
    pub fn kill_master_of(&mut self, key: &str) -> Result<u16, LocalRedisError> {
        let slot = self.slot_of(key)?;
        let port = self.master_port_of_slot(slot)?;
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .ok_or_else(|| setup(format!("no local node on port {port}")))?;
        node.kill();
        Ok(port)
    }

    fn any_admin(&self) -> Result<redis::Connection, LocalRedisError> {
        self.nodes
            .iter()
            .find(|n| n.running())
            .ok_or_else(|| setup("no node running"))?
            .admin()
    }

    fn slot_of(&self, key: &str) -> Result<u16, LocalRedisError> {
        Ok(redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.any_admin()?)?)
    }

    /// The port of the master serving `key`'s slot now.
    pub fn master_port_of(&self, key: &str) -> Result<u16, LocalRedisError> {
        self.master_port_of_slot(self.slot_of(key)?)
    }

    fn master_port_of_slot(&self, slot: u16) -> Result<u16, LocalRedisError> {
        let mut admin = self.any_admin()?;
        let shards: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut admin)?;
        for shard in shards {
            let redis::Value::Array(parts) = shard else {
                continue;
            };
            let int = |v: Option<&redis::Value>| match v {
                Some(redis::Value::Int(i)) => Some(*i),
                _ => None,
            };
            let (Some(from), Some(to)) = (int(parts.first()), int(parts.get(1))) else {
                continue;
            };
            if (from..=to).contains(&i64::from(slot))
                && let Some(redis::Value::Array(master)) = parts.get(2)
                && let Some(port) = int(master.get(1))
            {
                return Ok(port as u16);
            }
        }
        Err(setup(format!("no master serves slot {slot}")))
    }

    /// Waits until a running node serves `key`'s slot as master and the cluster says `ok` (after a fail-over).
    pub fn wait_master_of(&self, key: &str, within: Duration) -> Result<u16, LocalRedisError> {
        let slot = self.slot_of(key)?;
        let mut port = 0;
        wait_for("a running master for the slot", within, || {
            let p = self.master_port_of_slot(slot)?;
            let alive = self.nodes.iter().any(|n| n.port() == p && n.running());
            port = p;
            Ok(alive)
        })?;
        Ok(port)
    }
}
