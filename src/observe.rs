//! Prometheus metrics (`metrics` facade, Prometheus text exporter).
//!
//! The recorder is process-wide by the `metrics` crate's design; it is
//! installed once and its handle kept in the app state, which renders it
//! at `/metrics` (admin credential).

use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::storage::{GetOptions, Object, ObjectMeta, Storage, StorageError};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once per process) and returns its handle.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness):
            // then ours only renders nothing, which tests notice.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Storage calls, timed by operation and outcome.
pub struct Instrumented(pub std::sync::Arc<dyn Storage>);

fn outcome<T>(r: &Result<T, StorageError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(StorageError::NotFound) => "not_found",
        Err(StorageError::Changed) => "changed",
        Err(StorageError::Unavailable(_)) => "unavailable",
        Err(StorageError::Misconfigured(_)) => "misconfigured",
    }
}

fn observe<T>(op: &'static str, started: Instant, r: &Result<T, StorageError>) {
    metrics::histogram!("playback_storage_seconds", "op" => op, "outcome" => outcome(r))
        .record(started.elapsed().as_secs_f64());
}

#[async_trait::async_trait]
impl Storage for Instrumented {
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let t = Instant::now();
        let r = self.0.head(key).await;
        observe("head", t, &r);
        r
    }
    async fn get(&self, key: &str, opts: GetOptions<'_>) -> Result<Object, StorageError> {
        let t = Instant::now();
        let r = self.0.get(key, opts).await;
        observe("get", t, &r);
        r
    }
    async fn check(&self) -> Result<(), StorageError> {
        let t = Instant::now();
        let r = self.0.check().await;
        observe("check", t, &r);
        r
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn list(&self, prefix: &str) -> crate::storage::ListStream {
        self.0.list(prefix)
    }
    fn forget(&self, key: Option<&str>) {
        self.0.forget(key);
    }
}

/// The verdict a response answered, for the request metric and the log.
#[derive(Debug, Clone, Copy)]
pub struct VerdictTag(pub &'static str);
