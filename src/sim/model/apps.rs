//! Dialplan applications on simulated channels, and the api commands a dialer uses.
//!
//! Applications run on the answered originated channel (from `&app(args)` or `sendmsg … execute`) and on the
//! loopback b-leg's dialplan. Each emits CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE with `Application`,
//! `Application-Data`, `Application-UUID` (and `Application-Response` on completion) like `switch_core_session_exec`;
//! timed ones (playback, sleep, play_and_get_digits) complete from a timer. The api commands are in `api`.

use super::channel::Parked;
use super::{Activity, Requester, Switch, Timer, channel, new_uuid};
use crate::esl::Event;
use crate::sim::originate::atoi;

const EXEC: (&str, &str, u32) = ("switch_core_session.c", "switch_core_session_exec", 2944);
const EXEC_DONE: (&str, &str, u32) = ("switch_core_session.c", "switch_core_session_exec", 2967);

impl Switch {
    /// Starts an application on the b-leg's dialplan (or nowhere for a single-channel call).
    pub(super) fn dialplan_app_start(
        &mut self,
        uuid: Option<&str>,
        app: &str,
        arg: &str,
        playback: bool,
    ) {
        let Some(uuid) = uuid else { return };
        let app_uuid = new_uuid();
        self.begin_app(uuid, app, arg, &app_uuid, playback);
    }

    /// Completes the b-leg's current application.
    pub(super) fn dialplan_app_end(&mut self, uuid: Option<&str>) {
        if let Some(uuid) = uuid {
            self.finish_app(uuid, "");
        }
    }

    pub(super) fn begin_app(
        &mut self,
        uuid: &str,
        app: &str,
        arg: &str,
        app_uuid: &str,
        playback: bool,
    ) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        if ch.last_app.is_none() {
            let u = ch.uuid.clone();
            ch.vars.add("call_uuid", &u);
        }
        if ch.vars.get("current_application").is_none() {
            ch.vars.add("current_application", app);
            ch.vars.add("current_application_data", arg);
        } else {
            ch.vars.add("current_application_data", arg);
            ch.vars.add("current_application", app);
        }
        ch.last_app = Some((app.to_string(), arg.to_string()));
        if let Some(p) = ch.patience.as_mut() {
            p.waiting_since = None;
        }
        // switch_core_session_exec clears the response an earlier application left.
        ch.vars.remove("current_application_response");
        if app == "set"
            && let Some((k, v)) = arg.split_once('=')
        {
            ch.vars.add(k, v);
        }
        ch.activity = Activity::Running {
            app: app.into(),
            arg: arg.into(),
            app_uuid: app_uuid.into(),
            playback,
        };
        let mut post = vec![("Application", app)];
        if !arg.is_empty() {
            post.push(("Application-Data", arg));
        }
        post.push(("Application-UUID", app_uuid));
        self.fire("CHANNEL_EXECUTE", uuid, EXEC, &[], &post);
        if playback {
            self.playback_start(uuid, arg);
        }
    }

    /// How long `playback <arg>` plays: a silence stream its length, a file the configured prompt length.
    pub(super) fn playback_ms(&self, arg: &str) -> u64 {
        arg.strip_prefix("silence_stream://")
            .map(|m| atoi(m).max(0) as u64)
            .unwrap_or(self.cfg.playback_ms)
    }

    /// `switch_ivr_play_file` starts a file.
    pub(super) fn playback_start(&mut self, uuid: &str, arg: &str) {
        let path = self.playback_path(arg);
        self.fire(
            "PLAYBACK_START",
            uuid,
            ("switch_ivr_play_say.c", "switch_ivr_play_file", 1646),
            &[],
            &[("Playback-File-Path", &path)],
        );
    }

    /// `switch_ivr_play_file` ends a file after `ms` of it played.
    pub(super) fn playback_stop(&mut self, uuid: &str, arg: &str, ms: u64) {
        let path = self.playback_path(arg);
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        ch.vars
            .add("playback_last_offset_pos", &(ms * 8).to_string());
        ch.vars.add("playback_seconds", &(ms / 1000).to_string());
        ch.vars.add("playback_ms", &ms.to_string());
        ch.vars.add("playback_samples", &(ms * 8).to_string());
        self.fire(
            "PLAYBACK_STOP",
            uuid,
            ("switch_ivr_play_say.c", "switch_ivr_play_file", 2020),
            &[],
            &[("Playback-File-Path", &path), ("Playback-Status", "done")],
        );
    }

    pub(super) fn finish_app(&mut self, uuid: &str, response: &str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        let Activity::Running {
            app,
            arg,
            app_uuid,
            playback,
        } = std::mem::replace(&mut ch.activity, Activity::Idle)
        else {
            return;
        };
        if playback {
            let ms = self.playback_ms(&arg);
            self.playback_stop(uuid, &arg, ms);
        }
        let mut post = vec![("Application", app.as_str())];
        if !arg.is_empty() {
            post.push(("Application-Data", arg.as_str()));
        }
        let resp = match (response, playback) {
            ("", true) => "FILE PLAYED",
            (r, _) => r,
        };
        // The response is the channel's current_application_response, which the application may have set.
        if let Some(ch) = self.channels.get_mut(uuid)
            && !resp.is_empty()
        {
            ch.vars.add("current_application_response", resp);
        }
        let resp = if resp.is_empty() { "_none_" } else { resp };
        post.push(("Application-Response", resp));
        post.push(("Application-UUID", app_uuid.as_str()));
        self.fire("CHANNEL_EXECUTE_COMPLETE", uuid, EXEC_DONE, &[], &post);
        self.after_app(uuid);
    }

    /// What follows an application's return: the PRIVATE_COMMAND of the `sendmsg` that ran it
    /// (`switch_ivr_parse_next_event` fires the message back with the channel's data), then the next action of
    /// the extension the channel runs.
    fn after_app(&mut self, uuid: &str) {
        let pending = self
            .channels
            .get_mut(uuid)
            .and_then(|c| c.pending_private.take());
        if let Some(headers) = pending {
            self.private_command(uuid, &headers);
        }
        self.drain_queue(uuid);
        self.dialplan_next(uuid);
        self.quiet_check(uuid);
    }

    /// PRIVATE_COMMAND: the command's headers (a `sendmsg`'s start with `Command: sendmsg <uuid>`), the core
    /// block, the channel's data.
    fn private_command(&mut self, uuid: &str, sendmsg: &[(String, String)]) {
        let seq = self.next_seq();
        if !self.wants("PRIVATE_COMMAND") {
            return;
        }
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        let mut h = Vec::with_capacity(64);
        h.extend(sendmsg.iter().cloned());
        channel::core_headers(
            &mut h,
            &self.cfg.identity,
            "PRIVATE_COMMAND",
            self.now,
            ("switch_ivr.c", "switch_ivr_parse_next_event", 804),
            seq,
        );
        ch.push_data(&mut h, "PRIVATE_COMMAND", false);
        self.events.push(Event::from_pairs(h, None));
    }

    /// Leaves `park` (hang-up or transfer): CHANNEL_UNPARK and park's EXECUTE_COMPLETE.
    pub(super) fn leave_park(&mut self, uuid: &str) {
        let Some(parked) = self.channels.get_mut(uuid).and_then(|c| c.park.take()) else {
            return;
        };
        self.fire(
            "CHANNEL_UNPARK",
            uuid,
            ("switch_ivr.c", "switch_ivr_park", 1213),
            &[],
            &[],
        );
        // Parked by the state machine (park_after_bridge): no application to complete.
        let Some(park_uuid) = parked.app_uuid else {
            return;
        };
        // park's response is whatever the last application it ran left in current_application_response.
        let response = self
            .channels
            .get(uuid)
            .and_then(|c| c.vars.get("current_application_response"))
            .unwrap_or("_none_")
            .to_string();
        let post = [
            ("Application", "park"),
            ("Application-Response", response.as_str()),
            ("Application-UUID", park_uuid.as_str()),
        ];
        self.fire("CHANNEL_EXECUTE_COMPLETE", uuid, EXEC_DONE, &[], &post);
    }

    /// What a channel's running application does when the channel hangs up.
    pub(super) fn teardown(&mut self, uuid: &str) {
        self.amd_close(uuid);
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        match std::mem::replace(&mut ch.activity, Activity::Idle) {
            running @ Activity::Running { .. } => {
                self.digits_abandon(uuid);
                // Interrupted by the hang-up: a playback reports PLAYBACK ERROR.
                let response = match &running {
                    Activity::Running { playback: true, .. } => "PLAYBACK ERROR",
                    _ => "",
                };
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.activity = running;
                }
                self.finish_app(uuid, response);
            }
            Activity::Bridged { app_uuid, arg } => {
                let post = [
                    ("Application", "bridge"),
                    ("Application-Data", arg.as_str()),
                    ("Application-Response", "_none_"),
                    ("Application-UUID", app_uuid.as_str()),
                ];
                self.fire("CHANNEL_EXECUTE_COMPLETE", uuid, EXEC_DONE, &[], &post);
            }
            Activity::Idle => {}
        }
        self.leave_park(uuid);
        self.break_bridge(uuid);
    }

    /// Runs an application on a live channel (`&app(args)` or `sendmsg` execute).
    pub fn execute(&mut self, uuid: &str, app: &str, arg: &str, app_uuid: Option<&str>) {
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        if ch.hanging_up {
            return;
        }
        if matches!(
            ch.activity,
            Activity::Running { .. } | Activity::Bridged { .. }
        ) {
            // A busy channel: FreeSWITCH queues; the simulator runs it when the current app ends — keep it simple
            // and interrupt nothing: the application is refused with an error response.
            let au = app_uuid.map(str::to_string).unwrap_or_else(new_uuid);
            let post = [
                ("Application", app),
                ("Application-Data", arg),
                ("Application-Response", "-ERR busy"),
                ("Application-UUID", au.as_str()),
            ];
            self.fire("CHANNEL_EXECUTE_COMPLETE", uuid, EXEC_DONE, &[], &post);
            self.after_app(uuid);
            return;
        }
        let au = app_uuid.map(str::to_string).unwrap_or_else(new_uuid);
        let app_l = app.to_ascii_lowercase();
        match app_l.as_str() {
            "park" => {
                self.begin_app(uuid, "park", arg, &au, false);
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.activity = Activity::Idle;
                    ch.park = Some(Parked {
                        app_uuid: Some(au.clone()),
                    });
                }
                self.fire(
                    "CHANNEL_PARK",
                    uuid,
                    ("switch_ivr.c", "switch_ivr_park", 1002),
                    &[],
                    &[],
                );
                self.quiet_check(uuid);
            }
            "answer" | "pre_answer" => {
                self.begin_app(uuid, &app_l, arg, &au, false);
                if app_l == "answer" && self.channels.get(uuid).is_some_and(|c| c.answered_us == 0)
                {
                    self.mark_answered(uuid);
                }
                self.finish_app(uuid, "");
            }
            "set" | "export" | "record_session" | "ring_ready" | "log" | "info" | "event" => {
                self.begin_app(uuid, &app_l, arg, &au, false);
                if app_l == "export"
                    && let Some((k, v)) = arg.split_once('=')
                    && let Some(ch) = self.channels.get_mut(uuid)
                {
                    ch.vars.add(k, v);
                }
                if app_l == "event" {
                    self.event_app(uuid, arg);
                }
                if app_l == "record_session" {
                    if let Some(ch) = self.channels.get_mut(uuid) {
                        ch.vars.add("record_session_path", arg);
                    }
                    self.fire(
                        "RECORD_START",
                        uuid,
                        ("switch_ivr_async.c", "record_callback", 1218),
                        &[],
                        &[("Record-File-Path", arg)],
                    );
                }
                self.finish_app(uuid, "");
            }
            "playback" if !self.playback_finds(arg) => {
                self.begin_app(uuid, "playback", arg, &au, false);
                self.finish_app(uuid, "FILE NOT FOUND");
            }
            "play_and_get_digits" => self.start_digits(uuid, arg, &au),
            "playback" | "sleep" => {
                let ms = match app_l.as_str() {
                    "sleep" => atoi(arg).max(0) as u64,
                    _ => self.playback_ms(arg),
                };
                let playback = app_l != "sleep";
                self.begin_app(uuid, &app_l, arg, &au, playback);
                self.schedule(
                    ms,
                    Timer::AppDone {
                        uuid: uuid.into(),
                        app_uuid: au,
                    },
                );
            }
            "hangup" => {
                self.begin_app(uuid, "hangup", arg, &au, false);
                let cause = if arg.is_empty() {
                    "NORMAL_CLEARING".to_string()
                } else {
                    crate::sim::causes::str2cause(arg)
                        .unwrap_or("NORMAL_CLEARING")
                        .to_string()
                };
                self.hangup(uuid, &cause);
            }
            "transfer" => self.transfer(uuid, arg, &au),
            "amd" => self.amd_start(uuid, arg, &au),
            "avmd_start" => self.avmd_start(uuid, &au),
            "avmd_stop" => self.avmd_stop(uuid, &au),
            "bridge" => {
                self.begin_app(uuid, "bridge", arg, &au, false);
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.activity = Activity::Bridged {
                        app_uuid: au.clone(),
                        arg: arg.into(),
                    };
                }
                let seq = self.next_seq();
                if let Err(reply) = self.originate(
                    &format!("{arg} &park"),
                    Some(Requester::Bridge { from: uuid.into() }),
                    seq,
                ) {
                    let cause = reply.trim().trim_start_matches("-ERR ").to_string();
                    self.bridge_result(uuid, Err(cause));
                }
            }
            _ => {
                // Unknown application: FreeSWITCH logs "Invalid Application" and hangs up the channel.
                self.hangup(uuid, "DESTINATION_OUT_OF_ORDER");
            }
        }
    }

    /// The `event` application (mod_dptools `event_function`): fires CHANNEL_APPLICATION, or the event its
    /// `Event-Name=` names (`CUSTOM` with `Event-Subclass=`), with the `name=value` pairs of its comma-separated
    /// argument (at most 25; spaces around names and values trimmed) followed by the channel's data.
    fn event_app(&mut self, uuid: &str, arg: &str) {
        let mut name = "CHANNEL_APPLICATION".to_string();
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in arg.split(',').take(25) {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("Event-Name") {
                name = v.to_string();
                continue;
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        let pre: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.fire(
            &name,
            uuid,
            ("mod_dptools.c", "event_function", 1215),
            &pre,
            &[],
        );
    }

    /// A timed application ended.
    pub(super) fn app_done(&mut self, uuid: &str, app_uuid: &str) {
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        let Activity::Running {
            app,
            app_uuid: current,
            ..
        } = &ch.activity
        else {
            return;
        };
        if current != app_uuid {
            return;
        }
        match app.as_str() {
            "play_and_get_digits" => self.digits_step(uuid),
            "playback" => self.finish_app(uuid, "FILE PLAYED"),
            "amd" => self.amd_blocking_done(uuid),
            _ => self.finish_app(uuid, ""),
        }
    }

    /// The agent leg of a `bridge` answered (bridge both) or failed (the caller's bridge app ends).
    pub(super) fn bridge_result(&mut self, from: &str, result: Result<String, String>) {
        match result {
            Ok(agent) => {
                let now = self.now;
                for (x, y) in [(from, agent.as_str()), (agent.as_str(), from)] {
                    if let Some(ch) = self.channels.get_mut(x) {
                        ch.bridged = Some(y.to_string());
                        ch.profile.bridged_us = now;
                        ch.vars.add("bridge_uuid", y);
                    }
                }
                // The agent leg was parked by its `&park`: move it into the bridge.
                if let Some(ch) = self.channels.get_mut(&agent) {
                    ch.activity = Activity::Idle;
                }
                self.fire(
                    "CHANNEL_BRIDGE",
                    from,
                    (
                        "switch_ivr_bridge.c",
                        "switch_ivr_multi_threaded_bridge",
                        1642,
                    ),
                    &[("Bridge-A-Unique-ID", from), ("Bridge-B-Unique-ID", &agent)],
                    &[],
                );
            }
            Err(cause) => {
                let mut running = (String::new(), String::new());
                if let Some(ch) = self.channels.get_mut(from) {
                    ch.vars.add("originate_disposition", &cause);
                    ch.vars.add("originate_failed_cause", &cause);
                    if let Activity::Bridged { app_uuid, arg } =
                        std::mem::replace(&mut ch.activity, Activity::Idle)
                    {
                        running = (app_uuid, arg);
                    }
                }
                let (app_uuid, arg) = running;
                let mut post = vec![("Application", "bridge")];
                if !arg.is_empty() {
                    post.push(("Application-Data", arg.as_str()));
                }
                post.push(("Application-Response", cause.as_str()));
                if !app_uuid.is_empty() {
                    post.push(("Application-UUID", app_uuid.as_str()));
                }
                self.fire("CHANNEL_EXECUTE_COMPLETE", from, EXEC_DONE, &[], &post);
                self.after_app(from);
            }
        }
    }

    /// `sendmsg <uuid>` with `call-command: execute|hangup`.
    pub fn sendmsg(
        &mut self,
        now: u64,
        uuid: &str,
        headers: &[(String, String)],
    ) -> Result<(), String> {
        self.advance(now);
        if !self.channels.contains_key(uuid) {
            return Err(format!("-ERR invalid session id [{uuid}]"));
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        match get("call-command")
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "execute" => {
                let app = get("execute-app-name").unwrap_or("");
                let arg = get("execute-app-arg").unwrap_or("");
                let loops = get("loops").map(atoi).unwrap_or(1).max(1);
                for i in 0..loops {
                    if i + 1 == loops
                        && let Some(ch) = self.channels.get_mut(uuid)
                    {
                        let mut h = vec![("Command".to_string(), format!("sendmsg {uuid}"))];
                        h.extend(headers.iter().cloned());
                        ch.pending_private = Some(h);
                    }
                    self.execute(uuid, app, arg, get("Event-UUID"));
                }
            }
            "hangup" => {
                let cause = get("hangup-cause")
                    .and_then(crate::sim::causes::str2cause)
                    .unwrap_or("NORMAL_CLEARING")
                    .to_string();
                self.hangup(uuid, &cause);
            }
            "unicast" | "nomedia" | "xferext" => {}
            _ => {}
        }
        Ok(())
    }
}
