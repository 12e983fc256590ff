//! `/demo`: a CRM-like page over the demo's day, as an agent would see it:
//! calls with play buttons and status badges. Clicking play on a recording
//! that cannot play shows the gateway's explanation in place of the player.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::error::ApiError;
use super::lookup;
use super::pages::{self, CrmRow};
use super::status::typed;
use crate::app::AppState;

/// `GET /demo`.
pub async fn page(State(state): State<AppState>) -> Result<Response, ApiError> {
    let demo = state.demo.clone().ok_or_else(|| {
        ApiError::NotFound("the demo page exists when running `playback-gateway demo`".into())
    })?;
    let tz = TimeZone::get(&demo.time_zone).map_err(|e| ApiError::Internal(e.to_string()))?;
    let date: Date = demo
        .date
        .parse()
        .map_err(|e: jiff::Error| ApiError::Internal(e.to_string()))?;
    let instant = |d: Date| {
        d.to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|e| ApiError::Internal(e.to_string()))
    };
    let (from, to) = (
        instant(date)?,
        instant(
            date.tomorrow()
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        )?,
    );
    let mut rows = Vec::new();
    for account in &demo.accounts {
        let recs = state
            .catalog
            .by_account_between(&account.sid, from, to)
            .await
            .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
        for r in lookup::resolve_all(&state, recs).await? {
            rows.push(CrmRow::new(&r, &account.name, &tz));
        }
    }
    rows.sort_by(|a, b| a.start.cmp(&b.start));
    Ok(typed(
        StatusCode::OK,
        "text/html; charset=utf-8",
        pages::crm_page(&demo.date, &demo.time_zone, rows),
    ))
}
