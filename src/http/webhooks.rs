//! `POST /webhooks/twilio/recording-status`: Twilio's
//! RecordingStatusCallback. Signed with the account's auth token; stored
//! before the 2xx; idempotent; never moves a status backwards.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiError;
use crate::app::AppState;
use crate::ingest::{Event, Merge, merge};
use crate::sid::AccountSid;

/// Largest callback accepted: Twilio's are well under 2 KiB.
pub const MAX_BODY: usize = 16 * 1024;

/// The URL Twilio called, as it signed it.
fn called_url(state: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match &state.public_url {
        Some(base) => format!("{base}{path}"),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}{path}")
        }
    }
}

/// SECURITY: an unknown account, an account without a token and a wrong
/// signature get the same answer, so the endpoint reveals no accounts.
fn forbidden() -> ApiError {
    ApiError::Forbidden("the X-Twilio-Signature does not match".into())
}

pub async fn recording_status(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let address = peer.map(|Extension(ConnectInfo(a))| a.ip());
    // A refused signature counts against the client's address, as a
    // refused credential does: past the limit, 429.
    let forbidden = || Caller::refuse(&state, address, forbidden());
    let body = body.map_err(|_| ApiError::PayloadTooLarge(MAX_BODY))?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(ApiError::UnsupportedMediaType(
            "Twilio callbacks are application/x-www-form-urlencoded".into(),
        ));
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(forbidden)?;
    let account: AccountSid = params
        .iter()
        .find(|(k, _)| k == "AccountSid")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(forbidden)?;
    let known = state
        .catalog
        .account(&account)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
    let token = known.and_then(|a| a.auth_token).ok_or_else(forbidden)?;
    let url = called_url(&state, &headers, &uri);
    if !crate::twilio::verify(token.expose(), &url, &params, signature) {
        tracing::warn!(%account, "webhook signature mismatch");
        return Err(forbidden());
    }
    let event = Event::from_params(&params).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let existing = state
        .catalog
        .get(&event.recording_sid)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
    match merge(existing.as_ref(), &event) {
        Merge::Write(row) => {
            // Durable (a committed SQLite transaction) before the 2xx.
            let upserted = state
                .catalog
                .upsert(&row)
                .await
                .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
            if upserted.foreign.is_empty() {
                state.forget(&row).await;
                tracing::info!(recording_sid = %row.sid, status = row.status.as_str(), "recording status stored");
            } else {
                // Another account wrote the sid between our read and write.
                foreign_callback(&row.sid, &account);
            }
        }
        Merge::Unchanged => {}
        Merge::WrongAccount => foreign_callback(&event.recording_sid, &account),
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// SECURITY: a callback signed by one account for another's recording
/// changes nothing and is answered as any stored callback is (204), so
/// that the endpoint tells nobody which sids exist; operators see it.
fn foreign_callback(sid: &crate::sid::RecordingSid, account: &AccountSid) {
    metrics::counter!("playback_foreign_writes_total", "path" => "callback").increment(1);
    tracing::warn!(recording_sid = %sid, %account, "callback for another account's recording; ignored");
}
