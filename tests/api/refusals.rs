//! What a closed gateway refuses, one finding of an attacker's review at
//! a time: incident definitions kept for the admin, bodies never read
//! before the credential, cross-site writes, forged callbacks by the
//! hundred, links that live forever, player events to anyone listening.

use std::time::Duration;

use playback_gateway::access::{parse_link_keys, sign_link};
use playback_gateway::sid::AccountSid;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::access::key;
use crate::helpers::{
    ADMIN_TOKEN, Backend, CRM_ORIGIN, LINK_KEYS, Options, TestApp, random_sid, spawn_app_with,
};
use crate::limits::closed_within;

async fn closed(opts: Options) -> TestApp {
    spawn_app_with(
        Backend::Local,
        Options {
            open: false,
            ..opts
        },
    )
    .await
}

async fn json_as(app: &TestApp, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let mut req = app.get(path).header("accept", "application/json");
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_incidents_definition_and_scoped_incidents_are_not_for_everyone() {
    let app = closed(Options::default()).await;
    let (a, b): (AccountSid, AccountSid) = (random_sid("AC"), random_sid("AC"));
    let (a_key, b_key) = (key(&app, &a, false).await, key(&app, &b, false).await);
    for who in [None, Some(a_key.as_str())] {
        let (status, body) = json_as(&app, "/incidents/2017-05-09", who).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], "2017-05-09");
        assert!(body.get("definition").is_none(), "{who:?}: {body}");
    }
    let (_, body) = json_as(&app, "/incidents/2017-05-09", Some(ADMIN_TOKEN)).await;
    assert_eq!(body["definition"]["communicated"], "2017-05-11");

    // An incident scoped to B exists for B and the admin only.
    let res = app
        .client
        .post(app.url("/admin/incidents"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "id": "b-only", "title": "B's", "status": "investigating", "outcome": "lost",
            "time_zone": "UTC", "starts": "2016-06-01T00:00:00", "ends": "2016-06-01T01:00:00",
            "match_on": "end", "summary": "B.", "impact": "B.", "what_to_do": "B.",
            "accounts": [b],
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let listed = |body: &Value| {
        body["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == "b-only")
    };
    for (who, sees) in [
        (None, false),
        (Some(a_key.as_str()), false),
        (Some("pgw_wrong"), false),
        (Some(b_key.as_str()), true),
        (Some(ADMIN_TOKEN), true),
    ] {
        let (status, _) = json_as(&app, "/incidents/b-only", who).await;
        let want = match (sees, who) {
            (true, _) => StatusCode::OK,
            // A credential presented is checked, wherever it is.
            (false, Some("pgw_wrong")) => StatusCode::UNAUTHORIZED,
            (false, _) => StatusCode::NOT_FOUND,
        };
        assert_eq!(status, want, "{who:?}");
        for list in ["/incidents", "/incidents.json"] {
            let (status, body) = json_as(&app, list, who).await;
            assert_eq!(status, StatusCode::OK, "{list} is public");
            assert_eq!(listed(&body), sees, "{list} for {who:?}");
        }
    }
}

/// A request whose headers promise a large body that never comes: the
/// answer must not wait for it.
async fn answer_without_body(app: &TestApp, method: &str, path: &str) -> String {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 2000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let got = closed_within(&mut s, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("{method} {path} waited for a body nobody vouched for"));
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn no_body_is_read_before_the_credential_and_refusals_count() {
    let app = closed(Options {
        auth_failures_per_minute: 6,
        ..Options::default()
    })
    .await;
    let routes = [
        ("POST", "/api/recordings"),
        ("POST", "/api/playback-links"),
        ("POST", "/admin/incidents"),
        ("PUT", "/admin/incidents/2017-05-09"),
        ("POST", "/admin/keys"),
        ("POST", "/admin/audit/run"),
    ];
    for (method, path) in routes {
        let answer = answer_without_body(&app, method, path).await;
        assert!(
            answer.starts_with("HTTP/1.1 401"),
            "{method} {path}: {answer}"
        );
    }
    // Six refusals from one address: the seventh is 429, before any body.
    let answer = answer_without_body(&app, "POST", "/api/recordings").await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
}

#[tokio::test]
async fn cross_site_writes_are_refused_and_change_nothing() {
    let app = closed(Options::default()).await;
    let resolve = "/admin/incidents/2017-05-09/resolve";
    let status_of = |app: &TestApp| {
        app.state
            .registry
            .get("2017-05-09")
            .map(|i| format!("{:?}", i.spec))
    };
    let before = status_of(&app);
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![
            ("sec-fetch-site", "cross-site"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null"), ("content-type", "text/plain")],
    ] {
        for (method, path) in [
            ("POST", resolve),
            ("POST", "/admin/keys"),
            ("DELETE", "/admin/cache"),
        ] {
            let mut req = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .bearer_auth(ADMIN_TOKEN)
                .body("status=resolved");
            for (k, v) in &headers {
                req = req.header(*k, *v);
            }
            let res = req.send().await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::FORBIDDEN,
                "{method} {path} {headers:?}"
            );
        }
    }
    assert_eq!(status_of(&app), before, "nothing changed");
    // The gateway's own pages, a typed request, a client that is no
    // browser, and a preflighted JSON request all pass this gate.
    for headers in [
        vec![("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "none")],
        vec![],
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", CRM_ORIGIN),
            ("content-type", "application/json"),
        ],
    ] {
        let mut req = app
            .client
            .delete(app.url("/admin/cache"))
            .bearer_auth(ADMIN_TOKEN);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{headers:?}: {}", res.status());
    }
}

#[tokio::test]
async fn forged_callbacks_are_rate_limited_per_address() {
    let app = closed(Options {
        auth_failures_per_minute: 3,
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = app
            .client
            .post(app.url("/webhooks/twilio/recording-status"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", "bm90IGEgc2lnbmF0dXJl")
            .body(format!(
                "AccountSid={}&RecordingSid={}",
                random_sid::<String>("AC"),
                random_sid::<String>("RE")
            ))
            .send()
            .await
            .unwrap();
        statuses.push(res.status());
    }
    assert_eq!(statuses[0], StatusCode::FORBIDDEN, "{statuses:?}");
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}

#[tokio::test]
async fn no_link_outlives_the_configured_lifetime() {
    let app = closed(Options::default()).await;
    let a: AccountSid = random_sid("AC");
    let s = app
        .seed_with(
            &a,
            "2017-05-09T15:00:00Z",
            60,
            playback_gateway::catalog::RecordingStatus::Completed,
            true,
        )
        .await;
    let keys = parse_link_keys(LINK_KEYS).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let week = 7 * 24 * 3600;
    for (exp, want) in [
        (now + 3600, StatusCode::OK),
        (now + week - 60, StatusCode::OK),
        (now + week + 3600, StatusCode::FORBIDDEN),
        (i64::MAX, StatusCode::FORBIDDEN),
        (now + i64::from(u32::MAX), StatusCode::FORBIDDEN),
    ] {
        let link = sign_link(&keys[0], &a, &s.sid, exp);
        let res = app
            .get(&format!("/recordings/{}.mp3?{}", s.sid, link.query()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want, "exp {exp}");
        if want == StatusCode::FORBIDDEN {
            let detail = crate::helpers::problem(res).await["detail"].to_string();
            assert!(
                detail.contains("longer than this gateway allows"),
                "{detail}"
            );
        }
    }
    let a_key = key(&app, &a, false).await;
    for (ttl, want) in [(3600, StatusCode::OK), (week + 1, StatusCode::BAD_REQUEST)] {
        let res = app
            .client
            .post(app.url("/api/playback-links"))
            .basic_auth(&a, Some(&a_key))
            .json(&json!({"recording_sid": s.sid, "ttl": ttl}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want, "ttl {ttl}");
    }
}

#[tokio::test]
async fn the_player_tells_only_the_pages_allowed_to_frame_it() {
    let app = closed(Options {
        cors_origins: vec!["https://crm2.example".into()],
        ..Options::default()
    })
    .await;
    let s = app.seed(1_000).await;
    let html = app
        .get(&format!("/recordings/{}/player", s.sid))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!(
            "data-embedders=\"{CRM_ORIGIN} https://crm2.example\""
        )),
        "{html}"
    );
    let js =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/player.js")).unwrap();
    assert!(
        !js.contains("\"*\"") && js.contains("postMessage(msg, o)"),
        "player.js posts to any origin"
    );
}
