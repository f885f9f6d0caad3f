//! What the engine asks a FreeSWITCH node when it connects: its session limits, and whether a campaign's prompts
//! are on it.
//!
//! Limits: `fsctl max_sessions` and `fsctl sps` with no argument only read (mod_commands answers
//! `+OK max sessions: 1000` / `+OK sessions per second: 30`); the engine uses them when the config sets none.
//! Prompts: FreeSWITCH plays a relative path from `sound_prefix` and answers a missing file `FILE NOT FOUND`,
//! failing every answered call's callflow; `file_exists` stats a path as given, so relative paths are asked under
//! the switch's `global_getvar sound_prefix`.

use crate::esl::client::{Client, ClientError};

/// A switch's own session limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchLimits {
    pub max_sessions: u32,
    pub sessions_per_second: u32,
}

/// A question to the switch got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum SwitchInfoError {
    #[error(transparent)]
    Esl(#[from] ClientError),
    #[error("unexpected answer to `{command}`: {reply:?}")]
    Reply { command: String, reply: String },
}

/// The number in an `fsctl` answer `+OK <what>: <n>`.
fn fsctl_value(reply: &str, what: &str) -> Option<u32> {
    reply
        .trim_end()
        .strip_prefix("+OK ")?
        .strip_prefix(what)?
        .strip_prefix(": ")?
        .parse()
        .ok()
}

async fn fsctl(client: &Client, sub: &str, what: &str) -> Result<u32, SwitchInfoError> {
    let command = format!("fsctl {sub}");
    let reply = client.api_text(&command).await?;
    fsctl_value(&reply, what).ok_or(SwitchInfoError::Reply { command, reply })
}

/// Reads the switch's `max-sessions` and `sessions-per-second`.
pub async fn read_limits(client: &Client) -> Result<SwitchLimits, SwitchInfoError> {
    Ok(SwitchLimits {
        max_sessions: fsctl(client, "max_sessions", "max sessions").await?,
        sessions_per_second: fsctl(client, "sps", "sessions per second").await?,
    })
}

/// The path `file_exists` must be asked for a prompt as a callflow names it.
fn on_switch(file: &str, sound_prefix: &str) -> String {
    if file.starts_with('/') {
        file.to_string()
    } else {
        format!("{}/{file}", sound_prefix.trim_end_matches('/'))
    }
}

/// The prompts (as the callflow names them, e.g. from `Callflow::prompt_files`) the switch does not have. The
/// caller logs them (the engine's shell names the campaign).
pub async fn missing_prompts(
    client: &Client,
    files: &[String],
) -> Result<Vec<String>, SwitchInfoError> {
    let prefix = client.api_text("global_getvar sound_prefix").await?;
    let prefix = prefix.trim_end();
    let mut missing = Vec::new();
    for file in files {
        let command = format!("file_exists {}", on_switch(file, prefix));
        match client.api_text(&command).await?.trim_end() {
            "true" => {}
            "false" => missing.push(file.clone()),
            other => {
                return Err(SwitchInfoError::Reply {
                    command,
                    reply: other.into(),
                });
            }
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsctl_answers_parse_and_other_text_does_not() {
        assert_eq!(
            fsctl_value("+OK max sessions: 1000\n", "max sessions"),
            Some(1000)
        );
        assert_eq!(
            fsctl_value("+OK sessions per second: 30\n", "sessions per second"),
            Some(30)
        );
        assert_eq!(
            fsctl_value("+OK sessions per second: 30\n", "max sessions"),
            None
        );
        assert_eq!(fsctl_value("-ERR Invalid command\n", "max sessions"), None);
    }

    #[test]
    fn relative_prompts_are_asked_under_sound_prefix() {
        assert_eq!(on_switch("ivr/a.wav", "/snd/"), "/snd/ivr/a.wav");
        assert_eq!(on_switch("/abs/a.wav", "/snd"), "/abs/a.wav");
    }
}
