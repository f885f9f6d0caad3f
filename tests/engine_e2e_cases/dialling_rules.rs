//! Issue 21's dialling rules through a running engine over ESL: a member whose number is on a do-not-call list is
//! never handed to the switch; its attempt is completed with `DNC`, counting no try, while the campaign's other
//! member is called as usual.

use super::engine_support::*;

use fsdialer::campaign::member::MemberInput;
use fsdialer::dnc::{DncKind, DncList, E164Rule};
use fsdialer::engine::clock::Clock;
use fsdialer::store::{MemberId, MemberState, Store};

const SPEED: f64 = 20.0;

fn member(name: &str, number: &str) -> MemberInput {
    serde_json::from_value(
        serde_json::json!({"name": name, "communications": [{"number": number}]}),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_on_a_dnc_list_is_not_called_and_counts_no_try() {
    let _serial = serial().await;
    let sim = start_sim(&SimSpec::roomy(SPEED)).await;
    let mut config = campaign_config("calls");
    config.id = Some("e2e-dnc".into());
    config.e164 = Some(E164Rule {
        country_code: Some("380".into()),
        ..E164Rule::default()
    });
    let campaign = validate(&config);
    let id = campaign.id().to_owned();
    let store = Store::memory();
    let clock = Clock::scaled(SPEED);
    let listed = config
        .e164
        .clone()
        .unwrap()
        .normalize("050 123 45 67")
        .unwrap();
    store
        .dnc_add(&DncList::Global, DncKind::Number, &[listed])
        .await
        .unwrap();
    let members = [
        member("Listed", "+380 50 123 4567"),
        member("Free", "answer_2"),
    ];
    store.add(&id, &members, clock.now()).await.unwrap();
    let node = run_to_done(&store, sim.local_addr(), &campaign, clock).await;
    let listed = store.get(&id, MemberId(1)).await.unwrap().unwrap();
    assert_eq!(listed.state, MemberState::Ended);
    assert_eq!(
        (listed.end_cause.as_deref(), listed.tries),
        (Some("DNC"), 0)
    );
    let attempts = store.attempts(&id, MemberId(1)).await.unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].cause, "DNC");
    assert!(
        attempts[0].answer_at.is_none() && attempts[0].hangup_at.is_none(),
        "no call was placed: {attempts:?}"
    );
    let free = store.get(&id, MemberId(2)).await.unwrap().unwrap();
    assert!(free.success, "{free:?}");
    assert_eq!(store.counts(&id).await.unwrap().calls, 1, "one call placed");
    node.stop().await;
    sim.shutdown().await;
}
