//! `POST /api/recordings`: the CRM pushes recordings in Twilio's JSON
//! shape, in batches, and learns per item what happened. Authenticated with
//! the admin credential (account keys come with access control).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::admin::authorize;
use super::error::ApiError;
use crate::app::AppState;
use crate::import::parse_value;

/// Most items in one request.
pub const MAX_ITEMS: usize = 1_000;
/// Largest body accepted.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

pub async fn recordings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers)?;
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
            parse_value(item)
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
                let changed = state
                    .catalog
                    .upsert_many(std::slice::from_ref(&rec))
                    .await
                    .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
                state.forget(&rec).await;
                stored += 1;
                let result = if changed > 0 { "stored" } else { "unchanged" };
                results.push(json!({ "index": index, "sid": rec.sid, "result": result }));
            }
        }
    }
    Ok(Json(
        json!({ "stored": stored, "errors": errors, "results": results }),
    ))
}
