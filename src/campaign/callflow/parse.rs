//! Reading a callflow from its JSON form into [`Step`]s, with the path of every problem.
//!
//! Hand-written over `serde_json::Value` rather than derived, because the error has to say *where* in a nested
//! tree of one-key objects the problem is (`[3].if.then[0].playback: missing "file"`), and serde's derived errors
//! cannot. Unknown arguments are refused before missing ones are reported, so a typo (`"fiel"`) is named as such.

use super::expr::Expr;
use super::template::{Template, is_channel_var_name};
use super::{DEFAULT_DIGITS_VAR, IfStep, PlayAndGetDigits, Step, SwitchStep};
use crate::campaign::causes::is_known_cause;
use crate::campaign::error::FieldError;
use serde_json::{Map, Value};

/// The applications a step may name.
pub const APPLICATIONS: &[&str] = &[
    "answer",
    "playback",
    "sleep",
    "set",
    "play_and_get_digits",
    "if",
    "switch",
    "transfer",
    "bridge",
    "record_session",
    "result",
    "hangup",
];

/// Deepest nesting of `if` / `switch` accepted.
pub const MAX_NESTING: usize = 32;

pub(super) fn callflow(value: &Value) -> Result<Vec<Step>, FieldError> {
    steps(value, "", 0)
}

/// What a JSON value is, for error messages (`got a string "x"`).
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn steps(value: &Value, path: &str, depth: usize) -> Result<Vec<Step>, FieldError> {
    if depth > MAX_NESTING {
        return Err(FieldError::new(
            path,
            format!("steps nested deeper than {MAX_NESTING} levels"),
        ));
    }
    let list = value.as_array().ok_or_else(|| {
        FieldError::new(
            path,
            format!("must be an array of steps, got {}", describe(value)),
        )
    })?;
    list.iter()
        .enumerate()
        .map(|(i, s)| step(s, &format!("{path}[{i}]"), depth))
        .collect()
}

fn step(value: &Value, path: &str, depth: usize) -> Result<Step, FieldError> {
    let Some(obj) = value.as_object() else {
        return Err(FieldError::new(
            path,
            format!(
                "a step must be an object with one key, the application, like {{\"playback\": {{\"file\": \"...\"}}}}; got {}",
                describe(value)
            ),
        ));
    };
    let mut keys = obj.keys();
    let (Some(app), None) = (keys.next(), keys.next()) else {
        let names: Vec<String> = obj.keys().map(|k| format!("{k:?}")).collect();
        let got = if names.is_empty() {
            "none".to_string()
        } else {
            format!("{}: {}", names.len(), names.join(", "))
        };
        return Err(FieldError::new(
            path,
            format!("a step must have exactly one key, the application; got {got}"),
        ));
    };
    let body = &obj[app];
    let here = format!("{path}.{app}");
    let here = here.as_str();
    Ok(match app.as_str() {
        "answer" => {
            Args::new(body, here, &[])?;
            Step::Answer
        }
        "playback" => {
            let mut a = Args::new(body, here, &["file"])?;
            Step::Playback {
                file: a.req_template("file")?,
            }
        }
        "sleep" => {
            let mut a = Args::new(body, here, &["ms"])?;
            Step::Sleep {
                ms: a.req_uint("ms", 0, 86_400_000)?,
            }
        }
        "set" => set(body, here)?,
        "play_and_get_digits" => play_and_get_digits(body, here)?,
        "if" => {
            let mut a = Args::new(body, here, &["expr", "then", "else"])?;
            let source = a.req_string("expr")?;
            let expr = Expr::parse(source)
                .map_err(|e| FieldError::new(format!("{here}.expr"), e.to_string()))?;
            let then = steps(a.req("then")?, &format!("{here}.then"), depth + 1)?;
            let otherwise = match a.get("else") {
                Some(v) => steps(v, &format!("{here}.else"), depth + 1)?,
                None => Vec::new(),
            };
            Step::If(IfStep {
                expr,
                then,
                otherwise,
            })
        }
        "switch" => {
            let mut a = Args::new(body, here, &["var", "cases", "default"])?;
            let var = a.req_string("var")?;
            if !super::template::is_reference_name(var) {
                return Err(FieldError::new(
                    format!("{here}.var"),
                    format!(
                        "{var:?} is not a variable name (write the name alone, like \"digits\", not \"${{digits}}\")"
                    ),
                ));
            }
            let cases_value = a.req("cases")?;
            let cases_obj = cases_value.as_object().ok_or_else(|| {
                FieldError::new(
                    format!("{here}.cases"),
                    format!(
                        "must be an object mapping values to steps, like {{\"1\": [...]}}; got {}",
                        describe(cases_value)
                    ),
                )
            })?;
            let mut cases = Vec::with_capacity(cases_obj.len());
            for (key, v) in cases_obj {
                let simple =
                    !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_');
                let case_path = if simple {
                    format!("{here}.cases.{key}")
                } else {
                    format!("{here}.cases[{key:?}]")
                };
                cases.push((key.clone(), steps(v, &case_path, depth + 1)?));
            }
            let default = match a.get("default") {
                Some(v) => steps(v, &format!("{here}.default"), depth + 1)?,
                None => Vec::new(),
            };
            Step::Switch(SwitchStep {
                var: var.to_string(),
                cases,
                default,
            })
        }
        "transfer" => {
            let mut a = Args::new(body, here, &["extension", "dialplan", "context"])?;
            Step::Transfer {
                extension: a.req_template("extension")?,
                dialplan: a.opt_template("dialplan")?,
                context: a.opt_template("context")?,
            }
        }
        "bridge" => {
            let mut a = Args::new(body, here, &["endpoint"])?;
            Step::Bridge {
                endpoint: a.req_template("endpoint")?,
            }
        }
        "record_session" => {
            let mut a = Args::new(body, here, &["path"])?;
            Step::RecordSession {
                path: a.req_template("path")?,
            }
        }
        "result" => {
            let mut a = Args::new(body, here, &["success"])?;
            Step::Result {
                success: a.req_bool("success")?,
            }
        }
        "hangup" => {
            let mut a = Args::new(body, here, &["cause"])?;
            let cause = a.opt_string("cause")?;
            if let Some(c) = cause
                && !is_known_cause(c)
            {
                return Err(FieldError::new(
                    format!("{here}.cause"),
                    format!("unknown hangup cause {c:?}"),
                ));
            }
            Step::Hangup {
                cause: cause.map(str::to_string),
            }
        }
        other => {
            return Err(FieldError::new(
                path,
                format!(
                    "unknown application {other:?} (expected one of: {})",
                    APPLICATIONS.join(", ")
                ),
            ));
        }
    })
}

fn set(body: &Value, here: &str) -> Result<Step, FieldError> {
    let obj = body.as_object().ok_or_else(|| {
        FieldError::new(
            here,
            format!(
                "expected an object of variables, like {{\"lang\": \"uk\"}}; got {}",
                describe(body)
            ),
        )
    })?;
    if obj.is_empty() {
        return Err(FieldError::new(here, "sets no variable"));
    }
    let mut vars = Vec::with_capacity(obj.len());
    for (name, v) in obj {
        let at = format!("{here}.{name}");
        if !is_channel_var_name(name) {
            return Err(FieldError::new(
                at,
                "bad variable name (ASCII letters, digits and _ only)",
            ));
        }
        let value = match v {
            Value::String(s) => template(s, &at)?,
            Value::Number(n) => Template::literal(&n.to_string()),
            Value::Bool(b) => Template::literal(if *b { "true" } else { "false" }),
            other => {
                return Err(FieldError::new(
                    at,
                    format!(
                        "expected a string, number or boolean, got {}",
                        describe(other)
                    ),
                ));
            }
        };
        vars.push((name.clone(), value));
    }
    Ok(Step::Set { vars })
}

fn play_and_get_digits(body: &Value, here: &str) -> Result<Step, FieldError> {
    let mut a = Args::new(
        body,
        here,
        &[
            "min",
            "max",
            "tries",
            "timeout_ms",
            "file",
            "invalid_file",
            "var",
            "regex",
        ],
    )?;
    let min = a.opt_uint("min", 1, 128)?.unwrap_or(1) as u32;
    let max = a
        .opt_uint("max", min.into(), 128)?
        .map_or(min, |m| m as u32);
    let tries = a.opt_uint("tries", 1, 100)?.unwrap_or(3) as u32;
    let timeout_ms = a.opt_uint("timeout_ms", 1, 600_000)?.unwrap_or(5000);
    let file = a.req_template("file")?;
    let invalid_file = a.opt_template("invalid_file")?;
    let var = a.opt_string("var")?.unwrap_or(DEFAULT_DIGITS_VAR);
    if !is_channel_var_name(var) {
        return Err(FieldError::new(
            format!("{here}.var"),
            format!("{var:?}: a variable name is ASCII letters, digits and _ only"),
        ));
    }
    let regex = match a.opt_string("regex")? {
        None => None,
        Some(r) => {
            let at = format!("{here}.regex");
            if r.chars().any(char::is_whitespace) {
                return Err(FieldError::new(
                    at,
                    "must not contain whitespace (it is passed to FreeSWITCH as one argument)",
                ));
            }
            Some(
                regex::Regex::new(r)
                    .map_err(|e| FieldError::new(at, format!("invalid regex: {e}")))?,
            )
        }
    };
    Ok(Step::PlayAndGetDigits(PlayAndGetDigits {
        min,
        max,
        tries,
        timeout_ms,
        file,
        invalid_file,
        var: var.to_string(),
        regex,
    }))
}

fn template(s: &str, at: &str) -> Result<Template, FieldError> {
    if s.chars().any(char::is_control) {
        return Err(FieldError::new(
            at,
            "must not contain control characters (line breaks, tabs...)",
        ));
    }
    Template::parse(s).map_err(|e| FieldError::new(at, e))
}

/// The arguments object of one step, checked against the names the application takes.
struct Args<'a> {
    path: &'a str,
    map: Option<&'a Map<String, Value>>,
}

impl<'a> Args<'a> {
    /// `body` must be an object whose keys are all in `allowed` (or `null` / `{}` when nothing is required).
    fn new(body: &'a Value, path: &'a str, allowed: &[&str]) -> Result<Args<'a>, FieldError> {
        let map = match body {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => {
                return Err(FieldError::new(
                    path,
                    format!("expected an object of arguments, got {}", describe(other)),
                ));
            }
        };
        if let Some(m) = map
            && let Some(unknown) = m.keys().find(|k| !allowed.contains(&k.as_str()))
        {
            let expected = if allowed.is_empty() {
                "it takes no argument".to_string()
            } else {
                format!("expected: {}", allowed.join(", "))
            };
            return Err(FieldError::new(
                path,
                format!("unknown argument {unknown:?} ({expected})"),
            ));
        }
        Ok(Args { path, map })
    }

    fn field(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(key))
    }

    fn req(&mut self, key: &str) -> Result<&'a Value, FieldError> {
        self.get(key)
            .ok_or_else(|| FieldError::new(self.path, format!("missing {key:?}")))
    }

    fn opt_string(&mut self, key: &str) -> Result<Option<&'a str>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(FieldError::new(
                self.field(key),
                format!("expected a string, got {}", describe(other)),
            )),
        }
    }

    fn req_string(&mut self, key: &str) -> Result<&'a str, FieldError> {
        self.req(key)?;
        Ok(self.opt_string(key)?.expect("present"))
    }

    fn opt_template(&mut self, key: &str) -> Result<Option<Template>, FieldError> {
        let at = self.field(key);
        match self.opt_string(key)? {
            None => Ok(None),
            Some("") => Err(FieldError::new(at, "must not be empty")),
            Some(s) => template(s, &at).map(Some),
        }
    }

    fn req_template(&mut self, key: &str) -> Result<Template, FieldError> {
        self.req(key)?;
        Ok(self.opt_template(key)?.expect("present"))
    }

    fn opt_uint(&mut self, key: &str, min: u64, max: u64) -> Result<Option<u64>, FieldError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(FieldError::new(
                self.field(key),
                format!(
                    "expected an integer from {min} to {max}, got {}",
                    describe(v)
                ),
            )),
        }
    }

    fn req_uint(&mut self, key: &str, min: u64, max: u64) -> Result<u64, FieldError> {
        self.req(key)?;
        Ok(self.opt_uint(key, min, max)?.expect("present"))
    }

    fn req_bool(&mut self, key: &str) -> Result<bool, FieldError> {
        match self.req(key)? {
            Value::Bool(b) => Ok(*b),
            other => Err(FieldError::new(
                self.field(key),
                format!("expected true or false, got {}", describe(other)),
            )),
        }
    }
}
