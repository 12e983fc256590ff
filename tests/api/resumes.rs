//! A body the store cuts short, between the gateway and a real SeaweedFS
//! (through the fault proxy of [`crate::faults`], or a SeaweedFS that cuts
//! readers who fall behind): it is resumed where it stopped, under the
//! same ETag, and the client gets every byte; a store that keeps cutting,
//! or a recording replaced meanwhile, ends in an aborted response, never
//! in a body that looks whole and is not.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use playback_gateway::keys::Format;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::faults::{Fault, app_behind_proxy, in_window};
use crate::helpers::{Backend, Options, TestApp, spawn_app_with};

/// A recording longer than every buffer between a paused listener and the
/// store (the sockets' on both sides, hyper's).
pub const LONG: usize = 48_000_000;

/// What a client got of a body: its bytes, and whether it was aborted.
pub async fn drain(res: reqwest::Response) -> (Vec<u8>, bool) {
    let mut body = res.bytes_stream();
    let mut got = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => return (got, true),
        }
    }
    (got, false)
}

/// A ranged GET of `path`: its status, and its body with the multipart
/// boundary (random per response) blanked out.
pub async fn ranged(app: &TestApp, path: &str, range: &str) -> (StatusCode, Vec<u8>, bool) {
    let res = app.get(path).header("range", range).send().await.unwrap();
    let status = res.status();
    let boundary = res.headers()["content-type"]
        .to_str()
        .unwrap()
        .split_once("boundary=")
        .map(|(_, b)| b.to_owned());
    let (body, aborted) = drain(res).await;
    let body = match boundary {
        Some(b) => String::from_utf8_lossy(&body)
            .replace(&b, "BOUNDARY")
            .into_bytes(),
        None => body,
    };
    (status, body, aborted)
}

pub const CUTS: [fn(usize) -> Fault; 3] =
    [Fault::ResetMidBody, Fault::Truncate, Fault::StallMidBody];

#[tokio::test]
async fn a_body_the_store_cuts_is_resumed_and_arrives_whole() {
    let (app, proxy) = app_behind_proxy().await;
    for cut in CUTS {
        let fault = cut(100_000);
        let rec = in_window(&app, 1_000_000).await;
        let path = rec.path(Format::Mp3);
        // Warm the metadata, so that the only store requests are reads.
        let res = app.head(&path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);

        proxy.next_gets(&[fault]);
        let before = proxy.requests.load(Ordering::SeqCst);
        let res = app.get(&path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let (got, aborted) = drain(res).await;
        assert!(
            !aborted && got == rec.bytes,
            "{fault:?}: {} bytes, aborted: {aborted}",
            got.len()
        );
        assert_eq!(
            proxy.requests.load(Ordering::SeqCst) - before,
            2,
            "{fault:?}: one read, then one from where it stopped"
        );

        // A range, cut in its middle: the rest of the range, no more.
        proxy.next_gets(&[fault]);
        let (status, got, aborted) = ranged(&app, &path, "bytes=50000-899999").await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert!(!aborted && got == rec.bytes[50_000..900_000], "{fault:?}");
    }

    // Several ranges: each part is resumed on its own.
    let rec = in_window(&app, 1_000_000).await;
    let path = rec.path(Format::Wav);
    let ranges = "bytes=0-199999,500000-699999";
    proxy.next_gets(&[Fault::Truncate(100_000), Fault::ResetMidBody(50_000)]);
    let (status, cut, aborted) = ranged(&app, &path, ranges).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(!aborted);
    let (_, whole, _) = ranged(&app, &path, ranges).await;
    assert_eq!(cut, whole);

    // Operators see the resumes.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("playback_stream_resumes_total{outcome=\"resumed\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_recording_replaced_before_the_resume_is_never_spliced() {
    let (app, proxy) = app_behind_proxy().await;
    let rec = in_window(&app, 1_000_000).await;
    let path = rec.path(Format::Wav);
    let res = app.head(&path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The store sends 100,000 bytes, then stalls (700 ms read deadline):
    // the recording is replaced meanwhile.
    proxy.next_gets(&[Fault::StallMidBody(100_000)]);
    let res = app.get(&path).send().await.unwrap();
    let mut body = res.bytes_stream();
    let mut got = Vec::new();
    while got.len() < 100_000 {
        got.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    let new_bytes = crate::helpers::audio_bytes(900_000);
    app.put_object(&app.key(&rec, Format::Wav), &new_bytes)
        .await;
    let mut aborted = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                aborted = true;
                break;
            }
        }
    }
    assert!(aborted, "a body of two versions must not look whole");
    assert_eq!(got, rec.bytes[..100_000], "only the old version's bytes");
    // The next request plays the new version, whole.
    let res = app.get(&path).send().await.unwrap();
    assert_eq!(res.bytes().await.unwrap(), new_bytes);
}

#[tokio::test]
async fn a_store_that_keeps_cutting_aborts_the_response() {
    let (app, proxy) = app_behind_proxy().await;
    for cut in CUTS {
        let rec = in_window(&app, 1_000_000).await;
        let path = rec.path(Format::Mp3);
        let res = app.head(&path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        // 100,000 bytes, then no byte more from any resume.
        proxy.next_gets(&[cut(100_000)]);
        proxy.set(cut(0));
        let fault = cut(0);
        let started = Instant::now();
        let res = app.get(&path).send().await.unwrap();
        let (got, aborted) = drain(res).await;
        assert!(
            aborted && got.len() < rec.bytes.len(),
            "{fault:?}: {} bytes and no error",
            got.len()
        );
        assert_eq!(got, rec.bytes[..got.len()], "{fault:?}: what came is right");
        // A store that stops sending is cut off at the read deadline
        // (700 ms here), and resumes that bring nothing are few.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{fault:?}: took {:?}",
            started.elapsed()
        );
        proxy.set(Fault::Pass);
        let res = app.get(&path).send().await.unwrap();
        assert_eq!(
            res.bytes().await.unwrap(),
            rec.bytes,
            "{fault:?}: the next request is whole"
        );
    }
}

/// A real store that cuts readers who fall behind: SeaweedFS ends a
/// connection whose write has been blocked for 2 s ([`impatient`]). A
/// listener who stops reading for longer (a player paused with its buffer
/// full) stops the gateway's reads from the store, the store cuts it, and
/// the listener still gets every byte when it reads on.
#[tokio::test]
async fn a_listener_who_pauses_past_the_stores_deadline_gets_every_byte() {
    let store = crate::seaweed::impatient().s3_endpoint.clone();
    let app = spawn_app_with(
        Backend::S3,
        Options {
            store_endpoint: Some(store),
            ..Options::default()
        },
    )
    .await;
    let rec = app.seed(LONG).await;
    let path = rec.path(Format::Wav);

    // A client with a small receive buffer, so that its pause reaches the
    // store through the gateway.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let mut conn = socket.connect(app.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        app.addr
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::with_capacity(LONG + 1024);
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < 1_000_000 {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    conn.read_to_end(&mut got).await.unwrap();

    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body = &got[head_end..];
    assert_eq!(body.len(), rec.bytes.len(), "every byte");
    assert!(body == rec.bytes.as_slice(), "the right bytes, in order");
}
