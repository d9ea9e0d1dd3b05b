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

from bench import machine, write_report

EXT = os.environ.get("SNAPSHOT_EXTENSION", "build/release/snapshot.duckdb_extension")
OUT = os.environ.get("BENCH_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-metadata.md"))


def median_ms(con, sql, reps=7):
    xs = []
    for _ in range(reps):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        xs.append((time.perf_counter() - t) * 1000)
    return statistics.median(xs), min(xs), max(xs)


def main():
    work = tempfile.mkdtemp(prefix="snapmeta-")
    lines = ["# Metadata benchmark", "", machine(), "", "| snapshots in repository | operation | median ms (min-max) |", "|---|---|---|"]
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
                               ("snapshot_tables()", "SELECT count(*) FROM snapshot_tables(NULL)")]:
                med, lo, hi = median_ms(con, sql)
                lines.append(f"| {target:,} | {label} | {med:.1f} ({lo:.1f}-{hi:.1f}) |")
            lines.append(f"| {target:,} | snapshots(), first call after new snapshots appear | {first:.1f} |")
        xs = []
        for i in range(5):
            t = time.perf_counter()
            con.execute(f"CALL snapshot_create('t', id := 'extra{i}')").fetchall()
            xs.append((time.perf_counter() - t) * 1000)
        lines.append(f"| 10,000 | snapshot_create of a 1-row table | {statistics.median(xs):.1f} ({min(xs):.1f}-{max(xs):.1f}) |")
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines += ["", "Target (issue 6): snapshots() with 10,000 snapshots <= 100 ms.", ""]
    write_report(lines, OUT)


if __name__ == "__main__":
    main()
