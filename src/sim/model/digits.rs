//! `play_and_get_digits` as `switch_play_and_get_digits` runs it (capture `dtmf_pagd`).
//!
//! Each try plays the prompt (PLAYBACK_START/STOP) and waits `timeout` ms for the digits; a digit during the prompt
//! stops it. The callee presses its scripted digits once per try, `digits_after_ms` after answering or, without
//! it, as soon as the prompt has played. A valid entry (at least `min` digits up to a terminator or `max`, matching
//! the regex) ends the application at once; none, or a bad one, plays the invalid prompt and tries again, `tries`
//! times in all. Each try sets `read_result` as `switch_ivr_read` does (`success` when digits were read, even ones
//! the regex then refuses; `timeout`; `failure` when too few) and the variable (digits the regex refuses go to
//! `<var>_invalid` instead); the Application-Response stays `_none_`. DTMF events of a loopback leg carry no
//! variables and `DTMF-Source: UNKNOWN`.

use super::{Switch, Timer};
use crate::sim::originate::atoi;
use crate::sim::scenario::Outcome;

/// The arguments: `min max tries timeout terminators file invalid_file var regex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitsArgs {
    pub min: usize,
    pub max: usize,
    pub tries: u32,
    pub timeout_ms: u64,
    pub terminators: String,
    pub file: String,
    pub invalid_file: Option<String>,
    pub var: Option<String>,
    pub regex: Option<String>,
}

impl DigitsArgs {
    pub fn parse(arg: &str) -> DigitsArgs {
        let p: Vec<&str> = arg.split_whitespace().collect();
        let num = |i: usize, default: i64| p.get(i).map_or(default, |v| atoi(v)).max(0);
        let text = |i: usize| p.get(i).map(|s| s.to_string()).filter(|s| !s.is_empty());
        let min = num(0, 0) as usize;
        DigitsArgs {
            min,
            max: (num(1, 128) as usize).max(min).max(1),
            tries: num(2, 1).max(1) as u32,
            timeout_ms: num(3, 5000) as u64,
            terminators: text(4).unwrap_or_default(),
            file: text(5).unwrap_or_default(),
            invalid_file: text(6),
            var: text(7),
            regex: text(8),
        }
    }

    /// The digits an entry yields (up to a terminator or `max`), and whether they are a valid entry.
    fn read(&self, pressed: &str) -> (String, bool) {
        let got: String = pressed
            .chars()
            .take_while(|c| !self.terminators.contains(*c))
            .take(self.max)
            .collect();
        let matches = match &self.regex {
            Some(r) => regex::Regex::new(r).is_ok_and(|re| re.is_match(&got)),
            None => true,
        };
        let valid = !got.is_empty() && got.len() >= self.min && matches;
        (got, valid)
    }
}

/// Where a running `play_and_get_digits` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigitsPhase {
    /// The prompt plays (started at `since`).
    Prompt { since: u64 },
    /// The prompt has played; waiting for digits until the timeout.
    Waiting,
    /// The invalid prompt plays.
    Invalid,
}

/// A running `play_and_get_digits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitsRead {
    pub args: DigitsArgs,
    pub app_uuid: String,
    pub tries_left: u32,
    pub phase: DigitsPhase,
    /// When the callee presses, this try (`None`: not at all).
    pub press_at: Option<u64>,
}

impl Switch {
    pub(super) fn start_digits(&mut self, uuid: &str, arg: &str, app_uuid: &str) {
        let args = DigitsArgs::parse(arg);
        self.begin_app(uuid, "play_and_get_digits", arg, app_uuid, false);
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        ch.digits = Some(DigitsRead {
            tries_left: args.tries,
            args,
            app_uuid: app_uuid.into(),
            phase: DigitsPhase::Waiting,
            press_at: None,
        });
        self.digits_prompt(uuid);
    }

    fn digits_schedule(&mut self, uuid: &str, at: u64) {
        let Some(app_uuid) = self
            .channels
            .get(uuid)
            .and_then(|c| c.digits.as_ref())
            .map(|d| d.app_uuid.clone())
        else {
            return;
        };
        // Timers count whole ms: round up so the timer is not before `at`.
        self.schedule(
            at.saturating_sub(self.now).div_ceil(1000),
            Timer::AppDone {
                uuid: uuid.into(),
                app_uuid,
            },
        );
    }

    /// When the callee presses its digits in a try starting now.
    fn press_time(&self, uuid: &str, prompt_end: u64) -> Option<u64> {
        let ch = self.channels.get(uuid)?;
        let call = self.calls.get(&ch.call)?;
        let Outcome::Answer {
            digits,
            digits_after_ms,
            ..
        } = &call.outcome
        else {
            return None;
        };
        if digits.is_empty() {
            return None;
        }
        Some(match digits_after_ms {
            Some(ms) => (ch.answered_us + ms * 1000).max(self.now),
            None => prompt_end,
        })
    }

    fn digits_prompt(&mut self, uuid: &str) {
        let file = match self.channels.get(uuid).and_then(|c| c.digits.as_ref()) {
            Some(d) => d.args.file.clone(),
            None => return,
        };
        let now = self.now;
        let prompt_end = now + self.playback_ms(&file) * 1000;
        let press_at = self.press_time(uuid, prompt_end);
        self.playback_start(uuid, &file);
        if let Some(d) = self.channels.get_mut(uuid).and_then(|c| c.digits.as_mut()) {
            d.phase = DigitsPhase::Prompt { since: now };
            d.press_at = press_at;
        }
        let next = press_at.map_or(prompt_end, |p| p.min(prompt_end));
        self.digits_schedule(uuid, next);
    }

    /// The timer of a running `play_and_get_digits` fired.
    pub(super) fn digits_step(&mut self, uuid: &str) {
        let Some(d) = self.channels.get(uuid).and_then(|c| c.digits.clone()) else {
            return;
        };
        let now = self.now;
        let pressing = d.press_at.is_some_and(|p| p <= now);
        match d.phase {
            DigitsPhase::Prompt { since } => {
                self.playback_stop(uuid, &d.args.file, (now - since) / 1000);
                if pressing {
                    self.digits_pressed(uuid);
                    return;
                }
                let timeout = now + d.args.timeout_ms * 1000;
                if let Some(dd) = self.channels.get_mut(uuid).and_then(|c| c.digits.as_mut()) {
                    dd.phase = DigitsPhase::Waiting;
                }
                let next = d.press_at.map_or(timeout, |p| p.min(timeout));
                self.digits_schedule(uuid, next);
            }
            DigitsPhase::Waiting if pressing => self.digits_pressed(uuid),
            DigitsPhase::Waiting => {
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.vars.add("read_result", "timeout");
                }
                self.digits_invalid(uuid);
            }
            DigitsPhase::Invalid => {
                if let Some(file) = &d.args.invalid_file {
                    let ms = self.playback_ms(file);
                    self.playback_stop(uuid, file, ms);
                }
                self.digits_next_try(uuid);
            }
        }
    }

    fn digits_pressed(&mut self, uuid: &str) {
        let Some(d) = self.channels.get(uuid).and_then(|c| c.digits.clone()) else {
            return;
        };
        let pressed = match self
            .channels
            .get(uuid)
            .and_then(|c| self.calls.get(&c.call))
        {
            Some(call) => match &call.outcome {
                Outcome::Answer { digits, .. } => digits.clone(),
                _ => String::new(),
            },
            None => String::new(),
        };
        let (got, valid) = d.args.read(&pressed);
        // Each digit read, up to the one that ends the entry (a terminator or the max-th digit).
        let read = pressed.chars().count().min(got.chars().count() + 1);
        for digit in pressed.chars().take(read) {
            self.fire(
                "DTMF",
                uuid,
                ("switch_channel.c", "switch_channel_dequeue_dtmf", 687),
                &[],
                &[
                    ("DTMF-Digit", &digit.to_string()),
                    ("DTMF-Duration", "2000"),
                    ("DTMF-Source", "UNKNOWN"),
                ],
            );
        }
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        let enough = !got.is_empty() && got.len() >= d.args.min;
        ch.vars
            .add("read_result", if enough { "success" } else { "failure" });
        if valid {
            if let Some(var) = &d.args.var {
                ch.vars.add(var, &got);
            }
            ch.digits = None;
            self.finish_app(uuid, "");
            return;
        }
        if let Some(var) = &d.args.var {
            ch.vars.remove(var);
            if enough {
                ch.vars.add(&format!("{var}_invalid"), &got);
            }
        }
        self.digits_invalid(uuid);
    }

    /// A try failed: the invalid prompt, then the next try.
    fn digits_invalid(&mut self, uuid: &str) {
        let Some(d) = self.channels.get_mut(uuid).and_then(|c| c.digits.as_mut()) else {
            return;
        };
        d.phase = DigitsPhase::Invalid;
        let Some(file) = d.args.invalid_file.clone() else {
            self.digits_next_try(uuid);
            return;
        };
        let end = self.now + self.playback_ms(&file) * 1000;
        self.playback_start(uuid, &file);
        self.digits_schedule(uuid, end);
    }

    fn digits_next_try(&mut self, uuid: &str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        let Some(d) = ch.digits.as_mut() else {
            return;
        };
        d.tries_left = d.tries_left.saturating_sub(1);
        if d.tries_left > 0 {
            self.digits_prompt(uuid);
            return;
        }
        ch.digits = None;
        self.finish_app(uuid, "");
    }

    /// A hang-up ends a running `play_and_get_digits`.
    pub(super) fn digits_abandon(&mut self, uuid: &str) {
        if let Some(ch) = self.channels.get_mut(uuid) {
            ch.digits = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_and_entries_as_freeswitch_reads_them() {
        let a = DigitsArgs::parse("1 1 2 5000 # prompt.wav invalid.wav digits ^[0-9]$");
        assert_eq!((a.min, a.max, a.tries, a.timeout_ms), (1, 1, 2, 5000));
        assert_eq!(a.invalid_file.as_deref(), Some("invalid.wav"));
        assert_eq!(a.read("1"), ("1".into(), true));
        assert_eq!(a.read("12"), ("1".into(), true), "max 1");
        assert_eq!(a.read("#"), (String::new(), false));
        let menu = DigitsArgs::parse("1 3 3 4000 # m.wav i.wav choice ^[12]$");
        assert_eq!(menu.read("7#"), ("7".into(), false), "not a menu choice");
        assert_eq!(menu.read("2#"), ("2".into(), true));
    }
}
