//! The admin API: incidents (create, update, resolve), account API keys
//! (create, list, revoke) and the caches (forget one recording, flush). Needs the admin
//! token (`--admin-token`) as `Authorization: Bearer …`, in open mode too.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::answer::incident_json;
use super::auth::Caller;
use super::error::ApiError;
use crate::app::AppState;
use crate::incidents::registry::RegistryError;
use crate::incidents::{IncidentSpec, Outcome};

pub(super) fn registry_error(e: RegistryError, state: &AppState) -> ApiError {
    match e {
        RegistryError::Invalid(e) => ApiError::BadRequest(e.to_string()),
        RegistryError::IdMismatch(..) => ApiError::BadRequest(e.to_string()),
        RegistryError::Conflict(_) | RegistryError::ReadOnly(_) => {
            ApiError::Conflict(e.to_string())
        }
        RegistryError::NotFound(_) => ApiError::NotFound(e.to_string()),
        RegistryError::Catalog(e) => ApiError::from_catalog(&e, state.retry_after),
    }
}

fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(t)| t).map_err(|e| ApiError::bad_json(&e))
}

/// `POST /admin/incidents`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    json: Result<Json<IncidentSpec>, JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let incident = state
        .registry
        .create(body(json)?)
        .await
        .map_err(|e| registry_error(e, &state))?;
    tracing::info!(id = incident.id(), "incident created");
    Ok(created(&incident))
}

/// 201 with the incident, and its page as `Location`.
pub(super) fn created(incident: &crate::incidents::Incident) -> Response {
    let mut res = (StatusCode::CREATED, Json(incident_json(incident))).into_response();
    if let Ok(v) = HeaderValue::from_str(&incident.href()) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// `PUT /admin/incidents/{id}`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    json: Result<Json<IncidentSpec>, JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let incident = state
        .registry
        .update(&id, body(json)?)
        .await
        .map_err(|e| registry_error(e, &state))?;
    tracing::info!(id = incident.id(), "incident updated");
    Ok(Json(incident_json(&incident)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    outcome: Option<Outcome>,
}

/// `POST /admin/incidents/{id}/resolve` with an optional
/// `{"outcome": "lost" | "partially lost" | "recovered"}`.
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let req: Resolve = if raw.is_empty() {
        Resolve::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| ApiError::BadRequest(format!("bad resolve JSON: {e}")))?
    };
    let incident = state
        .registry
        .resolve(&id, req.outcome)
        .await
        .map_err(|e| registry_error(e, &state))?;
    tracing::info!(id = incident.id(), "incident resolved");
    Ok(Json(incident_json(&incident)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    account_sid: crate::sid::AccountSid,
    #[serde(default)]
    read_only: bool,
    label: Option<String>,
}

/// `POST /admin/keys`: creates an account key; the secret is in this
/// answer and nowhere else.
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    json: Result<Json<NewKeyRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let req = body(json)?;
    let key = crate::access::new_key();
    state
        .catalog
        .create_key(
            &key.id,
            &req.account_sid,
            &key.hash,
            req.read_only,
            req.label.as_deref(),
        )
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
    tracing::info!(key_id = %key.id, account = %req.account_sid, "API key created");
    let answer = serde_json::json!({
        "id": key.id,
        "account_sid": req.account_sid,
        "read_only": req.read_only,
        "secret": key.secret.expose(),
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct KeysQuery {
    account: Option<crate::sid::AccountSid>,
}

/// `GET /admin/keys[?account=AC…]`: keys without their secrets.
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<axum::extract::Query<KeysQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let axum::extract::Query(q) = query.map_err(|e| ApiError::bad_query(&e))?;
    let keys = state
        .catalog
        .keys(q.account.as_ref())
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
    Ok(Json(serde_json::json!({ "keys": keys })).into_response())
}

/// `DELETE /admin/keys/{id}`: revokes a key at once.
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let revoked = state
        .catalog
        .revoke_key(&id)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?;
    if !revoked {
        return Err(ApiError::NotFound("no live key with this id".into()));
    }
    state.keys.clear();
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /admin/cache/recordings/{sid}`: forgets what is cached about a
/// recording (catalog entry, storage metadata), e.g. after fixing storage
/// by hand.
pub async fn forget_recording(
    State(state): State<AppState>,
    caller: Caller,
    Path(sid): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let sid: crate::sid::RecordingSid = sid
        .parse()
        .map_err(|e: crate::sid::InvalidSid| ApiError::BadRequest(e.to_string()))?;
    if let Some(rec) = state
        .catalog
        .get(&sid)
        .await
        .map_err(|e| ApiError::from_catalog(&e, state.retry_after))?
    {
        state.forget(&rec).await;
    } else {
        state.recordings.invalidate(&sid).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /admin/cache`: forgets everything cached.
pub async fn flush_cache(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    state.heads.clear();
    state.recordings.clear();
    state.keys.clear();
    state
        .catalog
        .announce(crate::catalog::Change::Everything)
        .await;
    tracing::info!("caches flushed");
    Ok(StatusCode::NO_CONTENT.into_response())
}
