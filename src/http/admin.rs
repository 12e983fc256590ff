//! The admin API: create, update and resolve incidents. Needs the admin
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

fn registry_error(e: RegistryError, state: &AppState) -> ApiError {
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
    let mut res = (StatusCode::CREATED, Json(incident_json(&incident))).into_response();
    if let Ok(v) = HeaderValue::from_str(&incident.href()) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
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
