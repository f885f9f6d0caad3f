//! What `${name}` means on one call: the member's data, what the flow wrote, and the channel's variables.
//!
//! Lookup order (first found wins):
//! 1. variables **written by the flow**: `set` steps and `play_and_get_digits` results;
//! 2. the member's **variables** (JSON scalars: strings as is, numbers as written, `true`/`false`; `null` is
//!    missing);
//! 3. the member's **`name`** and the called **`number`**;
//! 4. **channel variables**: those the engine knew when the flow started, updated from the `variable_*` headers
//!    of every event of the call the flow sees.
//!
//! The flow's own variables come first so that a member variable can never pre-seed an answer (a member variable
//! `choice=1` must not count as the callee pressing 1). Member data comes before the channel because the channel
//! copy of a member variable may be the encoded form the originate had to use (see `engine::originate`).
//!
//! Because member data shadows the channel, a flow that means a channel variable can say so:
//! `${channel.domain_name}` reads only what the flow wrote and the channel's variables (a member variable named
//! `domain_name` cannot redirect `user/operator@${channel.domain_name}`), and `${member.debt}` reads only the
//! member's variables.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::esl::Event;

/// The call a flow runs on: who was called and what is known about the channel.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The member's name (`${name}`).
    pub name: String,
    /// The number called (`${number}`).
    pub number: String,
    /// The member's variables (scalars).
    pub variables: Map<String, Value>,
    /// Channel variables known so far (without the `variable_` prefix), e.g. from CHANNEL_ANSWER.
    pub channel: HashMap<String, String>,
}

impl CallContext {
    pub fn new(name: impl Into<String>, number: impl Into<String>) -> CallContext {
        CallContext {
            name: name.into(),
            number: number.into(),
            ..CallContext::default()
        }
    }

    /// With the member's variables.
    pub fn with_variables(mut self, variables: Map<String, Value>) -> CallContext {
        self.variables = variables;
        self
    }

    /// Adds the channel variables an event carries (`variable_*` headers).
    pub fn absorb(&mut self, event: &Event) {
        absorb_channel_vars(&mut self.channel, event);
    }
}

/// A member variable as text: strings as is, numbers as written, booleans as `true`/`false`; `null`, arrays and
/// objects are not values.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Copies the `variable_*` headers of `event` into `vars`.
pub(super) fn absorb_channel_vars(vars: &mut HashMap<String, String>, event: &Event) {
    for (name, value) in event.headers() {
        if let Some(var) = name.strip_prefix(b"variable_")
            && let Ok(var) = std::str::from_utf8(var)
        {
            let value = String::from_utf8_lossy(value);
            match vars.get_mut(var) {
                Some(old) if *old == value => {}
                Some(old) => *old = value.into_owned(),
                None => {
                    vars.insert(var.to_owned(), value.into_owned());
                }
            }
        }
    }
}

/// The variables of one running flow, layered as the module doc says.
#[derive(Debug)]
pub(super) struct Scope<'c> {
    ctx: &'c CallContext,
    /// Written by the flow (latest value per name).
    pub flow: HashMap<String, String>,
    /// Channel variables: the context's, updated from events.
    pub channel: HashMap<String, String>,
}

impl<'c> Scope<'c> {
    pub fn new(ctx: &'c CallContext) -> Scope<'c> {
        Scope {
            ctx,
            flow: HashMap::new(),
            channel: ctx.channel.clone(),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(var) = name.strip_prefix("channel.") {
            return self
                .flow
                .get(var)
                .or_else(|| self.channel.get(var))
                .cloned();
        }
        if let Some(var) = name.strip_prefix("member.") {
            return self.ctx.variables.get(var).and_then(scalar_text);
        }
        if let Some(v) = self.flow.get(name) {
            return Some(v.clone());
        }
        if let Some(v) = self.ctx.variables.get(name).and_then(scalar_text) {
            return Some(v);
        }
        match name {
            "name" => return Some(self.ctx.name.clone()),
            "number" => return Some(self.ctx.number.clone()),
            _ => {}
        }
        self.channel.get(name).cloned()
    }

    pub fn absorb(&mut self, event: &Event) {
        absorb_channel_vars(&mut self.channel, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> CallContext {
        let mut c = CallContext::new("Олена", "+380501234567").with_variables(
            json!({"debt": 1500.5, "vip": true, "choice": "1", "none": null, "name": "override"})
                .as_object()
                .unwrap()
                .clone(),
        );
        c.channel.insert("domain_name".into(), "192.0.2.2".into());
        c.channel.insert("debt".into(), "encoded%20form".into());
        c
    }

    #[test]
    fn lookup_order_is_flow_member_name_channel() {
        let c = ctx();
        let mut s = Scope::new(&c);
        assert_eq!(s.get("debt").as_deref(), Some("1500.5"));
        assert_eq!(s.get("vip").as_deref(), Some("true"));
        assert_eq!(s.get("number").as_deref(), Some("+380501234567"));
        assert_eq!(s.get("domain_name").as_deref(), Some("192.0.2.2"));
        assert_eq!(s.get("none"), None);
        assert_eq!(s.get("missing"), None);
        // A member variable named like a built-in wins over it (the member's data is the member's).
        assert_eq!(s.get("name").as_deref(), Some("override"));
        // The flow's digits shadow a member variable of the same name.
        assert_eq!(s.get("choice").as_deref(), Some("1"));
        s.flow.insert("choice".into(), String::new());
        assert_eq!(s.get("choice").as_deref(), Some(""));
    }

    #[test]
    fn namespaced_names_read_only_the_channel_or_only_the_member() {
        let mut c = ctx();
        c.variables
            .insert("domain_name".into(), json!("evil.example"));
        let mut s = Scope::new(&c);
        assert_eq!(s.get("domain_name").as_deref(), Some("evil.example"));
        assert_eq!(s.get("channel.domain_name").as_deref(), Some("192.0.2.2"));
        assert_eq!(s.get("member.debt").as_deref(), Some("1500.5"));
        assert_eq!(s.get("member.number"), None);
        s.flow.insert("choice".into(), "2".into());
        assert_eq!(s.get("channel.choice").as_deref(), Some("2"));
        assert_eq!(s.get("member.choice").as_deref(), Some("1"));
    }

    #[test]
    fn events_update_channel_variables() {
        let c = ctx();
        let mut s = Scope::new(&c);
        let e = Event::from_pairs(
            [
                ("Event-Name", "CHANNEL_EXECUTE_COMPLETE"),
                ("variable_choice_invalid", "7"),
                ("variable_domain_name", "10.0.0.1"),
            ],
            None,
        );
        s.absorb(&e);
        assert_eq!(s.get("choice_invalid").as_deref(), Some("7"));
        assert_eq!(s.get("domain_name").as_deref(), Some("10.0.0.1"));
    }
}
