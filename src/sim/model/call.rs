//! The call's life: the callee's side (ringing, early media, answer, its own hang-up), the originate's result
//! (BACKGROUND_JOB, an api reply or a bridge), `originate_timeout`, and hang-up, reporting and destruction of a
//! channel together with its loopback partner and bridged peer, in FreeSWITCH's order.

use super::channel::Codecs;
use super::{LegKind, Requester, Switch, Timer};
use crate::sim::originate::Target;
use crate::sim::scenario::Outcome;

#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) requester: Option<Requester>,
    pub(super) a: String,
    pub(super) b: Option<String>,
    pub(super) outcome: Outcome,
    pub(super) target: Target,
    pub(super) answered: bool,
    pub(super) settled: bool,
    pub(super) api_seq: u64,
}

impl Switch {
    /// The callee's side of a call (the b-leg's dialplan for loopback, the far end for a single channel).
    pub(super) fn callee_step(&mut self, call_id: u64, step: u8) {
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
            (Outcome::Answer { cause, .. }, 3) => self.callee_hangs_up(call_id, cause),
            _ => {}
        }
    }

    /// The far end of an answered call hangs up: the loopback b-leg's dialplan ends with `hangup <cause>`, a
    /// single channel hears it from the network.
    pub(super) fn callee_hangs_up(&mut self, call_id: u64, cause: &str) {
        let Some(call) = self.calls.get(&call_id) else {
            return;
        };
        let b = call.b.clone();
        let callee = b.clone().unwrap_or_else(|| call.a.clone());
        self.dialplan_app_end(b.as_deref());
        self.dialplan_hangup(b.as_deref(), &callee, cause);
    }

    pub(super) fn enter_execute(&mut self, b: Option<&str>) {
        if let Some(bu) = b {
            self.set_state(bu, "CS_EXECUTE", 4);
            if let Some(ch) = self.channels.get_mut(bu) {
                let dest = ch.profile.dest.clone();
                ch.vars.add("DP_MATCH", &format!("ARRAY::{dest}|:{dest}"));
            }
        }
    }

    /// `ring_ready` on the callee: both legs go RINGING (CHANNEL_PROGRESS).
    pub(super) fn ring(&mut self, call: &Call, b: Option<&str>) {
        if let Some(bu) = b {
            self.dialplan_app_start(Some(bu), "ring_ready", "", false);
        }
        self.progress(&call.a, false);
        if let Some(bu) = b {
            self.progress(bu, false);
            self.dialplan_app_end(Some(bu));
        }
    }

    /// A sofia leg hears from the far end (183 or 200 with SDP): its codecs (CODEC events), its address and the
    /// callee's name.
    fn sdp_arrives(&mut self, uuid: &str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        let sofia = ch.kind == LegKind::Single && matches!(ch.endpoint.as_str(), "sofia" | "user");
        if !sofia || ch.codecs != Codecs::Unset {
            return;
        }
        if let Some((_, host)) = ch.name.rsplit_once('@') {
            ch.profile.network_addr = host.split(':').next().unwrap_or("").to_string();
        }
        ch.profile.callee_name = ch.profile.dest.clone();
        self.set_codecs(uuid);
    }

    pub(super) fn progress(&mut self, uuid: &str, media: bool) {
        if media {
            self.sdp_arrives(uuid);
        }
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
    pub(super) fn callee_answer(&mut self, call_id: u64) {
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

    pub(super) fn mark_answered(&mut self, uuid: &str) {
        self.sdp_arrives(uuid);
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
    pub(super) fn settle(&mut self, call_id: u64, result: Result<String, String>) {
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

    pub(super) fn originate_timeout(&mut self, call_id: u64) {
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
    pub(super) fn dialplan_hangup(&mut self, b: Option<&str>, callee: &str, cause: &str) {
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

    pub(super) fn hangup_with(&mut self, uuid: &str, cause: &str, timeout: bool) {
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

    pub(super) fn mark_hangup(&mut self, uuid: &str, cause: &str) {
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

    pub(super) fn report(&mut self, uuid: &str) {
        self.set_state(uuid, "CS_REPORTING", 11);
        let cause = match self.channels.get_mut(uuid) {
            Some(ch) => {
                ch.set_cdr_vars();
                ch.cause.clone().unwrap_or_default()
            }
            None => return,
        };
        // FreeSWITCH runs it at the end of the hangup state, with the timestamps and `hangup_cause` already set
        // (here they are computed on reporting, just above): before CHANNEL_HANGUP_COMPLETE either way.
        self.run_hangup_hook(uuid);
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

    pub(super) fn destroy(&mut self, uuid: &str) {
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
