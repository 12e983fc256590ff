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
//!   (sqlx: SQLite | PostgreSQL)   │
//!                                 ▼
//!                     storage::Storage ── local directory | S3 (aws-sdk-s3)
//! ```
//!
//! - [`sid`]: validated Twilio-style identifiers; nothing else reaches a key.
//! - [`keys`]: audio formats and the storage key layout.
//! - [`storage`]: the storage trait, its backends and typed errors
//!   (*not found* is never confused with *unavailable*).
//! - [`cache`]: storage metadata, cached; transient errors never are.
//! - [`audit`]: the loss audit (catalog against a storage listing).
//! - [`catalog`]: what is known about each recording, in SQLite or
//!   PostgreSQL (same schema, same queries).
//! - [`range`], [`preconditions`]: RFC 9110 as pure functions.
//! - [`http`]: routes; the one place outcomes become responses.
//! - [`app`]: state, start-up, graceful shutdown. [`config`], [`cli`],
//!   [`telemetry`]: how it is run.

pub mod access;
pub mod app;
pub mod audit;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod explain;
pub mod http;
pub mod import;
pub mod incidents;
pub mod ingest;
pub mod invalidation;
pub mod keys;
pub mod observe;
pub mod preconditions;
pub mod range;
pub mod server;
pub mod sid;
pub mod splice;
pub mod storage;
pub mod telemetry;
pub mod twilio;
pub mod verdict;

use cli::{Cli, Command};
use config::{Config, FileConfig, StorageConfig, StoreConfig};

/// Runs one command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let file = FileConfig::load(args.store.config.as_deref())?;
            let config = Config::resolve(&args, &file)?;
            telemetry::init(cli.log_format.or(file.log_format).unwrap_or_default());
            serve(app::AppState::build(&config).await?, &config).await
        }
        Command::Demo(args) => {
            let serve_args = cli::ServeArgs {
                store: cli::StoreArgs {
                    dir: Some(args.dir.clone()),
                    ..Default::default()
                },
                listen: Some(args.listen.clone()),
                // The demo's /audit shows the seeded losses from the start.
                audit_every: Some("1h".into()),
                ..Default::default()
            };
            let config = Config::resolve(&serve_args, &FileConfig::default())?;
            telemetry::init(cli.log_format.unwrap_or_default());
            let state = demo_state(&config, &args.dir).await?;
            tracing::info!(
                "demo: open http://{}/ (the admin token is in {})",
                config.listen,
                args.dir.join(demo::MANIFEST).display()
            );
            serve(state, &config).await
        }
        Command::CheckConfig(args) => {
            telemetry::init(cli.log_format.unwrap_or_default());
            commands::check_config(&args).await
        }
        Command::Keys(args) => {
            telemetry::init(cli.log_format.unwrap_or_default());
            commands::keys(&args).await
        }
        Command::Sign(args) => {
            telemetry::init(cli.log_format.unwrap_or_default());
            commands::sign(&args).await
        }
        Command::Audit(args) => {
            telemetry::init(cli.log_format.unwrap_or_default());
            commands::audit(&args).await
        }
        Command::Account(args) => {
            telemetry::init(cli.log_format.unwrap_or_default());
            commands::set_account(&args).await
        }
        Command::Import(args) => {
            let file = FileConfig::load(args.store.config.as_deref())?;
            let store = StoreConfig::resolve(&args.store, &file)?;
            telemetry::init(cli.log_format.or(file.log_format).unwrap_or_default());
            let catalog = app::open_catalog(&store).await?;
            let format = args
                .format
                .unwrap_or_else(|| import::FileFormat::of(&args.file));
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let summary = import::import_file(&catalog, &args.file, format, bar).await?;
            for (line, why) in &summary.errors {
                eprintln!("{}:{line}: {why}", args.file.display());
            }
            println!(
                "imported {} recordings from {} lines ({} new or changed, {} unchanged); {} lines with errors",
                summary.imported,
                summary.lines,
                summary.changed,
                summary.imported - summary.changed,
                summary.error_count
            );
            for sid in &summary.foreign {
                eprintln!(
                    "{}: {sid} belongs to another account in the catalog; not changed",
                    args.file.display()
                );
            }
            if summary.error_count > 0 || summary.foreign_count > 0 {
                anyhow::bail!(
                    "{} lines could not be imported, {} recordings belong to another account",
                    summary.error_count,
                    summary.foreign_count
                );
            }
            Ok(())
        }
    }
}

/// An error that asks for a particular exit status (the audit's 3 when
/// unexplained losses pass the threshold); what to say was said already.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Seeds the demo directory (once) and builds the demo's state.
pub async fn demo_state(config: &Config, dir: &std::path::Path) -> anyhow::Result<app::AppState> {
    let StorageConfig::Local { root } = &config.store.storage else {
        anyhow::bail!("the demo runs on a local directory");
    };
    demo::check_dir(dir)?;
    let storage = app::open_storage(&config.store).await?;
    let catalog = app::open_catalog(&config.store).await?;
    let manifest = demo::ensure_seeded(dir, root, &catalog).await?;
    let registry = incidents::registry::Registry::load(catalog.clone(), None).await?;
    let mut config = config.clone();
    // The demo is open: anyone on this machine may read; credentials that
    // are presented (the manifest's keys, signed links) are still checked.
    config.access.open = true;
    config.access.link_keys =
        access::parse_link_keys(&manifest.link_key).map_err(anyhow::Error::msg)?;
    config.admin_token = Some(config::Secret::new(manifest.admin_token.clone()));
    let state = app::AppState::new(storage, catalog, registry, &config);
    Ok(state.with_demo(manifest.info()))
}

async fn serve(state: app::AppState, config: &Config) -> anyhow::Result<()> {
    if state.access.open {
        tracing::warn!(
            "OPEN MODE: anyone who can reach this gateway can play every recording without a credential"
        );
    }
    let app = app::Application::bind(config.listen, state, config.shutdown_grace).await?;
    tracing::info!(
        address = %app.local_addr(),
        storage = %app.state().heads.storage().describe(),
        body_cache = %bytesize::ByteSize(config.cache.bodies.max_bytes),
        "playback-gateway listening"
    );
    app.run_until_stopped(app::shutdown_signal()).await
}
