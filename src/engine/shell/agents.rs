//! The shell's side of agent calls: the core's agent actions carried out against the store (reservations,
//! states, releases) and the switch (the agent's leg, the offer event, `uuid_bridge`, the abandon message), and
//! the agent loop: this node's inbox (preview decisions, result callbacks posted through the API on any node),
//! the renewal of its reservations' leases and the recovery of reservations whose node died.
//!
//! The shell keeps one map, reservation → attempt, for the inbox and the renewals; it is cleaned on every
//! release and bounded by the calls in flight.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::runner::Runner;
use super::{Msg, Shared, lock};
use crate::agents::{AgentMessage, Release, ReserveRequest, TeamRules};
use crate::campaign::agents::AgentSettings;
use crate::engine::clock::Clock;
use crate::engine::core::{Action, AgentOutcome, AgentRelease, AgentReservation, Input};
use crate::esl::client::SendMsg;
use crate::store::{AttemptId, Store};

/// How often the inbox is read (engine time).
const INBOX_POLL: Duration = Duration::from_millis(200);
/// The shortest real period of the agent loop's timers.
const MIN_PERIOD: Duration = Duration::from_millis(5);
/// Most inbox messages taken at once.
const INBOX_BATCH: usize = 256;

/// The team rules a campaign's agent section gives the store.
pub fn team_rules(s: &AgentSettings) -> TeamRules {
    TeamRules {
        team: s.team.clone(),
        strategy: s.strategy,
        wrap_up: Duration::from_secs(s.wrap_up_sec),
        max_no_answer: s.max_no_answer,
        no_answer_delay: Duration::from_secs(s.no_answer_delay_sec),
    }
}

/// The store's release for the core's.
pub fn release_of(how: AgentRelease) -> Release {
    match how {
        AgentRelease::Unused => Release::Unused,
        AgentRelease::Missed => Release::Missed,
        AgentRelease::Finished { talk_ms } => Release::Finished {
            talk: Duration::from_millis(talk_ms),
        },
    }
}

/// Most `name=value` pairs FreeSWITCH's `event` application reads (`switch_separate_string` into 25 slots).
const EVENT_APP_PAIRS: usize = 25;

/// A value for the `event` application's argument: `,` separates pairs there and quotes and backslashes are read
/// by its splitter, so those (and `%`, control characters) are percent-encoded; the rest goes as is.
fn event_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | '%' | '\'' | '"' | '\\') || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The argument of the `event` application that shows a previewed member on the agent's channel: a CUSTOM
/// `dlr::offer` event with the channel's own data (its `Unique-ID`, `variable_dlr_node`…) and the member's
/// campaign, attempt, id, name and number, then as many of its variables (`dlr_v_<name>`, names of letters,
/// digits and `_` only) as fit FreeSWITCH's 25 pairs. Values are percent-encoded where `event_value` says.
pub fn offer_event_arg(
    campaign: &str,
    attempt: AttemptId,
    member: crate::store::MemberId,
    name: &str,
    number: &str,
    variables: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut pairs: Vec<String> = vec![
        "Event-Name=CUSTOM".into(),
        "Event-Subclass=dlr::offer".into(),
        format!("dlr_campaign={}", event_value(campaign)),
        format!("dlr_attempt={attempt}"),
        format!("dlr_member={member}"),
        format!("dlr_member_name={}", event_value(name)),
        format!("dlr_member_number={}", event_value(number)),
    ];
    for (k, v) in variables {
        if pairs.len() >= EVENT_APP_PAIRS {
            break;
        }
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        pairs.push(format!("dlr_v_{k}={}", event_value(&text)));
    }
    pairs.join(",")
}

impl Runner {
    /// Carries out one of the core's agent actions.
    pub(super) fn execute_agent(&mut self, action: Action) {
        let tx = self.tx.clone();
        let store = self.store.clone();
        let clock = self.clock;
        let lease = self.core.config().lease;
        let node = self.core.config().node.clone();
        let shared = self.shared.clone();
        match action {
            Action::ReserveAgent {
                campaign,
                attempt,
                member,
                settings,
                exclude,
            } => {
                tokio::spawn(async move {
                    // A callback goes to the agent that asked for it first (unless it already missed this member).
                    let prefer = match store.sticky_agent(&campaign, member, clock.now()).await {
                        Ok(p) => p.filter(|a| !exclude.contains(a)),
                        Err(e) => {
                            tracing::warn!(campaign, %member, error = %e, "sticky agent not read");
                            None
                        }
                    };
                    let request = ReserveRequest {
                        rules: team_rules(&settings),
                        campaign: campaign.clone(),
                        member,
                        attempt,
                        node,
                        lease,
                        prefer,
                        exclude,
                    };
                    let reservation = match store.reserve_agent(&request, clock.now()).await {
                        Ok(Some(r)) => {
                            lock(&shared.reservations).insert(r.id, attempt);
                            Some(AgentReservation {
                                id: r.id,
                                agent: r.agent,
                                dial_string: r.dial_string,
                            })
                        }
                        Ok(None) => None,
                        Err(e) => {
                            tracing::warn!(campaign, %attempt, error = %e, "agent reservation failed");
                            None
                        }
                    };
                    let _ = tx
                        .send(Msg::Input(Input::AgentReserved {
                            attempt,
                            reservation,
                        }))
                        .await;
                });
            }
            Action::AgentOffered { reservation, leg } => {
                tokio::spawn(async move {
                    if let Err(e) = store.agent_offering(reservation, leg, clock.now()).await {
                        tracing::warn!(%reservation, error = %e, "agent state (offering) not recorded");
                    }
                });
            }
            Action::AdoptAgents { campaign, attempts } => {
                tokio::spawn(async move {
                    let reservations = match store
                        .adopt_agent_reservations(&node, &attempts, clock.now(), lease)
                        .await
                    {
                        Ok(list) => {
                            let mut map = lock(&shared.reservations);
                            for r in &list {
                                map.insert(r.reservation.id, r.attempt);
                            }
                            list
                        }
                        Err(e) => {
                            // The calls are still followed; their agents are freed by lease expiry.
                            tracing::warn!(campaign, error = %e, "reservations of adopted calls not taken over");
                            Vec::new()
                        }
                    };
                    let _ = tx
                        .send(Msg::Input(Input::AgentsAdopted {
                            attempts,
                            reservations,
                        }))
                        .await;
                });
            }
            Action::AgentTalking {
                attempt,
                reservation,
            } => {
                tokio::spawn(async move {
                    match store.agent_talking(reservation, clock.now()).await {
                        Ok(None) => {
                            tracing::warn!(%attempt, %reservation, "the store no longer holds this reservation (lease expired?)")
                        }
                        Ok(Some(siblings)) => {
                            if !siblings.is_empty() {
                                let ids: Vec<Uuid> = siblings.iter().map(|r| r.id).collect();
                                {
                                    let mut map = lock(&shared.reservations);
                                    for id in &ids {
                                        map.remove(id);
                                    }
                                }
                                let _ = tx
                                    .send(Msg::Input(Input::AgentSiblings { reservations: ids }))
                                    .await;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(%attempt, %reservation, error = %e, "agent state (talking) not recorded")
                        }
                    }
                });
            }
            Action::ReleaseAgent {
                reservation,
                agent,
                how,
                settings,
            } => {
                lock(&shared.reservations).remove(&reservation);
                let rules = settings
                    .as_ref()
                    .map(team_rules)
                    .unwrap_or_else(|| TeamRules::new(""));
                tokio::spawn(async move {
                    if let Err(e) = store
                        .release_agent(reservation, release_of(how), &rules, clock.now())
                        .await
                    {
                        tracing::warn!(agent, %reservation, error = %e, "agent release failed; its lease will expire");
                    }
                });
            }
            Action::OriginateAgent {
                switch,
                attempt,
                leg,
                job,
                originate,
            } => {
                let client = self.client(switch);
                metrics::counter!("fsdialer_agent_originates_total").increment(1);
                tokio::spawn(async move {
                    let body = match client {
                        None => "-ERR switch not connected".to_string(),
                        Some(client) => {
                            let command = format!("originate {}", originate.args);
                            match client.bgapi_with_uuid(&command, job).await {
                                Ok(bg) => match bg.result().await {
                                    Ok(result) => result.text().into_owned(),
                                    Err(e) => format!("-ERR {e}"),
                                },
                                Err(e) => format!("-ERR {e}"),
                            }
                        }
                    };
                    tracing::debug!(%attempt, %leg, reply = body.trim_end(), "agent leg originate");
                    let _ = tx.send(Msg::Input(Input::JobResult { job, body })).await;
                });
            }
            Action::Offer {
                switch,
                agent_leg,
                attempt,
                campaign,
                member,
                name,
                number,
                variables,
            } => {
                let Some(client) = self.client(switch) else {
                    return;
                };
                let arg = offer_event_arg(&campaign, attempt, member, &name, &number, &variables);
                tokio::spawn(async move {
                    let msg = SendMsg::execute("event", &arg);
                    if let Err(e) = client.sendmsg(&agent_leg.to_string(), &msg).await {
                        tracing::warn!(%attempt, error = %e, "offer event not sent");
                    }
                });
            }
            Action::Bridge {
                switch,
                attempt,
                agent,
            } => {
                let client = self.client(switch);
                tokio::spawn(async move {
                    let ok = match client {
                        Some(c) => {
                            match c.api_text(&format!("uuid_bridge {attempt} {agent}")).await {
                                Ok(reply) => {
                                    let ok = reply.trim_start().starts_with("+OK");
                                    if !ok {
                                        tracing::info!(%attempt, reply = reply.trim_end(), "uuid_bridge refused");
                                    }
                                    ok
                                }
                                Err(e) => {
                                    tracing::warn!(%attempt, error = %e, "uuid_bridge failed");
                                    false
                                }
                            }
                        }
                        None => false,
                    };
                    let _ = tx.send(Msg::Input(Input::Bridged { attempt, ok })).await;
                });
            }
            Action::Abandon {
                switch,
                uuid,
                message,
            } => {
                let Some(client) = self.client(switch) else {
                    return;
                };
                tokio::spawn(async move {
                    match message {
                        Some(path) => {
                            super::amd::play_then_hang_up(&client, uuid, &path, "abandon message")
                                .await
                        }
                        None => {
                            let _ = client
                                .api(&format!("uuid_kill {uuid} NORMAL_CLEARING"))
                                .await;
                        }
                    }
                });
            }
            Action::StickyAgent {
                campaign,
                member,
                agent,
                until,
            } => {
                tokio::spawn(async move {
                    if let Err(e) = store
                        .set_sticky_agent(&campaign, member, &agent, until, clock.now())
                        .await
                    {
                        tracing::warn!(campaign, %member, agent, error = %e, "sticky agent not recorded");
                    }
                });
            }
            Action::StopMember { campaign, member } => {
                tokio::spawn(async move {
                    if let Err(e) = store.terminate(&campaign, member).await {
                        tracing::warn!(campaign, %member, error = %e, "member not stopped as the agent asked");
                    }
                });
            }
            _ => {}
        }
    }
}

/// The agent loop of this node: inbox, lease renewal, recovery of dead nodes' reservations. Periods follow the
/// engine's clock (a sped-up simulation polls its inbox and renews its leases as often in simulated time as a real
/// deployment does), within [`MIN_PERIOD`] of real time.
pub(super) async fn agent_loop(
    store: Store,
    node: String,
    clock: Clock,
    lease: Duration,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
) {
    let every = |d: Duration| {
        let mut i = tokio::time::interval(clock.to_real(d).max(MIN_PERIOD));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    };
    let mut inbox = every(INBOX_POLL);
    let mut renew = every(lease / 4);
    let mut recover = every(lease / 2);
    loop {
        tokio::select! {
            _ = inbox.tick() => {
                match store.take_agent_messages(&node, INBOX_BATCH).await {
                    Ok(messages) => {
                        for m in messages {
                            if let Some(input) = inbox_input(&shared, m)
                                && tx.send(Msg::Input(input)).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "agent inbox not read"),
                }
            }
            _ = renew.tick() => {
                let ids: Vec<Uuid> = lock(&shared.reservations).keys().copied().collect();
                if ids.is_empty() {
                    continue;
                }
                match store.renew_agent_reservations(&node, &ids, clock.now(), lease).await {
                    Ok(lost) if !lost.is_empty() => tracing::warn!(
                        reservations = lost.len(),
                        "agent reservations no longer held (their lease expired before renewal)"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "agent reservations not renewed"),
                }
            }
            _ = recover.tick() => {
                match store.recover_agent_reservations(clock.now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        reservations = n,
                        "agent reservations of vanished nodes released"
                    ),
                    Err(e) => tracing::warn!(error = %e, "agent reservations not recovered"),
                }
            }
        }
    }
}

/// What an inbox message means to the core (`None`: it names nothing this node tracks).
fn inbox_input(shared: &Shared, m: AgentMessage) -> Option<Input> {
    let attempt_of = |r: &Uuid| -> Option<AttemptId> { lock(&shared.reservations).get(r).copied() };
    match m {
        AgentMessage::Accept { reservation } => Some(Input::PreviewDecision {
            attempt: attempt_of(&reservation)?,
            accept: true,
        }),
        AgentMessage::Skip { reservation } => Some(Input::PreviewDecision {
            attempt: attempt_of(&reservation)?,
            accept: false,
        }),
        AgentMessage::Result {
            attempt, result, ..
        } => Some(Input::AgentResult {
            attempt,
            outcome: AgentOutcome {
                success: result.success,
                next_after_sec: result.next_after_sec,
                stop_communications: result.stop_communications,
                description: result.description,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_event_cannot_be_split_or_extended_by_member_data() {
        let mut vars = serde_json::Map::new();
        vars.insert("debt".into(), serde_json::json!(120.5));
        vars.insert("note".into(), serde_json::json!("a, b='c' 100%"));
        vars.insert("bad name".into(), serde_json::json!("x"));
        for i in 0..40 {
            vars.insert(format!("v{i:02}"), serde_json::json!(i));
        }
        let arg = offer_event_arg(
            "c1",
            Uuid::nil(),
            crate::store::MemberId(7),
            "Smith, John\nEvent-Name=HEARTBEAT",
            "+380 50,123",
            &vars,
        );
        let pairs: Vec<&str> = arg.split(',').collect();
        assert_eq!(pairs.len(), EVENT_APP_PAIRS, "{arg}");
        assert_eq!(pairs[0], "Event-Name=CUSTOM");
        assert_eq!(pairs[1], "Event-Subclass=dlr::offer");
        assert_eq!(
            pairs[5],
            "dlr_member_name=Smith%2C John%0AEvent-Name=HEARTBEAT"
        );
        assert_eq!(pairs[6], "dlr_member_number=+380 50%2C123");
        assert!(pairs.contains(&"dlr_v_debt=120.5"));
        assert!(pairs.contains(&"dlr_v_note=a%2C b=%27c%27 100%25"));
        assert!(!arg.contains("bad name"));
        assert_eq!(
            pairs
                .iter()
                .filter(|p| p.starts_with("Event-Name="))
                .count(),
            1
        );
    }
}
