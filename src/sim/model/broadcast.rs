//! `uuid_broadcast <uuid> <path> [aleg|bleg|holdb|both]`: applications queued on a live channel.
//!
//! As mod_commands' `uuid_broadcast_function` and `switch_ivr_broadcast` (src/switch_ivr_async.c) do it: `path` is
//! a file for `playback`, or `app::args` for any application, or `app!CAUSE::args` to hang the channel up with CAUSE
//! after it (`app!::args`: normal_clearing). The legs: none given = aleg (and hold the b-leg), `aleg`, `bleg` (the
//! `signal_bond` / `originate_signal_bond` partner only), `both`; `holdb` alone runs nothing. Each is an `execute`
//! command queued as a private event on the channel (`event-lock`, `lead-frames: 5`, `hold-bleg`), and the
//! hang-up (a-leg only) a second one after it. The channel runs them when it is free (a parked channel at once, inside its park; a channel running
//! an application when that one returns), each with its CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE and, once it
//! returns, the command fired back as PRIVATE_COMMAND (`switch_ivr_parse_next_event`). Replies: `+OK Message sent`,
//! `-ERR invalid uuid`, `-USAGE: <uuid> <path> [aleg|bleg|holdb|both]`.

use super::channel::QueuedApp;
use super::{Activity, Switch, Timer};

const BROADCAST_USAGE: &str = "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n";

/// The legs a broadcast runs on (`SMF_ECHO_ALEG`, `SMF_ECHO_BLEG`, `SMF_HOLD_BLEG`).
#[derive(Debug, Clone, Copy, Default)]
struct Legs {
    aleg: bool,
    bleg: bool,
    hold_bleg: bool,
}

impl Legs {
    fn parse(word: Option<&str>) -> Legs {
        let Some(w) = word.map(str::to_ascii_lowercase) else {
            return Legs {
                aleg: true,
                bleg: false,
                hold_bleg: true,
            };
        };
        let mut l = Legs::default();
        if w.contains("both") {
            l.aleg = true;
            l.bleg = true;
        }
        if w.contains("aleg") {
            l.aleg = true;
        }
        if w.contains("bleg") {
            l.hold_bleg = false;
            l.bleg = true;
        }
        if w.contains("holdb") {
            l.bleg = false;
            l.hold_bleg = true;
        }
        l
    }
}

/// `app::args` / `app!cause::args` / a bare path, split as `switch_ivr_broadcast` does.
fn split_path(path: &str) -> (String, String, Option<String>) {
    let (app, arg) = match path.find(':') {
        Some(p) if path[p + 1..].starts_with(':') => (&path[..p], &path[p + 2..]),
        _ => ("playback", path),
    };
    match app.split_once('!') {
        Some((a, "")) => (a.into(), arg.into(), Some("normal_clearing".into())),
        Some((a, c)) => (a.into(), arg.into(), Some(c.into())),
        None => (app.into(), arg.into(), None),
    }
}

fn command(app: &str, arg: &str, legs: Legs, lead_frames: bool) -> Vec<(String, String)> {
    let mut h = vec![
        ("call-command".to_string(), "execute".to_string()),
        ("execute-app-name".into(), app.into()),
        ("execute-app-arg".into(), arg.into()),
        ("event-lock".into(), "true".into()),
    ];
    if lead_frames {
        h.push(("lead-frames".into(), "5".into()));
        if legs.hold_bleg {
            h.push(("hold-bleg".into(), "true".into()));
        }
    }
    h
}

impl Switch {
    /// The `uuid_broadcast` api: its reply text.
    pub(super) fn uuid_broadcast_api(&mut self, args: &[&str]) -> String {
        let (Some(uuid), Some(path)) = (args.first().copied(), args.get(1).copied()) else {
            return BROADCAST_USAGE.into();
        };
        if !self.channels.contains_key(uuid) {
            return "-ERR invalid uuid\n".into();
        }
        let legs = Legs::parse(args.get(2).copied());
        let (app, arg, cause) = split_path(path);
        if legs.bleg
            && let Some(partner) = self
                .channels
                .get(uuid)
                .and_then(|c| {
                    c.vars
                        .get("signal_bond")
                        .or(c.vars.get("originate_signal_bond"))
                })
                .map(str::to_string)
            && self.channels.contains_key(&partner)
        {
            self.enqueue(&partner, &app, &arg, command(&app, &arg, legs, true));
        }
        if legs.aleg {
            self.enqueue(uuid, &app, &arg, command(&app, &arg, legs, true));
        }
        if let Some(c) = cause {
            self.enqueue(uuid, "hangup", &c, command("hangup", &c, legs, false));
        }
        "+OK Message sent\n".into()
    }

    /// Queues a private `execute` on the channel; the session picks it up at once if it is free.
    fn enqueue(&mut self, uuid: &str, app: &str, arg: &str, command: Vec<(String, String)>) {
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.queued.push_back(QueuedApp {
                app: app.into(),
                arg: arg.into(),
                command,
            });
        }
        self.schedule(0, Timer::Drain { uuid: uuid.into() });
    }

    /// Runs the next queued application if the channel is free.
    pub(super) fn drain_queue(&mut self, uuid: &str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        if ch.hanging_up || ch.activity != Activity::Idle {
            return;
        }
        let Some(next) = ch.queued.pop_front() else {
            return;
        };
        ch.pending_private = Some(next.command);
        self.execute(uuid, &next.app, &next.arg, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_application_arguments_and_hangup_cause_as_switch_ivr_broadcast_does() {
        assert_eq!(
            split_path("playback!NORMAL_CLEARING::/p/abandon.wav"),
            (
                "playback".into(),
                "/p/abandon.wav".into(),
                Some("NORMAL_CLEARING".into())
            )
        );
        assert_eq!(
            split_path("playback!::/p/a.wav"),
            (
                "playback".into(),
                "/p/a.wav".into(),
                Some("normal_clearing".into())
            )
        );
        assert_eq!(
            split_path("silence_stream://500"),
            ("playback".into(), "silence_stream://500".into(), None)
        );
        assert_eq!(
            split_path("sleep::1000"),
            ("sleep".into(), "1000".into(), None)
        );
        assert_eq!(
            split_path("/p/x!y.wav"),
            ("playback".into(), "/p/x!y.wav".into(), None),
            "a bang without `::` is part of the file name"
        );
    }

    #[test]
    fn legs_follow_mod_commands_flags() {
        let l = Legs::parse(None);
        assert!(l.aleg && !l.bleg && l.hold_bleg);
        let l = Legs::parse(Some("aleg"));
        assert!(l.aleg && !l.bleg && !l.hold_bleg);
        let l = Legs::parse(Some("bleg"));
        assert!(!l.aleg && l.bleg);
        let l = Legs::parse(Some("both"));
        assert!(l.aleg && l.bleg);
        let l = Legs::parse(Some("holdb"));
        assert!(!l.aleg && !l.bleg && l.hold_bleg);
    }
}
