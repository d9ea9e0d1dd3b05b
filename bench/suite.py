#!/usr/bin/env python3
"""The benchmark suite: snapshot_create / snapshot_restore / read_snapshot against DuckDB's own
ways of doing the same work, at several table sizes and for a database of 50 tables, with time,
throughput and peak memory (RSS) of each operation. Every operation runs in a fresh process (so
its peak RSS is its own), extension and built-in alternate, REPS repetitions, median and spread.
Writes bench/results-suite.md and its figures (results-suite.json, for bench/report.py).

    python bench/suite.py                                    # 1M, 10M, 100M rows (about 60 minutes)
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

Figures of the run of f1f426f; this machine ran 1.4-1.8x slower throughout than in earlier runs
(COPY of 10M rows 5.9 s against 3.5 s), so absolute times are not comparable with older pages.

- **Reads in a fresh process** (every read figure on this page: each operation is a new process):
  the first read of a file in a process verifies its SHA-256 before any row (about 0.3 s per
  234 MB), which a one-column or filtered read of a big file cannot hide (4x and more). The targets
  for reading the past are for a process that has read the file before: bench/results-read.md
  (FROM 't@id' 1.02x / 1.06x / 1.31x of read_parquet for a full scan, one column and a 0.2% range
  filter, 1.04x / 1.05x / 1.20x the run before; read_snapshot 1.39x / 1.55x).
- **read_snapshot vs read_parquet (target 1.25x), missed**: a C API v1 table function gets neither
  filter pushdown nor batch indexes, and its rows must come from a query of its own on a reader
  connection: each chunk is copied once into that query's result buffer before DuckDB sees it (perf:
  `CopyVectorBuffer`, string copies), and a selective filter cannot skip row groups. Aggregates run
  it on every thread (each takes part of the file), ordered results on one. `FROM 't@id'` is the
  fast path: DuckDB plans it as its own read_parquet.
- **Create and restore (targets 1.10x)**: 1.12-1.17x at 1M and 10M in this run (1.02-1.13x in
  earlier runs on the same code paths: the spread between runs on this 2-core machine is about
  ±0.1). The extra work is the SHA-256 of each file (overlapped with its fsync), the fsync itself,
  and at restore a full checksum verification before anything is touched, CREATE TABLE from the
  stored DDL and casts back to the original types. Restore of 100M rows took 117 s against CREATE
  TABLE AS's 69 s in both repetitions of this run (41 s vs 38 s in the previous run of the same
  statements; the SQL a restore of a one-file snapshot runs is unchanged since): not explained yet.
- Peak memory: the extension adds nothing measurable to DuckDB's own COPY / CREATE TABLE AS (within
  80 MB at every size). DuckDB's own peak grows with the table (its buffer pool caching the table's
  blocks as they are scanned), not because the extension materializes anything: snapshot data
  streams from DuckDB's scan to its Parquet writer."""


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


def report(results, many, machine, write_json=True):
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
        for q, group in res["read"].items():
            b = med(group["read_parquet"])[0]
            for label, rs in group.items():
                a = med(rs)[0]
                lines.append(f"| read, {q}: {label} | {fmt(rs)} | {n / a / 1e6:.1f} M | | {rss(rs)} | {a / b:.2f}x |")
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
    if write_json:
        write_report(lines, OUT, {"sizes": results, "many_tables": many, "tables": TABLES, "table_rows": TABLE_ROWS})
    else:
        with open(OUT, "w") as f:
            f.write("\n".join(lines))


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
    elif sys.argv[1:] == ["--page"]:
        # rewrite results-suite.md from the figures of the last run (results-suite.json)
        with open(os.path.splitext(OUT)[0] + ".json") as f:
            saved = json.load(f)
        report(saved["sizes"], saved.get("many_tables"), saved["machine"], write_json=False)
    else:
        main()
