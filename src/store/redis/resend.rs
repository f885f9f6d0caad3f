//! Scripts under client resends: a cluster or Sentinel client that loses a connection after sending a script sends
//! it again, so every campaign script may run twice for one call. These tests send every script twice (a
//! [`Resending`] connection to a real `redis-server`), require the two replies to be equal, and require the store to
//! end exactly as the same operations leave it when each script runs once.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::conn::StoreConnection;
use super::{RedisStore, keys};
use crate::campaign::causes::CauseClass;
use crate::campaign::member::{CommunicationInput, MemberInput};
use crate::campaign::schedule::Always;
use crate::store::ids::AttemptIds;
use crate::store::local_redis::{LocalRedis, LocalRedisOptions};
use crate::store::types::*;

/// A script sent twice and what each run answered.
#[derive(Debug, Clone)]
pub struct Resent {
    pub command: String,
    pub first: Value,
    pub second: Value,
}

/// Sends every `EVALSHA`/`EVAL` twice and answers the second reply; keeps both replies.
#[derive(Clone)]
pub struct Resending {
    inner: ConnectionManager,
    pub resent: Arc<Mutex<Vec<Resent>>>,
}

fn is_script(cmd: &Cmd) -> bool {
    cmd.args_iter().next().is_some_and(|a| {
        matches!(a, redis::Arg::Simple(name)
            if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL"))
    })
}

impl ConnectionLike for Resending {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let first = self.inner.req_packed_command(cmd).await?;
            if !is_script(cmd) || matches!(first, Value::ServerError(_)) {
                return Ok(first);
            }
            let second = self.inner.req_packed_command(cmd).await?;
            let command = String::from_utf8_lossy(&cmd.get_packed_command())
                .chars()
                .take(200)
                .collect();
            self.resent.lock().unwrap().push(Resent {
                command,
                first,
                second: second.clone(),
            });
            Ok(second)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_709_546_400 + s, 0).unwrap()
}

fn member(name: &str, ext: Option<&str>, expire: Option<DateTime<Utc>>) -> MemberInput {
    MemberInput {
        name: name.into(),
        priority: 0,
        timezone: None,
        expire,
        variables: serde_json::Map::new(),
        communications: ["+1001", "+1002"]
            .iter()
            .map(|n| CommunicationInput {
                number: n.to_string(),
                priority: 0,
                description: None,
                kind: None,
            })
            .collect(),
        external_id: ext.map(String::from),
    }
}

fn result(c: &Claim, class: CauseClass) -> AttemptResult {
    AttemptResult {
        attempt_id: c.attempt_id,
        member_id: c.member_id,
        cause: if class == CauseClass::Ok {
            "NORMAL_CLEARING"
        } else {
            "NO_ANSWER"
        }
        .into(),
        class,
        answered_at: None,
        hangup_at: None,
        talk_secs: 0,
        note: None,
    }
}

const C: &str = "resend";

/// Every writing operation of the store, through `a` (the claiming node) and `b` (another node); returns what the
/// store holds at the end.
async fn scenario(
    a: &RedisStore,
    b: &RedisStore,
) -> (Counters, Vec<Member>, Vec<Vec<AttemptRecord>>) {
    let policy = QueuePolicy {
        limit: 100,
        max_tries: 3,
        wait_between_retries_sec: 0,
        ..QueuePolicy::default()
    };
    let lease = std::time::Duration::from_secs(60);
    // The first expires before the claim: the claim ends it (a claim reply with ended members).
    let mut members = vec![member("expiring", None, Some(at(5)))];
    members.extend((0..8).map(|i| member(&format!("m{i}"), None, None)));
    members.push(member("ext", Some("x1"), None));
    a.add(C, &members, at(0)).await.unwrap();
    a.add(C, &[member("ext again", Some("x1"), None)], at(1))
        .await
        .unwrap();
    let batch = a
        .claim(C, &policy, &Always, at(10), 6, "n1", lease)
        .await
        .unwrap();
    assert_eq!(batch.claims.len(), 6);
    assert_eq!(batch.ended.len(), 1, "{batch:?}");
    // The fast path (the claiming store), then the slow path (another node's store).
    let fast: Vec<AttemptResult> = batch.claims[..3]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            result(
                c,
                if i == 0 {
                    CauseClass::Ok
                } else {
                    CauseClass::Retry
                },
            )
        })
        .collect();
    a.complete_many(C, &policy, &Always, &fast, at(20))
        .await
        .unwrap();
    b.complete(
        C,
        &policy,
        &Always,
        &result(&batch.claims[3], CauseClass::Ok),
        at(21),
    )
    .await
    .unwrap();
    a.release(
        C,
        batch.claims[4].member_id,
        batch.claims[4].attempt_id,
        None,
        at(22),
    )
    .await
    .unwrap();
    // Expired lease recovered as lost.
    b.recover_expired(C, &policy, &Always, at(200), 10)
        .await
        .unwrap();
    let waiting = a
        .list(
            C,
            &ListQuery {
                state: Some(MemberState::Waiting),
                limit: 100,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    a.terminate(C, waiting.members[0].id).await.unwrap();
    a.delete(C, waiting.members[1].id).await.unwrap();
    a.reset(C, at(300)).await.unwrap();
    let all = a
        .list(
            C,
            &ListQuery {
                limit: 100,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap()
        .members;
    let mut logs = Vec::new();
    for m in &all {
        logs.push(a.attempts(C, m.id).await.unwrap());
    }
    (a.counts(C).await.unwrap(), all, logs)
}

async fn stores(
    server: &LocalRedis,
    resend: bool,
    seed: u64,
) -> (RedisStore, RedisStore, Arc<Mutex<Vec<Resent>>>) {
    let resent = Arc::new(Mutex::new(Vec::new()));
    let make = |node_seed: u64| {
        let url = server.url();
        let resent = resent.clone();
        async move {
            let client = redis::Client::open(url).unwrap();
            let inner = ConnectionManager::new(client).await.unwrap();
            let conn = if resend {
                StoreConnection::Resending(Resending { inner, resent })
            } else {
                StoreConnection::Single(inner)
            };
            RedisStore::with_connection(conn, AttemptIds::seeded(node_seed))
        }
    };
    let a = make(seed).await;
    let b = make(seed + 1).await;
    (a, b, resent)
}

#[tokio::test]
async fn every_campaign_script_sent_twice_answers_as_the_first_run_and_changes_the_store_once() {
    let once_server = LocalRedis::start(LocalRedisOptions::default()).unwrap();
    let twice_server = LocalRedis::start(LocalRedisOptions::default()).unwrap();
    let (a, b, _) = stores(&once_server, false, 7).await;
    let once = scenario(&a, &b).await;
    let (a, b, resent) = stores(&twice_server, true, 7).await;
    let twice = scenario(&a, &b).await;
    let resent = resent.lock().unwrap().clone();
    let campaign_scripts = resent
        .iter()
        .filter(|r| r.command.contains(&keys::campaign_prefix(C)))
        .count();
    assert!(
        campaign_scripts >= 12,
        "{} scripts resent",
        campaign_scripts
    );
    for r in &resent {
        assert_eq!(
            r.first, r.second,
            "a resend answered differently: {}",
            r.command
        );
    }
    assert_eq!(once.0, twice.0, "counters");
    assert_eq!(once.1, twice.1, "members");
    // Attempt ids differ between the runs only if a resend drew new ones: they are seeded alike.
    assert_eq!(once.2, twice.2, "attempt logs");
}

/// The limit scripts (token buckets, gateway slots) under resends: every grant answered as the first run answered
/// it, and no token or slot taken twice.
#[tokio::test]
async fn limit_scripts_sent_twice_grant_as_the_first_run_and_take_once() {
    let server = LocalRedis::start(LocalRedisOptions::default()).unwrap();
    let (a, _, resent) = stores(&server, true, 11).await;
    let campaign = LimitKey::Campaign(C.into());
    let gateway = LimitKey::Gateway("gw1".into());
    // A bucket of 5 at one instant (no refill): 3, then the 2 left, then none, whatever the resends.
    for key in [&campaign, &gateway] {
        let grants = [
            a.take_tokens(key, 1.0, 5.0, 3, at(0)).await.unwrap(),
            a.take_tokens(key, 1.0, 5.0, 3, at(0)).await.unwrap(),
            a.take_tokens(key, 1.0, 5.0, 3, at(0)).await.unwrap(),
        ];
        assert_eq!(grants, [3, 2, 0], "{key:?}");
    }
    // One slot: the first attempt keeps it across resends of its acquire and renewal; a second attempt finds none.
    let (first, second) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
    assert!(
        a.acquire_gateway_slot("gw1", 1, first, at(60), at(0))
            .await
            .unwrap()
    );
    assert_eq!(
        a.renew_gateway_slots("gw1", &[first], at(120), at(30))
            .await
            .unwrap(),
        Vec::<AttemptId>::new()
    );
    assert!(
        !a.acquire_gateway_slot("gw1", 1, second, at(60), at(31))
            .await
            .unwrap()
    );
    let resent = resent.lock().unwrap().clone();
    assert_eq!(resent.len(), 9, "every limit script was sent twice");
    for r in &resent {
        assert_eq!(
            r.first, r.second,
            "a resend answered differently: {}",
            r.command
        );
    }
}
