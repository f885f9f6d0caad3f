//! A private `redis-server` process for tests, benchmarks and local runs: started on a free port in its own
//! temporary directory, killed when dropped.
//!
//! With [`LocalRedisOptions::tls`] it also serves TLS on a second port (Debian's redis-server is built with TLS),
//! with a certificate the caller provides (tests generate one with `rcgen`); the plain port stays open for the
//! readiness check, and [`LocalRedis::url`] then names the TLS port with `rediss://`.
//!
//! The binary comes from `PATH`; when it is missing the error says how to install it rather than letting a test
//! silently skip.

mod cluster;
mod sentinel;

pub use cluster::LocalCluster;
pub use sentinel::LocalSentinel;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a local redis-server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LocalRedisError {
    #[error(
        "redis-server not found on PATH ({0}); install it with `apt-get install redis-server` (scripts/test does this)"
    )]
    Missing(std::io::Error),
    #[error("local redis-server: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "local redis-server on port {port} did not accept connections within {secs} s; its log: {log}"
    )]
    NotReady { port: u16, secs: u64, log: String },
    #[error("local {what}: {reason}")]
    Setup { what: &'static str, reason: String },
}

impl From<redis::RedisError> for LocalRedisError {
    fn from(e: redis::RedisError) -> LocalRedisError {
        LocalRedisError::Setup {
            what: "redis set-up",
            reason: e.to_string(),
        }
    }
}

/// Options of the local server.
#[derive(Debug, Clone, Default)]
pub struct LocalRedisOptions {
    /// `appendonly yes` with `appendfsync always`: every acknowledged write is on disk.
    pub durable: bool,
    /// `requirepass`: clients must AUTH (as the `default` user) with this password.
    pub password: Option<String>,
    /// Also serve TLS with these files.
    pub tls: Option<LocalRedisTls>,
}

/// The PEM files of a TLS port (clients are not asked for certificates: `tls-auth-clients no`).
#[derive(Debug, Clone)]
pub struct LocalRedisTls {
    /// The server's certificate (its names must include `127.0.0.1` for clients to accept it).
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The CA that signed `cert_file` (redis-server wants one even when it does not check clients).
    pub ca_file: PathBuf,
}

/// A running redis-server; killed on drop, and its directory removed.
#[derive(Debug)]
pub struct LocalRedis {
    child: Option<Child>,
    port: u16,
    /// The TLS port, when [`LocalRedisOptions::tls`] is set.
    tls_port: Option<u16>,
    dir: PathBuf,
    options: LocalRedisOptions,
    /// A role beyond a plain server (cluster node, Sentinel), see [`LocalRedis::start_as`].
    role: Role,
}

/// What a local process is besides a plain server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Role {
    /// Written to `redis.conf` in the server's directory and given first (Sentinel needs a writable file).
    config: Option<String>,
    /// Arguments after the usual ones (`--cluster-enabled yes`, `--sentinel`...).
    args: Vec<String>,
}

/// Polls `ok` every 50 ms until it says yes or `within` passes; the error names the set-up (`cluster`,
/// `sentinel`), what was awaited and the last error `ok` returned.
pub(crate) fn wait_until(
    set_up: &'static str,
    what: &str,
    within: Duration,
    mut ok: impl FnMut() -> Result<bool, LocalRedisError>,
) -> Result<(), LocalRedisError> {
    let deadline = Instant::now() + within;
    let mut last = None;
    loop {
        match ok() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e.to_string()),
        }
        if Instant::now() > deadline {
            return Err(LocalRedisError::Setup {
                what: set_up,
                reason: format!(
                    "{what} not reached within {} s{}",
                    within.as_secs(),
                    last.map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalRedis {
    /// Starts a server in a fresh temporary directory.
    pub fn start(options: LocalRedisOptions) -> Result<LocalRedis, LocalRedisError> {
        LocalRedis::start_as(options, Role::default())
    }

    pub(crate) fn start_as(
        options: LocalRedisOptions,
        role: Role,
    ) -> Result<LocalRedis, LocalRedisError> {
        let port = free_port()?;
        let tls_port = match options.tls {
            Some(_) => Some(free_port()?),
            None => None,
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "fsdialer-redis-{}-{port}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let mut r = LocalRedis {
            child: None,
            port,
            tls_port,
            dir,
            options,
            role,
        };
        r.spawn()?;
        Ok(r)
    }

    fn spawn(&mut self) -> Result<(), LocalRedisError> {
        let log = self.dir.join("redis.log");
        let mut cmd = Command::new("redis-server");
        if let Some(config) = &self.role.config {
            let file = self.dir.join("redis.conf");
            // A restart keeps the file a Sentinel rewrote (it holds what the Sentinel learned).
            if !file.exists() {
                std::fs::write(&file, config)?;
            }
            cmd.arg(&file);
        }
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .arg("--save")
            .arg("")
            .arg("--protected-mode")
            .arg("no");
        if let Some(p) = &self.options.password {
            cmd.args(["--requirepass", p]);
        }
        if let (Some(tls), Some(port)) = (&self.options.tls, self.tls_port) {
            cmd.arg("--tls-port")
                .arg(port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.cert_file)
                .arg("--tls-key-file")
                .arg(&tls.key_file)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca_file)
                .args(["--tls-auth-clients", "no"]);
        }
        if self.options.durable {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        cmd.args(&self.role.args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LocalRedisError::Missing(e)
            } else {
                LocalRedisError::Io(e)
            }
        })?;
        self.child = Some(child);
        self.wait_ready(&log)
    }

    fn wait_ready(&mut self, log: &Path) -> Result<(), LocalRedisError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                s.set_read_timeout(Some(Duration::from_millis(500)))?;
                let auth = match &self.options.password {
                    Some(p) => format!("AUTH {p}\r\n"),
                    None => String::new(),
                };
                if s.write_all(format!("{auth}PING\r\n").as_bytes()).is_ok() {
                    let mut buf = [0u8; 64];
                    if let Ok(n) = s.read(&mut buf)
                        && buf[..n].ends_with(b"+PONG\r\n")
                    {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(LocalRedisError::NotReady {
                    port: self.port,
                    secs: 10,
                    log: std::fs::read_to_string(log).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>` (`rediss://127.0.0.1:<TLS port>` with TLS), with `default:<password>@` when
    /// the server requires one.
    pub fn url(&self) -> String {
        let (scheme, port) = match self.tls_port {
            Some(p) => ("rediss", p),
            None => ("redis", self.port),
        };
        match &self.options.password {
            Some(p) => format!("{scheme}://default:{p}@127.0.0.1:{port}"),
            None => format!("{scheme}://127.0.0.1:{port}"),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far (empty if it cannot be read): what a failed test shows of what the server did.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Whether the process is running (not killed).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// A blocking connection for set-up commands.
    pub(crate) fn admin(&self) -> Result<redis::Connection, LocalRedisError> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port))?;
        Ok(client.get_connection_with_timeout(Duration::from_secs(5))?)
    }

    /// Kills the server abruptly (SIGKILL): no shutdown save, like a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and directory (it reloads its append-only file if durable).
    pub fn restart(&mut self) -> Result<(), LocalRedisError> {
        self.kill();
        self.spawn()
    }

    /// Starts the server again as a replica of the server on `master_port`: how a failed master without
    /// persistence must come back, never as an empty master that clients (or a Sentinel with stale news) could
    /// take for the real one and whose emptiness a resync would spread. It comes back with `replica-priority 0`:
    /// it holds nothing until its first sync is done, and a second fail-over onto it (the new master stalled for
    /// a Sentinel's `down-after` on a loaded machine) would make the empty copy the master and resync the data
    /// away; a Sentinel never promotes a replica of priority 0.
    pub fn restart_as_replica_of(&mut self, master_port: u16) -> Result<(), LocalRedisError> {
        for flag in ["--replicaof", "--replica-priority"] {
            if let Some(i) = self.role.args.iter().position(|a| a == flag) {
                let width = if flag == "--replicaof" { 3 } else { 2 };
                self.role
                    .args
                    .drain(i..(i + width).min(self.role.args.len()));
            }
        }
        self.role.args.extend([
            "--replica-priority".to_string(),
            "0".to_string(),
            "--replicaof".to_string(),
            "127.0.0.1".to_string(),
            master_port.to_string(),
        ]);
        self.restart()
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
