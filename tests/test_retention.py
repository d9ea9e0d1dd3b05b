"""Lifecycle and safety nets: prune, pins, undrop, verify, gc, lock timeouts, faults."""
import fcntl
import json
import os
import subprocess
import sys
import textwrap

import duckdb
import pytest

from conftest import EXT, connect, rows, tree


@pytest.fixture
def repo(tmp_path):
    con = connect(snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(100)")
    yield con, tmp_path / "snaps" / "memory"
    con.close()


def backdate(folder, stamp):
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["created_at"] = stamp
    meta_path.write_text(json.dumps(meta))


def make_history(con, repo_dir, stamps):
    for i, stamp in enumerate(stamps):
        con.execute(f"CALL snapshot_create('t', id := 'h{i}', incremental := false)")
        backdate(repo_dir / f"h{i}", stamp)


STAMPS = [
    "2024-12-11T20:00:00.000000Z",  # h0 newest of 12-11
    "2024-12-11T08:00:00.000000Z",  # h1
    "2024-12-10T10:00:00.000000Z",  # h2
    "2024-12-03T10:00:00.000000Z",  # h3 previous week
    "2024-11-15T10:00:00.000000Z",  # h4 previous month
    "2023-06-01T10:00:00.000000Z",  # h5 previous year
]


def test_prune_dry_run_explains_and_changes_nothing(repo):
    con, d = repo
    make_history(con, d, STAMPS)
    before = tree(d)
    out = rows(con, "SELECT snapshot_id, action, reasons, bytes_freed > 0 FROM snapshot_prune(keep_daily := 2, keep_weekly := 2, dry_run := true)")
    assert out == [
        ("h0", "keep", ["daily 2024-12-11", "weekly 2024-W50"], False),
        ("h1", "delete", ["no keep rule"], True),
        ("h2", "keep", ["daily 2024-12-10"], False),
        ("h3", "keep", ["weekly 2024-W49"], False),
        ("h4", "delete", ["no keep rule"], True),
        ("h5", "delete", ["no keep rule"], True),
    ]
    assert tree(d) == before
    desc = {r[0]: r[1] for r in rows(con, "DESCRIBE FROM snapshot_prune(keep_last := 1, dry_run := true)")}
    assert desc == {"snapshot_id": "VARCHAR", "created_at": "TIMESTAMP WITH TIME ZONE", "action": "VARCHAR",
                    "reasons": "VARCHAR[]", "bytes_freed": "BIGINT"}


def test_prune_deletes_and_respects_pins(repo):
    con, d = repo
    make_history(con, d, STAMPS)
    assert rows(con, "CALL snapshot_pin('h5')") == [("h5", True)]
    assert rows(con, "SELECT snapshot_id FROM snapshots() WHERE pinned") == [("h5",)]
    out = rows(con, "SELECT snapshot_id, action, reasons FROM snapshot_prune(keep_last := 2, keep_monthly := 1, keep_yearly := 1)")
    assert [(r[0], r[1]) for r in out] == [("h0", "keep"), ("h1", "keep"), ("h2", "delete"), ("h3", "delete"),
                                           ("h4", "delete"), ("h5", "keep")]
    assert out[5][2] == ["pinned"]
    assert rows(con, "SELECT snapshot_id FROM snapshots() ORDER BY ALL") == [("h0",), ("h1",), ("h5",)]
    with pytest.raises(duckdb.Error, match="pinned"):
        con.execute("CALL snapshot_drop('h5')")
    con.execute("CALL snapshot_unpin('h5')")
    assert rows(con, "SELECT pinned FROM snapshots() WHERE snapshot_id = 'h5'") == [(False,)]
    con.execute("CALL snapshot_drop('h5')")


def test_prune_older_than_interval_timestamp_and_type(repo):
    con, d = repo
    make_history(con, d, STAMPS)
    con.execute("CALL snapshot_create('t', id := 'fresh')")  # now
    out = rows(con, "SELECT snapshot_id, action FROM snapshot_prune(older_than := TIMESTAMPTZ '2024-12-05 00:00:00+00', dry_run := true)")
    assert dict(out) == {"fresh": "keep", "h0": "keep", "h1": "keep", "h2": "keep", "h3": "delete", "h4": "delete", "h5": "delete"}
    out = rows(con, "SELECT snapshot_id, action FROM snapshot_prune(older_than := INTERVAL '1 day', keep_last := 3, dry_run := true)")
    assert dict(out) == {"fresh": "keep", "h0": "keep", "h1": "keep", "h2": "delete", "h3": "delete", "h4": "delete", "h5": "delete"}
    # only one type is considered
    con.execute("CALL snapshot_drop_table('t')")
    out = rows(con, "SELECT action FROM snapshot_prune(type := 'pre_drop', older_than := INTERVAL '1 day')")
    assert out == [("keep",)]
    with pytest.raises(duckdb.Error, match="keep_last"):
        con.execute("FROM snapshot_prune()")


def test_undrop_table_and_schema(repo):
    con, d = repo
    con.execute("CALL snapshot_drop_table('t')")
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'") == [(0,)]
    out = rows(con, "SELECT source, target, row_count FROM snapshot_undrop('t')")
    assert out == [("main.t", "memory.main.t", 100)]
    assert rows(con, "SELECT count(*) FROM t") == [(100,)]
    with pytest.raises(duckdb.Error, match="no pre_drop snapshot"):
        con.execute("CALL snapshot_undrop('never_dropped')")
    con.execute("CREATE SCHEMA s; CREATE TABLE s.a AS SELECT 1 AS x; CREATE VIEW s.v AS SELECT * FROM s.a")
    out = rows(con, "SELECT backup_snapshot_id LIKE 'auto_predrop_%', dropped_table FROM snapshot_drop_table('s.*')")
    assert out == [(True, "s.a")]
    assert rows(con, "SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 's'") == [(0,)]
    con.execute("CALL snapshot_undrop('s.a')")
    assert rows(con, "FROM s.a") == [(1,)]


def test_verify_reports_each_fault(repo):
    con, d = repo
    con.execute("CREATE TABLE u AS SELECT 'x' AS v")
    for i in range(5):
        con.execute(f"CALL snapshot_create(['t', 'u'], id := 'v{i}', incremental := false)")
    assert {r[0] for r in rows(con, "SELECT status FROM snapshot_verify('*')")} == {"ok"}
    os.remove(d / "v1" / "main.t.parquet")
    p = d / "v2" / "main.t.parquet"
    p.write_bytes(p.read_bytes()[:-100])  # truncated
    p = d / "v3" / "main.u.parquet"
    data = bytearray(p.read_bytes())
    data[10] ^= 0x55
    p.write_bytes(bytes(data))
    meta = json.loads((d / "v4" / "metadata.json").read_text())
    meta["tables"][0]["row_count"] = 99
    (d / "v4" / "metadata.json").write_text(json.dumps(meta))
    (d / "v0" / "metadata.json").write_text("{broken")
    got = {(r[0], r[1]): r[2] for r in rows(con, "SELECT snapshot_id, file, status FROM snapshot_verify('*')")}
    assert got[("v0", "metadata.json")] == "corrupt"
    assert got[("v1", "main.t.parquet")] == "missing"
    assert got[("v1", "main.u.parquet")] == "ok"
    assert got[("v2", "main.t.parquet")] == "corrupt"
    assert got[("v3", "main.u.parquet")] == "corrupt"
    assert got[("v4", "main.t.parquet")] == "mismatch"
    assert rows(con, "SELECT status FROM snapshot_verify('v1') ORDER BY file") == [("missing",), ("ok",)]


def test_gc_removes_only_leftovers(repo):
    con, d = repo
    con.execute("CALL snapshot_create('t', id := 'keep_me')")
    (d / ".tmp-half-1-2").mkdir()
    (d / ".tmp-half-1-2" / "main.t.parquet").write_bytes(b"x" * 1000)
    (d / ".del-gone-1-2").mkdir()
    (d / "never_published").mkdir()
    (d / "never_published" / "main.t.parquet").write_bytes(b"y" * 10)
    (d / "keep_me" / ".metadata.json.tmp-999").write_bytes(b"z")
    (d / "user_notes.txt").write_text("not ours")
    published = tree(d / "keep_me")
    out = rows(con, "SELECT kind, bytes, action FROM snapshot_gc(dry_run := true) ORDER BY path")
    assert sorted(out) == sorted([("interrupted drop", 0, "would delete"), ("interrupted create", 1000, "would delete"),
                                  ("temporary file", 1, "would delete"), ("unpublished snapshot", 10, "would delete")])
    assert (d / ".tmp-half-1-2").exists()
    out = rows(con, "SELECT action FROM snapshot_gc()")
    assert out == [("deleted",)] * 4
    assert sorted(os.listdir(d)) == [".lock", "keep_me", "user_notes.txt"]
    assert tree(d / "keep_me") == {k: v for k, v in published.items() if "tmp" not in k}
    assert rows(con, "SELECT status FROM snapshot_verify('keep_me')") == [("ok",)]


def test_writer_waits_bounded_then_fails_clearly(repo):
    con, d = repo
    con.execute("CALL snapshot_create('t', id := 'first')")
    with open(d / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        con.execute("SET snapshot_lock_timeout = '0.3'")
        before = tree(d)
        with pytest.raises(duckdb.Error, match="locked by another writer"):
            con.execute("CALL snapshot_create('t', id := 'second')")
        assert tree(d) == before
        # readers never wait for the lock
        assert rows(con, "SELECT count(*) FROM read_snapshot('first', 't')") == [(100,)]
    con.execute("CALL snapshot_create('t', id := 'second')")


def test_disk_full_leaves_nothing_behind(tmp_path):
    """A size-limited process (RLIMIT_FSIZE): writing the Parquet file fails half-way."""
    script = textwrap.dedent(f"""
        import duckdb, resource, signal, os
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        con = duckdb.connect(config={{'allow_unsigned_extensions': 'true'}})
        con.execute("LOAD '{EXT}'")
        con.execute("SET snapshot_directory = '{tmp_path}/snaps'")
        con.execute("CREATE TABLE big AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(2000000)")
        con.execute("CALL snapshot_create('big', id := 'small')")
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
        try:
            con.execute("CALL snapshot_create('big', id := 'too_big', incremental := false)")
            print("no error")
        except duckdb.Error as e:
            print("error:", str(e).splitlines()[0])
        print(con.execute("SELECT snapshot_id FROM snapshots()").fetchall())
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "error:" in p.stdout and "snapshot_create" in p.stdout, p.stdout
    assert "[('small',)]" in p.stdout
    leftovers = [n for n in os.listdir(tmp_path / "snaps" / "memory") if n not in (".lock", "small")]
    assert leftovers == []


def test_hostile_names_never_escape(repo, tmp_path):
    con, d = repo
    for bad in ["/etc/passwd", "../../x", "a\x00b"]:
        with pytest.raises(duckdb.Error):
            con.execute("CALL snapshot_create(?)", [bad]).fetchall()
    for bad_id in ["/abs", "..", "x/../../y", "a" * 500]:
        with pytest.raises(duckdb.Error, match="invalid snapshot id"):
            con.execute("CALL snapshot_pin(?)", [bad_id]).fetchall()
    assert set(os.listdir(tmp_path)) <= {"snaps"}


def _mount_tmpfs(path, options):
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    return p.returncode == 0


def _umount(path):
    subprocess.run(["umount", str(path)], capture_output=True)


def test_read_only_directory_is_a_clear_error(repo, tmp_path):
    con, d = repo
    ro = tmp_path / "ro"
    if _mount_tmpfs(ro, "size=1m,ro"):
        cleanup = lambda: _umount(ro)  # noqa: E731
    else:
        ro.mkdir(exist_ok=True)
        if subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode != 0:
            pytest.skip("neither a read-only mount nor chattr is available")
        cleanup = lambda: subprocess.run(["chattr", "-i", str(ro)], capture_output=True)  # noqa: E731
    try:
        con.execute(f"SET snapshot_directory = '{ro}'")
        with pytest.raises(duckdb.Error, match="cannot write to snapshot directory"):
            con.execute("CALL snapshot_create('t')")
        assert os.listdir(ro) == []
        assert rows(con, "SELECT count(*) FROM t") == [(100,)]
    finally:
        cleanup()


def test_full_file_system_leaves_nothing_behind(repo, tmp_path):
    con, d = repo
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "size=2m"):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        con.execute(f"SET snapshot_directory = '{small}'")
        con.execute("CREATE TABLE big AS SELECT range AS id, md5(range::VARCHAR) AS s FROM range(500000)")
        con.execute("CALL snapshot_create('t', id := 'fits')")
        with pytest.raises(duckdb.Error, match="snapshot_create"):
            con.execute("CALL snapshot_create('big', id := 'too_big', incremental := false)")
        assert sorted(os.listdir(small / "memory")) == [".lock", "fits"]
        assert rows(con, "SELECT status FROM snapshot_verify('*')") == [("ok",)]
        # and the repository still works once there is room again
        con.execute("CALL snapshot_drop('fits')")
        con.execute("CALL snapshot_create('t', id := 'after')")
    finally:
        _umount(small)
