//! The ESL inbound server of the simulated switch (tokio): many clients, one call model.
//!
//! One task owns nothing but time: it sleeps until the model's next timer (real time × speed) and dispatches the
//! events. Each connection task reads commands with [`crate::esl::command::check`], answers them through the same
//! core lock, and writes through its own bounded queue, so replies and events keep their order. A client that
//! falls 100,000 frames behind is dropped (FreeSWITCH kills such a listener too); bad input gets FreeSWITCH's answer
//! or a clean disconnect and never touches other clients. The timer task also fires the core's HEARTBEAT every
//! [`ServerConfig::heartbeat`] of simulated time (FreeSWITCH's default: 20 s), to the clients subscribed to it.

pub mod listener;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use crate::esl::command::{self, Command};
use crate::esl::{ContentType, encode};
use crate::sim::model::{Config, Interest, Switch};
use crate::sim::scenario::Scenario;
use listener::Listener;

/// Largest command accepted (FreeSWITCH cuts a packet at 10 MiB).
pub const MAX_COMMAND: usize = crate::esl::command::MAX_COMMAND_BYTES;
/// Frames queued per client before it is dropped (mod_event_socket's MAX_QUEUE_LEN).
pub const MAX_QUEUE: usize = 100_000;
/// FreeSWITCH 1.10's default `event-heartbeat-interval`.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(20);

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub password: String,
    pub switch: Config,
    pub scenario: Option<PathBuf>,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated time between HEARTBEAT events (FreeSWITCH's `event-heartbeat-interval`, default 20 s); `None`
    /// fires none. At `speed` 10 the default comes every 2 real seconds.
    pub heartbeat: Option<Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            password: "ClueCon".into(),
            switch: Config::default(),
            scenario: None,
            speed: 1.0,
            heartbeat: Some(HEARTBEAT_INTERVAL),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Scenario(#[from] crate::sim::scenario::ScenarioError),
    #[error("speed must be a positive number, got {0}")]
    Speed(f64),
    #[error("the heartbeat interval must be at least one second, got {0:?}")]
    Heartbeat(Duration),
}

struct Client {
    listener: Listener,
    tx: mpsc::Sender<Bytes>,
}

struct Core {
    switch: Switch,
    clients: HashMap<u64, Client>,
    pending_api: HashMap<u64, oneshot::Sender<String>>,
    next_id: u64,
    clock: Clock,
}

#[derive(Clone, Copy)]
struct Clock {
    start: Instant,
    start_us: u64,
    speed: f64,
}

impl Clock {
    fn now_us(&self) -> u64 {
        self.start_us + (self.start.elapsed().as_secs_f64() * 1e6 * self.speed) as u64
    }

    fn real_delay(&self, until_us: u64) -> Duration {
        let now = self.now_us();
        Duration::from_secs_f64(until_us.saturating_sub(now) as f64 / 1e6 / self.speed)
    }
}

impl Core {
    /// Sends every pending event and api reply to whoever should get it.
    fn dispatch(&mut self) {
        for (ticket, reply) in self.switch.take_replies() {
            if let Some(tx) = self.pending_api.remove(&ticket) {
                let _ = tx.send(reply);
            }
        }
        let events = self.switch.take_events();
        if events.is_empty() {
            return;
        }
        let mut dead = Vec::new();
        for ev in &events {
            let mut cache: [Option<Bytes>; 3] = [None, None, None];
            for (id, c) in &self.clients {
                if !c.listener.wants(ev) {
                    continue;
                }
                let slot = match c.listener.format {
                    ContentType::EventJson => 1,
                    ContentType::EventXml => 2,
                    _ => 0,
                };
                let frame = cache[slot]
                    .get_or_insert_with(|| Bytes::from(encode::event_frame(ev, c.listener.format)))
                    .clone();
                if c.tx.try_send(frame).is_err() {
                    dead.push(*id);
                }
            }
        }
        for id in dead {
            tracing::warn!(client = id, "sim: client too far behind, dropping it");
            self.clients.remove(&id);
            self.update_interest();
        }
    }

    fn update_interest(&mut self) {
        let mut set = std::collections::HashSet::new();
        for c in self.clients.values() {
            if !c.listener.authed {
                continue;
            }
            match c.listener.interest() {
                None => {
                    self.switch.set_interest(Interest::All);
                    return;
                }
                Some(names) => set.extend(names.into_iter().map(str::to_string)),
            }
        }
        self.switch.set_interest(Interest::Only(set));
    }
}

/// A running simulator: its address, and a way to stop it.
pub struct SimHandle {
    addr: SocketAddr,
    shutdown: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and ends the timer task (open connections end when their peers go).
    pub async fn shutdown(self) {
        self.shutdown.notify_waiters();
        let _ = self.task.await;
    }
}

/// Starts the simulator in the current tokio runtime; with port 0 the OS picks the port ([`SimHandle::local_addr`]).
pub async fn start(cfg: ServerConfig) -> Result<SimHandle, ServerError> {
    if !(cfg.speed.is_finite() && cfg.speed > 0.0) {
        return Err(ServerError::Speed(cfg.speed));
    }
    let heartbeat = match cfg.heartbeat {
        Some(d) if d < Duration::from_secs(1) => return Err(ServerError::Heartbeat(d)),
        other => other.map(|d| Heartbeat {
            interval_us: d.as_micros() as u64,
            next_us: start_us_now() + d.as_micros() as u64,
        }),
    };
    let scenario = match &cfg.scenario {
        Some(p) => Scenario::from_file(p)?,
        None => Scenario::builtin(),
    };
    let tcp = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = tcp.local_addr().map_err(|source| ServerError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let start_us = heartbeat
        .map(|h| h.next_us - h.interval_us)
        .unwrap_or_else(start_us_now);
    let clock = Clock {
        start: Instant::now(),
        start_us,
        speed: cfg.speed,
    };
    let mut switch = Switch::new(cfg.switch.clone(), scenario, start_us);
    switch.set_interest(Interest::Only(Default::default()));
    let core = Arc::new(Mutex::new(Core {
        switch,
        clients: HashMap::new(),
        pending_api: HashMap::new(),
        next_id: 1,
        clock,
    }));
    let wake = Arc::new(Notify::new());
    let shutdown = Arc::new(Notify::new());
    let password = Arc::new(cfg.password.clone());
    tracing::info!(%addr, speed = cfg.speed, "sim: ESL server listening");

    let timer_core = core.clone();
    let timer_wake = wake.clone();
    let sd = shutdown.clone();
    let task = tokio::spawn(async move {
        let mut heartbeat = heartbeat;
        let timer = async {
            loop {
                let delay = {
                    let mut c = timer_core.lock().await;
                    let now = c.clock.now_us();
                    c.switch.advance(now);
                    if let Some(h) = &mut heartbeat
                        && now >= h.next_us
                    {
                        c.switch.heartbeat(now, h.interval_us / 1_000_000);
                        h.advance_past(now);
                    }
                    c.dispatch();
                    let next = c.switch.next_deadline().into_iter();
                    next.chain(heartbeat.map(|h| h.next_us))
                        .min()
                        .map(|d| c.clock.real_delay(d))
                        .unwrap_or(Duration::from_millis(250))
                };
                tokio::select! {
                    _ = tokio::time::sleep(delay.min(Duration::from_millis(250))) => {}
                    _ = timer_wake.notified() => {}
                }
            }
        };
        let accept = async {
            loop {
                match tcp.accept().await {
                    Ok((sock, peer)) => {
                        let _ = sock.set_nodelay(true);
                        tokio::spawn(connection(
                            sock,
                            peer,
                            core.clone(),
                            wake.clone(),
                            password.clone(),
                        ));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sim: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        };
        tokio::select! {
            _ = timer => {}
            _ = accept => {}
            _ = sd.notified() => {}
        }
    });
    Ok(SimHandle {
        addr,
        shutdown,
        task,
    })
}

fn start_us_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// When the next HEARTBEAT is due, in simulated µs.
#[derive(Debug, Clone, Copy)]
struct Heartbeat {
    interval_us: u64,
    next_us: u64,
}

impl Heartbeat {
    /// The next run after `now` on the same grid (runs missed while the process was stopped are not replayed,
    /// as FreeSWITCH's scheduler reschedules from the time it ran).
    fn advance_past(&mut self, now: u64) {
        let missed = (now - self.next_us) / self.interval_us;
        self.next_us += (missed + 1) * self.interval_us;
    }
}

fn reply(text: &str) -> Bytes {
    Bytes::from(encode::command_reply(text, &[]))
}

fn disconnect(session: Option<&str>) -> Bytes {
    match session {
        None => Bytes::from(encode::disconnect_notice()),
        Some(uuid) => {
            let body = encode::DISCONNECT_BODY;
            Bytes::from(format!(
                "Content-Type: text/disconnect-notice\nControlled-Session-UUID: {uuid}\nContent-Disposition: disconnect\nContent-Length: {}\n\n{body}",
                body.len()
            ))
        }
    }
}

/// What one command asks the connection to do next.
enum Next {
    Continue,
    /// Wait for a synchronous api originate's reply.
    Await(oneshot::Receiver<String>),
    Close,
}

async fn connection(
    sock: TcpStream,
    peer: SocketAddr,
    core: Arc<Mutex<Core>>,
    wake: Arc<Notify>,
    password: Arc<String>,
) {
    let (mut rd, mut wr) = sock.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(MAX_QUEUE);
    let id = {
        let mut c = core.lock().await;
        let id = c.next_id;
        c.next_id += 1;
        c.clients.insert(
            id,
            Client {
                listener: Listener::new(id),
                tx: tx.clone(),
            },
        );
        id
    };
    tracing::debug!(client = id, %peer, "sim: client connected");
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
            if b.is_empty() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let _ = tx
        .send(Bytes::from_static(b"Content-Type: auth/request\n\n"))
        .await;
    let mut buf = BytesMut::with_capacity(4096);
    let mut first = true;
    'outer: loop {
        // Parse every complete command in the buffer.
        loop {
            let layout = match command::check(&buf, MAX_COMMAND) {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(client = id, error = %e, "sim: bad command, closing");
                    let _ = tx.send(disconnect(None)).await;
                    break 'outer;
                }
            };
            first = false;
            let total = layout.header_end + layout.body_len;
            let raw = buf.split_to(total).freeze();
            let cmd = Command::new(raw, layout);
            let next = {
                let mut c = core.lock().await;
                let next = handle(&mut c, id, &cmd, &password, &tx);
                c.dispatch();
                next
            };
            wake.notify_one();
            match next {
                Next::Continue => {}
                Next::Await(rx_reply) => {
                    let body = rx_reply.await.unwrap_or_else(|_| "-ERR no reply\n".into());
                    let _ = tx
                        .send(Bytes::from(encode::api_response(body.as_bytes())))
                        .await;
                }
                Next::Close => break 'outer,
            }
        }
        let read = if first {
            match tokio::time::timeout(Duration::from_secs(25), rd.read_buf(&mut buf)).await {
                Ok(r) => r,
                Err(_) => {
                    let _ = tx.send(disconnect(None)).await;
                    break;
                }
            }
        } else {
            rd.read_buf(&mut buf).await
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    {
        let mut c = core.lock().await;
        c.clients.remove(&id);
        c.update_interest();
    }
    let _ = tx.send(Bytes::new()).await;
    drop(tx);
    let _ = writer.await;
    tracing::debug!(client = id, "sim: client gone");
}

fn starts_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// `parse_command` of mod_event_socket, in its order.
fn handle(
    core: &mut Core,
    id: u64,
    cmd: &Command,
    password: &str,
    tx: &mpsc::Sender<Bytes>,
) -> Next {
    let line_owned =
        String::from_utf8_lossy(crate::sim::originate::strip_cr(cmd.line())).into_owned();
    let line = line_owned.as_str();
    let send = |b: Bytes| {
        let _ = tx.try_send(b);
    };
    let now = core.clock.now_us();
    let Some(client) = core.clients.get_mut(&id) else {
        return Next::Close;
    };
    let l = &mut client.listener;
    if starts_ci(line, "exit") || line.starts_with("...") {
        send(reply("+OK bye"));
        send(disconnect(l.myevents.as_deref()));
        return Next::Close;
    }
    if !l.authed {
        if starts_ci(line, "auth ") {
            if &line[5..] == password {
                l.authed = true;
                send(reply("+OK accepted"));
                return Next::Continue;
            }
            send(reply("-ERR invalid"));
            send(disconnect(None));
            return Next::Close;
        }
        if starts_ci(line, "userauth ") {
            let rest = &line[9..];
            let ok = rest
                .split_once('@')
                .and_then(|(user, dp)| dp.split_once(':').map(|(d, p)| (user, d, p)))
                .is_some_and(|(u, d, p)| !u.is_empty() && !d.is_empty() && p == password);
            if ok {
                l.authed = true;
                send(Bytes::from_static(b"Content-Type: command/reply\nReply-Text: +OK accepted\nAllowed-Events: all\nAllowed-API: all\nAllowed-LOG: true\n\n"));
                return Next::Continue;
            }
            send(reply("-ERR invalid"));
            send(disconnect(None));
            return Next::Close;
        }
        send(reply("-ERR command not found"));
        return Next::Continue;
    }
    let text = if starts_ci(line, "filter ") {
        l.filter_cmd(line)
    } else if starts_ci(line, "myevents ") {
        let switch = &core.switch;
        let t = {
            let exists = |u: &str| switch.channel(u).is_some();
            let l = &mut core.clients.get_mut(&id).expect("client").listener;
            l.myevents_cmd(line, exists)
        };
        core.update_interest();
        t
    } else if starts_ci(line, "divert_events") {
        "-ERR not controlling a session.".into()
    } else if starts_ci(line, "sendmsg") {
        let mut uuid = line[7..].trim_start_matches(' ').to_string();
        if uuid.is_empty() {
            uuid = cmd
                .header("session-id")
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
        }
        let headers: Vec<(String, String)> = cmd
            .headers()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        if uuid.is_empty() {
            "-ERR invalid session id []".into()
        } else {
            match core.switch.sendmsg(now, &uuid, &headers) {
                Ok(()) => "+OK".into(),
                Err(e) => e,
            }
        }
    } else if starts_ci(line, "sendevent") {
        format!("+OK {}", uuid::Uuid::new_v4())
    } else if starts_ci(line, "api ") {
        let rest = &line[4..];
        let (api_cmd, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        core.next_id += 1;
        let ticket = core.next_id;
        return match core.switch.api(now, api_cmd, arg, ticket) {
            Some(body) => {
                let body = if body.is_empty() {
                    "-ERR no reply\n".to_string()
                } else {
                    body
                };
                send(Bytes::from(encode::api_response(body.as_bytes())));
                Next::Continue
            }
            None => {
                let (otx, orx) = oneshot::channel();
                core.pending_api.insert(ticket, otx);
                Next::Await(orx)
            }
        };
    } else if starts_ci(line, "bgapi ") {
        let rest = &line[6..];
        let (api_cmd, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        let job = cmd
            .header("job-uuid")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        send(Bytes::from(encode::command_reply(
            &format!("+OK Job-UUID: {job}"),
            &[("Job-UUID", &job)],
        )));
        core.switch.bgapi(now, api_cmd, arg, &job, "");
        return Next::Continue;
    } else if starts_ci(line, "log") {
        l.log_cmd(line)
    } else if starts_ci(line, "linger") || starts_ci(line, "nolinger") {
        if l.myevents.is_some() {
            l.linger = starts_ci(line, "linger");
            if l.linger {
                "+OK will linger".into()
            } else {
                "+OK will not linger".into()
            }
        } else {
            "-ERR not controlling a session".into()
        }
    } else if starts_ci(line, "nolog") {
        if l.log_level.take().is_some() {
            "+OK no longer logging".into()
        } else {
            "-ERR not loging".into()
        }
    } else if starts_ci(line, "event") {
        let t = l.event_cmd(line);
        core.update_interest();
        t
    } else if starts_ci(line, "nixevent") {
        let t = l.nixevent_cmd(line);
        core.update_interest();
        t
    } else if starts_ci(line, "noevents") {
        let t = l.noevents_cmd();
        core.update_interest();
        t
    } else {
        String::new()
    };
    let text = if text.is_empty() {
        "-ERR command not found".to_string()
    } else {
        text
    };
    send(reply(&text));
    Next::Continue
}
