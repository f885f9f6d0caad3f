//! How campaigns and members look in API answers: the stored data plus Webitel's `_id` and the live state.

use super::campaigns::CampaignDoc;
use crate::engine::state::CampaignState;
use crate::store::Member;
use serde_json::{Value, json};

/// Fields of the campaign view that are not part of the configuration (ignored when a view is PUT back).
pub const CAMPAIGN_VIEW_ONLY: &[&str] = &[
    "_id",
    "state",
    "state_name",
    "active_calls",
    "run",
    "updated_at",
    "version",
];

pub fn state_name(s: CampaignState) -> &'static str {
    match s {
        CampaignState::Idle => "idle",
        CampaignState::Running => "running",
        CampaignState::Sleeping => "sleeping",
        CampaignState::Stopping => "stopping",
        CampaignState::Stopped => "stopped",
        CampaignState::Done => "done",
        CampaignState::Expired => "expired",
    }
}

/// A campaign: its configuration, `_id`, the state on this node (Webitel code and name), calls in progress on
/// this node, the operator's run/stop command and when the document last changed.
pub fn campaign(doc: &CampaignDoc, state: Option<(CampaignState, u32)>) -> Value {
    let mut v = serde_json::to_value(&doc.config).unwrap_or_else(|_| json!({}));
    let (s, active) = state.unwrap_or((CampaignState::Idle, 0));
    if let Value::Object(o) = &mut v {
        o.insert("_id".into(), json!(doc.id()));
        o.insert("state".into(), json!(s.webitel_code()));
        o.insert("state_name".into(), json!(state_name(s)));
        o.insert("active_calls".into(), json!(active));
        o.insert("run".into(), json!(doc.run));
        o.insert("updated_at".into(), json!(doc.updated_at));
        o.insert("version".into(), json!(doc.version));
    }
    v
}

/// A member as stored, plus `_id` (its id as a string, as Webitel clients expect) and `dialer`; a number's kind
/// is shown as `type`, the name it is given under.
pub fn member(campaign: &str, m: &Member) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or_else(|_| json!({}));
    if let Value::Object(o) = &mut v {
        o.insert("_id".into(), json!(m.id.to_string()));
        o.insert("dialer".into(), json!(campaign));
        if let Some(Value::Array(comms)) = o.get_mut("communications") {
            for c in comms {
                if let Value::Object(c) = c
                    && let Some(kind) = c.remove("kind")
                {
                    c.insert("type".into(), kind);
                }
            }
        }
    }
    v
}
