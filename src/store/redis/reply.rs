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
    let (current_attempt, active_k) = match field(fields, "a").filter(|a| !a.is_empty()) {
        Some(a) => {
            let mut parts = a.split('|');
            let id = parts.next().unwrap_or_default();
            let k: usize = parts
                .next()
                .and_then(|k| k.parse().ok())
                .ok_or_else(|| format!("active attempt {a:?}: no number index"))?;
            let id = uuid::Uuid::parse_str(id).map_err(|e| format!("attempt id {id:?}: {e}"))?;
            (Some(id), Some(k))
        }
        None => (None, None),
    };
    let mut communications = record::communications(&data, &nums);
    if let Some(c) = active_k.and_then(|k| communications.get_mut(k)) {
        c.state = CommState::Active;
    }
    let member = Member {
        id: MemberId(id),
        name: data.n.clone(),
        priority: int_field(fields, "p")?.unwrap_or(0),
        timezone: field(fields, "z").filter(|z| !z.is_empty()),
        expire: int_field(fields, "x")?.map(from_ms),
        variables: data.v.clone(),
        communications,
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

/// Parses attempt log lines (see [`record::LogEntry::parse_line`]).
pub fn log_lines(
    member: MemberId,
    data: &StaticData,
    h: &str,
) -> Result<Vec<AttemptRecord>, StoreError> {
    h.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            record::LogEntry::parse_line(l)
                .and_then(|e| e.to_record(member, data))
                .map_err(|detail| StoreError::Corrupt {
                    op: "attempts",
                    detail,
                })
        })
        .collect()
}

/// Reading the scripts' table replies (RESP arrays of strings and integers).
pub mod resp {
    use crate::store::error::StoreError;
    use redis::Value;

    pub fn bad(op: &'static str, what: &str, v: &Value) -> StoreError {
        StoreError::Corrupt {
            op,
            detail: format!("{what}: {v:?}"),
        }
    }

    pub fn array<'a>(op: &'static str, v: &'a Value) -> Result<&'a [Value], StoreError> {
        match v {
            Value::Array(a) => Ok(a),
            other => Err(bad(op, "expected an array", other)),
        }
    }

    pub fn string(op: &'static str, v: &Value) -> Result<String, StoreError> {
        match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).map_err(|e| StoreError::Corrupt {
                op,
                detail: e.to_string(),
            }),
            Value::SimpleString(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            other => Err(bad(op, "expected a string", other)),
        }
    }

    pub fn int(op: &'static str, v: &Value) -> Result<i64, StoreError> {
        match v {
            Value::Int(i) => Ok(*i),
            Value::BulkString(_) | Value::SimpleString(_) => {
                let s = string(op, v)?;
                crate::store::record::parse_int(&s).ok_or_else(|| bad(op, "expected an integer", v))
            }
            other => Err(bad(op, "expected an integer", other)),
        }
    }

    pub fn at<'a>(op: &'static str, a: &'a [Value], i: usize) -> Result<&'a Value, StoreError> {
        a.get(i).ok_or_else(|| StoreError::Corrupt {
            op,
            detail: format!("reply too short: no element {i}"),
        })
    }

    /// `{'need', tz...}`: the timezones a script asked for.
    pub fn need(v: &Value) -> Option<Vec<String>> {
        let Value::Array(a) = v else { return None };
        match a.first() {
            Some(Value::BulkString(b)) if b == b"need" => Some(
                a[1..]
                    .iter()
                    .filter_map(|x| string("need", x).ok())
                    .collect(),
            ),
            _ => None,
        }
    }
}
