//! The values that cross the store's API: policy in, claims and outcomes out, member and attempt views.
//!
//! Instants are `DateTime<Utc>` here and epoch milliseconds inside the backends; [`ms`] and [`from_ms`] convert.

use crate::campaign::causes::CauseClass;
use crate::campaign::params::{LostAttempt, MemberOrder, NumberOrder};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A member's id inside its campaign: allocated 1, 2, 3... in insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(pub u64);

impl std::fmt::Display for MemberId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An attempt's id; it is also the FreeSWITCH `origination_uuid`.
pub type AttemptId = Uuid;

/// The end cause given to an attempt whose lease expired (its node vanished), classified per `lost_attempt`.
pub const LOST_ATTEMPT_CAUSE: &str = "LOST_ATTEMPT";
/// End cause of a member whose calendar has no allowed instant left for its timezone.
pub const QUEUE_EXPIRE: &str = "QUEUE_EXPIRE";
/// End cause of a member whose `expire` passed.
pub const MEMBER_EXPIRED: &str = "MEMBER_EXPIRED";
/// End cause of a member with no number left to dial.
pub const NO_COMMUNICATIONS: &str = "NO_COMMUNICATIONS";
/// End cause of a member that used up `max_tries`.
pub const MAX_TRY_COUNT: &str = "MAX_TRY_COUNT";
/// End cause of a member terminated through the API.
pub const MANAGER_REQUEST: &str = "MANAGER_REQUEST";
/// Cause of an attempt whose number is on a do-not-call list (found at claim, no call placed; class error,
/// counting no try), and the end cause of a member left with no number by it.
pub const DNC: &str = "DNC";

/// Campaign parameters the store needs on every call; the engine builds it from the campaign config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePolicy {
    /// Max simultaneous calls of the campaign across all nodes (slots tied to leases).
    pub limit: u32,
    pub max_tries: u32,
    pub wait_between_retries_sec: u32,
    pub member_order: MemberOrder,
    pub number_order: NumberOrder,
    pub tries_per_number: bool,
    pub lost_attempt: LostAttempt,
    /// Recycle rules by cause (see `store::outcome::retry_rule`).
    pub retry_rules: Vec<crate::campaign::retry_rules::RetryRule>,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        QueuePolicy {
            limit: 10,
            max_tries: 5,
            wait_between_retries_sec: 60,
            member_order: MemberOrder::default(),
            number_order: NumberOrder::default(),
            tries_per_number: false,
            lost_attempt: LostAttempt::default(),
            retry_rules: Vec::new(),
        }
    }
}

impl QueuePolicy {
    pub(crate) fn wait_ms(&self) -> i64 {
        i64::from(self.wait_between_retries_sec) * 1000
    }

    /// The wait after a result with `cause`: its recycle rule's, else `wait_between_retries_sec`.
    pub(crate) fn wait_ms_for(&self, cause: &str) -> i64 {
        super::outcome::retry_rule(self, cause)
            .map_or_else(|| self.wait_ms(), |r| i64::from(r.after_sec) * 1000)
    }
}

/// One member handed to the engine to call now: everything needed to originate without another round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub attempt_id: AttemptId,
    pub member_id: MemberId,
    /// 1 for the member's first attempt (uncounted attempts included).
    pub attempt_no: u32,
    /// Index of the chosen number in the member's communications.
    pub comm_index: usize,
    pub number: String,
    pub name: String,
    pub timezone: Option<String>,
    pub variables: serde_json::Map<String, serde_json::Value>,
    pub priority: i64,
    pub lease_until: DateTime<Utc>,
}

/// What a claim call returned: the claims, and the members it ended on the way (expired, no number, calendar over).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClaimBatch {
    pub claims: Vec<Claim>,
    pub ended: Vec<(MemberId, String)>,
}

/// How an attempt ended, as the engine classified it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub attempt_id: AttemptId,
    pub member_id: MemberId,
    /// The hangup cause (or the dialer's own cause).
    pub cause: String,
    /// Final class: the engine already applied the too-short-call and our-own-failure rules.
    pub class: CauseClass,
    pub answered_at: Option<DateTime<Utc>>,
    pub hangup_at: Option<DateTime<Utc>>,
    pub talk_secs: u32,
    /// What happened on the answered call beyond its cause (the callflow's result, how it ended, a failing
    /// step), as compact JSON; recorded with the attempt.
    pub note: Option<String>,
}

/// Where a member stands after an applied result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberFate {
    /// The member ended; `success` when it ended with an OK result.
    Ended { cause: String, success: bool },
    /// The member is due again at this instant.
    Due(DateTime<Utc>),
}

/// Answer of `complete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteOutcome {
    Applied(MemberFate),
    /// This attempt was already completed (or recovered): nothing changed.
    Duplicate,
    /// The attempt is not the member's current one (or the member is gone): nothing changed.
    NotCurrent,
}

/// Answer of `release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The claim is undone without counting; the member is waiting again (or ended if a terminate was pending).
    Released,
    NotCurrent,
}

/// An attempt whose lease expired and was not recovered yet: its node stopped renewing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredLease {
    pub attempt_id: AttemptId,
    pub member_id: MemberId,
    /// The node that held it.
    pub node: String,
}

/// An attempt recovered after its lease expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub attempt_id: AttemptId,
    pub member_id: MemberId,
    pub node: String,
    pub fate: MemberFate,
}

/// Per-member answer of `add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added(MemberId),
    /// Same `external_id` as an existing member: that member was updated.
    Updated(MemberId),
    /// Same `external_id` as a member that is in a call right now: not changed.
    InCall(MemberId),
}

impl AddOutcome {
    pub fn id(self) -> MemberId {
        match self {
            AddOutcome::Added(id) | AddOutcome::Updated(id) | AddOutcome::InCall(id) => id,
        }
    }
}

/// Answer of `update` and `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Done,
    /// Refused: the member is in a call.
    InCall,
    NotFound,
}

/// Answer of `terminate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminateOutcome {
    /// The member ended with MANAGER_REQUEST.
    Terminated,
    /// The member is in a call: kill this attempt's channel; the member ends with MANAGER_REQUEST when it completes.
    KillCall {
        attempt_id: AttemptId,
        node: String,
    },
    AlreadyEnded,
    NotFound,
}

/// A member's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Waiting to be called (due now or later).
    Waiting,
    /// In a call (claimed, under a lease).
    Active,
    Ended,
}

/// A number's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommState {
    Idle,
    Active,
    Done,
}

/// One number of a stored member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Communication {
    pub number: String,
    pub priority: i64,
    pub description: Option<String>,
    pub kind: Option<String>,
    pub state: CommState,
    /// Counted attempts on this number.
    pub attempts: u32,
    pub last_call_at: Option<DateTime<Utc>>,
    pub last_cause: Option<String>,
}

/// A stored member as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    pub name: String,
    pub priority: i64,
    pub timezone: Option<String>,
    pub expire: Option<DateTime<Utc>>,
    pub variables: serde_json::Map<String, serde_json::Value>,
    pub communications: Vec<Communication>,
    pub external_id: Option<String>,
    pub state: MemberState,
    /// When it may be called next (waiting members).
    pub next_due: Option<DateTime<Utc>>,
    /// Counted tries.
    pub tries: u32,
    /// All attempts, counted or not.
    pub attempts: u32,
    pub end_cause: Option<String>,
    pub success: bool,
    /// The attempt in progress (active members).
    pub current_attempt: Option<AttemptId>,
    /// A terminate was asked while in a call; the member ends when the call completes.
    pub terminate_pending: bool,
}

/// One attempt as recorded (SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub attempt_id: AttemptId,
    pub member_id: MemberId,
    pub attempt_no: u32,
    pub comm_index: usize,
    pub number: String,
    pub node: String,
    /// When the attempt was claimed (the originate follows at once).
    pub originate_at: DateTime<Utc>,
    pub answer_at: Option<DateTime<Utc>>,
    pub hangup_at: Option<DateTime<Utc>>,
    pub talk_secs: u32,
    /// The note given with the result (see [`AttemptResult::note`]).
    pub note: Option<String>,
    pub cause: String,
    pub class: CauseClass,
    /// What it did to the member.
    pub fate: MemberFate,
    /// When the result was applied.
    pub completed_at: DateTime<Utc>,
    /// The caller ID the call presented (from the note's `caller_id`); `None`: the switch's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
}

impl Serialize for MemberFate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        match self {
            MemberFate::Ended { cause, success } => {
                m.serialize_entry("ended", cause)?;
                m.serialize_entry("success", success)?;
            }
            MemberFate::Due(at) => {
                m.serialize_entry("due", at)?;
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for MemberFate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            ended: Option<String>,
            #[serde(default)]
            success: bool,
            due: Option<DateTime<Utc>>,
        }
        let raw = Raw::deserialize(d)?;
        match (raw.ended, raw.due) {
            (Some(cause), None) => Ok(MemberFate::Ended {
                cause,
                success: raw.success,
            }),
            (None, Some(due)) => Ok(MemberFate::Due(due)),
            _ => Err(serde::de::Error::custom(
                "member fate needs exactly one of `ended` or `due`",
            )),
        }
    }
}

/// What an agent asks for a member with the result of its call (the result callback's `next_communication` and
/// `reset_retries`), kept with the attempt until it completes (see `store::outcome` for the rule).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowUp {
    /// Call the member again at this instant (if the result does not end it).
    pub next_at: Option<DateTime<Utc>>,
    /// Start counting the member's tries again.
    pub reset_tries: bool,
}

/// The outcome of [`Store::follow_up`](crate::store::Store::follow_up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpOutcome {
    /// Kept: the attempt's completion applies it.
    Set,
    /// The member is not in that attempt (it completed, was released or recovered).
    NotCurrent,
}

/// Campaign counters (SPEC §10): current state counts and cumulative attempt counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Members waiting to be called.
    pub waiting: u64,
    /// Of the members waiting, those that were called before (due again after an attempt: a retry, a failure
    /// on one of their numbers, a gateway fault, an agent's callback, or a reset of an ended member). The rest
    /// of `waiting` were never called. Counted by the same store operations that move members.
    pub in_retry: u64,
    /// Members in a call.
    pub active: u64,
    /// Members ended.
    pub ended: u64,
    /// Ended members by end cause.
    pub ended_by_cause: BTreeMap<String, u64>,
    /// Completed attempts (including lost ones).
    pub calls: u64,
    pub answered: u64,
    /// Members that ended with an OK result.
    pub success: u64,
    pub ok: u64,
    pub retry: u64,
    pub error: u64,
    pub minus: u64,
    /// Attempts recovered after their lease expired.
    pub lost: u64,
}

impl Counters {
    /// Adds `delta` to the counter named `field` as the Redis `cnt` hash names it (`end:<CAUSE>` for an end
    /// cause); unknown names are ignored. Counters never go below zero; an end cause at zero is dropped.
    pub fn add(&mut self, field: &str, delta: i64) {
        let slot = match field {
            "waiting" => &mut self.waiting,
            "in_retry" => &mut self.in_retry,
            "active" => &mut self.active,
            "ended" => &mut self.ended,
            "calls" => &mut self.calls,
            "answered" => &mut self.answered,
            "success" => &mut self.success,
            "ok" => &mut self.ok,
            "retry" => &mut self.retry,
            "error" => &mut self.error,
            "minus" => &mut self.minus,
            "lost" => &mut self.lost,
            other => {
                if let Some(cause) = other.strip_prefix("end:") {
                    let e = self.ended_by_cause.entry(cause.to_string()).or_insert(0);
                    *e = e.saturating_add_signed(delta);
                    if *e == 0 {
                        self.ended_by_cause.remove(cause);
                    }
                }
                return;
            }
        };
        *slot = slot.saturating_add_signed(delta);
    }
}

/// Filter and page of `list`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    pub state: Option<MemberState>,
    pub end_cause: Option<String>,
    /// Only members with an id greater than this (the previous page's `next`).
    pub after: Option<MemberId>,
    pub limit: usize,
    /// Only members whose name contains this, ASCII letters compared case-insensitively (other characters
    /// exactly; both backends alike).
    pub name: Option<String>,
    /// Examine at most about this many member ids past `after` (in steps of `memory::SCAN_SPAN`), then answer
    /// with what matched so far and `next`: bounds the work of a filter that matches few members.
    pub max_examined: Option<u64>,
}

impl ListQuery {
    /// Whether member `name` passes the name filter (see [`ListQuery::name`]; `list.lua` applies the same rule).
    pub fn name_matches(&self, name: &str) -> bool {
        self.name.as_ref().is_none_or(|needle| {
            name.to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase())
        })
    }
}

/// A page of members; `next` is the cursor for the following page, `None` at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub members: Vec<Member>,
    pub next: Option<MemberId>,
}

/// A shared rate limit or slot pool: per campaign or per gateway (gateways are shared by all campaigns).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Campaign(String),
    Gateway(String),
}

/// Epoch milliseconds of an instant.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant of epoch milliseconds (clamped to chrono's range).
pub fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or(if v < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

pub(crate) fn class_from_code(s: &str) -> Option<CauseClass> {
    Some(match s {
        "ok" => CauseClass::Ok,
        "retry" => CauseClass::Retry,
        "error" => CauseClass::Error,
        "minus" => CauseClass::Minus,
        _ => return None,
    })
}

pub(crate) fn lost_class(l: LostAttempt) -> CauseClass {
    match l {
        LostAttempt::Retry => CauseClass::Retry,
        LostAttempt::Minus => CauseClass::Minus,
        LostAttempt::Error => CauseClass::Error,
    }
}
