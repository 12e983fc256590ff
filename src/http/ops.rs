//! Operator endpoints: liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::AppState;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Storage and catalog answer. 503 with details otherwise, so a load
/// balancer stops sending traffic here while they do not.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let storage = state.heads.storage().check().await;
    let catalog = state.catalog.ping().await;
    let ok = storage.is_ok() && catalog.is_ok();
    let detail = |r: Result<(), String>| match r {
        Ok(()) => json!({ "status": "ok" }),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            json!({ "status": "failing" })
        }
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ok { "ready" } else { "not ready" },
            "checks": {
                "storage": detail(storage.map_err(|e| e.to_string())),
                "catalog": detail(catalog.map_err(|e| e.to_string())),
            }
        })),
    )
}
