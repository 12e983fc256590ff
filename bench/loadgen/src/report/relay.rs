//! The cheapest hop there is: HAProxy relaying TCP to the store, splicing
//! both ways, against the gateway. What any hop costs on this machine, and
//! so what the gateway's own work adds to it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::sides::mbps;
use super::{fmt, human_bytes, num, ratio, sizes_and_connections};
use crate::util::round3;

/// The CPU (% of a core) per MB/s of `proc`, the process doing `path`'s
/// hop.
fn cpu_per_mbps(
    phases: &BTreeMap<String, Value>,
    path: &str,
    proc: &str,
    size: u64,
    conns: u64,
) -> Option<f64> {
    let v = phases.get(&format!("throughput-{path}-{size}-c{conns}"))?;
    let cpu = v
        .pointer(&format!("/watch/procs/{proc}/cpu_pct"))
        .and_then(num)?;
    mbps(phases, path, size, conns)
        .filter(|m| *m > 0.0)
        .map(|m| cpu / m)
}

/// The relay's table, when its phases ran; its rows in JSON.
pub(super) fn table(md: &mut String, phases: &BTreeMap<String, Value>) -> Vec<Value> {
    let keys = sizes_and_connections(phases.keys(), "throughput-relay-");
    let mut rows = Vec::new();
    if keys.is_empty() {
        return rows;
    }
    let _ = writeln!(
        md,
        "\n## The cheapest hop: a bare TCP relay\n\n\
         Any hop between a listener and the store runs on the two cores that SeaweedFS and \
         the load generator use. HAProxy (Debian's package) in TCP mode, splicing both ways \
         (`option splice-request` and `splice-response`: the bytes never enter its memory), \
         relays connections to SeaweedFS's S3 port without reading HTTP at all: the least \
         work a hop can do. It reads anonymously, as nginx does, so its ratio is to the \
         anonymous read; the gateway's is to the signed one. The last two columns are each \
         hop's CPU, in % of a core per MB/s.\n\n\
         | measure | direct, anonymous | relay | relay vs anonymous | gateway vs signed | \
         relay's CPU per MB/s | gateway's CPU per MB/s |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (size, conns) in keys {
        let [u, d, r, g] =
            ["unsigned", "direct", "relay", "gateway"].map(|p| mbps(phases, p, size, conns));
        let r_cpu = cpu_per_mbps(phases, "relay", "relay", size, conns);
        let g_cpu = cpu_per_mbps(phases, "gateway", "gateway", size, conns);
        let _ = writeln!(
            md,
            "| full file {}, {conns} connections (MB/s) | {} | {} | {} | {} | {} | {} |",
            human_bytes(size),
            fmt(u, 0),
            fmt(r, 0),
            ratio(r, u),
            ratio(g, d),
            fmt(r_cpu, 4),
            fmt(g_cpu, 4),
        );
        let share = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| round3(a / b));
        rows.push(json!({
            "size": size,
            "connections": conns,
            "unsigned_mb_per_s": u,
            "relay_mb_per_s": r,
            "relay_vs_unsigned": share(r, u),
            "gateway_vs_direct": share(g, d),
            "relay_cpu_pct_per_mb_per_s": r_cpu,
            "gateway_cpu_pct_per_mb_per_s": g_cpu,
        }));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(mbps: f64, proc: &str, cpu: f64) -> Value {
        json!({"mb_per_s": mbps, "watch": {"procs": {proc: {"cpu_pct": cpu}}}})
    }

    #[test]
    fn the_relay_is_compared_with_the_anonymous_read_and_the_gateway_with_the_signed_one() {
        let phases = BTreeMap::from([
            (
                "throughput-unsigned-100-c16".into(),
                phase(1000.0, "weed", 150.0),
            ),
            (
                "throughput-direct-100-c16".into(),
                phase(800.0, "weed", 150.0),
            ),
            (
                "throughput-relay-100-c16".into(),
                phase(700.0, "relay", 42.0),
            ),
            (
                "throughput-gateway-100-c16".into(),
                phase(600.0, "gateway", 24.0),
            ),
        ]);
        let mut md = String::new();
        let rows = table(&mut md, &phases);
        assert!(md.contains("| full file 100 B, 16 connections (MB/s) | 1000 | 700 | 0.70× | 0.75× | 0.0600 | 0.0400 |"), "{md}");
        assert_eq!(rows[0]["relay_vs_unsigned"], 0.7);
        assert_eq!(rows[0]["gateway_vs_direct"], 0.75);
    }

    #[test]
    fn without_the_relay_there_is_no_table_and_a_missing_figure_is_a_dash() {
        let mut md = String::new();
        assert!(table(&mut md, &BTreeMap::new()).is_empty());
        assert!(md.is_empty());
        let phases = BTreeMap::from([(
            "throughput-relay-100-c16".into(),
            json!({"mb_per_s": "garbage"}),
        )]);
        let rows = table(&mut md, &phases);
        assert!(md.contains("| — | — | — | — | — | — |"), "{md}");
        assert_eq!(rows[0]["relay_mb_per_s"], Value::Null);
    }
}
