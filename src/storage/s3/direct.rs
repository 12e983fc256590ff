//! The policy around [`fetch`](super::fetch) GETs: a signed URL per key,
//! reused briefly; retries of transient failures before the first byte,
//! as the SDK would make them; S3 errors classified as for every other
//! call.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;

use super::conn::is_untrusted;
use super::fetch::{Fetcher, Response};
use super::{Kind, S3Storage, classify, sdk_error};
use crate::storage::StorageError;

/// Attempts of one GET before the store is declared unavailable.
const ATTEMPTS: u32 = 3;
/// How long a signed URL is valid…
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);
/// …and how long it is reused: far inside its validity, even with
/// temporary credentials (the SDK renews those minutes before they expire).
const SIGNED_REUSE: Duration = Duration::from_secs(60);
/// Keys whose signed URL is kept.
const SIGNED_KEYS: u64 = 4096;

/// GETs on our own connections.
#[derive(Debug, Clone)]
pub struct Direct {
    fetcher: Fetcher,
    /// Signing costs ~23 µs, a sixth of what a 100 KB download costs the
    /// gateway, and a player asks for the same recording over and over
    /// (each seek is a request). `Range` goes unsigned beside the URL, as
    /// S3 allows for any header not named `x-amz-*`.
    signed: moka::future::Cache<String, Arc<Signed>>,
}

/// A presigned request: its URL, and the headers it must carry (usually
/// none: S3 presigns into the query).
#[derive(Debug)]
struct Signed {
    uri: hyper::Uri,
    headers: Vec<(String, String)>,
}

impl Direct {
    pub fn new(fetcher: Fetcher) -> Self {
        let signed = moka::future::Cache::builder()
            .max_capacity(SIGNED_KEYS)
            .time_to_live(SIGNED_REUSE)
            .build();
        Self { fetcher, signed }
    }

    /// `GET key`, or a `Range` of it: a response with a 2xx status, or the
    /// error it amounts to.
    pub async fn get(
        &self,
        s3: &S3Storage,
        key: &str,
        range: Option<&str>,
    ) -> Result<Response, StorageError> {
        let (mut signed, mut reused) = match self.signed.get(key).await {
            Some(signed) => (signed, true),
            None => (self.sign(s3, key).await?, false),
        };
        let mut attempt = 1;
        loop {
            let headers = (signed.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                .chain(range.map(|r| ("range", r)));
            let why = match self.fetcher.get(&signed.uri, headers).await {
                Ok(r) if (200..300).contains(&r.head.status) => return Ok(r),
                Ok(Response { head, body }) => {
                    let code = body.error_code().await;
                    let why = format!(
                        "GetObject: {} {}",
                        head.status,
                        code.as_deref().unwrap_or("(no error code)")
                    );
                    match classify(head.status, code.as_deref()) {
                        Kind::Unavailable => why,
                        // A reused URL whose credentials were revoked or
                        // rotated: sign again, once, before blaming the
                        // deployment.
                        Kind::Misconfigured if reused => {
                            self.signed.invalidate(key).await;
                            signed = self.sign(s3, key).await?;
                            reused = false;
                            continue;
                        }
                        kind => return Err(kind.error(why)),
                    }
                }
                Err(e) if is_untrusted(&e) => {
                    return Err(StorageError::Misconfigured(format!(
                        "GetObject: the store's TLS certificate is not trusted ({e}); \
                         --s3-ca-file adds a private CA"
                    )));
                }
                Err(e) => format!("GetObject: {e}"),
            };
            if attempt >= ATTEMPTS {
                return Err(StorageError::Unavailable(why));
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// A presigned `GetObject` URL for `key` (endpoint rules, path style
    /// and credentials are the SDK's), kept for reuse.
    async fn sign(&self, s3: &S3Storage, key: &str) -> Result<Arc<Signed>, StorageError> {
        let presigning = PresigningConfig::expires_in(SIGNED_FOR)
            .map_err(|e| StorageError::Misconfigured(format!("GetObject: {e}")))?;
        let signed = s3
            .client
            .get_object()
            .bucket(&s3.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| sdk_error("GetObject", e))?;
        let uri: hyper::Uri = signed.uri().parse().map_err(|e| {
            StorageError::Misconfigured(format!("GetObject: an unusable signed URL: {e}"))
        })?;
        let headers = signed
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let signed = Arc::new(Signed { uri, headers });
        self.signed.insert(key.to_owned(), signed.clone()).await;
        Ok(signed)
    }
}

/// The pause before retry `attempt + 1`: "full jitter" up to 100 ms × 2^n,
/// so a store that throttles is not hit again in lockstep.
fn backoff(attempt: u32) -> Duration {
    let cap = 100u64 << attempt.min(6);
    Duration::from_millis(rand::random_range(0..=cap))
}
