//! The queue rules both backends follow, written once in Rust: ready order, number choice, calendar evaluation.
//!
//! The memory backend calls these functions directly; the claim script (`redis/lua/claim.lua`) implements the same
//! rules in Lua and the property test in `tests/store_props.rs` holds the two to identical results. What a result
//! does to its member is not here but in `outcome.rs`, which both backends call.
//!
//! Ready order: a due member is ranked by a small integer *primary* (depends on `member_order`), then by its due
//! instant, then by its id (insertion order). In Redis the primary is the ZSET score and the member string is
//! `hex11(due_ms) .. hex10(id)`, so Redis's lexicographic tie-break on equal scores is exactly (due, id).

use super::record::NumState;
use super::types::CommState;
use crate::campaign::params::{MemberOrder, NumberOrder};
use crate::campaign::schedule::Schedule;
use chrono::Duration;

/// How many waiting members one claim moves into the ready order at most (bounds one script's run time).
pub const PROMOTE_CAP: usize = 5000;
/// How many ready members one claim may examine beyond the ones it claims (bounds one script's run time when
/// many due members are outside their calendar window or expired).
pub const EXAMINE_EXTRA: usize = 1000;
/// Largest due instant a token can hold (11 hex digits of milliseconds, year 2527).
pub const MAX_DUE_MS: i64 = 0xFFF_FFFF_FFFF;
const TIER: i64 = 1 << 40;
const MAX_TIER_TRIES: u32 = 4095;

/// The ready-order primary key (lower is claimed first).
pub fn primary(order: MemberOrder, prio: i64, tries: u32, attempts: u32) -> i64 {
    match order {
        MemberOrder::PriorityFirst => -prio,
        MemberOrder::RetriesFirst => (if attempts > 0 { 0 } else { TIER }) - prio,
        MemberOrder::StrictCircuit => i64::from(tries.min(MAX_TIER_TRIES)) * TIER - prio,
    }
}

/// Due instants are clamped into what a token can hold.
pub fn clamp_due(due: i64) -> i64 {
    due.clamp(0, MAX_DUE_MS)
}

/// The Redis ready-ZSET member of a member: fixed-width hex of due then id.
#[cfg(test)]
pub fn ready_token(due: i64, id: u64) -> String {
    format!("{:011x}{:010x}", clamp_due(due), id)
}

/// The Redis form of a member id in keys and the wait ZSET.
pub fn id_token(id: u64) -> String {
    format!("{id:010x}")
}

/// The number to dial next: index into `nums`, or `None` when every number is done.
///
/// `last_index` is the index of the number used by the previous completed attempt (for `top_down`).
pub fn choose_number(
    order: NumberOrder,
    nums: &[NumState],
    last_index: Option<usize>,
) -> Option<usize> {
    let usable = |n: &NumState| n.state != CommState::Done;
    match order {
        NumberOrder::ByPriority => {
            let mut best: Option<usize> = None;
            for (i, n) in nums.iter().enumerate() {
                if !usable(n) {
                    continue;
                }
                best = match best {
                    None => Some(i),
                    Some(b) => {
                        let o = &nums[b];
                        let better = n.prio > o.prio
                            || (n.prio == o.prio
                                && (n.att < o.att || (n.att == o.att && n.last < o.last)));
                        Some(if better { i } else { b })
                    }
                };
            }
            best
        }
        NumberOrder::TopDown => {
            let len = nums.len();
            let start = last_index.map_or(0, |l| l + 1);
            (0..len)
                .map(|step| (start + step) % len)
                .find(|&i| usable(&nums[i]))
        }
    }
}

/// The calendar as one operation needs it for one timezone (`""` = the calendar's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TzPoint {
    /// `now` is inside an allowed stretch.
    pub open: bool,
    /// `next_allowed(now)`.
    pub next_now: Option<i64>,
    /// `next_allowed(now + wait_between_retries)`.
    pub next_wait: Option<i64>,
}

/// Evaluates the schedule for one timezone key.
pub fn evaluate(schedule: &dyn Schedule, tz: &str, now_ms: i64, wait_ms: i64) -> TzPoint {
    let tz_opt = (!tz.is_empty()).then_some(tz);
    let now = super::types::from_ms(now_ms);
    let later = now
        .checked_add_signed(Duration::milliseconds(wait_ms))
        .unwrap_or(now);
    TzPoint {
        open: schedule.allowed_until(tz_opt, now).is_some(),
        next_now: schedule.next_allowed(tz_opt, now).map(super::types::ms),
        next_wait: schedule.next_allowed(tz_opt, later).map(super::types::ms),
    }
}

/// The key under which a member's timezone is evaluated.
pub fn tz_key(tz: &Option<String>) -> &str {
    tz.as_deref().unwrap_or("")
}

/// Where a closed-now member goes: the opening of its window (never `now` itself, so a schedule that says
/// "closed" yet "next allowed = now" cannot spin a claim).
pub fn reopen_at(point: &TzPoint, now_ms: i64) -> Option<i64> {
    point.next_now.map(|n| n.max(now_ms + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(prio: i64, att: u32, last: i64) -> NumState {
        NumState {
            prio,
            state: CommState::Idle,
            att,
            last,
            cause: String::new(),
        }
    }

    #[test]
    fn by_priority_picks_highest_priority_then_fewest_attempts_then_least_recent() {
        let nums = vec![num(0, 0, 0), num(5, 2, 10), num(5, 1, 20), num(5, 1, 15)];
        assert_eq!(choose_number(NumberOrder::ByPriority, &nums, None), Some(3));
    }

    #[test]
    fn done_numbers_are_never_chosen() {
        let mut nums = vec![num(9, 0, 0), num(0, 0, 0)];
        nums[0].state = CommState::Done;
        assert_eq!(choose_number(NumberOrder::ByPriority, &nums, None), Some(1));
        nums[1].state = CommState::Done;
        assert_eq!(choose_number(NumberOrder::ByPriority, &nums, None), None);
        assert_eq!(choose_number(NumberOrder::TopDown, &nums, Some(0)), None);
    }

    #[test]
    fn top_down_rotates_through_numbers_in_list_order() {
        let mut nums = vec![num(0, 0, 0), num(0, 0, 0), num(0, 0, 0)];
        assert_eq!(choose_number(NumberOrder::TopDown, &nums, None), Some(0));
        assert_eq!(choose_number(NumberOrder::TopDown, &nums, Some(0)), Some(1));
        assert_eq!(choose_number(NumberOrder::TopDown, &nums, Some(2)), Some(0));
        nums[0].state = CommState::Done;
        assert_eq!(choose_number(NumberOrder::TopDown, &nums, Some(2)), Some(1));
    }

    #[test]
    fn ready_tokens_sort_like_due_then_id() {
        let a = ready_token(1_700_000_000_000, 99);
        let b = ready_token(1_700_000_000_000, 100);
        let c = ready_token(1_700_000_000_001, 1);
        assert!(a < b && b < c);
        assert_eq!(a.len(), 21);
    }

    #[test]
    fn orders_rank_as_documented() {
        use MemberOrder::*;
        // Higher priority first.
        assert!(primary(PriorityFirst, 5, 0, 0) < primary(PriorityFirst, 1, 3, 3));
        // Retried members before fresh ones, whatever the priority.
        assert!(primary(RetriesFirst, -100, 1, 1) < primary(RetriesFirst, 100, 0, 0));
        // Fewer counted tries first.
        assert!(primary(StrictCircuit, -100, 1, 1) < primary(StrictCircuit, 100, 2, 2));
        assert!(primary(StrictCircuit, 7, 1, 1) < primary(StrictCircuit, 6, 1, 4));
    }
}
