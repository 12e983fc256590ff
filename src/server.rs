//! The HTTP server loop: hyper with the limits a public endpoint needs,
//! which `axum::serve` does not expose.
//!
//! - a deadline for a request's headers (slowloris) and a bound on their size (431);
//! - a bound on concurrent connections (more are closed at once);
//! - an idle deadline (a kept-alive connection nobody uses; a long download
//!   is not idle) and a write deadline (a client that stopped reading its
//!   stream), so a stalled client never pins a storage stream forever;
//! - graceful shutdown: stop accepting, let connections finish to a deadline;
//! - HTTP/1.1, and HTTP/2 without TLS for a client that starts with its
//!   preface (h2c, prior knowledge), told apart by peeking at the first
//!   bytes (see [`protocol`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::splice::{Lane, SpliceIo};

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time a client gets to send a request's headers.
    pub header_read_timeout: Duration,
    /// Largest request head accepted (431 beyond); hyper's floor is 8 KiB.
    pub max_header_bytes: usize,
    /// Connections served at once; more are closed on arrival.
    pub max_connections: usize,
    /// A connection with nothing read or written for this long is closed
    /// (a body going out is traffic: see `SpliceIo`).
    pub idle_timeout: Duration,
    /// A client that takes no bytes for this long is cut off.
    pub write_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(60),
        }
    }
}

/// HTTP/2's connection preface (RFC 9113 §3.4): what a client speaking
/// HTTP/2 without TLS sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol a connection speaks, as far as its first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
    /// The first bytes are the start of HTTP/2's preface, not all of it.
    Unsure,
}

/// Which protocol starts with `first`, the bytes a connection sent first
/// (none: closed before sending, which HTTP/1's reader reports).
pub fn protocol(first: &[u8]) -> Protocol {
    let n = first.len().min(H2_PREFACE.len());
    if first.is_empty() || first[..n] != H2_PREFACE[..n] {
        Protocol::Http1
    } else if n == H2_PREFACE.len() {
        Protocol::Http2
    } else {
        Protocol::Unsure
    }
}

/// Looks at a connection's first bytes and leaves them in the socket;
/// until they tell, looks again (a client that sent part of HTTP/2's
/// preface and stalls is cut off by the caller's header deadline).
///
/// Why not hyper-util's own detection: it reads the first 24 bytes, then
/// hands them to hyper's HTTP/1 reader on their own, whose buffer must
/// then grow past its first 8 KiB for the rest of the request: every
/// connection kept 16 KiB where 8 do (measured: 10,000 idle keep-alive
/// connections took 70 MiB more). Peeked, the bytes come again with the
/// rest.
async fn peek_protocol(stream: &TcpStream) -> std::io::Result<Protocol> {
    let mut first = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut first).await?;
        match protocol(&first[..n]) {
            // Peeking again at once would find the same bytes: the socket
            // stays readable until they are read.
            Protocol::Unsure => tokio::time::sleep(Duration::from_millis(5)).await,
            known => return Ok(known),
        }
    }
}

/// The server's two builders, one per protocol.
struct Builders {
    http1: Builder<TokioExecutor>,
    http2: Builder<TokioExecutor>,
}

impl Builders {
    fn new(limits: &ServerLimits) -> Self {
        let make = || {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_header_bytes.max(8 * 1024))
                // Body chunks are queued and written as they are, never
                // copied into hyper's buffer: spliced chunks' stand-ins
                // must reach `SpliceIo` by address (see `crate::splice`).
                .writev(true);
            builder
        };
        Self {
            http1: make().http1_only(),
            http2: make().http2_only(),
        }
    }

    fn get(&self, protocol: Protocol) -> &Builder<TokioExecutor> {
        match protocol {
            Protocol::Http2 => &self.http2,
            Protocol::Http1 | Protocol::Unsure => &self.http1,
        }
    }
}

/// Serves `router` until `stop` completes, then drains for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let builders = Arc::new(Builders::new(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    // Connections that have not sent a byte yet are not hyper's: they
    // learn of the shutdown here, and close at once, as hyper closes an
    // idle one.
    let (stopping, _) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pause, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection limit reached; closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let (builders, watcher) = (builders.clone(), graceful.watcher());
        let mut stopping = stopping.subscribe();
        tokio::spawn(async move {
            // The first bytes come within the header deadline, or the
            // connection goes, as one that stops inside its headers does.
            let first = tokio::time::timeout(limits.header_read_timeout, peek_protocol(&stream));
            let protocol = tokio::select! {
                peeked = first => match peeked {
                    Ok(Ok(protocol)) => protocol,
                    Ok(Err(_)) | Err(_) => return,
                },
                _ = stopping.wait_for(|stopped| *stopped) => return,
            };
            // HTTP/1 writes a body's bytes as they are, so it may take them
            // by splice; HTTP/2 frames them.
            let lane = Arc::new(Lane::default());
            let splice = (protocol != Protocol::Http2).then(|| lane.clone());
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if let Some(lane) = &splice {
                    req.extensions_mut().insert(lane.clone());
                }
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
            let io = TokioIo::new(SpliceIo::new(
                stream,
                lane,
                limits.idle_timeout,
                limits.write_timeout,
            ));
            let conn = builders.get(protocol).serve_connection(io, service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    stopping.send_replace(true);
    drop(listener);
    tracing::info!(grace = ?grace, "shutting down: refusing new connections, draining requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed; closing the remaining connections");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_tell_the_protocol() {
        assert_eq!(protocol(b"GET / HTTP/1.1\r\n"), Protocol::Http1);
        assert_eq!(protocol(b""), Protocol::Http1, "closed at once");
        assert_eq!(protocol(b"G"), Protocol::Http1);
        assert_eq!(protocol(H2_PREFACE), Protocol::Http2);
        assert_eq!(
            protocol(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0"),
            Protocol::Http2
        );
        assert_eq!(protocol(b"PRI * HTTP/2"), Protocol::Unsure);
        assert_eq!(protocol(b"P"), Protocol::Unsure);
        // Garbage, and a near miss, are HTTP/1's to refuse.
        assert_eq!(protocol(b"PRI * HTTP/1.1\r\n"), Protocol::Http1);
        assert_eq!(protocol(&[0xff, 0x00, 0x16, 0x03]), Protocol::Http1);
    }
}
