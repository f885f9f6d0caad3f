//! Member validation at the API boundary: a JSON value (or a CSV row) becomes a [`MemberInput`], or the list of
//! what is wrong with it, each problem with the path of the field (`communications[1].number: empty`,
//! `timezone: unknown timezone "X"`, `[3].name: missing`).
//!
//! The store validates members too (it must: it is the last line of defence for every caller), but it reports
//! the first problem of a batch in its own words. Here every rule of the store is applied first — plus the
//! API's own (numbers must be safe in a dial string) — so a batch the API accepts is a batch the store accepts,
//! and a batch it refuses is refused before anything is written.
//!
//! Accepted forms, chosen for Webitel v3 clients: `expire` as epoch milliseconds (Webitel's form) or an RFC 3339
//! string; a `number` given as a JSON integer is taken as its digits; an empty `timezone` means "the calendar's".
//! Read-only fields of the member view (`id`, `_id`, `state`, `tries`…) are ignored so a client may GET a member,
//! change it and PUT it back; any other unknown field is refused (a misspelt `communication` would otherwise
//! silently drop the numbers).

use crate::campaign::calendar::parse_timezone;
use crate::campaign::error::{FieldError, join_path};
use crate::campaign::gateway::is_dial_safe;
use crate::campaign::member::{CommunicationInput, MemberInput, MemberLimits};
use crate::store::{MAX_ABS_PRIORITY, priority_in_range};
use crate::text::prefix;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

/// Longest text the store accepts in a name, number, variable or external id (bytes).
pub const MAX_TEXT: usize = 4096;
/// Most numbers one member may have.
pub const MAX_COMMUNICATIONS: usize = 64;
/// Most problems reported for one request.
pub const MAX_REPORTED: usize = 20;

const MEMBER_FIELDS: &[&str] = &[
    "name",
    "priority",
    "timezone",
    "expire",
    "variables",
    "communications",
    "external_id",
];
/// Fields of the member view (GET) that a PUT may send back unchanged: ignored.
const MEMBER_READ_ONLY: &[&str] = &[
    "_id",
    "id",
    "dialer",
    "state",
    "next_due",
    "tries",
    "attempts",
    "end_cause",
    "success",
    "current_attempt",
    "terminate_pending",
];
const COMM_FIELDS: &[&str] = &["number", "priority", "description", "type"];
const COMM_READ_ONLY: &[&str] = &["state", "attempts", "last_call_at", "last_cause"];

fn err(path: &str, field: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(join_path(path, field), message)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_text(errors: &mut Vec<FieldError>, path: &str, field: &str, s: &str) -> bool {
    if s.len() > MAX_TEXT {
        errors.push(err(path, field, format!("longer than {MAX_TEXT} bytes")));
        return false;
    }
    true
}

fn integer(
    errors: &mut Vec<FieldError>,
    path: &str,
    field: &str,
    v: Option<&Value>,
) -> Option<i64> {
    match v {
        None | Some(Value::Null) => Some(0),
        Some(Value::Number(n)) => {
            let i = n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            });
            match i {
                Some(i) if priority_in_range(i) => Some(i),
                Some(i) => {
                    errors.push(err(
                        path,
                        field,
                        format!("{i} is outside ±{MAX_ABS_PRIORITY}"),
                    ));
                    None
                }
                None => {
                    errors.push(err(path, field, format!("must be an integer, got {n}")));
                    None
                }
            }
        }
        Some(other) => {
            errors.push(err(
                path,
                field,
                format!("must be an integer, got {}", type_name(other)),
            ));
            None
        }
    }
}

/// `expire`: epoch milliseconds (Webitel) or an RFC 3339 instant.
pub fn parse_expire(v: &Value) -> Result<Option<DateTime<Utc>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let ms = n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .ok_or_else(|| format!("{n}: epoch milliseconds must be an integer"))?;
            Utc.timestamp_millis_opt(ms)
                .single()
                .map(Some)
                .ok_or_else(|| format!("{ms}: epoch milliseconds out of range"))
        }
        Value::String(s) => parse_expire_text(s),
        other => Err(format!(
            "must be epoch milliseconds or an RFC 3339 instant, got {}",
            type_name(other)
        )),
    }
}

/// `expire` as text (CSV): empty = none, digits = epoch milliseconds, else RFC 3339.
pub fn parse_expire_text(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = s
            .parse()
            .map_err(|_| format!("{:?}: epoch milliseconds out of range", prefix(s)))?;
        return Utc
            .timestamp_millis_opt(ms)
            .single()
            .map(Some)
            .ok_or_else(|| format!("{:?}: epoch milliseconds out of range", prefix(s)));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            format!(
                "{:?}: expected epoch milliseconds or an RFC 3339 instant like 2025-06-01T18:00:00Z",
                prefix(s)
            )
        })
}

/// A number: trimmed, non-empty, safe in a dial string.
pub fn check_number(raw: &str) -> Result<String, String> {
    let n = raw.trim();
    if n.is_empty() {
        return Err("empty".into());
    }
    if n.len() > MAX_TEXT {
        return Err(format!("longer than {MAX_TEXT} bytes"));
    }
    if !is_dial_safe(n) {
        return Err(format!(
            "{:?}: only letters, digits and + * # . - _ may appear in a number",
            prefix(n)
        ));
    }
    Ok(n.to_string())
}

/// A timezone: empty = none (the calendar's), else an IANA name.
pub fn check_timezone(raw: &str) -> Result<Option<String>, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    parse_timezone(t).map(|_| Some(t.to_string()))
}

/// Checks one variable (name and value) as the store will.
pub fn check_variable(name: &str, v: &Value) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty variable name".into());
    }
    if name.len() > MAX_TEXT {
        return Err(format!("name longer than {MAX_TEXT} bytes"));
    }
    match v {
        Value::String(s) if s.len() > MAX_TEXT => Err(format!("longer than {MAX_TEXT} bytes")),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        other => Err(format!(
            "must be a string, number or boolean, got {}",
            type_name(other)
        )),
    }
}

fn communication(
    errors: &mut Vec<FieldError>,
    path: &str,
    v: &Value,
) -> Option<CommunicationInput> {
    let Value::Object(o) = v else {
        errors.push(err(
            path,
            "",
            format!(
                "must be an object {{number, priority}}, got {}",
                type_name(v)
            ),
        ));
        return None;
    };
    let before = errors.len();
    for k in o.keys() {
        if !COMM_FIELDS.contains(&k.as_str()) && !COMM_READ_ONLY.contains(&k.as_str()) {
            errors.push(err(
                path,
                &prefix(k),
                format!("unknown field (expected one of {})", COMM_FIELDS.join(", ")),
            ));
        }
    }
    let number = match o.get("number") {
        None | Some(Value::Null) => {
            errors.push(err(path, "number", "missing"));
            None
        }
        Some(Value::String(s)) => match check_number(s) {
            Ok(n) => Some(n),
            Err(m) => {
                errors.push(err(path, "number", m));
                None
            }
        },
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(other) => {
            errors.push(err(
                path,
                "number",
                format!("must be a string, got {}", type_name(other)),
            ));
            None
        }
    };
    let priority = integer(errors, path, "priority", o.get("priority"));
    let text = |errors: &mut Vec<FieldError>, field: &str| -> Option<String> {
        match o.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                check_text(errors, path, field, s);
                Some(s.clone())
            }
            Some(other) => {
                errors.push(err(
                    path,
                    field,
                    format!("must be a string, got {}", type_name(other)),
                ));
                None
            }
        }
    };
    let description = text(errors, "description");
    let kind = text(errors, "type");
    if errors.len() > before {
        return None;
    }
    Some(CommunicationInput {
        number: number?,
        priority: priority?,
        description,
        kind,
    })
}

/// Validates one member object, within `limits`; `path` prefixes every error (`""` for a lone member, `[3]` in an
/// array).
pub fn member(
    path: &str,
    v: &Value,
    limits: &MemberLimits,
) -> Result<MemberInput, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Value::Object(o) = v else {
        return Err(vec![err(
            path,
            "",
            format!("a member must be an object, got {}", type_name(v)),
        )]);
    };
    for k in o.keys() {
        if !MEMBER_FIELDS.contains(&k.as_str()) && !MEMBER_READ_ONLY.contains(&k.as_str()) {
            errors.push(err(
                path,
                &prefix(k),
                format!(
                    "unknown field (expected one of {})",
                    MEMBER_FIELDS.join(", ")
                ),
            ));
        }
    }
    let name = match o.get("name") {
        None | Some(Value::Null) => {
            errors.push(err(path, "name", "missing"));
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.push(err(path, "name", "empty"));
            None
        }
        Some(Value::String(s)) => check_text(&mut errors, path, "name", s).then(|| s.clone()),
        Some(other) => {
            errors.push(err(
                path,
                "name",
                format!("must be a string, got {}", type_name(other)),
            ));
            None
        }
    };
    let priority = integer(&mut errors, path, "priority", o.get("priority"));
    let timezone = match o.get("timezone") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => match check_timezone(s) {
            Ok(t) => Some(t),
            Err(m) => {
                errors.push(err(path, "timezone", m));
                None
            }
        },
        Some(other) => {
            errors.push(err(
                path,
                "timezone",
                format!("must be a string, got {}", type_name(other)),
            ));
            None
        }
    };
    let expire = match o.get("expire").map(parse_expire).unwrap_or(Ok(None)) {
        Ok(e) => Some(e),
        Err(m) => {
            errors.push(err(path, "expire", m));
            None
        }
    };
    let variables = match o.get("variables") {
        None | Some(Value::Null) => Some(Map::new()),
        Some(Value::Object(vars)) => {
            let before = errors.len();
            for (k, val) in vars {
                if let Err(m) = check_variable(k, val) {
                    let field = if k.is_empty() {
                        "variables".to_string()
                    } else {
                        format!("variables.{}", prefix(k))
                    };
                    errors.push(err(path, &field, m));
                }
            }
            (errors.len() == before).then(|| vars.clone())
        }
        Some(other) => {
            errors.push(err(
                path,
                "variables",
                format!("must be an object, got {}", type_name(other)),
            ));
            None
        }
    };
    let communications = match o.get("communications") {
        None | Some(Value::Null) => {
            errors.push(err(
                path,
                "communications",
                "missing (at least one number is required)",
            ));
            None
        }
        Some(Value::Array(a)) if a.is_empty() => {
            errors.push(err(
                path,
                "communications",
                "empty (at least one number is required)",
            ));
            None
        }
        Some(Value::Array(a)) if a.len() > MAX_COMMUNICATIONS => {
            errors.push(err(
                path,
                "communications",
                format!(
                    "{} numbers; at most {MAX_COMMUNICATIONS} are allowed",
                    a.len()
                ),
            ));
            None
        }
        Some(Value::Array(a)) => {
            let comms: Vec<Option<CommunicationInput>> = a
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    communication(
                        &mut errors,
                        &join_path(path, &format!("communications[{i}]")),
                        c,
                    )
                })
                .collect();
            comms.into_iter().collect::<Option<Vec<_>>>()
        }
        Some(other) => {
            errors.push(err(
                path,
                "communications",
                format!("must be an array, got {}", type_name(other)),
            ));
            None
        }
    };
    let external_id = match o.get("external_id") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.is_empty() => {
            errors.push(err(path, "external_id", "empty"));
            None
        }
        Some(Value::String(s)) => {
            check_text(&mut errors, path, "external_id", s).then(|| Some(s.clone()))
        }
        Some(other) => {
            errors.push(err(
                path,
                "external_id",
                format!("must be a string, got {}", type_name(other)),
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    match (
        name,
        priority,
        timezone,
        expire,
        variables,
        communications,
        external_id,
    ) {
        (
            Some(name),
            Some(priority),
            Some(timezone),
            Some(expire),
            Some(variables),
            Some(communications),
            Some(external_id),
        ) => {
            let m = MemberInput {
                name,
                priority,
                timezone,
                expire,
                variables,
                communications,
                external_id,
            };
            limits
                .check(&m)
                .map_err(|e| vec![err(path, e.field().unwrap_or(""), e.to_string())])?;
            Ok(m)
        }
        _ => Err(vec![err(path, "", "invalid member")]),
    }
}

/// A request body of members: one object or an array of them. Returns the members and whether an array was sent.
/// Every problem of every member is collected (up to [`MAX_REPORTED`] are kept).
pub fn members(
    v: &Value,
    limits: &MemberLimits,
) -> Result<(Vec<MemberInput>, bool), Vec<FieldError>> {
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(vec![FieldError::new("", "empty array: no members to add")]);
            }
            let mut out = Vec::with_capacity(items.len());
            let mut errors = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match member(&format!("[{i}]"), item, limits) {
                    Ok(m) => out.push(m),
                    Err(e) => {
                        let room = MAX_REPORTED.saturating_sub(errors.len());
                        errors.extend(e.into_iter().take(room));
                    }
                }
            }
            if errors.is_empty() {
                Ok((out, true))
            } else {
                Err(errors)
            }
        }
        Value::Object(_) => member("", v, limits).map(|m| (vec![m], false)),
        other => Err(vec![FieldError::new(
            "",
            format!(
                "expected a member object or an array of members, got {}",
                type_name(other)
            ),
        )]),
    }
}

/// Joins problems into one `info` line.
pub fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one_error(v: Value) -> String {
        join(&members(&v, &MemberLimits::default()).unwrap_err())
    }

    #[test]
    fn the_webitel_documentation_member_is_accepted_as_is() {
        let v = json!({
            "name": "Igor",
            "priority": 0,
            "timezone": "Europe/Kiev",
            "variables": {"debt": 20000, "language": "ru", "productID": "8fd26a17-eb28-4c74-aa6f-a3794f4f466c"},
            "communications": [{"number": "380931234567", "priority": 1}, {"number": "380441234567", "priority": 0}]
        });
        let (m, array) = members(&v, &MemberLimits::default()).unwrap();
        assert!(!array);
        assert_eq!(m[0].name, "Igor");
        assert_eq!(m[0].timezone.as_deref(), Some("Europe/Kiev"));
        assert_eq!(m[0].variables["debt"], json!(20000));
        assert_eq!(m[0].communications[0].priority, 1);
    }

    #[test]
    fn each_problem_names_its_field_path() {
        assert_eq!(
            one_error(json!({"name": "a", "communications": [{"number": "1"}, {"number": " "}]})),
            "communications[1].number: empty"
        );
        assert_eq!(
            one_error(json!({"name": "a", "timezone": "X", "communications": [{"number": "1"}]})),
            "timezone: unknown timezone \"X\" (expected an IANA name like \"Europe/Kyiv\")"
        );
        assert_eq!(
            one_error(
                json!([{"name": "a", "communications": [{"number": "1"}]}, {"communications": []}])
            ),
            "[1].name: missing; [1].communications: empty (at least one number is required)"
        );
        assert_eq!(
            one_error(
                json!({"name": "a", "priority": "high", "communications": [{"number": "1"}]})
            ),
            "priority: must be an integer, got a string"
        );
        assert_eq!(
            one_error(
                json!({"name": "a", "variables": {"x": {"y": 1}}, "communications": [{"number": "1"}]})
            ),
            "variables.x: must be a string, number or boolean, got an object"
        );
        assert_eq!(
            one_error(json!({"name": "a", "communications": [{"number": "1,2"}]})),
            "communications[0].number: \"1,2\": only letters, digits and + * # . - _ may appear in a number"
        );
        assert_eq!(
            one_error(json!({"name": "a", "communication": [{"number": "1"}]})),
            "communication: unknown field (expected one of name, priority, timezone, expire, variables, communications, external_id); communications: missing (at least one number is required)"
        );
        assert_eq!(
            one_error(json!("x")),
            "expected a member object or an array of members, got a string"
        );
        assert_eq!(one_error(json!([])), "empty array: no members to add");
    }

    #[test]
    fn expire_takes_epoch_milliseconds_or_rfc3339() {
        let ms = parse_expire(&json!(1_700_000_000_000i64)).unwrap().unwrap();
        assert_eq!(ms.timestamp_millis(), 1_700_000_000_000);
        let t = parse_expire(&json!("2025-06-01T18:00:00+03:00"))
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2025-06-01T15:00:00+00:00");
        assert!(
            parse_expire(&json!("tomorrow"))
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert_eq!(parse_expire_text("").unwrap(), None);
    }

    #[test]
    fn read_only_view_fields_are_ignored_so_a_get_can_be_put_back() {
        let v = json!({"_id": "3", "id": 3, "state": "waiting", "name": "a", "tries": 2,
            "communications": [{"number": "1", "state": "idle", "attempts": 0}]});
        assert!(members(&v, &MemberLimits::default()).is_ok());
    }

    #[test]
    fn errors_are_capped_per_request() {
        let v = Value::Array((0..100).map(|_| json!({})).collect());
        assert_eq!(
            members(&v, &MemberLimits::default()).unwrap_err().len(),
            MAX_REPORTED
        );
    }
}
