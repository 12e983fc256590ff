//! `POST /api/recordings`: the CRM pushes recordings in Twilio's JSON
//! shape, in batches, and learns per item what happened. The admin
//! credential, or an account's writable API key for its own recordings.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use crate::access::Principal;
use crate::app::AppState;
use crate::import::parse_value;

/// Most items in one request.
pub const MAX_ITEMS: usize = 1_000;
/// Largest body accepted.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

pub async fn recordings(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    // The admin, or an account's writable key for its own recordings.
    let principal = match caller.require()? {
        Principal::Open => return Err(ApiError::Unauthorized),
        Principal::Account {
            read_only: true, ..
        } => {
            return Err(ApiError::Forbidden("this key is read-only".into()));
        }
        p => p,
    };
    let Json(body) = body.map_err(|e| match e {
        JsonRejection::BytesRejection(_) => ApiError::PayloadTooLarge(MAX_BODY),
        e => ApiError::bad_json(&e),
    })?;
    let items = match body {
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove("recordings") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(ApiError::BadRequest(
                    "send an array of recordings, or {\"recordings\": [...]}".into(),
                ));
            }
        },
        _ => {
            return Err(ApiError::BadRequest(
                "send an array of recordings, or {\"recordings\": [...]}".into(),
            ));
        }
    };
    if items.len() > MAX_ITEMS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_ITEMS} recordings per request"
        )));
    }
    let mut results = Vec::with_capacity(items.len());
    let (mut stored, mut errors) = (0, 0);
    for (index, item) in items.into_iter().enumerate() {
        let sid = item.get("sid").cloned().unwrap_or(Value::Null);
        let parsed = if item.is_object() {
            parse_value(item).and_then(|rec| match principal.account() {
                Some(a) if a != &rec.account_sid => {
                    Err("the recording belongs to another account than the key".into())
                }
                _ => Ok(rec),
            })
        } else {
            Err("not a JSON object".into())
        };
        match parsed {
            Err(why) => {
                errors += 1;
                results
                    .push(json!({ "index": index, "sid": sid, "result": "error", "error": why }));
            }
            Ok(rec) => {
                let upserted = state
                    .catalog
                    .upsert(&rec)
                    .await
                    .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
                if !upserted.foreign.is_empty() {
                    // SECURITY: another account's sid is refused, and
                    // nothing of it changes. Only an admin is told whose
                    // it is not; a key learns that this sid is taken,
                    // which knowing the sid already implies.
                    errors += 1;
                    metrics::counter!("playback_foreign_writes_total", "path" => "api")
                        .increment(1);
                    tracing::warn!(recording_sid = %rec.sid, account = %rec.account_sid, "write to another account's recording refused");
                    results.push(json!({
                        "index": index, "sid": rec.sid, "result": "error",
                        "error": "this recording sid is already in use and cannot be written by this key",
                    }));
                    continue;
                }
                state.forget(&rec).await;
                stored += 1;
                let result = if upserted.changed > 0 {
                    "stored"
                } else {
                    "unchanged"
                };
                results.push(json!({ "index": index, "sid": rec.sid, "result": result }));
            }
        }
    }
    Ok(Json(
        json!({ "stored": stored, "errors": errors, "results": results }),
    ))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    recording_sid: crate::sid::RecordingSid,
    /// Seconds the link lives [default: 3600; at most 7 days].
    ttl: Option<u32>,
    /// `mp3` (default) or `wav`.
    format: Option<crate::keys::Format>,
}

/// `POST /api/playback-links`: mints a signed link to one recording, for
/// an agent's browser. The admin, or an account key for its own recordings.
pub async fn playback_links(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<LinkRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let principal = match caller.require()? {
        Principal::Open => return Err(ApiError::Unauthorized),
        p => p,
    };
    let Json(req) = body.map_err(|e| ApiError::bad_json(&e))?;
    let ttl = req.ttl.unwrap_or(3600);
    let max = state.access.link_max_lifetime.as_secs();
    if ttl == 0 || u64::from(ttl) > max {
        return Err(ApiError::BadRequest(format!("ttl is 1 to {max} seconds")));
    }
    let key = state.access.link_keys.first().ok_or_else(|| {
        ApiError::Conflict("no link keys are configured: start the gateway with --link-keys".into())
    })?;
    let rec = state
        .recordings
        .get(&req.recording_sid)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?
        // SECURITY: another account's recording is "no such recording".
        .filter(|r| principal.account().is_none_or(|a| a == &r.account_sid))
        .ok_or_else(|| ApiError::NotFound("no such recording".into()))?;
    let exp = jiff::Timestamp::now().as_second() + i64::from(ttl);
    let link = crate::access::sign_link(key, &rec.account_sid, &rec.sid, exp);
    let format = req.format.unwrap_or(crate::keys::Format::Mp3);
    let q = link.query();
    Ok(Json(json!({
        "recording_sid": rec.sid,
        "url": format!("/recordings/{}.{}?{q}", rec.sid, format.ext()),
        "player_url": format!("/recordings/{}/player?{q}", rec.sid),
        "status_url": format!("/recordings/{}?{q}", rec.sid),
        "expires_at": jiff::Timestamp::from_second(exp).map(|t| t.to_string()).unwrap_or_default(),
    })))
}
