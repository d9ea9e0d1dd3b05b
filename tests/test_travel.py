"""Time travel over full snapshots: as-of reads, a table's timeline, row-level diffs
(checked against a brute-force EXCEPT ALL reference), and mounting a snapshot as views."""
import json
import random

import duckdb
import pytest

from conftest import rows


def test_diff_with_primary_key_matches_brute_force(con):
    rnd = random.Random(5)
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b VARCHAR)")
    con.execute("INSERT INTO t SELECT range, range % 7, 'x' || range FROM range(2000)")
    con.execute("CALL snapshot_create('t', id := 'before')")
    con.execute("CREATE TABLE ref_before AS FROM t")
    for _ in range(60):
        i = rnd.randrange(2500)
        op = rnd.choice(["update_a", "update_b", "delete", "insert", "noop_update"])
        if op == "update_a":
            con.execute("UPDATE t SET a = a + 1 WHERE id = ?", [i])
        elif op == "update_b":
            con.execute("UPDATE t SET b = NULL WHERE id = ?", [i])
        elif op == "noop_update":
            con.execute("UPDATE t SET a = a WHERE id = ?", [i])  # same value: not a change
        elif op == "delete":
            con.execute("DELETE FROM t WHERE id = ?", [i])
        else:
            con.execute("INSERT OR IGNORE INTO t VALUES (?, 1, 'new')", [2500 + i])
    con.execute("CALL snapshot_create('t', id := 'after')")
    for to in ["'after'", "NULL", "'live'"]:
        got = rows(con, f"SELECT change, id, changed_columns FROM snapshot_diff('before', {to}, 't') ORDER BY id")
        deleted = {r[0] for r in rows(con, "SELECT id FROM ref_before EXCEPT SELECT id FROM t")}
        inserted = {r[0] for r in rows(con, "SELECT id FROM t EXCEPT SELECT id FROM ref_before")}
        updated = {r[0] for r in rows(con, "SELECT id FROM (FROM t EXCEPT FROM ref_before) WHERE id IN (SELECT id FROM ref_before)")}
        assert {r[1] for r in got if r[0] == "delete"} == deleted
        assert {r[1] for r in got if r[0] == "insert"} == inserted
        assert {r[1] for r in got if r[0] == "update"} == updated
        for change, i, cols in got:
            if change == "update":
                expect = [c for c in ("a", "b") if rows(con, f"SELECT r.{c} IS DISTINCT FROM t.{c} FROM ref_before r JOIN t USING (id) WHERE id = {i}")[0][0]]
                assert cols == expect, (i, cols, expect)
    before_after = rows(con, "SELECT before_a, after_a FROM snapshot_diff('before', 'after', 't') WHERE change = 'update' AND list_contains(changed_columns, 'a') LIMIT 1")
    assert before_after and before_after[0][1] == before_after[0][0] + 1


def test_diff_without_key_is_a_multiset_difference(con):
    con.execute("CREATE TABLE m(a INTEGER, b VARCHAR)")
    con.execute("INSERT INTO m VALUES (1, 'x'), (1, 'x'), (2, 'y'), (3, NULL)")
    con.execute("CALL snapshot_create('m', id := 'm1')")
    con.execute("DELETE FROM m WHERE a = 2; INSERT INTO m VALUES (1, 'x'), (4, 'z')")
    con.execute("DELETE FROM m WHERE rowid = (SELECT min(rowid) FROM m WHERE a = 3)")
    got = rows(con, "SELECT change, a, b FROM snapshot_diff('m1', NULL, 'm') ORDER BY ALL")
    ref = rows(con, """SELECT 'delete', * FROM (FROM read_snapshot('m1', 'm') EXCEPT ALL FROM m)
                       UNION ALL SELECT 'insert', * FROM (FROM m EXCEPT ALL FROM read_snapshot('m1', 'm')) ORDER BY ALL""")
    assert got == ref == [("delete", 2, "y"), ("delete", 3, None), ("insert", 1, "x"), ("insert", 4, "z")]


def test_read_as_of_a_time_and_history(con, tmp_path):
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(3)")
    con.execute("CALL snapshot_create('t', id := 'p1')")
    con.execute("INSERT INTO t VALUES (3), (4)")
    con.execute("CALL snapshot_create('t', id := 'p2')")
    repo = tmp_path / "snaps" / "memory"
    for sid, stamp in [("p1", "2024-12-01T00:00:00.000000Z"), ("p2", "2024-12-10T00:00:00.000000Z")]:
        meta = json.loads((repo / sid / "metadata.json").read_text())
        meta["created_at"] = stamp
        (repo / sid / "metadata.json").write_text(json.dumps(meta))
    assert rows(con, "SELECT count(*) FROM read_snapshot(TIMESTAMPTZ '2024-12-05 00:00:00+00', 't')") == [(3,)]
    assert rows(con, "SELECT count(*) FROM read_snapshot(TIMESTAMPTZ '2024-12-10 00:00:00+00', 't')") == [(5,)]
    with pytest.raises(duckdb.Error, match="oldest is 'p1'"):
        con.execute("FROM read_snapshot(TIMESTAMPTZ '2024-11-01 00:00:00+00', 't')")
    assert rows(con, "SELECT snapshot_id, row_count, row_count_change FROM snapshot_history('t')") == [("p2", 5, 2), ("p1", 3, None)]


def test_mount_and_unmount(con):
    con.execute("CREATE SCHEMA s; CREATE TABLE s.customers AS SELECT range AS id FROM range(4); CREATE TABLE orders AS SELECT 1 AS o")
    con.execute("CALL snapshot_create('*', id := 'snap_2024_12_11')")
    con.execute("DELETE FROM s.customers")
    out = rows(con, "SELECT view_name, source FROM snapshot_mount('snap_2024_12_11', schema := 'back_then') ORDER BY ALL")
    assert out == [("back_then.customers", "s.customers"), ("back_then.orders", "main.orders")]
    assert rows(con, "SELECT count(*) FROM back_then.customers JOIN back_then.orders ON true") == [(4,)]
    with pytest.raises(duckdb.Error):
        con.execute("INSERT INTO back_then.customers VALUES (9)")  # read-only views
    assert rows(con, "SELECT count(*) FROM snapshot_unmount('back_then')") == [(2,)]
    assert rows(con, "SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'back_then'") == [(0,)]
    with pytest.raises(duckdb.Error, match="no mounted snapshot"):
        con.execute("CALL snapshot_unmount('back_then')")


def test_export_writes_a_self_contained_adr004_folder(con, tmp_path):
    import hashlib
    import os

    con.execute("CREATE TABLE t AS SELECT range AS id, 170141183460469231731687303715884105727::HUGEINT AS h FROM range(10)")
    con.execute("CALL snapshot_create('t', id := 'e1')")
    out = rows(con, f"SELECT snapshot_id, path, files FROM snapshot_export('e1', '{tmp_path}/archive/e1')")
    assert out == [("e1", f"{tmp_path}/archive/e1", 2)]
    folder = tmp_path / "archive" / "e1"
    assert sorted(os.listdir(folder)) == ["main.t.parquet", "metadata.json"]
    meta = json.loads((folder / "metadata.json").read_text())
    t = meta["tables"][0]
    assert "sha256:" + hashlib.sha256((folder / t["file"]).read_bytes()).hexdigest() == t["checksum"]
    # another engine (plain DuckDB, no extension) reads it with the recipe of docs/format.md
    cols = ", ".join(f'CAST("{c["name"]}" AS {c["type"]}) AS "{c["name"]}"' for c in t["schema"]["columns"])
    plain = duckdb.connect()
    assert plain.execute(f"SELECT count(*), max(h) FROM (SELECT {cols} FROM read_parquet('{folder / t['file']}'))").fetchall() == \
        [(10, 170141183460469231731687303715884105727)]
    with pytest.raises(duckdb.Error, match="not empty"):
        con.execute(f"CALL snapshot_export('e1', '{tmp_path}/archive/e1')")
    assert [n for n in os.listdir(tmp_path / "archive") if n.startswith(".")] == []
