//! One call of a load run, from originate to confirmed hangup.
//!
//! The originate is built by [`crate::engine::originate::build`] (every variable escaped; the run tag as
//! `dlr_node`, the call's sequence number as `dlr_member_id`) and sent as `bgapi`, the channel uuid chosen by us
//! (`origination_uuid`) and registered first so no event of it can be missed. Then: the answer (CHANNEL_ANSWER)
//! gives the post-dial delay, the BACKGROUND_JOB the originate's latency and, when it says `-ERR CAUSE`, the
//! failure; an answered call is held for its hold time, then `uuid_kill`ed unless the far end hung up first; the
//! call ends when the switch confirms the hangup (CHANNEL_HANGUP_COMPLETE). Told to stop, a call hangs its channel
//! up at once, ringing or answered. The record the engine's hangup hook leaves in the switch
//! (`engine::hangup_record`) is deleted at the end, as the engine does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::stats::{CallEnd, Stats};
use super::switch::{Calls, ChannelNews, Registration, Switch};
use crate::engine::originate::{OriginateSpec, build};
use crate::esl::client::{ClientError, JobOutcome, JobResult};

/// How long we wait for the switch to confirm a hangup we asked for (real time).
pub const HANGUP_CONFIRM: Duration = Duration::from_secs(10);
/// What an originate is counted as when the ESL connection failed under it.
pub const ESL_FAILURE: &str = "ESL_CONNECTION_LOST";

/// What one call needs.
#[derive(Debug)]
pub struct CallPlan {
    pub seq: u64,
    /// When the pacer let the call go: the instant its rate is counted at (the originate is written as soon as
    /// the call's task runs; latencies are measured from that write).
    pub placed_at: Instant,
    pub dial_string: String,
    /// Real time to hold the call after it is answered.
    pub hold: Duration,
    pub originate_timeout_sec: u32,
    pub caller_id_number: Option<String>,
    /// The run's tag (`dlr_node`, and `dlr_campaign_id`).
    pub tag: String,
}

/// Runs one call to its end and records it in `stats`.
pub async fn run(
    plan: CallPlan,
    switch: Arc<Switch>,
    calls: Arc<Calls>,
    stats: Arc<Stats>,
    stop: CancellationToken,
) {
    let uuid = Uuid::new_v4();
    let registration = calls.register(uuid);
    let seq = plan.seq.to_string();
    let originate = build(&OriginateSpec {
        attempt_id: uuid,
        dial_string: &plan.dial_string,
        originate_timeout_sec: plan.originate_timeout_sec,
        caller_id_number: plan.caller_id_number.as_deref(),
        campaign_id: &plan.tag,
        member_id: &seq,
        attempt_no: 1,
        campaign_vars: &[],
        member_vars: &[],
        application: "&park()",
        node: Some(&plan.tag),
    });
    stats.placed(plan.placed_at);
    let sent = Instant::now();
    let mut call = Call {
        uuid,
        sent,
        registration,
        switch,
        stats: stats.clone(),
        answered: false,
        connected: false,
    };
    let end = call.follow(&originate.args, plan.hold, &stop).await;
    stats.ended(&end, Instant::now());
    call.forget_hangup_record().await;
}

struct Call {
    uuid: Uuid,
    sent: Instant,
    registration: Registration,
    switch: Arc<Switch>,
    stats: Arc<Stats>,
    /// CHANNEL_ANSWER seen (counted, with its post-dial delay).
    answered: bool,
    /// The originate said `+OK`: the call is up even if its CHANNEL_ANSWER was not seen.
    connected: bool,
}

impl Call {
    fn note(&mut self, news: &ChannelNews) {
        if let ChannelNews::Answered { at } = news
            && !self.answered
        {
            self.answered = true;
            self.stats.answered(self.sent, *at);
        }
    }

    async fn follow(&mut self, args: &str, hold: Duration, stop: &CancellationToken) -> CallEnd {
        let job = match self.switch.client.bgapi(&format!("originate {args}")).await {
            Ok(job) => job,
            Err(e) => return failed_by_esl(&e),
        };
        let result = tokio::select! {
            result = job.result() => result,
            () = stop.cancelled() => return self.hang_up().await,
        };
        self.stats.background_job(self.sent, Instant::now());
        // A CHANNEL_ANSWER that came before the job's result is counted now.
        while let Ok(news) = self.registration.news.try_recv() {
            self.note(&news);
            if let ChannelNews::HungUp { cause, .. } = news {
                return self.ended_by_far_end(&result, cause);
            }
        }
        match result.as_ref().map(JobResult::outcome) {
            Ok(JobOutcome::Ok(_)) => self.connected = true,
            Ok(JobOutcome::Err(cause)) => {
                return CallEnd::Failed {
                    cause: first_word(cause),
                };
            }
            Ok(JobOutcome::Other(text)) => {
                return CallEnd::Failed {
                    cause: first_word(text),
                };
            }
            Err(e) => {
                // The connection failed; the call may be up on the switch: hang it up.
                let _ = self.hang_up().await;
                return failed_by_esl(e);
            }
        }
        let held = tokio::time::sleep(hold);
        tokio::pin!(held);
        loop {
            tokio::select! {
                () = &mut held => return self.hang_up().await,
                () = stop.cancelled() => return self.hang_up().await,
                news = self.registration.news.recv() => match news {
                    Some(ChannelNews::HungUp { cause, .. }) => {
                        return CallEnd::HungUpByFarEnd { cause };
                    }
                    Some(news) => self.note(&news),
                    None => return self.hang_up().await,
                },
            }
        }
    }

    fn ended_by_far_end(&self, result: &Result<JobResult, ClientError>, cause: String) -> CallEnd {
        let ok = matches!(
            result.as_ref().map(JobResult::outcome),
            Ok(JobOutcome::Ok(_))
        );
        if ok || self.answered {
            CallEnd::HungUpByFarEnd { cause }
        } else {
            CallEnd::Failed { cause }
        }
    }

    /// `uuid_kill`s the channel and waits for the switch to confirm.
    async fn hang_up(&mut self) -> CallEnd {
        let kill = format!("uuid_kill {} NORMAL_CLEARING", self.uuid);
        if let Err(e) = self.switch.client.api_text(&kill).await {
            tracing::warn!(uuid = %self.uuid, error = %e, "uuid_kill");
        }
        let confirmed = tokio::time::timeout(HANGUP_CONFIRM, async {
            while let Some(news) = self.registration.news.recv().await {
                self.note(&news);
                if let ChannelNews::HungUp { cause, .. } = news {
                    return Some(cause);
                }
            }
            None
        })
        .await;
        match confirmed {
            Ok(Some(_)) if self.answered || self.connected => CallEnd::HungUpByUs,
            // Stopped before it was answered: it did not fail on its own; it counts under the cause it got.
            Ok(Some(cause)) => CallEnd::Failed { cause },
            Ok(None) | Err(_) => CallEnd::Unconfirmed,
        }
    }

    /// `hash delete` of the record the originate's hangup hook leaves on the switch.
    async fn forget_hangup_record(&self) {
        let command = format!(
            "hash delete/{}/{}",
            crate::engine::hangup_record::REALM,
            self.uuid
        );
        if let Err(e) = self.switch.client.api_text(&command).await {
            tracing::debug!(uuid = %self.uuid, error = %e, "hash delete");
        }
    }
}

fn failed_by_esl(e: &ClientError) -> CallEnd {
    tracing::warn!(error = %e, "originate");
    CallEnd::Failed {
        cause: ESL_FAILURE.into(),
    }
}

/// `NO_ANSWER` of `-ERR NO_ANSWER` (FreeSWITCH may add text after the cause).
fn first_word(text: &str) -> String {
    match text.split_whitespace().next() {
        Some(w) => w.to_owned(),
        None => "UNKNOWN".to_owned(),
    }
}
