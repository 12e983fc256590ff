//! One HTTP/1.1 keep-alive connection per worker, so that "N connections"
//! means exactly N sockets, reconnected only when the server closes one.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::util::Target;

/// What to send: method, target and extra headers.
#[derive(Debug, Clone)]
pub struct Spec {
    pub method: Method,
    pub target: Target,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Spec {
    pub fn new(
        method: Method,
        target: Target,
        headers: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let headers = headers
            .iter()
            .map(|(k, v)| Ok((k.parse()?, v.parse()?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            method,
            target,
            headers,
        })
    }

    pub fn get(target: Target) -> Self {
        Self {
            method: Method::GET,
            target,
            headers: Vec::new(),
        }
    }

    fn request(&self) -> anyhow::Result<Request<Empty<Bytes>>> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(&self.target.path)
            .header(http::header::HOST, &self.target.authority);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        Ok(b.body(Empty::new())?)
    }
}

/// A keep-alive connection to one address.
pub struct Conn {
    addr: String,
    sender: Option<SendRequest<Empty<Bytes>>>,
    /// How many times a socket was opened.
    pub connects: u64,
}

impl Conn {
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            sender: None,
            connects: 0,
        }
    }

    async fn connect(&mut self) -> anyhow::Result<()> {
        let stream = TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the server or we close the socket; errors show up
            // on the request side.
            let _ = conn.await;
        });
        self.connects += 1;
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request. A request that fails on a reused socket (the
    /// server closed it while idle) is retried once on a new one.
    pub async fn send(&mut self, spec: &Spec) -> anyhow::Result<Response<Incoming>> {
        debug_assert_eq!(spec.target.addr, self.addr);
        let mut last = None;
        for _ in 0..2 {
            let fresh = match &self.sender {
                Some(s) if !s.is_closed() => false,
                _ => {
                    self.connect().await?;
                    true
                }
            };
            let sender = self.sender.as_mut().expect("connected");
            let res = match sender.ready().await {
                Ok(()) => sender.send_request(spec.request()?).await,
                Err(e) => Err(e),
            };
            match res {
                Ok(res) => return Ok(res),
                Err(e) => {
                    self.sender = None;
                    if fresh {
                        return Err(e.into());
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.expect("an error").into())
    }

    /// Forgets the socket (after a body error: its state is unknown).
    pub fn reset(&mut self) {
        self.sender = None;
    }
}

/// Reads a body to its end, calling `on_data` with each chunk's length.
pub async fn drain(body: &mut Incoming, mut on_data: impl FnMut(usize)) -> anyhow::Result<u64> {
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(d) = frame?.data_ref() {
            n += d.len() as u64;
            on_data(d.len());
        }
    }
    Ok(n)
}

/// The `Content-Length` of a response, if any.
pub fn content_length<B>(res: &Response<B>) -> Option<u64> {
    res.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
