//! The pacer's rules on virtual time: warm-up, the hard limits, the closed loop and the reaction to a step
//! change of the answer rate.

use chrono::{DateTime, Duration, Utc};

use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000)
}

fn team(free: u32, busy: u32, wrapping: u32) -> AgentCounts {
    AgentCounts {
        free,
        busy,
        wrapping,
    }
}

fn inputs(agents: AgentCounts, ringing: &[f64]) -> PacerInputs<'_> {
    PacerInputs {
        agents,
        talk_ages_sec: &[],
        ringing_ages_sec: ringing,
        waiting: 0,
        abandon_30d_pct: None,
    }
}

/// Feeds `secs` seconds of traffic at `per_sec` dial outcomes a second, every `1/live_prob`-th a live answer
/// after 8 s (deterministic), each live answer judged connected, and a 90 s talk and a 10 s wrap-up per answer.
fn traffic(
    state: &mut PacerState,
    s: &PacingSettings,
    from: DateTime<Utc>,
    secs: u32,
    per_sec: u32,
    live_prob: f64,
) -> DateTime<Utc> {
    let mut credit = 0.0;
    let mut now = from;
    for step in 0..secs * per_sec {
        now = from + Duration::milliseconds(i64::from(step) * 1000 / i64::from(per_sec));
        credit += live_prob;
        if credit >= 1.0 {
            credit -= 1.0;
            state.record_dial(now, s, DialOutcome::LiveAnswer { after_sec: 8.0 });
            state.record_judged(now, false);
            state.record_talk(now, s, 90.0);
            state.record_wrap(now, s, 10.0);
        } else {
            state.record_dial(now, s, DialOutcome::NotAnswered);
        }
    }
    now
}

#[test]
fn warm_up_dials_one_call_per_free_agent_until_enough_live_answers() {
    let s = PacingSettings::default();
    let mut state = PacerState::new(&s);
    let d = state.decide(&s, &inputs(team(10, 40, 0), &[]), t0());
    assert_eq!(d.rule, PacingRule::WarmUp);
    assert_eq!(d.dials, 10);
    // Ringing calls count against the free agents.
    let d = state.decide(&s, &inputs(team(10, 40, 0), &[1.0, 2.0, 3.0]), t0());
    assert_eq!(d.dials, 7);
    // 19 live answers: still warming up; the 20th ends it.
    let now = traffic(&mut state, &s, t0(), 19, 1, 1.0);
    assert_eq!(state.model.live_answers_seen, 19);
    assert_eq!(
        state.decide(&s, &inputs(team(10, 40, 0), &[]), now).rule,
        PacingRule::WarmUp
    );
    state.record_dial(now, &s, DialOutcome::LiveAnswer { after_sec: 8.0 });
    let d = state.decide(&s, &inputs(team(10, 40, 0), &[]), now);
    assert_eq!(d.rule, PacingRule::Policy(PacingPolicy::Fsdialer));
}

#[test]
fn a_warm_model_dials_more_calls_than_free_agents_at_a_low_answer_rate() {
    let s = PacingSettings::default();
    let mut state = PacerState::new(&s);
    let now = traffic(&mut state, &s, t0(), 600, 2, 0.3);
    let d = state.decide(&s, &inputs(team(10, 40, 0), &[]), now);
    assert_eq!(d.rule, PacingRule::Policy(PacingPolicy::Fsdialer));
    assert!(d.dials > 10, "{d:?}");
    // Machine answers are not live answers: a campaign whose answers are half machines dials more.
    let mut machines = PacerState::new(&s);
    let mut t = t0();
    for i in 0..1200 {
        t = t0() + Duration::milliseconds(i * 500);
        let outcome = match i % 10 {
            0..=2 => DialOutcome::LiveAnswer { after_sec: 8.0 },
            3..=5 => DialOutcome::MachineAnswer { after_sec: 8.0 },
            _ => DialOutcome::NotAnswered,
        };
        machines.record_dial(t, &s, outcome);
        if matches!(outcome, DialOutcome::LiveAnswer { .. }) {
            machines.record_judged(t, false);
            machines.record_talk(t, &s, 90.0);
            machines.record_wrap(t, &s, 10.0);
        }
    }
    assert_eq!(machines.since_start.machine, 360);
    assert_eq!(machines.since_start.live, 360);
    let d = machines.decide(&s, &inputs(team(10, 40, 0), &[]), t);
    assert!(d.dials > 10, "{d:?}");
}

#[test]
fn never_more_than_max_lines_per_ready_agent_are_ringing() {
    let s = PacingSettings {
        max_lines_per_agent: 1.5,
        ..Default::default()
    };
    let mut state = PacerState::new(&s);
    // A very low answer rate wants many lines.
    let now = traffic(&mut state, &s, t0(), 1200, 2, 0.05);
    let ringing = [1.0; 5];
    let d = state.decide(&s, &inputs(team(10, 0, 0), &ringing), now);
    assert_eq!(d.rule, PacingRule::LineCap);
    // 1.5 × 10 ready agents = 15 lines, 5 already ringing.
    assert_eq!(d.dials, 10);
}

#[test]
fn fewer_ready_agents_than_the_minimum_dial_one_to_one() {
    let s = PacingSettings::default();
    let mut state = PacerState::new(&s);
    let now = traffic(&mut state, &s, t0(), 600, 2, 0.3);
    let d = state.decide(&s, &inputs(team(3, 1, 0), &[]), now);
    assert_eq!(d.rule, PacingRule::FewAgents);
    assert_eq!(d.dials, 3);
    let d = state.decide(&s, &inputs(team(3, 2, 0), &[]), now);
    assert_ne!(d.rule, PacingRule::FewAgents);
}

#[test]
fn a_thirty_day_rate_at_the_maximum_falls_back_to_one_to_one() {
    let s = PacingSettings::default();
    let mut state = PacerState::new(&s);
    let now = traffic(&mut state, &s, t0(), 600, 2, 0.3);
    let mut i = inputs(team(10, 40, 0), &[]);
    i.abandon_30d_pct = Some(2.99);
    assert!(state.decide(&s, &i, now).dials > 10);
    i.abandon_30d_pct = Some(3.0);
    let d = state.decide(&s, &i, now);
    assert_eq!(d.rule, PacingRule::ThirtyDayLimit);
    assert_eq!(d.dials, 10);
    // The baselines obey it too.
    for policy in [PacingPolicy::Webitel, PacingPolicy::Vicidial] {
        let s = PacingSettings {
            policy,
            ..Default::default()
        };
        assert_eq!(state.decide(&s, &i, now).rule, PacingRule::ThirtyDayLimit);
    }
}

#[test]
fn a_drop_in_the_answer_rate_raises_the_dials_within_five_seconds() {
    let s = PacingSettings::default();
    let mut state = PacerState::new(&s);
    let agents = team(10, 40, 0);
    let now = traffic(&mut state, &s, t0(), 900, 2, 0.35);
    let before = state.decide(&s, &inputs(agents, &[]), now).dials;
    // The answer rate halves; 5 s of it.
    let after_step = traffic(&mut state, &s, now, 5, 2, 0.15);
    let after = state.decide(&s, &inputs(agents, &[]), after_step).dials;
    assert!(
        f64::from(after) >= f64::from(before) * 1.05,
        "before {before}, 5 s after the drop {after}"
    );
    // And a rise lowers them as fast.
    let mut up = PacerState::new(&s);
    let now = traffic(&mut up, &s, t0(), 900, 2, 0.15);
    let before = up.decide(&s, &inputs(agents, &[]), now).dials;
    let after_step = traffic(&mut up, &s, now, 5, 2, 0.35);
    let after = up.decide(&s, &inputs(agents, &[]), after_step).dials;
    assert!(
        f64::from(after) <= f64::from(before) * 0.95,
        "before {before}, 5 s after the rise {after}"
    );
}

#[test]
fn the_closed_loop_dials_less_while_the_short_window_is_over_the_target() {
    let s = PacingSettings::default();
    let mut calm = PacerState::new(&s);
    let now = traffic(&mut calm, &s, t0(), 600, 2, 0.3);
    let mut hot = calm.clone();
    let agents = team(10, 40, 0);
    let base = calm.decide(&s, &inputs(agents, &[]), now).dials;
    // Two minutes in which every fifth live answer is abandoned (20 %): the correction shrinks.
    let mut t = now;
    for i in 0..240 {
        t = now + Duration::milliseconds(i * 500);
        hot.record_dial(t, &s, DialOutcome::LiveAnswer { after_sec: 8.0 });
        hot.record_judged(t, i % 5 == 0);
        hot.decide(&s, &inputs(agents, &[]), t);
        calm.record_dial(t, &s, DialOutcome::LiveAnswer { after_sec: 8.0 });
        calm.record_judged(t, false);
        calm.decide(&s, &inputs(agents, &[]), t);
    }
    assert!(
        hot.correction < 0.6 * CORRECTION_START,
        "{}",
        hot.correction
    );
    assert!(calm.correction > CORRECTION_START, "{}", calm.correction);
    let hot_dials = hot.decide(&s, &inputs(agents, &[]), t).dials;
    let calm_dials = calm.decide(&s, &inputs(agents, &[]), t).dials;
    assert!(
        hot_dials < calm_dials,
        "hot {hot_dials}, calm {calm_dials}, before {base}"
    );
}

#[test]
fn calls_already_ringing_and_callers_waiting_count_against_the_free_agents() {
    let s = PacingSettings::default();
    let mut state = PacerState::new(&s);
    let now = traffic(&mut state, &s, t0(), 600, 2, 0.3);
    let agents = team(10, 40, 0);
    let idle = state.decide(&s, &inputs(agents, &[]), now).dials;
    let ringing = [1.0; 10];
    let busy = state.decide(&s, &inputs(agents, &ringing), now).dials;
    assert!(busy < idle, "{busy} < {idle}");
    let mut waiting = inputs(agents, &[]);
    waiting.waiting = 10;
    assert!(state.decide(&s, &waiting, now).dials < idle);
    // A call that has rung for a minute is unlikely to be answered: it weighs less than a fresh one.
    let old = [60.0; 10];
    assert!(state.decide(&s, &inputs(agents, &old), now).dials > busy);
}

#[test]
fn webitel_and_vicidial_follow_their_published_rules() {
    let agents = team(10, 40, 0);
    // Webitel: over-dial = attempts / connected, plus dx·q % while under its target.
    let s = PacingSettings {
        policy: PacingPolicy::Webitel,
        ..Default::default()
    };
    let mut w = PacerState::new(&s);
    let now = traffic(&mut w, &s, t0(), 600, 2, 0.25);
    let d = w.decide(&s, &inputs(agents, &[]), now);
    // hit 0.25 → 4.0; abandoned 0 → dx 3 → 4 · 1.3 = 5.2 → 52 dials for 10 free agents.
    assert!(
        (w.webitel.over_dial - 5.2).abs() < 1e-9,
        "{}",
        w.webitel.over_dial
    );
    assert_eq!(d.dials, 52);
    // ViciDial: idle agents raise the level every 15 s, capped at 3.
    let s = PacingSettings {
        policy: PacingPolicy::Vicidial,
        ..Default::default()
    };
    let mut v = PacerState::new(&s);
    let mut t = t0();
    for i in 0..120 {
        t = t0() + Duration::seconds(i);
        v.decide(&s, &inputs(team(25, 25, 0), &[]), t);
    }
    assert!(
        (v.vicidial.level - 3.0).abs() < 1e-9,
        "{}",
        v.vicidial.level
    );
    // Goal 50 × 3 = 150 less 25 talking.
    assert_eq!(v.decide(&s, &inputs(team(25, 25, 0), &[]), t).dials, 125);
}

#[test]
fn a_thirty_day_rate_over_the_target_holds_the_loop_under_where_a_clean_record_leaves_it() {
    let s = PacingSettings::default();
    let (mut state, now) = warm_pacer(&s);
    let mut clean = state.clone();
    let agents = team(10, 40, 0);
    let mut over = inputs(agents, &[]);
    over.abandon_30d_pct = Some(2.8);
    let mut clean_record = inputs(agents, &[]);
    clean_record.abandon_30d_pct = Some(1.0);
    for i in 0..600 {
        let t = now + Duration::seconds(i);
        state.decide(&s, &over, t);
        clean.decide(&s, &clean_record, t);
    }
    assert!(
        state.correction < clean.correction,
        "over {}, clean {}",
        state.correction,
        clean.correction
    );
    let over_dials = state.decide(&s, &over, now + Duration::seconds(600)).dials;
    let clean_dials = clean
        .decide(&s, &clean_record, now + Duration::seconds(600))
        .dials;
    assert!(
        over_dials < clean_dials,
        "over {over_dials}, clean {clean_dials}"
    );
}

#[test]
fn the_loop_aims_under_the_target_by_as_much_as_the_thirty_day_record_is_over_it() {
    let s = PacingSettings::default();
    let aim = |r: Option<f64>| super::loop_aim(&s, r) * 100.0;
    assert!((aim(None) - 2.0).abs() < 1e-9);
    assert!(
        (aim(Some(1.0)) - 2.0).abs() < 1e-9,
        "a clean record is not spent"
    );
    assert!((aim(Some(2.5)) - 1.5).abs() < 1e-9);
    assert!((aim(Some(2.9)) - 1.1).abs() < 1e-9);
    assert!(
        (aim(Some(3.8)) - 0.5).abs() < 1e-9,
        "floored at a quarter of the target"
    );
}

#[test]
fn a_thirty_day_rate_back_at_the_target_leaves_the_short_window_to_steer() {
    // After an early burst the record has come back down to the target: a clean short window may dial more
    // again (the loop used to read the record as its measure and stand still at the target).
    let s = PacingSettings::default();
    let (mut state, now) = warm_pacer(&s);
    let agents = team(10, 40, 0);
    let mut at_target = inputs(agents, &[]);
    at_target.abandon_30d_pct = Some(2.0);
    for i in 0..120 {
        let t = now + Duration::seconds(i);
        state.record_dial(t, &s, DialOutcome::LiveAnswer { after_sec: 8.0 });
        state.record_judged(t, false);
        state.decide(&s, &at_target, t);
    }
    assert!(state.correction > CORRECTION_START, "{}", state.correction);
}

#[test]
fn agents_near_the_end_of_their_calls_are_counted_on_more_than_agents_just_begun() {
    let s = PacingSettings::default();
    let (mut state, now) = warm_pacer(&s);
    // Talk times spread around 90 s (60 and 135 in turn, ln-sd 0.41), so the model has a lognormal shape to go by
    // (the warm-up's calls all lasted 90 s and still weigh in).
    for i in 0..1000 {
        state.record_talk(now, &s, if i % 2 == 0 { 60.0 } else { 135.0 });
    }
    let shape = state
        .model
        .estimates()
        .unwrap()
        .talk_shape
        .expect("calls ended");
    assert!(shape.sigma > 0.3 && shape.sigma < 0.41, "{shape:?}");
    // The model alone: the loop's correction at 1.
    state.correction = 1.0;
    let agents = team(5, 45, 0);
    let just_begun = [2.0; 45];
    let near_the_end = [130.0; 45];
    let mut fresh = inputs(agents, &[]);
    fresh.talk_ages_sec = &just_begun;
    let mut ending = inputs(agents, &[]);
    ending.talk_ages_sec = &near_the_end;
    let fresh_dials = state.clone().decide(&s, &fresh, now).dials;
    let ending_dials = state.clone().decide(&s, &ending, now).dials;
    assert!(
        ending_dials > fresh_dials + 5,
        "45 agents 130 s into their calls: {ending_dials}; 2 s into them: {fresh_dials}"
    );
    // The agents' ages are what tells them apart: the expected free agents differ by the conditional chances.
    let horizons = predict::Horizons {
        sec: [8.0; predict::HORIZONS],
    };
    let e = state.model.estimates().unwrap();
    let free_fresh = predict::agents_free_by(&mut state, &e, &fresh, &horizons)[0].mean;
    let free_ending = predict::agents_free_by(&mut state, &e, &ending, &horizons)[0].mean;
    assert!(free_fresh < 5.1, "{free_fresh}");
    assert!(free_ending > 8.0, "{free_ending}");
}

/// A pacer that has seen ten minutes of traffic: two dial outcomes a second, 30 % live answers, all connected.
fn warm_pacer(s: &PacingSettings) -> (PacerState, DateTime<Utc>) {
    let mut state = PacerState::new(s);
    let now = traffic(&mut state, s, t0(), 600, 2, 0.3);
    (state, now)
}

#[test]
fn calls_ringing_past_the_usual_time_to_answer_count_for_few_answers() {
    let s = PacingSettings::default();
    let (state, now) = warm_pacer(&s);
    // Every answer of the warm-up came after 8 s: a call ringing 7.5 s is about to be answered (30 % of them by
    // a person), one ringing 20 s will most likely ring out.
    let agents = team(10, 40, 0);
    let about_to_answer = [7.5; 20];
    let past_it = [20.0; 20];
    let near = state
        .clone()
        .decide(&s, &inputs(agents, &about_to_answer), now)
        .dials;
    let late = state
        .clone()
        .decide(&s, &inputs(agents, &past_it), now)
        .dials;
    assert!(
        late >= near + 10,
        "20 calls ringing 20 s: {late} more; 20 calls ringing 7.5 s: {near} more"
    );
}

#[test]
fn answers_due_later_meet_the_agents_who_come_free_by_then() {
    let s = PacingSettings::default();
    // The same traffic, answered after 8 s or after 24 s: with 20 agents in wrap-up (mean 10 s), more of them are
    // free when the later answers come, so the pacer dials more for the same team.
    let quick = traffic_answered_after(&s, 8.0);
    let slow = traffic_answered_after(&s, 24.0);
    let agents = team(2, 28, 20);
    let dials = |(state, now): (PacerState, DateTime<Utc>)| {
        let mut state = state;
        state.correction = 1.0;
        state.decide(&s, &inputs(agents, &[]), now).dials
    };
    let (quick, slow) = (dials(quick), dials(slow));
    assert!(
        slow > quick + 5,
        "answers after 24 s: {slow} dials; after 8 s: {quick}"
    );
}

/// Ten minutes of two dial outcomes a second, 30 % live answers after `after_sec`, 90 s talks, 10 s wrap-ups.
fn traffic_answered_after(s: &PacingSettings, after_sec: f64) -> (PacerState, DateTime<Utc>) {
    let mut state = PacerState::new(s);
    let mut now = t0();
    for step in 0..1200u32 {
        now = t0() + Duration::milliseconds(i64::from(step) * 500);
        if step % 10 < 3 {
            state.record_dial(now, s, DialOutcome::LiveAnswer { after_sec });
            state.record_judged(now, false);
            state.record_talk(now, s, 90.0);
            state.record_wrap(now, s, 10.0);
        } else {
            state.record_dial(now, s, DialOutcome::NotAnswered);
        }
    }
    (state, now)
}
