//! A whole campaign's configuration (SPEC §2): loading it from TOML or JSON and validating it into a
//! [`ValidCampaign`].
//!
//! [`CampaignConfig`] is the document as written — what the API receives and returns, what a config file holds.
//! [`CampaignConfig::validate`] checks every field and builds everything the engine needs up front (cause table,
//! calendar schedule, compiled gateway regexes and templates, callflow tree, channel variables as strings). It
//! either returns a complete [`ValidCampaign`] or every problem found, each with its field path
//! (`gateways[1].pattern: invalid regex: ...`, `limit: must be >= 1`); nothing half-built escapes, so a campaign
//! that exists in the engine is a campaign that passed validation.
//!
//! Unknown fields are refused at load time (a misspelt `wait_between_retry_sec` would otherwise be silently
//! ignored and the default used); load errors carry the field path too (`gateways[0].limit: invalid type ...`).

use super::agents::{AgentSettings, DialMode};
use super::amd::AmdSettings;
use super::calendar::{Calendar, CalendarSchedule};
use super::caller_id::{CallerIdPool, CallerIdPoolConfig};
use super::callflow::{Callflow, is_channel_var_name};
use super::causes::{CauseClass, CauseLists, CauseTable, CauseTableError};
use super::channel_vars::{MemberChannelVars, is_dialer_owned};
use super::error::{FieldError, FieldErrors};
use super::gateway::{Gateway, Gateways};
use super::params::{LostAttempt, MemberOrder, NumberOrder};
use super::webhook::{WebhookConfig, check_webhooks};
use crate::dnc::E164Rule;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Longest campaign id accepted.
pub const MAX_ID_LEN: usize = 64;

fn default_limit() -> u32 {
    10
}
fn default_wait_between_retries_sec() -> u64 {
    60
}
fn default_max_tries() -> u32 {
    5
}
fn default_originate_timeout_sec() -> u32 {
    30
}

/// A campaign as written, with the defaults of SPEC §2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignConfig {
    /// Client-visible id (`571f2e2e6ea6478aba60581a`): letters, digits, `_`, `-`. Required by
    /// [`validate`](Self::validate); the API fills it with [`new_campaign_id`] on creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
    /// Max simultaneous calls of this campaign, across all engine nodes.
    #[serde(default = "default_limit")]
    pub limit: u32,
    /// Delay before a member is tried again after Retry or Minus.
    #[serde(default = "default_wait_between_retries_sec")]
    pub wait_between_retries_sec: u64,
    /// Counted attempts after which a member ends with `MAX_TRY_COUNT`.
    #[serde(default = "default_max_tries")]
    pub max_tries: u32,
    /// An answered OK call counts as success only if talk time is at least this.
    #[serde(default)]
    pub min_success_duration_sec: u64,
    /// Ring time before FreeSWITCH gives up (`originate_timeout`).
    #[serde(default = "default_originate_timeout_sec")]
    pub originate_timeout_sec: u32,
    #[serde(default)]
    pub causes: CauseLists,
    /// Max new calls per second for the campaign; none = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cps: Option<f64>,
    #[serde(default)]
    pub member_order: MemberOrder,
    #[serde(default)]
    pub number_order: NumberOrder,
    /// Count `max_tries` per number instead of per member.
    #[serde(default)]
    pub tries_per_number: bool,
    /// Never complete when the queue is empty; wait for new members.
    #[serde(default)]
    pub eternal: bool,
    /// Channel variables added to every call: scalars only.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
    /// Member variables sent to FreeSWITCH under their own name (matched case-insensitively); every other member
    /// variable `x` reaches the channel as `dlr_v_x` (see [`super::channel_vars`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_channel_variables: Vec<String>,
    /// Steps run on the answered call (SPEC §7), as JSON; none = the call is parked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callflow: Option<Value>,
    #[serde(default)]
    pub lost_attempt: LostAttempt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<Calendar>,
    #[serde(default)]
    pub gateways: Vec<Gateway>,
    /// How answered calls are used: `broadcast` (callflow or park), or joined to agents (`preview`,
    /// `progressive`).
    #[serde(default, skip_serializing_if = "is_broadcast")]
    pub mode: DialMode,
    /// The agent team and its rules; required by the agent modes, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<AgentSettings>,
    /// The caller IDs of calls whose gateway has no pool of its own (see [`super::caller_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id_pool: Option<CallerIdPoolConfig>,
    /// How the campaign's numbers are written, to match them with the do-not-call lists (see
    /// [`crate::dnc::normalize`]); none: numbers are taken as international.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e164: Option<E164Rule>,
    /// Recycle rules by cause, overriding `wait_between_retries_sec` (see [`super::retry_rules`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_rules: Vec<super::retry_rules::RetryRule>,
    /// At most this many calls to one number per UTC day, over every campaign (see `store::number_rules`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_calls_per_number_per_day: Option<u32>,
    /// At least this long between two calls to one number, over every campaign (see `store::number_rules`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_gap_same_number_sec: Option<u32>,
    /// Answering-machine detection on answered calls (see [`super::amd`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amd: Option<AmdSettings>,
    /// Where each outcome is POSTed (see `crate::webhooks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookConfig>,
}

fn is_broadcast(mode: &DialMode) -> bool {
    *mode == DialMode::Broadcast
}

/// Why a campaign could not be loaded or validated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not valid TOML/JSON, or a field has the wrong type or an unknown name.
    #[error("{format}: {}", FieldError::new(.path.clone(), .message.clone()))]
    Syntax {
        format: &'static str,
        /// Field path, empty when the problem is not inside a field.
        path: String,
        message: String,
    },
    /// The document reads fine but some values are not acceptable.
    #[error("{0}")]
    Invalid(FieldErrors),
}

impl ConfigError {
    /// Every problem as (path, message), for API error bodies.
    pub fn problems(&self) -> Vec<FieldError> {
        match self {
            ConfigError::Syntax { path, message, .. } => {
                vec![FieldError::new(path.clone(), message.clone())]
            }
            ConfigError::Invalid(all) => all.0.clone(),
        }
    }
}

fn syntax_error<E: std::fmt::Display>(
    format: &'static str,
    e: serde_path_to_error::Error<E>,
) -> ConfigError {
    let path = e.path().to_string();
    // serde_path_to_error writes "." for the root and "?" when it could not tell.
    let path = if path == "." || path == "?" {
        String::new()
    } else {
        path
    };
    ConfigError::Syntax {
        format,
        path,
        message: e.into_inner().to_string().trim_end().to_string(),
    }
}

/// A fresh campaign id: 24 lowercase hex digits from a random UUID, like `571f2e2e6ea6478aba60581a`.
pub fn new_campaign_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(24);
    id
}

impl CampaignConfig {
    /// Reads a campaign from TOML text (a config file).
    pub fn from_toml_str(text: &str) -> Result<CampaignConfig, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            format: "TOML",
            path: String::new(),
            message: e.to_string().trim_end().to_string(),
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| syntax_error("TOML", e))
    }

    /// Reads a campaign from JSON text (an API body).
    pub fn from_json_str(text: &str) -> Result<CampaignConfig, ConfigError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let config: CampaignConfig =
            serde_path_to_error::deserialize(&mut de).map_err(|e| syntax_error("JSON", e))?;
        de.end().map_err(|e| ConfigError::Syntax {
            format: "JSON",
            path: String::new(),
            message: e.to_string(),
        })?;
        Ok(config)
    }

    /// Reads a campaign from an already parsed JSON value.
    pub fn from_json_value(value: Value) -> Result<CampaignConfig, ConfigError> {
        serde_path_to_error::deserialize(value).map_err(|e| syntax_error("JSON", e))
    }

    /// Checks every field and builds the engine's view of the campaign. All problems are reported together.
    pub fn validate(&self) -> Result<ValidCampaign, ConfigError> {
        let mut errors: Vec<FieldError> = Vec::new();

        match &self.id {
            None => errors.push(FieldError::new(
                "id",
                "missing (a campaign needs a stable id)",
            )),
            Some(id) if id.is_empty() || id.len() > MAX_ID_LEN => errors.push(FieldError::new(
                "id",
                format!("must be 1 to {MAX_ID_LEN} characters, got {}", id.len()),
            )),
            Some(id)
                if !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                errors.push(FieldError::new(
                    "id",
                    format!("{id:?}: only ASCII letters, digits, _ and - are allowed"),
                ))
            }
            Some(_) => {}
        }
        if self.name.trim().is_empty() {
            errors.push(FieldError::new("name", "must not be empty"));
        }
        if self.limit < 1 {
            errors.push(FieldError::new("limit", "must be >= 1"));
        }
        if self.max_tries < 1 {
            errors.push(FieldError::new("max_tries", "must be >= 1"));
        }
        if !(1..=3600).contains(&self.originate_timeout_sec) {
            errors.push(FieldError::new(
                "originate_timeout_sec",
                format!("must be 1 to 3600, got {}", self.originate_timeout_sec),
            ));
        }
        if let Some(cps) = self.cps
            && !(cps.is_finite() && cps > 0.0)
        {
            errors.push(FieldError::new(
                "cps",
                format!("must be a number > 0 (leave it out for unlimited), got {cps}"),
            ));
        }

        let causes = CauseTable::new(&self.causes)
            .map_err(|e| errors.push(cause_error(e)))
            .ok();
        let variables = channel_variables(&self.variables)
            .map_err(|e| errors.extend(e.0))
            .ok();
        let member_channel_vars = MemberChannelVars::new(&self.member_channel_variables)
            .map_err(|e| errors.extend(e))
            .ok();
        let calendar = match &self.calendar {
            None => {
                errors.push(FieldError::new(
                    "calendar",
                    "missing (give at least {timezone, accept: [{weekday, start_min, end_min}]})",
                ));
                None
            }
            Some(c) => c
                .compile()
                .map_err(|e| errors.extend(e.under("calendar").0))
                .ok(),
        };
        match (self.mode.uses_agents(), &self.agents) {
            (true, None) => errors.push(FieldError::new(
                "agents",
                format!(
                    "missing: mode {} connects calls to agents and needs an agent team (agents: {{team}})",
                    self.mode.as_str()
                ),
            )),
            (true, Some(a)) => errors.extend(a.check(self.mode)),
            (false, Some(_)) => errors.push(FieldError::new(
                "agents",
                "applies to the agent modes only (set mode to preview, progressive or predictive)",
            )),
            (false, None) => {}
        }
        if let Some(amd) = &self.amd {
            errors.extend(amd.check());
        }
        if self.mode == DialMode::Predictive
            && self.originate_timeout_sec < super::agents::PREDICTIVE_MIN_RING_SEC
        {
            errors.push(FieldError::new(
                "originate_timeout_sec",
                format!(
                    "must be at least {} in predictive mode (FTC: ring 15 s before giving up), got {}",
                    super::agents::PREDICTIVE_MIN_RING_SEC,
                    self.originate_timeout_sec
                ),
            ));
        }
        if self.mode.uses_agents() && self.callflow.as_ref().is_some_and(|v| !v.is_null()) {
            errors.push(FieldError::new(
                "callflow",
                format!(
                    "a {} campaign joins answered calls to agents; a callflow is for broadcast campaigns",
                    self.mode.as_str()
                ),
            ));
        }
        errors.extend(check_webhooks(&self.webhooks));
        let gateways = Gateways::compile(&self.gateways)
            .map_err(|e| errors.extend(e.under("gateways").0))
            .ok();
        let caller_ids = self.caller_id_pool.as_ref().and_then(|p| {
            CallerIdPool::compile(p)
                .map_err(|e| errors.extend(e.into_iter().map(|e| e.under("caller_id_pool"))))
                .ok()
                .map(Arc::new)
        });
        errors.extend(super::retry_rules::check(&self.retry_rules));
        for (field, value) in [
            (
                "max_calls_per_number_per_day",
                self.max_calls_per_number_per_day,
            ),
            ("min_gap_same_number_sec", self.min_gap_same_number_sec),
        ] {
            if value == Some(0) {
                errors.push(FieldError::new(
                    field,
                    "must be at least 1 (leave it out for no limit)",
                ));
            }
        }
        if let Some(Err((field, message))) = self.e164.as_ref().map(E164Rule::check) {
            errors.push(FieldError::new(format!("e164.{field}"), message));
        }
        let callflow = match &self.callflow {
            None | Some(Value::Null) => Some(None),
            Some(v) => Callflow::parse(v)
                .map(Some)
                .map_err(|e| errors.push(e.under("callflow")))
                .ok(),
        };

        match (
            causes,
            variables,
            member_channel_vars,
            calendar,
            gateways,
            callflow,
        ) {
            (
                Some(causes),
                Some(variables),
                Some(member_channel_vars),
                Some(calendar),
                Some(gateways),
                Some(callflow),
            ) if errors.is_empty() => Ok(ValidCampaign {
                config: self.clone(),
                causes,
                calendar,
                gateways,
                callflow,
                variables,
                member_channel_vars,
                caller_ids,
            }),
            _ => Err(ConfigError::Invalid(FieldErrors(errors))),
        }
    }
}

fn cause_error(e: CauseTableError) -> FieldError {
    match e {
        CauseTableError::Unknown { list, index, name } => FieldError::new(
            format!("causes.{list}[{index}]"),
            format!("unknown hangup cause {name:?}"),
        ),
        CauseTableError::Duplicate {
            list,
            index,
            name,
            first,
        } => FieldError::new(
            format!("causes.{list}[{index}]"),
            format!("{name:?} is already in causes.{first}"),
        ),
    }
}

/// Campaign variables as (name, value) strings: names must be channel variable names and not reserved, values
/// scalars (numbers and booleans are written as JSON writes them).
fn channel_variables(vars: &Map<String, Value>) -> Result<Vec<(String, String)>, FieldErrors> {
    let mut out = Vec::with_capacity(vars.len());
    let mut errors = Vec::new();
    for (name, value) in vars {
        let at = format!("variables.{}", crate::text::prefix(name));
        if !is_channel_var_name(name) {
            errors.push(FieldError::new(
                at,
                "bad variable name (ASCII letters, digits and _ only)",
            ));
            continue;
        }
        if is_dialer_owned(name) {
            errors.push(FieldError::new(
                at,
                "is set by the dialer itself (use originate_timeout_sec for the ring time)",
            ));
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                let kind = match other {
                    Value::Null => "null",
                    Value::Array(_) => "an array",
                    _ => "an object",
                };
                errors.push(FieldError::new(
                    at,
                    format!("must be a string, number or boolean, got {kind}"),
                ));
                continue;
            }
        };
        out.push((name.clone(), text));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(FieldErrors(errors))
    }
}

/// The "ok but too short" rule of SPEC §4: an OK cause counts as OK only when the call was answered and talk
/// time reached `min_success_duration_sec`; otherwise it is Retry. Other classes are the table's.
pub fn effective_class(
    table: &CauseTable,
    cause: &str,
    answered: bool,
    talk_secs: u64,
    min_success_duration_sec: u64,
) -> CauseClass {
    match table.classify(cause) {
        CauseClass::Ok if answered && talk_secs >= min_success_duration_sec => CauseClass::Ok,
        CauseClass::Ok => CauseClass::Retry,
        other => other,
    }
}

/// A campaign that passed validation, with everything compiled. Immutable: change the [`CampaignConfig`] and
/// validate again.
#[derive(Debug, Clone)]
pub struct ValidCampaign {
    config: CampaignConfig,
    causes: CauseTable,
    calendar: CalendarSchedule,
    gateways: Gateways,
    callflow: Option<Callflow>,
    variables: Vec<(String, String)>,
    member_channel_vars: MemberChannelVars,
    caller_ids: Option<Arc<CallerIdPool>>,
}

impl ValidCampaign {
    pub fn id(&self) -> &str {
        self.config
            .id
            .as_deref()
            .expect("validated campaigns have an id")
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The document as written (for the API to return, or to edit and validate again). Plain parameters
    /// (`limit`, `max_tries`, `member_order`...) are read from here.
    pub fn config(&self) -> &CampaignConfig {
        &self.config
    }

    pub fn into_config(self) -> CampaignConfig {
        self.config
    }

    pub fn causes(&self) -> &CauseTable {
        &self.causes
    }

    /// The calendar, queried through [`Schedule`](super::Schedule).
    pub fn calendar(&self) -> &CalendarSchedule {
        &self.calendar
    }

    pub fn gateways(&self) -> &Gateways {
        &self.gateways
    }

    /// The campaign's caller-ID pool (a gateway's own pool comes first).
    pub fn caller_id_pool(&self) -> Option<&Arc<CallerIdPool>> {
        self.caller_ids.as_ref()
    }

    /// The campaign's per-number rules (`store::number_rules`).
    pub fn number_rules(&self) -> crate::store::number_rules::NumberRules {
        crate::store::number_rules::NumberRules {
            max_calls_per_day: self.config.max_calls_per_number_per_day,
            min_gap_sec: self.config.min_gap_same_number_sec,
        }
    }

    /// How the campaign's numbers are normalised for the do-not-call lists.
    pub fn e164(&self) -> E164Rule {
        self.config.e164.clone().unwrap_or_default()
    }

    /// The callflow, `None` when the campaign has none (calls are parked).
    pub fn callflow(&self) -> Option<&Callflow> {
        self.callflow.as_ref().filter(|c| !c.is_empty())
    }

    /// This campaign with another wait before a retried member is called again: an agent's callback
    /// (`next_after_sec`) is applied as the wait of that one result, so the store's rules stay the only ones.
    pub fn with_retry_wait(&self, wait_sec: u64) -> ValidCampaign {
        let mut v = self.clone();
        v.config.wait_between_retries_sec = wait_sec;
        v
    }

    /// How answered calls are used.
    pub fn mode(&self) -> DialMode {
        self.config.mode
    }

    /// The agent team and its rules: `Some` exactly when [`mode`](Self::mode) uses agents.
    pub fn agents(&self) -> Option<&AgentSettings> {
        self.config
            .agents
            .as_ref()
            .filter(|_| self.config.mode.uses_agents())
    }

    /// Answering-machine detection, when the campaign has it enabled.
    pub fn amd(&self) -> Option<&AmdSettings> {
        self.config.amd.as_ref().filter(|a| a.enabled)
    }

    /// The campaign's channel variables, as strings, in the order written.
    pub fn channel_variables(&self) -> &[(String, String)] {
        &self.variables
    }

    /// Which member variables reach the channel under their own name (the rest as `dlr_v_<name>`).
    pub fn member_channel_vars(&self) -> &MemberChannelVars {
        &self.member_channel_vars
    }

    /// The class of an attempt that ended with hangup `cause` (SPEC §4, with the "ok but too short" rule).
    pub fn effective_class(&self, cause: &str, answered: bool, talk_secs: u64) -> CauseClass {
        effective_class(
            &self.causes,
            cause,
            answered,
            talk_secs,
            self.config.min_success_duration_sec,
        )
    }

    /// [`effective_class`](Self::effective_class) on the talk time in milliseconds (`variable_billmsec`).
    /// FreeSWITCH's `billsec` subtracts whole-second epochs, so a 9.6 s call can bill 10 s; `billmsec` cannot be
    /// off by more than a millisecond.
    pub fn effective_class_ms(&self, cause: &str, answered: bool, talk_ms: u64) -> CauseClass {
        effective_class(
            &self.causes,
            cause,
            answered,
            talk_ms,
            self.config.min_success_duration_sec.saturating_mul(1000),
        )
    }

    /// The class of an attempt whose outcome can never be known (`lost_attempt`).
    pub fn lost_attempt_class(&self) -> CauseClass {
        self.config.lost_attempt.class()
    }
}

#[cfg(test)]
mod tests;
