//! One attempt's life in the core: originate, job, answer, hangup, callflow, classification, completion.
//!
//! - **Tracking**: an attempt is matched by the id the engine chose, which is the FreeSWITCH `origination_uuid`
//!   and `Unique-ID` (member data never sets it: see `engine::originate`). BACKGROUND_JOB `-ERR` ends it before any
//!   channel exists; CHANNEL_ANSWER and CHANNEL_HANGUP_COMPLETE carry the rest; the callflow's `result` overrides
//!   the cause class.
//! - **Classification** (SPEC §4) with the version of the campaign the call was placed with. Our own failures are
//!   Minus: the switch refusing a session for capacity (pauses the switch), and a gateway's local failures (count
//!   toward its breaker, see `routing`).
//! - **Exactly once**: an attempt is completed once; duplicated or late events change nothing.
//! - **Deadlines in every state** (`reconcile`): ringing (`originate_timeout` + grace), answered (`max_call`), after the hangup
//!   (the callflow's grace), reconciling (`check_timeout`, at most `max_check_failures` times, then lost),
//!   completing (`check_timeout`, then sent again), refused by the store (back-off, at most `max_store_retries`
//!   times, then given up and reported). A call whose end is missed is found by `uuid_exists` and settled as the
//!   campaign's `lost_attempt`; none stays active forever.
//! - **Adoption** (`adoption`): calls of an earlier run or of a vanished node, tracked again. The hangup record of
//!   every call whose result is recorded is deleted on its switch (`engine::hangup_record`).

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::sync::Arc;
use uuid::Uuid;

use super::{Action, Core, LOST_CAUSE, dur};
use crate::campaign::causes::{CauseClass, is_known_cause};
use crate::campaign::config::ValidCampaign;
use crate::engine::attempt_log::AttemptLine;
use crate::engine::state::StateInput;
use crate::store::{AttemptId, AttemptResult, Claim, CompleteOutcome};

/// Cause recorded when the switch refused to create a session (capacity): FreeSWITCH's loopback and sofia
/// endpoints answer `-ERR DESTINATION_OUT_OF_ORDER` without ever creating the channel.
const CAPACITY_CAUSE: &str = "DESTINATION_OUT_OF_ORDER";
/// Cause recorded for an `-ERR` reply that names no hangup cause (the switch refused the command itself).
const REFUSED_CAUSE: &str = "ORIGINATE_REFUSED";
/// Longest back-off between two tries of a result the store refused.
const STORE_RETRY_MAX: ChronoDuration = ChronoDuration::seconds(60);

/// How a call ended, as the switch said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HangupFacts {
    pub cause: String,
    pub answered: bool,
    /// `billsec`: whole seconds, as recorded with the attempt.
    pub talk_secs: u32,
    /// `billmsec`: what `min_success_duration_sec` is judged on.
    pub talk_ms: u64,
    pub at: DateTime<Utc>,
}

/// The decided result of a call, kept to be sent again if the store did not take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub cause: String,
    pub class: CauseClass,
    pub talk_secs: u32,
}

/// Where a call's callflow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallflowState {
    None,
    Running,
    Done(Option<bool>),
}

/// One attempt in flight on this node.
#[derive(Debug, Clone)]
pub struct Call {
    pub campaign: String,
    /// The campaign as the call was placed: its causes, callflow and gateways judge this call.
    pub version: Arc<ValidCampaign>,
    pub claim: Claim,
    /// The gateway it was placed on, by name (`None`: it never reached one).
    pub gateway: Option<String>,
    /// The switch it is on (`None`: it never reached one, or an adopted call not located yet).
    pub switch: Option<usize>,
    pub job: Option<Uuid>,
    pub originated_at: DateTime<Utc>,
    pub channel_seen: bool,
    /// The switch answered the originate's job (BACKGROUND_JOB), or never will (the command failed).
    pub job_done: bool,
    /// The channel hung up without leaving CS_INIT ([`Input::NeverRouted`](super::Input::NeverRouted)).
    pub never_routed: bool,
    pub answered_at: Option<DateTime<Utc>>,
    pub hangup: Option<HangupFacts>,
    pub callflow: CallflowState,
    /// The result was sent to the store; waiting for its answer.
    pub completing: bool,
    /// Waiting for `uuid_exists` (or, adopted, for the switch it is on).
    pub reconciling: bool,
    /// The result once decided.
    pub decided: Option<Decided>,
    /// The callflow's summary, recorded with the attempt.
    pub note: Option<String>,
    /// When the core looks at this call again if nothing happens.
    pub deadline: Option<DateTime<Utc>>,
    /// `uuid_exists` unanswered or failed in a row.
    pub check_failures: u32,
    /// Times the store refused the result.
    pub store_failures: u32,
    /// Taken back after a restart (its start was seen by an earlier process).
    pub adopted: bool,
    /// The agent side of a preview or progressive call.
    pub agent: Option<super::AgentCall>,
    /// The wait before this member is called again, when the agent asked for a callback (`next_after_sec`)
    /// instead of the campaign's `wait_between_retries_sec`.
    pub retry_wait: Option<u64>,
    /// The caller ID the call presents (`None`: the switch's default), recorded with the attempt.
    pub caller_id: Option<String>,
    /// Answering-machine detection on this call (`None`: its campaign has none, or it is not answered yet).
    pub amd: Option<super::amd::AmdCall>,
}

impl Call {
    /// The attempt's result as the store records it (hung up at `now` when its hangup was never seen).
    fn result(&self, attempt: AttemptId, decided: Decided, now: DateTime<Utc>) -> AttemptResult {
        AttemptResult {
            attempt_id: attempt,
            member_id: self.claim.member_id,
            cause: decided.cause,
            class: decided.class,
            answered_at: self.answered_at,
            hangup_at: Some(self.hangup.as_ref().map_or(now, |h| h.at)),
            talk_secs: decided.talk_secs,
            note: self.note_with_facts(),
        }
    }

    /// The callflow's note, with the caller ID under `caller_id`, the agent facts under `agent_call` for an agent
    /// call and the AMD facts under `amd` for a call that ran the detector.
    fn note_with_facts(&self) -> Option<String> {
        if self.agent.is_none() && self.amd.is_none() && self.caller_id.is_none() {
            return self.note.clone();
        }
        let mut note = self
            .note
            .as_deref()
            .and_then(|n| serde_json::from_str::<serde_json::Value>(n).ok())
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(cid) = &self.caller_id {
            note[crate::store::caller_ids::NOTE_KEY] = cid.as_str().into();
        }
        if let Some(a) = &self.agent {
            note["agent_call"] = a.note();
        }
        if let Some(amd) = &self.amd {
            note["amd"] = amd.note();
        }
        Some(note.to_string())
    }
}

impl Core {
    /// Starts tracking an attempt (`switch` and `job` are `None` for one that never reaches a switch).
    pub(super) fn track(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        claim: Claim,
        gateway: Option<String>,
        switch: Option<usize>,
        job: Option<Uuid>,
    ) {
        let Some(version) = self.campaigns.get(id).map(|c| c.valid.clone()) else {
            return;
        };
        let timeout = version.config().originate_timeout_sec;
        let attempt = claim.attempt_id;
        self.calls.insert(
            attempt,
            Call {
                campaign: id.to_owned(),
                version,
                claim,
                gateway,
                switch,
                job,
                originated_at: now,
                channel_seen: false,
                job_done: job.is_none(),
                never_routed: false,
                answered_at: None,
                hangup: None,
                callflow: CallflowState::None,
                completing: false,
                reconciling: false,
                decided: None,
                note: None,
                deadline: None,
                check_failures: 0,
                store_failures: 0,
                adopted: false,
                agent: None,
                retry_wait: None,
                caller_id: None,
                amd: None,
            },
        );
        let deadline =
            now + ChronoDuration::seconds(i64::from(timeout)) + dur(self.cfg.originate_grace);
        self.arm(attempt, deadline);
        if let Some(job) = job {
            self.jobs.insert(job, attempt);
        }
        if let Some(c) = self.campaigns.get_mut(id) {
            c.active += 1;
            let n = c.active;
            let _ = c.sm.apply(now, StateInput::ActiveCalls(n));
        }
    }

    pub(super) fn on_originate_failed(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        sent: bool,
        error: &str,
    ) {
        if !self.calls.contains_key(&attempt) {
            return;
        }
        if let Some(call) = self.calls.get_mut(&attempt) {
            // The job's answer will never come: only the switch can tell now.
            call.job_done = true;
        }
        tracing::warn!(%attempt, sent, error, "originate not carried out");
        if sent {
            // It may have reached the switch: find out (at once, or when the switch is back).
            self.reconcile(now, attempt);
        } else {
            self.release_call(now, attempt);
        }
    }

    /// Gives a claim back (uncounted) and forgets the call.
    pub(super) fn release_call(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        self.out.push(Action::Release {
            campaign: call.campaign.clone(),
            attempt,
            member: call.claim.member_id,
            not_before: Some(now + ChronoDuration::seconds(1)),
        });
        self.gateway_forget(attempt);
        self.drop_call(now, attempt);
    }

    /// Forgets a call (released, revoked, given up, or completed and acknowledged): every map that names it.
    pub(super) fn drop_call(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(mut call) = self.calls.remove(&attempt) else {
            return;
        };
        self.agent_forget(&mut call);
        if let Some(job) = call.job {
            self.jobs.remove(&job);
        }
        if let Some(sw) = call.switch.and_then(|i| self.switches.get_mut(i)) {
            sw.calls = sw.calls.saturating_sub(1);
        }
        self.out.push(Action::Forget { attempt });
        self.campaign_call_over(now, &call.campaign, call.gateway.as_deref());
    }

    pub(super) fn on_job(&mut self, now: DateTime<Utc>, job: Uuid, body: &str) {
        if self.agent_job(now, job, body) {
            return;
        }
        let Some(&attempt) = self.jobs.get(&job) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        call.job_done = true;
        if call.hangup.is_some() || call.completing || call.decided.is_some() {
            return;
        }
        let call = &*call;
        let text = body.trim_end();
        let switch = call.switch;
        if text.starts_with("+OK") {
            self.switch_healthy(switch);
            self.gateway_healthy(attempt);
            // The originate returns when the call is answered.
            self.on_answered(now, attempt);
            return;
        }
        if call.channel_seen {
            // The channel exists, so its CHANNEL_HANGUP_COMPLETE follows (on the event stream, whose order relative
            // to this job is not FreeSWITCH's) and tells more: a channel that never left CS_INIT
            // (`Input::NeverRouted`) failed for the switch's capacity, not the callee's.
            return;
        }
        let named = text
            .strip_prefix("-ERR")
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|w| is_known_cause(w));
        match named {
            Some(cause) if cause == CAPACITY_CAUSE => {
                // FreeSWITCH refused the session (sessions_per_second, max_sessions): ours, not the callee's.
                let cause = cause.to_owned();
                self.switch_refused(now, switch);
                self.gateway_forget(attempt);
                self.complete(now, attempt, cause, CauseClass::Minus, 0);
            }
            Some(cause) if is_local_failure(call, cause) => {
                // A trunk or switch fault, not the callee: Minus, and it counts toward the gateway's breaker.
                let cause = cause.to_owned();
                self.gateway_failed(now, attempt);
                self.complete(now, attempt, cause, CauseClass::Minus, 0);
            }
            Some(cause) => {
                let cause = cause.to_owned();
                self.switch_healthy(switch);
                self.gateway_healthy(attempt);
                let class = self.classify(attempt, &cause, false, 0);
                self.complete(now, attempt, cause, class, 0);
            }
            None => {
                // `-ERR` naming no hangup cause, or `-USAGE`: the switch refused the command itself. Ours: Minus,
                // and a local failure of the gateway (a permanent fault opens its breaker instead of spinning).
                tracing::error!(%attempt, reply = text, "originate refused");
                self.gateway_failed(now, attempt);
                self.complete(now, attempt, REFUSED_CAUSE.into(), CauseClass::Minus, 0);
            }
        }
    }

    pub(super) fn on_answered(&mut self, now: DateTime<Utc>, uuid: Uuid) {
        if self.agent_leg_answered(now, uuid) {
            return;
        }
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        call.channel_seen = true;
        if call.answered_at.is_some() || call.hangup.is_some() || call.decided.is_some() {
            return;
        }
        call.answered_at = Some(now);
        call.reconciling = false;
        self.gateway_healthy(uuid);
        // With AMD, the answer is live only once the detector says so (`amd`).
        if self.amd_start(now, uuid) {
            return;
        }
        self.answer_live(now, uuid);
    }

    pub(super) fn on_hangup(
        &mut self,
        now: DateTime<Utc>,
        uuid: Uuid,
        cause: String,
        answered: bool,
        billsec: u32,
        talk_ms: u64,
    ) {
        if self.agent_leg_hangup(now, uuid) {
            return;
        }
        self.hangup_at(now, now, uuid, cause, answered, billsec, talk_ms);
    }

    /// The channel hung up at `at` (heard at `now`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn hangup_at(
        &mut self,
        now: DateTime<Utc>,
        at: DateTime<Utc>,
        uuid: Uuid,
        cause: String,
        answered: bool,
        billsec: u32,
        talk_ms: u64,
    ) {
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        if call.hangup.is_some() || call.completing || call.decided.is_some() {
            return;
        }
        call.channel_seen = true;
        call.reconciling = false;
        if answered && call.answered_at.is_none() {
            // The answer was never seen (it happened while the ESL socket was down, or before an adoption): it
            // was `billsec` before the hangup.
            call.answered_at = Some(at - ChronoDuration::seconds(i64::from(billsec)));
        }
        let answered = answered || call.answered_at.is_some();
        let local = !answered && is_local_failure(call, &cause);
        // Talk time excludes the AMD analysis (as Webitel v3): a machine's greeting is no conversation.
        let analysis_ms = self.amd_hangup(uuid, at);
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        let talk_ms = talk_ms.saturating_sub(analysis_ms);
        let billsec = match analysis_ms {
            0 => billsec,
            _ => u32::try_from(talk_ms / 1000).unwrap_or(u32::MAX),
        };
        call.hangup = Some(HangupFacts {
            cause: cause.clone(),
            answered,
            talk_secs: billsec,
            talk_ms,
            at,
        });
        if self.agent_member_hangup(now, uuid) {
            return;
        }
        if local {
            // A trunk or switch fault, not the callee: Minus, and it counts toward the gateway's breaker.
            self.gateway_failed(now, uuid);
            self.complete(now, uuid, cause, CauseClass::Minus, 0);
            return;
        }
        self.gateway_healthy(uuid);
        if call_flow_running(self.calls.get(&uuid)) {
            self.arm(uuid, now + dur(self.cfg.callflow_grace));
            return;
        }
        self.finish(now, uuid);
    }

    pub(super) fn on_callflow_done(
        &mut self,
        now: DateTime<Utc>,
        uuid: Uuid,
        result: Option<bool>,
        error: Option<String>,
        note: Option<String>,
    ) {
        let Some(call) = self.calls.get_mut(&uuid) else {
            return;
        };
        if let Some(e) = error {
            tracing::info!(attempt = %uuid, error = e, "callflow ended with an error");
        }
        call.callflow = CallflowState::Done(result);
        call.note = note;
        if call.hangup.is_some() {
            self.finish(now, uuid);
        }
    }

    /// Completes a call whose hangup (and callflow, if any) are known.
    pub(super) fn finish(&mut self, now: DateTime<Utc>, uuid: Uuid) {
        let Some(call) = self.calls.get(&uuid) else {
            return;
        };
        if call.completing || call.decided.is_some() {
            return;
        }
        let Some(h) = call.hangup.clone() else {
            return;
        };
        let class = if call.never_routed {
            // A loopback call whose b-leg session was refused: the switch's capacity, as a refused originate.
            let switch = call.switch;
            self.switch_refused(now, switch);
            CauseClass::Minus
        } else {
            self.classify(uuid, &h.cause, h.answered, h.talk_ms)
        };
        self.complete(now, uuid, h.cause, class, h.talk_secs);
    }

    /// The class of an attempt's end: the callflow's `result` if it gave one, else the cause table (of the
    /// campaign version the call was placed with) with the minimum-duration rule.
    fn classify(&self, uuid: Uuid, cause: &str, answered: bool, talk_ms: u64) -> CauseClass {
        let Some(call) = self.calls.get(&uuid) else {
            return CauseClass::Retry;
        };
        if answered && let Some(class) = call.amd_class() {
            return class;
        }
        if answered && let CallflowState::Done(Some(success)) = call.callflow {
            return if success {
                CauseClass::Ok
            } else {
                CauseClass::Retry
            };
        }
        call.version.effective_class_ms(cause, answered, talk_ms)
    }

    /// Decides the call's result and sends it to the store.
    pub(super) fn complete(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        cause: String,
        class: CauseClass,
        talk: u32,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        if call.completing || call.decided.is_some() {
            return;
        }
        call.decided = Some(Decided {
            cause: cause.clone(),
            class,
            talk_secs: talk,
        });
        self.predictive_decided(now, attempt, &cause, class);
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        let member = call.claim.member_id.to_string();
        let number = crate::logging::mask_number(&call.claim.number);
        self.attempt_log.ended(&AttemptLine {
            campaign: &call.campaign,
            attempt: &attempt,
            member: &member,
            number: &number,
            cause: &cause,
            class,
            talk_secs: talk,
            lost: cause == LOST_CAUSE,
        });
        self.send_result(now, attempt);
    }

    /// Sends the decided result (again) to the store.
    pub(super) fn send_result(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let Some(decided) = call.decided.clone() else {
            return;
        };
        call.completing = true;
        let result = call.result(attempt, decided, now);
        let campaign = call.campaign.clone();
        let gateway = call.gateway.clone();
        // The store applies it with the campaign's latest policy (a deleted one: the call's own version).
        let mut version = self
            .campaigns
            .get(&campaign)
            .map_or_else(|| call.version.clone(), |c| c.valid.clone());
        if let Some(wait) = call.retry_wait {
            version = Arc::new(version.with_retry_wait(wait));
        }
        let caller_id = call.caller_id.clone();
        self.out.push(Action::Complete {
            campaign,
            version,
            gateway,
            caller_id,
            result,
        });
        // A store that never answers: send again (completion is idempotent in the store).
        self.arm(attempt, now + dur(self.cfg.check_timeout));
    }

    pub(super) fn on_completed(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        outcome: Result<CompleteOutcome, String>,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        let error = match outcome {
            Ok(_) => {
                // The result is recorded: the switch need not keep the call's hangup record any longer.
                if let Some(switch) = call.switch
                    && (call.job.is_some() || call.adopted)
                {
                    self.out
                        .push(Action::ForgetHangupRecord { switch, attempt });
                }
                // The compliance record counts each answered agent call once, when its result is stored.
                if let Some(record) = self.compliance_action(attempt) {
                    self.out.push(record);
                }
                self.drop_call(now, attempt);
                return;
            }
            Err(e) => e,
        };
        call.completing = false;
        call.store_failures += 1;
        let failures = call.store_failures;
        if failures > self.cfg.max_store_retries {
            // A poison result: give it up so it cannot wedge the campaign; the member's lease is recovered later.
            tracing::error!(%attempt, failures, error, "the store keeps refusing the result; giving it up");
            let campaign = call.campaign.clone();
            let decided = call.decided.clone().unwrap_or(Decided {
                cause: LOST_CAUSE.into(),
                class: CauseClass::Retry,
                talk_secs: 0,
            });
            let result = call.result(attempt, decided, now);
            self.out.push(Action::ResultFailed {
                campaign,
                result,
                reason: error,
            });
            self.drop_call(now, attempt);
            return;
        }
        // Send the same result again after a back-off (completion is idempotent in the store).
        let backoff =
            (ChronoDuration::seconds(1) * (1 << (failures - 1).min(6))).min(STORE_RETRY_MAX);
        tracing::warn!(%attempt, failures, error, "the store did not take the result; retrying");
        self.arm(attempt, now + backoff);
    }

    pub(super) fn on_revoked(
        &mut self,
        now: DateTime<Utc>,
        hang_up: Vec<AttemptId>,
        handed_over: Vec<AttemptId>,
    ) {
        let all = hang_up
            .into_iter()
            .map(|a| (a, true))
            .chain(handed_over.into_iter().map(|a| (a, false)));
        for (a, kill) in all {
            let Some(call) = self.calls.get(&a) else {
                continue;
            };
            if call.completing {
                continue;
            }
            if kill && let Some(switch) = call.switch {
                self.out.push(Action::Kill {
                    switch,
                    uuid: a,
                    cause: "MANAGER_REQUEST".into(),
                });
            }
            if !kill {
                tracing::warn!(attempt = %a, "another node took this call over: no longer tracked here");
            }
            self.gateway_forget(a);
            self.drop_call(now, a);
        }
    }
}

/// Whether `cause` is a local failure (trunk or switch) of the gateway the call was placed on.
fn is_local_failure(call: &Call, cause: &str) -> bool {
    call.gateway.as_deref().is_some_and(|g| {
        call.version
            .gateways()
            .by_name(g)
            .is_some_and(|(_, gw)| gw.is_local_failure(cause))
    })
}

fn call_flow_running(call: Option<&Call>) -> bool {
    call.is_some_and(|c| c.callflow == CallflowState::Running)
}
