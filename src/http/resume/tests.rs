//! Resumes over a real local directory; a wrapper cuts its bodies the way
//! a store does, after a number of bytes.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::{StreamExt, stream};

use super::*;
use crate::storage::{LocalStorage, ObjectMeta};

const KEY: &str = "AC1/RE1.wav";

/// Reads `inner`, but every body it gives fails after `cut` bytes.
struct Cutting {
    inner: LocalStorage,
    cut: usize,
    gets: AtomicUsize,
}

#[async_trait::async_trait]
impl Storage for Cutting {
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        self.inner.head(key).await
    }

    async fn get(&self, key: &str, opts: GetOptions<'_>) -> Result<Object, StorageError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let object = self.inner.get(key, opts).await?;
        Ok(Object {
            meta: object.meta,
            body: cut(object.body, self.cut),
        })
    }

    async fn check(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "a store that cuts bodies".into()
    }
}

fn cutting(f: &Fixture, cut: usize) -> Arc<Cutting> {
    Arc::new(Cutting {
        inner: LocalStorage::new(&f.root),
        cut,
        gets: AtomicUsize::new(0),
    })
}

/// `body`'s first `cut` bytes, then a reset.
fn cut(body: ByteStream, cut: usize) -> ByteStream {
    let bytes = stream::once(async move {
        let all: Vec<u8> = body
            .map(|c| c.unwrap().to_vec())
            .concat()
            .await
            .into_iter()
            .take(cut)
            .collect();
        Ok(Bytes::from(all))
    });
    let reset = stream::once(async { Err(StorageError::Unavailable("connection reset".into())) });
    Box::pin(bytes.chain(reset))
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    bytes: Vec<u8>,
}

fn fixture(len: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::create_dir_all(root.join("AC1")).unwrap();
    std::fs::write(root.join(KEY), &bytes).unwrap();
    Fixture {
        _dir: dir,
        root,
        bytes,
    }
}

async fn source(storage: Arc<dyn Storage>) -> Arc<Source> {
    let etag = storage.head(KEY).await.unwrap().etag;
    Arc::new(Source {
        storage,
        key: KEY.into(),
        etag,
        lane: None,
    })
}

/// The bytes a body gave, and its error if it ended with one.
async fn drain(body: ByteStream) -> (Vec<u8>, Option<StorageError>) {
    let mut got = Vec::new();
    let mut body = body;
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => got.extend_from_slice(&chunk),
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

/// A first read of `start..end` that gives `cut_after` bytes, then `end_with`.
fn first(
    f: &Fixture,
    start: usize,
    cut_after: usize,
    end_with: Option<StorageError>,
) -> ByteStream {
    let part = Bytes::copy_from_slice(&f.bytes[start..start + cut_after]);
    let tail = end_with.map(Err);
    Box::pin(stream::iter(std::iter::once(Ok(part)).chain(tail)))
}

#[tokio::test]
async fn a_body_cut_by_an_error_or_an_early_end_carries_on_where_it_stopped() {
    let f = fixture(100_000);
    let src = source(Arc::new(LocalStorage::new(&f.root))).await;
    let reset = || Some(StorageError::Unavailable("reset".into()));
    for end_with in [reset(), None] {
        let body = resuming(first(&f, 0, 30_000, end_with), src.clone(), 0, 100_000);
        let (got, err) = drain(body).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, f.bytes);
    }
    // A range: the resume asks for the rest of the range, not of the object.
    let body = resuming(first(&f, 1_000, 5_000, reset()), src, 1_000, 50_000);
    let (got, err) = drain(body).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, f.bytes[1_000..50_000]);
}

#[tokio::test]
async fn an_error_after_the_last_byte_changes_nothing() {
    let f = fixture(1_000);
    let src = source(Arc::new(LocalStorage::new(&f.root))).await;
    let reset = Some(StorageError::Unavailable("reset".into()));
    let (got, err) = drain(resuming(first(&f, 0, 1_000, reset), src, 0, 1_000)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, f.bytes);
}

#[tokio::test]
async fn only_transient_failures_are_resumed() {
    let f = fixture(1_000);
    let src = source(Arc::new(LocalStorage::new(&f.root))).await;
    for e in [
        StorageError::Changed,
        StorageError::NotFound,
        StorageError::Misconfigured("denied".into()),
    ] {
        let want = e.to_string();
        let (got, err) = drain(resuming(first(&f, 0, 10, Some(e)), src.clone(), 0, 1_000)).await;
        assert_eq!(got.len(), 10);
        assert_eq!(err.map(|e| e.to_string()), Some(want));
    }
}

#[tokio::test]
async fn a_replaced_object_ends_the_body_and_never_mixes_versions() {
    let f = fixture(1_000);
    let src = source(Arc::new(LocalStorage::new(&f.root))).await;
    // Another version, of another size (so another ETag), lands between
    // the cut and the resume.
    std::fs::write(f.root.join(KEY), vec![7u8; 2_000]).unwrap();
    let reset = Some(StorageError::Unavailable("reset".into()));
    let (got, err) = drain(resuming(first(&f, 0, 100, reset), src, 0, 1_000)).await;
    assert_eq!(got, f.bytes[..100]);
    assert!(matches!(err, Some(StorageError::Changed)), "{err:?}");
}

#[tokio::test]
async fn a_store_that_keeps_cutting_is_followed_while_bytes_come() {
    let f = fixture(10_000);
    let store = cutting(&f, 1_000);
    let src = source(store.clone()).await;
    let body = store.get(KEY, GetOptions::default()).await.unwrap().body;
    let (got, err) = drain(resuming(body, src, 0, 10_000)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, f.bytes);
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        10,
        "one read per 1,000 bytes"
    );
}

#[tokio::test]
async fn a_store_that_sends_nothing_more_is_given_up_on() {
    let f = fixture(10_000);
    let store = cutting(&f, 0);
    let src = source(store.clone()).await;
    let reset = Some(StorageError::Unavailable("reset".into()));
    let (got, err) = drain(resuming(first(&f, 0, 500, reset), src, 0, 10_000)).await;
    assert_eq!(got, f.bytes[..500]);
    assert!(matches!(err, Some(StorageError::Unavailable(_))), "{err:?}");
    // One resume after the first cut (which followed bytes), then the
    // tries without progress.
    let tries = 1 + TRIES_WITHOUT_PROGRESS as usize;
    assert_eq!(store.gets.load(Ordering::SeqCst), tries);
}

#[tokio::test]
async fn resumes_are_bounded_even_with_progress() {
    let f = fixture(10_000);
    let store = cutting(&f, 10);
    let src = source(store.clone()).await;
    let body = store.get(KEY, GetOptions::default()).await.unwrap().body;
    let (got, err) = drain(resuming(body, src, 0, 10_000)).await;
    assert_eq!(got, f.bytes[..10 * (1 + MAX_RESUMES as usize)]);
    assert!(err.is_some());
    assert_eq!(store.gets.load(Ordering::SeqCst), 1 + MAX_RESUMES as usize);
}
