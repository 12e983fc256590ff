//! Operator endpoints: liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::AppState;

/// `/`: the demo CRM when running the demo, a map of the pages otherwise.
pub async fn index(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.demo.is_some() {
        return axum::response::Redirect::to("/demo").into_response();
    }
    axum::response::Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>playback-gateway</title>\
         <link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><main>\
         <h1>playback-gateway</h1><p>Recordings: <code>/recordings/{RecordingSid}.mp3</code>, \
         status pages at <code>/recordings/{RecordingSid}</code>.</p>\
         <p><a href=\"/incidents\">Incidents</a> · <a href=\"/healthz\">health</a> · \
         <a href=\"/readyz\">readiness</a></p></main></body></html>",
    )
    .into_response()
}

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Storage and catalog answer. 503 with details otherwise, so a load
/// balancer stops sending traffic here while they do not.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        );
    }
    let storage = state.heads.storage().check().await;
    let catalog = state.catalog.ping().await;
    let incidents = state.registry.snapshot().len();
    let ok = storage.is_ok() && catalog.is_ok() && incidents > 0;
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
                // SECURITY: no count: it would tell anyone that an incident
                // (maybe another account's) was just declared.
                "incidents": { "status": if incidents > 0 { "ok" } else { "failing" } },
                "changes": changes(&state),
            }
        })),
    )
}

/// Whether other replicas' changes are heard (PostgreSQL catalogs). Not
/// hearing them does not make the replica unready: it still answers
/// correctly, with caches short enough to see changes within seconds.
fn changes(state: &AppState) -> Value {
    match state.catalog.dialect() {
        crate::catalog::Dialect::Sqlite => json!({ "status": "single node" }),
        crate::catalog::Dialect::Postgres if state.freshness.degraded() => json!({
            "status": "degraded",
            "detail": format!(
                "other replicas' changes are not heard; caches live at most {} s",
                crate::cache::DEGRADED_TTL.as_secs()
            ),
        }),
        crate::catalog::Dialect::Postgres => json!({ "status": "listening" }),
    }
}

/// `GET /metrics`: Prometheus text format, for the admin credential.
pub async fn metrics(
    State(state): State<AppState>,
    caller: super::auth::Caller,
) -> Result<axum::response::Response, super::error::ApiError> {
    use axum::response::IntoResponse;
    caller.require_admin()?;
    // Pipe memory is the kernel's: read at scrape time, not counted per
    // move on the hot path.
    let (pipes, bytes) = crate::splice::held();
    metrics::gauge!("playback_splice_pipes").set(pipes as f64);
    metrics::gauge!("playback_splice_pipe_bytes").set(bytes as f64);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response())
}
