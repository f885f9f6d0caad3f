//! The callflow (SPEC §7): what happens on an answered call, as data.
//!
//! A callflow is written as a JSON array (or a TOML array of tables) of steps, each an object with exactly one
//! key, the application: `[{"answer": {}}, {"playback": {"file": "ivr/hello.wav"}}, ...]`. It is parsed when the
//! campaign is validated into the [`Step`] tree below — with `${name}` strings split into [`Template`]s and `if`
//! conditions parsed into [`Expr`]s — so a broken callflow is refused on save with the path of the bad step
//! (`callflow[3].if.then[0].playback: missing "file"`) and the engine walks a tree that cannot be malformed.
//!
//! This module only describes and validates. Running a step over ESL, escaping rendered values for the
//! application argument, and recording the outcome are the engine's job.

mod expr;
mod parse;
mod template;

pub use expr::{CmpOp, Expr, ExprError, MAX_EXPR_DEPTH, MAX_EXPR_LEN, Operand, compare_values};
pub use parse::{APPLICATIONS, MAX_NESTING};
pub use template::{Segment, Template, is_channel_var_name, is_reference_name};

use super::error::FieldError;

/// A validated callflow: the steps run in order on the answered channel.
#[derive(Debug, Clone, Default)]
pub struct Callflow {
    steps: Vec<Step>,
}

impl Callflow {
    /// Parses a callflow from its JSON form. Errors carry the path of the bad step relative to the callflow
    /// (`[3].if.then[0].playback`); the campaign validator puts `callflow` in front.
    pub fn parse(value: &serde_json::Value) -> Result<Callflow, FieldError> {
        parse::callflow(value).map(|steps| Callflow { steps })
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The prompt files the callflow can play (playback, play_and_get_digits' file and invalid_file, in every
    /// branch), each once, in order of appearance: the ones a switch must have. Generated streams
    /// (`tone_stream://`, `silence_stream://`) and paths built from variables (known only during the call) are left
    /// out.
    pub fn prompt_files(&self) -> Vec<String> {
        fn walk<'a>(steps: &'a [Step], out: &mut Vec<&'a Template>) {
            for step in steps {
                match step {
                    Step::Playback { file } => out.push(file),
                    Step::PlayAndGetDigits(p) => {
                        out.push(&p.file);
                        out.extend(p.invalid_file.iter());
                    }
                    Step::If(i) => {
                        walk(&i.then, out);
                        walk(&i.otherwise, out);
                    }
                    Step::Switch(sw) => {
                        for (_, case) in &sw.cases {
                            walk(case, out);
                        }
                        walk(&sw.default, out);
                    }
                    _ => {}
                }
            }
        }
        let mut templates = Vec::new();
        walk(&self.steps, &mut templates);
        let mut files: Vec<String> = Vec::new();
        for t in templates {
            let path = t.source();
            if t.is_literal() && !path.contains("://") && !files.iter().any(|f| f == path) {
                files.push(path.to_string());
            }
        }
        files
    }
}

/// One step of a callflow.
#[derive(Debug, Clone)]
pub enum Step {
    /// `answer`: answer the channel (a no-op on an already answered outbound call).
    Answer,
    /// `playback {file}`: a file path, `tone_stream://…` or `silence_stream://…`.
    Playback { file: Template },
    /// `sleep {ms}`.
    Sleep { ms: u64 },
    /// `set {name: value, ...}`: channel variables, in the order written (serde_json keeps object order here).
    Set { vars: Vec<(String, Template)> },
    /// `play_and_get_digits {...}`.
    PlayAndGetDigits(PlayAndGetDigits),
    /// `if {expr, then, else}`.
    If(IfStep),
    /// `switch {var, cases, default}`.
    Switch(SwitchStep),
    /// `transfer {extension, dialplan?, context?}`.
    Transfer {
        extension: Template,
        dialplan: Option<Template>,
        context: Option<Template>,
    },
    /// `bridge {endpoint}`.
    Bridge { endpoint: Template },
    /// `record_session {path}`.
    RecordSession { path: Template },
    /// `result {success}`: the callflow decides the attempt's outcome.
    Result { success: bool },
    /// `hangup {cause?}`: a known hangup cause name, or FreeSWITCH's default (NORMAL_CLEARING).
    Hangup { cause: Option<String> },
}

impl Step {
    /// The application name as written in the callflow.
    pub fn application(&self) -> &'static str {
        match self {
            Step::Answer => "answer",
            Step::Playback { .. } => "playback",
            Step::Sleep { .. } => "sleep",
            Step::Set { .. } => "set",
            Step::PlayAndGetDigits(_) => "play_and_get_digits",
            Step::If(_) => "if",
            Step::Switch(_) => "switch",
            Step::Transfer { .. } => "transfer",
            Step::Bridge { .. } => "bridge",
            Step::RecordSession { .. } => "record_session",
            Step::Result { .. } => "result",
            Step::Hangup { .. } => "hangup",
        }
    }
}

/// `play_and_get_digits`: play `file`, collect `min`..=`max` digits within `timeout_ms`, up to `tries` times,
/// playing `invalid_file` after a bad entry; the digits end up in channel variable `var`.
#[derive(Debug, Clone)]
pub struct PlayAndGetDigits {
    /// Default 1.
    pub min: u32,
    /// Default: `min`.
    pub max: u32,
    /// Default 3.
    pub tries: u32,
    /// Default 5000.
    pub timeout_ms: u64,
    pub file: Template,
    pub invalid_file: Option<Template>,
    /// Default `digits`.
    pub var: String,
    /// What a valid entry must match (default: any digits). Validated with Rust's `regex`; FreeSWITCH applies it
    /// with PCRE, which accepts the same common syntax.
    pub regex: Option<regex::Regex>,
}

/// The default variable of `play_and_get_digits`.
pub const DEFAULT_DIGITS_VAR: &str = "digits";

/// `if`: run `then` when `expr` holds, else `otherwise` (written `else`).
#[derive(Debug, Clone)]
pub struct IfStep {
    pub expr: Expr,
    pub then: Vec<Step>,
    pub otherwise: Vec<Step>,
}

impl IfStep {
    /// The branch to run, given the variables.
    pub fn branch(&self, lookup: impl Fn(&str) -> Option<String>) -> &[Step] {
        if self.expr.eval(lookup) {
            &self.then
        } else {
            &self.otherwise
        }
    }
}

/// `switch`: run the steps of the case whose key equals the variable's value (exact string match; a missing
/// variable is the empty string), else `default`.
#[derive(Debug, Clone)]
pub struct SwitchStep {
    pub var: String,
    pub cases: Vec<(String, Vec<Step>)>,
    pub default: Vec<Step>,
}

impl SwitchStep {
    /// The branch for the variable's value.
    pub fn branch(&self, value: Option<&str>) -> &[Step] {
        let value = value.unwrap_or("");
        self.cases
            .iter()
            .find(|(key, _)| key == value)
            .map_or(&self.default[..], |(_, steps)| &steps[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_files_are_the_literal_files_of_every_branch_once() {
        let flow = parse(json!([
            {"playback": {"file": "ivr/welcome.wav"}},
            {"playback": {"file": "tone_stream://%(100,0,440)"}},
            {"play_and_get_digits": {"file": "ivr/menu.wav", "invalid_file": "ivr/invalid.wav"}},
            {"if": {"expr": "${digits} == 1",
                    "then": [{"playback": {"file": "ivr/thanks.wav"}}],
                    "else": [{"playback": {"file": "ivr/hello_${lang}.wav"}},
                             {"playback": {"file": "ivr/welcome.wav"}}]}}
        ]));
        assert_eq!(
            flow.prompt_files(),
            [
                "ivr/welcome.wav",
                "ivr/menu.wav",
                "ivr/invalid.wav",
                "ivr/thanks.wav"
            ]
        );
    }
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Callflow {
        Callflow::parse(&v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(v: serde_json::Value) -> String {
        Callflow::parse(&v)
            .unwrap_err()
            .under("callflow")
            .to_string()
    }

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn every_application_parses() {
        let flow = parse(json!([
            {"answer": {}},
            {"answer": null},
            {"playback": {"file": "ivr/hello_${lang}.wav"}},
            {"sleep": {"ms": 500}},
            {"set": {"lang": "uk", "n": 3, "flag": true}},
            {"play_and_get_digits": {"min": 1, "max": 2, "tries": 3, "timeout_ms": 4000,
                "file": "ivr/menu.wav", "invalid_file": "ivr/invalid.wav", "var": "choice", "regex": "^[12]$"}},
            {"if": {"expr": "${choice} == 1", "then": [{"result": {"success": true}}], "else": []}},
            {"switch": {"var": "choice", "cases": {"1": [{"bridge": {"endpoint": "user/1000"}}]},
                "default": [{"hangup": {}}]}},
            {"transfer": {"extension": "1000", "dialplan": "XML", "context": "default"}},
            {"record_session": {"path": "/rec/${uuid}.wav"}},
            {"hangup": {"cause": "NORMAL_CLEARING"}}
        ]));
        let apps: Vec<_> = flow.steps().iter().map(Step::application).collect();
        assert_eq!(
            apps,
            [
                "answer",
                "answer",
                "playback",
                "sleep",
                "set",
                "play_and_get_digits",
                "if",
                "switch",
                "transfer",
                "record_session",
                "hangup"
            ]
        );
        let Step::Set { vars: set } = &flow.steps()[4] else {
            panic!()
        };
        let rendered: Vec<_> = set
            .iter()
            .map(|(k, v)| (k.as_str(), v.render(|_| None)))
            .collect();
        assert_eq!(
            rendered,
            [
                ("lang", "uk".into()),
                ("n", "3".into()),
                ("flag", "true".into())
            ]
        );
    }

    #[test]
    fn play_and_get_digits_defaults() {
        let flow = parse(json!([{"play_and_get_digits": {"file": "menu.wav"}}]));
        let Step::PlayAndGetDigits(p) = &flow.steps()[0] else {
            panic!()
        };
        assert_eq!((p.min, p.max, p.tries, p.timeout_ms), (1, 1, 3, 5000));
        assert_eq!(p.var, "digits");
        assert!(p.invalid_file.is_none() && p.regex.is_none());
        let flow = parse(json!([{"play_and_get_digits": {"file": "menu.wav", "min": 4}}]));
        let Step::PlayAndGetDigits(p) = &flow.steps()[0] else {
            panic!()
        };
        assert_eq!((p.min, p.max), (4, 4));
    }

    #[test]
    fn missing_argument_is_reported_at_the_nested_step() {
        let flow = json!([
            {"answer": {}}, {"sleep": {"ms": 1}}, {"playback": {"file": "a.wav"}},
            {"if": {"expr": "${digits} == 1", "then": [{"playback": {}}]}}
        ]);
        assert_eq!(
            error(flow),
            "callflow[3].if.then[0].playback: missing \"file\""
        );
    }

    #[test]
    fn unknown_application_and_unknown_argument_are_named() {
        let e = error(json!([{"playbak": {"file": "a.wav"}}]));
        assert!(
            e.starts_with("callflow[0]: unknown application \"playbak\" (expected one of: answer,"),
            "{e}"
        );
        let e = error(json!([{"playback": {"fiel": "a.wav"}}]));
        assert_eq!(
            e,
            "callflow[0].playback: unknown argument \"fiel\" (expected: file)"
        );
        let e = error(json!([{"answer": {"now": true}}]));
        assert_eq!(
            e,
            "callflow[0].answer: unknown argument \"now\" (it takes no argument)"
        );
    }

    #[test]
    fn a_step_must_be_an_object_with_exactly_one_key() {
        let e = error(json!([{"answer": {}, "playback": {"file": "a"}}]));
        assert_eq!(
            e,
            "callflow[0]: a step must have exactly one key, the application; got 2: \"answer\", \"playback\""
        );
        assert!(error(json!([{}])).contains("got none"));
        assert!(error(json!(["answer"])).contains("a step must be an object with one key"));
        assert_eq!(
            error(json!({"answer": {}})),
            "callflow: must be an array of steps, got an object"
        );
    }

    #[test]
    fn wrong_types_are_reported_with_the_field() {
        assert_eq!(
            error(json!([{"sleep": {"ms": "500"}}])),
            "callflow[0].sleep.ms: expected an integer from 0 to 86400000, got string \"500\""
        );
        assert_eq!(
            error(json!([{"result": {"success": "yes"}}])),
            "callflow[0].result.success: expected true or false, got string \"yes\""
        );
        assert_eq!(
            error(json!([{"playback": {"file": 3}}])),
            "callflow[0].playback.file: expected a string, got number 3"
        );
        assert_eq!(
            error(json!([{"set": {"a": [1]}}])),
            "callflow[0].set.a: expected a string, number or boolean, got an array"
        );
        assert!(
            error(json!([{"set": {"a b": 1}}]))
                .starts_with("callflow[0].set.a b: bad variable name")
        );
        assert!(error(json!([{"playback": "a.wav"}])).contains("expected an object of arguments"));
        assert!(
            error(json!([{"if": {"expr": "1 == 1", "then": {}}}]))
                .starts_with("callflow[0].if.then: must be an array")
        );
    }

    #[test]
    fn numeric_ranges_of_play_and_get_digits_are_checked() {
        let e = error(json!([{"play_and_get_digits": {"file": "m.wav", "min": 3, "max": 2}}]));
        assert_eq!(
            e,
            "callflow[0].play_and_get_digits.max: expected an integer from 3 to 128, got number 2"
        );
        let e = error(json!([{"play_and_get_digits": {"file": "m.wav", "tries": 0}}]));
        assert!(
            e.starts_with("callflow[0].play_and_get_digits.tries:"),
            "{e}"
        );
        let e = error(json!([{"play_and_get_digits": {"file": "m.wav", "regex": "^(1"}}]));
        assert!(
            e.starts_with("callflow[0].play_and_get_digits.regex: invalid regex"),
            "{e}"
        );
        let e = error(json!([{"play_and_get_digits": {"file": "m.wav", "var": "my var"}}]));
        assert!(e.starts_with("callflow[0].play_and_get_digits.var:"), "{e}");
    }

    #[test]
    fn unknown_hangup_cause_is_refused() {
        assert_eq!(
            error(json!([{"hangup": {"cause": "NORMAL_CLEARIN"}}])),
            "callflow[0].hangup.cause: unknown hangup cause \"NORMAL_CLEARIN\""
        );
        let flow = parse(json!([{"hangup": null}, {"hangup": {"cause": "USER_BUSY"}}]));
        assert!(matches!(&flow.steps()[0], Step::Hangup { cause: None }));
    }

    #[test]
    fn bad_if_expression_and_bad_template_carry_their_position() {
        let e = error(json!([{"if": {"expr": "${digits} = 1", "then": []}}]));
        assert_eq!(
            e,
            "callflow[0].if.expr: invalid expression at column 11: \"=\" is not an operator: compare with \"==\""
        );
        let e = error(json!([{"playback": {"file": "a${x.wav"}}]));
        assert_eq!(
            e,
            "callflow[0].playback.file: \"${\" at character 2 is not closed by \"}\""
        );
        let e = error(json!([{"playback": {"file": "a\nb"}}]));
        assert!(e.contains("control characters"), "{e}");
        assert_eq!(
            error(json!([{"bridge": {"endpoint": ""}}])),
            "callflow[0].bridge.endpoint: must not be empty"
        );
    }

    #[test]
    fn switch_paths_name_the_case() {
        let e =
            error(json!([{"switch": {"var": "digits", "cases": {"1": [], "2": [{"sleep": {}}]}}}]));
        assert_eq!(e, "callflow[0].switch.cases.2[0].sleep: missing \"ms\"");
        let e = error(json!([{"switch": {"var": "d", "cases": {"": [{"sleep": {}}]}}}]));
        assert_eq!(e, "callflow[0].switch.cases[\"\"][0].sleep: missing \"ms\"");
        let e = error(json!([{"switch": {"var": "${digits}", "cases": {}}}]));
        assert!(e.starts_with("callflow[0].switch.var:"), "{e}");
    }

    #[test]
    fn nesting_is_bounded() {
        let mut flow = json!([{"answer": {}}]);
        for _ in 0..40 {
            flow = json!([{"if": {"expr": "1 == 1", "then": flow}}]);
        }
        assert!(error(flow).contains("nested deeper than 32 levels"));
    }

    #[test]
    fn if_and_switch_pick_their_branch() {
        let flow = parse(json!([
            {"if": {"expr": "${debt} > 100 && ${digits} == 1",
                    "then": [{"result": {"success": true}}],
                    "else": [{"result": {"success": false}}]}},
            {"switch": {"var": "digits", "cases": {"1": [{"answer": {}}], "": [{"sleep": {"ms": 1}}]},
                        "default": [{"hangup": {}}]}}
        ]));
        let Step::If(step) = &flow.steps()[0] else {
            panic!()
        };
        assert!(matches!(
            step.branch(vars(&[("debt", "150"), ("digits", "1")]))[0],
            Step::Result { success: true }
        ));
        assert!(matches!(
            step.branch(vars(&[("debt", "50"), ("digits", "1")]))[0],
            Step::Result { success: false }
        ));
        let Step::Switch(sw) = &flow.steps()[1] else {
            panic!()
        };
        assert_eq!(sw.branch(Some("1"))[0].application(), "answer");
        assert_eq!(sw.branch(None)[0].application(), "sleep");
        assert_eq!(sw.branch(Some("9"))[0].application(), "hangup");
    }

    #[test]
    fn toml_array_of_tables_is_a_callflow() {
        let doc: toml::Table = toml::from_str(
            r#"
            [[callflow]]
            answer = {}
            [[callflow]]
            playback = { file = "ivr/hello.wav" }
            [[callflow]]
            [callflow.if]
            expr = "${digits} == 1"
            then = [ { result = { success = true } } ]
            "#,
        )
        .unwrap();
        let value = serde_json::to_value(&doc["callflow"]).unwrap();
        assert_eq!(parse(value).steps().len(), 3);
    }
}
