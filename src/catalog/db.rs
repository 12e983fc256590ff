//! The catalog's database: SQLite (the embedded default) or PostgreSQL
//! (shared by replicas), chosen by the URL's scheme.
//!
//! Both get the same schema, version by version (`migrations/sqlite/`,
//! `migrations/postgres/`), and the same SQL: the queries are written once
//! in the subset both dialects share (`$1` placeholders, `IS DISTINCT
//! FROM`, `ON CONFLICT … DO UPDATE`), and [`with_pool!`] type-checks each
//! against both drivers. sqlx's `Any` driver would hide the pool type too,
//! but it decodes a narrower set of types and cannot set SQLite's journal
//! mode, so an enum of the two real pools is simpler and stricter.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};

use super::CatalogError;

/// Which database a catalog URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `sqlite://PATH`: one file, one process.
    Sqlite,
    /// `postgres://…` or `postgresql://…`: shared by every replica.
    Postgres,
}

impl Dialect {
    /// The dialect of a catalog URL, once the URL is known to be
    /// well-formed; otherwise why not (with any password hidden).
    pub fn of_url(url: &str) -> Result<Self, String> {
        let shown = redact_url(url);
        if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(|e| format!("{shown:?}: {e}"))?;
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PgConnectOptions::from_str(url).map_err(|e| format!("{shown:?}: {e}"))?;
            Ok(Self::Postgres)
        } else {
            Err(format!(
                "{shown:?}: use sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        }
    }
}

/// The URL with its password (in the authority or as a `password=` query
/// parameter) replaced by `***`, for logs, errors and `check-config`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// One of the two real pools.
#[derive(Clone, Debug)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Connections a gateway keeps to PostgreSQL at most. Queries are short
/// (one indexed row, or one page), so a few connections serve many
/// requests; PostgreSQL's default of 100 connections then leaves room for
/// several replicas, migrations and an operator's `psql`.
const PG_MAX_CONNECTIONS: u32 = 16;

/// How long a request waits for a pooled connection before the catalog
/// counts as unavailable (a 503, never a verdict): far below sqlx's 30 s,
/// so a database that is down shows in seconds, in answers and in
/// `/readyz`.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the first connection at start may take.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Pool {
    /// Opens the database `url` names and applies its migrations.
    pub(super) async fn connect(url: &str) -> Result<Self, CatalogError> {
        match Dialect::of_url(url).map_err(CatalogError::Url)? {
            Dialect::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    // WAL lets readers go on while ingest writes; NORMAL is
                    // durable across process crashes, which is what a 2xx
                    // promises.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await?;
                sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
                Ok(Self::Sqlite(pool))
            }
            Dialect::Postgres => {
                let mut options = PgConnectOptions::from_str(url)?;
                // Named in pg_stat_activity, unless the URL names it.
                if options.get_application_name().is_none() {
                    options = options.application_name("playback-gateway");
                }
                // One connection on its own first: its error says why
                // (refused, bad password, no such database), where the
                // pool would retry a refusal until a bare "timed out".
                let first = tokio::time::timeout(PG_CONNECT_TIMEOUT, options.connect())
                    .await
                    .map_err(|_| {
                        CatalogError::Unreachable(format!("no answer in {PG_CONNECT_TIMEOUT:?}"))
                    })?
                    .map_err(|e| CatalogError::Unreachable(e.to_string()))?;
                let _ = first.close().await;
                let pool = PgPoolOptions::new()
                    .max_connections(PG_MAX_CONNECTIONS)
                    .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                // Replicas starting together are serialised by the
                // migrator's advisory lock.
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    pub(super) fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }
}
