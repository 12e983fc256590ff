//! Conditional requests: 304, 412 and If-Range, on both backends.

use playback_gateway::keys::Format;
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, spawn_app};

both_backends!(
    if_none_match_gives_304_with_validators,
    if_modified_since_gives_304,
    if_match_mismatch_gives_412,
    if_unmodified_since_in_the_past_gives_412,
    if_range_with_the_current_etag_honours_the_range,
    if_range_with_a_stale_validator_sends_everything,
);

async fn validators(app: &TestApp, path: &str) -> (String, String) {
    let res = app.head(path).send().await.unwrap();
    (
        res.headers()["etag"].to_str().unwrap().to_string(),
        res.headers()["last-modified"].to_str().unwrap().to_string(),
    )
}

async fn if_none_match_gives_304_with_validators(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(2_000).await;
    let path = rec.path(Format::Wav);
    let (etag, _) = validators(&app, &path).await;
    for inm in [
        etag.clone(),
        format!("W/{etag}"),
        "*".into(),
        format!("\"x\", {etag}"),
    ] {
        let res = app
            .get(&path)
            .header("if-none-match", &inm)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{inm}");
        assert_eq!(res.headers()["etag"], etag.as_str());
        assert_eq!(res.headers()["cache-control"], "private, no-cache");
        assert!(res.bytes().await.unwrap().is_empty());
    }
    let res = app
        .get(&path)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), rec.bytes);
}

async fn if_modified_since_gives_304(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(2_000).await;
    let path = rec.path(Format::Wav);
    let (_, lm) = validators(&app, &path).await;
    let res = app
        .get(&path)
        .header("if-modified-since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let long_ago = "Tue, 09 May 2017 17:48:00 GMT";
    let res = app
        .get(&path)
        .header("if-modified-since", long_ago)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .get(&path)
        .header("if-modified-since", "garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "an invalid date is ignored");
}

async fn if_match_mismatch_gives_412(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(2_000).await;
    let path = rec.path(Format::Wav);
    let (etag, _) = validators(&app, &path).await;
    let res = app
        .get(&path)
        .header("if-match", "\"nope\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    crate::helpers::problem(res).await;
    let res = app
        .get(&path)
        .header("if-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), rec.bytes);
}

async fn if_unmodified_since_in_the_past_gives_412(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(2_000).await;
    let path = rec.path(Format::Wav);
    let res = app
        .get(&path)
        .header("if-unmodified-since", "Tue, 09 May 2017 17:48:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let (_, lm) = validators(&app, &path).await;
    let res = app
        .get(&path)
        .header("if-unmodified-since", &lm)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn if_range_with_the_current_etag_honours_the_range(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(2_000).await;
    let path = rec.path(Format::Wav);
    let (etag, lm) = validators(&app, &path).await;
    for validator in [etag, lm] {
        let res = app
            .get(&path)
            .header("range", "bytes=100-199")
            .header("if-range", &validator)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{validator}");
        assert_eq!(res.bytes().await.unwrap(), rec.bytes[100..200]);
    }
}

async fn if_range_with_a_stale_validator_sends_everything(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(2_000).await;
    let path = rec.path(Format::Wav);
    for stale in ["\"old\"", "Tue, 09 May 2017 17:48:00 GMT", "nonsense"] {
        let res = app
            .get(&path)
            .header("range", "bytes=100-199")
            .header("if-range", stale)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{stale}");
        assert!(res.headers().get("content-range").is_none());
        assert_eq!(res.bytes().await.unwrap(), rec.bytes);
    }
}
