//! The core's task: it waits for the next input or the core's next wake-up, feeds the core, and carries out each
//! action as a small task (store calls, ESL commands) whose answer comes back as an input on the same bounded
//! channel. Everything the shell keeps per call is dropped through the core's `Forget` action, on every path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use super::caller_ids::{record_caller_id_result, take_caller_id};
use super::tasks::{forget_hangup_record, hangup_record_on, take_over_live_calls, uuid_exists};
use super::*;
use crate::campaign::config::ValidCampaign;
use crate::engine::clock::Clock;
use crate::engine::completer::Completion;
use crate::engine::core::{Action, Core, Input, policy_of};
use crate::engine::switch_info::{self};
use crate::esl::client::{Client, ClientError};
use crate::store::{AttemptId, Store};

pub(super) struct Runner {
    /// Switch names, by index (for logs and the prompt check).
    pub(super) switch_names: Arc<Vec<String>>,
    pub(super) core: Core,
    pub(super) store: Store,
    pub(super) clock: Clock,
    pub(super) tx: mpsc::Sender<Msg>,
    pub(super) shared: Arc<Shared>,
    pub(super) campaigns: HashMap<String, Arc<ValidCampaign>>,
    pub(super) callflow: Option<CallflowStarter>,
    /// Results on their way to the store, batched by [`completer`].
    pub(super) completions: mpsc::UnboundedSender<Completion>,
    /// Waiting for the drain to end.
    pub(super) drained: Vec<oneshot::Sender<()>>,
    /// Campaign transitions on their way to the store, in order.
    pub(super) history: mpsc::Sender<super::tasks::HistoryJob>,
    /// Webhook events to queue (`crate::webhooks::resolve`).
    pub(super) webhooks: mpsc::Sender<crate::webhooks::resolve::Job>,
}

impl Runner {
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        loop {
            // Turn at least every second, so liveness sees a loop that is alive.
            let sleep = self
                .core
                .next_wakeup()
                .map(|w| self.clock.real_until(w))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            *lock(&self.shared.last_turn) = std::time::Instant::now();
            self.shared.calls.store(
                self.core.calls().len(),
                std::sync::atomic::Ordering::Relaxed,
            );
            if self.core.is_drained() {
                for done in self.drained.drain(..) {
                    let _ = done.send(());
                }
            }
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return };
                    if !self.on_msg(msg) {
                        return;
                    }
                    // Take whatever else is already queued before sleeping again.
                    for _ in 0..1024 {
                        match rx.try_recv() {
                            Ok(msg) => if !self.on_msg(msg) { return },
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep(sleep) => {
                    let actions = self.core.poll(self.clock.now());
                    self.execute(actions);
                }
            }
        }
    }

    fn on_msg(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Input(input) => {
                match &input {
                    Input::Upsert(v) => {
                        self.campaigns.insert(v.id().to_owned(), v.clone());
                    }
                    Input::Remove(id) => {
                        lock(&self.shared.failed).remove(id);
                        lock(&self.shared.missing_prompts).remove(id);
                    }
                    // A switch (re)connected: check the prompts of the campaigns running meanwhile.
                    Input::SwitchUp(i) => {
                        let running: Vec<String> = self
                            .core
                            .campaign_ids()
                            .filter(|id| {
                                self.core
                                    .state(id)
                                    .is_some_and(|s| s == CampaignState::Running)
                            })
                            .map(str::to_owned)
                            .collect();
                        for id in running {
                            self.check_prompts(&id, &[*i]);
                        }
                    }
                    _ => {}
                }
                let removed = match &input {
                    Input::Remove(id) => Some(id.clone()),
                    _ => None,
                };
                let actions = self.core.handle(self.clock.now(), input);
                self.execute(actions);
                if let Some(id) = removed
                    && self.core.campaign(&id).is_none()
                {
                    self.campaigns.remove(&id);
                }
                true
            }
            Msg::State(id, reply) => {
                let _ = reply.send(self.core.state(&id).map(|s| (s, self.core.active(&id))));
                true
            }
            Msg::Gateways(id, reply) => {
                let _ = reply.send(self.core.gateway_status(&id, self.clock.now()));
                true
            }
            Msg::AmdCounts(id, reply) => {
                let _ = reply.send(self.core.amd_counts(&id));
                true
            }
            Msg::WhenDrained(done) => {
                self.drained.push(done);
                true
            }
            Msg::Shutdown(done) => {
                let _ = done.send(());
                false
            }
        }
    }

    /// Checks the campaign's prompt files on these switches (those connected), in the background; the result
    /// replaces theirs in [`EngineHandle::missing_prompts`], and a missing file is logged as a warning.
    fn check_prompts(&self, campaign: &str, switches: &[usize]) {
        let Some(files) = self
            .campaigns
            .get(campaign)
            .and_then(|v| v.callflow())
            .map(|c| c.prompt_files())
            .filter(|f| !f.is_empty())
        else {
            lock(&self.shared.missing_prompts).remove(campaign);
            return;
        };
        let targets: Vec<(usize, Client)> = switches
            .iter()
            .filter_map(|&i| self.client(i).map(|c| (i, c)))
            .collect();
        let (shared, names, campaign) = (
            self.shared.clone(),
            self.switch_names.clone(),
            campaign.to_owned(),
        );
        tokio::spawn(async move {
            for (i, client) in targets {
                let switch = names.get(i).map(String::as_str).unwrap_or_default();
                let found = tokio::time::timeout(
                    PROMPT_CHECK_TIMEOUT,
                    switch_info::missing_prompts(&client, &files),
                )
                .await;
                let missing = match found {
                    Ok(Ok(missing)) => missing,
                    Ok(Err(e)) => {
                        tracing::warn!(campaign, switch, error = %e, "cannot check the campaign's prompt files");
                        continue;
                    }
                    Err(_) => {
                        tracing::warn!(campaign, switch, "the prompt check timed out");
                        continue;
                    }
                };
                if !missing.is_empty() {
                    tracing::warn!(
                        campaign,
                        switch,
                        ?missing,
                        "prompt files missing on the switch: every answered call's callflow fails on them (the campaign runs)"
                    );
                }
                lock(&shared.missing_prompts)
                    .entry(campaign.clone())
                    .or_default()
                    .insert(i, missing);
            }
        });
    }

    pub(super) fn client(&self, switch: usize) -> Option<Client> {
        lock(&self.shared.clients).get(switch).cloned().flatten()
    }

    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            self.execute_one(action);
        }
    }

    fn execute_one(&mut self, action: Action) {
        let tx = self.tx.clone();
        let store = self.store.clone();
        let clock = self.clock;
        let lease = self.core.config().lease;
        let node = self.core.config().node.clone();
        match action {
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
            | Action::StickyAgent { .. }) => self.execute_agent(agent),
            amd @ (Action::StartAmd { .. }
            | Action::StartBeepDetection { .. }
            | Action::LeaveMessage { .. }) => self.execute_amd(amd),
            Action::Claim { campaign, max } => {
                let Some(valid) = self.campaigns.get(&campaign).cloned() else {
                    return;
                };
                let policy = policy_of(&valid);
                tokio::spawn(async move {
                    let now = clock.now();
                    let mut max = max;
                    if let Some(rate) = valid.config().cps {
                        let key = crate::store::LimitKey::Campaign(campaign.clone());
                        match store.take_tokens(&key, rate, rate.max(1.0), max, now).await {
                            Ok(granted) => max = granted,
                            Err(e) => {
                                let _ = tx
                                    .send(Msg::Input(Input::ClaimFailed {
                                        campaign,
                                        error: e.to_string(),
                                    }))
                                    .await;
                                return;
                            }
                        }
                    }
                    let input = if max == 0 {
                        Input::Claimed {
                            campaign,
                            batch: Default::default(),
                        }
                    } else {
                        match store
                            .claim(
                                &campaign,
                                &policy,
                                valid.calendar(),
                                now,
                                max as usize,
                                &node,
                                lease,
                            )
                            .await
                        {
                            Ok(batch) => {
                                match screen(&store, &campaign, &valid, &policy, batch, now).await {
                                    Ok(batch) => Input::Claimed { campaign, batch },
                                    // Fail closed: the claim-failure path releases what the claim took.
                                    Err(e) => Input::ClaimFailed {
                                        campaign,
                                        error: format!("do-not-call / per-number check: {e}"),
                                    },
                                }
                            }
                            Err(e) => Input::ClaimFailed {
                                campaign,
                                error: e.to_string(),
                            },
                        }
                    };
                    let _ = tx.send(Msg::Input(input)).await;
                });
            }
            Action::Originate {
                campaign: _,
                switch,
                attempt,
                job,
                gateway,
                gateway_limit,
                caller_id,
                originate,
            } => {
                let client = self.client(switch);
                lock(&self.shared.gateway_of).insert(attempt, gateway.clone());
                metrics::counter!("fsdialer_originates_total").increment(1);
                tokio::spawn(async move {
                    if let Some(limit) = gateway_limit {
                        let now = clock.now();
                        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
                        match store
                            .acquire_gateway_slot(&gateway, limit, attempt, until, now)
                            .await
                        {
                            Ok(true) => {}
                            Ok(false) | Err(_) => {
                                let _ = tx.send(Msg::Input(Input::GatewayBusy { attempt })).await;
                                return;
                            }
                        }
                    }
                    let Some(client) = client else {
                        let _ = tx
                            .send(Msg::Input(Input::OriginateFailed {
                                attempt,
                                sent: false,
                                error: "switch not connected".into(),
                            }))
                            .await;
                        return;
                    };
                    // Counted last, so a call that cannot be sent does not use up the caller ID's cap.
                    if let Some(cid) = caller_id
                        && !take_caller_id(&store, &tx, cid, clock.now()).await
                    {
                        let _ = tx
                            .send(Msg::Input(Input::CallerIdRefused { attempt }))
                            .await;
                        return;
                    }
                    let command = format!("originate {}", originate.args);
                    let input = match client.bgapi_with_uuid(&command, job).await {
                        Ok(bg) => match bg.result().await {
                            Ok(result) => Input::JobResult {
                                job,
                                body: result.text().into_owned(),
                            },
                            Err(e) => Input::OriginateFailed {
                                attempt,
                                sent: true,
                                error: e.to_string(),
                            },
                        },
                        Err(e) => Input::OriginateFailed {
                            attempt,
                            sent: matches!(e, ClientError::ConnectionLost { .. }),
                            error: e.to_string(),
                        },
                    };
                    let _ = tx.send(Msg::Input(input)).await;
                });
            }
            Action::Release {
                campaign,
                attempt,
                member,
                not_before,
            } => {
                let gw = lock(&self.shared.gateway_of).remove(&attempt);
                tokio::spawn(async move {
                    if let Some(gw) = gw {
                        let _ = store.release_gateway_slot(&gw, attempt).await;
                    }
                    if let Err(e) = store
                        .release(&campaign, member, attempt, not_before, clock.now())
                        .await
                    {
                        tracing::warn!(campaign, %attempt, error = %e, "release failed; the lease will expire");
                    }
                });
            }
            Action::Complete {
                campaign: _,
                version: valid,
                gateway: _,
                caller_id,
                result,
            } => {
                if let Some(cid) = caller_id {
                    record_caller_id_result(&store, valid.id(), cid, result.answered_at.is_some());
                }
                let gateway = lock(&self.shared.gateway_of).remove(&result.attempt_id);
                metrics::counter!(
                    "fsdialer_hangups_total",
                    "cause" => result.cause.clone(),
                    "class" => result.class.as_str()
                )
                .increment(1);
                let _ = self.completions.send(Completion {
                    campaign: valid,
                    result,
                    gateway,
                });
            }
            Action::StartCallflow {
                campaign: _,
                version: valid,
                switch,
                attempt,
            } => {
                let (Some(client), Some(starter)) = (self.client(switch), self.callflow.clone())
                else {
                    let _ = tx.try_send(Msg::Input(Input::CallflowDone {
                        uuid: attempt,
                        result: None,
                        error: Some("no callflow runner or switch".into()),
                        note: None,
                    }));
                    return;
                };
                let Some(claim) = self.core.calls().get(&attempt).map(|c| c.claim.clone()) else {
                    return;
                };
                let (etx, erx) = mpsc::channel(1024);
                lock(&self.shared.flows).insert(attempt, etx);
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    let report = starter(CallflowJob {
                        client,
                        uuid: attempt,
                        campaign: valid,
                        claim,
                        events: erx,
                    })
                    .await;
                    lock(&shared.flows).remove(&attempt);
                    let _ = tx
                        .send(Msg::Input(Input::CallflowDone {
                            uuid: attempt,
                            result: report.result,
                            error: report.error,
                            note: report.note,
                        }))
                        .await;
                });
            }
            Action::Kill {
                switch,
                uuid,
                cause,
            } => {
                if let Some(client) = self.client(switch) {
                    tokio::spawn(async move {
                        let _ = client.api(&format!("uuid_kill {uuid} {cause}")).await;
                    });
                }
            }
            Action::ForgetHangupRecord { switch, attempt } => {
                if let Some(client) = self.client(switch) {
                    tokio::spawn(async move { forget_hangup_record(&client, attempt).await });
                }
            }
            Action::CheckExists { switch, attempt } => {
                let client = self.client(switch);
                tokio::spawn(async move {
                    let exists = match client {
                        Some(ref client) => uuid_exists(client, attempt).await,
                        None => None,
                    };
                    // A channel that is gone may have left its end on record.
                    let ended = match (exists, client.as_ref()) {
                        (Some(false), Some(c)) => hangup_record_on(c, attempt).await,
                        _ => Some(None),
                    };
                    let input = match (exists, ended) {
                        (Some(exists), Some(ended)) => Input::Exists {
                            attempt,
                            exists,
                            ended,
                        },
                        _ => Input::CheckFailed { attempt },
                    };
                    let _ = tx.send(Msg::Input(input)).await;
                });
            }
            Action::Locate { attempt } => {
                let clients: Vec<Option<Client>> = lock(&self.shared.clients).clone();
                tokio::spawn(async move {
                    // On no switch only when every switch answered "no"; a switch that cannot answer leaves the
                    // question open (the core asks again, then settles).
                    let mut every_switch_answered = true;
                    let mut found = None;
                    for (i, client) in clients.iter().enumerate() {
                        match client.as_ref() {
                            Some(c) => match uuid_exists(c, attempt).await {
                                Some(true) => {
                                    found = Some(i);
                                    break;
                                }
                                Some(false) => {}
                                None => every_switch_answered = false,
                            },
                            None => every_switch_answered = false,
                        }
                    }
                    // Gone from every switch: its end may be on record on one of them.
                    let mut ended = None;
                    if found.is_none() && every_switch_answered {
                        for (i, client) in clients.iter().enumerate() {
                            let Some(c) = client.as_ref() else { continue };
                            match hangup_record_on(c, attempt).await {
                                Some(Some(record)) => {
                                    found = Some(i);
                                    ended = Some(record);
                                    break;
                                }
                                Some(None) => {}
                                None => every_switch_answered = false,
                            }
                        }
                    }
                    let input = if found.is_some() || every_switch_answered {
                        Input::Located {
                            attempt,
                            switch: found,
                            ended,
                        }
                    } else {
                        Input::CheckFailed { attempt }
                    };
                    let _ = tx.send(Msg::Input(input)).await;
                });
            }
            Action::ResultFailed {
                campaign,
                result,
                reason,
            } => {
                metrics::counter!("fsdialer_results_failed_total").increment(1);
                let failed = FailedResult {
                    at: clock.now(),
                    attempt_id: result.attempt_id,
                    member_id: result.member_id,
                    cause: result.cause,
                    reason,
                };
                let mut map = lock(&self.shared.failed);
                let list = map.entry(campaign).or_default();
                if list.len() >= FAILED_RESULTS_KEEP {
                    list.pop_front();
                }
                list.push_back(failed);
            }
            Action::Forget { attempt } => {
                lock(&self.shared.flows).remove(&attempt);
                // A call dropped without a release or a completion (revoked, given up) still holds its slot.
                if let Some(gw) = lock(&self.shared.gateway_of).remove(&attempt) {
                    tokio::spawn(async move {
                        let _ = store.release_gateway_slot(&gw, attempt).await;
                    });
                }
            }
            Action::FindOrphans { campaign } => {
                tokio::spawn(async move {
                    let held = store
                        .held_claims(&campaign, &node, lease, clock.now())
                        .await
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Msg::Input(Input::Orphans { campaign, held })).await;
                });
            }
            Action::CheckExhausted { campaign } => {
                tokio::spawn(async move {
                    let waiting = match store.counts(&campaign).await {
                        Ok(c) => c.waiting + c.active,
                        Err(_) => 1,
                    };
                    let _ = tx
                        .send(Msg::Input(Input::QueueState { campaign, waiting }))
                        .await;
                });
            }
            Action::Renew { campaign, attempts } => {
                let gws: Vec<(AttemptId, String)> = {
                    let map = lock(&self.shared.gateway_of);
                    attempts
                        .iter()
                        .filter_map(|a| map.get(a).map(|g| (*a, g.clone())))
                        .collect()
                };
                tokio::spawn(async move {
                    let now = clock.now();
                    match store.renew(&campaign, &node, &attempts, now, lease).await {
                        Ok(revoked) if !revoked.is_empty() => {
                            // A call another node holds now was taken over live: never hang it up.
                            let mut hang_up = Vec::new();
                            let mut handed_over = Vec::new();
                            for a in revoked {
                                match store.attempt_holder(&campaign, a).await {
                                    Ok(Some(holder)) if holder != node => handed_over.push(a),
                                    _ => hang_up.push(a),
                                }
                            }
                            let _ = tx
                                .send(Msg::Input(Input::Revoked {
                                    hang_up,
                                    handed_over,
                                }))
                                .await;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(campaign, error = %e, "lease renewal failed"),
                    }
                    let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
                    for (a, g) in gws {
                        let _ = store.renew_gateway_slots(&g, &[a], until, now).await;
                    }
                });
            }
            Action::Recover { campaign } => {
                let Some(valid) = self.campaigns.get(&campaign).cloned() else {
                    return;
                };
                let clients: Vec<Client> = lock(&self.shared.clients)
                    .iter()
                    .flatten()
                    .cloned()
                    .collect();
                let webhooks = self.webhooks.clone();
                tokio::spawn(async move {
                    // Calls of vanished nodes that are still up are taken over, never hung up: this node
                    // follows them to their real end. Only the rest count as lost.
                    match take_over_live_calls(&store, &clients, &campaign, &node, lease, clock)
                        .await
                    {
                        Ok(claims) if !claims.is_empty() => {
                            let _ = tx
                                .send(Msg::Input(Input::Adopt {
                                    campaign: campaign.clone(),
                                    claims,
                                }))
                                .await;
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(campaign, error = %e, "taking over calls failed"),
                    }
                    let policy = policy_of(&valid);
                    let marked =
                        crate::webhooks::hooks::before_recovery(&store, &valid, clock.now()).await;
                    match store
                        .recover_expired(&campaign, &policy, valid.calendar(), clock.now(), 1000)
                        .await
                    {
                        Ok(rec) if !rec.is_empty() => {
                            if marked {
                                crate::webhooks::hooks::completed(
                                    &webhooks,
                                    &valid,
                                    rec.iter().map(|r| (r.attempt_id, r.member_id)).collect(),
                                );
                            }
                            tracing::info!(
                                campaign,
                                recovered = rec.len(),
                                "recovered attempts of vanished nodes (their calls are gone)"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(campaign, error = %e, "recovery failed"),
                    }
                });
            }
            Action::History {
                campaign,
                transition,
            } => {
                if transition.to == CampaignState::Running && transition.from != transition.to {
                    let all: Vec<usize> = (0..self.switch_names.len()).collect();
                    self.check_prompts(&campaign, &all);
                }
                let hooks = self
                    .campaigns
                    .get(&campaign)
                    .and_then(|valid| crate::webhooks::hooks::hooks_of(valid));
                let job = super::tasks::HistoryJob {
                    campaign,
                    transition,
                    hooks,
                };
                if let Err(e) = self.history.try_send(job) {
                    tracing::warn!(error = %e, "campaign history queue full: a transition is not recorded");
                }
            }
        }
    }
}

/// What a claim hands out after the do-not-call lists (`store::dnc_screen`) and the per-number rules
/// (`store::number_rules`) took out what may not be called now.
async fn screen(
    store: &crate::store::Store,
    campaign: &str,
    valid: &crate::campaign::config::ValidCampaign,
    policy: &crate::store::QueuePolicy,
    batch: crate::store::ClaimBatch,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::store::StoreResult<crate::store::ClaimBatch> {
    let rule = valid.e164();
    let batch = store
        .screen_dnc(campaign, policy, valid.calendar(), &rule, batch, now)
        .await?;
    store
        .screen_number_rules(campaign, valid.number_rules(), &rule, batch, now)
        .await
}
