//! The store contract of issue 21's shared dialling data: do-not-call lists (numbers, prefixes, the global and a
//! campaign's list, pages), caller-ID daily counts with their cap and answer figures, and calls per number.

use super::*;
use fsdialer::dnc::{DncKind, DncList, E164Rule, NormalizedNumber};

/// The normalisation rule of the Kyiv campaigns here: national numbers take country code 380.
fn kyiv() -> E164Rule {
    E164Rule {
        country_code: Some("380".into()),
        ..E164Rule::default()
    }
}

fn intl(digits: &str) -> NormalizedNumber {
    E164Rule::default().normalize_prefix(digits).unwrap()
}

async fn dnc_lists_hold_numbers_and_prefixes_per_list(s: &Store) {
    let global = DncList::Global;
    let camp = DncList::Campaign(C.into());
    let n = intl("380501234567");
    assert!(s.dnc_check(C, &n).await.unwrap().is_empty());
    assert_eq!(
        s.dnc_add(&camp, DncKind::Number, &[n.clone(), n.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.dnc_add(&global, DncKind::Prefix, &[intl("38050"), intl("380")])
            .await
            .unwrap(),
        2
    );
    let hits = s.dnc_check(C, &n).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = hits
        .iter()
        .map(|h| (h.list.as_str(), h.entry.as_str(), h.kind))
        .collect();
    assert_eq!(
        seen,
        [
            ("global", "38050", "prefix"),
            ("campaign:camp1", "380501234567", "number")
        ]
    );
    // Another campaign sees only the global list; a number under no prefix is free.
    assert_eq!(s.dnc_check("other", &n).await.unwrap().len(), 1);
    assert!(
        s.dnc_check(C, &intl("12025550100"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.dnc_sizes(&global).await.unwrap(),
        DncSizes {
            numbers: 0,
            prefixes: 2
        }
    );
    assert_eq!(
        s.dnc_remove(&global, DncKind::Prefix, &[intl("38050"), intl("1")])
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.dnc_check(C, &n).await.unwrap()[0].entry, "380");
    assert!(
        s.dnc_add(&DncList::Campaign("bad{tag}".into()), DncKind::Number, &[n])
            .await
            .is_err()
    );
}

async fn dnc_pages_walk_every_entry_once(s: &Store) {
    let list = DncList::Campaign(C.into());
    let entries: Vec<NormalizedNumber> = (0..2_500).map(|i| intl(&format!("4930{i:06}"))).collect();
    s.dnc_add(&list, DncKind::Number, &entries).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = s
            .dnc_page(&list, DncKind::Number, cursor.as_deref(), 300)
            .await
            .unwrap();
        seen.extend(page.entries);
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 2_500);
}

async fn a_caller_id_daily_cap_is_never_passed_by_concurrent_takes(s: &Store) {
    let now = t(9, 0);
    let takes = (0..20).map(|_| s.take_caller_id("+380441110000", Some(7), now));
    let results = futures::future::join_all(takes).await;
    let taken = results.iter().filter(|r| r.as_ref().unwrap().taken).count();
    assert_eq!(taken, 7);
    let used = s
        .caller_ids_used_today(&["+380441110000".into(), "+1".into()], now)
        .await
        .unwrap();
    assert_eq!(used.get("+380441110000"), Some(&7));
    assert_eq!(used.get("+1"), None);
    // The next UTC day starts from zero.
    assert!(
        s.take_caller_id("+380441110000", Some(7), now + CDuration::days(1))
            .await
            .unwrap()
            .taken
    );
    s.record_caller_id_result(C, "+380441110000", true)
        .await
        .unwrap();
    s.record_caller_id_result(C, "+380441110000", false)
        .await
        .unwrap();
    let f = s.caller_id_stats(C).await.unwrap();
    assert_eq!(
        (f[0].calls, f[0].answered, f[0].answer_rate),
        (2, 1, Some(0.5))
    );
}

async fn calls_per_number_count_the_day_and_keep_the_last_call(s: &Store) {
    let n = "380501234567";
    assert_eq!(s.number_calls_today(n, t(9, 0)).await.unwrap(), 0);
    s.record_number_call(n, t(9, 0)).await.unwrap();
    let after = s.record_number_call(n, t(10, 30)).await.unwrap();
    assert_eq!(after.today, 2);
    assert_eq!(s.number_calls_today(n, t(11, 0)).await.unwrap(), 2);
    // A call recorded late (an older instant) does not move the last call back.
    s.record_number_call(n, t(9, 30)).await.unwrap();
    let figures = s.number_calls(n, t(11, 0)).await.unwrap();
    assert_eq!((figures.today, figures.last_call), (3, Some(t(10, 30))));
    // Another day: the count restarts, the last call is remembered.
    let tomorrow = t(11, 0) + CDuration::days(1);
    assert_eq!(s.number_calls_today(n, tomorrow).await.unwrap(), 0);
    assert_eq!(s.record_number_call(n, tomorrow).await.unwrap().today, 1);
    assert!(s.record_number_call("38{0}", tomorrow).await.is_err());
}

/// Claims up to 5 members of `C` at `now` and screens them against the do-not-call lists (Kyiv numbers).
async fn claim_screened(s: &Store, now: chrono::DateTime<chrono::Utc>) -> ClaimBatch {
    let rule = kyiv();
    let batch = claim(s, &policy(), now, 5).await;
    s.screen_dnc(C, &policy(), &Always, &rule, batch, now)
        .await
        .unwrap()
}

async fn a_dnc_hit_at_claim_ends_the_number_uncounted_and_places_no_call(s: &Store) {
    let listed = add1(s, member("Ann", &["+380 50 123 4567", "+380 44 765 4321"])).await;
    let free = add1(s, member("Bob", &["+380 67 000 1111"])).await;
    // The campaign's list holds Ann's first number written another way.
    s.dnc_add(
        &DncList::Campaign(C.into()),
        DncKind::Number,
        &[intl("380501234567")],
    )
    .await
    .unwrap();
    let batch = claim_screened(s, t(9, 0)).await;
    let called: Vec<MemberId> = batch.claims.iter().map(|c| c.member_id).collect();
    assert_eq!(
        called,
        [free],
        "only the member not on a list is handed out"
    );
    assert!(batch.ended.is_empty());
    let ann = s.get(C, listed).await.unwrap().unwrap();
    assert_eq!((ann.tries, ann.communications[0].attempts), (0, 0));
    assert_eq!(ann.communications[0].state, CommState::Done);
    assert_eq!(ann.communications[0].last_cause.as_deref(), Some(DNC));
    assert_eq!(ann.state, MemberState::Waiting);
    // Her other number is listed (globally, by prefix) while she is due: honoured at her next claim, which
    // ends her with DNC, still without a try.
    s.dnc_add(&DncList::Global, DncKind::Prefix, &[intl("38044")])
        .await
        .unwrap();
    let batch = claim_screened(s, t(9, 1)).await;
    assert!(batch.claims.is_empty());
    assert_eq!(batch.ended, [(listed, DNC.to_string())]);
    let ann = s.get(C, listed).await.unwrap().unwrap();
    assert_eq!(
        (ann.end_cause.as_deref(), ann.tries, ann.success),
        (Some(DNC), 0, false)
    );
    let counts = s.counts(C).await.unwrap();
    assert_eq!(counts.calls, 0, "no call was placed");
    assert_eq!(counts.ended_by_cause.get(DNC), Some(&1));
}

async fn a_recycle_rule_sets_the_wait_and_caps_the_tries_of_its_causes(s: &Store) {
    let p = QueuePolicy {
        retry_rules: vec![fsdialer::campaign::retry_rules::RetryRule {
            causes: vec!["USER_BUSY".into()],
            after_sec: 300,
            max: Some(2),
        }],
        ..policy()
    };
    let busy = add1(s, member("Ann", &["+380501234567"])).await;
    let quiet = add1(s, member("Bob", &["+380671234567"])).await;
    let batch = claim(s, &p, t(9, 0), 5).await;
    let results: Vec<AttemptResult> = batch
        .claims
        .iter()
        .map(|c| {
            let cause = if c.member_id == busy {
                "USER_BUSY"
            } else {
                "NO_ANSWER"
            };
            result(c, cause, CauseClass::Retry)
        })
        .collect();
    let out = s
        .complete_many(C, &p, &Always, &results, t(9, 0))
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
    let due = |m: Member| m.next_due;
    assert_eq!(due(s.get(C, busy).await.unwrap().unwrap()), Some(t(9, 5)));
    assert_eq!(due(s.get(C, quiet).await.unwrap().unwrap()), Some(t(9, 1)));
    // The second busy try is the rule's last (max_tries is 5).
    let batch = claim(s, &p, t(9, 5), 5).await;
    let again: Vec<&Claim> = batch
        .claims
        .iter()
        .filter(|c| c.member_id == busy)
        .collect();
    assert_eq!(again.len(), 1);
    assert_eq!(
        complete(s, &p, again[0], "USER_BUSY", CauseClass::Retry, t(9, 5)).await,
        CompleteOutcome::Applied(MemberFate::Ended {
            cause: MAX_TRY_COUNT.into(),
            success: false
        })
    );
}

contract!(
    dnc_lists_hold_numbers_and_prefixes_per_list,
    a_recycle_rule_sets_the_wait_and_caps_the_tries_of_its_causes,
    a_dnc_hit_at_claim_ends_the_number_uncounted_and_places_no_call,
    dnc_pages_walk_every_entry_once,
    a_caller_id_daily_cap_is_never_passed_by_concurrent_takes,
    calls_per_number_count_the_day_and_keep_the_last_call,
);

/// Two stores on one Redis (two engine nodes): the cap of a caller ID is shared, and so are calls per number.
#[tokio::test]
async fn two_nodes_on_one_redis_share_the_caller_id_cap_and_the_number_counts() {
    let server = redis_server(false);
    let a = Store::open(&server.url()).await.unwrap();
    let b = Store::open(&server.url()).await.unwrap();
    let now = t(9, 0);
    let mut taken = 0;
    for i in 0..10 {
        let s = if i % 2 == 0 { &a } else { &b };
        taken += usize::from(
            s.take_caller_id("+380441110000", Some(5), now)
                .await
                .unwrap()
                .taken,
        );
    }
    assert_eq!(taken, 5);
    assert!(
        !b.take_caller_id("+380441110000", Some(5), now)
            .await
            .unwrap()
            .taken
    );
    a.record_number_call("380501234567", now).await.unwrap();
    b.record_number_call("380501234567", now).await.unwrap();
    assert_eq!(a.number_calls_today("380501234567", now).await.unwrap(), 2);
}

/// Claims up to `n` members of `campaign` at `at` and screens them against the per-number `rules` (Kyiv numbers):
/// the members the claim hands out to be called.
async fn claimed_and_screened(
    s: &Store,
    campaign: &str,
    rules: fsdialer::store::number_rules::NumberRules,
    at: chrono::DateTime<chrono::Utc>,
    n: usize,
) -> Vec<MemberId> {
    let rule = kyiv();
    let batch = s
        .claim(campaign, &policy(), &Always, at, n, NODE, LEASE)
        .await
        .unwrap();
    s.screen_number_rules(campaign, rules, &rule, batch, at)
        .await
        .unwrap()
        .claims
        .iter()
        .map(|c| c.member_id)
        .collect()
}

/// Two campaigns on two stores (two engine nodes) on one Redis call one number: the per-number gap and day cap
/// hold across them; a claim that may not call now is given back uncounted, due when it may.
#[tokio::test]
async fn two_nodes_on_one_redis_share_the_per_number_cap_and_gap_across_campaigns() {
    use fsdialer::store::number_rules::NumberRules;
    let server = redis_server(false);
    let a = Store::open(&server.url()).await.unwrap();
    let b = Store::open(&server.url()).await.unwrap();
    let rules = NumberRules {
        max_calls_per_day: Some(2),
        min_gap_sec: Some(3600),
    };
    // The same number, written two ways, in two campaigns (and twice in the first).
    let m1 = a
        .add("ca", &[member("Ann", &["+380 50 123 4567"])], t(8, 0))
        .await
        .unwrap()[0]
        .id();
    let m2 = b
        .add("cb", &[member("Ann", &["0501234567"])], t(8, 0))
        .await
        .unwrap()[0]
        .id();
    let m3 = a
        .add("ca", &[member("Ann too", &["050-123-45-67"])], t(8, 0))
        .await
        .unwrap()[0]
        .id();
    assert_eq!(
        claimed_and_screened(&a, "ca", rules, t(9, 0), 1).await,
        [m1]
    );
    // Node b, another campaign, 10 minutes later: inside the gap, given back until 10:00, no try counted.
    assert!(
        claimed_and_screened(&b, "cb", rules, t(9, 10), 1)
            .await
            .is_empty()
    );
    let held = b.get("cb", m2).await.unwrap().unwrap();
    assert_eq!((held.next_due, held.tries), (Some(t(10, 0)), 0));
    assert_eq!(
        claimed_and_screened(&b, "cb", rules, t(10, 0), 1).await,
        [m2]
    );
    // Two calls today: the third waits for the next UTC day.
    assert!(
        claimed_and_screened(&a, "ca", rules, t(11, 30), 1)
            .await
            .is_empty()
    );
    let held = a.get("ca", m3).await.unwrap().unwrap();
    assert_eq!(held.next_due, Some(t(0, 0) + CDuration::days(1)));
    assert_eq!(
        a.number_calls_today("380501234567", t(12, 0))
            .await
            .unwrap(),
        2
    );
}

/// A CSV of `rows` numbers made as it is read, in 64 KiB chunks: the file never exists whole.
fn generated_csv(
    rows: u64,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin {
    let mut next = 0u64;
    futures::stream::poll_fn(move |_| {
        if next >= rows {
            return std::task::Poll::Ready(None);
        }
        let mut chunk = String::with_capacity(64 * 1024 + 32);
        while chunk.len() < 64 * 1024 && next < rows {
            chunk.push_str(&format!("0{:09}\n", 500_000_000 + next));
            next += 1;
        }
        std::task::Poll::Ready(Some(Ok(bytes::Bytes::from(chunk))))
    })
}

async fn a_million_numbers_stream_into_a_list(s: &Store) {
    const ROWS: u64 = 1_000_000;
    let rule = kyiv();
    let list = DncList::Campaign(C.into());
    let report = fsdialer::dnc::load::import_stream(s, &list, rule, generated_csv(ROWS), u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        (report.lines, report.entries, report.added, report.rejected),
        (ROWS, ROWS, ROWS, 0)
    );
    assert_eq!(s.dnc_sizes(&list).await.unwrap().numbers, ROWS);
    let last = intl(&format!("380{}", 500_000_000 + ROWS - 1));
    assert_eq!(s.dnc_check(C, &last).await.unwrap().len(), 1);
    s.dnc_clear(&list).await.unwrap();
    assert_eq!(s.dnc_sizes(&list).await.unwrap(), DncSizes::default());
}

#[tokio::test]
async fn a_million_numbers_stream_into_a_memory_list() {
    a_million_numbers_stream_into_a_list(&Store::memory()).await;
}

#[tokio::test]
async fn a_million_numbers_stream_into_a_redis_list() {
    let (s, _server) = redis_store(AttemptIds::Random).await;
    a_million_numbers_stream_into_a_list(&s).await;
}

/// Two nodes (two store handles) race for one number in many rounds, each node claiming two members of its own
/// campaign that share the number, all at one instant: the check and the record are one step, so the day's cap is
/// never passed and no two calls fall inside the gap, whatever the interleaving; a refused claim is not recorded.
async fn the_cross_campaign_per_number_rules_hold_between_two_racing_nodes(a: &Store, b: &Store) {
    use fsdialer::store::number_rules::NumberRules;
    const ROUNDS: u64 = 30;
    let cap = NumberRules {
        max_calls_per_day: Some(2),
        min_gap_sec: None,
    };
    let gap = NumberRules {
        max_calls_per_day: None,
        min_gap_sec: Some(600),
    };
    for round in 0..ROUNDS {
        let (rules, allowed) = if round % 2 == 0 { (cap, 2) } else { (gap, 1) };
        let national = format!("050{:07}", 1_000_000 + round);
        let (ca, cb) = (format!("race-a{round}"), format!("race-b{round}"));
        for (s, campaign) in [(a, &ca), (b, &cb)] {
            let two = [
                member("Ann", &[&national]),
                member("Ann again", &[&national]),
            ];
            s.add(campaign, &two, t(8, 0)).await.unwrap();
        }
        let at = t(9, 0);
        let (on_a, on_b) = tokio::join!(
            claimed_and_screened(a, &ca, rules, at, 2),
            claimed_and_screened(b, &cb, rules, at, 2)
        );
        let called = on_a.len() + on_b.len();
        assert_eq!(
            called, allowed,
            "round {round} ({rules:?}): {called} calls to one number at one instant"
        );
        let recorded = a
            .number_calls(&format!("380{}", &national[1..]), at)
            .await
            .unwrap()
            .today;
        assert_eq!(
            recorded as usize, allowed,
            "round {round}: refused claims are not recorded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cross_campaign_per_number_rules_hold_between_two_racing_nodes_on_memory() {
    let s = Store::memory();
    the_cross_campaign_per_number_rules_hold_between_two_racing_nodes(&s, &s.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cross_campaign_per_number_rules_hold_between_two_racing_nodes_on_redis() {
    let server = redis_server(false);
    let a = Store::open(&server.url()).await.unwrap();
    let b = Store::open(&server.url()).await.unwrap();
    the_cross_campaign_per_number_rules_hold_between_two_racing_nodes(&a, &b).await;
}

/// The same race on a Redis Cluster: each number's record is one script on the number's own slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cross_campaign_per_number_rules_hold_between_two_racing_nodes_on_a_cluster() {
    let cluster =
        fsdialer::store::local_redis::LocalCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let a = Store::open(&cluster.url()).await.unwrap();
    let b = Store::open(&cluster.url()).await.unwrap();
    the_cross_campaign_per_number_rules_hold_between_two_racing_nodes(&a, &b).await;
}
