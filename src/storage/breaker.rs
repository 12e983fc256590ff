//! A circuit breaker in front of a store: after a run of transient
//! failures it answers "unavailable" at once for a cool-down, instead of
//! making every request wait for timeouts and retries; then one request at
//! a time probes whether the store is back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{GetOptions, Object, ObjectMeta, Storage, StorageError};

/// When to open, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the circuit.
    pub threshold: u32,
    /// How long it stays open before a probe.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            threshold: 5,
            cooldown: Duration::from_secs(5),
        }
    }
}

/// A store behind a circuit breaker.
pub struct Breaker<S> {
    inner: S,
    config: BreakerConfig,
    failures: AtomicU32,
    /// `Some(t)`: open until `t`; a probe is let through after it.
    open_until: Mutex<Option<Instant>>,
}

impl<S: Storage> Breaker<S> {
    pub fn new(inner: S, config: BreakerConfig) -> Self {
        Self {
            inner,
            config,
            failures: AtomicU32::new(0),
            open_until: Mutex::new(None),
        }
    }

    /// Refuses at once while open; past the cool-down, lets one caller
    /// through as a probe and keeps the others out for another cool-down.
    fn admit(&self) -> Result<(), StorageError> {
        let mut open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
        match *open {
            Some(until) if Instant::now() < until => Err(StorageError::Unavailable(
                "circuit open: storage failed repeatedly, not asking it for a while".into(),
            )),
            Some(_) => {
                *open = Some(Instant::now() + self.config.cooldown);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn record<T>(&self, result: &Result<T, StorageError>) {
        match result {
            Err(StorageError::Unavailable(_)) => {
                let n = self.failures.fetch_add(1, Ordering::SeqCst) + 1;
                if n >= self.config.threshold {
                    let mut open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
                    if open.is_none() {
                        tracing::warn!(failures = n, cooldown = ?self.config.cooldown, "storage circuit opened");
                    }
                    *open = Some(Instant::now() + self.config.cooldown);
                }
            }
            // An answer, even "not found" or "misconfigured", means the store is up.
            _ => {
                self.failures.store(0, Ordering::SeqCst);
                let mut open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
                if open.take().is_some() {
                    tracing::info!("storage circuit closed");
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl<S: Storage> Storage for Breaker<S> {
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        self.admit()?;
        let r = self.inner.head(key).await;
        self.record(&r);
        r
    }

    async fn get(&self, key: &str, opts: GetOptions<'_>) -> Result<Object, StorageError> {
        self.admit()?;
        let r = self.inner.get(key, opts).await;
        self.record(&r);
        r
    }

    /// Readiness asks the store itself, so that it sees recovery.
    async fn check(&self) -> Result<(), StorageError> {
        let r = self.inner.check().await;
        self.record(&r);
        r
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    /// Listing is the audit's, not a listener's: it is not held back by an
    /// open breaker, and its errors end the audit rather than trip it.
    fn list(&self, prefix: &str) -> super::ListStream {
        self.inner.list(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    /// A store double for the breaker's own contract.
    struct Flaky {
        down: Arc<AtomicBool>,
        calls: Arc<AtomicU32>,
    }

    #[async_trait::async_trait]
    impl Storage for Flaky {
        async fn head(&self, _: &str) -> Result<ObjectMeta, StorageError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err(StorageError::Unavailable("down".into()))
            } else {
                Err(StorageError::NotFound)
            }
        }
        async fn get(&self, _: &str, _: GetOptions<'_>) -> Result<Object, StorageError> {
            Err(StorageError::NotFound)
        }
        async fn check(&self) -> Result<(), StorageError> {
            Ok(())
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    #[tokio::test]
    async fn opens_after_a_run_of_failures_and_probes_after_the_cooldown() {
        let (down, calls) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU32::new(0)));
        let b = Breaker::new(
            Flaky {
                down: down.clone(),
                calls: calls.clone(),
            },
            BreakerConfig {
                threshold: 3,
                cooldown: Duration::from_millis(100),
            },
        );
        for _ in 0..10 {
            assert!(matches!(
                b.head("k").await,
                Err(StorageError::Unavailable(_))
            ));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "open after three: the rest answered at once"
        );
        down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(
            matches!(b.head("k").await, Err(StorageError::NotFound)),
            "the probe gets through"
        );
        assert!(
            matches!(b.head("k").await, Err(StorageError::NotFound)),
            "closed again"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }
}
