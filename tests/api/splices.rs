//! Bodies moved by splice (`playback_gateway::splice`), against a real
//! SeaweedFS: over HTTP/1.1 a download gets the store's bytes without the
//! gateway copying them, byte for byte, whole, in ranges, in multipart
//! answers and resumed after a cut; a body the cache keeps, and every
//! answer over HTTP/2, is copied; a listener that stops reading is let go.

use std::time::Duration;

use playback_gateway::keys::Format;
use playback_gateway::storage::BodyCacheConfig;
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::faults::{app_behind_proxy_with, in_window};
use crate::helpers::{Backend, Options, TestApp, spawn_app_with};
use crate::limits::{closed_within, get_h2c, tight};
use crate::resumes::{CUTS, drain, ranged};

/// Bytes moved by splice so far.
/// The value `/metrics` gives `name` (unlabelled), as written.
fn sample<'a>(metrics: &'a str, name: &str) -> Option<&'a str> {
    let line = metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '));
    line.map(str::trim)
}

async fn spliced(app: &TestApp) -> u64 {
    let metrics = app.metrics().await;
    sample(&metrics, "playback_storage_spliced_bytes_total").map_or(0, |v| v.parse().unwrap())
}

fn no_body_cache() -> Options {
    Options {
        body_cache: BodyCacheConfig {
            max_bytes: 0,
            ..BodyCacheConfig::default()
        },
        ..Options::default()
    }
}

/// Whether most of `len` bytes were spliced: the bytes that came with the
/// store's response head are copied, and so is what a listener that made
/// a write wait reads before its pace shows it is a download.
fn mostly(spliced: u64, len: usize) -> bool {
    spliced >= len as u64 / 2
}

#[tokio::test]
async fn whole_bodies_ranges_and_multipart_answers_are_spliced_byte_for_byte() {
    let app = spawn_app_with(Backend::S3, no_body_cache()).await;
    let rec = app.seed(3_000_000).await;
    let path = rec.path(Format::Wav);
    let before = spliced(&app).await;

    let res = app.get(&path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    assert!(
        res.bytes().await.unwrap() == rec.bytes,
        "the whole recording"
    );
    let after_whole = spliced(&app).await;
    assert!(mostly(after_whole - before, 3_000_000));

    let (status, got, aborted) = ranged(&app, &path, "bytes=1000-1999999").await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(!aborted && got == rec.bytes[1000..2_000_000], "the range");

    // Two parts, each read on its own; their bytes between boundaries.
    let res = app.get(&path).header("range", "bytes=0-99,500000-1499999");
    let res = res.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    let got = res.bytes().await.unwrap();
    let part = &rec.bytes[500_000..1_500_000];
    assert!(
        got.windows(part.len()).any(|w| w == part),
        "the second part"
    );
    assert!(
        got.windows(100).any(|w| w == &rec.bytes[..100]),
        "the first"
    );
    assert!(mostly(
        spliced(&app).await - after_whole,
        1_999_000 + 1_000_000
    ));

    // The same connection serves on after spliced bodies: keep-alive.
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_short_download_is_spliced_from_its_first_read() {
    // 300 KB fits in a fresh loopback connection's socket buffers: no
    // write waits, so the listener keeps up from the first byte, though
    // the body ends long before its pace could show it (before, all of
    // it was copied 16 KiB at a time).
    let app = spawn_app_with(Backend::S3, no_body_cache()).await;
    let rec = app.seed(300_000).await;
    let before = spliced(&app).await;
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.bytes().await.unwrap() == rec.bytes, "the recording");
    let moved = spliced(&app).await - before;
    assert!(mostly(moved, rec.bytes.len()), "{moved} bytes spliced");
}

#[tokio::test]
async fn a_spliced_body_the_store_cuts_is_resumed_whole() {
    let (app, proxy) = app_behind_proxy_with(no_body_cache()).await;
    for cut in CUTS {
        let fault = cut(300_000);
        let rec = in_window(&app, 2_000_000).await;
        let path = rec.path(Format::Mp3);
        proxy.next_gets(&[fault]);
        let before = spliced(&app).await;
        let res = app.get(&path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let (got, aborted) = drain(res).await;
        assert!(
            !aborted && got == rec.bytes,
            "{fault:?}: {} bytes, aborted: {aborted}",
            got.len()
        );
        assert!(spliced(&app).await > before, "{fault:?}: spliced");
    }
}

#[tokio::test]
async fn bodies_the_cache_keeps_and_http2_answers_are_copied() {
    let app = spawn_app_with(Backend::S3, Options::default()).await;
    let rec = app.seed(500_000).await;
    let path = rec.path(Format::Wav);
    let before = spliced(&app).await;
    // Kept as it streams by: its bytes must pass through memory.
    let res = app
        .get(&path)
        .header("range", "bytes=0-")
        .send()
        .await
        .unwrap();
    assert!(res.bytes().await.unwrap() == rec.bytes);
    // Replayed from memory.
    let res = app.get(&path).send().await.unwrap();
    assert!(res.bytes().await.unwrap() == rec.bytes);
    assert_eq!(spliced(&app).await, before, "nothing spliced");

    // HTTP/2 frames its bodies: copied.
    let app = spawn_app_with(Backend::S3, no_body_cache()).await;
    let rec = app.seed(500_000).await;
    let before = spliced(&app).await;
    let (status, got) = get_h2c(&app, &rec.path(Format::Wav), "bytes=10-399999").await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(got == rec.bytes[10..400_000]);
    assert_eq!(spliced(&app).await, before, "nothing spliced");
}

#[tokio::test]
async fn a_listener_that_stops_reading_a_spliced_body_is_let_go() {
    let opts = Options {
        body_cache: no_body_cache().body_cache,
        ..tight()
    };
    let app = spawn_app_with(Backend::S3, opts).await;
    // Longer than every buffer between the store and a listener that has
    // stopped reading.
    let len = 16_000_000;
    let rec = app.seed(len).await;
    let before = spliced(&app).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let req = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", rec.path(Format::Wav));
    s.write_all(req.as_bytes()).await.unwrap();
    // Reads nothing: its socket fills, and the bytes spliced last wait in
    // its pipe, which /metrics counts (kernel memory RSS does not show;
    // other tests' pipes may add to it, never take from it)...
    tokio::time::sleep(Duration::from_millis(400)).await;
    let metrics = app.metrics().await;
    let gauge = |name| -> f64 { sample(&metrics, name).map_or(0.0, |v| v.parse().unwrap()) };
    assert!(gauge("playback_splice_pipes") >= 1.0, "{metrics}");
    assert!(gauge("playback_splice_pipe_bytes") > 0.0, "{metrics}");
    // ... for longer than the write deadline (800 ms)...
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert!(spliced(&app).await > before, "the body was spliced");
    // ... and finds the connection closed, the body short.
    let got = closed_within(&mut s, Duration::from_secs(10))
        .await
        .expect("the gateway let the listener go");
    assert!(got.len() < len, "{} bytes", got.len());
}
