//! The one gate in front of every state-changing route, so that a new
//! route cannot forget it: cross-site requests are refused, and the
//! credential is checked before a byte of the body is read.
//!
//! SECURITY: a browser that holds the admin's HTTP Basic credentials
//! sends them with any form another site posts, and a form can only make
//! a *simple* request (a safelisted method and content type, no custom
//! header). So a write is let through when the browser says it is
//! same-origin or typed by the user (Fetch Metadata `Sec-Fetch-Site`),
//! when its content type is not one a form can send (then the browser
//! asks first, and CORS answers only for the configured origins), or when
//! it carries no browser's marks at all (`curl`, a CRM's server, Twilio).
//! The Twilio webhook needs no credential: its signature is its
//! credential, checked by its handler, on a body capped at 16 KiB.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiError;
use crate::app::AppState;

/// The one write route that authenticates by its body's signature.
pub const SIGNED_BY_BODY: &str = "/webhooks/twilio/recording-status";

/// Why a request may not change anything from where it came, if so.
/// Pure: headers in, verdict out.
pub fn cross_site_refusal(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    if is_safe(method) || !simple_content_type(headers) {
        return None;
    }
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match text("sec-fetch-site") {
        Some("same-origin" | "none") => None,
        Some(_) => Some("a request from another site may not change anything here"),
        // No Fetch Metadata: an older browser says where it comes from in
        // `Origin`; a client that is no browser sends neither.
        None => match text(header::ORIGIN.as_str()) {
            None => None,
            Some(origin) if same_origin(origin, text(header::HOST.as_str())) => None,
            Some(_) => Some("a request from another origin may not change anything here"),
        },
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A content type an HTML form (or `fetch` without a preflight) can send,
/// or none at all.
fn simple_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return true;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "text/plain",
    ]
    .iter()
    .any(|s| essence.eq_ignore_ascii_case(s))
}

/// Whether `Origin` names the host the request was sent to.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    url.host_str()
        .is_some_and(|h| format!("{h}{port}").eq_ignore_ascii_case(host))
}

/// The middleware, on every route (`route_layer`: unknown paths and
/// methods still answer 404 and 405).
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_safe(req.method()) {
        return next.run(req).await;
    }
    if let Some(why) = cross_site_refusal(req.method(), req.headers()) {
        return ApiError::Forbidden(why.into()).into_response();
    }
    let signed_by_body = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| p.as_str() == SIGNED_BY_BODY);
    if signed_by_body {
        return next.run(req).await;
    }
    // The credential first: an unauthenticated body is never read, and
    // the refusal counts against the address like a wrong key.
    let (mut parts, body) = req.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    // No credential, or a playback link (which opens one recording to
    // read, never a write).
    if let Err(e) = caller.require() {
        return caller.refused(&state, e).into_response();
    }
    // Handed to the handler's extractor, so the credential is checked
    // (and its rate limit charged) once.
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn a_cross_site_form_may_not_write() {
        for h in [
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[
                ("sec-fetch-site", "cross-site"),
                ("content-type", "application/x-www-form-urlencoded"),
            ]),
            headers(&[
                ("sec-fetch-site", "cross-site"),
                ("content-type", "text/plain;charset=UTF-8"),
            ]),
            headers(&[
                ("sec-fetch-site", "cross-site"),
                ("content-type", "Multipart/Form-Data; boundary=x"),
            ]),
            headers(&[
                ("origin", "https://evil.example"),
                ("host", "gateway.example"),
            ]),
            headers(&[("origin", "null"), ("host", "gateway.example")]),
        ] {
            assert!(cross_site_refusal(&Method::POST, &h).is_some(), "{h:?}");
            assert!(cross_site_refusal(&Method::DELETE, &h).is_some(), "{h:?}");
        }
    }

    #[test]
    fn same_origin_typed_non_browser_and_preflighted_writes_pass() {
        for h in [
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "none")]),
            headers(&[]),
            headers(&[("content-type", "application/x-www-form-urlencoded")]),
            headers(&[
                ("sec-fetch-site", "cross-site"),
                ("content-type", "application/json"),
            ]),
            headers(&[
                ("origin", "https://gateway.example:8443"),
                ("host", "Gateway.example:8443"),
            ]),
        ] {
            assert!(cross_site_refusal(&Method::POST, &h).is_none(), "{h:?}");
        }
        let h = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(
            cross_site_refusal(&Method::GET, &h).is_none(),
            "reads are not writes"
        );
    }
}
