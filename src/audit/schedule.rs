//! Audits run by the server: on a schedule (`--audit-every`) or on an
//! admin's request. The latest report is kept in memory for `/audit`, its
//! summary in the catalog (the trend), its counts in the metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::{AuditError, Kind, Options, Report, audit};
use crate::app::AppState;

/// Runs kept in the catalog for the trend.
const KEEP_RUNS: u32 = 200;

/// The server's audits (cheap to clone).
#[derive(Clone, Default)]
pub struct Audits {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    every: Option<Duration>,
    latest: RwLock<Option<Arc<Report>>>,
    last_error: RwLock<Option<String>>,
    running: AtomicBool,
}

/// Why an audit was not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("an audit is already running")]
    Busy,
    #[error(transparent)]
    Failed(#[from] AuditError),
}

impl Audits {
    pub fn new(every: Option<Duration>) -> Self {
        Self {
            inner: Arc::new(Inner {
                every,
                ..Inner::default()
            }),
        }
    }

    pub fn every(&self) -> Option<Duration> {
        self.inner.every
    }

    pub fn latest(&self) -> Option<Arc<Report>> {
        self.inner.latest.read().ok().and_then(|l| l.clone())
    }

    /// Why the last audit failed, if it did (cleared by a success).
    pub fn last_error(&self) -> Option<String> {
        self.inner.last_error.read().ok().and_then(|e| e.clone())
    }

    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Runs one audit of everything now, unless one is running.
    pub async fn run(&self, state: &AppState) -> Result<Arc<Report>, RunError> {
        if self.inner.running.swap(true, Ordering::SeqCst) {
            return Err(RunError::Busy);
        }
        let started = std::time::Instant::now();
        let result = audit(
            &state.catalog,
            state.heads.storage().clone(),
            &state.layout,
            state.registry.snapshot().to_vec(),
            Options::default(),
        )
        .await;
        self.inner.running.store(false, Ordering::SeqCst);
        let report = match result {
            Ok(r) => Arc::new(r),
            Err(e) => {
                metrics::counter!("playback_audit_runs_total", "outcome" => "failed").increment(1);
                tracing::warn!(error = %e, "loss audit failed; the previous result stands");
                if let Ok(mut slot) = self.inner.last_error.write() {
                    *slot = Some(e.to_string());
                }
                return Err(e.into());
            }
        };
        let s = &report.summary;
        metrics::counter!("playback_audit_runs_total", "outcome" => "ok").increment(1);
        metrics::gauge!("playback_audit_duration_seconds").set(started.elapsed().as_secs_f64());
        metrics::gauge!("playback_audit_last_success_timestamp_seconds")
            .set(s.finished_at.as_second() as f64);
        metrics::gauge!("playback_audit_recordings").set(s.counts.recordings as f64);
        metrics::gauge!("playback_audit_bursts").set(s.bursts.len() as f64);
        for kind in Kind::ALL {
            metrics::gauge!("playback_audit_findings", "kind" => kind.as_str())
                .set(s.counts.of(kind) as f64);
        }
        tracing::info!(
            recordings = s.counts.recordings,
            objects = s.counts.objects,
            unexplained = s.counts.missing_unexplained,
            explained = s.counts.missing_explained,
            unknown = s.counts.unknown_object,
            size_mismatch = s.counts.size_mismatch,
            bursts = s.bursts.len(),
            "loss audit done"
        );
        match serde_json::to_string(s) {
            Ok(json) => {
                if let Err(e) = state
                    .catalog
                    .save_audit_run(s.started_at, s.finished_at, &json, KEEP_RUNS)
                    .await
                {
                    tracing::warn!(error = %e, "could not keep the audit's summary for the trend");
                }
            }
            Err(e) => tracing::warn!(error = %e, "audit summary does not serialize"),
        }
        if let Ok(mut slot) = self.inner.latest.write() {
            *slot = Some(report.clone());
        }
        if let Ok(mut slot) = self.inner.last_error.write() {
            *slot = None;
        }
        Ok(report)
    }

    /// Runs an audit at once and then every `every`, until the task is
    /// aborted (at shutdown).
    pub fn spawn_schedule(&self, state: AppState) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.inner.every?;
        let audits = self.clone();
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // Failures are logged and counted by `run`; the schedule goes on.
                let _ = audits.run(&state).await;
            }
        }))
    }
}
