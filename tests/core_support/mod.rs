//! The engine-core test harness: a core, the real in-memory store, and a scripted switch on virtual time.
//!
//! The core is pure, so the harness plays the switch itself: each dialled number names its outcome (`answer_N`,
//! `busy`, `reject_CAUSE`, `noanswer`, `refused` = the switch refusing the session for capacity, `silent` = no
//! answer from the switch at all, `answered_silent` = answered and then nothing, `trunk_N` = answers unless the
//! trunk is down), and the harness feeds the core the events FreeSWITCH would send, at virtual instants. It
//! carries out the core's actions as the shell would, against the store, with knobs for the failures under test
//! (`uuid_exists` failing, a poisoned result, where adopted calls are found).

#![allow(dead_code)]

mod agents;
mod amd;
pub use agents::*;
pub use amd::*;

use chrono::{DateTime, Duration, Utc};
use fsdialer::campaign::config::CampaignConfig;
use fsdialer::campaign::member::{CommunicationInput, MemberInput};
use fsdialer::engine::core::{
    Action, Core, CoreConfig, HangupRecord, Input, SwitchConfig, SwitchLimits, policy_of,
};
use fsdialer::engine::state::CampaignState;
use fsdialer::store::AttemptId;
use fsdialer::store::{AttemptRecord, Member, MemberId, Store};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use uuid::Uuid;

/// A Monday noon, so calendars in tests mean what they say.
pub fn start() -> DateTime<Utc> {
    "2026-11-23T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
}

pub const CAMPAIGN: &str = "c0ffee00c0ffee00c0ffee00";

pub fn campaign(extra: &str) -> Arc<fsdialer::campaign::config::ValidCampaign> {
    campaign_with_gateways(
        extra,
        "[[gateways]]\nname = \"loop\"\npattern = '^(.*)$'\ndial_string = \"loopback/$1/default\"\n",
    )
}

/// A loopback gateway named `name`, TOML, with extra lines (`limit = 1`...).
pub fn gateway(name: &str, extra: &str) -> String {
    format!(
        "[[gateways]]\nname = \"{name}\"\npattern = '^(.*)$'\ndial_string = \"loopback/$1/default\"\n{extra}\n"
    )
}

pub fn campaign_with_gateways(
    extra: &str,
    gateways: &str,
) -> Arc<fsdialer::campaign::config::ValidCampaign> {
    // Defaults, less the keys `extra` sets.
    let defaults: String = [
        "limit = 10",
        "max_tries = 3",
        "wait_between_retries_sec = 60",
        "min_success_duration_sec = 10",
        "originate_timeout_sec = 30",
    ]
    .iter()
    .filter(|line| {
        let key = line.split(' ').next().unwrap_or_default();
        !extra.lines().any(|l| l.split(' ').next() == Some(key))
    })
    .map(|line| format!("{line}\n"))
    .collect();
    let text = format!(
        r#"
id = "{CAMPAIGN}"
name = "core test"
{defaults}{extra}

{gateways}
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

pub fn member(name: &str, numbers: &[&str]) -> MemberInput {
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
pub struct Harness {
    pub core: Core,
    pub store: Store,
    pub valid: Arc<fsdialer::campaign::config::ValidCampaign>,
    pub now: DateTime<Utc>,
    pub queue: VecDeque<Action>,
    /// Originates seen, in order: (attempt, number).
    pub dialled: Vec<(Uuid, String)>,
    /// Events the scripted switch will send: (when, input).
    pub pending: Vec<(DateTime<Utc>, Input)>,
    pub history: Vec<(CampaignState, CampaignState)>,
    pub completes: usize,
    /// What `uuid_exists` answers: `None` = the command fails.
    pub exists_answer: Option<bool>,
    /// Where adopted calls are found (`Action::Locate`).
    pub located: Option<usize>,
    /// The hangup records switch 0 keeps (`hash insert/fsdialer/...` of the calls' hangup hooks).
    pub hangup_records: HashMap<AttemptId, HangupRecord>,
    /// Records the core asked to delete, in order.
    pub forgotten_records: Vec<AttemptId>,
    /// Members whose results the store refuses (a poison result).
    pub poisoned: HashSet<MemberId>,
    /// Results given up by the core.
    pub failed: Vec<AttemptId>,
    /// Gateway of each originate and of each completion, by attempt.
    pub originated_on: HashMap<Uuid, String>,
    pub completed_on: HashMap<Uuid, Option<String>>,
    /// Until when numbers `trunk_N` get `-ERR GATEWAY_DOWN`.
    pub trunk_down_until: Option<DateTime<Utc>>,
    pub releases: usize,
    /// Calls the store refused a caller ID to (its daily cap).
    pub caller_ids_refused: usize,
    pub kills: usize,
    /// Recoveries of expired leases asked for (`Action::Recover`), each at its instant.
    pub recovers: Vec<DateTime<Utc>>,
    /// The next this many claims are made in the store but their reply is lost (a timeout).
    pub lose_claim_replies: usize,
    /// The next this many lists of held attempts (after a lost claim reply) fail, as with the store down.
    pub fail_orphan_checks: usize,
    /// Lists of held attempts asked for.
    pub orphan_checks: usize,
    /// Agent side (see `agents`): reservations made, releases, agent legs dialled (leg, phone), preview offers,
    /// abandon messages (member, message).
    pub reservations: usize,
    pub agent_releases: Vec<fsdialer::engine::core::AgentRelease>,
    pub agent_legs_dialled: Vec<(Uuid, String)>,
    pub offers: Vec<Uuid>,
    pub abandons: Vec<(Uuid, Option<String>)>,
    /// The scripted switch's channels: answered (and when), gone, bridged pairs (both ways).
    pub answered: HashSet<Uuid>,
    pub answered_at: HashMap<Uuid, DateTime<Utc>>,
    pub gone: HashSet<Uuid>,
    pub bridged: HashMap<Uuid, Uuid>,
    /// AMD actions and beeps (see `amd`).
    pub amd: AmdLog,
}

impl Harness {
    pub async fn new(
        valid: Arc<fsdialer::campaign::config::ValidCampaign>,
        members: &[MemberInput],
    ) -> Harness {
        let store = Store::memory();
        store.add(CAMPAIGN, members, start()).await.unwrap();
        Harness::with_store(valid, store, start(), CoreConfig::default()).await
    }

    /// A harness over an existing store (a restarted node), at `now`, with `cfg` (its node is `test-node`).
    pub async fn with_store(
        valid: Arc<fsdialer::campaign::config::ValidCampaign>,
        store: Store,
        now: DateTime<Utc>,
        cfg: CoreConfig,
    ) -> Harness {
        let cfg = CoreConfig {
            node: "test-node".into(),
            ..cfg
        };
        let core = Core::new(
            cfg,
            vec![SwitchConfig {
                name: "fs1".into(),
                limits: Some(SwitchLimits {
                    max_sessions: 1000,
                    sessions_per_second: 30,
                }),
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
            exists_answer: Some(false),
            located: None,
            hangup_records: HashMap::new(),
            forgotten_records: Vec::new(),
            poisoned: HashSet::new(),
            failed: Vec::new(),
            originated_on: HashMap::new(),
            completed_on: HashMap::new(),
            trunk_down_until: None,
            releases: 0,
            caller_ids_refused: 0,
            kills: 0,
            recovers: Vec::new(),
            lose_claim_replies: 0,
            fail_orphan_checks: 0,
            orphan_checks: 0,
            reservations: 0,
            agent_releases: Vec::new(),
            agent_legs_dialled: Vec::new(),
            offers: Vec::new(),
            abandons: Vec::new(),
            answered: HashSet::new(),
            answered_at: HashMap::new(),
            gone: HashSet::new(),
            bridged: HashMap::new(),
            amd: AmdLog::default(),
        };
        h.input(Input::Upsert(valid)).await;
        h.input(Input::SwitchUp(0)).await;
        h
    }

    /// An edit of the campaign: the new version is given to the core.
    pub async fn edit(&mut self, valid: Arc<fsdialer::campaign::config::ValidCampaign>) {
        self.valid = valid.clone();
        self.input(Input::Upsert(valid)).await;
    }

    pub async fn input(&mut self, input: Input) {
        self.switch_sees(&input);
        self.amd_sees(&input);
        let actions = self.core.handle(self.now, input);
        self.queue.extend(actions);
        self.drain().await;
    }

    /// Carries out queued actions the way the shell would, against the memory store and the scripted switch.
    pub async fn drain(&mut self) {
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
                    if self.lose_claim_replies > 0 {
                        self.lose_claim_replies -= 1;
                        Some(Input::ClaimFailed {
                            campaign,
                            error: "timed out".into(),
                        })
                    } else {
                        Some(Input::Claimed { campaign, batch })
                    }
                }
                Action::FindOrphans { campaign } => {
                    self.orphan_checks += 1;
                    let held = if self.fail_orphan_checks > 0 {
                        self.fail_orphan_checks -= 1;
                        Err("store unreachable".to_string())
                    } else {
                        Ok(self
                            .store
                            .held_claims(
                                &campaign,
                                "test-node",
                                std::time::Duration::from_secs(60),
                                self.now,
                            )
                            .await
                            .unwrap())
                    };
                    Some(Input::Orphans { campaign, held })
                }
                Action::Originate {
                    attempt,
                    job,
                    originate,
                    gateway,
                    caller_id,
                    ..
                } => {
                    // The caller ID is counted in the store first, as the shell does.
                    if let Some(cid) = caller_id {
                        let take = self
                            .store
                            .take_caller_id(&cid.number, cid.cap, self.now)
                            .await
                            .unwrap();
                        let used = Input::CallerIdUsed {
                            number: cid.number,
                            used_today: take.used_today,
                        };
                        self.queue.extend(self.core.handle(self.now, used));
                        if !take.taken {
                            self.caller_ids_refused += 1;
                            self.queue.extend(
                                self.core
                                    .handle(self.now, Input::CallerIdRefused { attempt }),
                            );
                            continue;
                        }
                    }
                    self.originated_on.insert(attempt, gateway);
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
                Action::Complete {
                    result,
                    gateway,
                    version,
                    ..
                } => {
                    // The store applies the version the core sends (a callback's carries its own wait).
                    let policy = policy_of(&version);
                    let attempt = result.attempt_id;
                    if self.poisoned.contains(&result.member_id) {
                        Some(Input::Completed {
                            attempt,
                            outcome: Err("poisoned".into()),
                        })
                    } else {
                        self.completes += 1;
                        self.completed_on.insert(attempt, gateway);
                        let outcome = self
                            .store
                            .complete(CAMPAIGN, &policy, version.calendar(), &result, self.now)
                            .await
                            .map_err(|e| e.to_string());
                        Some(Input::Completed { attempt, outcome })
                    }
                }
                Action::ResultFailed { result, .. } => {
                    self.failed.push(result.attempt_id);
                    None
                }
                Action::Locate { attempt } => {
                    Some(match (self.located, self.hangup_records.get(&attempt)) {
                        (None, Some(record)) => Input::Located {
                            attempt,
                            switch: Some(0),
                            ended: Some(record.clone()),
                        },
                        (switch, _) => Input::Located {
                            attempt,
                            switch,
                            ended: None,
                        },
                    })
                }
                Action::ForgetHangupRecord { attempt, .. } => {
                    self.hangup_records.remove(&attempt);
                    self.forgotten_records.push(attempt);
                    None
                }
                Action::Kill { uuid, cause, .. } => {
                    self.kills += 1;
                    // FreeSWITCH hangs the channel up with the cause (if it still exists).
                    if !self.gone.contains(&uuid) {
                        self.hang_up_at(uuid, &cause, self.now);
                    }
                    None
                }
                agent @ (Action::ReserveAgent { .. }
                | Action::AgentOffered { .. }
                | Action::AdoptAgents { .. }
                | Action::AgentTalking { .. }
                | Action::ReleaseAgent { .. }
                | Action::OriginateAgent { .. }
                | Action::Offer { .. }
                | Action::Bridge { .. }
                | Action::Abandon { .. }
                | Action::StopMember { .. }
                | Action::CountAgents { .. }
                | Action::RecordCompliance { .. }
                | Action::StickyAgent { .. }) => self.agent_action(agent).await,
                amd @ (Action::StartAmd { .. }
                | Action::StartBeepDetection { .. }
                | Action::LeaveMessage { .. }) => self.amd_action(amd),
                Action::Release {
                    attempt,
                    member,
                    not_before,
                    ..
                } => {
                    self.releases += 1;
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
                Action::CheckExists { attempt, .. } => Some(match self.exists_answer {
                    Some(exists) => Input::Exists {
                        attempt,
                        exists,
                        ended: (!exists)
                            .then(|| self.hangup_records.get(&attempt).cloned())
                            .flatten(),
                    },
                    None => Input::CheckFailed { attempt },
                }),
                Action::History { transition, .. } => {
                    self.history.push((transition.from, transition.to));
                    None
                }
                Action::Recover { .. } => {
                    self.recovers.push(self.now);
                    None
                }
                Action::Renew { .. } | Action::Forget { .. } | Action::StartCallflow { .. } => None,
            };
            if let Some(input) = input {
                self.switch_sees(&input);
                let actions = self.core.handle(self.now, input);
                self.queue.extend(actions);
            }
        }
    }

    /// What FreeSWITCH would send for a call to `number`, and when.
    pub fn script(&mut self, uuid: Uuid, job: Uuid, number: &str) {
        let at = |s: i64| self.now + Duration::seconds(s);
        let hangup = |cause: &str, answered: bool, billsec: u32| Input::Hangup {
            uuid,
            cause: cause.into(),
            answered,
            billsec,
            talk_ms: u64::from(billsec) * 1000,
        };
        let mut ev: Vec<(DateTime<Utc>, Input)> = Vec::new();
        let amd_talk = number
            .strip_prefix("amd_")
            .and_then(|rest| rest.rsplit('_').next());
        if let Some(n) = number.strip_prefix("answer_").or(amd_talk) {
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
        } else if number == "billed_10_talked_9600ms" {
            // 9.6 s of talk across a second boundary: FreeSWITCH's billsec (whole-second epochs) says 10.
            ev.push((at(1), Input::ChannelSeen { uuid }));
            ev.push((at(3), Input::Answered { uuid }));
            ev.push((
                at(3),
                Input::JobResult {
                    job,
                    body: format!("+OK {uuid}"),
                },
            ));
            ev.push((
                at(13),
                Input::Hangup {
                    uuid,
                    cause: "NORMAL_CLEARING".into(),
                    answered: true,
                    billsec: 10,
                    talk_ms: 9600,
                },
            ));
        } else if number == "half_throttled" {
            // A loopback call whose a-leg got a session and whose b-leg did not (capture burst_sps): the a-leg
            // waits in CS_INIT until originate_timeout; the job may reach the core before the channel events.
            ev.push((at(0), Input::ChannelSeen { uuid }));
            ev.push((
                at(30),
                Input::JobResult {
                    job,
                    body: "-ERR NO_ANSWER".into(),
                },
            ));
            ev.push((at(30), Input::NeverRouted { uuid }));
            ev.push((at(30), hangup("NO_ANSWER", false, 0)));
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
        } else if number == "answered_silent" {
            // Answered, then nothing: the hangup is never seen.
            ev.push((at(1), Input::ChannelSeen { uuid }));
            ev.push((at(3), Input::Answered { uuid }));
        } else if let Some(n) = number.strip_prefix("trunk_") {
            if self.trunk_down_until.is_some_and(|t| self.now < t) {
                // The carrier trunk is down: FreeSWITCH refuses at once, no channel.
                ev.push((
                    at(0),
                    Input::JobResult {
                        job,
                        body: "-ERR GATEWAY_DOWN".into(),
                    },
                ));
            } else {
                let talk: i64 = n.parse().unwrap();
                ev.push((at(1), Input::ChannelSeen { uuid }));
                ev.push((at(2), Input::Answered { uuid }));
                ev.push((at(2 + talk), hangup("NORMAL_CLEARING", true, talk as u32)));
            }
        } else {
            panic!("unscripted number {number}");
        }
        self.pending.extend(ev);
        self.pending.sort_by_key(|(t, _)| *t);
    }

    /// Advances virtual time, delivering scripted events and polling the core, until `until`.
    pub async fn run_until(&mut self, until: DateTime<Utc>) {
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

    pub async fn run_for(&mut self, secs: i64) {
        let until = self.now + Duration::seconds(secs);
        self.run_until(until).await;
    }

    pub async fn member(&self, id: u64) -> Member {
        self.store
            .get(CAMPAIGN, MemberId(id))
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn history(&self, id: u64) -> Vec<AttemptRecord> {
        self.store.attempts(CAMPAIGN, MemberId(id)).await.unwrap()
    }
}
