//! `GET /api/v2/dialer/{id}/compliance?from&to[&format=csv]`: the campaign's abandonment record per day — live
//! answers, abandoned calls, machine answers, abandon messages played — with the rolling 30-day rate of each day
//! (FTC/FCC safe harbour: at most 3 % of live answers per campaign per 30 days; the rule is
//! `agents::compliance`). Days are UTC; `from`/`to` default to the last 30 days up to today.

use super::super::ApiState;
use super::super::error::ApiError;
use super::super::extract::{ApiPath, ApiQuery};
use super::super::reply::ok;
use super::files::{csv_chunk, csv_response};
use crate::agents::compliance::{self, DayReport};
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use serde::Deserialize;
use std::sync::Arc;

/// The query of the route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceParams {
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 8] = [
    "date",
    "live_answers",
    "abandoned",
    "machine_answers",
    "messages_played",
    "rolling_live_answers",
    "rolling_abandoned",
    "rolling_abandon_pct",
];

fn day(name: &str, value: Option<&str>, default: NaiveDate) -> Result<NaiveDate, ApiError> {
    match value {
        None => Ok(default),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request(format!(
                "query: {name}: expected a date YYYY-MM-DD, got {:?}",
                crate::text::prefix(v)
            ))
        }),
    }
}

/// The rows of the report as CSV cells.
pub fn csv_rows(report: &[DayReport]) -> Vec<Vec<String>> {
    let mut rows = vec![CSV_COLUMNS.iter().map(|c| c.to_string()).collect()];
    for d in report {
        rows.push(vec![
            d.date.format("%Y-%m-%d").to_string(),
            d.counts.live_answers.to_string(),
            d.counts.abandoned.to_string(),
            d.counts.machine_answers.to_string(),
            d.counts.messages_played.to_string(),
            d.rolling_live_answers.to_string(),
            d.rolling_abandoned.to_string(),
            d.rolling_abandon_pct
                .map(|p| format!("{p:.3}"))
                .unwrap_or_default(),
        ]);
    }
    rows
}

/// `GET /api/v2/dialer/{id}/compliance`
pub async fn get(
    State(st): State<Arc<ApiState>>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ComplianceParams>,
) -> Result<Response, ApiError> {
    st.registry.require(&id).await?;
    let today = chrono::Utc::now().date_naive();
    let to = day("to", q.to.as_deref(), today)?;
    let from = day("from", q.from.as_deref(), to - Duration::days(29))?;
    if from > to {
        return Err(ApiError::bad_request("query: from: must not be after to"));
    }
    if (to - from).num_days() >= crate::store::COMPLIANCE_MAX_RANGE_DAYS {
        return Err(ApiError::bad_request(format!(
            "query: at most {} days at once",
            crate::store::COMPLIANCE_MAX_RANGE_DAYS
        )));
    }
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "query: format: json or csv, got {:?}",
                crate::text::prefix(other)
            )));
        }
    };
    let days = st
        .store
        .compliance_days(&id, compliance::first_needed_day(from), to)
        .await?;
    let report = compliance::report(&days, from, to);
    if csv {
        let body = csv_chunk(&csv_rows(&report));
        return Ok(csv_response(
            &format!("compliance-{id}.csv"),
            Body::from(body),
        ));
    }
    Ok(ok(report).into_response())
}
