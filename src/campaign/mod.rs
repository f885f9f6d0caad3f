//! Campaign ("dialer") configuration: parameters, cause table, member input, calendar, gateways, callflow.
//!
//! Everything here is pure data and pure functions: no IO. The engine and the store consume these types;
//! the API and the config loader produce them.

pub mod agents;
pub mod amd;
pub mod calendar;
pub mod caller_id;
pub mod callflow;
pub mod causes;
pub mod channel_vars;
pub mod config;
pub mod error;
pub mod gateway;
pub mod member;
pub mod params;
pub mod retry_rules;
pub mod schedule;
pub mod webhook;

pub use calendar::{AcceptWindow, Calendar, CalendarSchedule, ExceptDate};
pub use callflow::{Callflow, Expr, Step, Template};
pub use causes::{CauseClass, CauseLists, CauseTable};
pub use config::{CampaignConfig, ConfigError, ValidCampaign, effective_class, new_campaign_id};
pub use error::{FieldError, FieldErrors};
pub use gateway::{Gateway, Gateways, Route, RouteError, ValidGateway};
pub use member::{CommunicationInput, MemberInput};
pub use params::{LostAttempt, MemberOrder, NumberOrder};
pub use schedule::Schedule;
pub use webhook::{WebhookConfig, WebhookEvent};
