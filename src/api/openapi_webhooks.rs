//! OpenAPI schemas of the webhook settings and the webhook routes (outbox counts, dead letters, replay).

use serde_json::{Map, Value, json};

/// A campaign's `webhooks` field.
pub fn webhooks() -> Value {
    json!({"type": "array", "maxItems": crate::campaign::webhook::MAX_WEBHOOKS,
        "description": "where each outcome is POSTed, signed with X-Fsdialer-Signature (t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>), with X-Fsdialer-Event and Idempotency-Key",
        "items": {"type": "object", "required": ["url", "events", "secret"],
            "properties": {
                "url": {"type": "string", "description": "http:// or https:// only"},
                "events": {"type": "array", "minItems": 1, "items": {"enum": ["attempt_end", "member_end", "campaign_state"]}},
                "secret": {"type": "string", "minLength": crate::campaign::webhook::MIN_SECRET_LEN},
                "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 60000, "default": 5000},
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
                "retry_min_ms": {"type": "integer", "default": 1000, "description": "first back-off; doubles per failure, with jitter"},
                "retry_max_ms": {"type": "integer", "default": 600000}}}})
}

fn delivery() -> Value {
    json!({"type": "object", "properties": {
        "id": {"type": "string", "description": "delivery id: <event id>@<endpoint tag>"},
        "event_id": {"type": "string", "description": "the Idempotency-Key"},
        "event": {"enum": ["attempt_end", "member_end", "campaign_state"]},
        "url": {"type": "string"}, "body": {"type": "string", "description": "the JSON body as signed"},
        "member": {"type": ["integer", "null"]}, "created_ms": {"type": "integer"},
        "attempts": {"type": "integer"}, "last_error": {"type": ["string", "null"]},
        "dead_at_ms": {"type": ["integer", "null"]}}})
}

/// The webhook routes' answers.
pub fn add(m: &mut Map<String, Value>) {
    m.insert(
        "WebhookCounts".into(),
        json!({"type": "object", "properties": {"status": {"const": "OK"}, "data": {"type": "object", "properties": {
            "markers": {"type": "integer", "description": "attempts being completed (write-ahead markers)"},
            "queued": {"type": "integer"}, "dead": {"type": "integer"}}}}}),
    );
    m.insert(
        "DeadLetters".into(),
        json!({"type": "object", "properties": {"status": {"const": "OK"}, "data": {"type": "object", "properties": {
            "total": {"type": "integer"}, "items": {"type": "array", "items": delivery()}}}}}),
    );
    m.insert(
        "Replayed".into(),
        json!({"type": "object", "properties": {"status": {"const": "OK"}, "data": {"type": "object", "properties": {
            "replayed": {"type": "integer"}}}}}),
    );
}
