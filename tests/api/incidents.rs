//! Incident pages and the admin API.

use playback_gateway::catalog::RecordingStatus;
use playback_gateway::incidents::registry::Registry;
use playback_gateway::keys::Format;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, Seeded, TestApp, random_sid, spawn_app};

crate::both_catalogs!(
    the_2017_05_09_page_counts_and_lists_the_lost,
    an_admin_incident_explains_at_once_and_persists
);

async fn seed_missing(app: &TestApp, start: &str, secs: u32) -> Seeded {
    let account = random_sid("AC");
    app.seed_with(&account, start, secs, RecordingStatus::Completed, false)
        .await
}

async fn verdict_of(app: &TestApp, s: &Seeded) -> (StatusCode, Value) {
    let res = app
        .get(&s.path(Format::Mp3))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

fn spec(id: &str, starts: &str, ends: &str) -> Value {
    json!({
        "id": id,
        "title": "Storage node failure",
        "status": "recovering",
        "outcome": "partially lost",
        "time_zone": "Europe/Berlin",
        "starts": starts,
        "ends": ends,
        "match_on": "end",
        "summary": "A storage node failed.",
        "impact": "Some recordings are missing.",
        "what_to_do": "Wait for the recovery.",
    })
}

async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn the_2017_05_09_page_counts_and_lists_the_lost(b: Backend) {
    let app = spawn_app(b).await;
    let lost = seed_missing(&app, "2017-05-09T17:55:00Z", 120).await;
    let kept = app.seed(100).await; // 08:00 PDT, outside the window
    let fine_in_window = Seeded {
        account: kept.account.clone(),
        sid: random_sid("RE"),
        bytes: vec![1, 2, 3],
    };
    for f in Format::ALL {
        app.put_object(&app.key(&fine_in_window, f), &fine_in_window.bytes)
            .await;
    }
    let mut rec = app.catalog.get(&kept.sid).await.unwrap().unwrap();
    rec.sid = fine_in_window.sid.clone();
    rec.start_time = Some("2017-05-09T18:00:00Z".parse().unwrap());
    app.catalog.upsert(&rec).await.unwrap();

    let body: Value = app
        .get("/incidents/2017-05-09")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["counts"]["matched"], 2);
    assert_eq!(body["counts"]["lost"], 1);
    assert_eq!(body["counts"]["available"], 1);
    assert_eq!(body["affected"][0]["sid"], lost.sid.as_str());
    assert_eq!(body["definition"]["communicated"], "2017-05-11");

    let html = app
        .get("/incidents/2017-05-09")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    let html = html.text().await.unwrap();
    for fact in [
        "Incident 2017-05-09",
        "2017-05-09 10:48–11:31 PDT",
        "2017-05-09 17:48–18:31 UTC",
        "<strong>1</strong> lost",
        "Programmable Voice Recording",
        "2017-05-11",
        "id=\"rca\"",
        lost.sid.as_str(),
        "safety flag",
    ] {
        assert!(html.contains(fact), "missing {fact:?}");
    }
    assert!(
        !html.contains(fine_in_window.sid.as_str()),
        "only the affected are listed"
    );

    let csv = app
        .get("/incidents/2017-05-09/affected.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[0].starts_with("recording_sid,call_sid,account_sid,start_time,end_time,time_zone")
    );
    assert!(
        lines[1].contains("2017-05-09 10:55:00,2017-05-09 10:57:00,America/Los_Angeles"),
        "{csv}"
    );

    let list: Value = app
        .get("/incidents")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["incidents"][0]["id"], "2017-05-09");
    let res = app.get("/incidents/nope").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn an_admin_incident_explains_at_once_and_persists(b: Backend) {
    let app = spawn_app(b).await;
    // A call ending 2020-03-02 10:30 Berlin time (09:30 UTC), audio missing.
    let rec = seed_missing(&app, "2020-03-02T09:29:00Z", 60).await;
    assert_eq!(verdict_of(&app, &rec).await.1["verdict"], "unexplained");

    let res = admin(
        &app,
        reqwest::Method::POST,
        "/admin/incidents",
        Some(spec(
            "2020-03-02-node",
            "2020-03-02T10:00:00",
            "2020-03-02T11:00:00",
        )),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["location"], "/incidents/2020-03-02-node");
    let (status, body) = verdict_of(&app, &rec).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "still recovering: {body}"
    );
    assert_eq!(body["verdict"], "recovering");
    assert_eq!(
        body["incident"]["window"]["local"],
        "2020-03-02 10:00–11:00 CET"
    );

    // Resolved as a loss: 410.
    let res = admin(
        &app,
        reqwest::Method::POST,
        "/admin/incidents/2020-03-02-node/resolve",
        Some(json!({"outcome": "lost"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (status, body) = verdict_of(&app, &rec).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["incident"]["id"], "2020-03-02-node");

    // Edited to a narrower window that no longer covers the call.
    let mut narrower = spec(
        "2020-03-02-node",
        "2020-03-02T10:45:00",
        "2020-03-02T11:00:00",
    );
    narrower["status"] = json!("resolved");
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/admin/incidents/2020-03-02-node",
        Some(narrower),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(verdict_of(&app, &rec).await.1["verdict"], "unexplained");

    // Stored: a registry loaded afresh (a restart) still has it.
    let again = Registry::load(app.catalog.clone(), None).await.unwrap();
    let stored = again.get("2020-03-02-node").unwrap();
    assert_eq!(stored.spec.starts, "2020-03-02T10:45:00");
}

#[tokio::test]
async fn the_admin_api_refuses_what_it_should() {
    let app = spawn_app(Backend::Local).await;
    let good = spec("x-1", "2020-03-02T10:00:00", "2020-03-02T11:00:00");
    // No token, wrong token.
    let res = app
        .client
        .post(app.url("/admin/incidents"))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("Bearer") && challenge.contains("Basic"),
        "{challenge}"
    );
    let res = app
        .client
        .post(app.url("/admin/incidents"))
        .bearer_auth("test-admin-token-0123456788")
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Garbage bodies.
    for body in ["", "{", "[]", "{\"id\": 3}", "null"] {
        let res = app
            .client
            .post(app.url("/admin/incidents"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body:?}");
        crate::helpers::problem(res).await;
    }
    // Invalid fields are named.
    let mut bad = good.clone();
    bad["time_zone"] = json!("Mars/Olympus");
    let res = admin(&app, reqwest::Method::POST, "/admin/incidents", Some(bad)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        crate::helpers::problem(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("time_zone")
    );
    let mut xss = good.clone();
    xss["links"] = json!([{"title": "x", "href": "javascript:alert(1)"}]);
    let res = admin(&app, reqwest::Method::POST, "/admin/incidents", Some(xss)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Duplicates, the shipped file incident, unknown ids, id mismatch.
    assert_eq!(
        admin(
            &app,
            reqwest::Method::POST,
            "/admin/incidents",
            Some(good.clone())
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        admin(
            &app,
            reqwest::Method::POST,
            "/admin/incidents",
            Some(good.clone())
        )
        .await
        .status(),
        StatusCode::CONFLICT
    );
    let mut may9 = good.clone();
    may9["id"] = json!("2017-05-09");
    assert_eq!(
        admin(
            &app,
            reqwest::Method::PUT,
            "/admin/incidents/2017-05-09",
            Some(may9)
        )
        .await
        .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        admin(
            &app,
            reqwest::Method::POST,
            "/admin/incidents/none/resolve",
            None
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin(
            &app,
            reqwest::Method::PUT,
            "/admin/incidents/other",
            Some(good.clone())
        )
        .await
        .status(),
        StatusCode::BAD_REQUEST
    );
    let res = admin(
        &app,
        reqwest::Method::POST,
        "/admin/incidents/x-1/resolve",
        Some(json!({"outcome": "gone"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn html_is_escaped_everywhere() {
    let app = spawn_app(Backend::Local).await;
    let mut evil = spec("evil", "2020-03-02T10:00:00", "2020-03-02T11:00:00");
    evil["title"] = json!("<script>alert(1)</script>");
    evil["summary"] = json!("<img src=x onerror=alert(1)>");
    assert_eq!(
        admin(&app, reqwest::Method::POST, "/admin/incidents", Some(evil))
            .await
            .status(),
        StatusCode::CREATED
    );
    for path in ["/incidents", "/incidents/evil"] {
        let html = app
            .get(path)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(!html.contains("<img src=x"), "{path}");
        assert!(
            html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"),
            "{path}"
        );
    }
}

/// Impact export for account managers: per account, in the account's zone.
#[tokio::test]
async fn an_incident_lists_its_impact_per_account_in_each_accounts_zone() {
    use playback_gateway::catalog::Account;
    use playback_gateway::sid::AccountSid;
    let app = crate::helpers::spawn_app_with(
        Backend::Local,
        crate::helpers::Options {
            open: false,
            ..Default::default()
        },
    )
    .await;
    let (a, b): (AccountSid, AccountSid) = (random_sid("AC"), random_sid("AC"));
    app.catalog
        .upsert_account(&Account {
            sid: a.clone(),
            name: Some("Acme Berlin".into()),
            auth_token: None,
            time_zone: Some("Europe/Berlin".into()),
        })
        .await
        .unwrap();
    // Calls ending 18:00 UTC on 2017-05-09, inside the shipped incident.
    let lost_a = app
        .seed_with(
            &a,
            "2017-05-09T17:59:00Z",
            60,
            RecordingStatus::Completed,
            false,
        )
        .await;
    app.seed_with(
        &a,
        "2017-05-09T18:09:00Z",
        60,
        RecordingStatus::Completed,
        false,
    )
    .await;
    let lost_b = app
        .seed_with(
            &b,
            "2017-05-09T17:59:00Z",
            60,
            RecordingStatus::Completed,
            false,
        )
        .await;
    let admin = |p: &str| app.get(p).bearer_auth(ADMIN_TOKEN);

    // The admin's overview: every account, with links to each one's export.
    let page = admin("/incidents/2017-05-09")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("By account"), "{page}");
    assert!(page.contains(&format!("Acme Berlin ({a})")), "{page}");
    assert!(
        page.contains(&format!("/incidents/2017-05-09/affected.csv?account={b}")),
        "{page}"
    );
    let json: Value = admin("/incidents/2017-05-09.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = json["by_account"].as_array().unwrap();
    let row_a = rows
        .iter()
        .find(|r| r["account_sid"] == a.as_str())
        .unwrap();
    assert_eq!(
        (row_a["lost"].as_u64(), row_a["name"].as_str()),
        (Some(2), Some("Acme Berlin"))
    );

    // One account's export, in its own zone (CEST: UTC+2).
    let res = admin(&format!("/incidents/2017-05-09/affected.csv?account={a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.contains(a.as_str()), "{disposition}");
    let csv = res.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains(&format!("{},", lost_a.sid)), "{csv}");
    assert!(!csv.contains(lost_b.sid.as_str()), "{csv}");
    assert!(csv.contains("2017-05-09 19:59:00"), "{csv}");
    assert!(csv.contains("Europe/Berlin"), "{csv}");
    let page = admin(&format!("/incidents/2017-05-09?account={a}"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Start (Europe/Berlin)"), "{page}");
    assert!(!page.contains("By account"), "{page}");

    // An account's own key: its own recordings, its zone (none set: the
    // incident's); another account's answers as a non-existent one.
    let key_b = crate::access::key(&app, &b, true).await;
    let csv = app
        .get("/incidents/2017-05-09/affected.csv")
        .bearer_auth(&key_b)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains(lost_b.sid.as_str()) && !csv.contains(lost_a.sid.as_str()),
        "{csv}"
    );
    assert!(csv.contains("America/Los_Angeles"), "{csv}");
    let res = app
        .get(&format!("/incidents/2017-05-09/affected.csv?account={a}"))
        .bearer_auth(&key_b)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Garbage.
    for bad in ["?account=nope", "?account=", "?account=AC00"] {
        let res = admin(&format!("/incidents/2017-05-09/affected.csv{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}
