//! Real players against the gateway: ffmpeg probes, plays and seeks (HTTP
//! Range under the hood) through both backends.

use playback_gateway::keys::Format;
use tokio::process::Command;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(ffmpeg_plays_and_seeks_both_formats);

fn tool(name: &str) -> &str {
    assert!(
        std::process::Command::new(name)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "{name} is missing: ./scripts/test installs it (apt-get install ffmpeg)"
    );
    name
}

/// Encodes 90 s of a test tone with ffmpeg itself, as WAV or MP3.
async fn fixture(format: Format) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("tone.{}", format.ext()));
    let status = Command::new(tool("ffmpeg"))
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=90:sample_rate=8000",
        ])
        .args(["-ac", "1"])
        .arg(&out)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

async fn probe_duration(url: &str) -> f64 {
    let out = Command::new(tool("ffprobe"))
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

async fn ffmpeg_plays_and_seeks_both_formats(b: Backend) {
    let app = spawn_app(b).await;
    let rec = app.seed(10).await;
    for format in Format::ALL {
        app.put_object(&app.key(&rec, format), &fixture(format).await)
            .await;
        let url = app.url(&rec.path(format));
        let duration = probe_duration(&url).await;
        assert!((duration - 90.0).abs() < 0.5, "{format}: {duration}");
        // Seek to 80 % and decode two seconds: ffmpeg issues a Range request.
        let out = Command::new("ffmpeg")
            .args([
                "-v", "error", "-ss", "72", "-i", &url, "-t", "2", "-f", "null", "-",
            ])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
