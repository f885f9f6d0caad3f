//! How campaigns and members look in API answers: the stored data plus Webitel's `_id` and the live state.

use super::campaigns::CampaignDoc;
use crate::engine::shell::MissingPrompt;
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
    "missing_prompts",
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
/// this node, the operator's run/stop command, when the document last changed, and the prompt files the
/// switches lack (`[{switch, file}]`, empty when all are there or none was checked yet).
pub fn campaign(
    doc: &CampaignDoc,
    state: Option<(CampaignState, u32)>,
    missing_prompts: &[MissingPrompt],
) -> Value {
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
        o.insert("missing_prompts".into(), json!(missing_prompts));
    }
    v
}

/// Each gateway of a campaign: its calls in progress across all nodes (its shared slots, `in_use`) against its
/// `limit`, `enabled`, and as this node's engine sees it, its calls here (`active_here`) and its circuit breaker
/// (`breaker`: `state` closed / open / half_open, `paused_until`, `consecutive_failures`, `probe_in_flight`;
/// null when the engine is not running or has not loaded the campaign). Each node keeps its own breakers (the
/// failures its calls met), so another node's page may show another state for the same gateway.
pub async fn gateways(
    st: &super::ApiState,
    doc: &CampaignDoc,
) -> Result<Vec<Value>, crate::store::StoreError> {
    let here = st.engine().gateways(doc.id()).await.unwrap_or_default();
    let now = st.now();
    let mut out = Vec::with_capacity(doc.config.gateways.len());
    for g in &doc.config.gateways {
        let mine = here.iter().find(|h| h.name == g.name);
        out.push(json!({
            "name": g.name,
            "limit": g.limit,
            "in_use": st.store.gateway_slots_in_use(&g.name, now).await?,
            "enabled": g.enabled,
            "active_here": mine.map(|h| h.active_here),
            "breaker": mine.map(|h| h.breaker),
        }));
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_campaign_view_names_the_prompts_a_switch_lacks_and_a_put_back_ignores_them() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/campaigns/demo.toml"),
        )
        .unwrap();
        let doc = CampaignDoc {
            config: crate::campaign::config::CampaignConfig::from_toml_str(&text).unwrap(),
            run: true,
            updated_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            version: 1,
        };
        let missing = [MissingPrompt {
            switch: "fs1".into(),
            file: "ivr/ivr-thank_you.wav".into(),
        }];
        let v = campaign(&doc, Some((CampaignState::Running, 0)), &missing);
        assert_eq!(
            v["missing_prompts"],
            json!([{"switch": "fs1", "file": "ivr/ivr-thank_you.wav"}])
        );
        assert_eq!(campaign(&doc, None, &[])["missing_prompts"], json!([]));
        assert!(CAMPAIGN_VIEW_ONLY.contains(&"missing_prompts"));
    }
}
