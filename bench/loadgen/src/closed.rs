//! Closed-loop load: N connections, each sending its next request as soon
//! as the previous answer has been read in full. `throughput` (bytes per
//! second of whole files) and `rps` (small answers per second) both run on
//! it; they differ in what they report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;
use http::Method;
use serde_json::{Value, json};
use tokio::time::timeout_at;

use crate::conn::{Conn, Spec, content_length, drain};
use crate::util::{histogram, percentiles_ms, record, round3};

pub struct Plan {
    /// Requests, taken in turn; all to one address.
    pub specs: Vec<Spec>,
    pub connections: usize,
    /// Load that is run but not counted: connections open, caches fill.
    pub warmup: Duration,
    /// The measured window after the warm-up.
    pub duration: Duration,
    /// Upper bound of requests started, warm-up included.
    pub max_requests: u64,
    /// Status every answer must have; others count as errors.
    pub expect_status: Option<u16>,
}

#[derive(Default)]
struct WorkerStats {
    bytes_in_window: u64,
    completed: u64,
    errors: u64,
    error_samples: Vec<String>,
    statuses: BTreeMap<u16, u64>,
    latency: Option<Histogram<u64>>,
    last_end: Option<Instant>,
    connects: u64,
}

impl WorkerStats {
    fn error(&mut self, why: String) {
        self.errors += 1;
        if self.error_samples.len() < 3 {
            self.error_samples.push(why);
        }
    }
}

pub async fn run(plan: Plan) -> anyhow::Result<Value> {
    let Some(first) = plan.specs.first() else {
        bail!("no requests to send");
    };
    if plan
        .specs
        .iter()
        .any(|s| s.target.addr != first.target.addr)
    {
        bail!("all URLs of one run must go to one address");
    }
    let addr = first.target.addr.clone();
    let specs = Arc::new(plan.specs);
    let started = Instant::now();
    let measure_from = started + plan.warmup;
    let deadline = measure_from + plan.duration;
    let budget = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..plan.connections.max(1) {
        let (specs, budget, addr) = (specs.clone(), budget.clone(), addr.clone());
        let (conns, max, expect) = (
            plan.connections.max(1),
            plan.max_requests,
            plan.expect_status,
        );
        workers.push(tokio::spawn(async move {
            let mut st = WorkerStats {
                latency: Some(histogram()),
                ..Default::default()
            };
            let mut conn = Conn::new(&addr);
            let mut k = w;
            while Instant::now() < deadline && budget.fetch_add(1, Ordering::Relaxed) < max {
                let spec = &specs[k % specs.len()];
                k += conns;
                let t0 = Instant::now();
                let mut in_window = 0u64;
                let res = timeout_at(deadline.into(), async {
                    let mut res = conn.send(spec).await?;
                    let len = content_length(&res);
                    let n = drain(res.body_mut(), |n| {
                        if Instant::now() >= measure_from {
                            in_window += n as u64;
                        }
                    })
                    .await?;
                    anyhow::Ok((res.status().as_u16(), len, n))
                })
                .await;
                st.bytes_in_window += in_window;
                let end = Instant::now();
                match res {
                    // The window closed mid-request: its bytes so far count.
                    Err(_) => {
                        conn.reset();
                        break;
                    }
                    Ok(Err(e)) => {
                        conn.reset();
                        st.error(format!("{e:#}"));
                    }
                    Ok(Ok((status, len, n))) => {
                        if end >= measure_from {
                            st.completed += 1;
                            *st.statuses.entry(status).or_default() += 1;
                            record(st.latency.as_mut().expect("histogram"), end - t0);
                            st.last_end = Some(end);
                        }
                        if expect.is_some_and(|e| e != status) {
                            st.error(format!("status {status}"));
                        } else if spec.method != Method::HEAD && len.is_some_and(|l| l != n) {
                            st.error(format!("short body: {n} of {len:?} bytes"));
                        }
                    }
                }
            }
            st.connects = conn.connects;
            st
        }));
    }
    let mut total = WorkerStats::default();
    let mut latency = histogram();
    for w in workers {
        let st = w.await?;
        total.bytes_in_window += st.bytes_in_window;
        total.completed += st.completed;
        total.errors += st.errors;
        total.connects += st.connects;
        for e in st.error_samples {
            if total.error_samples.len() < 3 {
                total.error_samples.push(e);
            }
        }
        for (s, n) in st.statuses {
            *total.statuses.entry(s).or_default() += n;
        }
        if let Some(h) = &st.latency {
            latency.add(h).ok();
        }
        total.last_end = total.last_end.max(st.last_end);
    }
    // The window ends at the deadline, or earlier if the request budget ran out.
    let end = if budget.load(Ordering::Relaxed) >= plan.max_requests {
        total.last_end.unwrap_or(deadline).min(deadline)
    } else {
        deadline
    };
    let window_s = end
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(1e-9);
    Ok(json!({
        "connections": plan.connections,
        "urls": specs.len(),
        "warmup_s": plan.warmup.as_secs_f64(),
        "window_s": round3(window_s),
        "requests_completed": total.completed,
        "requests_per_s": round3(total.completed as f64 / window_s),
        "bytes": total.bytes_in_window,
        "mb_per_s": round3(total.bytes_in_window as f64 / window_s / 1e6),
        "latency_ms": percentiles_ms(&latency),
        "statuses": total.statuses,
        "errors": total.errors,
        "error_samples": total.error_samples,
        "connects": total.connects,
    }))
}
