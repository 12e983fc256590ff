//! The HTTP face: routes, request ids, tracing and error rendering.
//!
//! Building the router has no side effects; `app` binds and serves it.

mod admin;
pub mod answer;
mod api;
mod assets;
mod audio;
mod audit;
pub mod auth;
mod body;
mod crm;
pub mod error;
pub mod guard;
mod incidents;
pub mod lookup;
pub mod negotiate;
pub mod openapi;
mod ops;
pub mod pages;
mod player;
mod resume;
mod status;
mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post, put};
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use error::ApiError;

/// The request id header: honoured when a proxy or client sends a sane
/// one, generated otherwise, and always returned.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole router, with its middleware.
pub fn router(state: AppState) -> Router {
    let state_origins = state.access.cors_origins.clone();
    let state_for_timeout = state.clone();
    let state_for_guard = state.clone();
    routes()
        .into_iter()
        .fold(Router::new(), |r, (path, route)| r.route(path, route))
        .route_layer(middleware::from_fn_with_state(
            state_for_guard,
            guard::guard,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        // Inside the request's span, so its log line carries the request id.
        .layer(middleware::from_fn(count))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    // SECURITY: the path only; query strings may carry
                    // link signatures.
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id,
                    )
                })
                .on_response(())
                .on_request(()),
        )
        // Everything not said otherwise is private and not stored: answers
        // depend on who asks.
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                axum::http::header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        )
        .layer(cors(&state_origins))
        .layer(middleware::from_fn_with_state(state_for_timeout, deadline))
        .layer(middleware::from_fn(request_id))
}

/// Who a request acted as, filled in by the `Caller` extractor.
#[derive(Debug, Clone, Default)]
pub struct WhoSlot(pub std::sync::Arc<std::sync::Mutex<Option<String>>>);

/// Every route: its path and what answers it. `openapi` documents each.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/recordings/{name}", get(audio::recording_file)),
        ("/recordings/{name}/player", get(player::player)),
        (
            "/2010-04-01/Accounts/{account}/Recordings/{name}",
            get(audio::twilio_recording),
        ),
        ("/calls/{call}", get(status::call)),
        ("/accounts/{account}/{list}", get(status::account_day)),
        ("/incidents", get(incidents::list)),
        ("/incidents.json", get(incidents::list_json)),
        ("/incidents/{id}", get(incidents::show)),
        ("/incidents/{id}/affected.csv", get(incidents::affected_csv)),
        ("/admin/incidents", post(admin::create)),
        ("/admin/incidents/{id}", put(admin::update)),
        ("/admin/incidents/{id}/resolve", post(admin::resolve)),
        ("/admin/keys", post(admin::create_key).get(admin::list_keys)),
        ("/admin/keys/{id}", axum::routing::delete(admin::revoke_key)),
        ("/admin/cache", axum::routing::delete(admin::flush_cache)),
        ("/audit", get(audit::page)),
        ("/admin/audit", get(audit::json)),
        ("/admin/audit/findings.csv", get(audit::csv)),
        ("/admin/audit/run", post(audit::run)),
        ("/admin/audit/bursts/{n}/confirm", post(audit::confirm)),
        (
            "/admin/cache/recordings/{sid}",
            axum::routing::delete(admin::forget_recording),
        ),
        (
            guard::SIGNED_BY_BODY,
            post(webhooks::recording_status)
                .layer(axum::extract::DefaultBodyLimit::max(webhooks::MAX_BODY)),
        ),
        (
            "/api/recordings",
            post(api::recordings).layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY)),
        ),
        ("/api/playback-links", post(api::playback_links)),
        ("/static/{file}", get(assets::asset)),
        ("/demo", get(crm::page)),
        ("/", get(ops::index)),
        ("/metrics", get(ops::metrics)),
        ("/healthz", get(ops::healthz)),
        ("/readyz", get(ops::readyz)),
        ("/openapi.json", get(openapi::document)),
        ("/api/docs", get(openapi::page)),
    ]
}

/// Counts requests by route, status and verdict, and writes the request's
/// log line (inside its span: method, path, request id). SECURITY: the
/// query string is never logged (it may hold a link signature), nor any
/// credential; the account is.
async fn count(mut req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let who = WhoSlot::default();
    req.extensions_mut().insert(who.clone());
    let res = next.run(req).await;
    let verdict = res
        .extensions()
        .get::<crate::observe::VerdictTag>()
        .map_or("", |v| v.0);
    let bytes = res
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let account = who.0.lock().map(|w| w.clone()).unwrap_or_default();
    tracing::info!(
        status = res.status().as_u16(),
        verdict,
        bytes,
        account = account.as_deref().unwrap_or(""),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "response"
    );
    metrics::counter!(
        "playback_requests_total",
        "route" => route,
        "status" => res.status().as_str().to_owned(),
        "verdict" => verdict,
    )
    .increment(1);
    res
}

/// Bounds the time to the response headers (not a stream's body):
/// past it, 503 with `Retry-After`.
async fn deadline(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::Unavailable {
            cause: "request timed out before its response".into(),
            retry_after: state.retry_after,
        }
        .into_response(),
    }
}

/// CORS for the configured CRM origins only; none configured, no CORS.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{Method, header};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::HEAD, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::RANGE,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            header::IF_RANGE,
            header::IF_MATCH,
            header::IF_MODIFIED_SINCE,
        ])
        .expose_headers([
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::CONTENT_LENGTH,
            header::ETAG,
            header::LINK,
            header::RETRY_AFTER,
            REQUEST_ID,
        ])
        .allow_credentials(true)
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

/// A request id is at most 128 visible ASCII characters; anything else is
/// replaced, so that logs cannot be forged or flooded through it.
fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic())
}

/// A fresh request id: a UUID v4 from the thread's RNG, which `new_v4`
/// would take from the kernel (a `getrandom` system call per request).
fn new_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
        .unwrap_or(HeaderValue::from_static("unknown"))
}

async fn request_id(mut req: Request, next: Next) -> Response {
    let id = match req.headers().get(REQUEST_ID) {
        Some(v) if valid_request_id(v) => v.clone(),
        _ => new_request_id(),
    };
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut res = next.run(req).await;
    res.headers_mut().insert(REQUEST_ID, id);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_request_id_is_a_fresh_uuid_v4() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        let id = uuid::Uuid::parse_str(a.to_str().unwrap()).unwrap();
        assert_eq!(id.get_version(), Some(uuid::Version::Random));
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(a.len(), 36, "hyphenated");
        assert!(valid_request_id(&a));
    }
}
