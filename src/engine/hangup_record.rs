//! The outcome a call leaves in the switch itself when it hangs up, so that a call ending while its engine node is
//! down is still recorded with its real cause (not as a lost attempt) by whichever node takes it back.
//!
//! Each originate sets `api_hangup_hook` (with `origination_nested_vars=true`, without which FreeSWITCH refuses
//! any value holding `${`) to `hash insert/fsdialer/<attempt>/${hangup_cause}|${answer_uepoch}|${end_uepoch}|
//! ${billsec}|${billmsec}`: FreeSWITCH 1.10 runs it at the end of the channel's hangup state, with those variables
//! set, before CHANNEL_HANGUP_COMPLETE. A node that finds an adopted call's channel gone reads
//! `hash select/fsdialer/<attempt>` on the switches; a record is the call's real end.
//!
//! Memory on the switch: mod_hash's `hash insert` has no expiry. The node that records a call's result deletes
//! its entry (`hash delete`, answered `-ERR Not found` when there was none); entries can still be left behind (a
//! node that never comes back for a call no other node takes over, or a delete that reaches the switch before the
//! channel's hook ran), so every node sweeps each switch periodically (`hash_dump db fsdialer`) and deletes entries
//! that ended more than [`KEEP`] ago.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::AttemptId;

/// mod_hash realm of the records.
pub const REALM: &str = "fsdialer";
/// How long a record is kept on the switch before a sweep deletes it: far longer than a lease, so a node that
/// comes back, or a peer that takes the call over, finds it.
pub const KEEP: chrono::Duration = chrono::Duration::hours(1);
/// How often each switch is swept.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// How a call ended, as its hangup hook recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HangupRecord {
    pub cause: String,
    /// `None` when the call was never answered (`answer_uepoch` 0).
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: DateTime<Utc>,
    /// `billsec`.
    pub talk_secs: u32,
    /// `billmsec`.
    pub talk_ms: u64,
}

/// A record that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hangup record {text:?} is not cause|answer_uepoch|end_uepoch|billsec|billmsec: {what}")]
pub struct BadRecord {
    pub text: String,
    pub what: &'static str,
}

/// The value of `api_hangup_hook` for one attempt (sent verbatim: it holds `${…}` and one space).
pub fn hook_value(attempt: AttemptId) -> String {
    format!(
        "hash insert/{REALM}/{attempt}/${{hangup_cause}}|${{answer_uepoch}}|${{end_uepoch}}|${{billsec}}|${{billmsec}}"
    )
}

/// The api command reading an attempt's record.
pub fn select_command(attempt: AttemptId) -> String {
    format!("hash select/{REALM}/{attempt}")
}

/// The api command deleting an attempt's record.
pub fn delete_command(attempt: AttemptId) -> String {
    format!("hash delete/{REALM}/{attempt}")
}

/// The api command listing every record (for the sweep).
pub fn dump_command() -> String {
    format!("hash_dump db {REALM}")
}

/// What FreeSWITCH's event socket answers for an api whose output is empty (mod_event_socket `api_exec`): a
/// `hash select` of a missing key, a `hash_dump` of an empty realm.
pub const NO_OUTPUT: &str = "-ERR no reply";

/// The reply of [`select_command`]: `None` when there is no record (an empty output, [`NO_OUTPUT`] over ESL).
pub fn parse_select(reply: &str) -> Result<Option<HangupRecord>, BadRecord> {
    let text = reply.trim_end_matches(['\n', '\r']);
    if text.is_empty() || text == NO_OUTPUT {
        return Ok(None);
    }
    let bad = |what| BadRecord {
        text: text.to_owned(),
        what,
    };
    if text.starts_with("-ERR") {
        return Err(bad("the switch refused the command"));
    }
    let fields: Vec<&str> = text.split('|').collect();
    let [cause, answer, end, billsec, billmsec] = fields[..] else {
        return Err(bad("not five fields"));
    };
    if cause.is_empty() || !cause.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return Err(bad("no hangup cause"));
    }
    let epoch = |s: &str| -> Result<i64, BadRecord> { s.parse::<i64>().map_err(|_| bad("epoch")) };
    let at = |micros: i64| DateTime::from_timestamp_micros(micros).ok_or_else(|| bad("epoch"));
    let answer = epoch(answer)?;
    Ok(Some(HangupRecord {
        cause: cause.to_owned(),
        answered_at: if answer > 0 { Some(at(answer)?) } else { None },
        ended_at: at(epoch(end)?)?,
        talk_secs: billsec.parse().map_err(|_| bad("billsec"))?,
        talk_ms: billmsec.parse().map_err(|_| bad("billmsec"))?,
    }))
}

/// The attempts of a `hash_dump db fsdialer` reply whose record ended before `before` (or cannot be read).
pub fn stale_in_dump(reply: &str, before: DateTime<Utc>) -> Vec<AttemptId> {
    let prefix = format!("D/{REALM}_");
    reply
        .lines()
        .filter_map(|line| {
            let (key, value) = line.strip_prefix(&prefix)?.split_once('/')?;
            let attempt = Uuid::parse_str(key).ok()?;
            let stale = match parse_select(value) {
                Ok(Some(r)) => r.ended_at < before,
                _ => true,
            };
            stale.then_some(attempt)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "5d0c6f0e-1111-4a5e-9d9e-000000000001";

    #[test]
    fn hook_and_commands_name_the_attempt_in_the_realm() {
        let a = Uuid::parse_str(A).unwrap();
        assert_eq!(
            hook_value(a),
            format!(
                "hash insert/fsdialer/{A}/${{hangup_cause}}|${{answer_uepoch}}|${{end_uepoch}}|${{billsec}}|${{billmsec}}"
            )
        );
        assert_eq!(select_command(a), format!("hash select/fsdialer/{A}"));
        assert_eq!(delete_command(a), format!("hash delete/fsdialer/{A}"));
    }

    #[test]
    fn records_parse_answered_or_not_and_bad_ones_are_refused_by_name() {
        let r = parse_select("NORMAL_CLEARING|1700000000000000|1700000008012000|8|8012")
            .unwrap()
            .unwrap();
        assert_eq!(r.cause, "NORMAL_CLEARING");
        assert_eq!(r.answered_at.unwrap().timestamp(), 1_700_000_000);
        assert_eq!(r.ended_at.timestamp_micros(), 1_700_000_008_012_000);
        assert_eq!((r.talk_secs, r.talk_ms), (8, 8012));
        let busy = parse_select("USER_BUSY|0|1700000003000000|0|0\n")
            .unwrap()
            .unwrap();
        assert_eq!(busy.answered_at, None);
        assert_eq!(parse_select("").unwrap(), None);
        assert_eq!(parse_select("-ERR no reply\n").unwrap(), None);
        for bad in [
            "-ERR Usage: hash insert|select",
            "|0|1|0|0",
            "USER_BUSY|0|1|0",
            "USER_BUSY|x|1|0|0",
            "USER_BUSY|0|1|-1|0",
        ] {
            assert!(parse_select(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sweep_picks_old_and_unreadable_records_of_the_realm_only() {
        let dump = format!(
            "D/fsdialer_{A}/NORMAL_CLEARING|0|100000000|0|0\nD/fsdialer_5d0c6f0e-1111-4a5e-9d9e-000000000002/NO_ANSWER|0|900000000|0|0\nD/fsdialer_5d0c6f0e-1111-4a5e-9d9e-000000000003/garbage\nD/other_{A}/x\n"
        );
        let before = DateTime::from_timestamp(500, 0).unwrap();
        let stale: Vec<String> = stale_in_dump(&dump, before)
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            stale,
            vec![A.to_string(), "5d0c6f0e-1111-4a5e-9d9e-000000000003".into()]
        );
    }
}
