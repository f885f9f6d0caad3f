//! The dialplan: what `transfer` does, and the files `playback` finds.
//!
//! A transfer (`switch_ivr_session_transfer`) gives the channel a new caller profile (the destination is the
//! extension, `Caller-RDNIS` the old one, `Caller-Transfer-Source`, logical direction inbound, the profile index one
//! more), leaves the application the channel was in (park: CHANNEL_UNPARK and park's EXECUTE_COMPLETE) and routes
//! it again: in CS_ROUTING the scenario's dialplan is searched; a match goes to CS_EXECUTE and runs the extension's
//! actions one after another (hanging up NORMAL_CLEARING when they run out, unless one parks or bridges), no match
//! hangs up NO_ROUTE_DESTINATION (capture `transfer_nowhere`). Which files exist is the scenario's sounds list,
//! relative paths being under the switch's `sound_prefix` (capture `playback_missing`).

use std::collections::VecDeque;

use super::channel::TransferProfile;
use super::{Activity, Switch, new_uuid};

impl Switch {
    /// `transfer <extension> [XML [<context>]]` on a live channel; `app_uuid` is the transfer's Application-UUID.
    pub(super) fn transfer(&mut self, uuid: &str, arg: &str, app_uuid: &str) {
        let mut words = arg.split_whitespace();
        let extension = words.next().unwrap_or("").to_string();
        let _dialplan = words.next();
        let context = words.next().map(str::to_string);
        self.begin_app(uuid, "transfer", arg, app_uuid, false);
        let now = self.now;
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        let context = context.unwrap_or_else(|| ch.profile.context.clone());
        let source = format!(
            "{}:{}:bl_xfer:{extension}/{context}/XML",
            now / 1_000_000,
            new_uuid()
        );
        let p = &mut ch.profile;
        let rdnis = std::mem::replace(&mut p.dest, extension.clone());
        p.transfer = Some(TransferProfile {
            rdnis,
            source: source.clone(),
            logical_inbound: true,
        });
        p.dialplan = "XML".into();
        p.context = context.clone();
        p.index = p.index.max(1) + 1;
        p.created_us = now;
        ch.dialplan = None;
        ch.vars.add("max_forwards", "70");
        ch.vars.add("transfer_history", &source);
        ch.vars.add("transfer_source", &source);
        self.finish_app(uuid, "");
        self.leave_park(uuid);
        self.set_state(uuid, "CS_ROUTING", 2);
        let actions = self
            .scenario
            .extension(&extension, &context)
            .map(|e| e.actions.clone());
        match actions {
            None => {
                tracing::debug!(%extension, %context, "sim: transfer finds no extension");
                self.hangup(uuid, "NO_ROUTE_DESTINATION");
            }
            Some(actions) => {
                if let Some(ch) = self.channels.get_mut(uuid) {
                    ch.dialplan = Some(VecDeque::from(actions));
                }
                self.set_state(uuid, "CS_EXECUTE", 4);
                self.dialplan_next(uuid);
            }
        }
    }

    /// Runs the next action of the extension the channel is in, once the channel is free (not parked, no
    /// application running); with none left, the channel hangs up NORMAL_CLEARING as FreeSWITCH's execute state
    /// does when the extension ends.
    pub(super) fn dialplan_next(&mut self, uuid: &str) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        if ch.hanging_up || ch.park.is_some() || ch.activity != Activity::Idle {
            return;
        }
        let Some(queue) = ch.dialplan.as_mut() else {
            return;
        };
        match queue.pop_front() {
            Some(action) => self.execute(uuid, &action.app, &action.data, None),
            None => {
                ch.dialplan = None;
                self.hangup(uuid, "NORMAL_CLEARING");
            }
        }
    }

    /// The switch's `sound_prefix` global variable.
    pub(super) fn sound_prefix(&self) -> &str {
        self.vars_global.get("sound_prefix").unwrap_or("")
    }

    /// The file `playback <arg>` opens (`Playback-File-Path`): a relative path is under `sound_prefix`.
    pub(super) fn playback_path(&self, arg: &str) -> String {
        if arg.contains("://") || arg.starts_with('/') {
            return arg.to_string();
        }
        format!("{}/{arg}", self.sound_prefix().trim_end_matches('/'))
    }

    /// Whether `playback <arg>` finds its file.
    pub(super) fn playback_finds(&self, arg: &str) -> bool {
        self.scenario
            .file_exists(&self.playback_path(arg), self.sound_prefix())
    }
}
