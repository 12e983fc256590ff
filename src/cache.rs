//! Caches (`moka`) in front of storage and catalog.
//!
//! [`HeadCache`] keeps storage `head` answers per key: found (size, ETag,
//! Last-Modified) for a normal TTL, not found for a short one.
//! [`RecordingCache`] keeps catalog entries the same way. Concurrent misses
//! for one key share a single call (single-flight). Transient errors are
//! never cached: the next request asks again. Verdicts are not cached:
//! they are a pure function of these cached inputs and the registry
//! snapshot, so a registry change applies to the very next request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use crate::catalog::{ApiKey, Catalog, CatalogError, Recording};
use crate::config::CacheConfig;
use crate::sid::RecordingSid;
use crate::storage::{ObjectMeta, Storage, StorageError};

/// A cached storage answer.
#[derive(Debug, Clone)]
pub enum Head {
    Found(Arc<ObjectMeta>),
    Missing,
}

/// Whether this gateway hears the other replicas' changes (see
/// `crate::invalidation`). While it does not, what it caches lives at most
/// [`DEGRADED_TTL`], so a change made through another replica shows within
/// that time instead of the normal TTL.
#[derive(Clone, Debug, Default)]
pub struct Freshness(Arc<AtomicBool>);

/// The longest anything is cached while changes cannot be heard.
pub const DEGRADED_TTL: Duration = Duration::from_secs(2);

impl Freshness {
    pub fn degraded(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn set_degraded(&self, degraded: bool) {
        self.0.store(degraded, Ordering::SeqCst);
    }

    fn cap(&self, ttl: Duration) -> Duration {
        if self.degraded() {
            ttl.min(DEGRADED_TTL)
        } else {
            ttl
        }
    }
}

/// Per-entry TTL: found entries live longer than negative ones.
struct ByAnswer {
    ttl: Duration,
    negative_ttl: Duration,
    freshness: Freshness,
}

impl Expiry<String, Head> for ByAnswer {
    fn expire_after_create(&self, _key: &String, value: &Head, _at: Instant) -> Option<Duration> {
        Some(self.freshness.cap(match value {
            Head::Found(_) => self.ttl,
            Head::Missing => self.negative_ttl,
        }))
    }
}

impl Expiry<RecordingSid, Option<Arc<Recording>>> for ByAnswer {
    fn expire_after_create(
        &self,
        _key: &RecordingSid,
        value: &Option<Arc<Recording>>,
        _at: Instant,
    ) -> Option<Duration> {
        Some(self.freshness.cap(if value.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        }))
    }
}

/// A size-bounded cache whose entries expire by what they hold.
fn bounded<K, V>(config: &CacheConfig, freshness: Freshness) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    ByAnswer: Expiry<K, V>,
{
    Cache::builder()
        .max_capacity(config.max_entries)
        .expire_after(ByAnswer {
            ttl: config.ttl,
            negative_ttl: config.negative_ttl,
            freshness,
        })
        .build()
}

/// Catalog entries by recording sid, shared by every request.
#[derive(Clone)]
pub struct RecordingCache {
    entries: Cache<RecordingSid, Option<Arc<Recording>>>,
    catalog: Catalog,
}

impl RecordingCache {
    pub fn new(catalog: Catalog, config: &CacheConfig, freshness: Freshness) -> Self {
        Self {
            entries: bounded(config, freshness),
            catalog,
        }
    }

    /// The catalog entry, from cache or database.
    pub async fn get(
        &self,
        sid: &RecordingSid,
    ) -> Result<Option<Arc<Recording>>, Arc<CatalogError>> {
        let catalog = &self.catalog;
        metrics::counter!("playback_cache_lookups_total", "cache" => "catalog").increment(1);
        self.entries
            .try_get_with_by_ref(sid, async move {
                metrics::counter!("playback_cache_misses_total", "cache" => "catalog").increment(1);
                Ok(catalog.get(sid).await?.map(Arc::new))
            })
            .await
    }

    /// What is cached for a recording, without asking the catalog: `None`
    /// when nothing is.
    pub async fn cached(&self, sid: &RecordingSid) -> Option<Option<Arc<Recording>>> {
        self.entries.get(sid).await
    }

    /// Forgets a recording at once (ingest or admin changed it).
    pub async fn invalidate(&self, sid: &RecordingSid) {
        self.entries.invalidate(sid).await;
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

/// How long a found API key is trusted without asking the catalog again:
/// a key revoked through this gateway stops working at once; revoked by
/// the `keys revoke` command or through another replica, within this.
pub const KEY_TTL: Duration = Duration::from_secs(10);

/// Live account API keys by the hash of their secret. Unknown hashes are
/// not cached: wrong secrets are what the failure rate limit is for, and
/// a key created elsewhere must work at once.
#[derive(Clone)]
pub struct KeyCache {
    entries: Cache<String, Arc<ApiKey>>,
    catalog: Catalog,
}

impl KeyCache {
    pub fn new(catalog: Catalog) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(KEY_TTL)
                .build(),
            catalog,
        }
    }

    /// The live key whose secret hashes to `hash`, if any.
    pub async fn by_hash(&self, hash: &str) -> Result<Option<Arc<ApiKey>>, CatalogError> {
        metrics::counter!("playback_cache_lookups_total", "cache" => "keys").increment(1);
        if let Some(key) = self.entries.get(hash).await {
            return Ok(Some(key));
        }
        metrics::counter!("playback_cache_misses_total", "cache" => "keys").increment(1);
        let Some(key) = self.catalog.key_by_hash(hash).await? else {
            return Ok(None);
        };
        let key = Arc::new(key);
        self.entries.insert(hash.to_owned(), key.clone()).await;
        Ok(Some(key))
    }

    /// Forgets every key (one was revoked: revocations are rare, and the
    /// cache does not know which hash belongs to which id).
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }
}

/// Storage `head` results by key, shared by every request.
#[derive(Clone)]
pub struct HeadCache {
    entries: Cache<String, Head>,
    storage: Arc<dyn Storage>,
}

impl HeadCache {
    pub fn new(storage: Arc<dyn Storage>, config: &CacheConfig, freshness: Freshness) -> Self {
        Self {
            entries: bounded(config, freshness),
            storage,
        }
    }

    /// The object's metadata, from cache or storage. Errors other than
    /// "not found" are shared with concurrent waiters but not stored.
    pub async fn head(&self, key: &str) -> Result<Head, Arc<StorageError>> {
        let storage = &self.storage;
        metrics::counter!("playback_cache_lookups_total", "cache" => "storage_head").increment(1);
        self.entries
            .try_get_with_by_ref(key, async move {
                metrics::counter!("playback_cache_misses_total", "cache" => "storage_head")
                    .increment(1);
                match storage.head(key).await {
                    Ok(meta) => Ok(Head::Found(Arc::new(meta))),
                    Err(StorageError::NotFound) => Ok(Head::Missing),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    /// Forgets a key at once (the object changed or appeared), its body
    /// kept in memory included.
    pub async fn invalidate(&self, key: &str) {
        self.entries.invalidate(key).await;
        self.storage.forget(Some(key));
    }

    /// Forgets every entry, bodies kept in memory included.
    pub fn clear(&self) {
        self.entries.invalidate_all();
        self.storage.forget(None);
    }

    /// The storage behind the cache, for reads that must not be cached.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{GetOptions, Object};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A storage double for the cache's own contract (integration tests use
    /// real storage): answers from a script and counts calls.
    struct Scripted {
        calls: AtomicUsize,
        answers: Mutex<Vec<Result<ObjectMeta, StorageError>>>,
    }

    #[async_trait::async_trait]
    impl Storage for Scripted {
        async fn head(&self, _key: &str) -> Result<ObjectMeta, StorageError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.answers.lock().unwrap().remove(0)
        }
        async fn get(&self, _: &str, _: GetOptions<'_>) -> Result<Object, StorageError> {
            Err(StorageError::NotFound)
        }
        async fn check(&self) -> Result<(), StorageError> {
            Ok(())
        }
        fn describe(&self) -> String {
            "scripted".into()
        }
    }

    fn meta() -> ObjectMeta {
        ObjectMeta {
            size: 1,
            etag: "\"a\"".into(),
            last_modified: None,
        }
    }

    fn cache(answers: Vec<Result<ObjectMeta, StorageError>>) -> (HeadCache, Arc<Scripted>) {
        let storage = Arc::new(Scripted {
            calls: AtomicUsize::new(0),
            answers: Mutex::new(answers),
        });
        let config = CacheConfig {
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_millis(100),
            max_entries: 100,
            bodies: crate::storage::BodyCacheConfig::default(),
        };
        (
            HeadCache::new(storage.clone(), &config, Freshness::default()),
            storage,
        )
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_storage_call() {
        let (cache, storage) = cache(vec![Ok(meta())]);
        let all = (0..1000).map(|_| cache.head("k"));
        let answers = futures_util::future::join_all(all).await;
        assert!(answers.iter().all(|a| matches!(a, Ok(Head::Found(_)))));
        assert_eq!(storage.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn transient_errors_are_not_cached() {
        let (cache, storage) = cache(vec![Err(StorageError::Unavailable("x".into())), Ok(meta())]);
        assert!(cache.head("k").await.is_err());
        assert!(matches!(cache.head("k").await, Ok(Head::Found(_))));
        assert_eq!(storage.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn negatives_expire_quickly_and_invalidation_is_immediate() {
        let (cache, storage) = cache(vec![
            Err(StorageError::NotFound),
            Err(StorageError::NotFound),
            Ok(meta()),
        ]);
        assert!(matches!(cache.head("k").await, Ok(Head::Missing)));
        assert!(matches!(cache.head("k").await, Ok(Head::Missing)));
        assert_eq!(storage.calls.load(Ordering::SeqCst), 1, "cached");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(matches!(cache.head("k").await, Ok(Head::Missing)));
        assert_eq!(storage.calls.load(Ordering::SeqCst), 2, "expired");
        cache.invalidate("k").await;
        assert!(matches!(cache.head("k").await, Ok(Head::Found(_))));
    }
}
