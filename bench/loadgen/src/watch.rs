//! Watches the servers while a load runs: resident memory (`VmRSS`, sampled
//! every 100 ms, summed over a process group such as nginx's master and
//! workers) and CPU time (from `/proc/PID/stat`), plus our own CPU time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::util::round3;

/// `--watch NAME=PID[,PID…]`, repeatable.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// A process (group) to watch: `gateway=1234` or `nginx=10,11,12`.
    #[arg(long = "watch", value_name = "NAME=PID[,PID…]", global = true)]
    pub watch: Vec<String>,
    /// Sampling period of RSS, in milliseconds.
    #[arg(long, default_value_t = 100, global = true)]
    pub sample_ms: u64,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    pids: Vec<u32>,
}

#[derive(Debug, Default, Clone)]
struct Rss {
    first_kib: Option<u64>,
    last_kib: u64,
    max_kib: u64,
    sum_kib: u128,
    samples: u64,
}

pub struct Watcher {
    groups: Vec<Group>,
    machine_start: u64,
    cpu_start: Vec<u64>,
    self_cpu_start: u64,
    started: Instant,
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<Vec<Rss>>,
}

pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// `utime + stime` in clock ticks, or 0 for a process that is gone.
fn cpu_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name, which may hold spaces: state is the
    // first, utime the 12th and stime the 13th.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// Busy clock ticks of the whole machine, all cores (`/proc/stat`).
pub fn machine_busy_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    total.saturating_sub(idle)
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn parse(specs: &[String]) -> anyhow::Result<Vec<Group>> {
    specs
        .iter()
        .map(|s| {
            let (name, pids) = s
                .split_once('=')
                .with_context(|| format!("--watch {s:?} is not NAME=PID[,PID…]"))?;
            let pids = pids
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.trim()
                        .parse::<u32>()
                        .with_context(|| format!("pid {p:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if pids.is_empty() {
                bail!("--watch {s:?}: no pid");
            }
            Ok(Group {
                name: name.to_owned(),
                pids,
            })
        })
        .collect()
}

impl Watcher {
    pub fn start(args: &WatchArgs) -> anyhow::Result<Self> {
        let groups = parse(&args.watch)?;
        let cpu_start = groups
            .iter()
            .map(|g| g.pids.iter().map(|p| cpu_ticks(&p.to_string())).sum())
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let period = Duration::from_millis(args.sample_ms.max(10));
        let (g2, stop2) = (groups.clone(), stop.clone());
        // A plain thread: it samples on time even when the runtime is busy.
        let sampler = std::thread::spawn(move || {
            let mut rss = vec![Rss::default(); g2.len()];
            loop {
                for (g, r) in g2.iter().zip(rss.iter_mut()) {
                    let kib: u64 = g.pids.iter().map(|&p| rss_kib(p)).sum();
                    r.first_kib.get_or_insert(kib);
                    r.last_kib = kib;
                    r.max_kib = r.max_kib.max(kib);
                    r.sum_kib += u128::from(kib);
                    r.samples += 1;
                }
                if stop2.load(Ordering::Relaxed) {
                    return rss;
                }
                std::thread::sleep(period);
            }
        });
        Ok(Self {
            groups,
            machine_start: machine_busy_ticks(),
            cpu_start,
            self_cpu_start: cpu_ticks("self"),
            started: Instant::now(),
            stop,
            sampler,
        })
    }

    /// Stops sampling and summarises: per group, RSS in MiB (first, max,
    /// mean, last sample) and CPU seconds and percent of one core.
    pub fn finish(self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        let rss = self.sampler.join().unwrap_or_default();
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-9);
        let hz = clock_ticks();
        let mib = |kib: u64| round3(kib as f64 / 1024.0);
        let mut out = BTreeMap::new();
        let mut watched = 0.0;
        for ((g, r), start) in self.groups.iter().zip(&rss).zip(&self.cpu_start) {
            let now: u64 = g.pids.iter().map(|p| cpu_ticks(&p.to_string())).sum();
            let cpu = now.saturating_sub(*start) as f64 / hz;
            watched += cpu;
            out.insert(
                g.name.clone(),
                json!({
                    "pids": g.pids,
                    "rss_first_mib": mib(r.first_kib.unwrap_or(0)),
                    "rss_max_mib": mib(r.max_kib),
                    "rss_mean_mib": mib((r.sum_kib / u128::from(r.samples.max(1))) as u64),
                    "rss_last_mib": mib(r.last_kib),
                    "rss_samples": r.samples,
                    "cpu_s": round3(cpu),
                    "cpu_pct": round3(100.0 * cpu / elapsed),
                }),
            );
        }
        let own = cpu_ticks("self").saturating_sub(self.self_cpu_start) as f64 / hz;
        out.insert(
            "loadgen".to_owned(),
            json!({"cpu_s": round3(own), "cpu_pct": round3(100.0 * own / elapsed)}),
        );
        let machine = machine_busy_ticks().saturating_sub(self.machine_start) as f64 / hz;
        let others = (machine - watched - own).max(0.0);
        json!({
            "elapsed_s": round3(elapsed),
            "procs": out,
            "machine_cpu_pct": round3(100.0 * machine / elapsed),
            "others_cpu_pct": round3(100.0 * others / elapsed),
        })
    }
}
