//! Application state, start-up and graceful shutdown.
//!
//! [`AppState::build`] connects storage and catalog and loads the registry;
//! [`Application::bind`] binds the socket (port 0 allowed), so tests build
//! exactly the app that `serve` runs and read the bound address back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::cache::{HeadCache, RecordingCache};
use crate::catalog::{Catalog, redact_url};
use crate::config::{Config, Secret, StorageConfig, StoreConfig};
use crate::incidents::registry::Registry;
use crate::keys::KeyLayout;
use crate::storage::{
    BodyCache, Breaker, BreakerConfig, LocalStorage, S3Storage, Storage, StorageError,
};

/// Everything a request handler needs, cloned per request (and per layer
/// of middleware): one reference count, whatever [`Shared`] holds.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares: handles to the caches, catalog, registry and
/// settings.
#[derive(Clone)]
pub struct Shared {
    /// Storage behind its metadata cache.
    pub heads: HeadCache,
    pub catalog: Catalog,
    /// Catalog entries, cached.
    pub recordings: RecordingCache,
    /// Account API keys, cached briefly.
    pub keys: crate::cache::KeyCache,
    /// Loss audits: the schedule and the latest report.
    pub audits: crate::audit::Audits,
    /// Whether other replicas' changes are heard (else caches are short).
    pub freshness: crate::cache::Freshness,
    pub registry: Registry,
    pub layout: Arc<KeyLayout>,
    /// Sent as `Retry-After` with every 503.
    pub retry_after: Duration,
    /// Enables the admin API; `None` disables it.
    pub admin_token: Option<Secret>,
    /// How clients reach us (webhook signatures cover it).
    pub public_url: Option<Arc<str>>,
    /// Open mode, link keys, CORS origins.
    pub access: Arc<crate::config::AccessConfig>,
    /// Rate limits per credential and per address.
    pub limits: Arc<crate::http::auth::Limits>,
    /// Renders the Prometheus metrics.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Set when shutdown begins: readiness answers 503 from then on.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Connection-level limits of the server loop.
    pub limits_server: crate::server::ServerLimits,
    /// Longest a request may take to produce its response headers.
    pub request_timeout: Duration,
    /// Readiness says "draining" this long before connections are refused.
    pub shutdown_delay: Duration,
    /// Serving the demo: `/` is the demo CRM page.
    pub demo: Option<Arc<crate::demo::DemoInfo>>,
}

impl AppState {
    /// Connects storage and catalog and loads the registry.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let storage = open_storage(&config.store).await?;
        let catalog = open_catalog(&config.store).await?;
        let registry = Registry::load(catalog.clone(), config.incidents_dir.as_deref()).await?;
        Ok(Self::new(storage, catalog, registry, config))
    }

    /// Assembles a state from parts (tests build theirs this way).
    pub fn new(
        storage: Arc<dyn Storage>,
        catalog: Catalog,
        registry: Registry,
        config: &Config,
    ) -> Self {
        let mut storage: Arc<dyn Storage> = Arc::new(crate::observe::Instrumented(storage));
        // Outside the instrumentation: a hit is no storage call.
        if config.cache.bodies.max_bytes > 0 {
            storage = Arc::new(BodyCache::new(storage, config.cache.bodies));
        }
        let freshness = crate::cache::Freshness::default();
        Self(Arc::new(Shared {
            metrics: crate::observe::handle(),
            heads: HeadCache::new(storage, &config.cache, freshness.clone()),
            recordings: RecordingCache::new(catalog.clone(), &config.cache, freshness.clone()),
            freshness,
            keys: crate::cache::KeyCache::new(catalog.clone()),
            audits: crate::audit::Audits::new(config.audit_every),
            catalog,
            registry,
            layout: Arc::new(config.store.key_layout.clone()),
            retry_after: config.retry_after,
            admin_token: config.admin_token.clone(),
            public_url: config.public_url.as_deref().map(Arc::from),
            access: Arc::new(config.access.clone()),
            limits: Arc::new(crate::http::auth::Limits::new(
                config.access.rate_limit,
                config.access.auth_failures_per_minute,
            )),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            limits_server: config.server,
            request_timeout: config.request_timeout,
            shutdown_delay: config.shutdown_delay,
            demo: None,
        }))
    }

    /// The same state, serving the demo.
    pub fn with_demo(mut self, demo: Arc<crate::demo::DemoInfo>) -> Self {
        Arc::make_mut(&mut self.0).demo = Some(demo);
        self
    }
}

impl AppState {
    /// Forgets everything cached about a recording, so that a change (a
    /// webhook, an import through the API, a late upload) shows at once.
    pub async fn forget(&self, rec: &crate::catalog::Recording) {
        self.recordings.invalidate(&rec.sid).await;
        for format in crate::keys::Format::ALL {
            let key = self.layout.render(Some(&rec.account_sid), &rec.sid, format);
            self.heads.invalidate(&key).await;
        }
    }
}

/// Opens the configured storage. A local directory of the embedded default
/// is created; an explicit one must exist.
pub async fn open_storage(store: &StoreConfig) -> anyhow::Result<Arc<dyn Storage>> {
    let storage: Arc<dyn Storage> = match &store.storage {
        StorageConfig::Local { root } => {
            if store.dir.as_ref().is_some_and(|d| root.starts_with(d)) {
                tokio::fs::create_dir_all(root)
                    .await
                    .with_context(|| format!("creating {}", root.display()))?;
            }
            Arc::new(LocalStorage::new(root))
        }
        // The network store sits behind a circuit breaker: while it is down,
        // answers come at once instead of after timeouts and retries.
        StorageConfig::S3(opts) => Arc::new(Breaker::new(
            S3Storage::connect(opts).await,
            BreakerConfig::default(),
        )),
    };
    match storage.check().await {
        Ok(()) => {}
        // A store that is down now may be up in a minute: start, and let
        // readiness say so. A store that refuses us will not get better.
        Err(StorageError::Unavailable(e)) => {
            tracing::warn!(error = %e, "storage unavailable at start; /readyz will say so");
        }
        Err(e) => {
            return Err(anyhow::anyhow!(e)).context(format!("storage {}", storage.describe()));
        }
    }
    Ok(storage)
}

/// Opens the catalog, creating the data directory of the embedded default.
pub async fn open_catalog(store: &StoreConfig) -> anyhow::Result<Catalog> {
    if let Some(dir) = &store.dir {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    Catalog::connect(&store.catalog_url)
        .await
        .with_context(|| format!("catalog {}", redact_url(&store.catalog_url)))
}

/// A built, bound application, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    grace: Duration,
}

impl Application {
    /// Binds `listen` for a built state.
    pub async fn bind(
        listen: SocketAddr,
        state: AppState,
        grace: Duration,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("--listen {listen}: cannot bind"))?;
        Ok(Self {
            listener,
            state,
            grace,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes; then readiness turns to
    /// "draining", no connection is accepted any more, and in-flight
    /// requests get the grace period to finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let draining = self.state.draining.clone();
        let (limits, delay) = (self.state.limits_server, self.state.shutdown_delay);
        let audits = self.state.audits.spawn_schedule(self.state.clone());
        let notices = crate::invalidation::spawn(self.state.clone());
        let router = crate::http::router(self.state);
        let stop = async move {
            shutdown.await;
            // Readiness flips first; connections are still taken for a
            // moment, so that a load balancer can stop sending.
            draining.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!(delay = ?delay, "shutdown: readiness says draining");
            tokio::time::sleep(delay).await;
        };
        let served = crate::server::serve(self.listener, router, limits, stop, self.grace).await;
        for task in [audits, notices].into_iter().flatten() {
            task.abort();
        }
        served?;
        Ok(())
    }
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
