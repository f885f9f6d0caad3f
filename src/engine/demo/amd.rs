//! `fsdialer demo --amd`: the sample campaign with answering-machine detection on, and the outcome table's AMD
//! lines.
//!
//! The campaign gets an `amd` section (mod_amd's defaults; a machine gets the voicemail drop
//! [`DEMO_MACHINE_MESSAGE`] after its beep); the in-process switch runs `fixtures/sim/demo-amd.toml`, where the
//! demo's `silent_*` callees are answering machines and the detector errs as a real one does (a confusion matrix).
//! The report splits the answered attempts by AMD result (`HUMAN`, `MACHINE`, `NOTSURE`, and those hung up before
//! a decision) and counts the messages left, read from the attempts' notes.

use std::fmt::Write as _;

use crate::campaign::amd::{AmdSettings, MachineAction};
use crate::campaign::config::CampaignConfig;
use crate::store::{MemberId, Store, StoreResult};

/// The voicemail message of the demo (a prompt of `fixtures/sim/demo-amd.toml`).
pub const DEMO_MACHINE_MESSAGE: &str = "ivr/ivr-payment_reminder_voicemail.wav";
/// The scenario of the in-process switch for `--amd`, under the crate root.
pub const DEMO_AMD_SCENARIO: &str = "fixtures/sim/demo-amd.toml";

/// The demo campaign with AMD on and the voicemail drop.
pub fn amd_campaign(mut config: CampaignConfig) -> CampaignConfig {
    config.amd = Some(AmdSettings {
        machine: MachineAction::LeaveMessage,
        machine_message: Some(DEMO_MACHINE_MESSAGE.into()),
        ..AmdSettings::default()
    });
    config
}

/// Answered attempts by AMD result, and the messages left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmdReport {
    pub human: u64,
    pub machine: u64,
    pub notsure: u64,
    /// Hung up (or never decided) before the detector reported.
    pub undecided: u64,
    pub messages_left: u64,
}

impl AmdReport {
    /// Counts the campaign's attempts from their notes.
    pub async fn read(store: &Store, campaign: &str, members: usize) -> StoreResult<AmdReport> {
        let mut r = AmdReport::default();
        for id in 1..=members as u64 {
            for a in store.attempts(campaign, MemberId(id)).await? {
                let Some(amd) = a
                    .note
                    .as_deref()
                    .and_then(|n| serde_json::from_str::<serde_json::Value>(n).ok())
                    .and_then(|v| v.get("amd").cloned())
                else {
                    continue;
                };
                match amd["result"].as_str() {
                    Some("HUMAN") => r.human += 1,
                    Some("MACHINE") => r.machine += 1,
                    Some("NOTSURE") => r.notsure += 1,
                    _ => r.undecided += 1,
                }
                r.messages_left += u64::from(amd["message_left"] == true);
            }
        }
        Ok(r)
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "answers by AMD result");
        let _ = writeln!(s, "  HUMAN            {:>8}", self.human);
        let _ = writeln!(s, "  MACHINE          {:>8}", self.machine);
        let _ = writeln!(s, "  NOTSURE          {:>8}", self.notsure);
        let _ = writeln!(s, "  before decision  {:>8}", self.undecided);
        let _ = writeln!(s, "messages left      {:>8}", self.messages_left);
        s
    }
}
