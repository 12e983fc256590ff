//! The player in a real browser: Debian's headless Chromium driven by
//! playwright-core (`tests/browser/player.mjs`), against the real app on
//! both backends. Screenshots land in `target/browser-screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use playback_gateway::catalog::RecordingStatus;
use playback_gateway::demo::audio::synthesize;
use playback_gateway::keys::Format;
use tokio::process::Command;

use crate::both_backends;
use crate::helpers::{Backend, Options, Seeded, random_sid, recording, spawn_app_with};

both_backends!(the_player_plays_seeks_and_explains_in_chromium);

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn require_tools() {
    assert!(
        browser_dir().join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: ./scripts/test installs it (npm install --prefix tests/browser)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists()
            || std::env::var_os("CHROMIUM").is_some(),
        "Chromium is missing: ./scripts/test installs it (apt-get install chromium)"
    );
}

async fn the_player_plays_seeks_and_explains_in_chromium(b: Backend) {
    require_tools();
    // The CRM's page is served by the browser script on its own loopback
    // origin, which the gateway is told to trust; another port is not.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (crm_port, evil_port) = (free(), free());
    let app = spawn_app_with(
        b,
        Options {
            cors_origins: vec![format!("http://localhost:{crm_port}")],
            ..Options::default()
        },
    )
    .await;
    // A ten-minute call, synthesized: seeking has to fetch new ranges.
    let clip = tokio::task::spawn_blocking(|| synthesize(7, 600))
        .await
        .unwrap()
        .unwrap();
    let long = Seeded {
        account: random_sid("AC"),
        sid: random_sid("RE"),
        bytes: clip.wav.clone(),
    };
    app.put_object(&app.key(&long, Format::Wav), &clip.wav)
        .await;
    app.put_object(&app.key(&long, Format::Mp3), &clip.mp3)
        .await;
    let row = recording(
        &long.account,
        &long.sid,
        "2017-05-09T16:15:00Z",
        600,
        RecordingStatus::Completed,
    );
    app.catalog.upsert(&row).await.unwrap();
    let account = random_sid("AC");
    let lost = app
        .seed_with(
            &account,
            "2017-05-09T17:49:00Z",
            60,
            RecordingStatus::Completed,
            false,
        )
        .await;
    let unexplained = app
        .seed_with(
            &account,
            "2017-05-09T15:30:00Z",
            60,
            RecordingStatus::Completed,
            false,
        )
        .await;

    run_script(
        "player.mjs",
        &[
            ("BASE", app.url("")),
            ("LONG_SID", long.sid.to_string()),
            ("LONG_BYTES", clip.wav.len().to_string()),
            ("LONG_FORMAT", "wav".into()),
            ("LOST_SID", lost.sid.to_string()),
            ("UNEXPLAINED_SID", unexplained.sid.to_string()),
            ("CRM_PORT", crm_port.to_string()),
            ("EVIL_PORT", evil_port.to_string()),
        ],
        &format!("{b:?}").to_lowercase(),
    )
    .await;
}

/// Runs one script of `tests/browser/` with `env`; screenshots go to
/// `target/browser-screenshots/{shots}`.
pub async fn run_script(script: &str, env: &[(&str, String)], shots: &str) {
    require_tools();
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/browser-screenshots")
        .join(shots);
    let mut cmd = Command::new("node");
    cmd.arg(browser_dir().join(script))
        .env("SCREENSHOTS", &shots)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("the browser checks finish within 3 minutes")
        .expect("node runs (./scripts/test installs what it needs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all browser checks passed"), "{stdout}");
}
