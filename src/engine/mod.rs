//! The dialing engine: claim → originate → track → classify → reschedule.
//!
//! - [`callflow`]: running a campaign's callflow on an answered call, injection-safe.
//! - [`originate`]: the originate command for one attempt, with escaping member data cannot break.
//! - [`state`]: campaign states and their history.
//! - [`pacing`]: local token buckets.
//! - [`pacing_sim`]: `fsdialer pacing-sim`, whole shifts of a predictive campaign on virtual time in the core.
//! - [`core`]: the pure engine state machine (inputs and time in, actions out).
//! - [`shell`]: the async shell wiring the core to the store and the ESL clients.
//! - [`clock`]: real or sped-up time.
//! - [`demo`]: `fsdialer demo`, the embedded default end to end.
//! - [`subscription`]: the events and ESL filters a node subscribes with on a shared switch.
//! - [`attempt_log`]: per-attempt lines at debug, a periodic per-campaign summary at info.

pub mod attempt_log;
pub mod callflow;
pub mod clock;
mod completer;
pub mod core;
pub mod demo;
pub mod hangup_record;
pub mod originate;
pub mod pacing;
pub mod pacing_sim;
pub mod shell;
pub mod state;
pub mod subscription;
pub mod switch_info;

/// The callflow runner the engine uses for answered calls: [`callflow::run`] with the member's name, number and
/// variables; the flow's `result {success}` decides the attempt's class.
pub fn default_callflow() -> Option<shell::CallflowStarter> {
    callflow_in_folders(callflow::MediaFolders::default())
}

/// [`default_callflow`] with its files confined to `folders` (`[engine] sounds_dir`, `recordings_dir`).
pub fn callflow_in_folders(folders: callflow::MediaFolders) -> Option<shell::CallflowStarter> {
    let config = std::sync::Arc::new(callflow::RunnerConfig {
        folders,
        ..callflow::RunnerConfig::default()
    });
    let starter: shell::CallflowStarter = std::sync::Arc::new(move |job: shell::CallflowJob| {
        let config = config.clone();
        Box::pin(async move {
            let Some(flow) = job.campaign.callflow() else {
                return shell::CallflowReport::default();
            };
            let ctx = callflow::CallContext::new(job.claim.name.clone(), job.claim.number.clone())
                .with_variables(job.claim.variables.clone());
            let mut events = job.events;
            let outcome =
                callflow::run_with(&config, &job.client, job.uuid, flow, &ctx, &mut events).await;
            tracing::debug!(attempt = %job.uuid, ended = ?outcome.ended, result = ?outcome.result, "callflow ended");
            shell::CallflowReport {
                result: outcome.result,
                error: outcome.error.as_ref().map(|e| format!("{e:?}")),
                note: serde_json::to_string(&outcome).ok(),
            }
        })
    });
    Some(starter)
}
