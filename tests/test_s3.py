"""Issue 13: repositories on S3-compatible object storage (a local moto server started by the
tests), and snapshot_copy between any two repositories. Every function is exercised on a
bucket and its results compared with the same calls on a local folder."""
import os
import shutil
import subprocess
import sys

import duckdb
import pytest

from conftest import EXT, rows, run_shell


def s3con(s3, tmp_path, path=":memory:", directory=None, project=None):
    con = duckdb.connect(str(path), config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    for stmt in s3.settings_statements():
        con.execute(stmt)
    con.execute(f"SET snapshot_cache_directory = '{tmp_path / 'cache'}'")
    con.execute(f"SET snapshot_directory = '{directory or s3.url('repo')}'")
    if project:
        con.execute(f"SET snapshot_project = '{project}'")
    return con


def test_layout_in_the_bucket_is_the_local_layout(s3, tmp_path):
    """The keys under the prefix are exactly the local repository's relative paths."""
    local = tmp_path / "local"
    results = {}
    for where in ("s3", "local"):
        con = s3con(s3, tmp_path, directory=s3.url("repo") if where == "s3" else str(local))
        con.execute("CREATE TABLE t AS SELECT range AS id, range * 2 AS v FROM range(50000)")
        con.execute("CALL snapshot_create('t', id := 'a')")
        con.execute("UPDATE t SET v = -1 WHERE id < 5")
        con.execute("CALL snapshot_create('t', id := 'b')")
        results[where] = rows(con, "SELECT snapshot_id, parent_id, row_count, size_bytes FROM snapshots() ORDER BY 1")
        con.close()
    assert results["s3"] == results["local"]
    # hidden objects (.lock, .generation) are the repository's own, like the local .lock
    keys = [k[len("repo/"):] for k in s3.list_keys("repo/") if "/." not in "/" + k]
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file() and p.name != ".lock")
    assert keys == files
    assert "memory/b/main.t.delta.parquet" in keys and "memory/b/metadata.json" in keys


def test_every_function_on_a_bucket(s3, tmp_path):
    con = s3con(s3, tmp_path)
    con.execute("CREATE SCHEMA s")
    con.execute("CREATE TABLE s.orders AS SELECT range AS id, range % 7 AS k, 'x' || range AS name FROM range(20000)")
    con.execute("CREATE VIEW s.big AS SELECT * FROM s.orders WHERE k = 3")
    con.execute("CALL snapshot_create('*', id := 'v1', description := 'first')")
    con.execute("UPDATE s.orders SET name = 'changed' WHERE id < 100")
    con.execute("DELETE FROM s.orders WHERE id >= 19990")
    created = rows(con, "CALL snapshot_create('*', id := 'v2')")
    assert [(r[0], r[4], r[9]) for r in created] == [("v2", "v1", "stored")]
    listed = rows(con, "SELECT snapshot_id, type, table_count, row_count, parent_id, description FROM snapshots() ORDER BY 1")
    assert listed == [("v1", "manual", 1, 20000, None, "first"), ("v2", "manual", 1, 19990, "v1", None)]
    # v2 is incremental on the bucket: it reuses v1's base
    assert rows(con, "SELECT bytes_reused > 0 FROM snapshot_tables('v2')") == [(True,)]
    assert rows(con, "SELECT count(*), count(*) FILTER (name = 'changed') FROM 's.orders@v2'") == [(19990, 100)]
    assert rows(con, "SELECT count(*) FROM read_snapshot('v1', 's.orders') WHERE id >= 19990") == [(10,)]
    assert rows(con, "SELECT change, count(*) FROM snapshot_diff('v1', 'v2', 's.orders') GROUP BY 1 ORDER BY 1") == [
        ("delete", 110), ("insert", 100)]  # no key: a changed row is a delete and an insert
    assert [r[0] for r in rows(con, "SELECT snapshot_id FROM snapshot_history('s.orders') ORDER BY 1")] == ["v1", "v2"]
    assert rows(con, "SELECT count(*) FROM snapshot_verify('*') WHERE status <> 'ok'") == [(0,)]
    # mount: views over the bucket's snapshot, read through the cache
    con.execute("CALL snapshot_mount('v1', schema := 'past')")
    assert rows(con, "SELECT count(*) FROM past.orders WHERE name = 'changed'") == [(0,)]
    con.execute("CALL snapshot_unmount('past')")
    # restore the whole database from the bucket
    con.execute("DROP VIEW s.big")
    con.execute("DELETE FROM s.orders")
    out = rows(con, "CALL snapshot_restore('v1', '*')")
    assert any(r[2] == "s.orders" for r in out)
    assert rows(con, "SELECT count(*), count(*) FILTER (name = 'changed') FROM s.orders") == [(20000, 0)]
    assert rows(con, "SELECT count(*) FROM s.big") == [(2857,)]
    # pin, prune, drop, drop_table/undrop, export, gc
    con.execute("CALL snapshot_pin('v1')")
    with pytest.raises(duckdb.Error, match="pinned"):
        con.execute("CALL snapshot_drop('v1')")
    dropped = rows(con, "CALL snapshot_drop_table('s.orders')")
    assert dropped[0][1] == "s.orders"
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'orders'") == [(0,)]
    con.execute("CALL snapshot_undrop('s.orders')")
    assert rows(con, "SELECT count(*) FROM s.orders") == [(20000,)]
    export = tmp_path / "export"
    assert rows(con, f"SELECT files FROM snapshot_export('v2', '{export}')") == [(2,)]
    assert sorted(os.listdir(export)) == ["metadata.json", "s.orders.parquet"]
    before = set(s3.list_keys("repo/"))
    pruned = rows(con, "SELECT snapshot_id, action FROM snapshot_prune(keep_last := 1, type := 'manual') ORDER BY 1")
    assert pruned == [("v1", "keep"), ("v2", "keep")] or ("v1", "keep") in pruned
    con.execute("CALL snapshot_unpin('v1')")
    d = rows(con, "CALL snapshot_drop('v1')")
    # v2 still reads v1's base: the folder stays, retired, and is no longer listed
    assert d[0][0] == "v1" and d[0][3] >= 1
    keys = set(s3.list_keys("repo/"))
    assert "repo/memory/v1/metadata.json" not in keys and "repo/memory/v1/retired.json" in keys
    assert "v1" not in [r[0] for r in rows(con, "SELECT snapshot_id FROM snapshots()")]
    assert rows(con, "SELECT count(*) FROM 's.orders@v2'") == [(19990,)]
    assert before != keys
    # a stray object of an interrupted upload is gc's
    s3.put("repo/memory/ghost/s.orders.parquet", b"PAR1")
    gc = rows(con, "CALL snapshot_gc()")
    assert [(r[0], r[1], r[3]) for r in gc] == [(s3.url("repo/memory/ghost"), "unpublished snapshot", "deleted")]
    assert not any(k.startswith("repo/memory/ghost/") for k in s3.list_keys("repo/"))
    con.close()


def test_round_trip_local_to_bucket_to_a_fresh_database(s3, tmp_path):
    """local repository -> copy to S3 -> original database and repository lost -> restore from
    S3 in a new process -> copy back to a new local repository, chain intact."""
    db = tmp_path / "prod.duckdb"
    local = tmp_path / "snaps"
    con = s3con(s3, tmp_path, path=db, directory=str(local))
    con.execute("CREATE TABLE t AS SELECT range AS id, range * 3 AS v FROM range(100000)")
    for i in range(4):
        con.execute(f"UPDATE t SET v = v + 1 WHERE id % 997 = {i}")
        con.execute(f"CALL snapshot_create('*', id := 'day{i}')")
    expected = rows(con, "SELECT sum(v), count(*) FROM t")
    chain_bytes = sum(p.stat().st_size for p in local.rglob("*") if p.is_file() and p.name != ".lock")
    copied = rows(con, f"CALL snapshot_copy('*', destination := '{s3.url('offsite')}')")
    assert [r[0] for r in copied] == ["day0", "day1", "day2", "day3"]
    assert all(r[1] >= 2 and r[3] >= 0 for r in copied)
    assert sum(r[2] for r in copied) <= 1.1 * chain_bytes
    # again: nothing to copy, every file skipped
    again = rows(con, f"CALL snapshot_copy('*', destination := '{s3.url('offsite')}')")
    assert all(r[1] == 0 and r[2] == 0 and r[3] > 0 for r in again)
    con.close()
    os.remove(db)
    shutil.rmtree(local)
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    script = f"""
import duckdb
con = duckdb.connect({str(tmp_path / 'new.duckdb')!r}, config={{'allow_unsigned_extensions': 'true'}})
con.execute("LOAD '{EXT}'")
for s in {s3.settings_statements()!r}:
    con.execute(s)
con.execute("SET snapshot_cache_directory = '{tmp_path / 'cache2'}'")
con.execute("SET snapshot_directory = '{s3.url('offsite')}'")
con.execute("SET snapshot_project = 'prod'")
print([r[0] for r in con.execute("SELECT snapshot_id FROM snapshots() ORDER BY 1").fetchall()])
con.execute("CALL snapshot_restore('day3', '*')")
print(con.execute("SELECT sum(v), count(*) FROM t").fetchall())
con.execute("SET snapshot_directory = '{tmp_path / 'back'}'")
print(con.execute("CALL snapshot_copy('day3', source := '{s3.url('offsite')}')").fetchall())
print(con.execute("SELECT snapshot_id, parent_id FROM snapshots()").fetchall())
print(con.execute("SELECT sum(v) FROM 't@day3'").fetchall())
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "['day0', 'day1', 'day2', 'day3']"
    assert lines[1] == str(expected)
    assert lines[3] == "[('day3', 'day2')]"  # lineage kept
    assert lines[4] == str([(expected[0][0],)])
    # the parents' folders came along as retired folders (files day3 reads), not as snapshots
    back = tmp_path / "back" / "prod"
    assert (back / "day0" / "retired.json").is_file() and not (back / "day0" / "metadata.json").exists()


def test_copy_refuses_bad_requests(s3, tmp_path):
    con = s3con(s3, tmp_path)
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    con.execute("CALL snapshot_create('t', id := 'one')")
    with pytest.raises(duckdb.Error, match="exactly one of destination"):
        con.execute("CALL snapshot_copy('*')")
    with pytest.raises(duckdb.Error, match="same repository"):
        con.execute(f"CALL snapshot_copy('*', destination := '{s3.url('repo')}')")
    with pytest.raises(duckdb.Error, match="snapshot 'nope' not found"):
        con.execute(f"CALL snapshot_copy('nope', destination := '{tmp_path / 'x'}')")
    with pytest.raises(duckdb.Error, match="does not name a bucket"):
        con.execute("CALL snapshot_copy('*', destination := 's3:///x')")
    # a destination holding another snapshot under the same id
    other = tmp_path / "other"
    con.execute(f"SET snapshot_directory = '{other}'")
    con.execute("CREATE TABLE u AS SELECT 2 AS b")
    con.execute("CALL snapshot_create('u', id := 'one')")
    con.execute(f"SET snapshot_directory = '{s3.url('repo')}'")
    with pytest.raises(duckdb.Error, match="already exists in .* with other contents"):
        con.execute(f"CALL snapshot_copy('one', destination := '{other}')")
    con.close()


def test_repeated_read_is_served_from_the_cache(s3, tmp_path):
    con = s3con(s3, tmp_path)
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(10000)")
    con.execute("CALL snapshot_create('t', id := 'c')")
    shutil.rmtree(tmp_path / "cache" / "objects")
    assert rows(con, "SELECT sum(id) FROM 't@c'") == [(49995000,)]
    cached = list((tmp_path / "cache" / "objects").iterdir())
    assert len(cached) == 1 and cached[0].name.endswith(".parquet")
    # the bucket is gone: a second read still works from the cache (verified on admission)
    s3.server.stop()
    try:
        con.execute("SET snapshot_directory = '/nonexistent-but-unused'")  # no listing needed below
        con.execute(f"SET snapshot_directory = '{s3.url('repo')}'")
        with pytest.raises(duckdb.Error, match="cannot reach the S3 endpoint"):
            con.execute("FROM snapshots()")
    finally:
        s3.server.start()


def test_shell_on_a_bucket(s3, tmp_path):
    """The 1.5.6 shell: create, list, read and restore on a bucket."""
    settings = "\n".join(s + ";" for s in s3.settings_statements())
    sql = f"""
{settings}
SET snapshot_cache_directory = '{tmp_path / 'cache'}';
SET snapshot_directory = '{s3.url('shell')}';
CREATE TABLE t AS SELECT range AS id FROM range(1000);
CALL snapshot_create('t', id := 'sh1');
DELETE FROM t WHERE id < 500;
CALL snapshot_restore('sh1', 't');
SELECT (SELECT count(*) FROM t) AS live, (SELECT count(*) FROM 't@sh1') AS past, (SELECT count(*) FROM snapshots()) AS n;
"""
    rc, out, err = run_shell(sql)
    assert rc == 0, err
    assert out[-1] == [{"live": 1000, "past": 1000, "n": 2}]
    assert any(k.endswith("/sh1/metadata.json") for k in s3.list_keys("shell/"))


def test_settings_work_with_set_global(s3, tmp_path):
    """SET GLOBAL reaches every connection of the database, the extension's own included."""
    con = duckdb.connect(":memory:", config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    for stmt in s3.settings_statements(scope="GLOBAL"):
        con.execute(stmt)
    con.execute(f"SET GLOBAL snapshot_cache_directory = '{tmp_path / 'cache'}'")
    con.execute(f"SET GLOBAL snapshot_directory = '{s3.url('global')}'")
    other = con.cursor()
    other.execute("CREATE TABLE g AS SELECT 42 AS answer")
    assert rows(other, "SELECT snapshot_id FROM snapshot_create('g', id := 'glob')") == [("glob",)]
    assert rows(con, "SELECT answer FROM 'g@glob'") == [(42,)]
    assert any(k.endswith("/glob/metadata.json") for k in s3.list_keys("global/"))
    settings = dict((r[0], (r[1], r[2])) for r in rows(con, "FROM snapshot_settings()"))
    assert settings["snapshot_directory"] == (s3.url("global"), "SET")
    assert settings["snapshot_s3_secret_access_key"][0] == "***"
    assert settings["snapshot_cache_size"] == (f"{4 << 30} bytes", "default")


def test_scheduled_snapshots_on_a_bucket(s3, tmp_path):
    """A schedule stored in the bucket runs from the session's settings (SET, not GLOBAL) and
    keeps its retention there."""
    import time

    con = s3con(s3, tmp_path)
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(1000)")
    got = rows(con, "CALL snapshot_schedule('often', 't', every := INTERVAL 1 SECOND, keep_last := 2)")
    assert got[0][0] == "often" and got[0][3] == "keep_last=2"
    assert "repo/memory/schedules.json" in s3.list_keys("repo/")
    deadline = time.time() + 30
    while rows(con, "SELECT count(*) FROM snapshots() WHERE type = 'scheduled'")[0][0] < 2 or rows(con, "SELECT last_snapshot_id FROM snapshot_schedules()")[0][0] is None:
        assert time.time() < deadline, rows(con, "FROM snapshot_schedules()")
        time.sleep(0.3)
    con.execute("INSERT INTO t VALUES (-1)")
    # a run after the insert holds it; retention keeps the two newest of the schedule
    deadline = time.time() + 30
    while True:
        last = rows(con, "SELECT last_snapshot_id FROM snapshot_schedules()")[0][0]
        if rows(con, f"SELECT count(*) FROM read_snapshot('{last}', 't') WHERE id = -1")[0][0] == 1:
            break
        assert time.time() < deadline
        time.sleep(0.3)
    assert rows(con, "SELECT last_error FROM snapshot_schedules()") == [(None,)]
    rows(con, "CALL snapshot_unschedule('often')")
    time.sleep(1.5)  # a run that had started may still finish; none after it
    listed = rows(con, "SELECT snapshot_id FROM snapshots() WHERE type = 'scheduled' ORDER BY snapshot_id")
    assert 2 <= len(listed) <= 3 and all(s[0].startswith("often_") for s in listed)
    time.sleep(2.5)
    assert rows(con, "SELECT snapshot_id FROM snapshots() WHERE type = 'scheduled' ORDER BY snapshot_id") == listed
    assert rows(con, "SELECT count(*) FROM snapshot_verify('*') WHERE status <> 'ok'") == [(0,)]
    con.close()
