//! What the engine subscribes to on a switch it may share with other ESL clients and other traffic: the events it
//! needs, narrowed by ESL `filter`s to the channels this node placed.
//!
//! FreeSWITCH 1.10 (`event_handler` in mod_event_socket.c) passes a subscribed event when any filter matches (OR):
//! a filter names a header — any header, `variable_*` channel variables included — and a value compared
//! case-insensitively (`/regex/flags` when it starts with `/`); an event without the header matches none. So:
//!
//! - `variable_dlr_node <node>`: every event that carries channel variables (CREATE, ANSWER, BRIDGE, HANGUP,
//!   HANGUP_COMPLETE, EXECUTE_COMPLETE…) of a channel originated by [`crate::engine::originate::build_on_node`]
//!   on this node — both legs of a `loopback/` call, since the b-leg inherits the originate variables (real
//!   captures `fixtures/esl/realfs-2026-12/{vars,dtmf_pagd}`); a `bridge`d leg without the variable is not ours.
//! - `Event-Name <name>` for each subscribed event that carries no channel variables ([`CARRY_VARIABLES`]): today
//!   DTMF (capture `dtmf_pagd`: a callflow's digits can only pass by name; DTMF of other channels is rare and the
//!   engine routes by Unique-ID) and HEARTBEAT, the switch's sign of life and load (see
//!   `esl::client::SwitchHealth`), subscribed beside the engine's [`SUBSCRIBED_EVENTS`].
//! - `CUSTOM` with the subclasses of answering-machine detection ([`CUSTOM_SUBCLASSES`], subscribed last, since
//!   FreeSWITCH reads every name after `CUSTOM` as a subclass): the non-blocking mod_amd's `amd::info` carries
//!   the channel's data (it is cloned without `Event-Name`, but FreeSWITCH still dispatches it as CUSTOM and adds
//!   the variables of a CUSTOM event), so the node filter passes it; mod_avmd's `avmd::beep` carries only
//!   `Unique-ID` and its own headers, so it passes by `Event-Subclass` — for every channel of the switch; the engine
//!   routes it by Unique-ID and ignores the others'. The blocking `amd`'s result comes with its
//!   CHANNEL_EXECUTE_COMPLETE.
//! - BACKGROUND_JOB (originate results) needs no entry here: the ESL client keeps its own
//!   `filter Event-Name BACKGROUND_JOB` beside any filter, since `bgapi` depends on it.
//!
//! Another node's calls (when this node takes over its leases) pass with [`node_filter`] of that node, added with
//! `Client::filter` and removed with `Client::filter_delete`.

use super::shell::SUBSCRIBED_EVENTS;
use crate::esl::client::{Client, ClientError, EventFormat};

/// The channel variable that names the node that placed a call.
pub const NODE_VARIABLE: &str = "dlr_node";

/// Events subscribed beside the engine's own ([`SUBSCRIBED_EVENTS`]).
pub const EXTRA_EVENTS: &[&str] = &["HEARTBEAT"];

/// mod_amd's application (both variants name it so).
pub const AMD_APP: &str = "amd";
/// The non-blocking mod_amd's decision event.
pub const AMD_INFO: &str = "amd::info";
/// mod_avmd's beep event.
pub const AVMD_BEEP: &str = "avmd::beep";
/// mod_avmd's application that starts beep detection on the channel.
pub const AVMD_START_APP: &str = "avmd_start";

/// The CUSTOM subclasses subscribed, each with whether it carries the channel's variables (then the node filter
/// passes it; otherwise a filter on its `Event-Subclass` does).
pub const CUSTOM_SUBCLASSES: &[(&str, bool)] = &[(AMD_INFO, true), (AVMD_BEEP, false)];

/// Events that carry the channel's variables (`switch_channel_event_set_extended_data` in FreeSWITCH 1.10, when
/// `verbose-events` is off); any other subscribed event can only pass a filter by its name.
pub const CARRY_VARIABLES: &[&str] = &[
    "CHANNEL_CREATE",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "CHANNEL_ANSWER",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "REQUEST_PARAMS",
    "CHANNEL_DATA",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_DESTROY",
    "SESSION_HEARTBEAT",
    "API",
    "RECORD_START",
    "RECORD_STOP",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "CALL_UPDATE",
    "MEDIA_BUG_START",
    "MEDIA_BUG_STOP",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "TEXT",
    "CUSTOM",
];

/// One `filter <header> <value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub header: String,
    pub value: String,
}

/// The events and filters for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub events: Vec<&'static str>,
    pub filters: Vec<Filter>,
}

/// A node id that cannot be used as a filter value and a channel variable as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "node id {0:?} must be 1 to 64 characters of letters, digits, `.`, `_` or `-`, starting with a letter or \
     digit (it is sent as the channel variable {NODE_VARIABLE} and matched by an ESL filter)"
)]
pub struct InvalidNodeId(pub String);

/// Checks a node id: it travels unescaped in `{dlr_node=…}` and as a filter value, where a leading `+`, `-`, ` `
/// or `/` would change the filter's meaning. FreeSWITCH compares it case-insensitively: ids differing only in
/// case are the same node to the filter.
pub fn validate_node_id(node: &str) -> Result<(), InvalidNodeId> {
    let ok = (1..=64).contains(&node.len())
        && node.starts_with(|c: char| c.is_ascii_alphanumeric())
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(InvalidNodeId(node.to_owned()))
    }
}

/// The filter that passes every variable-carrying event of the calls `node` placed.
pub fn node_filter(node: &str) -> Result<Filter, InvalidNodeId> {
    validate_node_id(node)?;
    Ok(Filter {
        header: format!("variable_{NODE_VARIABLE}"),
        value: node.to_owned(),
    })
}

fn by_name(event: &str) -> Filter {
    Filter {
        header: "Event-Name".into(),
        value: event.into(),
    }
}

/// What the engine on `node` subscribes to: the node filter, and a by-name filter for each subscribed event
/// without channel variables (BACKGROUND_JOB aside: the client keeps that one).
pub fn for_node(node: &str) -> Result<Subscription, InvalidNodeId> {
    let mut events: Vec<&'static str> = SUBSCRIBED_EVENTS
        .iter()
        .chain(EXTRA_EVENTS)
        .copied()
        .collect();
    let mut filters = vec![node_filter(node)?];
    filters.extend(
        events
            .iter()
            .filter(|e| **e != "BACKGROUND_JOB" && !CARRY_VARIABLES.contains(e))
            .map(|e| by_name(e)),
    );
    // CUSTOM and its subclasses last: every name after CUSTOM is a subclass to FreeSWITCH.
    events.push("CUSTOM");
    events.extend(CUSTOM_SUBCLASSES.iter().map(|(s, _)| *s));
    filters.extend(
        CUSTOM_SUBCLASSES
            .iter()
            .filter(|(_, carries)| !carries)
            .map(|(s, _)| Filter {
                header: "Event-Subclass".into(),
                value: (*s).into(),
            }),
    );
    Ok(Subscription { events, filters })
}

impl Subscription {
    /// Installs the filters, then subscribes (filters first, so no foreign event slips in between). The client
    /// restores both after a reconnect.
    pub async fn apply(&self, client: &Client) -> Result<(), ClientError> {
        for f in &self.filters {
            client.filter(&f.header, &f.value).await?;
        }
        client.event(EventFormat::Plain, &self.events).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_that_would_change_the_filter_or_the_originate_are_refused() {
        for good in ["node-1", "dialer-7d9f8c-abcde", "fs01.example.com", "N_2"] {
            assert_eq!(validate_node_id(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "-node",
            "/re/",
            "+a",
            "a b",
            "a,b",
            "a}",
            "a:_:b",
            &"x".repeat(65),
        ] {
            assert!(validate_node_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_node_subscribes_to_its_tagged_calls_dtmf_and_heartbeat() {
        let s = for_node("node-a").unwrap();
        let filters: Vec<String> = s
            .filters
            .iter()
            .map(|f| format!("{} {}", f.header, f.value))
            .collect();
        assert_eq!(
            filters,
            [
                "variable_dlr_node node-a",
                "Event-Name DTMF",
                "Event-Name HEARTBEAT",
                "Event-Subclass avmd::beep"
            ]
        );
        assert_eq!(
            s.events[s.events.len() - 3..],
            ["CUSTOM", "amd::info", "avmd::beep"]
        );
        assert!(s.events.contains(&"HEARTBEAT") && s.events.contains(&"BACKGROUND_JOB"));
        assert_eq!(for_node("a b"), Err(InvalidNodeId("a b".into())));
    }

    #[test]
    fn every_subscribed_event_of_our_channel_passes_as_freeswitch_builds_it_and_foreign_ones_do_not()
     {
        use crate::esl::Event;
        use crate::sim::server::listener::Listener;

        let sub = for_node("node-a").unwrap();
        let mut l = Listener::new(1);
        l.authed = true;
        l.event_cmd(&format!("event plain {}", sub.events.join(" ")));
        // What the client adds beside any filter.
        l.filter_cmd("filter Event-Name BACKGROUND_JOB");
        for f in &sub.filters {
            l.filter_cmd(&format!("filter {} {}", f.header, f.value));
        }
        let built = |name: &str, node: &str| {
            let mut h = vec![("Event-Name", name), ("Unique-ID", "u-1")];
            if CARRY_VARIABLES.contains(&name) {
                h.push(("variable_dlr_node", node));
            }
            Event::from_pairs(h, None)
        };
        let subclasses: Vec<&str> = CUSTOM_SUBCLASSES.iter().map(|(s, _)| *s).collect();
        for name in sub.events.iter().filter(|e| !subclasses.contains(e)) {
            if *name == "CUSTOM" {
                continue;
            }
            assert!(
                l.wants(&built(name, "node-a")),
                "{name} of our channel is filtered out"
            );
        }
        // The non-blocking mod_amd's decision: cloned without Event-Name, with the channel's variables.
        let amd_info = |node: &str| {
            Event::from_pairs(
                [
                    ("Event-Subclass", "amd::info"),
                    ("Unique-ID", "u-1"),
                    ("variable_dlr_node", node),
                    ("variable_amd_result", "MACHINE"),
                ],
                None,
            )
        };
        assert!(
            l.wants(&amd_info("node-a")),
            "amd::info of our channel is filtered out"
        );
        assert!(
            !l.wants(&amd_info("node-b")),
            "amd::info of node-b's channel passes"
        );
        // mod_avmd's beep: no channel variables at all.
        let beep = Event::from_pairs(
            [
                ("Event-Name", "CUSTOM"),
                ("Event-Subclass", "avmd::beep"),
                ("Unique-ID", "u-1"),
                ("Beep-Status", "DETECTED"),
            ],
            None,
        );
        assert!(l.wants(&beep), "avmd::beep is filtered out");
        for name in [
            "CHANNEL_ANSWER",
            "CHANNEL_HANGUP_COMPLETE",
            "CHANNEL_CREATE",
        ] {
            assert!(
                !l.wants(&built(name, "node-b")),
                "{name} of node-b's channel passes"
            );
        }
    }
}
