//! The OpenAPI schemas of the agent routes (see [`super::openapi`], which adds them to the document), held to the
//! Rust types by the tests below like the other schemas.

use super::openapi::{obj, ok_of, r};
use serde_json::{Map, Value, json};

const INSTANT: &str = "date-time";

fn status() -> Value {
    obj(
        json!({
            "type": {"enum": ["logged_out", "ready", "paused", "on_demand"]},
            "reason": {"type": "string", "description": "paused only"},
            "until": {"type": ["string", "null"], "format": INSTANT, "description": "paused only: back to ready then"},
        }),
        &["type"],
    )
}

fn state() -> Value {
    obj(
        json!({
            "type": {"enum": ["idle", "reserved", "offering", "talking", "wrap_up", "missed"]},
            "until": {"type": "string", "format": INSTANT, "description": "wrap_up and missed: when it ends"},
        }),
        &["type"],
    )
}

fn team() -> Value {
    obj(
        json!({"team": {"type": "string"}, "level": {"type": "integer", "minimum": 0, "description": "higher preferred"}}),
        &["team", "level"],
    )
}

fn agent_config() -> Value {
    obj(
        json!({
            "id": {"type": "string", "description": "letters, digits, _ - . @ (at most 64)"},
            "name": {"type": "string"},
            "dial_string": {"type": "string", "description": "user/1001, sofia/gateway/x/…, loopback/agent_1/default"},
            "teams": {"type": "array", "items": r("TeamMembership")},
            "lines": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1, "description": "progressive lines"},
            "version": {"type": "integer", "description": "bumped by every write"},
        }),
        &["id", "dial_string"],
    )
}

fn stats() -> Value {
    obj(
        json!({
            "calls": {"type": "integer"}, "talk_ms": {"type": "integer"}, "wrap_ms": {"type": "integer"},
            "idle_ms": {"type": "integer"}, "missed": {"type": "integer"}, "logged_in_ms": {"type": "integer"},
            "paused_ms": {"type": "integer"},
        }),
        &[
            "calls",
            "talk_ms",
            "wrap_ms",
            "idle_ms",
            "missed",
            "logged_in_ms",
            "paused_ms",
        ],
    )
}

fn reservation() -> Value {
    obj(
        json!({
            "id": {"type": "string"}, "campaign": {"type": "string"}, "member": {"type": "integer"},
            "attempt": {"type": "string"}, "node": {"type": "string", "description": "the engine node placing the calls"},
            "state": {"enum": ["reserved", "offering", "talking"]}, "line": {"type": "integer"},
            "lease_until": {"type": "string", "format": INSTANT},
        }),
        &[
            "id",
            "campaign",
            "member",
            "attempt",
            "node",
            "state",
            "line",
            "lease_until",
        ],
    )
}

fn agent_view() -> Value {
    obj(
        json!({
            "agent": r("AgentConfig"),
            "status": r("AgentStatus"),
            "pending_status": {"description": "asked during a call: applies when it ends", "oneOf": [r("AgentStatus"), {"type": "null"}]},
            "state": r("AgentState"),
            "state_since": {"type": "string", "format": INSTANT},
            "reservations": {"type": "array", "items": r("Reservation")},
            "no_answer_streak": {"type": "integer", "description": "offers missed in a row"},
            "last_call": {"type": ["object", "null"], "description": "{campaign, member, attempt} of the last call talked on"},
            "stats": r("AgentStats"),
            "occupancy": {"type": ["number", "null"], "description": "(talk + wrap) / (logged in − paused)"},
            "member": {"type": ["object", "null"], "description": "the member offered or talking: campaign, id, attempt, reservation, state, name, number, variables"},
        }),
        &[
            "agent",
            "status",
            "state",
            "state_since",
            "reservations",
            "stats",
        ],
    )
}

/// Adds the agent schemas.
pub fn add(m: &mut Map<String, Value>) {
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("TeamMembership", team());
    put("AgentConfig", agent_config());
    put("AgentInput", agent_config());
    put("AgentStatus", status());
    put("AgentState", state());
    put("AgentStats", stats());
    put("Reservation", reservation());
    put("Agent", agent_view());
    put("AgentAnswer", ok_of(r("Agent")));
    put(
        "AgentList",
        ok_of(json!({"type": "array", "items": r("Agent")})),
    );
    put(
        "AgentStatusInput",
        obj(
            json!({"reason": {"type": "string", "description": "pause only (default \"pause\")"},
                   "timeout_sec": {"type": "integer", "minimum": 1, "description": "pause only: back to ready after it"}}),
            &[],
        ),
    );
    put(
        "AgentStatusAnswer",
        ok_of(
            json!({"allOf": [r("Agent"), obj(json!({"applied": {"enum": ["now", "when_the_call_ends"]}}), &["applied"])]}),
        ),
    );
    put(
        "OfferAnswer",
        ok_of(obj(
            json!({"reservation": {"type": "string"}, "campaign": {"type": "string"}, "member": {"type": "integer"}, "node": {"type": "string"}}),
            &["reservation", "campaign", "member", "node"],
        )),
    );
    put(
        "AgentResultInput",
        obj(
            json!({
                "success": {"type": "boolean"},
                "next_after_sec": {"type": ["integer", "null"], "description": "call the member again after this (sticky to the agent)"},
                "next_communication": {"type": ["string", "null"], "format": "date-time", "description": "call the member again at this instant (RFC 3339, not in the past; the campaign's calendar still applies); not with next_after_sec (422). Kept with the attempt in progress and applied when it completes (409 if it just ended)"},
                "stop_communications": {"type": "boolean", "default": false},
                "reset_retries": {"type": "boolean", "default": false, "description": "count the member's tries from zero again (its tries and every number's attempts go back to 0 before this result counts), so this result cannot end it with MAX_TRY_COUNT"},
                "description": {"type": ["string", "null"]},
                "agent": {"type": ["string", "null"], "description": "admin/members-writer: the agent giving it (found from the call when absent)"},
            }),
            &["success"],
        ),
    );
    put(
        "AgentResultAnswer",
        ok_of(obj(
            json!({"_id": {"type": "integer"}, "attempt_id": {"type": "string"}, "node": {"type": "string"},
                   "agent": {"type": ["string", "null"]}, "wrap_up_ended": {"type": "boolean"}}),
            &["_id", "attempt_id", "node", "wrap_up_ended"],
        )),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::*;
    use chrono::Utc;

    fn described(schema: &Value, value: &Value, what: &str) {
        for k in value.as_object().expect("an object").keys() {
            assert!(
                schema["properties"].get(k).is_some(),
                "{what}: field {k:?} is not described"
            );
        }
    }

    #[test]
    fn every_agent_view_field_is_described() {
        let now = Utc::now();
        let agent = Agent {
            id: "a".into(),
            name: "A".into(),
            dial_string: "user/1".into(),
            teams: vec![TeamMembership {
                team: "t".into(),
                level: 1,
            }],
            lines: 1,
            version: 1,
        };
        let mut rec = AgentRecord::new(agent, now);
        rec.set_status(
            AgentStatus::Paused {
                reason: "x".into(),
                until: Some(now),
            },
            now,
        );
        let mut rules = TeamRules::new("t");
        rules.wrap_up = std::time::Duration::from_secs(5);
        let v = serde_json::to_value(rec.view(now)).unwrap();
        described(&agent_view(), &v, "Agent");
        described(&agent_config(), &v["agent"], "AgentConfig");
        described(&status(), &v["status"], "AgentStatus");
        described(&stats(), &v["stats"], "AgentStats");
        described(&team(), &v["agent"]["teams"][0], "TeamMembership");
        let res = ReservationView {
            id: uuid::Uuid::nil(),
            campaign: "c".into(),
            member: crate::store::MemberId(1),
            attempt: uuid::Uuid::nil(),
            node: "n".into(),
            state: ReservationState::Talking,
            line: 1,
            lease_until: now,
        };
        described(
            &reservation(),
            &serde_json::to_value(res).unwrap(),
            "Reservation",
        );
        let wrap = serde_json::to_value(AgentState::WrapUp { until: now }).unwrap();
        described(&state(), &wrap, "AgentState");
    }
}
