//! One simulated channel and the way FreeSWITCH renders it into event headers.
//!
//! Header names and order come from the real captures (`fixtures/esl/answered_call_events.md`): the core block
//! (`Event-Name` … `Event-Sequence`), event-specific headers, the channel block (`Channel-State` … codecs, with
//! `Hangup-Cause` after `Answer-State` once the channel is down), the caller profile (`Caller-*`, empty fields
//! left out) and, for the event types FreeSWITCH extends, every channel variable as `variable_*` in the order
//! the variables were set. CDR variables (`variable_billsec` …) are added when the channel reports.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::sim::originate::VarSet;
use crate::sim::scenario::Action;

/// Which kind of leg this is (it decides names, direction and variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegKind {
    /// `loopback/X-a`: the originated (outbound) half of a loopback pair.
    LoopA,
    /// `loopback/X-b`: the inbound half that runs the dialplan.
    LoopB,
    /// A single outbound channel (sofia, user, null): the far end is not on this switch.
    Single,
}

/// The caller profile (`Caller-*` headers).
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub dialplan: String,
    pub cid_name: String,
    pub cid_num: String,
    pub orig_cid_name: String,
    pub orig_cid_num: String,
    pub callee_name: String,
    pub callee_num: String,
    pub ani: String,
    pub dest: String,
    pub source: String,
    pub context: String,
    /// The far end's address once a sofia leg has heard from it.
    pub network_addr: String,
    pub transfer_us: u64,
    pub bridged_us: u64,
    /// `Caller-Profile-Index`: 1, and one more for each transfer (each gets a new caller profile).
    pub index: u32,
    /// When this caller profile was made (the channel's creation, or the last transfer).
    pub created_us: u64,
    /// Set by a transfer: the destination before it (`Caller-RDNIS`) and `Caller-Transfer-Source`.
    pub transfer: Option<TransferProfile>,
}

/// What a transfer or a `uuid_bridge` writes into the new caller profile.
#[derive(Debug, Clone, Default)]
pub struct TransferProfile {
    /// `Caller-RDNIS` (a transfer's old destination; empty: no header).
    pub rdnis: String,
    pub source: String,
    /// A transfer makes the new profile's logical direction inbound; a `uuid_bridge` keeps the old one.
    pub logical_inbound: bool,
}

/// The channel's `park`: entered by the park application (`app_uuid`, whose EXECUTE_COMPLETE ends it) or by the
/// state machine (`park_after_bridge`: no application).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub app_uuid: Option<String>,
}

/// This channel's side of a `uuid_bridge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeLink {
    pub peer: String,
    /// The originator runs the bridge (CHANNEL_BRIDGE / CHANNEL_UNBRIDGE fire on it); the originatee sleeps in it.
    pub originator: bool,
}

/// The other leg's caller profile as the bridge copied it (`Other-Type`, `Other-Leg-*` headers).
#[derive(Debug, Clone)]
pub struct OtherLeg {
    /// `originator` or `originatee`.
    pub kind: &'static str,
    pub headers: Vec<(String, String)>,
}

/// An application waiting for the channel (`uuid_broadcast` queues them as private events).
#[derive(Debug, Clone)]
pub struct QueuedApp {
    pub app: String,
    pub arg: String,
    /// The command event's headers, fired back as PRIVATE_COMMAND once the application returns.
    pub command: Vec<(String, String)>,
}

/// A member's patience: answered and parked in silence for `ms`, the callee hangs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    pub ms: u64,
    /// Since when the channel has been waiting in silence (`None`: it is not).
    pub waiting_since: Option<u64>,
}

/// The codecs a channel has: a loopback leg gets them at creation (read, then write), a sofia leg when the far
/// end's SDP arrives (both at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codecs {
    Unset,
    Read,
    ReadWrite,
}

/// What the channel is doing at the application level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    Idle,
    /// An application that completes by itself at a timer (playback, sleep, play_and_get_digits…).
    Running {
        app: String,
        arg: String,
        app_uuid: String,
        playback: bool,
    },
    /// Bridged to another channel by the `bridge` application.
    Bridged {
        app_uuid: String,
        arg: String,
    },
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub uuid: String,
    /// The Unique-ID of the CODEC events, fired before `origination_uuid` replaces the session's own uuid.
    pub early_uuid: String,
    pub name: String,
    /// The name FreeSWITCH uses in the two CODEC events before it renames the loopback channel.
    pub early_name: String,
    pub kind: LegKind,
    pub endpoint: String,
    pub outbound: bool,
    pub state: &'static str,
    pub state_num: u8,
    pub callstate: &'static str,
    pub answer_state: &'static str,
    pub hit_dialplan: bool,
    pub profile: Profile,
    pub vars: VarSet,
    pub cause: Option<String>,
    pub created_us: u64,
    pub answered_us: u64,
    pub progress_us: u64,
    pub progress_media_us: u64,
    pub hangup_us: u64,
    /// The other half of a loopback pair.
    pub partner: Option<String>,
    /// The channel bridged to this one.
    pub bridged: Option<String>,
    pub call: u64,
    pub activity: Activity,
    pub session_id: u64,
    pub last_app: Option<(String, String)>,
    pub hanging_up: bool,
    /// Which codecs are set: events carry `Channel-Read-Codec-*` / `Channel-Write-Codec-*` from then on.
    pub codecs: Codecs,
    /// Inside `park`: the park application's Application-UUID. Applications sent with `sendmsg` run within it and
    /// the channel stays parked after each; it ends (CHANNEL_UNPARK and its EXECUTE_COMPLETE) at hang-up or
    /// transfer.
    pub park: Option<Parked>,
    /// Its `uuid_bridge`, while bridged.
    pub uuid_bridge: Option<BridgeLink>,
    /// The other leg's profile since a `uuid_bridge` (kept after the bridge ends, as FreeSWITCH does).
    pub other_leg: Option<OtherLeg>,
    /// Applications queued by `uuid_broadcast`, run one after the other when the channel is free.
    pub queued: VecDeque<QueuedApp>,
    /// An agent's leg (scenario `[[agent]]`): how the call ends once bridged.
    pub talk: Option<crate::sim::scenario::TalkPlan>,
    /// A member's leg (scenario `patience_ms`).
    pub patience: Option<Patience>,
    /// Who answers (scenario `callee`): what `amd` and `avmd` find.
    pub callee: crate::sim::scenario::CalleePlan,
    /// The running `amd`'s decision, until it is reported.
    pub amd_verdict: Option<crate::sim::scenario::Verdict>,
    /// avmd listens on the channel.
    pub avmd: bool,
    /// The headers of the `sendmsg` whose application runs now: FreeSWITCH fires them back as PRIVATE_COMMAND
    /// when the application returns.
    pub pending_private: Option<Vec<(String, String)>>,
    /// The actions still to run of the extension a transfer found (`None`: the channel runs no extension).
    pub dialplan: Option<VecDeque<Action>>,
    /// A running `play_and_get_digits`.
    pub digits: Option<super::digits::DigitsRead>,
}

/// Two instants (µs since the epoch) of a CDR duration.
#[derive(Debug, Clone, Copy)]
struct Span {
    from: u64,
    to: u64,
}

impl Span {
    /// The duration in `unit` µs as FreeSWITCH computes it: both instants truncated to whole units, subtracted.
    fn whole(self, unit: u64) -> u64 {
        (self.to / unit).saturating_sub(self.from / unit)
    }
}

/// Static identity of the simulated switch (the `FreeSWITCH-*` headers).
#[derive(Debug, Clone)]
pub struct Identity {
    pub core_uuid: String,
    pub hostname: String,
    pub ipv4: String,
    pub ipv6: String,
}

pub fn stamp_local(us: u64) -> String {
    datetime(us).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn stamp_gmt(us: u64) -> String {
    datetime(us).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn datetime(us: u64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(i64::try_from(us).unwrap_or(0)).unwrap_or_default()
}

/// The headers every event starts with.
pub fn core_headers(
    h: &mut Vec<(String, String)>,
    id: &Identity,
    name: &str,
    now_us: u64,
    calling: (&str, &str, u32),
    seq: u64,
) {
    h.push(("Event-Name".into(), name.into()));
    h.push(("Core-UUID".into(), id.core_uuid.clone()));
    h.push(("FreeSWITCH-Hostname".into(), id.hostname.clone()));
    h.push(("FreeSWITCH-Switchname".into(), id.hostname.clone()));
    h.push(("FreeSWITCH-IPv4".into(), id.ipv4.clone()));
    h.push(("FreeSWITCH-IPv6".into(), id.ipv6.clone()));
    h.push(("Event-Date-Local".into(), stamp_local(now_us)));
    h.push(("Event-Date-GMT".into(), stamp_gmt(now_us)));
    h.push(("Event-Date-Timestamp".into(), now_us.to_string()));
    h.push(("Event-Calling-File".into(), calling.0.into()));
    h.push(("Event-Calling-Function".into(), calling.1.into()));
    h.push(("Event-Calling-Line-Number".into(), calling.2.to_string()));
    h.push(("Event-Sequence".into(), seq.to_string()));
}

/// `switch_channel_callstate_t`'s number of a callstate name (`Channel-Call-State-Number`).
pub fn callstate_number(callstate: &str) -> u8 {
    match callstate {
        "DOWN" => 0,
        "DIALING" => 1,
        "RINGING" => 2,
        "EARLY" => 3,
        "ACTIVE" => 4,
        "HELD" => 5,
        "RING_WAIT" => 6,
        "HANGUP" => 7,
        "UNHELD" => 8,
        _ => 0,
    }
}

/// Events whose channel data includes the variables (`switch_channel_event_set_extended_data`): the one list,
/// kept where the engine's ESL filter needs it too.
pub fn carries_variables(event: &str) -> bool {
    crate::engine::subscription::CARRY_VARIABLES.contains(&event)
}

impl Channel {
    /// The channel block, profile and (when the event type carries them) variables.
    pub fn push_data(&self, h: &mut Vec<(String, String)>, event: &str, codec_only: bool) {
        h.push(("Channel-State".into(), self.state.into()));
        h.push(("Channel-Call-State".into(), self.callstate.into()));
        h.push(("Channel-State-Number".into(), self.state_num.to_string()));
        h.push((
            "Channel-Name".into(),
            if codec_only {
                self.early_name.clone()
            } else {
                self.name.clone()
            },
        ));
        h.push((
            "Unique-ID".into(),
            if codec_only {
                self.early_uuid.clone()
            } else {
                self.uuid.clone()
            },
        ));
        let dir = if self.outbound { "outbound" } else { "inbound" };
        h.push(("Call-Direction".into(), dir.into()));
        h.push(("Presence-Call-Direction".into(), dir.into()));
        h.push(("Channel-HIT-Dialplan".into(), self.hit_dialplan.to_string()));
        h.push((
            "Channel-Call-UUID".into(),
            if codec_only {
                self.early_uuid.clone()
            } else {
                self.uuid.clone()
            },
        ));
        h.push(("Answer-State".into(), self.answer_state.into()));
        if let Some(c) = &self.cause
            && self.hanging_up
        {
            h.push(("Hangup-Cause".into(), c.clone()));
        }
        if self.codecs != Codecs::Unset {
            for (n, v) in [
                ("Channel-Read-Codec-Name", "L16"),
                ("Channel-Read-Codec-Rate", "8000"),
                ("Channel-Read-Codec-Bit-Rate", "128000"),
            ] {
                h.push((n.into(), v.into()));
            }
        }
        if self.codecs == Codecs::ReadWrite {
            for (n, v) in [
                ("Channel-Write-Codec-Name", "L16"),
                ("Channel-Write-Codec-Rate", "8000"),
                ("Channel-Write-Codec-Bit-Rate", "128000"),
            ] {
                h.push((n.into(), v.into()));
            }
        }
        if codec_only {
            return;
        }
        self.push_profile(h);
        if let Some(o) = &self.other_leg {
            h.push(("Other-Type".into(), o.kind.into()));
            h.extend(o.headers.iter().cloned());
        }
        if carries_variables(event) {
            for (n, v) in self.vars.iter() {
                h.push((format!("variable_{n}"), v.to_string()));
            }
        }
    }

    fn push_profile(&self, h: &mut Vec<(String, String)>) {
        let p = &self.profile;
        let dir = if self.outbound { "outbound" } else { "inbound" };
        let mut put = |n: &str, v: &str| {
            if !v.is_empty() {
                h.push((n.into(), v.into()));
            }
        };
        put("Caller-Direction", dir);
        let logical = if p.transfer.as_ref().is_some_and(|t| t.logical_inbound) {
            "inbound"
        } else {
            dir
        };
        put("Caller-Logical-Direction", logical);
        put("Caller-Dialplan", &p.dialplan);
        put("Caller-Caller-ID-Name", &p.cid_name);
        put("Caller-Caller-ID-Number", &p.cid_num);
        put("Caller-Orig-Caller-ID-Name", &p.orig_cid_name);
        put("Caller-Orig-Caller-ID-Number", &p.orig_cid_num);
        put("Caller-Callee-ID-Name", &p.callee_name);
        put("Caller-Callee-ID-Number", &p.callee_num);
        put("Caller-Network-Addr", &p.network_addr);
        put("Caller-ANI", &p.ani);
        put("Caller-Destination-Number", &p.dest);
        put("Caller-Unique-ID", &self.uuid);
        put("Caller-Source", &p.source);
        if let Some(t) = &p.transfer {
            put("Caller-Transfer-Source", &t.source);
        }
        put("Caller-Context", &p.context);
        if let Some(t) = &p.transfer {
            put("Caller-RDNIS", &t.rdnis);
        }
        put("Caller-Channel-Name", &self.name);
        put("Caller-Profile-Index", &p.index.max(1).to_string());
        let created = self.created_us.to_string();
        let profile_created = if p.created_us > 0 {
            p.created_us.to_string()
        } else {
            created.clone()
        };
        put("Caller-Profile-Created-Time", &profile_created);
        put("Caller-Channel-Created-Time", &created);
        put(
            "Caller-Channel-Answered-Time",
            &self.answered_us.to_string(),
        );
        put(
            "Caller-Channel-Progress-Time",
            &self.progress_us.to_string(),
        );
        put(
            "Caller-Channel-Progress-Media-Time",
            &self.progress_media_us.to_string(),
        );
        put("Caller-Channel-Hangup-Time", &self.hangup_us.to_string());
        put("Caller-Channel-Transfer-Time", &p.transfer_us.to_string());
        put("Caller-Channel-Resurrect-Time", "0");
        put("Caller-Channel-Bridged-Time", &p.bridged_us.to_string());
        put("Caller-Channel-Last-Hold", "0");
        put("Caller-Channel-Hold-Accum", "0");
        put("Caller-Screen-Bit", "true");
        put("Caller-Privacy-Hide-Name", "false");
        put("Caller-Privacy-Hide-Number", "false");
    }

    /// The `Other-Leg-*` headers of this channel's caller profile (`switch_caller_profile_event_set_data` with the
    /// prefix `Other-Leg`: the capture's bridge shows no `Profile-Index` in it).
    pub fn other_leg_headers(&self) -> Vec<(String, String)> {
        let mut h = Vec::with_capacity(40);
        self.push_profile(&mut h);
        h.into_iter()
            .filter(|(n, _)| n != "Caller-Profile-Index")
            .map(|(n, v)| (n.replacen("Caller-", "Other-Leg-", 1), v))
            .collect()
    }

    /// Adds the CDR variables FreeSWITCH computes when the channel reports (before CHANNEL_HANGUP_COMPLETE).
    pub fn set_cdr_vars(&mut self) {
        let cause = self
            .cause
            .clone()
            .unwrap_or_else(|| "NORMAL_CLEARING".into());
        let end = self.hangup_us.max(self.created_us);
        let start = self.created_us;
        let answered = self.answered_us;
        let v = &mut self.vars;
        v.add("hangup_cause", &cause);
        v.add(
            "hangup_cause_q850",
            &crate::sim::causes::q850(&cause).to_string(),
        );
        v.add("digits_dialed", "none");
        v.add("start_stamp", &stamp_local(start));
        v.add("profile_start_stamp", &stamp_local(start));
        if answered > 0 {
            v.add("answer_stamp", &stamp_local(answered));
        }
        if self.progress_us > 0 {
            v.add("progress_stamp", &stamp_local(self.progress_us));
        }
        if self.progress_media_us > 0 {
            v.add("progress_media_stamp", &stamp_local(self.progress_media_us));
        }
        v.add("end_stamp", &stamp_local(end));
        let pair = |v: &mut VarSet, name: &str, us: u64| {
            v.add(&format!("{name}_epoch"), &(us / 1_000_000).to_string());
            v.add(&format!("{name}_uepoch"), &us.to_string());
        };
        pair(v, "start", start);
        pair(v, "profile_start", start);
        pair(v, "answer", answered);
        pair(v, "bridge", self.profile.bridged_us);
        pair(v, "last_hold", 0);
        v.add("hold_accum_seconds", "0");
        v.add("hold_accum_usec", "0");
        v.add("hold_accum_ms", "0");
        pair(v, "resurrect", 0);
        pair(v, "progress", self.progress_us);
        pair(v, "progress_media", self.progress_media_us);
        pair(v, "end", end);
        if let Some((app, arg)) = &self.last_app {
            v.add("last_app", app);
            if !arg.is_empty() {
                v.add("last_arg", arg);
            }
        }
        v.add(
            "caller_id",
            &format!("\"{}\" <{}>", self.profile.cid_name, self.profile.cid_num),
        );
        // `switch_channel_set_timestamps`: each *sec is a difference of whole-second epochs and each *msec of
        // whole-millisecond epochs (so a 1.1 s call bills 1 or 2 s), each *usec the exact difference.
        let span = |from: u64, to: u64| Span { from, to };
        let since_start = |t: u64| if t > 0 { span(start, t) } else { span(0, 0) };
        let bill = if answered > 0 {
            span(answered, end)
        } else {
            span(0, 0)
        };
        let rows: [(&str, Span); 7] = [
            ("duration", span(start, end)),
            ("billsec", bill),
            ("progresssec", since_start(self.progress_us)),
            ("answersec", since_start(answered)),
            ("waitsec", span(0, 0)),
            ("progress_mediasec", since_start(self.progress_media_us)),
            ("flow_billsec", bill),
        ];
        for (n, s) in rows {
            v.add(n, &s.whole(1_000_000).to_string());
        }
        let ms_names = [
            "mduration",
            "billmsec",
            "progressmsec",
            "answermsec",
            "waitmsec",
            "progress_mediamsec",
            "flow_billmsec",
        ];
        for (n, (_, s)) in ms_names.iter().zip(rows) {
            v.add(n, &s.whole(1000).to_string());
        }
        let us_names = [
            "uduration",
            "billusec",
            "progressusec",
            "answerusec",
            "waitusec",
            "progress_mediausec",
            "flow_billusec",
        ];
        for (n, (_, s)) in us_names.iter().zip(rows) {
            v.add(n, &s.whole(1).to_string());
        }
        if self.kind != LegKind::Single {
            v.add("is_loopback", "1");
        }
    }

    /// One row of `show channels` (column order of the real reply).
    pub fn show_row(&self, hostname: &str) -> Vec<(&'static str, String)> {
        let (app, data) = match &self.activity {
            Activity::Running { app, arg, .. } => (app.clone(), arg.clone()),
            Activity::Bridged { arg, .. } => ("bridge".to_string(), arg.clone()),
            _ if self.uuid_bridge.is_some() => ("uuid_bridge".to_string(), String::new()),
            Activity::Idle if self.park.is_some() => ("park".to_string(), String::new()),
            Activity::Idle => (String::new(), String::new()),
        };
        let p = &self.profile;
        vec![
            ("uuid", self.uuid.clone()),
            (
                "direction",
                if self.outbound { "outbound" } else { "inbound" }.into(),
            ),
            ("created", stamp_local(self.created_us)),
            ("created_epoch", (self.created_us / 1_000_000).to_string()),
            ("name", self.name.clone()),
            ("state", self.state.into()),
            ("cid_name", p.cid_name.clone()),
            ("cid_num", p.cid_num.clone()),
            ("ip_addr", String::new()),
            ("dest", p.dest.clone()),
            ("application", app),
            ("application_data", data),
            ("dialplan", p.dialplan.clone()),
            ("context", p.context.clone()),
            ("read_codec", "L16".into()),
            ("read_rate", "8000".into()),
            ("read_bit_rate", "128000".into()),
            ("write_codec", "L16".into()),
            ("write_rate", "8000".into()),
            ("write_bit_rate", "128000".into()),
            ("secure", String::new()),
            ("hostname", hostname.into()),
            ("presence_id", String::new()),
            ("presence_data", String::new()),
            ("accountcode", String::new()),
            ("callstate", self.callstate.into()),
            ("callee_name", p.callee_name.clone()),
            ("callee_num", p.callee_num.clone()),
            (
                "callee_direction",
                if self.outbound {
                    "RECV".into()
                } else {
                    String::new()
                },
            ),
            (
                "call_uuid",
                if self.outbound {
                    self.uuid.clone()
                } else {
                    String::new()
                },
            ),
            ("sent_callee_name", String::new()),
            ("sent_callee_num", String::new()),
            ("initial_cid_name", p.orig_cid_name.clone()),
            ("initial_cid_num", p.orig_cid_num.clone()),
            ("initial_ip_addr", String::new()),
            ("initial_dest", p.dest.clone()),
            ("initial_dialplan", p.dialplan.clone()),
            ("initial_context", p.context.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billsec_subtracts_whole_second_epochs_and_billmsec_whole_milliseconds() {
        // 1.1 s answered at x.95 s: FreeSWITCH bills 2 s (the capture `playback_missing` bills 1.36 s as 2).
        let s = Span {
            from: 10_950_000,
            to: 12_050_000,
        };
        assert_eq!(s.whole(1_000_000), 2);
        assert_eq!(s.whole(1000), 1100);
        let s = Span {
            from: 10_050_000,
            to: 11_150_000,
        };
        assert_eq!(s.whole(1_000_000), 1);
        assert_eq!(s.whole(1), 1_100_000);
    }
}
