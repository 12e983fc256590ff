//! The HTTP transport under the AWS SDK: hyper's pooled client with a
//! small, fixed read buffer per connection.
//!
//! Why our own: the SDK's default client lets hyper grow each connection's
//! read buffer up to ~400 KB, and it grows to that as soon as the store
//! sends faster than the listener takes (always, for a player at 16 KB/s).
//! The chunks handed on to the listener are slices of that buffer, so each
//! slow stream pinned most of a megabyte. With a fixed 16 KiB buffer a
//! stream holds what is in flight to its listener and no more, and the
//! kernel's socket buffers absorb the difference in speed, as they should.
//! The SDK does not let us configure its hyper client, so we give it one.
//!
//! What the SDK expects of a transport, and this one does: apply the
//! connect and read (response head) timeouts, and classify failures so the
//! SDK's retry policy retries the transient ones (refused, reset, closed,
//! timed out) before the first byte reaches the listener.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Bytes read from a store connection at a time. Large enough for any S3
/// response head (a few hundred bytes; user metadata is capped at 2 KB),
/// small enough that thousands of slow streams fit in little memory. Object
/// bodies take the faster path of `fetch`; through here come the SDK's
/// calls and their small bodies.
const READ_BUFFER: usize = 16 * 1024;

/// How long an idle pooled connection to the store is kept for reuse.
const POOL_IDLE: Duration = Duration::from_secs(60);

type HyperClient = Client<HttpsConnector<TcpConnector>, SdkBody>;

/// One pooled client for everything the SDK sends (S3 calls, and the
/// credential providers' calls), shared by every connector built from it.
#[derive(Clone, Debug)]
pub struct Transport {
    client: HyperClient,
}

impl Transport {
    /// A transport for `http://` and `https://` endpoints, trusting what
    /// `tls` trusts.
    pub fn new(connect_timeout: Duration, tls: Arc<rustls::ClientConfig>) -> Self {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let tls = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config((*tls).clone());
        let https = tls.https_or_http().enable_http1().wrap_connector(tcp);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE);
        builder.http1_read_buf_exact_size(READ_BUFFER);
        let client = builder.build(https);
        Self { client }
    }

    /// As the SDK takes it.
    pub fn into_shared(self) -> SharedHttpClient {
        SharedHttpClient::new(self)
    }
}

impl HttpClient for Transport {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        // The connect timeout is the pool's (set once in `new`); the read
        // timeout differs between callers (S3 calls, the instance metadata
        // service), so each connector carries its own over the shared pool.
        SharedHttpConnector::new(Connector {
            client: self.client.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    client: HyperClient,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let response = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, response).await.map_err(|_| {
                    ConnectorError::timeout(format!("no response in {limit:?}").into())
                })?,
                None => response.await,
            };
            let response = response.map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// Which of the SDK's error kinds a failed exchange is: the kind decides
/// whether the SDK retries it.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let transient = err.is_connect()
        || chain(&err).any(|e| {
            e.is::<std::io::Error>()
                || e.downcast_ref::<hyper::Error>()
                    .is_some_and(|h| h.is_closed() || h.is_canceled() || h.is_incomplete_message())
        });
    // A certificate will not be trusted on the next attempt either.
    let transient = transient && !super::conn::is_untrusted(&err);
    if transient {
        ConnectorError::io(err.into())
    } else {
        ConnectorError::other(err.into(), None)
    }
}

fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}
