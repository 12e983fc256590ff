//! A body the store cut short is picked up where it stopped.
//!
//! Stores end reads for reasons of their own: SeaweedFS closes a
//! connection whose writes stay blocked past its idle deadline (a player
//! that pauses stops our reads too; see `tests/api/resumes.rs`), Amazon
//! S3 is known to reset slow readers, a load balancer resets a long
//! connection, a store node restarts, a read stalls past its deadline.
//! Once the headers are out, the only failure a client can still be told
//! is an aborted response, and a listener hears the recording stop.
//!
//! So a body that fails with a transient error, or ends early, is read
//! again from the first byte not yet sent, conditioned on the ETag the
//! headers announced: the bytes that follow are of the same version, or
//! there are none. The listener notices a pause at most.
//!
//! Bounded, so a broken store is not hammered: every resume but
//! [`TRIES_WITHOUT_PROGRESS`] in a row must follow new bytes, with a pause
//! before each of those, and a response resumes at most [`MAX_RESUMES`]
//! times. A changed or vanished object, a refusal, or a store that stays
//! down ends the body with an error, as it did before resuming.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::Stream;

use crate::range::ByteRange;
use crate::splice::{Grant, Lane};
use crate::storage::{ByteStream, GetOptions, Object, Storage, StorageError};

/// Resumes one response may make in all.
pub const MAX_RESUMES: u32 = 32;
/// Resumes in a row that may follow no new byte.
pub const TRIES_WITHOUT_PROGRESS: u32 = 2;
/// The pause before a resume that follows no new byte, doubled each time.
const PAUSE: Duration = Duration::from_millis(100);

/// Where a body comes from: what a resume asks storage for again.
pub struct Source {
    pub storage: Arc<dyn Storage>,
    pub key: String,
    /// The ETag the response announced; a resume reads only that version.
    pub etag: String,
    /// The listener's connection, where it can take bodies by splice.
    pub lane: Option<Arc<Lane>>,
}

impl Source {
    /// Reads `range` (`None`: all) of the version the response announced,
    /// spliced to the listener where its connection allows.
    pub async fn get(&self, range: Option<ByteRange>) -> Result<Object, StorageError> {
        let grant = self.lane.clone().map(Grant::new);
        let opts = GetOptions {
            range,
            if_match: Some(&self.etag),
            splice: grant.as_ref(),
        };
        self.storage.get(&self.key, opts).await
    }
}

/// `first`, the body of a read of bytes `start..end` (end exclusive) of the
/// source, carried on from the store when it fails before `end`.
pub fn resuming(first: ByteStream, source: Arc<Source>, start: u64, end: u64) -> ByteStream {
    Box::pin(Resuming {
        state: State::Reading(first),
        source,
        next: start,
        end,
        resumes: 0,
        stalled: 0,
        progressed: false,
    })
}

type Reopen = Pin<Box<dyn Future<Output = Result<Object, StorageError>> + Send>>;

enum State {
    Reading(ByteStream),
    Reopening(Reopen),
    Done,
}

struct Resuming {
    state: State,
    source: Arc<Source>,
    /// The offset of the next byte owed.
    next: u64,
    end: u64,
    resumes: u32,
    /// Resumes in a row that followed no new byte.
    stalled: u32,
    /// Whether a byte came since the last (re)open.
    progressed: bool,
}

impl Resuming {
    /// The read that carries on after `failure`, or the error that ends
    /// the body.
    fn reopen(&mut self, failure: StorageError) -> Result<Reopen, StorageError> {
        // Only a transient failure may go better next time: a changed or
        // missing object, or a refusal, will not.
        if !matches!(failure, StorageError::Unavailable(_)) {
            return Err(failure);
        }
        self.stalled = if self.progressed { 0 } else { self.stalled + 1 };
        if self.stalled > TRIES_WITHOUT_PROGRESS || self.resumes >= MAX_RESUMES {
            metrics::counter!("playback_stream_resumes_total", "outcome" => "gave_up").increment(1);
            tracing::warn!(
                key = %self.source.key,
                at = self.next,
                resumes = self.resumes,
                why = %failure,
                "the store cut the body again; giving up"
            );
            return Err(failure);
        }
        metrics::counter!("playback_stream_resumes_total", "outcome" => "resumed").increment(1);
        tracing::info!(
            key = %self.source.key,
            at = self.next,
            why = %failure,
            "the store cut the body; resuming where it stopped"
        );
        self.resumes += 1;
        self.progressed = false;
        let pause = match self.stalled {
            0 => Duration::ZERO,
            n => PAUSE * 2u32.pow(n - 1),
        };
        let source = self.source.clone();
        let range = ByteRange {
            start: self.next,
            end: self.end - 1,
        };
        Ok(Box::pin(async move {
            tokio::time::sleep(pause).await;
            source.get(Some(range)).await
        }))
    }
}

impl Stream for Resuming {
    type Item = Result<bytes::Bytes, StorageError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Reading(body) => {
                    let failure = match ready!(body.as_mut().poll_next(cx)) {
                        Some(Ok(chunk)) => {
                            this.next += chunk.len() as u64;
                            this.progressed |= !chunk.is_empty();
                            return Poll::Ready(Some(Ok(chunk)));
                        }
                        // Every byte owed was sent: whatever the store
                        // says after that changes nothing.
                        _ if this.next >= this.end => {
                            this.state = State::Done;
                            return Poll::Ready(None);
                        }
                        Some(Err(e)) => e,
                        None => StorageError::Unavailable(format!(
                            "the store ended the body {} bytes early",
                            this.end - this.next
                        )),
                    };
                    match this.reopen(failure) {
                        Ok(reopen) => this.state = State::Reopening(reopen),
                        Err(e) => {
                            this.state = State::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                }
                State::Reopening(reopen) => match ready!(reopen.as_mut().poll(cx)) {
                    Ok(object) => this.state = State::Reading(object.body),
                    Err(e) => {
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests;
