//! `playback-gateway demo`: the embedded default with a synthetic
//! 2017-05-09 in it, so a new user sees the product answer for real.
//!
//! Seeding happens once per data directory and is deterministic: a few
//! accounts, a few hundred calls 08:00–17:00 PDT with synthesized audio in
//! WAV and MP3, a share of the calls ending in the incident window missing
//! from storage, a few missing for no known reason, some deleted under
//! retention, some absent, some still processing, and one long recording.
//! `DIR/demo-manifest.json` lists every recording with the verdict the
//! gateway should give, and the demo's admin token.

pub mod audio;
mod plan;
mod rng;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::keys::{Format, KeyLayout};
use crate::sid::AccountSid;

pub use plan::{DemoRecording, plan};

/// The file that marks a seeded directory and describes it.
pub const MANIFEST: &str = "demo-manifest.json";

/// A demo account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoAccount {
    pub sid: AccountSid,
    pub name: String,
    /// The token its (simulated) Twilio signs webhooks with.
    #[serde(default)]
    pub webhook_auth_token: String,
    /// An API key of the account (HTTP Basic `sid:api_key_secret`).
    #[serde(default)]
    pub api_key_id: String,
    #[serde(default)]
    pub api_key_secret: String,
}

/// `DIR/demo-manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub about: String,
    pub date: String,
    pub time_zone: String,
    /// The admin API's bearer token for this demo.
    pub admin_token: String,
    /// The key that signs this demo's playback links, `kid:secret`.
    #[serde(default)]
    pub link_key: String,
    pub accounts: Vec<DemoAccount>,
    pub recordings: Vec<DemoRecording>,
}

/// What the demo CRM page needs at run time.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    pub accounts: Vec<DemoAccount>,
    pub date: String,
    pub time_zone: String,
}

impl Manifest {
    pub fn read(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).with_context(|| format!("{}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("{}", path.display())),
        }
    }

    pub fn info(&self) -> Arc<DemoInfo> {
        Arc::new(DemoInfo {
            accounts: self.accounts.clone(),
            date: self.date.clone(),
            time_zone: self.time_zone.clone(),
        })
    }
}

/// Refuses a directory that holds data the demo did not make: seeding
/// would mix 241 synthetic recordings into a real catalog.
pub fn check_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.join(MANIFEST).exists() {
        return Ok(());
    }
    let foreign = ["catalog.db", "recordings"]
        .iter()
        .any(|name| dir.join(name).exists());
    if foreign {
        anyhow::bail!(
            "{} holds data that the demo did not make (it has no {MANIFEST}); \
             give the demo a directory of its own with --dir",
            dir.display()
        );
    }
    Ok(())
}

/// A random admin token for this demo directory.
fn new_token() -> String {
    format!(
        "demo-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Seeds `dir` unless it is seeded already; returns its manifest.
///
/// The manifest is written last (and atomically), so an interrupted seeding
/// is simply done again on the next start.
pub async fn ensure_seeded(
    dir: &Path,
    recordings_root: &Path,
    catalog: &Catalog,
) -> anyhow::Result<Manifest> {
    if let Some(m) = Manifest::read(dir)? {
        tracing::info!(dir = %dir.display(), "demo data already seeded");
        return Ok(m);
    }
    let started = std::time::Instant::now();
    let (accounts, recordings) = plan();
    let layout = KeyLayout::default();
    let stored: Vec<(PathBuf, &DemoRecording)> = recordings
        .iter()
        .filter(|r| r.stored)
        .map(|r| {
            let key = layout.render(Some(&r.account_sid), &r.recording_sid, Format::Wav);
            (recordings_root.join(key), r)
        })
        .collect();
    // Synthesis is CPU work: a few clips at a time on the blocking pool.
    futures_util::stream::iter(stored)
        .map(|(wav_path, r)| {
            let (seed, secs) = (r.audio_seed, r.duration);
            async move {
                let clip = tokio::task::spawn_blocking(move || audio::synthesize(seed, secs))
                    .await
                    .context("audio synthesis panicked")??;
                let dir = wav_path.parent().context("key without a folder")?;
                tokio::fs::create_dir_all(dir).await?;
                tokio::fs::write(&wav_path, &clip.wav).await?;
                tokio::fs::write(wav_path.with_extension("mp3"), &clip.mp3).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    let rows: Vec<_> = recordings.iter().map(DemoRecording::catalog_row).collect();
    catalog.upsert_many(&rows).await?;
    let mut accounts = accounts;
    for a in &mut accounts {
        let key = crate::access::new_key();
        catalog
            .create_key(&key.id, &a.sid, &key.hash, false, Some("demo"))
            .await?;
        a.api_key_id = key.id;
        a.api_key_secret = key.secret.expose().to_owned();
        a.webhook_auth_token = uuid::Uuid::new_v4().simple().to_string();
        catalog
            .upsert_account(&crate::catalog::Account {
                sid: a.sid.clone(),
                name: Some(a.name.clone()),
                auth_token: Some(crate::config::Secret::new(a.webhook_auth_token.clone())),
                time_zone: Some("America/Los_Angeles".into()),
            })
            .await?;
    }
    let manifest = Manifest {
        about: "Synthetic recordings of 2017-05-09 for playback-gateway's demo; \
                expected_verdict is what the gateway should answer for each."
            .into(),
        date: "2017-05-09".into(),
        time_zone: "America/Los_Angeles".into(),
        admin_token: new_token(),
        link_key: format!("demo:{}", new_token()),
        accounts,
        recordings,
    };
    let tmp = dir.join(format!("{MANIFEST}.partial"));
    tokio::fs::write(&tmp, serde_json::to_vec_pretty(&manifest)?).await?;
    tokio::fs::rename(&tmp, dir.join(MANIFEST)).await?;
    tracing::info!(
        recordings = manifest.recordings.len(),
        seconds = started.elapsed().as_secs_f32(),
        "demo data seeded"
    );
    Ok(manifest)
}
