//! Store GETs on our own HTTP/1.1 connections: the hot path of every
//! stream.
//!
//! Why not the SDK for these: each `GetObject` through it runs the whole
//! orchestrator (interceptors, retry and stalled-stream wrappers) over a
//! hyper client whose every connection keeps its own read buffer, header
//! buffer and dispatch task, and every body chunk crosses four layers on
//! its way out. The SDK still resolves each key's URL (endpoint rules, path
//! style) and supplies the credentials [`direct`](super::direct) signs
//! with, and makes every other call; this module only moves bytes:
//! - pooled TCP connections that keep no buffer of their own (the response
//!   head is parsed from a small buffer, dropped once parsed);
//! - body reads sized by the listener's pace ([`read_size`]): 16 KiB while
//!   it is slow (a player), up to `max_read` when it drains fast (a
//!   download), so thousands of players fit in little memory and
//!   downloads cost few system calls;
//! - a download's bytes moved by splice, where the listener's connection
//!   allows ([`crate::splice`]): never copied through our memory. While
//!   the listener takes every write at once, a spliced body reads at least
//!   32 KiB at a time, so a download does not wait for its pace to show;
//!   once a write waits, reads go by the listener's pace;
//! - a deadline on the response head and on every body read, so a stalled
//!   store becomes an error, never a hang;
//! - plain TCP or TLS, as the URL says ([`conn`](super::conn)).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use hyper::Uri;

use super::conn::{Conn, Connector, Target, invalid};
use crate::splice::Grant;

/// The smallest body read, and all a slow listener's stream holds in
/// flight from the store.
pub const MIN_READ: usize = 16 * 1024;
/// The smallest spliced read while the listener keeps up, and so the most
/// a player that then stalls (its buffers just filled) holds in its pipe,
/// kernel memory, for as long as it takes to read what its socket holds:
/// half of the 64 KiB a stream may cost, the rest for its copied reads.
/// 64 KiB measured no cheaper per MB, and left twice as much in pipes.
const SPLICE_MIN: usize = 32 * 1024;
/// Largest response head accepted (S3 user metadata is capped at 2 KB).
const MAX_HEAD: usize = 64 * 1024;
/// Largest error body read for its `<Code>`.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Idle connections are kept this long: under the usual keep-alive
/// timeouts of stores and load balancers (60 s and more).
const POOL_IDLE: Duration = Duration::from_secs(50);
/// Idle connections kept per store host.
const POOL_MAX_IDLE: usize = 1024;

/// Connections to the store, and how to use them.
#[derive(Debug, Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    idle: Mutex<HashMap<Target, VecDeque<(Instant, Conn)>>>,
    connector: Connector,
    read_timeout: Duration,
    max_read: usize,
}

/// What the store answered, before the body.
#[derive(Debug, Default)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<u64>,
    pub content_range: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
    /// The store will close the connection after this response.
    close: bool,
}

/// A response whose body is still on the wire.
pub struct Response {
    pub head: Head,
    pub body: Body,
}

impl Fetcher {
    /// `read_timeout` bounds the wait for the head and for each body read;
    /// `max_read` is the largest body read, for listeners that keep up.
    pub fn new(connector: Connector, read_timeout: Duration, max_read: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                idle: Mutex::default(),
                connector,
                read_timeout,
                max_read,
            }),
        }
    }

    /// Sends `GET uri` with `headers` and reads the response head. Errors
    /// are the transport's (refused, reset, timed out, garbled): transient.
    pub async fn get<'a>(
        &self,
        uri: &Uri,
        headers: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> io::Result<Response> {
        let target = Target::of(uri)?;
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("a store URL without a host"))?
            .as_str();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = String::with_capacity(1024);
        let _ = write!(request, "GET {path} HTTP/1.1\r\nhost: {authority}\r\n");
        for (name, value) in headers.filter(|(n, _)| !n.eq_ignore_ascii_case("host")) {
            let _ = write!(request, "{name}: {value}\r\n");
        }
        request.push_str("\r\n");

        // A pooled connection the store has meanwhile closed fails before
        // any byte of an answer; that is no failure of the store, so the
        // request goes again on a new connection.
        // (A store that is merely slow timed out: it is not asked twice.)
        if let Some(conn) = self.checkout(&target) {
            match self.exchange(conn, &target, request.as_bytes()).await {
                Err(e) if e.kind() != io::ErrorKind::TimedOut => {}
                done => return done,
            }
        }
        let conn = self.inner.connector.connect(&target).await?;
        self.exchange(conn, &target, request.as_bytes()).await
    }

    async fn exchange(
        &self,
        mut conn: Conn,
        target: &Target,
        request: &[u8],
    ) -> io::Result<Response> {
        let limit = self.inner.read_timeout;
        let (head, leftover) = tokio::time::timeout(limit, async {
            conn.send(request).await?;
            read_head(&mut conn).await
        })
        .await
        .map_err(|_| timed_out("waiting for the store's answer", limit))??;
        let remaining = head.content_length.ok_or_else(|| {
            // S3 sends every object with its length; a chunked answer
            // could not be checked against the range it must fill.
            invalid("the store answered without Content-Length")
        })?;
        let body = Body {
            conn: Some(conn),
            leftover,
            remaining,
            keep_alive: !head.close,
            pool: Some((self.inner.clone(), target.clone())),
            started: Instant::now(),
            sent: 0,
            max_read: self.inner.max_read,
            read_timeout: limit,
            stall: None,
            splice: None,
        };
        Ok(Response { head, body })
    }

    /// The most recently used idle connection that is still open.
    fn checkout(&self, target: &Target) -> Option<Conn> {
        loop {
            let (since, conn) = self.inner.idle.lock().ok()?.get_mut(target)?.pop_back()?;
            if since.elapsed() <= POOL_IDLE && conn.is_idle_open() {
                return Some(conn);
            }
        }
    }
}

impl Inner {
    fn check_in(&self, target: Target, conn: Conn) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let list = idle.entry(target).or_default();
        while list
            .front()
            .is_some_and(|(since, _)| since.elapsed() > POOL_IDLE || list.len() >= POOL_MAX_IDLE)
        {
            list.pop_front();
        }
        list.push_back((Instant::now(), conn));
    }
}

/// Reads until a whole response head is in; returns it and the body bytes
/// that came with it.
async fn read_head(conn: &mut Conn) -> io::Result<(Head, Bytes)> {
    let mut got = Bytes::new();
    loop {
        let chunk = std::future::poll_fn(|cx| conn.poll_chunk(cx, 4096)).await?;
        if chunk.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the store closed the connection before answering",
            ));
        }
        // Usually the whole head comes in the first chunk, and the body's
        // first bytes are a slice of it.
        got = if got.is_empty() {
            chunk
        } else {
            let mut joined = BytesMut::with_capacity(got.len() + chunk.len());
            joined.extend_from_slice(&got);
            joined.extend_from_slice(&chunk);
            joined.freeze()
        };
        if let Some((head, len)) = parse_head(&got)? {
            return Ok((head, got.slice(len..)));
        }
        if got.len() >= MAX_HEAD {
            return Err(invalid("the store's response head is too large"));
        }
    }
}

/// A response head from the start of `buf`, and its length; `None` while
/// incomplete.
fn parse_head(buf: &[u8]) -> io::Result<Option<(Head, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(&format!("a garbled response from the store: {e}"))),
    };
    let mut head = Head {
        status: response.code.unwrap_or(0),
        // HTTP/1.0 closes after each response unless told otherwise.
        close: response.version == Some(0),
        ..Head::default()
    };
    for h in response.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            continue;
        };
        let value = value.trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| invalid("a garbled Content-Length from the store"))?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err(invalid("two Content-Lengths from the store"));
            }
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // S3 sends every object with its length (RFC 9112 §6.3 puts
            // Transfer-Encoding first if both came).
            return Err(invalid("the store answered with a chunked body"));
        } else if name.eq_ignore_ascii_case("content-range") {
            head.content_range = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("etag") {
            head.etag = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("last-modified") {
            head.last_modified = httpdate::parse_http_date(value).ok();
        } else if name.eq_ignore_ascii_case("connection") {
            let has = |t: &str| value.split(',').any(|v| v.trim().eq_ignore_ascii_case(t));
            head.close = has("close") || (head.close && !has("keep-alive"));
        }
    }
    Ok(Some((head, len)))
}

/// How much to read next from the store for a listener that has taken
/// `sent` bytes in `elapsed`: about 10 ms of its pace, between 16 KiB and
/// `max`. The pace is taken over at least a quarter of a second, so a
/// player's first burst into empty socket buffers does not pass for speed.
pub fn read_size(sent: u64, elapsed: Duration, max: usize) -> usize {
    let elapsed = elapsed.max(Duration::from_millis(250)).as_secs_f64();
    let per_10ms = (sent as f64 / elapsed / 100.0) as usize;
    per_10ms.clamp(MIN_READ.min(max), max)
}

/// A response body of exactly `Content-Length` bytes. A short or failed
/// read is an error; a body read to its end gives its connection back to
/// the pool, and one dropped before is closed.
pub struct Body {
    conn: Option<Conn>,
    leftover: Bytes,
    remaining: u64,
    keep_alive: bool,
    pool: Option<(Arc<Inner>, Target)>,
    started: Instant,
    sent: u64,
    max_read: usize,
    read_timeout: Duration,
    /// The deadline of the read now waiting, if one is.
    stall: Option<(bool, Pin<Box<tokio::time::Sleep>>)>,
    /// Leave to splice the body into the listener's connection.
    splice: Option<Arc<Grant>>,
}

impl Body {
    /// Moves the body to the listener's connection by splice, where the
    /// store's connection is plain TCP (see [`crate::splice`]).
    pub fn splice_into(&mut self, grant: Arc<Grant>) {
        if matches!(self.conn, Some(Conn::Plain(_))) {
            self.splice = Some(grant);
        }
    }

    /// The `<Code>` of an S3 error body (`NoSuchKey`, `SlowDown`…).
    pub async fn error_code(mut self) -> Option<String> {
        if self.remaining > MAX_ERROR_BODY as u64 {
            return None;
        }
        let mut text = Vec::new();
        while let Some(Ok(chunk)) = self.next().await {
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&text);
        let start = text.find("<Code>")? + "<Code>".len();
        let len = text[start..].find("</Code>")?;
        Some(text[start..start + len].trim().to_owned())
    }

    fn finish(&mut self) {
        let conn = self.conn.take();
        if let (Some(conn), Some((pool, target))) = (conn, self.pool.take())
            && self.keep_alive
            && self.leftover.is_empty()
        {
            pool.check_in(target, conn);
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<io::Result<Bytes>>> {
        self.conn = None;
        self.remaining = 0;
        Poll::Ready(Some(Err(error)))
    }

    fn deliver(&mut self, chunk: Bytes) -> Poll<Option<io::Result<Bytes>>> {
        self.remaining -= chunk.len() as u64;
        self.sent += chunk.len() as u64;
        if self.remaining == 0 {
            self.finish();
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}

impl Stream for Body {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            this.finish();
            return Poll::Ready(None);
        }
        if !this.leftover.is_empty() {
            let take = this.leftover.len().min(this.remaining as usize);
            let chunk = this.leftover.split_to(take);
            return this.deliver(chunk);
        }
        let remaining = usize::try_from(this.remaining).unwrap_or(usize::MAX);
        let want = read_size(this.sent, this.started.elapsed(), this.max_read).min(remaining);
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(None);
        };
        let spliced = match (&*conn, &this.splice) {
            // A listener that drains fast (a download) takes its bytes by
            // splice: at once while it takes every write at once, then by
            // its pace. A player's few KB/s are not worth a pipe: they stay
            // in our memory, where they cost no CPU to speak of and the
            // process's RSS counts them.
            (Conn::Plain(tcp), Some(grant)) => {
                let want = match grant.keeping_up() {
                    true => want.max(SPLICE_MIN.min(this.max_read)).min(remaining),
                    false => want,
                };
                match (want > MIN_READ).then(|| grant.poll_room(cx)).flatten() {
                    // The listener takes what the pipe holds first, then
                    // wakes us: waiting for it is no stall of the store.
                    Some(Poll::Pending) => return Poll::Pending,
                    Some(Poll::Ready(())) => grant.poll_fill(cx, tcp, want),
                    None => None,
                }
            }
            _ => None,
        };
        // What is there, up to `want`: one chunk per wake-up, as large as
        // the store's pace allows.
        let mut chunk = match spliced.unwrap_or_else(|| conn.poll_chunk(cx, want)) {
            Poll::Ready(Ok(chunk)) if chunk.is_empty() => {
                let why = format!("the store closed the body {} bytes early", this.remaining);
                return this.fail(io::Error::new(io::ErrorKind::UnexpectedEof, why));
            }
            Poll::Ready(Ok(chunk)) => chunk,
            Poll::Ready(Err(e)) => return this.fail(e),
            Poll::Pending => {
                let limit = this.read_timeout;
                let (armed, sleep) = this
                    .stall
                    .get_or_insert_with(|| (true, Box::pin(tokio::time::sleep(limit))));
                if !*armed {
                    sleep.as_mut().reset(tokio::time::Instant::now() + limit);
                    *armed = true;
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return this.fail(timed_out("reading the store's body", limit));
                }
                return Poll::Pending;
            }
        };
        if chunk.len() as u64 > this.remaining {
            // More than the body (a TLS record reaching past it): the
            // store's framing cannot be trusted for another request.
            chunk.truncate(this.remaining as usize);
            this.keep_alive = false;
        }
        if let Some((armed, _)) = this.stall.as_mut() {
            *armed = false;
        }
        this.deliver(chunk)
    }
}

fn timed_out(what: &str, limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what}: nothing in {limit:?}"),
    )
}

#[cfg(test)]
mod tests;
