//! `loadgen`: the load generator of playback-gateway's benchmark.
//!
//! Every load sub-command prints one JSON object on stdout: its figures,
//! and, with `--watch NAME=PID`, the memory and CPU of the watched
//! processes while it ran. `bench/run` drives it; see `bench/README.md`.

mod bulk;
mod closed;
mod conn;
mod report;
mod s3;
mod seek;
mod slow;
mod util;
mod watch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use http::Method;
use serde_json::{Value, json};

use conn::{Conn, Spec, content_length, drain};
use util::{Target, parse_headers, read_url_file, round3, secs};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Load generator of playback-gateway's benchmark"
)]
struct Cli {
    #[command(flatten)]
    watch: watch::WatchArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Creates the bucket and uploads objects of pseudo-random bytes.
    Seed(s3::SeedArgs),
    /// Prints presigned URLs, one per line.
    Presign(s3::PresignArgs),
    /// Waits until an address accepts connections (or a URL answers a status).
    Wait(WaitArgs),
    /// One request, checked: exits non-zero when the answer is not the expected one.
    Probe(ProbeArgs),
    /// Whole files over N keep-alive connections, as fast as they come: MB/s.
    Throughput(ThroughputArgs),
    /// Small answers over N keep-alive connections: requests/s and latency.
    Rps(RpsArgs),
    /// Ranged GETs at random offsets at a fixed rate: time to first byte.
    Seek(seek::Args),
    /// N concurrent clients each reading about R bytes/s.
    Slow(slow::Args),
    /// One body read at full speed (a huge object).
    Stream(StreamArgs),
    /// Only watches the processes for a while (idle memory).
    Idle(IdleArgs),
    /// Waits until the machine is quiet: CPU use over one second below a threshold.
    Quiet(QuietArgs),
    /// Turns a run's raw JSON files into the results JSON and Markdown.
    Report(report::Args),
    /// Uploads one small object per key of a file, concurrently (presigned PUTs).
    PutMany(bulk::PutManyArgs),
    /// Lists a bucket whole (`ListObjectsV2` pages) and counts: the listing alone.
    List(bulk::ListArgs),
    /// Runs a command (after `--`): wall time, exit status, CPU, peak RSS.
    Measure(bulk::MeasureArgs),
}

#[derive(Debug, clap::Args)]
struct WaitArgs {
    /// `host:port` that must accept a TCP connection.
    #[arg(long, conflicts_with = "url")]
    addr: Option<String>,
    /// URL that must answer `--status`.
    #[arg(long)]
    url: Option<String>,
    #[arg(long, default_value_t = 200)]
    status: u16,
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

#[derive(Debug, clap::Args)]
struct ProbeArgs {
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// `Name: value`, repeatable.
    #[arg(long)]
    header: Vec<String>,
    #[arg(long)]
    expect_status: u16,
    /// Body length the answer must have.
    #[arg(long)]
    expect_len: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct ThroughputArgs {
    /// File of URLs, one per line, fetched in turn.
    #[arg(long)]
    url_file: PathBuf,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before the measurement.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Upper bound of requests, warm-up included.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
}

#[derive(Debug, clap::Args)]
struct RpsArgs {
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    #[arg(long, default_value = "GET")]
    method: String,
    /// `Name: value`, repeatable.
    #[arg(long)]
    header: Vec<String>,
    /// Status every answer must have (others count as errors).
    #[arg(long)]
    expect_status: Option<u16>,
}

#[derive(Debug, clap::Args)]
struct StreamArgs {
    #[arg(long)]
    url: String,
    /// Longest the read may take.
    #[arg(long, default_value_t = 180.0)]
    max_seconds: f64,
}

#[derive(Debug, clap::Args)]
struct IdleArgs {
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
}

#[derive(Debug, clap::Args)]
struct QuietArgs {
    /// Busy CPU, in % of one core, under which the machine counts as quiet.
    #[arg(long, default_value_t = 20.0)]
    below: f64,
    /// Longest wait, in seconds; then it returns anyway.
    #[arg(long, default_value_t = 60.0)]
    max_wait: f64,
}

/// Prints the seconds waited and the last busy figure.
async fn quiet(args: QuietArgs) -> anyhow::Result<Value> {
    let started = Instant::now();
    let deadline = started + secs(args.max_wait)?;
    loop {
        let t0 = watch::machine_busy_ticks();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let busy =
            100.0 * (watch::machine_busy_ticks().saturating_sub(t0)) as f64 / watch::clock_ticks();
        let quiet = busy < args.below;
        if quiet || Instant::now() >= deadline {
            return Ok(json!({
                "quiet": quiet,
                "busy_pct": round3(busy),
                "waited_s": round3(started.elapsed().as_secs_f64() - 1.0),
            }));
        }
    }
}

fn method(m: &str) -> anyhow::Result<Method> {
    match m.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::GET),
        "HEAD" => Ok(Method::HEAD),
        other => bail!("method {other}: GET or HEAD"),
    }
}

/// The command line as run, without query strings (presigned URLs and
/// playback links carry signatures), credentials or local paths: none has a
/// place in a results file.
fn argv() -> Vec<String> {
    std::env::args()
        .skip(1)
        .map(|a| {
            if a.to_ascii_lowercase().starts_with("authorization:") {
                return "Authorization: …".to_owned();
            }
            if let Some((before, _)) = a.split_once('?') {
                return format!("{before}?…");
            }
            // A local file (a URL list): its name, not where this run kept it.
            if !a.contains("://") && a.contains('/') {
                return a.rsplit('/').next().unwrap_or_default().to_owned();
            }
            a
        })
        .collect()
}

/// Runs a load under the watcher and a hard time limit.
async fn watched(
    w: &watch::WatchArgs,
    limit: Duration,
    load: impl std::future::Future<Output = anyhow::Result<Value>>,
) -> anyhow::Result<Value> {
    let watcher = watch::Watcher::start(w)?;
    let res = tokio::time::timeout(limit, load)
        .await
        .map_err(|_| anyhow::anyhow!("the load did not end within {limit:?}"))??;
    let mut res = res;
    res["watch"] = watcher.finish();
    res["argv"] = json!(argv());
    Ok(res)
}

/// A storage job under the watcher, bounded by an hour.
async fn s3_limit(
    w: &watch::WatchArgs,
    load: impl std::future::Future<Output = anyhow::Result<Value>>,
) -> anyhow::Result<Value> {
    watched(w, Duration::from_secs(3600), load).await
}

async fn wait(args: WaitArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + secs(args.timeout)?;
    loop {
        let ready = match (&args.addr, &args.url) {
            (Some(addr), _) => tokio::net::TcpStream::connect(addr).await.is_ok(),
            (None, Some(url)) => {
                let target = Target::parse(url)?;
                let mut c = Conn::new(&target.addr);
                match c.send(&Spec::get(target)).await {
                    Ok(mut res) => {
                        let _ = drain(res.body_mut(), |_| {}).await;
                        res.status().as_u16() == args.status
                    }
                    Err(_) => false,
                }
            }
            (None, None) => bail!("wait needs --addr or --url"),
        };
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not ready after {} s", args.timeout);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn probe(args: ProbeArgs) -> anyhow::Result<Value> {
    let target = Target::parse(&args.url)?;
    let spec = Spec::new(
        method(&args.method)?,
        target.clone(),
        &parse_headers(&args.header)?,
    )?;
    let mut c = Conn::new(&target.addr);
    let mut res = tokio::time::timeout(Duration::from_secs(30), c.send(&spec)).await??;
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let len = content_length(&res);
    let n = tokio::time::timeout(Duration::from_secs(60), drain(res.body_mut(), |_| {})).await??;
    let out =
        json!({"status": status, "content_type": ctype, "content_length": len, "body_bytes": n});
    if status != args.expect_status {
        bail!(
            "{}: expected {}, got {out}",
            argv().join(" "),
            args.expect_status
        );
    }
    if let Some(want) = args.expect_len
        && want != n
    {
        bail!("{}: expected {want} bytes, got {out}", argv().join(" "));
    }
    Ok(out)
}

async fn stream(args: StreamArgs) -> anyhow::Result<Value> {
    let target = Target::parse(&args.url)?;
    let mut c = Conn::new(&target.addr);
    let started = Instant::now();
    let mut first = None;
    let mut res = c.send(&Spec::get(target)).await?;
    let status = res.status().as_u16();
    let len = content_length(&res);
    let n = drain(res.body_mut(), |_| {
        first.get_or_insert_with(Instant::now);
    })
    .await?;
    let secs = started.elapsed().as_secs_f64();
    if status != 200 || len.is_some_and(|l| l != n) {
        bail!("stream: status {status}, {n} of {len:?} bytes");
    }
    Ok(json!({
        "status": status,
        "bytes": n,
        "seconds": round3(secs),
        "ttfb_ms": first.map(|f| round3((f - started).as_secs_f64() * 1000.0)),
        "mb_per_s": round3(n as f64 / secs / 1e6),
    }))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let w = &cli.watch;
    let margin = Duration::from_secs(60);
    let out = match cli.cmd {
        Cmd::Seed(a) => s3::seed(a).await?,
        Cmd::PutMany(a) => s3_limit(w, bulk::put_many(a)).await?,
        Cmd::List(a) => s3_limit(w, bulk::list(a)).await?,
        Cmd::Measure(a) => {
            let limit = secs(a.timeout)? + margin;
            watched(w, limit, async move {
                tokio::task::spawn_blocking(move || bulk::measure(&a)).await?
            })
            .await?
        }
        Cmd::Presign(a) => {
            print!("{}", s3::presign(a).await?);
            return Ok(());
        }
        Cmd::Wait(a) => return wait(a).await,
        Cmd::Probe(a) => probe(a).await?,
        Cmd::Quiet(a) => {
            println!("{}", quiet(a).await?);
            return Ok(());
        }
        Cmd::Report(a) => {
            print!("{}", report::run(&a)?);
            return Ok(());
        }
        Cmd::Throughput(a) => {
            let specs = read_url_file(&a.url_file)?
                .into_iter()
                .map(Spec::get)
                .collect();
            let limit = secs(a.warmup)? + secs(a.duration)? + margin;
            let plan = closed::Plan {
                specs,
                connections: a.connections,
                warmup: secs(a.warmup)?,
                duration: secs(a.duration)?,
                max_requests: a.max_requests,
                expect_status: Some(200),
            };
            watched(w, limit, closed::run(plan)).await?
        }
        Cmd::Rps(a) => {
            let spec = Spec::new(
                method(&a.method)?,
                Target::parse(&a.url)?,
                &parse_headers(&a.header)?,
            )?;
            let limit = secs(a.warmup)? + secs(a.duration)? + margin;
            let plan = closed::Plan {
                specs: vec![spec],
                connections: a.connections,
                warmup: secs(a.warmup)?,
                duration: secs(a.duration)?,
                max_requests: a.max_requests,
                expect_status: a.expect_status,
            };
            watched(w, limit, closed::run(plan)).await?
        }
        Cmd::Seek(a) => {
            let limit = secs(a.warmup)? + secs(a.duration)? + margin;
            watched(w, limit, seek::run(a)).await?
        }
        Cmd::Slow(a) => {
            let ramp = a.clients as f64 / a.ramp_per_s.max(1) as f64;
            let limit = secs(a.duration)? + secs(ramp)? + margin;
            watched(w, limit, slow::run(a)).await?
        }
        Cmd::Stream(a) => {
            let limit = secs(a.max_seconds)?;
            watched(w, limit, stream(a)).await?
        }
        Cmd::Idle(a) => {
            let d = secs(a.duration)?;
            watched(w, d + margin, async move {
                tokio::time::sleep(d).await;
                Ok(json!({"duration_s": d.as_secs_f64()}))
            })
            .await?
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&out).context("printing")?
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    util::raise_nofile();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
