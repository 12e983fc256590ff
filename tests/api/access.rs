//! Access control on a closed gateway: every route × every kind of
//! credential, isolation between accounts, links, rate limits, CORS.

use playback_gateway::access::{LinkParams, new_key, parse_link_keys, sign_link};
use playback_gateway::catalog::RecordingStatus;
use playback_gateway::keys::Format;
use playback_gateway::sid::AccountSid;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    ADMIN_TOKEN, Backend, LINK_KEYS, Options, Seeded, TestApp, random_sid, spawn_app_with,
};

crate::both_catalogs!(
    every_route_against_every_credential,
    what_each_credential_sees
);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cred {
    Nothing,
    WrongAccount,
    RightAccount,
    ExpiredLink,
    TamperedLink,
    RevokedKey,
    Admin,
}

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) a: Seeded,
    pub(crate) a_key: String,
    pub(crate) b_key: String,
    pub(crate) revoked: String,
    pub(crate) call: String,
}

pub(crate) async fn key(app: &TestApp, account: &AccountSid, read_only: bool) -> String {
    let k = new_key();
    app.catalog
        .create_key(&k.id, account, &k.hash, read_only, None)
        .await
        .unwrap();
    k.secret.expose().to_owned()
}

pub(crate) async fn world(b: Backend, opts: Options) -> World {
    let app = spawn_app_with(
        b,
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

pub(crate) fn link(w: &World, exp_offset: i64, tamper: bool) -> LinkParams {
    let keys = parse_link_keys(LINK_KEYS).unwrap();
    let exp = jiff::Timestamp::now().as_second() + exp_offset;
    let mut p = sign_link(&keys[0], &w.a.account, &w.a.sid, exp);
    if tamper {
        p.exp += 3600;
    }
    p
}

pub(crate) async fn call(
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

async fn every_route_against_every_credential(b: Backend) {
    let w = world(b, Options::default()).await;
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

async fn what_each_credential_sees(b: Backend) {
    let w = world(b, Options::default()).await;
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
