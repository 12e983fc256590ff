//! The binary with its catalog in PostgreSQL: `check-config`, `keys` and
//! `serve` work on it, never print its password, and a database that is
//! away or refuses us stops the start with a message that says why.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::postgres;

const BIN: &str = env!("CARGO_BIN_EXE_playback-gateway");
/// The test server's password, which no output may show.
const PASSWORD: &str = "playback-test-pg";

/// Runs the binary to its end: (success, stdout, stderr).
async fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .await
        .expect("the binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// A URL where nothing listens (a port just freed).
fn nobody_listens() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("postgres://gw:{PASSWORD}@127.0.0.1:{port}/catalog")
}

#[tokio::test]
async fn check_config_and_keys_work_on_postgres() {
    let url = postgres::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, text, _) = run(&["check-config", "--dir", d, "--catalog", &url]).await;
    assert!(ok, "{text}");
    assert!(
        text.contains("ok   catalog opens and is migrated"),
        "{text}"
    );
    assert!(
        text.contains("catalog: postgres://postgres:***@127.0.0.1:"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(
        !dir.path().join("catalog.db").exists(),
        "no SQLite file beside a PostgreSQL catalog"
    );

    let account = format!("AC{}", "7".repeat(32));
    let (ok, text, err) = run(&[
        "keys",
        "--dir",
        d,
        "--catalog",
        &url,
        "create",
        "--account",
        &account,
    ])
    .await;
    assert!(ok, "{err}");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("key id:  "))
        .unwrap()
        .to_string();
    // The same database, named by the environment this time.
    let out = Command::new(BIN)
        .args(["keys", "--dir", d, "list"])
        .env_clear()
        .env("PLAYBACK_GATEWAY_CATALOG", &url)
        .output()
        .await
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains(&id) && list.contains(&account), "{list}");
}

#[tokio::test]
async fn serve_runs_on_postgres_and_stops_on_sigterm() {
    let url = postgres::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--dir", dir.path().to_str().unwrap(), "--catalog", &url])
        .env_clear()
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let addr = loop {
        let line = lines.next_line().await.unwrap().expect("a log line");
        log.push_str(&line);
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON logs");
        if let Some(a) = v["address"].as_str() {
            break a.to_string();
        }
    };
    let ready: serde_json::Value = reqwest::get(format!("http://{addr}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["catalog"]["status"], "ok");
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    while let Some(line) = lines.next_line().await.unwrap() {
        log.push_str(&line);
    }
    assert!(!log.contains(PASSWORD), "{log}");
}

#[tokio::test]
async fn a_catalog_that_is_away_or_refuses_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let away = nobody_listens();
    let (ok, _, err) = run(&["serve", "--dir", d, "--catalog", &away]).await;
    assert!(!ok);
    assert!(
        err.contains("cannot reach the catalog database") && err.contains("refused"),
        "{err}"
    );
    assert!(err.contains("postgres://gw:***@127.0.0.1:"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
    let (ok, text, _) = run(&["check-config", "--dir", d, "--catalog", &away]).await;
    assert!(!ok);
    assert!(
        text.contains("FAIL catalog") && text.contains("refused"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");

    // A real server that refuses: no such database, a wrong password.
    let url = postgres::fresh_database().await;
    let (base, _) = url.rsplit_once('/').unwrap();
    for (bad, why) in [
        (format!("{base}/no_such_db"), "does not exist"),
        (
            url.replacen(PASSWORD, "wrong", 1),
            "password authentication failed",
        ),
    ] {
        let (ok, _, err) = run(&["serve", "--dir", d, "--catalog", &bad]).await;
        assert!(!ok && err.contains(why), "{bad}: {err}");
        assert!(!err.contains(PASSWORD), "{err}");
    }
    assert!(
        !dir.path().join("catalog.db").exists(),
        "no SQLite file made on the way"
    );
}
