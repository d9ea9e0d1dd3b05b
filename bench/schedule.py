#!/usr/bin/env python3
"""What protection costs (issue 16): writes bench/results-schedule.md and .json.

1. A snapshot of a table whose every row changed since its parent (the incremental path deciding
   "everything changed" and storing a full copy) against DuckDB's own
   `COPY ... TO (FORMAT PARQUET, COMPRESSION ZSTD)` of the same table, at each size of BENCH_SIZES
   (default 1M, 10M, 100M rows): alternating, medians of BENCH_REPS (default 3). Target <= 1.10x.
2. Scheduled snapshots every minute of a 10M-row table with no changes (BENCH_SCHEDULE_ROWS): a
   process with the table open and a schedule `every := INTERVAL 1 MINUTE`, its wall clock moved a
   minute at a time with libfaketime; the process's CPU time (user + system, /proc) per run, plus
   the scheduler's idle cost per minute measured over real seconds with nothing due. The average
   share of one core is (CPU per run + idle CPU per minute) / 60 s. Target <= 2%.

    python bench/schedule.py                       # every size
    BENCH_SIZES=1000000,10000000 python bench/schedule.py
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

from common import EXT, machine, table_sql, write_report

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results-schedule.md")
SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "1000000,10000000,100000000").split(",")]
REPS = int(os.environ.get("BENCH_REPS", "3"))
SCHEDULE_ROWS = int(os.environ.get("BENCH_SCHEDULE_ROWS", "10000000"))
RUNS = int(os.environ.get("BENCH_SCHEDULE_RUNS", "10"))
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def all_changed(work, rows):
    db = os.path.join(work, f"changed{rows}.duckdb")
    con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    con.execute(f"SET snapshot_directory = '{work}/snaps{rows}'")
    con.execute(table_sql("bench", rows))
    con.execute("CALL snapshot_create('bench', id := 'v0')")
    copy_s, snap_s, statuses = [], [], []
    for rep in range(REPS):
        # every row changes (every block's content), then both copy the same table
        con.execute("UPDATE bench SET amount = amount + 1, flag = NOT flag")
        con.execute("CHECKPOINT")
        out = os.path.join(work, "copy.parquet")
        copy_s.append(timed(lambda: con.execute(f"COPY bench TO '{out}' (FORMAT PARQUET, COMPRESSION ZSTD)").fetchall()))
        os.remove(out)
        snap_s.append(timed(lambda: con.execute(f"CALL snapshot_create('bench', id := 'v{rep + 1}')").fetchall()))
        statuses.append(con.execute(f"SELECT status, rows_added FROM snapshot_tables('v{rep + 1}')").fetchall()[0])
    con.close()
    shutil.rmtree(os.path.join(work, f"snaps{rows}"), ignore_errors=True)
    os.remove(db)
    return {"rows": rows, "copy_s": copy_s, "snapshot_s": snap_s, "statuses": statuses,
            "ratio": statistics.median(snap_s) / statistics.median(copy_s)}


CHILD = r"""
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{sys.argv[2]}'")
print("ready", flush=True)
for line in sys.stdin:
    print(json.dumps(con.execute(line).fetchall(), default=str), flush=True)
"""


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scheduled_every_minute(work):
    db = os.path.join(work, "sched.duckdb")
    con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    con.execute(table_sql("bench", SCHEDULE_ROWS))
    con.execute("CALL snapshot_create('bench', id := 'base')")  # the scheduled runs are incremental from here
    con.execute("CALL snapshot_schedule('minutely', 'bench', every := INTERVAL 1 MINUTE, keep_last := 5)")
    con.close()
    clock = os.path.join(work, "clock")

    def set_clock(seconds):
        with open(clock + ".tmp", "w") as f:
            f.write(f"+{seconds}s\n")
        os.replace(clock + ".tmp", clock)

    set_clock(0)
    env = dict(os.environ, LD_PRELOAD=LIBFAKETIME, FAKETIME_TIMESTAMP_FILE=clock, FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
    p = subprocess.Popen([sys.executable, "-c", CHILD, db, EXT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "ready"

    def ask(sql):
        p.stdin.write(sql + "\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())

    try:
        # idle: the scheduler looks once a second and finds nothing due
        idle_real = 20.0
        c0 = cpu_seconds(p.pid)
        time.sleep(idle_real)
        idle_cpu = cpu_seconds(p.pid) - c0
        per_run = []
        for k in range(1, RUNS + 1):
            before = ask("SELECT count(*) FROM snapshots() WHERE type = 'scheduled'")[0][0]
            last = ask("SELECT last_snapshot_id FROM snapshot_schedules()")[0][0]
            c0 = cpu_seconds(p.pid)
            set_clock(61 * k)
            deadline = time.time() + 120
            while ask("SELECT last_snapshot_id FROM snapshot_schedules()")[0][0] == last:
                assert time.time() < deadline, "the scheduled run did not happen"
                time.sleep(0.05)
            per_run.append(cpu_seconds(p.pid) - c0)
            assert before >= 0
        statuses = ask("SELECT DISTINCT status FROM snapshot_tables('*') WHERE snapshot_id LIKE 'minutely%'")
    finally:
        p.stdin.close()
        p.wait(timeout=60)
    run_cpu = statistics.mean(per_run)  # an average share: the first run (fingerprints the table once) counts too
    idle_per_minute = idle_cpu / idle_real * 60
    return {"rows": SCHEDULE_ROWS, "runs": RUNS, "cpu_per_run_s": per_run, "idle_cpu_s": idle_cpu, "idle_real_s": idle_real,
            "statuses": statuses, "share": (run_cpu + idle_per_minute) / 60.0}


def main():
    work = tempfile.mkdtemp(prefix="snapbench-schedule-", dir=os.environ.get("BENCH_DIR"))
    try:
        changed = []
        for n in SIZES:
            r = all_changed(work, n)
            print(f"all changed, {n:,} rows: snapshot {statistics.median(r['snapshot_s']):.2f} s vs COPY {statistics.median(r['copy_s']):.2f} s = {r['ratio']:.2f}x", flush=True)
            changed.append(r)
        sched = scheduled_every_minute(work) if os.path.exists(LIBFAKETIME) else None
        lines = ["# What protection costs", "", machine(), "",
                 "| figure | measured | target | |", "|---|---|---|---|"]
        for r in changed:
            v = "met" if r["ratio"] <= 1.10 else "**missed**"
            lines.append(f"| snapshot of a table whose every row changed / COPY TO parquet (ZSTD), {r['rows']:,} rows | "
                         f"{statistics.median(r['snapshot_s']):.2f} s / {statistics.median(r['copy_s']):.2f} s = **{r['ratio']:.2f}x** | <= 1.10x | {v} |")
        if sched:
            v = "met" if sched["share"] <= 0.02 else "**missed**"
            lines.append(f"| scheduled snapshots every minute, {sched['rows']:,} rows, no changes: average share of one core | "
                         f"{statistics.mean(sched['cpu_per_run_s']):.2f} s CPU per run (mean) + {sched['idle_cpu_s'] / sched['idle_real_s'] * 60:.3f} s idle per minute = **{sched['share']:.1%}** | <= 2% | {v} |")
        lines += ["", f"Every-row-changed: `UPDATE bench SET amount = amount + 1, flag = NOT flag` then `CHECKPOINT`, then",
                  f"`COPY` and `snapshot_create` of the table alternately, {REPS} repetitions, medians; the snapshot's table",
                  "status each time: " + ", ".join(sorted({str(tuple(s)) for r in changed for s in r["statuses"]})) + ".",
                  "The incremental-path figures (unchanged <= 10%, 1% changed <= 25% of a full snapshot) are on",
                  "[results-incremental.md](results-incremental.md).", ""]
        if sched:
            lines += [f"Scheduled: {sched['runs']} runs, one per faked minute; CPU per run (s): "
                      + ", ".join(f"{x:.2f}" for x in sched["cpu_per_run_s"])
                      + f"; idle: {sched['idle_cpu_s']:.2f} s CPU in {sched['idle_real_s']:.0f} s with nothing due. Table statuses of the runs: {sched['statuses']}.", ""]
        write_report(lines, OUT, {"all_changed": changed, "scheduled": sched})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
