//! The core's two vocabularies: [`Input`], what the shell tells it (store replies, ESL events and api answers,
//! operator commands, time-independent facts such as a switch coming up), and [`Action`], what it asks the shell
//! to carry out (store operations, ESL commands, logs and records). Kept apart from the core itself because they
//! are its whole contract with the world: the shell, the pacing simulator and the tests speak only these.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

use super::super::originate::Originate;
use super::super::state::Transition;
use super::{AgentOutcome, AgentRelease, AgentReservation, AmdResult, CallerIdCount, SwitchLimits};
use crate::campaign::config::ValidCampaign;
use crate::engine::hangup_record::HangupRecord;
use crate::store::{AttemptId, AttemptResult, Claim, ClaimBatch, CompleteOutcome};

/// What the shell tells the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// A campaign to run (or its new configuration). Starts idle; `Run` starts it.
    Upsert(Arc<ValidCampaign>),
    /// The campaign was deleted: it places no new call and is forgotten once its calls are over.
    Remove(String),
    /// Operator commands.
    Run(String),
    Stop(String),
    /// New members were added: claim again now.
    Wake(String),
    /// The process is shutting down: claim nothing more; calls in progress finish (see [`Core::is_drained`]).
    Drain,
    /// Attempts this node held before it restarted (its leases in the store): track them again. Each is looked
    /// for on the switches ([`Action::Locate`]); a call still up finishes with its real outcome.
    Adopt {
        campaign: String,
        claims: Vec<Claim>,
    },
    /// The answer to [`Action::Locate`]: the switch the channel is up on, `None` when no switch has it; or, when
    /// the channel is gone but a switch kept its hangup record (`engine::hangup_record`), that switch and the
    /// record.
    Located {
        attempt: AttemptId,
        switch: Option<usize>,
        ended: Option<HangupRecord>,
    },
    /// The answer to [`Action::Claim`].
    Claimed {
        campaign: String,
        batch: ClaimBatch,
    },
    /// [`Action::Claim`] failed (store error): retry later.
    ClaimFailed {
        campaign: String,
        error: String,
    },
    /// The answer to [`Action::FindOrphans`]: every attempt this node holds in the campaign. Those it does not
    /// track were claimed by a claim whose reply was lost: they are released, uncounted. An error (the store still
    /// unreachable) is asked again after a back-off; the campaign claims nothing meanwhile.
    Orphans {
        campaign: String,
        held: Result<Vec<Claim>, String>,
    },
    /// [`Action::Originate`] could not be carried out. `sent` says whether the command may have reached the
    /// switch (connection lost after the write): then the call is reconciled, else the claim is released.
    OriginateFailed {
        attempt: AttemptId,
        sent: bool,
        error: String,
    },
    /// The shell could not take a shared gateway slot or token for this attempt.
    GatewayBusy {
        attempt: AttemptId,
    },
    /// The store's count of a caller ID's calls today (after the shell took one, or was refused one).
    CallerIdUsed {
        number: String,
        used_today: u32,
    },
    /// The store refused the attempt's caller ID (its daily cap was reached by now, or the store failed): the
    /// call was not placed.
    CallerIdRefused {
        attempt: AttemptId,
    },
    /// A BACKGROUND_JOB for one of our Job-UUIDs: `+OK <uuid>` or `-ERR <CAUSE>`.
    JobResult {
        job: Uuid,
        body: String,
    },
    /// Any channel event for the uuid (CHANNEL_CREATE and the like): the channel exists.
    ChannelSeen {
        uuid: Uuid,
    },
    /// CHANNEL_ANSWER.
    Answered {
        uuid: Uuid,
    },
    /// CHANNEL_HANGUP of a channel still in CS_INIT: its originate never got to routing (a loopback call whose
    /// b-leg session the switch refused waits there until originate_timeout, then fails NO_ANSWER). Ours: Minus.
    NeverRouted {
        uuid: Uuid,
    },
    /// CHANNEL_HANGUP_COMPLETE.
    Hangup {
        uuid: Uuid,
        cause: String,
        answered: bool,
        billsec: u32,
        /// `variable_billmsec`: the talk time `min_success_duration_sec` is judged on (`billsec` subtracts
        /// whole-second epochs: a 9.6 s call can bill 10 s).
        talk_ms: u64,
    },
    /// The callflow of a call ended; `result` is its `result {success}` if it ran one, `note` its summary
    /// (recorded with the attempt).
    CallflowDone {
        uuid: Uuid,
        result: Option<bool>,
        error: Option<String>,
        note: Option<String>,
    },
    /// The answer to [`Action::Complete`].
    Completed {
        attempt: AttemptId,
        outcome: Result<CompleteOutcome, String>,
    },
    /// The answer to [`Action::CheckExists`]; for a channel that is gone, the hangup record the switch kept, if
    /// any.
    Exists {
        attempt: AttemptId,
        exists: bool,
        ended: Option<HangupRecord>,
    },
    /// [`Action::CheckExists`] could not be answered (the command failed or timed out).
    CheckFailed {
        attempt: AttemptId,
    },
    /// Attempts the store says are no longer ours. `hang_up`: terminated through the API (or recovered as lost:
    /// their channel was gone anyway) — drop and hang up. `handed_over`: another node holds them now (it took
    /// over a call it found up) — drop without touching the call.
    Revoked {
        hang_up: Vec<AttemptId>,
        handed_over: Vec<AttemptId>,
    },
    /// The answer to [`Action::CheckExhausted`]: members that may still be called.
    QueueState {
        campaign: String,
        waiting: u64,
    },
    /// How many engine nodes are alive (this one included), from the store's node registry.
    Nodes(u32),
    /// The answer to [`Action::ReserveAgent`]: the agent held for the call, `None` when no agent is free (or the
    /// store failed).
    AgentReserved {
        attempt: AttemptId,
        reservation: Option<AgentReservation>,
    },
    /// The answer to [`Action::Bridge`]: `ok` when `uuid_bridge` answered `+OK`.
    Bridged {
        attempt: AttemptId,
        ok: bool,
    },
    /// The store released these reservations when their agent took a call on another line: their member legs
    /// still ringing are cancelled.
    AgentSiblings {
        reservations: Vec<Uuid>,
    },
    /// The answer to [`Action::AdoptAgents`]: the reservations the store handed to this node.
    AgentsAdopted {
        attempts: Vec<AttemptId>,
        reservations: Vec<crate::agents::AdoptedReservation>,
    },
    /// The answer to [`Action::CountAgents`]: the team's agents now (`None`: the store failed) and the
    /// campaign's rolling 30-day abandonment rate from its compliance record (`None`: no live answer recorded).
    AgentCounts {
        campaign: String,
        counts: Option<crate::agents::pacer::TeamSnapshot>,
        abandon_30d_pct: Option<f64>,
    },
    /// A preview's decision by the agent.
    PreviewDecision {
        attempt: AttemptId,
        accept: bool,
    },
    /// The agent's result for a call (the result callback).
    AgentResult {
        attempt: AttemptId,
        outcome: AgentOutcome,
    },
    /// A switch connected (again) or was lost.
    SwitchUp(usize),
    SwitchDown(usize),
    /// The switch's session limits as read from it at connect (config values, where set, already applied).
    SwitchLimits {
        switch: usize,
        limits: SwitchLimits,
    },
    /// The AMD decision on a call: `amd_result` (`None`: no decision, e.g. `CANCEL`) and `amd_cause`, from the
    /// blocking `amd`'s CHANNEL_EXECUTE_COMPLETE or the non-blocking variant's `CUSTOM amd::info`.
    AmdResult {
        uuid: Uuid,
        result: Option<AmdResult>,
        cause: Option<String>,
    },
    /// `CUSTOM avmd::beep` on a call: the voicemail's beep.
    AvmdBeep {
        uuid: Uuid,
    },
    /// A `playback` on a call completed with `Application-Response: FILE PLAYED` (the file played to its end).
    PlaybackPlayed {
        uuid: Uuid,
        file: String,
    },
}

/// What the core asks the shell to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Claim up to `max` members of the campaign (`store.claim`, after the shared CPS bucket).
    Claim { campaign: String, max: u32 },
    /// `bgapi originate <args>` with `Job-UUID: job` on `switch`, after taking the gateway's shared slot
    /// (report [`Input::GatewayBusy`] if there is none).
    Originate {
        campaign: String,
        switch: usize,
        attempt: AttemptId,
        job: Uuid,
        gateway: String,
        gateway_limit: Option<u32>,
        /// The caller ID to count in the store before the originate is sent (report
        /// [`Input::CallerIdUsed`], and [`Input::CallerIdRefused`] if it is refused).
        caller_id: Option<CallerIdCount>,
        originate: Originate,
    },
    /// Undo a claim without counting it; the member is due again not before `not_before`.
    Release {
        campaign: String,
        attempt: AttemptId,
        member: crate::store::MemberId,
        not_before: Option<DateTime<Utc>>,
    },
    /// Apply the attempt's result in the store (and free its gateway slot). `version` is the campaign as the
    /// store must apply it (its queue policy and calendar).
    Complete {
        campaign: String,
        version: Arc<ValidCampaign>,
        gateway: Option<String>,
        /// The caller ID the call presented (for its answer-rate figures).
        caller_id: Option<String>,
        result: AttemptResult,
    },
    /// The store refused the result `max_store_retries` times: it is given up (the member stays in its call
    /// until its lease is recovered). Report it (log, metric, API).
    ResultFailed {
        campaign: String,
        result: AttemptResult,
        reason: String,
    },
    /// Run the callflow of `version` (the campaign as the call was placed) on this answered call.
    StartCallflow {
        campaign: String,
        version: Arc<ValidCampaign>,
        switch: usize,
        attempt: AttemptId,
    },
    /// Hang the channel up (`uuid_kill <uuid> <cause>`).
    Kill {
        switch: usize,
        uuid: Uuid,
        cause: String,
    },
    /// `uuid_exists <uuid>` on the switch.
    CheckExists { switch: usize, attempt: AttemptId },
    /// Find the switch an adopted call is up on (`uuid_exists` on each, then its hangup record on each);
    /// answer with [`Input::Located`].
    Locate { attempt: AttemptId },
    /// The call's result is recorded: delete its hangup record on the switch (`hash delete`).
    ForgetHangupRecord { switch: usize, attempt: AttemptId },
    /// A claim's reply was lost (the store may have claimed members for it): list the attempts this node holds in
    /// the campaign ([`Input::Orphans`]). No claim of the campaign is sent until the answer.
    FindOrphans { campaign: String },
    /// Count the campaign's members that may still be called.
    CheckExhausted { campaign: String },
    /// Renew the leases of these calls.
    Renew {
        campaign: String,
        attempts: Vec<AttemptId>,
    },
    /// Recover attempts of vanished nodes.
    Recover { campaign: String },
    /// The call is forgotten: drop whatever the shell keeps for it (its slot, if nothing released it yet).
    Forget { attempt: AttemptId },
    /// Reserve an agent of the campaign's team for the call (answer [`Input::AgentReserved`]); agents that
    /// already missed this member are excluded.
    ReserveAgent {
        campaign: String,
        attempt: AttemptId,
        member: crate::store::MemberId,
        settings: crate::campaign::agents::AgentSettings,
        exclude: Vec<String>,
    },
    /// The reserved agent's leg `leg` is being called (its state: offering; the leg is kept with the reservation
    /// so a node adopting the call after a restart finds it).
    AgentOffered { reservation: Uuid, leg: Uuid },
    /// Calls of an agent campaign were adopted: hand their reservations to this node (answer
    /// [`Input::AgentsAdopted`]).
    AdoptAgents {
        campaign: String,
        attempts: Vec<AttemptId>,
    },
    /// The agent and the member are joined (its state: talking); the store releases the agent's other
    /// reservations and the shell reports them ([`Input::AgentSiblings`]).
    AgentTalking {
        attempt: AttemptId,
        reservation: Uuid,
    },
    /// Give a reservation back (`settings`: the team rules its wrap-up and no-answer counting follow).
    ReleaseAgent {
        reservation: Uuid,
        agent: String,
        how: AgentRelease,
        settings: Option<crate::campaign::agents::AgentSettings>,
    },
    /// `bgapi originate` of an agent's leg (`&park()`), with `Job-UUID: job`.
    OriginateAgent {
        switch: usize,
        attempt: AttemptId,
        leg: Uuid,
        job: Uuid,
        originate: Originate,
    },
    /// Show the member to the agent (preview): a `dlr::offer` CUSTOM event on the agent's channel.
    Offer {
        switch: usize,
        agent_leg: Uuid,
        attempt: AttemptId,
        campaign: String,
        member: crate::store::MemberId,
        name: String,
        number: String,
        variables: serde_json::Map<String, serde_json::Value>,
    },
    /// `uuid_bridge <attempt> <agent>` (answer [`Input::Bridged`]).
    Bridge {
        switch: usize,
        attempt: AttemptId,
        agent: Uuid,
    },
    /// No agent in time: play `message` to the member and hang up (`uuid_broadcast … playback!NORMAL_CLEARING::`),
    /// or hang up at once without one.
    Abandon {
        switch: usize,
        uuid: Uuid,
        message: Option<String>,
    },
    /// Count a predictive campaign's team (free, busy, in wrap-up) and read its rolling 30-day abandonment rate
    /// (answer [`Input::AgentCounts`]).
    CountAgents { campaign: String, team: String },
    /// Add an answered agent call's counts to the campaign's compliance record for `day`.
    RecordCompliance {
        campaign: String,
        day: chrono::NaiveDate,
        counts: crate::agents::compliance::DayCounts,
    },
    /// The member's next call goes to `agent` first until `until` (an agent's callback).
    StickyAgent {
        campaign: String,
        member: crate::store::MemberId,
        agent: String,
        until: DateTime<Utc>,
    },
    /// End the member once its current attempt is applied (the agent asked to stop calling it).
    StopMember {
        campaign: String,
        member: crate::store::MemberId,
    },
    /// Start answering-machine detection: `sendmsg <uuid>` execute `amd <args>`.
    StartAmd {
        switch: usize,
        uuid: Uuid,
        args: String,
    },
    /// Start beep detection on a machine: `sendmsg <uuid>` execute `avmd_start`.
    StartBeepDetection { switch: usize, uuid: Uuid },
    /// The voicemail drop: play `message` and hang up after it (`uuid_broadcast … playback!NORMAL_CLEARING::`).
    LeaveMessage {
        switch: usize,
        uuid: Uuid,
        message: String,
    },
    /// A campaign state change, to record in its history.
    History {
        campaign: String,
        transition: Transition,
    },
}
