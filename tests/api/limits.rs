//! Server limits against hostile or broken clients: slow headers, huge
//! headers, too many connections, readers that stop reading; and readiness
//! during shutdown.

use std::time::{Duration, Instant};

use playback_gateway::keys::Format;
use playback_gateway::server::ServerLimits;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, Options, spawn_app, spawn_app_with};

pub fn tight() -> Options {
    Options {
        server: ServerLimits {
            header_read_timeout: Duration::from_millis(800),
            max_header_bytes: 16 * 1024,
            max_connections: 6,
            max_connections_per_address: 6,
            idle_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_millis(800),
        },
        ..Options::default()
    }
}

/// Reads until the server closes; `None` if it is still open after `limit`.
pub async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_slowloris_is_cut_off() {
    let app = spawn_app_with(Backend::Local, tight()).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(5))
            .await
            .is_some(),
        "still open"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn huge_headers_get_431() {
    let app = spawn_app_with(Backend::Local, tight()).await;
    let res = app
        .get("/healthz")
        .header("x-junk", "j".repeat(40 * 1024))
        .send()
        .await;
    match res {
        Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(e) => assert!(e.is_request() || e.is_connect(), "{e}"),
    }
    // The server is fine afterwards.
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn connections_past_the_limit_are_closed() {
    // Connections that have not spoken yet hold their slots until the
    // header deadline (idle kept-alive ones would be let go near the
    // bound: tests/api/connections.rs).
    let mut opts = tight();
    opts.server.header_read_timeout = Duration::from_secs(20);
    let app = spawn_app_with(Backend::Local, opts).await;
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(app.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let answer = closed_within(&mut extra, Duration::from_secs(3))
        .await
        .expect("closed at once");
    assert!(answer.is_empty(), "no answer past the limit");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
}

/// Open file descriptors of this process that point at `path`.
fn open_handles_to(path: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[tokio::test]
async fn a_client_that_stops_reading_is_let_go() {
    let app = spawn_app_with(Backend::Local, tight()).await;
    let rec = app.seed(48 * 1024 * 1024).await;
    let path = app.local_path(&app.key(&rec, Format::Wav));
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let req = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", rec.path(Format::Wav));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    assert!(s.read(&mut buf).await.unwrap() > 0, "headers arrive");
    // ... and then it reads nothing more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(open_handles_to(&path), 1, "streaming");
    let deadline = Instant::now() + Duration::from_secs(8);
    while open_handles_to(&path) > 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled stream still holds storage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(s);
}

#[tokio::test]
async fn readiness_flips_before_connections_are_refused() {
    let mut app = spawn_app_with(
        Backend::Local,
        Options {
            shutdown_delay: Duration::from_millis(1500),
            ..Options::default()
        },
    )
    .await;
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::OK
    );
    let (client, url) = (reqwest::Client::new(), app.url("/readyz"));
    let addr = app.addr;
    let stopping = tokio::spawn(async move { app.shutdown().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "draining");
    stopping.await.unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "then refused");
}

/// One GET over HTTP/2 without TLS (prior knowledge, as a proxy speaking
/// h2c to its upstream would): status, version and body.
pub async fn get_h2c(
    app: &crate::helpers::TestApp,
    path: &str,
    range: &str,
) -> (StatusCode, Vec<u8>) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<axum::body::Body>();
    let req = axum::http::Request::get(app.url(path))
        .header("range", range)
        .body(axum::body::Body::empty())
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.version(), axum::http::Version::HTTP_2);
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    let body = axum::body::to_bytes(axum::body::Body::new(res.into_body()), usize::MAX)
        .await
        .unwrap();
    (status, body.to_vec())
}

#[tokio::test]
async fn http2_without_tls_is_served_beside_http1() {
    let app = spawn_app_with(Backend::Local, tight()).await;
    let rec = app.seed(300_000).await;
    let (status, body) = get_h2c(&app, &rec.path(Format::Wav), "bytes=1000-1999").await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert!(body == rec.bytes[1000..2000], "the range's bytes");
    let (status, _) = get_h2c(&app, "/healthz", "bytes=0-").await;
    assert_eq!(status, StatusCode::OK);
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(
        (res.status(), res.version()),
        (StatusCode::OK, reqwest::Version::HTTP_11)
    );
}

#[tokio::test]
async fn first_bytes_that_are_neither_protocol_get_a_4xx_or_a_close() {
    let app = spawn_app_with(Backend::Local, tight()).await;
    for first in [
        &b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"[..],
        b"PRI * HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    ] {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(first).await.unwrap();
        let answer = closed_within(&mut s, Duration::from_secs(3))
            .await
            .expect("closed");
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"),
            "{first:?}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    // The start of HTTP/2's preface, then nothing: closed at the header
    // deadline, like any other silence.
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2").await.unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_connection_that_never_speaks_is_closed_and_does_not_delay_shutdown() {
    let mut app = spawn_app_with(Backend::Local, tight()).await;
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "at the header deadline"
    );
    // A browser's preconnect, open when the gateway stops: not waited for.
    let mut app2 = spawn_app(Backend::Local).await;
    let _silent = TcpStream::connect(app2.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    app2.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    app.shutdown().await.unwrap();
}

/// A listener taking a body steadily for longer than the idle deadline:
/// the body going out is traffic, so the connection is not idle.
async fn a_long_download_outlives_the_idle_deadline(backend: Backend) {
    let mut opts = tight();
    opts.server.idle_timeout = Duration::from_secs(1);
    opts.server.write_timeout = Duration::from_secs(5);
    opts.body_cache.max_bytes = 0;
    let app = spawn_app_with(backend, opts).await;
    let len = 16_000_000;
    let rec = app.seed(len).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let req = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", rec.path(Format::Wav));
    s.write_all(req.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    // About 3 MB/s: the download lasts about five idle deadlines.
    let mut head = None;
    let head = loop {
        head = head.or_else(|| {
            let at = got.windows(4).position(|w| w == b"\r\n\r\n")?;
            Some(at + 4)
        });
        if let Some(head) = head.filter(|h| got.len() >= h + len) {
            break head;
        }
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed after {:?}, {} bytes",
            started.elapsed(),
            got.len()
        );
        got.extend_from_slice(&buf[..n]);
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(got[head..] == rec.bytes[..], "every byte");
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_long_download_outlives_the_idle_deadline_local() {
    a_long_download_outlives_the_idle_deadline(Backend::Local).await;
}

#[tokio::test]
async fn a_long_download_outlives_the_idle_deadline_s3() {
    a_long_download_outlives_the_idle_deadline(Backend::S3).await;
}
