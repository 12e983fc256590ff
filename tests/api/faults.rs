//! Storage faults between the gateway and a real SeaweedFS, injected by a
//! small proxy: the client gets 503 with `Retry-After`, never a "lost"
//! verdict; nothing is cached; the next request after the fault clears
//! succeeds. Faults in the middle of a body are in [`crate::resumes`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use playback_gateway::keys::Format;
use playback_gateway::storage::BreakerConfig;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Backend, Options, Seeded, TestApp, spawn_app_with};

/// What the proxy does to each request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Fault {
    #[default]
    Pass,
    /// 500 InternalError.
    Error500,
    /// 503 SlowDown (S3 throttling).
    SlowDown,
    /// Wait this long, then pass.
    Delay(Duration),
    /// Read the request, never answer.
    Stall,
    /// Read the request, reset the connection.
    ResetBeforeHeaders,
    /// Pass the headers and this many body bytes of GETs, then reset.
    ResetMidBody(usize),
    /// Pass the headers and this many body bytes of GETs, then close cleanly.
    Truncate(usize),
    /// Pass the headers and this many body bytes of GETs, then send nothing
    /// more, the connection left open.
    StallMidBody(usize),
    /// Fail the next `n` requests with 500, then pass.
    FailFirst(usize),
}

/// A fault-injecting TCP proxy in front of an S3 endpoint. Every answer
/// closes its connection, so each request meets the current fault, or the
/// next one queued for GETs.
pub struct FaultProxy {
    pub endpoint: String,
    faults: Arc<Mutex<Faults>>,
    pub requests: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Faults {
    current: Fault,
    /// Faults for the next GETs, one each, before `current` again.
    next_gets: VecDeque<Fault>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let faults = Arc::new(Mutex::new(Faults::default()));
        let requests = Arc::new(AtomicUsize::new(0));
        let (f, n) = (faults.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (f, n, up) = (f.clone(), n.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = handle(client, &up, &f, &n).await;
                });
            }
        });
        Self {
            endpoint,
            faults,
            requests,
        }
    }

    pub fn set(&self, fault: Fault) {
        self.faults.lock().unwrap().current = fault;
    }

    /// The next GETs meet these faults, one each, in order; then the
    /// current fault again.
    pub fn next_gets(&self, faults: &[Fault]) {
        self.faults.lock().unwrap().next_gets.extend(faults);
    }
}

async fn read_head(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut byte).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&byte[..n]);
    }
    Ok(buf)
}

fn canned(status: &str, code: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn handle(
    mut client: TcpStream,
    upstream: &str,
    faults: &Mutex<Faults>,
    n: &AtomicUsize,
) -> std::io::Result<()> {
    let head = read_head(&mut client).await?;
    n.fetch_add(1, Ordering::SeqCst);
    let is_get = head.starts_with(b"GET ");
    let current = {
        let mut f = faults.lock().unwrap();
        match (is_get.then(|| f.next_gets.pop_front()).flatten(), f.current) {
            (Some(queued), _) => queued,
            (None, Fault::FailFirst(k)) => {
                f.current = if k > 1 {
                    Fault::FailFirst(k - 1)
                } else {
                    Fault::Pass
                };
                Fault::Error500
            }
            (None, current) => current,
        }
    };
    match current {
        Fault::Error500 => {
            return client
                .write_all(canned("500 Internal Server Error", "InternalError").as_bytes())
                .await;
        }
        Fault::SlowDown => {
            return client
                .write_all(canned("503 Slow Down", "SlowDown").as_bytes())
                .await;
        }
        Fault::Stall => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
        Fault::ResetBeforeHeaders => {
            client.set_zero_linger()?;
            return Ok(());
        }
        Fault::Delay(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    // Forward with `Connection: close`, so that the answer ends the connection.
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines: Vec<&str> = text
        .trim_end()
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let request = format!("{}\r\n\r\n", lines.join("\r\n"));
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(request.as_bytes()).await?;
    let limit = match current {
        Fault::ResetMidBody(k) | Fault::Truncate(k) | Fault::StallMidBody(k) if is_get => Some(k),
        _ => None,
    };
    let mut seen_head: Option<usize> = None;
    let (mut total, mut buf) = (0usize, vec![0u8; 16 * 1024]);
    let mut response = Vec::new();
    loop {
        let got = up.read(&mut buf).await?;
        if got == 0 {
            break;
        }
        let mut chunk = &buf[..got];
        if let Some(k) = limit {
            if seen_head.is_none() {
                response.extend_from_slice(chunk);
                if let Some(p) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                    seen_head = Some(p + 4);
                }
            }
            if let Some(h) = seen_head {
                let allowed = (h + k).saturating_sub(total);
                if chunk.len() >= allowed {
                    chunk = &chunk[..allowed];
                    client.write_all(chunk).await?;
                    match current {
                        Fault::ResetMidBody(_) => client.set_zero_linger()?,
                        Fault::StallMidBody(_) => {
                            tokio::time::sleep(Duration::from_secs(3600)).await
                        }
                        _ => client.shutdown().await?,
                    }
                    return Ok(());
                }
            }
        }
        total += chunk.len();
        client.write_all(chunk).await?;
    }
    client.shutdown().await
}

pub async fn app_behind_proxy() -> (TestApp, FaultProxy) {
    app_behind_proxy_with(Options::default()).await
}

/// A gateway over the shared SeaweedFS through a [`FaultProxy`], with
/// short deadlines and a quick breaker.
pub async fn app_behind_proxy_with(opts: Options) -> (TestApp, FaultProxy) {
    let proxy = FaultProxy::start(&crate::seaweed::shared().s3_endpoint).await;
    let app = spawn_app_with(
        Backend::S3,
        Options {
            s3_endpoint: Some(proxy.endpoint.clone()),
            s3_read_timeout: Duration::from_millis(700),
            breaker: BreakerConfig {
                threshold: 4,
                cooldown: Duration::from_millis(800),
            },
            ..opts
        },
    )
    .await;
    (app, proxy)
}

/// A recording whose call ended inside the 2017-05-09 window: if storage
/// failures were mistaken for "not found", it would be called lost.
pub async fn in_window(app: &TestApp, len: usize) -> Seeded {
    let s = app.seed_lost().await;
    let rec = Seeded {
        bytes: crate::helpers::audio_bytes(len),
        ..s
    };
    for f in Format::ALL {
        app.put_object(&app.key(&rec, f), &rec.bytes).await;
    }
    rec
}

async fn answer(app: &TestApp, rec: &Seeded) -> (StatusCode, Option<String>, serde_json::Value) {
    let res = app
        .get(&rec.path(Format::Mp3))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let status = res.status();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = if status == StatusCode::OK {
        serde_json::Value::Null
    } else {
        res.json().await.unwrap()
    };
    (status, retry, body)
}

#[tokio::test]
async fn every_fault_is_503_never_lost_and_clears_at_once() {
    let (app, proxy) = app_behind_proxy().await;
    let rec = in_window(&app, 50_000).await;
    for fault in [
        Fault::Error500,
        Fault::SlowDown,
        Fault::Stall,
        Fault::ResetBeforeHeaders,
    ] {
        // A fresh recording per fault, so no earlier success is cached.
        let rec = in_window(&app, 10_000).await;
        proxy.set(fault);
        let started = Instant::now();
        let (status, retry, body) = answer(&app, &rec).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{fault:?}: {body}");
        assert!(retry.is_some(), "{fault:?}: Retry-After");
        assert_eq!(
            body["verdict"], "storage_unavailable",
            "{fault:?}: never lost"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{fault:?}: bounded"
        );
        proxy.set(Fault::Pass);
        // Past the breaker's cool-down, the very next request plays.
        tokio::time::sleep(Duration::from_millis(900)).await;
        let (status, _, body) = answer(&app, &rec).await;
        assert_eq!(status, StatusCode::OK, "{fault:?} cleared: {body}");
    }
    let (status, _, _) = answer(&app, &rec).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn transient_errors_are_retried_before_the_first_byte() {
    let (app, proxy) = app_behind_proxy().await;
    let rec = in_window(&app, 20_000).await;
    proxy.set(Fault::FailFirst(1));
    let before = proxy.requests.load(Ordering::SeqCst);
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), rec.bytes);
    assert!(
        proxy.requests.load(Ordering::SeqCst) - before >= 3,
        "HEAD failed once and was retried"
    );
    proxy.set(Fault::Delay(Duration::from_millis(200)));
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "a slow store is slow, not down"
    );
}

#[tokio::test]
async fn the_circuit_breaker_answers_fast_while_storage_is_down() {
    let (app, proxy) = app_behind_proxy().await;
    proxy.set(Fault::Error500);
    let recs: Vec<Seeded> = {
        let mut v = Vec::new();
        for _ in 0..8 {
            v.push(in_window(&app, 1_000).await);
        }
        v
    };
    // Four failed storage calls (each after the SDK's own retries) open it.
    for rec in &recs[..4] {
        assert_eq!(answer(&app, rec).await.0, StatusCode::SERVICE_UNAVAILABLE);
    }
    let before = proxy.requests.load(Ordering::SeqCst);
    let started = Instant::now();
    for rec in &recs[4..] {
        let (status, _, body) = answer(&app, rec).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["verdict"], "storage_unavailable");
    }
    assert_eq!(
        proxy.requests.load(Ordering::SeqCst),
        before,
        "open: storage is not asked"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "fast answers: {:?}",
        started.elapsed()
    );
    proxy.set(Fault::Pass);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        answer(&app, &recs[7]).await.0,
        StatusCode::OK,
        "closed again after a good probe"
    );
}
