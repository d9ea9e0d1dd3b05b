#!/usr/bin/env python3
"""The benchmark suite: snapshot_create / snapshot_restore / read_snapshot against DuckDB's own
ways of doing the same work, at several table sizes and for a database of 50 tables, with time,
throughput and peak memory (RSS) of each operation. Every operation runs in a fresh process (so
its peak RSS is its own), extension and built-in alternate, REPS repetitions, median and spread.
Writes bench/results-suite.md and its figures (results-suite.json, for bench/report.py).

    python bench/suite.py                                    # 1M, 10M, 100M rows (about 35 minutes)
    BENCH_SIZES=1000000,10000000 python bench/suite.py       # without 100M (about 12 minutes)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine as machine_line, peak_rss_mb, reset_peak_rss, table_sql, write_report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
EXT = os.path.abspath(os.environ.get("SNAPSHOT_EXTENSION", "build/release/snapshot.duckdb_extension"))
SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "1000000,10000000,100000000").split(",")]
REPS = int(os.environ.get("BENCH_REPS", "3"))
# repetitions for tables of 50M rows and more (a 100M-row repetition takes about five minutes)
REPS_LARGE = int(os.environ.get("BENCH_REPS_LARGE", "2"))
TABLES = int(os.environ.get("BENCH_TABLES", "50"))
TABLE_ROWS = int(os.environ.get("BENCH_TABLE_ROWS", "200000"))
OUT = os.environ.get("BENCH_OUT", os.path.join(HERE, "results-suite.md"))


# ---- one operation, in a child process ---------------------------------------------------

def child(spec):
    """Runs one operation; prints {"seconds": s, "rss_mb": peak RSS during the operation}."""
    import duckdb  # noqa: PLC0415

    con = duckdb.connect(spec["db"], config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    con.execute(f"SET snapshot_directory = '{spec['snaps']}'")
    for sql in spec.get("setup", []):
        con.execute(sql)
    # the peak from here on: what opening the database cost is not the operation's
    reset_peak_rss()
    start = time.perf_counter()
    if spec.get("file_copy"):
        con.execute("CHECKPOINT")
        start = time.perf_counter()
        shutil.copyfile(spec["db"], spec["file_copy"])
    else:
        for sql in spec["sql"]:
            con.execute(sql).fetchall()
    seconds = time.perf_counter() - start
    rss = peak_rss_mb()
    for sql in spec.get("cleanup", []):
        con.execute(sql)
    con.execute("CHECKPOINT")
    con.close()
    print(json.dumps({"seconds": seconds, "rss_mb": rss}))


def run(spec):
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{spec.get('sql')}: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure(pairs, reps):
    """pairs: {label: spec factory(rep)}; alternates the order every repetition."""
    results = {label: [] for label in pairs}
    labels = list(pairs)
    for rep in range(reps):
        order = labels if rep % 2 == 0 else list(reversed(labels))
        for label in order:
            results[label].append(run(pairs[label](rep)))
    return results


def med(rs, key="seconds"):
    xs = [r[key] for r in rs]
    return statistics.median(xs), min(xs), max(xs)


# ---- the suite ----------------------------------------------------------------------------

def size_suite(work, rows):
    import duckdb  # noqa: PLC0415

    db = os.path.join(work, f"t{rows}.duckdb")
    snaps = os.path.join(work, f"snaps{rows}")
    con = duckdb.connect(db)
    con.execute(table_sql("bench", rows))
    con.execute("CHECKPOINT")
    dbname = con.execute("SELECT current_database()").fetchall()[0][0]
    con.close()
    base = {"db": db, "snaps": snaps}
    pq = os.path.join(work, f"copy{rows}.parquet")
    exp = os.path.join(work, f"export{rows}")

    def spec(**kw):
        return {**base, **kw}

    reps = REPS if rows < 50_000_000 else REPS_LARGE

    create = measure({
        "snapshot_create": lambda r: spec(sql=[f"CALL snapshot_create('bench', id := 'c{r}', incremental := false)"]),
        "COPY TO parquet (ZSTD)": lambda r: spec(sql=[f"COPY bench TO '{pq}' (FORMAT PARQUET, COMPRESSION ZSTD)"]),
        "EXPORT DATABASE (parquet, ZSTD)": lambda r: spec(sql=[f"EXPORT DATABASE '{exp}{r}' (FORMAT PARQUET, COMPRESSION ZSTD)"]),
        "copy the database file": lambda r: spec(file_copy=os.path.join(work, "filecopy.duckdb")),
        "ATTACH + COPY FROM DATABASE": lambda r: spec(sql=[f"ATTACH '{work}/fresh{rows}_{r}.duckdb' AS fresh", f"COPY FROM DATABASE {dbname} TO fresh", "DETACH fresh"]),
    }, reps)
    snap_bytes = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(snaps)) for f in fs if f.endswith(".parquet")) // reps
    parquet_bytes = os.path.getsize(pq)
    restore = measure({
        "snapshot_restore": lambda r: spec(sql=["CALL snapshot_restore('c0', 'bench', target := 'restored')"], cleanup=["DROP TABLE restored"]),
        "CREATE TABLE AS read_parquet": lambda r: spec(sql=[f"CREATE TABLE restored2 AS FROM read_parquet('{pq}')"], cleanup=["DROP TABLE restored2"]),
        "IMPORT DATABASE (fresh file)": lambda r: {"db": f"{work}/imp{rows}_{r}.duckdb", "snaps": snaps, "sql": [f"IMPORT DATABASE '{exp}0'"]},
    }, reps)
    queries = {
        "full scan": "SELECT sum(hash(COLUMNS(*))) FROM {src}",
        "one column": "SELECT sum(customer_id) FROM {src}",
        "selective filter": f"SELECT count(*), sum(amount) FROM {{src}} WHERE id BETWEEN 100 AND {100 + rows // 500}",
    }
    read = {}
    for name, q in queries.items():
        read[name] = measure({
            "read_snapshot": lambda r, q=q: spec(sql=[q.format(src="read_snapshot('c0', 'bench')")]),
            "FROM 't@id'": lambda r, q=q: spec(sql=[q.format(src="'bench@c0'")]),
            "read_parquet": lambda r, q=q: spec(sql=[q.format(src=f"read_parquet('{pq}')")]),
        }, reps)
    for d in os.listdir(work):
        if d.startswith(("export", "fresh", "imp", "filecopy")):
            p = os.path.join(work, d)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    return {"rows": rows, "reps": reps, "create": create, "restore": restore, "read": read, "snap_bytes": snap_bytes, "parquet_bytes": parquet_bytes}


def many_tables_suite(work):
    import duckdb  # noqa: PLC0415

    db = os.path.join(work, "many.duckdb")
    snaps = os.path.join(work, "snaps-many")
    con = duckdb.connect(db)
    for k in range(TABLES):
        con.execute(table_sql(f"t{k:02d}", TABLE_ROWS))
    con.execute("CHECKPOINT")
    dbname = con.execute("SELECT current_database()").fetchall()[0][0]
    con.close()
    base = {"db": db, "snaps": snaps}
    exp = os.path.join(work, "many-export")
    create = measure({
        "snapshot_create(NULL)": lambda r: {**base, "sql": [f"CALL snapshot_create('*', id := 'm{r}', incremental := false)"]},
        "EXPORT DATABASE (parquet, ZSTD)": lambda r: {**base, "sql": [f"EXPORT DATABASE '{exp}{r}' (FORMAT PARQUET, COMPRESSION ZSTD)"]},
        "ATTACH + COPY FROM DATABASE": lambda r: {**base, "sql": [f"ATTACH '{work}/mfresh{r}.duckdb' AS fresh", f"COPY FROM DATABASE {dbname} TO fresh", "DETACH fresh"]},
        "copy the database file": lambda r: {**base, "file_copy": os.path.join(work, "mfilecopy.duckdb")},
    }, REPS)
    restore = measure({
        "snapshot_restore(id, '*') into a fresh file": lambda r: {**base, "sql": [f"ATTACH '{work}/mrest{r}.duckdb' AS fresh", "CALL snapshot_restore('m0', '*', target_catalog := 'fresh')", "DETACH fresh"]},
        "IMPORT DATABASE (fresh file)": lambda r: {"db": f"{work}/mimp{r}.duckdb", "snaps": snaps, "sql": [f"IMPORT DATABASE '{exp}0'"]},
    }, REPS)
    return {"create": create, "restore": restore}


WHY = """## Where a target is missed, and why

- **read_snapshot vs read_parquet (target 1.25x), missed**: 1.6-2.2x for a full scan, 4-5x for one
  column, in a fresh process. Two causes. (1) The first read of a file in a process verifies its
  SHA-256 before any row is returned (about 0.27 s per 234 MB; the one-column scan of 100M rows
  spends 2 of its 2.5 s there); in a process that has read the file before, the same scans run at
  1.47x and 1.67x (bench/results-read.md). (2) The C API v1 gives a table function neither filter
  pushdown nor batch indexes, and its rows must come from a query of its own: each thread's part
  of the file is scanned by DuckDB's Parquet reader on a reader connection and every chunk is
  copied once into that query's streaming buffer (perf: `CopyVectorBuffer`,
  `SimpleBufferedData::Scan`). Where the order of rows does not matter (aggregates, joins) the
  scan runs on every thread, each taking part of the file; where it matters, on one thread in
  file order. A selective filter cannot skip row groups (8-130x). What would close it: filter
  pushdown and batch indexes for table functions (C API v2, which ties the binary to one DuckDB
  version), or reading through `snapshot_mount` views, which are plain `read_parquet` (0.99-1.04x
  with full pushdown; their files are verified once, when mounted).
- **Create at 1M and 100M rows (1.13x, 1.12x; 1.02x at 10M)**: at 1M the fixed cost (lock,
  metadata.json, fsyncs, directory rename, about 50 ms) is a tenth of a 0.39 s COPY; at 100M the
  two repetitions spread 33-39 s against COPY's 32-33 s (disk write-back of 2.3 GB under the
  file's fsync). Restore at 1M (1.19x) is the same fixed cost plus the checksum verification.
- Create and restore (targets 1.10x) otherwise: the extra work is the SHA-256 of each file (overlapped with its fsync), the fsync
  itself, and at restore a full checksum verification before anything is touched, CREATE TABLE from
  the stored DDL and casts back to the original types.
- Peak memory: the extension adds nothing measurable to DuckDB's own COPY / CREATE TABLE AS (within
  30 MB at every size). DuckDB's own peak grows with the table (7.5 GB for COPY of the 100M-row
  table: its buffer pool caching the table's blocks as they are scanned), not because the extension
  materializes anything: snapshot data streams from DuckDB's scan to its Parquet writer."""


def fmt(rs):
    m, lo, hi = med(rs)
    return f"{m:.2f} s ({lo:.2f}-{hi:.2f})"


def rss(rs):
    return f"{med(rs, 'rss_mb')[0]:.0f} MB"


def group_lines(res, cells):
    """Table rows of the create and restore operations, each also relative to the group's first."""
    lines = []
    for group in ("create", "restore"):
        first = None
        for label, rs in res[group].items():
            m = med(rs)[0]
            first = first or m
            lines.append(f"| {group}: {label} | {cells(rs, m)} | {m / first:.2f}x |")
    return lines


def report(results, many, machine):
    lines = ["# Benchmark suite", "", machine, "",
             f"Every operation runs in a fresh process; peak RSS is that process's maximum resident set during the operation "
             "(reset just before it with /proc/self/clear_refs; Python, DuckDB and the opened database included); "
             f"extension and built-in alternate; median (min-max) of the repetitions given per size. Table: 8 columns (integers, decimal, "
             "timestamp, short and long strings, NULLs) generated by SQL (bench/common.py).", ""]
    for res in results:
        n = res["rows"]
        mb = res["parquet_bytes"] / 1e6
        lines += [f"## {n:,} rows ({mb:.0f} MB of Parquet; the snapshot's files: {res['snap_bytes'] / 1e6:.0f} MB; {res['reps']} repetitions)", "",
                  "| operation | time | rows/s | MB/s | peak RSS | vs first row |", "|---|---|---|---|---|---|"]
        lines += group_lines(res, lambda rs, m: f"{fmt(rs)} | {n / m / 1e6:.1f} M | {mb / m:.0f} | {rss(rs)}")
        for q, pair in res["read"].items():
            a, b = med(pair["read_snapshot"])[0], med(pair["read_parquet"])[0]
            lines.append(f"| read, {q}: read_snapshot | {fmt(pair['read_snapshot'])} | {n / a / 1e6:.1f} M | | {rss(pair['read_snapshot'])} | {a / b:.2f}x |")
            lines.append(f"| read, {q}: read_parquet | {fmt(pair['read_parquet'])} | {n / b / 1e6:.1f} M | | {rss(pair['read_parquet'])} | 1.00x |")
        lines.append("")
    lines += ["## Scaling", "", "| rows | create / COPY | restore / CTAS | read full scan / read_parquet | create peak RSS - COPY peak RSS | restore peak RSS - CTAS peak RSS |", "|---|---|---|---|---|---|"]
    for res in results:
        c = med(res["create"]["snapshot_create"])[0] / med(res["create"]["COPY TO parquet (ZSTD)"])[0]
        r = med(res["restore"]["snapshot_restore"])[0] / med(res["restore"]["CREATE TABLE AS read_parquet"])[0]
        rd = med(res["read"]["full scan"]["read_snapshot"])[0] / med(res["read"]["full scan"]["read_parquet"])[0]
        dc = med(res["create"]["snapshot_create"], "rss_mb")[0] - med(res["create"]["COPY TO parquet (ZSTD)"], "rss_mb")[0]
        dr = med(res["restore"]["snapshot_restore"], "rss_mb")[0] - med(res["restore"]["CREATE TABLE AS read_parquet"], "rss_mb")[0]
        lines.append(f"| {res['rows']:,} | {c:.2f} | {r:.2f} | {rd:.2f} | {dc:+.0f} MB | {dr:+.0f} MB |")
    if many:
        lines += ["", f"## A database of {TABLES} tables x {TABLE_ROWS:,} rows", "", "| operation | time | peak RSS | vs first row |", "|---|---|---|---|"]
        lines += group_lines(many, lambda rs, m: f"{fmt(rs)} | {rss(rs)}")
    lines += ["", WHY, ""]
    write_report(lines, OUT, {"sizes": results, "many_tables": many, "tables": TABLES, "table_rows": TABLE_ROWS})


def main():
    machine = machine_line()
    work = tempfile.mkdtemp(prefix="snapsuite-", dir=os.environ.get("BENCH_DIR"))
    try:
        results = []
        for n in SIZES:
            results.append(size_suite(work, n))
            shutil.rmtree(work)
            os.mkdir(work)
        many = many_tables_suite(work) if TABLES else None
        report(results, many, machine)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        main()
