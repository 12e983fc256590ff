//! A store over HTTPS (as Amazon S3 and most hosted stores are): the shared
//! SeaweedFS's TLS port, under a certificate only its own CA file vouches
//! for. Bodies take the gateway's own connections, the SDK's calls its
//! transport; both must trust `--s3-ca-file`, and neither may turn an
//! untrusted certificate into a lost recording.

use std::time::{Duration, Instant};

use playback_gateway::keys::Format;
use playback_gateway::storage::read_ca_file;
use reqwest::StatusCode;
use tokio::process::Command;

use crate::helpers::{Backend, Options, TestApp, problem, spawn_app_with};
use crate::seaweed;

async fn over_https(trusted: bool) -> TestApp {
    let weed = seaweed::shared();
    let extra_roots = if trusted {
        read_ca_file(&weed.ca).expect("the test CA")
    } else {
        Vec::new()
    };
    spawn_app_with(
        Backend::S3,
        Options {
            s3_endpoint: Some(weed.s3_https_endpoint.clone()),
            s3_extra_roots: extra_roots,
            ..Options::default()
        },
    )
    .await
}

#[tokio::test]
async fn recordings_play_whole_and_in_ranges_over_https() {
    let app = over_https(true).await;
    let rec = app.seed(700_000).await;
    // Several times: later requests reuse pooled TLS connections.
    for _ in 0..3 {
        let res = app.get(&rec.path(Format::Wav)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.bytes().await.unwrap(), rec.bytes);
    }
    for (range, from, to) in [("bytes=0-1", 0, 2), ("bytes=350000-", 350_000, 700_000)] {
        let res = app
            .get(&rec.path(Format::Wav))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(res.bytes().await.unwrap(), rec.bytes[from..to], "{range}");
    }
}

#[tokio::test]
async fn a_recording_lost_in_the_incident_is_still_explained_over_https() {
    let app = over_https(true).await;
    let rec = app.seed_lost().await;
    let res = app
        .get(&rec.path(Format::Mp3))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    assert_eq!(problem(res).await["type"], "/problems/lost");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_setting_to_fix_never_a_loss() {
    let app = over_https(false).await;
    let stored = app.seed(10_000).await;
    let lost = app.seed_lost().await;
    for rec in [&stored, &lost] {
        let started = Instant::now();
        let res = app
            .get(&rec.path(Format::Wav))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
        let body = problem(res).await;
        assert_eq!(body["type"], "/problems/storage_misconfigured", "{body}");
        // Not retried as if the store were down: a certificate will not
        // fix itself between attempts.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn check_config_trusts_the_ca_file_and_names_the_certificate_without_it() {
    let weed = seaweed::shared();
    let dir = tempfile::tempdir().unwrap();
    let run = |ca: Option<&std::path::Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_playback-gateway"));
        cmd.args(["check-config", "--storage", "s3://playback-tests"])
            .args(["--s3-endpoint", &weed.s3_https_endpoint, "--s3-path-style"])
            .arg("--dir")
            .arg(dir.path())
            .env_clear()
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PLAYBACK_GATEWAY_S3_ACCESS_KEY_ID", seaweed::ACCESS_KEY)
            .env("PLAYBACK_GATEWAY_S3_SECRET_ACCESS_KEY", seaweed::SECRET_KEY);
        if let Some(ca) = ca {
            cmd.env("PLAYBACK_GATEWAY_S3_CA_FILE", ca);
        }
        cmd.output()
    };
    // The bucket exists once any S3 test app has started.
    let _app = over_https(true).await;
    let out = run(Some(&weed.ca)).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok   storage answers"), "{text}");

    let out = run(None).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("FAIL storage") && text.to_lowercase().contains("certificate"),
        "{text}"
    );

    // A CA file that is not one fails at start, naming the setting.
    let garbage = dir.path().join("not-a-ca.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\n%%%\n").unwrap();
    for ca in [garbage.as_path(), &dir.path().join("missing.pem")] {
        let out = run(Some(ca)).await.unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{all}");
        assert!(all.contains("--s3-ca-file"), "{all}");
    }
}
