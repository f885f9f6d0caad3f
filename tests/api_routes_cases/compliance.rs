//! The compliance record over real HTTP against a real Redis: per-day counts with the rolling 30-day rate, as
//! JSON and CSV, kept for more than three years, and clear errors for bad dates.

use super::api_support::*;
use chrono::NaiveDate;
use fsdialer::agents::compliance::{DayCounts, KEEP_SEC};

const ID: &str = "5a5a5a5a5a5a5a5a5a5a5a5a";

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[tokio::test]
async fn the_compliance_record_gives_each_day_and_its_rolling_thirty_day_rate_as_json_and_csv() {
    let api = start().await;
    api.create_campaign(ID).await;
    let store = &api.running.state.store;
    let counts = |live, abandoned| DayCounts {
        live_answers: live,
        abandoned,
        machine_answers: 7,
        messages_played: abandoned,
    };
    store
        .record_compliance(ID, day("2026-01-01"), counts(100, 5))
        .await
        .unwrap();
    // Two writes to one day add up.
    for _ in 0..2 {
        store
            .record_compliance(ID, day("2026-01-30"), counts(50, 0))
            .await
            .unwrap();
    }
    let a = api
        .get(&format!(
            "/api/v2/dialer/{ID}/compliance?from=2026-01-30&to=2026-01-31"
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let days = a.json["data"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(days[0]["date"], "2026-01-30");
    assert_eq!(days[0]["live_answers"], 100);
    assert_eq!(days[0]["machine_answers"], 14);
    // 30 days ending 2026-01-30 include 2026-01-01: 5 of 200.
    assert_eq!(days[0]["rolling_live_answers"], 200);
    assert_eq!(days[0]["rolling_abandon_pct"], 2.5);
    // 2026-01-01 has left the window of the 31st.
    assert_eq!(days[1]["live_answers"], 0);
    assert_eq!(days[1]["rolling_abandon_pct"], 0.0);

    let csv = api
        .get(&format!(
            "/api/v2/dialer/{ID}/compliance?from=2026-01-30&to=2026-01-30&format=csv"
        ))
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(
        lines[0],
        "date,live_answers,abandoned,machine_answers,messages_played,rolling_live_answers,rolling_abandoned,rolling_abandon_pct"
    );
    assert_eq!(lines[1], "2026-01-30,100,0,14,0,200,5,2.500");

    // Kept more than three years.
    let mut conn = redis::Client::open(api.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("dlr:{{{ID}}}:compliance:2026-01-30"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttl > 3 * 365 * 86_400 && ttl <= KEEP_SEC as i64,
        "ttl {ttl}"
    );

    let bad = api
        .get(&format!("/api/v2/dialer/{ID}/compliance?from=30.01.2026"))
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json["info"]
            .as_str()
            .unwrap()
            .starts_with("query: from: expected a date"),
        "{}",
        bad.text
    );
    let reversed = api
        .get(&format!(
            "/api/v2/dialer/{ID}/compliance?from=2026-02-01&to=2026-01-01"
        ))
        .await;
    assert_eq!(reversed.status, 400, "{}", reversed.text);
    let missing = api
        .get("/api/v2/dialer/ffffffffffffffffffffffff/compliance")
        .await;
    assert_eq!(missing.status, 404);
    api.shutdown().await;
}
