#!/usr/bin/env python3
"""Off-site repository benchmark (issue 13): snapshot_create into an S3-compatible bucket vs a
local folder, the first and second full read of that snapshot vs a local read, snapshot_copy
of a 30-day incremental chain to the bucket (bytes moved vs bytes the chain holds), and
listing 1,000 snapshots in a bucket (first use in a new process, and unchanged). The server
is s3s-fs (Rust, files on the local disk; `make bench` installs it into .tools/) unless
BENCH_S3_SERVER=moto; its own throughput is measured and reported. Writes bench/results-s3.md.

    BENCH_ROWS=10000000 python bench/s3.py
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import duckdb

from common import EXT, ROWS, machine, table_sql, timed, write_report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REPS = int(os.environ.get("BENCH_REPS", "3"))
DAYS = int(os.environ.get("BENCH_DAYS", "30"))
OUT = os.environ.get("BENCH_OUT", os.path.join(HERE, "results-s3.md"))
KEY, SECRET = "benchkey", "benchsecret"
SCAN = ("SELECT count(*), sum(id), sum(customer_id), sum((amount * 100)::BIGINT), max(created_at), sum(length(name)), "
        "sum(length(token)), count(*) FILTER (WHERE flag), sum(length(note)) FROM {src}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the S3 server exited: {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the S3 server did not start")


def start_server(work):
    port = free_port()
    binary = os.environ.get("S3S_FS", os.path.join(ROOT, ".tools", "s3s-fs", "bin", "s3s-fs"))
    if os.environ.get("BENCH_S3_SERVER") != "moto" and os.path.exists(binary):
        data = os.path.join(work, "s3data")
        os.makedirs(data)
        proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port), "--access-key", KEY, "--secret-key", SECRET, data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        name = "s3s-fs 0.14.1 (Rust; objects as files on the local disk; its GET read buffer raised from 4 KB to 1 MB by `make bench-s3`, as stock s3s-fs serves 68 MB/s per stream and 188 MB/s at most — slower than reading the file locally)"
    else:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        name = "moto 5.2.5 (Python, in memory)"
    wait_port(port, proc)
    return proc, f"http://127.0.0.1:{port}", name


def client(endpoint):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def throughput(endpoint, work):
    """The server's own upload and download rate for a 256 MB object (boto3, 8 parallel parts)."""
    from boto3.s3.transfer import TransferConfig
    c = client(endpoint)
    path = os.path.join(work, "blob")
    with open(path, "wb") as f:
        f.write(os.urandom(256 << 20))
    cfg = TransferConfig(multipart_chunksize=16 << 20, max_concurrency=8)
    up = timed(lambda: c.upload_file(path, "bench", "blob", Config=cfg))
    down = timed(lambda: c.download_file("bench", "blob", path + ".back", Config=cfg))
    c.delete_object(Bucket="bench", Key="blob")
    os.remove(path)
    os.remove(path + ".back")
    return 256 * 1.048576 / up, 256 * 1.048576 / down


def connect(db, endpoint, cache):
    con = duckdb.connect(db, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    configure(con, endpoint, cache)
    return con


def configure(con, endpoint, cache):
    """The bucket's settings, for one connection (SET is per connection)."""
    for s in (f"SET snapshot_s3_endpoint = '{endpoint}'", "SET snapshot_s3_url_style = 'path'", "SET snapshot_s3_use_ssl = false",
              f"SET snapshot_s3_access_key_id = '{KEY}'", f"SET snapshot_s3_secret_access_key = '{SECRET}'",
              f"SET snapshot_cache_directory = '{cache}'"):
        con.execute(s)


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0])


def listing(endpoint, work):
    """1,000 snapshots in a bucket, made by the extension, listed by a new process with an empty cache."""
    con = connect(":memory:", endpoint, os.path.join(work, "cache-writer"))
    con.execute("SET snapshot_directory = 's3://bench/list'")
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(1000)")
    for i in range(1000):
        con.execute(f"CALL snapshot_create('t', id := 's{i:04d}')")
    con.close()
    cache = os.path.join(work, "cache-list")
    script = f"""
import duckdb, time
con = duckdb.connect(':memory:', config={{'allow_unsigned_extensions': 'true'}})
con.execute("SET enable_progress_bar = false")
con.execute("LOAD '{EXT}'")
for s in {[f"SET snapshot_s3_endpoint = '{endpoint}'", "SET snapshot_s3_url_style = 'path'", "SET snapshot_s3_use_ssl = false",
           f"SET snapshot_s3_access_key_id = '{KEY}'", f"SET snapshot_s3_secret_access_key = '{SECRET}'",
           f"SET snapshot_cache_directory = '{cache}'", "SET snapshot_directory = 's3://bench/list'"]!r}:
    con.execute(s)
out = []
for i in range(6):
    t = time.perf_counter()
    n = con.execute("SELECT count(*) FROM snapshots()").fetchall()[0][0]
    out.append((n, time.perf_counter() - t))
print(repr(out))
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    out = eval(p.stdout.strip().splitlines()[-1])
    assert all(n == 1000 for n, _ in out), out
    return out[0][1], med([t for _, t in out[1:]])


def main():
    work = tempfile.mkdtemp(prefix="snaps3-", dir=os.environ.get("BENCH_DIR"))
    proc = None
    try:
        proc, endpoint, server = start_server(work)
        client(endpoint).create_bucket(Bucket="bench")
        up, down = throughput(endpoint, work)
        cache = os.path.join(work, "cache")
        con = connect(os.path.join(work, "db.duckdb"), endpoint, cache)
        con.execute(table_sql("bench", ROWS))
        con.execute("CHECKPOINT")
        local_dir = os.path.join(work, "local")
        create_local, create_s3 = [], []
        for r in range(REPS):
            con.execute(f"SET snapshot_directory = '{local_dir}'")
            create_local.append(timed(lambda: con.execute(f"CALL snapshot_create('bench', id := 'l{r}', incremental := false)").fetchall()))
            con.execute("SET snapshot_directory = 's3://bench/repo'")
            create_s3.append(timed(lambda: con.execute(f"CALL snapshot_create('bench', id := 's{r}', incremental := false)").fetchall()))
        size = con.execute("SELECT size_bytes FROM snapshots() WHERE snapshot_id = 's0'").fetchall()[0][0]
        # reads: local (warm), first from the bucket (empty cache), then cached; local and bucket
        # reads alternate on two connections of one database, so drift on a shared machine hits both
        loc, rem = con.cursor(), con.cursor()
        configure(loc, endpoint, cache)
        configure(rem, endpoint, cache)
        loc.execute(f"SET snapshot_directory = '{local_dir}'")
        rem.execute("SET snapshot_directory = 's3://bench/repo'")
        local_scan = lambda: loc.execute(SCAN.format(src="'bench@l0'")).fetchall()  # noqa: E731
        local_scan()
        locals_, firsts, seconds = [], [], []
        for r in range(REPS):
            shutil.rmtree(os.path.join(cache, "objects"), ignore_errors=True)
            locals_.append(timed(local_scan))
            firsts.append(timed(lambda: rem.execute(SCAN.format(src=f"'bench@s{r}'")).fetchall()))
            for _ in range(2):
                locals_.append(timed(local_scan))
                seconds.append(timed(lambda: rem.execute(SCAN.format(src=f"'bench@s{r}'")).fetchall()))
        read_local = med(locals_)
        con.execute("SET snapshot_directory = 's3://bench/repo'")
        a = con.execute(SCAN.format(src="'bench@s0'")).fetchall()
        assert a == con.execute(SCAN.format(src="bench")).fetchall(), "the bucket's snapshot must read back the table"
        # a 30-day incremental chain, locally, then pushed to the bucket
        chain_dir = os.path.join(work, "chain")
        con.execute(f"SET snapshot_directory = '{chain_dir}'")
        for day in range(1, DAYS + 1):
            if day > 1:
                con.execute(f"UPDATE bench SET customer_id = customer_id + 1, note = note || 'x' WHERE hash(id, {day}) % 100 = 0")
            con.execute(f"CALL snapshot_create('bench', id := 'day{day:02d}')")
        chain_bytes = du(os.path.join(chain_dir, os.listdir(chain_dir)[0]))
        copied = []
        copy_t = timed(lambda: copied.extend(con.execute("CALL snapshot_copy('*', destination := 's3://bench/offsite')").fetchall()))
        moved = sum(r[2] for r in copied)
        again = con.execute("CALL snapshot_copy('*', destination := 's3://bench/offsite')").fetchall()
        assert len(copied) == DAYS and all(r[1] == 0 and r[3] > 0 for r in again), (copied, again)
        con.close()
        list_first, list_again = listing(endpoint, work)
        cl, cs = med(create_local), med(create_s3)
        f, s2 = med(firsts), med(seconds)
        lines = ["# Off-site repository benchmark", "",
                 f"{machine()} {ROWS:,} rows x 8 columns (bench/common.py), {size / 1e6:.0f} MB as ZSTD Parquet; medians of {REPS} runs. "
                 f"Server: {server} on 127.0.0.1, measured alone at {up:.0f} MB/s upload and {down:.0f} MB/s download "
                 "(256 MB object, boto3, 8 parallel 16 MB parts).", "",
                 "| figure | value | target |", "|---|---|---|",
                 f"| snapshot_create into the bucket vs into a local folder | {cs:.2f} s vs {cl:.2f} s = **{cs / cl:.2f}x** | <= 1.5x |",
                 f"| first read of that snapshot from the bucket (`FROM 'bench@id'`, full scan, empty cache) vs a local read | {f:.2f} s vs {read_local:.2f} s = **{f / read_local:.2f}x** | <= 2x |",
                 f"| second read (cached) vs a local read | {s2:.2f} s vs {read_local:.2f} s = **{s2 / read_local:.2f}x** | <= 1.1x |",
                 f"| snapshot_copy of a {DAYS}-day incremental chain to the bucket: bytes moved / bytes the chain holds | {moved / 1e6:.0f} MB / {chain_bytes / 1e6:.0f} MB = **{moved / chain_bytes:.2f}x** ({copy_t:.1f} s) | <= 1.1x |",
                 f"| snapshots() over 1,000 snapshots in the bucket: first use in a new process / unchanged | {list_first * 1000:.0f} ms / {list_again * 1000:.0f} ms | <= 1 s / <= 100 ms |",
                 "",
                 "Create: a full snapshot (`incremental := false`) of the whole table both times; the bucket's includes",
                 "the upload (files staged locally by DuckDB's COPY, then uploaded in parallel 16 MB parts) and the",
                 "conditional publish of metadata.json. Reads: the local read is warm; the first read from the bucket",
                 "starts with an empty cache (download, SHA-256 check, then DuckDB's Parquet reader on the cached file);",
                 "local and bucket reads alternate on two connections of one database (3 local reads per bucket snapshot),",
                 "so the machine's drift hits both; each figure is the median.",
                 "The chain: 1% of the rows updated per day (scattered), each day an incremental snapshot; 'holds' is",
                 "`du -sb` of the local repository (it also counts the lock file), 'moved' the sum of snapshot_copy's",
                 "bytes_copied (a second copy moves nothing). Listing: 1,000 snapshots of a small table made by",
                 "snapshot_create, listed six times by a new process with an empty cache; the first pays the bucket",
                 "listing and reading the manifest index (a few objects instead of 1,000 metadata.json)."]
        figures = {"rows": ROWS, "server": server, "server_up_mb_s": up, "server_down_mb_s": down, "create_local_s": create_local,
                   "create_s3_s": create_s3, "read_local_s": read_local, "read_local_all_s": locals_, "read_first_s": firsts, "read_second_s": seconds,
                   "chain_bytes": chain_bytes, "copied_bytes": moved, "copy_s": copy_t, "list_first_s": list_first, "list_again_s": list_again}
        write_report(lines, OUT, figures)
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
