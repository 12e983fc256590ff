//! Typed configuration, loaded once at start.
//!
//! Precedence: command-line flag, then environment (`PLAYBACK_GATEWAY_*`,
//! handled by clap on the same flag), then the TOML file given with
//! `--config`, then the default. A missing or bad value stops the start
//! with a message that names the flag, the variable and the file key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{ServeArgs, StoreArgs};
use crate::keys::KeyLayout;
use crate::storage::S3Options;

/// A secret that never prints (in `Debug`, logs or errors).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where recordings are stored.
#[derive(Debug, Clone)]
pub enum StorageConfig {
    /// `file:///dir`: one file per key under a directory.
    Local { root: PathBuf },
    /// `s3://bucket[/prefix]`.
    S3(S3Options),
}

/// Bounds of the metadata cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// How long a storage `head` answer is trusted.
    pub ttl: Duration,
    /// How long a "not found" is trusted: short, so that a recording
    /// uploaded late (during a recovery) plays soon even without an ingest
    /// event to invalidate it.
    pub negative_ttl: Duration,
    /// Most entries held (each is about 200 bytes).
    pub max_entries: u64,
    /// Recent bodies kept in memory (`storage::BodyCache`).
    pub bodies: crate::storage::BodyCacheConfig,
}

/// Everything the store-backed subcommands need: storage, catalog, layout.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub storage: StorageConfig,
    /// `sqlite://PATH` (the embedded default, `DIR/catalog.db`) or
    /// `postgres://…`. It may hold a password: show it through
    /// [`crate::catalog::redact_url`].
    pub catalog_url: String,
    pub key_layout: KeyLayout,
    /// The data directory, when one was given.
    pub dir: Option<PathBuf>,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// The gateway's configuration for `serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub store: StoreConfig,
    pub cache: CacheConfig,
    /// In-flight requests get this long to finish after SIGTERM/ctrl-c.
    pub shutdown_grace: Duration,
    /// Sent as `Retry-After` with 503 answers.
    pub retry_after: Duration,
    /// Bearer token of the admin API; `None` disables it.
    pub admin_token: Option<Secret>,
    /// Extra incident definitions (`*.toml`), beside the shipped ones.
    pub incidents_dir: Option<PathBuf>,
    /// How clients reach the gateway (scheme, host, port), no trailing `/`.
    pub public_url: Option<String>,
    pub access: AccessConfig,
    /// Connection-level limits.
    pub server: crate::server::ServerLimits,
    /// Longest a request may take to produce its response headers (a
    /// stream's body is not bounded by it).
    pub request_timeout: Duration,
    /// On shutdown, how long readiness says "draining" while connections
    /// are still accepted, so that a load balancer stops sending first.
    pub shutdown_delay: Duration,
    /// Run the loss audit this often (and once at start); `None`: never.
    pub audit_every: Option<Duration>,
}

/// Who may read without a credential, and how links and browsers are let in.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// Anyone may read without a credential (the demo; said loudly in the
    /// log and on every page). Presented credentials are still checked.
    pub open: bool,
    /// Keys that sign playback links; the first signs new ones.
    pub link_keys: Vec<crate::access::LinkKey>,
    /// Clock difference allowed when checking a link's expiry.
    pub link_skew: Duration,
    /// The longest a signed link may live, checked on every link.
    pub link_max_lifetime: Duration,
    /// CRM origins allowed to call the gateway and to frame the player.
    pub cors_origins: Vec<String>,
    /// Requests per second per credential (burst: twice that).
    pub rate_limit: u32,
    /// Failed authentications per minute per client address.
    pub auth_failures_per_minute: u32,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            open: false,
            link_keys: Vec::new(),
            link_skew: Duration::from_secs(30),
            link_max_lifetime: crate::access::DEFAULT_LINK_MAX_LIFETIME,
            cors_origins: Vec::new(),
            rate_limit: 200,
            auth_failures_per_minute: 20,
        }
    }
}

/// The TOML file: the same names as the flags, with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub dir: Option<PathBuf>,
    pub storage: Option<String>,
    pub catalog: Option<String>,
    pub key_layout: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_path_style: Option<bool>,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<Secret>,
    pub s3_connect_timeout: Option<String>,
    pub s3_read_timeout: Option<String>,
    pub s3_read_buffer: Option<usize>,
    pub s3_ca_file: Option<PathBuf>,
    pub cache_ttl: Option<String>,
    pub cache_negative_ttl: Option<String>,
    pub cache_max_entries: Option<u64>,
    pub body_cache_size: Option<String>,
    pub body_cache_max_object: Option<String>,
    pub shutdown_grace: Option<String>,
    pub retry_after: Option<String>,
    pub log_format: Option<LogFormat>,
    pub admin_token: Option<Secret>,
    pub incidents: Option<PathBuf>,
    pub public_url: Option<String>,
    pub open: Option<bool>,
    pub link_keys: Option<Secret>,
    pub link_skew: Option<String>,
    pub link_max_lifetime: Option<String>,
    pub cors_origins: Option<Vec<String>>,
    pub rate_limit: Option<u32>,
    pub auth_failures_per_minute: Option<u32>,
    pub header_read_timeout: Option<String>,
    pub max_header_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub idle_timeout: Option<String>,
    pub write_timeout: Option<String>,
    pub request_timeout: Option<String>,
    pub shutdown_delay: Option<String>,
    pub audit_every: Option<String>,
}

/// A configuration error: says which setting and why.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn bad(what: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{what}: {why}"))
}

impl FileConfig {
    /// Reads `--config FILE`, if one was given.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(&format!("--config {}", path.display()), e))?;
        toml::from_str(&text).map_err(|e| bad(&format!("--config {}", path.display()), e))
    }
}

/// A duration such as `30s`, `5m` or `1h 30m`.
pub fn parse_duration(what: &str, s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        bad(
            what,
            format!("{s:?} is not a duration like 30s or 5m ({e})"),
        )
    })
}

fn duration(
    what: &str,
    flag: Option<&str>,
    file: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    flag.or(file)
        .map_or(Ok(default), |s| parse_duration(what, s))
}

/// A number of bytes such as `16MiB`, `512KiB` or `1048576`.
pub fn parse_size(what: &str, s: &str) -> Result<u64, ConfigError> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            bad(
                what,
                format!("{s:?} is not a size like 16MiB, 512KiB or 1048576 ({e})"),
            )
        })
}

fn size(
    what: &str,
    flag: Option<&str>,
    file: Option<&str>,
    default: u64,
) -> Result<u64, ConfigError> {
    flag.or(file).map_or(Ok(default), |s| parse_size(what, s))
}

/// A parsed `--storage` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    File(PathBuf),
    S3 { bucket: String, prefix: String },
}

/// Parses `file:///dir` or `s3://bucket[/prefix]`.
pub fn parse_storage_url(url: &str) -> Result<StorageUrl, ConfigError> {
    let what = "--storage (PLAYBACK_GATEWAY_STORAGE, storage)";
    let shape = || {
        bad(
            what,
            format!("{url:?} is not file:///dir or s3://bucket[/prefix]"),
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(shape)?;
    match scheme {
        "file" if !rest.is_empty() => Ok(StorageUrl::File(rest.into())),
        "s3" => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if !valid {
                return Err(bad(what, format!("{bucket:?} is not a valid bucket name")));
            }
            let prefix = match prefix.trim_matches('/') {
                "" => String::new(),
                p if crate::storage::key_is_safe(p) => format!("{p}/"),
                p => return Err(bad(what, format!("{p:?} is not a safe key prefix"))),
            };
            Ok(StorageUrl::S3 {
                bucket: bucket.into(),
                prefix,
            })
        }
        _ => Err(shape()),
    }
}

impl StoreConfig {
    /// Resolves storage, catalog and layout from flags/env and the file.
    pub fn resolve(args: &StoreArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let dir = args.dir.clone().or(file.dir.clone());
        let storage_url = args.storage.clone().or(file.storage.clone());
        let storage = match (storage_url, &dir) {
            (Some(url), _) => match parse_storage_url(&url)? {
                StorageUrl::File(root) => StorageConfig::Local { root },
                StorageUrl::S3 { bucket, prefix } => {
                    StorageConfig::S3(s3_options(args, file, bucket, prefix)?)
                }
            },
            (None, Some(dir)) => StorageConfig::Local {
                root: dir.join("recordings"),
            },
            (None, None) => {
                return Err(ConfigError(
                    "no storage: give --dir DIR (PLAYBACK_GATEWAY_DIR) for the embedded default, \
                     or --storage URL (PLAYBACK_GATEWAY_STORAGE, `storage` in --config)"
                        .into(),
                ));
            }
        };
        let catalog_url = match (args.catalog.clone().or(file.catalog.clone()), &dir) {
            (Some(url), _) => url,
            (None, Some(dir)) => format!("sqlite://{}", dir.join("catalog.db").display()),
            (None, None) => {
                return Err(ConfigError(
                    "no catalog: give --dir DIR (PLAYBACK_GATEWAY_DIR) or --catalog URL \
                     (PLAYBACK_GATEWAY_CATALOG, `catalog` in --config)"
                        .into(),
                ));
            }
        };
        crate::catalog::Dialect::of_url(&catalog_url)
            .map_err(|e| bad("--catalog (PLAYBACK_GATEWAY_CATALOG, catalog)", e))?;
        let key_layout = match args.key_layout.clone().or(file.key_layout.clone()) {
            Some(s) => s
                .parse()
                .map_err(|e| bad("--key-layout (PLAYBACK_GATEWAY_KEY_LAYOUT, key_layout)", e))?,
            None => KeyLayout::default(),
        };
        Ok(Self {
            storage,
            catalog_url,
            key_layout,
            dir,
        })
    }
}

impl Config {
    /// Resolves the `serve` configuration.
    pub fn resolve(args: &ServeArgs, file: &FileConfig) -> Result<Self, ConfigError> {
        let listen = args
            .listen
            .clone()
            .or(file.listen.clone())
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen.parse().map_err(|e| {
            bad(
                "--listen (PLAYBACK_GATEWAY_LISTEN, listen)",
                format!("{listen:?} is not an address like 127.0.0.1:8080 ({e})"),
            )
        })?;
        let max_entries = args
            .cache_max_entries
            .or(file.cache_max_entries)
            .unwrap_or(100_000);
        Ok(Self {
            listen,
            store: StoreConfig::resolve(&args.store, file)?,
            cache: CacheConfig {
                ttl: duration(
                    "--cache-ttl (PLAYBACK_GATEWAY_CACHE_TTL, cache_ttl)",
                    args.cache_ttl.as_deref(),
                    file.cache_ttl.as_deref(),
                    Duration::from_secs(60),
                )?,
                negative_ttl: duration(
                    "--cache-negative-ttl (PLAYBACK_GATEWAY_CACHE_NEGATIVE_TTL, cache_negative_ttl)",
                    args.cache_negative_ttl.as_deref(),
                    file.cache_negative_ttl.as_deref(),
                    Duration::from_secs(5),
                )?,
                max_entries,
                bodies: body_cache(args, file)?,
            },
            shutdown_grace: duration(
                "--shutdown-grace (PLAYBACK_GATEWAY_SHUTDOWN_GRACE, shutdown_grace)",
                args.shutdown_grace.as_deref(),
                file.shutdown_grace.as_deref(),
                Duration::from_secs(30),
            )?,
            retry_after: duration(
                "--retry-after (PLAYBACK_GATEWAY_RETRY_AFTER, retry_after)",
                args.retry_after.as_deref(),
                file.retry_after.as_deref(),
                Duration::from_secs(5),
            )?,
            admin_token: match args
                .admin_token
                .clone()
                .map(Secret)
                .or(file.admin_token.clone())
            {
                Some(t) if t.expose().len() < 16 => {
                    return Err(bad(
                        "--admin-token (PLAYBACK_GATEWAY_ADMIN_TOKEN, admin_token)",
                        "use at least 16 characters",
                    ));
                }
                t => t,
            },
            incidents_dir: args.incidents.clone().or(file.incidents.clone()),
            public_url: match args.public_url.clone().or(file.public_url.clone()) {
                Some(u)
                    if !(u.starts_with("http://") || u.starts_with("https://"))
                        || u.trim_end_matches('/').matches('/').count() > 2 =>
                {
                    return Err(bad(
                        "--public-url (PLAYBACK_GATEWAY_PUBLIC_URL, public_url)",
                        format!("{u:?} is not a base URL like https://recordings.example.com"),
                    ));
                }
                u => u.map(|u| u.trim_end_matches('/').to_owned()),
            },
            access: access_config(args, file)?,
            server: server_limits(args, file)?,
            request_timeout: duration(
                "--request-timeout (PLAYBACK_GATEWAY_REQUEST_TIMEOUT, request_timeout)",
                args.request_timeout.as_deref(),
                file.request_timeout.as_deref(),
                Duration::from_secs(30),
            )?,
            shutdown_delay: duration(
                "--shutdown-delay (PLAYBACK_GATEWAY_SHUTDOWN_DELAY, shutdown_delay)",
                args.shutdown_delay.as_deref(),
                file.shutdown_delay.as_deref(),
                Duration::ZERO,
            )?,
            audit_every: match args.audit_every.as_deref().or(file.audit_every.as_deref()) {
                None | Some("off") => None,
                Some(s) => {
                    let what = "--audit-every (PLAYBACK_GATEWAY_AUDIT_EVERY, audit_every)";
                    let d = parse_duration(what, s)?;
                    if d < Duration::from_secs(60) {
                        return Err(bad(what, format!("{s:?} is more often than once a minute")));
                    }
                    Some(d)
                }
            },
        })
    }
}

mod sections;
use sections::{access_config, body_cache, s3_options, server_limits};

#[cfg(test)]
mod tests;
