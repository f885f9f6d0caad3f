//! mod_amd and mod_avmd on the simulated switch, in virtual time: the blocking `amd` completes with the result in
//! its variables; the non-blocking one completes at once and fires `amd::info` as a clone (no Event-Name,
//! Core-UUID or dates, the channel's variables); `avmd_start` hears a machine's beep only if it runs when the beep
//! comes, and `avmd::beep` carries no channel data; the confusion matrix is the scenario's.

use super::agents::Bench;

const CALL: &str = "cccccccc-0000-4000-8000-000000000003";

fn scenario(module: &str) -> String {
    format!(
        r#"
seed = 3
[amd]
module = "{module}"
delays_ms = {{ LONGGREETING = 2000, HUMAN = 1500, SILENCEAFTERGREETING = 1500 }}
[[rule]]
match = "^vm"
callee = "machine"
greeting_ms = 5000
callee_hangs_up = false
[[rule]]
match = "^person"
callee_hangs_up = false
[[rule]]
match = "^brief"
talk_ms = 1000
"#
    )
}

fn execute(b: &mut Bench, app: &str, arg: &str) {
    let headers = vec![
        ("call-command".to_string(), "execute".to_string()),
        ("execute-app-name".to_string(), app.to_string()),
        ("execute-app-arg".to_string(), arg.to_string()),
    ];
    b.sw.sendmsg(b.now, CALL, &headers).unwrap();
    b.collect();
}

/// A call to `number` answered (at once) and parked; returns the index of the first event after that.
fn answered(b: &mut Bench, number: &str) -> usize {
    b.originate(CALL, ",dlr_node=n1", &format!("loopback/{number}/default"));
    b.until(500);
    assert_eq!(b.job_body(CALL), format!("+OK {CALL}\n"));
    b.events.len()
}

#[test]
fn the_blocking_amd_completes_with_its_result_in_the_variables() {
    let mut b = Bench::new(&scenario("mod_amd"));
    let from = answered(&mut b, "vm_1");
    execute(&mut b, "amd", "greeting=1500 total_analysis_time=5000");
    b.until(1500);
    assert!(
        !b.trail(CALL, from)
            .contains(&"CHANNEL_EXECUTE_COMPLETE(amd)".to_string()),
        "it blocks until its decision"
    );
    b.until(3000);
    let done = b.last(CALL, "CHANNEL_EXECUTE_COMPLETE");
    assert_eq!(done.get("Application"), Some("amd"));
    assert_eq!(done.variable("amd_result"), Some("MACHINE"));
    assert_eq!(done.variable("amd_cause"), Some("LONGGREETING"));
}

#[test]
fn the_non_blocking_amd_fires_a_headerless_amd_info_with_the_channel_data() {
    let mut b = Bench::new(&scenario("mod_amd_nonblocking"));
    let from = answered(&mut b, "person_1");
    execute(&mut b, "amd", "total_analysis_time=5000");
    let done = b.last(CALL, "CHANNEL_EXECUTE_COMPLETE");
    assert_eq!(done.get("Application"), Some("amd"));
    assert_eq!(done.variable("amd_result"), None, "it returns at once");
    b.until(3000);
    let info: Vec<_> = b.events[from..]
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.subclass() == Some("amd::info"))
        .collect();
    assert_eq!(info.len(), 1);
    let info = info[0];
    assert_eq!(info.name(), None);
    assert_eq!(info.get("Core-UUID"), None);
    assert_eq!(info.get("Event-Date-Timestamp"), None);
    assert_eq!(info.unique_id(), Some(CALL));
    assert_eq!(info.variable("amd_result"), Some("HUMAN"));
    assert_eq!(info.variable("amd_cause"), Some("SILENCEAFTERGREETING"));
    assert_eq!(info.variable("dlr_node"), Some("n1"));
    assert!(info.variable("amd_result_epoch").is_some());
}

#[test]
fn avmd_hears_the_beep_only_if_it_runs_when_the_beep_comes() {
    let beeps = |b: &Bench| {
        b.events
            .iter()
            .filter(|(_, e)| e.subclass() == Some("avmd::beep"))
            .map(|(t, e)| (*t, e.clone()))
            .collect::<Vec<_>>()
    };
    // Started 3 s after the answer; the beep comes at 5 s.
    let mut b = Bench::new(&scenario("mod_amd"));
    answered(&mut b, "vm_1");
    b.until(3000);
    execute(&mut b, "avmd_start", "");
    b.until(4500);
    assert!(beeps(&b).is_empty());
    b.until(6000);
    let heard = beeps(&b);
    assert_eq!(heard.len(), 1);
    let (_, beep) = &heard[0];
    assert_eq!(beep.name(), Some("CUSTOM"));
    assert_eq!(beep.unique_id(), Some(CALL));
    assert_eq!(beep.get("Beep-Status"), Some("DETECTED"));
    assert!(
        beep.headers().all(|(n, _)| !n.starts_with(b"variable_")),
        "avmd events carry no channel data"
    );
    // Started after the beep: never heard.
    let mut b = Bench::new(&scenario("mod_amd"));
    answered(&mut b, "vm_1");
    b.until(7000);
    execute(&mut b, "avmd_start", "");
    b.until(20_000);
    assert!(beeps(&b).is_empty());
    // A person never beeps.
    let mut b = Bench::new(&scenario("mod_amd"));
    answered(&mut b, "person_1");
    execute(&mut b, "avmd_start", "");
    b.until(20_000);
    assert!(beeps(&b).is_empty());
}

#[test]
fn a_callee_hanging_up_before_the_non_blocking_decision_cancels_it_without_an_event() {
    let mut b = Bench::new(&scenario("mod_amd_nonblocking"));
    let from = answered(&mut b, "brief_1");
    execute(&mut b, "amd", "");
    b.until(5000);
    assert!(
        b.events[from..]
            .iter()
            .all(|(_, e)| e.subclass() != Some("amd::info")),
        "no decision event after the hangup"
    );
    let end = b.last(CALL, "CHANNEL_HANGUP_COMPLETE");
    assert_eq!(end.variable("amd_result"), Some("CANCEL"));
    assert_eq!(end.variable("amd_cause"), Some("CANCEL"));
}
