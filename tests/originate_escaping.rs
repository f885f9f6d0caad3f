//! The dialer's originate escaping, judged by the simulator's port of FreeSWITCH 1.10's originate parser.
//!
//! Arbitrary member names and variables (commas, quotes, braces, `^^`, `${…}`, newlines, spaces, non-ASCII) go
//! through `engine::originate::build`; the command must parse, dial the intended endpoint, run the intended
//! application, and install exactly the intended variables: every sent value unchanged, every url-encoded value
//! as its encoding (listed in `dlr_urlencoded_vars`), nothing else.

use fsdialer::engine::originate::{OriginateSpec, VarDisposition, build};
use fsdialer::sim::originate::{Target, parse};
use proptest::prelude::*;
use std::collections::BTreeMap;
use uuid::Uuid;

fn url_encode(v: &str) -> String {
    let mut out = String::new();
    for &b in v.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Values built from the characters that break naive escaping.
fn nasty_value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(",".to_owned()),
            Just("'".to_owned()),
            Just("\"".to_owned()),
            Just(" ".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("^^:".to_owned()),
            Just("${hostname}".to_owned()),
            Just("$".to_owned()),
            Just("\\".to_owned()),
            Just("\n".to_owned()),
            Just("\t".to_owned()),
            Just("|".to_owned()),
            Just(":_:".to_owned()),
            Just("=".to_owned()),
            Just("&park()".to_owned()),
            Just("кот".to_owned()),
            Just("😀".to_owned()),
            Just("%41".to_owned()),
            "[a-z0-9]{1,4}",
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn var_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_]{0,8}",
        Just("execute_on_answer".to_owned()),
        Just("origination_uuid".to_owned()),
        Just("dlr_member_id".to_owned()),
        Just("bad name".to_owned()),
        Just("a,b=c".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn originate_means_exactly_what_the_builder_intended(
        member_vars in prop::collection::vec((var_name(), nasty_value()), 0..6),
        campaign_vars in prop::collection::vec(("[a-z][a-z0-9_]{0,6}", nasty_value()), 0..3),
        member_id in "[0-9]{1,6}",
    ) {
        let attempt = Uuid::new_v4();
        let spec = OriginateSpec {
            attempt_id: attempt,
            dial_string: "loopback/answer_2/default",
            originate_timeout_sec: 30,
            caller_id_number: Some("+380441234567"),
            campaign_id: "571f2e2e6ea6478aba60581a",
            member_id: &member_id,
            attempt_no: 3,
            campaign_vars: &campaign_vars,
            member_vars: &member_vars,
            application: "&park()",
        };
        let built = build(&spec);
        let parsed = parse(&built.args).map_err(|e| TestCaseError::fail(format!("{e} for {}", built.args)))?;
        prop_assert_eq!(&parsed.target, &Target::App { name: "park".into(), arg: Some(String::new()) });
        let leg = parsed.first_leg().expect("one leg");
        prop_assert_eq!(&leg.endpoint, "loopback");
        prop_assert_eq!(leg.data.as_deref(), Some("answer_2/default"));
        prop_assert!(leg.refused_vars.is_empty(), "refused: {:?} in {}", leg.refused_vars, built.args);

        // What the builder intended, name by name.
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        expected.insert("origination_uuid".into(), attempt.to_string());
        expected.insert("originate_timeout".into(), "30".into());
        expected.insert("ignore_early_media".into(), "true".into());
        expected.insert("origination_caller_id_number".into(), "+380441234567".into());
        expected.insert("dlr_campaign_id".into(), "571f2e2e6ea6478aba60581a".into());
        expected.insert("dlr_member_id".into(), member_id.clone());
        expected.insert("dlr_attempt".into(), "3".into());
        let values: Vec<&(String, String)> = campaign_vars.iter().chain(member_vars.iter()).collect();
        let considered = &built.vars[7..];
        prop_assert_eq!(considered.len(), values.len());
        let mut encoded = Vec::new();
        for ((name, _, disposition), (vname, value)) in considered.iter().zip(values) {
            prop_assert_eq!(name, vname);
            match disposition {
                VarDisposition::Sent => { expected.insert(name.clone(), value.clone()); }
                VarDisposition::UrlEncoded => {
                    expected.insert(name.clone(), url_encode(value));
                    encoded.push(name.clone());
                }
                VarDisposition::Omitted(_) => {}
            }
        }
        if !encoded.is_empty() {
            expected.insert("dlr_urlencoded_vars".into(), encoded.join(";"));
        }
        let got: BTreeMap<String, String> = leg
            .channel_vars
            .iter()
            .filter(|(n, _)| *n != "originate_early_media")
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        prop_assert_eq!(got, expected, "args: {}", built.args);
    }
}
