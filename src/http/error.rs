//! The one API error type, rendered as RFC 9457 `application/problem+json`.
//!
//! SECURITY: 5xx bodies say nothing internal. The cause is logged inside the
//! request's span (which carries the request id) and the client gets a
//! generic text plus that id to quote.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::catalog::CatalogError;
use crate::storage::StorageError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input the client can fix (a bad sid, a bad query).
    #[error("{0}")]
    BadRequest(String),
    /// No such resource (also: another account's resource).
    #[error("{0}")]
    NotFound(String),
    /// No credential, or a wrong one.
    #[error("unauthorized")]
    Unauthorized,
    /// The credential cannot do this.
    #[error("{0}")]
    Forbidden(String),
    /// The body is larger than this route takes (bytes).
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// The body is not of a type this route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Over a rate limit: try again after this long.
    #[error("too many requests")]
    TooManyRequests(Duration),
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The change conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` / `If-Unmodified-Since` failed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// No requested range overlaps the representation of this length.
    #[error("range not satisfiable")]
    RangeNotSatisfiable { len: u64 },
    /// Storage or catalog is down or slow: try again.
    #[error("temporarily unavailable: {cause}")]
    Unavailable {
        cause: String,
        retry_after: Duration,
    },
    /// The deployment is wrong (credentials, bucket): an operator must act.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// A relative URI naming the problem type (resolved against the gateway).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
}

impl ApiError {
    /// A malformed query string, said without the parser's internals.
    pub fn bad_query(e: &axum::extract::rejection::QueryRejection) -> Self {
        let text = e.body_text();
        let why = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or("it could not be read");
        Self::BadRequest(format!("bad query string: {why}"))
    }

    /// A JSON body that does not fit, said without the parser's internals.
    pub fn bad_json(e: &axum::extract::rejection::JsonRejection) -> Self {
        let text = e.body_text();
        let why = text
            .strip_prefix("Failed to deserialize the JSON body into the target type: ")
            .or(text.strip_prefix("Failed to parse the request body as JSON: "))
            .unwrap_or(&text);
        Self::BadRequest(format!("bad JSON body: {why}"))
    }

    /// Maps a storage error for a request that was about to be served.
    pub fn from_storage(e: &StorageError, retry_after: Duration) -> Self {
        match e {
            StorageError::NotFound => Self::NotFound("no such recording".into()),
            StorageError::Changed => Self::Unavailable {
                cause: "the recording changed repeatedly during the request".into(),
                retry_after,
            },
            StorageError::Unavailable(cause) => Self::Unavailable {
                cause: cause.clone(),
                retry_after,
            },
            StorageError::Misconfigured(cause) => Self::Misconfigured(cause.clone()),
        }
    }

    pub fn from_catalog(e: &CatalogError, retry_after: Duration) -> Self {
        match e {
            CatalogError::Corrupt { .. } => Self::Internal(e.to_string()),
            _ => Self::Unavailable {
                cause: e.to_string(),
                retry_after,
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Misconfigured(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document: only client-safe text.
    pub fn problem(&self) -> Problem {
        let (kind, title, detail) = match self {
            Self::BadRequest(d) => ("bad_request", "Bad request", d.clone()),
            Self::NotFound(d) => ("not_found", "Not found", d.clone()),
            Self::Unauthorized => (
                "unauthorized",
                "Unauthorized",
                "this needs a valid credential in the Authorization header".into(),
            ),
            Self::Forbidden(d) => ("forbidden", "Forbidden", d.clone()),
            Self::Conflict(d) => ("conflict", "Conflict", d.clone()),
            Self::PayloadTooLarge(max) => (
                "payload_too_large",
                "Payload too large",
                format!("this route takes bodies of at most {max} bytes"),
            ),
            Self::UnsupportedMediaType(d) => (
                "unsupported_media_type",
                "Unsupported media type",
                d.clone(),
            ),
            Self::TooManyRequests(_) => (
                "too_many_requests",
                "Too many requests",
                "slow down; Retry-After says when to try again".into(),
            ),
            Self::MethodNotAllowed => (
                "method_not_allowed",
                "Method not allowed",
                "this resource does not answer that method; see the Allow header".into(),
            ),
            Self::PreconditionFailed => (
                "precondition_failed",
                "Precondition failed",
                "the recording does not match the If-Match or If-Unmodified-Since condition".into(),
            ),
            Self::RangeNotSatisfiable { len } => (
                "range_not_satisfiable",
                "Range not satisfiable",
                format!("no requested range overlaps the recording's {len} bytes"),
            ),
            Self::Unavailable { .. } => (
                "storage_unavailable",
                "Temporarily unavailable",
                "recording storage is temporarily unavailable; nothing is lost, try again shortly"
                    .into(),
            ),
            Self::Misconfigured(_) => (
                "storage_misconfigured",
                "Bad gateway",
                "recording storage refused the gateway; an operator has to fix its configuration"
                    .into(),
            ),
            Self::Internal(_) => (
                "internal",
                "Internal error",
                "the gateway failed unexpectedly; quote the x-request-id header when reporting it"
                    .into(),
            ),
        };
        Problem {
            kind: format!("/problems/{kind}"),
            title,
            status: self.status().as_u16(),
            detail,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            Self::Unavailable { cause, .. } => tracing::warn!(%cause, "answering 503"),
            Self::Misconfigured(cause) => tracing::error!(%cause, "storage misconfigured"),
            Self::Internal(cause) => tracing::error!(%cause, "internal error"),
            _ => {}
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Self::Unavailable { retry_after, .. } => {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                );
            }
            Self::Unauthorized => {
                // Basic first: browsers then ask account managers for their
                // AccountSid and key secret.
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"playback-gateway\", Bearer"),
                );
            }
            Self::TooManyRequests(after) => {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(after.as_secs().max(1)),
                );
            }
            Self::RangeNotSatisfiable { len } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
                h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
            _ => {}
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_text_never_reaches_the_body() {
        for e in [
            ApiError::Unavailable {
                cause: "secret-host:9000 refused".into(),
                retry_after: Duration::from_secs(3),
            },
            ApiError::Misconfigured("AccessDenied for key AKIA123".into()),
            ApiError::Internal("panic at src/x.rs".into()),
        ] {
            let p = serde_json::to_string(&e.problem()).unwrap();
            assert!(!p.contains("secret-host") && !p.contains("AKIA") && !p.contains("src/"));
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(ApiError::PreconditionFailed.status(), 412);
        assert_eq!(ApiError::RangeNotSatisfiable { len: 1 }.status(), 416);
        assert_eq!(ApiError::Misconfigured(String::new()).status(), 502);
    }
}
