//! Response bodies streamed from storage: exact length, and
//! `multipart/byteranges` for several ranges.
//!
//! A body that ends early or errors must never look complete to the
//! client: [`exact`] turns a short or long stream into an error, and an
//! error in a body makes hyper abort the connection instead of finishing
//! the response.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};

use super::resume::{Source, resuming};
use crate::range::ByteRange;
use crate::storage::{ByteStream, StorageError};

/// Wraps a body so that it yields exactly `len` bytes or fails; counts
/// the bytes and the streams in flight.
pub fn exact(inner: ByteStream, len: u64) -> ByteStream {
    metrics::gauge!("playback_streams_in_flight").increment(1.0);
    Box::pin(Exact {
        inner,
        remaining: len,
        done: false,
    })
}

struct Exact {
    inner: ByteStream,
    remaining: u64,
    done: bool,
}

impl Drop for Exact {
    fn drop(&mut self) {
        metrics::gauge!("playback_streams_in_flight").decrement(1.0);
    }
}

impl Stream for Exact {
    type Item = Result<Bytes, StorageError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let fail = |why: String| {
            tracing::warn!(%why, "aborting response body");
            Some(Err(StorageError::Unavailable(why)))
        };
        let out = match item {
            Some(Ok(chunk)) if chunk.len() as u64 > self.remaining => fail(format!(
                "storage sent more than the {} bytes announced",
                self.remaining
            )),
            Some(Ok(chunk)) => {
                self.remaining -= chunk.len() as u64;
                metrics::counter!("playback_streamed_bytes_total").increment(chunk.len() as u64);
                Some(Ok(chunk))
            }
            Some(Err(e)) => fail(e.to_string()),
            None if self.remaining > 0 => fail(format!(
                "storage stream ended {} bytes early",
                self.remaining
            )),
            None => None,
        };
        if !matches!(out, Some(Ok(_))) {
            self.done = true;
        }
        Poll::Ready(out)
    }
}

/// A `multipart/byteranges` body (RFC 9110 §14.6): each part is read from
/// storage as its own ranged read, only when the client gets to it.
pub struct Multipart {
    pub boundary: String,
    parts: Vec<(Bytes, ByteRange)>,
    closing: Bytes,
}

impl Multipart {
    pub fn new(ranges: &[ByteRange], total: u64, content_type: &str) -> Self {
        let boundary = format!("pgw-{}", uuid::Uuid::new_v4().simple());
        let parts = ranges
            .iter()
            .map(|r| {
                let head = format!(
                    "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
                    r.content_range(total)
                );
                (Bytes::from(head), *r)
            })
            .collect();
        let closing = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        Self {
            boundary,
            parts,
            closing,
        }
    }

    /// The exact body length, for `Content-Length`.
    pub fn len(&self) -> u64 {
        let parts: u64 = self
            .parts
            .iter()
            .map(|(h, r)| h.len() as u64 + r.len())
            .sum();
        parts + self.closing.len() as u64
    }

    /// The body. Every part is read under `If-Match` on the source's ETag,
    /// so all parts come from the one version the headers describe, and a
    /// part the store cuts short is resumed.
    pub fn into_stream(self, source: Arc<Source>) -> ByteStream {
        let len = self.len();
        let parts = stream::iter(self.parts).then(move |(head, range)| {
            let source = source.clone();
            async move {
                match source.get(Some(range)).await {
                    Ok(obj) => {
                        let body = resuming(obj.body, source.clone(), range.start, range.end + 1);
                        stream::once(async { Ok(head) })
                            .chain(exact(body, range.len()))
                            .boxed()
                    }
                    Err(e) => stream::once(async { Err(e) }).boxed(),
                }
            }
        });
        let closing = stream::once(async { Ok(self.closing) });
        exact(Box::pin(parts.flatten().chain(closing)), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, StorageError>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(stream::iter(items))
    }

    async fn collect(s: ByteStream) -> Vec<Result<Bytes, String>> {
        s.map(|r| r.map_err(|e| e.to_string())).collect().await
    }

    #[tokio::test]
    async fn exact_passes_a_complete_body() {
        let out = collect(exact(chunks(&[b"ab", b"cd"]), 4)).await;
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn exact_fails_a_short_body() {
        let out = collect(exact(chunks(&[b"ab"]), 4)).await;
        assert!(
            out.last()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .contains("2 bytes early")
        );
    }

    #[tokio::test]
    async fn exact_fails_a_long_body() {
        let out = collect(exact(chunks(&[b"abcdef"]), 4)).await;
        assert_eq!(out.len(), 1);
        assert!(out[0].is_err());
    }

    #[test]
    fn multipart_length_counts_every_byte() {
        let m = Multipart::new(
            &[
                ByteRange { start: 0, end: 1 },
                ByteRange { start: 5, end: 9 },
            ],
            10,
            "audio/wav",
        );
        let heads: u64 = m.parts.iter().map(|(h, _)| h.len() as u64).sum();
        assert_eq!(m.len(), heads + 2 + 5 + m.closing.len() as u64);
        assert!(
            m.parts[1]
                .0
                .ends_with(b"Content-Range: bytes 5-9/10\r\n\r\n")
        );
    }
}
