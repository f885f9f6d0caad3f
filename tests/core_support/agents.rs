//! The harness's agent side: the core's agent actions carried out against the real memory store's agents, and
//! agent legs played by the scripted switch.
//!
//! An agent's dial string names what its phone does: `loopback/agentans_D/default` answers after D s and stays up
//! until hung up (or until its bridged member hangs up), `loopback/agentnoans/default` rings until the originate's
//! timeout (NO_ANSWER), `loopback/agentreject/default` refuses at once (CALL_REJECTED). A bridged pair hangs up
//! together, as FreeSWITCH does after `uuid_bridge`. The abandon message plays 3 s, then the member hangs up.

use super::*;
use fsdialer::agents::{Agent, AgentStatus, ReserveRequest, TeamMembership, TeamRules};
use fsdialer::engine::core::AgentReservation;
use fsdialer::engine::shell::{release_of, team_rules};

/// How long the abandon message plays in the harness.
pub const ABANDON_MESSAGE_SECS: i64 = 3;

/// An agent of team `team` whose phone behaves as `phone` (see the module doc), ready.
pub async fn add_agent(
    store: &Store,
    id: &str,
    team: &str,
    phone: &str,
    lines: u32,
    now: DateTime<Utc>,
) {
    let agent = Agent {
        id: id.into(),
        name: format!("Agent {id}"),
        dial_string: format!("loopback/{phone}/default"),
        teams: vec![TeamMembership {
            team: team.into(),
            level: 1,
        }],
        lines,
        version: 0,
    };
    store.put_agent(&agent, None, now).await.unwrap();
    store
        .set_agent_status(id, AgentStatus::Ready, now)
        .await
        .unwrap();
}

impl Harness {
    /// Carries out one agent action; returns the core's answer, if any.
    pub async fn agent_action(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::ReserveAgent {
                campaign,
                attempt,
                member,
                settings,
                exclude,
            } => {
                let prefer = self
                    .store
                    .sticky_agent(&campaign, member, self.now)
                    .await
                    .unwrap()
                    .filter(|a| !exclude.contains(a));
                let req = ReserveRequest {
                    rules: team_rules(&settings),
                    campaign,
                    member,
                    attempt,
                    node: "test-node".into(),
                    lease: std::time::Duration::from_secs(60),
                    prefer,
                    exclude,
                };
                let r = self.store.reserve_agent(&req, self.now).await.unwrap();
                self.reservations += usize::from(r.is_some());
                Some(Input::AgentReserved {
                    attempt,
                    reservation: r.map(|r| AgentReservation {
                        id: r.id,
                        agent: r.agent,
                        dial_string: r.dial_string,
                    }),
                })
            }
            Action::AgentOffered { reservation, leg } => {
                self.store
                    .agent_offering(reservation, leg, self.now)
                    .await
                    .unwrap();
                None
            }
            Action::AdoptAgents { attempts, .. } => {
                let reservations = self
                    .store
                    .adopt_agent_reservations(
                        "test-node",
                        &attempts,
                        self.now,
                        std::time::Duration::from_secs(60),
                    )
                    .await
                    .unwrap();
                Some(Input::AgentsAdopted {
                    attempts,
                    reservations,
                })
            }
            Action::AgentTalking { reservation, .. } => {
                let siblings = self
                    .store
                    .agent_talking(reservation, self.now)
                    .await
                    .unwrap()
                    .unwrap_or_default();
                Some(Input::AgentSiblings {
                    reservations: siblings.into_iter().map(|r| r.id).collect(),
                })
            }
            Action::ReleaseAgent {
                reservation,
                how,
                settings,
                ..
            } => {
                let rules = settings
                    .as_ref()
                    .map(team_rules)
                    .unwrap_or_else(|| TeamRules::new(""));
                let release = release_of(how);
                self.agent_releases.push(how);
                self.store
                    .release_agent(reservation, release, &rules, self.now)
                    .await
                    .unwrap();
                None
            }
            Action::OriginateAgent {
                leg,
                job,
                originate,
                ..
            } => {
                let phone = originate
                    .args
                    .split("}loopback/")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .unwrap()
                    .to_owned();
                let timeout: i64 = originate
                    .args
                    .split("originate_timeout=")
                    .nth(1)
                    .and_then(|rest| rest.split([',', '}']).next())
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(30);
                self.agent_legs_dialled.push((leg, phone.clone()));
                self.script_agent(leg, job, &phone, timeout);
                None
            }
            Action::Offer { agent_leg, .. } => {
                self.offers.push(agent_leg);
                None
            }
            Action::Bridge { attempt, agent, .. } => {
                let ok = !self.gone.contains(&attempt) && !self.gone.contains(&agent);
                if ok {
                    self.bridged.insert(attempt, agent);
                    self.bridged.insert(agent, attempt);
                }
                Some(Input::Bridged { attempt, ok })
            }
            Action::Abandon { uuid, message, .. } => {
                self.abandons.push((uuid, message.clone()));
                let secs = if message.is_some() {
                    ABANDON_MESSAGE_SECS
                } else {
                    0
                };
                self.hang_up_at(uuid, "NORMAL_CLEARING", self.now + Duration::seconds(secs));
                None
            }
            Action::StickyAgent {
                campaign,
                member,
                agent,
                until,
            } => {
                self.store
                    .set_sticky_agent(&campaign, member, &agent, until, self.now)
                    .await
                    .unwrap();
                None
            }
            Action::StopMember { campaign, member } => {
                self.store.terminate(&campaign, member).await.unwrap();
                None
            }
            other => panic!("not an agent action: {other:?}"),
        }
    }

    /// What an agent's phone does (see the module doc).
    fn script_agent(&mut self, leg: Uuid, job: Uuid, phone: &str, timeout: i64) {
        let at = |s: i64| self.now + Duration::seconds(s);
        let mut ev: Vec<(DateTime<Utc>, Input)> = Vec::new();
        if let Some(d) = phone.strip_prefix("agentans_") {
            let d: i64 = d.parse().unwrap();
            ev.push((at(0), Input::ChannelSeen { uuid: leg }));
            ev.push((at(d), Input::Answered { uuid: leg }));
            ev.push((
                at(d),
                Input::JobResult {
                    job,
                    body: format!("+OK {leg}"),
                },
            ));
        } else if phone == "agentnoans" {
            ev.push((at(0), Input::ChannelSeen { uuid: leg }));
            ev.push((
                at(timeout),
                Input::JobResult {
                    job,
                    body: "-ERR NO_ANSWER".into(),
                },
            ));
            ev.push((
                at(timeout),
                Input::Hangup {
                    uuid: leg,
                    cause: "NO_ANSWER".into(),
                    answered: false,
                    billsec: 0,
                    talk_ms: 0,
                },
            ));
        } else if phone == "agentreject" {
            ev.push((
                at(1),
                Input::JobResult {
                    job,
                    body: "-ERR CALL_REJECTED".into(),
                },
            ));
        } else {
            panic!("unscripted agent phone {phone}");
        }
        self.pending.extend(ev);
        self.pending.sort_by_key(|(t, _)| *t);
    }

    /// The channel hangs up at `at` (instead of whatever it was going to do).
    pub fn hang_up_at(&mut self, uuid: Uuid, cause: &str, at: DateTime<Utc>) {
        self.pending.retain(|(_, i)| !concerns(i, uuid));
        let answered = self.answered.contains(&uuid);
        let billsec = self
            .answered_at
            .get(&uuid)
            .map_or(0, |t| (at - *t).num_seconds().max(0) as u32);
        self.pending.push((
            at,
            Input::Hangup {
                uuid,
                cause: cause.into(),
                answered,
                billsec,
                talk_ms: u64::from(billsec) * 1000,
            },
        ));
        self.pending.sort_by_key(|(t, _)| *t);
    }

    /// Bookkeeping of the scripted switch as an input is delivered: answered and gone channels, and the
    /// hangup of a bridged pair's other leg.
    pub fn switch_sees(&mut self, input: &Input) {
        match input {
            Input::Answered { uuid } => {
                self.answered.insert(*uuid);
                self.answered_at.entry(*uuid).or_insert(self.now);
            }
            Input::Hangup { uuid, .. } => {
                if self.gone.insert(*uuid)
                    && let Some(other) = self.bridged.get(uuid).copied()
                    && !self.gone.contains(&other)
                {
                    self.hang_up_at(other, "NORMAL_CLEARING", self.now);
                }
            }
            _ => {}
        }
    }
}

/// Whether a scripted input is about this channel (its events; a job's answer stays).
fn concerns(input: &Input, uuid: Uuid) -> bool {
    match input {
        Input::ChannelSeen { uuid: u }
        | Input::Answered { uuid: u }
        | Input::NeverRouted { uuid: u }
        | Input::Hangup { uuid: u, .. } => *u == uuid,
        _ => false,
    }
}
