//! `/recordings/{sid}/player`: the embeddable player. A recording that can
//! play gets the player; one that cannot gets its explanation in place of
//! the player, rendered here (no flash, works without script); the script
//! asks the status API when playback fails later.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;

use super::answer::{badge, status_of};
use super::auth::Caller;
use super::error::ApiError;
use super::lookup;
use super::pages;
use super::status::typed;
use crate::app::AppState;
use crate::keys::Format;
use crate::sid::RecordingSid;

#[derive(Debug, Deserialize)]
pub struct PlayerQuery {
    /// `1` starts playing at once (the CRM's play button).
    autoplay: Option<String>,
    /// `wav` or `mp3` (default: MP3, smaller and seekable everywhere).
    format: Option<String>,
}

/// `GET /recordings/{sid}/player`.
pub async fn player(
    State(state): State<AppState>,
    caller: Caller,
    Path(sid): Path<String>,
    query: Result<Query<PlayerQuery>, axum::extract::rejection::QueryRejection>,
    _headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sid: RecordingSid = sid
        .parse()
        .map_err(|e: crate::sid::InvalidSid| ApiError::BadRequest(e.to_string()))?;
    let Query(q) = query.map_err(|e| ApiError::bad_query(&e))?;
    let format = match q.format.as_deref() {
        None => Format::Mp3,
        Some(f) => Format::from_ext(f)
            .ok_or_else(|| ApiError::BadRequest("format is wav or mp3".into()))?,
    };
    let autoplay = matches!(q.autoplay.as_deref(), Some("1" | "true"));
    let scope = super::audio::scope(&state, &caller, None, &sid).await?;
    let r = lookup::resolve(&state, scope.as_ref(), &sid, Some(format)).await?;
    // The same signed link opens the audio and the status the page loads.
    let link = caller.link.as_ref().map(|l| l.query()).unwrap_or_default();
    let body = pages::player_page(&r, format, autoplay, badge(&r.verdict), &link, &state);
    let mut res = typed(status_of(&r.verdict), "text/html; charset=utf-8", body);
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Only the configured CRM origins may frame the player.
    let ancestors = std::iter::once("'self'")
        .chain(state.access.cors_origins.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    if let Ok(v) = HeaderValue::from_str(&format!("frame-ancestors {ancestors}")) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Ok(res)
}
