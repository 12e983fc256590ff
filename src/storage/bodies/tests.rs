//! The body cache over a real local directory, counting what reaches it.

use std::sync::atomic::AtomicUsize;

use futures_util::StreamExt;

use super::*;
use crate::splice::{Grant, Lane};
use crate::storage::LocalStorage;

/// Real storage that counts the reads it serves.
struct Counted {
    inner: LocalStorage,
    gets: AtomicUsize,
}

#[async_trait::async_trait]
impl Storage for Counted {
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        self.inner.head(key).await
    }
    async fn get(&self, key: &str, opts: GetOptions<'_>) -> Result<Object, StorageError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key, opts).await
    }
    async fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "counted".into()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Arc<Counted>,
    cache: BodyCache,
}

fn setup(config: BodyCacheConfig) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store = Arc::new(Counted {
        inner: LocalStorage::new(&root),
        gets: AtomicUsize::new(0),
    });
    let cache = BodyCache::new(store.clone(), config);
    Setup {
        _dir: dir,
        root,
        store,
        cache,
    }
}

impl Setup {
    fn put(&self, key: &str, bytes: &[u8]) {
        std::fs::write(self.root.join(key), bytes).unwrap();
    }

    fn gets(&self) -> usize {
        self.store.gets.load(Ordering::SeqCst)
    }

    async fn etag(&self, key: &str) -> String {
        self.store.head(key).await.unwrap().etag
    }

    /// Reads `range` of `key` to its end, conditioned on `etag`.
    async fn read(&self, key: &str, etag: &str, range: Option<ByteRange>) -> Vec<u8> {
        let opts = GetOptions {
            range,
            if_match: Some(etag),
            splice: None,
        };
        let mut body = self.cache.get(key, opts).await.unwrap().body;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn range(start: u64, end: u64) -> Option<ByteRange> {
    Some(ByteRange { start, end })
}

#[tokio::test]
async fn a_body_read_whole_answers_later_reads_and_ranges_from_memory() {
    let s = setup(BodyCacheConfig::default());
    let data = bytes(300_000);
    s.put("a.wav", &data);
    let etag = s.etag("a.wav").await;

    assert_eq!(s.read("a.wav", &etag, None).await, data);
    assert_eq!(s.gets(), 1);
    assert_eq!(s.read("a.wav", &etag, None).await, data);
    assert_eq!(s.read("a.wav", &etag, range(0, 0)).await, data[..1]);
    assert_eq!(
        s.read("a.wav", &etag, range(1000, 70_999)).await,
        data[1000..71_000]
    );
    assert_eq!(
        s.read("a.wav", &etag, range(299_999, 299_999)).await,
        data[299_999..]
    );
    assert_eq!(s.gets(), 1, "every read after the first came from memory");

    // A player's `bytes=0-` asks for all of it, too.
    let t = setup(BodyCacheConfig::default());
    t.put("b.wav", &data);
    let etag = t.etag("b.wav").await;
    t.read("b.wav", &etag, range(0, 299_999)).await;
    t.read("b.wav", &etag, range(5, 9)).await;
    assert_eq!(t.gets(), 1);
}

#[tokio::test]
async fn a_changed_object_is_read_from_the_store_again() {
    let s = setup(BodyCacheConfig::default());
    s.put("a.wav", &bytes(1000));
    let old = s.etag("a.wav").await;
    s.read("a.wav", &old, None).await;

    // Rewritten (a new size, so a new local ETag): the old tag no longer
    // matches anything, and the new one is read from the store.
    let new_data = bytes(2000);
    s.put("a.wav", &new_data);
    let new = s.etag("a.wav").await;
    assert_ne!(old, new);
    assert_eq!(s.read("a.wav", &new, None).await, new_data);
    assert_eq!(s.gets(), 2);
    let stale = GetOptions {
        range: None,
        if_match: Some(&old),
        splice: None,
    };
    assert!(matches!(
        s.cache.get("a.wav", stale).await.err(),
        Some(StorageError::Changed)
    ));
}

#[tokio::test]
async fn only_whole_complete_bodies_within_bounds_are_kept() {
    let s = setup(BodyCacheConfig {
        max_bytes: 1 << 20,
        max_object: 100_000,
    });
    s.put("part.wav", &bytes(50_000));
    s.put("big.wav", &bytes(100_001));
    // Over one read of the local store (64 KiB), so that it comes in two.
    s.put("left.wav", &bytes(100_000));
    let part = s.etag("part.wav").await;
    let big = s.etag("big.wav").await;
    let left = s.etag("left.wav").await;

    // A range is not the object.
    s.read("part.wav", &part, range(0, 999)).await;
    s.read("part.wav", &part, range(0, 999)).await;
    assert_eq!(s.gets(), 2);
    // Over the largest object kept.
    s.read("big.wav", &big, None).await;
    s.read("big.wav", &big, None).await;
    assert_eq!(s.gets(), 4);
    // A listener who left half-way: nothing kept, its budget given back.
    let opts = GetOptions {
        range: None,
        if_match: Some(&left),
        splice: None,
    };
    let mut body = s.cache.get("left.wav", opts).await.unwrap().body;
    body.next().await.unwrap().unwrap();
    drop(body);
    assert_eq!(s.cache.fills.budget.load(Ordering::SeqCst), 1 << 20);
    assert!(s.cache.fills.keys.lock().unwrap().is_empty());
    s.read("left.wav", &left, None).await;
    s.read("left.wav", &left, None).await;
    assert_eq!(s.gets(), 6, "kept once read whole");
}

#[tokio::test]
async fn one_copy_per_key_at_a_time_and_none_past_the_budget() {
    let s = setup(BodyCacheConfig {
        max_bytes: 150_000,
        max_object: 100_000,
    });
    s.put("a.wav", &bytes(100_000));
    s.put("b.wav", &bytes(100_000));
    let a = s.etag("a.wav").await;
    let b = s.etag("b.wav").await;
    let whole = |etag| GetOptions {
        range: None,
        if_match: Some(etag),
        splice: None,
    };
    let first = s.cache.get("a.wav", whole(&a)).await.unwrap().body;
    let second = s.cache.get("a.wav", whole(&a)).await.unwrap().body;
    // a's copy holds 100,000 of the 150,000: b's does not fit beside it.
    let third = s.cache.get("b.wav", whole(&b)).await.unwrap().body;
    assert_eq!(s.cache.fills.keys.lock().unwrap().len(), 1);
    for body in [first, second, third] {
        let n: usize = body
            .map(|c| c.unwrap().len())
            .collect::<Vec<_>>()
            .await
            .iter()
            .sum();
        assert_eq!(n, 100_000);
    }
    assert_eq!(s.cache.fills.budget.load(Ordering::SeqCst), 150_000);
    s.cache.entries.run_pending_tasks();
    assert!(s.cache.entries.contains_key("a.wav"));
    assert!(!s.cache.entries.contains_key("b.wav"));
}

#[tokio::test]
async fn the_recording_just_played_displaces_the_least_recently_used() {
    let s = setup(BodyCacheConfig {
        max_bytes: 250_000,
        max_object: 200_000,
    });
    s.put("old.wav", &bytes(100_000));
    s.put("new.wav", &bytes(200_000));
    let old = s.etag("old.wav").await;
    let new = s.etag("new.wav").await;
    for _ in 0..5 {
        s.read("old.wav", &old, None).await; // replayed often
    }
    s.read("new.wav", &new, None).await;
    s.cache.entries.run_pending_tasks();
    let before = s.gets();
    s.read("new.wav", &new, range(1000, 1999)).await;
    assert_eq!(s.gets(), before, "the newcomer is kept");
    s.read("old.wav", &old, None).await;
    assert_eq!(s.gets(), before + 1, "the older one made room");
}

#[tokio::test]
async fn forgetting_drops_kept_bodies() {
    let s = setup(BodyCacheConfig::default());
    s.put("a.wav", &bytes(1000));
    s.put("b.wav", &bytes(1000));
    let a = s.etag("a.wav").await;
    let b = s.etag("b.wav").await;
    s.read("a.wav", &a, None).await;
    s.read("b.wav", &b, None).await;
    s.cache.forget(Some("a.wav"));
    s.read("a.wav", &a, None).await;
    s.read("b.wav", &b, None).await;
    assert_eq!(s.gets(), 3, "a read again, b still kept");
    s.cache.forget(None);
    s.read("b.wav", &b, None).await;
    assert_eq!(s.gets(), 4);
}

#[test]
fn whole_means_from_the_first_byte_to_the_last() {
    assert!(whole(None, 10));
    assert!(whole(range(0, 9), 10));
    assert!(!whole(range(0, 8), 10));
    assert!(!whole(range(1, 9), 10));
}

#[tokio::test]
async fn a_body_being_kept_is_never_spliced() {
    let s = setup(BodyCacheConfig {
        max_bytes: 1 << 20,
        max_object: 100_000,
    });
    s.put("kept.wav", &bytes(50_000));
    s.put("big.wav", &bytes(200_000));
    for (key, kept) in [("kept.wav", true), ("big.wav", false)] {
        let etag = s.etag(key).await;
        let grant = Grant::new(Arc::new(Lane::default()));
        let opts = GetOptions {
            range: None,
            if_match: Some(&etag),
            splice: Some(&grant),
        };
        drop(s.cache.get(key, opts).await.unwrap());
        let waker = futures_util::task::noop_waker_ref();
        let revoked = grant.poll_room(&mut Context::from_waker(waker)).is_none();
        assert_eq!(revoked, kept, "{key}: the grant is revoked only for a copy");
    }
}
