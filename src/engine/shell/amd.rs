//! The shell's side of answering-machine detection: the core's AMD actions carried out on the switch — the `amd`
//! and `avmd_start` applications (`sendmsg … execute`, so they run inside the call's `park`) and the voicemail
//! drop (a message played, then the channel hung up), which shares [`play_then_hang_up`] with the abandon message.

use uuid::Uuid;

use super::runner::Runner;
use crate::engine::core::Action;
use crate::engine::subscription::{AMD_APP, AVMD_START_APP};
use crate::esl::client::{Client, SendMsg};

/// Plays `path` to the channel and hangs it up after it (`uuid_broadcast <uuid> playback!NORMAL_CLEARING::<path>
/// aleg`: FreeSWITCH's `app!cause::arg` form); hangs up at once when the switch refuses the broadcast. The path
/// passed the campaign's media-path rule, so it cannot name another application.
pub(super) async fn play_then_hang_up(client: &Client, uuid: Uuid, path: &str, what: &str) {
    let cmd = format!("uuid_broadcast {uuid} playback!NORMAL_CLEARING::{path} aleg");
    match client.api_text(&cmd).await {
        Ok(reply) if reply.trim_start().starts_with("+OK") => return,
        Ok(reply) => {
            tracing::warn!(%uuid, reply = reply.trim_end(), what, "message refused; hanging up")
        }
        Err(e) => tracing::warn!(%uuid, error = %e, what, "message failed; hanging up"),
    }
    let _ = client
        .api(&format!("uuid_kill {uuid} NORMAL_CLEARING"))
        .await;
}

impl Runner {
    pub(super) fn execute_amd(&mut self, action: Action) {
        match action {
            Action::StartAmd { switch, uuid, args } => {
                self.execute_app(switch, uuid, AMD_APP, args);
            }
            Action::StartBeepDetection { switch, uuid } => {
                self.execute_app(switch, uuid, AVMD_START_APP, String::new());
            }
            Action::LeaveMessage {
                switch,
                uuid,
                message,
            } => {
                let Some(client) = self.client(switch) else {
                    return;
                };
                tokio::spawn(async move {
                    play_then_hang_up(&client, uuid, &message, "voicemail drop").await;
                });
            }
            _ => {}
        }
    }

    /// `sendmsg <uuid>` execute `app arg`. A switch that refuses it leaves the core's deadline to act: an `amd` that
    /// never reports is NOTSURE after its analysis time; an `avmd_start` that never beeps gets the message after
    /// `machine_message_after_sec`.
    fn execute_app(&self, switch: usize, uuid: Uuid, app: &'static str, arg: String) {
        let Some(client) = self.client(switch) else {
            return;
        };
        tokio::spawn(async move {
            match client
                .sendmsg(&uuid.to_string(), &SendMsg::execute(app, &arg))
                .await
            {
                Ok(reply) if reply.is_ok() => {}
                Ok(reply) => {
                    tracing::warn!(%uuid, app, reply = %reply.text(), "the switch refused the application")
                }
                // The callee hung up first (a short answer): its hangup tells the core the rest.
                Err(e) if e.to_string().contains("invalid session id") => {
                    tracing::debug!(%uuid, app, error = %e, "channel gone before the application")
                }
                Err(e) => tracing::warn!(%uuid, app, error = %e, "cannot start the application"),
            }
        });
    }
}
