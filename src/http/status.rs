//! Status for account managers and API clients: one recording, one call,
//! one account's day; HTML for browsers, JSON for programs, CSV for lists.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_json::{Value, json};

use super::answer::{availability_json, badge, verdict_response};
use super::auth::Caller;
use super::error::ApiError;
use super::lookup::{self, Resolved};
use super::negotiate::{self, Repr};
use super::pages::{self, AccountDayPage, RowView};
use crate::app::AppState;
use crate::catalog::Recording;
use crate::sid::{AccountSid, CallSid, RecordingSid};
use crate::verdict::Verdict;

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

/// A response with a content type; status pages are never cached by
/// shared caches and always revalidated (verdicts change).
pub fn typed(status: StatusCode, ctype: &'static str, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    res
}

pub fn json_response(v: &Value) -> Response {
    typed(
        StatusCode::OK,
        "application/json",
        serde_json::to_string(v).unwrap_or_default(),
    )
}

fn html(body: String) -> Response {
    typed(StatusCode::OK, "text/html; charset=utf-8", body)
}

/// The recording as JSON: catalog fields and availability.
pub fn recording_json(r: &Resolved) -> Value {
    let rec = r.rec.as_deref();
    json!({
        "sid": r.sid,
        "account_sid": rec.map(|x| &x.account_sid),
        "call_sid": rec.and_then(|x| x.call_sid.as_ref()),
        "start_time": rec.and_then(|x| x.start_time).map(|t| t.to_string()),
        "end_time": rec.and_then(Recording::end_time).map(|t| t.to_string()),
        "duration": rec.and_then(|x| x.duration),
        "channels": rec.and_then(|x| x.channels),
        "source": rec.and_then(|x| x.source.as_deref()),
        "status": rec.map(|x| x.status.as_str()),
        "error_code": rec.and_then(|x| x.error_code),
        "media": rec.map(|x| x.formats.iter().map(|f| {
            (f.ext().to_owned(), format!("/recordings/{}.{}", r.sid, f.ext()))
        }).collect::<BTreeMap<_, _>>()),
        "availability": availability_json(&r.verdict),
    })
}

/// `/recordings/{sid}` and `/recordings/{sid}.json`.
pub async fn recording(
    state: &AppState,
    scope: Option<&AccountSid>,
    sid: &RecordingSid,
    headers: &HeaderMap,
    forced: Option<Repr>,
) -> Result<Response, ApiError> {
    let r = lookup::resolve(state, scope, sid, None).await?;
    if r.rec.is_none() && !matches!(r.verdict, Verdict::Available | Verdict::Lost(_)) {
        // Nothing is known of it: answer as the audio URL would (404, or
        // 503 when storage could not be asked).
        return Ok(verdict_response(state, &r, headers));
    }
    Ok(
        match forced.unwrap_or_else(|| negotiate::for_status(accept(headers))) {
            Repr::Html => html(pages::recording_page(state, &r)),
            _ => json_response(&recording_json(&r)),
        },
    )
}

/// RFC 2822 dates, as Twilio's API writes them.
fn rfc2822(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
    })
}

/// `/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.json`:
/// Twilio's Recording resource with its field names, plus `availability`.
pub async fn twilio_json(
    state: &AppState,
    account: &AccountSid,
    sid: &RecordingSid,
) -> Result<Response, ApiError> {
    let r = lookup::resolve(state, Some(account), sid, None).await?;
    let Some(rec) = r.rec.as_deref() else {
        // Twilio answers an unknown recording with a 404 error document.
        let body = json!({
            "code": 20404,
            "message": format!("The requested resource /2010-04-01/Accounts/{account}/Recordings/{sid}.json was not found"),
            "more_info": "https://www.twilio.com/docs/errors/20404",
            "status": 404,
            "availability": availability_json(&r.verdict),
        });
        return Ok(typed(
            StatusCode::NOT_FOUND,
            "application/json",
            body.to_string(),
        ));
    };
    let base = format!("/2010-04-01/Accounts/{account}/Recordings/{sid}");
    let body = json!({
        "account_sid": rec.account_sid,
        "api_version": "2010-04-01",
        "call_sid": rec.call_sid,
        "conference_sid": null,
        "date_created": rfc2822(rec.end_time().or(rec.start_time)),
        "date_updated": rfc2822(rec.end_time().or(rec.start_time)),
        "start_time": rfc2822(rec.start_time),
        "duration": rec.duration.map(|d| d.to_string()),
        "sid": rec.sid,
        "price": null,
        "price_unit": "USD",
        "status": rec.status.as_str(),
        "channels": rec.channels,
        "source": rec.source,
        "error_code": rec.error_code,
        "track": rec.track,
        "uri": format!("{base}.json"),
        "media_url": base,
        "encryption_details": null,
        "subresource_uris": {},
        "availability": availability_json(&r.verdict),
    });
    Ok(json_response(&body))
}

/// Lists as JSON, CSV or HTML rows.
fn list_json(rows: &[Resolved]) -> Value {
    json!({ "recordings": rows.iter().map(recording_json).collect::<Vec<_>>() })
}

/// CSV of resolved recordings, with times in `tz`.
pub fn list_csv(rows: &[Resolved], tz: &TimeZone) -> Result<String, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
    w.write_record([
        "recording_sid",
        "call_sid",
        "account_sid",
        "start_time",
        "end_time",
        "time_zone",
        "duration_seconds",
        "catalog_status",
        "verdict",
        "incident",
        "explanation",
    ])
    .map_err(fail)?;
    for r in rows {
        let rec = r.rec.as_deref();
        let local = |t: Option<Timestamp>| {
            t.map(|t| {
                t.to_zoned(tz.clone())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default()
        };
        w.write_record([
            r.sid.to_string(),
            rec.and_then(|x| x.call_sid.as_ref())
                .map(ToString::to_string)
                .unwrap_or_default(),
            rec.map(|x| x.account_sid.to_string()).unwrap_or_default(),
            local(rec.and_then(|x| x.start_time)),
            local(rec.and_then(Recording::end_time)),
            tz.iana_name().unwrap_or("UTC").to_owned(),
            rec.and_then(|x| x.duration)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            rec.map(|x| x.status.as_str().to_owned())
                .unwrap_or_default(),
            r.verdict.name().to_owned(),
            r.verdict
                .incident()
                .map(|i| i.id().to_owned())
                .unwrap_or_default(),
            crate::explain::Explanation::of(&r.verdict).detail,
        ])
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(format!("csv: {e}")))
}

pub fn csv_response(body: String, file_name: &str) -> Response {
    let mut res = typed(StatusCode::OK, "text/csv; charset=utf-8", body);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// `/calls/{call_sid}` (and `.json`, `.csv`).
pub async fn call(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = caller.require()?;
    let (sid, forced) = split_ext(&name)?;
    let call: CallSid = sid
        .parse()
        .map_err(|e: crate::sid::InvalidSid| ApiError::BadRequest(e.to_string()))?;
    let mut recs = state
        .catalog
        .by_call(&call)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
    // SECURITY: another account's call looks like no call at all.
    recs.retain(|r| principal.account().is_none_or(|a| a == &r.account_sid));
    if recs.is_empty() {
        return Err(ApiError::NotFound(
            "no recordings are known for this call".into(),
        ));
    }
    let rows = lookup::resolve_all(&state, recs).await?;
    Ok(
        match forced.unwrap_or_else(|| negotiate::for_status(accept(&headers))) {
            Repr::Html => html(pages::call_page(
                &state,
                call.as_str(),
                rows.iter()
                    .map(|r| RowView::new(r, &TimeZone::UTC))
                    .collect(),
            )),
            Repr::Csv => csv_response(list_csv(&rows, &TimeZone::UTC)?, &format!("{call}.csv")),
            _ => json_response(&list_json(&rows)),
        },
    )
}

/// `name` or `name.json` / `name.csv`.
fn split_ext(name: &str) -> Result<(&str, Option<Repr>), ApiError> {
    Ok(match name.rsplit_once('.') {
        None => (name, None),
        Some((n, "json")) => (n, Some(Repr::Json)),
        Some((n, "csv")) => (n, Some(Repr::Csv)),
        Some(_) => return Err(ApiError::NotFound("no such resource".into())),
    })
}

#[derive(Debug, Deserialize)]
pub struct DayQuery {
    date: Option<String>,
    tz: Option<String>,
}

/// `/accounts/{account_sid}/recordings?date=YYYY-MM-DD[&tz=Zone]` (and
/// `recordings.csv`, `recordings.json`).
pub async fn account_day(
    State(state): State<AppState>,
    caller: Caller,
    Path((account, name)): Path<(String, String)>,
    query: Result<Query<DayQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (what, forced) = split_ext(&name)?;
    if what != "recordings" {
        return Err(ApiError::NotFound("no such resource".into()));
    }
    let account: AccountSid = account
        .parse()
        .map_err(|e: crate::sid::InvalidSid| ApiError::BadRequest(e.to_string()))?;
    let principal = caller.require()?;
    if principal.account().is_some_and(|a| a != &account) {
        return Err(ApiError::NotFound("no such account".into()));
    }
    let Query(q) = query.map_err(|e| ApiError::bad_query(&e))?;
    let date_text = q
        .date
        .ok_or_else(|| ApiError::BadRequest("give the day as ?date=YYYY-MM-DD".into()))?;
    let date: Date = date_text.parse().map_err(|_| {
        ApiError::BadRequest("date must be YYYY-MM-DD, e.g. ?date=2017-05-09".into())
    })?;
    let tz_name = q.tz.unwrap_or_else(|| "UTC".into());
    let tz = TimeZone::get(&tz_name).map_err(|_| {
        ApiError::BadRequest("tz must be an IANA time zone, e.g. America/Los_Angeles".into())
    })?;
    let day = |d: Date| -> Result<Timestamp, ApiError> {
        d.to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|_| ApiError::BadRequest("date out of range".into()))
    };
    let (from, to) = (
        day(date)?,
        day(date
            .tomorrow()
            .map_err(|_| ApiError::BadRequest("date out of range".into()))?)?,
    );
    let recs = state
        .catalog
        .by_account_between(&account, from, to)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
    let account_name = state
        .catalog
        .account(&account)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?
        .and_then(|a| a.name);
    let rows = lookup::resolve_all(&state, recs).await?;
    Ok(
        match forced.unwrap_or_else(|| negotiate::for_status(accept(&headers))) {
            Repr::Csv => csv_response(list_csv(&rows, &tz)?, &format!("{account}-{date}.csv")),
            Repr::Html => {
                let mut summary: Vec<(&'static str, &'static str, usize)> = Vec::new();
                for r in &rows {
                    match summary.iter_mut().find(|s| s.0 == r.verdict.name()) {
                        Some(s) => s.2 += 1,
                        None => summary.push((r.verdict.name(), badge(&r.verdict), 1)),
                    }
                }
                let href = |d: Option<Date>, ext: &str| {
                    let d = d.unwrap_or(date);
                    format!("/accounts/{account}/recordings{ext}?date={d}&tz={tz_name}")
                };
                html(pages::account_day_page(&AccountDayPage {
                    demo: state.demo.is_some(),
                    open: state.access.open,
                    account: account.to_string(),
                    account_name,
                    date: date.to_string(),
                    tz_label: tz_name.clone(),
                    prev_href: href(date.yesterday().ok(), ""),
                    next_href: href(date.tomorrow().ok(), ""),
                    csv_href: href(None, ".csv"),
                    summary,
                    rows: rows.iter().map(|r| RowView::new(r, &tz)).collect(),
                }))
            }
            _ => json_response(&list_json(&rows)),
        },
    )
}
