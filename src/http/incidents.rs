//! Incident pages: the list, one incident with the recordings it covers,
//! and the affected list as CSV for account managers to send on.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::json;

use super::answer::incident_json;
use super::auth::Caller;
use super::error::ApiError;
use super::lookup::{self, Resolved};
use super::negotiate::{self, Repr};
use super::pages::{self, Counts, RowView};
use super::status::{csv_response, json_response, list_csv, recording_json, typed};
use crate::access::Principal;
use crate::app::AppState;
use crate::catalog::TimeField;
use crate::incidents::{Incident, MatchOn};
use crate::verdict::Verdict;

fn repr(headers: &HeaderMap) -> Repr {
    negotiate::for_status(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

/// `GET /incidents.json`.
pub async fn list_json(State(state): State<AppState>) -> Response {
    let all = state.registry.snapshot();
    json_response(&json!({
        "incidents": all.iter().map(|i| incident_json(i)).collect::<Vec<_>>()
    }))
}

/// `GET /incidents`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let all = state.registry.snapshot();
    match repr(&headers) {
        Repr::Html => typed(
            axum::http::StatusCode::OK,
            "text/html; charset=utf-8",
            pages::incidents_page(&state, &all),
        ),
        _ => json_response(&json!({
            "incidents": all.iter().map(|i| incident_json(i)).collect::<Vec<_>>()
        })),
    }
}

/// The incident `id`, or `id.json` (ids may contain dots, so the whole
/// id is tried first).
fn find(state: &AppState, id: &str) -> Result<(Arc<Incident>, Option<Repr>), ApiError> {
    if let Some(i) = state.registry.get(id) {
        return Ok((i, None));
    }
    id.strip_suffix(".json")
        .and_then(|id| state.registry.get(id))
        .map(|i| (i, Some(Repr::Json)))
        .ok_or_else(|| ApiError::NotFound("no such incident".into()))
}

/// Every catalog recording the incident covers that `principal` may see,
/// resolved; and the counts.
async fn covered(
    state: &AppState,
    i: &Arc<Incident>,
    principal: &Principal,
) -> Result<(Vec<Resolved>, Counts), ApiError> {
    let field = match i.spec.match_on {
        MatchOn::Start => TimeField::Start,
        MatchOn::End => TimeField::End,
    };
    let catalog_err = |e| ApiError::from_catalog(&e, state.retry_after);
    let mut recs = state
        .catalog
        .in_window(field, i.start, i.end)
        .await
        .map_err(catalog_err)?;
    recs.retain(|r| i.covers(&r.sid, Some(r)).is_some());
    // SECURITY: an account sees only its own affected recordings.
    recs.retain(|r| principal.account().is_none_or(|a| a == &r.account_sid));
    for sid in &i.spec.recordings {
        if !recs.iter().any(|r| &r.sid == sid)
            && let Some(r) = state.catalog.get(sid).await.map_err(catalog_err)?
            && principal.account().is_none_or(|a| a == &r.account_sid)
        {
            recs.push(r);
        }
    }
    let resolved = lookup::resolve_all(state, recs).await?;
    let mut counts = Counts {
        matched: resolved.len(),
        ..Counts::default()
    };
    let mine = |v: &Verdict| v.incident().is_some_and(|x| x.id() == i.id());
    for r in &resolved {
        match &r.verdict {
            Verdict::Lost(_) if mine(&r.verdict) => counts.lost += 1,
            Verdict::Recovering(_) if mine(&r.verdict) => counts.recovering += 1,
            Verdict::Available => counts.available += 1,
            _ => counts.other += 1,
        }
    }
    let mut affected: Vec<Resolved> = resolved.into_iter().filter(|r| mine(&r.verdict)).collect();
    affected.sort_by_key(|r| r.rec.as_ref().and_then(|x| x.start_time));
    Ok((affected, counts))
}

/// `GET /incidents/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (i, forced) = find(&state, &id)?;
    // The summary is public; which recordings it hit is not.
    let (affected, counts) = match caller.require() {
        Ok(principal) => covered(&state, &i, &principal).await?,
        Err(_) => (Vec::new(), Counts::default()),
    };
    Ok(match forced.unwrap_or_else(|| repr(&headers)) {
        Repr::Html => typed(
            axum::http::StatusCode::OK,
            "text/html; charset=utf-8",
            pages::incident_page(
                &state,
                &i,
                counts,
                affected.iter().map(|r| RowView::new(r, &i.tz)).collect(),
            ),
        ),
        Repr::Csv => csv_response(
            list_csv(&affected, &i.tz)?,
            &format!("incident-{}-affected.csv", i.id()),
        ),
        _ => {
            let mut body = incident_json(&i);
            let spec = serde_json::to_value(&i.spec).unwrap_or_default();
            body["definition"] = spec;
            body["counts"] = json!(counts);
            body["affected"] = json!(affected.iter().map(recording_json).collect::<Vec<_>>());
            json_response(&body)
        }
    })
}

/// `GET /incidents/{id}/affected.csv`, times in the incident's zone.
pub async fn affected_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.require()?;
    let (i, _) = find(&state, &id)?;
    let (affected, _) = covered(&state, &i, &principal).await?;
    Ok(csv_response(
        list_csv(&affected, &i.tz)?,
        &format!("incident-{}-affected.csv", i.id()),
    ))
}
