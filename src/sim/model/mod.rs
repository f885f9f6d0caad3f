//! The call model: a pure state machine of channels, calls and timers, driven by the caller's clock.
//!
//! Every entry point takes `now` (µs since the Unix epoch) and appends the events FreeSWITCH 1.10 would fire, in
//! its order, to an outbox the caller drains ([`Switch::take_events`]). Nothing here reads a clock or does IO, so
//! tests run in virtual time (`advance(now + 30 s)` plays a whole call at once) and the ESL server maps real time
//! (optionally sped up) onto it. Sequences per outcome follow the captures in `fixtures/esl/`: a loopback call is an
//! `-a` (originated, outbound) and a `-b` (inbound, runs the dialplan) channel; sofia/user/null legs are one
//! outbound channel whose far end is elsewhere. Capacity follows the core: `max_sessions` (default 1000) and
//! `sessions_per_second` (default 30) as a counter reset every second and tested after decrementing, so 29
//! sessions per second get through; a refused session fails its originate with DESTINATION_OUT_OF_ORDER.
//! Events nobody listens to are not built ([`Switch::set_interest`]), which is what makes 5,000 calls/s cheap.

mod apps;
mod channel;
mod heartbeat;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::esl::Event;
use crate::sim::originate::{self, LegStart, OriginateError, Target, VarSet};
use crate::sim::scenario::{Outcome, Scenario};

pub use channel::{Activity, Channel, Identity, LegKind};

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

#[derive(Debug, Clone)]
struct Call {
    requester: Option<Requester>,
    a: String,
    b: Option<String>,
    outcome: Outcome,
    target: Target,
    answered: bool,
    settled: bool,
    api_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The callee side moves on (rings out, answers, ends early media, hangs up).
    Callee { call: u64, step: u8 },
    /// `originate_timeout` expired.
    Timeout { call: u64 },
    /// A timed application finished on this channel.
    AppDone { uuid: String, app_uuid: String },
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
    peak: usize,
    sps_left: i64,
    sps_second: u64,
    started_us: u64,
    now: u64,
    interest: Interest,
    events: Vec<Event>,
    replies: Vec<(u64, String)>,
    vars_global: VarSet,
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
        Switch {
            sps_left: i64::from(cfg.sessions_per_second),
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
            peak: 0,
            sps_second: now / 1_000_000,
            started_us: now,
            now,
            interest: Interest::All,
            events: Vec::new(),
            replies: Vec::new(),
            vars_global,
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
            }
        }
        self.set_now(now.max(self.now));
    }

    fn set_now(&mut self, now: u64) {
        self.now = now;
        let sec = now / 1_000_000;
        if sec != self.sps_second {
            self.sps_second = sec;
            self.sps_left = i64::from(self.cfg.sessions_per_second);
        }
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
        ch.push_data(&mut h, name, name == "CODEC");
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
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.callstate = cs;
        }
        self.fire(
            "CHANNEL_CALLSTATE",
            uuid,
            (
                "switch_channel.c",
                "switch_channel_perform_set_callstate",
                301,
            ),
            &[],
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

    /// Takes one session slot from the core's limits: `false` means "Throttle Error" or "Over Session Limit".
    fn take_session(&mut self) -> bool {
        self.sps_left -= 1;
        if self.sps_left <= 0 {
            tracing::debug!("sim: throttle error (sessions_per_second)");
            return false;
        }
        if self.channels.len() + 1 > self.cfg.max_sessions as usize {
            tracing::debug!("sim: over session limit");
            return false;
        }
        true
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

    /// Starts an originate; `Err(reply)` when it fails before any channel exists.
    fn originate(
        &mut self,
        arg: &str,
        requester: Option<Requester>,
        api_seq: u64,
    ) -> Result<(), String> {
        let o = originate::parse(arg).map_err(|e| e.reply())?;
        let branch = &o.branches[0];
        let timeout_s = o.timeout_sec(branch);
        // Failover groups of every branch, in order (enterprise branches are dialled one after the other).
        let groups: Vec<_> = o
            .branches
            .iter()
            .flat_map(|b| b.groups.iter().cloned())
            .collect();
        let mut last = "DESTINATION_OUT_OF_ORDER".to_string();
        for group in &groups {
            let result = originate::run_group(group, |leg| {
                if !originate::KNOWN_ENDPOINTS.contains(&leg.endpoint.as_str()) {
                    return LegStart::Refused("CHAN_NOT_IMPLEMENTED".into());
                }
                if leg.endpoint == "error" {
                    return LegStart::Refused(originate::error_endpoint_cause(leg.data.as_deref()));
                }
                LegStart::Created(leg.clone())
            });
            match result {
                Ok(legs) => {
                    // The first leg that can get a session is dialled (simultaneous legs are not raced).
                    for leg in legs {
                        match self.start_call(&o, &leg, timeout_s, requester.clone(), api_seq) {
                            Ok(()) => return Ok(()),
                            Err(cause) => last = cause,
                        }
                    }
                }
                Err((cause, _)) => last = cause,
            }
        }
        Err(OriginateError::Failed(last).reply())
    }

    fn start_call(
        &mut self,
        o: &originate::Originate,
        leg: &originate::Leg,
        timeout_s: u32,
        requester: Option<Requester>,
        api_seq: u64,
    ) -> Result<(), String> {
        let data = leg.data.clone().unwrap_or_default();
        let (kind, dest, context) = match leg.endpoint.as_str() {
            "loopback" => {
                let mut parts = data.splitn(3, '/');
                let dest = parts.next().unwrap_or("").to_string();
                let ctx = parts
                    .next()
                    .filter(|c| !c.is_empty())
                    .unwrap_or("default")
                    .to_string();
                (LegKind::LoopA, dest, ctx)
            }
            _ => {
                let last = data.rsplit('/').next().unwrap_or("");
                let user = last.split('@').next().unwrap_or("").to_string();
                (LegKind::Single, user, "default".to_string())
            }
        };
        if !self.take_session() {
            return Err("DESTINATION_OUT_OF_ORDER".into());
        }
        let outcome = if leg.endpoint == "null" {
            Outcome::Answer {
                ring_ms: 0,
                early_ms: None,
                talk_ms: None,
                cause: "NORMAL_CLEARING".into(),
                digits: String::new(),
            }
        } else {
            self.scenario.outcome(&dest)
        };
        let call_id = self.next_call;
        self.next_call += 1;
        let vars = &leg.channel_vars;
        let uuid = vars
            .get("origination_uuid")
            .map(str::to_string)
            .unwrap_or_else(new_uuid);
        if self.channels.contains_key(&uuid) {
            // "Duplicate UUID!": the session request fails.
            return Err("DESTINATION_OUT_OF_ORDER".into());
        }
        let cid_name = vars
            .get("origination_caller_id_name")
            .map(str::to_string)
            .or_else(|| o.cid_name.clone())
            .unwrap_or_default();
        let cid_num = vars
            .get("origination_caller_id_number")
            .map(str::to_string)
            .or_else(|| o.cid_num.clone())
            .unwrap_or_else(|| "0000000000".into());
        let sanitized_callee = data
            .rsplit('/')
            .next()
            .unwrap_or("")
            .split('@')
            .next()
            .unwrap_or("")
            .to_string();
        let name = match kind {
            LegKind::LoopA => format!("loopback/{dest}-a"),
            _ => format!("{}/{}", leg.endpoint, data),
        };
        self.session_ids += 1;
        self.sessions_since_start += 1;
        let has_uuid = vars.get("origination_uuid").is_some();
        let mut a = Channel {
            uuid: uuid.clone(),
            early_uuid: if has_uuid { new_uuid() } else { uuid.clone() },
            name: name.clone(),
            early_name: if kind == LegKind::LoopA {
                format!("loopback/{data}-a")
            } else {
                name.clone()
            },
            kind,
            endpoint: leg.endpoint.clone(),
            outbound: true,
            state: "CS_NONE",
            state_num: 0,
            callstate: "DOWN",
            answer_state: "ringing",
            hit_dialplan: false,
            profile: channel::Profile {
                dialplan: "xml".into(),
                cid_name: cid_name.clone(),
                cid_num: cid_num.clone(),
                orig_cid_name: cid_name.clone(),
                orig_cid_num: cid_num.clone(),
                callee_name: "Outbound Call".into(),
                callee_num: sanitized_callee,
                ani: cid_num.clone(),
                dest: dest.clone(),
                source: if kind == LegKind::LoopA {
                    "mod_loopback".into()
                } else {
                    format!("mod_{}", leg.endpoint)
                },
                context: context.clone(),
                ..Default::default()
            },
            vars: VarSet::new(),
            cause: None,
            created_us: self.now,
            answered_us: 0,
            progress_us: 0,
            progress_media_us: 0,
            hangup_us: 0,
            partner: None,
            bridged: None,
            call: call_id,
            activity: Activity::Idle,
            session_id: self.session_ids,
            last_app: None,
            hanging_up: false,
        };
        a.vars.add("direction", "outbound");
        a.vars.add("is_outbound", "true");
        a.vars.add("uuid", &uuid);
        a.vars.add("call_uuid", &uuid);
        a.vars.add("session_id", &a.session_id.to_string());
        for (n, v) in [
            ("read_codec", "L16"),
            ("read_rate", "8000"),
            ("write_codec", "L16"),
            ("write_rate", "8000"),
        ] {
            a.vars.add(n, v);
        }
        a.vars.add("channel_name", &name);
        for (n, v) in vars.iter() {
            a.vars.add(n, v);
        }
        a.vars.add("originate_endpoint", &leg.endpoint);
        let early = vars.get("originate_early_media") != Some("false");
        let _ = early;
        let b_uuid = if kind == LegKind::LoopA {
            Some(new_uuid())
        } else {
            None
        };
        let mut b_chan = None;
        if let Some(b_uuid) = &b_uuid {
            if !self.take_session() {
                // The b-leg cannot be created: FreeSWITCH's loopback a-leg then fails.
                return Err("DESTINATION_OUT_OF_ORDER".into());
            }
            self.session_ids += 1;
            self.sessions_since_start += 1;
            let mut b = a.clone();
            b.uuid = b_uuid.clone();
            b.early_uuid = b_uuid.clone();
            b.name = format!("loopback/{dest}-b");
            b.early_name = b.name.clone();
            b.kind = LegKind::LoopB;
            b.outbound = false;
            b.hit_dialplan = true;
            b.session_id = self.session_ids;
            b.profile.callee_name = String::new();
            b.profile.callee_num = String::new();
            b.vars = VarSet::new();
            b.vars.add("direction", "inbound");
            b.vars.add("uuid", b_uuid);
            b.vars.add("call_uuid", b_uuid);
            b.vars.add("session_id", &b.session_id.to_string());
            b.vars.add("channel_name", &b.name);
            for (n, v) in [
                ("read_codec", "L16"),
                ("read_rate", "8000"),
                ("write_codec", "L16"),
                ("write_rate", "8000"),
            ] {
                b.vars.add(n, v);
            }
            for (n, v) in leg.local_vars.iter().chain(o.branches[0].vars.iter()) {
                if n != "origination_uuid" {
                    b.vars.set_checked(n, v, true);
                }
            }
            b.vars.add("other_loopback_leg_uuid", &uuid);
            b.vars.add("loopback_leg", "B");
            b.partner = Some(uuid.clone());
            a.vars.add("other_loopback_leg_uuid", b_uuid);
            a.vars.add("loopback_leg", "A");
            a.partner = Some(b_uuid.clone());
            b_chan = Some(b);
        }
        self.channels.insert(uuid.clone(), a);
        self.peak = self.peak.max(self.channels.len());
        self.calls.insert(
            call_id,
            Call {
                requester,
                a: uuid.clone(),
                b: b_uuid.clone(),
                outcome: outcome.clone(),
                target: o.target.clone(),
                answered: false,
                settled: false,
                api_seq,
            },
        );
        // --- creation sequence (capture order)
        let codec = |s: &mut Switch, u: &str| {
            s.fire(
                "CODEC",
                u,
                (
                    "switch_core_codec.c",
                    "switch_core_session_set_read_codec",
                    279,
                ),
                &[],
                &[
                    ("channel-read-codec-name", "L16"),
                    ("channel-read-codec-rate", "8000"),
                    ("channel-read-codec-bit-rate", "128000"),
                ],
            );
            s.fire(
                "CODEC",
                u,
                (
                    "switch_core_codec.c",
                    "switch_core_session_set_write_codec",
                    450,
                ),
                &[],
                &[],
            );
        };
        if kind == LegKind::LoopA {
            codec(self, &uuid);
        }
        if has_uuid {
            self.fire(
                "CHANNEL_UUID",
                &uuid,
                (
                    "switch_core_session.c",
                    "switch_core_session_set_uuid",
                    2081,
                ),
                &[],
                &[],
            );
        }
        if let Some(c) = self.channels.get_mut(&uuid) {
            c.state_num = 1;
        }
        self.fire(
            "CHANNEL_OUTGOING",
            &uuid,
            (
                "switch_core_session.c",
                "switch_core_session_outgoing_channel",
                768,
            ),
            &[],
            &[],
        );
        self.set_state(&uuid, "CS_INIT", 1);
        if let Some(b) = b_chan {
            let bu = b.uuid.clone();
            self.channels.insert(bu.clone(), b);
            self.peak = self.peak.max(self.channels.len());
            codec(self, &bu);
        }
        if let Some(c) = self.channels.get_mut(&uuid) {
            c.state_num = 2;
        }
        self.fire(
            "CHANNEL_CREATE",
            &uuid,
            ("switch_core_session.c", "switch_core_session_run", 626),
            &[],
            &[],
        );
        self.fire(
            "CHANNEL_ORIGINATE",
            &uuid,
            ("switch_core_session.c", "switch_core_session_run", 632),
            &[],
            &[],
        );
        self.set_state(&uuid, "CS_ROUTING", 2);
        self.set_state(&uuid, "CS_CONSUME_MEDIA", 7);
        if let Some(bu) = &b_uuid {
            self.set_state(bu, "CS_INIT", 1);
            if let Some(c) = self.channels.get_mut(bu) {
                c.state_num = 2;
            }
            self.fire(
                "CHANNEL_CREATE",
                bu,
                ("switch_core_session.c", "switch_core_session_run", 626),
                &[],
                &[],
            );
            if let Some(c) = self.channels.get_mut(bu) {
                c.state = "CS_ROUTING";
            }
            self.set_callstate(bu, "RINGING");
            self.set_state(bu, "CS_ROUTING", 2);
        }
        self.schedule(
            u64::from(timeout_s) * 1000,
            Timer::Timeout { call: call_id },
        );
        self.callee_step(call_id, 0);
        Ok(())
    }

    /// The callee's side of a call (the b-leg's dialplan for loopback, the far end for a single channel).
    fn callee_step(&mut self, call_id: u64, step: u8) {
        let Some(call) = self.calls.get(&call_id).cloned() else {
            return;
        };
        if self.channels.get(&call.a).is_none_or(|c| c.hanging_up) {
            return;
        }
        let b = call.b.clone();
        let callee = b.clone().unwrap_or_else(|| call.a.clone());
        match (&call.outcome, step) {
            (Outcome::NoRoute, 0) => self.hangup(&callee, "NO_ROUTE_DESTINATION"),
            (Outcome::Reject { ring_ms: 0, cause }, 0) => {
                self.enter_execute(b.as_deref());
                self.dialplan_hangup(b.as_deref(), &callee, cause);
            }
            (Outcome::Reject { ring_ms, .. } | Outcome::Answer { ring_ms, .. }, 0)
                if *ring_ms > 0 =>
            {
                self.enter_execute(b.as_deref());
                self.ring(&call, b.as_deref());
                self.dialplan_app_start(b.as_deref(), "sleep", &ring_ms.to_string(), false);
                self.schedule(
                    *ring_ms,
                    Timer::Callee {
                        call: call_id,
                        step: 1,
                    },
                );
            }
            (Outcome::Reject { cause, .. }, 1) => {
                self.dialplan_app_end(b.as_deref());
                self.dialplan_hangup(b.as_deref(), &callee, cause);
            }
            (Outcome::Ring { ms }, 0) => {
                self.enter_execute(b.as_deref());
                self.ring(&call, b.as_deref());
                let sleep = ms.unwrap_or(300_000);
                self.dialplan_app_start(b.as_deref(), "sleep", &sleep.to_string(), false);
                if let Some(ms) = ms {
                    self.schedule(
                        *ms,
                        Timer::Callee {
                            call: call_id,
                            step: 1,
                        },
                    );
                }
            }
            (Outcome::Ring { .. }, 1) => {
                self.dialplan_app_end(b.as_deref());
                self.dialplan_hangup(b.as_deref(), &callee, "NO_ANSWER");
            }
            (
                Outcome::Answer {
                    ring_ms,
                    early_ms,
                    talk_ms,
                    ..
                },
                0 | 1,
            ) => {
                if *ring_ms == 0 {
                    self.enter_execute(b.as_deref());
                } else {
                    self.dialplan_app_end(b.as_deref());
                }
                if let Some(bu) = &b {
                    let secs = talk_ms
                        .map(|t| (t / 1000).to_string())
                        .unwrap_or_else(|| "0".into());
                    self.dialplan_app_start(Some(bu), "set", &format!("answer_secs={secs}"), false);
                    self.dialplan_app_end(Some(bu));
                }
                match early_ms {
                    Some(e) => {
                        if let Some(bu) = &b {
                            self.dialplan_app_start(
                                Some(bu),
                                "set",
                                &format!("early_secs={}", e / 1000),
                                false,
                            );
                            self.dialplan_app_end(Some(bu));
                            self.dialplan_app_start(Some(bu), "pre_answer", "", false);
                        }
                        self.progress(&call.a, true);
                        if let Some(bu) = &b {
                            self.progress(bu, true);
                            self.dialplan_app_end(Some(bu));
                            self.dialplan_app_start(
                                Some(bu),
                                "playback",
                                &format!("silence_stream://{e}"),
                                true,
                            );
                        }
                        self.schedule(
                            *e,
                            Timer::Callee {
                                call: call_id,
                                step: 2,
                            },
                        );
                    }
                    None => self.callee_answer(call_id),
                }
            }
            (Outcome::Answer { .. }, 2) => {
                self.dialplan_app_end(b.as_deref());
                self.callee_answer(call_id);
            }
            (Outcome::Answer { cause, .. }, 3) => {
                self.dialplan_app_end(b.as_deref());
                self.dialplan_hangup(b.as_deref(), &callee, cause);
            }
            _ => {}
        }
    }

    fn enter_execute(&mut self, b: Option<&str>) {
        if let Some(bu) = b {
            self.set_state(bu, "CS_EXECUTE", 4);
            if let Some(ch) = self.channels.get_mut(bu) {
                let dest = ch.profile.dest.clone();
                ch.vars.add("DP_MATCH", &format!("ARRAY::{dest}|:{dest}"));
            }
        }
    }

    /// `ring_ready` on the callee: both legs go RINGING (CHANNEL_PROGRESS).
    fn ring(&mut self, call: &Call, b: Option<&str>) {
        if let Some(bu) = b {
            self.dialplan_app_start(Some(bu), "ring_ready", "", false);
        }
        self.progress(&call.a, false);
        if let Some(bu) = b {
            self.progress(bu, false);
            self.dialplan_app_end(Some(bu));
        }
    }

    fn progress(&mut self, uuid: &str, media: bool) {
        let now = self.now;
        if let Some(ch) = self.channels.get_mut(uuid) {
            if media {
                ch.progress_media_us = now;
                ch.answer_state = "early";
            } else {
                ch.progress_us = now;
            }
        }
        let (name, line) = if media {
            ("CHANNEL_PROGRESS_MEDIA", 3643)
        } else {
            ("CHANNEL_PROGRESS", 3584)
        };
        self.fire(
            name,
            uuid,
            (
                "switch_channel.c",
                if media {
                    "switch_channel_perform_mark_pre_answered"
                } else {
                    "switch_channel_perform_mark_ring_ready_value"
                },
                line,
            ),
            &[],
            &[],
        );
        let cs = if media { "EARLY" } else { "RINGING" };
        if self.channels.get(uuid).is_some_and(|c| c.callstate != cs) {
            self.set_callstate(uuid, cs);
        }
    }

    /// The callee answers: both legs answered, the originate succeeds, the a-leg runs its target.
    fn callee_answer(&mut self, call_id: u64) {
        let Some(call) = self.calls.get(&call_id).cloned() else {
            return;
        };
        if let Some(bu) = &call.b {
            self.dialplan_app_start(Some(bu), "answer", "", false);
        }
        self.mark_answered(&call.a);
        if let Some(bu) = &call.b {
            self.mark_answered(bu);
            let callee = self
                .channels
                .get(&call.a)
                .map(|c| (c.profile.callee_name.clone(), c.profile.callee_num.clone()));
            if let Some(ch) = self.channels.get_mut(bu) {
                ch.vars.add("endpoint_disposition", "ANSWER");
                if let Some((n, u)) = callee {
                    ch.profile.callee_name = n;
                    ch.profile.callee_num = u;
                }
            }
            self.dialplan_app_end(Some(bu));
        }
        if let Outcome::Answer { talk_ms, .. } = &call.outcome {
            if let Some(bu) = &call.b {
                let arg = format!("silence_stream://{}", talk_ms.unwrap_or(0));
                self.dialplan_app_start(Some(bu), "playback", &arg, true);
            }
            if let Some(t) = talk_ms {
                self.schedule(
                    *t,
                    Timer::Callee {
                        call: call_id,
                        step: 3,
                    },
                );
            }
        }
        // cid flip on the originated leg (CALL_UPDATE), then the originate completes.
        if let Some(ch) = self.channels.get_mut(&call.a) {
            ch.hit_dialplan = true;
            ch.vars.add("endpoint_disposition", "ANSWER");
            let p = &mut ch.profile;
            ch.vars
                .add("pre_transfer_caller_id_name", &p.cid_name.clone());
            ch.vars
                .add("pre_transfer_caller_id_number", &p.cid_num.clone());
            ch.vars.add("channel_cid_flipped", "yes");
            let (n, u) = (p.cid_name.clone(), p.cid_num.clone());
            p.cid_name = std::mem::take(&mut p.callee_name);
            p.cid_num = std::mem::take(&mut p.callee_num);
            p.callee_name = n;
            p.callee_num = u;
        }
        self.fire(
            "CALL_UPDATE",
            &call.a,
            ("switch_channel.c", "switch_channel_flip_cid", 3277),
            &[("Direction", "RECV")],
            &[],
        );
        if let Some(c) = self.calls.get_mut(&call_id) {
            c.answered = true;
        }
        self.settle(call_id, Ok(call.a.clone()));
        // The originated leg runs its application or extension.
        self.set_state(&call.a, "CS_EXECUTE", 4);
        match call.target.clone() {
            Target::App { name, arg } => {
                self.execute(&call.a, &name, arg.as_deref().unwrap_or(""), None)
            }
            Target::Extension(ext) => {
                if let Some(ch) = self.channels.get_mut(&call.a) {
                    ch.profile.dest = ext;
                }
                self.execute(&call.a, "park", "", None);
            }
        }
    }

    fn mark_answered(&mut self, uuid: &str) {
        let now = self.now;
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.answered_us = now;
            ch.answer_state = "answered";
        }
        self.fire(
            "CHANNEL_ANSWER",
            uuid,
            (
                "switch_channel.c",
                "switch_channel_perform_mark_answered",
                3846,
            ),
            &[],
            &[],
        );
        self.set_callstate(uuid, "ACTIVE");
    }

    /// Delivers the originate's result once: BACKGROUND_JOB, an api reply, or a bridge.
    fn settle(&mut self, call_id: u64, result: Result<String, String>) {
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        if call.settled {
            return;
        }
        call.settled = true;
        let (requester, api_seq) = (call.requester.clone(), call.api_seq);
        let body = match &result {
            Ok(uuid) => format!("+OK {uuid}\n"),
            Err(cause) => format!("-ERR {cause}\n"),
        };
        match requester {
            Some(Requester::Job {
                job_uuid,
                owner,
                command,
                arg,
            }) => {
                self.api_event(api_seq, &command, &arg);
                self.background_job(&job_uuid, &owner, &command, &arg, &body);
            }
            Some(Requester::Api { ticket }) => self.replies.push((ticket, body)),
            Some(Requester::Bridge { from }) => self.bridge_result(&from, result),
            None => {}
        }
    }

    fn originate_timeout(&mut self, call_id: u64) {
        let Some(call) = self.calls.get(&call_id) else {
            return;
        };
        if call.answered || call.settled {
            return;
        }
        let a = call.a.clone();
        self.hangup_with(&a, "NO_ANSWER", true);
    }

    /// The callee's dialplan runs `hangup <cause>` (loopback) or the far end refuses (single channel).
    fn dialplan_hangup(&mut self, b: Option<&str>, callee: &str, cause: &str) {
        if let Some(bu) = b {
            self.dialplan_app_start(Some(bu), "hangup", cause, false);
        } else if let Some(ch) = self.channels.get_mut(callee) {
            let code = sip_code(cause, ch.answered_us > 0);
            ch.vars.add("sip_term_status", &code.to_string());
            ch.vars
                .add("proto_specific_hangup_cause", &format!("sip:{code}"));
        }
        self.hangup(callee, cause);
    }

    /// Hangs up a channel and, with it, its loopback partner and bridged peer; finishes the call.
    pub fn hangup(&mut self, uuid: &str, cause: &str) {
        self.hangup_with(uuid, cause, false);
    }

    fn hangup_with(&mut self, uuid: &str, cause: &str, timeout: bool) {
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        if ch.hanging_up {
            return;
        }
        let call_id = ch.call;
        let peers: Vec<String> = [ch.partner.clone(), ch.bridged.clone()]
            .into_iter()
            .flatten()
            .collect();
        self.mark_hangup(uuid, cause);
        if timeout {
            self.settle(call_id, Err(cause.to_string()));
        }
        self.teardown(uuid);
        self.set_state(uuid, "CS_HANGUP", 10);
        self.set_callstate(uuid, "HANGUP");
        let mut live_peers = Vec::new();
        for p in &peers {
            if self.channels.get(p).is_some_and(|c| !c.hanging_up) {
                let pcause = if self.channels.get(p).is_some_and(|c| c.call != call_id) {
                    "NORMAL_CLEARING"
                } else {
                    cause
                };
                self.mark_hangup(p, pcause);
                live_peers.push(p.clone());
            }
        }
        self.report(uuid);
        for p in &live_peers {
            self.teardown(p);
            self.set_state(p, "CS_HANGUP", 10);
            self.set_callstate(p, "HANGUP");
            self.report(p);
        }
        // An originate that never got answered fails now with the callee's cause.
        let other_calls: Vec<u64> = live_peers
            .iter()
            .filter_map(|p| self.channels.get(p).map(|c| c.call))
            .filter(|c| *c != call_id)
            .collect();
        self.settle(call_id, Err(cause.to_string()));
        for c in other_calls {
            self.settle(c, Err(cause.to_string()));
        }
        for p in live_peers
            .iter()
            .filter(|p| {
                self.channels
                    .get(*p)
                    .is_some_and(|c| c.kind == LegKind::LoopB)
            })
            .cloned()
            .collect::<Vec<_>>()
        {
            self.destroy(&p);
        }
        self.destroy(uuid);
        for p in live_peers {
            self.destroy(&p);
        }
    }

    fn mark_hangup(&mut self, uuid: &str, cause: &str) {
        let now = self.now;
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.hanging_up = true;
            ch.cause = Some(cause.to_string());
            ch.hangup_us = now;
            ch.answer_state = "hangup";
            ch.state_num = 10;
        }
        self.fire(
            "CHANNEL_HANGUP",
            uuid,
            ("switch_channel.c", "switch_channel_perform_hangup", 3445),
            &[],
            &[],
        );
    }

    fn report(&mut self, uuid: &str) {
        self.set_state(uuid, "CS_REPORTING", 11);
        let cause = match self.channels.get_mut(uuid) {
            Some(ch) => {
                ch.set_cdr_vars();
                ch.cause.clone().unwrap_or_default()
            }
            None => return,
        };
        self.fire(
            "CHANNEL_HANGUP_COMPLETE",
            uuid,
            (
                "switch_core_state_machine.c",
                "switch_core_session_reporting_state",
                943,
            ),
            &[("Hangup-Cause", &cause)],
            &[],
        );
    }

    fn destroy(&mut self, uuid: &str) {
        if !self.channels.contains_key(uuid) {
            return;
        }
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.state_num = 12;
        }
        self.fire(
            "CHANNEL_DESTROY",
            uuid,
            (
                "switch_core_session.c",
                "switch_core_session_perform_destroy",
                1584,
            ),
            &[],
            &[],
        );
        self.set_state(uuid, "CS_DESTROY", 12);
        if let Some(ch) = self.channels.remove(uuid)
            && ch.kind != LegKind::LoopB
        {
            self.calls.remove(&ch.call);
        }
    }

    // ------------------------------------------------------------ api text

    fn api_reply(&mut self, cmd: &str, arg: &str) -> String {
        apps::api_reply(self, cmd, arg)
    }

    /// Number of live channels and the status counters (`status`, `show calls count`).
    pub fn status_counts(&self) -> (usize, u64, usize) {
        (self.channels.len(), self.sessions_since_start, self.peak)
    }
}

/// The SIP final response a far end would have sent for a cause.
fn sip_code(cause: &str, answered: bool) -> u16 {
    match cause {
        _ if answered => 200,
        "USER_BUSY" => 486,
        "NO_ANSWER" => 480,
        "CALL_REJECTED" => 603,
        "NO_ROUTE_DESTINATION" | "UNALLOCATED_NUMBER" => 404,
        "NORMAL_CIRCUIT_CONGESTION" => 503,
        "ORIGINATOR_CANCEL" => 487,
        _ => 500,
    }
}
