//! Customers with patience (scenario `patience_ms`): an answered member leg left parked in silence — not bridged,
//! nothing playing, nothing queued — for that long is hung up by its callee (NORMAL_CLEARING), as a live person
//! waiting for an agent would. Each quiet spell arms one timer, stamped with when it began; anything that breaks
//! the silence (an application, a bridge, leaving park) disarms it, so a stale timer finds another stamp and does
//! nothing.

use super::{Activity, Switch, Timer};

impl Switch {
    fn is_quiet(&self, uuid: &str) -> bool {
        self.channels.get(uuid).is_some_and(|c| {
            !c.hanging_up
                && c.answered_us > 0
                && c.park.is_some()
                && c.activity == Activity::Idle
                && c.uuid_bridge.is_none()
                && c.queued.is_empty()
        })
    }

    /// Arms the patience timer if the channel has patience and just fell quiet.
    pub(super) fn quiet_check(&mut self, uuid: &str) {
        if !self.is_quiet(uuid) {
            return;
        }
        let now = self.now;
        let Some(p) = self
            .channels
            .get_mut(uuid)
            .and_then(|c| c.patience.as_mut())
        else {
            return;
        };
        if p.waiting_since.is_some() {
            return;
        }
        p.waiting_since = Some(now);
        let ms = p.ms;
        self.schedule(
            ms,
            Timer::Patience {
                uuid: uuid.into(),
                since: now,
            },
        );
    }

    /// The silence is broken.
    pub(super) fn quiet_end(&mut self, uuid: &str) {
        if let Some(p) = self
            .channels
            .get_mut(uuid)
            .and_then(|c| c.patience.as_mut())
        {
            p.waiting_since = None;
        }
    }

    /// A patience timer fired: the callee hangs up if the same quiet spell is still going on.
    pub(super) fn patience_over(&mut self, uuid: &str, since: u64) {
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        if ch.patience.and_then(|p| p.waiting_since) != Some(since) || !self.is_quiet(uuid) {
            return;
        }
        let call = ch.call;
        tracing::debug!(%uuid, "sim: the waiting callee runs out of patience");
        self.callee_hangs_up(call, "NORMAL_CLEARING");
    }
}
