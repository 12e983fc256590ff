//! The process around the routes: the binary, its configuration, health,
//! shutdown and failing bodies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use playback_gateway::keys::Format;
use reqwest::StatusCode;

use crate::helpers::{Backend, Options, spawn_app, spawn_app_with};

crate::both_catalogs!(health_and_readiness);

const BIN: &str = env!("CARGO_BIN_EXE_playback-gateway");

fn run_failing(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("the binary runs");
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configuration_fails_at_start_and_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["serve"], "--dir"),
        (&["serve", "--storage", "ftp://x"], "--storage"),
        (&["serve", "--storage", "s3://UPPER"], "--storage"),
        (&["serve", "--dir", d, "--listen", "nowhere"], "--listen"),
        (&["serve", "--dir", d, "--cache-ttl", "soon"], "--cache-ttl"),
        (
            &["serve", "--dir", d, "--key-layout", "{sid}"],
            "--key-layout",
        ),
        (
            &["serve", "--dir", d, "--catalog", "mysql://x"],
            "--catalog",
        ),
        (
            &["serve", "--dir", d, "--catalog", "postgres://gw@db:port/x"],
            "--catalog",
        ),
        (
            &["serve", "--dir", d, "--catalog", "postgresql:/x"],
            "--catalog",
        ),
        (
            &[
                "serve",
                "--storage",
                "file:///definitely/not/here",
                "--dir",
                d,
            ],
            "not/here",
        ),
        (
            &["serve", "--config", "/definitely/not/here.toml"],
            "--config",
        ),
    ];
    for (args, needle) in cases {
        let err = run_failing(args);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let err = run_failing(&["serve", "--config", cfg.to_str().unwrap()]);
    assert!(err.contains("lisen"), "{err}");
}

#[test]
fn the_binary_serves_a_data_dir_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gateway.toml");
    std::fs::write(
        &cfg,
        format!(
            "dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nlog_format = \"json\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env_clear()
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("a log line").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON logs");
        if let Some(a) = v["address"].as_str() {
            break a.to_string();
        }
    };
    let health = reqwest::blocking_get(&format!("http://{addr}/healthz"));
    assert_eq!(health, 200);
    let secret_link = format!(
        "http://{addr}/recordings/RE{}.mp3?exp=1&kid=k&sig=SECRETSIGNATURE",
        "0".repeat(32)
    );
    assert_eq!(reqwest::blocking_get(&secret_link), 403);
    let ready = reqwest::blocking_get(&format!("http://{addr}/readyz"));
    assert_eq!(ready, 200);
    assert!(dir.path().join("data/recordings").is_dir());
    assert!(dir.path().join("data/catalog.db").is_file());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    // One structured line per request, and never a signature.
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let all = rest.join("\n");
    assert!(!all.contains("SECRETSIGNATURE"), "{all}");
    let responses: Vec<serde_json::Value> = rest
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "response")
        .collect();
    assert!(responses.len() >= 3, "{all}");
    let line = &responses[0];
    for field in ["status", "duration_ms", "verdict", "account"] {
        assert!(line.get(field).is_some(), "{field} in {line}");
    }
    assert!(
        line["span"]["request_id"].is_string() || all.contains("request_id"),
        "{line}"
    );
}

/// A tiny blocking GET (status only), to keep the binary test synchronous.
mod reqwest {
    pub use ::reqwest::*;
    pub fn blocking_get(url: &str) -> u16 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { ::reqwest::get(url).await.unwrap().status().as_u16() })
    }
}

async fn health_and_readiness(b: Backend) {
    let app = spawn_app(b).await;
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["storage"]["status"], "ok");
    assert_eq!(body["checks"]["catalog"]["status"], "ok");
}

#[tokio::test]
async fn shutdown_refuses_new_connections_and_drains_streams() {
    let mut app = spawn_app(Backend::Local).await;
    let rec = app.seed(8 * 1024 * 1024).await;
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    let mut body = res.bytes_stream();
    let mut got = body.next().await.unwrap().unwrap().to_vec();
    let addr = app.addr;
    let stopping = tokio::spawn(async move { app.shutdown().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "new connections are refused while draining"
    );
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(got == rec.bytes, "the in-flight stream finished whole");
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_on_stalled_clients_at_the_deadline() {
    let mut app = spawn_app_with(
        Backend::Local,
        Options {
            grace: Duration::from_millis(500),
            ..Options::default()
        },
    )
    .await;
    let rec = app.seed(64 * 1024 * 1024).await;
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The client reads nothing more: the stream cannot finish.
    let started = Instant::now();
    app.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(res);
}

#[tokio::test]
async fn a_storage_failure_mid_body_aborts_the_response() {
    let app = spawn_app(Backend::Local).await;
    let rec = app.seed(32 * 1024 * 1024).await;
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.bytes_stream();
    let mut got = body.next().await.unwrap().unwrap().len();
    // The file shrinks under the open handle: storage ends early.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(app.local_path(&app.key(&rec, Format::Wav)))
        .unwrap();
    file.set_len(1024).unwrap();
    let mut failed = false;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got += c.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "a short body must not look complete ({got} bytes)");
    assert!(got < rec.bytes.len());
}

/// Open file descriptors of this process (which runs the gateway) that
/// point at `path`.
fn open_handles_to(path: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_storage_read() {
    let app = spawn_app(Backend::Local).await;
    let rec = app.seed(32 * 1024 * 1024).await;
    let path = app.local_path(&app.key(&rec, Format::Wav));
    let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
    let mut body = res.bytes_stream();
    body.next().await.unwrap().unwrap();
    assert_eq!(open_handles_to(&path), 1, "the stream reads the file");
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_handles_to(&path) > 0 {
        assert!(Instant::now() < deadline, "the read was not cancelled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one Prometheus sample line (name with labels), or 0.
fn sample(text: &str, prefix: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_move_when_requests_happen() {
    let app = spawn_app(Backend::Local).await;
    let res = app.get("/metrics").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "admin only");
    let scrape = || app.metrics();
    let before = scrape().await;
    let rec = app.seed(10_000).await;
    app.get(&rec.path(Format::Wav))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let account = crate::helpers::random_sid("AC");
    let lost = app
        .seed_with(
            &account,
            "2017-05-09T17:49:00Z",
            60,
            playback_gateway::catalog::RecordingStatus::Completed,
            false,
        )
        .await;
    app.get(&lost.path(Format::Wav)).send().await.unwrap();
    let after = scrape().await;
    let route = "route=\"/recordings/{name}\"";
    let delta = |prefix: &str, labels: &[&str]| {
        sample(&after, prefix, labels) - sample(&before, prefix, labels)
    };
    assert!(
        delta(
            "playback_requests_total",
            &[route, "status=\"200\"", "verdict=\"available\""]
        ) >= 1.0,
        "{after}"
    );
    assert!(
        delta(
            "playback_requests_total",
            &[route, "status=\"410\"", "verdict=\"lost\""]
        ) >= 1.0
    );
    assert!(delta("playback_lost_answers_total", &["incident=\"2017-05-09\""]) >= 1.0);
    assert!(delta("playback_streamed_bytes_total", &[]) >= 10_000.0);
    assert!(delta("playback_storage_seconds_count", &["op=\"head\""]) >= 1.0);
    assert!(delta("playback_cache_lookups_total", &["cache=\"catalog\""]) >= 2.0);
    assert!(after.contains("playback_streams_in_flight"));
}

#[test]
fn check_config_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--dir", d])
        .env_clear()
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "ok   configuration",
        "ok   storage answers",
        "ok   catalog",
        "ok   incident registry: 1",
        "caches: metadata 1m (not found 5s), recordings in memory 8.0 MiB (each up to 8.0 MiB)",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let incidents = dir.path().join("incidents");
    std::fs::create_dir_all(&incidents).unwrap();
    std::fs::write(incidents.join("bad.toml"), "id = \"x\"\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "check-config",
            "--dir",
            d,
            "--storage",
            "file:///definitely/not/here",
            "--incidents",
        ])
        .arg(&incidents)
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL storage") && text.contains("not/here"),
        "{text}"
    );
    assert!(
        text.contains("FAIL incidents") && text.contains("bad.toml"),
        "{text}"
    );
    let err = run_failing(&["check-config", "--dir", d, "--listen", "nowhere"]);
    assert!(err.contains("--listen"), "{err}");
    let err = run_failing(&["check-config", "--dir", d, "--body-cache-size", "8 MiBs"]);
    assert!(err.contains("--body-cache-size"), "{err}");
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_covers_every_route() {
    let app = spawn_app(Backend::Local).await;
    let doc: serde_json::Value = app
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: std::collections::BTreeSet<String> =
        doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed: std::collections::BTreeSet<String> = playback_gateway::http::routes()
        .into_iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(documented, routed, "every route documented, nothing else");
    // Validated by an independent implementation (openapi-spec-validator).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let python =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "the validator is missing: ./scripts/test installs it"
    );
    let out = Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let page = app
        .get("/api/docs")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/webhooks/twilio/recording-status") && page.contains("openapi.json"));
}
