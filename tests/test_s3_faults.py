"""Issue 13, the hard part: a repository on S3-compatible storage under faults, crashes,
concurrency, and with secrets. A local moto server (tests/s3server.py) stands for the bucket;
a FaultProxy in front of it makes the endpoint unreachable, answer 403 or 503, or cut a
connection in the middle of a body. Writers are killed with SIGKILL in the middle of a create
and of a copy; two writer processes share one prefix.

What must hold whatever happens:
  * a failed operation says so in one line that names the s3://bucket/key and what to do;
  * a snapshot is listed only when it is complete (every listed snapshot verifies ok), and a
    failed or killed writer never changes what is listed, nor the local database;
  * snapshot_gc removes what dead writers left (unpublished folders, their staging folders),
    taking over the dead writer's lock once its lease ran out;
  * neither the secret access key nor the session token appears in any message or row.

Every writer here uses its own cache folder under tmp_path (snapshot_cache_directory)."""
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest

from conftest import EXT, connect, rows, run_shell
from s3server import HOST, free_port

PREFIX = "repo"
PROJECT = "memory"  # the project of an in-memory database
SECRET = "SECRETVALUE123"
TOKEN = "TOKENVALUE456"


# ---------------------------------------------------------------------------------------------
# helpers


def statements(s3, tmp_path, endpoint=None, prefix=PREFIX, cache="cache", secret=None, token=None):
    """The SET statements of a writer on s3's bucket (through endpoint, e.g. a proxy)."""
    out = list(s3.settings_statements(endpoint=endpoint))
    if secret is not None:
        out = [s for s in out if "secret_access_key" not in s] + [f"SET snapshot_s3_secret_access_key='{secret}'"]
    if token is not None:
        out.append(f"SET snapshot_s3_session_token='{token}'")
    out.append(f"SET snapshot_cache_directory='{tmp_path / cache}'")
    out.append(f"SET snapshot_directory='{s3.url(prefix)}'")
    return out


def s3con(s3, tmp_path, endpoint=None, prefix=PREFIX, **kw):
    con = connect()
    for stmt in statements(s3, tmp_path, endpoint=endpoint, prefix=prefix, **kw):
        con.execute(stmt)
    return con


def error_of(con, sql):
    """The message of the error sql raises (it must raise)."""
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql).fetchall()
    return str(info.value)


def first_part(msg):
    """The message without the source excerpt DuckDB appends to binder errors."""
    return msg.split("\n\nLINE ")[0]


def assert_one_line(msg, *needles):
    text = first_part(msg)
    assert "\n" not in text.strip(), f"not one line: {msg!r}"
    for n in needles:
        assert n in text, f"{n!r} not in {msg!r}"
    return text


def listed(con):
    return sorted(r[0] for r in rows(con, "SELECT snapshot_id FROM snapshots()"))


def published(s3, prefix=PREFIX):
    """Snapshot ids whose metadata.json is in the bucket (what a listing must show)."""
    base = f"{prefix}/{PROJECT}/"
    return sorted(k[len(base):].split("/")[0] for k in s3.list_keys(base) if k.endswith("/metadata.json"))


def assert_all_verify_ok(con, expected_ids=None):
    got = rows(con, "SELECT snapshot_id, file, status, detail FROM snapshot_verify('*')")
    bad = [r for r in got if r[2] != "ok"]
    assert bad == [], bad
    if expected_ids is not None:
        assert sorted({r[0] for r in got}) == sorted(expected_ids)
    return got


def same_rows(con, live, snap):
    """True when the snapshot holds exactly the rows of the live table (as a multiset)."""
    (n1,), = rows(con, f"SELECT count(*) FROM (FROM {live} EXCEPT ALL FROM '{snap}')")
    (n2,), = rows(con, f"SELECT count(*) FROM (FROM '{snap}' EXCEPT ALL FROM {live})")
    return n1 == 0 and n2 == 0


def repo_keys(s3, prefix=PREFIX):
    """Keys under the project, but .generation (the marker every change replaces) and the
    manifest index under .index/ (a cache of published manifests, never authoritative)."""
    base = f"{prefix}/{PROJECT}/"
    return [k[len(base):] for k in s3.list_keys(base) if k != f"{base}.generation" and not k.startswith(f"{base}.index/")]


def stray_keys(s3, prefix=PREFIX):
    """Keys under the project that no published snapshot accounts for: every key must be a
    published snapshot's metadata.json or pin, a file its metadata references (layers and
    index, in any folder), or the sketch beside a referenced index."""
    keys = repo_keys(s3, prefix)
    allowed = set()
    for sid in published(s3, prefix):
        allowed.add(f"{sid}/metadata.json")
        allowed.add(f"{sid}/pinned")
        meta = json.loads(s3.get(f"{prefix}/{PROJECT}/{sid}/metadata.json"))
        for t in meta.get("tables", []):
            layers = t.get("layers") or [{"snapshot": sid, "file": t["file"]}]
            for layer in layers:
                allowed.add(f"{layer['snapshot']}/{layer['file']}")
            ix = t.get("index")
            if ix:
                allowed.add(f"{ix['snapshot']}/{ix['file']}")
                if ix["file"].endswith(".idx"):
                    allowed.add(f"{ix['snapshot']}/{ix['file'][:-4]}.sketch")
    return sorted(k for k in keys if k not in allowed)


def pending_uploads(s3, prefix=PREFIX):
    """Multipart uploads started under the prefix and neither completed nor aborted."""
    got = s3.server.s3.list_multipart_uploads(Bucket=s3.bucket, Prefix=f"{prefix}/")
    return sorted(u["Key"] for u in got.get("Uploads", []))


def big_table(con, name="t", n=2_000_000):
    """2M random doubles: a Parquet file of about 17 MB, uploaded in parts (threshold 16 MB)."""
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT range AS id, random() AS d FROM range({n})")


def when(predicate, action, timeout=60.0):
    """Runs action once predicate() holds (polled by a thread); returns the thread."""
    def run():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                action()
                return
            time.sleep(0.003)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def part_upload_seen(proxy):
    return lambda: any(m == "PUT" and "partNumber=" in target for m, target, _ in list(proxy.history))


def wait_lock_expired(s3, prefix=PREFIX, limit=10.0):
    """Waits until the project's lock object is gone or its lease ran out."""
    key = f"{prefix}/{PROJECT}/.lock"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not s3.exists(key):
            return
        try:
            expires = json.loads(s3.get(key))["expires_at_micros"]
        except Exception:  # noqa: BLE001 (deleted between the two calls)
            return
        if expires < time.time() * 1e6:
            return
        time.sleep(0.1)
    raise AssertionError("the lock object stayed held")


# child processes

CHILD = textwrap.dedent("""
    import duckdb, json, sys, os, time
    settings = json.loads(sys.argv[1])
    con = duckdb.connect(':memory:', config={'allow_unsigned_extensions': 'true'})
    con.execute("LOAD '%s'")
    for s in settings:
        con.execute(s)
""") % EXT

KILLED_CREATE = CHILD + textwrap.dedent("""
    sid, n = sys.argv[2], int(sys.argv[3])
    con.execute(f"CREATE TABLE big AS SELECT range AS id, random() AS d FROM range({n})")
    con.execute("CREATE TABLE small AS SELECT range AS id, 'row ' || range AS s FROM range(1000)")
    print('READY', flush=True)
    con.execute(f"CALL snapshot_create('*', id := '{sid}')")
    print('DONE', flush=True)
""")

KILLED_COPY = CHILD + textwrap.dedent("""
    print('READY', flush=True)
    print(con.execute(f"CALL snapshot_copy('*', destination := '{sys.argv[2]}')").fetchall(), flush=True)
    print('DONE', flush=True)
""")

WRITER = CHILD + textwrap.dedent("""
    w, go = sys.argv[2], sys.argv[3]
    while not os.path.exists(go):
        time.sleep(0.01)
    done = []
    for i in range(5):
        con.execute(f"CREATE OR REPLACE TABLE t{w} AS SELECT range AS id, {w} AS w FROM range({(i + 1) * 1000})")
        sid = f"w{w}_{i}"
        con.execute(f"CALL snapshot_create('t{w}', id := '{sid}')")
        done.append(sid)
        if w == '0' and i in (1, 3):
            con.execute(f"CALL snapshot_drop('{sid}')")
            done.remove(sid)
    print(json.dumps(done), flush=True)
""")


LOOK = CHILD + textwrap.dedent("""
    ids = sorted(r[0] for r in con.execute("SELECT snapshot_id FROM snapshots()").fetchall())
    verify = con.execute("SELECT snapshot_id, file, status, detail FROM snapshot_verify('*')").fetchall()
    tables = {i: con.execute(f"SELECT table_name, row_count FROM snapshot_tables('{i}') ORDER BY 1").fetchall() for i in ids}
    sums = {i: con.execute(f"SELECT count(*), sum(id) FROM 'big@{i}'").fetchall()[0] for i in ids}
    print(json.dumps({"ids": ids, "verify": verify, "tables": tables, "sums": sums}, default=str))
""")


def look(s3, tmp_path, prefix=PREFIX):
    """What a fresh process sees in the repository: ids, verify rows, tables and big's sums."""
    p = subprocess.run([sys.executable, "-c", LOOK, json.dumps(statements(s3, tmp_path, prefix=prefix, cache="look-cache"))],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def child_env(lease=None):
    env = dict(os.environ)
    if lease is not None:
        env["SNAPSHOT_S3_LOCK_LEASE"] = str(lease)
    return env


def spawn(script, *args, lease=None):
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(lease),
    )


def wait_for_line(proc, token, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            if line.strip() == token:
                return
    proc.kill()
    out, err = proc.communicate(timeout=10)
    raise AssertionError(f"child did not print {token}: rc={proc.returncode} {out} {err}")


def kill9(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for f in (proc.stdout, proc.stderr):
        f.close()


# ---------------------------------------------------------------------------------------------
# 1. the endpoint cannot be reached


def test_unreachable_endpoint_fails_in_one_line_and_changes_nothing(s3, tmp_path):
    proxy = s3.proxy()
    con = s3con(s3, tmp_path, endpoint=proxy.endpoint)
    con.execute("CREATE TABLE t AS SELECT range AS id, range * 3 AS v FROM range(10000)")
    con.execute("CALL snapshot_create('t', id := 'before')")
    con.execute("DELETE FROM t WHERE id >= 5000")
    keys_before = s3.list_keys()
    live_before = rows(con, "SELECT count(*), sum(v) FROM t")
    repo = f"s3://{s3.bucket}/{PREFIX}/{PROJECT}"

    proxy.stop()  # the port now refuses connections
    for sql, what in [
        ("CALL snapshot_create('t', id := 'during')", f"{repo}/"),
        ("FROM snapshots()", repo),
        ("FROM snapshot_tables('before')", f"{repo}/before/"),
        ("SELECT count(*) FROM 't@before'", f"{repo}/before/"),
        ("CALL snapshot_restore('before', 't')", f"{repo}/"),
        ("CALL snapshot_drop('before')", f"{repo}/"),
        ("CALL snapshot_gc()", f"{repo}/"),
    ]:
        started = time.monotonic()
        msg = error_of(con, sql)
        assert time.monotonic() - started < 30, sql
        assert_one_line(msg, what, f"cannot reach the S3 endpoint {proxy.endpoint}", "snapshot_s3_endpoint")
    # the restore that failed did not touch the table
    assert rows(con, "SELECT count(*), sum(v) FROM t") == live_before

    proxy.start()  # the same port again
    assert listed(con) == ["before"]
    assert s3.list_keys() == keys_before
    assert rows(con, "SELECT count(*), sum(v) FROM t") == live_before
    # and the repository works again as before
    con.execute("CALL snapshot_create('t', id := 'after')")
    assert listed(con) == ["after", "before"]
    assert rows(con, "SELECT count(*) FROM 't@before'") == [(10000,)]
    assert_all_verify_ok(con, ["after", "before"])


def test_stopped_server(s3_own, tmp_path):
    """The server process itself is gone (stop, then start again: moto starts empty)."""
    con = s3con(s3_own, tmp_path)
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(100)")
    s3_own.server.stop()
    msg = error_of(con, "CALL snapshot_create('t', id := 'x')")
    assert_one_line(msg, f"s3://{s3_own.bucket}/{PREFIX}/{PROJECT}/", s3_own.endpoint, "snapshot_s3_endpoint")
    msg = error_of(con, "FROM snapshots()")
    assert_one_line(msg, f"s3://{s3_own.bucket}/{PREFIX}/{PROJECT}", s3_own.endpoint, "snapshot_s3_endpoint")
    s3_own.server.start()
    s3_own.server.create_bucket(s3_own.bucket)
    assert listed(con) == []
    assert rows(con, "SELECT count(*) FROM t") == [(100,)]
    con.execute("CALL snapshot_create('t', id := 'x')")
    assert listed(con) == ["x"]


def lose_endpoint_mid_upload(s3, tmp_path, sid="lost"):
    """A create of a multipart-sized table whose endpoint goes away once the first part is on
    its way; returns (connection, proxy, error message) with the proxy back up."""
    proxy = s3.proxy()
    con = s3con(s3, tmp_path, endpoint=proxy.endpoint)
    big_table(con)
    con.execute("CREATE TABLE small AS SELECT range AS id FROM range(100)")
    watcher = when(part_upload_seen(proxy), proxy.stop)
    started = time.monotonic()
    msg = error_of(con, f"CALL snapshot_create('*', id := '{sid}')")
    assert time.monotonic() - started < 60
    watcher.join(timeout=5)
    proxy.start()
    return con, proxy, msg


def test_endpoint_lost_in_the_middle_of_an_upload(s3, tmp_path, monkeypatch):
    # the lock this process held cannot be released while the endpoint is away: a short
    # lease lets the next writer take it over quickly
    monkeypatch.setenv("SNAPSHOT_S3_LOCK_LEASE", "3")
    con, proxy, msg = lose_endpoint_mid_upload(s3, tmp_path)
    assert_one_line(msg, f"s3://{s3.bucket}/{PREFIX}/{PROJECT}/lost/", "snapshot_s3_endpoint")
    assert listed(con) == []
    assert published(s3) == []
    assert rows(con, "SELECT count(*) FROM t") == [(2_000_000,)]
    # gc waits for the dead lock's lease, then removes what the failed create uploaded
    started = time.monotonic()
    rows(con, "CALL snapshot_gc()")
    assert time.monotonic() - started < 30
    assert repo_keys(s3) == []
    # a create now works
    con.execute("CALL snapshot_create('*', id := 'again')")
    assert listed(con) == ["again"]
    assert same_rows(con, "t", "t@again")
    assert stray_keys(s3) == []


def test_failed_create_leaves_no_multipart_upload_behind(s3, tmp_path, monkeypatch):
    """A create that failed (or died) in the middle of a multipart upload leaves an upload
    that no listing shows but the bucket keeps (and bills); after the endpoint is back,
    snapshot_gc must abort it, so that the bucket holds nothing stray."""
    monkeypatch.setenv("SNAPSHOT_S3_LOCK_LEASE", "2")
    con, proxy, msg = lose_endpoint_mid_upload(s3, tmp_path, sid="mp")
    rows(con, "CALL snapshot_gc()")
    assert repo_keys(s3) == []
    assert pending_uploads(s3) == []


def closed_port_with(digits):
    """A port that nothing listens on and whose number contains digits."""
    import socket  # noqa: PLC0415

    for port in range(1024, 65536):
        if digits in str(port):
            with socket.socket() as s:
                try:
                    s.bind((HOST, port))
                except OSError:
                    continue
            return port
    raise AssertionError(f"no free port with {digits}")


def test_unreachable_is_named_whatever_the_digits_in_the_url(s3, tmp_path):
    """The kind of failure must come from the error, not from digits or words that happen to
    be in the endpoint, the bucket or the key: a closed port such as 1403 is unreachable, not 'access
    denied' (nor is a bucket named backup-403-...)."""
    port = closed_port_with("403")
    con = s3con(s3, tmp_path, endpoint=f"http://{HOST}:{port}")
    msg = error_of(con, "FROM snapshots()")
    assert_one_line(msg, f"cannot reach the S3 endpoint http://{HOST}:{port}", "snapshot_s3_endpoint")
    bucket = s3.server.create_bucket(f"backup-403-{s3.bucket[-12:]}")
    proxy = s3.proxy()
    con.execute(f"SET snapshot_s3_endpoint = '{proxy.endpoint}'")
    con.execute(f"SET snapshot_directory = 's3://{bucket}/{PREFIX}'")
    proxy.stop()
    msg = error_of(con, "FROM snapshots()")
    assert_one_line(msg, f"s3://{bucket}/{PREFIX}/{PROJECT}", f"cannot reach the S3 endpoint {proxy.endpoint}")


# ---------------------------------------------------------------------------------------------
# 2. access denied, missing bucket


def test_access_denied(s3, s3_proxy, tmp_path):
    con = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint)
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(1000)")
    con.execute("CALL snapshot_create('t', id := 'ok')")
    s3_proxy.set_mode("403")
    repo = f"s3://{s3.bucket}/{PREFIX}/{PROJECT}"
    for sql in ["CALL snapshot_create('t', id := 'denied')", "FROM snapshots()", "FROM snapshot_verify('*')",
                "CALL snapshot_drop('ok')"]:
        msg = error_of(con, sql)
        text = assert_one_line(msg, repo, "access denied")
        assert "credentials" in text  # what to do
    s3_proxy.set_mode("pass")
    assert listed(con) == ["ok"]
    assert published(s3) == ["ok"]


def test_missing_bucket(s3, tmp_path):
    con = s3con(s3, tmp_path)
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(10)")
    con.execute("SET snapshot_directory = 's3://nosuchbucket-4711/x'")
    for sql in ["CALL snapshot_create('t', id := 'a')", "FROM snapshots()", "CALL snapshot_gc(dry_run := true)"]:
        msg = error_of(con, sql)
        assert_one_line(msg, "s3://nosuchbucket-4711/x/memory", "bucket 'nosuchbucket-4711' does not exist",
                        "create the bucket or correct snapshot_directory")
    # copying into a missing bucket from a good repository
    con.execute(f"SET snapshot_directory = '{s3.url(PREFIX)}'")
    con.execute("CALL snapshot_create('t', id := 'a')")
    msg = error_of(con, "CALL snapshot_copy('*', destination := 's3://nosuchbucket-4711/x')")
    assert_one_line(msg, "s3://nosuchbucket-4711/x", "bucket 'nosuchbucket-4711' does not exist")
    assert "nosuchbucket-4711" not in [b["Name"] for b in s3.server.s3.list_buckets()["Buckets"]]


# ---------------------------------------------------------------------------------------------
# 3. 503


def test_503_then_pass_is_retried(s3, s3_proxy, tmp_path):
    con = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint)
    con.execute("CREATE TABLE t AS SELECT range AS id, random() AS d FROM range(50000)")
    s3_proxy.set_mode("503_then_pass", 2)
    got = rows(con, "CALL snapshot_create('t', id := 'a')")
    assert [(r[0], r[9], r[10]) for r in got] == [("a", "stored", 50000)]
    assert s3_proxy.faults == 2
    assert [h[2] for h in s3_proxy.history[:2]] == ["503", "503"]
    # reads are retried as well
    s3_proxy.set_mode("503_then_pass", 2)
    assert listed(con) == ["a"]
    assert same_rows(con, "t", "t@a")
    assert_all_verify_ok(con, ["a"])


def test_persistent_503_fails_with_kept_failing(s3, s3_proxy, tmp_path):
    con = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint)
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(1000)")
    s3_proxy.set_mode("503")
    started = time.monotonic()
    msg = error_of(con, "CALL snapshot_create('t', id := 'a')")
    assert time.monotonic() - started < 25  # bounded backoff
    assert s3_proxy.faults >= 5  # the first try and 4 retries
    assert_one_line(msg, f"s3://{s3.bucket}/{PREFIX}/{PROJECT}/", "the server kept failing (HTTP 503) after retries", "try again later")
    msg = error_of(con, "FROM snapshots()")
    assert_one_line(msg, f"s3://{s3.bucket}/{PREFIX}/{PROJECT}", "the server kept failing (HTTP 503) after retries")
    s3_proxy.set_mode("pass")
    assert listed(con) == []
    assert s3.list_keys() == []


def test_503_from_the_middle_of_a_create(s3, s3_proxy, tmp_path, monkeypatch):
    """The server starts failing once the data is on its way: nothing is published, and gc
    removes the uploads once the server answers again."""
    monkeypatch.setenv("SNAPSHOT_S3_LOCK_LEASE", "2")
    con = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint)
    big_table(con)
    con.execute("CREATE TABLE small AS SELECT range AS id FROM range(100)")
    watcher = when(part_upload_seen(s3_proxy), lambda: s3_proxy.set_mode("503"))
    msg = error_of(con, "CALL snapshot_create('*', id := 'a')")
    watcher.join(timeout=5)
    assert_one_line(msg, f"s3://{s3.bucket}/{PREFIX}/{PROJECT}/")
    s3_proxy.set_mode("pass")
    assert listed(con) == []
    assert published(s3) == []
    rows(con, "CALL snapshot_gc()")
    assert repo_keys(s3) == []


# ---------------------------------------------------------------------------------------------
# 4. connections cut in the middle of a body


def test_upload_cut_midway_is_retried(s3, s3_proxy, tmp_path):
    con = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint)
    big_table(con)
    s3_proxy.set_mode("drop_after_bytes", 4_000_000, times=2)
    got = rows(con, "CALL snapshot_create('t', id := 'a')")
    assert [(r[0], r[9], r[10]) for r in got] == [("a", "stored", 2_000_000)]
    cut = [h for h in s3_proxy.history if h[2] == "cut"]
    assert len(cut) == 2 and all(h[0] == "PUT" for h in cut), s3_proxy.history
    assert listed(con) == ["a"]
    assert same_rows(con, "t", "t@a")
    assert_all_verify_ok(con, ["a"])
    assert stray_keys(s3) == []


def test_upload_cut_every_time_fails_cleanly(s3, s3_proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("SNAPSHOT_S3_LOCK_LEASE", "2")
    con = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint)
    big_table(con)
    con.execute("CREATE TABLE small AS SELECT range AS id FROM range(100)")
    s3_proxy.set_mode("drop_after_bytes", 1_000_000)
    started = time.monotonic()
    msg = error_of(con, "CALL snapshot_create('*', id := 'a')")
    assert time.monotonic() - started < 60
    assert_one_line(msg, f"s3://{s3.bucket}/{PREFIX}/{PROJECT}/a/main.t.parquet")
    s3_proxy.set_mode("pass")
    assert listed(con) == []
    assert published(s3) == []
    gc = rows(con, "CALL snapshot_gc()")
    assert all(r[3] == "deleted" for r in gc), gc
    assert repo_keys(s3) == []


def test_download_cut_midway_is_retried(s3, s3_proxy, tmp_path):
    con = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint)
    con.execute("CREATE TABLE t AS SELECT range AS id, random() AS d FROM range(300000)")
    con.execute("CALL snapshot_create('t', id := 'a')")
    # a second process (own, empty cache) reads it: its first download is cut twice
    reader = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint, cache="cache2")
    s3_proxy.reset_counts()
    s3_proxy.set_mode("drop_after_bytes", 200_000, times=2)
    (n, total), = rows(reader, "SELECT count(*), sum(id) FROM 't@a'")
    assert (n, total) == (300000, 300000 * 299999 // 2)
    cut = [h for h in s3_proxy.history if h[2] == "cut"]
    assert len(cut) == 2 and all(h[0] == "GET" and h[1].endswith("/a/main.t.parquet") for h in cut), s3_proxy.history
    # what entered the cache is the whole verified file
    objects = os.listdir(tmp_path / "cache2" / "objects")
    assert [f for f in objects if not f.startswith(".")] and all(not f.startswith(".") for f in objects), objects
    assert same_rows(con, "t", "t@a")


def test_download_cut_every_time(s3, s3_proxy, tmp_path):
    """A read that cannot get its file fails in one line naming the object; verify does not
    call a file it could not download corrupt; nothing half-downloaded stays in the cache."""
    con = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint)
    con.execute("CREATE TABLE t AS SELECT range AS id, random() AS d FROM range(300000)")
    con.execute("CALL snapshot_create('t', id := 'a')")
    reader = s3con(s3, tmp_path, endpoint=s3_proxy.endpoint, cache="cache2")
    s3_proxy.set_mode("drop_after_bytes", 100_000)
    msg = error_of(reader, "SELECT count(*) FROM 't@a'")
    assert_one_line(msg, f"s3://{s3.bucket}/{PREFIX}/{PROJECT}/a/main.t.parquet")
    assert [f for f in os.listdir(tmp_path / "cache2" / "objects")] == []
    try:
        got = rows(reader, "SELECT snapshot_id, file, status, detail FROM snapshot_verify('*')")
    except duckdb.Error as e:  # failing the call is fine too
        assert_one_line(str(e), f"s3://{s3.bucket}/")
    else:
        assert [r for r in got if r[2] == "corrupt"] == [], f"a network failure reported as corruption: {got}"
    s3_proxy.set_mode("pass")
    assert rows(reader, "SELECT count(*) FROM 't@a'") == [(300000,)]
    assert_all_verify_ok(reader, ["a"])


# ---------------------------------------------------------------------------------------------
# 5. kill -9 during a create


def test_kill_9_during_create_publishes_nothing_partial(s3, tmp_path):
    settings = statements(s3, tmp_path)  # one cache folder for the killed writers and gc
    n = 3_000_000
    victims = []

    def data_but_no_metadata(sid):
        def check():
            keys = s3.list_keys(f"{PREFIX}/{PROJECT}/{sid}/")
            return any(k.endswith(".parquet") for k in keys) and not any(k.endswith("metadata.json") for k in keys)
        return check

    def metadata_written(sid):
        return lambda: s3.exists(f"{PREFIX}/{PROJECT}/{sid}/metadata.json")

    triggers = [("k020", 0.2), ("k050", 0.5), ("k100", 1.0), ("k200", 2.0),
                ("kdata", data_but_no_metadata("kdata")),  # data uploaded, not published
                ("kpub", metadata_written("kpub"))]  # published, lock not yet released
    for sid, trigger in triggers:
        wait_lock_expired(s3)  # the previous victim's lease (2 s): this one starts at once
        victims.append(sid)
        p = spawn(KILLED_CREATE, json.dumps(settings), sid, n, lease=2)
        try:
            wait_for_line(p, "READY")
            if callable(trigger):
                deadline = time.monotonic() + 60
                while not trigger() and time.monotonic() < deadline and p.poll() is None:
                    time.sleep(0.005)
            else:
                time.sleep(trigger)
        finally:
            kill9(p)
        # another process lists: whatever it lists is complete
        seen = look(s3, tmp_path)
        assert set(seen["ids"]) <= set(victims)
        assert set(seen["ids"]) <= set(published(s3))
        assert [r for r in seen["verify"] if r[2] != "ok"] == [], seen["verify"]
        assert sorted({r[0] for r in seen["verify"]}) == seen["ids"]
        for sid_ in seen["ids"]:
            assert seen["tables"][sid_] == [["big", n], ["small", 1000]]
            assert seen["sums"][sid_] == [n, n * (n - 1) // 2]
    assert "kpub" in published(s3)
    assert set(published(s3)) < set(victims), "no kill landed before publication"

    # gc, by a writer with the default lease and lock timeout: takes over the dead lock
    con = s3con(s3, tmp_path)
    ids = published(s3)
    dry = rows(con, "CALL snapshot_gc(dry_run := true)")
    assert all(r[3] == "would delete" for r in dry)
    kinds = {r[1] for r in dry}
    assert "staging folder of a process that is gone" in kinds, dry
    assert kinds <= {"unpublished snapshot", "staging folder of a process that is gone", "unfinished multipart upload"}, dry
    assert not any(r[0].endswith(tuple(f"/{i}" for i in ids)) for r in dry), dry
    started = time.monotonic()
    done = rows(con, "CALL snapshot_gc()")
    assert time.monotonic() - started < 30
    assert sorted((r[0], r[1]) for r in done) == sorted((r[0], r[1]) for r in dry)
    assert all(r[3] == "deleted" for r in done)
    # the bucket now holds only the published snapshots' files (the dead lock was released too)
    assert stray_keys(s3) == []
    assert not s3.exists(f"{PREFIX}/{PROJECT}/.lock")
    assert listed(con) == ids
    assert_all_verify_ok(con, ids)
    # the killed writers' staging folders are gone from the shared cache
    staging = tmp_path / "cache" / "staging"
    assert not staging.exists() or os.listdir(staging) == []
    assert rows(con, "CALL snapshot_gc(dry_run := true)") == []


# ---------------------------------------------------------------------------------------------
# 6. kill -9 during snapshot_copy


def test_kill_9_during_copy_then_rerun(s3, tmp_path):
    local = tmp_path / "local"
    con = connect(snapdir=str(local))
    con.execute(f"SET snapshot_cache_directory='{tmp_path / 'cache'}'")
    for stmt in s3.settings_statements():
        con.execute(stmt)
    expected = {}
    for i in range(3):
        big_table(con, "t")
        con.execute(f"CREATE OR REPLACE TABLE u AS SELECT range AS id FROM range({1000 * (i + 1)})")
        con.execute(f"CALL snapshot_create('*', id := 's{i}', incremental := false)")
        expected[f"s{i}"] = rows(con, "SELECT count(*), sum(d) FROM t")[0]
    dst = s3.url("dst")
    settings = [*s3.settings_statements(), f"SET snapshot_cache_directory='{tmp_path / 'cache-copy'}'",
                f"SET snapshot_directory='{local}'"]
    dst_base = f"dst/{PROJECT}/"

    def some_parquet_uploaded():
        return any(k.endswith(".parquet") for k in s3.list_keys(dst_base))

    def one_published():
        return any(k.endswith("/metadata.json") for k in s3.list_keys(dst_base))

    reader = connect()
    for stmt in statements(s3, tmp_path, prefix="dst", cache="reader-cache"):
        reader.execute(stmt)
    for trigger in (some_parquet_uploaded, one_published):
        wait_lock_expired(s3, prefix="dst")
        p = spawn(KILLED_COPY, json.dumps(settings), dst, lease=2)
        try:
            wait_for_line(p, "READY")
            deadline = time.monotonic() + 60
            while not trigger() and time.monotonic() < deadline and p.poll() is None:
                time.sleep(0.005)
        finally:
            kill9(p)
        ids = listed(reader)
        assert set(ids) <= set(expected)
        assert ids == published(s3, prefix="dst")
        assert_all_verify_ok(reader, ids)
        for sid in ids:
            (cnt, total), = rows(reader, f"SELECT count(*), sum(d) FROM 't@{sid}'")
            assert cnt == expected[sid][0] and total == pytest.approx(expected[sid][1])
    assert len(listed(reader)) < 3, "the copy was not interrupted: make the snapshots bigger"

    # the rerun completes, reusing what the killed copies uploaded
    started = time.monotonic()
    got = rows(con, f"CALL snapshot_copy('*', destination := '{dst}')")
    assert time.monotonic() - started < 60
    assert sorted(r[0] for r in got) == ["s0", "s1", "s2"]
    assert sum(r[3] for r in got) > 0, got  # files_skipped
    assert listed(reader) == ["s0", "s1", "s2"]
    assert_all_verify_ok(reader, ["s0", "s1", "s2"])
    for sid, (cnt, total) in expected.items():
        (c2, t2), = rows(reader, f"SELECT count(*), sum(d) FROM 't@{sid}'")
        assert c2 == cnt and t2 == pytest.approx(total)
    # and a third run has nothing left to copy
    again = rows(con, f"CALL snapshot_copy('*', destination := '{dst}')")
    assert [(r[0], r[1], r[2]) for r in sorted(again)] == [("s0", 0, 0), ("s1", 0, 0), ("s2", 0, 0)]
    rows(reader, "CALL snapshot_gc()")
    assert stray_keys(s3, prefix="dst") == []


# ---------------------------------------------------------------------------------------------
# 7. two writer processes on one prefix


def test_two_writer_processes_on_one_prefix(s3, tmp_path):
    go = tmp_path / "go"
    procs = [spawn(WRITER, json.dumps(statements(s3, tmp_path, cache=f"cache{w}")), w, go) for w in (0, 1)]
    try:
        time.sleep(0.5)
        go.write_text("go")
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                kill9(p)
    expected = ["w0_0", "w0_2", "w0_4", "w1_0", "w1_1", "w1_2", "w1_3", "w1_4"]
    assert sorted(outs[0] + outs[1]) == expected
    con = s3con(s3, tmp_path, cache="reader")
    assert listed(con) == expected
    assert published(s3) == expected
    assert_all_verify_ok(con, expected)
    for sid in expected:
        w, i = sid[1], int(sid[3])
        assert rows(con, f"SELECT count(*), min(w), max(w) FROM 't{w}@{sid}'") == [((i + 1) * 1000, int(w), int(w))]
    assert [r for r in rows(con, "CALL snapshot_gc(dry_run := true)") if r[1] == "unpublished snapshot"] == []
    assert not s3.exists(f"{PREFIX}/{PROJECT}/.lock")


def test_writer_waits_for_a_live_lock_then_proceeds(s3, tmp_path, monkeypatch):
    """A lock held by a live writer (lease renewed) is not taken over; a second writer waits
    and fails after snapshot_lock_timeout, naming the repository."""
    monkeypatch.setenv("SNAPSHOT_S3_LOCK_LEASE", "1")
    key = f"{PREFIX}/{PROJECT}/.lock"
    # a lease that runs out in an hour: as a live writer elsewhere would keep it
    s3.put(key, json.dumps({"owner": "elsewhere:1:1:0", "expires_at_micros": int(time.time() * 1e6) + 3_600_000_000}))
    con = s3con(s3, tmp_path)
    con.execute("SET snapshot_lock_timeout = 2")
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(10)")
    started = time.monotonic()
    msg = error_of(con, "CALL snapshot_create('t', id := 'a')")
    assert 1.5 < time.monotonic() - started < 10
    assert_one_line(msg, f"s3://{s3.bucket}/{PREFIX}/{PROJECT}")
    assert listed(con) == []
    assert json.loads(s3.get(key))["owner"] == "elsewhere:1:1:0"  # not taken over
    s3.delete(key)
    con.execute("CALL snapshot_create('t', id := 'a')")
    assert listed(con) == ["a"]


def paused_writer(s3, tmp_path, stop_when, use_proxy=False):
    """A writer (lease 1 s) creating a big snapshot is paused (SIGSTOP) once stop_when(proxy)
    holds, for longer than its lease; meanwhile snapshot_gc in this process takes its lock
    over. Returns (gc rows, child's rc, child's stderr) once the writer went on and ended."""
    proxy = s3.proxy()
    settings = statements(s3, tmp_path, endpoint=proxy.endpoint if use_proxy else None, cache="cache-paused")
    p = spawn(KILLED_CREATE, json.dumps(settings), "victim", 3_000_000, lease=1)
    try:
        wait_for_line(p, "READY")
        deadline = time.monotonic() + 60
        while not stop_when(proxy) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.001)
        assert p.poll() is None, "the writer ended before the pause"
        os.kill(p.pid, signal.SIGSTOP)
        time.sleep(1.5)  # the lease runs out
        con = s3con(s3, tmp_path, cache="cache-gc")
        gc = rows(con, "CALL snapshot_gc()")
        con.close()
        os.kill(p.pid, signal.SIGCONT)
        _, err = p.communicate(timeout=60)
        return gc, p.returncode, err
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            kill9(p)


def test_writer_paused_past_its_lease_while_uploading_publishes_nothing(s3, tmp_path):
    """Paused while its big file is still being uploaded: once it runs again it finds its
    lock taken over and publishes nothing."""
    def small_uploaded_big_pending(_proxy):
        return (any(k.endswith("/victim/main.small.parquet") for k in s3.list_keys(f"{PREFIX}/{PROJECT}/"))
                and bool(pending_uploads(s3)))

    gc, rc, err = paused_writer(s3, tmp_path, small_uploaded_big_pending)
    # the folder goes, and the big file's upload the paused writer had not finished is aborted
    assert sorted(r[1] for r in gc) == ["unfinished multipart upload", "unpublished snapshot"], gc
    assert rc != 0
    assert_one_line(err.strip().splitlines()[-1], "lost the lock", "nothing was published")
    con = s3con(s3, tmp_path, cache="reader")
    assert listed(con) == []
    # the failed writer may have left its big file's last request in flight when it exited
    # (the server completes it a moment later): let it land before the gc below
    time.sleep(1.0)
    rows(con, "CALL snapshot_gc()")
    assert repo_keys(s3) == []


def test_writer_paused_past_its_lease_before_publishing_publishes_nothing(s3, tmp_path):
    """Paused while its last data request (completing the multipart upload) is in flight,
    i.e. just before it writes metadata.json: gc, having taken the expired lock over, removes
    the folder as unpublished; the writer then wakes up and must not publish a snapshot whose
    files are gone (every listed snapshot must verify ok)."""
    def completing(proxy):
        return any(m == "POST" and "uploadId=" in target for m, target, _ in list(proxy.history))

    gc, rc, err = paused_writer(s3, tmp_path, completing, use_proxy=True)
    # the folder of the paused writer went (and its upload, if still unfinished, was aborted)
    assert "unpublished snapshot" in [r[1] for r in gc], gc
    assert set(r[1] for r in gc) <= {"unpublished snapshot", "unfinished multipart upload"}, gc
    con = s3con(s3, tmp_path, cache="reader")
    ids = listed(con)
    assert_all_verify_ok(con, ids)
    assert ids == [], f"published after losing the lock (writer rc={rc}): {ids}"


def test_gc_never_deletes_files_of_a_published_snapshot(s3, tmp_path):
    """This process lists while another writer's snapshot is half uploaded; the writer then
    publishes it (its create succeeds) but its last request, replacing .generation, fails
    (503). gc here must still see that the snapshot is published and leave its files alone:
    a destructive operation under the lock must not act on a listing cached from before."""
    con = s3con(s3, tmp_path, cache="cache-p")
    con.execute("CREATE TABLE big AS SELECT 1 AS id")
    con.execute("CALL snapshot_create('big', id := 'first')")
    proxy = s3.proxy()
    settings = statements(s3, tmp_path, endpoint=proxy.endpoint, cache="cache-w")
    p = spawn(KILLED_CREATE, json.dumps(settings), "x", 3_000_000, lease=2)
    try:
        wait_for_line(p, "READY")
        base = f"{PREFIX}/{PROJECT}/x/"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            keys = s3.list_keys(base)
            if any(k.endswith(".parquet") for k in keys) and f"{base}metadata.json" not in keys:
                break
            time.sleep(0.002)
        os.kill(p.pid, signal.SIGSTOP)  # x: some data uploaded, not published
        assert listed(con) == ["first"]  # this process lists now
        metadata_sent = lambda: any(m == "PUT" and t.endswith("/x/metadata.json") for m, t, _ in list(proxy.history))  # noqa: E731
        watcher = when(metadata_sent, lambda: proxy.set_mode("503"))  # what follows the publication fails
        os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=60)
        watcher.join(timeout=5)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            kill9(p)
    proxy.set_mode("pass")
    assert p.returncode == 0 and "DONE" in out, err  # the writer was told x is created
    assert "x" in published(s3)
    gc = rows(con, "CALL snapshot_gc()")
    seen = look(s3, tmp_path)
    assert seen["ids"] == ["first", "x"]
    assert [r for r in seen["verify"] if r[2] != "ok"] == [], (gc, seen["verify"])


# ---------------------------------------------------------------------------------------------
# 8. secrets


class _Echo(BaseHTTPRequestHandler):
    """An 'S3' that answers every request 400 with a body that repeats the session token and
    the request's headers (as real S3 does for SignatureDoesNotMatch: the canonical request,
    x-amz-security-token included), under an error code the extension does not know, so its
    message passes the server's text on."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        echoed = " ".join(f"{k}={v}" for k, v in self.headers.items())
        body = f"{TOKEN} WeirdError {echoed}".encode()  # short: the message keeps its first 200 characters
        self.send_response(400)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

    def log_message(self, *a):
        pass


def test_no_secret_in_any_message_or_row(s3, tmp_path):
    proxy = s3.proxy()
    con = s3con(s3, tmp_path, endpoint=proxy.endpoint, secret=SECRET, token=TOKEN)
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(1000)")
    outputs = []

    def ok(sql):
        got = rows(con, sql)
        outputs.append(repr(got))
        return got

    def fails(sql):
        msg = error_of(con, sql)
        outputs.append(msg)
        return msg

    # succeeding operations
    ok("CALL snapshot_create('t', id := 'a')")
    ok("FROM snapshots()")
    ok("FROM snapshot_tables('*')")
    ok("FROM snapshot_verify('*')")
    ok("SELECT count(*) FROM 't@a'")
    ok("CALL snapshot_gc(dry_run := true)")
    ok(f"CALL snapshot_copy('a', destination := '{tmp_path / 'copy'}')")
    settings = dict((r[0], r[1]) for r in ok("SELECT name, value FROM snapshot_settings()"))
    assert settings["snapshot_s3_secret_access_key"] == "***"
    assert settings["snapshot_s3_session_token"] == "***"
    assert settings["snapshot_s3_access_key_id"] == s3.access_key_id
    # nor in what was written: the objects (metadata, lock) and the local copy and cache
    for key in s3.list_keys():
        data = s3.get(key)
        assert SECRET.encode() not in data and TOKEN.encode() not in data, key
    for folder in (tmp_path / "copy", tmp_path / "cache"):
        for root, _, files in os.walk(folder):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    data = fh.read()
                assert SECRET.encode() not in data and TOKEN.encode() not in data, f
    # failing ones: 403, 503, unreachable, a missing bucket, an error the extension does not know
    proxy.set_mode("403")
    fails("CALL snapshot_create('t', id := 'b')")
    proxy.set_mode("503")
    fails("FROM snapshots()")
    proxy.stop()
    fails("CALL snapshot_create('t', id := 'b')")
    fails("SELECT count(*) FROM 't@a'")
    con.execute(f"SET snapshot_s3_endpoint = '{s3.endpoint}'")
    con.execute("SET snapshot_directory = 's3://nosuchbucket-4712/x'")
    fails("CALL snapshot_create('t', id := 'b')")
    echo = ThreadingHTTPServer((HOST, free_port()), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    try:
        con.execute(f"SET snapshot_s3_endpoint = 'http://{HOST}:{echo.server_address[1]}'")
        con.execute("SET snapshot_directory = 's3://b/p'")  # short, so the server's text shows
        msg = fails("FROM snapshots()")
        assert_one_line(msg, "s3://b/p/memory")
        msg = fails("CALL snapshot_create('t', id := 'b')")
        text = assert_one_line(msg, "s3://b/p/memory/.lock")
        # the server's text (starting with the token) is passed on, masked; unless the digits
        # of the port or of the elapsed time made the message another kind (a known bug)
        assert "400 Bad Request: ***" in text or "Bad Request" not in text, text
    finally:
        echo.shutdown()
        echo.server_close()
    assert len(outputs) == 15
    for out in outputs:
        assert SECRET not in out and TOKEN not in out, out


def test_secret_settings_are_documented_as_visible_to_duckdb(tmp_path):
    """DuckDB's own duckdb_settings() and current_setting() show any value that was SET (the
    C API gives an extension no way to hide an option's value); the README says so and points
    to the AWS environment variables and ~/.aws profile, which keep the secret out of the
    session. The extension itself masks it (snapshot_settings(), errors)."""
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")).read()
    assert "duckdb_settings()" in readme and "AWS_SECRET_ACCESS_KEY" in readme
    con = connect()
    con.execute(f"SET snapshot_s3_secret_access_key = '{SECRET}'")
    con.execute(f"SET snapshot_directory = 's3://nowhere-bucket/p'")
    con.execute("SET snapshot_s3_endpoint = 'http://127.0.0.1:9'")
    con.execute("SET snapshot_s3_access_key_id = 'AKIDEXAMPLE'")
    shown = repr(rows(con, "SELECT value FROM snapshot_settings() WHERE name = 'snapshot_s3_secret_access_key'"))
    assert SECRET not in shown and "***" in shown


def test_shell_on_faults_and_secrets(s3, tmp_path):
    """The same in the real DuckDB shell: a working session, then a denied one and an
    unreachable one; one-line errors, no secret anywhere."""
    proxy = s3.proxy()
    sets = "\n".join(s + ";" for s in statements(s3, tmp_path, endpoint=proxy.endpoint, secret=SECRET, token=TOKEN))
    rc, out, err = run_shell(
        sets + "\nCREATE TABLE t AS SELECT range AS id FROM range(1234);\n"
        "CALL snapshot_create('t', id := 'sh');\n"
        "SELECT snapshot_id, row_count FROM snapshots();\n"
        "SELECT name, value FROM snapshot_settings() WHERE name LIKE 'snapshot_s3_%';\n"
    )
    assert rc == 0, err
    assert out[-2] == [{"snapshot_id": "sh", "row_count": 1234}]
    shown = {r["name"]: r["value"] for r in out[-1]}
    assert shown["snapshot_s3_secret_access_key"] == "***" and shown["snapshot_s3_session_token"] == "***"
    texts = [json.dumps(out), err]
    proxy.set_mode("403")
    rc, out, err = run_shell(sets + "\nSELECT snapshot_id FROM snapshots();\n")
    assert rc != 0
    assert_one_line(err.strip(), f"s3://{s3.bucket}/{PREFIX}/{PROJECT}", "access denied")
    texts += [json.dumps(out), err]
    proxy.stop()
    rc, out, err = run_shell(sets + "\nCREATE TABLE t AS SELECT 1 AS id;\nCALL snapshot_create('t', id := 'sh2');\n")
    assert rc != 0
    assert_one_line(err.strip(), f"s3://{s3.bucket}/{PREFIX}/{PROJECT}/", "snapshot_s3_endpoint")
    texts += [json.dumps(out), err]
    for t in texts:
        assert SECRET not in t and TOKEN not in t, t
    proxy.start()
    assert published(s3) == ["sh"]
