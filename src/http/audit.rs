//! The loss audit over HTTP, for the admin: the `/audit` page (latest
//! result, bursts to confirm, the trend), its JSON and CSV, running one
//! now, and confirming a burst's draft into the registry.
//!
//! The page is for a browser, which sends the admin token as HTTP Basic
//! (user `admin`). Its two buttons are plain form posts, so the posts
//! refuse requests a browser marks as coming from another site (CSRF).

use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::admin::{created, registry_error};
use super::auth::Caller;
use super::error::ApiError;
use super::status::typed;
use crate::app::AppState;
use crate::audit::{Kind, OutputFormat, Report, RunError, Summary, render};

/// Findings shown on the page; the CSV has them all.
const SHOWN: usize = 500;
/// Past runs in the trend.
const TREND: u32 = 30;

/// Admin posts must come from this site (or no site: curl, scripts).
fn same_site(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        None | Some("same-origin" | "none") => Ok(()),
        Some(_) => Err(ApiError::Forbidden(
            "admin forms are only accepted from this gateway's own pages".into(),
        )),
    }
}

/// A browser's form post wants to land on a page, not on JSON.
fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

async fn runs(state: &AppState) -> Result<Vec<Summary>, ApiError> {
    let runs = state
        .catalog
        .audit_runs(TREND)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
    Ok(runs
        .iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect())
}

/// `GET /admin/audit`: the latest report (every finding) and the trend.
pub async fn json(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let audits = &state.audits;
    Ok(Json(json!({
        "running": audits.is_running(),
        "every_seconds": audits.every().map(|d| d.as_secs()),
        "last_error": audits.last_error(),
        "latest": audits.latest().as_deref(),
        "runs": runs(&state).await?,
    }))
    .into_response())
}

/// `GET /admin/audit/findings.csv`: the latest report's findings.
pub async fn csv(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let report = state
        .audits
        .latest()
        .ok_or_else(|| ApiError::NotFound("no audit has run since this gateway started".into()))?;
    let mut res = typed(
        StatusCode::OK,
        "text/csv; charset=utf-8",
        render(&report, OutputFormat::Csv),
    );
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit-findings.csv\""),
    );
    Ok(res)
}

/// `POST /admin/audit/run`: starts an audit of everything (202), unless
/// one is running (409).
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    same_site(&headers)?;
    if state.audits.is_running() {
        return Err(ApiError::Conflict(RunError::Busy.to_string()));
    }
    let audits = state.audits.clone();
    tokio::spawn(async move {
        // Failures are logged, counted and shown on the page by `run`.
        let _ = audits.run(&state).await;
    });
    if wants_page(&headers) {
        return Ok(see_other("/audit"));
    }
    let mut res = (StatusCode::ACCEPTED, Json(json!({"status": "started"}))).into_response();
    res.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/admin/audit"));
    Ok(res)
}

/// `POST /admin/audit/bursts/{n}/confirm`: the latest report's burst `n`
/// (from 0) becomes an incident with its draft (201, or 409 if it exists).
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    Path(n): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    same_site(&headers)?;
    let n: usize = n
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{n:?} is not a burst number")))?;
    let report = state
        .audits
        .latest()
        .ok_or_else(|| ApiError::NotFound("no audit has run since this gateway started".into()))?;
    let burst = report
        .summary
        .bursts
        .get(n)
        .ok_or_else(|| ApiError::NotFound(format!("the latest audit has no burst {n}")))?;
    let incident = state
        .registry
        .create(burst.draft.clone())
        .await
        .map_err(|e| registry_error(e, &state))?;
    tracing::info!(
        id = incident.id(),
        losses = burst.losses,
        "audit burst confirmed as incident"
    );
    if wants_page(&headers) {
        return Ok(see_other(&incident.href()));
    }
    Ok(created(&incident))
}

/// `GET /audit`: the page.
pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let latest = state.audits.latest();
    let page = AuditPage {
        demo: state.demo.is_some(),
        open: state.access.open,
        every: state
            .audits
            .every()
            .map(|d| humantime::format_duration(d).to_string()),
        running: state.audits.is_running(),
        last_error: state.audits.last_error(),
        latest: latest.as_deref().map(|r| LatestView::new(r, &state)),
        runs: runs(&state).await?.iter().map(TrendRow::from).collect(),
    };
    Ok(typed(
        StatusCode::OK,
        "text/html; charset=utf-8",
        super::pages::render(&page),
    ))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    demo: bool,
    open: bool,
    every: Option<String>,
    running: bool,
    last_error: Option<String>,
    latest: Option<LatestView>,
    runs: Vec<TrendRow>,
}

struct LatestView {
    when: String,
    scope: String,
    recordings: u64,
    objects: u64,
    counts: Vec<(&'static str, u64, &'static str)>,
    bursts: Vec<BurstView>,
    findings: Vec<FindingView>,
    more: usize,
}

struct BurstView {
    index: usize,
    losses: usize,
    first_end: String,
    last_end: String,
    accounts: usize,
    id: String,
    title: String,
    confirmed: bool,
}

struct FindingView {
    kind: &'static str,
    label: &'static str,
    sid: Option<String>,
    key: String,
    end: String,
    detail: String,
}

struct TrendRow {
    finished: String,
    recordings: u64,
    unexplained: u64,
    explained: u64,
    unknown: String,
    size: u64,
    bursts: usize,
}

fn utc(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

impl LatestView {
    fn new(r: &Report, state: &AppState) -> Self {
        let s = &r.summary;
        Self {
            when: utc(s.finished_at),
            scope: s.scope.clone(),
            recordings: s.counts.recordings,
            objects: s.counts.objects,
            counts: Kind::ALL
                .iter()
                .map(|k| (k.label(), s.counts.of(*k), k.as_str()))
                .collect(),
            bursts: s
                .bursts
                .iter()
                .enumerate()
                .map(|(index, b)| BurstView {
                    index,
                    losses: b.losses,
                    first_end: utc(b.first_end),
                    last_end: utc(b.last_end),
                    accounts: b.accounts.len(),
                    id: b.draft.id.clone(),
                    title: b.draft.title.clone(),
                    confirmed: state.registry.get(&b.draft.id).is_some(),
                })
                .collect(),
            findings: r
                .findings
                .iter()
                .take(SHOWN)
                .map(|f| FindingView {
                    kind: f.kind.as_str(),
                    label: f.kind.label(),
                    sid: f.sid.as_ref().map(ToString::to_string),
                    key: f.keys.join(" "),
                    end: f.end_time.map(utc).unwrap_or_default(),
                    detail: f.detail.clone(),
                })
                .collect(),
            more: r.findings.len().saturating_sub(SHOWN),
        }
    }
}

impl From<&Summary> for TrendRow {
    fn from(s: &Summary) -> Self {
        Self {
            finished: utc(s.finished_at),
            recordings: s.counts.recordings,
            unexplained: s.counts.missing_unexplained,
            explained: s.counts.missing_explained,
            unknown: if s.checked_unknown {
                s.counts.unknown_object.to_string()
            } else {
                "–".into()
            },
            size: s.counts.size_mismatch,
            bursts: s.bursts.len(),
        }
    }
}
