//! The command line: subcommands and their flags. Every flag can also come
//! from a `PLAYBACK_GATEWAY_*` environment variable, and most from the TOML
//! file given with `--config` (see `config`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;

#[derive(Debug, Parser)]
#[command(name = "playback-gateway", version, about)]
pub struct Cli {
    /// Log output: `pretty` for people, `json` for log pipelines.
    #[arg(long, env = "PLAYBACK_GATEWAY_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve recordings over HTTP.
    Serve(Box<ServeArgs>),
    /// Seed a synthetic 2017-05-09 into a data directory (once) and serve it.
    Demo(DemoArgs),
    /// Import recordings (Twilio's JSON lines, or CSV) into the catalog.
    Import(ImportArgs),
    /// Create or change an account: its name, time zone and the auth token
    /// Twilio signs its webhooks with.
    Account(AccountArgs),
    /// Account API keys: create, list, revoke.
    Keys(KeysArgs),
    /// Print a signed playback link to one recording.
    Sign(SignArgs),
    /// Check a configuration: every value, and that storage, catalog and
    /// incident files can be reached and read.
    CheckConfig(Box<ServeArgs>),
    /// Reconcile the catalog with storage (by listing) and report every
    /// missing recording, unknown object and wrong size. Exits with status
    /// 3 when unexplained losses exceed --max-unexplained.
    Audit(AuditArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// A directory of incident TOML files, besides the built-in one.
    #[arg(long, env = "PLAYBACK_GATEWAY_INCIDENTS", value_name = "DIR")]
    pub incidents: Option<PathBuf>,

    /// Only this account's recordings.
    #[arg(long, value_name = "SID")]
    pub account: Option<String>,

    /// Only recordings that started at or after this time (RFC 3339, e.g.
    /// 2017-05-09T00:00:00Z, or a date, taken as midnight UTC).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// Only recordings that started before this time.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// How the report is written to standard output.
    #[arg(long, value_enum, default_value = "text")]
    pub format: crate::audit::OutputFormat,

    /// Unexplained losses tolerated before the exit status says failure.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_unexplained: u64,

    /// A burst: at least this many unexplained losses…
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub burst_min: usize,

    /// …of calls ending within this long (`30m`).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub burst_window: String,
}

#[derive(Debug, Clone, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeysAction {
    /// Create a key; its secret is printed once and stored only as a hash.
    Create {
        #[arg(long, value_name = "SID")]
        account: String,
        /// The key may read but not write (no ingest).
        #[arg(long)]
        read_only: bool,
        /// What the key is for.
        #[arg(long)]
        label: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long, value_name = "SID")]
        account: Option<String>,
    },
    /// Revoke a key at once.
    Revoke {
        #[arg(value_name = "KEY_ID")]
        id: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    #[arg(long, value_name = "SID")]
    pub account: String,

    #[arg(long, value_name = "SID")]
    pub recording: String,

    /// Seconds the link lives.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u32,

    /// `mp3` or `wav`.
    #[arg(long, default_value = "mp3")]
    pub format: String,

    /// Link keys, `kid:secret[,…]`; the first signs (also from --config).
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_LINK_KEYS",
        hide_env_values = true,
        value_name = "KEYS"
    )]
    pub link_keys: Option<String>,

    /// The gateway's base URL to print before the path.
    #[arg(long, env = "PLAYBACK_GATEWAY_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// The account sid (`AC` + 32 hex digits).
    #[arg(long, value_name = "SID")]
    pub account: String,

    /// A name for pages and exports.
    #[arg(long)]
    pub name: Option<String>,

    /// The account's Twilio auth token (prefer the environment variable).
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub auth_token: Option<String>,

    /// The account's IANA time zone, e.g. America/Los_Angeles.
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The demo's data directory (created and seeded on first run).
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_DIR",
        value_name = "DIR",
        default_value = "demo-data"
    )]
    pub dir: PathBuf,

    /// Address to listen on.
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: String,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// A JSONL file (one Twilio Recording resource per line) or a CSV file
    /// with Twilio's field names in its header row.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The file's format [default: by extension, `.csv` or else JSONL].
    #[arg(long, value_enum)]
    pub format: Option<crate::import::FileFormat>,
}

/// Where recordings and the catalog live; shared by every subcommand that
/// touches them.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// A TOML file with any of these settings (flags and environment win).
    #[arg(long, env = "PLAYBACK_GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The data directory of the embedded default: recordings in
    /// DIR/recordings, the catalog in DIR/catalog.db.
    #[arg(long, env = "PLAYBACK_GATEWAY_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Recording storage: `file:///dir` or `s3://bucket[/prefix]`.
    #[arg(long, env = "PLAYBACK_GATEWAY_STORAGE", value_name = "URL")]
    pub storage: Option<String>,

    /// The catalog database: `sqlite://PATH`, or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` to share one catalog
    /// between replicas.
    #[arg(long, env = "PLAYBACK_GATEWAY_CATALOG", value_name = "URL")]
    pub catalog: Option<String>,

    /// Storage key of a recording, from `{account_sid}`, `{recording_sid}`
    /// and `{ext}` [default: {account_sid}/{recording_sid}.{ext}].
    #[arg(long, env = "PLAYBACK_GATEWAY_KEY_LAYOUT", value_name = "TEMPLATE")]
    pub key_layout: Option<String>,

    /// S3 endpoint for a compatible store (`http://127.0.0.1:8333`);
    /// leave out for Amazon S3.
    #[arg(long, env = "PLAYBACK_GATEWAY_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// S3 region [default: us-east-1, or the AWS environment's].
    #[arg(long, env = "PLAYBACK_GATEWAY_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,

    /// Path-style S3 addressing (`endpoint/bucket/key`), which most
    /// self-hosted stores need.
    #[arg(long, env = "PLAYBACK_GATEWAY_S3_PATH_STYLE")]
    pub s3_path_style: bool,

    /// S3 access key id; leave out (with the secret) to use the standard AWS
    /// chain: AWS_ACCESS_KEY_ID, profiles, instance roles.
    #[arg(long, env = "PLAYBACK_GATEWAY_S3_ACCESS_KEY_ID", value_name = "ID")]
    pub s3_access_key_id: Option<String>,

    /// S3 secret access key (prefer the environment variable to the flag).
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_S3_SECRET_ACCESS_KEY",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub s3_secret_access_key: Option<String>,

    /// Connect timeout to S3 [default: 3s].
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_S3_CONNECT_TIMEOUT",
        value_name = "DURATION"
    )]
    pub s3_connect_timeout: Option<String>,

    /// Longest wait for S3 response headers, and for any one read of a body
    /// [default: 10s].
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_S3_READ_TIMEOUT",
        value_name = "DURATION"
    )]
    pub s3_read_timeout: Option<String>,

    /// Largest read from the store for a listener that keeps up (slow
    /// listeners get 16 KiB reads): CPU per byte of fast downloads against
    /// their memory [default: 262144].
    #[arg(long, env = "PLAYBACK_GATEWAY_S3_READ_BUFFER", value_name = "BYTES")]
    pub s3_read_buffer: Option<usize>,

    /// PEM file of CA certificates to trust for an `https://` endpoint,
    /// besides the system's: a store behind a private CA.
    #[arg(long, env = "PLAYBACK_GATEWAY_S3_CA_FILE", value_name = "FILE")]
    pub s3_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "PLAYBACK_GATEWAY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// How long storage metadata is cached [default: 60s].
    #[arg(long, env = "PLAYBACK_GATEWAY_CACHE_TTL", value_name = "DURATION")]
    pub cache_ttl: Option<String>,

    /// How long a "not found" is cached [default: 5s].
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_CACHE_NEGATIVE_TTL",
        value_name = "DURATION"
    )]
    pub cache_negative_ttl: Option<String>,

    /// Most metadata entries cached [default: 100000].
    #[arg(long, env = "PLAYBACK_GATEWAY_CACHE_MAX_ENTRIES", value_name = "N")]
    pub cache_max_entries: Option<u64>,

    /// Memory for recent recordings' bytes, so that replays and seeks
    /// skip the store; 0 turns it off [default: 8MiB].
    #[arg(long, env = "PLAYBACK_GATEWAY_BODY_CACHE_SIZE", value_name = "SIZE")]
    pub body_cache_size: Option<String>,

    /// Larger recordings are never kept in memory [default: 8MiB].
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_BODY_CACHE_MAX_OBJECT",
        value_name = "SIZE"
    )]
    pub body_cache_max_object: Option<String>,

    /// Time in-flight requests get to finish on shutdown [default: 30s].
    #[arg(long, env = "PLAYBACK_GATEWAY_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,

    /// Bearer token that enables the admin API (at least 16 characters);
    /// without it the admin API is off.
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,

    /// The URL clients (and Twilio) use to reach the gateway, e.g.
    /// `https://recordings.example.com`: webhook signatures cover it, and a
    /// TLS-terminating proxy changes scheme and port [default: from the
    /// request's Host, as http].
    #[arg(long, env = "PLAYBACK_GATEWAY_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Open mode: anyone who reaches the gateway may read every recording
    /// without a credential (for demos; said loudly in the log and on every
    /// page). Presented credentials are still checked.
    #[arg(long, env = "PLAYBACK_GATEWAY_OPEN")]
    pub open: bool,

    /// Keys that sign playback links, `kid:secret[,kid:secret…]` (secrets of
    /// 32+ characters); the first signs new links, all verify (rotation).
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_LINK_KEYS",
        hide_env_values = true,
        value_name = "KEYS"
    )]
    pub link_keys: Option<String>,

    /// Clock difference allowed on a link's expiry [default: 30s].
    #[arg(long, env = "PLAYBACK_GATEWAY_LINK_SKEW", value_name = "DURATION")]
    pub link_skew: Option<String>,

    /// The longest a signed link may live; longer ones are refused, however
    /// they were signed [default: 7d].
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_LINK_MAX_LIFETIME",
        value_name = "DURATION"
    )]
    pub link_max_lifetime: Option<String>,

    /// CRM origins (comma-separated) allowed to call the gateway from a
    /// browser (CORS) and to frame the player.
    #[arg(long, env = "PLAYBACK_GATEWAY_CORS_ORIGINS", value_name = "ORIGINS")]
    pub cors_origins: Option<String>,

    /// Requests per second per credential [default: 200, burst 400].
    #[arg(long, env = "PLAYBACK_GATEWAY_RATE_LIMIT", value_name = "N")]
    pub rate_limit: Option<u32>,

    /// Failed authentications per minute per client address [default: 20].
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_AUTH_FAILURES_PER_MINUTE",
        value_name = "N"
    )]
    pub auth_failures_per_minute: Option<u32>,

    /// Time a client gets to send a request's headers [default: 10s].
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_HEADER_READ_TIMEOUT",
        value_name = "DURATION"
    )]
    pub header_read_timeout: Option<String>,

    /// Largest request head in bytes; larger gets 431 [default: 16384].
    #[arg(long, env = "PLAYBACK_GATEWAY_MAX_HEADER_BYTES", value_name = "N")]
    pub max_header_bytes: Option<usize>,

    /// Connections served at once; more are closed [default: 10000].
    #[arg(long, env = "PLAYBACK_GATEWAY_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Connections one client address (an IPv6 /64) may hold at once;
    /// behind a proxy that connects from one address, raise it to
    /// --max-connections [default: 1000].
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS",
        value_name = "N"
    )]
    pub max_connections_per_address: Option<usize>,

    /// A connection with nothing read or written for this long is closed [default: 120s].
    #[arg(long, env = "PLAYBACK_GATEWAY_IDLE_TIMEOUT", value_name = "DURATION")]
    pub idle_timeout: Option<String>,

    /// A client that takes no bytes for this long is cut off [default: 60s].
    #[arg(long, env = "PLAYBACK_GATEWAY_WRITE_TIMEOUT", value_name = "DURATION")]
    pub write_timeout: Option<String>,

    /// Longest a request may take to produce its response headers; a
    /// stream's body is not bounded by it [default: 30s].
    #[arg(
        long,
        env = "PLAYBACK_GATEWAY_REQUEST_TIMEOUT",
        value_name = "DURATION"
    )]
    pub request_timeout: Option<String>,

    /// On shutdown, how long /readyz says "draining" while connections are
    /// still accepted (let the load balancer stop first) [default: 0s].
    #[arg(long, env = "PLAYBACK_GATEWAY_SHUTDOWN_DELAY", value_name = "DURATION")]
    pub shutdown_delay: Option<String>,

    /// Run the loss audit at start and then this often (`6h`), showing the
    /// latest on /audit and in the metrics; `off` [default: off].
    #[arg(long, env = "PLAYBACK_GATEWAY_AUDIT_EVERY", value_name = "DURATION")]
    pub audit_every: Option<String>,

    /// A directory of extra incident definitions (`*.toml`), loaded at
    /// start beside the shipped ones.
    #[arg(long, env = "PLAYBACK_GATEWAY_INCIDENTS", value_name = "DIR")]
    pub incidents: Option<PathBuf>,

    /// `Retry-After` sent with 503 answers [default: 5s].
    #[arg(long, env = "PLAYBACK_GATEWAY_RETRY_AFTER", value_name = "DURATION")]
    pub retry_after: Option<String>,
}
