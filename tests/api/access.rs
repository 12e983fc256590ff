//! Access control on a closed gateway: every route × every kind of
//! credential, isolation between accounts, links, rate limits, CORS.

use playback_gateway::access::{LinkParams, new_key, parse_link_keys, sign_link};
use playback_gateway::catalog::RecordingStatus;
use playback_gateway::keys::Format;
use playback_gateway::sid::AccountSid;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    ADMIN_TOKEN, Backend, LINK_KEYS, Options, Seeded, TestApp, random_sid, spawn_app_with,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cred {
    Nothing,
    WrongAccount,
    RightAccount,
    ExpiredLink,
    TamperedLink,
    RevokedKey,
    Admin,
}

struct World {
    app: TestApp,
    a: Seeded,
    a_key: String,
    b_key: String,
    revoked: String,
    call: String,
}

async fn key(app: &TestApp, account: &AccountSid, read_only: bool) -> String {
    let k = new_key();
    app.catalog
        .create_key(&k.id, account, &k.hash, read_only, None)
        .await
        .unwrap();
    k.secret.expose().to_owned()
}

async fn world(opts: Options) -> World {
    let app = spawn_app_with(
        Backend::Local,
        Options {
            open: false,
            ..opts
        },
    )
    .await;
    let a_sid: AccountSid = random_sid("AC");
    let b_sid: AccountSid = random_sid("AC");
    let a = app
        .seed_with(
            &a_sid,
            "2017-05-09T16:00:00Z",
            60,
            RecordingStatus::Completed,
            true,
        )
        .await;
    app.seed_with(
        &a_sid,
        "2017-05-09T17:49:00Z",
        60,
        RecordingStatus::Completed,
        false,
    )
    .await; // lost
    app.seed_with(
        &b_sid,
        "2017-05-09T16:00:00Z",
        60,
        RecordingStatus::Completed,
        true,
    )
    .await;
    let call = app
        .catalog
        .get(&a.sid)
        .await
        .unwrap()
        .unwrap()
        .call_sid
        .unwrap()
        .to_string();
    let (a_key, b_key) = (
        key(&app, &a_sid, false).await,
        key(&app, &b_sid, false).await,
    );
    let rk = new_key();
    app.catalog
        .create_key(&rk.id, &a_sid, &rk.hash, false, None)
        .await
        .unwrap();
    app.catalog.revoke_key(&rk.id).await.unwrap();
    World {
        app,
        a,
        a_key,
        b_key,
        revoked: rk.secret.expose().to_owned(),
        call,
    }
}

fn link(w: &World, exp_offset: i64, tamper: bool) -> LinkParams {
    let keys = parse_link_keys(LINK_KEYS).unwrap();
    let exp = jiff::Timestamp::now().as_second() + exp_offset;
    let mut p = sign_link(&keys[0], &w.a.account, &w.a.sid, exp);
    if tamper {
        p.exp += 3600;
    }
    p
}

async fn call(
    w: &World,
    method: Method,
    path: &str,
    cred: Cred,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut path = path.to_string();
    let mut req_auth: Option<String> = None;
    let basic = |account: &AccountSid, secret: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{account}:{secret}"))
        )
    };
    match cred {
        Cred::Nothing => {}
        Cred::WrongAccount => req_auth = Some(format!("Bearer {}", w.b_key)),
        Cred::RightAccount => req_auth = Some(basic(&w.a.account, &w.a_key)),
        Cred::RevokedKey => req_auth = Some(format!("Bearer {}", w.revoked)),
        Cred::Admin => req_auth = Some(format!("Bearer {ADMIN_TOKEN}")),
        Cred::ExpiredLink | Cred::TamperedLink => {
            let l = if cred == Cred::ExpiredLink {
                link(w, -3600, false)
            } else {
                link(w, 3600, true)
            };
            let sep = if path.contains('?') { '&' } else { '?' };
            path = format!("{path}{sep}{}", l.query());
        }
    }
    let mut req = w.app.client.request(method, w.app.url(&path));
    if let Some(a) = req_auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_route_against_every_credential() {
    let w = world(Options::default()).await;
    let (a, r, c) = (w.a.account.to_string(), w.a.sid.to_string(), w.call.clone());
    use Cred::*;
    let creds = [
        Nothing,
        WrongAccount,
        RightAccount,
        ExpiredLink,
        TamperedLink,
        RevokedKey,
        Admin,
    ];
    // (method, path, expected per credential in the order above)
    let routes: Vec<(Method, String, [u16; 7])> = vec![
        (
            Method::GET,
            format!("/recordings/{r}.mp3"),
            [401, 404, 200, 403, 403, 401, 200],
        ),
        (
            Method::GET,
            format!("/recordings/{r}.json"),
            [401, 404, 200, 403, 403, 401, 200],
        ),
        (
            Method::GET,
            format!("/recordings/{r}/player"),
            [401, 404, 200, 403, 403, 401, 200],
        ),
        (
            Method::GET,
            format!("/2010-04-01/Accounts/{a}/Recordings/{r}"),
            [401, 404, 200, 403, 403, 401, 200],
        ),
        (
            Method::GET,
            format!("/2010-04-01/Accounts/{a}/Recordings/{r}.json"),
            [401, 404, 200, 403, 403, 401, 200],
        ),
        (
            Method::GET,
            format!("/calls/{c}"),
            [401, 404, 200, 403, 403, 401, 200],
        ),
        (
            Method::GET,
            format!("/accounts/{a}/recordings?date=2017-05-09"),
            [401, 404, 200, 403, 403, 401, 200],
        ),
        (
            Method::GET,
            "/incidents/2017-05-09/affected.csv".into(),
            [401, 200, 200, 403, 403, 401, 200],
        ),
        (
            Method::GET,
            "/incidents/2017-05-09".into(),
            [200, 200, 200, 200, 200, 401, 200],
        ),
        (
            Method::GET,
            "/incidents".into(),
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            Method::GET,
            "/healthz".into(),
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            Method::GET,
            "/demo".into(),
            [404, 404, 404, 404, 404, 404, 404],
        ),
        (
            Method::POST,
            "/admin/incidents/2017-05-09/resolve".into(),
            [401, 403, 403, 403, 403, 401, 409],
        ),
        (
            Method::POST,
            "/api/playback-links".into(),
            [401, 404, 200, 403, 403, 401, 200],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, expected) in &routes {
        for (cred, want) in creds.iter().zip(expected) {
            let body = (path == "/api/playback-links").then(|| json!({"recording_sid": r}));
            let got = call(&w, method.clone(), path, *cred, body)
                .await
                .status()
                .as_u16();
            if got != *want {
                failures.push(format!(
                    "{method} {path} with {cred:?}: {got}, expected {want}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn what_each_credential_sees() {
    let w = world(Options::default()).await;
    // Another account's recording answers exactly like one that never was.
    let nothing = random_sid::<playback_gateway::sid::RecordingSid>("RE");
    let theirs = call(
        &w,
        Method::GET,
        &w.a.path(Format::Mp3),
        Cred::WrongAccount,
        None,
    )
    .await;
    let none = call(
        &w,
        Method::GET,
        &format!("/recordings/{nothing}.mp3"),
        Cred::WrongAccount,
        None,
    )
    .await;
    assert_eq!(theirs.status(), none.status());
    let names = |r: &reqwest::Response| {
        let mut v: Vec<String> = r
            .headers()
            .keys()
            .filter(|k| !matches!(k.as_str(), "date" | "x-request-id"))
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&theirs), names(&none));
    let (t, n) = (theirs.text().await.unwrap(), none.text().await.unwrap());
    assert_eq!(
        t.replace(w.a.sid.as_str(), "X"),
        n.replace(nothing.as_str(), "X")
    );

    // The affected list shows each account only its own.
    let csv = call(
        &w,
        Method::GET,
        "/incidents/2017-05-09/affected.csv",
        Cred::WrongAccount,
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(csv.lines().count(), 1, "header only: {csv}");
    let csv = call(
        &w,
        Method::GET,
        "/incidents/2017-05-09/affected.csv",
        Cred::RightAccount,
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let summary: serde_json::Value = call(
        &w,
        Method::GET,
        "/incidents/2017-05-09",
        Cred::Nothing,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(summary["id"], "2017-05-09");
    assert_eq!(
        summary["affected"].as_array().unwrap().len(),
        0,
        "anonymous: the summary only"
    );

    // Expired and tampered links say which.
    let res = call(
        &w,
        Method::GET,
        &w.a.path(Format::Mp3),
        Cred::ExpiredLink,
        None,
    )
    .await;
    assert!(
        crate::helpers::problem(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let res = call(
        &w,
        Method::GET,
        &w.a.path(Format::Mp3),
        Cred::TamperedLink,
        None,
    )
    .await;
    assert!(
        crate::helpers::problem(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("signature")
    );

    // Authenticated answers are private.
    let res = call(
        &w,
        Method::GET,
        &format!("/recordings/{}.json", w.a.sid),
        Cred::RightAccount,
        None,
    )
    .await;
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
}

#[tokio::test]
async fn minted_links_play_their_recording_only() {
    let w = world(Options::default()).await;
    let res = call(
        &w,
        Method::POST,
        "/api/playback-links",
        Cred::RightAccount,
        Some(json!({"recording_sid": w.a.sid, "ttl": 600})),
    )
    .await;
    let minted: serde_json::Value = res.json().await.unwrap();
    let url = minted["url"].as_str().unwrap();
    let res = w
        .app
        .client
        .get(w.app.url(url))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), w.a.bytes[..10]);
    let player = w
        .app
        .client
        .get(w.app.url(minted["player_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(player.status(), StatusCode::OK);
    let csp = player.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'self' http://crm.localhost"),
        "{csp}"
    );
    let html = player.text().await.unwrap();
    assert!(
        html.contains(&format!("{}.mp3?exp=", w.a.sid)),
        "the player's audio carries the link"
    );
    // The same signature on another recording: refused.
    let other = random_sid::<playback_gateway::sid::RecordingSid>("RE");
    let query = url.split_once('?').unwrap().1;
    let res = w
        .app
        .client
        .get(w.app.url(&format!("/recordings/{other}.mp3?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Links of the previous key still play (rotation).
    let old = &parse_link_keys(LINK_KEYS).unwrap()[1];
    let l = sign_link(
        old,
        &w.a.account,
        &w.a.sid,
        jiff::Timestamp::now().as_second() + 60,
    );
    let res = w
        .app
        .client
        .get(
            w.app
                .url(&format!("{}?{}", w.a.path(Format::Wav), l.query())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Garbage link parameters.
    for q in [
        "exp=1",
        "exp=x&kid=new&sig=y",
        "kid=nope&exp=1&sig=AAAA",
        "sig=%ZZ&kid=&exp=",
    ] {
        let res = w
            .app
            .client
            .get(w.app.url(&format!("{}?{q}", w.a.path(Format::Wav))))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{q}");
    }
    // Bad requests to the minting endpoint.
    for body in [
        json!({}),
        json!({"recording_sid": w.a.sid, "ttl": 0}),
        json!({"recording_sid": "nope"}),
    ] {
        let res = call(
            &w,
            Method::POST,
            "/api/playback-links",
            Cred::RightAccount,
            Some(body),
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn open_mode_still_checks_what_is_presented() {
    let w = world(Options::default()).await;
    drop(w);
    let app = spawn_app_with(Backend::Local, Options::default()).await; // open
    let rec = app.seed(100).await;
    let res = app.get(&rec.path(Format::Mp3)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "open: no credential needed");
    let res = app
        .get(&rec.path(Format::Mp3))
        .bearer_auth("pgw_not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "a presented key is checked"
    );
    let res = app
        .get(&format!("{}?exp=1&kid=new&sig=AAAA", rec.path(Format::Mp3)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "a presented link is checked"
    );
    let res = app
        .client
        .post(app.url("/admin/incidents/x/resolve"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "admin stays closed");
    let html = app
        .get("/incidents")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Open mode"), "pages say so");
}

#[tokio::test]
async fn failed_authentication_is_rate_limited_per_address() {
    let w = world(Options {
        auth_failures_per_minute: 3,
        ..Options::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            call(
                &w,
                Method::GET,
                &w.a.path(Format::Mp3),
                Cred::RevokedKey,
                None,
            )
            .await,
        );
    }
    let last = statuses.pop().unwrap();
    assert_eq!(last.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(last.headers().contains_key("retry-after"));
    assert_eq!(statuses[0].status(), StatusCode::UNAUTHORIZED);
    // A good key from the same address still works.
    let ok = call(
        &w,
        Method::GET,
        &w.a.path(Format::Mp3),
        Cred::RightAccount,
        None,
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn cors_lets_the_crm_in_and_no_one_else() {
    let w = world(Options::default()).await;
    let preflight = |origin: &'static str| {
        w.app
            .client
            .request(Method::OPTIONS, w.app.url(&w.a.path(Format::Mp3)))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization, range")
            .send()
    };
    let ok = preflight("http://crm.localhost").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://crm.localhost"
    );
    let no = preflight("http://evil.localhost").await.unwrap();
    assert!(no.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn keys_are_created_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_playback-gateway");
    let account = format!("AC{}", "5".repeat(32));
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env_clear()
            .output()
            .unwrap()
    };
    let out = run(&[
        "keys",
        "--dir",
        d,
        "create",
        "--account",
        &account,
        "--read-only",
        "--label",
        "reports",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("key id:  "))
        .unwrap()
        .to_string();
    assert!(text.contains("secret:  pgw_"));
    let list = String::from_utf8_lossy(&run(&["keys", "--dir", d, "list"]).stdout).to_string();
    assert!(
        list.contains(&id) && list.contains("read-only") && !list.contains("pgw_"),
        "{list}"
    );
    assert!(run(&["keys", "--dir", d, "revoke", &id]).status.success());
    let list = String::from_utf8_lossy(&run(&["keys", "--dir", d, "list"]).stdout).to_string();
    assert!(list.contains("REVOKED"), "{list}");
    assert!(
        !run(&["keys", "--dir", d, "revoke", &id]).status.success(),
        "twice: no live key"
    );
    // sign prints a link that the gateway would accept.
    let out = std::process::Command::new(bin)
        .args([
            "sign",
            "--account",
            &account,
            "--recording",
            &format!("RE{}", "6".repeat(32)),
            "--ttl",
            "60",
        ])
        .env_clear()
        .env("PLAYBACK_GATEWAY_LINK_KEYS", LINK_KEYS)
        .env("PLAYBACK_GATEWAY_PUBLIC_URL", "https://recordings.example")
        .output()
        .unwrap();
    let url = String::from_utf8_lossy(&out.stdout);
    assert!(
        url.starts_with("https://recordings.example/recordings/RE6666"),
        "{url}"
    );
    assert!(url.contains("&kid=new&sig="), "{url}");
    let out = run(&["sign", "--account", &account, "--recording", "REnope"]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn the_admin_manages_keys_and_caches_over_http() {
    let w = world(Options::default()).await;
    let admin = |m: Method, p: &str| {
        w.app
            .client
            .request(m, w.app.url(p))
            .bearer_auth(ADMIN_TOKEN)
    };
    let res = admin(Method::POST, "/admin/keys")
        .json(&json!({"account_sid": w.a.account, "read_only": true, "label": "reports"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: serde_json::Value = res.json().await.unwrap();
    let (id, secret) = (
        created["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    );
    // The new read-only key reads, but cannot ingest.
    let res = w
        .app
        .get(&w.a.path(Format::Mp3))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = w
        .app
        .client
        .post(w.app.url("/api/recordings"))
        .bearer_auth(&secret)
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let list: serde_json::Value =
        admin(Method::GET, &format!("/admin/keys?account={}", w.a.account))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );
    assert!(
        !list.to_string().contains(&secret),
        "secrets are never listed"
    );
    assert_eq!(
        admin(Method::DELETE, &format!("/admin/keys/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let res = w
        .app
        .get(&w.a.path(Format::Mp3))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "revoked at once");
    assert_eq!(
        admin(Method::DELETE, &format!("/admin/keys/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // Caches.
    assert_eq!(
        admin(
            Method::DELETE,
            &format!("/admin/cache/recordings/{}", w.a.sid)
        )
        .send()
        .await
        .unwrap()
        .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin(Method::DELETE, "/admin/cache")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin(Method::DELETE, "/admin/cache/recordings/nope")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    // Not for account keys.
    let res = w
        .app
        .client
        .delete(w.app.url("/admin/cache"))
        .bearer_auth(&w.a_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
