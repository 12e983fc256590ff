//! A recording's account never changes once the catalog knows it: every
//! write path (the JSON API with a key or the admin token, an import file,
//! a signed callback, another replica) tries to take or change another
//! account's row and fails without changing it, on both catalogs.

use playback_gateway::catalog::{Account, Recording, RecordingStatus};
use playback_gateway::config::Secret;
use playback_gateway::import::{FileFormat, import_file};
use playback_gateway::sid::{AccountSid, RecordingSid};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::access::key;
use crate::helpers::{ADMIN_TOKEN, Backend, Options, Seeded, TestApp, random_sid, spawn_app_with};

crate::both_catalogs!(
    the_json_api_cannot_take_another_accounts_recording,
    an_import_cannot_take_another_accounts_recording,
    a_callback_for_another_accounts_sid_changes_nothing_and_says_nothing,
    another_replica_cannot_take_it_either
);

async fn closed(b: Backend) -> TestApp {
    spawn_app_with(
        b,
        Options {
            open: false,
            ..Options::default()
        },
    )
    .await
}

/// B's completed, stored recording, and what the catalog holds of it.
async fn bs_recording(app: &TestApp) -> (Seeded, Recording) {
    let b: AccountSid = random_sid("AC");
    let s = app
        .seed_with(
            &b,
            "2017-05-09T15:00:00Z",
            60,
            RecordingStatus::Completed,
            true,
        )
        .await;
    let row = app.catalog.get(&s.sid).await.unwrap().unwrap();
    (s, row)
}

/// B's row is as it was, and B still plays it.
async fn unchanged(app: &TestApp, s: &Seeded, before: &Recording, b_key: Option<&str>) {
    let now = app.catalog.get(&s.sid).await.unwrap().unwrap();
    assert_eq!(&now, before, "B's row must not change");
    if let Some(k) = b_key {
        let res = app
            .get(&format!("/recordings/{}.mp3", s.sid))
            .bearer_auth(k)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "B still plays it");
    }
}

fn taking(sid: &RecordingSid, account: &AccountSid) -> Value {
    json!({"sid": sid, "account_sid": account, "status": "deleted",
           "start_time": "2017-05-09T15:00:00Z", "duration": "1"})
}

async fn post_recordings(app: &TestApp, auth: &str, body: &Value) -> Value {
    let res = app
        .client
        .post(app.url("/api/recordings"))
        .header("authorization", auth)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn the_json_api_cannot_take_another_accounts_recording(b: Backend) {
    let app = closed(b).await;
    let (s, before) = bs_recording(&app).await;
    let b_key = key(&app, &s.account, false).await;
    let a: AccountSid = random_sid("AC");
    let a_key = key(&app, &a, false).await;
    let fresh: RecordingSid = random_sid("RE");
    // A's key: B's sid refused, A's new one stored, in one batch.
    let body = post_recordings(
        &app,
        &format!("Bearer {a_key}"),
        &json!([taking(&s.sid, &a), taking(&fresh, &a)]),
    )
    .await;
    assert_eq!(body["results"][0]["result"], "error", "{body}");
    let why = body["results"][0]["error"].as_str().unwrap();
    assert!(why.contains("already in use"), "{why}");
    assert!(!why.contains(s.account.as_str()), "never whose: {why}");
    assert_eq!(body["results"][1]["result"], "stored", "{body}");
    unchanged(&app, &s, &before, Some(&b_key)).await;
    // A still cannot see it: as unknown as before.
    let res = app
        .get(&format!("/recordings/{}.json", s.sid))
        .bearer_auth(&a_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Nor can the admin move a recording between accounts.
    let body = post_recordings(
        &app,
        &format!("Bearer {ADMIN_TOKEN}"),
        &json!([taking(&s.sid, &a)]),
    )
    .await;
    assert_eq!(body["results"][0]["result"], "error", "{body}");
    unchanged(&app, &s, &before, Some(&b_key)).await;
    // What B writes of its own still lands.
    let mut own = taking(&s.sid, &s.account);
    own["status"] = json!("deleted");
    let body = post_recordings(&app, &format!("Bearer {b_key}"), &json!([own])).await;
    assert_eq!(body["results"][0]["result"], "stored", "{body}");
}

async fn an_import_cannot_take_another_accounts_recording(b: Backend) {
    let app = closed(b).await;
    let (s, before) = bs_recording(&app).await;
    let a: AccountSid = random_sid("AC");
    let fresh: RecordingSid = random_sid("RE");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recordings.jsonl");
    let lines = [taking(&s.sid, &a), taking(&fresh, &a), taking(&s.sid, &a)]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, lines).unwrap();
    let summary = import_file(
        &app.catalog,
        &file,
        FileFormat::Jsonl,
        indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap();
    assert_eq!(summary.foreign_count, 2, "{summary:?}");
    assert_eq!(summary.foreign, vec![s.sid.clone(), s.sid.clone()]);
    assert_eq!(summary.imported, 1, "{summary:?}");
    unchanged(&app, &s, &before, None).await;
    assert_eq!(
        app.catalog.get(&fresh).await.unwrap().unwrap().account_sid,
        a
    );
}

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/twilio_signatures.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn callback(app: &TestApp, case: &Value) -> reqwest::Response {
    let params: Vec<(String, String)> = case["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    app.client
        .post(app.url("/webhooks/twilio/recording-status"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", case["signature"].as_str().unwrap())
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn a_callback_for_another_accounts_sid_changes_nothing_and_says_nothing(b: Backend) {
    // The fixture's callbacks are signed (by Python, not by us) with
    // account F's token, for one recording sid. Here that sid is B's.
    let f = fixture();
    let fa: AccountSid = f["account_sid"].as_str().unwrap().parse().unwrap();
    let with_f = || async {
        let app = closed(b).await;
        app.catalog
            .upsert_account(&Account {
                sid: fa.clone(),
                name: None,
                auth_token: Some(Secret::new(f["auth_token"].as_str().unwrap())),
                time_zone: None,
            })
            .await
            .unwrap();
        app
    };
    let app = with_f().await;
    let sid: RecordingSid = f["recording_sid"].as_str().unwrap().parse().unwrap();
    let other: AccountSid = random_sid("AC");
    let mut theirs = crate::helpers::recording(
        &other,
        &sid,
        "2017-05-09T15:00:00Z",
        60,
        RecordingStatus::Processing,
    );
    theirs.call_sid = None;
    app.catalog.upsert(&theirs).await.unwrap();
    let before = app.catalog.get(&sid).await.unwrap().unwrap();
    let foreign = callback(&app, &f["completed"]).await;
    let status = foreign.status();
    let headers = foreign
        .headers()
        .keys()
        .filter(|k| !matches!(k.as_str(), "date" | "x-request-id"))
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    let body = foreign.text().await.unwrap();
    assert_eq!(app.catalog.get(&sid).await.unwrap().unwrap(), before);

    // The same callback where nobody has the sid: the same answer, stored.
    let fresh = with_f().await;
    let known = callback(&fresh, &f["completed"]).await;
    assert_eq!(status, known.status(), "no existence oracle");
    assert_eq!(status, StatusCode::NO_CONTENT);
    let known_headers = known
        .headers()
        .keys()
        .filter(|k| !matches!(k.as_str(), "date" | "x-request-id"))
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert_eq!(headers, known_headers);
    assert_eq!(body, known.text().await.unwrap());
    assert_eq!(
        fresh.catalog.get(&sid).await.unwrap().unwrap().account_sid,
        fa
    );
}

async fn another_replica_cannot_take_it_either(b: Backend) {
    let first = closed(b).await;
    let second = spawn_app_with(
        b,
        Options {
            open: false,
            replica_of: Some(first.store()),
            ..Options::default()
        },
    )
    .await;
    let (s, before) = bs_recording(&first).await;
    let b_key = key(&first, &s.account, false).await;
    let a: AccountSid = random_sid("AC");
    let a_key = key(&first, &a, false).await;
    let body = post_recordings(
        &second,
        &format!("Bearer {a_key}"),
        &json!([taking(&s.sid, &a)]),
    )
    .await;
    assert_eq!(body["results"][0]["result"], "error", "{body}");
    unchanged(&first, &s, &before, Some(&b_key)).await;
    unchanged(&second, &s, &before, Some(&b_key)).await;
}
