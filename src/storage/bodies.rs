//! Recent recordings' bytes, kept in memory: a replay or a seek into a
//! recording just played never touches the store.
//!
//! A CRM agent's player reads a recording whole (`Range: bytes=0-`), then
//! comes back for ranges as the agent seeks, and a manager replays the same
//! call minutes later; each of those was a store GET (a round trip, an S3
//! request charge). [`BodyCache`] wraps the storage: a body read whole
//! through it, no larger than `max_object`, is copied as it streams by and
//! kept once complete, within a budget of `max_bytes` for what is kept and
//! as much again for copies still in flight.
//!
//! Why this cannot serve stale bytes: an entry is keyed by storage key and
//! answers only a read conditioned on its exact ETag (`If-Match`, which
//! every audio read carries, from the metadata cache). A strong ETag names
//! one content, so a hit gives the same bytes the store would. Whether the
//! object still exists is the metadata cache's answer, as for every read:
//! what it trusts for its TTL, this trusts no longer; and forgetting a key
//! there (an invalidation) forgets its body here.
//!
//! A hit's body is one [`Bytes`] sharing the entry's memory, so a thousand
//! listeners of one cached recording hold no copy of it each.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, stream};
use moka::sync::Cache;

use super::{ByteStream, GetOptions, ListStream, Object, ObjectMeta, Storage, StorageError};
use crate::range::ByteRange;

/// The budget and the largest object kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyCacheConfig {
    /// Bytes of bodies kept; 0 turns the cache off.
    pub max_bytes: u64,
    /// Larger objects are never kept.
    pub max_object: u64,
}

impl Default for BodyCacheConfig {
    /// 8 MiB, objects up to 8 MiB: the recordings just played (a 5-minute
    /// call is 4.8 MB as 8 kHz WAV), small beside the 64 MiB a gateway is
    /// allowed at rest, so that thousands of listeners still fit beside it
    /// (bench/).
    fn default() -> Self {
        Self {
            max_bytes: 8 << 20,
            max_object: 8 << 20,
        }
    }
}

/// A body kept whole, with the validators it was read under.
struct Entry {
    etag: String,
    last_modified: Option<SystemTime>,
    bytes: Bytes,
}

/// Storage with recent bodies kept in memory (see the module doc).
pub struct BodyCache {
    inner: Arc<dyn Storage>,
    entries: Cache<String, Arc<Entry>>,
    fills: Arc<Fills>,
    max_object: u64,
}

/// Copies in flight: the keys being copied (one copy per key at a time)
/// and the bytes they may still take.
struct Fills {
    keys: Mutex<HashSet<String>>,
    budget: AtomicU64,
}

impl BodyCache {
    pub fn new(inner: Arc<dyn Storage>, config: BodyCacheConfig) -> Self {
        let entries = Cache::builder()
            // The recording just played is the one about to be sought
            // into: it always gets in, the least recently used goes
            // (moka's default, TinyLFU, would turn a newcomer away for
            // bodies read more often before).
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .max_capacity(config.max_bytes)
            .weigher(|_key: &String, entry: &Arc<Entry>| {
                u32::try_from(entry.bytes.len()).unwrap_or(u32::MAX)
            })
            .build();
        Self {
            inner,
            entries,
            fills: Arc::new(Fills {
                keys: Mutex::default(),
                budget: AtomicU64::new(config.max_bytes),
            }),
            max_object: config.max_object.min(config.max_bytes),
        }
    }

    /// The kept body of `key`, if it has exactly `etag`.
    fn hit(&self, key: &str, etag: &str) -> Option<Arc<Entry>> {
        let entry = self.entries.get(key)?;
        if entry.etag == etag {
            return Some(entry);
        }
        // The object changed since: the old bytes are of no more use.
        self.entries.invalidate(key);
        None
    }

    /// A copier for a whole body of `meta.size` bytes, when it may be kept
    /// and the in-flight budget has room.
    fn fill(&self, key: &str, meta: &ObjectMeta) -> Option<Fill> {
        if meta.size == 0 || meta.size > self.max_object {
            return None;
        }
        if !self.fills.keys.lock().ok()?.insert(key.to_owned()) {
            return None; // another read of this key is copying it
        }
        // Holds the key's slot from here; the budget once reserved.
        let mut guard = Reservation {
            fills: self.fills.clone(),
            key: key.to_owned(),
            size: 0,
        };
        self.fills
            .budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(meta.size)
            })
            .ok()?;
        guard.size = meta.size;
        Some(Fill {
            buf: BytesMut::with_capacity(usize::try_from(meta.size).ok()?),
            etag: meta.etag.clone(),
            last_modified: meta.last_modified,
            entries: self.entries.clone(),
            guard,
        })
    }
}

/// Whether `range` asks for all of an object of `size` bytes.
fn whole(range: Option<ByteRange>, size: u64) -> bool {
    range.is_none_or(|r| r.start == 0 && r.len() >= size)
}

#[async_trait::async_trait]
impl Storage for BodyCache {
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        self.inner.head(key).await
    }

    async fn get(&self, key: &str, opts: GetOptions<'_>) -> Result<Object, StorageError> {
        metrics::counter!("playback_cache_lookups_total", "cache" => "storage_body").increment(1);
        if let Some(entry) = opts.if_match.and_then(|etag| self.hit(key, etag)) {
            let size = entry.bytes.len() as u64;
            let (start, end) = opts.range.map_or((0, size), |r| (r.start, r.end + 1));
            let (start, end) = (start.min(size), end.min(size));
            let body = entry.bytes.slice(start as usize..end as usize);
            return Ok(Object {
                meta: ObjectMeta {
                    size,
                    etag: entry.etag.clone(),
                    last_modified: entry.last_modified,
                },
                body: Box::pin(stream::iter((!body.is_empty()).then_some(Ok(body)))),
            });
        }
        metrics::counter!("playback_cache_misses_total", "cache" => "storage_body").increment(1);
        let mut object = self.inner.get(key, opts).await?;
        if whole(opts.range, object.meta.size)
            && let Some(fill) = self.fill(key, &object.meta)
        {
            // The copy needs the bytes: none may pass by splice.
            if let Some(grant) = opts.splice {
                grant.revoke();
            }
            object.body = Box::pin(Copying {
                body: object.body,
                fill: Some(fill),
            });
        }
        Ok(object)
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.inner.check().await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn list(&self, prefix: &str) -> ListStream {
        self.inner.list(prefix)
    }

    fn forget(&self, key: Option<&str>) {
        match key {
            Some(key) => self.entries.invalidate(key),
            None => self.entries.invalidate_all(),
        }
        self.inner.forget(key);
    }
}

/// Budget (and the key's copy slot) held by a copy in flight, given back
/// however the copy ends: kept, failed, or dropped half-way by a listener
/// who left.
struct Reservation {
    fills: Arc<Fills>,
    key: String,
    size: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.fills.keys.lock() {
            keys.remove(&self.key);
        }
        self.fills.budget.fetch_add(self.size, Ordering::AcqRel);
    }
}

/// A whole body being copied as it streams by.
struct Fill {
    buf: BytesMut,
    etag: String,
    last_modified: Option<SystemTime>,
    entries: Cache<String, Arc<Entry>>,
    guard: Reservation,
}

impl Fill {
    /// Keeps the body, all of it in.
    fn finish(self) {
        let key = self.guard.key.clone();
        let entry = Entry {
            etag: self.etag,
            last_modified: self.last_modified,
            bytes: self.buf.freeze(),
        };
        self.entries.insert(key, Arc::new(entry));
    }
}

/// The store's body, passed on unchanged while copied into a [`Fill`].
struct Copying {
    body: ByteStream,
    fill: Option<Fill>,
}

impl Stream for Copying {
    type Item = Result<Bytes, StorageError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = std::task::ready!(self.body.as_mut().poll_next(cx));
        let Some(fill) = self.fill.as_mut() else {
            return Poll::Ready(item);
        };
        match &item {
            Some(Ok(chunk)) if (fill.buf.len() + chunk.len()) as u64 <= fill.guard.size => {
                fill.buf.extend_from_slice(chunk);
                // Kept as soon as all of it is in: a server that knows the
                // length stops reading the body there, before its end.
                if fill.buf.len() as u64 == fill.guard.size
                    && let Some(fill) = self.fill.take()
                {
                    fill.finish();
                }
            }
            // An error, an end before all of it, more than announced: keep
            // nothing.
            _ => self.fill = None,
        }
        Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests;
