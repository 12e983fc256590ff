//! The unbuffered TLS connection against a rustls server on loopback:
//! both TLS versions, records of every size, slow and fast reads, and a
//! store that sends garbage or stops mid-record.

use std::future::Future;

use rustls::pki_types::PrivatePkcs8KeyDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::*;
use crate::storage::s3::conn::{is_untrusted, trust};

/// A server under a fresh certificate for 127.0.0.1 that speaks only
/// `version`, and that certificate's client settings.
fn configs(
    version: &'static rustls::SupportedProtocolVersion,
) -> (TlsAcceptor, Arc<rustls::ClientConfig>) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = made.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .unwrap();
    (TlsAcceptor::from(Arc::new(config)), trust(&[cert]))
}

/// A client connection to a server that runs `serve` on its end.
async fn pair<F, Fut>(
    version: &'static rustls::SupportedProtocolVersion,
    serve: F,
) -> io::Result<TlsConn>
where
    F: FnOnce(TlsStream<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (acceptor, client) = configs(version);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        if let Ok(tls) = acceptor.accept(tcp).await {
            serve(tls).await;
        }
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConn::connect(tcp, client, ServerName::try_from("127.0.0.1").unwrap()).await
}

/// Reads chunks of about `want` until the end; checks that a read leaves
/// no buffer behind but one for a record begun.
async fn read_all(conn: &mut TlsConn, want: usize) -> io::Result<(Vec<u8>, Vec<usize>)> {
    let (mut text, mut sizes) = (Vec::new(), Vec::new());
    loop {
        let chunk = std::future::poll_fn(|cx| conn.poll_chunk(cx, want)).await?;
        if chunk.is_empty() {
            return Ok((text, sizes));
        }
        assert!(
            conn.incoming.capacity() <= conn.used.max(HEADER),
            "reads of {want}: {} bytes kept for {} waiting",
            conn.incoming.capacity(),
            conn.used,
        );
        sizes.push(chunk.len());
        text.extend_from_slice(&chunk);
    }
}

fn text(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

const VERSIONS: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS12, &rustls::version::TLS13];

#[tokio::test]
async fn requests_and_answers_cross_both_versions_in_records_of_every_size() {
    for version in VERSIONS {
        for want in [MIN_READ_FOR_TESTS, 256 * 1024] {
            let sent = text(600_000);
            let answer = sent.clone();
            let mut conn = pair(version, move |mut tls| async move {
                let mut request = [0u8; 5];
                tls.read_exact(&mut request).await.unwrap();
                assert_eq!(&request, b"hello");
                // Records of 1 byte to whole ones: each write is flushed
                // as records of its own.
                let mut at = 0;
                for size in [1, 100, 1_000, 5_000, 16_384, 40_000].iter().cycle() {
                    let end = (at + size).min(answer.len());
                    tls.write_all(&answer[at..end]).await.unwrap();
                    tls.flush().await.unwrap();
                    at = end;
                    if at == answer.len() {
                        break;
                    }
                }
                tls.shutdown().await.unwrap();
            })
            .await
            .unwrap();
            conn.send(b"hello").await.unwrap();
            assert_eq!(conn.outgoing.capacity(), 0, "nothing kept once sent");
            let (got, sizes) = read_all(&mut conn, want).await.unwrap();
            assert!(
                got == sent,
                "{version:?}, reads of {want}: the text differs"
            );
            let largest = sizes.iter().max().copied().unwrap_or(0);
            assert!(
                largest <= want.max(MAX_PLAINTEXT),
                "{version:?}: a chunk of {largest}"
            );
            // Small records share a chunk: 600,000 bytes come in about 80
            // records, and in about 40 chunks of 16 KiB or 5 of 256 KiB.
            let most = if want <= MAX_PLAINTEXT { 50 } else { 8 };
            assert!(
                sizes.len() <= most,
                "{version:?}, reads of {want}: {sizes:?}"
            );
            assert!(!conn.is_idle_open(), "closed by the store");
            assert_eq!(conn.incoming.capacity(), 0, "nothing kept once idle");
        }
    }
}

const MIN_READ_FOR_TESTS: usize = crate::storage::s3::fetch::MIN_READ;

#[tokio::test]
async fn certificates_are_checked() {
    let (acceptor, _) = configs(&rustls::version::TLS13);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = acceptor.accept(tcp).await;
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = TlsConn::connect(tcp, trust(&[]), ServerName::try_from("127.0.0.1").unwrap())
        .await
        .err()
        .unwrap();
    assert!(is_untrusted(&err), "{err}");
}

#[tokio::test]
async fn a_store_that_speaks_no_tls_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let _ = tcp
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        let _ = tcp.read(&mut [0u8; 1024]).await;
    });
    let (_, client) = configs(&rustls::version::TLS13);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = TlsConn::connect(tcp, client, ServerName::try_from("127.0.0.1").unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
}

/// How a connection failed: at the handshake (garbage that came with its
/// last records) or at a read.
async fn failure(conn: io::Result<TlsConn>, want: usize) -> io::Error {
    match conn {
        Err(e) => e,
        Ok(mut conn) => read_all(&mut conn, want).await.err().unwrap(),
    }
}

#[tokio::test]
async fn garbage_and_cut_records_after_the_handshake_are_errors() {
    for version in VERSIONS {
        // A record whose text does not decrypt.
        let conn = pair(version, |mut tls| async move {
            tls.get_mut().0.write_all(&[23, 3, 3, 0, 40]).await.unwrap();
            tls.get_mut().0.write_all(&[0xAB; 40]).await.unwrap();
            let _ = tls.read(&mut [0u8; 16]).await;
        })
        .await;
        let err = failure(conn, MIN_READ_FOR_TESTS).await;
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{version:?}: {err}");
        // A record that stops half-way, the connection closed.
        let conn = pair(version, |mut tls| async move {
            tls.get_mut()
                .0
                .write_all(&[23, 3, 3, 1, 0, 1, 2, 3])
                .await
                .unwrap();
        })
        .await;
        let err = failure(conn, MIN_READ_FOR_TESTS).await;
        assert_eq!(
            err.kind(),
            io::ErrorKind::UnexpectedEof,
            "{version:?}: {err}"
        );
        // A record longer than TLS allows.
        let conn = pair(version, |mut tls| async move {
            tls.get_mut()
                .0
                .write_all(&[23, 3, 3, 0xFF, 0xFF])
                .await
                .unwrap();
            tls.get_mut().0.write_all(&vec![0u8; 70_000]).await.unwrap();
            let _ = tls.read(&mut [0u8; 16]).await;
        })
        .await;
        let err = failure(conn, 256 * 1024).await;
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{version:?}: {err}");
    }
}
