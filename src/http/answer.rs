//! Verdicts as HTTP: status codes, headers and the three representations
//! (problem+json, HTML, plain text) of one explanation.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::lookup::Resolved;
use super::negotiate::{self, Repr};
use super::pages;
use crate::app::AppState;
use crate::explain::Explanation;
use crate::incidents::Incident;
use crate::verdict::Verdict;

/// The HTTP status a verdict is answered with on the audio URLs.
pub fn status_of(v: &Verdict) -> StatusCode {
    match v {
        Verdict::Available => StatusCode::OK,
        Verdict::Lost(_) | Verdict::Deleted { .. } => StatusCode::GONE,
        Verdict::Absent { .. } | Verdict::Unexplained | Verdict::Unknown => StatusCode::NOT_FOUND,
        Verdict::Recovering(_) | Verdict::Pending | Verdict::StorageUnavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// A short label for badges; the status is always said in words, never
/// by colour alone.
pub fn badge(v: &Verdict) -> &'static str {
    match v {
        Verdict::Available => "Available",
        Verdict::Lost(_) => "Lost in incident",
        Verdict::Recovering(_) => "Being recovered",
        Verdict::Deleted { .. } => "Deleted",
        Verdict::Absent { .. } => "No audio recorded",
        Verdict::Pending => "Processing",
        Verdict::Unexplained => "Missing",
        Verdict::Unknown => "Unknown",
        Verdict::StorageUnavailable => "Temporarily unavailable",
    }
}

/// An incident as JSON: window in UTC and in the incident's zone.
pub fn incident_json(i: &Incident) -> Value {
    let (start_local, end_local) = i.local_bounds();
    json!({
        "id": i.id(),
        "title": i.spec.title,
        "service": i.spec.service,
        "status": i.spec.status,
        "outcome": i.spec.outcome,
        "match_on": i.spec.match_on,
        "time_zone": i.spec.time_zone,
        "window": {
            "start": i.start.to_string(),
            "end": i.end.to_string(),
            "start_local": start_local,
            "end_local": end_local,
            "local": i.window_local(),
            "utc": i.window_utc(),
        },
        "communicated": i.spec.communicated,
        "href": i.href(),
    })
}

/// The `availability` object: the verdict and its explanation.
pub fn availability_json(v: &Verdict) -> Value {
    availability_with(v, &Explanation::of(v))
}

fn availability_with(v: &Verdict, ex: &Explanation) -> Value {
    let mut out = json!({
        "verdict": v.name(),
        "playable": matches!(v, Verdict::Available),
        "http_status": status_of(v).as_u16(),
        "title": ex.title,
        "detail": ex.detail,
        "paragraphs": ex.paragraphs,
        "notes": ex.notes,
        "what_to_do": ex.what_to_do,
    });
    if let Some(i) = v.incident() {
        out["incident"] = incident_json(i);
    }
    if let Verdict::Deleted { at, reason } = v {
        out["deleted_at"] = json!(at.map(|t| t.to_string()));
        out["deleted_reason"] = json!(reason);
    }
    if let Verdict::Absent { error_code, .. } = v {
        out["error_code"] = json!(error_code);
    }
    out
}

/// RFC 9457 problem details for a verdict and its explanation, with
/// extension members.
fn problem_json(r: &Resolved, ex: &Explanation) -> Value {
    let v = &r.verdict;
    let mut p = availability_with(v, ex);
    p["type"] = json!(format!("/problems/{}", v.name()));
    p["title"] = json!(ex.title);
    p["status"] = json!(status_of(v).as_u16());
    p["recording_sid"] = json!(r.sid);
    p["status_page"] = json!(format!("/recordings/{}", r.sid));
    if let Some(i) = v.incident() {
        p["links"] = json!([{ "rel": "describedby", "href": i.href() }]);
    }
    p
}

/// Answers a verdict that is not `available`, in the negotiated
/// representation, with `Retry-After`, `Link` and `Vary` as they apply.
pub fn verdict_response(state: &AppState, r: &Resolved, headers: &HeaderMap) -> Response {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let repr = negotiate::for_error(h("accept"), h("sec-fetch-dest"));
    let status = status_of(&r.verdict);
    let ex = Explanation::of(&r.verdict);
    let (ctype, body) = match repr {
        Repr::Json | Repr::Csv => (
            "application/problem+json",
            serde_json::to_string(&problem_json(r, &ex)).unwrap_or_default(),
        ),
        Repr::Html => (
            "text/html; charset=utf-8",
            pages::verdict_page(state, r, &ex),
        ),
        Repr::Text => ("text/plain; charset=utf-8", ex.to_text()),
    };
    let mut res = (status, body).into_response();
    res.extensions_mut()
        .insert(crate::observe::VerdictTag(r.verdict.name()));
    if let Some(i) = r.verdict.incident()
        && matches!(r.verdict, Verdict::Lost(_))
    {
        metrics::counter!("playback_lost_answers_total", "incident" => i.id().to_owned())
            .increment(1);
    }
    let out = res.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    // A verdict can change at any moment (a re-upload, a new incident).
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Sec-Fetch-Dest"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        out.insert(
            header::RETRY_AFTER,
            HeaderValue::from(state.retry_after.as_secs().max(1)),
        );
    }
    if let Some(i) = r.verdict.incident()
        && let Ok(v) = HeaderValue::from_str(&format!("<{}>; rel=\"describedby\"", i.href()))
    {
        out.insert(header::LINK, v);
    }
    res
}
