//! Connections to the store for [`fetch`](super::fetch): plain TCP for
//! `http://` endpoints, TLS for `https://` ones (Amazon S3 and most hosted
//! stores), behind one type.
//!
//! Why TLS here as well as under the SDK: object bodies are the hot path,
//! and they take `fetch`'s pooled connections, sized reads and deadlines
//! whatever the endpoint's scheme ([`tls`](super::tls) for how TLS keeps
//! its memory small). The trust anchors are the SDK
//! transport's ([`trust`]): the system's roots plus `--s3-ca-file`.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
pub use rustls::pki_types::CertificateDer;
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::tls::TlsConn;

/// One connection to the store.
#[derive(Debug)]
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsConn>),
}

/// Where a store URL's requests go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub tls: bool,
    /// The host without IPv6 brackets, as TLS names it.
    pub host: String,
    pub port: u16,
}

impl Target {
    /// The target of an `http://` or `https://` URL; ports default to 80
    /// and 443.
    pub fn of(uri: &hyper::Uri) -> io::Result<Self> {
        let tls = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            _ => return Err(invalid("a store URL that is neither http:// nor https://")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("a store URL without a host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self { tls, host, port })
    }
}

/// Opens connections: TCP, then TLS where the target asks for it.
#[derive(Clone)]
pub struct Connector {
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// `timeout` bounds the TCP connect and the TLS handshake together.
    pub fn new(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Self {
        let mut config = (*tls).clone();
        // `fetch` speaks HTTP/1.1 only; a store must not pick h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            tls: Arc::new(config),
            timeout,
        }
    }

    pub async fn connect(&self, target: &Target) -> io::Result<Conn> {
        let connecting = async {
            let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
            tcp.set_nodelay(true)?;
            if !target.tls {
                return Ok(Conn::Plain(tcp));
            }
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| invalid("a store host that is no TLS server name"))?;
            let tls = TlsConn::connect(tcp, self.tls.clone(), name).await?;
            Ok(Conn::Tls(Box::new(tls)))
        };
        tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to the store: nothing in {:?}", self.timeout),
                )
            })?
    }
}

impl Conn {
    /// Whether an idle connection is still usable: one the store closed
    /// reads as EOF at once (or, over TLS, as its `close_notify`); anything
    /// readable on an idle connection means it is not.
    pub fn is_idle_open(&self) -> bool {
        match self {
            Conn::Plain(tcp) => tcp_is_idle_open(tcp),
            Conn::Tls(tls) => tls.is_idle_open(),
        }
    }

    /// Sends `data` (a request), encrypted where the connection is TLS.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(tcp) => tcp.write_all(data).await,
            Conn::Tls(tls) => tls.send(data).await,
        }
    }

    /// The next bytes the store sent: whatever has arrived, up to about
    /// `want` (over TLS, whole records: see [`TlsConn::poll_chunk`]).
    /// Empty once the store has closed the connection. An error after some
    /// bytes waits for the next read, so the bytes are not lost.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<Bytes>> {
        let tcp = match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(tls) => return tls.poll_chunk(cx, want),
        };
        let mut buf = BytesMut::with_capacity(want);
        loop {
            match tokio_util::io::poll_read_buf(std::pin::Pin::new(&mut *tcp), cx, &mut buf) {
                Poll::Ready(Ok(n)) if n > 0 && buf.len() < want => continue,
                Poll::Ready(Err(e)) if buf.is_empty() => return Poll::Ready(Err(e)),
                Poll::Pending if buf.is_empty() => return Poll::Pending,
                // Full, dry, closed or failed: hand on what came.
                _ => return Poll::Ready(Ok(buf.freeze())),
            }
        }
    }
}

/// Whether an idle TCP connection is still open: nothing to read, not
/// even its end.
pub fn tcp_is_idle_open(tcp: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// The TLS settings for every connection to the store, the SDK's included:
/// the system's root certificates plus `extra` (a private CA's, from
/// `--s3-ca-file`). No ALPN: each user sets its own.
pub fn trust(extra: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    let (extra_added, _) = roots.add_parsable_certificates(extra.iter().cloned());
    if added + extra_added == 0 {
        // A container without CA certificates can still reach a store over
        // plain HTTP; HTTPS then fails naming the certificate, at the
        // first request.
        tracing::warn!("no root certificates: HTTPS to the store will fail");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the default TLS versions are supported")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The certificates of a PEM file (`--s3-ca-file`): at least one, and
/// nothing unreadable, so that a wrong file fails at start and not at the
/// first HTTPS request.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file of certificates ({e})"))?;
    if certs.is_empty() {
        return Err("no certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    Ok(certs)
}

/// Whether a failure, or any of its causes, is the store's certificate
/// (unknown issuer, wrong name, expired): a setting to fix (`--s3-ca-file`,
/// the endpoint), not a store to wait for.
pub fn is_untrusted(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) =
            e.downcast_ref::<rustls::Error>()
        {
            return true;
        }
        // An I/O error's `source` skips the error it wraps.
        next = match e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

pub(super) fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> io::Result<Target> {
        Target::of(&url.parse().unwrap())
    }

    #[test]
    fn targets_default_their_ports_by_scheme() {
        let t = target("https://bucket.s3.eu-west-1.amazonaws.com/key?X-Amz-Signature=1").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port),
            (true, "bucket.s3.eu-west-1.amazonaws.com", 443)
        );
        let t = target("http://store.internal/bucket/key").unwrap();
        assert_eq!((t.tls, t.port), (false, 80));
        let t = target("HTTP://127.0.0.1:8333/b/k").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "127.0.0.1", 8333));
        let t = target("https://[::1]:9000/b/k").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
    }

    #[test]
    fn targets_refuse_other_schemes_and_missing_hosts() {
        for url in ["ftp://store/b/k", "/b/k", "store:8333"] {
            assert!(target(url).is_err(), "{url}");
        }
    }
}
