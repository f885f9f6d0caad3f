//! The dialer's originate escaping, judged by the simulator's port of FreeSWITCH 1.10's originate parser.
//!
//! Arbitrary member names and variables (commas, quotes, braces, `^^`, `${…}`, newlines, spaces, non-ASCII) go
//! through `engine::originate::try_build`; the command must parse, dial the intended endpoint, run the intended
//! application, and install exactly the intended variables: every sent value unchanged, every url-encoded value
//! as its encoding (listed in `dlr_urlencoded_vars`), nothing else. Hostile member variable names (the
//! FreeSWITCH variables that redirect, spoof, bill or execute; the dialer's own in any case) reach the channel only
//! as `dlr_v_<name>` unless the campaign allowlists them, and never override `origination_uuid`.

use fsdialer::campaign::channel_vars::MemberChannelVars;
use fsdialer::engine::originate::{OriginateSpec, VarDisposition, try_build};
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

/// Member variable names as an attacker would write them: FreeSWITCH variables that redirect, spoof, bill or
/// execute, the dialer's own in any case, non-names, and ordinary names.
fn var_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,8}",
        Just("execute_on_answer".to_owned()),
        Just("Execute_On_Answer".to_owned()),
        Just("API_ON_ANSWER".to_owned()),
        Just("origination_uuid".to_owned()),
        Just("Origination_Uuid".to_owned()),
        Just("originate_timeout".to_owned()),
        Just("ignore_early_media".to_owned()),
        Just("dlr_member_id".to_owned()),
        Just("DLR_MEMBER_ID".to_owned()),
        Just("dlr_v_x".to_owned()),
        Just("dlr_urlencoded_vars".to_owned()),
        Just("sip_invite_req_uri".to_owned()),
        Just("sip_route_uri".to_owned()),
        Just("effective_caller_id_number".to_owned()),
        Just("sip_h_P-Asserted-Identity".to_owned()),
        Just("accountcode".to_owned()),
        Just("record_post_process_exec_api".to_owned()),
        Just("language".to_owned()),
        Just("LANGUAGE".to_owned()),
        Just("bad name".to_owned()),
        Just("a,b=c".to_owned()),
        Just("x}y".to_owned()),
        Just("a\nb".to_owned()),
        Just(String::new()),
    ]
}

/// Campaign variable names (already validated by the campaign, so plain; any case).
fn campaign_var_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9_]{0,6}",
        Just("ORIGINATION_UUID".to_owned()),
        Just("Ignore_Early_Media".to_owned()),
        Just("execute_on_answer".to_owned()),
    ]
}

/// What a test knows without asking the builder: the plain-name rule and the dialer's names.
fn plain(name: &str) -> bool {
    regex::Regex::new(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
        .unwrap()
        .is_match(name)
}

fn dialer_owned(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.starts_with("dlr_")
        || l == "origination_uuid"
        || l == "originate_timeout"
        || l == "origination_nested_vars"
        || l == "api_hangup_hook"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn originate_means_exactly_what_the_builder_intended(
        member_vars in prop::collection::vec((var_name(), nasty_value()), 0..8),
        campaign_vars in prop::collection::vec((campaign_var_name(), nasty_value()), 0..3),
        allowlist in prop::sample::subsequence(vec!["language".to_owned(), "accountcode".to_owned(), "Other".to_owned()], 0..3),
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
            node: Some("node-1"),
        };
        let names = MemberChannelVars::new(&allowlist).expect("a valid allowlist");
        let built = try_build(&spec, &names).expect("small enough");
        let parsed = parse(&built.args).map_err(|e| TestCaseError::fail(format!("{e} for {}", built.args)))?;
        // No value changed the command: one branch, one leg, the intended endpoint and application.
        prop_assert!(!parsed.enterprise);
        prop_assert_eq!(parsed.branches.len(), 1);
        prop_assert_eq!(parsed.legs().count(), 1);
        prop_assert_eq!(&parsed.target, &Target::App { name: "park".into(), arg: Some(String::new()) });
        let leg = parsed.first_leg().expect("one leg");
        prop_assert_eq!(&leg.endpoint, "loopback");
        prop_assert_eq!(leg.data.as_deref(), Some("answer_2/default"));
        prop_assert!(leg.refused_vars.is_empty(), "refused: {:?} in {}", leg.refused_vars, built.args);

        // What should be set, worked out here from the rules (lower-cased names: FreeSWITCH ignores case). The
        // builder is asked only which values it url-encoded.
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        expected.insert("origination_uuid".into(), attempt.to_string());
        expected.insert("originate_timeout".into(), "30".into());
        expected.insert("ignore_early_media".into(), "true".into());
        expected.insert("origination_caller_id_number".into(), "+380441234567".into());
        expected.insert("dlr_campaign_id".into(), "571f2e2e6ea6478aba60581a".into());
        expected.insert("dlr_member_id".into(), member_id.clone());
        expected.insert("dlr_attempt".into(), "3".into());
        expected.insert("dlr_node".into(), "node-1".into());
        expected.insert("origination_nested_vars".into(), "true".into());
        expected.insert("api_hangup_hook".into(), fsdialer::engine::hangup_record::hook_value(attempt));
        let considered = &built.vars[10..];
        let inputs: Vec<(&String, &String, bool)> = campaign_vars
            .iter()
            .map(|(n, v)| (n, v, false))
            .chain(member_vars.iter().map(|(n, v)| (n, v, true)))
            .collect();
        prop_assert_eq!(considered.len(), inputs.len());
        let mut encoded = Vec::new();
        for (var, (name, value, from_member)) in considered.iter().zip(inputs) {
            prop_assert_eq!(&var.name, name);
            let allowed = allowlist.iter().any(|a| a.eq_ignore_ascii_case(name));
            let channel = if from_member && !allowed { format!("dlr_v_{name}") } else { name.clone() };
            let key = channel.to_ascii_lowercase();
            let own_name_reserved = channel == *name && dialer_owned(name);
            if !plain(name) || value.is_empty() || own_name_reserved || expected.contains_key(&key) {
                prop_assert!(matches!(var.disposition, VarDisposition::Omitted(_)), "{name:?} {:?}", var.disposition);
                continue;
            }
            match var.disposition {
                VarDisposition::Sent => { expected.insert(key, value.clone()); }
                VarDisposition::UrlEncoded => {
                    expected.insert(key, url_encode(value));
                    encoded.push(channel);
                }
                VarDisposition::Omitted(why) => prop_assert!(false, "{name:?} omitted: {why}"),
            }
        }
        if !encoded.is_empty() {
            expected.insert("dlr_urlencoded_vars".into(), encoded.join(";"));
        }
        let got: BTreeMap<String, String> = leg
            .channel_vars
            .iter()
            .filter(|(n, _)| *n != "originate_early_media")
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect();
        prop_assert_eq!(got.len(), leg.channel_vars.len() - 1, "two names differing only by case");
        prop_assert_eq!(got, expected, "args: {}", built.args);
        // Member data set nothing outside its namespace but the allowlisted names.
        for (n, _) in leg.channel_vars.iter() {
            let from_member = member_vars.iter().any(|(m, _)| m.eq_ignore_ascii_case(n));
            let from_campaign = campaign_vars.iter().any(|(c, _)| c.eq_ignore_ascii_case(n));
            let from_dialer = dialer_owned(n) || built.vars[..10].iter().any(|d| d.name == n);
            if from_member && !from_campaign && !from_dialer {
                prop_assert!(allowlist.iter().any(|a| a.eq_ignore_ascii_case(n)), "{n} set by a member");
            }
        }
    }
}
