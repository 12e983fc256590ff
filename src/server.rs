//! The HTTP server loop: hyper with the limits a public endpoint needs,
//! which `axum::serve` does not expose.
//!
//! - a deadline for a request's headers (slowloris) and a bound on their size (431);
//! - a bound on concurrent connections, and on those of one client address
//!   (more are closed at once); near the bound, kept-alive connections
//!   are closed once their request is answered (see [`slots`]);
//! - an idle deadline (a kept-alive connection nobody uses; a long download
//!   is not idle) and a write deadline (a client that stopped reading its
//!   stream), so a stalled client never pins a storage stream forever;
//! - graceful shutdown: stop accepting, let connections finish to a deadline;
//! - HTTP/1.1, and HTTP/2 without TLS for a client that starts with its
//!   preface (h2c, prior knowledge), told apart by peeking at the first
//!   bytes (see [`protocol`]), with HTTP/2's own limits set explicitly
//!   (see [`Builders::new`]).

mod slots;

pub use slots::{Refusal, Slots, client_key};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
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
    /// Connections one client address (an IPv6 /64) may hold at once.
    pub max_connections_per_address: usize,
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
            // A tenth of the default bound: an office behind one NAT
            // still fits, one client cannot lock the others out.
            max_connections_per_address: 1_000,
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
        let mut http2 = make().http2_only();
        http2
            .http2()
            .timer(TokioTimer::new())
            // RFC 9113 asks for at least 100; each stream is a storage read.
            .max_concurrent_streams(100)
            // The same bound as an HTTP/1 request head.
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            // Rapid reset (CVE-2023-44487): streams a client opens and
            // cancels before they are answered cost work, not a slot; past
            // 20 pending, the connection is closed.
            .max_pending_accept_reset_streams(20)
            // A client whose streams keep erring is let go too.
            .max_local_error_reset_streams(256)
            // No PING keep-alive: a PING is traffic, and would keep an idle
            // connection past the idle deadline for ever. A dead peer is
            // found by the idle and write deadlines of `SpliceIo`.
            .keep_alive_interval(None);
        Self {
            http1: make().http1_only(),
            http2,
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
    let slots = Slots::new(limits.max_connections, limits.max_connections_per_address);
    // Every connection learns of the shutdown here: hyper's close an idle
    // connection at once and a busy one once its answer is out; one that
    // has not sent a byte yet closes at once.
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
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                metrics::counter!("playback_connections_refused_total", "reason" => refusal.label())
                    .increment(1);
                match refusal {
                    Refusal::Full => {
                        tracing::warn!(%peer, max = limits.max_connections, "connection limit reached; closing")
                    }
                    // Debug only: one client must not flood the log either.
                    Refusal::AddressFull => {
                        tracing::debug!(%peer, max = limits.max_connections_per_address, "connection limit of the address reached; closing")
                    }
                }
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let builders = builders.clone();
        let mut stopping = stopping.subscribe();
        let mut crowded = slots.crowded();
        tokio::spawn(async move {
            let _slot = slot;
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
            let http1 = protocol != Protocol::Http2;
            let near_full = crowded.clone();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if let Some(lane) = &splice {
                    req.extensions_mut().insert(lane.clone());
                }
                let near_full = near_full.clone();
                let answer = router.clone().oneshot(req.map(axum::body::Body::new));
                async move {
                    let mut res = answer.await?;
                    // Nearly full: this connection is not kept alive.
                    if http1 && near_full.borrow().now {
                        res.headers_mut().insert(
                            axum::http::header::CONNECTION,
                            axum::http::HeaderValue::from_static("close"),
                        );
                    }
                    Ok::<_, std::convert::Infallible>(res)
                }
            });
            let io = TokioIo::new(SpliceIo::new(
                stream,
                lane,
                limits.idle_timeout,
                limits.write_timeout,
            ));
            let conn = builders.get(protocol).serve_connection(io, service);
            let mut conn = std::pin::pin!(conn);
            // Only a new crowd closes a connection already open: one that
            // arrives while it lasts gets its answer first.
            let seen = crowded.borrow_and_update().episode;
            let mut closing = false;
            loop {
                tokio::select! {
                    ended = conn.as_mut() => {
                        if let Err(e) = ended {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stopping.wait_for(|stopped| *stopped), if !closing => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    Ok(()) = crowded.changed(), if !closing => {
                        if crowded.borrow_and_update().episode != seen {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        });
    }
    stopping.send_replace(true);
    drop(listener);
    tracing::info!(grace = ?grace, "shutting down: refusing new connections, draining requests");
    if tokio::time::timeout(grace, slots.drained()).await.is_err() {
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
