//! What the connection has subscribed to, so a new connection can be put back in the same state.
//!
//! FreeSWITCH keeps subscriptions (`event`, `nixevent`, `filter`, `myevents`) per socket; after a reconnect they are
//! gone. [`Subscriptions`] is the confirmed state: the reader applies a command's [`Effect`] when FreeSWITCH
//! answers it with `+OK`, in reply order (which is write order), and a new connection replays
//! [`Subscriptions::replay`]. Set semantics keep it bounded however often the engine subscribes and unsubscribes.
//!
//! One invariant is the client's own: `bgapi` results arrive as `BACKGROUND_JOB` events, so the connection must
//! always receive them or job futures would wait forever. Hence every connection subscribes to `BACKGROUND_JOB`
//! first, `noevents`/`nixevent ALL` are followed by re-subscribing it, `nixevent BACKGROUND_JOB` is refused, and
//! while any filter is in place (FreeSWITCH filters are OR-ed: an event passes if any filter matches) a
//! `filter Event-Name BACKGROUND_JOB` is kept beside them, removed again with the last one. [`ConnectionView`]
//! plans those extra commands around the user's, from the state as written on this connection.

use super::config::EventFormat;
use crate::esl::codec::Request;

pub(crate) const BACKGROUND_JOB: &str = "BACKGROUND_JOB";
const EVENT_NAME: &str = "Event-Name";

/// How a command changes the subscription state once FreeSWITCH accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    Event {
        format: EventFormat,
        tokens: Vec<String>,
    },
    Nix {
        tokens: Vec<String>,
    },
    NoEvents,
    FilterAdd {
        header: String,
        value: String,
    },
    FilterDelete {
        header: String,
        value: Option<String>,
    },
    FilterDeleteAll,
    MyEvents {
        uuid: String,
        format: Option<EventFormat>,
    },
    /// `exit`: the connection ends on purpose; do not reconnect.
    Exit,
}

/// The confirmed subscription state of the client (survives reconnects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Subscriptions {
    pub(crate) format: EventFormat,
    all: bool,
    names: Vec<String>,
    custom: bool,
    subclasses: Vec<String>,
    /// Names nixed while subscribed to `ALL`.
    nixed: Vec<String>,
    filters: Vec<(String, String)>,
    myevents: Option<(String, Option<EventFormat>)>,
}

fn insert(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x.eq_ignore_ascii_case(item)) {
        list.push(item.to_owned());
    }
}

fn remove(list: &mut Vec<String>, item: &str) {
    list.retain(|x| !x.eq_ignore_ascii_case(item));
}

fn is_bj_filter(header: &str, value: &str) -> bool {
    header.eq_ignore_ascii_case(EVENT_NAME) && value == BACKGROUND_JOB
}

/// Encodes one of the client's own commands. Their parts were validated when the user's command was accepted, so
/// this cannot fail in practice; if it ever did, the command is skipped and logged rather than sent broken.
fn internal(line: String) -> Option<Request> {
    match Request::line(&line) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(%e, line = %line.escape_debug(), "internal ESL command not sent");
            None
        }
    }
}

impl Subscriptions {
    pub(crate) fn new(format: EventFormat) -> Subscriptions {
        Subscriptions {
            format,
            ..Subscriptions::default()
        }
    }

    /// Applies an accepted command.
    pub(crate) fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::None | Effect::Exit => {}
            Effect::Event { format, tokens } => {
                self.format = *format;
                let mut custom_mode = false;
                for t in tokens {
                    if custom_mode {
                        insert(&mut self.subclasses, t);
                    } else if t.eq_ignore_ascii_case("CUSTOM") {
                        self.custom = true;
                        custom_mode = true;
                    } else if t.eq_ignore_ascii_case("ALL") {
                        self.all = true;
                        self.nixed.clear();
                    } else if !t.eq_ignore_ascii_case(BACKGROUND_JOB) {
                        insert(&mut self.names, t);
                        remove(&mut self.nixed, t);
                    }
                }
            }
            Effect::Nix { tokens } => {
                let mut custom_mode = false;
                for t in tokens {
                    if custom_mode {
                        remove(&mut self.subclasses, t);
                    } else if t.eq_ignore_ascii_case("ALL") {
                        self.clear_events();
                    } else if t.eq_ignore_ascii_case("CUSTOM") {
                        custom_mode = true;
                    } else {
                        remove(&mut self.names, t);
                        if self.all {
                            insert(&mut self.nixed, t);
                        }
                    }
                }
            }
            Effect::NoEvents => self.clear_events(),
            Effect::FilterAdd { header, value } => {
                if !self
                    .filters
                    .iter()
                    .any(|(h, v)| h.eq_ignore_ascii_case(header) && v == value)
                {
                    self.filters.push((header.clone(), value.clone()));
                }
            }
            Effect::FilterDelete { header, value } => self.filters.retain(|(h, v)| {
                !(h.eq_ignore_ascii_case(header) && value.as_ref().is_none_or(|value| v == value))
            }),
            Effect::FilterDeleteAll => self.filters.clear(),
            Effect::MyEvents { uuid, format } => self.myevents = Some((uuid.clone(), *format)),
        }
    }

    fn clear_events(&mut self) {
        self.all = false;
        self.names.clear();
        self.custom = false;
        self.subclasses.clear();
        self.nixed.clear();
    }

    /// Whether `myevents` is in force (the connection then only gets one channel's events: no BACKGROUND_JOB).
    pub(crate) fn myevents_active(&self) -> bool {
        self.myevents.is_some()
    }

    /// The commands that put a fresh connection in this state, `BACKGROUND_JOB` included. Filters go first, so
    /// that on a shared switch no event they would stop arrives before them.
    pub(crate) fn replay(&self) -> Vec<Request> {
        let mut out = Vec::new();
        if !self.filters.is_empty() {
            if !self.filters.iter().any(|(h, v)| is_bj_filter(h, v)) {
                out.extend(internal(format!("filter {EVENT_NAME} {BACKGROUND_JOB}")));
            }
            for (h, v) in &self.filters {
                out.extend(internal(format!("filter {h} {v}")));
            }
        }
        let mut line = format!("event {} {BACKGROUND_JOB}", self.format);
        if self.all {
            line.push_str(" ALL");
        }
        for n in &self.names {
            line.push(' ');
            line.push_str(n);
        }
        if self.custom {
            line.push_str(" CUSTOM");
            for s in &self.subclasses {
                line.push(' ');
                line.push_str(s);
            }
        }
        out.extend(internal(line));
        if self.all && !self.nixed.is_empty() {
            out.extend(internal(format!("nixevent {}", self.nixed.join(" "))));
        }
        if let Some((uuid, format)) = &self.myevents {
            out.extend(internal(match format {
                Some(f) => format!("myevents {uuid} {f}"),
                None => format!("myevents {uuid}"),
            }));
        }
        out
    }
}

/// The subscription state as written on one connection (optimistic: filters with valid arguments are always
/// accepted), used to plan the client's own commands around the user's.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionView {
    format: EventFormat,
    user_filters: Vec<(String, String)>,
    bj_filter: bool,
}

impl ConnectionView {
    /// The view right after [`Subscriptions::replay`] was written.
    pub(crate) fn after_replay(subs: &Subscriptions) -> ConnectionView {
        ConnectionView {
            format: subs.format,
            user_filters: subs.filters.clone(),
            bj_filter: !subs.filters.is_empty(),
        }
    }

    /// Internal commands to write before and after a user command with this effect.
    pub(crate) fn plan(&mut self, effect: &Effect) -> (Vec<Request>, Vec<Request>) {
        let mut pre = Vec::new();
        let mut post = Vec::new();
        match effect {
            Effect::Event { format, .. } => self.format = *format,
            Effect::NoEvents => post.extend(self.resubscribe()),
            Effect::Nix { tokens } if tokens.iter().any(|t| t.eq_ignore_ascii_case("ALL")) => {
                post.extend(self.resubscribe())
            }
            Effect::FilterAdd { header, value } => {
                if !self.bj_filter {
                    pre.extend(internal(format!("filter {EVENT_NAME} {BACKGROUND_JOB}")));
                    self.bj_filter = true;
                }
                if !self
                    .user_filters
                    .iter()
                    .any(|(h, v)| h.eq_ignore_ascii_case(header) && v == value)
                {
                    self.user_filters.push((header.clone(), value.clone()));
                }
            }
            Effect::FilterDelete { header, value } => {
                self.user_filters.retain(|(h, v)| {
                    !(h.eq_ignore_ascii_case(header)
                        && value.as_ref().is_none_or(|value| v == value))
                });
                let hits_bj = header.eq_ignore_ascii_case(EVENT_NAME)
                    && value.as_deref().is_none_or(|v| v == BACKGROUND_JOB);
                if hits_bj {
                    self.bj_filter = false;
                }
                self.reconcile(&mut post);
            }
            Effect::FilterDeleteAll => {
                self.user_filters.clear();
                self.bj_filter = false;
            }
            _ => {}
        }
        (pre, post)
    }

    fn resubscribe(&self) -> Option<Request> {
        internal(format!("event {} {BACKGROUND_JOB}", self.format))
    }

    fn reconcile(&mut self, post: &mut Vec<Request>) {
        let wanted = !self.user_filters.is_empty();
        if wanted && !self.bj_filter {
            post.extend(internal(format!("filter {EVENT_NAME} {BACKGROUND_JOB}")));
            self.bj_filter = true;
        } else if !wanted && self.bj_filter {
            post.extend(internal(format!(
                "filter delete {EVENT_NAME} {BACKGROUND_JOB}"
            )));
            self.bj_filter = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(reqs: &[Request]) -> Vec<String> {
        reqs.iter().map(|r| r.command_line().to_owned()).collect()
    }

    fn tokens(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn fresh_state_replays_only_the_background_job_subscription() {
        assert_eq!(
            lines(&Subscriptions::new(EventFormat::Json).replay()),
            ["event json BACKGROUND_JOB"]
        );
    }

    #[test]
    fn replay_puts_filters_with_bj_guard_first_then_merged_events_with_custom_subclasses_last() {
        let mut s = Subscriptions::new(EventFormat::Plain);
        s.apply(&Effect::Event {
            format: EventFormat::Plain,
            tokens: tokens("CHANNEL_ANSWER CUSTOM sofia::register"),
        });
        s.apply(&Effect::Event {
            format: EventFormat::Json,
            tokens: tokens("CHANNEL_HANGUP_COMPLETE channel_answer"),
        });
        s.apply(&Effect::FilterAdd {
            header: "Unique-ID".into(),
            value: "abc".into(),
        });
        s.apply(&Effect::FilterAdd {
            header: "unique-id".into(),
            value: "abc".into(),
        });
        assert_eq!(
            lines(&s.replay()),
            [
                "filter Event-Name BACKGROUND_JOB",
                "filter Unique-ID abc",
                "event json BACKGROUND_JOB CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE CUSTOM sofia::register",
            ]
        );
    }

    #[test]
    fn nixevent_under_all_is_replayed_and_noevents_resets() {
        let mut s = Subscriptions::new(EventFormat::Plain);
        s.apply(&Effect::Event {
            format: EventFormat::Plain,
            tokens: tokens("ALL"),
        });
        s.apply(&Effect::Nix {
            tokens: tokens("HEARTBEAT RE_SCHEDULE"),
        });
        assert_eq!(
            lines(&s.replay()),
            [
                "event plain BACKGROUND_JOB ALL",
                "nixevent HEARTBEAT RE_SCHEDULE"
            ]
        );
        s.apply(&Effect::NoEvents);
        assert_eq!(lines(&s.replay()), ["event plain BACKGROUND_JOB"]);
    }

    #[test]
    fn filter_deletes_and_myevents_are_tracked() {
        let mut s = Subscriptions::new(EventFormat::Plain);
        for (h, v) in [("A", "1"), ("A", "2"), ("B", "3")] {
            s.apply(&Effect::FilterAdd {
                header: h.into(),
                value: v.into(),
            });
        }
        s.apply(&Effect::FilterDelete {
            header: "a".into(),
            value: Some("1".into()),
        });
        assert_eq!(s.filters.len(), 2);
        s.apply(&Effect::FilterDelete {
            header: "A".into(),
            value: None,
        });
        assert_eq!(s.filters, [("B".to_owned(), "3".to_owned())]);
        s.apply(&Effect::FilterDeleteAll);
        assert!(s.filters.is_empty());
        s.apply(&Effect::MyEvents {
            uuid: "u-1".into(),
            format: Some(EventFormat::Json),
        });
        assert!(s.myevents_active());
        assert_eq!(
            lines(&s.replay()),
            ["event plain BACKGROUND_JOB", "myevents u-1 json"]
        );
    }

    #[test]
    fn first_filter_brings_the_bj_filter_and_the_last_one_removes_it() {
        let mut v = ConnectionView::after_replay(&Subscriptions::default());
        let add = Effect::FilterAdd {
            header: "Unique-ID".into(),
            value: "u".into(),
        };
        let (pre, post) = v.plan(&add);
        assert_eq!(lines(&pre), ["filter Event-Name BACKGROUND_JOB"]);
        assert!(post.is_empty());
        let (pre, _) = v.plan(&Effect::FilterAdd {
            header: "Unique-ID".into(),
            value: "w".into(),
        });
        assert!(pre.is_empty(), "guard already in place");
        let del = |value: &str| Effect::FilterDelete {
            header: "Unique-ID".into(),
            value: Some(value.into()),
        };
        assert!(v.plan(&del("u")).1.is_empty());
        assert_eq!(
            lines(&v.plan(&del("w")).1),
            ["filter delete Event-Name BACKGROUND_JOB"]
        );
    }

    #[test]
    fn deleting_every_event_name_filter_restores_the_guard_while_others_remain() {
        let mut v = ConnectionView::after_replay(&Subscriptions::default());
        v.plan(&Effect::FilterAdd {
            header: "Event-Name".into(),
            value: "CHANNEL_ANSWER".into(),
        });
        v.plan(&Effect::FilterAdd {
            header: "Unique-ID".into(),
            value: "u".into(),
        });
        let (_, post) = v.plan(&Effect::FilterDelete {
            header: "Event-Name".into(),
            value: None,
        });
        assert_eq!(lines(&post), ["filter Event-Name BACKGROUND_JOB"]);
        let (_, post) = v.plan(&Effect::FilterDeleteAll);
        assert!(
            post.is_empty(),
            "no filters: every event passes, no guard needed"
        );
    }

    #[test]
    fn noevents_and_nixevent_all_are_followed_by_resubscribing_bj_in_the_current_format() {
        let mut v = ConnectionView::after_replay(&Subscriptions::default());
        v.plan(&Effect::Event {
            format: EventFormat::Xml,
            tokens: tokens("CHANNEL_CREATE"),
        });
        assert_eq!(
            lines(&v.plan(&Effect::NoEvents).1),
            ["event xml BACKGROUND_JOB"]
        );
        assert_eq!(
            lines(
                &v.plan(&Effect::Nix {
                    tokens: tokens("all")
                })
                .1
            ),
            ["event xml BACKGROUND_JOB"]
        );
        assert!(
            v.plan(&Effect::Nix {
                tokens: tokens("HEARTBEAT")
            })
            .1
            .is_empty()
        );
    }
}
