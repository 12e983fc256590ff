//! Bad input, missing recordings and storage failures: clear errors, the
//! right status, and never a storage failure reported as "not found".

use std::time::Duration;

use playback_gateway::keys::Format;
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, Options, problem, random_sid, spawn_app, spawn_app_with};

both_backends!(
    garbage_sids_and_paths_get_clear_errors,
    a_recording_that_is_not_stored_is_404,
    another_accounts_recording_looks_like_no_recording,
    bad_query_values_are_400,
    request_ids_are_honoured_or_made,
);

async fn garbage_sids_and_paths_get_clear_errors(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(10).await;
    for (path, status) in [
        ("/recordings/RE123.wav", StatusCode::BAD_REQUEST),
        (
            "/recordings/..%2F..%2Fetc%2Fpasswd.wav",
            StatusCode::BAD_REQUEST,
        ),
        ("/recordings/%00.wav", StatusCode::BAD_REQUEST),
        (
            &format!("/recordings/{}.ogg", rec.sid),
            StatusCode::NOT_FOUND,
        ),
        (&format!("/recordings/{}.", rec.sid), StatusCode::NOT_FOUND),
        ("/recordings/.wav", StatusCode::BAD_REQUEST),
        (
            "/2010-04-01/Accounts/ACnope/Recordings/RE1",
            StatusCode::BAD_REQUEST,
        ),
        (
            &format!("/2010-04-01/Accounts/{}/Recordings/REzz", rec.account),
            StatusCode::BAD_REQUEST,
        ),
        ("/nothing/here", StatusCode::NOT_FOUND),
        ("/recordings/a/b/c", StatusCode::NOT_FOUND),
    ] {
        let res = app.get(path).send().await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        let body = problem(res).await;
        if status == StatusCode::BAD_REQUEST {
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.contains("32 hexadecimal digits") || detail.contains("sid"),
                "{detail}"
            );
        }
    }
    // A very long path is refused, not echoed.
    let long = format!("/recordings/{}.wav", "A".repeat(10_000));
    let res = app.get(&long).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body = res.text().await.unwrap();
    assert!(body.len() < 500, "{body}");
}

async fn a_recording_that_is_not_stored_is_404(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(10).await;
    app.delete_object(&app.key(&rec, Format::Mp3)).await;
    let res = app
        .get(&rec.path(Format::Mp3))
        .header("accept", "application/problem+json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    problem(res).await;
    // The other format is still there.
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Unknown to catalog and storage alike.
    let unknown: playback_gateway::sid::RecordingSid = random_sid("RE");
    let res = app
        .get(&format!("/recordings/{unknown}.wav"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn another_accounts_recording_looks_like_no_recording(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(10).await;
    let other: playback_gateway::sid::AccountSid = random_sid("AC");
    let theirs = app
        .get(&format!(
            "/2010-04-01/Accounts/{other}/Recordings/{}",
            rec.sid
        ))
        .send()
        .await
        .unwrap();
    let unknown: playback_gateway::sid::RecordingSid = random_sid("RE");
    let nothing = app
        .get(&format!(
            "/2010-04-01/Accounts/{other}/Recordings/{unknown}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    assert_eq!(theirs.status(), nothing.status());
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
    assert_eq!(names(&theirs), names(&nothing));
    assert_eq!(theirs.text().await.unwrap(), nothing.text().await.unwrap());
}

async fn bad_query_values_are_400(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(10).await;
    let res = app
        .get(&format!("{}?download=maybe", rec.path(Format::Wav)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        problem(res).await["detail"]
            .as_str()
            .unwrap()
            .contains("download")
    );
    let res = app
        .get(&format!("{}?download=%ZZ&x=%FF", rec.path(Format::Wav)))
        .send()
        .await
        .unwrap();
    assert!(res.status() == StatusCode::BAD_REQUEST || res.status() == StatusCode::OK);
}

async fn request_ids_are_honoured_or_made(b: Backend) {
    let app = spawn_app(b).await;
    let res = app
        .get("/healthz")
        .header("x-request-id", "crm-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "crm-123");
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 36);
    let res = app
        .get("/healthz")
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a b\tc");
}

/// S3 only: the store's failure modes, which a directory cannot produce.
#[tokio::test]
async fn s3_down_is_503_with_retry_after_never_404() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = spawn_app_with(
        Backend::S3,
        Options {
            s3_endpoint: Some(format!("http://127.0.0.1:{port}")),
            ..Options::default()
        },
    )
    .await;
    let rec = crate::helpers::Seeded {
        account: random_sid("AC"),
        sid: random_sid("RE"),
        bytes: vec![],
    };
    // The catalog knows it, and its call ended inside the 2017-05-09
    // window: with storage down, it must still never be called lost.
    let rec_row = crate::helpers::recording(
        &rec.account,
        &rec.sid,
        "2017-05-09T17:49:00Z",
        60,
        playback_gateway::catalog::RecordingStatus::Completed,
    );
    app.catalog.upsert(&rec_row).await.unwrap();
    for _ in 0..2 {
        let res = app
            .get(&format!("{}.mp3", rec.twilio_path()))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "7");
        let body = problem(res).await;
        assert_eq!(body["type"], "/problems/storage_unavailable");
        assert!(
            !body.to_string().contains(&port.to_string()),
            "no internals: {body}"
        );
    }
    let ready = app.get("/readyz").send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn s3_wrong_credentials_are_502_not_404() {
    let app = spawn_app_with(
        Backend::S3,
        Options {
            s3_secret: Some("wrong-secret".into()),
            ..Options::default()
        },
    )
    .await;
    let rec = app.seed(10).await;
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let body = problem(res).await;
    assert_eq!(body["type"], "/problems/storage_misconfigured");
}

#[tokio::test]
async fn s3_missing_bucket_is_502_not_404() {
    let app = spawn_app_with(
        Backend::S3,
        Options {
            bucket_exists: false,
            ..Options::default()
        },
    )
    .await;
    let account: playback_gateway::sid::AccountSid = random_sid("AC");
    let sid: playback_gateway::sid::RecordingSid = random_sid("RE");
    let res = app
        .get(&format!("/2010-04-01/Accounts/{account}/Recordings/{sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn a_wrong_method_is_405_problem_with_allow() {
    let app = spawn_app(Backend::Local).await;
    let res = app
        .client
        .delete(app.url("/incidents"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(res.headers().get("allow").is_some(), "{:?}", res.headers());
    problem(res).await;
}
