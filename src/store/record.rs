//! A member as both backends store it: input validation, the compact static record, per-number state.
//!
//! The static part of a member (name, variables, numbers with description and type) never changes between updates
//! and the store's logic barely reads it, so it is kept as compact JSON strings that the scripts return untouched. Everything the queue logic reads (priority, timezone, expire, per-number priority and state)
//! is kept beside it in small fields, see [`NumState`].

use super::error::{StoreError, StoreResult};
use super::types::{CommState, Communication, from_ms, ms};
use crate::campaign::member::{MemberInput, MemberLimits};
use serde::{Deserialize, Serialize};

/// Member and number priorities must fit the ready-queue score (see `rules::primary`).
pub const MAX_ABS_PRIORITY: i64 = 1 << 39;

/// Whether `p` is within ±[`MAX_ABS_PRIORITY`] (without `abs()`, which overflows on `i64::MIN`).
pub fn priority_in_range(p: i64) -> bool {
    (-MAX_ABS_PRIORITY..=MAX_ABS_PRIORITY).contains(&p)
}
/// Longest accepted name, number, variable value, external id (bytes).
const MAX_TEXT: usize = 4096;

/// The static part of a member. Redis keeps its three parts as lines of the member's record (`redis/packed.rs`),
/// which the scripts pass along without parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticData {
    /// name
    pub n: String,
    /// variables
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub v: serde_json::Map<String, serde_json::Value>,
    /// numbers: `[number]`, `[number, description]` or `[number, description|null, type]`
    pub c: Vec<StaticComm>,
}

/// One number's static data, serialized as a short JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticComm {
    pub number: String,
    pub description: Option<String>,
    pub kind: Option<String>,
}

impl Serialize for StaticComm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let len = if self.kind.is_some() {
            3
        } else if self.description.is_some() {
            2
        } else {
            1
        };
        let mut seq = s.serialize_seq(Some(len))?;
        seq.serialize_element(&self.number)?;
        if len >= 2 {
            seq.serialize_element(&self.description)?;
        }
        if len == 3 {
            seq.serialize_element(&self.kind)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for StaticComm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<Option<String>> = Vec::deserialize(d)?;
        let mut it = v.into_iter();
        let number = it
            .next()
            .flatten()
            .ok_or_else(|| serde::de::Error::custom("number entry without a number"))?;
        Ok(StaticComm {
            number,
            description: it.next().flatten(),
            kind: it.next().flatten(),
        })
    }
}

/// Dynamic state of one number: what the queue logic reads and writes.
///
/// Packed in Redis as `prio,state,attempts,last_ms,cause` (trailing defaults omitted), numbers joined by `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumState {
    pub prio: i64,
    pub state: CommState,
    /// Counted attempts.
    pub att: u32,
    /// Claim time of the last attempt, 0 = never.
    pub last: i64,
    pub cause: String,
}

impl NumState {
    pub fn fresh(prio: i64) -> NumState {
        NumState {
            prio,
            state: CommState::Idle,
            att: 0,
            last: 0,
            cause: String::new(),
        }
    }
}

fn state_code(s: CommState) -> &'static str {
    match s {
        CommState::Idle => "i",
        CommState::Active => "a",
        CommState::Done => "d",
    }
}

/// Packs numbers' state the way the Lua scripts read and write it.
pub fn pack_nums(nums: &[NumState]) -> String {
    let mut out = String::new();
    for (i, n) in nums.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        let fields = [
            n.prio.to_string(),
            state_code(n.state).to_string(),
            n.att.to_string(),
            n.last.to_string(),
            n.cause.clone(),
        ];
        let defaults = ["0", "i", "0", "0", ""];
        let mut keep = fields.len();
        while keep > 1 && fields[keep - 1] == defaults[keep - 1] {
            keep -= 1;
        }
        out.push_str(&fields[..keep].join(","));
    }
    out
}

/// Reads what [`pack_nums`] (or a script) wrote.
pub fn unpack_nums(s: &str) -> Result<Vec<NumState>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(';')
        .map(|entry| {
            let mut f = entry.split(',');
            let prio = f.next().unwrap_or("0");
            let prio: i64 =
                parse_int(prio).ok_or_else(|| format!("bad number priority {prio:?}"))?;
            let state = match f.next().unwrap_or("i") {
                "i" | "" => CommState::Idle,
                "a" => CommState::Active,
                "d" => CommState::Done,
                other => return Err(format!("bad number state {other:?}")),
            };
            let att = f.next().unwrap_or("0");
            let att = parse_int(att).ok_or_else(|| format!("bad attempt count {att:?}"))? as u32;
            let last = f.next().unwrap_or("0");
            let last = parse_int(last).ok_or_else(|| format!("bad last call {last:?}"))?;
            let cause = f.next().unwrap_or("").to_string();
            Ok(NumState {
                prio,
                state,
                att,
                last,
                cause,
            })
        })
        .collect()
}

/// Integers written by Lua may come as `12` or `12.0`.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().or_else(|| {
        s.parse::<f64>()
            .ok()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// A validated member, ready to be stored by either backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub data: StaticData,
    /// The variables as stored in Redis (JSON object, `""` when there are none).
    pub vars_json: String,
    /// The numbers as stored in Redis (JSON array of `[number, description?, type?]`).
    pub comms_json: String,
    pub prio: i64,
    pub tz: Option<String>,
    pub expire: Option<i64>,
    pub nums: Vec<NumState>,
    pub ext: Option<String>,
}

fn bad(index: usize, field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidMember {
        index,
        field,
        reason: reason.into(),
    }
}

fn check_text(index: usize, field: &'static str, s: &str) -> StoreResult<()> {
    if s.len() > MAX_TEXT {
        return Err(bad(index, field, format!("longer than {MAX_TEXT} bytes")));
    }
    Ok(())
}

/// Validates a member for storage; `index` is its position in the batch, for the error message.
pub fn prepare(index: usize, m: &MemberInput) -> StoreResult<Prepared> {
    if m.name.trim().is_empty() {
        return Err(bad(index, "name", "must not be empty"));
    }
    check_text(index, "name", &m.name)?;
    if let Err(e) = MemberLimits::CEILING.check(m) {
        return Err(bad(index, e.field().unwrap_or("size"), e.to_string()));
    }
    if !priority_in_range(m.priority) {
        return Err(bad(
            index,
            "priority",
            format!("{} is outside ±{MAX_ABS_PRIORITY}", m.priority),
        ));
    }
    let tz = match &m.timezone {
        None => None,
        Some(t) => {
            if t.parse::<chrono_tz::Tz>().is_err() {
                return Err(bad(
                    index,
                    "timezone",
                    format!("unknown IANA timezone {t:?}"),
                ));
            }
            Some(t.clone())
        }
    };
    for (k, v) in &m.variables {
        if k.is_empty() {
            return Err(bad(index, "variables", "empty variable name"));
        }
        check_text(index, "variables", k)?;
        match v {
            serde_json::Value::String(s) => check_text(index, "variables", s)?,
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {}
            _ => {
                return Err(bad(
                    index,
                    "variables",
                    format!("{k:?} must be a string, number or bool"),
                ));
            }
        }
    }
    if m.communications.is_empty() {
        return Err(bad(
            index,
            "communications",
            "at least one number is required",
        ));
    }
    let mut comms = Vec::with_capacity(m.communications.len());
    let mut nums = Vec::with_capacity(m.communications.len());
    for (i, c) in m.communications.iter().enumerate() {
        let number = c.number.trim();
        if number.is_empty() {
            return Err(bad(
                index,
                "communications",
                format!("number #{i} is empty"),
            ));
        }
        check_text(index, "communications", number)?;
        if !priority_in_range(c.priority) {
            return Err(bad(
                index,
                "communications",
                format!(
                    "number #{i}: priority {} is outside ±{MAX_ABS_PRIORITY}",
                    c.priority
                ),
            ));
        }
        comms.push(StaticComm {
            number: number.to_string(),
            description: c.description.clone(),
            kind: c.kind.clone(),
        });
        nums.push(NumState::fresh(c.priority));
    }
    let ext = match &m.external_id {
        Some(e) if e.is_empty() => return Err(bad(index, "external_id", "must not be empty")),
        Some(e) => {
            check_text(index, "external_id", e)?;
            Some(e.clone())
        }
        None => None,
    };
    let data = StaticData {
        n: m.name.clone(),
        v: m.variables.clone(),
        c: comms,
    };
    let vars_json = if data.v.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&data.v).map_err(|e| bad(index, "variables", e.to_string()))?
    };
    let comms_json =
        serde_json::to_string(&data.c).map_err(|e| bad(index, "communications", e.to_string()))?;
    Ok(Prepared {
        data,
        vars_json,
        comms_json,
        prio: m.priority,
        tz,
        expire: m.expire.map(ms),
        nums,
        ext,
    })
}

/// Builds the API view of a member's numbers from its static and dynamic parts.
pub fn communications(data: &StaticData, nums: &[NumState]) -> Vec<Communication> {
    data.c
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let st = nums.get(i).cloned().unwrap_or_else(|| NumState::fresh(0));
            Communication {
                number: c.number.clone(),
                priority: st.prio,
                description: c.description.clone(),
                kind: c.kind.clone(),
                state: st.state,
                attempts: st.att,
                last_call_at: (st.last != 0).then(|| from_ms(st.last)),
                last_cause: (!st.cause.is_empty()).then(|| st.cause.clone()),
            }
        })
        .collect()
}

/// Refuses a cause string that could not be stored or would break the packed number state.
pub fn check_cause(cause: &str) -> StoreResult<()> {
    let ok = !cause.is_empty()
        && cause.len() <= 64
        && cause
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b' '));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument {
            what: "cause",
            reason: format!("{cause:?}: must be 1..64 characters of A-Z a-z 0-9 _ - . : or space"),
        })
    }
}

/// Refuses a number (a caller ID, a callee) that is empty, longer than `max_len` bytes, or holds anything but
/// ASCII letters, digits and `+ * # . - _` (what may reach a dial string or a key's hash tag).
pub fn check_dial_number(what: &'static str, number: &str, max_len: usize) -> StoreResult<()> {
    if number.is_empty()
        || number.len() > max_len
        || !crate::campaign::gateway::is_dial_safe(number)
    {
        return Err(StoreError::InvalidArgument {
            what,
            reason: format!("{number:?}: 1 to {max_len} ASCII letters, digits or + * # . - _"),
        });
    }
    Ok(())
}

/// Refuses a campaign name that cannot be part of a Redis key with a hash tag.
pub fn check_campaign(name: &str) -> StoreResult<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.len() > 128 {
        "longer than 128 bytes"
    } else if name
        .chars()
        .any(|c| c == '{' || c == '}' || c.is_control() || c.is_whitespace())
    {
        "must not contain braces, spaces or control characters"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidCampaign {
        name: name.to_string(),
        reason: reason.to_string(),
    })
}

/// Refuses a node id that would break the stored lease records.
pub fn check_node(node: &str) -> StoreResult<()> {
    if node.is_empty() || node.len() > 128 || node.chars().any(|c| c.is_control() || c == '|') {
        return Err(StoreError::InvalidArgument {
            what: "node_id",
            reason: format!("{node:?}: 1..128 characters, no control characters or '|'"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::member::CommunicationInput;

    #[test]
    fn the_store_refuses_an_overflowing_priority_and_a_member_over_the_ceiling() {
        let mut m = input();
        m.priority = i64::MIN;
        assert!(matches!(
            prepare(0, &m),
            Err(StoreError::InvalidMember {
                field: "priority",
                ..
            })
        ));
        let mut m = input();
        m.communications[1].priority = i64::MIN;
        assert!(prepare(0, &m).is_err());
        let mut m = input();
        for i in 0..=MemberLimits::CEILING.max_variables {
            m.variables.insert(format!("v{i}"), serde_json::json!(1));
        }
        assert!(matches!(
            prepare(0, &m),
            Err(StoreError::InvalidMember {
                field: "variables",
                ..
            })
        ));
    }

    fn input() -> MemberInput {
        MemberInput {
            name: "Ann".into(),
            priority: 3,
            timezone: Some("Europe/Kyiv".into()),
            expire: None,
            variables: serde_json::from_str(r#"{"a":"1","b":2,"c":true}"#).unwrap(),
            communications: vec![
                CommunicationInput {
                    number: "+380441234567".into(),
                    priority: 0,
                    description: None,
                    kind: None,
                },
                CommunicationInput {
                    number: "+380501234567".into(),
                    priority: 1,
                    description: Some("mobile".into()),
                    kind: None,
                },
            ],
            external_id: None,
        }
    }

    #[test]
    fn static_data_is_compact_json_that_round_trips() {
        let p = prepare(0, &input()).unwrap();
        assert_eq!(p.vars_json, r#"{"a":"1","b":2,"c":true}"#);
        assert_eq!(
            p.comms_json,
            r#"[["+380441234567"],["+380501234567","mobile"]]"#
        );
        let back: Vec<StaticComm> = serde_json::from_str(&p.comms_json).unwrap();
        assert_eq!(back, p.data.c);
    }

    #[test]
    fn number_state_packs_with_trailing_defaults_omitted_and_round_trips() {
        let nums = vec![
            NumState::fresh(0),
            NumState {
                prio: -2,
                state: CommState::Done,
                att: 3,
                last: 1_700_000_000_123,
                cause: "USER_BUSY".into(),
            },
        ];
        let packed = pack_nums(&nums);
        assert_eq!(packed, "0;-2,d,3,1700000000123,USER_BUSY");
        assert_eq!(unpack_nums(&packed).unwrap(), nums);
    }

    #[test]
    fn invalid_members_are_refused_naming_index_and_field() {
        let mut m = input();
        m.communications.clear();
        let e = prepare(4, &m).unwrap_err().to_string();
        assert_eq!(
            e,
            "member #4: communications: at least one number is required"
        );
        let mut m = input();
        m.timezone = Some("Mars/Base".into());
        assert!(prepare(0, &m).unwrap_err().to_string().contains("timezone"));
        let mut m = input();
        m.variables
            .insert("x".into(), serde_json::json!({"nested": 1}));
        assert!(
            prepare(0, &m)
                .unwrap_err()
                .to_string()
                .contains("variables")
        );
        let mut m = input();
        m.priority = 1 << 50;
        assert!(prepare(0, &m).unwrap_err().to_string().contains("priority"));
    }

    #[test]
    fn attempt_log_lines_parse_with_absent_fields_and_a_node_last() {
        let line = "e502fd8a-80a1-4395-92fc-e387f1436cf9|3|1|1709546400040||1709546401000|0|USER_BUSY|retry||0|1709546460000|1709546401000|node-a";
        let e = LogEntry::parse_line(line).unwrap();
        assert_eq!(
            (e.no, e.k, e.m, e.an, e.hu),
            (3, 1, 1_709_546_400_040, None, Some(1_709_546_401_000))
        );
        assert_eq!(
            (e.c.as_str(), e.cl.as_str(), e.fe.clone(), e.fd),
            ("USER_BUSY", "retry", None, Some(1_709_546_460_000))
        );
        assert_eq!(e.g, "node-a");
        assert!(LogEntry::parse_line("too|few|fields").is_err());
    }

    #[test]
    fn attempt_log_lines_written_by_rust_read_back_the_same_entry() {
        let line = "e502fd8a-80a1-4395-92fc-e387f1436cf9|3|1|1709546400040||1709546401000|0|USER_BUSY|retry||0|1709546460000|1709546401000|a%7Cb%0A|node-a";
        let e = LogEntry::parse_line(line).unwrap();
        assert_eq!(e.nt.as_deref(), Some("a|b\n"));
        assert_eq!(e.to_line(), format!("{line}\n"));
        let mut ended = e.clone();
        (ended.fe, ended.fs, ended.fd, ended.nt) = (Some("NORMAL_CLEARING".into()), 1, None, None);
        assert_eq!(
            LogEntry::parse_line(ended.to_line().trim_end()).unwrap(),
            ended
        );
    }

    #[test]
    fn campaign_names_with_braces_are_refused() {
        assert!(check_campaign("c{1}").is_err());
        assert!(check_campaign("").is_err());
        assert!(check_campaign("sales-2024").is_ok());
    }

    #[test]
    fn causes_that_would_break_packing_are_refused() {
        assert!(check_cause("USER_BUSY").is_ok());
        assert!(check_cause("Throttle Error").is_ok());
        assert!(check_cause("A,B").is_err());
        assert!(check_cause("A;B").is_err());
        assert!(check_cause("").is_err());
    }
}

/// One attempt as both backends record it (Redis keeps it as one `|`-separated line, see [`LogEntry::parse_line`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// attempt id
    pub i: uuid::Uuid,
    /// attempt number
    pub no: u32,
    /// number index
    pub k: usize,
    /// node that claimed it
    pub g: String,
    /// claimed (originate) at, ms
    pub m: i64,
    /// answered at, ms
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub an: Option<i64>,
    /// hangup at, ms
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hu: Option<i64>,
    /// talk seconds
    pub ts: u32,
    /// cause
    pub c: String,
    /// class
    pub cl: String,
    /// end cause, when the member ended
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fe: Option<String>,
    /// 1 when it ended with success
    #[serde(default)]
    pub fs: u8,
    /// next due, when the member was rescheduled
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<i64>,
    /// applied at, ms
    pub at: i64,
    /// the result's note (callflow outcome), if any
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nt: Option<String>,
}

/// Escapes a note for the `|`-separated attempt log line: `%`, `|`, `\r` and `\n` become `%25`, `%7C`, `%0D`,
/// `%0A`.
pub fn escape_note(note: &str) -> String {
    let mut out = String::with_capacity(note.len());
    for c in note.chars() {
        match c {
            '%' => out.push_str("%25"),
            '|' => out.push_str("%7C"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_note`].
pub fn unescape_note(text: &str) -> String {
    text.replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%7C", "|")
        .replace("%25", "%")
}

impl LogEntry {
    /// Reads one line of a member's attempt log as the Redis scripts write it:
    /// `attempt|no|k|claimed|answered|hangup|talk|cause|class|end|success|due|at|note|node` (empty = absent; the
    /// note is escaped with [`escape_note`] so it holds no `|` or line break; the node comes last because it is the
    /// only other free-form part). Lines written before notes existed have 14 fields and no note.
    pub fn parse_line(line: &str) -> Result<LogEntry, String> {
        let f: Vec<&str> = line.splitn(15, '|').collect();
        if f.len() != 14 && f.len() != 15 {
            return Err(format!(
                "attempt log line with {} fields: {line:?}",
                f.len()
            ));
        }
        let int = |i: usize| -> Result<i64, String> {
            parse_int(f[i])
                .ok_or_else(|| format!("attempt log field {i}: not an integer: {:?}", f[i]))
        };
        let opt = |i: usize| -> Result<Option<i64>, String> {
            if f[i].is_empty() {
                Ok(None)
            } else {
                int(i).map(Some)
            }
        };
        Ok(LogEntry {
            i: uuid::Uuid::parse_str(f[0])
                .map_err(|e| format!("attempt log id {:?}: {e}", f[0]))?,
            no: int(1)? as u32,
            k: int(2)? as usize,
            m: int(3)?,
            an: opt(4)?,
            hu: opt(5)?,
            ts: int(6)? as u32,
            c: f[7].to_string(),
            cl: f[8].to_string(),
            fe: (!f[9].is_empty()).then(|| f[9].to_string()),
            fs: int(10)? as u8,
            fd: opt(11)?,
            at: int(12)?,
            nt: if f.len() == 15 && !f[13].is_empty() {
                Some(unescape_note(f[13]))
            } else {
                None
            },
            g: f[f.len() - 1].to_string(),
        })
    }

    /// The line [`parse_line`](Self::parse_line) reads, with its trailing newline (as `complete.lua` appends it).
    pub fn to_line(&self) -> String {
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}\n",
            self.i,
            self.no,
            self.k,
            self.m,
            opt(self.an),
            opt(self.hu),
            self.ts,
            self.c,
            self.cl,
            self.fe.as_deref().unwrap_or(""),
            self.fs,
            opt(self.fd),
            self.at,
            self.nt.as_deref().map(escape_note).unwrap_or_default(),
            self.g
        )
    }

    /// The API view, given the member it belongs to.
    pub fn to_record(
        &self,
        member: super::types::MemberId,
        data: &StaticData,
    ) -> Result<super::types::AttemptRecord, String> {
        use super::types::{AttemptRecord, MemberFate, class_from_code};
        let fate = match (&self.fe, self.fd) {
            (Some(cause), _) => MemberFate::Ended {
                cause: cause.clone(),
                success: self.fs == 1,
            },
            (None, Some(due)) => MemberFate::Due(from_ms(due)),
            (None, None) => return Err(format!("attempt {}: no fate recorded", self.i)),
        };
        Ok(AttemptRecord {
            attempt_id: self.i,
            member_id: member,
            attempt_no: self.no,
            comm_index: self.k,
            number: data
                .c
                .get(self.k)
                .map(|c| c.number.clone())
                .unwrap_or_default(),
            node: self.g.clone(),
            originate_at: from_ms(self.m),
            answer_at: self.an.map(from_ms),
            hangup_at: self.hu.map(from_ms),
            talk_secs: self.ts,
            cause: self.c.clone(),
            class: class_from_code(&self.cl)
                .ok_or_else(|| format!("attempt {}: unknown class {:?}", self.i, self.cl))?,
            fate,
            completed_at: from_ms(self.at),
            caller_id: super::caller_ids::caller_id_in_note(self.nt.as_deref()),
            note: self.nt.clone(),
        })
    }
}
