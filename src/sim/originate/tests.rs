//! The originate parser against every fact captured from real FreeSWITCH 1.10.12 (`fixtures/esl/README.md`,
//! both variable tables), plus the dial-string shapes the dialer and the simulator rely on.

use super::*;

/// What FreeSWITCH did with a `dlr_probe` value.
#[derive(Debug, PartialEq)]
enum Stored {
    /// Originate succeeded; `uuid_getvar` gave this value.
    Value(&'static str),
    /// Originate succeeded; the variable was unset (`_undef_`).
    Undef,
    /// `-ERR <cause>`, no channel.
    Err(&'static str),
    /// `-USAGE: …`.
    Usage,
}

/// The probe the README's second table was captured with (`api originate`).
fn probe(value: &str) -> Stored {
    let cmd = format!(
        "{{origination_uuid=410d2a0a-c958-45a2-acc9-000000000001,originate_timeout=5,dlr_probe={value},dlr_after=1}}loopback/answer_2/default &park()"
    );
    outcome(&cmd)
}

fn outcome(cmd: &str) -> Stored {
    match parse(cmd) {
        Ok(o) => {
            let leg = o.first_leg().expect("a leg");
            match leg.channel_vars.get("dlr_probe") {
                Some(v) => Stored::Value(Box::leak(v.to_string().into_boxed_str())),
                None => Stored::Undef,
            }
        }
        Err(OriginateError::Usage) => Stored::Usage,
        Err(OriginateError::Failed(c)) => Stored::Err(Box::leak(c.into_boxed_str())),
    }
}

#[test]
fn readme_first_table_every_row() {
    // value as written → stored value (real FreeSWITCH 1.10.12, `{name=value}` then `uuid_getvar`)
    assert_eq!(
        probe("'a,b'"),
        Stored::Value("a"),
        "quotes do not protect a comma"
    );
    assert_eq!(probe(r"a\,b"), Stored::Value("a,b"));
    assert_eq!(probe("'a b'"), Stored::Value("a b"));
    assert_eq!(probe(r"\'q\'"), Stored::Value("q"));
    assert_eq!(probe("x}y"), Stored::Err("CHAN_NOT_IMPLEMENTED"));
    assert_eq!(probe("a'b"), Stored::Usage);
    assert_eq!(probe("кот"), Stored::Value("кот"));
    assert_eq!(probe("caf%C3%A9"), Stored::Value("caf%C3%A9"));
}

#[test]
fn readme_second_table_every_row() {
    let rows: &[(&str, Stored)] = &[
        ("plain", Stored::Value("plain")),
        ("a,b", Stored::Value("a")),
        ("a b", Stored::Err("DESTINATION_OUT_OF_ORDER")),
        ("a'b", Stored::Usage),
        ("a\"b", Stored::Value("a\"b")),
        ("a}b", Stored::Err("CHAN_NOT_IMPLEMENTED")),
        ("a{b", Stored::Err("DESTINATION_OUT_OF_ORDER")),
        ("a]b", Stored::Value("a]b")),
        ("a[b", Stored::Value("a[b")),
        ("a=b", Stored::Value("a=b")),
        ("a>b", Stored::Value("a>b")),
        ("a<b", Stored::Value("a<b")),
        ("a\\b", Stored::Value("a\\b")),
        ("a|b", Stored::Value("a|b")),
        ("a;b", Stored::Value("a;b")),
        (" lead", Stored::Err("DESTINATION_OUT_OF_ORDER")),
        ("trail ", Stored::Err("DESTINATION_OUT_OF_ORDER")),
        ("", Stored::Undef),
        ("😀", Stored::Value("😀")),
        ("кот", Stored::Value("кот")),
        ("a^^:b", Stored::Value("a^^:b")),
        ("${hostname}", Stored::Undef),
        ("x${uuid}y", Stored::Undef),
        ("a$b", Stored::Value("a$b")),
        ("$", Stored::Value("$")),
        ("%41", Stored::Value("%41")),
        ("a\nb", Stored::Usage),
        ("a\tb", Stored::Value("a\tb")),
        ("a:b", Stored::Value("a:b")),
        ("a\x1bb", Stored::Value("a\x1bb")),
        ("''", Stored::Undef),
        ("a,b c", Stored::Err("DESTINATION_OUT_OF_ORDER")),
        ("{a}", Stored::Value("{a}")),
        ("[a]", Stored::Value("[a]")),
        ("'a b'", Stored::Value("a b")),
        ("'a{b'", Stored::Err("DESTINATION_OUT_OF_ORDER")),
        ("'a}b'", Stored::Err("CHAN_NOT_IMPLEMENTED")),
        ("' lead'", Stored::Value("lead")),
        ("'trail '", Stored::Value("trail")),
        ("'${hostname}'", Stored::Undef),
        ("'a,b'", Stored::Value("a")),
        ("'a\\'b'", Stored::Value("a'b")),
    ];
    for (value, expected) in rows {
        assert_eq!(&probe(value), expected, "value {value:?}");
    }
}

#[test]
fn usage_text_and_reply_are_freeswitch_verbatim() {
    assert_eq!(
        OriginateError::Usage.reply(),
        "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
    );
    assert_eq!(
        OriginateError::Failed("USER_BUSY".into()).reply(),
        "-ERR USER_BUSY\n"
    );
}

#[test]
fn argument_count_outside_two_to_seven_is_usage() {
    assert_eq!(parse(""), Err(OriginateError::Usage));
    assert_eq!(
        parse("loopback/answer_1/default"),
        Err(OriginateError::Usage)
    );
    assert_eq!(parse("a b c d e f g h"), Err(OriginateError::Usage));
    assert!(parse("loopback/answer_1/default 1000 XML default Name 1000 30").is_ok());
}

#[test]
fn app_target_is_cut_at_first_paren_pair() {
    let o = parse("loopback/answer_5/default &bridge({origination_caller_id_number=1001}loopback/answer_2/default)").unwrap();
    assert_eq!(
        o.target,
        Target::App {
            name: "bridge".into(),
            arg: Some("{origination_caller_id_number=1001}loopback/answer_2/default".into())
        }
    );
    let o = parse("loopback/x/default &playback(/tmp/a(1).wav)").unwrap();
    assert_eq!(
        o.target,
        Target::App {
            name: "playback".into(),
            arg: Some("/tmp/a(1".into())
        }
    );
    let o = parse("loopback/x/default &park").unwrap();
    assert_eq!(
        o.target,
        Target::App {
            name: "park".into(),
            arg: None
        }
    );
}

#[test]
fn extension_target_with_dialplan_context_and_undef() {
    let o = parse("sofia/gateway/gw1/5551234 9000 undef sales 'Acme Corp' 5550000 15").unwrap();
    assert_eq!(o.target, Target::Extension("9000".into()));
    assert_eq!(o.dialplan, "XML");
    assert_eq!(o.context, "sales");
    assert_eq!(o.cid_name.as_deref(), Some("Acme Corp"));
    assert_eq!(o.cid_num.as_deref(), Some("5550000"));
    assert_eq!(o.timeout_arg_sec, 15);
    let leg = o.first_leg().unwrap();
    assert_eq!(leg.endpoint, "sofia");
    assert_eq!(leg.data.as_deref(), Some("gateway/gw1/5551234"));
}

#[test]
fn originate_timeout_variable_overrides_the_argument_when_positive() {
    let o =
        parse("{originate_timeout=7}loopback/x/default &park undef undef undef undef 20").unwrap();
    assert_eq!(o.timeout_sec(&o.branches[0]), 7);
    let o = parse("{originate_timeout=abc}loopback/x/default &park").unwrap();
    assert_eq!(o.timeout_sec(&o.branches[0]), 60);
}

#[test]
fn global_vars_are_installed_after_leg_vars_and_win() {
    let o = parse("{a=global,b=g}[a=local,c=l]loopback/x/default &park").unwrap();
    let leg = o.first_leg().unwrap();
    assert_eq!(leg.local_vars.get("a"), Some("local"));
    assert_eq!(leg.channel_vars.get("a"), Some("global"));
    assert_eq!(leg.channel_vars.get("c"), Some("l"));
    assert_eq!(leg.channel_vars.get("originate_early_media"), Some("true"));
    let o = parse("{local_var_clobber=true,a=global}[a=local]loopback/x/default &park").unwrap();
    assert_eq!(o.first_leg().unwrap().channel_vars.get("a"), Some("local"));
}

#[test]
fn ignore_early_media_sets_originate_early_media_false() {
    let o = parse("{ignore_early_media=true}loopback/x/default &park").unwrap();
    assert_eq!(
        o.first_leg()
            .unwrap()
            .channel_vars
            .get("originate_early_media"),
        Some("false")
    );
}

#[test]
fn commas_inside_leg_brackets_do_not_split_legs() {
    // Quotes are stripped by the space split and again by the `|` split before the leg split looks for them, so
    // `'x,y'` and `\'x,y\'` both give `x`; the `[^^;…]` form is what protects a comma in a leg variable.
    let o = parse(r"[a=1,b=2]loopback/one/default,[^^;c=x,y;d=1]loopback/two/default,[e=\'p,q\']loopback/three &park").unwrap();
    let legs: Vec<_> = o.legs().collect();
    assert_eq!(legs.len(), 3);
    assert_eq!(legs[0].local_vars.get("a"), Some("1"));
    assert_eq!(legs[0].local_vars.get("b"), Some("2"));
    assert_eq!(
        legs[1].local_vars.get("c"),
        Some("x,y"),
        "custom separator protects the comma"
    );
    assert_eq!(legs[1].local_vars.get("d"), Some("1"));
    assert_eq!(legs[2].local_vars.get("e"), Some("p"));
    assert_eq!(legs[1].data.as_deref(), Some("two/default"));
}

#[test]
fn pipe_separates_failover_groups() {
    let o = parse("loopback/a/default|loopback/b/default,loopback/c/default &park").unwrap();
    let g = &o.branches[0].groups;
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].legs.len(), 1);
    assert_eq!(g[1].legs.len(), 2);
}

#[test]
fn custom_separator_block() {
    let o = parse("{^^:a=1,2:b=3}loopback/x/default &park").unwrap();
    let v = &o.branches[0].vars;
    assert_eq!(v.get("a"), Some("1,2"));
    assert_eq!(v.get("b"), Some("3"));
}

#[test]
fn ultra_global_and_multiple_brace_blocks() {
    let o = parse("<u=1>{a=1}{b=2}loopback/x/default &park").unwrap();
    let v = &o.branches[0].vars;
    assert_eq!(
        (v.get("u"), v.get("a"), v.get("b")),
        (Some("1"), Some("1"), Some("2"))
    );
}

#[test]
fn enterprise_branches_each_with_their_own_vars() {
    let o = parse("<x=1>{a=1}loopback/one/default:_:{a=2}loopback/two/default &park").unwrap();
    assert!(o.enterprise);
    assert_eq!(o.branches.len(), 2);
    assert_eq!(o.branches[0].vars.get("a"), Some("1"));
    assert_eq!(o.branches[1].vars.get("a"), Some("2"));
    assert_eq!(o.branches[1].vars.get("x"), Some("1"));
    assert_eq!(o.branches[1].vars.get("ignore_early_media"), Some("true"));
}

#[test]
fn error_endpoint_and_unknown_endpoints_fail_before_any_channel() {
    assert_eq!(outcome("error/USER_BUSY &park"), Stored::Err("USER_BUSY"));
    assert_eq!(outcome("error/NO_ANSWER &park"), Stored::Err("NO_ANSWER"));
    assert_eq!(
        outcome("error/UNALLOCATED_NUMBER &park"),
        Stored::Err("UNALLOCATED_NUMBER")
    );
    assert_eq!(outcome("error/bogus &park"), Stored::Err("NORMAL_CLEARING"));
    assert_eq!(
        outcome("error/0 &park"),
        Stored::Err("DESTINATION_OUT_OF_ORDER")
    );
    assert_eq!(
        outcome("bogus/x &park"),
        Stored::Err("CHAN_NOT_IMPLEMENTED")
    );
    assert_eq!(
        outcome("{a=b} &park"),
        Stored::Err("DESTINATION_OUT_OF_ORDER")
    );
    // A later group can still be dialled.
    assert!(parse("error/USER_BUSY|loopback/x/default &park").is_ok());
}

#[test]
fn leg_bracket_parse_error_after_a_created_leg_is_originator_cancel() {
    let o = parse_syntax("loopback/a/default,[x=1 &park").unwrap();
    assert_eq!(o.branches[0].groups[0].legs[1], LegSlot::ParseError);
    assert_eq!(
        outcome("loopback/a/default,[x=1 &park"),
        Stored::Err("ORIGINATOR_CANCEL")
    );
    assert_eq!(
        outcome("[x=1 &park"),
        Stored::Err("DESTINATION_OUT_OF_ORDER")
    );
}

#[test]
fn nested_vars_flag_disables_the_variable_check() {
    let o = parse("{origination_nested_vars=true,x=${hostname}}loopback/x/default &park").unwrap();
    assert_eq!(
        o.first_leg().unwrap().channel_vars.get("x"),
        Some("${hostname}")
    );
    let o = parse("{x=${hostname}}loopback/x/default &park").unwrap();
    assert_eq!(o.first_leg().unwrap().refused_vars, vec!["x".to_string()]);
}

#[test]
fn only_the_first_line_reaches_the_parser() {
    assert_eq!(outcome("loopback/x/default\n&park"), Stored::Usage);
    assert!(parse("loopback/x/default &park\nJob-UUID: 1").is_ok());
}
