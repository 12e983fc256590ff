//! Ingest: Twilio's signed status callbacks (signatures made by Python's
//! hmac in `tests/fixtures/twilio_signatures.py`, not by our code) and the
//! CRM's JSON API.

use playback_gateway::catalog::{Account, RecordingStatus};
use playback_gateway::config::Secret;
use playback_gateway::keys::Format;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, Seeded, TestApp, problem, spawn_app};

crate::both_catalogs!(
    signed_events_build_the_catalog_row_in_order,
    absent_and_failed_events_explain_themselves,
    forged_or_broken_callbacks_store_nothing,
    the_crm_pushes_batches_and_hears_about_each_item
);

const WEBHOOK: &str = "/webhooks/twilio/recording-status";

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/twilio_signatures.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn pairs(case: &Value) -> Vec<(String, String)> {
    case["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect()
}

async fn app_with_account(b: Backend) -> (TestApp, Value) {
    let app = spawn_app(b).await;
    let f = fixture();
    app.catalog
        .upsert_account(&Account {
            sid: f["account_sid"].as_str().unwrap().parse().unwrap(),
            name: Some("Fixture Mortgage".into()),
            auth_token: Some(Secret::new(f["auth_token"].as_str().unwrap())),
            time_zone: Some("America/Los_Angeles".into()),
        })
        .await
        .unwrap();
    (app, f)
}

async fn post(
    app: &TestApp,
    params: &[(String, String)],
    signature: Option<&str>,
) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut req = app
        .client
        .post(app.url(WEBHOOK))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(s) = signature {
        req = req.header("x-twilio-signature", s);
    }
    req.send().await.unwrap()
}

async fn send(app: &TestApp, case: &Value) -> reqwest::Response {
    post(app, &pairs(case), case["signature"].as_str()).await
}

fn seeded(f: &Value) -> Seeded {
    Seeded {
        account: f["account_sid"].as_str().unwrap().parse().unwrap(),
        sid: f["recording_sid"].as_str().unwrap().parse().unwrap(),
        bytes: crate::helpers::audio_bytes(2_000),
    }
}

async fn verdict(app: &TestApp, rec: &Seeded) -> String {
    let res = app
        .get(&format!("/recordings/{}.json", rec.sid))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["availability"]["verdict"]
        .as_str()
        .unwrap_or("?")
        .into()
}

async fn signed_events_build_the_catalog_row_in_order(b: Backend) {
    let (app, f) = app_with_account(b).await;
    let rec = seeded(&f);
    assert_eq!(
        send(&app, &f["in_progress"]).await.status(),
        StatusCode::NO_CONTENT
    );
    let row = app.catalog.get(&rec.sid).await.unwrap().unwrap();
    assert_eq!(row.status, RecordingStatus::InProgress);
    assert_eq!(verdict(&app, &rec).await, "pending");

    // The recording is uploaded, then Twilio says completed: it plays at
    // once, although the gateway had just cached "not found".
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    for format in Format::ALL {
        app.put_object(&app.key(&rec, format), &rec.bytes).await;
    }
    assert_eq!(
        send(&app, &f["completed"]).await.status(),
        StatusCode::NO_CONTENT
    );
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), rec.bytes);
    let row = app.catalog.get(&rec.sid).await.unwrap().unwrap();
    assert_eq!(row.status, RecordingStatus::Completed);
    assert_eq!(row.duration, Some(42));
    assert_eq!(row.source.as_deref(), Some("DialVerb"));

    // Twilio retries, and a late in-progress arrives: nothing moves back.
    assert_eq!(
        send(&app, &f["completed"]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, &f["in_progress"]).await.status(),
        StatusCode::NO_CONTENT
    );
    let again = app.catalog.get(&rec.sid).await.unwrap().unwrap();
    assert_eq!(again, row);
}

async fn absent_and_failed_events_explain_themselves(b: Backend) {
    let (app, f) = app_with_account(b).await;
    let rec = seeded(&f);
    assert_eq!(
        send(&app, &f["absent"]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(verdict(&app, &rec).await, "absent");
    let body: Value = app
        .get(&format!("/recordings/{}.json", rec.sid))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        body["availability"]["detail"]
            .as_str()
            .unwrap()
            .contains("silent")
    );
}

async fn forged_or_broken_callbacks_store_nothing(b: Backend) {
    let (app, f) = app_with_account(b).await;
    let rec = seeded(&f);
    let good = &f["completed"];
    let signature = good["signature"].as_str().unwrap();
    // A tampered parameter under the original signature.
    let mut tampered = pairs(good);
    for p in &mut tampered {
        if p.0 == "RecordingDuration" {
            p.1 = "4200".into();
        }
    }
    let res = post(&app, &tampered, Some(signature)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let forged = problem(res).await;
    // No signature, a signature from another token, an unknown account: the same answer.
    let res = post(&app, &pairs(good), None).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(problem(res).await, forged);
    let res = post(&app, &pairs(good), Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let mut stranger = pairs(good);
    stranger[0].1 = format!("AC{}", "9".repeat(32));
    let res = post(&app, &stranger, Some(signature)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(problem(res).await, forged);
    assert!(
        app.catalog.get(&rec.sid).await.unwrap().is_none(),
        "nothing stored"
    );

    // Properly signed but missing the status: a clear 400.
    let res = send(&app, &f["missing_status"]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        problem(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("RecordingStatus")
    );
    // Not a form, or far too big.
    let res = app
        .client
        .post(app.url(WEBHOOK))
        .header("content-type", "application/json")
        .header("x-twilio-signature", signature)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = app
        .client
        .post(app.url(WEBHOOK))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(format!(
            "AccountSid={}&Junk={}",
            f["account_sid"].as_str().unwrap(),
            "x".repeat(100_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Garbage bodies.
    for body in ["", "%%%", "&&&=", "AccountSid"] {
        let res = app
            .client
            .post(app.url(WEBHOOK))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{body:?}");
    }
    assert!(
        app.catalog.get(&rec.sid).await.unwrap().is_none(),
        "still nothing stored"
    );
}

async fn the_crm_pushes_batches_and_hears_about_each_item(b: Backend) {
    let app = spawn_app(b).await;
    let item = |n: u32, status: &str| {
        json!({"sid": format!("RE{n:032x}"), "account_sid": format!("AC{n:032x}"),
               "start_time": "Tue, 09 May 2017 16:00:00 +0000", "duration": "30", "status": status})
    };
    let batch =
        json!([item(1, "completed"), item(2, "bogus"), {"sid": "nope"}, item(3, "processing")]);
    let res = app
        .client
        .post(app.url("/api/recordings"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["stored"], 2);
    assert_eq!(body["errors"], 2);
    assert_eq!(body["results"][0]["result"], "stored");
    assert_eq!(body["results"][1]["result"], "error");
    assert!(
        body["results"][1]["error"]
            .as_str()
            .unwrap()
            .contains("bogus")
    );
    assert_eq!(body["results"][2]["index"], 2);
    // Again: unchanged.
    let body: Value = app
        .client
        .post(app.url("/api/recordings"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"recordings": [item(1, "completed")]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["results"][0]["result"], "unchanged");
    // Refusals.
    let res = app
        .client
        .post(app.url("/api/recordings"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for bad in [
        json!(3),
        json!({"x": 1}),
        json!((0..1001).map(|n| item(n, "completed")).collect::<Vec<_>>()),
    ] {
        let res = app
            .client
            .post(app.url("/api/recordings"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        problem(res).await;
    }
    let res = app
        .client
        .post(app.url("/api/recordings"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("[{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}
