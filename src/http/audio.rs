//! Audio: `GET|HEAD /recordings/{sid}.wav|.mp3` and Twilio's
//! `/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}[.wav|.mp3]`.
//!
//! The pure pieces decide (`preconditions`, `range`); this is the one place
//! that turns their outcomes into HTTP, and asks storage for exactly the
//! bytes the response promises.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Caller;
use super::body::{Multipart, exact};
use super::error::ApiError;
use super::negotiate::Repr;
use super::resume::{Source, resuming};
use super::{answer, lookup, status};
use crate::app::AppState;
use crate::keys::Format;
use crate::preconditions::{self, Conditions, Precondition, Validators};
use crate::range::{self, RangeOutcome};
use crate::sid::{AccountSid, RecordingSid};
use crate::splice::Lane;
use crate::storage::{ObjectMeta, StorageError};

/// Recordings are private and may be deleted under retention: browsers may
/// keep a copy but must revalidate it (cheap: a 304), and shared caches
/// must not store it at all.
const CACHE_CONTROL: &str = "private, no-cache";

/// Query parameters of the audio routes.
#[derive(Debug, Deserialize)]
pub struct AudioQuery {
    /// `1`/`true` → `Content-Disposition: attachment`.
    download: Option<String>,
}

impl AudioQuery {
    fn download(&self) -> Result<bool, ApiError> {
        match self.download.as_deref() {
            None | Some("0" | "false") => Ok(false),
            Some("" | "1" | "true") => Ok(true),
            Some(_) => Err(ApiError::BadRequest(
                "download takes 1 or 0 (true or false)".into(),
            )),
        }
    }
}

type QueryResult = Result<Query<AudioQuery>, axum::extract::rejection::QueryRejection>;

/// `/recordings/{sid}.wav|.mp3` (audio), `/recordings/{sid}` (status page,
/// HTML or JSON) and `/recordings/{sid}.json`.
pub async fn recording_file(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path(name): Path<String>,
    query: QueryResult,
    headers: HeaderMap,
    lane: Option<Extension<Arc<Lane>>>,
) -> Result<Response, ApiError> {
    let (sid, ext) = match name.rsplit_once('.') {
        Some((sid, ext)) => (sid, Some(ext)),
        None => (name.as_str(), None),
    };
    let sid = parse_sid(sid)?;
    let scope = scope(&state, &caller, None, &sid).await?;
    let format = match ext {
        None => return status::recording(&state, scope.as_ref(), &sid, &headers, None).await,
        Some("json") => {
            return status::recording(&state, scope.as_ref(), &sid, &headers, Some(Repr::Json))
                .await;
        }
        Some(ext) => Format::from_ext(ext).ok_or_else(|| unknown_ext(ext))?,
    };
    let download = parse_query(query)?.download()?;
    let asked = Asked {
        method,
        headers,
        lane: lane.map(|Extension(lane)| lane),
    };
    serve(&state, &asked, scope.as_ref(), &sid, format, download).await
}

/// Twilio's path shape, so a CRM that linked to the partner only changes
/// the host. No extension means WAV, as at Twilio; `.json` is Twilio's
/// Recording resource plus an `availability` object.
pub async fn twilio_recording(
    State(state): State<AppState>,
    caller: Caller,
    method: Method,
    Path((account, name)): Path<(String, String)>,
    query: QueryResult,
    headers: HeaderMap,
    lane: Option<Extension<Arc<Lane>>>,
) -> Result<Response, ApiError> {
    let account: AccountSid = account
        .parse()
        .map_err(|e: crate::sid::InvalidSid| ApiError::BadRequest(e.to_string()))?;
    let (sid, ext) = match name.rsplit_once('.') {
        Some((sid, ext)) => (sid, Some(ext)),
        None => (name.as_str(), None),
    };
    let sid = parse_sid(sid)?;
    // The caller's own account, whatever the path says: another account's
    // path then finds nothing, exactly as for a recording that never was.
    let scope = scope(&state, &caller, Some(&account), &sid)
        .await?
        .unwrap_or(account);
    let format = match ext {
        None => Format::Wav,
        Some("json") => return status::twilio_json(&state, &scope, &sid).await,
        Some(ext) => Format::from_ext(ext).ok_or_else(|| unknown_ext(ext))?,
    };
    let download = parse_query(query)?.download()?;
    let asked = Asked {
        method,
        headers,
        lane: lane.map(|Extension(lane)| lane),
    };
    serve(&state, &asked, Some(&scope), &sid, format, download).await
}

/// Which account's recordings the caller may see for this request (`None`:
/// every account). A signed link is checked here, against the recording's
/// account (from the path, or else the catalog).
pub(super) async fn scope(
    state: &AppState,
    caller: &Caller,
    path_account: Option<&AccountSid>,
    sid: &RecordingSid,
) -> Result<Option<AccountSid>, ApiError> {
    let link_account = match (path_account, &caller.link) {
        (Some(a), _) => Some(a.clone()),
        (None, Some(_)) => state
            .recordings
            .get(sid)
            .await
            .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?
            .map(|r| r.account_sid.clone()),
        (None, None) => None,
    };
    let principal = caller.for_recording(state, link_account.as_ref(), sid)?;
    Ok(principal.account().cloned())
}

fn unknown_ext(ext: &str) -> ApiError {
    let ext: String = ext.chars().take(16).collect();
    ApiError::NotFound(format!(
        "recordings are served as .wav, .mp3 or .json, not .{ext}"
    ))
}

fn parse_sid(s: &str) -> Result<RecordingSid, ApiError> {
    s.parse()
        .map_err(|e: crate::sid::InvalidSid| ApiError::BadRequest(e.to_string()))
}

fn parse_query(q: QueryResult) -> Result<AudioQuery, ApiError> {
    q.map(|Query(q)| q).map_err(|e| ApiError::bad_query(&e))
}

/// What an audio request asks, beyond the recording.
struct Asked {
    method: Method,
    headers: HeaderMap,
    /// The listener's connection, where it takes bodies by splice.
    lane: Option<Arc<Lane>>,
}

/// Answers one audio request, end to end: the verdict decides whether
/// there is audio; if there is, the pure range/precondition logic decides
/// what part of it.
async fn serve(
    state: &AppState,
    asked: &Asked,
    account: Option<&AccountSid>,
    sid: &RecordingSid,
    format: Format,
    download: bool,
) -> Result<Response, ApiError> {
    // Storage may replace the object between our `head` and our `get`; the
    // read is conditioned on the ETag we answered with, and a mismatch
    // means: forget the cached metadata and decide again, once.
    for _attempt in 0..2 {
        let resolved = lookup::resolve(state, account, sid, Some(format)).await?;
        let (Some(key), Some(meta)) = (&resolved.key, &resolved.meta) else {
            return Ok(answer::verdict_response(state, &resolved, &asked.headers));
        };
        let file_name = format!("{sid}.{}", format.ext());
        let plan = plan(&asked.headers, meta)?;
        let mut res = match respond(state, asked, key, meta, format, plan).await {
            Err(StorageError::Changed | StorageError::NotFound) => {
                state.heads.invalidate(key).await;
                continue;
            }
            Err(e) => return Err(ApiError::from_storage(&e, state.retry_after)),
            Ok(res) => res,
        };
        res.extensions_mut()
            .insert(crate::observe::VerdictTag("available"));
        let h = res.headers_mut();
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(v) = HeaderValue::from_str(&meta.etag) {
            h.insert(header::ETAG, v);
        }
        if let Some(v) = meta
            .last_modified
            .and_then(|lm| HeaderValue::from_str(&httpdate::fmt_http_date(lm)).ok())
        {
            h.insert(header::LAST_MODIFIED, v);
        }
        if download {
            // The sid is validated hex, so the name needs no escaping.
            let v = format!("attachment; filename=\"{file_name}\"");
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
        }
        return Ok(res);
    }
    Err(ApiError::from_storage(
        &StorageError::Changed,
        state.retry_after,
    ))
}

/// What to send, decided from headers and metadata alone.
#[derive(Debug)]
enum Plan {
    NotModified,
    Full,
    Partial(range::ByteRange),
    Multi(Vec<range::ByteRange>),
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn plan(headers: &HeaderMap, meta: &ObjectMeta) -> Result<Plan, ApiError> {
    let conditions = Conditions {
        if_match: header_str(headers, header::IF_MATCH),
        if_none_match: header_str(headers, header::IF_NONE_MATCH),
        if_modified_since: header_str(headers, header::IF_MODIFIED_SINCE),
        if_unmodified_since: header_str(headers, header::IF_UNMODIFIED_SINCE),
        if_range: header_str(headers, header::IF_RANGE),
    };
    let validators = Validators {
        etag: &meta.etag,
        last_modified: meta.last_modified,
    };
    let honour_range = match preconditions::evaluate(&conditions, &validators) {
        Precondition::Failed => return Err(ApiError::PreconditionFailed),
        Precondition::NotModified => return Ok(Plan::NotModified),
        Precondition::Proceed { honour_range } => honour_range,
    };
    // A Range header that is not valid UTF-8 is not a valid Range: ignore it.
    let range_header = header_str(headers, header::RANGE).filter(|_| honour_range);
    Ok(match range::evaluate(range_header, meta.size) {
        RangeOutcome::Full => Plan::Full,
        RangeOutcome::Partial(r) => Plan::Partial(r),
        RangeOutcome::Multi(rs) => Plan::Multi(rs),
        RangeOutcome::Unsatisfiable => {
            return Err(ApiError::RangeNotSatisfiable { len: meta.size });
        }
    })
}

/// Builds the response for a plan. HEAD gets the same headers as GET and
/// no storage read at all.
async fn respond(
    state: &AppState,
    asked: &Asked,
    key: &str,
    meta: &ObjectMeta,
    format: Format,
    plan: Plan,
) -> Result<Response, StorageError> {
    let head_only = asked.method == Method::HEAD;
    let source = || {
        Arc::new(Source {
            storage: state.heads.storage().clone(),
            key: key.to_owned(),
            etag: meta.etag.clone(),
            lane: asked.lane.clone(),
        })
    };
    let (status, len, content_type, content_range, body) = match plan {
        Plan::NotModified => return Ok(StatusCode::NOT_MODIFIED.into_response()),
        Plan::Multi(ranges) => {
            let parts = Multipart::new(&ranges, meta.size, format.content_type());
            let content_type = format!("multipart/byteranges; boundary={}", parts.boundary);
            let len = parts.len();
            let body = (!head_only).then(|| parts.into_stream(source()));
            (StatusCode::PARTIAL_CONTENT, len, content_type, None, body)
        }
        plan => {
            let range = match plan {
                Plan::Partial(r) => Some(r),
                _ => None,
            };
            let len = range.map_or(meta.size, |r| r.len());
            let body = if head_only {
                None
            } else {
                let source = source();
                let obj = source.get(range).await?;
                // Storage cuts are resumed from the first byte not sent.
                let start = range.map_or(0, |r| r.start);
                let body = resuming(obj.body, source, start, start + len);
                Some(exact(body, len))
            };
            let status = if range.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            let content_range = range.map(|r| r.content_range(meta.size));
            (
                status,
                len,
                format.content_type().to_owned(),
                content_range,
                body,
            )
        }
    };
    let mut res = Response::new(body.map_or_else(Body::empty, Body::from_stream));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(v) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(res)
}
