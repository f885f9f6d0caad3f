//! Do-not-call lists enforced at claim time (issue 21): a claimed member whose chosen number is on the global
//! list or its campaign's (after the campaign's E.164 normalisation) is not called.
//!
//! Where: right after the store's claim and before the engine sees the claims, in the store layer shared by both
//! backends ([`Store::screen_dnc`], called by the engine's claim task). That is the cheapest correct place: the
//! check needs only the claimed number, one pipelined round trip per list and claim, done concurrently for a
//! batch; it runs before any switch session, gateway slot or caller ID is taken, so a hit costs nothing else; and
//! as it reads the lists at every claim, a number added while a member is due is honoured at its next claim. Doing
//! it inside the claim script would put the normalisation rule and both lists in Lua, a second copy of the rule.
//!
//! A hit completes the attempt through the normal completion path ([`Store::complete_many`]) with cause
//! [`DNC`], class error: `store::outcome` decides what that does (the number is done, no try counted, no call
//! counted; the member ends with `DNC` when no number is left). A number the rule cannot normalise cannot be on a
//! list (entries are normalised on the way in) and is kept. A failing check fails the claim (the caller's
//! claim-failure path releases what the claim took, uncounted): a number that could not be checked is never called.

use super::{AttemptResult, ClaimBatch, DNC, MemberFate, Store, StoreResult};
use crate::campaign::causes::CauseClass;
use crate::campaign::schedule::Schedule;
use crate::dnc::{DncHit, E164Rule};
use crate::store::{CompleteOutcome, QueuePolicy};
use chrono::{DateTime, Utc};

impl Store {
    /// Takes out of `batch` every claim whose number is on a do-not-call list for `campaign`, completing its
    /// attempt with cause `DNC` (see the module doc); the members that ends join `batch.ended`.
    pub async fn screen_dnc(
        &self,
        campaign: &str,
        policy: &QueuePolicy,
        schedule: &dyn Schedule,
        rule: &E164Rule,
        mut batch: ClaimBatch,
        now: DateTime<Utc>,
    ) -> StoreResult<ClaimBatch> {
        let checks = batch.claims.iter().map(|claim| async move {
            match rule.normalize(&claim.number) {
                Ok(number) => self.dnc_check(campaign, &number).await,
                Err(_) => Ok(Vec::new()),
            }
        });
        let hits: Vec<Vec<DncHit>> = futures::future::try_join_all(checks).await?;
        let mut results = Vec::new();
        let mut kept = Vec::with_capacity(batch.claims.len());
        for (claim, hits) in batch.claims.into_iter().zip(hits) {
            if hits.is_empty() {
                kept.push(claim);
                continue;
            }
            tracing::info!(
                campaign,
                member = claim.member_id.0,
                number = claim.number,
                lists = ?hits.iter().map(|h| h.list.as_str()).collect::<Vec<_>>(),
                "number on a do-not-call list: not called"
            );
            results.push(AttemptResult {
                attempt_id: claim.attempt_id,
                member_id: claim.member_id,
                cause: DNC.to_owned(),
                class: CauseClass::Error,
                answered_at: None,
                hangup_at: None,
                talk_secs: 0,
                note: serde_json::to_string(&serde_json::json!({ "dnc": hits })).ok(),
            });
        }
        batch.claims = kept;
        if results.is_empty() {
            return Ok(batch);
        }
        let outcomes = self
            .complete_many(campaign, policy, schedule, &results, now)
            .await?;
        for (result, outcome) in results.iter().zip(outcomes) {
            if let CompleteOutcome::Applied(MemberFate::Ended { cause, .. }) = outcome {
                batch.ended.push((result.member_id, cause));
            }
        }
        Ok(batch)
    }
}
