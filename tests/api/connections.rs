//! Connection slots and HTTP/2's limits against one greedy client: a cap
//! per address, kept-alive connections closed near the bound, and a real
//! HTTP/2 load tool (`h2load`, Debian's nghttp2-client) and a rapid-reset
//! flood against h2c, all on loopback and bounded in count and time.

use std::net::SocketAddr;
use std::time::Duration;

use playback_gateway::server::ServerLimits;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{Backend, Options, TestApp, spawn_app_with};
use crate::limits::closed_within;

fn slots(max: usize, per_address: usize) -> Options {
    Options {
        server: ServerLimits {
            max_connections: max,
            max_connections_per_address: per_address,
            ..ServerLimits::default()
        },
        ..Options::default()
    }
}

/// A connection from `from` (any 127.0.0.0/8 address is this host's).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// One keep-alive GET on `s`; the answer's head.
async fn get_on(s: &mut TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let app = spawn_app_with(Backend::Local, slots(50, 4)).await;
    let mut mine = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from("127.0.0.1", app.addr).await;
        assert!(get_on(&mut s, "/healthz").await.starts_with("HTTP/1.1 200"));
        mine.push(s);
    }
    let mut extra = connect_from("127.0.0.1", app.addr).await;
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let answer = closed_within(&mut extra, Duration::from_secs(3))
        .await
        .expect("closed at once");
    assert!(answer.is_empty(), "no answer past the address's cap");
    // The connections it holds still work, and other clients get in.
    assert!(
        get_on(&mut mine[0], "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let mut other = connect_from("127.0.0.2", app.addr).await;
    assert!(
        get_on(&mut other, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Given back, the slots are the address's again.
    drop(mine);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from("127.0.0.1", app.addr).await;
    assert!(
        get_on(&mut again, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn near_the_bound_idle_kept_alive_connections_give_their_slots_back() {
    let app = spawn_app_with(Backend::Local, slots(10, 10)).await;
    let mut idle = Vec::new();
    for n in 0..8 {
        let mut s = connect_from(&format!("127.0.0.{}", n + 1), app.addr).await;
        let head = get_on(&mut s, "/healthz").await;
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        idle.push(s);
    }
    // The ninth takes the server to nine in ten: the idle ones are let go
    // (and with their slots back, the ninth may stay), and it is answered.
    let mut ninth = connect_from("127.0.0.9", app.addr).await;
    let head = get_on(&mut ninth, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for (n, s) in idle.iter_mut().enumerate() {
        let rest = closed_within(s, Duration::from_secs(3)).await;
        assert_eq!(
            rest.as_deref(),
            Some(&[][..]),
            "idle connection {n} closed, unanswered"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

fn h2load() -> std::process::Command {
    assert!(
        std::process::Command::new("h2load")
            .arg("--version")
            .output()
            .is_ok(),
        "h2load is missing: ./scripts/test installs it (apt-get install nghttp2-client)"
    );
    std::process::Command::new("h2load")
}

/// Runs `h2load` with `args` against `app`, bounded in time; its report.
async fn load(app: &TestApp, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::from(h2load());
    cmd.args(args).arg(app.url("/healthz")).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("h2load finishes within a minute")
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `requests: N total, N started, N done, S succeeded, F failed, E errored, T timeout`.
fn requests(report: &str) -> Vec<u64> {
    let line = report
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no requests line in: {report}"));
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_real_http2_load_tool_is_served_within_the_limits() {
    let app = spawn_app_with(Backend::Local, Options::default()).await;
    // 4 connections × 200 streams asked: the server's 100 streams per
    // connection hold, and every request succeeds.
    let report = load(&app, &["-n", "4000", "-c", "4", "-m", "200", "-t", "1"]).await;
    let r = requests(&report);
    assert_eq!((r[0], r[3]), (4000, 4000), "all succeeded: {report}");
    // Headers past the list's bound are refused, and nothing else breaks.
    let big = format!("x-big: {}", "a".repeat(32 * 1024));
    let report = load(&app, &["-n", "20", "-c", "1", "-H", &big]).await;
    let r = requests(&report);
    assert_eq!(r[3], 0, "no oversize request succeeds: {report}");
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_rapid_reset_flood_does_not_take_the_server_down() {
    let app = spawn_app_with(Backend::Local, Options::default()).await;
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    let conn = tokio::spawn(conn);
    // One answered request, and the server's settings are in.
    let mut first = client.clone().ready().await.unwrap();
    let req = axum::http::Request::get(app.url("/healthz"))
        .body(())
        .unwrap();
    let (answer, _) = first.send_request(req, true).unwrap();
    assert_eq!(answer.await.unwrap().status(), 200);
    assert_eq!(first.current_max_send_streams(), 100);
    let mut sent = 0;
    for _ in 0..5_000 {
        let Ok(mut ready) = client.clone().ready().await else {
            break;
        };
        let req = axum::http::Request::get(app.url("/healthz"))
            .body(())
            .unwrap();
        match ready.send_request(req, true) {
            // Dropped unanswered: the stream is reset at once.
            Ok((answer, _)) => drop(answer),
            Err(_) => break,
        }
        sent += 1;
    }
    drop(client);
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    assert!(
        ended.is_ok(),
        "the flooding connection ends ({sent} streams sent)"
    );
    // Everyone else is served throughout.
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = crate::limits::get_h2c(&app, "/healthz", "bytes=0-").await;
    assert_eq!(status, StatusCode::OK);
}
