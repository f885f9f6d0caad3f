//! The call model: a pure state machine of channels, calls and timers, driven by the caller's clock.
//!
//! Every entry point takes `now` (µs since the Unix epoch) and appends the events FreeSWITCH 1.10 would fire, in
//! its order, to an outbox the caller drains ([`Switch::take_events`]). Nothing here reads a clock or does IO, so
//! tests run in virtual time (`advance(now + 30 s)` plays a whole call at once) and the ESL server maps real time
//! (optionally sped up) onto it. Sequences per outcome follow the captures in `fixtures/esl/` (and the replays of
//! `fixtures/esl/realfs-2026-12/` in `tests/sim_model.rs`). Events nobody listens to are not built
//! ([`Switch::set_interest`]), which is what makes 5,000 calls/s cheap.
//!
//! This file owns the switch itself: its configuration, clock and timers, firing events, and the api/bgapi entry
//! points. The rest, by concern: `legs` (an originate becomes channels, loopback pairing), `call` (the call's
//! life: callee, answer, originate result, hang-up), `capacity` (max_sessions and sessions_per_second),
//! `dialplan` (transfer and the files playback finds), `digits` (play_and_get_digits), `apps` (applications and
//! api replies), `channel` (one channel and its headers), `uuid_bridge` (joining two channels and the survivor of
//! a bridge), `broadcast` (`uuid_broadcast`'s queued applications), `patience` (members who hang up while they
//! wait in silence), `hash` (mod_hash's store and `api_hangup_hook`), `amd` (mod_amd's and mod_avmd's applications
//! and events).

mod amd;
mod api;
mod apps;
mod broadcast;
mod call;
mod capacity;
mod channel;
mod dialplan;
mod digits;
mod hash;
mod heartbeat;
mod legs;
mod patience;
mod uuid_bridge;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::esl::Event;
use crate::sim::originate::VarSet;
use crate::sim::scenario::Scenario;

use call::Call;
use capacity::{Refusal, SessionLimits};
pub use channel::{Activity, Channel, Identity, LegKind};
pub use hash::HashDb;

/// Tunables of the simulated switch.
#[derive(Debug, Clone)]
pub struct Config {
    pub identity: Identity,
    /// `max_sessions` (FreeSWITCH default 1000).
    pub max_sessions: u32,
    /// `sessions_per_second` (FreeSWITCH default 30; 29 get through each second).
    pub sessions_per_second: u32,
    /// Duration of a `playback` of a real file (the simulator has no audio files).
    pub playback_ms: u64,
    /// The `sound_prefix` global variable: where relative prompt paths are looked up.
    pub sound_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            identity: Identity {
                core_uuid: uuid::Uuid::new_v4().to_string(),
                hostname: "fsdialer-sim".into(),
                ipv4: "127.0.0.1".into(),
                ipv6: "::1".into(),
            },
            max_sessions: 1000,
            sessions_per_second: 30,
            playback_ms: 1000,
            sound_prefix: "/usr/share/freeswitch/sounds/en/us/callie".into(),
        }
    }
}

/// Which events to build.
#[derive(Debug, Clone)]
pub enum Interest {
    All,
    Only(HashSet<String>),
}

/// Who asked for an originate, so its result can be delivered.
#[derive(Debug, Clone)]
pub enum Requester {
    /// `bgapi`: a BACKGROUND_JOB event carries the result.
    Job {
        job_uuid: String,
        owner: String,
        command: String,
        arg: String,
    },
    /// A synchronous `api originate` (the server holds the connection's reply): result in [`Switch::take_replies`].
    Api { ticket: u64 },
    /// A `bridge` application: the originating channel.
    Bridge { from: String },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The callee side moves on (rings out, answers, ends early media, hangs up).
    Callee { call: u64, step: u8 },
    /// `originate_timeout` expired.
    Timeout { call: u64 },
    /// A timed application finished on this channel.
    AppDone { uuid: String, app_uuid: String },
    /// The channel's session looks at its queue of applications (`uuid_broadcast`).
    Drain { uuid: String },
    /// A bridged agent's talk time is over.
    Talk { agent: String, peer: String },
    /// A member has waited in silence as long as it will (stamped with when the silence began).
    Patience { uuid: String, since: u64 },
    /// The non-blocking `amd` decides on this channel.
    AmdDecision { uuid: String },
    /// A machine's beep sounds on this channel.
    Beep { uuid: String },
    /// `sched_hangup` is due.
    ScheduledHangup { uuid: String, cause: String },
}

/// The simulated switch.
pub struct Switch {
    cfg: Config,
    scenario: Scenario,
    channels: HashMap<String, Channel>,
    calls: HashMap<u64, Call>,
    timers: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    timer_seq: u64,
    next_call: u64,
    event_seq: u64,
    session_ids: u64,
    sessions_since_start: u64,
    limits: SessionLimits,
    started_us: u64,
    now: u64,
    interest: Interest,
    events: Vec<Event>,
    replies: Vec<(u64, String)>,
    vars_global: VarSet,
    /// mod_hash's db hash (`hash insert/...`), written by `api_hangup_hook`s too.
    hash_db: HashDb,
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Switch {
    pub fn new(cfg: Config, scenario: Scenario, now: u64) -> Switch {
        let mut vars_global = VarSet::new();
        vars_global.add("hostname", &cfg.identity.hostname);
        vars_global.add("switchname", &cfg.identity.hostname);
        vars_global.add("local_ip_v4", &cfg.identity.ipv4);
        vars_global.add("sound_prefix", &cfg.sound_prefix);
        Switch {
            limits: SessionLimits::new(cfg.max_sessions, cfg.sessions_per_second, now),
            cfg,
            scenario,
            channels: HashMap::new(),
            calls: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            next_call: 1,
            event_seq: 1000,
            session_ids: 0,
            sessions_since_start: 0,
            started_us: now,
            now,
            interest: Interest::All,
            events: Vec::new(),
            replies: Vec::new(),
            vars_global,
            hash_db: HashDb::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Restricts which events are built (the union of what the connected clients subscribed to).
    pub fn set_interest(&mut self, interest: Interest) {
        self.interest = interest;
    }

    /// Events fired since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Replies of synchronous `api originate` commands that completed: (ticket, api/response body).
    pub fn take_replies(&mut self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.replies)
    }

    /// When the next timer is due, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    pub fn channel(&self, uuid: &str) -> Option<&Channel> {
        self.channels.get(uuid)
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Runs every timer due at or before `now`.
    pub fn advance(&mut self, now: u64) {
        while let Some(Reverse((t, _, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, _, timer))) = self.timers.pop() else {
                break;
            };
            self.set_now(t.max(self.now));
            match timer {
                Timer::Callee { call, step } => self.callee_step(call, step),
                Timer::Timeout { call } => self.originate_timeout(call),
                Timer::AppDone { uuid, app_uuid } => self.app_done(&uuid, &app_uuid),
                Timer::Drain { uuid } => self.drain_queue(&uuid),
                Timer::Talk { agent, peer } => self.talk_over(&agent, &peer),
                Timer::Patience { uuid, since } => self.patience_over(&uuid, since),
                Timer::AmdDecision { uuid } => self.amd_decision(&uuid),
                Timer::Beep { uuid } => self.beep(&uuid),
                Timer::ScheduledHangup { uuid, cause } => {
                    if self.channels.contains_key(&uuid) {
                        self.hangup(&uuid, &cause);
                    }
                }
            }
        }
        self.set_now(now.max(self.now));
    }

    fn set_now(&mut self, now: u64) {
        self.now = now;
        self.limits.tick(now, self.channels.len());
    }

    fn schedule(&mut self, after_ms: u64, timer: Timer) {
        self.timer_seq += 1;
        let at = self.now + after_ms * 1000;
        self.timers.push(Reverse((at, self.timer_seq, timer)));
    }

    fn wants(&self, name: &str) -> bool {
        match &self.interest {
            Interest::All => true,
            Interest::Only(set) => set.contains(name),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.event_seq += 1;
        self.event_seq
    }

    /// Fires a channel event (`pre` headers go right after the core block, `post` after the channel data).
    fn fire(
        &mut self,
        name: &str,
        uuid: &str,
        calling: (&str, &str, u32),
        pre: &[(&str, &str)],
        post: &[(&str, &str)],
    ) {
        let seq = self.next_seq();
        if !self.wants(name) {
            return;
        }
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        let mut h = Vec::with_capacity(96);
        channel::core_headers(&mut h, &self.cfg.identity, name, self.now, calling, seq);
        for (n, v) in pre {
            h.push(((*n).into(), (*v).into()));
        }
        // Codecs set before the channel runs (loopback's) are reported under its early name and uuid, bare.
        ch.push_data(&mut h, name, name == "CODEC" && ch.state == "CS_NONE");
        for (n, v) in post {
            h.push(((*n).into(), (*v).into()));
        }
        self.events.push(Event::from_pairs(h, None));
    }

    /// Fires a non-channel event with an optional body.
    fn fire_plain(
        &mut self,
        name: &str,
        seq: u64,
        calling: (&str, &str, u32),
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) {
        if !self.wants(name) {
            return;
        }
        let mut h = Vec::with_capacity(24);
        channel::core_headers(&mut h, &self.cfg.identity, name, self.now, calling, seq);
        for (n, v) in headers {
            h.push(((*n).into(), (*v).into()));
        }
        self.events
            .push(Event::from_pairs(h, body.map(str::as_bytes)));
    }

    fn set_state(&mut self, uuid: &str, state: &'static str, num: u8) {
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.state = state;
            ch.state_num = num;
        }
        self.fire(
            "CHANNEL_STATE",
            uuid,
            (
                "switch_channel.c",
                "switch_channel_perform_set_running_state",
                2408,
            ),
            &[],
            &[],
        );
    }

    fn set_callstate(&mut self, uuid: &str, cs: &'static str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        let original = std::mem::replace(&mut ch.callstate, cs);
        let number = channel::callstate_number(cs).to_string();
        self.fire(
            "CHANNEL_CALLSTATE",
            uuid,
            (
                "switch_channel.c",
                "switch_channel_perform_set_callstate",
                301,
            ),
            &[
                ("Original-Channel-Call-State", original),
                ("Channel-Call-State-Number", &number),
            ],
            &[],
        );
    }

    /// The API event FreeSWITCH fires for every api command (also under bgapi).
    fn api_event(&mut self, seq: u64, cmd: &str, arg: &str) {
        let mut h = vec![("API-Command", cmd)];
        if !arg.is_empty() {
            h.push(("API-Command-Argument", arg));
        }
        self.fire_plain(
            "API",
            seq,
            ("switch_loadable_module.c", "switch_api_execute", 2954),
            &h,
            None,
        );
    }

    /// Takes one session slot from the core's limits (see `capacity`).
    fn take_session(&mut self) -> Result<(), Refusal> {
        self.limits.request(self.channels.len())
    }

    // ------------------------------------------------------------------ api

    /// `bgapi <cmd> <arg>`: answers at once (`+OK Job-UUID`) and fires BACKGROUND_JOB when the command completes.
    pub fn bgapi(&mut self, now: u64, cmd: &str, arg: &str, job_uuid: &str, owner: &str) {
        self.advance(now);
        let api_seq = self.next_seq();
        if cmd.eq_ignore_ascii_case("originate") {
            let req = Requester::Job {
                job_uuid: job_uuid.into(),
                owner: owner.into(),
                command: cmd.into(),
                arg: arg.into(),
            };
            if let Err(reply) = self.originate(arg, Some(req), api_seq) {
                self.api_event(api_seq, cmd, arg);
                self.background_job(job_uuid, owner, cmd, arg, &reply);
            }
            return;
        }
        let reply = self.api_reply(cmd, arg);
        self.api_event(api_seq, cmd, arg);
        self.background_job(job_uuid, owner, cmd, arg, &reply);
    }

    fn background_job(&mut self, job: &str, owner: &str, cmd: &str, arg: &str, body: &str) {
        let seq = self.next_seq();
        let mut h = vec![
            ("Job-UUID", job),
            ("Job-Owner-UUID", owner),
            ("Job-Command", cmd),
        ];
        if !arg.is_empty() {
            h.push(("Job-Command-Arg", arg));
        }
        if owner.is_empty() {
            h.retain(|(n, _)| *n != "Job-Owner-UUID");
        }
        self.fire_plain(
            "BACKGROUND_JOB",
            seq,
            ("mod_event_socket.c", "api_exec", 1572),
            &h,
            Some(body),
        );
    }

    /// `api <cmd> <arg>`: `Some(reply)` at once, or `None` for `originate`, whose reply comes with `ticket` in
    /// [`Switch::take_replies`] when the call is answered or fails.
    pub fn api(&mut self, now: u64, cmd: &str, arg: &str, ticket: u64) -> Option<String> {
        self.advance(now);
        let api_seq = self.next_seq();
        if cmd.eq_ignore_ascii_case("originate") {
            return match self.originate(arg, Some(Requester::Api { ticket }), api_seq) {
                Ok(()) => None,
                Err(reply) => {
                    self.api_event(api_seq, cmd, arg);
                    Some(reply)
                }
            };
        }
        let reply = self.api_reply(cmd, arg);
        self.api_event(api_seq, cmd, arg);
        Some(reply)
    }

    // ------------------------------------------------------------ api text

    fn api_reply(&mut self, cmd: &str, arg: &str) -> String {
        api::api_reply(self, cmd, arg)
    }

    /// Number of live channels and sessions since startup (`status`, `show calls count`).
    pub fn status_counts(&self) -> (usize, u64) {
        (self.channels.len(), self.sessions_since_start)
    }
}
