//! The read-size rule, response heads (garbled ones too) and the pool.

use super::*;
use crate::storage::s3::conn::trust;

#[test]
fn reads_follow_the_listeners_pace() {
    let max = 256 * 1024;
    // A player at 16 KB/s, and one whose first burst filled the socket
    // buffers: the smallest reads.
    assert_eq!(read_size(0, Duration::ZERO, max), MIN_READ);
    assert_eq!(
        read_size(16_000 * 30, Duration::from_secs(30), max),
        MIN_READ
    );
    assert_eq!(read_size(300_000, Duration::from_millis(20), max), MIN_READ);
    // A download at 100 MB/s: 1 MB per 10 ms, capped.
    assert_eq!(read_size(100_000_000, Duration::from_secs(1), max), max);
    // In between: 10 ms of its pace.
    assert_eq!(read_size(5_000_000, Duration::from_secs(1), max), 50_000);
    // An operator's smaller cap wins over the floor.
    assert_eq!(read_size(0, Duration::ZERO, 8192), 8192);
}

fn head(text: &str) -> io::Result<Option<(Head, usize)>> {
    parse_head(text.as_bytes())
}

#[test]
fn heads_are_parsed() {
    let text = "HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/100\r\n\
                ETag: \"abc\"\r\nLast-Modified: Tue, 09 May 2017 10:00:00 GMT\r\n\r\nbody";
    let (h, len) = head(text).unwrap().unwrap();
    assert_eq!(len, text.len() - 4);
    assert_eq!(h.status, 206);
    assert_eq!(h.content_length, Some(10));
    assert_eq!(h.content_range.as_deref(), Some("bytes 0-9/100"));
    assert_eq!(h.etag.as_deref(), Some("\"abc\""));
    assert!(h.last_modified.is_some());
    assert!(!h.close);
    let (h, _) = head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.close);
    let (h, _) = head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.close, "HTTP/1.0 closes");
    assert!(head("HTTP/1.1 200 OK\r\nContent-Le").unwrap().is_none());
}

#[test]
fn garbled_heads_are_errors() {
    for bad in [
        "HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "SMTP ready\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
    ] {
        assert!(head(bad).is_err(), "{bad:?}");
    }
}

mod pool {
    //! The pool against a tiny HTTP/1.1 server on loopback that counts the
    //! connections it accepts.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    use super::*;

    /// Answers every request on a connection with `body`, over TLS with
    /// `tls`; returns its address and the count of accepted connections.
    async fn server(body: &'static [u8], tls: Option<TlsAcceptor>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => answer(conn, body).await,
                        Some(tls) => {
                            if let Ok(conn) = tls.accept(conn).await {
                                answer(conn, body).await;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    async fn answer(conn: impl AsyncRead + AsyncWrite, body: &'static [u8]) {
        let (read, mut write) = tokio::io::split(conn);
        let mut lines = tokio::io::BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if !line.is_empty() {
                continue;
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            if write.write_all(head.as_bytes()).await.is_err()
                || write.write_all(body).await.is_err()
                || write.flush().await.is_err()
            {
                return;
            }
        }
    }

    /// A TLS server's settings under a certificate for 127.0.0.1, and that
    /// certificate (to trust it).
    fn tls_server() -> (TlsAcceptor, CertificateDer<'static>) {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = made.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key.into())
            .unwrap();
        (TlsAcceptor::from(Arc::new(config)), cert)
    }

    async fn read_all(mut body: Body) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_gives_its_connection_back() {
        let body: &'static [u8] = &[7u8; 100_000];
        let (addr, accepted) = server(body, None).await;
        let connector = Connector::new(trust(&[]), Duration::from_secs(2));
        let fetcher = Fetcher::new(connector, Duration::from_secs(2), 256 * 1024);
        let uri: Uri = format!("http://{addr}/bucket/key").parse().unwrap();
        for _ in 0..5 {
            let r = fetcher.get(&uri, std::iter::empty()).await.unwrap();
            assert_eq!(r.head.status, 200);
            assert_eq!(read_all(r.body).await, body);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection, reused");
        // A body dropped half-read leaves its connection unusable: closed,
        // and the next request opens another.
        let mut r = fetcher.get(&uri, std::iter::empty()).await.unwrap();
        let _ = r.body.next().await;
        drop(r);
        let r = fetcher.get(&uri, std::iter::empty()).await.unwrap();
        assert_eq!(read_all(r.body).await, body);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn tls_connections_are_pooled_and_their_certificates_checked() {
        // Large enough that the reads grow past the smallest before the
        // body ends: reads of every size cross TLS records.
        let body: &'static [u8] = (0..4_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()
            .leak();
        let (acceptor, cert) = tls_server();
        let (addr, accepted) = server(body, Some(acceptor)).await;
        let uri: Uri = format!("https://{addr}/bucket/key").parse().unwrap();
        let trusting = Connector::new(trust(&[cert]), Duration::from_secs(2));
        let fetcher = Fetcher::new(trusting, Duration::from_secs(2), 256 * 1024);
        for _ in 0..5 {
            let r = fetcher.get(&uri, std::iter::empty()).await.unwrap();
            assert_eq!(r.head.status, 200);
            assert_eq!(read_all(r.body).await, body);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one handshake, reused");
        // Without that certificate among its roots: refused, and known as
        // a certificate problem (not a store that is down).
        let strange = Connector::new(trust(&[]), Duration::from_secs(2));
        let stranger = Fetcher::new(strange, Duration::from_secs(2), 256 * 1024);
        let err = stranger.get(&uri, std::iter::empty()).await.err().unwrap();
        assert!(crate::storage::s3::conn::is_untrusted(&err), "{err}");
    }
}
