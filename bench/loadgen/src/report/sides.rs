//! The tables beside the main one: two gateway replicas behind nginx,
//! what signed requests cost the store, the store over HTTPS, and replays
//! from the body cache. Each is written only when its phases ran.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{fmt, human_bytes, num, ratio, sizes_and_connections, with_ratio};
use crate::util::round3;

type Phases = BTreeMap<String, Value>;

/// The figure at `ptr` of phase `name`, if that phase ran.
fn get(phases: &Phases, name: &str, ptr: &str) -> Option<f64> {
    phases.get(name).and_then(|v| v.pointer(ptr)).and_then(num)
}

/// The full-file throughput of `path` for `size` bytes over `conns`
/// connections, in MB/s.
pub(super) fn mbps(phases: &Phases, path: &str, size: u64, conns: u64) -> Option<f64> {
    let name = format!("throughput-{path}-{size}-c{conns}");
    get(phases, &name, "/mb_per_s")
}

/// Two gateway replicas behind nginx, against the same store; its rows in
/// JSON.
pub(super) fn replicas(md: &mut String, phases: &Phases, nproc: &str) -> Vec<Value> {
    // Two gateway replicas behind nginx, against the same store.
    let mut replica_rows: Vec<Value> = Vec::new();
    let rkeys = sizes_and_connections(phases.keys(), "throughput-replicas-");
    let answers: Vec<(&str, &str)> = [
        ("status", "status JSON, playback link"),
        ("lost", "lost recording's answer (410), playback link"),
    ]
    .into_iter()
    .filter(|(kind, _)| phases.contains_key(&format!("rps-{kind}-replicas")))
    .collect();
    if !rkeys.is_empty() || !answers.is_empty() {
        let _ = writeln!(
            md,
            "\n## Two gateway replicas behind nginx\n\n\
             Two gateway replicas (the same release binary, flags and link keys as the gateway \
             above, no data directory) share one PostgreSQL catalog, holding the same import, \
             and the same SeaweedFS; a second server of the same nginx balances them round robin \
             over keep-alive upstream connections (64 idle), as it proxies storage above. The \
             requests are the gateway column's, with the same signed links, sent to that nginx. \
             Everything ran on the same {} cores: both replicas, nginx, SeaweedFS, PostgreSQL and \
             the load generator share them, so this table shows what the extra hop costs \
             (nginx's CPU and one more copy of every byte, taken from the cores the gateway \
             uses), not the capacity a second replica adds: that takes replicas on machines of \
             their own. \
             For the answers, direct's column is storage's own HEAD, as above.\n",
            nproc
        );
        let _ = writeln!(
            md,
            "| measure | direct (storage) | gateway | 2 replicas + nginx | 2 replicas + nginx vs gateway |"
        );
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
        let mut row = |md: &mut String, measure: String, unit: &str, figures, decimals| {
            replica_rows.push(beside_gateway(
                md, "replicas", measure, unit, figures, decimals,
            ));
        };
        for (size, conns) in rkeys {
            let mbps = |p: &str| mbps(phases, p, size, conns);
            row(
                md,
                format!(
                    "full file {}, {conns} connections (MB/s)",
                    human_bytes(size)
                ),
                "MB/s",
                (mbps("direct"), mbps("gateway"), mbps("replicas")),
                0,
            );
        }
        for (kind, what) in answers {
            let v = |p: &str, ptr: &str| get(phases, &format!("rps-{kind}-{p}"), ptr);
            for (ptr, measure, unit, decimals) in [
                (
                    "/requests_per_s",
                    format!("{what} (requests/s)"),
                    "requests/s",
                    0,
                ),
                (
                    "/latency_ms/p99",
                    format!("{what}: latency p99 (ms)"),
                    "ms",
                    2,
                ),
            ] {
                row(
                    md,
                    measure,
                    unit,
                    (v("direct", ptr), v("gateway", ptr), v("replicas", ptr)),
                    decimals,
                );
            }
        }
    }
    replica_rows
}

/// What signing costs the store: nginx reads it anonymously, direct
/// storage and the gateway with signed requests.
pub(super) fn signing(md: &mut String, phases: &Phases) {
    // What signing costs the store: nginx reads it anonymously, direct
    // storage and the gateway with signed requests.
    let ukeys = sizes_and_connections(phases.keys(), "throughput-unsigned-");
    if !ukeys.is_empty() {
        let _ = writeln!(
            md,
            "\n## What signed requests cost the store\n\n\
             nginx, as a plain reverse proxy, can only read a bucket that allows anonymous \
             reads; direct storage (presigned URLs) and the gateway send signed requests, \
             which SeaweedFS verifies (SigV4) on every GET. The same objects read anonymously, \
             straight from SeaweedFS, show what that verification costs it, and so how much of \
             nginx's figures is the anonymous read rather than the proxy.\n"
        );
        let _ = writeln!(
            md,
            "| measure | direct, signed | direct, anonymous | anonymous vs signed | nginx (anonymous) | gateway (signed) |"
        );
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: |");
        for (size, conns) in ukeys {
            let mbps = |p: &str| mbps(phases, p, size, conns);
            let (d, u) = (mbps("direct"), mbps("unsigned"));
            let _ = writeln!(
                md,
                "| full file {}, {conns} connections (MB/s) | {} | {} | {} | {} | {} |",
                human_bytes(size),
                fmt(d, 0),
                fmt(u, 0),
                ratio(u, d),
                with_ratio(mbps("nginx"), u, 0),
                with_ratio(mbps("gateway"), d, 0),
            );
        }
        let _ = writeln!(
            md,
            "\nnginx's ratio is to the anonymous read, the gateway's to the signed one."
        );
    }
}

/// The gateway over the store's HTTPS port, against the same store; its
/// rows in JSON.
pub(super) fn tls(md: &mut String, phases: &Phases) -> Vec<Value> {
    full_files_beside(
        md,
        phases,
        "tls",
        "The store over HTTPS",
        "The same gateway (binary, flags, its own import of the same catalog) reading the \
         same SeaweedFS through its TLS port (`--s3-endpoint https://…`, and `--s3-ca-file` \
         naming a CA made for the run, which issued the store's certificate), as Amazon S3 and \
         hosted stores are reached. Only the gateway's hop to the store is encrypted: direct \
         storage is measured over plain HTTP, as above, so the last column is the cost of TLS \
         to the store.",
        ("gateway, store over HTTPS", "HTTPS vs HTTP"),
    )
}

/// The gateway as shipped, its recent recordings kept in memory, against
/// the same store: full files, and seeks into a recording just played.
pub(super) fn cached(md: &mut String, phases: &Phases) -> Vec<Value> {
    let mut rows = full_files_beside(
        md,
        phases,
        "cached",
        "Replays: recent recordings kept in memory",
        "The gateway columns above read every body from the store (`--body-cache-size 0`), \
         to measure the hop. As shipped, the gateway keeps recordings read whole (by default \
         8 MiB of them) and answers replays and seeks of them from memory. This gateway (the \
         same binary and flags, its own import of the same catalog, the default body cache) \
         is measured on the same requests: each connection goes over the same 8 objects again \
         and again, so the 100 KB ones (0.8 MB in all) are kept after their first read, the \
         1 MB ones (8 MB) nearly all fit, and the 5 MB ones (40 MB) mostly do not. It shows \
         what a replay costs, not a first play: a first play is the gateway column. The \
         seek rows are the seek phase above (64 KiB ranges at random offsets, at the same \
         rate) sent to this gateway for one 5 MB recording it has just played whole, as an \
         agent scrubs through a call: direct's and the gateway's columns are their seek \
         phase above (store reads cost the same whichever object they hit).",
        ("gateway, kept in memory", "kept vs store"),
    );
    if rows.is_empty() || !phases.contains_key("seek-cached") {
        return rows;
    }
    for q in ["p50", "p99"] {
        let v = |p: &str| get(phases, &format!("seek-{p}"), &format!("/ttfb_ms/{q}"));
        rows.push(beside_gateway(
            md,
            "cached",
            format!("seek into a recording just played: time to first byte {q} (ms)"),
            "ms",
            (v("direct"), v("gateway"), v("cached")),
            2,
        ));
    }
    rows
}

/// A table of the full-file rows of `path` beside direct storage and the
/// single gateway; its rows in JSON.
fn full_files_beside(
    md: &mut String,
    phases: &Phases,
    path: &str,
    heading: &str,
    intro: &str,
    (column, versus): (&str, &str),
) -> Vec<Value> {
    let mut rows: Vec<Value> = Vec::new();
    let keys = sizes_and_connections(phases.keys(), &format!("throughput-{path}-"));
    if keys.is_empty() {
        return rows;
    }
    let _ = writeln!(md, "\n## {heading}\n\n{intro}\n");
    let _ = writeln!(
        md,
        "| measure | direct (storage) | gateway | {column} | {versus} |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
    for (size, conns) in keys {
        let mbps = |p: &str| mbps(phases, p, size, conns);
        rows.push(beside_gateway(
            md,
            path,
            format!(
                "full file {}, {conns} connections (MB/s)",
                human_bytes(size)
            ),
            "MB/s",
            (mbps("direct"), mbps("gateway"), mbps(path)),
            0,
        ));
    }
    rows
}

/// A row of a table that compares another set-up (`name`) with the single
/// gateway: direct, gateway and it, with ratios; and the same in JSON.
fn beside_gateway(
    md: &mut String,
    name: &str,
    measure: String,
    unit: &str,
    (d, g, x): (Option<f64>, Option<f64>, Option<f64>),
    decimals: usize,
) -> Value {
    let _ = writeln!(
        md,
        "| {measure} | {} | {} | {} | {} |",
        fmt(d, decimals),
        with_ratio(g, d, decimals),
        with_ratio(x, d, decimals),
        ratio(x, g),
    );
    let div = |a: Option<f64>, b: Option<f64>| {
        a.zip(b)
            .filter(|(_, b)| *b > 0.0)
            .map(|(a, b)| round3(a / b))
    };
    json!({
        "measure": measure,
        "unit": unit,
        "direct": d,
        "gateway": g,
        name: x,
        format!("{name}_vs_direct"): div(x, d),
        format!("{name}_vs_gateway"): div(x, g),
    })
}
