//! Where recordings' bytes live, behind one small trait.
//!
//! Two backends: a local directory (the embedded default) and S3 through
//! `aws-sdk-s3`. Their errors are typed so that the verdict can tell a
//! definitive *not found* from a transient *unavailable* and from a
//! *misconfigured* deployment: the product promises never to call a storage
//! hiccup a loss, and that promise starts here.

mod bodies;
mod breaker;
mod local;
mod s3;

use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::Stream;

pub use bodies::{BodyCache, BodyCacheConfig};
pub use breaker::{Breaker, BreakerConfig};
pub use local::LocalStorage;
pub use s3::{CertificateDer, DEFAULT_READ_BUFFER, MIN_READ, S3Options, S3Storage, read_ca_file};

use crate::range::ByteRange;
use crate::splice::Grant;

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// Objects under a prefix, in byte order of their keys (as S3 lists them),
/// fetched page by page as the stream is read.
pub type ListStream = Pin<Box<dyn Stream<Item = Result<Listed, StorageError>> + Send>>;

/// A body streamed out of storage, chunk by chunk.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StorageError>> + Send>>;

/// What storage says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// A strong entity tag, with its quotes (`"…"`).
    pub etag: String,
    pub last_modified: Option<SystemTime>,
}

/// An object being read: its metadata at the time of the read and its body
/// (the requested range only, when one was given).
pub struct Object {
    pub meta: ObjectMeta,
    pub body: ByteStream,
}

/// Options for a read.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetOptions<'a> {
    /// Read only these bytes (never the whole object to serve part of it).
    pub range: Option<ByteRange>,
    /// Fail with [`StorageError::Changed`] unless the object still has this
    /// ETag, so that a body always matches the headers already computed.
    pub if_match: Option<&'a str>,
    /// The listener's connection may take the body by splice: set only by
    /// readers that pass the body on unchanged (see [`crate::splice`]).
    pub splice: Option<&'a Arc<Grant>>,
}

/// Storage failures, by what the caller must do about them.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Definitive: the key does not exist (S3 `NoSuchKey`/404, no such file).
    #[error("object not found")]
    NotFound,
    /// The object no longer has the ETag the read was conditioned on.
    #[error("object changed during the request")]
    Changed,
    /// Transient: 5xx, throttling, timeouts, refused or reset connections.
    /// Never a reason to tell anyone a recording is lost.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The deployment is wrong: access denied, no such bucket, bad endpoint.
    #[error("storage misconfigured: {0}")]
    Misconfigured(String),
}

/// The storage contract every backend implements.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Size and validators of an object, without its body.
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError>;

    /// The object's bytes (or a range of them) as a stream. Dropping the
    /// stream cancels the read.
    async fn get(&self, key: &str, opts: GetOptions<'_>) -> Result<Object, StorageError>;

    /// Whether the store answers at all (readiness, start-up checks).
    async fn check(&self) -> Result<(), StorageError>;

    /// A short description for logs and readiness (never a secret).
    fn describe(&self) -> String;

    /// Drops whatever is kept in memory about `key` (its metadata was
    /// invalidated: the object changed, appeared or went), or about every
    /// key (`None`: the caches were flushed).
    fn forget(&self, key: Option<&str>) {
        let _ = key;
    }

    /// Every object whose key starts with `prefix`, in byte order of keys,
    /// with flat memory (the loss audit reconciles it with the catalog).
    fn list(&self, prefix: &str) -> ListStream {
        let _ = prefix;
        let err = StorageError::Misconfigured(format!("{} cannot list its keys", self.describe()));
        Box::pin(futures_util::stream::once(async move { Err(err) }))
    }
}

/// Keys come only from [`crate::keys::KeyLayout`], built from validated
/// sids; this is a second line of defence for the local backend and for
/// prefixes read from configuration.
pub(crate) fn key_is_safe(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && !key.contains('\\')
        && !key.contains('\0')
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

#[cfg(test)]
mod tests {
    use super::key_is_safe;

    #[test]
    fn unsafe_keys_are_refused() {
        for k in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a/./b",
            "a\\b",
            "a\0",
        ] {
            assert!(!key_is_safe(k), "{k:?}");
        }
        assert!(key_is_safe("AC1/RE2.wav"));
    }
}
