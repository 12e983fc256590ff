//! `spawn_app()`: a gateway on a random loopback port with fresh storage
//! (a temp directory or a key prefix in SeaweedFS) and a fresh catalog (a
//! SQLite file, or a new database on the test PostgreSQL).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use playback_gateway::app::{AppState, Application};
use playback_gateway::catalog::{Catalog, Recording, RecordingStatus};
use playback_gateway::config::{
    AccessConfig, CacheConfig, Config, Secret, StorageConfig, StoreConfig,
};
use playback_gateway::incidents::registry::Registry;
use playback_gateway::keys::{Format, KeyLayout};
use playback_gateway::server::ServerLimits;
use playback_gateway::sid::{AccountSid, RecordingSid};
use playback_gateway::storage::{
    BodyCacheConfig, Breaker, BreakerConfig, LocalStorage, S3Options, S3Storage, Storage,
};
use tokio::sync::oneshot;

use crate::{postgres, seaweed};

/// Where a test app keeps recordings and catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temp directory and SQLite: the embedded default.
    Local,
    /// SeaweedFS, and SQLite.
    S3,
    /// A temp directory, and the catalog in PostgreSQL (the catalog of
    /// several replicas).
    Postgres,
}

/// Generates one test per storage backend from `async fn name(backend:
/// Backend)`, and one more with the catalog in PostgreSQL: every such
/// test reads and writes the catalog too.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Local).await
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::S3).await
                }
            )*
        }
        $crate::both_catalogs!(@postgres $($name),*);
    };
}

/// Generates one test per catalog database (SQLite, PostgreSQL; recordings
/// in a temp directory) from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_catalogs {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Local).await
                }
            )*
        }
        $crate::both_catalogs!(@postgres $($name),*);
    };
    (@postgres $($name:ident),*) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Where a test app keeps its recordings, for seeding.
enum Seeder {
    Local(std::path::PathBuf),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        /// This test's key prefix in the shared bucket.
        prefix: String,
    },
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub catalog: Catalog,
    pub layout: KeyLayout,
    pub state: AppState,
    pub catalog_url: String,
    seeder: Seeder,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Knobs a few tests turn; everything else is the default.
#[derive(Clone)]
pub struct Options {
    pub s3_endpoint: Option<String>,
    /// `--s3-ca-file`'s certificates (the TLS tests' private CA).
    pub s3_extra_roots: Vec<playback_gateway::storage::CertificateDer<'static>>,
    pub s3_secret: Option<String>,
    pub bucket_exists: bool,
    pub grace: Duration,
    /// Open mode (the default here, so that HTTP tests need no keys; the
    /// access tests turn it off).
    pub open: bool,
    pub auth_failures_per_minute: u32,
    /// Extra CRM origins (CORS, frame-ancestors).
    pub cors_origins: Vec<String>,
    /// S3 read timeout (fault tests shorten it).
    pub s3_read_timeout: Duration,
    /// The circuit breaker in front of S3.
    pub breaker: BreakerConfig,
    pub server: ServerLimits,
    pub shutdown_delay: Duration,
    /// `--audit-every`.
    pub audit_every: Option<Duration>,
    /// Another S3 store than the shared SeaweedFS, for seeding and serving
    /// alike (the multi-node cluster test).
    pub store_endpoint: Option<String>,
    /// This key prefix in the shared bucket (replicas over S3 share one).
    pub s3_prefix: Option<String>,
    /// This catalog (replicas over S3 share a PostgreSQL one).
    pub catalog_url: Option<String>,
    /// Another replica: this catalog URL and recordings directory (from
    /// [`TestApp::store`]) instead of fresh ones.
    pub replica_of: Option<(String, std::path::PathBuf)>,
    /// `--body-cache-size` and `--body-cache-max-object`.
    pub body_cache: BodyCacheConfig,
    /// `--key-layout`.
    pub layout: KeyLayout,
    /// `--rate-limit`: requests per second per credential.
    pub rate_limit: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            s3_endpoint: None,
            s3_extra_roots: Vec::new(),
            s3_secret: None,
            bucket_exists: true,
            grace: Duration::from_secs(10),
            open: true,
            auth_failures_per_minute: 10_000,
            cors_origins: Vec::new(),
            s3_read_timeout: Duration::from_secs(5),
            breaker: BreakerConfig::default(),
            server: ServerLimits::default(),
            shutdown_delay: Duration::ZERO,
            audit_every: None,
            replica_of: None,
            store_endpoint: None,
            s3_prefix: None,
            catalog_url: None,
            body_cache: BodyCacheConfig::default(),
            layout: KeyLayout::default(),
            rate_limit: AccessConfig::default().rate_limit,
        }
    }
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Link keys: "new" signs, "old" still verifies (rotation).
pub const LINK_KEYS: &str =
    "new:new-link-secret-0123456789abcdef0123,old:old-link-secret-0123456789abcdef0123";
/// The CRM origin allowed by CORS and to frame the player.
pub const CRM_ORIGIN: &str = "http://crm.localhost";
/// What the test gateway believes clients call it by (webhook signatures).
pub const PUBLIC_URL: &str = "https://gateway.example";

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

fn cache_config(bodies: BodyCacheConfig) -> CacheConfig {
    CacheConfig {
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(5),
        max_entries: 10_000,
        bodies,
    }
}

pub async fn s3_client(endpoint: &str, secret: &str) -> S3Storage {
    S3Storage::connect(&S3Options {
        bucket: String::new(),
        prefix: String::new(),
        endpoint: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        path_style: true,
        credentials: Some((seaweed::ACCESS_KEY.into(), Secret::new(secret))),
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_secs(5),
        read_buffer: playback_gateway::storage::DEFAULT_READ_BUFFER,
        extra_roots: Vec::new(),
    })
    .await
}

/// The one bucket the S3 tests share, each test under its own key prefix:
/// a bucket per test would make SeaweedFS grow volumes for each, until it
/// runs out of them.
const SHARED_BUCKET: &str = "playback-tests";

/// Creates a bucket (or finds it made), polling while SeaweedFS starts.
async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client.create_bucket().bucket(bucket).send().await {
            Ok(_) => return,
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
                }) =>
            {
                return;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!(
                "SeaweedFS does not create buckets: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            ),
        }
    }
}

pub async fn spawn_app_with(backend: Backend, opts: Options) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (storage, seeder): (Arc<dyn Storage>, Seeder) = match backend {
        Backend::Local | Backend::Postgres => {
            let root = match &opts.replica_of {
                Some((_, root)) => root.clone(),
                None => dir.path().join("recordings"),
            };
            std::fs::create_dir_all(&root).unwrap();
            (Arc::new(LocalStorage::new(&root)), Seeder::Local(root))
        }
        Backend::S3 => {
            let store = match &opts.store_endpoint {
                Some(e) => e.clone(),
                None => seaweed::shared().s3_endpoint.clone(),
            };
            let admin = s3_client(&store, seaweed::SECRET_KEY).await;
            let (bucket, prefix) = if opts.bucket_exists {
                create_bucket(admin.client(), SHARED_BUCKET).await;
                (
                    SHARED_BUCKET.to_string(),
                    opts.s3_prefix
                        .clone()
                        .unwrap_or_else(|| format!("t-{}/", uuid::Uuid::new_v4().simple())),
                )
            } else {
                (
                    format!("t-{}", uuid::Uuid::new_v4().simple()),
                    String::new(),
                )
            };
            let storage = S3Storage::connect(&S3Options {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                endpoint: Some(opts.s3_endpoint.clone().unwrap_or(store)),
                region: Some("us-east-1".into()),
                path_style: true,
                credentials: Some((
                    seaweed::ACCESS_KEY.into(),
                    Secret::new(opts.s3_secret.as_deref().unwrap_or(seaweed::SECRET_KEY)),
                )),
                connect_timeout: Duration::from_secs(1),
                read_timeout: opts.s3_read_timeout,
                read_buffer: playback_gateway::storage::DEFAULT_READ_BUFFER,
                extra_roots: opts.s3_extra_roots.clone(),
            })
            .await;
            let seeder = Seeder::S3 {
                client: admin.client().clone(),
                bucket,
                prefix,
            };
            (Arc::new(Breaker::new(storage, opts.breaker)), seeder)
        }
    };
    let catalog_url = match (&opts.replica_of, backend) {
        (_, _) if opts.catalog_url.is_some() => opts.catalog_url.clone().unwrap_or_default(),
        (Some((url, _)), _) => url.clone(),
        (None, Backend::Local | Backend::S3) => {
            format!("sqlite://{}", dir.path().join("catalog.db").display())
        }
        (None, Backend::Postgres) => postgres::fresh_database().await,
    };
    let catalog = Catalog::connect(&catalog_url).await.unwrap();
    let layout = opts.layout.clone();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: StoreConfig {
            storage: StorageConfig::Local {
                root: dir.path().join("recordings"),
            },
            catalog_url: catalog_url.clone(),
            key_layout: layout.clone(),
            dir: Some(dir.path().into()),
        },
        cache: cache_config(opts.body_cache),
        shutdown_grace: opts.grace,
        retry_after: Duration::from_secs(7),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        incidents_dir: None,
        public_url: Some(PUBLIC_URL.into()),
        access: AccessConfig {
            open: opts.open,
            link_keys: playback_gateway::access::parse_link_keys(LINK_KEYS).unwrap(),
            cors_origins: std::iter::once(CRM_ORIGIN.to_string())
                .chain(opts.cors_origins.iter().cloned())
                .collect(),
            auth_failures_per_minute: opts.auth_failures_per_minute,
            rate_limit: opts.rate_limit,
            ..AccessConfig::default()
        },
        server: opts.server,
        request_timeout: Duration::from_secs(30),
        shutdown_delay: opts.shutdown_delay,
        audit_every: opts.audit_every,
    };
    let registry = Registry::load(catalog.clone(), None).await.unwrap();
    let state = AppState::new(storage, catalog.clone(), registry, &config);
    let app = Application::bind(config.listen, state.clone(), opts.grace)
        .await
        .unwrap();
    let addr = app.local_addr();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stop_rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        catalog,
        layout,
        state,
        catalog_url,
        seeder,
        stop: Some(stop_tx),
        server: Some(server),
        _dir: dir,
    }
}

pub fn random_sid<T: std::str::FromStr>(prefix: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
        .parse()
        .unwrap()
}

/// Deterministic pseudo-random bytes, so a wrong offset shows as wrong bytes.
pub fn audio_bytes(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ len as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// One recording seeded in storage and catalog.
pub struct Seeded {
    pub account: AccountSid,
    pub sid: RecordingSid,
    pub bytes: Vec<u8>,
}

impl Seeded {
    /// The gateway's own path: `/recordings/{sid}.{ext}`.
    pub fn path(&self, format: Format) -> String {
        format!("/recordings/{}.{}", self.sid, format.ext())
    }
    /// Twilio's path shape (no extension).
    pub fn twilio_path(&self) -> String {
        format!(
            "/2010-04-01/Accounts/{}/Recordings/{}",
            self.account, self.sid
        )
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn head(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.head(self.url(path))
    }

    /// `/metrics`, as an operator scrapes it.
    pub async fn metrics(&self) -> String {
        let res = self.get("/metrics").bearer_auth(ADMIN_TOKEN).send().await;
        res.unwrap().text().await.unwrap()
    }

    /// Writes an object straight into storage, bypassing the gateway.
    pub async fn put_object(&self, key: &str, bytes: &[u8]) {
        match &self.seeder {
            Seeder::Local(root) => {
                let path = root.join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                // Write then rename, as an uploader would: readers never
                // see a half-written file.
                let tmp = path.with_extension("partial");
                std::fs::write(&tmp, bytes).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
            }
            Seeder::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}{key}");
                // SeaweedFS may answer 500 while it grows volumes under
                // parallel tests; seeding is not what is tested, so it
                // tries again (bounded).
                let mut attempt = 0;
                loop {
                    let put = client
                        .put_object()
                        .bucket(bucket)
                        .key(&key)
                        .body(ByteStream::from(bytes.to_vec()))
                        .send()
                        .await;
                    match put {
                        Ok(_) => break,
                        Err(e) if attempt < 20 => {
                            attempt += 1;
                            let _ = e;
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        Err(e) => panic!(
                            "SeaweedFS refuses uploads: {}",
                            aws_sdk_s3::error::DisplayErrorContext(e)
                        ),
                    }
                }
            }
        }
    }

    pub async fn delete_object(&self, key: &str) {
        match &self.seeder {
            Seeder::Local(root) => std::fs::remove_file(root.join(key)).unwrap(),
            Seeder::S3 {
                client,
                bucket,
                prefix,
            } => {
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// This app's catalog URL and recordings directory, for a replica.
    pub fn store(&self) -> (String, std::path::PathBuf) {
        match &self.seeder {
            Seeder::Local(root) => (self.catalog_url.clone(), root.clone()),
            Seeder::S3 { .. } => panic!("store() on the S3 backend"),
        }
    }

    /// The local path of a key (local backend only).
    pub fn local_path(&self, key: &str) -> std::path::PathBuf {
        match &self.seeder {
            Seeder::Local(root) => root.join(key),
            Seeder::S3 { .. } => panic!("local_path on the S3 backend"),
        }
    }

    pub fn key(&self, s: &Seeded, format: Format) -> String {
        self.layout.render(Some(&s.account), &s.sid, format)
    }

    /// A completed recording of `len` bytes in both formats, in storage and
    /// in the catalog, from 08:00 PDT on 2017-05-09 (before the incident).
    pub async fn seed(&self, len: usize) -> Seeded {
        let s = Seeded {
            account: random_sid("AC"),
            sid: random_sid("RE"),
            bytes: audio_bytes(len),
        };
        for f in Format::ALL {
            self.put_object(&self.key(&s, f), &s.bytes).await;
        }
        let rec = recording(
            &s.account,
            &s.sid,
            "2017-05-09T15:00:00Z",
            60,
            RecordingStatus::Completed,
        );
        self.catalog.upsert(&rec).await.unwrap();
        s
    }

    /// One recording with a catalog row as given; `stored` puts 1,000 bytes
    /// of audio in storage in both formats.
    /// A completed recording of a new account whose call ended inside the
    /// 2017-05-09 incident's window (17:49 UTC), its audio not stored: the
    /// lost recording every verdict test needs.
    pub async fn seed_lost(&self) -> Seeded {
        let account = random_sid("AC");
        let at = "2017-05-09T17:49:00Z";
        self.seed_with(&account, at, 60, RecordingStatus::Completed, false)
            .await
    }

    pub async fn seed_with(
        &self,
        account: &AccountSid,
        start: &str,
        secs: u32,
        status: RecordingStatus,
        stored: bool,
    ) -> Seeded {
        let s = Seeded {
            account: account.clone(),
            sid: random_sid("RE"),
            bytes: audio_bytes(1_000),
        };
        if stored {
            for f in Format::ALL {
                self.put_object(&self.key(&s, f), &s.bytes).await;
            }
        }
        let mut rec = recording(account, &s.sid, start, secs, status);
        if status == RecordingStatus::Deleted {
            rec.deleted_at = Some("2018-05-09T00:00:00Z".parse().unwrap());
            rec.deleted_reason = Some("retention policy: 12 months".into());
        }
        if status == RecordingStatus::Absent {
            rec.error_code = Some(16102);
        }
        self.catalog.upsert(&rec).await.unwrap();
        s
    }

    /// Stops the server as SIGTERM would, and waits for the drain.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server.await.unwrap(),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// A catalog row for a mono call recorded from `start` (RFC 3339) for `secs`.
pub fn recording(
    account: &AccountSid,
    sid: &RecordingSid,
    start: &str,
    secs: u32,
    status: RecordingStatus,
) -> Recording {
    Recording {
        sid: sid.clone(),
        account_sid: account.clone(),
        call_sid: Some(random_sid("CA")),
        start_time: Some(start.parse().unwrap()),
        duration: Some(secs),
        channels: Some(1),
        source: Some("DialVerb".into()),
        track: None,
        status,
        error_code: None,
        formats: Format::ALL.to_vec(),
        deleted_at: None,
        deleted_reason: None,
    }
}

/// A problem+json body, checked for its shape.
pub async fn problem(res: reqwest::Response) -> serde_json::Value {
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{:?}",
        res.headers()
    );
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}
