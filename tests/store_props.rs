//! Property test: random sequences of operations give the same results on Redis and on the memory backend.

mod store_support;

use chrono::{DateTime, Duration as CDuration, Utc};
use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::member::MemberInput;
use fsdialer::campaign::params::{LostAttempt, MemberOrder, NumberOrder};
use fsdialer::store::*;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use store_support::*;

#[derive(Debug, Clone)]
struct NewMember {
    prio: i64,
    tz: u8,
    numbers: Vec<i64>,
    expire_min: Option<u16>,
    ext: Option<u8>,
}

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<NewMember>),
    Claim {
        n: usize,
        node: u8,
        lease_s: u16,
    },
    Complete {
        pick: usize,
        class: u8,
        answered: bool,
    },
    CompleteMany {
        picks: Vec<(usize, u8)>,
    },
    Release {
        pick: usize,
        delay_s: Option<u16>,
    },
    Renew {
        node: u8,
    },
    Recover,
    Update {
        id: u64,
        m: NewMember,
    },
    Delete {
        id: u64,
    },
    Terminate {
        id: u64,
    },
    Reset,
    Advance {
        secs: u32,
    },
    Order(u8),
    Tokens {
        gw: bool,
        n: u32,
    },
    GwAcquire {
        pick: usize,
        limit: u32,
    },
    GwRelease {
        pick: usize,
    },
}

fn new_member() -> impl Strategy<Value = NewMember> {
    (
        -3i64..4,
        0u8..3,
        prop::collection::vec(-1i64..2, 1..4),
        prop::option::weighted(0.2, 1u16..600),
        prop::option::weighted(0.3, 0u8..4),
    )
        .prop_map(|(prio, tz, numbers, expire_min, ext)| NewMember {
            prio,
            tz,
            numbers,
            expire_min,
            ext,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop::collection::vec(new_member(), 1..5).prop_map(Op::Add),
        4 => (1usize..5, 0u8..2, 10u16..600).prop_map(|(n, node, lease_s)| Op::Claim { n, node, lease_s }),
        4 => (0usize..8, 0u8..4, any::<bool>()).prop_map(|(pick, class, answered)| Op::Complete { pick, class, answered }),
        2 => prop::collection::vec((0usize..8, 0u8..4), 1..6).prop_map(|picks| Op::CompleteMany { picks }),
        1 => (0usize..8, prop::option::of(1u16..900)).prop_map(|(pick, delay_s)| Op::Release { pick, delay_s }),
        1 => (0u8..2).prop_map(|node| Op::Renew { node }),
        1 => Just(Op::Recover),
        1 => (1u64..12, new_member()).prop_map(|(id, m)| Op::Update { id, m }),
        1 => (1u64..12).prop_map(|id| Op::Delete { id }),
        1 => (1u64..12).prop_map(|id| Op::Terminate { id }),
        1 => Just(Op::Reset),
        3 => prop_oneof![1u32..120, 120u32..20_000, 20_000u32..90_000].prop_map(|secs| Op::Advance { secs }),
        1 => (0u8..3).prop_map(Op::Order),
        1 => (any::<bool>(), 1u32..6).prop_map(|(gw, n)| Op::Tokens { gw, n }),
        1 => (0usize..8, 1u32..3).prop_map(|(pick, limit)| Op::GwAcquire { pick, limit }),
        1 => (0usize..8).prop_map(|pick| Op::GwRelease { pick }),
    ]
}

#[derive(Debug, Clone)]
struct Setup {
    limit: u32,
    max_tries: u32,
    wait: u32,
    number_order: NumberOrder,
    tries_per_number: bool,
    lost: LostAttempt,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1u32..5,
        1u32..4,
        prop_oneof![Just(0u32), Just(60), Just(7200)],
        any::<bool>(),
        any::<bool>(),
        0u8..3,
    )
        .prop_map(
            |(limit, max_tries, wait, top_down, tries_per_number, lost)| Setup {
                limit,
                max_tries,
                wait,
                number_order: if top_down {
                    NumberOrder::TopDown
                } else {
                    NumberOrder::ByPriority
                },
                tries_per_number,
                lost: [LostAttempt::Retry, LostAttempt::Minus, LostAttempt::Error][lost as usize],
            },
        )
}

const CLASSES: [(&str, CauseClass); 4] = [
    ("NORMAL_CLEARING", CauseClass::Ok),
    ("USER_BUSY", CauseClass::Retry),
    ("UNALLOCATED_NUMBER", CauseClass::Error),
    ("NORMAL_TEMPORARY_FAILURE", CauseClass::Minus),
];

const TZS: [Option<&str>; 3] = [None, Some("America/New_York"), Some("Asia/Tokyo")];

fn input(m: &NewMember, i: usize, start: DateTime<Utc>) -> MemberInput {
    let numbers: Vec<String> = (0..m.numbers.len()).map(|k| format!("{i}{k}")).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let mut inp = member(&format!("m{i}"), &refs);
    inp.priority = m.prio;
    inp.timezone = TZS[m.tz as usize].map(str::to_string);
    inp.expire = m
        .expire_min
        .map(|x| start + CDuration::minutes(i64::from(x) * 10));
    inp.external_id = m.ext.map(|e| format!("ext{e}"));
    for (k, p) in m.numbers.iter().enumerate() {
        inp.communications[k].priority = *p;
    }
    inp.variables.insert("v".into(), serde_json::json!(i));
    inp
}

static CASE: AtomicU64 = AtomicU64::new(0);

/// Runs the ops on both stores; returns the first divergence.
async fn run(url: &str, setup: &Setup, ops: &[Op]) -> Result<(), String> {
    let case = CASE.fetch_add(1, Ordering::SeqCst);
    let seed = 1000 + case;
    let campaign = format!("prop{case}");
    let gw = format!("gw{case}");
    let mem = Store::open_with_ids("memory://", AttemptIds::seeded(seed))
        .await
        .unwrap();
    let red = Store::open_with_ids(url, AttemptIds::seeded(seed))
        .await
        .unwrap();
    let cal = Hours::new("Europe/Kyiv", 8, 20);
    let start = day(4, 5);
    let mut now = start;
    let mut order = MemberOrder::PriorityFirst;
    let mut claims: Vec<Claim> = Vec::new();
    let mut added = 0usize;
    let policy = |order| QueuePolicy {
        limit: setup.limit,
        max_tries: setup.max_tries,
        wait_between_retries_sec: setup.wait,
        member_order: order,
        number_order: setup.number_order,
        tries_per_number: setup.tries_per_number,
        lost_attempt: setup.lost,
        retry_rules: Vec::new(),
    };
    let nodes = ["node-a", "node-b"];
    for (step, op) in ops.iter().enumerate() {
        let p = policy(order);
        macro_rules! both {
            ($s:ident => $e:expr) => {{
                let a = {
                    let $s = &mem;
                    $e
                };
                let b = {
                    let $s = &red;
                    $e
                };
                let (a, b) = (format!("{a:?}"), format!("{b:?}"));
                if a != b {
                    return Err(format!("step {step} {op:?}:\n memory: {a}\n redis:  {b}"));
                }
                a
            }};
        }
        match op {
            Op::Add(ms) => {
                let inputs: Vec<MemberInput> = ms
                    .iter()
                    .map(|m| {
                        added += 1;
                        input(m, added, start)
                    })
                    .collect();
                both!(s => s.add(&campaign, &inputs, now).await);
            }
            Op::Claim { n, node, lease_s } => {
                let lease = Duration::from_secs(u64::from(*lease_s));
                let r = mem
                    .claim(&campaign, &p, &cal, now, *n, nodes[*node as usize], lease)
                    .await;
                let r2 = red
                    .claim(&campaign, &p, &cal, now, *n, nodes[*node as usize], lease)
                    .await;
                if format!("{r:?}") != format!("{r2:?}") {
                    return Err(format!(
                        "step {step} {op:?}:\n memory: {r:?}\n redis:  {r2:?}"
                    ));
                }
                if let Ok(b) = r {
                    claims.extend(b.claims);
                }
            }
            Op::Complete {
                pick,
                class,
                answered,
            } => {
                if claims.is_empty() {
                    continue;
                }
                let c = claims[pick % claims.len()].clone();
                let (cause, class) = CLASSES[*class as usize];
                let r = AttemptResult {
                    attempt_id: c.attempt_id,
                    member_id: c.member_id,
                    cause: cause.into(),
                    class,
                    answered_at: answered.then_some(now),
                    hangup_at: Some(now),
                    talk_secs: if *answered { 12 } else { 0 },
                    // A note with the characters the Redis log line must escape.
                    note: answered.then(|| r#"{"ended":"a|b","x":"100%\n"}"#.to_string()),
                };
                both!(s => s.complete(&campaign, &p, &cal, &r, now).await);
            }
            Op::CompleteMany { picks } => {
                if claims.is_empty() {
                    continue;
                }
                let results: Vec<AttemptResult> = picks
                    .iter()
                    .map(|(pick, class)| {
                        let c = &claims[pick % claims.len()];
                        let (cause, class) = CLASSES[*class as usize];
                        AttemptResult {
                            attempt_id: c.attempt_id,
                            member_id: c.member_id,
                            cause: cause.into(),
                            class,
                            answered_at: None,
                            hangup_at: Some(now),
                            talk_secs: 0,
                            note: None,
                        }
                    })
                    .collect();
                both!(s => s.complete_many(&campaign, &p, &cal, &results, now).await);
            }
            Op::Release { pick, delay_s } => {
                if claims.is_empty() {
                    continue;
                }
                let c = claims[pick % claims.len()].clone();
                let nb = delay_s.map(|d| now + CDuration::seconds(i64::from(d)));
                both!(s => s.release(&campaign, c.member_id, c.attempt_id, nb, now).await);
            }
            Op::Renew { node } => {
                let ids: Vec<AttemptId> = claims.iter().map(|c| c.attempt_id).collect();
                both!(s => s.renew(&campaign, nodes[*node as usize], &ids, now, Duration::from_secs(120)).await);
            }
            Op::Recover => {
                both!(s => s.recover_expired(&campaign, &p, &cal, now, 100).await);
            }
            Op::Update { id, m } => {
                added += 1;
                let inp = input(m, added, start);
                both!(s => s.update(&campaign, MemberId(*id), &inp, now).await.map_err(|e| e.to_string()));
            }
            Op::Delete { id } => {
                both!(s => s.delete(&campaign, MemberId(*id)).await);
            }
            Op::Terminate { id } => {
                both!(s => s.terminate(&campaign, MemberId(*id)).await);
            }
            Op::Reset => {
                both!(s => s.reset(&campaign, now).await);
            }
            Op::Advance { secs } => now += CDuration::seconds(i64::from(*secs)),
            Op::Order(o) => {
                order = [
                    MemberOrder::PriorityFirst,
                    MemberOrder::RetriesFirst,
                    MemberOrder::StrictCircuit,
                ][*o as usize];
            }
            Op::Tokens { gw: g, n } => {
                let key = if *g {
                    LimitKey::Gateway(gw.clone())
                } else {
                    LimitKey::Campaign(campaign.clone())
                };
                both!(s => s.take_tokens(&key, 0.7, 3.0, *n, now).await);
            }
            Op::GwAcquire { pick, limit } => {
                if claims.is_empty() {
                    continue;
                }
                let c = &claims[pick % claims.len()];
                both!(s => s.acquire_gateway_slot(&gw, *limit, c.attempt_id, now + CDuration::seconds(90), now).await);
            }
            Op::GwRelease { pick } => {
                if claims.is_empty() {
                    continue;
                }
                let c = &claims[pick % claims.len()];
                both!(s => s.release_gateway_slot(&gw, c.attempt_id).await);
                both!(s => s.gateway_slots_in_use(&gw, now).await);
            }
        }
        both!(s => s.counts(&campaign).await);
        both!(s => s.slots_in_use(&campaign, now).await);
    }
    let all = ListQuery {
        limit: 1000,
        ..ListQuery::default()
    };
    let step = ops.len();
    let op = "final state";
    let list = {
        let a = mem.list(&campaign, &all).await.unwrap();
        let b = red.list(&campaign, &all).await.unwrap();
        if a != b {
            return Err(format!("{op}:\n memory: {a:?}\n redis:  {b:?}"));
        }
        a
    };
    for m in &list.members {
        let a = mem.attempts(&campaign, m.id).await.unwrap();
        let b = red.attempts(&campaign, m.id).await.unwrap();
        if a != b {
            return Err(format!(
                "step {step} attempts of {}:\n memory: {a:?}\n redis:  {b:?}",
                m.id
            ));
        }
    }
    Ok(())
}

#[test]
fn random_operation_sequences_give_identical_results_on_redis_and_memory() {
    let server = redis_server(false);
    let url = server.url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(setup in setup(), ops in prop::collection::vec(op(), 1..60))| {
        let r = rt.block_on(run(&url, &setup, &ops));
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    });
}
