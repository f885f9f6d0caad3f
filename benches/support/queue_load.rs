//! The member and the result the queue benchmarks cycle (shared by `benches/queue.rs` and
//! `examples/queue_cycle.rs`, so both measure the same load).

use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::member::{CommunicationInput, MemberInput};
use fsdialer::store::{AttemptResult, Claim};

/// Member `i`: two numbers, three variables.
pub fn member(i: usize) -> MemberInput {
    let mut variables = serde_json::Map::new();
    variables.insert("city".into(), "Kyiv".into());
    variables.insert("amount".into(), "1250.00".into());
    variables.insert("lang".into(), "uk".into());
    let number = |prefix: &str, priority| CommunicationInput {
        number: format!("{prefix}{:07}", i % 10_000_000),
        priority,
        description: None,
        kind: None,
    };
    MemberInput {
        name: format!("Member {i}"),
        priority: 0,
        timezone: None,
        expire: None,
        variables,
        communications: vec![number("+38044", 0), number("+38050", 1)],
        external_id: None,
    }
}

/// A result that brings the member straight back (minus, no wait), so the queue never drains.
pub fn minus(c: &Claim) -> AttemptResult {
    AttemptResult {
        attempt_id: c.attempt_id,
        member_id: c.member_id,
        cause: "NORMAL_TEMPORARY_FAILURE".into(),
        class: CauseClass::Minus,
        answered_at: None,
        hangup_at: None,
        talk_secs: 0,
        note: None,
    }
}
