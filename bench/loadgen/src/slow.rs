//! Many slow listeners at once: N sockets, each sending one GET and then
//! reading about `rate_bytes` per second (a token bucket checked every
//! 100 ms), as players on poor links do. Raw TCP with a small receive
//! buffer, so the pressure reaches the server instead of piling up in the
//! kernel of this side. With `--metrics-url`, the gateway's `/metrics` is
//! read every half second while the clients hold on, for the memory its
//! splice pipes hold (kernel memory, which its RSS does not count).

use std::time::{Duration, Instant};

use anyhow::bail;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::{sleep, timeout_at};

use crate::conn::{Conn, Spec};
use crate::util::{Target, parse_headers, round3};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub url: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 500)]
    pub clients: usize,
    /// Bytes per second each client reads.
    #[arg(long, default_value_t = 16_384)]
    pub rate_bytes: u64,
    /// Seconds all clients stay connected after the last one connected.
    #[arg(long, default_value_t = 15.0)]
    pub duration: f64,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 1_000)]
    pub ramp_per_s: u64,
    /// SO_RCVBUF of each client socket (bytes).
    #[arg(long, default_value_t = 32_768)]
    pub rcvbuf: u32,
    /// The gateway's `/metrics`, to read its splice pipes' gauges from.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// `Name: value` sent with `--metrics-url` (the admin token), repeatable.
    #[arg(long)]
    pub metrics_header: Vec<String>,
}

/// The largest values seen of the gateway's `playback_splice_pipes` and
/// `playback_splice_pipe_bytes` gauges, sampled until `until`; `None` if
/// the gateway never reported them (a build from before them).
async fn pipes_held(spec: Spec, until: Instant) -> anyhow::Result<Option<(f64, f64)>> {
    let mut conn = Conn::new(&spec.target.addr);
    let mut most: Option<(f64, f64)> = None;
    while Instant::now() < until {
        let res = conn.send(&spec).await?;
        if !res.status().is_success() {
            bail!("{}: {}", spec.target.path, res.status());
        }
        let text = res.into_body().collect().await?.to_bytes();
        let text = String::from_utf8_lossy(&text);
        let gauge = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if let Some((pipes, bytes)) =
            gauge("playback_splice_pipes").zip(gauge("playback_splice_pipe_bytes"))
        {
            let (p, b) = most.unwrap_or_default();
            most = Some((p.max(pipes), b.max(bytes)));
        }
        sleep(Duration::from_millis(500)).await;
    }
    Ok(most)
}

#[derive(Debug, Default)]
struct Client {
    connected: bool,
    status: Option<u16>,
    bytes: u64,
    /// The server ended the body (or the connection) before the end.
    early_eof: bool,
    error: Option<String>,
}

async fn client(target: &Target, rate: u64, rcvbuf: u32, deadline: Instant) -> Client {
    let mut c = Client::default();
    let result: anyhow::Result<()> = async {
        let addr = tokio::net::lookup_host(&target.addr)
            .await?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{} does not resolve", target.addr))?;
        let sock = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        sock.set_recv_buffer_size(rcvbuf)?;
        let mut s = timeout_at(deadline.into(), sock.connect(addr)).await??;
        c.connected = true;
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: loadgen-slow\r\nConnection: close\r\n\r\n",
            target.path, target.authority
        );
        s.write_all(req.as_bytes()).await?;
        let t0 = Instant::now();
        let mut buf = vec![0u8; 4096];
        let mut head = Vec::new();
        loop {
            // Token bucket: at most `rate` bytes per second since t0, with a
            // 100 ms burst.
            let allowed = (rate as f64 * (t0.elapsed().as_secs_f64() + 0.1)) as u64;
            let quota = allowed.saturating_sub(c.bytes).min(buf.len() as u64) as usize;
            if quota == 0 {
                if Instant::now() >= deadline {
                    return Ok(());
                }
                sleep(Duration::from_millis(100)).await;
                continue;
            }
            let n = match timeout_at(deadline.into(), s.read(&mut buf[..quota])).await {
                Err(_) => return Ok(()),
                Ok(r) => r?,
            };
            if n == 0 {
                c.early_eof = true;
                c.error = Some(format!(
                    "the server ended the stream after {} bytes (response head included)",
                    c.bytes
                ));
                return Ok(());
            }
            c.bytes += n as u64;
            if c.status.is_none() && head.len() < 64 {
                head.extend_from_slice(&buf[..n.min(64)]);
                if let Some(code) = std::str::from_utf8(&head)
                    .ok()
                    .and_then(|h| h.strip_prefix("HTTP/1.1 "))
                    .and_then(|h| h.get(..3))
                    .and_then(|c| c.parse().ok())
                {
                    c.status = Some(code);
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        c.error = Some(format!("{e:#}"));
    }
    c
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    if args.clients == 0 || args.rate_bytes == 0 {
        bail!("--clients and --rate-bytes must be positive");
    }
    let target = Target::parse(&args.url)?;
    let started = Instant::now();
    let ramp = Duration::from_secs_f64(args.clients as f64 / args.ramp_per_s.max(1) as f64);
    let deadline = started + ramp + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let at = started + Duration::from_secs_f64(i as f64 / args.ramp_per_s.max(1) as f64);
        tokio::time::sleep_until(at.into()).await;
        let target = target.clone();
        let (rate, rcvbuf) = (args.rate_bytes, args.rcvbuf);
        tasks.push(tokio::spawn(async move {
            client(&target, rate, rcvbuf, deadline).await
        }));
    }
    // Sampled while every client holds on: from the last connection to
    // the deadline.
    let sampling = match &args.metrics_url {
        Some(url) => {
            let spec = Spec::new(
                http::Method::GET,
                Target::parse(url)?,
                &parse_headers(&args.metrics_header)?,
            )?;
            Some(tokio::spawn(pipes_held(
                spec,
                deadline - Duration::from_millis(500),
            )))
        }
        None => None,
    };
    let mut connected = 0;
    let mut ok = 0;
    let mut early_eof = 0;
    let mut errors = 0;
    let mut samples = Vec::new();
    let mut bytes = 0u64;
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    for t in tasks {
        let c = t.await?;
        connected += u64::from(c.connected);
        bytes += c.bytes;
        if let Some(s) = c.status {
            *statuses.entry(s).or_default() += 1;
            ok += u64::from(s == 200);
        }
        early_eof += u64::from(c.early_eof);
        if let Some(e) = c.error {
            errors += u64::from(!c.early_eof);
            if samples.len() < 3 {
                samples.push(e);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let hold = args.duration + ramp.as_secs_f64() / 2.0;
    let pipes = match sampling {
        Some(t) => t.await??,
        None => None,
    };
    Ok(json!({
        "splice_pipes_max": pipes.map(|(p, _)| p),
        "splice_pipe_mib_max": pipes.map(|(_, b)| round3(b / 1_048_576.0)),
        "clients": args.clients,
        "rate_bytes_per_client": args.rate_bytes,
        "ramp_s": round3(ramp.as_secs_f64()),
        "hold_s": args.duration,
        "elapsed_s": round3(elapsed),
        "connected": connected,
        "status_200": ok,
        "statuses": statuses,
        "early_eof": early_eof,
        "errors": errors + early_eof,
        "error_samples": samples,
        "bytes": bytes,
        "mean_bytes_per_s_per_client": round3(bytes as f64 / args.clients as f64 / hold),
    }))
}
