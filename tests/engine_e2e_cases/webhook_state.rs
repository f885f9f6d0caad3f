//! Issue 20's `campaign_state` webhook events through a running engine: each transition the engine records is
//! written to the store with its events in one step, so the history and the outbox agree at every instant —
//! when an engine is killed right after a transition, and over a whole run to the end.

use super::engine_support::*;

use fsdialer::campaign::member::MemberInput;
use fsdialer::engine::clock::Clock;
use fsdialer::engine::state::Transition;
use fsdialer::store::Store;
use fsdialer::store::outbox::Settle;
use std::time::Duration;

const SPEED: f64 = 20.0;

fn member(name: &str, number: &str) -> MemberInput {
    serde_json::from_value(
        serde_json::json!({"name": name, "communications": [{"number": number}]}),
    )
    .unwrap()
}

/// The `calls` campaign under `id`, with one endpoint that wants campaign state events (never delivered here:
/// no delivery task runs, so everything queued stays in the outbox).
fn campaign_with_state_hook(id: &str) -> std::sync::Arc<fsdialer::campaign::config::ValidCampaign> {
    let mut config = campaign_config("calls");
    config.id = Some(id.into());
    config.webhooks = vec![
        serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:9/hook", "events": ["campaign_state"],
            "secret": "whsec_0123456789abcdef"
        }))
        .unwrap(),
    ];
    validate(&config)
}

/// The queued `campaign_state` events' (old, new, at) in queue order: taken head by head from the campaign's
/// chain and settled.
async fn queued_state_events(store: &Store, campaign: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let far = chrono::Utc::now() + chrono::Duration::days(1);
    loop {
        let taken = store
            .outbox_take(campaign, far, Duration::from_secs(60), 10)
            .await
            .unwrap();
        let Some(head) = taken.into_iter().find(|d| d.event == "campaign_state") else {
            return out;
        };
        let body: serde_json::Value = serde_json::from_str(&head.body).unwrap();
        out.push((
            body["old_state"].as_str().unwrap().to_owned(),
            body["new_state"].as_str().unwrap().to_owned(),
            body["at"].as_str().unwrap().to_owned(),
        ));
        store
            .outbox_settle(campaign, &head, &Settle::Delivered, far)
            .await
            .unwrap();
    }
}

/// The history as the events name it: (old, new, at).
fn as_events(history: &[String]) -> Vec<(String, String, String)> {
    history
        .iter()
        .map(|e| {
            let t: Transition = serde_json::from_str(e).unwrap();
            let name = |s| {
                serde_json::to_value(s)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            let at = serde_json::to_value(t.at)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned();
            (name(t.from), name(t.to), at)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_transition_has_its_state_event_queued_even_when_the_engine_is_killed() {
    let _serial = serial().await;
    let sim = start_sim(&SimSpec::roomy(SPEED)).await;
    let store = Store::memory();
    let clock = Clock::scaled(SPEED);

    // Killed as soon as the first transition is in the history.
    let killed = campaign_with_state_hook("e2e-state-kill");
    store
        .add(killed.id(), &[member("a", "answer_40")], clock.now())
        .await
        .unwrap();
    let mut node = Node::start(
        "node-1",
        StoreSpec::Shared(store.clone()),
        vec![endpoint("sim", sim.local_addr(), 20_000, 20_000)],
        clock,
        Duration::from_secs(60),
    )
    .await;
    node.run_campaign(&killed).await;
    wait_until(
        "the first transition recorded",
        Duration::from_secs(20),
        || {
            let store = store.clone();
            let id = killed.id().to_owned();
            async move { !store.history(&id).await.unwrap().is_empty() }
        },
    )
    .await;
    node.kill();
    let history = store.history(killed.id()).await.unwrap();
    assert!(!history.is_empty());
    assert_eq!(
        queued_state_events(&store, killed.id()).await,
        as_events(&history),
        "each transition in the history, and only those, has its event queued"
    );

    // A whole run to the end: every transition's event, in the history's order.
    let campaign = campaign_with_state_hook("e2e-state-run");
    store
        .add(campaign.id(), &[member("b", "answer_20")], clock.now())
        .await
        .unwrap();
    let node = run_to_done(&store, sim.local_addr(), &campaign, clock).await;
    let history = node.history(campaign.id()).await;
    let names: Vec<_> = history.iter().map(|t| (t.from, t.to)).collect();
    assert!(names.len() >= 2, "{names:?}");
    let stored = store.history(campaign.id()).await.unwrap();
    assert_eq!(
        queued_state_events(&store, campaign.id()).await,
        as_events(&stored)
    );
    node.stop().await;
    sim.shutdown().await;
}
