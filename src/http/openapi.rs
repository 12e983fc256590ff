//! The API contract: an OpenAPI 3.1 document built from one table of the
//! routes (`/openapi.json`), and a page that renders the same table
//! (`/api/docs`). A test checks that the table covers every route the
//! router has, and validates the document with an independent validator.

use askama::Template;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Public,
    /// A signed link, an account key, the admin token (or open mode).
    Reader,
    /// An account key or the admin token.
    Account,
    Admin,
    /// Twilio's request signature.
    TwilioSignature,
}

/// One documented operation.
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    /// `(status, description, content type)`; problem answers use
    /// `application/problem+json`.
    pub responses: &'static [(u16, &'static str, &'static str)],
}

const PROBLEM: &str = "application/problem+json";
const JSON: &str = "application/json";
const HTML: &str = "text/html";
const CSV: &str = "text/csv";

/// The answers every recording route may give besides its own.
const RECORDING_ERRORS: &[(u16, &str, &str)] = &[
    (400, "malformed sid or query", PROBLEM),
    (401, "a credential is needed", PROBLEM),
    (403, "expired or tampered link", PROBLEM),
    (
        404,
        "unknown, another account's, unexplained or absent (see `verdict`)",
        PROBLEM,
    ),
    (
        410,
        "lost in an incident or deleted (see `verdict` and `incident`)",
        PROBLEM,
    ),
    (429, "rate limited (`Retry-After`)", PROBLEM),
    (502, "storage refuses the gateway (misconfigured)", PROBLEM),
    (
        503,
        "storage unavailable, pending or recovering (`Retry-After`); never a loss",
        PROBLEM,
    ),
];

/// Every route, documented.
pub const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/recordings/{name}",
        summary: "Audio (`RE….wav`, `RE….mp3`: Range, ETag, 304/412/416), the status page (`RE…`: HTML or JSON) or its JSON (`RE….json`); a verdict when the audio is missing",
        auth: Auth::Reader,
        responses: &[
            (200, "the audio or the status", "audio/mpeg"),
            (206, "a range of the audio", "audio/mpeg"),
            (304, "not modified", "audio/mpeg"),
            (412, "precondition failed", PROBLEM),
            (416, "range not satisfiable", PROBLEM),
        ],
    },
    Op {
        method: "head",
        path: "/recordings/{name}",
        summary: "What GET would answer, without the body",
        auth: Auth::Reader,
        responses: &[(200, "headers of the audio", "audio/mpeg")],
    },
    Op {
        method: "get",
        path: "/recordings/{name}/player",
        summary: "The embeddable player, or the explanation in its place",
        auth: Auth::Reader,
        responses: &[(200, "the player", HTML)],
    },
    Op {
        method: "get",
        path: "/2010-04-01/Accounts/{account}/Recordings/{name}",
        summary: "Twilio's path shape: audio (no extension = WAV) or Twilio's Recording JSON (`.json`) with `availability`",
        auth: Auth::Reader,
        responses: &[
            (200, "the audio or the Recording resource", "audio/wav"),
            (206, "a range of the audio", "audio/wav"),
        ],
    },
    Op {
        method: "head",
        path: "/2010-04-01/Accounts/{account}/Recordings/{name}",
        summary: "What GET would answer, without the body",
        auth: Auth::Reader,
        responses: &[(200, "headers of the audio", "audio/wav")],
    },
    Op {
        method: "get",
        path: "/calls/{call}",
        summary: "A call's recordings with their verdicts (`.json`, `.csv`)",
        auth: Auth::Account,
        responses: &[(200, "the recordings", JSON)],
    },
    Op {
        method: "get",
        path: "/accounts/{account}/{list}",
        summary: "An account's recordings of one day: `recordings[.json|.csv]?date=YYYY-MM-DD&tz=Zone`",
        auth: Auth::Account,
        responses: &[(200, "the recordings", JSON)],
    },
    Op {
        method: "get",
        path: "/incidents",
        summary: "The incident registry",
        auth: Auth::Public,
        responses: &[(200, "the incidents", JSON)],
    },
    Op {
        method: "get",
        path: "/incidents.json",
        summary: "The incident registry as JSON",
        auth: Auth::Public,
        responses: &[(200, "the incidents", JSON)],
    },
    Op {
        method: "get",
        path: "/incidents/{id}",
        summary: "One incident; with a credential, the recordings it covers that the caller may see",
        auth: Auth::Public,
        responses: &[(200, "the incident", JSON)],
    },
    Op {
        method: "get",
        path: "/incidents/{id}/affected.csv",
        summary: "The affected recordings as CSV, times in the incident's zone",
        auth: Auth::Account,
        responses: &[(200, "CSV", "text/csv")],
    },
    Op {
        method: "post",
        path: "/admin/incidents",
        summary: "Create an incident",
        auth: Auth::Admin,
        responses: &[(201, "created", JSON), (409, "the id exists", PROBLEM)],
    },
    Op {
        method: "put",
        path: "/admin/incidents/{id}",
        summary: "Replace an admin incident",
        auth: Auth::Admin,
        responses: &[(200, "replaced", JSON), (409, "a file incident", PROBLEM)],
    },
    Op {
        method: "post",
        path: "/admin/incidents/{id}/resolve",
        summary: "Resolve an incident, optionally with its outcome",
        auth: Auth::Admin,
        responses: &[(200, "resolved", JSON)],
    },
    Op {
        method: "post",
        path: "/admin/keys",
        summary: "Create an account API key (the answer holds its secret)",
        auth: Auth::Admin,
        responses: &[(201, "created", JSON)],
    },
    Op {
        method: "get",
        path: "/admin/keys",
        summary: "List API keys (never their secrets)",
        auth: Auth::Admin,
        responses: &[(200, "the keys", JSON)],
    },
    Op {
        method: "delete",
        path: "/admin/keys/{id}",
        summary: "Revoke an API key",
        auth: Auth::Admin,
        responses: &[(204, "revoked", JSON)],
    },
    Op {
        method: "delete",
        path: "/admin/cache",
        summary: "Flush the caches",
        auth: Auth::Admin,
        responses: &[(204, "flushed", JSON)],
    },
    Op {
        method: "delete",
        path: "/admin/cache/recordings/{sid}",
        summary: "Forget what is cached about one recording",
        auth: Auth::Admin,
        responses: &[(204, "forgotten", JSON)],
    },
    Op {
        method: "get",
        path: "/audit",
        summary: "The loss audit page: latest result, bursts to confirm, trend (HTTP Basic `admin`:token in a browser)",
        auth: Auth::Admin,
        responses: &[(200, "the page", HTML)],
    },
    Op {
        method: "get",
        path: "/admin/audit",
        summary: "The latest loss audit (every finding), whether one runs, and the trend",
        auth: Auth::Admin,
        responses: &[(200, "audits", JSON)],
    },
    Op {
        method: "get",
        path: "/admin/audit/findings.csv",
        summary: "The latest loss audit's findings, one per line",
        auth: Auth::Admin,
        responses: &[(200, "findings", CSV), (404, "no audit yet", PROBLEM)],
    },
    Op {
        method: "post",
        path: "/admin/audit/run",
        summary: "Start a loss audit of everything now",
        auth: Auth::Admin,
        responses: &[
            (202, "started", JSON),
            (303, "started (a browser's form: back to /audit)", JSON),
            (409, "one is running", PROBLEM),
        ],
    },
    Op {
        method: "post",
        path: "/admin/audit/bursts/{n}/confirm",
        summary: "Confirm the latest audit's burst n (from 0) as an incident, with its draft",
        auth: Auth::Admin,
        responses: &[
            (201, "the incident", JSON),
            (
                303,
                "created (a browser's form: to the incident page)",
                JSON,
            ),
            (404, "no such burst", PROBLEM),
            (409, "the incident exists", PROBLEM),
        ],
    },
    Op {
        method: "post",
        path: "/webhooks/twilio/recording-status",
        summary: "Twilio's RecordingStatusCallback (form-encoded, `X-Twilio-Signature`)",
        auth: Auth::TwilioSignature,
        responses: &[
            (204, "stored", JSON),
            (413, "body too large", PROBLEM),
            (415, "not a form", PROBLEM),
        ],
    },
    Op {
        method: "post",
        path: "/api/recordings",
        summary: "Push recordings in Twilio's JSON shape, up to 1,000; per-item results",
        auth: Auth::Account,
        responses: &[(200, "per-item results", JSON)],
    },
    Op {
        method: "post",
        path: "/api/playback-links",
        summary: "Mint a signed playback link to one recording",
        auth: Auth::Account,
        responses: &[
            (200, "the link", JSON),
            (409, "no link keys configured", PROBLEM),
        ],
    },
    Op {
        method: "get",
        path: "/static/{file}",
        summary: "The pages' CSS and scripts",
        auth: Auth::Public,
        responses: &[(200, "the asset", "text/css")],
    },
    Op {
        method: "get",
        path: "/demo",
        summary: "The demo CRM page (the open demo only)",
        auth: Auth::Public,
        responses: &[(200, "the page", HTML)],
    },
    Op {
        method: "get",
        path: "/",
        summary: "A map of the pages (the demo: its CRM page)",
        auth: Auth::Public,
        responses: &[(200, "the page", HTML)],
    },
    Op {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics",
        auth: Auth::Admin,
        responses: &[(200, "text format 0.0.4", "text/plain")],
    },
    Op {
        method: "get",
        path: "/healthz",
        summary: "The process is up",
        auth: Auth::Public,
        responses: &[(200, "up", JSON)],
    },
    Op {
        method: "get",
        path: "/readyz",
        summary: "Storage, catalog and registry answer; `draining` during shutdown",
        auth: Auth::Public,
        responses: &[(200, "ready", JSON), (503, "not ready", JSON)],
    },
    Op {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        auth: Auth::Public,
        responses: &[(200, "OpenAPI 3.1", JSON)],
    },
    Op {
        method: "get",
        path: "/api/docs",
        summary: "This document, as a page",
        auth: Auth::Public,
        responses: &[(200, "the page", HTML)],
    },
];

fn security(auth: Auth) -> Value {
    match auth {
        Auth::Public | Auth::TwilioSignature => json!([]),
        Auth::Reader => json!([{ "basic": [] }, { "bearer": [] }, { "playbackLink": [] }]),
        Auth::Account => json!([{ "basic": [] }, { "bearer": [] }]),
        Auth::Admin => json!([{ "bearer": [] }]),
    }
}

/// The OpenAPI 3.1 document.
pub fn spec() -> Value {
    let mut paths = Map::new();
    for op in OPS {
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut responses = Map::new();
        let all = op.responses.iter().chain(if op.auth == Auth::Reader {
            RECORDING_ERRORS
        } else {
            &[]
        });
        for (code, description, ctype) in all {
            let schema = if *ctype == PROBLEM {
                json!({ "$ref": "#/components/schemas/Problem" })
            } else {
                json!({})
            };
            responses.insert(
                code.to_string(),
                json!({ "description": description, "content": { *ctype: { "schema": schema } } }),
            );
        }
        for (code, description) in [
            (400u16, "bad input"),
            (500, "internal error (no details; quote x-request-id)"),
        ] {
            responses.entry(code.to_string()).or_insert_with(|| {
                json!({ "description": description, "content": { PROBLEM: { "schema": { "$ref": "#/components/schemas/Problem" } } } })
            });
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = json!({
            "summary": op.summary,
            "operationId": format!("{}{}", op.method, op.path.replace(['/', '{', '}', '.'], "_")),
            "parameters": params,
            "security": security(op.auth),
            "responses": responses,
        });
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "playback-gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Streams call recordings and explains the missing ones. Errors are RFC 9457 problem details with a `verdict` member.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basic": { "type": "http", "scheme": "basic", "description": "AccountSid:API key secret" },
                "bearer": { "type": "http", "scheme": "bearer", "description": "an API key secret, or the admin token" },
                "playbackLink": { "type": "apiKey", "in": "query", "name": "sig", "description": "a signed link: exp, kid and sig query parameters" },
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": { "type": "string" },
                        "title": { "type": "string" },
                        "status": { "type": "integer" },
                        "detail": { "type": "string" },
                        "verdict": { "type": "string", "enum": ["available", "lost", "recovering", "deleted", "absent", "pending", "unexplained", "unknown", "storage_unavailable"] },
                        "recording_sid": { "type": "string" },
                        "incident": { "type": "object" },
                        "notes": { "type": "array", "items": { "type": "string" } },
                        "what_to_do": { "type": ["string", "null"] },
                    },
                },
            },
        },
    })
}

/// `GET /openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}

struct OpView {
    method: String,
    path: &'static str,
    summary: &'static str,
    who: &'static str,
    responses: String,
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct DocsPage {
    demo: bool,
    open: bool,
    ops: Vec<OpView>,
}

/// `GET /api/docs`: the same table, for people.
pub async fn page() -> Response {
    let ops = OPS
        .iter()
        .map(|op| OpView {
            method: op.method.to_uppercase(),
            path: op.path,
            summary: op.summary,
            who: match op.auth {
                Auth::Public => "public",
                Auth::Reader => "link, account key or admin",
                Auth::Account => "account key or admin",
                Auth::Admin => "admin",
                Auth::TwilioSignature => "Twilio signature",
            },
            responses: op
                .responses
                .iter()
                .map(|(c, _, _)| c.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let html = DocsPage {
        demo: false,
        open: false,
        ops,
    }
    .render()
    .unwrap_or_else(|_| "the API page could not be rendered".into());
    let mut res = (StatusCode::OK, html).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}
