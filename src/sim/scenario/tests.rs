//! Unit tests of the scenario file: rules, the random profile, extensions, files, agents and patience.

use super::*;

#[test]
fn builtin_dialplan_every_pattern() {
    assert!(matches!(
        builtin_outcome("answer_2"),
        Outcome::Answer {
            talk_ms: Some(2000),
            early_ms: None,
            ..
        }
    ));
    assert!(matches!(
        builtin_outcome("early_1_answer_3"),
        Outcome::Answer {
            talk_ms: Some(3000),
            early_ms: Some(1000),
            ..
        }
    ));
    assert_eq!(
        builtin_outcome("busy"),
        Outcome::Reject {
            ring_ms: 0,
            cause: "USER_BUSY".into()
        }
    );
    assert_eq!(builtin_outcome("noanswer"), Outcome::Ring { ms: None });
    assert_eq!(builtin_outcome("ring_4"), Outcome::Ring { ms: Some(4000) });
    assert_eq!(
        builtin_outcome("reject_CALL_REJECTED"),
        Outcome::Reject {
            ring_ms: 0,
            cause: "CALL_REJECTED".into()
        }
    );
    assert_eq!(builtin_outcome("nonexistent_999"), Outcome::NoRoute);
    assert_eq!(builtin_outcome("reject_NOT_A_CAUSE"), Outcome::NoRoute);
}

#[test]
fn rules_match_in_order_and_fall_back_to_builtin() {
    let mut s = Scenario::from_toml(
        r#"
        [[rule]]
        match = "^1555"
        ring_ms = 1500
        talk_ms = 20000
        digits = "12#"
        [[rule]]
        match = "^1666"
        answer = false
        hangup_cause = "USER_BUSY"
        ring_ms = 500
        "#,
    )
    .unwrap();
    assert_eq!(
        s.outcome("15551234"),
        Outcome::Answer {
            ring_ms: 1500,
            early_ms: None,
            talk_ms: Some(20000),
            cause: "NORMAL_CLEARING".into(),
            digits: "12#".into(),
            digits_after_ms: None,
        }
    );
    assert_eq!(
        s.outcome("1666"),
        Outcome::Reject {
            ring_ms: 500,
            cause: "USER_BUSY".into()
        }
    );
    assert_eq!(
        s.outcome("busy"),
        Outcome::Reject {
            ring_ms: 0,
            cause: "USER_BUSY".into()
        }
    );
}

#[test]
fn missing_files_name_the_playbacks_that_find_no_file() {
    let s = Scenario::from_toml("missing_files = \"^/nonexistent/\"").unwrap();
    assert!(!s.file_exists("/nonexistent/a.wav", "/snd"));
    assert!(s.file_exists("/snd/ivr/hello.wav", "/snd"));
    assert!(Scenario::builtin().file_exists("/nonexistent/a.wav", "/snd"));
    let e = Scenario::from_toml("missing_files = \"(\"").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("scenario missing_files: invalid regex"),
        "{e}"
    );
}

#[test]
fn a_sounds_list_names_the_files_on_the_switch_and_streams_always_exist() {
    let s = Scenario::from_toml(r#"sounds = ["ivr/welcome.wav", "/abs/confirm.wav"]"#).unwrap();
    assert!(s.file_exists("/snd/ivr/welcome.wav", "/snd/"));
    assert!(s.file_exists("/abs/confirm.wav", "/snd"));
    assert!(!s.file_exists("/snd/ivr/other.wav", "/snd"));
    assert!(!s.file_exists("/abs/welcome.wav", "/snd"));
    assert!(
        !s.file_exists("/snd/ivr/welcome.wav", ""),
        "no prefix, no relative file"
    );
    assert!(s.file_exists("tone_stream://%(100,0,440)", "/snd"));
    assert!(s.file_exists("silence_stream://500", "/snd"));
}

#[test]
fn extensions_match_destination_and_context_and_default_to_the_builtin_ones() {
    let s = Scenario::from_toml(
        r#"
        [[extension]]
        match = "^op(erator)?$"
        actions = [{ app = "answer" }, { app = "park" }]
        [[extension]]
        name = "sales"
        match = "^sales$"
        context = "public"
        actions = [{ app = "hangup", data = "USER_BUSY" }]
        "#,
    )
    .unwrap();
    let op = s.extension("operator", "default").unwrap();
    assert_eq!(op.actions.len(), 2);
    assert_eq!(op.actions[1].app, "park");
    assert!(s.extension("sales", "default").is_none(), "another context");
    assert_eq!(s.extension("sales", "public").unwrap().name, "sales");
    assert!(
        s.extension("park", "default").is_none(),
        "an explicit dialplan replaces the built-in one"
    );
    let b = Scenario::builtin();
    assert!(b.extension("operator", "default").is_some());
    assert!(b.extension("park", "default").is_some());
    assert!(b.extension("nowhere", "default").is_none());
    let e = Scenario::from_toml("[[extension]]\nmatch = \"x\"\nactions = []").unwrap_err();
    assert!(e.to_string().contains("at least one action"), "{e}");
}

#[test]
fn random_profile_reproduces_with_the_same_seed_and_respects_the_rate() {
    let text = r#"
        seed = 7
        [default]
        answer_rate = 0.5
        ring_ms = [100, 900]
        talk_ms = [1000, 2000]
        causes = { USER_BUSY = 1, NO_ANSWER = 1 }
    "#;
    let mut a = Scenario::from_toml(text).unwrap();
    let mut b = Scenario::from_toml(text).unwrap();
    let xs: Vec<_> = (0..200).map(|_| a.outcome("x")).collect();
    let ys: Vec<_> = (0..200).map(|_| b.outcome("x")).collect();
    assert_eq!(xs, ys);
    let answered = xs
        .iter()
        .filter(|o| matches!(o, Outcome::Answer { .. }))
        .count();
    assert!((60..140).contains(&answered), "answered {answered} of 200");
    for o in &xs {
        if let Outcome::Answer {
            ring_ms,
            talk_ms: Some(t),
            ..
        } = o
        {
            assert!((100..=900).contains(ring_ms) && (1000..=2000).contains(t));
        }
    }
}

#[test]
fn bad_files_are_refused_with_the_place() {
    let e = Scenario::from_toml("[[rule]]\nmatch = \"(\"\n").unwrap_err();
    assert!(e.to_string().contains("rule 1"), "{e}");
    let e = Scenario::from_toml("[[rule]]\nmatch = \"x\"\nhangup_cause = \"NOPE\"\n").unwrap_err();
    assert!(e.to_string().contains("NOPE"), "{e}");
    let e = Scenario::from_toml("[default]\nanswer_rate = 2.0\n").unwrap_err();
    assert!(e.to_string().contains("answer_rate"), "{e}");
    assert!(Scenario::from_toml("bogus = 1\n").is_err());
}

#[test]
fn shipped_example_scenario_loads_and_decides() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sim/example_scenario.toml"
    ));
    let mut s = Scenario::from_file(path).unwrap();
    assert!(matches!(
        s.outcome("answer_2"),
        Outcome::Answer {
            talk_ms: Some(2000),
            ..
        }
    ));
    assert!(matches!(s.outcome("15551234"), Outcome::Answer { digits, .. } if digits == "1#"));
    assert_eq!(
        s.outcome("1666"),
        Outcome::Reject {
            ring_ms: 2000,
            cause: "USER_BUSY".into()
        }
    );
    assert_eq!(s.outcome("1777"), Outcome::Ring { ms: None });
    let e = Scenario::from_file(Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/x.toml"));
}

#[test]
fn agents_match_the_dial_string_before_rules_and_members_get_their_patience() {
    let mut s = Scenario::from_toml(
        r#"
        [[rule]]
        match = "^1001$"
        patience_ms = 4000
        callee_hangs_up = false
        [[agent]]
        match = "^user/1001$"
        answer_ms = 700
        talk_ms = 9000
        hangup_by = "customer"
        dtmf = "5"
        "#,
    )
    .unwrap();
    let agent = s.plan("user", "1001", "1001", 0);
    assert_eq!(
        agent.outcome,
        Outcome::Answer {
            ring_ms: 700,
            early_ms: None,
            talk_ms: None,
            cause: "NORMAL_CLEARING".into(),
            digits: "5".into(),
            digits_after_ms: None,
        },
        "an agent answers and waits for its bridge"
    );
    assert_eq!(
        agent.talk,
        Some(TalkPlan {
            talk_ms: 9000,
            ender: Ender::Customer
        })
    );
    assert_eq!(agent.patience_ms, None);
    let member = s.plan("sofia", "gateway/gw/1001", "1001", 0);
    assert_eq!(member.talk, None);
    assert_eq!(member.patience_ms, Some(4000));
    assert!(matches!(
        member.outcome,
        Outcome::Answer { talk_ms: None, .. }
    ));
    assert_eq!(
        s.plan("sofia", "gateway/gw/busy", "busy", 0).patience_ms,
        None
    );
}

#[test]
fn bad_agent_tables_are_refused_with_the_place() {
    let bad = [
        ("match = \"(\"", "invalid regex"),
        ("match = \"x\"\nno_answer_prob = 1.5", "no_answer_prob"),
        (
            "match = \"x\"\nno_answer_prob = 0.6\nreject_prob = 0.6",
            "more than 1",
        ),
        ("match = \"x\"\nreject_cause = \"NOPE\"", "NOPE"),
        (
            "match = \"x\"\ntalk_ms = { median = 0.0, sigma = 1.0 }",
            "median > 0",
        ),
        ("match = \"x\"\nhangup_by = \"nobody\"", "hangup_by"),
        ("match = \"x\"\nbogus = 1", "bogus"),
    ];
    for (table, expect) in bad {
        let e = Scenario::from_toml(&format!("[[agent]]\n{table}\n")).unwrap_err();
        assert!(e.to_string().contains(expect), "{table}: {e}");
    }
    let e =
        Scenario::from_toml("[[agent]]\nmatch = \"x\"\n[[agent]]\nmatch = \")\"\n").unwrap_err();
    assert!(e.to_string().contains("agent 2"), "{e}");
}

#[test]
fn shipped_agents_scenario_loads_and_draws_agents_and_patient_members() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/sim/agents_scenario.toml"
    ));
    let mut s = Scenario::from_file(path).unwrap();
    let plans: Vec<_> = (1..=10)
        .map(|n| {
            s.plan(
                "loopback",
                &format!("agent_{n}/default"),
                &format!("agent_{n}"),
                0,
            )
        })
        .collect();
    assert!(plans.iter().filter(|p| p.talk.is_some()).count() >= 7);
    let agent_1010 = (0..20)
        .filter_map(|_| s.plan("user", "1010", "1010", 0).talk)
        .count();
    assert!(
        agent_1010 >= 14,
        "user/1010 is an agent: {agent_1010} of 20 answered"
    );
    assert!(
        s.plan("user", "1011", "1011", 0).talk.is_none(),
        "not an agent"
    );
    let m = s.plan("sofia", "gateway/gw/15551234", "15551234", 0);
    assert!(m.patience_ms.is_some_and(|p| (8000..=20000).contains(&p)));
    assert!(matches!(
        s.outcome("answer_2"),
        Outcome::Answer {
            talk_ms: Some(2000),
            ..
        }
    ));
}

#[test]
fn a_rule_with_a_window_applies_only_within_it() {
    let mut s = Scenario::from_toml(
        "[[rule]]\nmatch = \"^x\"\nanswer = false\nhangup_cause = \"GATEWAY_DOWN\"\nfrom_ms = 1000\nuntil_ms = 5000\n\n[[rule]]\nmatch = \"^x\"\ntalk_ms = 1000\n",
    )
    .unwrap();
    let down = Outcome::Reject {
        ring_ms: 0,
        cause: "GATEWAY_DOWN".into(),
    };
    assert!(matches!(s.outcome_at("x1", 999), Outcome::Answer { .. }));
    assert_eq!(s.outcome_at("x1", 1000), down);
    assert_eq!(s.outcome_at("x1", 4999), down);
    assert!(matches!(s.outcome_at("x1", 5000), Outcome::Answer { .. }));
    let e =
        Scenario::from_toml("[[rule]]\nmatch = \"x\"\nfrom_ms = 5\nuntil_ms = 5\n").unwrap_err();
    assert!(
        e.to_string().contains("from_ms 5 is not before until_ms 5"),
        "{e}"
    );
}
