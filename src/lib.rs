//! # playback-gateway
//!
//! Streams call recordings out of S3-compatible storage, and says exactly
//! why when one is missing.
//!
//! ```text
//!            HTTP (axum + tower)                       pure decisions
//!  client ──► http::{audio, ops, error} ──────────►  preconditions, range
//!                 │            │
//!                 ▼            ▼
//!              catalog      cache::HeadCache (moka, single-flight)
//!             (sqlx/SQLite)       │
//!                                 ▼
//!                     storage::Storage ── local directory | S3 (aws-sdk-s3)
//! ```
//!
//! - [`sid`]: validated Twilio-style identifiers; nothing else reaches a key.
//! - [`keys`]: audio formats and the storage key layout.
//! - [`storage`]: the storage trait, its backends and typed errors
//!   (*not found* is never confused with *unavailable*).
//! - [`cache`]: storage metadata, cached; transient errors never are.
//! - [`catalog`]: what is known about each recording.
//! - [`range`], [`preconditions`]: RFC 9110 as pure functions.
//! - [`http`]: routes; the one place outcomes become responses.
//! - [`app`]: state, start-up, graceful shutdown. [`config`], [`cli`],
//!   [`telemetry`]: how it is run.

pub mod app;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod explain;
pub mod http;
pub mod incidents;
pub mod keys;
pub mod preconditions;
pub mod range;
pub mod sid;
pub mod storage;
pub mod telemetry;
pub mod verdict;

use cli::{Cli, Command};
use config::{Config, FileConfig};

/// Runs one command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let file = FileConfig::load(args.store.config.as_deref())?;
            let config = Config::resolve(&args, &file)?;
            telemetry::init(cli.log_format.or(file.log_format).unwrap_or_default());
            let app = app::Application::build(&config).await?;
            tracing::info!(
                address = %app.local_addr(),
                storage = %app.state().heads.storage().describe(),
                "playback-gateway listening"
            );
            app.run_until_stopped(app::shutdown_signal()).await
        }
    }
}
