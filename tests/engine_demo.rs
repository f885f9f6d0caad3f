//! `fsdialer demo` end to end: memory store, in-process simulated switch over real ESL, the sample campaign with
//! its callflow and ~1,000 members. Every member must end, the outcome mix must be the one the sample's numbers
//! ask for, and the callflow's outcome must be recorded with the attempts.

use fsdialer::engine::demo::{DemoOptions, run};
use fsdialer::engine::state::CampaignState;
use fsdialer::store::{ListQuery, MemberState};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_campaign_runs_to_done_with_every_member_accounted_for() {
    // ×30, not the CLI's ×100: every real millisecond of ESL round trip is 30 ms of the callee's patience, so a
    // busy machine (CI running other binaries) cannot make callees hang up before the callflow's first prompt.
    let opts = DemoOptions {
        progress: false,
        speed: 30.0,
        timeout: Duration::from_secs(240),
        ..DemoOptions::default()
    };
    let report = run(opts, fsdialer::engine::default_callflow())
        .await
        .expect("the demo runs");
    let c = &report.counters;
    assert_eq!(report.final_state, Some(CampaignState::Done));
    assert_eq!(report.members, 1000);
    assert_eq!(c.ended, 1000, "every member ended");
    assert_eq!(c.waiting + c.active, 0);
    assert_eq!(
        c.calls,
        c.ok + c.retry + c.error + c.minus,
        "every attempt classified once"
    );
    // The sample's numbers: confirm_/decline_/silent_/answer_ answer, busy/noanswer/ring_ never do,
    // reject_UNALLOCATED_NUMBER is an error.
    assert!(c.success > 400, "success {}", c.success);
    assert!(c.ended_by_cause.get("MAX_TRY_COUNT").copied().unwrap_or(0) > 200);
    assert!(
        c.ended_by_cause
            .get("UNALLOCATED_NUMBER")
            .copied()
            .unwrap_or(0)
            > 10
    );
    assert_eq!(c.lost, 0);

    // Members who pressed 1 ended with success decided by the callflow, and the attempt says so.
    let mut confirmed_with_note = 0;
    let mut after = None;
    loop {
        let page = report
            .store
            .list(
                &report.campaign,
                &ListQuery {
                    after,
                    limit: 200,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for m in &page.members {
            assert_eq!(m.state, MemberState::Ended);
            if m.communications
                .iter()
                .any(|n| n.number.starts_with("confirm_"))
                && m.success
            {
                let log = report.store.attempts(&report.campaign, m.id).await.unwrap();
                if log.iter().any(|a| {
                    a.note
                        .as_deref()
                        .is_some_and(|n| n.contains("\"result\":true"))
                }) {
                    confirmed_with_note += 1;
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert!(
        confirmed_with_note > 100,
        "{confirmed_with_note} confirmed attempts carry the callflow note"
    );
}
