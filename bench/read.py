#!/usr/bin/env python3
"""Read benchmark: FROM 'bench@r', read_snapshot('r', 'bench') and a snapshot_mount view against
read_parquet on the same file — full scan, one column, and a 0.2% range filter on the sorted key
(with the bytes each read took from the file: /proc/self/io rchar, so row groups skipped show).
Warm: the file was read before in the process (the targets); fresh: the first read in a new
process, where the extension verifies the file's SHA-256 first. Sources alternate within each
repetition. Writes bench/results-read.md and results-read.json.

    BENCH_ROWS=1000000 python bench/read.py
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb

from common import EXT, ROWS, TABLE_SQL, machine, peak_rss_mb, reset_peak_rss, write_report

REPS = int(os.environ.get("BENCH_REPS", "7"))
# fast queries get more repetitions: their medians are otherwise at the mercy of a noisy millisecond
REPS_FOR = {"one column": 3 * REPS, "0.2% range filter": 5 * REPS}
FRESH_REPS = int(os.environ.get("BENCH_FRESH_REPS", "3"))
OUT = os.environ.get("BENCH_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-read.md"))

# 0.2% of the rows, by the sorted key, away from the file's start
LO, HI = ROWS // 100, ROWS // 100 + ROWS // 500
QUERIES = {
    "full scan": "SELECT sum(hash(COLUMNS(*))) FROM {src}",
    "one column": "SELECT sum(customer_id) FROM {src}",
    "0.2% range filter": "SELECT count(*), sum(amount) FROM {src} WHERE id BETWEEN %d AND %d" % (LO, HI),
}
TARGETS = {("at", "full scan"): 1.05, ("at", "one column"): 1.05, ("at", "0.2% range filter"): 1.2,
           ("read_snapshot", "full scan"): 1.25, ("read_snapshot", "one column"): 1.25}


def rchar():
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def fresh(db, snaps, sql):
    """Seconds of one query in a new process (the extension loaded before the clock starts)."""
    code = (
        "import duckdb, sys, time\n"
        f"con = duckdb.connect({db!r}, read_only=True, config={{'allow_unsigned_extensions': 'true'}})\n"
        f"con.execute(\"LOAD '{EXT}'\"); con.execute(\"SET snapshot_directory = '{snaps}'\")\n"
        "con.execute('SET enable_progress_bar = false')\n"
        "t = time.perf_counter(); con.execute(sys.argv[1]).fetchall(); print(time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, sql], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    work = tempfile.mkdtemp(prefix="snapread-", dir=os.environ.get("BENCH_DIR"))
    try:
        db = os.path.join(work, "r.duckdb")
        snaps = os.path.join(work, "snaps")
        con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{EXT}'")
        con.execute(f"SET snapshot_directory = '{snaps}'")
        con.execute(TABLE_SQL)
        con.execute("CALL snapshot_create('bench', id := 'r')")
        con.execute("CALL snapshot_mount('r', schema := 'mounted')")
        path = con.execute("SELECT path FROM snapshots()").fetchall()[0][0] + "/main.bench.parquet"
        groups = con.execute(f"SELECT count(DISTINCT row_group_id) FROM parquet_metadata('{path}')").fetchall()[0][0]
        can_match = con.execute(
            f"SELECT count(DISTINCT row_group_id) FROM parquet_metadata('{path}') WHERE path_in_schema = 'id' "
            f"AND stats_max::BIGINT >= {LO} AND stats_min::BIGINT <= {HI}").fetchall()[0][0]
        size = os.path.getsize(path)
        sources = {
            "read_parquet": f"read_parquet('{path}')",
            "at": "'bench@r'",
            "read_snapshot": "read_snapshot('r', 'bench')",
            "mount": "mounted.bench",
        }
        labels = {"read_parquet": "read_parquet", "at": "FROM 'bench@r'", "read_snapshot": "read_snapshot", "mount": "snapshot_mount view"}
        figures = {"rows": ROWS, "file_bytes": size, "row_groups": groups, "row_groups_matching": can_match, "queries": []}
        for name, q in QUERIES.items():
            times = {s: [] for s in sources}
            peaks = {s: 0.0 for s in sources}
            read_bytes = {}
            for s, src in sources.items():  # warm-up, and the bytes one run reads
                before = rchar()
                con.execute(q.format(src=src)).fetchall()
                read_bytes[s] = rchar() - before
            for r in range(REPS_FOR.get(name, REPS)):
                order = list(sources) if r % 2 == 0 else list(reversed(sources))
                for s in order:
                    reset_peak_rss()
                    t = time.perf_counter()
                    con.execute(q.format(src=sources[s])).fetchall()
                    times[s].append(time.perf_counter() - t)
                    peaks[s] = max(peaks[s], peak_rss_mb())
            figures["queries"].append({"query": name, "seconds": {s: statistics.median(v) for s, v in times.items()},
                                       "spread": {s: [min(v), max(v)] for s, v in times.items()},
                                       "bytes_read": read_bytes, "rss_mb": peaks})
        con.close()
        # the first read in a fresh process: read_parquet against the extension's reads
        fresh_rows = []
        for name in ("full scan", "one column"):
            q = QUERIES[name]
            got = {s: statistics.median(fresh(db, snaps, q.format(src=sources[s])) for _ in range(FRESH_REPS))
                   for s in ("read_parquet", "at", "read_snapshot")}
            fresh_rows.append({"query": name, "seconds": got})
        figures["fresh"] = fresh_rows
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# Read benchmark",
        "",
        machine(),
        "",
        f"{ROWS:,} rows x 8 columns in one ZSTD Parquet file of {size / 1e6:.0f} MB ({groups} row groups); median of {REPS}",
        f"repetitions ({REPS_FOR['one column']} for one column, {REPS_FOR['0.2% range filter']} for the filter) with the file read before in the",
        "process (the sources alternate within each repetition); ratio against read_parquet",
        "on the same file; in brackets the fastest and slowest repetition.",
        "",
        "| query | " + " | ".join(labels[s] for s in sources) + " | target |",
        "|---|" + "---|" * len(sources) + "---|",
    ]
    for fq in figures["queries"]:
        base = fq["seconds"]["read_parquet"]
        cells = []
        for s in sources:
            v = fq["seconds"][s]
            lo, hi = fq["spread"][s]
            cells.append(f"{v:.3f} s ({v / base:.2f}x) [{lo:.3f}-{hi:.3f}]")
        targets = ", ".join(f"{labels[s]} <= {t}x" for (s, q), t in TARGETS.items() if q == fq["query"])
        lines.append(f"| {fq['query']} | " + " | ".join(cells) + f" | {targets} |")
    flt = next(f for f in figures["queries"] if f["query"] == "0.2% range filter")
    lines += [
        "",
        f"Bytes read from the file by one run of the 0.2% range filter (`id BETWEEN {LO} AND {HI}`; {can_match} of {groups}",
        f"row groups can hold such ids by their statistics; the file is {size / 1e6:.0f} MB): "
        + ", ".join(f"{labels[s]} {flt['bytes_read'][s] / 1e6:.1f} MB" for s in sources)
        + ". read_parquet, the '@' read and the view skip the other row groups; read_snapshot, a C API v1 table",
        "function, gets no filters and reads every row group of the columns the query uses.",
        "",
        "Peak RSS of the process over the repetitions (MB): "
        + "; ".join(f"{fq['query']}: " + ", ".join(f"{labels[s]} {fq['rss_mb'][s]:.0f}" for s in sources) for fq in figures["queries"]),
        "",
        f"The first read in a fresh process (median of {FRESH_REPS} processes; the extension verifies the file's SHA-256 on",
        "its first read in a process, about 0.25 s for this file, before any row):",
        "",
        "| query | read_parquet | FROM 'bench@r' | read_snapshot |",
        "|---|---|---|---|",
    ]
    for fr in figures["fresh"]:
        b = fr["seconds"]["read_parquet"]
        lines.append(f"| {fr['query']} | {b:.3f} s | {fr['seconds']['at']:.3f} s ({fr['seconds']['at'] / b:.2f}x) | "
                     f"{fr['seconds']['read_snapshot']:.3f} s ({fr['seconds']['read_snapshot'] / b:.2f}x) |")
    lines += [
        "",
        "`FROM 'bench@r'` becomes DuckDB's own `query()` over `read_parquet` of the snapshot's file (a replacement scan),",
        "so DuckDB plans it like read_parquet itself. read_snapshot is a table function: its rows come from a query",
        "of its own on a reader connection, each chunk passing through that query's result buffer; aggregates run it",
        "on every thread (each thread reads a part of the file), ordered results on one. A mounted view is plain",
        "read_parquet. Peak RSS is the whole Python process's (the database and its buffers included).",
        "",
    ]
    write_report(lines, OUT, figures)


if __name__ == "__main__":
    main()
