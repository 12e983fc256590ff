//! A listener's connection as hyper reads and writes it: stand-ins written
//! from the lane's pipe, and the server's idle and write deadlines.
//!
//! Why the deadlines are here and lazy: a deadline moved on every write
//! (a body going out is traffic) re-registered a timer per write, and the
//! timer wheel's lock was 7 % of the gateway's CPU on 100 KB downloads.
//! Here each read or write only notes the time; a timer is set once, and
//! when it fires early (there was traffic since) it is set again for the
//! new deadline: about one timer operation per deadline period.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::{Lane, is_stand_in};

/// A listener's TCP connection: closed when nothing was read or written
/// for `idle` while hyper waits to read (a body going out counts), or
/// when the listener takes no bytes for `write_timeout`.
pub struct SpliceIo {
    inner: TcpStream,
    lane: Arc<Lane>,
    idle: Duration,
    write_timeout: Duration,
    /// When bytes last went either way.
    traffic: Instant,
    /// Since when a write has waited for the listener, if one is waiting.
    waiting: Option<Instant>,
    idle_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
}

/// Whether `limit` has passed since `since`; if not, `timer` wakes `cx`
/// when it will have. The timer only ever moves later, which costs nothing
/// until it fires.
fn expired(
    timer: &mut Pin<Box<Sleep>>,
    since: Instant,
    limit: Duration,
    cx: &mut Context<'_>,
) -> bool {
    let deadline = since + limit;
    if timer.deadline() > deadline {
        timer.as_mut().reset(deadline);
    }
    while timer.as_mut().poll(cx).is_ready() {
        if timer.deadline() >= deadline {
            return true;
        }
        timer.as_mut().reset(deadline);
    }
    false
}

fn timed_out(what: &str, limit: Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} in {limit:?}"))
}

impl SpliceIo {
    pub fn new(inner: TcpStream, lane: Arc<Lane>, idle: Duration, write_timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            lane,
            idle,
            write_timeout,
            traffic: now,
            waiting: None,
            idle_timer: Box::pin(tokio::time::sleep_until(now + idle)),
            write_timer: Box::pin(tokio::time::sleep_until(now + write_timeout)),
        }
    }

    /// Notes a write's outcome: bytes out are traffic; a write that waits
    /// marks the listener as not keeping up, and is cut off once it has
    /// waited `write_timeout`.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(done) => {
                if let Ok(1..) = done {
                    self.traffic = Instant::now();
                }
                self.waiting = None;
                Poll::Ready(done)
            }
            Poll::Pending => {
                self.lane.mark_stalled();
                let since = *self.waiting.get_or_insert_with(Instant::now);
                if expired(&mut self.write_timer, since, self.write_timeout, cx) {
                    self.waiting = None;
                    let limit = self.write_timeout;
                    return Poll::Ready(Err(timed_out("the listener took no bytes", limit)));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncRead for SpliceIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.traffic = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if expired(&mut this.idle_timer, this.traffic, this.idle, cx) => {
                Poll::Ready(Err(timed_out("nothing read or written", this.idle)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for SpliceIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = if is_stand_in(buf) {
            self.lane.poll_drain(cx, &self.inner, buf.len())
        } else {
            Pin::new(&mut self.inner).poll_write(cx, buf)
        };
        self.wrote(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // Real bytes up to the first stand-in, or the stand-in itself.
        let written = match bufs.iter().position(|b| is_stand_in(b)) {
            Some(0) => self.lane.poll_drain(cx, &self.inner, bufs[0].len()),
            Some(k) => Pin::new(&mut self.inner).poll_write_vectored(cx, &bufs[..k]),
            None => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        };
        self.wrote(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        // hyper then queues body chunks as they are instead of copying
        // them into its buffer: stand-ins must reach us by address.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
