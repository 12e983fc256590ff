//! TLS to the store on buffers we own: rustls's unbuffered API under
//! [`fetch`](super::fetch)'s reads.
//!
//! Why not `tokio-rustls`: its connection keeps two buffers of its own for
//! as long as the connection lives, an 18 KiB one for records on their way
//! in and up to 16 KiB of decrypted text not read yet. A player's stream
//! is idle most of the time, waiting for its listener; with thousands of
//! them those buffers were the gateway's largest cost over HTTPS (about
//! 53 KiB per listener against plain HTTP's, in `bench/`). Here:
//! - decrypted text goes straight into the chunk the listener gets, and a
//!   chunk ends before a record that might not fit, so nothing decrypted
//!   waits inside the connection;
//! - the buffer for records coming in is the thread's, not the
//!   connection's: each read takes it and gives it back, and only a record
//!   begun and not yet whole stays behind, in a buffer of its own size. A
//!   stream whose listener stops reading holds no TLS buffer, however fast
//!   it went before (a player's first burst fills the socket buffers at the
//!   store's speed, then waits for minutes);
//! - a slow listener's read stops at the end of a record, so that nothing
//!   is left behind at all; a fast one's reads take two records a system
//!   call, the most the shared buffer holds.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::conn::invalid;

/// The most text a TLS record carries (RFC 8446 §5.1, RFC 5246 §6.2.1).
const MAX_PLAINTEXT: usize = 16 * 1024;
/// A record's header: type, version, length.
const HEADER: usize = 5;
/// The largest record accepted from the store: the text plus the
/// expansion either version allows (RFC 5246 §6.2.3).
const MAX_RECORD: usize = HEADER + MAX_PLAINTEXT + 2048;
/// Records held at most while a handshake message is being joined from
/// several of them (certificate chains); rustls's own bound is 64 KiB.
const MAX_INCOMING: usize = 80 * 1024;
/// The thread's buffer for records coming in: two whole ones. Why not
/// more: reading 36 KiB a system call already makes the calls' cost small
/// beside decrypting, and a larger buffer would not be the thread's alone
/// (see [`spare`]).
const READ_BUFFER: usize = 2 * MAX_RECORD;

/// One TLS connection to the store.
pub struct TlsConn {
    tcp: TcpStream,
    tls: UnbufferedClientConnection,
    /// Records received and not yet processed: `incoming[..used]`.
    incoming: Vec<u8>,
    used: usize,
    /// Records to send: `outgoing[sent..]`.
    outgoing: Vec<u8>,
    sent: usize,
    /// The store sent its `close_notify`: nothing more will come.
    peer_closed: bool,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConn")
            .field("tcp", &self.tcp)
            .field("used", &self.used)
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

/// What one look at the connection's state found.
enum Step {
    /// Something was done (a record decrypted, a message encoded): look
    /// again.
    Again,
    /// Records must be sent before anything else.
    Transmit,
    /// The handshake is done and nothing complete is waiting: data may be
    /// sent, and more records must be read before more text comes.
    Established,
    /// The handshake needs more records from the store.
    Blocked,
    /// The store closed the TLS session.
    Closed,
}

impl TlsConn {
    /// Runs the handshake over `tcp`.
    pub async fn connect(
        tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Self> {
        let tls = UnbufferedClientConnection::new(config, name).map_err(tls_error)?;
        let mut conn = Self {
            tcp,
            tls,
            incoming: Vec::new(),
            used: 0,
            outgoing: Vec::new(),
            sent: 0,
            peer_closed: false,
        };
        loop {
            match conn.step(None, None)? {
                Step::Again => {}
                Step::Transmit => conn.transmit().await?,
                Step::Established => {
                    // The handshake's records are done with: its buffer
                    // goes back to the thread's spare.
                    conn.release();
                    return Ok(conn);
                }
                Step::Blocked => {
                    if std::future::poll_fn(|cx| conn.poll_fill(cx, MAX_PLAINTEXT)).await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the store closed the connection during the TLS handshake",
                        ));
                    }
                }
                Step::Closed => return Err(closed()),
            }
        }
    }

    /// Encrypts `data` and sends it.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let mut data = Some(data);
        while data.is_some() {
            match self.step(None, Some(&mut data))? {
                Step::Again | Step::Established => {}
                Step::Transmit => self.transmit().await?,
                // Text or a handshake from a connection that was idle: a
                // store answering nothing asked (a 408 before closing), or
                // closing. Not a connection to use.
                Step::Blocked | Step::Closed => return Err(closed()),
            }
        }
        self.transmit().await
    }

    /// The next decrypted text: at least one record's, at most about
    /// `want` bytes (never less than a record's worth of room), whatever
    /// has arrived once the socket is dry. Empty at the end of the
    /// session (the store's `close_notify`, or the socket closed between
    /// records).
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<Bytes>> {
        if self.peer_closed {
            return Poll::Ready(Ok(Bytes::new()));
        }
        let mut out = BytesMut::with_capacity(want.max(MAX_PLAINTEXT));
        let slow = want <= MAX_PLAINTEXT;
        let done = loop {
            // A chunk never grows past its capacity: it ends before a
            // record that does not fit (the store's records may be small:
            // Go's first ones on a connection are a packet's size).
            if !out.is_empty() && self.record_len().unwrap_or(0) > out.capacity() - out.len() {
                break Ok(());
            }
            if self.sent < self.outgoing.len() {
                match self.poll_transmit(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => break Err(e),
                    Poll::Pending if out.is_empty() => return Poll::Pending,
                    Poll::Pending => break Ok(()),
                }
            }
            match self.step(Some(&mut out), None) {
                Ok(Step::Again | Step::Transmit) => continue,
                Ok(Step::Closed) => {
                    self.peer_closed = true;
                    break Ok(());
                }
                Ok(Step::Established | Step::Blocked) => {}
                Err(e) => break Err(e),
            }
            // A slow listener's read ends with its record; a fast one's
            // takes what the chunk and the read buffer can hold.
            let room = (out.capacity() - out.len()).min(READ_BUFFER.saturating_sub(self.used));
            let limit = if slow {
                self.rest_of_record()
            } else {
                self.rest_of_record().max(room)
            };
            match self.poll_fill(cx, limit) {
                Poll::Ready(Ok(0)) if self.used > 0 => {
                    break Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the store closed the connection inside a TLS record",
                    ));
                }
                Poll::Ready(Ok(0)) => break Ok(()),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => break Err(e),
                Poll::Pending if out.is_empty() => {
                    self.release();
                    return Poll::Pending;
                }
                Poll::Pending => break Ok(()),
            }
        };
        self.release();
        Poll::Ready(done.map(|()| out.freeze()))
    }

    /// Whether an idle connection is still usable (see
    /// [`Conn::is_idle_open`](super::conn::Conn::is_idle_open)): nothing
    /// half-read, nothing arrived since.
    pub fn is_idle_open(&self) -> bool {
        !self.peer_closed && self.used == 0 && super::conn::tcp_is_idle_open(&self.tcp)
    }

    /// Looks at the connection once: decrypts one record into `out`, or
    /// encrypts `send` once the handshake allows it, or encodes what the
    /// handshake must send. Text with nowhere to go is an error.
    fn step(
        &mut self,
        out: Option<&mut BytesMut>,
        send: Option<&mut Option<&[u8]>>,
    ) -> io::Result<Step> {
        let status = self
            .tls
            .process_tls_records(&mut self.incoming[..self.used]);
        let mut discard = status.discard;
        let step = match status.state.map_err(tls_error)? {
            ConnectionState::ReadTraffic(mut read) => {
                let Some(out) = out else {
                    return Err(invalid("the store sent data before a request"));
                };
                while let Some(record) = read.next_record() {
                    let record = record.map_err(tls_error)?;
                    discard += record.discard;
                    out.extend_from_slice(record.payload);
                }
                Step::Again
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                grow_and_retry(&mut self.outgoing, |buf| {
                    encode.encode(buf).map_err(|e| match e {
                        EncodeError::InsufficientSize(size) => Ok(size),
                        other => Err(tls_error(other)),
                    })
                })?;
                Step::Again
            }
            ConnectionState::TransmitTlsData(transmit) => {
                // What was encoded is in `outgoing`, sent before the next
                // look at the state.
                transmit.done();
                Step::Transmit
            }
            ConnectionState::WriteTraffic(mut write) => match send.and_then(Option::take) {
                Some(data) => {
                    grow_and_retry(&mut self.outgoing, |buf| {
                        write.encrypt(data, buf).map_err(|e| match e {
                            EncryptError::InsufficientSize(size) => Ok(size),
                            other => Err(tls_error(other)),
                        })
                    })?;
                    Step::Again
                }
                None => Step::Established,
            },
            ConnectionState::BlockedHandshake => Step::Blocked,
            ConnectionState::PeerClosed | ConnectionState::Closed => Step::Closed,
            other => return Err(invalid(&format!("an unexpected TLS state: {other:?}"))),
        };
        self.incoming.copy_within(discard..self.used, 0);
        self.used -= discard;
        Ok(step)
    }

    /// The whole length of the record begun in `incoming`, once its
    /// header is in: more than the text it carries.
    fn record_len(&self) -> Option<usize> {
        (self.used >= HEADER)
            .then(|| HEADER + usize::from(u16::from_be_bytes([self.incoming[3], self.incoming[4]])))
    }

    /// How much to read to finish the record begun in `incoming` (its
    /// header first).
    fn rest_of_record(&self) -> usize {
        match self.record_len() {
            Some(len) => len.saturating_sub(self.used).max(1),
            None => HEADER - self.used,
        }
    }

    /// Reads up to `limit` more bytes of records.
    fn poll_fill(&mut self, cx: &mut Context<'_>, limit: usize) -> Poll<io::Result<usize>> {
        // Only a handshake message joined from many records waits this
        // long: records are processed as soon as they are whole.
        if self.used >= MAX_INCOMING {
            return Poll::Ready(Err(invalid(
                "a TLS message from the store that is too large",
            )));
        }
        let end = self.used + limit.max(1);
        if self.incoming.len() < end {
            self.grow(end);
        }
        let mut buf = ReadBuf::new(&mut self.incoming[self.used..end]);
        ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut buf))?;
        let n = buf.filled().len();
        self.used += n;
        Poll::Ready(Ok(n))
    }

    /// Makes `incoming` at least `end` bytes long, keeping what it holds,
    /// in the thread's spare buffer. Its length is kept between uses, so
    /// it is zeroed once, not at every read.
    fn grow(&mut self, end: usize) {
        let mut buf = spare::take();
        if buf.capacity() < end {
            // None spare (or a handshake's larger need): one that can
            // become the spare.
            buf = Vec::with_capacity(end.max(READ_BUFFER));
        }
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[..self.used].copy_from_slice(&self.incoming[..self.used]);
        self.incoming = buf;
    }

    /// Keeps no record buffer while the listener is away: the buffer goes
    /// back to the thread's spare, and a record begun (a slow read's
    /// header, a fast read's last record) waits in a buffer of its size.
    fn release(&mut self) {
        if self.incoming.capacity() == 0 {
            return;
        }
        let buf = std::mem::take(&mut self.incoming);
        if self.used > 0 {
            self.incoming = buf[..self.used].to_vec();
        }
        spare::give_back(buf);
    }

    fn poll_transmit(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.outgoing[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        // Sent: the buffer goes. A request is sent once, and its stream
        // may last an hour.
        self.outgoing = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    async fn transmit(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_transmit(cx)).await
    }
}

/// One spare read buffer per thread. Why: thousands of streams each read
/// now and then; taking the buffer from here and giving it back keeps them
/// from holding one each while they wait, without a fresh allocation per
/// read, whose churn beside the chunks that live on in the listeners'
/// queues fragments the heap (measured: more memory, not less).
mod spare {
    use std::cell::Cell;

    thread_local! {
        static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    }

    pub fn take() -> Vec<u8> {
        SPARE.with(Cell::take)
    }

    /// Keeps `buf` if it is no larger than [`READ_BUFFER`](super::READ_BUFFER)
    /// (a handshake's larger buffer is let go).
    pub fn give_back(buf: Vec<u8>) {
        if buf.capacity() > 0 && buf.capacity() <= super::READ_BUFFER {
            SPARE.with(|s| s.set(buf));
        }
    }
}

/// Runs `write` on the free end of `buf`, growing it once by what the
/// first try said was missing.
fn grow_and_retry(
    buf: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Result<InsufficientSizeError, io::Error>>,
) -> io::Result<()> {
    let start = buf.len();
    buf.resize(buf.capacity().max(start + 256), 0);
    let mut written = write(&mut buf[start..]);
    if let Err(Ok(InsufficientSizeError { required_size })) = written {
        buf.resize(start + required_size, 0);
        written = write(&mut buf[start..]);
    }
    match written {
        Ok(n) => {
            buf.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            buf.truncate(start);
            Err(e
                .err()
                .unwrap_or_else(|| invalid("a TLS buffer that would not grow")))
        }
    }
}

/// A TLS failure as I/O: kept whole, so that a certificate problem is
/// still known as one ([`is_untrusted`](super::conn::is_untrusted)).
fn tls_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the store closed the TLS session",
    )
}

#[cfg(test)]
mod tests;
