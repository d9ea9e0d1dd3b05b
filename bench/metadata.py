#!/usr/bin/env python3
"""Metadata benchmark: snapshots() and snapshot_tables() with 10, 1,000 and 10,000 snapshots in the
repository, and snapshot_create of a 1-row table in a repository holding 10,000 snapshots.
Writes bench/results-metadata.md. The repository is filled by copying one real snapshot folder
(with its id rewritten), which is what 10,000 snapshot_create calls would leave behind."""
import os
import shutil
import statistics
import tempfile
import time

import duckdb

from common import EXT, machine, peak_rss_mb, reset_peak_rss, write_report

OUT = os.environ.get("BENCH_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-metadata.md"))


def median_ms(con, sql, reps=7):
    """Median, min and max milliseconds, and the peak RSS (MB) of the process over the repetitions."""
    xs = []
    reset_peak_rss()
    for _ in range(reps):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        xs.append((time.perf_counter() - t) * 1000)
    return statistics.median(xs), min(xs), max(xs), peak_rss_mb()


def main():
    work = tempfile.mkdtemp(prefix="snapmeta-")
    lines = ["# Metadata benchmark", "", machine(), "", "| snapshots in repository | operation | median ms (min-max) | peak RSS of the process |", "|---|---|---|---|"]
    figures = {"listing": [], "create_in_10000": None}
    try:
        con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{os.path.abspath(EXT)}'")
        con.execute(f"SET snapshot_directory = '{work}'")
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        con.execute("CALL snapshot_create('t', id := 'seed')")
        repo = os.path.join(work, "memory")
        seed = os.path.join(repo, "seed")
        meta = open(os.path.join(seed, "metadata.json")).read()
        have = 1
        for target in (10, 1000, 10000):
            while have < target:
                d = os.path.join(repo, f"s{have:06d}")
                os.mkdir(d)
                shutil.copy(os.path.join(seed, "main.t.parquet"), d)
                with open(os.path.join(d, "metadata.json"), "w") as f:
                    f.write(meta.replace('"seed"', f'"s{have:06d}"'))
                have += 1
            first = median_ms(con, "SELECT count(*) FROM snapshots()", reps=1)[0]
            for label, sql in [("snapshots()", "SELECT count(*) FROM snapshots()"),
                               ("snapshots(), every column read", "SELECT max(length(s::VARCHAR)) FROM snapshots() s"),
                               ("snapshot_tables()", "SELECT count(*) FROM snapshot_tables('*')")]:
                med, lo, hi, rss = median_ms(con, sql)
                lines.append(f"| {target:,} | {label} | {med:.1f} ({lo:.1f}-{hi:.1f}) | {rss:.0f} MB |")
                figures["listing"].append({"snapshots": target, "operation": label, "ms": med, "rss_mb": rss})
            lines.append(f"| {target:,} | snapshots(), first call after new snapshots appear | {first:.1f} | |")
        xs = []
        reset_peak_rss()
        for i in range(5):
            t = time.perf_counter()
            con.execute(f"CALL snapshot_create('t', id := 'extra{i}')").fetchall()
            xs.append((time.perf_counter() - t) * 1000)
        rss = peak_rss_mb()
        lines.append(f"| 10,000 | snapshot_create of a 1-row table | {statistics.median(xs):.1f} ({min(xs):.1f}-{max(xs):.1f}) | {rss:.0f} MB |")
        figures["create_in_10000"] = {"ms": statistics.median(xs), "rss_mb": rss}
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines += ["", "Target (issue 6): snapshots() with 10,000 snapshots <= 100 ms.", ""]
    write_report(lines, OUT, figures)


if __name__ == "__main__":
    main()
