//! The loss-audit benchmark's tools (`bench/audit/run`): many small objects
//! uploaded concurrently, the bucket listed alone (the floor of any audit
//! by listing), and a command run under measurement (wall time, peak RSS
//! from the kernel, RSS over time).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::s3::{Store, client, ensure_bucket};
use crate::util::{Target, bytes_at, round3, seed_of};

#[derive(Debug, clap::Args)]
pub struct PutManyArgs {
    #[command(flatten)]
    pub store: Store,
    /// File of object keys, one per line.
    #[arg(long)]
    pub keys: PathBuf,
    /// Uploads in flight, each on its own keep-alive connection.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Bytes of each object (pseudo-random, a function of its key).
    #[arg(long, default_value_t = 64)]
    pub body_bytes: usize,
    #[arg(long, default_value = "audio/mpeg")]
    pub content_type: String,
    /// Seconds between progress lines on standard error (0: none).
    #[arg(long, default_value_t = 15.0)]
    pub progress_s: f64,
}

/// Tries per object before the upload fails.
const ATTEMPTS: u32 = 5;

/// Uploads one small object per key: presigned PUTs (SigV4 in the query)
/// over `concurrency` keep-alive connections, each worker taking the next
/// key. Creates the bucket first.
pub async fn put_many(args: PutManyArgs) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(&args.keys)
        .with_context(|| format!("reading {}", args.keys.display()))?;
    let keys: Arc<Vec<String>> = Arc::new(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    );
    drop(text);
    if keys.is_empty() {
        bail!("{}: no keys", args.keys.display());
    }
    let s3 = client(&args.store);
    ensure_bucket(&s3, &args.store.bucket).await?;
    let addr = Target::parse(&args.store.endpoint)?.addr;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let progress = (args.progress_s > 0.0).then(|| {
        let (done, total) = (done.clone(), keys.len());
        let every = Duration::from_secs_f64(args.progress_s);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let n = done.load(Ordering::Relaxed);
                let s = started.elapsed().as_secs_f64();
                eprintln!(
                    "put-many: {n}/{total} objects in {s:.0} s ({:.0}/s)",
                    n as f64 / s
                );
            }
        })
    });

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let w = Worker {
            s3: s3.clone(),
            bucket: args.store.bucket.clone(),
            content_type: args.content_type.clone(),
            addr: addr.clone(),
            sender: None,
        };
        let (keys, next, done, retries) =
            (keys.clone(), next.clone(), done.clone(), retries.clone());
        let body_bytes = args.body_bytes;
        workers.spawn(async move {
            let mut w = w;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(key) = keys.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let body = Bytes::from(bytes_at(seed_of(key), 0, body_bytes));
                let mut attempt = 1;
                loop {
                    match w.put(key, body.clone()).await {
                        Ok(()) => break,
                        Err(e) if attempt >= ATTEMPTS => {
                            return Err(e.context(format!("uploading {key}")));
                        }
                        Err(_) => {
                            w.sender = None;
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt)))
                                .await;
                            attempt += 1;
                        }
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut failed = None;
    while let Some(r) = workers.join_next().await {
        if let Err(e) = r.map_err(anyhow::Error::from).and_then(|r| r) {
            // The first failure stops everything.
            next.store(usize::MAX / 2, Ordering::Relaxed);
            failed.get_or_insert(e);
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    Ok(json!({
        "objects": n,
        "bytes": n * args.body_bytes as u64,
        "body_bytes": args.body_bytes,
        "concurrency": args.concurrency,
        "retries": retries.load(Ordering::Relaxed),
        "seconds": round3(secs),
        "objects_per_s": round3(n as f64 / secs),
    }))
}

struct Worker {
    s3: Client,
    bucket: String,
    content_type: String,
    addr: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Worker {
    async fn put(&mut self, key: &str, body: Bytes) -> anyhow::Result<()> {
        // Signed just before it is sent: the URL is good for a minute.
        let signed = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&self.content_type)
            .presigned(PresigningConfig::expires_in(Duration::from_secs(60))?)
            .await?;
        let target = Target::parse(signed.uri())?;
        let mut req = Request::builder()
            .method(Method::PUT)
            .uri(&target.path)
            .header(http::header::HOST, &target.authority)
            .header(http::header::CONTENT_LENGTH, body.len());
        for (name, value) in signed.headers() {
            if !name.eq_ignore_ascii_case("host") {
                req = req.header(name, value);
            }
        }
        let req = req.body(Full::new(body))?;
        if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected");
        sender.ready().await?;
        let res = sender.send_request(req).await?;
        let status = res.status();
        let answer = res.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
            bail!("PUT answered {status}: {text}");
        }
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub store: Store,
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Keys per `ListObjectsV2` page.
    #[arg(long, default_value_t = 1000)]
    pub max_keys: i32,
}

/// Lists the bucket whole, page after page (`ListObjectsV2`, one request
/// at a time as an audit does), and counts; checks the keys come in order.
pub async fn list(args: ListArgs) -> anyhow::Result<Value> {
    let s3 = client(&args.store);
    let started = Instant::now();
    let mut pages = s3
        .list_objects_v2()
        .bucket(&args.store.bucket)
        .prefix(&args.prefix)
        .max_keys(args.max_keys)
        .into_paginator()
        .send();
    let (mut objects, mut bytes, mut n_pages, mut out_of_order) = (0u64, 0u64, 0u64, 0u64);
    let mut last = String::new();
    let mut first_page_ms = None;
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        first_page_ms.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
        n_pages += 1;
        for o in page.contents() {
            let key = o.key().unwrap_or_default();
            if objects > 0 && key <= last.as_str() {
                out_of_order += 1;
            }
            key.clone_into(&mut last);
            objects += 1;
            bytes += o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "objects": objects,
        "bytes": bytes,
        "pages": n_pages,
        "max_keys": args.max_keys,
        "out_of_order": out_of_order,
        "first_page_ms": first_page_ms.map(round3),
        "seconds": round3(secs),
        "objects_per_s": round3(objects as f64 / secs),
    }))
}

#[derive(Debug, clap::Args)]
pub struct MeasureArgs {
    /// Where the command's standard output goes.
    #[arg(long)]
    pub stdout: PathBuf,
    /// Where its standard error goes (default: this one's).
    #[arg(long)]
    pub stderr: Option<PathBuf>,
    /// Period of the RSS samples, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub rss_every_ms: u64,
    /// Longest the command may run, in seconds; then it is killed.
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Runs a command to its end: wall time, exit status, CPU time and peak
/// RSS as the kernel counts them (`wait4`'s `ru_maxrss`), and its RSS
/// sampled meanwhile, summarised per tenth of the run (does it grow?).
pub fn measure(args: &MeasureArgs) -> anyhow::Result<Value> {
    let out = std::fs::File::create(&args.stdout)
        .with_context(|| format!("creating {}", args.stdout.display()))?;
    let mut cmd = std::process::Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .stdin(std::process::Stdio::null())
        .stdout(out);
    if let Some(e) = &args.stderr {
        cmd.stderr(std::fs::File::create(e).with_context(|| format!("creating {}", e.display()))?);
    }
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", args.command[0]))?;
    let pid = child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, timed_out) = (stop.clone(), timed_out.clone());
        let every = Duration::from_millis(args.rss_every_ms.max(5));
        let limit = Duration::from_secs_f64(args.timeout.max(1.0));
        std::thread::spawn(move || {
            let mut samples: Vec<(f64, u64)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = started.elapsed();
                let kib = crate::watch::rss_kib(pid);
                if kib > 0 {
                    samples.push((t.as_secs_f64(), kib));
                }
                if t > limit && !timed_out.swap(true, Ordering::Relaxed) {
                    // SAFETY: a signal to our own child, not yet reaped.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
                std::thread::sleep(every);
            }
            samples
        })
    };
    let mut status = 0;
    // SAFETY: rusage is plain data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with pointers to stack values.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut ru) };
    let wall = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap_or_default();
    drop(child);
    if r < 0 {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    if timed_out.load(Ordering::Relaxed) {
        bail!("{} did not end within {} s", args.command[0], args.timeout);
    }
    let exit_code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let (user, sys) = (tv(ru.ru_utime), tv(ru.ru_stime));
    let mib = |kib: u64| round3(kib as f64 / 1024.0);
    // The highest sample in each tenth of the run.
    let mut tenths = [0u64; 10];
    for &(t, kib) in &samples {
        let i = ((t / wall.max(1e-9)) * 10.0).floor().clamp(0.0, 9.0) as usize;
        tenths[i] = tenths[i].max(kib);
    }
    Ok(json!({
        "exit_code": exit_code,
        "signal": signal,
        "wall_s": round3(wall),
        "user_s": round3(user),
        "sys_s": round3(sys),
        "cpu_pct": round3(100.0 * (user + sys) / wall.max(1e-9)),
        "peak_rss_mib": round3(ru.ru_maxrss as f64 / 1024.0),
        "rss_samples": samples.len(),
        "rss_max_sampled_mib": mib(samples.iter().map(|s| s.1).max().unwrap_or(0)),
        "rss_by_tenth_mib": tenths.iter().map(|&k| mib(k)).collect::<Vec<_>>(),
    }))
}
