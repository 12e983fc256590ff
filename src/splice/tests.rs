use std::future::poll_fn;
use std::io::IoSlice;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A connected pair of loopback sockets.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let near = TcpStream::connect(listener.local_addr().unwrap());
    let (near, far) = tokio::join!(near, listener.accept());
    (near.unwrap(), far.unwrap().0)
}

/// The listener's side as the server sees it, and the listener.
async fn listener(write_timeout: Duration) -> (SpliceIo, Arc<Lane>, TcpStream) {
    listener_idle(Duration::from_secs(60), write_timeout).await
}

async fn listener_idle(
    idle: Duration,
    write_timeout: Duration,
) -> (SpliceIo, Arc<Lane>, TcpStream) {
    let (server, client) = pair().await;
    let lane = Arc::new(Lane::default());
    let io = SpliceIo::new(server, lane.clone(), idle, write_timeout);
    (io, lane, client)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

async fn fill(grant: &Grant, from: &TcpStream, want: usize) -> io::Result<Bytes> {
    poll_fn(|cx| grant.poll_room(cx).expect("granted")).await;
    poll_fn(|cx| {
        grant
            .poll_fill(cx, from, want)
            .expect("this kernel splices")
    })
    .await
}

#[test]
fn stand_ins_are_known_by_address_only() {
    let chunk = stand_in(4096);
    assert!(is_stand_in(&chunk));
    assert!(
        is_stand_in(&chunk[100..200]),
        "what is left of a partial write"
    );
    assert!(!is_stand_in(&chunk[..0]));
    assert!(!is_stand_in(&[0u8; 4096]), "zeros of our own are bytes");
    assert!(!is_stand_in(b"RIFF"));
}

#[tokio::test]
async fn spliced_bytes_and_real_bytes_reach_the_listener_in_order() {
    let (mut store, from) = pair().await;
    let (mut io, lane, mut client) = listener(Duration::from_secs(5)).await;
    let sent = pattern(3_000_000);
    let feeding = tokio::spawn({
        let sent = sent.clone();
        async move { store.write_all(&sent).await.unwrap() }
    });
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    });
    let grant = Grant::new(lane.clone());
    let (mut moved, mut want) = (0, Vec::new());
    while moved < sent.len() {
        let chunk = fill(&grant, &from, 200_000.min(sent.len() - moved))
            .await
            .unwrap();
        assert!(!chunk.is_empty() && is_stand_in(&chunk));
        // A marker of real bytes before each chunk, as a multipart body
        // has boundaries between its parts.
        let marker = format!("<{}>", chunk.len());
        io.write_all(marker.as_bytes()).await.unwrap();
        io.write_all(&chunk).await.unwrap();
        want.extend_from_slice(marker.as_bytes());
        want.extend_from_slice(&sent[moved..moved + chunk.len()]);
        moved += chunk.len();
    }
    feeding.await.unwrap();
    io.shutdown().await.unwrap();
    drop(io);
    let got = reading.await.unwrap();
    assert!(got == want, "{} bytes, {} expected", got.len(), want.len());
    assert_eq!(lane.state().queued, 0);
    assert!(lane.state().pipe.is_none(), "an empty pipe goes back");
}

#[tokio::test]
async fn a_vectored_write_stops_at_a_stand_in_and_then_splices_it() {
    let (mut store, from) = pair().await;
    let (mut io, lane, mut client) = listener(Duration::from_secs(5)).await;
    store.write_all(b"audio").await.unwrap();
    let chunk = fill(&Grant::new(lane), &from, 5).await.unwrap();
    assert_eq!(chunk.len(), 5);
    let head = IoSlice::new(b"HTTP/1.1 200 OK\r\n\r\n");
    let n = io
        .write_vectored(&[head, IoSlice::new(&chunk)])
        .await
        .unwrap();
    assert_eq!(n, head.len(), "the headers alone");
    let n = io.write_vectored(&[IoSlice::new(&chunk)]).await.unwrap();
    assert_eq!(n, 5);
    io.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"HTTP/1.1 200 OK\r\n\r\naudio");
}

#[tokio::test]
async fn the_end_of_the_store_is_an_empty_chunk() {
    let (mut store, from) = pair().await;
    let (mut io, lane, mut client) = listener(Duration::from_secs(5)).await;
    store.write_all(b"short").await.unwrap();
    drop(store);
    let grant = Grant::new(lane);
    let chunk = fill(&grant, &from, 1000).await.unwrap();
    assert_eq!(chunk.len(), 5);
    // The listener has not taken those five bytes yet: no room.
    let waker = futures_util::task::noop_waker_ref();
    let mut cx = Context::from_waker(waker);
    assert!(grant.poll_room(&mut cx).unwrap().is_pending());
    io.write_all(&chunk).await.unwrap();
    assert!(fill(&grant, &from, 1000).await.unwrap().is_empty());
    let mut got = [0u8; 5];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"short");
}

#[tokio::test]
async fn a_body_waiting_for_room_is_woken_when_the_listener_takes_the_pipe() {
    let (mut store, from) = pair().await;
    let (mut io, lane, mut client) = listener(Duration::from_secs(5)).await;
    store.write_all(&pattern(10_000)).await.unwrap();
    let grant = Grant::new(lane);
    let chunk = fill(&grant, &from, 10_000).await.unwrap();
    let waiting = tokio::spawn({
        let grant = grant.clone();
        async move { poll_fn(|cx| grant.poll_room(cx).unwrap()).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "the pipe holds {} bytes",
        chunk.len()
    );
    io.write_all(&chunk).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken")
        .unwrap();
    let mut got = vec![0u8; chunk.len()];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(got, pattern(10_000)[..chunk.len()]);
}

#[tokio::test]
async fn a_revoked_grant_leaves_the_body_to_be_copied() {
    let lane = Arc::new(Lane::default());
    let grant = Grant::new(lane);
    grant.revoke();
    let waker = futures_util::task::noop_waker_ref();
    assert!(grant.poll_room(&mut Context::from_waker(waker)).is_none());
}

#[tokio::test]
async fn a_stand_in_without_its_bytes_is_an_error_not_zeros() {
    let (mut io, _lane, _client) = listener(Duration::from_secs(5)).await;
    let err = io.write_all(&stand_in(10)).await.unwrap_err();
    assert!(err.to_string().contains("without its bytes"), "{err}");
}

#[tokio::test]
async fn a_listener_that_stops_reading_is_cut_off_at_the_write_deadline() {
    let (mut store, from) = pair().await;
    let (mut io, lane, _client) = listener(Duration::from_millis(300)).await;
    let total = 64 * 1024 * 1024;
    let feeding = tokio::spawn(async move {
        let block = pattern(1024 * 1024);
        for _ in 0..total / block.len() {
            if store.write_all(&block).await.is_err() {
                break;
            }
        }
    });
    let grant = Grant::new(lane.clone());
    assert!(grant.keeping_up(), "nothing has waited yet");
    let started = std::time::Instant::now();
    let mut moved = 0;
    let err = loop {
        let chunk = fill(&grant, &from, 256 * 1024).await.unwrap();
        moved += chunk.len();
        if let Err(e) = io.write_all(&chunk).await {
            break e;
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(moved < total, "cut off before the end");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!grant.keeping_up(), "a write waited");
    assert!(Grant::new(lane).keeping_up(), "the next body asks afresh");
    feeding.abort();
}

#[tokio::test]
async fn copied_bytes_a_listener_does_not_take_are_cut_off_at_the_write_deadline() {
    let (mut io, lane, _client) = listener(Duration::from_millis(300)).await;
    let grant = Grant::new(lane);
    let block = pattern(1024 * 1024);
    let started = std::time::Instant::now();
    let err = loop {
        if let Err(e) = io.write_all(&block).await {
            break e;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never cut off");
    };
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(!grant.keeping_up(), "a write waited");
}

#[tokio::test]
async fn the_idle_deadline_counts_bytes_written_and_closes_a_silent_connection() {
    let idle = Duration::from_millis(300);
    let (io, _lane, mut client) = listener_idle(idle, Duration::from_secs(5)).await;
    let (mut reads, mut writes) = tokio::io::split(io);
    let started = std::time::Instant::now();
    // hyper reads while it writes a response: that read must not end
    // while bytes go out, however long they take.
    let reading = tokio::spawn(async move { reads.read(&mut [0u8; 16]).await });
    let steady = Duration::from_millis(1200);
    while started.elapsed() < steady {
        writes.write_all(b"x").await.unwrap();
        tokio::time::sleep(idle / 3).await;
    }
    let quiet = std::time::Instant::now();
    let err = reading.await.unwrap().expect_err("the idle deadline");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(started.elapsed() >= steady, "not while bytes went out");
    let after = quiet.elapsed();
    assert!(
        after < Duration::from_secs(3),
        "closed {after:?} after the last byte"
    );
    // Every byte written reached the listener.
    drop(writes);
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert!(got.iter().all(|&b| b == b'x') && !got.is_empty());
}

#[test]
fn a_kernel_that_cannot_splice_is_told_from_a_failed_connection() {
    use rustix::io::Errno;
    for errno in [Errno::NOSYS, Errno::PERM, Errno::INVAL, Errno::OPNOTSUPP] {
        assert!(cannot_splice(&errno.into()), "{errno:?}");
    }
    for errno in [Errno::CONNRESET, Errno::PIPE, Errno::AGAIN] {
        assert!(!cannot_splice(&errno.into()), "{errno:?}");
    }
    assert!(!cannot_splice(&io::Error::other("no code")));
}
