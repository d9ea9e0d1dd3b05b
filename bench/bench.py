#!/usr/bin/env python3
"""Benchmark: snapshot_create vs DuckDB's own COPY ... TO (FORMAT PARQUET, COMPRESSION ZSTD),
and snapshot_restore vs CREATE TABLE ... AS FROM read_parquet(...), on the same table in the
same run. Alternating A/B, several repetitions, median and spread. Writes bench/results.md.

    make bench                 # 10M rows, 5 repetitions
    BENCH_ROWS=1000000 make bench
"""
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time

import duckdb

EXT = os.environ.get("SNAPSHOT_EXTENSION", "build/release/snapshot.duckdb_extension")
ROWS = int(os.environ.get("BENCH_ROWS", "10000000"))
REPS = int(os.environ.get("BENCH_REPS", "5"))
OUT = os.environ.get("BENCH_OUT", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md"))

TABLE_SQL = f"""
CREATE TABLE bench AS
SELECT
    i AS id,
    (i * 7919) % 1000003 AS customer_id,
    ((i * 31) % 100000) / 100.0 :: DECIMAL(12,2) AS amount,
    TIMESTAMP '2024-01-01' + INTERVAL (i % 31536000) SECOND AS created_at,
    'user_' || (i % 50000) AS name,
    CASE WHEN i % 10 = 0 THEN NULL ELSE md5(i::VARCHAR) END AS token,
    (i % 3 = 0) AS flag,
    repeat(chr(65 + (i % 26)::INTEGER), 1 + (i % 40)) AS note
FROM range({ROWS}) t(i)
"""


def machine():
    """One line naming the machine and DuckDB version a result was measured on."""
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"Machine: {cpu}, {os.cpu_count()} cores, {ram:.0f} GB RAM, {platform.system()} {platform.release()}; DuckDB {duckdb.__version__} (Python)."


def write_report(lines, path):
    """Writes a results page and echoes it."""
    text = "\n".join(lines)
    with open(path, "w") as f:
        f.write(text)
    print(text)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(xs):
    med = statistics.median(xs)
    return med, (min(xs), max(xs))


def main():
    work = tempfile.mkdtemp(prefix="snapbench-", dir=os.environ.get("BENCH_DIR"))
    try:
        db = os.path.join(work, "bench.duckdb")
        con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{os.path.abspath(EXT)}'")
        con.execute(f"SET snapshot_directory = '{work}/snaps'")
        con.execute(TABLE_SQL)
        con.execute("CHECKPOINT")
        version = con.execute("SELECT version()").fetchall()[0][0]

        create_ext, create_copy, sizes = [], [], {}
        restore_ext, restore_ctas = [], []
        others = {"EXPORT DATABASE (FORMAT PARQUET, COMPRESSION ZSTD)": [], "copy the database file": [],
                  "ATTACH + COPY FROM DATABASE into a fresh file": [], "IMPORT DATABASE into an in-memory database (restore; writes nothing to disk, so not like for like)": []}
        db_name = con.execute("SELECT current_database()").fetchall()[0][0]
        for rep in range(REPS):
            # A/B alternate, order flipped every repetition
            pair = [("ext", rep), ("copy", rep)]
            if rep % 2:
                pair.reverse()
            for kind, r in pair:
                if kind == "ext":
                    create_ext.append(timed(lambda: con.execute(f"CALL snapshot_create('bench', id := 'b{r}', incremental := false)").fetchall()))
                else:
                    path = f"{work}/copy{r}.parquet"
                    create_copy.append(timed(lambda: con.execute(
                        f"COPY bench TO '{path}' (FORMAT PARQUET, COMPRESSION ZSTD)").fetchall()))
                    sizes["copy"] = os.path.getsize(path)
            sizes["ext"] = con.execute(f"SELECT size_bytes FROM snapshots() WHERE snapshot_id = 'b{rep}'").fetchall()[0][0]
            pair = [("ext", rep), ("ctas", rep)]
            if rep % 2:
                pair.reverse()
            for kind, r in pair:
                if kind == "ext":
                    restore_ext.append(timed(lambda: con.execute(
                        f"CALL snapshot_restore('b{r}', 'bench', target := 'restored_ext_{r}')").fetchall()))
                    con.execute(f"DROP TABLE restored_ext_{r}")
                else:
                    restore_ctas.append(timed(lambda: con.execute(
                        f"CREATE TABLE restored_ctas_{r} AS FROM read_parquet('{work}/copy{r}.parquet')").fetchall()))
                    con.execute(f"DROP TABLE restored_ctas_{r}")
            con.execute(f"CALL snapshot_drop('b{rep}')")
            os.remove(f"{work}/copy{rep}.parquet")
            # the other ways a user could back up without the extension
            exp = f"{work}/export{rep}"
            others["EXPORT DATABASE (FORMAT PARQUET, COMPRESSION ZSTD)"].append(timed(lambda: con.execute(
                f"EXPORT DATABASE '{exp}' (FORMAT PARQUET, COMPRESSION ZSTD)").fetchall()))
            con.execute("CHECKPOINT")
            others["copy the database file"].append(timed(lambda: shutil.copyfile(db, f"{work}/filecopy.duckdb")))
            os.remove(f"{work}/filecopy.duckdb")
            def copy_db():
                con.execute(f"ATTACH '{work}/fresh{rep}.duckdb' AS fresh")
                con.execute(f"COPY FROM DATABASE {db_name} TO fresh")
                con.execute("DETACH fresh")
            others["ATTACH + COPY FROM DATABASE into a fresh file"].append(timed(copy_db))
            os.remove(f"{work}/fresh{rep}.duckdb")
            other = duckdb.connect()
            others["IMPORT DATABASE into an in-memory database (restore; writes nothing to disk, so not like for like)"].append(timed(lambda: other.execute(f"IMPORT DATABASE '{exp}'").fetchall()))
            other.close()
            shutil.rmtree(exp)
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ce, cc = summary(create_ext), summary(create_copy)
    re_, rc = summary(restore_ext), summary(restore_ctas)
    mb = sizes["copy"] / 1e6
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; DuckDB {version} (Python); "
        f"{ROWS:,} rows x 8 columns (integers, decimal, timestamp, short and long strings, NULLs); "
        f"{REPS} repetitions, A/B alternating; median (min-max).",
        "",
        "| operation | snapshot extension | DuckDB built-in | ratio |",
        "|---|---|---|---|",
        f"| create: `snapshot_create` vs `COPY ... TO (FORMAT PARQUET, COMPRESSION ZSTD)` | {ce[0]:.2f} s ({ce[1][0]:.2f}-{ce[1][1]:.2f}) | {cc[0]:.2f} s ({cc[1][0]:.2f}-{cc[1][1]:.2f}) | **{ce[0] / cc[0]:.2f}** |",
        f"| restore: `snapshot_restore(..., target :=)` vs `CREATE TABLE ... AS FROM read_parquet(...)` | {re_[0]:.2f} s ({re_[1][0]:.2f}-{re_[1][1]:.2f}) | {rc[0]:.2f} s ({rc[1][0]:.2f}-{rc[1][1]:.2f}) | **{re_[0] / rc[0]:.2f}** |",
        "",
        "Other ways to back up the same table without the extension (same run, for scale):",
        "",
        "| operation | median (min-max) | vs snapshot_create / snapshot_restore |",
        "|---|---|---|",
    ] + [
        f"| {name} | {summary(xs)[0]:.2f} s ({min(xs):.2f}-{max(xs):.2f}) | "
        f"{summary(xs)[0] / (re_[0] if 'restore' in name else ce[0]):.2f}x |"
        for name, xs in others.items()
    ] + [
        "",
        f"Throughput of create: {ROWS / ce[0] / 1e6:.1f} M rows/s, {mb / ce[0]:.0f} MB/s of Parquet "
        f"(file: {sizes['ext'] / 1e6:.0f} MB with the extension, {mb:.0f} MB with COPY).",
        "",
        "What the extension adds on top of DuckDB's own work: create = the same COPY plus a SHA-256 of the",
        "file, an fsync of the file and of metadata.json, and the atomic folder rename; restore = a full",
        "SHA-256 verification of the file before anything is touched, CREATE TABLE from the stored DDL, and",
        "INSERT ... SELECT with casts back to the original types.",
        "",
    ]
    write_report(lines, OUT)


if __name__ == "__main__":
    main()
