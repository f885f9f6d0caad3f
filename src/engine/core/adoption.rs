//! Adoption: the attempts this node holds in the store but does not track yet (after a restart, or taken over
//! from a vanished node) are tracked again and looked for on the switches. One still up finishes with its real
//! outcome; one gone that left a hangup record on a switch (`engine::hangup_record`, the call's `api_hangup_hook`)
//! is recorded with the outcome the record holds; only one gone without a trace is lost.

use chrono::{DateTime, Utc};

use super::{Core, HangupRecord, dur};
use crate::store::{AttemptId, Claim};

impl Core {
    /// Takes back attempts this node held before it restarted (see the module documentation).
    pub(super) fn adopt(&mut self, now: DateTime<Utc>, id: &str, claims: Vec<Claim>) {
        if !self.campaigns.contains_key(id) {
            tracing::warn!(
                campaign = id,
                claims = claims.len(),
                "cannot adopt calls of an unknown campaign"
            );
            return;
        }
        for claim in claims {
            let attempt = claim.attempt_id;
            if self.calls.contains_key(&attempt) {
                continue;
            }
            self.track(now, id, claim, None, None, None);
            if let Some(call) = self.calls.get_mut(&attempt) {
                call.adopted = true;
                call.channel_seen = true;
            }
            tracing::info!(campaign = id, %attempt, "adopting a call of the previous run");
            self.reconcile(now, attempt);
        }
    }

    pub(super) fn on_located(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        switch: Option<usize>,
        ended: Option<HangupRecord>,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        if !call.adopted || call.switch.is_some() || call.completing || call.hangup.is_some() {
            return;
        }
        match switch {
            Some(i) if i < self.switches.len() && ended.is_some() => {
                // Gone, but its end is on record on switch `i` (whose record is deleted once the result is in).
                call.switch = Some(i);
                call.reconciling = false;
                call.check_failures = 0;
                self.switches[i].calls += 1;
                if let Some(record) = ended {
                    self.on_recorded_end(now, attempt, record);
                }
            }
            Some(i) if i < self.switches.len() => {
                call.switch = Some(i);
                call.reconciling = false;
                call.check_failures = 0;
                self.switches[i].calls += 1;
                let at = now + dur(self.cfg.max_call);
                self.arm(attempt, at);
            }
            _ => {
                tracing::info!(%attempt, "adopted call is on no switch: lost attempt");
                self.settle_lost(now, attempt);
            }
        }
    }

    /// A call whose channel is gone and whose end was never heard, but whose hangup hook left its outcome on the
    /// switch: ended as the record says.
    pub(super) fn on_recorded_end(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        record: HangupRecord,
    ) {
        let Some(call) = self.calls.get_mut(&attempt) else {
            return;
        };
        // Answer and end both on the switch's clock (the answer as this node heard it is on another).
        if record.answered_at.is_some() {
            call.answered_at = record.answered_at;
        }
        tracing::info!(%attempt, cause = record.cause, "the call ended unobserved: its outcome is read from the switch's hangup record");
        metrics::counter!("fsdialer_recorded_hangups_total").increment(1);
        // The record's end may lie in the future of a node whose clock is behind the switch's.
        let at = record.ended_at.min(now);
        let answered = record.answered_at.is_some();
        self.hangup_at(
            now,
            at,
            attempt,
            record.cause,
            answered,
            record.talk_secs,
            record.talk_ms,
        );
    }
}
