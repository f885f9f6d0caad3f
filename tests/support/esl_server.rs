//! A small ESL peer for the client tests: real TCP on port 0, speaking FreeSWITCH 1.10's inbound protocol as the
//! captures in `fixtures/esl/` show it.
//!
//! It parses client commands with `esl::command` and writes every frame with `esl::encode`, answers each command
//! with exactly one reply in order (as `mod_event_socket` does), keeps per-connection subscriptions (format, event
//! names, `nixevent`, filters OR-ed, `myevents`), and runs `bgapi` jobs in the background, firing BACKGROUND_JOB
//! after a random delay so results come back out of order. Like FreeSWITCH, a BACKGROUND_JOB is a global event:
//! it goes to every connection subscribed to it, not only the one that asked. It is deliberately small: no call model (that is the
//! simulated switch's job in `src/sim/`). Tests drive it from outside: emit events, drop every socket, refuse the
//! next connections, hang an `api` forever, and read back what each connection received.
//!
//! Test-only api commands besides the real `echo`, `status`, `uuid_exists` and a loose `originate`:
//! `sleep <ms>` (reply after a delay, blocking the connection like a slow api) and `hang` (never reply).

#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fsdialer::esl::client::{Backoff, ClientConfig};
use fsdialer::esl::command::{self, Command};
use fsdialer::esl::{ContentType, Event, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

const MAX_COMMAND: usize = 1 << 20;
const KNOWN_EVENTS: &[&str] = &[
    "ALL",
    "CUSTOM",
    "API",
    "BACKGROUND_JOB",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_CALLSTATE",
    "CHANNEL_CREATE",
    "CHANNEL_DESTROY",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_ORIGINATE",
    "CHANNEL_PARK",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_STATE",
    "CHANNEL_UNBRIDGE",
    "DTMF",
    "HEARTBEAT",
    "RE_SCHEDULE",
];

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub password: String,
    /// `userauth` accounts: (`user@domain`, password).
    pub users: Vec<(String, String)>,
    /// Refuse every connection with `text/rude-rejection` (an ACL that does not allow the client).
    pub reject: bool,
    /// Background jobs finish after a random delay up to this.
    pub bgapi_max_delay: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            password: "ClueCon".into(),
            users: vec![("1000@default".into(), "s3cret".into())],
            reject: false,
            bgapi_max_delay: Duration::from_millis(20),
        }
    }
}

/// One command as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub conn: u64,
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Out {
    Bytes(Vec<u8>),
    Close,
}

#[derive(Debug, Default)]
struct Subs {
    listening: bool,
    format: Option<ContentType>,
    all: bool,
    names: HashSet<String>,
    nixed: HashSet<String>,
    subclasses: HashSet<String>,
    filters: Vec<(String, String)>,
    myevents: Option<String>,
}

impl Subs {
    fn passes(&self, e: &Event) -> bool {
        if !self.listening {
            return false;
        }
        let name = e.name().unwrap_or("");
        let subscribed = if name == "CUSTOM" {
            self.all || e.subclass().is_some_and(|s| self.subclasses.contains(s))
        } else {
            (self.all && !self.nixed.contains(name)) || self.names.contains(name)
        };
        if !subscribed {
            return false;
        }
        if let Some(uuid) = &self.myevents
            && e.unique_id() != Some(uuid.as_str())
        {
            return false;
        }
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|(h, v)| e.get(h).is_some_and(|x| x.eq_ignore_ascii_case(v)))
    }
}

struct Conn {
    id: u64,
    out: mpsc::UnboundedSender<Out>,
    subs: Arc<Mutex<Subs>>,
    authed: Arc<AtomicBool>,
    tasks: Vec<AbortHandle>,
}

struct State {
    config: ServerConfig,
    conns: Mutex<Vec<Conn>>,
    log: Mutex<Vec<Received>>,
    next_id: AtomicU64,
    seq: AtomicU64,
    refuse_next: AtomicU32,
    accepts: AtomicU64,
    channels: Mutex<HashSet<String>>,
    core_uuid: String,
}

/// The running server. Dropping it stops accepting and closes every connection.
pub struct TestServer {
    addr: String,
    state: Arc<State>,
    accept: AbortHandle,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_connections();
    }
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State {
            config,
            conns: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            seq: AtomicU64::new(1),
            refuse_next: AtomicU32::new(0),
            accepts: AtomicU64::new(0),
            channels: Mutex::new(HashSet::new()),
            core_uuid: uuid::Uuid::new_v4().to_string(),
        });
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accept_state.clone().serve(stream);
            }
        })
        .abort_handle();
        TestServer {
            addr,
            state,
            accept,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A client configuration for this server with quick reconnects.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(self.addr.clone(), self.state.config.password.clone());
        c.reconnect = Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: None,
        };
        c.connect_timeout = Duration::from_secs(2);
        c.auth_timeout = Duration::from_secs(2);
        c
    }

    /// Every command received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    /// The command lines one connection received.
    pub fn lines_on(&self, conn: u64) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|r| r.conn == conn)
            .map(|r| r.line)
            .collect()
    }

    /// Ids of the open, authenticated connections.
    pub fn connections(&self) -> Vec<u64> {
        self.state
            .conns
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.authed.load(Ordering::SeqCst) && !c.out.is_closed())
            .map(|c| c.id)
            .collect()
    }

    /// Waits (up to 5 s) until `pred` holds for the command log.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Received]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if pred(&self.state.log.lock().unwrap()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; server saw {:#?}",
                self.received()
                    .iter()
                    .map(|r| (r.conn, &r.line))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Closes every connection at once, as a crashed or restarted FreeSWITCH would.
    pub fn drop_connections(&self) {
        for c in self.state.conns.lock().unwrap().drain(..) {
            for t in &c.tasks {
                t.abort();
            }
        }
    }

    /// Accepts and immediately closes the next `n` connections (no greeting), failing reconnect attempts.
    pub fn refuse_next(&self, n: u32) {
        self.state.refuse_next.store(n, Ordering::SeqCst);
    }

    /// TCP connections accepted so far (refused ones included).
    pub fn accepts(&self) -> u64 {
        self.state.accepts.load(Ordering::SeqCst)
    }

    /// A channel uuid that `sendmsg`, `myevents` and `uuid_exists` will know.
    pub fn add_channel(&self, uuid: &str) {
        self.state.channels.lock().unwrap().insert(uuid.to_owned());
    }

    /// An event with the standard FreeSWITCH headers and the next `Event-Sequence`, plus `extra`.
    pub fn event(&self, name: &str, extra: &[(&str, &str)], body: Option<&[u8]>) -> Event {
        self.state.event(name, extra, body)
    }

    /// Sends an event to every connection whose subscriptions and filters let it through. Returns how many.
    pub fn emit(&self, event: &Event) -> usize {
        self.state.emit(event)
    }
}

fn deliver(out: mpsc::UnboundedSender<Out>, subs: &Mutex<Subs>, event: &Event) -> bool {
    let subs = subs.lock().unwrap();
    if !subs.passes(event) {
        return false;
    }
    let format = subs.format.unwrap_or(ContentType::EventPlain);
    out.send(Out::Bytes(encode::event_frame(event, format)))
        .is_ok()
}

fn reply(text: &str) -> Out {
    Out::Bytes(encode::command_reply(text, &[]))
}

impl State {
    /// Events are global in FreeSWITCH: every connection whose subscriptions let one through gets it.
    fn emit(&self, event: &Event) -> usize {
        let conns = self.conns.lock().unwrap();
        let mut n = 0;
        for c in conns.iter() {
            if c.authed.load(Ordering::SeqCst) && deliver(c.out.clone(), &c.subs, event) {
                n += 1;
            }
        }
        n
    }

    fn event(&self, name: &str, extra: &[(&str, &str)], body: Option<&[u8]>) -> Event {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst).to_string();
        let now = chrono::Utc::now();
        let mut headers: Vec<(String, String)> = vec![
            ("Event-Name".into(), name.into()),
            ("Core-UUID".into(), self.core_uuid.clone()),
            ("FreeSWITCH-Hostname".into(), "test".into()),
            ("FreeSWITCH-Switchname".into(), "test".into()),
            ("FreeSWITCH-IPv4".into(), "127.0.0.1".into()),
            (
                "Event-Date-Local".into(),
                now.format("%Y-%m-%d %H:%M:%S").to_string(),
            ),
            (
                "Event-Date-GMT".into(),
                now.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            ),
            (
                "Event-Date-Timestamp".into(),
                now.timestamp_micros().to_string(),
            ),
            ("Event-Calling-File".into(), "test_server.rs".into()),
            ("Event-Sequence".into(), seq),
        ];
        headers.extend(extra.iter().map(|(n, v)| ((*n).into(), (*v).into())));
        Event::from_pairs(headers, body)
    }

    fn serve(self: Arc<Self>, stream: TcpStream) {
        self.accepts.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (mut rd, mut wr) = stream.into_split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Out>();
        let writer = tokio::spawn(async move {
            while let Some(o) = out_rx.recv().await {
                match o {
                    Out::Bytes(b) => {
                        if wr.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                    Out::Close => {
                        let _ = wr.shutdown().await;
                        return;
                    }
                }
            }
        });
        if self
            .refuse_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let _ = out.send(Out::Close);
            return;
        }
        if self.config.reject {
            let mut frame = Vec::new();
            encode::frame_into(
                &mut frame,
                &[("Content-Type", "text/rude-rejection")],
                b"Access Denied, go away.\n",
            );
            let _ = out.send(Out::Bytes(frame));
            let _ = out.send(Out::Close);
            return;
        }
        let _ = out.send(Out::Bytes(b"Content-Type: auth/request\n\n".to_vec()));
        let subs = Arc::new(Mutex::new(Subs::default()));
        let authed = Arc::new(AtomicBool::new(false));
        let ctx = ConnCtx {
            id,
            state: self.clone(),
            out: out.clone(),
            subs: subs.clone(),
            authed: authed.clone(),
        };
        let reader = tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(4096);
            loop {
                while let Ok(Some(layout)) = command::check(&buf, MAX_COMMAND) {
                    let total = layout.header_end + layout.body_len;
                    let raw: Bytes = buf.split_to(total).freeze();
                    if !ctx.handle(Command::new(raw, layout)).await {
                        let _ = ctx.out.send(Out::Close);
                        return;
                    }
                }
                match rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
        self.conns.lock().unwrap().push(Conn {
            id,
            out,
            subs,
            authed,
            tasks: vec![writer.abort_handle(), reader.abort_handle()],
        });
    }
}

struct ConnCtx {
    id: u64,
    state: Arc<State>,
    out: mpsc::UnboundedSender<Out>,
    subs: Arc<Mutex<Subs>>,
    authed: Arc<AtomicBool>,
}

impl ConnCtx {
    fn send(&self, o: Out) {
        let _ = self.out.send(o);
    }

    /// Handles one command; false closes the connection.
    async fn handle(&self, cmd: Command) -> bool {
        let line = String::from_utf8_lossy(cmd.line()).into_owned();
        self.state.log.lock().unwrap().push(Received {
            conn: self.id,
            line: line.clone(),
            headers: cmd
                .headers()
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(n).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
            body: cmd.body().to_vec(),
        });
        let (verb, rest) = match line.split_once(' ') {
            Some((v, r)) => (v, r.trim()),
            None => (line.as_str(), ""),
        };
        if !self.authed.load(Ordering::SeqCst) {
            return match verb {
                "auth" | "userauth" => self.auth(verb, rest),
                "exit" => self.exit(),
                _ => {
                    self.send(reply("-ERR command not found"));
                    true
                }
            };
        }
        match verb {
            "api" if rest.is_empty() => self.send(reply("-ERR command not found")),
            "api" => {
                let body = self.api(rest).await;
                self.send(Out::Bytes(encode::api_response(body.as_bytes())));
            }
            "bgapi" => self.bgapi(rest, &cmd),
            "event" => self.event(rest),
            "nixevent" => self.nixevent(rest),
            "noevents" => {
                let mut s = self.subs.lock().unwrap();
                if s.listening {
                    let filters = std::mem::take(&mut s.filters);
                    *s = Subs {
                        filters,
                        ..Subs::default()
                    };
                    self.send(reply("+OK no longer listening for events"));
                } else {
                    self.send(reply("-ERR not listening for events"));
                }
            }
            "filter" => self.filter(rest),
            "myevents" => {
                let uuid = rest.split_whitespace().next().unwrap_or("");
                if self.state.channels.lock().unwrap().contains(uuid) {
                    let mut s = self.subs.lock().unwrap();
                    s.listening = true;
                    s.all = true;
                    s.myevents = Some(uuid.to_owned());
                    self.send(reply("+OK Events Enabled"));
                } else {
                    self.send(reply("-ERR invalid uuid"));
                }
            }
            "linger" | "nolinger" => self.send(reply("-ERR not controlling a session")),
            "sendmsg" => {
                if self.state.channels.lock().unwrap().contains(rest) {
                    self.send(reply("+OK"));
                } else {
                    self.send(reply(&format!("-ERR invalid session id [{rest}]")));
                }
            }
            "exit" => return self.exit(),
            _ => self.send(reply("-ERR command not found")),
        }
        true
    }

    fn auth(&self, verb: &str, rest: &str) -> bool {
        let ok = match verb {
            "auth" => rest == self.state.config.password,
            _ => rest.split_once(':').is_some_and(|(user, pass)| {
                self.state
                    .config
                    .users
                    .iter()
                    .any(|(u, p)| u == user && p == pass)
            }),
        };
        if ok {
            self.authed.store(true, Ordering::SeqCst);
            self.send(reply("+OK accepted"));
            true
        } else {
            self.send(reply("-ERR invalid"));
            self.send(Out::Bytes(encode::disconnect_notice()));
            false
        }
    }

    fn exit(&self) -> bool {
        self.send(reply("+OK bye"));
        self.send(Out::Bytes(encode::disconnect_notice()));
        false
    }

    async fn api(&self, rest: &str) -> String {
        let (cmd, args) = rest.split_once(' ').unwrap_or((rest, ""));
        match cmd {
            "echo" => args.to_owned(),
            "status" => "UP 0 years, 0 days, 0 hours, 1 minute, 2 seconds\nFreeSWITCH (Version 1.10.12 -release 64bit) is ready\n".to_owned(),
            "uuid_exists" => self.state.channels.lock().unwrap().contains(args).to_string(),
            "sleep" => {
                let ms = args.parse().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "+OK".to_owned()
            }
            "hang" => std::future::pending().await,
            "originate" => {
                let dest = args.rsplit_once('}').map_or(args, |(_, d)| d);
                match dest.strip_prefix("error/") {
                    Some(cause) => format!("-ERR {}\n", cause.split_whitespace().next().unwrap_or("")),
                    None => format!("+OK {}\n", uuid::Uuid::new_v4()),
                }
            }
            _ => format!("-ERR {cmd} Command not found!\n"),
        }
    }

    fn bgapi(&self, rest: &str, cmd: &Command) {
        let job = cmd
            .header("Job-UUID")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        self.send(Out::Bytes(encode::command_reply(
            &format!("+OK Job-UUID: {job}"),
            &[("Job-UUID", &job)],
        )));
        let (command, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let (command, args) = (command.to_owned(), args.to_owned());
        let max = self.state.config.bgapi_max_delay;
        let delay = if max.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_micros(rand::random_range(0..max.as_micros() as u64))
        };
        let ctx = ConnCtx {
            id: self.id,
            state: self.state.clone(),
            out: self.out.clone(),
            subs: self.subs.clone(),
            authed: self.authed.clone(),
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let body = ctx.api(&format!("{command} {args}")).await;
            let event = ctx.state.event(
                "BACKGROUND_JOB",
                &[
                    ("Event-Calling-Function", "api_exec"),
                    ("Job-UUID", &job),
                    ("Job-Command", &command),
                    ("Job-Command-Arg", &args),
                ],
                Some(body.as_bytes()),
            );
            ctx.state.emit(&event);
        });
    }

    fn event(&self, rest: &str) {
        let mut words = rest.split_whitespace();
        let format = match words.next() {
            Some("json") => ContentType::EventJson,
            Some("xml") => ContentType::EventXml,
            _ => ContentType::EventPlain,
        };
        let mut s = self.subs.lock().unwrap();
        let mut custom = false;
        let mut keys = 0;
        for w in words {
            if custom {
                s.subclasses.insert(w.to_owned());
                keys += 1;
            } else if KNOWN_EVENTS.contains(&w) {
                keys += 1;
                match w {
                    "ALL" => {
                        s.all = true;
                        s.nixed.clear();
                    }
                    "CUSTOM" => custom = true,
                    _ => {
                        s.names.insert(w.to_owned());
                        s.nixed.remove(w);
                    }
                }
            }
        }
        if keys == 0 {
            drop(s);
            return self.send(reply("-ERR no keywords supplied"));
        }
        s.listening = true;
        s.format = Some(format);
        let name = match format {
            ContentType::EventJson => "json",
            ContentType::EventXml => "xml",
            _ => "plain",
        };
        drop(s);
        self.send(reply(&format!("+OK event listener enabled {name}")));
    }

    fn nixevent(&self, rest: &str) {
        let mut s = self.subs.lock().unwrap();
        let mut custom = false;
        for w in rest.split_whitespace() {
            if custom {
                s.subclasses.remove(w);
            } else if w == "ALL" {
                s.all = false;
                s.names.clear();
                s.nixed.clear();
                s.subclasses.clear();
            } else if w == "CUSTOM" {
                custom = true;
            } else {
                s.names.remove(w);
                if s.all {
                    s.nixed.insert(w.to_owned());
                }
            }
        }
        drop(s);
        self.send(reply("+OK events nixed"));
    }

    fn filter(&self, rest: &str) {
        let mut s = self.subs.lock().unwrap();
        let (first, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        let text = if first == "delete" {
            let (h, v) = tail.split_once(' ').unwrap_or((tail, ""));
            if h == "all" {
                s.filters.clear();
            } else {
                s.filters
                    .retain(|(fh, fv)| !(fh.eq_ignore_ascii_case(h) && (v.is_empty() || fv == v)));
            }
            format!("+OK filter deleted. [{h}][{v}]")
        } else if first.is_empty() || tail.is_empty() {
            "-ERR invalid syntax".to_owned()
        } else {
            s.filters.push((first.to_owned(), tail.to_owned()));
            format!("+OK filter added. [{first}]=[{tail}]")
        };
        drop(s);
        self.send(reply(&text));
    }
}
