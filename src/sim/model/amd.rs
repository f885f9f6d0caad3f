//! mod_amd and mod_avmd on simulated channels, as the real modules behave (team's `design/amd.md`):
//!
//! - `amd <key=value …>`: the scenario's detector ([`crate::sim::scenario::Detector`]) judges the callee (a person
//!   or a machine, per rule) within the `total_analysis_time` argument. The **blocking** variant runs as an
//!   application until its decision, sets `amd_result` / `amd_cause`, then completes (CHANNEL_EXECUTE_COMPLETE
//!   carries them as `variable_*`). The **non-blocking** variant completes at once; at its decision it sets the
//!   variables and `amd_result_epoch`, fires `CUSTOM amd::info` as a clone — `Event-Subclass` and the channel's
//!   data, **no** `Event-Name`, `Core-UUID` or `Event-Date-*` — and runs `amd_on_human` / `amd_on_machine` /
//!   `amd_on_notsure` (`app::arg` or `app arg`). A channel that hangs up first gets no event, and
//!   `amd_result=CANCEL`.
//! - `avmd_start` / `avmd_stop`: `CUSTOM avmd::start` / `avmd::stop` (`Beep-Status`); a machine's beep
//!   (`greeting_ms` after its answer) heard while avmd runs sets `avmd_detect=TRUE`, fires `avmd::beep`
//!   (`Beep-Status: DETECTED`, `Frequency`, `Amplitude`…, only `Unique-ID` of the channel, no channel data) and
//!   runs `execute_on_avmd_beep`. A beep that came before `avmd_start` is never heard.

use super::{Switch, Timer};
use crate::sim::scenario::{AmdVariant, Callee};

const AVMD_FIRE: (&str, &str, u32) = ("mod_avmd.c", "avmd_fire_event", 1145);

/// mod_amd's `total_analysis_time` default.
const DEFAULT_TOTAL_ANALYSIS_MS: u64 = 5000;

/// The `total_analysis_time` of an `amd` argument (`key=value` separated by spaces, or by the character after a
/// leading `^^`); mod_amd ignores a value that is not a positive integer.
fn total_analysis_ms(arg: &str) -> u64 {
    let (delim, rest) = match arg.strip_prefix("^^") {
        Some(r) if !r.is_empty() => (r.chars().next().unwrap_or(' '), &r[1..]),
        _ => (' ', arg),
    };
    rest.split(delim)
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("total_analysis_time"))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .rfind(|v| *v > 0)
        .unwrap_or(DEFAULT_TOTAL_ANALYSIS_MS)
}

impl Switch {
    /// The `amd` application.
    pub(super) fn amd_start(&mut self, uuid: &str, arg: &str, app_uuid: &str) {
        let Some(callee) = self.channels.get(uuid).map(|c| c.callee) else {
            return;
        };
        let verdict = self.scenario.amd_verdict(callee, total_analysis_ms(arg));
        let after = verdict.after_ms;
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.amd_verdict = Some(verdict);
        }
        self.begin_app(uuid, "amd", arg, app_uuid, false);
        match self.scenario.amd_variant() {
            AmdVariant::ModAmd => self.schedule(
                after,
                Timer::AppDone {
                    uuid: uuid.into(),
                    app_uuid: app_uuid.into(),
                },
            ),
            AmdVariant::ModAmdNonblocking => {
                self.finish_app(uuid, "");
                self.schedule(after, Timer::AmdDecision { uuid: uuid.into() });
            }
        }
    }

    /// Sets `amd_result` / `amd_cause` from the channel's pending verdict; returns the result.
    fn amd_set_result(&mut self, uuid: &str) -> Option<&'static str> {
        let ch = self.channels.get_mut(uuid)?;
        let v = ch.amd_verdict.take()?;
        ch.vars.add("amd_result", v.result);
        ch.vars.add("amd_cause", v.cause);
        Some(v.result)
    }

    /// The blocking `amd` decided: the variables, then its completion.
    pub(super) fn amd_blocking_done(&mut self, uuid: &str) {
        self.amd_set_result(uuid);
        self.finish_app(uuid, "");
    }

    /// The non-blocking `amd` decided.
    pub(super) fn amd_decision(&mut self, uuid: &str) {
        if self.channels.get(uuid).is_none_or(|c| c.hanging_up) {
            return;
        }
        let Some(result) = self.amd_set_result(uuid) else {
            return;
        };
        let epoch = (self.now / 1_000_000).to_string();
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.vars.add("amd_result_epoch", &epoch);
        }
        self.fire_clone("amd::info", uuid);
        let on = match result {
            "HUMAN" => "amd_on_human",
            "MACHINE" => "amd_on_machine",
            _ => "amd_on_notsure",
        };
        self.execute_on(uuid, on);
    }

    /// A CUSTOM event created as a clone (`SWITCH_EVENT_CLONE`): no prepared headers, the subclass, then the
    /// channel's data.
    fn fire_clone(&mut self, subclass: &str, uuid: &str) {
        self.next_seq();
        if !self.wants("CUSTOM") {
            return;
        }
        let Some(ch) = self.channels.get(uuid) else {
            return;
        };
        let mut h = vec![("Event-Subclass".to_string(), subclass.to_string())];
        ch.push_data(&mut h, "CUSTOM", false);
        self.events.push(crate::esl::Event::from_pairs(h, None));
    }

    /// `switch_channel_execute_on`: runs the application a variable names (`app::arg` or `app arg`).
    fn execute_on(&mut self, uuid: &str, variable: &str) {
        let Some(value) = self
            .channels
            .get(uuid)
            .and_then(|c| c.vars.get(variable))
            .map(str::to_owned)
        else {
            return;
        };
        let (app, arg) = value
            .split_once("::")
            .or_else(|| value.split_once(' '))
            .unwrap_or((value.as_str(), ""));
        self.execute(uuid, app, arg, None);
    }

    /// The channel hangs up: its media bugs close. The non-blocking amd still deciding sets `amd_result=CANCEL`
    /// (and `amd_cause=CANCEL`) and fires nothing; avmd stops listening.
    pub(super) fn amd_close(&mut self, uuid: &str) {
        let nonblocking = self.scenario.amd_variant() == AmdVariant::ModAmdNonblocking;
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        ch.avmd = false;
        if ch.amd_verdict.take().is_some() && nonblocking {
            ch.vars.add("amd_result", "CANCEL");
            ch.vars.add("amd_cause", "CANCEL");
        }
    }

    /// `avmd_start`.
    pub(super) fn avmd_start(&mut self, uuid: &str, app_uuid: &str) {
        self.begin_app(uuid, "avmd_start", "", app_uuid, false);
        let now = self.now;
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        ch.avmd = true;
        let beep_in_ms = match ch.callee.callee {
            Callee::Machine { greeting_ms } if ch.answered_us > 0 => {
                let at = ch.answered_us + greeting_ms * 1000;
                (at >= now).then(|| (at - now) / 1000)
            }
            _ => None,
        };
        self.avmd_event(uuid, "avmd::start", &[]);
        self.finish_app(uuid, "");
        if let Some(ms) = beep_in_ms {
            self.schedule(ms, Timer::Beep { uuid: uuid.into() });
        }
    }

    /// `avmd_stop`.
    pub(super) fn avmd_stop(&mut self, uuid: &str, app_uuid: &str) {
        self.begin_app(uuid, "avmd_stop", "", app_uuid, false);
        let detected = self
            .channels
            .get(uuid)
            .and_then(|c| c.vars.get("avmd_detect"))
            .is_some();
        let was_on = self
            .channels
            .get_mut(uuid)
            .map(|c| std::mem::replace(&mut c.avmd, false))
            .unwrap_or(false);
        if was_on {
            let status = if detected { "DETECTED" } else { "NOTDETECTED" };
            self.avmd_event(uuid, "avmd::stop", &[("Beep-Status", status)]);
        }
        self.finish_app(uuid, "");
    }

    /// A machine's beep sounds: heard if avmd runs on the channel.
    pub(super) fn beep(&mut self, uuid: &str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        if !ch.avmd || ch.hanging_up {
            return;
        }
        ch.vars.add("avmd_detect", "TRUE");
        self.avmd_event(
            uuid,
            "avmd::beep",
            &[
                ("Beep-Status", "DETECTED"),
                ("Frequency", "1000.000000"),
                ("Frequency-variance", "0.000012"),
                ("Amplitude", "2840.125000"),
                ("Amplitude-variance", "0.031000"),
                ("Detection-time", "180000"),
            ],
        );
        self.execute_on(uuid, "execute_on_avmd_beep");
    }

    /// A mod_avmd event: prepared CUSTOM headers, the subclass, `Unique-ID`, `Call-command`, its own headers — no
    /// channel data.
    fn avmd_event(&mut self, uuid: &str, subclass: &str, extra: &[(&str, &str)]) {
        let seq = self.next_seq();
        let mut h: Vec<(&str, &str)> = vec![
            ("Event-Subclass", subclass),
            ("Unique-ID", uuid),
            ("Call-command", "avmd"),
        ];
        h.extend_from_slice(extra);
        self.fire_plain("CUSTOM", seq, AVMD_FIRE, &h, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analysis_time_is_read_as_mod_amd_reads_its_argument() {
        assert_eq!(total_analysis_ms(""), 5000);
        assert_eq!(
            total_analysis_ms("greeting=1500 total_analysis_time=3000"),
            3000
        );
        assert_eq!(total_analysis_ms("total_analysis_time=0"), 5000);
        assert_eq!(
            total_analysis_ms("^^,greeting=1,total_analysis_time=4000"),
            4000
        );
    }
}
