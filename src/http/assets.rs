//! Static assets, compiled into the binary from `static/`: one file to
//! deploy, and no CDN (the CRM may be cut off from the internet).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
    (
        "localtime.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/localtime.js"),
    ),
    (
        "crm.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/crm.js"),
    ),
    (
        "player.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/player.js"),
    ),
];

/// `GET /static/{file}`.
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, ctype, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound("no such asset".into()))?;
    let mut res = (StatusCode::OK, *body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}
