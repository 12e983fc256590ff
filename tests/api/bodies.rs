//! Recent recordings kept in memory (`--body-cache-size`): a replay and
//! the seeks into a recording just played are answered without a store
//! request, byte for byte; a body cut short is never kept; a replaced
//! object plays its new bytes; with the cache off, every play reads the
//! store. Counted at a proxy in front of a real SeaweedFS.

use std::sync::atomic::Ordering;

use playback_gateway::keys::Format;
use playback_gateway::storage::BodyCacheConfig;
use reqwest::StatusCode;

use crate::faults::{Fault, FaultProxy, app_behind_proxy_with};
use crate::helpers::{ADMIN_TOKEN, Options, TestApp};

async fn play(app: &TestApp, path: &str, range: Option<&str>) -> (StatusCode, Vec<u8>) {
    let mut req = app.get(path);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.bytes().await.unwrap().to_vec())
}

fn store_requests(proxy: &FaultProxy) -> usize {
    proxy.requests.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_replay_and_seeks_are_answered_from_memory_byte_for_byte() {
    let (app, proxy) = app_behind_proxy_with(Options::default()).await;
    let rec = app.seed(300_000).await;
    let path = rec.path(Format::Wav);

    // The player's first request: all of it, as `bytes=0-`.
    let (status, body) = play(&app, &path, Some("bytes=0-")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, rec.bytes);
    let after_first = store_requests(&proxy);

    assert_eq!(
        play(&app, &path, None).await,
        (StatusCode::OK, rec.bytes.clone())
    );
    for (range, want) in [
        ("bytes=1000-70999", &rec.bytes[1000..71_000]),
        ("bytes=-500", &rec.bytes[299_500..]),
        ("bytes=299999-", &rec.bytes[299_999..]),
    ] {
        let (status, body) = play(&app, &path, Some(range)).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(body, want, "{range}");
    }
    let (status, body) = play(&app, &path, Some("bytes=0-9,100-109")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    for part in [&rec.bytes[0..10], &rec.bytes[100..110]] {
        assert!(
            body.windows(10).any(|w| w == part),
            "each part is in the body"
        );
    }
    assert_eq!(
        store_requests(&proxy),
        after_first,
        "nothing after the first play reached the store"
    );

    // The store failing meanwhile: what is kept still plays (its metadata
    // is within its TTL), never a "storage unavailable".
    proxy.set(Fault::Error500);
    assert_eq!(
        play(&app, &path, None).await,
        (StatusCode::OK, rec.bytes.clone())
    );
    proxy.set(Fault::Pass);
}

#[tokio::test]
async fn a_body_cut_short_is_not_kept() {
    let (app, proxy) = app_behind_proxy_with(Options::default()).await;
    let rec = app.seed(1_000_000).await;
    let path = rec.path(Format::Mp3);
    // The listener gets every byte (the read is resumed where the store
    // cut it), but the copy made along the way has a hole: not kept.
    proxy.next_gets(&[Fault::Truncate(100_000)]);
    assert_eq!(
        play(&app, &path, None).await,
        (StatusCode::OK, rec.bytes.clone())
    );

    let before = store_requests(&proxy);
    assert_eq!(
        play(&app, &path, None).await,
        (StatusCode::OK, rec.bytes.clone())
    );
    assert!(store_requests(&proxy) > before, "read from the store again");
    let before = store_requests(&proxy);
    assert_eq!(
        play(&app, &path, None).await,
        (StatusCode::OK, rec.bytes.clone())
    );
    assert_eq!(store_requests(&proxy), before, "kept once whole");
}

#[tokio::test]
async fn a_replaced_recording_plays_its_new_bytes() {
    let (app, _proxy) = app_behind_proxy_with(Options::default()).await;
    let rec = app.seed(50_000).await;
    let path = rec.path(Format::Wav);
    assert_eq!(play(&app, &path, None).await.1, rec.bytes);

    let new_bytes = crate::helpers::audio_bytes(60_000);
    app.put_object(&app.key(&rec, Format::Wav), &new_bytes)
        .await;
    // What the metadata cache knew is forgotten (as a recording webhook or
    // an admin flush does); the kept body goes with it.
    let res = app
        .client
        .delete(format!("http://{}/admin/cache", app.addr))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        play(&app, &path, None).await,
        (StatusCode::OK, new_bytes.clone())
    );
    assert_eq!(play(&app, &path, None).await.1, new_bytes);
}

#[tokio::test]
async fn with_the_cache_off_every_play_reads_the_store() {
    let opts = Options {
        body_cache: BodyCacheConfig {
            max_bytes: 0,
            ..BodyCacheConfig::default()
        },
        ..Options::default()
    };
    let (app, proxy) = app_behind_proxy_with(opts).await;
    let rec = app.seed(100_000).await;
    let path = rec.path(Format::Wav);
    assert_eq!(play(&app, &path, None).await.1, rec.bytes);
    let before = store_requests(&proxy);
    assert_eq!(play(&app, &path, None).await.1, rec.bytes);
    assert!(store_requests(&proxy) > before);
}
