#!/usr/bin/env python3
"""Checks a loss-audit benchmark run (bench/audit/run) and writes its results:
the audit's report against what was seeded, the figures, the goal, the
machine. Writes OUT_JSON and OUT_MD; exits 1 when a check failed (the
results are written all the same, saying so)."""
import argparse, json, os


def load(raw, name):
    with open(os.path.join(raw, name + ".json")) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--missing", required=True)
    ap.add_argument("--one-account", required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--goal-s", type=float, required=True)
    ap.add_argument("--out-json", required=True)
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--meta", action="append", default=[])
    a = ap.parse_args()
    meta = dict(m.split("=", 1) for m in a.meta)
    rows, accounts = int(meta["rows"]), int(meta["accounts"])
    with open(a.missing) as f:
        missing = {l.strip() for l in f if l.strip()}
    present = rows - len(missing)
    one_index = int(a.one_account[2:], 16)
    missing_one = {s for s in missing if int(s[2:], 16) % accounts == one_index}

    r = {n: load(a.raw, n) for n in ("import", "seed", "seed-rest", "list-before", "list-after",
                                     "scan", "audit", "audit-one-account", "audit-clean",
                                     "audit-clean-one-account")}
    report = load(a.raw, "audit-report")
    report_one = load(a.raw, "audit-one-account-report")
    report_clean = load(a.raw, "audit-clean-report")
    report_clean_one = load(a.raw, "audit-clean-one-account-report")
    report_bytes = os.path.getsize(os.path.join(a.raw, "audit-report.json"))

    checks = []

    def check(what, ok, got):
        checks.append({"check": what, "ok": bool(ok), "got": got})

    def audit_checks(label, run, rep, n_rows, n_objects, want_missing):
        c = rep.get("counts", {})
        sids = {f.get("sid") for f in rep.get("findings", []) if f.get("kind") == "missing_unexplained"}
        if want_missing:
            check(f"{label}: exit status 3 (unexplained losses above --max-unexplained 0)",
                  run.get("exit_code") == 3, run.get("exit_code"))
        else:
            check(f"{label}: exit status 0", run.get("exit_code") == 0, run.get("exit_code"))
        check(f"{label}: {n_rows} catalog recordings read", c.get("recordings") == n_rows,
              c.get("recordings"))
        check(f"{label}: {n_objects} objects listed", c.get("objects") == n_objects, c.get("objects"))
        check(f"{label}: missing_unexplained = the {len(want_missing)} left out, by sid",
              c.get("missing_unexplained") == len(want_missing) and sids == want_missing,
              {"count": c.get("missing_unexplained"), "not_reported": len(want_missing - sids),
               "reported_wrongly": len(sids - want_missing)})
        for kind in ("missing_explained", "unknown_object", "size_mismatch", "deleted_but_stored"):
            check(f"{label}: 0 {kind}", c.get(kind) == 0, c.get(kind))

    audit_checks("audit", r["audit"], report, rows, present, missing)
    audit_checks("one account", r["audit-one-account"], report_one, rows // accounts,
                 rows // accounts - len(missing_one), missing_one)
    audit_checks("nothing missing", r["audit-clean"], report_clean, rows, rows, set())
    audit_checks("nothing missing, one account", r["audit-clean-one-account"], report_clean_one,
                 rows // accounts, rows // accounts, set())
    for n in ("list-before", "list-after"):
        check(f"{n}: {present} objects, in key order",
              r[n]["objects"] == present and r[n]["out_of_order"] == 0,
              {"objects": r[n]["objects"], "out_of_order": r[n]["out_of_order"]})
    check(f"catalog scan: {rows} rows", r["scan"]["rows"] == rows, r["scan"]["rows"])
    check(f"seed: {present} objects uploaded", r["seed"]["objects"] == present, r["seed"]["objects"])
    check(f"then the {len(missing)} left out", r["seed-rest"]["objects"] == len(missing),
          r["seed-rest"]["objects"])

    au, one = r["audit"], r["audit-one-account"]
    cl, cl_one = r["audit-clean"], r["audit-clean-one-account"]
    # Flat memory: with nothing to report, the whole audit's RSS levels off:
    # its highest sample in the second half of the run is less than 2 MiB
    # above the first half's (a run shorter than 5 s cannot tell).
    tenths = cl["rss_by_tenth_mib"]
    second_half_growth = round(max(tenths[5:]) - max(tenths[:5]), 3)
    flat = {"goal": "flat memory: the RSS of the audit with nothing to find grows by < 2 MiB "
                    "from the first half of its run to the second",
            "second_half_growth_mib": second_half_growth,
            "pass": second_half_growth < 2.0 if cl["wall_s"] >= 5 else None}
    wall = au["wall_s"]
    listing = min(r["list-before"]["seconds"], r["list-after"]["seconds"])
    scan = r["scan"]["seconds"]
    weed_cpu = au.get("watch", {}).get("procs", {}).get("weed", {}).get("cpu_pct")
    growth = au["peak_rss_mib"] - one["peak_rss_mib"]
    figures = {
        "audit_wall_s": wall,
        "audit_recordings_per_s": round(rows / wall, 1),
        "audit_peak_rss_mib": au["peak_rss_mib"],
        "audit_rss_by_tenth_mib": au["rss_by_tenth_mib"],
        "audit_cpu_pct": au["cpu_pct"],
        "audit_user_s": au["user_s"],
        "audit_sys_s": au["sys_s"],
        "weed_cpu_pct_during_audit": weed_cpu,
        "machine_cpu_pct_during_audit": au.get("watch", {}).get("machine_cpu_pct"),
        "audit_report_bytes": report_bytes,
        "audit_bursts_proposed": len(report.get("bursts", [])),
        "clean_audit_wall_s": cl["wall_s"],
        "clean_audit_peak_rss_mib": cl["peak_rss_mib"],
        "clean_audit_rss_by_tenth_mib": tenths,
        "clean_one_account_peak_rss_mib": cl_one["peak_rss_mib"],
        "clean_peak_rss_growth_mib_for_49x_more_rows": round(cl["peak_rss_mib"] - cl_one["peak_rss_mib"], 3),
        "one_account_wall_s": one["wall_s"],
        "one_account_peak_rss_mib": one["peak_rss_mib"],
        "peak_rss_growth_mib_for_49x_more_rows": round(growth, 3),
        "listing_alone_s": listing,
        "listing_alone_s_before_after": [r["list-before"]["seconds"], r["list-after"]["seconds"]],
        "listing_objects_per_s": round(present / listing, 1),
        "weed_cpu_pct_during_listing": r["list-before"].get("watch", {}).get("procs", {}).get("weed", {}).get("cpu_pct"),
        "catalog_scan_alone_s": scan,
        "ratio_audit_to_listing": round(wall / listing, 3),
        "ratio_audit_to_slower_side": round(wall / max(listing, scan), 3),
        "ratio_audit_to_both_sides_in_turn": round(wall / (listing + scan), 3),
        "import_s": r["import"]["seconds"],
        "import_rows_per_s": round(rows / r["import"]["seconds"], 1),
        "upload_s": r["seed"]["seconds"],
        "upload_objects_per_s": r["seed"]["objects_per_s"],
        "upload_retries": r["seed"]["retries"],
    }
    goal = {"goal": f"audit of {rows} rows end to end < {a.goal_s:g} s", "value_s": wall,
            "pass": wall < a.goal_s}
    ok = all(c["ok"] for c in checks)
    result = {"date": a.date, "machine": meta, "goal": goal, "memory_goal": flat, "checks_passed": ok,
              "checks": checks, "figures": figures, "raw": r}
    with open(a.out_json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")

    pf = lambda b: "pass" if b else "**FAIL**"
    m = meta
    md = [
        f"# Loss-audit benchmark, {a.date}",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory']}, kernel {m['kernel']}; {m['rustc']}; "
        f"SeaweedFS {m['seaweedfs']} (`weed mini`, one process); gateway {m['gateway']}. "
        f"Load average at the start: {m['loadavg_at_start']}. Everything on one machine, loopback.",
        "",
        f"{rows:,} catalog rows (SQLite, `import`), one MP3 each, over {accounts} accounts; "
        f"{present:,} objects of 64 bytes in the bucket, the other {len(missing):,} (1 %, a seeded "
        f"random sample) left out.",
        "",
        "| measure | figure | goal | result |",
        "|---|---:|---|---|",
        f"| `audit --format json`, end to end (process start to exit) | **{wall:.2f} s** "
        f"({rows / wall:,.0f} recordings/s) | < {a.goal_s:g} s | {pf(goal['pass'])} |",
        f"| its peak RSS (kernel's `ru_maxrss`) | {au['peak_rss_mib']:.1f} MiB | | |",
        f"| the same audit once the left-out objects are uploaded (nothing to find) | "
        f"{cl['wall_s']:.2f} s, peak RSS {cl['peak_rss_mib']:.1f} MiB; second half of its run: "
        f"{second_half_growth:+.1f} MiB over the first half | flat | "
        f"{'too short to tell' if flat['pass'] is None else pf(flat['pass'])} |",
        f"| … of one account ({rows // accounts:,} rows) | peak RSS {cl_one['peak_rss_mib']:.1f} MiB "
        f"(the whole one: {cl['peak_rss_mib'] - cl_one['peak_rss_mib']:+.1f} MiB for {accounts - 1}× more) | | |",
        f"| the same audit of one account ({rows // accounts:,} rows) | {one['wall_s']:.2f} s, "
        f"peak RSS {one['peak_rss_mib']:.1f} MiB | | |",
        f"| listing the bucket alone (`ListObjectsV2`, pages of 1,000, one at a time) | "
        f"{listing:.2f} s ({present / listing:,.0f} objects/s; before and after the audit: "
        f"{r['list-before']['seconds']:.2f} s, {r['list-after']['seconds']:.2f} s) | | |",
        f"| reading the catalog alone (the audit's keyset query, pages of {r['scan']['page']:,}, "
        f"Python's sqlite3) | {scan:.2f} s | | |",
        f"| audit ÷ listing alone | **{wall / listing:.2f}×** | | |",
        f"| audit ÷ (listing + catalog, one after the other) | {wall / (listing + scan):.2f}× | | |",
        f"| CPU during the audit: gateway, SeaweedFS, whole machine (% of one core) | "
        f"{au['cpu_pct']:.0f} %, {weed_cpu or 0:.0f} %, "
        f"{au.get('watch', {}).get('machine_cpu_pct') or 0:.0f} % | | |",
        "",
        f"RSS, highest sample in each tenth of the run (MiB): the audit with "
        f"{len(missing):,} findings {', '.join('%.0f' % v if v else '–' for v in au['rss_by_tenth_mib'])}; "
        f"with nothing to find {', '.join('%.0f' % v if v else '–' for v in tenths)}. "
        f"Peak RSS from one account to all {accounts} with the findings: {growth:+.1f} MiB "
        f"({len(missing) - len(missing_one):,} more findings, kept until the report is written, "
        f"and the report itself).",
        "",
        f"Its JSON report: {report_bytes / 1e6:.1f} MB, {len(report.get('bursts', []))} loss bursts "
        f"proposed (random losses over a year of calls: clusters of 5 within 30 min happen by chance).",
        "",
        f"Seeding (not timed by the goal): import {r['import']['seconds']:.1f} s "
        f"({rows / r['import']['seconds']:,.0f} rows/s); upload {r['seed']['seconds']:.1f} s "
        f"({r['seed']['objects_per_s']:,.0f} objects/s, {r['seed']['concurrency']} in flight, "
        f"{r['seed']['retries']} retries).",
        "",
        f"Checks ({'all passed' if ok else 'SOME FAILED'}):",
        "",
    ]
    md += [f"- {'ok' if c['ok'] else '**FAILED**'}: {c['check']}" + ("" if c["ok"] else f" (got {c['got']})")
           for c in checks]
    with open(a.out_md, "w") as f:
        f.write("\n".join(md) + "\n")
    raise SystemExit(0 if ok else 1)


main()
