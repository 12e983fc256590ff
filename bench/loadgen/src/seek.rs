//! Open-loop ranged GETs, as a player seeking: `Range: bytes=a-b` at random
//! offsets, sent at a fixed rate whatever the answers do.
//!
//! Coordinated omission: request *i* is due at `start + i / rate`, and its
//! time to first byte is measured from that due time, not from when it was
//! actually sent; a server that stalls is charged for every request that
//! should have gone out meanwhile. A plain thread (hrtimer sleeps, ~0.1 ms
//! late at most) schedules the requests; tokio's 1 ms timer would add up
//! to a millisecond to every figure. Requests go over a keep-alive pool
//! that opens more connections as needed, as browsers do.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Request, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::util::{Rng, histogram, percentiles_ms, record, round3};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Object URL (repeat for several objects of the same size).
    #[arg(long, required = true)]
    pub url: Vec<String>,
    /// Size of each object in bytes.
    #[arg(long)]
    pub size: u64,
    /// Bytes per range.
    #[arg(long, default_value_t = 65_536)]
    pub range_len: u64,
    /// Requests per second.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds sent first and not counted.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Requests in flight at most; a request due beyond it is dropped and counted.
    #[arg(long, default_value_t = 512)]
    pub max_inflight: usize,
    /// Seed of the offsets (the same for every path of one run).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Default)]
struct Shared {
    ttfb: Option<Histogram<u64>>,
    service_ttfb: Option<Histogram<u64>>,
    total: Option<Histogram<u64>>,
    ok: u64,
    errors: u64,
    error_samples: Vec<String>,
}

impl Shared {
    fn error(&mut self, why: String) {
        self.errors += 1;
        if self.error_samples.len() < 3 {
            self.error_samples.push(why);
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    if args.range_len == 0 || args.range_len > args.size {
        bail!("--range-len must be in 1..=--size");
    }
    if !(args.rate > 0.0 && args.rate <= 50_000.0) {
        bail!("--rate must be in (0, 50000]");
    }
    let warmup_n = (args.warmup * args.rate).round() as u64;
    let total_n = warmup_n + (args.duration * args.rate).round() as u64;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let urls: Vec<http::Uri> = args
        .url
        .iter()
        .map(|u| u.parse())
        .collect::<Result<_, _>>()?;
    let shared = Arc::new(Mutex::new(Shared {
        ttfb: Some(histogram()),
        service_ttfb: Some(histogram()),
        total: Some(histogram()),
        ..Default::default()
    }));
    let inflight = Arc::new(Semaphore::new(args.max_inflight));
    let handle = tokio::runtime::Handle::current();
    let (size, len, rate, seed) = (args.size, args.range_len, args.rate, args.seed);
    let (shared2, inflight2) = (shared.clone(), inflight.clone());
    let started = Instant::now();
    let dispatcher = std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut dropped = 0u64;
        let mut max_late = Duration::ZERO;
        for i in 0..total_n {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            max_late = max_late.max(Instant::now().saturating_duration_since(due));
            let url = urls[(i % urls.len() as u64) as usize].clone();
            let a = rng.below(size - len + 1);
            let counted = i >= warmup_n;
            let Ok(permit) = inflight2.clone().try_acquire_owned() else {
                if counted {
                    dropped += 1;
                }
                continue;
            };
            let (client, shared) = (client.clone(), shared2.clone());
            handle.spawn(async move {
                let _permit = permit;
                let sent = Instant::now();
                let req = Request::get(url)
                    .header(header::RANGE, format!("bytes={a}-{}", a + len - 1))
                    .body(Empty::new())
                    .expect("valid request");
                let result = async {
                    let res = client.request(req).await?;
                    let status = res.status().as_u16();
                    let mut body = res.into_body();
                    let mut first = None;
                    let mut n = 0u64;
                    while let Some(frame) = body.frame().await {
                        if let Some(d) = frame?.data_ref() {
                            first.get_or_insert_with(Instant::now);
                            n += d.len() as u64;
                        }
                    }
                    anyhow::Ok((status, first, n, Instant::now()))
                }
                .await;
                if !counted {
                    return;
                }
                let mut s = shared.lock().expect("not poisoned");
                match result {
                    Ok((206, Some(first), n, end)) if n == len => {
                        s.ok += 1;
                        record(s.ttfb.as_mut().expect("h"), first - due);
                        record(s.service_ttfb.as_mut().expect("h"), first - sent);
                        record(s.total.as_mut().expect("h"), end - due);
                    }
                    Ok((status, _, n, _)) => s.error(format!("status {status}, {n} bytes")),
                    Err(e) => s.error(format!("{e:#}")),
                }
            });
        }
        (dropped, max_late)
    });
    let (dropped, max_late) = tokio::task::spawn_blocking(move || dispatcher.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the dispatcher panicked"))?;
    // Wait for the stragglers, bounded.
    let all = u32::try_from(args.max_inflight).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(Duration::from_secs(30), inflight.acquire_many(all))
        .await
        .is_ok();
    let elapsed = started.elapsed().as_secs_f64();
    let s = shared.lock().expect("not poisoned");
    Ok(json!({
        "rate": args.rate,
        "range_len": args.range_len,
        "object_size": args.size,
        "objects": args.url.len(),
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "elapsed_s": round3(elapsed),
        "requests_scheduled": total_n - warmup_n,
        "requests_ok": s.ok,
        "dropped_over_max_inflight": dropped,
        "all_answered": drained,
        "scheduler_max_late_ms": round3(max_late.as_secs_f64() * 1000.0),
        "ttfb_ms": percentiles_ms(s.ttfb.as_ref().expect("h")),
        "service_ttfb_ms": percentiles_ms(s.service_ttfb.as_ref().expect("h")),
        "total_ms": percentiles_ms(s.total.as_ref().expect("h")),
        "errors": s.errors + dropped,
        "error_samples": s.error_samples,
    }))
}
