//! Decoding the scripts' replies. Every script answers one JSON string (built with `cjson` in Lua), which keeps
//! the Redis-to-Rust boundary to one well-defined format instead of nested RESP arrays.

use crate::store::error::StoreError;
use crate::store::record::{self, StaticData, parse_int};
use crate::store::types::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Lua's cjson writes an empty table as `{}`: accept that where a list is expected.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum L<T> {
        Seq(Vec<T>),
        Map(serde_json::Map<String, Value>),
    }
    match L::deserialize(d)? {
        L::Seq(v) => Ok(v),
        L::Map(m) if m.is_empty() => Ok(Vec::new()),
        L::Map(_) => Err(serde::de::Error::custom("expected a list")),
    }
}

pub fn parse<T: DeserializeOwned>(op: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        op,
        detail: format!("{e} in {}", truncate(s)),
    })
}

fn truncate(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A member's fields as `get.lua`/`list.lua` return them, in this order.
pub const VIEW_FIELDS: [&str; 16] = [
    "n", "v", "c", "p", "z", "x", "e", "s", "w", "t", "b", "u", "a", "q", "y", "o",
];

fn field(fields: &[Value], name: &str) -> Option<String> {
    let i = VIEW_FIELDS.iter().position(|f| *f == name)?;
    match fields.get(i)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int_field(fields: &[Value], name: &str) -> Result<Option<i64>, String> {
    match field(fields, name) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => parse_int(&s)
            .map(Some)
            .ok_or_else(|| format!("field {name}: not an integer: {s:?}")),
    }
}

/// A member's static data from its `n`, `v` and `c` fields.
pub fn static_data(name: String, vars: Option<&str>, comms: &str) -> Result<StaticData, String> {
    let v = match vars {
        None | Some("") => serde_json::Map::new(),
        Some(v) => serde_json::from_str(v).map_err(|e| format!("member variables: {e}"))?,
    };
    let c = serde_json::from_str(comms).map_err(|e| format!("member numbers: {e}"))?;
    Ok(StaticData { n: name, v, c })
}

/// Builds the API view of a member from its stored fields; also returns its static data.
pub fn member_view(id: u64, fields: &[Value]) -> Result<(Member, StaticData), String> {
    let data = static_data(
        field(fields, "n").ok_or("member without a name")?,
        field(fields, "v").as_deref(),
        &field(fields, "c").ok_or("member without numbers")?,
    )?;
    let nums = record::unpack_nums(&field(fields, "u").unwrap_or_default())?;
    let s = field(fields, "s").unwrap_or_else(|| "r".into());
    let state = match s.as_str() {
        "r" | "w" => MemberState::Waiting,
        "a" => MemberState::Active,
        "e" => MemberState::Ended,
        other => return Err(format!("unknown state {other:?}")),
    };
    let current_attempt = match field(fields, "a") {
        Some(a) => Some(uuid::Uuid::parse_str(&a).map_err(|e| format!("attempt id {a:?}: {e}"))?),
        None => None,
    };
    let member = Member {
        id: MemberId(id),
        name: data.n.clone(),
        priority: int_field(fields, "p")?.unwrap_or(0),
        timezone: field(fields, "z").filter(|z| !z.is_empty()),
        expire: int_field(fields, "x")?.map(from_ms),
        variables: data.v.clone(),
        communications: record::communications(&data, &nums),
        external_id: field(fields, "e").filter(|e| !e.is_empty()),
        state,
        next_due: if state == MemberState::Waiting {
            int_field(fields, "w")?.map(from_ms)
        } else {
            None
        },
        tries: int_field(fields, "t")?.unwrap_or(0) as u32,
        attempts: int_field(fields, "b")?.unwrap_or(0) as u32,
        end_cause: if state == MemberState::Ended {
            field(fields, "y")
        } else {
            None
        },
        success: field(fields, "o").as_deref() == Some("1"),
        current_attempt,
        terminate_pending: field(fields, "q").as_deref() == Some("1"),
    };
    Ok((member, data))
}

/// `{"e": cause, "s": 0|1}` or `{"d": due_ms}` as written by `apply` in the prelude.
#[derive(Debug, Deserialize)]
pub struct FateReply {
    e: Option<String>,
    #[serde(default)]
    s: u8,
    d: Option<i64>,
}

impl FateReply {
    pub fn into_fate(self) -> Result<MemberFate, StoreError> {
        match (self.e, self.d) {
            (Some(cause), _) => Ok(MemberFate::Ended {
                cause,
                success: self.s == 1,
            }),
            (None, Some(d)) => Ok(MemberFate::Due(from_ms(d))),
            _ => Err(StoreError::Corrupt {
                op: "complete",
                detail: "fate without end or due".into(),
            }),
        }
    }
}

/// Parses attempt log lines (one JSON object per line).
pub fn log_lines(
    member: MemberId,
    data: &StaticData,
    h: &str,
) -> Result<Vec<AttemptRecord>, StoreError> {
    h.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let e: record::LogEntry = parse("attempts", l)?;
            e.to_record(member, data)
                .map_err(|detail| StoreError::Corrupt {
                    op: "attempts",
                    detail,
                })
        })
        .collect()
}
