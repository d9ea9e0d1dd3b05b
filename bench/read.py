#!/usr/bin/env python3
"""Read benchmark: read_snapshot (in order, and in parallel with preserve_insertion_order = false)
and a snapshot_mount view against read_parquet on the same file — full scan, one-column scan,
selective filter. Writes bench/results-read.md."""
import os
import shutil
import statistics
import tempfile
import time

import duckdb

from common import EXT, ROWS, TABLE_SQL, machine, peak_rss_mb, reset_peak_rss, write_report

REPS = int(os.environ.get("BENCH_REPS", "5"))
OUT = os.environ.get("BENCH_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-read.md"))


def median(con, sql):
    """Median seconds; the process's peak RSS over the repetitions goes to PEAKS."""
    xs = []
    reset_peak_rss()
    for _ in range(REPS):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        xs.append(time.perf_counter() - t)
    PEAKS.append(peak_rss_mb())
    return statistics.median(xs)


PEAKS = []


def main():
    work = tempfile.mkdtemp(prefix="snapread-")
    try:
        con = duckdb.connect(os.path.join(work, "r.duckdb"), config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{os.path.abspath(EXT)}'")
        con.execute(f"SET snapshot_directory = '{work}/snaps'")
        con.execute(TABLE_SQL)
        con.execute("CALL snapshot_create('bench', id := 'r')")
        con.execute("CALL snapshot_mount('r', schema := 'mounted')")
        path = con.execute("SELECT path FROM snapshots()").fetchall()[0][0] + "/main.bench.parquet"
        parquet = f"read_parquet('{path}')"
        queries = {
            "full scan": "SELECT sum(hash(COLUMNS(*))) FROM {src}",
            "one column": "SELECT sum(customer_id) FROM {src}",
            "selective filter (0.2% of ids)": "SELECT count(*), sum(amount) FROM {src} WHERE id BETWEEN 100 AND 20000",
        }
        lines = [
            "# Read benchmark",
            "",
            machine(),
            "",
            f"{ROWS:,} rows x 8 columns; {REPS} repetitions, median seconds; ratio against read_parquet on the same file.",
            "",
            "| query | read_parquet | read_snapshot | read_snapshot, preserve_insertion_order = false | snapshot_mount view | peak RSS (parquet / snapshot / unordered / view) |",
            "|---|---|---|---|---|---|",
        ]
        figures = {"rows": ROWS, "queries": []}
        for name, q in queries.items():
            base = median(con, q.format(src=parquet))
            con.execute("SET preserve_insertion_order = true")
            ordered = median(con, q.format(src="read_snapshot('r', 'bench')"))
            con.execute("SET preserve_insertion_order = false")
            parallel = median(con, q.format(src="read_snapshot('r', 'bench')"))
            con.execute("SET preserve_insertion_order = true")
            view = median(con, q.format(src="mounted.bench"))
            peaks = PEAKS[-4:]
            lines.append(
                f"| {name} | {base:.3f} | {ordered:.3f} ({ordered / base:.2f}x) | {parallel:.3f} ({parallel / base:.2f}x) "
                f"| {view:.3f} ({view / base:.2f}x) | {' / '.join(f'{p:.0f}' for p in peaks)} MB |"
            )
            figures["queries"].append({"query": name, "read_parquet": base, "read_snapshot": ordered, "unordered": parallel,
                                       "mount_view": view, "rss_mb": peaks})
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines += [
        "",
        "read_snapshot cannot receive filters (the C API v1 has no filter pushdown for table functions) and runs",
        "its scan on reader connections of its own: each thread's part of the file is a query whose chunks are",
        "copied once into a streaming buffer before DuckDB sees them. A mounted view is plain read_parquet and",
        "gets DuckDB's full optimizer. Peak RSS is the whole Python process's (the database and its buffers included).",
        "",
    ]
    write_report(lines, OUT, figures)


if __name__ == "__main__":
    main()
