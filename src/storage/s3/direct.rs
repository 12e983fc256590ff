//! The policy around [`fetch`](super::fetch) GETs: a signed request per
//! key, reused briefly; retries of transient failures before the first
//! byte, as the SDK would make them; S3 errors classified as for every
//! other call.
//!
//! Why requests signed in headers and not presigned URLs: a store checks
//! a header signature for less than a query one (SeaweedFS answers about
//! 9 % more 100 KB GETs per second so), and the SDK still decides where
//! each key lives (endpoint rules, path or virtual-host style).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;

use super::conn::is_untrusted;
use super::fetch::{Fetcher, Response};
use super::{DisplayErrorContext, Kind, S3Storage, classify, sdk_error};
use crate::storage::StorageError;

/// Attempts of one GET before the store is declared unavailable.
const ATTEMPTS: u32 = 3;
/// How long a signed request is reused: S3 takes a signature up to 15
/// minutes after its `x-amz-date`, and temporary credentials are renewed
/// minutes before they expire.
const SIGNED_REUSE: Duration = Duration::from_secs(60);
/// Keys whose signed request is kept.
const SIGNED_KEYS: u64 = 4096;
/// Credentials are asked of their provider (the instance metadata service,
/// perhaps) at most this often…
const CREDENTIALS_REUSE: Duration = Duration::from_secs(60);
/// …and not reused this close to their expiry.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(5 * 60);

/// GETs on our own connections.
#[derive(Debug, Clone)]
pub struct Direct {
    fetcher: Fetcher,
    /// Signing costs tens of µs, a sixth and more of what a 100 KB
    /// download costs the gateway, and a player asks for the same
    /// recording over and over (each seek is a request). `Range` goes
    /// unsigned beside the signature, as S3 allows for any header not
    /// named `x-amz-*`.
    signed: moka::future::Cache<String, Arc<Signed>>,
    /// The SDK's credentials provider (`None`: the configuration has no
    /// credentials, and every GET says so) and the region signed for.
    provider: Option<SharedCredentialsProvider>,
    region: String,
    credentials: moka::future::Cache<(), Credentials>,
}

/// A signed request: its URL, and the headers that carry the signature.
#[derive(Debug)]
struct Signed {
    uri: hyper::Uri,
    headers: Vec<(String, String)>,
}

impl Direct {
    pub fn new(
        fetcher: Fetcher,
        provider: Option<SharedCredentialsProvider>,
        region: String,
    ) -> Self {
        let signed = moka::future::Cache::builder()
            .max_capacity(SIGNED_KEYS)
            .time_to_live(SIGNED_REUSE)
            .build();
        let credentials = moka::future::Cache::builder()
            .max_capacity(1)
            .time_to_live(CREDENTIALS_REUSE)
            .build();
        Self {
            fetcher,
            signed,
            provider,
            region,
            credentials,
        }
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
                            self.credentials.invalidate(&()).await;
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

    /// A `GetObject` of `key` signed in its headers, kept for reuse. The
    /// URL is the SDK's (a presigned one, without its query), so that
    /// endpoint rules and path style stay its business.
    async fn sign(&self, s3: &S3Storage, key: &str) -> Result<Arc<Signed>, StorageError> {
        let misconfigured = |e: &dyn std::fmt::Display| {
            StorageError::Misconfigured(format!("GetObject: signing: {e}"))
        };
        let presigning =
            PresigningConfig::expires_in(SIGNED_REUSE).map_err(|e| misconfigured(&e))?;
        let presigned = s3
            .client
            .get_object()
            .bucket(&s3.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| sdk_error("GetObject", e))?;
        let url = presigned.uri();
        let url = url.split_once('?').map_or(url, |(path, _)| path);
        let identity = self.credentials().await?.into();
        let mut settings = SigningSettings::default();
        // As S3 takes them: the path encoded once and not normalised, the
        // payload's hash in `x-amz-content-sha256`.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| misconfigured(&e))?
            .into();
        let request = SignableRequest::new(
            "GET",
            url,
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| misconfigured(&e))?;
        let (instructions, _) = aws_sigv4::http_request::sign(request, &params)
            .map_err(|e| misconfigured(&e))?
            .into_parts();
        let headers = instructions
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let uri: hyper::Uri = url.parse().map_err(|e| {
            StorageError::Misconfigured(format!("GetObject: an unusable store URL: {e}"))
        })?;
        let signed = Arc::new(Signed { uri, headers });
        self.signed.insert(key.to_owned(), signed.clone()).await;
        Ok(signed)
    }

    /// The SDK's credentials, from its provider, kept a minute.
    async fn credentials(&self) -> Result<Credentials, StorageError> {
        if let Some(c) = self.credentials.get(&()).await {
            let fresh = c.expiry().is_none_or(|t| {
                t.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > CREDENTIALS_MARGIN)
            });
            if fresh {
                return Ok(c);
            }
        }
        let provider = self.provider.as_ref().ok_or_else(|| {
            StorageError::Misconfigured("GetObject: no AWS credentials to sign with".into())
        })?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            let why = format!("GetObject: credentials: {}", DisplayErrorContext(&e));
            match e {
                // The provider's service (instance metadata, STS) did not
                // answer: it may next time.
                CredentialsError::ProviderTimedOut(_) | CredentialsError::ProviderError(_) => {
                    StorageError::Unavailable(why)
                }
                _ => StorageError::Misconfigured(why),
            }
        })?;
        self.credentials.insert((), credentials.clone()).await;
        Ok(credentials)
    }
}

/// The pause before retry `attempt + 1`: "full jitter" up to 100 ms × 2^n,
/// so a store that throttles is not hit again in lockstep.
fn backoff(attempt: u32) -> Duration {
    let cap = 100u64 << attempt.min(6);
    Duration::from_millis(rand::random_range(0..=cap))
}
