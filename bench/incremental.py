#!/usr/bin/env python3
"""Incremental benchmark: 30 daily snapshots of a table with 1% of its rows changed per day,
once with the changes scattered uniformly and once clustered in the newest rows; plus an
unchanged table, 10% changed, reading/restoring the 30th snapshot of the chain against a full
snapshot of the same rows, and diffing two neighbouring snapshots. Writes
bench/results-incremental.md.

    BENCH_ROWS=1000000 python bench/incremental.py
"""
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import duckdb

from common import EXT, ROWS, TABLE_SQL, machine, measured, timed, write_report

DAYS = int(os.environ.get("BENCH_DAYS", "30"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
OUT = os.environ.get("BENCH_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results-incremental.md"))

SCAN = ("SELECT count(*), sum(id), sum(customer_id), sum((amount * 100)::BIGINT), max(created_at), sum(length(name)), "
        "sum(length(token)), count(*) FILTER (WHERE flag), sum(length(note)) FROM {src}")


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0])


def med(xs):
    return statistics.median(xs)


def change(con, day, mode, fraction):
    """Changes `fraction` of the rows: scattered over the whole table, or among the newest."""
    every = int(round(1 / fraction))
    if mode == "scattered":
        con.execute(f"UPDATE bench SET customer_id = customer_id + 1, note = note || 'x' WHERE hash(id, {day}) % {every} = 0")
    else:
        n = int(ROWS * fraction)
        top = con.execute("SELECT max(id) FROM bench").fetchall()[0][0]
        # half new rows appended, half updates of the newest 5%
        con.execute(f"INSERT INTO bench SELECT id + {top} + 1, customer_id, amount, created_at, name, token, flag, note FROM bench WHERE id < {n // 2}")
        con.execute(f"UPDATE bench SET customer_id = customer_id + 1 WHERE id > {top} - {ROWS // 20} AND hash(id, {day}) % 10 = 0 AND id <= {top}")


def run_chain(work, mode):
    """Creates DAYS daily snapshots; returns per-day times and sizes."""
    db = os.path.join(work, f"{mode}.duckdb")
    con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{os.path.abspath(EXT)}'")
    repo_root = os.path.join(work, f"snaps-{mode}")
    con.execute(f"SET snapshot_directory = '{repo_root}'")
    con.execute(TABLE_SQL)
    con.execute("CHECKPOINT")
    times, peaks = [], []
    for day in range(1, DAYS + 1):
        if day > 1:
            change(con, day, mode, 0.01)
            con.execute("CHECKPOINT")
        t, rss = measured(lambda: con.execute(f"CALL snapshot_create('bench', id := 'day{day:02d}')").fetchall())
        times.append(t)
        peaks.append(rss)
    repo = os.path.join(repo_root, os.listdir(repo_root)[0])
    chain_bytes = du(repo)
    full_bytes = con.execute("SELECT bytes_written FROM snapshots() WHERE snapshot_id = 'day01'").fetchall()[0][0]
    return con, repo, times, peaks, chain_bytes, full_bytes


def main():
    work = tempfile.mkdtemp(prefix="snapincr-", dir=os.environ.get("BENCH_DIR"))
    lines = ["# Incremental benchmark", ""]
    try:
        lines += [f"{machine()} {ROWS:,} rows x 8 columns "
                  f"(the table of bench/common.py); {DAYS} daily snapshots; times are medians of {REPS} repetitions "
                  "where repeated.", ""]
        rows = []
        for mode in ("scattered", "clustered"):
            con, repo, times, peaks, chain_bytes, full_bytes = run_chain(work, mode)
            unchanged = [measured(lambda r=r: con.execute(f"CALL snapshot_create('bench', id := 'same{r}')").fetchall()) for r in range(REPS)]
            # the table unchanged but the database not (a commit to another table): the source stamp
            # differs, so the table is hashed and compared with its parent's fingerprints
            con.execute("CREATE TABLE IF NOT EXISTS elsewhere (i INTEGER)")
            hashed = []
            for r in range(REPS):
                con.execute(f"INSERT INTO elsewhere VALUES ({r})")
                hashed.append(measured(lambda r=r: con.execute(f"CALL snapshot_create('bench', id := 'hashed{r}')").fetchall()))
            hashed_t = [h[0] for h in hashed]
            assert {x[0] for x in con.execute("SELECT status FROM snapshot_tables('*') WHERE snapshot_id LIKE 'same%' OR snapshot_id LIKE 'hashed%'").fetchall()} == {"unchanged"}
            # a full copy of today's rows, for reading, restoring and time comparisons
            full = [measured(lambda r=r: con.execute(f"CALL snapshot_create('bench', id := 'full{r}', incremental := false)").fetchall()) for r in range(REPS)]
            unchanged_t, full_t = [u[0] for u in unchanged], [f[0] for f in full]
            ops = {"read_full": [], "read_chain": [], "rs_full": [], "rs_chain": [], "restore_full": [], "restore_chain": []}
            # warm: each file's checksum is verified on its first read in a process, and an incremental
            # version's surviving rows are worked out once per process
            for src in ("'bench@full0'", f"'bench@day{DAYS:02d}'"):
                con.execute(SCAN.format(src=src)).fetchall()
            for r in range(REPS):
                ops["read_full"].append(measured(lambda: con.execute(SCAN.format(src="'bench@full0'")).fetchall()))
                ops["read_chain"].append(measured(lambda: con.execute(SCAN.format(src=f"'bench@day{DAYS:02d}'")).fetchall()))
                ops["rs_full"].append(measured(lambda: con.execute(SCAN.format(src="read_snapshot('full0', 'bench')")).fetchall()))
                ops["rs_chain"].append(measured(lambda: con.execute(SCAN.format(src=f"read_snapshot('day{DAYS:02d}', 'bench')")).fetchall()))
                ops["restore_full"].append(measured(lambda: con.execute("CALL snapshot_restore('full0', 'bench', target := 'rf')").fetchall()))
                con.execute("DROP TABLE rf")
                ops["restore_chain"].append(measured(lambda: con.execute(f"CALL snapshot_restore('day{DAYS:02d}', 'bench', target := 'rc')").fetchall()))
                con.execute("DROP TABLE rc")
            read_full, read_chain, rest_full, rest_chain, rs_full, rs_chain = (
                [x[0] for x in ops[k]] for k in ("read_full", "read_chain", "restore_full", "restore_chain", "rs_full", "rs_chain"))
            rss = {"create, days 2-30 (max)": max(peaks[1:]), "full snapshot": max(f[1] for f in full), "unchanged": max(u[1] for u in unchanged),
                   **{k: max(x[1] for x in v) for k, v in ops.items()}}
            a = con.execute(SCAN.format(src="'bench@full0'")).fetchall()
            b = con.execute(SCAN.format(src=f"'bench@day{DAYS:02d}'")).fetchall()
            c = con.execute(SCAN.format(src=f"read_snapshot('day{DAYS:02d}', 'bench')")).fetchall()
            live = con.execute(SCAN.format(src="bench")).fetchall()
            assert a == b == c == live, f"the last snapshot must read back the same rows as a full copy and the table: {a} {b} {c} {live}"
            diff_t = timed(lambda: con.execute(f"SELECT count(*) FROM snapshot_diff('day{DAYS - 1:02d}', 'day{DAYS:02d}', 'bench')").fetchall())
            read_two = timed(lambda: [con.execute(SCAN.format(src=f"'bench@{s}'")).fetchall() for s in (f"day{DAYS - 1:02d}", f"day{DAYS:02d}")])
            # 10% changed, against a version that has its fingerprint (a forced full copy has none)
            con.execute("CALL snapshot_create('bench', id := 'pre10')")
            change(con, 99, mode, 0.10)
            con.execute("CHECKPOINT")
            ten_t = timed(lambda: con.execute("CALL snapshot_create('bench', id := 'ten')").fetchall())
            ten_kind = con.execute("SELECT status, bytes_written FROM snapshot_tables('ten')").fetchall()[0]
            con.close()
            incr = times[1:]
            f = med(full_t)
            rows.append((mode, f, times[0], med(incr), max(incr), med(unchanged_t), ten_t, ten_kind, chain_bytes, full_bytes,
                         med(read_full), med(read_chain), med(rest_full), med(rest_chain), diff_t, read_two, rss, times,
                         med(rs_full), med(rs_chain), med(hashed_t)))
        lines += ["| figure | scattered | clustered | target |", "|---|---|---|---|"]
        def row(label, fn, target):
            lines.append(f"| {label} | {fn(rows[0])} | {fn(rows[1])} | {target} |")
        row(f"repository after {DAYS} daily snapshots / one full snapshot", lambda r: f"{r[8] / 1e6:.0f} MB / {r[9] / 1e6:.0f} MB = **{r[8] / r[9]:.2f}x**", "<= 1.5x")
        row("full snapshot (`incremental := false`)", lambda r: f"{r[1]:.2f} s", "")
        row("incremental, 1% changed (median, max of days 2-30)", lambda r: f"{r[3]:.2f} s ({r[4]:.2f}) = **{r[3] / r[1]:.0%}**", "<= 25%")
        row("incremental, unchanged (nothing committed since: source stamp)", lambda r: f"{r[5]:.2f} s = **{r[5] / r[1]:.0%}**", "<= 10%")
        row("incremental, unchanged table, database changed elsewhere (hashed)", lambda r: f"{r[20]:.2f} s = **{r[20] / r[1]:.0%}**", "<= 10%")
        row("incremental, 10% changed", lambda r: f"{r[6]:.2f} s = {r[6] / r[1]:.0%} ({r[7][0]}, {r[7][1] / 1e6:.0f} MB)", "")
        row(f"FROM 'bench@day{DAYS}' full scan vs FROM 'bench@full' (a full copy)", lambda r: f"{r[11]:.2f} s vs {r[10]:.2f} s = **{r[11] / r[10]:.2f}x**", "<= 1.5x")
        row(f"read_snapshot full scan: day {DAYS} vs a full copy", lambda r: f"{r[19]:.2f} s vs {r[18]:.2f} s = {r[19] / r[18]:.2f}x", "")
        row(f"snapshot_restore: day {DAYS} vs a full copy", lambda r: f"{r[13]:.2f} s vs {r[12]:.2f} s = **{r[13] / r[12]:.2f}x**", "<= 1.5x")
        row(f"snapshot_diff day {DAYS - 1} -> {DAYS} vs reading both once", lambda r: f"{r[14]:.2f} s vs {r[15]:.2f} s = {r[14] / r[15]:.2f}x", "small multiple")
        row("peak RSS of the process: full snapshot / incremental create (max of days 2-30) / unchanged",
            lambda r: f"{r[16]['full snapshot']:.0f} / {r[16]['create, days 2-30 (max)']:.0f} / {r[16]['unchanged']:.0f} MB", "")
        row(f"peak RSS of the process: read day {DAYS} / read full copy / restore day {DAYS} / restore full copy",
            lambda r: f"{r[16]['read_chain']:.0f} / {r[16]['read_full']:.0f} / {r[16]['restore_chain']:.0f} / {r[16]['restore_full']:.0f} MB", "")
        row(f"read_snapshot of day {DAYS} vs FROM 'bench@day{DAYS}'", lambda r: f"{r[19]:.2f} s vs {r[11]:.2f} s = {r[19] / r[11]:.2f}x", "")
        figures = {"rows": ROWS, "days": DAYS, "modes": {r[0]: {
            "full_s": r[1], "day_s": r[17], "unchanged_s": r[5], "unchanged_hashed_s": r[20], "ten_percent_s": r[6], "chain_bytes": r[8], "full_bytes": r[9],
            "read_full_s": r[10], "read_chain_s": r[11], "restore_full_s": r[12], "restore_chain_s": r[13],
            "diff_s": r[14], "read_two_s": r[15], "rss_mb": r[16],
            "read_snapshot_full_s": r[18], "read_snapshot_chain_s": r[19]} for r in rows}}
        lines += ["", "Scattered: each day `UPDATE` of 1% of the rows chosen by hash over the whole table. Clustered: each day",
                  "0.5% new rows appended and 0.5% of the rows updated among the newest 5%. The repository size is `du -sb`",
                  "of the whole repository folder (data, metadata, indexes, the one kept sketch).", ""]
        lines += ["Reads are warm: the files were read once before in the process (checksums verified, an incremental",
                  "version's surviving rows worked out). `FROM 'bench@day30'` is DuckDB's own plan over the base and the 29",
                  "deltas, each filtered to its surviving rows; read_snapshot keeps table order where it matters and runs",
                  "on a reader connection of its own (see results-read.md). Restores sort by row id to keep the table's order.",
                  "Peak RSS is the whole Python process's, which holds the open 10M-row database.", ""]
        write_report(lines, OUT, figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
