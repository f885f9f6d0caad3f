//! Legs: how an originate becomes channels. Parses the dial string, picks the first leg that can get a session,
//! builds the originated channel (and, for loopback, its inbound `-b` partner that runs the dialplan) with the
//! variables and caller profile FreeSWITCH gives each, and fires the creation sequence of the captures.

use super::call::Call;
use super::channel::Codecs;
use super::channel::Patience;
use super::{Activity, Channel, LegKind, Requester, Switch, Timer, channel, new_uuid};
use crate::sim::originate::{self, LegStart, OriginateError, VarSet};
use crate::sim::scenario::{Outcome, Plan};

/// The codec variables every new channel gets (L16 at 8 kHz: the simulator has no media).
const CODEC_VARS: [(&str, &str); 4] = [
    ("read_codec", "L16"),
    ("read_rate", "8000"),
    ("write_codec", "L16"),
    ("write_rate", "8000"),
];

impl Switch {
    /// The read and the write codec are set (two CODEC events): at creation for loopback (read, then write), when
    /// the far end's SDP arrives (early media or answer) for a sofia leg (both before either event).
    pub(super) fn set_codecs(&mut self, u: &str) {
        if let Some(c) = self.channels.get_mut(u) {
            c.codecs = match c.kind {
                LegKind::Single => Codecs::ReadWrite,
                _ => Codecs::Read,
            };
        }
        self.fire(
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
        if let Some(c) = self.channels.get_mut(u) {
            c.codecs = Codecs::ReadWrite;
        }
        self.fire(
            "CODEC",
            u,
            (
                "switch_core_codec.c",
                "switch_core_session_set_write_codec",
                450,
            ),
            &[],
            &[
                ("Channel-Write-Codec-Name", "L16"),
                ("Channel-Write-Codec-Rate", "8000"),
                ("Channel-Write-codec-bit-rate", "128000"),
            ],
        );
    }

    /// Starts an originate; `Err(reply)` when it fails before any channel exists.
    pub(super) fn originate(
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

    pub(super) fn start_call(
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
        if self.take_session().is_err() {
            return Err("DESTINATION_OUT_OF_ORDER".into());
        }
        let plan = if leg.endpoint == "null" {
            Plan {
                outcome: Outcome::Answer {
                    ring_ms: 0,
                    early_ms: None,
                    talk_ms: None,
                    cause: "NORMAL_CLEARING".into(),
                    digits: String::new(),
                    digits_after_ms: None,
                },
                talk: None,
                patience_ms: None,
                callee: crate::sim::scenario::CalleePlan::default(),
            }
        } else {
            let since_start_ms = self.now.saturating_sub(self.started_us) / 1000;
            self.scenario
                .plan(&leg.endpoint, &data, &dest, since_start_ms)
        };
        let outcome = plan.outcome;
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
            early_uuid: if has_uuid && kind == LegKind::LoopA {
                new_uuid()
            } else {
                uuid.clone()
            },
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
                // originate gives a sofia leg no dialplan; loopback's a-leg has XML's.
                dialplan: if kind == LegKind::Single {
                    String::new()
                } else {
                    "xml".into()
                },
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
                    "src/switch_ivr_originate.c".into()
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
            codecs: if kind == LegKind::Single {
                Codecs::Unset
            } else {
                Codecs::Read
            },
            park: None,
            uuid_bridge: None,
            other_leg: None,
            queued: Default::default(),
            talk: None,
            patience: None,
            callee: crate::sim::scenario::CalleePlan::default(),
            amd_verdict: None,
            avmd: false,
            pending_private: None,
            dialplan: None,
            digits: None,
        };
        a.vars.add("direction", "outbound");
        a.vars.add("is_outbound", "true");
        a.vars.add("uuid", &uuid);
        a.vars.add("call_uuid", &uuid);
        a.vars.add("session_id", &a.session_id.to_string());
        for (n, v) in CODEC_VARS {
            a.vars.add(n, v);
        }
        a.vars.add("channel_name", &name);
        for (n, v) in vars.iter() {
            a.vars.add(n, v);
        }
        a.vars.add("originate_endpoint", &leg.endpoint);
        let early = vars.get("originate_early_media") != Some("false");
        let _ = early;
        // A loopback a-leg asks the core for its b-leg's session; when that one is refused (capacity), the a-leg
        // stays: half-throttled.
        let b_uuid = (kind == LegKind::LoopA && self.take_session().is_ok()).then(new_uuid);
        let half_throttled = kind == LegKind::LoopA && b_uuid.is_none();
        let mut b_chan = None;
        if let Some(b_uuid) = &b_uuid {
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
            b.vars = VarSet::new();
            b.vars.add("direction", "inbound");
            b.vars.add("uuid", b_uuid);
            b.vars.add("call_uuid", b_uuid);
            b.vars.add("session_id", &b.session_id.to_string());
            b.vars.add("channel_name", &b.name);
            for (n, v) in CODEC_VARS {
                b.vars.add(n, v);
            }
            // The b-leg inherits the originate's variables, origination_uuid (the a-leg's uuid) included.
            for (n, v) in leg.local_vars.iter().chain(o.branches[0].vars.iter()) {
                b.vars.set_checked(n, v, true);
            }
            b.vars.add("other_loopback_leg_uuid", &uuid);
            b.vars.add("loopback_leg", "B");
            b.partner = Some(uuid.clone());
            a.vars.add("other_loopback_leg_uuid", b_uuid);
            a.vars.add("loopback_leg", "A");
            a.partner = Some(b_uuid.clone());
            b_chan = Some(b);
        }
        a.talk = plan.talk;
        a.callee = plan.callee;
        a.patience = plan.patience_ms.map(|ms| Patience {
            ms,
            waiting_since: None,
        });
        self.channels.insert(uuid.clone(), a);
        self.limits.note_sessions(self.channels.len());
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
        if kind == LegKind::LoopA {
            self.set_codecs(&uuid);
        }
        // loopback renames its session to origination_uuid (CHANNEL_UUID); sofia creates it with that uuid.
        if has_uuid && kind == LegKind::LoopA {
            let old = self
                .channels
                .get(&uuid)
                .map(|c| c.early_uuid.clone())
                .unwrap_or_default();
            self.fire(
                "CHANNEL_UUID",
                &uuid,
                (
                    "switch_core_session.c",
                    "switch_core_session_set_uuid",
                    2081,
                ),
                &[("Old-Unique-ID", &old)],
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
            self.limits.note_sessions(self.channels.len());
            self.set_codecs(&bu);
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
        self.schedule(
            u64::from(timeout_s) * 1000,
            Timer::Timeout { call: call_id },
        );
        if half_throttled {
            // The b-leg's session was refused: real FreeSWITCH leaves the a-leg in CS_INIT, CHANNEL_CREATE sent,
            // until originate_timeout, then fails the originate NO_ANSWER (capture `burst_sps`).
            tracing::debug!(%uuid, "sim: loopback b-leg throttled, a-leg waits for originate_timeout");
            return Ok(());
        }
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
        self.callee_step(call_id, 0);
        Ok(())
    }
}
