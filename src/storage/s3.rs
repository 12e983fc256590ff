//! S3 backend through `aws-sdk-s3`: Amazon S3 or any compatible store
//! (SeaweedFS, Garage, Ceph, MinIO) with a custom endpoint and path style.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use futures_util::{StreamExt, stream};

mod conn;
mod direct;
mod fetch;
mod tls;
mod transport;
pub use conn::{CertificateDer, read_ca_file};
pub use fetch::MIN_READ;

use super::{
    GetOptions, ListStream, Listed, Object, ObjectMeta, Storage, StorageError, key_is_safe,
};
use crate::config::Secret;

/// How to reach a bucket.
#[derive(Debug, Clone)]
pub struct S3Options {
    pub bucket: String,
    /// Prepended to every key (`"recordings/"`), may be empty.
    pub prefix: String,
    /// A custom endpoint (`http://127.0.0.1:8333`); `None` for AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key`; most
    /// self-hosted stores need it.
    pub path_style: bool,
    /// Static credentials from the configuration; `None` uses the standard
    /// AWS chain (environment, profile, instance role…).
    pub credentials: Option<(String, Secret)>,
    pub connect_timeout: Duration,
    /// Longest wait for response headers of one attempt, and for any one
    /// read of a body: a stalled store turns into an error, not a hang.
    pub read_timeout: Duration,
    /// The largest body read from the store, for a listener that keeps up
    /// (a slow one gets [`MIN_READ`]; see [`fetch::read_size`]).
    pub read_buffer: usize,
    /// Certificates trusted besides the system's, for a store behind a
    /// private CA (`--s3-ca-file`).
    pub extra_roots: Vec<CertificateDer<'static>>,
}

/// `--s3-read-buffer` by default: reads this large cost a download about
/// half the CPU per byte of 16 KiB reads, and only listeners that drain as
/// fast get them.
pub const DEFAULT_READ_BUFFER: usize = 256 * 1024;

/// A bucket (and key prefix) reached through the AWS SDK.
#[derive(Clone, Debug)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    prefix: String,
    /// Object bodies, on our own connections.
    direct: direct::Direct,
}

impl S3Storage {
    /// Builds the client; nothing is contacted yet.
    pub async fn connect(opts: &S3Options) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .operation_attempt_timeout(opts.read_timeout)
            .build();
        let tls = conn::trust(&opts.extra_roots);
        let transport = transport::Transport::new(opts.connect_timeout, tls.clone());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(transport.into_shared())
            .timeout_config(timeouts)
            .region(Region::new(
                opts.region.clone().unwrap_or_else(|| "us-east-1".into()),
            ));
        if let Some((id, secret)) = &opts.credentials {
            loader = loader.credentials_provider(Credentials::new(
                id,
                secret.expose(),
                None,
                None,
                "playback-gateway config",
            ));
        }
        if let Some(endpoint) = &opts.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(opts.path_style)
            .build();
        let fetcher = fetch::Fetcher::new(
            conn::Connector::new(tls, opts.connect_timeout),
            opts.read_timeout,
            opts.read_buffer,
        );
        let region = shared
            .region()
            .map_or("us-east-1", |r| r.as_ref())
            .to_owned();
        let direct = direct::Direct::new(fetcher, shared.credentials_provider(), region);
        Self {
            client: Client::from_conf(config),
            bucket: opts.bucket.clone(),
            prefix: opts.prefix.clone(),
            direct,
        }
    }

    /// The underlying client, for tests and tools that seed a bucket.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn full_key(&self, key: &str) -> Result<String, StorageError> {
        if !key_is_safe(key) {
            return Err(StorageError::Misconfigured(format!("unsafe key {key:?}")));
        }
        Ok(format!("{}{}", self.prefix, key))
    }

    async fn get_object(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<GetObjectOutput, StorageError> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .send()
            .await
            .map_err(|e| sdk_error("GetObject", e))
    }
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    #[tracing::instrument(name = "storage.head", skip(self), err(level = "debug"))]
    async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let key = self.full_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await;
        match out {
            Ok(out) => meta(
                length(out.content_length()),
                out.e_tag(),
                time(out.last_modified()),
            ),
            // A HEAD response has no body, so a 404 carries no error code:
            // a missing key and a missing bucket look the same. Ask again
            // with a one-byte GET, whose error body tells them apart, so a
            // deleted bucket is never reported as lost recordings.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                let out = self.get_object(&key, Some("bytes=0-0".into())).await?;
                meta(
                    total_from_content_range(out.content_range()).or(length(out.content_length())),
                    out.e_tag(),
                    time(out.last_modified()),
                )
            }
            Err(e) => Err(sdk_error("HeadObject", e)),
        }
    }

    #[tracing::instrument(name = "storage.get", skip(self, opts), fields(range = ?opts.range), err(level = "debug"))]
    async fn get(&self, key: &str, opts: GetOptions<'_>) -> Result<Object, StorageError> {
        let key = self.full_key(key)?;
        let range = opts.range.map(|r| format!("bytes={}-{}", r.start, r.end));
        let fetch::Response { head, mut body } =
            self.direct.get(self, &key, range.as_deref()).await?;
        if let Some(grant) = opts.splice {
            body.splice_into(grant.clone());
        }
        let body = body
            .map(|chunk| {
                chunk.map_err(|e| StorageError::Unavailable(format!("GetObject body: {e}")))
            })
            .boxed();
        let (length, content_range) = (head.content_length, head.content_range);
        let size = match opts.range {
            Some(_) => total_from_content_range(content_range.as_deref()),
            None => length,
        };
        let meta = meta(size, head.etag.as_deref(), head.last_modified)?;
        // The GET does not send If-Match: SeaweedFS answers a
        // conditional GET with an extra metadata lookup, a sixth of its
        // CPU per 100 KB download. Comparing the answer's own ETag before
        // any byte goes out keeps the same promise.
        if opts.if_match.is_some_and(|tag| tag != meta.etag) {
            return Err(StorageError::Changed);
        }
        if let Some(r) = opts.range {
            // A store that ignored the Range header would send the whole
            // object under our 206 headers; refuse instead.
            if length != Some(r.len()) || r.end >= meta.size {
                return Err(StorageError::Changed);
            }
        }
        Ok(Object { meta, body })
    }

    async fn check(&self) -> Result<(), StorageError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            // HeadBucket's 404 means the bucket itself is missing.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Err(
                StorageError::Misconfigured(format!("bucket {} does not exist", self.bucket)),
            ),
            Err(e) => Err(sdk_error("HeadBucket", e)),
        }
    }

    fn describe(&self) -> String {
        format!("s3 bucket {} prefix {:?}", self.bucket, self.prefix)
    }

    /// `ListObjectsV2` pages of 1,000 keys, fetched as the stream is read.
    fn list(&self, prefix: &str) -> ListStream {
        let strip = self.prefix.len();
        let pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.prefix))
            .into_paginator()
            .send();
        let pages = stream::unfold(pages, |mut pages| async move {
            let page = pages.next().await?;
            Some((page, pages))
        });
        Box::pin(pages.flat_map(move |page| {
            let items: Vec<Result<Listed, StorageError>> = match page {
                Err(e) => vec![Err(sdk_error("ListObjectsV2", e))],
                Ok(page) => page
                    .contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|o| {
                        let key = o.key?.get(strip..)?.to_owned();
                        let size = o.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                        Some(Ok(Listed { key, size }))
                    })
                    .collect(),
            };
            stream::iter(items)
        }))
    }
}

fn meta(
    size: Option<u64>,
    etag: Option<&str>,
    last_modified: Option<SystemTime>,
) -> Result<ObjectMeta, StorageError> {
    let size = size.ok_or_else(|| StorageError::Unavailable("response without a length".into()))?;
    let etag = match etag {
        Some(t) if t.starts_with('"') && t.ends_with('"') && t.len() >= 2 => t.to_owned(),
        Some(t) if !t.is_empty() && !t.contains('"') => format!("\"{t}\""),
        // Some stores omit or weaken ETags; derive a strong one from what
        // identifies this version of the object.
        _ => {
            let secs = last_modified
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            format!("\"{size:x}-{secs:x}\"")
        }
    };
    Ok(ObjectMeta {
        size,
        etag,
        last_modified,
    })
}

/// The SDK's signed lengths, as sizes.
fn length(n: Option<i64>) -> Option<u64> {
    n.and_then(|n| u64::try_from(n).ok())
}

/// The SDK's timestamps, as the standard library's.
fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<SystemTime> {
    t.and_then(|d| SystemTime::try_from(*d).ok())
}

/// The total length in `Content-Range: bytes a-b/total`.
fn total_from_content_range(v: Option<&str>) -> Option<u64> {
    v?.rsplit_once('/')?.1.trim().parse().ok()
}

/// Maps an SDK error to what the caller must do about it.
fn sdk_error<E>(op: &str, err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match &err {
        SdkError::ServiceError(se) => classify(se.raw().status().as_u16(), se.err().code()),
        SdkError::ConstructionFailure(_) => Kind::Misconfigured,
        _ if conn::is_untrusted(&err) => Kind::Misconfigured,
        // Timeouts, connection refused/reset, truncated responses: transient.
        _ => Kind::Unavailable,
    };
    kind.error(format!("{op}: {}", DisplayErrorContext(&err)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotFound,
    Changed,
    Unavailable,
    Misconfigured,
}

impl Kind {
    fn error(self, message: String) -> StorageError {
        match self {
            Kind::NotFound => StorageError::NotFound,
            Kind::Changed => StorageError::Changed,
            Kind::Unavailable => StorageError::Unavailable(message),
            Kind::Misconfigured => StorageError::Misconfigured(message),
        }
    }
}

/// Pure classification of a service error by HTTP status and S3 code.
fn classify(status: u16, code: Option<&str>) -> Kind {
    match (status, code) {
        (_, Some("NoSuchKey")) | (404, None | Some("NotFound")) => Kind::NotFound,
        (412 | 416, _) | (_, Some("PreconditionFailed" | "InvalidRange")) => Kind::Changed,
        (
            _,
            Some(
                "SlowDown"
                | "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "RequestTimeout"
                | "ServiceUnavailable"
                | "InternalError",
            ),
        )
        | (429 | 500.., _) => Kind::Unavailable,
        // 403 AccessDenied (also what S3 answers for a missing key when the
        // credentials lack s3:ListBucket), NoSuchBucket, wrong region, bad
        // signature: the deployment must be fixed; nothing is lost.
        (300..=499, _) => Kind::Misconfigured,
        _ => Kind::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, code: Option<&str>) -> &'static str {
        match classify(status, code) {
            Kind::NotFound => "not found",
            Kind::Changed => "changed",
            Kind::Unavailable => "unavailable",
            Kind::Misconfigured => "misconfigured",
        }
    }

    #[test]
    fn classifies_service_errors() {
        assert_eq!(kind(404, Some("NoSuchKey")), "not found");
        assert_eq!(kind(404, None), "not found");
        assert_eq!(kind(404, Some("NoSuchBucket")), "misconfigured");
        assert_eq!(kind(403, Some("AccessDenied")), "misconfigured");
        assert_eq!(kind(403, None), "misconfigured");
        assert_eq!(kind(301, Some("PermanentRedirect")), "misconfigured");
        assert_eq!(kind(412, Some("PreconditionFailed")), "changed");
        assert_eq!(kind(416, Some("InvalidRange")), "changed");
        assert_eq!(kind(503, Some("SlowDown")), "unavailable");
        assert_eq!(kind(500, Some("InternalError")), "unavailable");
        assert_eq!(kind(502, None), "unavailable");
        assert_eq!(kind(429, None), "unavailable");
        assert_eq!(kind(400, Some("RequestTimeout")), "unavailable");
    }

    #[test]
    fn content_range_total() {
        assert_eq!(total_from_content_range(Some("bytes 0-0/1234")), Some(1234));
        assert_eq!(total_from_content_range(Some("bytes */1234")), Some(1234));
        assert_eq!(total_from_content_range(Some("garbage")), None);
        assert_eq!(total_from_content_range(None), None);
    }

    #[test]
    fn etags_are_kept_strong() {
        let m = meta(Some(5), Some("\"abc\""), None).unwrap();
        assert_eq!(m.etag, "\"abc\"");
        let m = meta(Some(5), Some("abc"), None).unwrap();
        assert_eq!(m.etag, "\"abc\"");
        let m = meta(Some(5), Some("W/\"abc\""), None).unwrap();
        assert_eq!(m.etag, "\"5-0\"");
        assert!(meta(None, Some("\"a\""), None).is_err());
    }
}
