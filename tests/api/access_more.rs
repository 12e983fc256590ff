//! Access control, continued: minted links, open mode, rate limits, CORS,
//! and keys from the command line and the admin API.

use playback_gateway::access::{parse_link_keys, sign_link};
use playback_gateway::keys::Format;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::access::{Cred, call, world};
use crate::helpers::{ADMIN_TOKEN, Backend, LINK_KEYS, Options, random_sid, spawn_app_with};

crate::both_catalogs!(the_admin_manages_keys_and_caches_over_http);

#[tokio::test]
async fn minted_links_play_their_recording_only() {
    let w = world(Backend::Local, Options::default()).await;
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
    let w = world(Backend::Local, Options::default()).await;
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
    let w = world(
        Backend::Local,
        Options {
            auth_failures_per_minute: 3,
            ..Options::default()
        },
    )
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
    let w = world(Backend::Local, Options::default()).await;
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

async fn the_admin_manages_keys_and_caches_over_http(b: Backend) {
    let w = world(b, Options::default()).await;
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
