//! The calendar as the store and the engine see it: "when may a member in this timezone be called?"
//!
//! The store is calendar-agnostic: it keeps per member the next instant the member may be called and asks a
//! [`Schedule`] (implemented by the campaign calendar) to compute such instants. Keeping this a small trait keeps
//! the Redis scripts free of timezone math: the Rust side evaluates the schedule for the few timezones a campaign
//! uses and hands the results to Lua.

use chrono::{DateTime, Utc};

/// Calendar queries in terms of instants. `tz = None` means the calendar's own timezone.
pub trait Schedule: Send + Sync {
    /// The earliest instant `>= at` at which a member whose local timezone is `tz` may be called, or `None` if
    /// that can never happen again (the calendar has ended, or it has no window at all).
    fn next_allowed(&self, tz: Option<&str>, at: DateTime<Utc>) -> Option<DateTime<Utc>>;

    /// If `at` is allowed for `tz`, the instant (exclusive) at which the allowed stretch containing `at` ends;
    /// `None` if `at` is not allowed. Every instant in `[at, result)` is allowed. An implementation may report a
    /// very long stretch as ending early (the campaign calendar follows a stretch for at most
    /// [`ALLOWED_UNTIL_LOOKAHEAD_DAYS`](crate::campaign::calendar::ALLOWED_UNTIL_LOOKAHEAD_DAYS)): callers ask
    /// again when it is reached.
    fn allowed_until(&self, tz: Option<&str>, at: DateTime<Utc>) -> Option<DateTime<Utc>>;
}

/// A schedule with no restriction: every instant is allowed. Used when a campaign has no calendar.
#[derive(Debug, Clone, Copy, Default)]
pub struct Always;

impl Schedule for Always {
    fn next_allowed(&self, _tz: Option<&str>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(at)
    }
    fn allowed_until(&self, _tz: Option<&str>, _at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(DateTime::<Utc>::MAX_UTC)
    }
}
