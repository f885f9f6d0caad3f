//! Calendar and callflow costs on the claim path: `next_allowed` / `allowed_until` per timezone, gateway routing,
//! `if` evaluation and template rendering.

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use fsdialer::campaign::{CampaignConfig, Schedule};
use std::hint::black_box;

const CAMPAIGN: &str = r#"{
  "id": "bench", "name": "bench",
  "calendar": {"timezone": "Europe/Kyiv",
    "accept": [{"weekday": 1, "start_min": 540, "end_min": 1200}, {"weekday": 2, "start_min": 540, "end_min": 1200},
               {"weekday": 3, "start_min": 540, "end_min": 1200}, {"weekday": 4, "start_min": 540, "end_min": 1200},
               {"weekday": 5, "start_min": 540, "end_min": 1080}],
    "except": [{"date": "2025-01-01", "repeat_yearly": true}, {"date": "2025-12-25", "repeat_yearly": true}]},
  "gateways": [{"name": "mobile", "pattern": "^\\+?380(50|66)(\\d{7})$", "dial_string": "sofia/gateway/m/0$1$2"},
               {"name": "any", "pattern": "^(.*)$", "dial_string": "loopback/$1/default"}],
  "callflow": [{"if": {"expr": "${debt} >= 1000 && ${digits} == 1 || ${lang} == 'uk'", "then": [], "else": []}},
               {"playback": {"file": "debt/${lang}/greeting_${segment}.wav"}}]
}"#;

fn bench(c: &mut Criterion) {
    let campaign = CampaignConfig::from_json_str(CAMPAIGN)
        .unwrap()
        .validate()
        .unwrap();
    let cal = campaign.calendar();
    // Friday 19:00 UTC = 22:00 in Kyiv: closed until Monday 09:00.
    let friday_evening: DateTime<Utc> = "2025-06-06T19:00:00Z".parse().unwrap();
    let monday_noon: DateTime<Utc> = "2025-06-09T09:00:00Z".parse().unwrap();
    // Around New York's fall back.
    let dst_day: DateTime<Utc> = "2025-11-01T20:00:00Z".parse().unwrap();

    c.bench_function("calendar next_allowed, open now", |b| {
        b.iter(|| cal.next_allowed(black_box(None), black_box(monday_noon)))
    });
    c.bench_function("calendar next_allowed, closed over a weekend", |b| {
        b.iter(|| cal.next_allowed(black_box(None), black_box(friday_evening)))
    });
    c.bench_function(
        "calendar next_allowed, member tz across a DST change",
        |b| b.iter(|| cal.next_allowed(black_box(Some("America/New_York")), black_box(dst_day))),
    );
    c.bench_function("calendar allowed_until, open now", |b| {
        b.iter(|| cal.allowed_until(black_box(None), black_box(monday_noon)))
    });

    let gateways = campaign.gateways();
    c.bench_function("gateway route", |b| {
        b.iter(|| gateways.route(black_box("+380501234567")).unwrap())
    });

    let steps = campaign.callflow().unwrap().steps();
    let fsdialer::campaign::Step::If(cond) = &steps[0] else {
        unreachable!()
    };
    let fsdialer::campaign::Step::Playback { file } = &steps[1] else {
        unreachable!()
    };
    let lookup = |name: &str| match name {
        "debt" => Some("1500.50".to_string()),
        "digits" => Some("2".to_string()),
        "lang" => Some("uk".to_string()),
        "segment" => Some("vip".to_string()),
        _ => None,
    };
    c.bench_function("callflow if eval", |b| {
        b.iter(|| cond.expr.eval(black_box(lookup)))
    });
    c.bench_function("callflow template render", |b| {
        b.iter(|| file.render(black_box(lookup)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
