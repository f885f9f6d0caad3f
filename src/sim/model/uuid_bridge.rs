//! `uuid_bridge <a> <b>`: joining two live channels, and what becomes of the survivor when one side hangs up.
//!
//! As `switch_ivr_uuid_bridge` (src/switch_ivr_bridge.c) does it: `a` is the originator unless only `b` has media
//! (then they swap); a missing uuid, a hung-up originator or two channels without media answer `-ERR Invalid uuid`,
//! success `+OK <b>` (mod_commands' `uuid_bridge_function`, which also tries a third uuid when the second fails).
//! The channels get `bridge_channel`/`bridge_uuid`/`signal_bond` (the originator also `uuid_bridge`), the
//! `original_*` variables, a new caller profile each (index + 1, `Caller-Transfer-Source`
//! `<epoch>:<uuid>:uuid_br:<other>`, `transfer_history`/`transfer_source`) and a copy of the other's profile
//! (`Other-Type` originatee/originator, `Other-Leg-*`). They leave what they did (park: CHANNEL_UNPARK and park's
//! EXECUTE_COMPLETE), go CS_HIBERNATE → CS_RESET → CS_SOFT_EXECUTE, get a CHANNEL_EXECUTE `Application: uuid_bridge`
//! each (`uuid_bridge_on_soft_execute`), and `switch_ivr_multi_threaded_bridge` runs on the originator: the
//! originatee goes CS_CONSUME_MEDIA, both get a bridged time, CHANNEL_BRIDGE fires **on the originator only**
//! (`Bridge-A-Unique-ID`, `Bridge-B-Unique-ID`, its `Other-Leg-Unique-ID` is the originatee), `bridge_to` and
//! `last_bridge_to` are set on both, the originatee goes CS_EXCHANGE_MEDIA.
//!
//! When either side hangs up, each side's bridge thread ends (`bridge_to` removed), the survivor gets
//! `bridge_hangup_cause`, CHANNEL_UNBRIDGE fires on the originator, then the survivor: an originator with
//! `park_after_bridge` parks, with `hangup_after_bridge` hangs up with the other side's cause, otherwise it returns
//! to CS_EXECUTE, finds nothing left to run and hangs up NORMAL_CLEARING; an originatee parks with
//! `park_after_bridge`, otherwise hangs up NORMAL_CLEARING (`audio_bridge_on_exchange_media`).
//!
//! Not modelled: bridging a leg whose originate is still ringing (FreeSWITCH waits for its answer inside the
//! bridge; the simulator refuses with `-ERR Invalid uuid`), and a channel inside the `bridge` application.
//!
//! Once bridged, an agent's leg (scenario `[[agent]]`) starts its talk time; when it is over the chosen side's far
//! end hangs up.

use super::channel::{BridgeLink, OtherLeg, Parked, TransferProfile};
use super::{Activity, Switch, Timer};
use crate::sim::originate::switch_true;
use crate::sim::scenario::Ender;

const BRIDGE_FILE: &str = "switch_ivr_bridge.c";

impl Switch {
    /// The `uuid_bridge` api: its reply text.
    pub(super) fn uuid_bridge_api(&mut self, args: &[&str]) -> String {
        let (Some(a), Some(b)) = (args.first(), args.get(1)) else {
            return "-USAGE: <uuid> <other_uuid>\n".into();
        };
        if self.uuid_bridge(a, b) {
            return format!("+OK {b}\n");
        }
        match args.get(2) {
            Some(c) if self.uuid_bridge(a, c) => format!("+OK {c}\n"),
            _ => "-ERR Invalid uuid\n".into(),
        }
    }

    /// `switch_ivr_uuid_bridge`: false when the channels cannot be bridged.
    fn uuid_bridge(&mut self, a: &str, b: &str) -> bool {
        let (Some(ca), Some(cb)) = (self.channels.get(a), self.channels.get(b)) else {
            return false;
        };
        if a == b || ca.hanging_up {
            return false;
        }
        // The simulator's `bridge` application keeps its own pair: not re-bridged.
        if matches!(ca.activity, Activity::Bridged { .. })
            || matches!(cb.activity, Activity::Bridged { .. })
        {
            tracing::debug!(
                a,
                b,
                "sim: uuid_bridge of a channel inside the bridge application refused"
            );
            return false;
        }
        // A leg whose originate has not returned yet (still ringing) is not modelled in a bridge: refused.
        let originating = |u: &str, call: u64| {
            self.calls
                .get(&call)
                .is_some_and(|c| !c.settled && c.a == u)
        };
        if originating(a, ca.call) || originating(b, cb.call) {
            tracing::debug!(
                a,
                b,
                "sim: uuid_bridge of a leg still being originated refused"
            );
            return false;
        }
        let media_up = |c: &super::Channel| c.answered_us > 0 || c.progress_media_us > 0;
        let (a, b) = match (media_up(ca), media_up(cb)) {
            (true, _) => (a.to_string(), b.to_string()),
            (false, true) => (b.to_string(), a.to_string()),
            (false, false) => return false,
        };
        for u in [&a, &b] {
            self.break_bridge(u);
        }
        self.link(&a, &b);
        for u in [&a, &b] {
            self.quiet_end(u);
            self.leave_for_bridge(u);
        }
        for u in [&a, &b] {
            self.set_state(u, "CS_HIBERNATE", 8);
            self.set_state(u, "CS_RESET", 9);
            self.set_state(u, "CS_SOFT_EXECUTE", 3);
        }
        if let Some(ch) = self.channels.get_mut(&a) {
            ch.vars.remove("uuid_bridge");
        }
        for (x, y, line) in [(&a, &b, 1236), (&b, &a, 1243)] {
            self.fire(
                "CHANNEL_EXECUTE",
                x,
                (BRIDGE_FILE, "uuid_bridge_on_soft_execute", line),
                &[],
                &[("Application", "uuid_bridge"), ("Application-Data", y)],
            );
        }
        self.join(&a, &b);
        true
    }

    /// The variables and caller profiles `switch_ivr_uuid_bridge` sets before it changes the states.
    fn link(&mut self, a: &str, b: &str) {
        let now = self.now;
        let names: Vec<String> = [a, b]
            .iter()
            .map(|u| {
                self.channels
                    .get(*u)
                    .map(|c| c.name.clone())
                    .unwrap_or_default()
            })
            .collect();
        let set = |sw: &mut Switch, u: &str, vars: &[(&str, &str)]| {
            if let Some(ch) = sw.channels.get_mut(u) {
                for (n, v) in vars {
                    ch.vars.add(n, v);
                }
            }
        };
        set(
            self,
            a,
            &[
                ("uuid_bridge", b),
                ("bridge_channel", &names[1]),
                ("bridge_uuid", b),
                ("signal_bond", b),
            ],
        );
        set(
            self,
            b,
            &[
                ("bridge_channel", &names[0]),
                ("bridge_uuid", a),
                ("signal_bond", a),
            ],
        );
        for u in [b, a] {
            if let Some(ch) = self.channels.get_mut(u) {
                let p = ch.profile.clone();
                ch.vars.add("original_destination_number", &p.dest);
                ch.vars.add("original_caller_id_name", &p.cid_name);
                ch.vars.add("original_caller_id_number", &p.cid_num);
                // switch_channel_step_caller_profile: a new profile, one more in the index.
                ch.profile.index = p.index.max(1) + 1;
                ch.profile.created_us = now;
            }
        }
        let copy = |sw: &Switch, u: &str| sw.channels.get(u).map(|c| c.other_leg_headers());
        let (of_a, of_b) = (copy(self, a), copy(self, b));
        let callee_b = self
            .channels
            .get(b)
            .map(|c| (c.profile.callee_name.clone(), c.profile.callee_num.clone()));
        let caller_a = self
            .channels
            .get(a)
            .map(|c| (c.profile.cid_name.clone(), c.profile.cid_num.clone()));
        for (u, peer, originator, other, kind) in [
            (a, b, true, of_b, "originatee"),
            (b, a, false, of_a, "originator"),
        ] {
            let Some(ch) = self.channels.get_mut(u) else {
                continue;
            };
            ch.other_leg = other.map(|headers| OtherLeg { kind, headers });
            if originator && let Some((n, num)) = &callee_b {
                ch.profile.callee_name = n.clone();
                ch.profile.callee_num = num.clone();
            }
            if !originator && let Some((n, num)) = &caller_a {
                ch.profile.cid_name = n.clone();
                ch.profile.cid_num = num.clone();
            }
            let source = format!("{}:{u}:uuid_br:{peer}", now / 1_000_000);
            let old = ch.profile.transfer.take().unwrap_or_default();
            ch.profile.transfer = Some(TransferProfile {
                rdnis: old.rdnis,
                source: source.clone(),
                logical_inbound: old.logical_inbound,
            });
            ch.vars.add("transfer_history", &source);
            ch.vars.add("transfer_source", &source);
            ch.uuid_bridge = Some(BridgeLink {
                peer: peer.to_string(),
                originator,
            });
        }
    }

    /// The channel leaves what it was doing for the bridge (its extension and queued applications are dropped).
    fn leave_for_bridge(&mut self, uuid: &str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        ch.dialplan = None;
        ch.queued.clear();
        if matches!(ch.activity, Activity::Running { .. }) {
            self.digits_abandon(uuid);
            self.finish_app(uuid, "");
        }
        self.leave_park(uuid);
    }

    /// `switch_ivr_multi_threaded_bridge` from the originator `a` to the originatee `b`.
    fn join(&mut self, a: &str, b: &str) {
        let now = self.now;
        self.set_state(b, "CS_CONSUME_MEDIA", 7);
        if let Some(ch) = self.channels.get_mut(b) {
            ch.vars.add("call_uuid", a);
        }
        for u in [a, b] {
            if let Some(ch) = self.channels.get_mut(u) {
                ch.profile.bridged_us = now;
            }
        }
        self.fire(
            "CHANNEL_BRIDGE",
            a,
            (BRIDGE_FILE, "switch_ivr_multi_threaded_bridge", 1689),
            &[("Bridge-A-Unique-ID", a), ("Bridge-B-Unique-ID", b)],
            &[],
        );
        let a_name = self
            .channels
            .get(a)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let b_name = self
            .channels
            .get(b)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        for (u, other, other_name) in [(a, b, &b_name), (b, a, &a_name)] {
            if let Some(ch) = self.channels.get_mut(u) {
                ch.vars.add("bridge_to", other);
                ch.vars.add("last_bridge_to", other);
                ch.vars.add("bridge_channel", other_name);
                ch.vars.add("bridge_uuid", other);
                ch.vars.add("signal_bond", other);
            }
        }
        self.set_state(b, "CS_EXCHANGE_MEDIA", 5);
        for (u, peer) in [(a, b), (b, a)] {
            if let Some(plan) = self.channels.get(u).and_then(|c| c.talk) {
                self.schedule(
                    plan.talk_ms,
                    Timer::Talk {
                        agent: u.to_string(),
                        peer: peer.to_string(),
                    },
                );
            }
        }
    }

    /// Ends the channel's `uuid_bridge` (it hangs up, or is bridged elsewhere): CHANNEL_UNBRIDGE on the originator,
    /// then the other side's fate.
    pub(super) fn break_bridge(&mut self, uuid: &str) {
        let Some(link) = self
            .channels
            .get_mut(uuid)
            .and_then(|c| c.uuid_bridge.take())
        else {
            return;
        };
        let peer = link.peer;
        if let Some(p) = self.channels.get_mut(&peer) {
            p.uuid_bridge = None;
        }
        let cause = self
            .channels
            .get(uuid)
            .filter(|c| c.hanging_up)
            .and_then(|c| c.cause.clone());
        for u in [uuid, peer.as_str()] {
            if let Some(ch) = self.channels.get_mut(u) {
                ch.vars.remove("bridge_to");
            }
        }
        if let (Some(c), Some(p)) = (&cause, self.channels.get_mut(&peer)) {
            p.vars.add("bridge_hangup_cause", c);
        }
        let (a, b) = if link.originator {
            (uuid.to_string(), peer.clone())
        } else {
            (peer.clone(), uuid.to_string())
        };
        if let Some(ch) = self.channels.get_mut(&b) {
            ch.vars.add("call_uuid", &b);
        }
        self.fire(
            "CHANNEL_UNBRIDGE",
            &a,
            (BRIDGE_FILE, "switch_ivr_multi_threaded_bridge", 1879),
            &[("Bridge-A-Unique-ID", &a), ("Bridge-B-Unique-ID", &b)],
            &[],
        );
        self.after_bridge(&peer, !link.originator, cause);
    }

    /// What the surviving side of a bridge does (see the module doc).
    fn after_bridge(&mut self, uuid: &str, originator: bool, other_cause: Option<String>) {
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        if ch.hanging_up {
            return;
        }
        let truthy = |n: &str| switch_true(ch.vars.get(n));
        let park = truthy("park_after_bridge");
        let hangup = originator
            && (truthy("hangup_after_bridge")
                || ch
                    .vars
                    .get("hangup_after_bridge")
                    .is_some_and(|v| v.eq_ignore_ascii_case("explicit")));
        if park {
            self.set_state(uuid, "CS_PARK", 6);
            if let Some(ch) = self.channels.get_mut(uuid) {
                ch.park = Some(Parked { app_uuid: None });
            }
            self.fire(
                "CHANNEL_PARK",
                uuid,
                ("switch_ivr.c", "switch_ivr_park", 1002),
                &[],
                &[],
            );
            self.quiet_check(uuid);
        } else if hangup {
            let cause = other_cause.unwrap_or_else(|| "NORMAL_CLEARING".into());
            self.hangup(uuid, &cause);
        } else {
            if originator {
                self.set_state(uuid, "CS_EXECUTE", 4);
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.vars.add("call_uuid", uuid);
                }
            }
            self.hangup(uuid, "NORMAL_CLEARING");
        }
    }

    /// An agent's talk time is over: the side its plan names hangs up (its far end, NORMAL_CLEARING).
    pub(super) fn talk_over(&mut self, agent: &str, peer: &str) {
        let Some(ch) = self.channels.get(agent) else {
            return;
        };
        if ch.uuid_bridge.as_ref().is_none_or(|l| l.peer != peer) || ch.hanging_up {
            return;
        }
        let Some(plan) = ch.talk else {
            return;
        };
        let ender = match plan.ender {
            Ender::Agent => agent,
            Ender::Customer => peer,
        };
        match self.channels.get(ender).map(|c| c.call) {
            Some(call) => self.callee_hangs_up(call, "NORMAL_CLEARING"),
            None => self.hangup(ender, "NORMAL_CLEARING"),
        }
    }
}
