//! Full-file phases run in rounds: each phase's median round, and every
//! round's figures beside it, so a reader sees how much a ratio moves.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{human_bytes, num, sizes_and_connections};

/// Phases run in rounds (`{name}~r{round}`) as one phase each: the round
/// with the median MB/s (of an even count, the lower of the middle two),
/// so that its other figures (CPU, latency) are those of the same
/// seconds, plus `rounds_mb_per_s`, every round's figure in round order.
/// Other phases pass through.
pub(super) fn median_rounds(raw: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    let mut rounds: BTreeMap<String, Vec<(u32, Value)>> = BTreeMap::new();
    let mut phases = BTreeMap::new();
    for (name, v) in raw {
        match name
            .rsplit_once("~r")
            .and_then(|(base, r)| Some((base, r.parse::<u32>().ok()?)))
        {
            Some((base, r)) => rounds.entry(base.to_owned()).or_default().push((r, v)),
            None => {
                phases.insert(name, v);
            }
        }
    }
    for (name, mut runs) in rounds {
        runs.sort_by_key(|(r, _)| *r);
        let mbps = |v: &Value| v.pointer("/mb_per_s").and_then(num).unwrap_or(0.0);
        let all: Vec<f64> = runs.iter().map(|(_, v)| mbps(v)).collect();
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&a, &b| all[a].total_cmp(&all[b]));
        let mid = order[(runs.len() - 1) / 2];
        let mut v = runs.swap_remove(mid).1;
        if let Some(o) = v.as_object_mut() {
            o.insert("rounds_mb_per_s".into(), json!(all));
        }
        phases.insert(name, v);
    }
    phases
}

/// The rounds' own figures of the main table's full-file rows, and the
/// gateway's ratio to direct storage within each round (its paths ran
/// minutes apart at most, so the store's drift cancels best there).
pub(super) fn spread(md: &mut String, phases: &BTreeMap<String, Value>) {
    let rounds = |name: &str| -> Option<Vec<f64>> {
        let all = phases.get(name)?.get("rounds_mb_per_s")?.as_array()?;
        all.iter().map(num).collect()
    };
    let keys = sizes_and_connections(phases.keys(), "throughput-gateway-");
    let mut rows = String::new();
    let mut count = 0;
    for (size, conns) in keys {
        let of = |p: &str| rounds(&format!("throughput-{p}-{size}-c{conns}"));
        let (Some(d), Some(g)) = (of("direct"), of("gateway")) else {
            continue;
        };
        count = count.max(d.len());
        let list = |v: Option<Vec<f64>>| {
            v.map_or("—".into(), |v| {
                v.iter()
                    .map(|x| format!("{x:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        };
        let per_round = d
            .iter()
            .zip(&g)
            .map(|(d, g)| match *d > 0.0 {
                true => format!("{:.2}×", g / d),
                false => "—".into(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            rows,
            "| full file {}, {conns} connections | {} | {} | {} | {per_round} |",
            human_bytes(size),
            list(Some(d)),
            list(of("nginx")),
            list(Some(g)),
        );
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## Full files, round by round\n\n\
         Each full-file figure above is the median of {count} rounds. In every round each \
         path ran once, in a different order each round, so a path's figure does not depend \
         on its place in the run. The rounds' own figures (MB/s), in round order:\n\n\
         | measure | direct | nginx | gateway | gateway vs direct, each round |\n\
         | --- | ---: | ---: | ---: | ---: |"
    );
    md.push_str(&rows);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn phase(mbps: f64, cpu: f64) -> Value {
        json!({"mb_per_s": mbps, "watch": {"cpu": cpu}})
    }

    #[test]
    fn a_phase_in_rounds_is_its_median_round_whole() {
        let raw = BTreeMap::from([
            (
                "throughput-gateway-100-c16~r1".to_owned(),
                phase(300.0, 1.0),
            ),
            (
                "throughput-gateway-100-c16~r2".to_owned(),
                phase(500.0, 2.0),
            ),
            (
                "throughput-gateway-100-c16~r3".to_owned(),
                phase(400.0, 3.0),
            ),
            ("seek-gateway".to_owned(), json!({"rate": 200})),
        ]);
        let phases = median_rounds(raw);
        assert_eq!(phases.len(), 2);
        let g = &phases["throughput-gateway-100-c16"];
        assert_eq!(g["mb_per_s"], 400.0);
        assert_eq!(g["watch"]["cpu"], 3.0, "the median round's own CPU");
        assert_eq!(g["rounds_mb_per_s"], json!([300.0, 500.0, 400.0]));
        assert_eq!(phases["seek-gateway"], json!({"rate": 200}));
    }

    #[test]
    fn of_two_rounds_the_lower_counts_and_odd_names_pass_through() {
        let raw = BTreeMap::from([
            ("throughput-direct-1-c1~r2".to_owned(), phase(9.0, 0.0)),
            ("throughput-direct-1-c1~r1".to_owned(), phase(7.0, 0.0)),
            ("throughput-direct-1-c1~rx".to_owned(), phase(1.0, 0.0)),
            ("~r".to_owned(), json!(null)),
        ]);
        let phases = median_rounds(raw);
        assert_eq!(phases["throughput-direct-1-c1"]["mb_per_s"], 7.0);
        assert_eq!(
            phases["throughput-direct-1-c1"]["rounds_mb_per_s"],
            json!([7.0, 9.0])
        );
        assert!(phases.contains_key("throughput-direct-1-c1~rx"));
        assert!(phases.contains_key("~r"));
    }
}
