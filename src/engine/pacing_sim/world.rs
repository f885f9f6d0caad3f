//! One simulated shift: the engine's own core on virtual time, and around it a population of callees and
//! agents drawn from the profile, playing the switch and the store's agents.
//!
//! The world answers the core's actions as the shell would (claims from an endless member list, originates,
//! agent reservations and releases, `uuid_bridge`, the abandon message, completions, the compliance record) and
//! feeds it the events FreeSWITCH would send at their virtual instants. Each member draws its behaviour (answers
//! or not, time to answer, patience, talk and wrap-up) from its own generator seeded by (seed, member), so every
//! policy meets the same customers in the same order: the comparison is on common random numbers.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use uuid::Uuid;

use super::metrics::{Metrics, Totals};
use super::profile::Profile;
use crate::agents::compliance::DayCounts;
use crate::agents::pacer::{PacingPolicy, TeamSnapshot};
use crate::campaign::config::{CampaignConfig, ValidCampaign};
use crate::engine::core::{
    Action, AgentOutcome, AgentRelease, AgentReservation, Core, CoreConfig, Input, SwitchConfig,
    SwitchLimits,
};
use crate::store::{Claim, ClaimBatch, CompleteOutcome, MemberFate, MemberId};

/// The simulated campaign's id and team.
pub const CAMPAIGN: &str = "pacing0000000000000sim0";
const TEAM: &str = "sim";

/// What one member does when called (drawn once, from its own generator).
#[derive(Debug, Clone, Copy)]
struct Callee {
    /// Uniform draw compared with the answer probability in force when it is dialled.
    answer_draw: f64,
    time_to_answer: f64,
    patience: f64,
    talk: f64,
    wrap: f64,
}

/// A member leg on the simulated switch.
#[derive(Debug, Clone)]
struct MemberLeg {
    job: Uuid,
    callee: Callee,
    answered_at: Option<DateTime<Utc>>,
    bridged_to: Option<Uuid>,
    bridged_at: Option<DateTime<Utc>>,
    alive: bool,
    abandoning: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AgentState {
    Free { since: DateTime<Utc> },
    Reserved,
    Talking { since: DateTime<Utc> },
    Wrapping { since: DateTime<Utc> },
}

#[derive(Debug, Clone)]
struct AgentLeg {
    job: Uuid,
    alive: bool,
    answered: bool,
    bridged_to: Option<Uuid>,
}

/// Things that happen at an instant.
#[derive(Debug, Clone)]
enum Event {
    MemberAnswers(Uuid),
    RingsOut(Uuid),
    PatienceOut(Uuid),
    MemberHangsUp(Uuid),
    AgentLegAnswers(Uuid),
    WrapDone { agent: usize, attempt: Uuid },
}

/// Ordered by time, then by the order of scheduling.
#[derive(Debug)]
struct Scheduled {
    at: DateTime<Utc>,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The campaign the simulator runs: predictive, the profile's ring time and pacing keys, and `policy`.
pub fn campaign(profile: &Profile, policy: PacingPolicy) -> Result<Arc<ValidCampaign>, String> {
    let mut pacing = profile.pacing.clone().unwrap_or_default();
    pacing.insert("policy".into(), toml::Value::String(policy.as_str().into()));
    let mut agents = toml::Table::new();
    agents.insert("team".into(), TEAM.into());
    // Agents end their wrap-up with the result callback; the team's limit only bounds it.
    agents.insert("wrap_up_sec".into(), 3600.into());
    agents.insert("result_timeout_sec".into(), 3600.into());
    agents.insert("agent_answer_timeout_sec".into(), 15.into());
    agents.insert("abandon_message".into(), "/prompts/abandon.wav".into());
    agents.insert("pacing".into(), toml::Value::Table(pacing));
    let mut doc = toml::Table::new();
    doc.insert("id".into(), CAMPAIGN.into());
    doc.insert("name".into(), "pacing simulation".into());
    doc.insert("mode".into(), "predictive".into());
    doc.insert(
        "limit".into(),
        i64::from(profile.agents.saturating_mul(6)).into(),
    );
    doc.insert("max_tries".into(), 1.into());
    doc.insert(
        "originate_timeout_sec".into(),
        i64::from(profile.ring_timeout_sec).into(),
    );
    doc.insert("agents".into(), toml::Value::Table(agents));
    let text = format!(
        "{}\n[calendar]\ntimezone = \"UTC\"\naccept = [{}]\n\n[[gateways]]\nname = \"sim\"\npattern = '^(.*)$'\ndial_string = \"sofia/gateway/sim/$1\"\n",
        toml::to_string(&doc).map_err(|e| e.to_string())?,
        (1..=7)
            .map(|d| format!("{{ weekday = {d}, start_min = 0, end_min = 1440 }}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    CampaignConfig::from_toml_str(&text)
        .map_err(|e| e.to_string())?
        .validate()
        .map(Arc::new)
        .map_err(|e| format!("the profile's campaign: {e}"))
}

/// One shift of one policy on one seed.
pub struct World<'a> {
    profile: &'a Profile,
    seed: u64,
    core: Core,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    seq: u64,
    events: BinaryHeap<Reverse<Scheduled>>,
    inputs: VecDeque<Input>,
    next_member: u64,
    members: HashMap<Uuid, MemberLeg>,
    agents: Vec<AgentState>,
    reservations: HashMap<Uuid, (usize, Uuid)>,
    agent_legs: HashMap<Uuid, AgentLeg>,
    /// The wrap-up each agent draws for the call it finished (from the member's draws).
    finished_wrap: HashMap<Uuid, f64>,
    totals: Totals,
    compliance: DayCounts,
}

impl<'a> World<'a> {
    pub fn new(profile: &'a Profile, seed: u64, valid: Arc<ValidCampaign>) -> World<'a> {
        let start: DateTime<Utc> = "2026-11-23T08:00:00Z".parse().expect("a fixed instant");
        let end = start + Duration::milliseconds((profile.shift_hours * 3_600_000.0) as i64);
        let core = Core::new(
            CoreConfig {
                node: "pacing-sim".into(),
                ..CoreConfig::default()
            },
            vec![SwitchConfig {
                name: "sim".into(),
                limits: Some(SwitchLimits {
                    max_sessions: 1_000_000,
                    sessions_per_second: 100_000,
                }),
                sessions_per_call: 1,
            }],
            start,
        );
        let mut w = World {
            profile,
            seed,
            core,
            now: start,
            start,
            end,
            seq: 0,
            events: BinaryHeap::new(),
            inputs: VecDeque::new(),
            next_member: 1,
            members: HashMap::new(),
            agents: vec![AgentState::Free { since: start }; profile.agents as usize],
            reservations: HashMap::new(),
            agent_legs: HashMap::new(),
            finished_wrap: HashMap::new(),
            totals: Totals::default(),
            compliance: DayCounts::default(),
        };
        w.inputs.push_back(Input::Upsert(valid));
        w.inputs.push_back(Input::SwitchUp(0));
        w.inputs.push_back(Input::Run(CAMPAIGN.into()));
        w.settle();
        w
    }

    /// Runs the shift to its end and returns what it measured.
    pub fn run(mut self) -> Metrics {
        loop {
            let next_event = self.events.peek().map(|Reverse(s)| s.at);
            let next_wake = self.core.next_wakeup();
            let Some(next) = [next_event, next_wake].into_iter().flatten().min() else {
                break;
            };
            if next > self.end {
                break;
            }
            self.now = self.now.max(next);
            if next_event == Some(next) {
                let Some(Reverse(s)) = self.events.pop() else {
                    break;
                };
                self.happen(s.event);
            } else {
                let actions = self.core.poll(self.now);
                self.carry_out(actions);
            }
            self.settle();
        }
        self.now = self.end;
        self.finish()
    }

    fn finish(mut self) -> Metrics {
        let end = self.end;
        for state in &self.agents {
            match *state {
                AgentState::Talking { since } => self.totals.talk_sec += secs(end - since),
                AgentState::Wrapping { since } => self.totals.wrap_sec += secs(end - since),
                _ => {}
            }
        }
        let logged_in = f64::from(self.profile.agents) * secs(end - self.start);
        Metrics::of(&self.totals, &self.compliance, logged_in)
    }

    fn schedule(&mut self, after_sec: f64, event: Event) {
        let at = self.now + Duration::microseconds((after_sec.max(0.0) * 1e6) as i64);
        self.seq += 1;
        self.events.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Feeds the queued inputs to the core and carries out what it asks, until nothing is left.
    fn settle(&mut self) {
        while let Some(input) = self.inputs.pop_front() {
            let actions = self.core.handle(self.now, input);
            self.carry_out(actions);
        }
    }

    fn callee(&self, member: u64) -> Callee {
        let mut rng = StdRng::seed_from_u64(
            self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ member.wrapping_mul(0xBF58_476D_1CE4_E5B9),
        );
        let c = &self.profile.customer;
        let a = &self.profile.agent;
        let lognormal = |rng: &mut StdRng, median: f64, sigma: f64| {
            LogNormal::new(median.ln(), sigma).map_or(median, |d| d.sample(rng))
        };
        Callee {
            answer_draw: rng.random::<f64>(),
            time_to_answer: lognormal(
                &mut rng,
                c.time_to_answer_sec.median,
                c.time_to_answer_sec.sigma,
            ),
            patience: rng.random_range(c.patience_sec.min..=c.patience_sec.max),
            talk: lognormal(&mut rng, a.talk_sec.median, a.talk_sec.sigma),
            wrap: if a.wrap_sec.mean > 0.0 {
                Exp::new(1.0 / a.wrap_sec.mean).map_or(a.wrap_sec.mean, |d| d.sample(&mut rng))
            } else {
                0.0
            },
        }
    }

    fn happen(&mut self, event: Event) {
        match event {
            Event::MemberAnswers(uuid) => {
                let Some(m) = self.members.get_mut(&uuid).filter(|m| m.alive) else {
                    return;
                };
                m.answered_at = Some(self.now);
                let (job, patience) = (m.job, m.callee.patience);
                self.inputs.push_back(Input::Answered { uuid });
                self.inputs.push_back(Input::JobResult {
                    job,
                    body: format!("+OK {uuid}"),
                });
                self.schedule(patience, Event::PatienceOut(uuid));
            }
            Event::RingsOut(uuid) => {
                let Some(m) = self.members.get(&uuid).filter(|m| m.alive) else {
                    return;
                };
                let job = m.job;
                self.inputs.push_back(Input::JobResult {
                    job,
                    body: "-ERR NO_ANSWER".into(),
                });
                self.hang_up(uuid, "NO_ANSWER");
            }
            Event::PatienceOut(uuid) => {
                let waiting = self
                    .members
                    .get(&uuid)
                    .is_some_and(|m| m.alive && m.bridged_to.is_none() && !m.abandoning);
                if waiting {
                    self.totals.hung_up_waiting += 1;
                    self.hang_up(uuid, "NORMAL_CLEARING");
                }
            }
            Event::MemberHangsUp(uuid) => self.hang_up(uuid, "NORMAL_CLEARING"),
            Event::AgentLegAnswers(leg) => {
                let Some(l) = self.agent_legs.get_mut(&leg).filter(|l| l.alive) else {
                    return;
                };
                l.answered = true;
                let job = l.job;
                self.inputs.push_back(Input::Answered { uuid: leg });
                self.inputs.push_back(Input::JobResult {
                    job,
                    body: format!("+OK {leg}"),
                });
            }
            Event::WrapDone { agent, attempt } => {
                if let Some(AgentState::Wrapping { since }) = self.agents.get(agent).copied() {
                    self.totals.wrap_sec += secs(self.now - since);
                    self.agents[agent] = AgentState::Free { since: self.now };
                }
                self.inputs.push_back(Input::AgentResult {
                    attempt,
                    outcome: AgentOutcome {
                        success: true,
                        ..AgentOutcome::default()
                    },
                });
            }
        }
    }

    /// A channel hangs up (a member leg or an agent leg); a bridged partner follows.
    fn hang_up(&mut self, uuid: Uuid, cause: &str) {
        if let Some(m) = self.members.get_mut(&uuid).filter(|m| m.alive) {
            m.alive = false;
            let answered = m.answered_at.is_some();
            let talk = m.answered_at.map_or(0.0, |t| secs(self.now - t));
            let partner = m.bridged_to;
            self.inputs.push_back(Input::Hangup {
                uuid,
                cause: cause.into(),
                answered,
                billsec: talk as u32,
                talk_ms: (talk * 1000.0) as u64,
            });
            if let Some(p) = partner {
                self.hang_up(p, "NORMAL_CLEARING");
            }
            return;
        }
        if let Some(l) = self.agent_legs.get_mut(&uuid).filter(|l| l.alive) {
            l.alive = false;
            let (answered, partner) = (l.answered, l.bridged_to);
            self.inputs.push_back(Input::Hangup {
                uuid,
                cause: cause.into(),
                answered,
                billsec: 0,
                talk_ms: 0,
            });
            if let Some(p) = partner {
                self.hang_up(p, "NORMAL_CLEARING");
            }
        }
    }

    /// The team as the store would report it: the counts, and when each talking agent began to talk.
    fn counts(&self) -> TeamSnapshot {
        let mut t = TeamSnapshot::default();
        for a in &self.agents {
            match *a {
                AgentState::Free { .. } => t.counts.free += 1,
                AgentState::Reserved => t.counts.busy += 1,
                AgentState::Talking { since } => {
                    t.counts.busy += 1;
                    t.talk_started.push(since);
                }
                AgentState::Wrapping { .. } => t.counts.wrapping += 1,
            }
        }
        t
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        for action in actions {
            self.carry_out_one(action);
        }
    }

    fn carry_out_one(&mut self, action: Action) {
        match action {
            Action::Claim { campaign, max } => {
                let claims = (0..max).map(|_| self.new_claim()).collect();
                self.inputs.push_back(Input::Claimed {
                    campaign,
                    batch: ClaimBatch {
                        claims,
                        ended: Vec::new(),
                    },
                });
            }
            Action::Originate { attempt, job, .. } => self.originate(attempt, job),
            Action::CountAgents { campaign, .. } => {
                let counts = Some(self.counts());
                // The shift is the campaign's whole 30-day record.
                let abandon_30d_pct = (self.compliance.live_answers > 0).then(|| {
                    self.compliance.abandoned as f64 * 100.0 / self.compliance.live_answers as f64
                });
                self.inputs.push_back(Input::AgentCounts {
                    campaign,
                    counts,
                    abandon_30d_pct,
                });
            }
            Action::ReserveAgent { attempt, .. } => {
                let free = self
                    .agents
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| match a {
                        AgentState::Free { since } => Some((*since, i)),
                        _ => None,
                    })
                    .min();
                let reservation = free.map(|(_, i)| {
                    self.agents[i] = AgentState::Reserved;
                    let id = Uuid::from_u128(u128::from(self.seq) << 64 | i as u128);
                    self.seq += 1;
                    self.reservations.insert(id, (i, attempt));
                    AgentReservation {
                        id,
                        agent: format!("agent{i}"),
                        dial_string: format!("user/agent{i}"),
                    }
                });
                self.inputs.push_back(Input::AgentReserved {
                    attempt,
                    reservation,
                });
            }
            Action::OriginateAgent {
                attempt, leg, job, ..
            } => {
                let agent = self
                    .reservations
                    .values()
                    .find(|(_, a)| *a == attempt)
                    .map(|(i, _)| *i);
                if agent.is_some() {
                    self.agent_legs.insert(
                        leg,
                        AgentLeg {
                            job,
                            alive: true,
                            answered: false,
                            bridged_to: None,
                        },
                    );
                    self.schedule(self.profile.agent.answer_sec, Event::AgentLegAnswers(leg));
                } else {
                    self.inputs.push_back(Input::JobResult {
                        job,
                        body: "-ERR USER_NOT_REGISTERED".into(),
                    });
                }
            }
            Action::AgentTalking { reservation, .. } => {
                if let Some((agent, _)) = self.reservations.get(&reservation) {
                    self.agents[*agent] = AgentState::Talking { since: self.now };
                }
            }
            Action::ReleaseAgent {
                reservation, how, ..
            } => {
                let Some((agent, attempt)) = self.reservations.remove(&reservation) else {
                    return;
                };
                if let AgentState::Talking { since } = self.agents[agent] {
                    self.totals.talk_sec += secs(self.now - since);
                }
                match how {
                    AgentRelease::Finished { .. } => {
                        let wrap = self.finished_wrap.remove(&attempt).unwrap_or(0.0);
                        self.agents[agent] = AgentState::Wrapping { since: self.now };
                        self.schedule(wrap, Event::WrapDone { agent, attempt });
                    }
                    AgentRelease::Unused | AgentRelease::Missed => {
                        self.agents[agent] = AgentState::Free { since: self.now }
                    }
                }
            }
            Action::Bridge { attempt, agent, .. } => {
                let member_up = self.members.get(&attempt).is_some_and(|m| m.alive);
                let leg_up = self
                    .agent_legs
                    .get(&agent)
                    .is_some_and(|l| l.alive && l.answered);
                let ok = member_up && leg_up;
                if ok {
                    let now = self.now;
                    let m = self.members.get_mut(&attempt).expect("checked");
                    m.bridged_to = Some(agent);
                    m.bridged_at = Some(now);
                    let (talk, wrap) = (m.callee.talk, m.callee.wrap);
                    if let Some(t) = m.answered_at {
                        self.totals
                            .waits_ms
                            .push((now - t).num_milliseconds().max(0) as u64);
                    }
                    if let Some(l) = self.agent_legs.get_mut(&agent) {
                        l.bridged_to = Some(attempt);
                    }
                    self.finished_wrap.insert(attempt, wrap);
                    self.schedule(talk, Event::MemberHangsUp(attempt));
                }
                self.inputs.push_back(Input::Bridged { attempt, ok });
            }
            Action::Abandon { uuid, message, .. } => {
                if let Some(m) = self.members.get_mut(&uuid).filter(|m| m.alive) {
                    m.abandoning = true;
                    let play = if message.is_some() {
                        self.profile.abandon_message_sec
                    } else {
                        0.0
                    };
                    self.schedule(play, Event::MemberHangsUp(uuid));
                }
            }
            Action::Kill { uuid, cause, .. } => self.hang_up(uuid, &cause),
            Action::Complete { result, .. } => {
                let attempt = result.attempt_id;
                self.inputs.push_back(Input::Completed {
                    attempt,
                    outcome: Ok(CompleteOutcome::Applied(MemberFate::Ended {
                        cause: result.cause,
                        success: false,
                    })),
                });
            }
            Action::RecordCompliance { counts, .. } => self.compliance.add(counts),
            Action::CheckExhausted { campaign } => self.inputs.push_back(Input::QueueState {
                campaign,
                waiting: u64::from(u32::MAX),
            }),
            Action::CheckExists { attempt, .. } => {
                let exists = self.members.get(&attempt).is_some_and(|m| m.alive);
                self.inputs.push_back(Input::Exists {
                    attempt,
                    exists,
                    ended: None,
                });
            }
            Action::Locate { attempt } => self.inputs.push_back(Input::Located {
                attempt,
                switch: None,
                ended: None,
            }),
            Action::FindOrphans { campaign } => self.inputs.push_back(Input::Orphans {
                campaign,
                held: Ok(Vec::new()),
            }),
            Action::Forget { attempt } => {
                self.members.remove(&attempt);
                self.finished_wrap.remove(&attempt);
                self.agent_legs.retain(|_, l| l.alive);
            }
            // Nothing to simulate: leases, history, members given back (the list is endless), callflows.
            Action::Release { .. }
            | Action::Renew { .. }
            | Action::Recover { .. }
            | Action::History { .. }
            | Action::ResultFailed { .. }
            | Action::StartCallflow { .. }
            | Action::ForgetHangupRecord { .. }
            | Action::AgentOffered { .. }
            | Action::Offer { .. }
            | Action::StickyAgent { .. }
            | Action::StopMember { .. } => {}
            // No restart in a simulated shift: nothing to adopt.
            Action::AdoptAgents { attempts, .. } => self.inputs.push_back(Input::AgentsAdopted {
                attempts,
                reservations: Vec::new(),
            }),
            // The profiles' campaigns run without AMD (a profile's `machine_prob` is refused until the simulated
            // callees can play a machine to the detector).
            Action::StartAmd { .. }
            | Action::StartBeepDetection { .. }
            | Action::LeaveMessage { .. } => {}
        }
    }

    fn new_claim(&mut self) -> Claim {
        let member = self.next_member;
        self.next_member += 1;
        Claim {
            attempt_id: Uuid::from_u128(u128::from(self.seed) << 64 | u128::from(member)),
            member_id: MemberId(member),
            attempt_no: 1,
            comm_index: 0,
            number: format!("555{member:07}"),
            name: format!("Member {member}"),
            timezone: None,
            variables: Default::default(),
            priority: 0,
            lease_until: self.now + Duration::seconds(600),
        }
    }

    fn originate(&mut self, attempt: Uuid, job: Uuid) {
        let member = (attempt.as_u128() & u128::from(u64::MAX)) as u64;
        let callee = self.callee(member);
        self.totals.calls += 1;
        let hour = secs(self.now - self.start) / 3600.0;
        let (answer_prob, _) = self.profile.probs_at(hour);
        let ring = f64::from(self.profile.ring_timeout_sec);
        self.members.insert(
            attempt,
            MemberLeg {
                job,
                callee,
                answered_at: None,
                bridged_to: None,
                bridged_at: None,
                alive: true,
                abandoning: false,
            },
        );
        self.inputs.push_back(Input::ChannelSeen { uuid: attempt });
        if callee.answer_draw < answer_prob && callee.time_to_answer < ring {
            self.schedule(callee.time_to_answer, Event::MemberAnswers(attempt));
        } else {
            self.schedule(ring, Event::RingsOut(attempt));
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}
