//! `loadgen report`: one run's raw files (one JSON per phase, named by
//! `bench/run`) into `results/DATE.json` (everything, plus the machine)
//! and `results/DATE.md` (the table, every figure against direct storage
//! measured in the same run, and each goal passed or failed).
//!
//! Raw file names: `throughput-{path}-{bytes}-c{connections}`,
//! `seek-{path}`, `rps-{status|lost}-{path}`, `stream-{path}`,
//! `mem-idle`, `mem-slow-{clients}`; `path` is `direct`, `nginx`,
//! `unsigned` (storage read anonymously, as nginx reads it), `relay` (a
//! bare TCP relay, HAProxy splicing, in front of that anonymous read), `gateway`,
//! `replicas` (two gateway replicas behind nginx), `tls` (the gateway over
//! the store's HTTPS port) or `cached` (the gateway with its body cache, as
//! shipped); the last five in tables of their own.
//!
//! A full-file phase runs in rounds, `{name}~r{round}`, its paths taken in
//! a different order each round: one phase's figure is its median round
//! (see [`rounds::median_rounds`]), so that the store's pace drifting over
//! a run (by 20-30 % on a 2-core machine) does not decide a ratio.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

mod relay;
mod rounds;
mod sides;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of the phases' JSON files.
    #[arg(long)]
    pub raw: PathBuf,
    /// `KEY=VALUE` facts about the machine and the run, repeatable.
    #[arg(long = "meta")]
    pub meta: Vec<String>,
    #[arg(long)]
    pub date: String,
    #[arg(long)]
    pub out_json: PathBuf,
    #[arg(long)]
    pub out_md: PathBuf,
}

/// Throughput goals: gateway ≥ 0.9 × direct and ≥ 1.0 × nginx.
const VS_DIRECT: f64 = 0.9;
const VS_NGINX: f64 = 1.0;
/// Ranged GETs may add this much at p99 (ms).
const SEEK_P99_ADDED_MS: f64 = 2.0;
/// Warm status and lost answers, requests per second.
const MIN_RPS: f64 = 20_000.0;
/// RSS budget: a base plus a share per concurrent stream (MiB).
const RSS_BASE_MIB: f64 = 64.0;
const RSS_PER_STREAM_MIB: f64 = 64.0 / 1024.0;
/// Growth allowed while one 1 GiB object streams (MiB).
const STREAM_GROWTH_MIB: f64 = 32.0;

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{} MB", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{} KB", n / 1_000),
        n if n >= 1_024 && n % 1_024 == 0 => format!("{} KiB", n / 1_024),
        n => format!("{n} B"),
    }
}

/// Phases in the order `bench/run` runs them: memory on a fresh gateway,
/// then streams, full files (by size, connections, path), seeks, answers.
fn run_order(name: &str) -> (usize, u64, u64, usize, String) {
    let path = |s: &str| {
        [
            "direct", "unsigned", "relay", "nginx", "gateway", "replicas", "tls", "cached",
        ]
        .iter()
        .position(|p| s.contains(p))
    };
    let nums: Vec<u64> = name
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let stage = [
        "mem-idle",
        "stream-gateway",
        "mem-slow",
        "stream",
        "throughput",
        "seek",
        "rps-status",
        "rps-statuskey",
        "rps-lost",
    ]
    .iter()
    .position(|p| name.starts_with(p))
    .unwrap_or(usize::MAX);
    (
        stage,
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
        path(name).unwrap_or(0),
        name.to_owned(),
    )
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A figure with its ratio to direct, e.g. `812 (0.86×)`.
fn with_ratio(v: Option<f64>, direct: Option<f64>, decimals: usize) -> String {
    match (v, direct) {
        (Some(v), Some(d)) if d > 0.0 => format!("{v:.decimals$} ({:.2}×)", v / d),
        (Some(v), _) => format!("{v:.decimals$}"),
        (None, _) => "—".into(),
    }
}

/// A bare ratio, e.g. `0.93×`.
fn ratio(v: Option<f64>, base: Option<f64>) -> String {
    match (v, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("{:.2}×", v / b),
        _ => "—".into(),
    }
}

fn fmt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("—".into(), |v| format!("{v:.decimals$}"))
}

fn verdict(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "pass",
        Some(false) => "**FAIL**",
        None => "not measured",
    }
}

struct Table {
    md: String,
    goals: Vec<Value>,
}

impl Table {
    fn row(&mut self, cells: [&str; 6]) {
        let _ = writeln!(self.md, "| {} |", cells.join(" | "));
    }
    fn goal(&mut self, measure: &str, value: Option<f64>, target: &str, pass: Option<bool>) {
        self.goals.push(json!({
            "measure": measure,
            "value": value,
            "target": target,
            "pass": pass,
        }));
    }
}

pub fn run(args: &Args) -> anyhow::Result<String> {
    let mut phases: BTreeMap<String, Value> = BTreeMap::new();
    for entry in std::fs::read_dir(&args.raw).with_context(|| format!("{}", args.raw.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("file name")?
            .to_owned();
        let text = std::fs::read_to_string(&path)?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        phases.insert(name, v);
    }
    if phases.is_empty() {
        bail!("{}: no phase results", args.raw.display());
    }
    let phases = rounds::median_rounds(phases);
    let meta: BTreeMap<String, String> = args
        .meta
        .iter()
        .filter_map(|m| m.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let get = |name: &str, ptr: &str| phases.get(name).and_then(|v| v.pointer(ptr)).and_then(num);

    let mut t = Table {
        md: String::new(),
        goals: Vec::new(),
    };
    let _ = writeln!(t.md, "# playback-gateway benchmark, {}\n", args.date);
    let m = |k: &str| meta.get(k).map_or("?", String::as_str);
    let _ = writeln!(
        t.md,
        "Machine: {} cores ({}), {} memory, Linux {}. {}; SeaweedFS {}; {}{}; gateway {}{}.\n\
         Everything ran on this one machine, load generator included, over loopback. \
         Figures in parentheses are ratios to direct storage in the same run. The gateway's \
         full-file and seek figures read every body from the store (`--body-cache-size 0`): \
         they measure the hop. Its memory figures are of the gateway as shipped, its body \
         cache filled first; replays from that cache have a table of their own below.\n",
        m("nproc"),
        m("cpu"),
        m("memory"),
        m("kernel"),
        m("rustc"),
        m("seaweedfs"),
        m("nginx"),
        meta.get("haproxy")
            .map_or(String::new(), |v| format!("; HAProxy {v}")),
        m("gateway"),
        if m("gateway_store") == "https" {
            ", reading the store over HTTPS"
        } else {
            ""
        },
    );
    t.row([
        "measure",
        "direct (storage)",
        "nginx",
        "gateway",
        "goal",
        "result",
    ]);
    t.row(["---", "---:", "---:", "---:", "---", "---"]);

    // Full files.
    let keys = sizes_and_connections(phases.keys(), "throughput-gateway-");
    for (size, conns) in keys {
        let mbps = |p: &str| get(&format!("throughput-{p}-{size}-c{conns}"), "/mb_per_s");
        let (d, n, g) = (mbps("direct"), mbps("nginx"), mbps("gateway"));
        let measure = format!(
            "full file {}, {conns} connections (MB/s)",
            human_bytes(size)
        );
        let pass = match (d, n, g) {
            (Some(d), Some(n), Some(g)) => Some(g >= VS_DIRECT * d && g >= VS_NGINX * n),
            _ => None,
        };
        let target = format!("≥ {VS_DIRECT:.2}× direct and ≥ {VS_NGINX:.2}× nginx");
        t.row([
            &measure,
            &fmt(d, 0),
            &with_ratio(n, d, 0),
            &with_ratio(g, d, 0),
            &target,
            verdict(pass),
        ]);
        t.goal(&measure, g.zip(d).map(|(g, d)| g / d), &target, pass);
    }

    // Seeks.
    if phases.contains_key("seek-gateway") {
        let seek = &phases["seek-gateway"];
        let label = format!(
            "seek: {} ranges at random offsets, {}/s",
            human_bytes(seek["range_len"].as_u64().unwrap_or(0)),
            seek["rate"]
        );
        for q in ["p50", "p99"] {
            let v = |p: &str| get(&format!("seek-{p}"), &format!("/ttfb_ms/{q}"));
            let (d, n, g) = (v("direct"), v("nginx"), v("gateway"));
            let measure = format!("{label}: time to first byte {q} (ms)");
            let (target, pass) = if q == "p99" {
                (
                    format!("≤ direct + {SEEK_P99_ADDED_MS} ms"),
                    d.zip(g).map(|(d, g)| g - d <= SEEK_P99_ADDED_MS),
                )
            } else {
                (String::new(), None)
            };
            t.row([
                &measure,
                &fmt(d, 2),
                &with_ratio(n, d, 2),
                &with_ratio(g, d, 2),
                if q == "p99" { &target } else { "" },
                if q == "p99" { verdict(pass) } else { "" },
            ]);
            if q == "p99" {
                t.goal(&measure, g.zip(d).map(|(g, d)| g - d), &target, pass);
            }
        }
    }

    // Warm metadata answers.
    for (kind, what, yardstick, is_goal) in [
        ("status", "status JSON, playback link", "status", true),
        ("statuskey", "status JSON, account API key", "status", false),
        (
            "lost",
            "lost recording's answer (410), playback link",
            "lost",
            true,
        ),
    ] {
        if !phases.contains_key(&format!("rps-{kind}-gateway")) {
            continue;
        }
        // Storage has no such answer: its own metadata answer is the yardstick.
        let v = |p: &str, ptr: &str| {
            let k = if p == "gateway" { kind } else { yardstick };
            get(&format!("rps-{k}-{p}"), ptr)
        };
        let rps = |p: &str| v(p, "/requests_per_s");
        let (d, n, g) = (rps("direct"), rps("nginx"), rps("gateway"));
        let measure = format!("{what} (requests/s)");
        let target = format!("≥ {MIN_RPS:.0}/s");
        let pass = g.map(|g| g >= MIN_RPS);
        t.row([
            &measure,
            &fmt(d, 0),
            &with_ratio(n, d, 0),
            &with_ratio(g, d, 0),
            if is_goal { &target } else { "(not a goal)" },
            if is_goal { verdict(pass) } else { "" },
        ]);
        if is_goal {
            t.goal(&measure, g, &target, pass);
        }
        let p99 = |p: &str| v(p, "/latency_ms/p99");
        t.row([
            &format!("{what}: latency p99 (ms)"),
            &fmt(p99("direct"), 2),
            &with_ratio(p99("nginx"), p99("direct"), 2),
            &with_ratio(p99("gateway"), p99("direct"), 2),
            "",
            "",
        ]);
    }

    // One huge stream.
    if phases.contains_key("stream-gateway") {
        let v = |p: &str| get(&format!("stream-{p}"), "/mb_per_s");
        let size = phases["stream-gateway"]["bytes"].as_u64().unwrap_or(0);
        t.row([
            &format!("one {} stream (MB/s)", human_bytes(size)),
            &fmt(v("direct"), 0),
            &with_ratio(v("nginx"), v("direct"), 0),
            &with_ratio(v("gateway"), v("direct"), 0),
            "",
            "",
        ]);
    }

    // Memory of the gateway.
    let rss = |name: &str, ptr: &str| get(name, &format!("/watch/procs/gateway/{ptr}"));
    let idle = rss("mem-idle", "rss_max_mib");
    if idle.is_some() {
        let target = format!("≤ {RSS_BASE_MIB:.0} MiB");
        let pass = idle.map(|v| v <= RSS_BASE_MIB);
        t.row([
            "gateway RSS, idle (MiB)",
            "",
            "",
            &fmt(idle, 1),
            &target,
            verdict(pass),
        ]);
        t.goal("gateway RSS idle (MiB)", idle, &target, pass);
    }
    let mut slow: Vec<u64> = phases
        .keys()
        .filter_map(|k| k.strip_prefix("mem-slow-")?.parse().ok())
        .collect();
    slow.sort_unstable();
    for n in slow {
        let name = format!("mem-slow-{n}");
        let p = &phases[&name];
        let v = rss(&name, "rss_max_mib");
        let budget = RSS_BASE_MIB + n as f64 * RSS_PER_STREAM_MIB;
        let all_streaming = p["status_200"].as_u64() == Some(n) && p["errors"].as_u64() == Some(0);
        // Bytes waiting in splice pipes are kernel memory, outside RSS:
        // they count against the budget too, and are said beside it.
        let pipe_mib = p["splice_pipe_mib_max"].as_f64();
        let pass = v.map(|v| v + pipe_mib.unwrap_or(0.0) <= budget && all_streaming);
        let target = format!("≤ 64 MiB + {n} × 64 KiB = {budget:.1} MiB");
        let per_stream = v.zip(idle).map(|(v, i)| (v - i) * 1024.0 / n as f64);
        let measure = format!(
            "gateway RSS, {n} concurrent slow clients at {} B/s (MiB){}",
            p["rate_bytes_per_client"],
            if all_streaming {
                ""
            } else {
                " — not every client was served"
            }
        );
        // RSS still at its maximum in the last sample: the plateau was not
        // reached before the phase ended, and the figure understates it.
        let rising = rss(&name, "rss_last_mib")
            .zip(v)
            .is_some_and(|(last, max)| last >= max - 1.0);
        let pipes = p["splice_pipes_max"]
            .as_f64()
            .zip(pipe_mib)
            .map(|(n, mib)| {
                format!("; plus up to {mib:.1} MiB of kernel memory in up to {n:.0} splice pipes")
            })
            .unwrap_or_default();
        let cell = match per_stream {
            Some(k) => format!(
                "{} ({k:.0} KiB per client above idle{}{pipes})",
                fmt(v, 1),
                if rising {
                    "; still rising when the phase ended"
                } else {
                    ""
                }
            ),
            None => fmt(v, 1),
        };
        t.row([&measure, "", "", &cell, &target, verdict(pass)]);
        t.goal(&measure, v, &target, pass);
    }
    if phases.contains_key("stream-gateway") {
        let first = rss("stream-gateway", "rss_first_mib");
        let max = rss("stream-gateway", "rss_max_mib");
        let growth = first.zip(max).map(|(f, m)| m - f);
        let target = format!("< {STREAM_GROWTH_MIB:.0} MiB");
        let pass = growth.map(|g| g < STREAM_GROWTH_MIB);
        let measure = "gateway RSS growth while one 1 GiB object streams (MiB)";
        t.row([
            measure,
            "",
            "",
            &format!(
                "{} (from {} to {})",
                fmt(growth, 1),
                fmt(first, 1),
                fmt(max, 1)
            ),
            &target,
            verdict(pass),
        ]);
        t.goal(measure, growth, &target, pass);
    }

    rounds::spread(&mut t.md, &phases);
    // The tables beside the main one, each only when its phases ran.
    let replica_rows = sides::replicas(&mut t.md, &phases, m("nproc"));
    sides::signing(&mut t.md, &phases);
    let relay_rows = relay::table(&mut t.md, &phases);
    let tls_rows = sides::tls(&mut t.md, &phases);
    let cached_rows = sides::cached(&mut t.md, &phases);
    // Where the CPU went. With the replicas running: their CPU (each in
    // parentheses) and PostgreSQL's, in columns of their own.
    let with_replicas = phases
        .values()
        .any(|v| v.pointer("/watch/procs/replica1").is_some());
    let _ = writeln!(
        t.md,
        "\nCPU during each phase, in % of one core (the machine has {}; \
         {} % is all of it){}:\n",
        m("nproc"),
        meta.get("nproc")
            .and_then(|n| n.parse::<u32>().ok())
            .map_or("?".into(), |n| (n * 100).to_string()),
        if with_replicas {
            ". The replicas and PostgreSQL run from the speed phases on, beside the single \
             gateway (as do the gateway over TLS and the one keeping recordings in memory, \
             counted in the gateway's column); each gateway set-up idles while another is \
             measured"
        } else {
            ""
        },
    );
    // The bare TCP relay, when it ran, in a column of its own.
    let with_relay = phases
        .values()
        .any(|v| v.pointer("/watch/procs/relay").is_some());
    let mut head = vec!["phase", "loadgen", "SeaweedFS", "nginx"];
    head.extend(with_relay.then_some("relay (HAProxy)"));
    head.push("gateway");
    if with_replicas {
        head.extend(["replicas (1 + 2)", "PostgreSQL"]);
    }
    head.extend(["anything else", "whole machine"]);
    let _ = writeln!(t.md, "| {} |", head.join(" | "));
    let _ = writeln!(t.md, "|---|{}", "---:|".repeat(head.len() - 1));
    let mut order: Vec<(&String, &Value)> = phases.iter().collect();
    order.sort_by_key(|(name, _)| run_order(name));
    for (name, v) in order {
        let Some(procs) = v.pointer("/watch/procs") else {
            continue;
        };
        let pct = |p: &str| procs.pointer(&format!("/{p}/cpu_pct")).and_then(num);
        let mut cells: Vec<String> = vec![name.clone()];
        cells.extend(["loadgen", "weed", "nginx"].map(|p| fmt(pct(p), 0)));
        if with_relay {
            cells.push(fmt(pct("relay"), 0));
        }
        cells.push(fmt(pct("gateway"), 0));
        if with_replicas {
            cells.push(match (pct("replica1"), pct("replica2")) {
                (Some(a), Some(b)) => format!("{:.0} ({a:.0} + {b:.0})", a + b),
                _ => "—".into(),
            });
            cells.push(fmt(pct("postgres"), 0));
        }
        cells.push(fmt(v.pointer("/watch/others_cpu_pct").and_then(num), 0));
        cells.push(fmt(v.pointer("/watch/machine_cpu_pct").and_then(num), 0));
        let _ = writeln!(t.md, "| {} |", cells.join(" | "));
    }

    // Anything that went wrong while measuring.
    let errs: Vec<String> = phases
        .iter()
        .filter(|(_, v)| v["errors"].as_u64().is_some_and(|e| e > 0))
        .map(|(k, v)| match v["error_samples"].as_array() {
            Some(samples) if !samples.is_empty() => {
                format!("- {k}: {} errors, e.g. {}", v["errors"], v["error_samples"])
            }
            _ => format!("- {k}: {} errors", v["errors"]),
        })
        .collect();
    if !errs.is_empty() {
        let _ = writeln!(
            t.md,
            "\nErrors while measuring (the figures above include them):\n"
        );
        for e in errs {
            let _ = writeln!(t.md, "{e}");
        }
    }
    // A partial run (BENCH_ONLY) may leave a goal without the figure it
    // compares with: not measured, not met.
    let met = t.goals.iter().filter(|g| g["pass"] == json!(true)).count();
    let unmeasured = t.goals.iter().filter(|g| g["pass"].is_null()).count();
    let _ = writeln!(
        t.md,
        "\n{met} of {} goals met{}. Raw figures: `{}.json` beside this file.",
        t.goals.len(),
        if unmeasured > 0 {
            format!(" ({unmeasured} not measured in this run)")
        } else {
            String::new()
        },
        args.date
    );

    let results = json!({
        "date": args.date,
        "machine": meta,
        "goals": t.goals,
        "replicas": replica_rows,
        "relay": relay_rows,
        "tls": tls_rows,
        "cached": cached_rows,
        "phases": phases,
    });
    std::fs::write(
        &args.out_json,
        serde_json::to_string_pretty(&results)? + "\n",
    )
    .with_context(|| format!("{}", args.out_json.display()))?;
    std::fs::write(&args.out_md, &t.md).with_context(|| format!("{}", args.out_md.display()))?;
    Ok(t.md)
}

/// The (object size, connections) pairs of the phases named
/// `{prefix}{size}-c{connections}`, in order.
fn sizes_and_connections<'a>(
    names: impl Iterator<Item = &'a String>,
    prefix: &str,
) -> Vec<(u64, u64)> {
    let mut pairs: Vec<(u64, u64)> = names
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|rest| {
            let (size, conns) = rest.split_once("-c")?;
            Some((size.parse().ok()?, conns.parse().ok()?))
        })
        .collect();
    pairs.sort_unstable();
    pairs
}
