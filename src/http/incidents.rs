//! Incident pages: the list, one incident with the recordings it covers,
//! and the affected list as CSV for account managers to send on.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::json;

use super::answer::incident_json;
use super::auth::Caller;
use super::error::ApiError;
use super::lookup::{self, Resolved};
use super::negotiate::{self, Repr};
use super::pages::{self, AccountImpact, Counts, ImpactView, RowView};
use super::status::{csv_response, json_response, list_csv, recording_json, typed};
use crate::access::Principal;
use crate::app::AppState;
use crate::catalog::TimeField;
use crate::incidents::{Incident, MatchOn};
use crate::sid::AccountSid;
use crate::verdict::Verdict;
use jiff::tz::TimeZone;
use serde::Deserialize;

fn repr(headers: &HeaderMap) -> Repr {
    negotiate::for_status(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

/// `GET /incidents.json`.
pub async fn list_json(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Response {
    let all = shown(&state, caller.ok().as_ref());
    json_response(&json!({
        "incidents": all.iter().map(|i| incident_json(i)).collect::<Vec<_>>()
    }))
}

/// `GET /incidents`.
pub async fn list(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
) -> Response {
    let all = shown(&state, caller.ok().as_ref());
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

/// Whether the caller may know of an incident at all: one scoped to some
/// accounts concerns those accounts (and the admin) only; to anyone else
/// it does not exist. The public list is public: a credential that fails
/// there is read as no credential.
fn shown_to(i: &Incident, caller: Option<&Caller>) -> bool {
    match caller.and_then(|c| c.require().ok()) {
        Some(Principal::Admin | Principal::Open) => true,
        _ if i.spec.accounts.is_empty() => true,
        Some(p) => p.account().is_some_and(|a| i.spec.accounts.contains(a)),
        None => false,
    }
}

/// The incidents the caller may know of.
fn shown(state: &AppState, caller: Option<&Caller>) -> Vec<Arc<Incident>> {
    let mut all = state.registry.snapshot().to_vec();
    all.retain(|i| shown_to(i, caller));
    all
}

/// The incident `id`, or `id.json` (ids may contain dots, so the whole
/// id is tried first), if the caller may know of it.
fn find(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(Arc<Incident>, Option<Repr>), ApiError> {
    let (i, forced) = match state.registry.get(id) {
        Some(i) => (Some(i), None),
        None => (
            id.strip_suffix(".json")
                .and_then(|id| state.registry.get(id)),
            Some(Repr::Json),
        ),
    };
    i.filter(|i| shown_to(i, Some(caller)))
        .map(|i| (i, forced))
        .ok_or_else(|| ApiError::NotFound("no such incident".into()))
}

/// Every catalog recording the incident covers that `principal` may see,
/// resolved; and the counts.
async fn covered(
    state: &AppState,
    i: &Arc<Incident>,
    principal: &Principal,
    only: Option<&AccountSid>,
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
    recs.retain(|r| i.covers(&r.sid, Some(r), None).is_some());
    // SECURITY: an account sees only its own affected recordings.
    let visible = |r: &crate::catalog::Recording| {
        principal.account().is_none_or(|a| a == &r.account_sid)
            && only.is_none_or(|a| a == &r.account_sid)
    };
    recs.retain(|r| visible(r));
    for sid in &i.spec.recordings {
        if !recs.iter().any(|r| &r.sid == sid)
            && let Some(r) = state.catalog.get(sid).await.map_err(catalog_err)?
            && visible(&r)
            && i.covers(sid, Some(&r), None).is_some()
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

/// `?account=AC…`: one account's affected recordings.
#[derive(Debug, Default, Deserialize)]
pub struct ImpactQuery {
    account: Option<String>,
}

fn impact_query(q: Result<Query<ImpactQuery>, QueryRejection>) -> Result<ImpactQuery, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))
}

/// Whose recordings to list, and in which zone: one account's in that
/// account's zone (an account principal always sees its own), or all the
/// caller may see in the incident's zone.
async fn impact_scope(
    state: &AppState,
    i: &Incident,
    principal: &Principal,
    q: ImpactQuery,
) -> Result<(Option<AccountSid>, TimeZone), ApiError> {
    let requested = q
        .account
        .map(|a| a.parse::<AccountSid>())
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("account: {e}")))?;
    let account = match (principal.account(), requested) {
        // SECURITY: another account is answered as a non-existent one.
        (Some(own), Some(r)) if *own != r => {
            return Err(ApiError::NotFound("no such account".into()));
        }
        (Some(own), _) => Some(own.clone()),
        (None, r) => r,
    };
    let tz = match &account {
        Some(a) => state
            .catalog
            .account(a)
            .await
            .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?
            .and_then(|acc| acc.time_zone)
            .and_then(|z| TimeZone::get(&z).ok())
            .unwrap_or_else(|| i.tz.clone()),
        None => i.tz.clone(),
    };
    Ok((account, tz))
}

/// Lost and recovering per account, for the admin's overview.
async fn by_account(state: &AppState, affected: &[Resolved]) -> Vec<AccountImpact> {
    let mut rows: Vec<AccountImpact> = Vec::new();
    for r in affected {
        let Some(rec) = r.rec.as_deref() else {
            continue;
        };
        let account = rec.account_sid.to_string();
        let row = match rows.iter_mut().position(|x| x.account_sid == account) {
            Some(n) => &mut rows[n],
            None => {
                rows.push(AccountImpact {
                    account_sid: account,
                    name: None,
                    lost: 0,
                    recovering: 0,
                });
                rows.last_mut().expect("just pushed")
            }
        };
        match r.verdict {
            Verdict::Lost(_) => row.lost += 1,
            _ => row.recovering += 1,
        }
    }
    rows.sort_by(|a, b| a.account_sid.cmp(&b.account_sid));
    for row in &mut rows {
        if let Ok(sid) = row.account_sid.parse()
            && let Ok(Some(acc)) = state.catalog.account(&sid).await
        {
            row.name = acc.name;
        }
    }
    rows
}

/// `GET /incidents/{id}[?account=AC…]`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ImpactQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = impact_query(query)?;
    let (i, forced) = find(&state, &caller, &id)?;
    // The summary is public; which recordings it hit is not.
    let (affected, counts, account, tz) = match caller.require() {
        Ok(principal) => {
            let (account, tz) = impact_scope(&state, &i, &principal, query).await?;
            let (affected, counts) = covered(&state, &i, &principal, account.as_ref()).await?;
            (affected, counts, account, tz)
        }
        Err(_) => (Vec::new(), Counts::default(), None, i.tz.clone()),
    };
    let overview = match (&account, caller.require()) {
        (None, Ok(p)) if p.account().is_none() => by_account(&state, &affected).await,
        _ => Vec::new(),
    };
    Ok(match forced.unwrap_or_else(|| repr(&headers)) {
        Repr::Html => {
            let view = ImpactView {
                account: account.as_ref().map(ToString::to_string),
                tz_label: tz.iana_name().unwrap_or("UTC").to_owned(),
                by_account: overview,
            };
            typed(
                axum::http::StatusCode::OK,
                "text/html; charset=utf-8",
                pages::incident_page(
                    &state,
                    &i,
                    counts,
                    &view,
                    affected.iter().map(|r| RowView::new(r, &tz)).collect(),
                ),
            )
        }
        Repr::Csv => csv_response(list_csv(&affected, &tz)?, &csv_name(&i, account.as_ref())),
        _ => {
            let mut body = incident_json(&i);
            // SECURITY: the definition names the accounts it is scoped to
            // and the sids it lists: the admin's, not a customer's.
            if matches!(caller.require(), Ok(Principal::Admin | Principal::Open)) {
                body["definition"] = serde_json::to_value(&i.spec).unwrap_or_default();
            }
            body["counts"] = json!(counts);
            if let Some(a) = &account {
                body["account_sid"] = json!(a);
            }
            if !overview.is_empty() {
                body["by_account"] = json!(overview);
            }
            body["affected"] = json!(affected.iter().map(recording_json).collect::<Vec<_>>());
            json_response(&body)
        }
    })
}

fn csv_name(i: &Incident, account: Option<&AccountSid>) -> String {
    match account {
        Some(a) => format!("incident-{}-{a}-affected.csv", i.id()),
        None => format!("incident-{}-affected.csv", i.id()),
    }
}

/// `GET /incidents/{id}/affected.csv[?account=AC…]`: times in the
/// account's zone for one account, else in the incident's.
pub async fn affected_csv(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ImpactQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = impact_query(query)?;
    let principal = caller.require()?;
    let (i, _) = find(&state, &caller, &id)?;
    let (account, tz) = impact_scope(&state, &i, &principal, query).await?;
    let (affected, _) = covered(&state, &i, &principal, account.as_ref()).await?;
    Ok(csv_response(
        list_csv(&affected, &tz)?,
        &csv_name(&i, account.as_ref()),
    ))
}
