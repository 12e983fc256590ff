//! Tenant isolation as a property over every route of the router, so that
//! a new route is covered without anyone remembering it: whatever account
//! A asks (with its key, with a signed link to its own recording, with a
//! bad credential, or with none), B's anything answers exactly as
//! something that does not exist (status, headers, body, once the names
//! are blanked out), and adding B's data changes nothing A sees. On every
//! kind of key layout and both catalogs. B's key and the admin are the
//! controls: they do see the difference, so the comparison is not blind.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use playback_gateway::access::{parse_link_keys, sign_link};
use playback_gateway::catalog::RecordingStatus;
use playback_gateway::keys::{Format, KeyLayout};
use playback_gateway::sid::{AccountSid, RecordingSid};
use reqwest::Method;
use serde_json::json;

use crate::access::key;
use crate::helpers::{
    ADMIN_TOKEN, Backend, LINK_KEYS, Options, TestApp, random_sid, spawn_app_with,
};

crate::both_catalogs!(another_accounts_anything_looks_like_nothing);

/// With the account in the key, without it, and without it under a
/// prefix per format.
const LAYOUTS: [&str; 3] = [
    "{account_sid}/{recording_sid}.{ext}",
    "{recording_sid}.{ext}",
    "audio/{ext}/{recording_sid}.{ext}",
];

/// Routes left out of the view property, and why. Each is still
/// enumerated, so a route cannot drop out of the test by accident.
const NOT_VIEWS: [(&str, &str); 1] = [(
    "/api/recordings",
    "a write that names a taken sid must say so; tests/api/ownership.rs proves it changes nothing",
)];

/// What a route can name: a recording, its call, an account, an incident.
#[derive(Debug, Clone)]
struct Thing {
    label: &'static str,
    rec: String,
    call: String,
    account: String,
    incident: String,
}

impl Thing {
    fn names(&self) -> [&str; 4] {
        [&self.rec, &self.call, &self.account, &self.incident]
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Viewer {
    Nobody,
    KeyA,
    LinkA,
    Bad,
    KeyB,
    Admin,
}

const AS_A: [Viewer; 4] = [Viewer::Nobody, Viewer::KeyA, Viewer::LinkA, Viewer::Bad];

/// One request, as sent.
#[derive(Debug, Clone, PartialEq)]
struct Req {
    method: Method,
    path: String,
    body: Option<serde_json::Value>,
}

/// What an answer says, names blanked out.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

struct World {
    app: TestApp,
    a: AccountSid,
    a_key: String,
    b: AccountSid,
    b_key: String,
    /// `exp=…&kid=…&sig=…` for A's own recording.
    a_link: String,
    own: Thing,
}

async fn another_accounts_anything_looks_like_nothing(b: Backend) {
    let mut failures = Vec::new();
    for layout in LAYOUTS {
        failures.extend(check(b, layout.parse().unwrap()).await);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// What tells B's data apart for A, on one layout.
async fn check(backend: Backend, layout: KeyLayout) -> Vec<String> {
    let w = world(backend, layout.clone()).await;
    let routes = routable(&w).await;
    let nobody = unknown();

    // Before B has anything: what A sees of its own and of the public.
    let untargeted = requests(&routes, &w.own, &w.own);
    let before = views(&w, &untargeted, &AS_A, &w.own).await;

    let things = seed_b(&w).await;
    let after = views(&w, &untargeted, &AS_A, &w.own).await;
    let mut failures = Vec::new();
    for ((req, viewer, was), (_, _, is)) in before.iter().zip(&after) {
        if was != is {
            failures.push(format!(
                "{layout:?}: B's data changed what {viewer:?} sees at {} {}:\n  before {was:?}\n  after  {is:?}",
                req.method, req.path
            ));
        }
    }

    for thing in &things {
        let pairs: Vec<(Req, Req)> = requests(&routes, thing, &w.own)
            .into_iter()
            .zip(requests(&routes, &nobody, &w.own))
            .filter(|(t, u)| t != u)
            .collect();
        let (theirs, none): (Vec<Req>, Vec<Req>) = pairs.into_iter().unzip();
        let seen_theirs = views(&w, &theirs, &AS_A, thing).await;
        let seen_none = views(&w, &none, &AS_A, &nobody).await;
        for ((req, viewer, t), (_, _, n)) in seen_theirs.iter().zip(&seen_none) {
            if t != n {
                failures.push(format!(
                    "{layout:?}: {viewer:?} tells B's {} from nothing at {} {}:\n  B's     {t:?}\n  nothing {n:?}",
                    thing.label, req.method, req.path
                ));
            }
        }
        // The controls: B and the admin see B's recording.
        if matches!(thing.label, "available" | "lost") {
            let status = Req {
                method: Method::GET,
                path: format!("/recordings/{}.json", thing.rec),
                body: None,
            };
            let nothing = Req {
                path: format!("/recordings/{}.json", nobody.rec),
                ..status.clone()
            };
            for viewer in [Viewer::KeyB, Viewer::Admin] {
                let t = view(&w, &status, viewer, thing).await;
                let n = view(&w, &nothing, viewer, &nobody).await;
                assert_ne!(t, n, "{viewer:?} must see B's {} recording", thing.label);
            }
        }
    }
    failures
}

async fn world(backend: Backend, layout: KeyLayout) -> World {
    let app = spawn_app_with(
        backend,
        Options {
            open: false,
            layout,
            rate_limit: 100_000,
            ..Options::default()
        },
    )
    .await;
    let (a, b): (AccountSid, AccountSid) = (random_sid("AC"), random_sid("AC"));
    let mine = app
        .seed_with(
            &a,
            "2017-05-09T15:00:00Z",
            60,
            RecordingStatus::Completed,
            true,
        )
        .await;
    // A's own loss, so the incident's counts for A are not all zero.
    app.seed_with(
        &a,
        "2017-05-09T17:49:00Z",
        60,
        RecordingStatus::Completed,
        false,
    )
    .await;
    let keys = parse_link_keys(LINK_KEYS).unwrap();
    let exp = jiff::Timestamp::now().as_second() + 3600;
    let a_link = sign_link(&keys[0], &a, &mine.sid, exp).query();
    let own = Thing {
        label: "A's own",
        call: call_of(&app, &mine.sid).await,
        rec: mine.sid.to_string(),
        account: a.to_string(),
        incident: "2017-05-09".into(),
    };
    World {
        a_key: key(&app, &a, false).await,
        b_key: key(&app, &b, false).await,
        app,
        a,
        b,
        a_link,
        own,
    }
}

async fn call_of(app: &TestApp, sid: &RecordingSid) -> String {
    app.catalog
        .get(sid)
        .await
        .unwrap()
        .and_then(|r| r.call_sid)
        .map_or_else(|| random_sid::<String>("CA"), |c| c.to_string())
}

fn unknown() -> Thing {
    Thing {
        label: "nothing",
        rec: random_sid("RE"),
        call: random_sid("CA"),
        account: random_sid("AC"),
        incident: format!("no-such-incident-{}", uuid::Uuid::new_v4().simple()),
    }
}

/// B's recordings in every state, one B-scoped incident, and audio that
/// the catalog does not know of.
async fn seed_b(w: &World) -> Vec<Thing> {
    let app = &w.app;
    let b = &w.b;
    let outside = "2017-05-09T15:00:00Z";
    let in_window = "2017-05-09T17:49:00Z";
    use RecordingStatus::*;
    let rows = [
        ("available", outside, Completed, true),
        ("lost", in_window, Completed, false),
        ("unexplained", outside, Completed, false),
        ("deleted", outside, Deleted, true),
        ("absent", outside, Absent, false),
        ("failed", outside, Failed, false),
        ("processing", outside, Processing, false),
        ("in progress", outside, InProgress, false),
        ("recovering", "2016-06-01T00:10:00Z", Completed, false),
    ];
    let mut things = Vec::new();
    for (label, start, status, stored) in rows {
        let s = app.seed_with(b, start, 60, status, stored).await;
        things.push(Thing {
            label,
            call: call_of(app, &s.sid).await,
            rec: s.sid.to_string(),
            account: b.to_string(),
            incident: String::new(),
        });
    }
    // Audio with no catalog row, under B's key.
    let stray: RecordingSid = random_sid("RE");
    for f in Format::ALL {
        let key = app.layout.render(Some(b), &stray, f);
        app.put_object(&key, &crate::helpers::audio_bytes(1_000))
            .await;
    }
    let listed: RecordingSid = random_sid("RE");
    for (label, rec) in [("stray audio", &stray), ("listed only", &listed)] {
        things.push(Thing {
            label,
            rec: rec.to_string(),
            call: random_sid("CA"),
            account: b.to_string(),
            incident: String::new(),
        });
    }
    // An incident that concerns B only, listing two of its sids.
    let incident = format!("b-only-{}", uuid::Uuid::new_v4().simple());
    let recovering = things.iter().find(|t| t.label == "recovering").unwrap();
    let res = app
        .client
        .post(app.url("/admin/incidents"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({
            "id": incident, "title": "B's own trouble", "status": "investigating",
            "outcome": "lost", "time_zone": "UTC", "starts": "2016-06-01T00:00:00",
            "ends": "2016-06-01T01:00:00", "match_on": "end", "summary": "B only.",
            "impact": "Some of B's were lost.", "what_to_do": "Nothing.",
            "accounts": [b.to_string()],
            "recordings": [recovering.rec, listed.to_string()],
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{:?}", res.text().await);
    for t in &mut things {
        t.incident.clone_from(&incident);
    }
    things
}

/// The routes and methods the router answers (anything but 405).
async fn routable(w: &World) -> Vec<(&'static str, Method)> {
    let mut out = Vec::new();
    for (template, _) in playback_gateway::http::routes() {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let req = &requests(&[(template, method.clone())], &w.own, &w.own)[0];
            let res = send(w, req, Viewer::Nobody).await;
            if res.status() != reqwest::StatusCode::METHOD_NOT_ALLOWED {
                out.push((template, method.clone()));
                if method == Method::GET {
                    out.push((template, Method::HEAD));
                }
            }
        }
    }
    for (route, _) in NOT_VIEWS {
        assert!(
            out.iter().any(|(t, _)| *t == route),
            "{route} is no route any more"
        );
    }
    out.retain(|(t, _)| !NOT_VIEWS.iter().any(|(r, _)| r == t));
    assert!(out.len() > 30, "{out:?}");
    out
}

/// Every request the routes make naming `t`; `{account}` also takes the
/// caller's own account.
fn requests(routes: &[(&'static str, Method)], t: &Thing, own: &Thing) -> Vec<Req> {
    let mut out = Vec::new();
    for (template, method) in routes {
        let mut paths = vec![template.to_string()];
        let segments = template
            .split('/')
            .filter(|s| s.starts_with('{'))
            .collect::<Vec<_>>();
        for placeholder in segments {
            let values: Vec<String> = match placeholder {
                "{name}" => ["", ".mp3", ".wav", ".json"]
                    .iter()
                    .map(|ext| format!("{}{ext}", t.rec))
                    .collect(),
                "{account}" => vec![t.account.clone(), own.account.clone()],
                "{call}" => vec![t.call.clone()],
                "{sid}" => vec![t.rec.clone()],
                "{id}" => vec![t.incident.clone(), format!("{}.json", t.incident)],
                "{list}" => ["recordings", "recordings.json", "recordings.csv"]
                    .iter()
                    .map(|l| format!("{l}?date=2017-05-09"))
                    .collect(),
                "{n}" => vec!["1".into()],
                "{file}" => vec!["player.js".into()],
                other => panic!(
                    "{template}: teach the isolation test what {other} names (a recording, an account, …)"
                ),
            };
            paths = paths
                .iter()
                .flat_map(|p| values.iter().map(move |v| p.replacen(placeholder, v, 1)))
                .collect();
        }
        for path in paths {
            let body = (*method != Method::GET && *method != Method::HEAD)
                .then(|| json!({"recording_sid": t.rec, "sid": t.rec, "account_sid": t.account}));
            out.push(Req {
                method: method.clone(),
                path,
                body,
            });
        }
    }
    out
}

async fn send(w: &World, req: &Req, viewer: Viewer) -> reqwest::Response {
    let path = match viewer {
        Viewer::LinkA => {
            let sep = if req.path.contains('?') { '&' } else { '?' };
            format!("{}{sep}{}", req.path, w.a_link)
        }
        _ => req.path.clone(),
    };
    let mut r = w.app.client.request(req.method.clone(), w.app.url(&path));
    r = match viewer {
        Viewer::Nobody | Viewer::LinkA => r,
        Viewer::KeyA => r.basic_auth(&w.a, Some(&w.a_key)),
        Viewer::Bad => r.bearer_auth("pgw_not-a-key-anyone-was-given"),
        Viewer::KeyB => r.bearer_auth(&w.b_key),
        Viewer::Admin => r.bearer_auth(ADMIN_TOKEN),
    };
    if let Some(b) = &req.body {
        r = r.json(b);
    }
    r.send().await.unwrap()
}

/// What `viewer` sees at `req`, with `t`'s names blanked out.
async fn view(w: &World, req: &Req, viewer: Viewer, t: &Thing) -> Seen {
    let res = send(w, req, viewer).await;
    let blank = |s: &str| {
        t.names()
            .iter()
            .filter(|n| !n.is_empty())
            .fold(s.to_owned(), |s, n| s.replace(n, "…"))
    };
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
        .map(|(k, v)| {
            let v = match k.as_str() {
                // Derived from the body, which is compared below.
                "etag" | "last-modified" => "(present)".to_owned(),
                _ => blank(v.to_str().unwrap_or("(binary)")),
            };
            (k.to_string(), v)
        })
        .collect();
    let body = blank(&String::from_utf8_lossy(&res.bytes().await.unwrap()));
    Seen {
        status,
        headers,
        body,
    }
}

/// Every request by every viewer, a few at a time, in order.
async fn views(w: &World, reqs: &[Req], viewers: &[Viewer], t: &Thing) -> Vec<(Req, Viewer, Seen)> {
    let all: Vec<(Req, Viewer)> = reqs
        .iter()
        .flat_map(|r| viewers.iter().map(move |v| (r.clone(), *v)))
        .collect();
    futures_util::stream::iter(all)
        .map(|(req, viewer)| async move {
            let seen = view(w, &req, viewer, t).await;
            (req, viewer, seen)
        })
        .buffered(8)
        .collect()
        .await
}
