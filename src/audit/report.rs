//! An audit's report as JSON (everything), CSV (one finding a line) or
//! text (a summary for people, with the unexplained losses listed).

use std::fmt::Write as _;

use super::{Finding, Kind, Report};

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
    Text,
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report).expect("a report serializes");
            s.push('\n');
            s
        }
        Format::Csv => csv(&report.findings),
        Format::Text => text(report),
    }
}

fn csv(findings: &[Finding]) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "kind",
        "sid",
        "account_sid",
        "formats",
        "keys",
        "end_time",
        "incident",
        "size",
        "expected_min_size",
        "detail",
    ]);
    for f in findings {
        let opt = |v: Option<String>| v.unwrap_or_default();
        let _ = w.write_record([
            f.kind.as_str().to_owned(),
            opt(f.sid.as_ref().map(ToString::to_string)),
            opt(f.account_sid.as_ref().map(ToString::to_string)),
            f.formats
                .iter()
                .map(|f| f.ext())
                .collect::<Vec<_>>()
                .join(" "),
            f.keys.join(" "),
            opt(f.end_time.map(|t| t.to_string())),
            opt(f.incident.clone()),
            opt(f.size.map(|s| s.to_string())),
            opt(f.expected_min_size.map(|s| s.to_string())),
            f.detail.clone(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn text(report: &Report) -> String {
    let s = &report.summary;
    let c = &s.counts;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Loss audit of {}: {} recordings in the catalog, {} objects in storage ({} to {}).",
        s.scope,
        c.recordings,
        c.objects,
        s.started_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        s.finished_at.strftime("%H:%M:%S UTC"),
    );
    for kind in Kind::ALL {
        if kind == Kind::UnknownObject && !s.checked_unknown {
            let _ = writeln!(
                out,
                "  {:>8}  {} (not checked for a time range)",
                "-",
                kind.label()
            );
            continue;
        }
        let _ = writeln!(out, "  {:>8}  {}", c.of(kind), kind.label());
    }
    let unexplained: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.kind == Kind::MissingUnexplained)
        .collect();
    if !unexplained.is_empty() {
        let _ = writeln!(out, "\nUnexplained losses:");
        for f in unexplained.iter().take(50) {
            let _ = writeln!(
                out,
                "  {}  {}  call ended {}  ({})",
                f.sid.as_ref().map_or("?", |s| s.as_str()),
                f.account_sid.as_ref().map_or("?", |a| a.as_str()),
                f.end_time
                    .map_or("at an unknown time".into(), |t| t.to_string()),
                f.formats
                    .iter()
                    .map(|f| f.ext())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if unexplained.len() > 50 {
            let _ = writeln!(
                out,
                "  … and {} more (see --format json or csv)",
                unexplained.len() - 50
            );
        }
    }
    for b in &s.bursts {
        let _ = writeln!(
            out,
            "\nBurst: {} unexplained losses of calls ending {} to {} ({} account(s)). Draft incident {:?}:\n  {}",
            b.losses,
            b.first_end,
            b.last_end,
            b.accounts.len(),
            b.draft.id,
            b.draft.title,
        );
    }
    if c.missing_unexplained == 0 && c.size_mismatch == 0 && c.unknown_object == 0 {
        let _ = writeln!(out, "\nNo unexplained difference.");
    }
    out
}
