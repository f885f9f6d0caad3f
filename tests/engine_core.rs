//! The engine core on virtual time: every rule of SPEC §4 with the exact member history it must leave.
//!
//! The core is pure, so these tests play the switch themselves: each dialled number names its outcome
//! (`answer_N`, `busy`, `reject_CAUSE`, `refused` = the switch refusing the session for capacity, `silent` = no
//! answer from the switch at all), and the harness feeds the core the events FreeSWITCH would send, at virtual
//! instants. The store is the real in-memory backend (the Redis one is held to identical behaviour by the store's
//! own property tests), so the member histories below are what production would record.

use chrono::{DateTime, Duration, Utc};
use fsdialer::campaign::causes::CauseClass;
use fsdialer::campaign::config::CampaignConfig;
use fsdialer::campaign::member::{CommunicationInput, MemberInput};
use fsdialer::engine::core::{Action, Core, CoreConfig, Input, SwitchConfig, policy_of};
use fsdialer::engine::state::CampaignState;
use fsdialer::store::{AttemptRecord, Member, MemberId, MemberState, Store};
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

const CAMPAIGN: &str = "c0ffee00c0ffee00c0ffee00";

fn campaign(extra: &str) -> Arc<fsdialer::campaign::config::ValidCampaign> {
    let text = format!(
        r#"
id = "{CAMPAIGN}"
name = "core test"
limit = 10
max_tries = 3
wait_between_retries_sec = 60
min_success_duration_sec = 10
originate_timeout_sec = 30
{extra}

[[gateways]]
name = "loop"
pattern = '^(.*)$'
dial_string = "loopback/$1/default"
"#
    );
    let text = if text.contains("[calendar]") {
        text
    } else {
        format!(
            "{text}\n[calendar]\ntimezone = \"UTC\"\naccept = [{}]\n",
            (1..=7)
                .map(|d| format!("{{ weekday = {d}, start_min = 0, end_min = 1440 }}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Arc::new(
        CampaignConfig::from_toml_str(&text)
            .unwrap()
            .validate()
            .unwrap(),
    )
}

fn member(name: &str, numbers: &[&str]) -> MemberInput {
    MemberInput {
        name: name.into(),
        priority: 0,
        timezone: None,
        expire: None,
        variables: Default::default(),
        communications: numbers
            .iter()
            .enumerate()
            .map(|(i, n)| CommunicationInput {
                number: (*n).into(),
                priority: (numbers.len() - i) as i64,
                description: None,
                kind: None,
            })
            .collect(),
        external_id: None,
    }
}

/// A core, a memory store, and a scripted switch on virtual time.
struct Harness {
    core: Core,
    store: Store,
    valid: Arc<fsdialer::campaign::config::ValidCampaign>,
    now: DateTime<Utc>,
    queue: VecDeque<Action>,
    /// Originates seen, in order: (attempt, number).
    dialled: Vec<(Uuid, String)>,
    /// Events the scripted switch will send: (when, input).
    pending: Vec<(DateTime<Utc>, Input)>,
    history: Vec<(CampaignState, CampaignState)>,
    completes: usize,
    exists_answer: bool,
}

impl Harness {
    async fn new(
        valid: Arc<fsdialer::campaign::config::ValidCampaign>,
        members: &[MemberInput],
    ) -> Harness {
        // A Monday noon, so calendars in tests mean what they say.
        let now = "2026-11-23T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let store = Store::memory();
        store.add(CAMPAIGN, members, now).await.unwrap();
        let cfg = CoreConfig {
            node: "test-node".into(),
            ..CoreConfig::default()
        };
        let core = Core::new(
            cfg,
            vec![SwitchConfig {
                name: "fs1".into(),
                max_sessions: 1000,
                sessions_per_second: 30,
                sessions_per_call: 1,
            }],
            now,
        );
        let mut h = Harness {
            core,
            store,
            valid: valid.clone(),
            now,
            queue: VecDeque::new(),
            dialled: Vec::new(),
            pending: Vec::new(),
            history: Vec::new(),
            completes: 0,
            exists_answer: false,
        };
        h.input(Input::Upsert(valid)).await;
        h.input(Input::SwitchUp(0)).await;
        h
    }

    async fn input(&mut self, input: Input) {
        let actions = self.core.handle(self.now, input);
        self.queue.extend(actions);
        self.drain().await;
    }

    /// Carries out queued actions the way the shell would, against the memory store and the scripted switch.
    async fn drain(&mut self) {
        while let Some(action) = self.queue.pop_front() {
            let policy = policy_of(&self.valid);
            let input = match action {
                Action::Claim { campaign, max } => {
                    let batch = self
                        .store
                        .claim(
                            &campaign,
                            &policy,
                            self.valid.calendar(),
                            self.now,
                            max as usize,
                            "test-node",
                            std::time::Duration::from_secs(60),
                        )
                        .await
                        .unwrap();
                    Some(Input::Claimed { campaign, batch })
                }
                Action::Originate {
                    attempt,
                    job,
                    originate,
                    ..
                } => {
                    let number = originate
                        .args
                        .split("}loopback/")
                        .nth(1)
                        .and_then(|rest| rest.split('/').next())
                        .unwrap()
                        .to_owned();
                    self.dialled.push((attempt, number.clone()));
                    self.script(attempt, job, &number);
                    None
                }
                Action::Complete { result, .. } => {
                    self.completes += 1;
                    let attempt = result.attempt_id;
                    let outcome = self
                        .store
                        .complete(CAMPAIGN, &policy, self.valid.calendar(), &result, self.now)
                        .await
                        .map_err(|e| e.to_string());
                    Some(Input::Completed { attempt, outcome })
                }
                Action::Release {
                    attempt,
                    member,
                    not_before,
                    ..
                } => {
                    self.store
                        .release(CAMPAIGN, member, attempt, not_before, self.now)
                        .await
                        .unwrap();
                    None
                }
                Action::CheckExhausted { campaign } => {
                    let c = self.store.counts(&campaign).await.unwrap();
                    Some(Input::QueueState {
                        campaign,
                        waiting: c.waiting + c.active,
                    })
                }
                Action::CheckExists { attempt, .. } => Some(Input::Exists {
                    attempt,
                    exists: self.exists_answer,
                }),
                Action::History { transition, .. } => {
                    self.history.push((transition.from, transition.to));
                    None
                }
                Action::Renew { .. }
                | Action::Recover { .. }
                | Action::Kill { .. }
                | Action::StartCallflow { .. } => None,
            };
            if let Some(input) = input {
                let actions = self.core.handle(self.now, input);
                self.queue.extend(actions);
            }
        }
    }

    /// What FreeSWITCH would send for a call to `number`, and when.
    fn script(&mut self, uuid: Uuid, job: Uuid, number: &str) {
        let at = |s: i64| self.now + Duration::seconds(s);
        let hangup = |cause: &str, answered: bool, billsec: u32| Input::Hangup {
            uuid,
            cause: cause.into(),
            answered,
            billsec,
        };
        let mut ev: Vec<(DateTime<Utc>, Input)> = Vec::new();
        if let Some(n) = number.strip_prefix("answer_") {
            let talk: i64 = n.parse().unwrap();
            ev.push((at(1), Input::ChannelSeen { uuid }));
            ev.push((at(3), Input::Answered { uuid }));
            ev.push((
                at(3),
                Input::JobResult {
                    job,
                    body: format!("+OK {uuid}"),
                },
            ));
            ev.push((at(3 + talk), hangup("NORMAL_CLEARING", true, talk as u32)));
            // A duplicated event must change nothing.
            ev.push((at(3 + talk), hangup("NORMAL_CLEARING", true, talk as u32)));
        } else if number == "busy" {
            ev.push((at(1), Input::ChannelSeen { uuid }));
            ev.push((at(2), hangup("USER_BUSY", false, 0)));
            ev.push((
                at(2),
                Input::JobResult {
                    job,
                    body: "-ERR USER_BUSY".into(),
                },
            ));
        } else if let Some(cause) = number.strip_prefix("reject_") {
            ev.push((at(1), Input::ChannelSeen { uuid }));
            ev.push((at(1), hangup(cause, false, 0)));
            ev.push((
                at(1),
                Input::JobResult {
                    job,
                    body: format!("-ERR {cause}"),
                },
            ));
        } else if number == "noanswer" {
            ev.push((at(1), Input::ChannelSeen { uuid }));
            ev.push((at(30), hangup("NO_ANSWER", false, 0)));
            ev.push((
                at(30),
                Input::JobResult {
                    job,
                    body: "-ERR NO_ANSWER".into(),
                },
            ));
        } else if number == "refused" {
            // Over sessions_per_second: no channel is ever created.
            ev.push((
                at(0),
                Input::JobResult {
                    job,
                    body: "-ERR DESTINATION_OUT_OF_ORDER".into(),
                },
            ));
        } else if number == "silent" {
            // Nothing at all: the core must reconcile.
        } else {
            panic!("unscripted number {number}");
        }
        self.pending.extend(ev);
        self.pending.sort_by_key(|(t, _)| *t);
    }

    /// Advances virtual time, delivering scripted events and polling the core, until `until`.
    async fn run_until(&mut self, until: DateTime<Utc>) {
        loop {
            let next_event = self.pending.first().map(|(t, _)| *t);
            let next_wake = self.core.next_wakeup();
            let next = [next_event, next_wake].into_iter().flatten().min();
            let Some(next) = next.filter(|t| *t <= until) else {
                self.now = until;
                let actions = self.core.poll(self.now);
                self.queue.extend(actions);
                self.drain().await;
                return;
            };
            self.now = self.now.max(next);
            if next_event == Some(next) {
                let (_, input) = self.pending.remove(0);
                self.input(input).await;
            } else {
                let actions = self.core.poll(self.now);
                self.queue.extend(actions);
                self.drain().await;
            }
        }
    }

    async fn run_for(&mut self, secs: i64) {
        let until = self.now + Duration::seconds(secs);
        self.run_until(until).await;
    }

    async fn member(&self, id: u64) -> Member {
        self.store
            .get(CAMPAIGN, MemberId(id))
            .await
            .unwrap()
            .unwrap()
    }

    async fn history(&self, id: u64) -> Vec<AttemptRecord> {
        self.store.attempts(CAMPAIGN, MemberId(id)).await.unwrap()
    }
}

fn classes(h: &[AttemptRecord]) -> Vec<(String, CauseClass)> {
    h.iter().map(|a| (a.cause.clone(), a.class)).collect()
}

#[tokio::test]
async fn answered_long_enough_ends_the_member_with_success() {
    let mut h = Harness::new(campaign(""), &[member("A", &["answer_20"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    let m = h.member(1).await;
    assert_eq!(m.state, MemberState::Ended);
    assert!(m.success);
    assert_eq!(m.end_cause.as_deref(), Some("NORMAL_CLEARING"));
    assert_eq!(
        classes(&h.history(1).await),
        vec![("NORMAL_CLEARING".into(), CauseClass::Ok)]
    );
    assert_eq!(h.history(1).await[0].talk_secs, 20);
    // The duplicated hangup was not applied twice.
    assert_eq!(h.completes, 1);
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Done));
}

#[tokio::test]
async fn answered_but_shorter_than_min_success_duration_is_retried() {
    let mut h = Harness::new(campaign(""), &[member("A", &["answer_5"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(3600).await;
    let hist = h.history(1).await;
    assert_eq!(
        classes(&hist),
        vec![("NORMAL_CLEARING".into(), CauseClass::Retry); 3]
    );
    // Each retry waited wait_between_retries_sec after the previous hangup.
    for pair in hist.windows(2) {
        let gap = pair[1].originate_at - pair[0].hangup_at.unwrap();
        assert!(gap >= Duration::seconds(60), "gap {gap}");
    }
    let m = h.member(1).await;
    assert_eq!(m.end_cause.as_deref(), Some("MAX_TRY_COUNT"));
    assert!(!m.success);
}

#[tokio::test]
async fn retry_causes_count_until_max_try_count() {
    let mut h = Harness::new(campaign(""), &[member("A", &["busy"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(3600).await;
    assert_eq!(
        classes(&h.history(1).await),
        vec![("USER_BUSY".into(), CauseClass::Retry); 3]
    );
    let m = h.member(1).await;
    assert_eq!(m.tries, 3);
    assert_eq!(m.end_cause.as_deref(), Some("MAX_TRY_COUNT"));
}

#[tokio::test]
async fn error_on_one_number_moves_to_the_next_at_once() {
    let mut h = Harness::new(
        campaign(""),
        &[member("A", &["reject_UNALLOCATED_NUMBER", "answer_30"])],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    let hist = h.history(1).await;
    assert_eq!(
        classes(&hist),
        vec![
            ("UNALLOCATED_NUMBER".into(), CauseClass::Error),
            ("NORMAL_CLEARING".into(), CauseClass::Ok)
        ]
    );
    assert_eq!(hist[0].number, "reject_UNALLOCATED_NUMBER");
    assert_eq!(hist[1].number, "answer_30");
    // "Due again at once": no retry wait between the two.
    assert!(hist[1].originate_at - hist[0].hangup_at.unwrap() < Duration::seconds(5));
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn error_on_the_last_number_ends_the_member_with_that_cause() {
    let mut h = Harness::new(campaign(""), &[member("A", &["reject_UNALLOCATED_NUMBER"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    let m = h.member(1).await;
    assert_eq!(m.end_cause.as_deref(), Some("UNALLOCATED_NUMBER"));
    assert_eq!(h.history(1).await.len(), 1);
}

#[tokio::test]
async fn minus_does_not_count_toward_max_tries() {
    let mut h = Harness::new(
        campaign(""),
        &[member("A", &["reject_NORMAL_TEMPORARY_FAILURE"])],
    )
    .await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(60 * 10).await;
    let hist = h.history(1).await;
    assert!(hist.len() > 3, "minus attempts keep coming: {}", hist.len());
    assert!(hist.iter().all(|a| a.class == CauseClass::Minus));
    let m = h.member(1).await;
    assert_eq!(m.tries, 0);
    assert_eq!(m.state, MemberState::Waiting);
}

#[tokio::test]
async fn switch_refusing_a_session_for_capacity_is_minus_whatever_the_table_says() {
    // DESTINATION_OUT_OF_ORDER is a retry cause in the default table; refused without a channel it is ours.
    let mut h = Harness::new(campaign(""), &[member("A", &["refused"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(30).await;
    let hist = h.history(1).await;
    assert!(!hist.is_empty());
    assert!(
        hist.iter().all(|a| a.class == CauseClass::Minus),
        "{:?}",
        classes(&hist)
    );
    assert_eq!(h.member(1).await.tries, 0);
}

#[tokio::test]
async fn originate_timeout_no_answer_is_a_retry() {
    let mut h = Harness::new(campaign(""), &[member("A", &["noanswer"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(3600).await;
    assert_eq!(
        classes(&h.history(1).await),
        vec![("NO_ANSWER".into(), CauseClass::Retry); 3]
    );
}

#[tokio::test]
async fn expired_member_is_never_called() {
    let mut expired = member("A", &["answer_20"]);
    expired.expire = Some("2026-11-23T11:00:00Z".parse().unwrap());
    let mut h = Harness::new(campaign(""), &[expired, member("B", &["answer_20"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    assert_eq!(
        h.member(1).await.end_cause.as_deref(),
        Some("MEMBER_EXPIRED")
    );
    assert!(h.history(1).await.is_empty());
    assert_eq!(h.dialled.len(), 1);
    assert_eq!(h.dialled[0].1, "answer_20");
}

#[tokio::test]
async fn closed_calendar_makes_no_call_and_the_campaign_sleeps() {
    // Open only on Sundays; the harness starts on a Monday.
    let valid = campaign(
        "[calendar]\ntimezone = \"UTC\"\naccept = [{ weekday = 7, start_min = 0, end_min = 1440 }]\n",
    );
    let mut h = Harness::new(valid, &[member("A", &["answer_20"])]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(3600).await;
    assert!(h.dialled.is_empty());
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Sleeping));
    assert_eq!(
        h.history,
        vec![
            (CampaignState::Idle, CampaignState::Running),
            (CampaignState::Running, CampaignState::Sleeping)
        ]
    );
    // Sunday comes: it wakes and calls.
    h.run_for(6 * 24 * 3600).await;
    assert_eq!(h.dialled.len(), 1);
    assert!(h.member(1).await.success);
}

#[tokio::test]
async fn higher_priority_members_are_called_first() {
    let mut low = member("low", &["answer_20"]);
    low.priority = 0;
    let mut high = member("high", &["answer_20"]);
    high.priority = 10;
    let valid = campaign("").as_ref().clone();
    let mut cfg = valid.config().clone();
    cfg.limit = 1;
    let valid = Arc::new(cfg.validate().unwrap());
    let mut h = Harness::new(valid, &[low, high]).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(600).await;
    let m2 = h.history(2).await;
    let m1 = h.history(1).await;
    assert!(m2[0].originate_at < m1[0].originate_at);
}

#[tokio::test]
async fn campaign_limit_caps_calls_in_progress() {
    let members: Vec<MemberInput> = (0..30)
        .map(|i| member(&format!("m{i}"), &["answer_100"]))
        .collect();
    let mut h = Harness::new(campaign(""), &members).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    assert_eq!(h.core.active(CAMPAIGN), 10);
    assert_eq!(h.dialled.len(), 10);
    h.run_for(3600).await;
    assert_eq!(h.dialled.len(), 30);
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Done));
}

#[tokio::test]
async fn silent_originate_is_reconciled_and_counted_as_lost_attempt() {
    let mut h = Harness::new(
        campaign("lost_attempt = \"minus\""),
        &[member("A", &["silent"])],
    )
    .await;
    h.exists_answer = false;
    h.input(Input::Run(CAMPAIGN.into())).await;
    // originate_timeout 30 s + 30 s grace, then uuid_exists says it is gone.
    h.run_for(61).await;
    let hist = h.history(1).await;
    assert_eq!(
        classes(&hist)[0],
        ("LOST_ATTEMPT".into(), CauseClass::Minus)
    );
}

#[tokio::test]
async fn stop_lets_calls_in_progress_finish() {
    let members: Vec<MemberInput> = (0..3)
        .map(|i| member(&format!("m{i}"), &["answer_50"]))
        .collect();
    let mut h = Harness::new(campaign(""), &members).await;
    h.input(Input::Run(CAMPAIGN.into())).await;
    h.run_for(10).await;
    h.input(Input::Stop(CAMPAIGN.into())).await;
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Stopping));
    h.run_for(600).await;
    assert_eq!(h.core.state(CAMPAIGN), Some(CampaignState::Stopped));
    for id in 1..=3 {
        assert!(h.member(id).await.success);
    }
}
