//! The webhook events as JSON, and the deliveries they become.
//!
//! Every event is built from what the store already holds durably (the attempt's record, the member, the campaign
//! transition), so the live path and the crash-recovery path (`resolve`) produce the same bytes and the same
//! `Idempotency-Key`: `<event>:<attempt id>` for attempt and member events, `campaign_state:<campaign>:<ms>:<to>`
//! for transitions.
//!
//! Payloads (one JSON object, `type` and `id` first):
//! - `attempt_end`: `campaign`, `member` {id, name, external_id}, `number`, `attempt_no`, `is_last` (the member
//!   ended with it), `cause`, `class` (ok/retry/error/minus), `outcome` (success, retry or ended), `talk_secs`,
//!   `originate_at`, `answered_at`, `hangup_at`, `next_due` (retry), `amd` and `agent` when the call had them.
//! - `member_end`: `campaign`, `member`, `end_cause`, `success`, `attempts` (all tries), `last_attempt`.
//! - `campaign_state`: `campaign`, `old_state`, `new_state`, `reason`, `at`.

use crate::campaign::webhook::{WebhookConfig, WebhookEvent};
use crate::engine::state::Transition;
use crate::store::outbox::{DeliveryRecord, EnqueueGroup, endpoint_tag};
use crate::store::{AttemptRecord, Member, MemberFate, ms};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// One event before it is addressed to endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: WebhookEvent,
    /// The `Idempotency-Key`.
    pub id: String,
    pub member: Option<u64>,
    pub body: String,
}

impl Event {
    /// One delivery per endpoint that asked for this kind of event.
    pub fn deliveries(&self, hooks: &[WebhookConfig], now: DateTime<Utc>) -> Vec<DeliveryRecord> {
        hooks
            .iter()
            .filter(|h| h.wants(self.kind))
            .map(|h| DeliveryRecord {
                id: format!("{}@{}", self.id, endpoint_tag(&h.url)),
                event_id: self.id.clone(),
                event: self.kind.as_str().to_owned(),
                url: h.url.clone(),
                body: self.body.clone(),
                member: self.member,
                created_ms: ms(now),
                attempts: 0,
                last_error: None,
                dead_at_ms: None,
            })
            .collect()
    }
}

fn member_view(member: &Member) -> Value {
    json!({"id": member.id.0, "name": member.name, "external_id": member.external_id})
}

/// The events of a completed attempt: `attempt_end`, and `member_end` when the member ended with it.
pub fn attempt_events(campaign: &str, member: &Member, rec: &AttemptRecord) -> Vec<Event> {
    let note: Option<Value> = rec
        .note
        .as_deref()
        .and_then(|n| serde_json::from_str(n).ok());
    let (outcome, is_last, next_due) = match &rec.fate {
        MemberFate::Ended { success: true, .. } => ("success", true, None),
        MemberFate::Ended { .. } => ("ended", true, None),
        MemberFate::Due(at) => ("retry", false, Some(*at)),
    };
    let mut body = json!({
        "type": WebhookEvent::AttemptEnd.as_str(),
        "id": format!("attempt_end:{}", rec.attempt_id),
        "campaign": campaign,
        "attempt_id": rec.attempt_id,
        "member": member_view(member),
        "number": rec.number,
        "attempt_no": rec.attempt_no,
        "is_last": is_last,
        "cause": rec.cause,
        "class": rec.class.as_str(),
        "outcome": outcome,
        "talk_secs": rec.talk_secs,
        "originate_at": rec.originate_at,
        "answered_at": rec.answer_at,
        "hangup_at": rec.hangup_at,
        "completed_at": rec.completed_at,
        "next_due": next_due,
    });
    for (from, to) in [("amd", "amd"), ("agent_call", "agent")] {
        if let Some(v) = note.as_ref().and_then(|n| n.get(from)) {
            body[to] = v.clone();
        }
    }
    let mut events = vec![Event {
        kind: WebhookEvent::AttemptEnd,
        id: format!("attempt_end:{}", rec.attempt_id),
        member: Some(member.id.0),
        body: body.to_string(),
    }];
    if let MemberFate::Ended { cause, success } = &rec.fate {
        let body = json!({
            "type": WebhookEvent::MemberEnd.as_str(),
            "id": format!("member_end:{}", rec.attempt_id),
            "campaign": campaign,
            "member": member_view(member),
            "end_cause": cause,
            "success": success,
            "attempts": member.attempts,
            "last_attempt": rec.attempt_id,
            "ended_at": rec.completed_at,
        });
        events.push(Event {
            kind: WebhookEvent::MemberEnd,
            id: format!("member_end:{}", rec.attempt_id),
            member: Some(member.id.0),
            body: body.to_string(),
        });
    }
    events
}

/// The event of a campaign state transition.
pub fn state_event(campaign: &str, t: &Transition) -> Event {
    let to = serde_json::to_value(t.to).unwrap_or(Value::Null);
    let to_text = to.as_str().map_or_else(|| to.to_string(), str::to_owned);
    let id = format!("campaign_state:{campaign}:{}:{to_text}", ms(t.at));
    let body = json!({
        "type": WebhookEvent::CampaignState.as_str(),
        "id": id,
        "campaign": campaign,
        "old_state": t.from,
        "new_state": t.to,
        "reason": t.reason,
        "at": t.at,
    });
    Event {
        kind: WebhookEvent::CampaignState,
        id,
        member: None,
        body: body.to_string(),
    }
}

/// The deliveries of an attempt's events, under its marker.
pub fn attempt_group(
    campaign: &str,
    hooks: &[WebhookConfig],
    member: &Member,
    rec: &AttemptRecord,
    now: DateTime<Utc>,
) -> EnqueueGroup {
    EnqueueGroup {
        marker: Some(rec.attempt_id),
        deliveries: attempt_events(campaign, member, rec)
            .iter()
            .flat_map(|e| e.deliveries(hooks, now))
            .collect(),
    }
}
