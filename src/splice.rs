//! Audio bytes from the store's socket to the listener's without passing
//! through our memory: Linux `splice(2)` through a pipe, as HAProxy does.
//!
//! Why: every full-file benchmark row saturates the machine's cores, and
//! most of the gateway's CPU there was the kernel copying each byte into
//! our buffers and out again. Moved through a pipe, the store's pages go
//! to the listener's socket by reference.
//!
//! How, while hyper keeps the connection (keep-alive, the next request,
//! deadlines):
//! - a listener's connection that speaks HTTP/1 over plain TCP has a
//!   [`Lane`]: a pipe, while a body uses it; the server loop puts the lane
//!   in each request's extensions;
//! - a handler that passes a store body to the listener unchanged grants
//!   the read a [`Grant`] on that lane; a store body read over plain TCP
//!   then moves what arrived into the pipe (socket → pipe) and yields a
//!   *stand-in* chunk of the same length, a slice of a static region no
//!   one reads;
//! - hyper queues the stand-ins like any chunk and writes them through
//!   [`SpliceIo`], which knows them by their address and moves as many
//!   bytes from the pipe to the socket (pipe → socket) instead.
//!
//! Order holds: the pipe is first in, first out, hyper writes a body's
//! chunks in order, and one body at a time; real chunks (multipart
//! boundaries, the body bytes that came with the store's head, the body
//! cache's replays) go out between stand-ins as they are written.
//!
//! Only downloads are spliced: a body is spliced, 32 KiB or more at a
//! time, until a write to its listener has to wait (the lane notes it);
//! then it reads by the listener's pace, and a player's 16 KiB reads stay
//! copied (see `fetch`), so its bytes stay in the memory the process's RSS
//! counts, not in pipes.
//!
//! Anything that keeps or reads a body's bytes (the body cache copying a
//! body, an error body's `<Code>`) must not hold a grant: the body cache
//! revokes it ([`Grant::revoke`]) before the first byte, and only bodies of
//! 2xx answers take one. Elsewhere (HTTPS to the store, HTTP/2 listeners,
//! a kernel or sandbox without `splice`, no file descriptor left for a
//! pipe), bodies are copied as before.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use bytes::Bytes;
use rustix::pipe::{PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The largest stand-in, and so the most one store read moves at once.
const STAND_IN_LEN: usize = 1024 * 1024;
/// What stand-ins point into. Never read: its pages are never touched.
static STAND_IN: [u8; STAND_IN_LEN] = [0; STAND_IN_LEN];
/// Pipe capacity asked for: the default largest store read
/// (`--s3-read-buffer`), where the kernel's default is 64 KiB. Kept
/// modest: an unprivileged user's pipes share a quota (64 MiB by default),
/// past which new pipes get a page or two and move less per call.
const PIPE_SIZE: usize = 256 * 1024;
/// Empty pipes kept for the next body, beyond which they are closed.
const POOL_MAX: usize = 256;

/// A stand-in for `len` bytes now in a lane's pipe.
fn stand_in(len: usize) -> Bytes {
    Bytes::from_static(&STAND_IN[..len])
}

/// Whether `buf` is (part of) a stand-in.
fn is_stand_in(buf: &[u8]) -> bool {
    let base = STAND_IN.as_ptr() as usize;
    let at = buf.as_ptr() as usize;
    !buf.is_empty() && at >= base && at + buf.len() <= base + STAND_IN_LEN
}

/// Whether `e` says splicing is not possible here (no such system call, a
/// sandbox that forbids it, a socket that does not support it), rather
/// than that the store's connection failed.
fn cannot_splice(e: &io::Error) -> bool {
    let unsupported = [
        rustix::io::Errno::NOSYS,
        rustix::io::Errno::PERM,
        rustix::io::Errno::INVAL,
        rustix::io::Errno::OPNOTSUPP,
    ];
    e.raw_os_error()
        .is_some_and(|code| unsupported.iter().any(|u| u.raw_os_error() == code))
}

/// A pipe's two ends.
#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

static POOL: Mutex<Vec<Pipe>> = Mutex::new(Vec::new());
/// Pipes bodies hold now (outside the pool), and the bytes waiting in
/// them: kernel memory, which the process's RSS does not count.
static HELD_PIPES: AtomicUsize = AtomicUsize::new(0);
static HELD_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The pipes bodies hold now, and the bytes waiting in them (for
/// `/metrics`: `playback_splice_pipes`, `playback_splice_pipe_bytes`).
pub fn held() -> (usize, usize) {
    (
        HELD_PIPES.load(Ordering::Relaxed),
        HELD_BYTES.load(Ordering::Relaxed),
    )
}

impl Pipe {
    fn take() -> io::Result<Self> {
        if let Some(pipe) = POOL.lock().ok().and_then(|mut pool| pool.pop()) {
            return Ok(pipe);
        }
        let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        // A smaller pipe only means smaller moves (an unprivileged user
        // past its pipe quota gets the default).
        let _ = rustix::pipe::fcntl_setpipe_size(&write, PIPE_SIZE);
        Ok(Self { read, write })
    }

    /// Back to the pool; only ever called on an empty pipe.
    fn give_back(self) {
        if let Ok(mut pool) = POOL.lock()
            && pool.len() < POOL_MAX
        {
            pool.push(self);
        }
    }
}

/// One listener connection's way for spliced bytes.
#[derive(Debug, Default)]
pub struct Lane {
    state: Mutex<LaneState>,
}

#[derive(Debug, Default)]
struct LaneState {
    pipe: Option<Pipe>,
    /// Bytes in the pipe: stand-ins handed out and not yet written.
    queued: usize,
    /// A body waiting for the pipe to empty.
    waiting: Option<Waker>,
    /// The listener has made a write wait since the body began: it may be
    /// a player, whose reads then go by its pace (see `fetch`).
    stalled: bool,
}

impl LaneState {
    /// Takes a pipe from the pool for this lane, if it has none.
    fn hold_pipe(&mut self) -> io::Result<()> {
        if self.pipe.is_none() {
            self.pipe = Some(Pipe::take()?);
            HELD_PIPES.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Gives the emptied pipe back to the pool.
    fn release_pipe(&mut self) {
        if let Some(pipe) = self.pipe.take() {
            HELD_PIPES.fetch_sub(1, Ordering::Relaxed);
            pipe.give_back();
        }
    }
}

impl Drop for LaneState {
    /// A connection gone with bytes in its pipe: the pipe is closed (never
    /// pooled with stale bytes in it), and no longer counted.
    fn drop(&mut self) {
        if self.pipe.take().is_some() {
            HELD_PIPES.fetch_sub(1, Ordering::Relaxed);
        }
        HELD_BYTES.fetch_sub(self.queued, Ordering::Relaxed);
    }
}

impl Lane {
    fn state(&self) -> MutexGuard<'_, LaneState> {
        // Nothing here is left half-done by a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stalled(&self) -> bool {
        self.state().stalled
    }

    fn mark_stalled(&self) {
        self.state().stalled = true;
    }

    /// Ready once there is an empty pipe, as [`poll_fill`](Self::poll_fill)
    /// needs: a pipe that can refuse bytes could not be told from a socket
    /// that has none (both say EAGAIN). An error if no pipe can be had
    /// (out of file descriptors).
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.state();
        if state.queued > 0 {
            state.waiting = Some(cx.waker().clone());
            return Poll::Pending;
        }
        state.hold_pipe()?;
        Poll::Ready(Ok(()))
    }

    /// Moves up to `want` bytes that `from` has received into the empty
    /// pipe, and returns a stand-in for them; an empty one at the end of
    /// `from`.
    fn poll_fill(
        &self,
        cx: &mut Context<'_>,
        from: &TcpStream,
        want: usize,
    ) -> Poll<io::Result<Bytes>> {
        let mut state = self.state();
        let want = want.min(STAND_IN_LEN);
        state.hold_pipe()?;
        loop {
            ready!(from.poll_read_ready(cx))?;
            let Some(pipe) = state.pipe.as_ref() else {
                return Poll::Ready(Err(io::Error::other("a splice lane without its pipe")));
            };
            let moved = from.try_io(Interest::READABLE, || {
                let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
                Ok(rustix::pipe::splice(
                    from,
                    None,
                    &pipe.write,
                    None,
                    want,
                    flags,
                )?)
            });
            match moved {
                Ok(n) => {
                    metrics::counter!("playback_storage_spliced_bytes_total").increment(n as u64);
                    state.queued += n;
                    HELD_BYTES.fetch_add(n, Ordering::Relaxed);
                    return Poll::Ready(Ok(stand_in(n)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Writes up to `len` bytes from the pipe to `to`.
    fn poll_drain(
        &self,
        cx: &mut Context<'_>,
        to: &TcpStream,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let mut state = self.state();
        let Some(pipe) = state.pipe.as_ref().filter(|_| state.queued >= len) else {
            return Poll::Ready(Err(io::Error::other(
                "a stand-in chunk without its bytes in the pipe",
            )));
        };
        let written = loop {
            ready!(to.poll_write_ready(cx))?;
            let written = to.try_io(Interest::WRITABLE, || {
                let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
                Ok(rustix::pipe::splice(
                    &pipe.read, None, to, None, len, flags,
                )?)
            });
            match written {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        };
        state.queued -= written;
        HELD_BYTES.fetch_sub(written, Ordering::Relaxed);
        if state.queued == 0 {
            state.release_pipe();
            if let Some(body) = state.waiting.take() {
                body.wake();
            }
        }
        Poll::Ready(Ok(written))
    }
}

/// Leave for one store read to splice into a listener's lane; revoked by
/// whoever must see the bytes.
#[derive(Debug)]
pub struct Grant {
    lane: Arc<Lane>,
    revoked: AtomicBool,
}

impl Grant {
    /// A grant for a body about to begin: whether its listener keeps up
    /// is asked afresh.
    pub fn new(lane: Arc<Lane>) -> Arc<Self> {
        lane.state().stalled = false;
        Arc::new(Self {
            lane,
            revoked: AtomicBool::new(false),
        })
    }

    /// Whether the listener has taken every write at once since the body
    /// began: a download on a fast path, not (yet) a player or a slow link.
    pub fn keeping_up(&self) -> bool {
        !self.lane.stalled()
    }

    /// The body's bytes are to be kept or read here: copy them.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Relaxed);
    }

    /// Ready when the body may splice its next bytes; `None` once revoked
    /// (the body is copied), or when no pipe can be had.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        if self.revoked.load(Ordering::Relaxed) {
            return None;
        }
        match self.lane.poll_room(cx) {
            Poll::Ready(Ok(())) => Some(Poll::Ready(())),
            Poll::Pending => Some(Poll::Pending),
            Poll::Ready(Err(e)) => {
                // Out of file descriptors, say: copying still works.
                tracing::warn!(error = %e, "no pipe to splice a body; copying it");
                self.revoke();
                None
            }
        }
    }

    /// Moves up to `want` bytes `from` the store's socket into the pipe,
    /// once [`poll_room`](Self::poll_room) was ready; a stand-in for them,
    /// empty at the end of `from`. `None` where this kernel cannot splice
    /// (the grant is then revoked, and the body copied).
    pub fn poll_fill(
        &self,
        cx: &mut Context<'_>,
        from: &TcpStream,
        want: usize,
    ) -> Option<Poll<io::Result<Bytes>>> {
        match self.lane.poll_fill(cx, from, want) {
            Poll::Ready(Err(e)) if cannot_splice(&e) => {
                tracing::warn!(error = %e, "this kernel cannot splice a body; copying it");
                self.revoke();
                None
            }
            polled => Some(polled),
        }
    }
}

mod listener;

pub use listener::SpliceIo;

#[cfg(test)]
mod tests;
