//! Where a claimed number goes: the gateway (by name, with its circuit breaker) and the switch.
//!
//! Routing takes the **first enabled gateway whose pattern matches** and that has local room (its `limit`, its
//! `cps`, a shared slot not refused a moment ago, and a closed breaker); the least-loaded connected switch with
//! free sessions and pacing room takes the call.
//!
//! **Circuit breaker.** A trunk or switch fault — a cause in the gateway's `local_failure_causes`, or an `-ERR`
//! naming no hangup cause — is not the callee's doing: the attempt is Minus (no try counted, no number ended) and
//! counts toward the gateway's breaker. `breaker_threshold` such failures in a row open it: the gateway takes no
//! call for a back-off (2 s doubling to 64 s), then lets **one** probe call through (half-open). A probe that
//! fails opens it again for longer; any call that reaches the callee (answered, busy, no answer…) closes it. So a
//! trunk that is down costs one probe per back-off, not a number per member.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use uuid::Uuid;

use super::caller_ids::CallerIdPlan;
use super::{Action, Core, SwitchConfig, SwitchLimits};
use crate::campaign::causes::CauseClass;
use crate::engine::originate::{self, OriginateSpec};
use crate::engine::pacing::{SessionWindow, TokenBucket};
use crate::store::{AttemptId, Claim};

/// First back-off of an opened breaker; doubled each time it opens again, up to [`BREAKER_MAX_SHIFT`] doublings.
const BREAKER_BACKOFF: ChronoDuration = ChronoDuration::seconds(2);
const BREAKER_MAX_SHIFT: u32 = 5;
/// Cause recorded for an attempt whose originate would be longer than FreeSWITCH accepts (never sent).
const ORIGINATE_TOO_LONG: &str = "ORIGINATE_TOO_LONG";
/// How long a gateway whose shared slots were all taken (by other nodes or campaigns) is skipped.
const BUSY_PAUSE: ChronoDuration = ChronoDuration::milliseconds(500);

/// A gateway's circuit breaker (see the module documentation).
#[derive(Debug, Clone, Default)]
pub(super) struct Breaker {
    /// Local failures in a row.
    streak: u32,
    /// Open until this instant; after it, half-open (one probe).
    open_until: Option<DateTime<Utc>>,
    /// Times it opened since it last closed (the back-off's exponent).
    openings: u32,
    /// The half-open breaker's probe call in flight.
    probe: Option<AttemptId>,
}

impl Breaker {
    /// Whether a new call may be placed now.
    pub fn admits(&self, now: DateTime<Utc>) -> bool {
        match self.open_until {
            None => true,
            Some(t) if t > now => false,
            Some(_) => self.probe.is_none(),
        }
    }

    /// When it admits a call again, if it does not now.
    fn closed_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.open_until {
            Some(t) if t > now => Some(t),
            // Half-open with its probe in flight: the probe's end decides; look again shortly.
            Some(_) if self.probe.is_some() => Some(now + ChronoDuration::seconds(1)),
            _ => None,
        }
    }

    fn placed(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        if self.open_until.is_some_and(|t| t <= now) && self.probe.is_none() {
            self.probe = Some(attempt);
        }
    }

    /// A local failure; returns the instant the breaker opened until, if this failure opened it.
    fn local_failure(
        &mut self,
        now: DateTime<Utc>,
        attempt: AttemptId,
        threshold: u32,
    ) -> Option<DateTime<Utc>> {
        self.streak += 1;
        let failed_probe = self.probe == Some(attempt);
        if failed_probe {
            self.probe = None;
        }
        let opens = failed_probe || (self.open_until.is_none() && self.streak >= threshold);
        if !opens {
            return None;
        }
        let until = now + BREAKER_BACKOFF * (1 << self.openings.min(BREAKER_MAX_SHIFT));
        self.openings += 1;
        self.open_until = Some(until);
        Some(until)
    }

    /// A call reached the callee: the trunk works.
    fn healthy(&mut self) -> bool {
        let was_open = self.open_until.is_some();
        *self = Breaker::default();
        was_open
    }

    /// A call that ended neither way (released, lost): a probe in flight no longer is one.
    fn forget(&mut self, attempt: AttemptId) {
        if self.probe == Some(attempt) {
            self.probe = None;
        }
    }

    /// What the breaker is doing now, for the API and the operator page.
    pub fn status(&self, now: DateTime<Utc>) -> BreakerStatus {
        let state = match self.open_until {
            None => BreakerState::Closed,
            Some(t) if t > now => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        };
        BreakerStatus {
            state,
            paused_until: self.open_until.filter(|t| *t > now),
            consecutive_failures: self.streak,
            probe_in_flight: self.probe.is_some(),
        }
    }
}

/// A gateway breaker's state: closed (calls go), open (paused until its back-off ends), half-open (one probe
/// call may go, or is in flight; its end decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// A gateway's circuit breaker as one node's core sees it (each node keeps its own: the failures it saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BreakerStatus {
    pub state: BreakerState,
    /// Open: no new call on the gateway before this instant.
    pub paused_until: Option<DateTime<Utc>>,
    /// Local failures (trunk or switch faults) in a row.
    pub consecutive_failures: u32,
    /// Half-open: its one probe call is in flight.
    pub probe_in_flight: bool,
}

/// One gateway of a campaign on this node: its calls in flight here and its breaker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GatewayStatus {
    pub name: String,
    /// Calls in flight on it placed by this node.
    pub active_here: u32,
    pub breaker: BreakerStatus,
}

/// One gateway of a campaign on this node.
#[derive(Debug)]
pub(super) struct GatewayState {
    /// Calls in flight placed on it.
    pub active: u32,
    cps: Option<TokenBucket>,
    cps_rate: Option<f64>,
    /// Its shared slots were all taken a moment ago.
    busy_until: Option<DateTime<Utc>>,
    pub breaker: Breaker,
}

impl GatewayState {
    pub fn new(cps: Option<f64>, now: DateTime<Utc>) -> GatewayState {
        GatewayState {
            active: 0,
            cps: cps.map(|r| TokenBucket::new(r, r.max(1.0), now)),
            cps_rate: cps,
            busy_until: None,
            breaker: Breaker::default(),
        }
    }

    /// Follows an edit of the gateway's `cps` (a bucket kept when the rate is unchanged).
    pub fn follow_cps(&mut self, cps: Option<f64>, now: DateTime<Utc>) {
        if self.cps_rate != cps {
            self.cps = cps.map(|r| TokenBucket::new(r, r.max(1.0), now));
            self.cps_rate = cps;
        }
    }

    /// When it takes a call again, if it does not now (busy or breaker open).
    pub fn closed_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let busy = self.busy_until.filter(|t| *t > now);
        match (busy, self.breaker.closed_until(now)) {
            (None, None) => None,
            (a, b) => a.max(b),
        }
    }

    fn takes(&mut self, now: DateTime<Utc>, limit: Option<u32>) -> bool {
        self.closed_until(now).is_none()
            && limit.is_none_or(|l| self.active < l)
            && self.cps.as_mut().is_none_or(|b| b.available(now) > 0)
    }
}

/// A FreeSWITCH node as the core tracks it.
#[derive(Debug)]
pub(super) struct SwitchState {
    pub cfg: SwitchConfig,
    pub connected: bool,
    /// Since when it is disconnected (after having been connected).
    down_since: Option<DateTime<Utc>>,
    /// Its calls were settled as lost during this outage.
    settled: bool,
    pub calls: u32,
    /// Its session-rate window, once its limits are known.
    sps: Option<SessionWindow>,
    pub paused_until: Option<DateTime<Utc>>,
    pub fail_streak: u32,
}

impl SwitchState {
    pub fn new(cfg: SwitchConfig) -> SwitchState {
        SwitchState {
            // No FreeSWITCH second may see more new sessions than its sessions_per_second lets through.
            sps: cfg
                .limits
                .map(|l| SessionWindow::for_switch(l.sessions_per_second)),
            cfg,
            connected: false,
            down_since: None,
            settled: false,
            calls: 0,
            paused_until: None,
            fail_streak: 0,
        }
    }

    /// The switch's limits became known (or changed: a reconnect reads them again). Starts of the last second
    /// still count against the new rate.
    pub fn set_limits(&mut self, limits: SwitchLimits) {
        match self.sps.as_mut() {
            Some(window) => window.set_switch_sps(limits.sessions_per_second),
            None => self.sps = Some(SessionWindow::for_switch(limits.sessions_per_second)),
        }
        self.cfg.limits = Some(limits);
    }

    pub fn disconnected(&mut self, now: DateTime<Utc>) {
        if self.connected {
            self.down_since = Some(now);
            self.settled = false;
        }
        self.connected = false;
    }

    /// Whether the switch can say which of its calls are up: connected, or down long enough (`after`, counted
    /// from `started` for one never connected) to be lost, its calls gone.
    pub fn accountable(
        &self,
        now: DateTime<Utc>,
        after: ChronoDuration,
        started: DateTime<Utc>,
    ) -> bool {
        self.connected || self.settled || self.down_since.unwrap_or(started) + after <= now
    }

    /// When this outage makes the switch lost (its calls settled), if it is down and not settled yet.
    pub fn lost_at(&self, after: ChronoDuration) -> Option<DateTime<Utc>> {
        self.down_since.filter(|_| !self.settled).map(|d| d + after)
    }

    fn per_call(&self) -> u32 {
        self.cfg.sessions_per_call.max(1)
    }

    fn usable(&self, now: DateTime<Utc>) -> bool {
        self.connected && self.paused_until.is_none_or(|p| p <= now)
    }

    /// Calls it can take now: free sessions and pacing room (none while its limits are unknown: fail closed).
    fn budget(&mut self, now: DateTime<Utc>) -> u32 {
        if !self.usable(now) {
            return 0;
        }
        let per = self.per_call();
        let (Some(limits), Some(sps)) = (self.cfg.limits, self.sps.as_mut()) else {
            return 0;
        };
        let free = limits.max_sessions.saturating_sub(self.calls * per) / per;
        free.min(sps.available(now) / per)
    }
}

impl Core {
    /// Calls the connected, unpaused switches can take now (free sessions and pacing).
    pub(super) fn switch_budget(&mut self, now: DateTime<Utc>) -> u32 {
        self.switches.iter_mut().map(|s| s.budget(now)).sum()
    }

    /// Picks a gateway and a switch for a claim and emits the originate, or releases the claim.
    pub(super) fn place(&mut self, now: DateTime<Utc>, id: &str, claim: Claim) {
        let c = self.campaigns.get_mut(id).expect("campaign present");
        if !c.sm.state().dials() {
            self.release_claim(id, &claim, None);
            return;
        }
        let valid = c.valid.clone();
        let gateways = &mut c.gateways;
        let route = valid.gateways().route_with(&claim.number, |_, gw| {
            gateways
                .get_mut(gw.name())
                .is_some_and(|g| g.takes(now, gw.limit()))
        });
        let route = match route {
            Ok(r) => r,
            Err(e) => {
                use crate::campaign::gateway::RouteError;
                match e {
                    // No gateway will ever take this number: an error-class result for this number.
                    RouteError::NoMatch { .. } | RouteError::UnsafeNumber { .. } => {
                        // The error quotes the number: personal data, logged masked unless allowed.
                        tracing::info!(
                            campaign = id,
                            number = %crate::logging::mask_number(&claim.number),
                            unsafe_text = matches!(e, RouteError::UnsafeNumber { .. }),
                            "number cannot be routed"
                        );
                        let cause = if matches!(e, RouteError::UnsafeNumber { .. }) {
                            "INVALID_NUMBER_FORMAT"
                        } else {
                            "NO_ROUTE"
                        };
                        let attempt = claim.attempt_id;
                        self.track(now, id, claim, None, None, None);
                        self.complete(now, attempt, cause.into(), CauseClass::Error, 0);
                        return;
                    }
                    // Every matching gateway is busy or paused: ours, not the callee's.
                    RouteError::Unavailable { .. } => {
                        self.release_claim(id, &claim, Some(now + ChronoDuration::seconds(1)));
                        return;
                    }
                }
            }
        };
        // The least loaded connected switch with room for one more call.
        let mut best: Option<usize> = None;
        for i in 0..self.switches.len() {
            let fits = self.switches[i].budget(now) >= 1;
            if fits && best.is_none_or(|b| self.switches[i].calls < self.switches[b].calls) {
                best = Some(i);
            }
        }
        let Some(sw_i) = best else {
            self.release_claim(id, &claim, None);
            return;
        };
        let gateway = valid
            .gateways()
            .get(route.index)
            .expect("routed gateway exists");
        let gw_name = gateway.name().to_owned();
        let caller_id = match self.plan_caller_id(now, gateway, valid.caller_id_pool(), &claim) {
            CallerIdPlan::SwitchDefault => None,
            CallerIdPlan::Present(count) => Some(count),
            CallerIdPlan::Hold => {
                self.hold_for_caller_ids(now, id, &claim);
                return;
            }
        };
        let member_vars: Vec<(String, String)> = claim
            .variables
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        let member_id = claim.member_id.to_string();
        let spec = OriginateSpec {
            attempt_id: claim.attempt_id,
            dial_string: &route.dial_string,
            originate_timeout_sec: valid.config().originate_timeout_sec,
            caller_id_number: caller_id.as_ref().map(|c| c.number.as_str()),
            campaign_id: id,
            member_id: &member_id,
            attempt_no: claim.attempt_no,
            campaign_vars: valid.channel_variables(),
            member_vars: &member_vars,
            application: "&park()",
            node: Some(&self.cfg.node),
        };
        let built = match originate::try_build(&spec, valid.member_channel_vars()) {
            Ok(built) => built,
            Err(e) => {
                // Member data is bounded at input, so only data stored before the bounds can get here: the
                // command is never sent; the number is bad data (error class), so the member cannot spin on it.
                tracing::warn!(campaign = id, attempt = %claim.attempt_id, error = %e, "originate not sent");
                let attempt = claim.attempt_id;
                self.track(now, id, claim, None, None, None);
                self.complete(
                    now,
                    attempt,
                    ORIGINATE_TOO_LONG.into(),
                    CauseClass::Error,
                    0,
                );
                return;
            }
        };
        let gw_limit = gateway.limit();
        let job = Uuid::new_v4();
        let attempt = claim.attempt_id;
        {
            let c = self.campaigns.get_mut(id).expect("present");
            let g = c
                .gateways
                .get_mut(&gw_name)
                .expect("routed gateway tracked");
            g.active += 1;
            if let Some(b) = g.cps.as_mut() {
                b.take(1, now);
            }
            g.breaker.placed(now, attempt);
            let sw = &mut self.switches[sw_i];
            sw.calls += 1;
            let per = sw.per_call();
            if let Some(window) = sw.sps.as_mut() {
                window.take(per, now);
            }
        }
        tracing::debug!(campaign = id, %attempt, gateway = gw_name, "originate");
        self.track(now, id, claim, Some(gw_name.clone()), Some(sw_i), Some(job));
        if let Some(call) = self.calls.get_mut(&attempt) {
            call.caller_id = caller_id.as_ref().map(|c| c.number.clone());
        }
        let originate = Action::Originate {
            campaign: id.to_owned(),
            switch: sw_i,
            attempt,
            job,
            gateway: gw_name,
            gateway_limit: gw_limit,
            caller_id,
            originate: built,
        };
        if valid.mode().uses_agents() {
            // An agent first: the originate waits for its reservation.
            self.agent_call_placed(now, attempt, originate);
        } else {
            self.out.push(originate);
        }
    }

    /// The shell could not take a shared slot of the call's gateway: skip the gateway briefly, give the claim back.
    pub(super) fn on_gateway_busy(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        if let (Some(c), Some(g)) = (self.campaigns.get_mut(&call.campaign), &call.gateway)
            && let Some(state) = c.gateways.get_mut(g)
        {
            state.busy_until = Some(now + BUSY_PAUSE);
        }
        self.release_call(now, attempt);
    }

    /// The switch refused a session for capacity: pause it with back-off.
    pub(super) fn switch_refused(&mut self, now: DateTime<Utc>, switch: Option<usize>) {
        if let Some(sw) = switch.and_then(|i| self.switches.get_mut(i)) {
            sw.fail_streak += 1;
            let backoff = 250i64 << sw.fail_streak.min(6);
            sw.paused_until = Some(now + ChronoDuration::milliseconds(backoff));
        }
    }

    /// The switch answered normally.
    pub(super) fn switch_healthy(&mut self, switch: Option<usize>) {
        if let Some(sw) = switch.and_then(|i| self.switches.get_mut(i)) {
            sw.fail_streak = 0;
        }
    }

    /// A local failure of the call's gateway (see the module documentation).
    pub(super) fn gateway_failed(&mut self, now: DateTime<Utc>, attempt: AttemptId) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        let Some(name) = call.gateway.clone() else {
            return;
        };
        let threshold = call.version.gateways().by_name(&name).map_or(
            crate::campaign::gateway::DEFAULT_BREAKER_THRESHOLD,
            |(_, g)| g.breaker_threshold(),
        );
        let campaign = call.campaign.clone();
        if let Some(state) = self
            .campaigns
            .get_mut(&campaign)
            .and_then(|c| c.gateways.get_mut(&name))
            && let Some(until) = state.breaker.local_failure(now, attempt, threshold)
        {
            tracing::warn!(campaign, gateway = name, %until, "gateway breaker open: local failures in a row");
            metrics::counter!("fsdialer_gateway_breaker_open_total", "gateway" => name)
                .increment(1);
        }
    }

    /// A call on the gateway reached the callee: close its breaker.
    pub(super) fn gateway_healthy(&mut self, attempt: AttemptId) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        let Some(name) = call.gateway.as_deref() else {
            return;
        };
        if let Some(state) = self
            .campaigns
            .get_mut(&call.campaign)
            .and_then(|c| c.gateways.get_mut(name))
            && state.breaker.healthy()
        {
            tracing::info!(
                campaign = call.campaign,
                gateway = name,
                "gateway breaker closed"
            );
        }
    }

    /// The call ends without telling anything about its gateway.
    pub(super) fn gateway_forget(&mut self, attempt: AttemptId) {
        let Some(call) = self.calls.get(&attempt) else {
            return;
        };
        if let Some(state) = call.gateway.as_deref().and_then(|name| {
            self.campaigns
                .get_mut(&call.campaign)
                .and_then(|c| c.gateways.get_mut(name))
        }) {
            state.breaker.forget(attempt);
        }
    }

    /// Switches down for `switch_lost_after`: their calls are settled as lost and their slots freed.
    pub(super) fn poll_switches_lost(&mut self, now: DateTime<Utc>) {
        let after = super::dur(self.cfg.switch_lost_after);
        for i in 0..self.switches.len() {
            let sw = &mut self.switches[i];
            if sw.lost_at(after).is_none_or(|t| t > now) {
                continue;
            }
            sw.settled = true;
            let name = sw.cfg.name.clone();
            let lost: Vec<AttemptId> = self
                .calls
                .iter()
                .filter(|(_, c)| c.switch == Some(i) && !c.completing && c.decided.is_none())
                .map(|(a, _)| *a)
                .collect();
            tracing::warn!(
                switch = name,
                calls = lost.len(),
                "switch lost: settling its calls"
            );
            for a in lost {
                self.settle_lost(now, a);
            }
        }
    }

    /// The switch's limits were read at connect: pace it by them from now on.
    pub(super) fn on_switch_limits(&mut self, i: usize, limits: SwitchLimits) {
        if let Some(sw) = self.switches.get_mut(i) {
            tracing::info!(
                switch = sw.cfg.name,
                max_sessions = limits.max_sessions,
                sessions_per_second = limits.sessions_per_second,
                "switch limits"
            );
            sw.set_limits(limits);
        }
    }

    pub(super) fn on_switch_up(&mut self, now: DateTime<Utc>, i: usize) {
        if let Some(sw) = self.switches.get_mut(i) {
            sw.connected = true;
            sw.down_since = None;
        }
        let _ = now;
        // Every call on it may have ended while we could not hear: ask.
        let ids: Vec<AttemptId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.switch == Some(i) && !c.completing && c.decided.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.reconcile(now, id);
        }
        // Adopted calls not located yet may be on it.
        let unlocated: Vec<AttemptId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.adopted && c.switch.is_none() && !c.completing)
            .map(|(id, _)| *id)
            .collect();
        for id in unlocated {
            self.out.push(Action::Locate { attempt: id });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn breaker_opens_after_the_threshold_then_lets_one_probe_through() {
        let mut b = Breaker::default();
        let (a1, a2, a3, p) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        assert_eq!(b.local_failure(t(0), a1, 3), None);
        assert_eq!(b.local_failure(t(0), a2, 3), None);
        assert_eq!(b.local_failure(t(0), a3, 3), Some(t(2)));
        assert!(!b.admits(t(1)));
        assert!(b.admits(t(2)));
        b.placed(t(2), p);
        assert!(!b.admits(t(2)), "one probe at a time");
        // The probe fails: open again, twice as long.
        assert_eq!(b.local_failure(t(3), p, 3), Some(t(7)));
        assert!(!b.admits(t(6)));
        // A probe that reaches the callee closes it.
        b.placed(t(7), p);
        assert!(b.healthy());
        assert!(b.admits(t(7)));
        assert_eq!(b.streak, 0);
    }

    #[test]
    fn breaker_status_tells_closed_open_until_and_half_open_with_the_failure_streak() {
        let mut b = Breaker::default();
        let closed = BreakerStatus {
            state: BreakerState::Closed,
            paused_until: None,
            consecutive_failures: 0,
            probe_in_flight: false,
        };
        assert_eq!(b.status(t(0)), closed);
        let (a1, a2, p) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        b.local_failure(t(0), a1, 2);
        assert_eq!(b.status(t(0)).consecutive_failures, 1);
        assert_eq!(b.status(t(0)).state, BreakerState::Closed);
        b.local_failure(t(0), a2, 2);
        let open = b.status(t(1));
        assert_eq!(
            (open.state, open.paused_until, open.consecutive_failures),
            (BreakerState::Open, Some(t(2)), 2)
        );
        // Past the back-off: half-open, then its probe in flight.
        assert_eq!(b.status(t(2)).state, BreakerState::HalfOpen);
        assert_eq!(b.status(t(2)).paused_until, None);
        b.placed(t(2), p);
        assert!(b.status(t(2)).probe_in_flight);
        b.healthy();
        assert_eq!(b.status(t(3)), closed);
    }

    #[test]
    fn breaker_back_off_is_capped() {
        let mut b = Breaker::default();
        let mut now = t(0);
        let mut last = ChronoDuration::zero();
        for _ in 0..10 {
            // Closed at first, then the probe each back-off lets through: each failure opens it again.
            let p = Uuid::new_v4();
            b.placed(now, p);
            let until = b.local_failure(now, p, 1).expect("opens");
            last = until - now;
            now = until;
        }
        assert_eq!(last, ChronoDuration::seconds(64));
    }
}
