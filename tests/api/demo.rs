//! The demo (the README's run command) and `import`, end to end.

use std::process::Command;
use std::time::Duration;

use playback_gateway::app::Application;
use playback_gateway::cli::{ServeArgs, StoreArgs};
use playback_gateway::config::{Config, FileConfig};
use playback_gateway::demo::Manifest;
use reqwest::StatusCode;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_playback-gateway");

#[tokio::test]
async fn the_demo_answers_every_recording_as_its_manifest_says() {
    let dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        store: StoreArgs {
            dir: Some(dir.path().into()),
            ..Default::default()
        },
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    let config = Config::resolve(&args, &FileConfig::default()).unwrap();
    let state = playback_gateway::demo_state(&config, dir.path())
        .await
        .unwrap();
    let manifest = Manifest::read(dir.path()).unwrap().unwrap();
    let size: u64 = walk(dir.path());
    assert!(size < 100 * 1024 * 1024, "demo data is {size} bytes");

    // Seeded once: a second start keeps the same data and token.
    let again = playback_gateway::demo_state(&config, dir.path())
        .await
        .unwrap();
    assert_eq!(
        again.admin_token.as_ref().unwrap().expose(),
        manifest.admin_token.as_str()
    );

    let app = Application::bind(config.listen, state, Duration::from_secs(1))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    for r in &manifest.recordings {
        let res = client
            .get(format!("{base}{}.json", r.status_url))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["availability"]["verdict"],
            r.expected_verdict.as_str(),
            "{}",
            r.recording_sid
        );
    }
    // A good one plays in both formats; the long one seeks.
    let long = manifest
        .recordings
        .iter()
        .find(|r| r.duration >= 600)
        .unwrap();
    let res = client
        .get(format!("{base}/recordings/{}.wav", long.recording_sid))
        .header("range", "bytes=8000000-8000999")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap().len(), 1000);
    let res = client
        .get(format!("{base}{}", long.audio_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "audio/mpeg");
    // A lost one: 410 problem+json naming the incident.
    let lost = manifest
        .recordings
        .iter()
        .find(|r| r.expected_verdict == "lost")
        .unwrap();
    let res = client
        .get(format!("{base}{}", lost.audio_url))
        .header("accept", "application/problem+json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["incident"]["id"], "2017-05-09");
    // The CRM page lists every call with its badge; / leads there.
    let res = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.url().path(), "/demo");
    let html = res.text().await.unwrap();
    assert_eq!(
        html.matches("class=\"play\"").count(),
        manifest.recordings.len()
    );
    assert!(html.contains("Lost in incident") && html.contains("Acme Mortgage"));
    let res = client
        .get(format!("{base}/static/crm.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    // The manifest's admin token opens the admin API.
    let res = client
        .post(format!("{base}/admin/incidents/2017-05-09/resolve"))
        .bearer_auth(&manifest.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "file incidents are read-only"
    );

    // Twilio tells the demo a pending recording completed, signed with the
    // account's token from the manifest.
    let pending = manifest
        .recordings
        .iter()
        .find(|r| r.expected_verdict == "pending")
        .unwrap();
    let token = &manifest
        .accounts
        .iter()
        .find(|a| a.sid == pending.account_sid)
        .unwrap()
        .webhook_auth_token;
    let params: Vec<(String, String)> = [
        ("AccountSid", pending.account_sid.to_string()),
        ("RecordingSid", pending.recording_sid.to_string()),
        ("RecordingStatus", "absent".to_string()),
        ("ErrorCode", "16101".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let url = format!("{base}/webhooks/twilio/recording-status");
    let res = client
        .post(&url)
        .header(
            "x-twilio-signature",
            playback_gateway::twilio::signature(token, &url, &params),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let body: Value = client
        .get(format!("{base}{}.json", pending.status_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["availability"]["verdict"], "absent");

    // An agent at the CRM page, in Chromium.
    let good = manifest
        .recordings
        .iter()
        .find(|r| r.expected_verdict == "available")
        .unwrap();
    crate::browser::run_script(
        "crm.mjs",
        &[
            ("BASE", base.clone()),
            ("GOOD_SID", good.recording_sid.to_string()),
            ("LOST_SID", lost.recording_sid.to_string()),
        ],
        "demo",
    )
    .await;
}

fn walk(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

#[test]
fn accounts_are_set_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let sid = format!("AC{}", "7".repeat(32));
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["account", "--dir", d, "--account", &sid])
            .args(args)
            .env_clear()
            .output()
            .unwrap()
    };
    let out = run(&["--name", "Acme", "--time-zone", "America/Denver"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["account", "--dir", d, "--account", &sid])
        .env_clear()
        .env("PLAYBACK_GATEWAY_AUTH_TOKEN", "s3cret-token")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"Acme\"") && stdout.contains("token set"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"), "the token is never printed");
    let out = run(&["--time-zone", "Mars/Olympus"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--time-zone"));
    let out = Command::new(BIN)
        .args(["account", "--dir", d, "--account", "ACnope"])
        .env_clear()
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--account"));
}

#[test]
fn the_demo_refuses_a_directory_with_other_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.db"), b"").unwrap();
    let out = Command::new(BIN)
        .args([
            "demo",
            "--dir",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds data that the demo did not make"),
        "{err}"
    );
    assert!(!dir.path().join("demo-manifest.json").exists());
}

#[test]
fn import_takes_the_good_lines_and_names_the_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let line = |n: u32, status: &str| {
        format!(
            r#"{{"sid": "RE{n:032x}", "account_sid": "AC{n:032x}", "call_sid": "CA{n:032x}", "start_time": "Tue, 09 May 2017 17:49:00 +0000", "duration": "60", "status": "{status}", "channels": 1, "source": "DialVerb", "price": null}}"#
        )
    };
    let file = dir.path().join("recordings.jsonl");
    let text = [
        line(1, "completed"),
        "{not json".into(),
        line(2, "absent"),
        String::new(),
        line(3, "exploded"),
        line(4, "completed").replace("RE000", "XX000"),
        line(5, "processing"),
    ]
    .join("\n");
    std::fs::write(&file, text).unwrap();
    let data = dir.path().join("data");
    let run = || {
        Command::new(BIN)
            .args([
                "import",
                "--dir",
                data.to_str().unwrap(),
                file.to_str().unwrap(),
            ])
            .env_clear()
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        !out.status.success(),
        "errors make the exit status non-zero"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "imported 3 recordings from 7 lines (3 new or changed, 0 unchanged); 3 lines with errors"
        ),
        "{stdout}"
    );
    for n in [":2:", ":5:", ":6:"] {
        assert!(stderr.contains(n), "line {n} named: {stderr}");
    }
    assert!(
        stderr.contains("unknown recording status \"exploded\""),
        "{stderr}"
    );
    // Idempotent: the same file again changes nothing.
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("(0 new or changed, 3 unchanged)"),
        "{stdout}"
    );
    let missing = Command::new(BIN)
        .args([
            "import",
            "--dir",
            data.to_str().unwrap(),
            "/no/such/file.jsonl",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/file.jsonl"));
}

#[test]
fn import_reads_twilio_csv_exports_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.csv");
    let sid = |p: &str, n: u32| format!("{p}{n:032x}");
    let rows = [
        "RecordingSid,AccountSid,CallSid,RecordingStartTime,RecordingDuration,RecordingStatus,Price".to_string(),
        format!("{},{},{},\"Tue, 09 May 2017 17:49:00 +0000\",60,completed,-0.0025", sid("RE", 1), sid("AC", 1), sid("CA", 1)),
        format!("{},{},,2017-05-09T18:00:00Z,-1,in-progress,", sid("RE", 2), sid("AC", 1)),
        format!("{},{},,yesterday,5,completed,", sid("RE", 3), sid("AC", 1)),
        "\"unterminated,quote".to_string(),
    ];
    std::fs::write(&file, rows.join("\n")).unwrap();
    let data = dir.path().join("data");
    let out = Command::new(BIN)
        .args([
            "import",
            "--dir",
            data.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("imported 2 recordings"),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("export.csv:4: start_time"), "{stderr}");
    assert!(stderr.contains("export.csv:5:"), "{stderr}");
    // A CSV without the needed columns is refused as a whole.
    std::fs::write(&file, "foo,bar\n1,2\n").unwrap();
    let out = Command::new(BIN)
        .args([
            "import",
            "--dir",
            data.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sid column"));
}
