#!/usr/bin/env python3
"""Builds bench/results.md (every headline figure against its target, with the machine it ran on)
and bench/results.png (the chart) from the figures the benchmarks wrote beside their pages:
results-suite.json, results-read.json, results-metadata.json, results-incremental.json,
results-s3.json, results-schedule.json."""
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results.md")
CHART = os.path.join(HERE, "results.png")


def load(name):
    path = os.path.join(HERE, f"results-{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def med(rs, key="seconds"):
    return statistics.median(r[key] for r in rs)


def ratio(group, a, b, key="seconds"):
    return med(group[a], key) / med(group[b], key)


def verdict(value, target):
    return "met" if value <= target else "**missed**"


def headline(suite, read, meta, incr):
    rows = []
    if suite:
        for res in suite["sizes"]:
            n = f"{res['rows']:,} rows"
            c = ratio(res["create"], "snapshot_create", "COPY TO parquet (ZSTD)")
            r = ratio(res["restore"], "snapshot_restore", "CREATE TABLE AS read_parquet")
            rows.append((f"create / COPY TO parquet (ZSTD), {n}", f"{c:.2f}x", "<= 1.10x", verdict(c, 1.10)))
            rows.append((f"restore / CREATE TABLE AS read_parquet, {n}", f"{r:.2f}x", "<= 1.10x", verdict(r, 1.10)))
            for q in ("full scan", "one column", "selective filter"):
                for src in ("FROM 't@id'", "read_snapshot"):
                    if src in res["read"][q]:
                        x = ratio(res["read"][q], src, "read_parquet")
                        rows.append((f"{src} / read_parquet, {q}, {n}, first read in a fresh process (checksum verified)",
                                     f"{x:.2f}x", "(targets: warm, below)", ""))
        big = max(suite["sizes"], key=lambda r: r["rows"])
        n = f"{big['rows']:,} rows"
        dc = med(big["create"]["snapshot_create"], "rss_mb") - med(big["create"]["COPY TO parquet (ZSTD)"], "rss_mb")
        dr = med(big["restore"]["snapshot_restore"], "rss_mb") - med(big["restore"]["CREATE TABLE AS read_parquet"], "rss_mb")
        rows.append((f"peak RSS, create - COPY, {n}", f"{dc:+.0f} MB", "<= +1024 MB", verdict(dc, 1024)))
        rows.append((f"peak RSS, restore - CREATE TABLE AS, {n}", f"{dr:+.0f} MB", "<= +1024 MB", verdict(dr, 1024)))
        many = suite.get("many_tables")
        if many:
            t = f"{suite['tables']} tables x {suite['table_rows']:,} rows"
            c = ratio(many["create"], "snapshot_create(NULL)", "EXPORT DATABASE (parquet, ZSTD)")
            r = ratio(many["restore"], "snapshot_restore(id, '*') into a fresh file", "IMPORT DATABASE (fresh file)")
            rows.append((f"create / EXPORT DATABASE, {t}", f"{c:.2f}x", "(no target)", ""))
            rows.append((f"restore / IMPORT DATABASE, {t}", f"{r:.2f}x", "(no target)", ""))
    if read:
        targets = {("at", "full scan"): 1.05, ("at", "one column"): 1.05, ("at", "0.2% range filter"): 1.2,
                   ("read_snapshot", "full scan"): 1.25, ("read_snapshot", "one column"): 1.25}
        names = {"at": "FROM 't@id'", "read_snapshot": "read_snapshot", "mount": "snapshot_mount view"}
        for q in read["queries"]:
            base = q["seconds"]["read_parquet"]
            for src, label in names.items():
                x = q["seconds"][src] / base
                t = targets.get((src, q["query"]))
                rows.append((f"{label} / read_parquet, {q['query']}, {read['rows']:,} rows, warm", f"{x:.2f}x",
                             f"<= {t}x" if t else "(no target)", verdict(x, t) if t else ""))
            if q["query"] == "0.2% range filter":
                b = q["bytes_read"]
                rows.append((f"bytes read by the 0.2% range filter ({read['row_groups_matching']} of {read['row_groups']} row groups can match)",
                             f"t@id {b['at'] / 1e6:.1f} MB, read_parquet {b['read_parquet'] / 1e6:.1f} MB, read_snapshot {b['read_snapshot'] / 1e6:.1f} MB of {read['file_bytes'] / 1e6:.0f} MB",
                             "skips row groups", verdict(b["at"], 1.5 * b["read_parquet"] + 1)))
    if meta:
        for m in meta["listing"]:
            if m["snapshots"] == 10000 and m["operation"].startswith("snapshots()"):
                rows.append((f"{m['operation']}, 10,000 snapshots", f"{m['ms']:.0f} ms", "<= 100 ms", verdict(m["ms"], 100)))
            if m["snapshots"] == 10000 and m["operation"] == "snapshot_tables()":
                rows.append(("snapshot_tables(), 10,000 snapshots", f"{m['ms']:.0f} ms", "(no target)", ""))
        if meta.get("create_in_10000"):
            rows.append(("snapshot_create of a 1-row table, 10,000 snapshots", f"{meta['create_in_10000']['ms']:.0f} ms", "(no target)", ""))
    if incr:
        for mode, f in incr["modes"].items():
            incr_days = f["day_s"][1:]
            rows.append((f"incremental, unchanged / full snapshot ({mode})", f"{f['unchanged_s'] / f['full_s']:.0%}", "<= 10%", verdict(f["unchanged_s"] / f["full_s"], 0.10)))
            if "unchanged_hashed_s" in f:
                h = f["unchanged_hashed_s"] / f["full_s"]
                rows.append((f"incremental, unchanged table in a database changed elsewhere (hashed) / full snapshot ({mode})", f"{h:.0%}", "<= 10%", verdict(h, 0.10)))
            rows.append((f"incremental, 1% changed / full snapshot ({mode})", f"{statistics.median(incr_days) / f['full_s']:.0%}", "<= 25%",
                         verdict(statistics.median(incr_days) / f["full_s"], 0.25)))
            rows.append((f"incremental, 10% changed / full snapshot ({mode})", f"{f['ten_percent_s'] / f['full_s']:.0%}", "(no target)", ""))
            rows.append((f"repository after {incr['days']} days / one full snapshot ({mode})", f"{f['chain_bytes'] / f['full_bytes']:.2f}x", "<= 1.5x",
                         verdict(f["chain_bytes"] / f["full_bytes"], 1.5)))
            rows.append((f"FROM 't@day{incr['days']}' / FROM 't@full copy' ({mode})", f"{f['read_chain_s'] / f['read_full_s']:.2f}x", "<= 1.5x",
                         verdict(f["read_chain_s"] / f["read_full_s"], 1.5)))
            if "read_snapshot_chain_s" in f:
                rows.append((f"read_snapshot day {incr['days']} / full copy ({mode})", f"{f['read_snapshot_chain_s'] / f['read_snapshot_full_s']:.2f}x",
                             "(no target)", ""))
            rows.append((f"snapshot_restore day {incr['days']} / full copy ({mode})", f"{f['restore_chain_s'] / f['restore_full_s']:.2f}x", "<= 1.5x",
                         verdict(f["restore_chain_s"] / f["restore_full_s"], 1.5)))
    s3 = load("s3")
    if s3:
        n = f"{s3['rows']:,} rows"
        mid = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
        c = mid(s3["create_s3_s"]) / mid(s3["create_local_s"])
        first = mid(s3["read_first_s"]) / s3["read_local_s"]
        second = mid(s3["read_second_s"]) / s3["read_local_s"]
        moved = s3["copied_bytes"] / s3["chain_bytes"]
        rows.append((f"snapshot_create into S3 / into a local folder, {n}", f"{c:.2f}x", "<= 1.5x", verdict(c, 1.5)))
        rows.append((f"first read from S3 / local read, {n}", f"{first:.2f}x", "<= 2x", verdict(first, 2)))
        rows.append((f"second read from S3 (cached) / local read, {n}", f"{second:.2f}x", "<= 1.1x", verdict(second, 1.1)))
        rows.append(("snapshot_copy of a 30-day chain to S3: bytes moved / bytes held", f"{moved:.2f}x", "<= 1.1x", verdict(moved, 1.1)))
        rows.append(("snapshots() over 1,000 snapshots in S3, first use", f"{s3['list_first_s'] * 1000:.0f} ms", "<= 1000 ms", verdict(s3["list_first_s"], 1.0)))
        rows.append(("snapshots() over 1,000 snapshots in S3, unchanged", f"{s3['list_again_s'] * 1000:.0f} ms", "<= 100 ms", verdict(s3["list_again_s"], 0.1)))
    sched = load("schedule")
    if sched:
        for r in sched["all_changed"]:
            rows.append((f"snapshot of a table whose every row changed / COPY TO parquet (ZSTD), {r['rows']:,} rows",
                         f"{r['ratio']:.2f}x", "<= 1.10x", verdict(r["ratio"], 1.10)))
        if sched.get("scheduled"):
            sh = sched["scheduled"]
            rows.append((f"scheduled snapshots every minute, {sh['rows']:,} rows unchanged: share of one core", f"{sh['share']:.1%}", "<= 2%",
                         verdict(sh["share"], 0.02)))
    return rows


def ratio_bars(ax, labels, values, targets, title):
    """Horizontal bars of ratios: green when the target (a tick) is met, red when missed, grey without one."""
    colors = ["C7" if t is None else ("C2" if v <= t else "C3") for v, t in zip(values, targets)]
    ax.barh(range(len(values)), values, color=colors)
    ticks = [(t, i) for i, t in enumerate(targets) if t is not None]
    ax.scatter([t for t, _ in ticks], [i for _, i in ticks], marker="|", s=200, color="black", label="target")
    ax.set_yticks(range(len(values)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("ratio")
    ax.legend(fontsize=7)


def chart(suite, read, meta, incr):
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        print("matplotlib not installed: no chart (make bench installs it)")
        return False
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    (t_ax, m_ax, r_ax), (d_ax, i_ax, s_ax) = axes
    if suite:
        sizes = suite["sizes"]
        xs = [r["rows"] for r in sizes]
        series = [
            ("snapshot_create", lambda r: r["create"]["snapshot_create"], "C0", "-"),
            ("COPY TO parquet", lambda r: r["create"]["COPY TO parquet (ZSTD)"], "C0", "--"),
            ("snapshot_restore", lambda r: r["restore"]["snapshot_restore"], "C1", "-"),
            ("CTAS read_parquet", lambda r: r["restore"]["CREATE TABLE AS read_parquet"], "C1", "--"),
            ("read_snapshot full scan", lambda r: r["read"]["full scan"]["read_snapshot"], "C2", "-"),
            ("read_parquet full scan", lambda r: r["read"]["full scan"]["read_parquet"], "C2", "--"),
        ]
        for label, get, color, style in series:
            t_ax.plot(xs, [med(get(r)) for r in sizes], style, color=color, marker="o", label=label)
            m_ax.plot(xs, [med(get(r), "rss_mb") for r in sizes], style, color=color, marker="o", label=label)
        for ax, title, unit in ((t_ax, "time by table size", "seconds"), (m_ax, "peak RSS by table size", "MB")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("rows")
            ax.set_ylabel(unit)
            ax.set_title(title)
            ax.grid(True, which="both", alpha=0.3)
        t_ax.legend(fontsize=7)
        # ratios against the built-in, per size, with the targets
        labels, values, targets = [], [], []
        for r in sizes:
            tag = f"{r['rows'] // 1_000_000}M"
            for name, group, a, b, target in (
                ("create", r["create"], "snapshot_create", "COPY TO parquet (ZSTD)", 1.10),
                ("restore", r["restore"], "snapshot_restore", "CREATE TABLE AS read_parquet", 1.10),
                ("read_snapshot full, fresh", r["read"]["full scan"], "read_snapshot", "read_parquet", None),
                ("read_snapshot 1 col, fresh", r["read"]["one column"], "read_snapshot", "read_parquet", None),
                ("t@id full, fresh", r["read"]["full scan"], "FROM 't@id'", "read_parquet", None),
                ("t@id 1 col, fresh", r["read"]["one column"], "FROM 't@id'", "read_parquet", None),
            ):
                if a not in group:
                    continue
                labels.append(f"{name} {tag}")
                values.append(ratio(group, a, b))
                targets.append(target)
        many = suite.get("many_tables")
        if many:
            for name, group, a, b in (
                ("50 tables: create / EXPORT DB", many["create"], "snapshot_create(NULL)", "EXPORT DATABASE (parquet, ZSTD)"),
                ("50 tables: restore / IMPORT DB", many["restore"], "snapshot_restore(id, '*') into a fresh file", "IMPORT DATABASE (fresh file)"),
            ):
                labels.append(name)
                values.append(ratio(group, a, b))
                targets.append(None)
        if read:
            warm = {("at", "full scan"): 1.05, ("at", "one column"): 1.05, ("at", "0.2% range filter"): 1.2,
                    ("read_snapshot", "full scan"): 1.25, ("read_snapshot", "one column"): 1.25}
            for (src, q), t in warm.items():
                f = next(x for x in read["queries"] if x["query"] == q)
                labels.append(f"{'t@id' if src == 'at' else src} {q}, warm {read['rows'] // 1_000_000}M")
                values.append(f["seconds"][src] / f["seconds"]["read_parquet"])
                targets.append(t)
        ratio_bars(r_ax, labels, values, targets, "extension / built-in (green: met, red: missed, grey: no target)")
        r_ax.axvline(1.0, color="grey", lw=0.8)
    if meta:
        ops = sorted({m["operation"] for m in meta["listing"]})
        for op in ops:
            pts = sorted((m["snapshots"], m["ms"]) for m in meta["listing"] if m["operation"] == op)
            d_ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=op)
        if meta.get("create_in_10000"):
            d_ax.scatter([10000], [meta["create_in_10000"]["ms"]], marker="*", s=120, color="black", label="snapshot_create, 1-row table")
        d_ax.axhline(100, color="C3", ls=":", label="target for snapshots(): 100 ms")
        d_ax.set_xscale("log")
        d_ax.set_yscale("log")
        d_ax.set_xlabel("snapshots in the repository")
        d_ax.set_ylabel("ms")
        d_ax.set_title("metadata")
        d_ax.grid(True, which="both", alpha=0.3)
        d_ax.legend(fontsize=7)
    if incr:
        for k, (mode, f) in enumerate(incr["modes"].items()):
            days = list(range(1, len(f["day_s"]) + 1))
            i_ax.plot(days, f["day_s"], marker=".", color=f"C{k}", label=f"snapshot_create, 1% changed a day ({mode})")
            i_ax.axhline(f["full_s"], color=f"C{k}", ls="--", lw=0.8, label=f"full snapshot ({mode})")
            i_ax.axhline(f["full_s"] * 0.25, color=f"C{k}", ls=":", lw=0.8, label=f"target 25% of full ({mode})")
        i_ax.set_xlabel("day (day 1: first, full snapshot)")
        i_ax.set_ylabel("seconds")
        i_ax.set_yscale("log")
        i_ax.set_title(f"incremental: {incr['rows']:,} rows, {incr['days']} daily snapshots")
        i_ax.grid(True, which="both", alpha=0.3)
        i_ax.legend(fontsize=7)
        labels, values, targets = [], [], []
        for mode, f in incr["modes"].items():
            for name, v, t in (
                ("storage", f["chain_bytes"] / f["full_bytes"], 1.5),
                ("unchanged", f["unchanged_s"] / f["full_s"], 0.10),
                ("1% changed", statistics.median(f["day_s"][1:]) / f["full_s"], 0.25),
                ("10% changed", f["ten_percent_s"] / f["full_s"], None),
                ("t@day30 / t@full", f["read_chain_s"] / f["read_full_s"], 1.5),
                ("restore day 30", f["restore_chain_s"] / f["restore_full_s"], 1.5),
            ):
                labels.append(f"{name} ({mode})")
                values.append(v)
                targets.append(t)
        ratio_bars(s_ax, labels, values, targets, "incremental, relative to a full snapshot (green: met)")
    fig.suptitle("snapshot extension vs DuckDB built-ins (solid: extension, dashed: built-in)")
    fig.tight_layout()
    fig.savefig(CHART, dpi=100)
    print(f"chart: {CHART}")
    return True


def main():
    suite, read, meta, incr = load("suite"), load("read"), load("metadata"), load("incremental")
    machines = sorted({d["machine"] for d in (suite, read, meta, incr) if d})
    lines = ["# Benchmark results", ""] + machines + [
        "",
        "`make bench` builds the extension and runs every benchmark (about 90 minutes on this machine),",
        "then this page and its chart. Each figure below is a ratio against DuckDB's built-in doing the same",
        "work in the same run (alternating, several repetitions, medians); the pages linked at the end hold",
        "every time, spread, throughput and peak RSS, and say why each missed target is missed.",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in headline(suite, read, meta, incr)]
    made = [f"{name} at {d.get('commit', '?')}" for name, d in (("suite", suite), ("read", read), ("metadata", meta), ("incremental", incr)) if d]
    lines += ["", "Measured code: " + ", ".join(made) + "."]
    has_chart = chart(suite, read, meta, incr)
    lines += [""]
    if has_chart:
        lines += ["![benchmark chart](results.png)", ""]
    lines += [
        "Details:",
        "- [results-suite.md](results-suite.md): create, restore, read at 1M / 10M / 100M rows and a 50-table database,",
        "  each operation in a fresh process with its own peak RSS; scaling; why targets are missed.",
        "- [results-schedule.md](results-schedule.md): a snapshot of a table whose every row changed against COPY,",
        "  and the CPU cost of scheduled snapshots every minute.",
        "- [results-s3.md](results-s3.md): repositories in an S3-compatible bucket (create, first and cached reads,",
        "  snapshot_copy of a chain, listing), with the test server's own throughput.",
        "- [results-read.md](results-read.md): FROM 't@id', read_snapshot and snapshot_mount views against read_parquet, warm",
        "  and in a fresh process; bytes read by a selective filter.",
        "- [results-metadata.md](results-metadata.md): snapshots(), snapshot_tables(), snapshot_create with 10 to 10,000 snapshots.",
        "- [results-incremental.md](results-incremental.md): 30 daily snapshots with 1% changed, unchanged, 10% changed.",
        "",
    ]
    with open(OUT, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
