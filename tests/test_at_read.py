"""FROM '<table>@<snapshot>': a replacement scan that DuckDB plans as its own read_parquet
(pushdown, row-group skipping, every thread), for full copies and for incremental versions
(each layer scanned and filtered to its surviving rows). Exact types, checksums on the first
read in a process, errors as read_snapshot's, and use anywhere a table goes."""
import json
import os
import subprocess
import sys
import textwrap

import duckdb
import pytest

from conftest import EXT, connect, rows, run_shell, tree


@pytest.fixture
def orders(tmp_path):
    con = connect(str(tmp_path / "o.duckdb"), snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE SCHEMA in_c_customers")
    con.execute("CREATE TABLE in_c_customers.customers(id INTEGER PRIMARY KEY, name VARCHAR, score DECIMAL(10,2))")
    con.execute("INSERT INTO in_c_customers.customers SELECT range, 'c' || range, range / 4 FROM range(50000)")
    con.execute("CALL snapshot_create('in_c_customers.customers', id := 'before_refactor')")
    yield con, tmp_path
    con.close()


def test_reads_like_read_snapshot(orders):
    con, _ = orders
    con.execute("UPDATE in_c_customers.customers SET name = 'changed' WHERE id < 10")
    got = rows(con, "FROM 'in_c_customers.customers@before_refactor' WHERE id < 3 ORDER BY id")
    assert got == rows(con, "FROM read_snapshot('before_refactor', 'in_c_customers.customers') WHERE id < 3 ORDER BY id")
    assert [r[1] for r in got] == ["c0", "c1", "c2"]
    types = rows(con, "SELECT column_name, column_type FROM (DESCRIBE FROM 'in_c_customers.customers@before_refactor')")
    assert types == [("id", "INTEGER"), ("name", "VARCHAR"), ("score", "DECIMAL(10,2)")]
    # quoted names inside the string, as in SQL
    con.execute('CREATE TABLE "odd @ name"(x INTEGER); INSERT INTO "odd @ name" VALUES (7)')
    con.execute("""CALL snapshot_create('"odd @ name"', id := 'odd')""")
    assert rows(con, """FROM '"odd @ name"@odd'""") == [(7,)]


def test_filters_reach_the_parquet_scan(orders):
    con, _ = orders
    plan = rows(con, "EXPLAIN FROM 'in_c_customers.customers@before_refactor' WHERE id < 10")[0][1]
    scan = plan[plan.index("READ_PARQUET"):]
    assert "Filters" in scan and "id<10" in scan.replace(" ", ""), plan
    # only the projected column is read
    plan = rows(con, "EXPLAIN SELECT sum(score) FROM 'in_c_customers.customers@before_refactor'")[0][1]
    projections = plan[plan.index("Projections"):].split("\n")[0]
    assert "score" in projections and "name" not in projections, plan


def test_works_anywhere_a_table_does(orders):
    con, tmp = orders
    con.execute("DELETE FROM in_c_customers.customers WHERE id >= 100")
    at = "'in_c_customers.customers@before_refactor'"
    assert rows(con, f"SELECT count(*) FROM {at} old JOIN in_c_customers.customers new USING (id)") == [(100,)]
    assert rows(con, f"WITH old AS (FROM {at}) SELECT count(*) FROM old WHERE id >= 100") == [(49900,)]
    assert rows(con, f"SELECT count(*) FROM (SELECT * FROM {at} WHERE id % 2 = 0)") == [(25000,)]
    assert rows(con, f"SELECT count(*) FROM in_c_customers.customers WHERE id IN (SELECT id FROM {at} WHERE id < 50)") == [(50,)]
    con.execute(f"CREATE TABLE recovered AS FROM {at}")
    assert rows(con, "SELECT count(*), sum(id) FROM recovered") == [(50000, sum(range(50000)))]
    con.execute(f"INSERT INTO in_c_customers.customers SELECT * FROM {at} WHERE id >= 100")
    assert rows(con, "SELECT count(*) FROM in_c_customers.customers") == [(50000,)]
    con.execute(f"CREATE VIEW as_before AS FROM {at}")
    assert rows(con, "SELECT count(*) FROM as_before") == [(50000,)]
    con.close()
    # the view keeps working in a new process once the extension is loaded
    con2 = connect(str(tmp / "o.duckdb"), snapdir=str(tmp / "snaps"))
    assert rows(con2, "SELECT count(*), max(name) FROM as_before") == [(50000, "c9999")]
    con2.close()


def test_times_after_the_at(orders):
    con, tmp = orders
    repo = tmp / "snaps" / "o"
    meta = json.loads((repo / "before_refactor" / "metadata.json").read_text())
    meta["created_at"] = "2024-12-11T14:00:00.000000Z"
    (repo / "before_refactor" / "metadata.json").write_text(json.dumps(meta))
    con.execute("DELETE FROM in_c_customers.customers WHERE id > 0")
    con.execute("CALL snapshot_create('in_c_customers.customers', id := 'after')")
    n = lambda ref: rows(con, f"SELECT count(*) FROM '{ref}'")[0][0]
    assert n("in_c_customers.customers@2024-12-11 14:00:00+00") == 50000
    assert n("in_c_customers.customers@2024-12-11 15:00:00+01") == 50000
    assert n("in_c_customers.customers@2024-12-12") == 50000
    assert n("in_c_customers.customers@after") == 1
    con.execute("SET TimeZone = 'Asia/Tokyo'")  # 14:00 UTC is 23:00 in Tokyo
    assert n("in_c_customers.customers@2024-12-11 23:00") == 50000
    with pytest.raises(duckdb.Error, match="oldest is 'before_refactor'"):
        n("in_c_customers.customers@2024-12-11 22:59")
    # an id that exists wins over reading the text as a time
    con.execute("CALL snapshot_create('in_c_customers.customers', id := '2024-12-11')")
    assert n("in_c_customers.customers@2024-12-11") == 1


def test_errors_match_read_snapshot_and_change_nothing(orders):
    con, tmp = orders
    repo = tmp / "snaps"
    before = tree(repo)
    pairs = [
        ("FROM 'in_c_customers.customers@nope'", "FROM read_snapshot('nope', 'in_c_customers.customers')"),
        ("FROM 'nosuch@before_refactor'", "FROM read_snapshot('before_refactor', 'nosuch')"),
    ]
    for at, fn in pairs:
        msgs = []
        for sql in (at, fn):
            with pytest.raises(duckdb.Error) as err:
                con.execute(sql).fetchall()
            msgs.append(str(err.value).split("\n")[0])
        assert msgs[0] == msgs[1], msgs
    with pytest.raises(duckdb.Error, match="neither a snapshot id nor a time"):
        con.execute("FROM 'in_c_customers.customers@not a time'").fetchall()
    assert tree(repo) == before
    # a real file whose name has an @ stays DuckDB's
    path = tmp / "data@2024.csv"
    path.write_text("a,b\n1,2\n")
    assert rows(con, f"FROM '{path}'") == [(1, 2)]


def test_checksum_is_verified_on_the_first_read_in_a_process(orders):
    con, tmp = orders
    con.close()
    f = tmp / "snaps" / "o" / "before_refactor" / "in_c_customers.customers.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    f.write_bytes(bytes(data))
    fresh = connect(str(tmp / "o.duckdb"), snapdir=str(tmp / "snaps"))
    with pytest.raises(duckdb.Error) as err:
        fresh.execute("FROM 'in_c_customers.customers@before_refactor'").fetchall()
    msg = str(err.value).split("\n")[0]
    assert "corrupt (checksum mismatch)" in msg and "in_c_customers.customers.parquet" in msg, msg
    with pytest.raises(duckdb.Error) as err2:
        fresh.execute("FROM read_snapshot('before_refactor', 'in_c_customers.customers')").fetchall()
    assert str(err2.value).split("\n")[0] == msg
    fresh.close()


def test_incremental_versions_read_exactly(tmp_path):
    con = connect(str(tmp_path / "c.duckdb"), snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE TABLE t AS SELECT range AS id, range * 10 AS v, 'r' || range AS s FROM range(200000)")
    expected = {}
    for day in range(1, 8):
        if day > 1:
            con.execute(f"UPDATE t SET v = v + {day} WHERE hash(id, {day}) % 499 = 0")
            con.execute(f"UPDATE t SET s = s || 'x' WHERE id BETWEEN {day * 10000} AND {day * 10000 + 3000}")  # whole blocks
            con.execute(f"DELETE FROM t WHERE hash(id, {day}) % 4999 = 1")
            con.execute(f"INSERT INTO t SELECT 1000000 * {day} + range, {day}, 'new' FROM range(50)")
        con.execute(f"CALL snapshot_create('t', id := 'd{day}')")
        expected[day] = rows(con, "SELECT * FROM t ORDER BY id")
    # every later day is a delta on top of day 1's base
    assert rows(con, "SELECT count(*) FROM snapshot_tables('*') WHERE parent_id IS NOT NULL AND bytes_reused > 0") == [(6,)]
    for day, want in expected.items():
        assert rows(con, f"SELECT * FROM 't@d{day}' ORDER BY id") == want, day
        assert rows(con, f"SELECT * FROM read_snapshot('d{day}', 't')") == want, day  # table order kept
    # filters and projections on an incremental version still reach every file
    assert rows(con, "SELECT count(*) FROM 't@d7' WHERE v < 0") == [(0,)]
    plan = rows(con, "EXPLAIN SELECT v FROM 't@d7' WHERE id = 5")[0][1]
    # two scans (the base, and the 6 deltas as one list of files), each with the filter, or
    # pruned by its statistics
    scans = plan.count("Read Parquet")
    assert scans + plan.count("Empty Result") == 2 and scans >= 1, plan
    assert plan.replace(" ", "").count("id=5") >= scans, plan
    # restore and export of an incremental version come back in table order
    con.execute("CALL snapshot_restore('d7', 't', target := 'r7')")
    assert rows(con, "SELECT * FROM r7") == expected[7]
    con.close()


def test_at_read_in_the_shell(tmp_path):
    sql = textwrap.dedent(f"""
        SET snapshot_directory = '{tmp_path}/snaps';
        CREATE TABLE orders AS SELECT range AS id, range * 2 AS v FROM range(1000);
        CALL snapshot_create('orders', id := 'o1');
        UPDATE orders SET v = -1 WHERE id % 10 = 0;
        CALL snapshot_create('orders', id := 'o2');
        SELECT count(*) AS n, sum(v)::BIGINT AS s FROM 'orders@o1';
        SELECT count(*) FILTER (WHERE v = -1) AS n FROM 'orders@o2';
        CREATE VIEW old_orders AS FROM 'orders@o1' WHERE id < 5;
        SELECT list(v ORDER BY id) AS l FROM old_orders;
    """)
    db = str(tmp_path / "s.db")
    rc, out, err = run_shell(sql, db=db)
    assert rc == 0 and err == "", err
    assert out[-3:] == [[{"n": 1000, "s": 999000}], [{"n": 100}], [{"l": [0, 2, 4, 6, 8]}]]
    rc, out, err = run_shell(f"SET snapshot_directory = '{tmp_path}/snaps';\nSELECT count(*) AS n FROM old_orders;", db=db)
    assert rc == 0 and out == [[{"n": 5}]], err


def test_a_reused_snapshot_id_is_never_read_from_a_stale_cache(tmp_path):
    """Survivors of an incremental version are cached per process by its files: a snapshot
    dropped and created again under the same id (same paths) must not reuse them."""
    con = connect(snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE TABLE t AS SELECT i, 0 AS v FROM range(10000) r(i)")
    con.execute("CALL snapshot_create('t', id := 'base')")
    con.execute("UPDATE t SET v = 1 WHERE i < 10")
    con.execute("CALL snapshot_create('t', id := 'x')")
    assert rows(con, "SELECT count(*), sum(v) FROM 't@x'") == [(10000, 10)]
    con.execute("CALL snapshot_drop('x')")
    con.execute("UPDATE t SET v = 2 WHERE i < 20")
    con.execute("DELETE FROM t WHERE i BETWEEN 5000 AND 5010")
    con.execute("CALL snapshot_create('t', id := 'x')")
    live = rows(con, "SELECT count(*), sum(v) FROM t")
    assert live == [(9989, 40)]
    assert rows(con, "SELECT count(*), sum(v) FROM 't@x'") == live
    assert rows(con, "SELECT count(*) FROM snapshot_diff('x', 'live', 't')") == [(0,)]
    con.execute("CALL snapshot_restore('x', 't', target := 'r')")
    assert rows(con, "SELECT count(*), sum(v) FROM r") == live
    con.execute(f"CALL snapshot_export('x', '{tmp_path}/exp')")
    assert rows(con, f"SELECT count(*) FROM read_parquet('{tmp_path}/exp/main.t.parquet')") == [(9989,)]
    con.close()


@pytest.mark.parametrize("column", ["rowid", "file_row_number", "ROWID"])
def test_a_column_named_like_a_row_number_keeps_every_version_exact(tmp_path, column):
    """A user column named rowid hides DuckDB's row ids, one named file_row_number clashes with
    read_parquet's: such tables are stored whole every time, and read back exactly."""
    con = connect(snapdir=str(tmp_path / "snaps"))
    con.execute(f'CREATE TABLE t("{column}" BIGINT, i INTEGER, f VARCHAR)')
    con.execute("INSERT INTO t SELECT i, i, 'f' FROM range(5000) r(i)")
    con.execute("CALL snapshot_create('t', id := 'A')")
    con.execute("UPDATE t SET f = 'upd' WHERE i % 500 = 0")
    con.execute("DELETE FROM t WHERE i BETWEEN 10 AND 20")
    con.execute(f'INSERT INTO t VALUES (NULL, 9999, \'new\')')
    out = rows(con, "SELECT row_count, rows_added, rows_removed, bytes_reused FROM snapshot_create('t', id := 'B')")
    assert out == [(4990, 4990, 5000, 0)]  # a full copy
    live = rows(con, "FROM t")
    assert rows(con, "FROM read_snapshot('B', 't')") == live
    assert sorted(rows(con, "FROM 't@B'"), key=str) == sorted(live, key=str)
    assert rows(con, "SELECT count(*) FROM snapshot_diff('A', 'B', 't')") == [(11 + 10 + 1 + 10,)]
    con.execute("CALL snapshot_restore('B', 't', target := 'r')")
    assert rows(con, "FROM r") == live
    con.execute(f'UPDATE t SET "{column}" = NULL')
    con.execute("CALL snapshot_create('t', id := 'C')")
    assert rows(con, f'SELECT count(*) FROM \'t@C\' WHERE "{column}" IS NULL') == [(4990,)]
    con.close()


def test_a_table_gone_at_the_time_is_named_not_resurrected(tmp_path):
    con = connect(snapdir=str(tmp_path / "snaps"))
    repo = tmp_path / "snaps" / "memory"
    con.execute("CREATE TABLE keep(i INTEGER); CREATE TABLE gone(i INTEGER); INSERT INTO gone VALUES (1), (2)")
    con.execute("CALL snapshot_create('*', id := 'D1')")
    con.execute("DROP TABLE gone")
    con.execute("CALL snapshot_create('*', id := 'D2')")
    for sid, stamp in [("D1", "2024-12-11T10:00:00.000000Z"), ("D2", "2024-12-11T12:00:00.000000Z")]:
        meta = json.loads((repo / sid / "metadata.json").read_text())
        meta["created_at"] = stamp
        (repo / sid / "metadata.json").write_text(json.dumps(meta))
    assert rows(con, "SELECT count(*) FROM 'gone@2024-12-11 11:00:00+00'") == [(2,)]
    for sql in ["FROM 'gone@2024-12-11 12:30:00+00'", "FROM read_snapshot(TIMESTAMPTZ '2024-12-11 12:30:00+00', 'gone')",
                "CALL snapshot_restore(TIMESTAMPTZ '2024-12-11 12:30:00+00', 'gone')"]:
        with pytest.raises(duckdb.Error) as err:
            con.execute(sql).fetchall()
        msg = str(err.value).split("\n")[0]
        assert "main.gone was gone when snapshot 'D2' was taken" in msg and "last version is in snapshot 'D1'" in msg, msg
    # a diff across the drop shows every row deleted
    diff = rows(con, "SELECT change, i FROM snapshot_diff(TIMESTAMPTZ '2024-12-11 10:30:00+00', TIMESTAMPTZ '2024-12-11 12:30:00+00', 'gone') ORDER BY i")
    assert diff == [("delete", 1), ("delete", 2)]
    # by id, the last version is there
    assert rows(con, "SELECT source, snapshot_id FROM snapshot_restore('D2', 'gone')") == [("main.gone", "D1")]
    con.close()


def test_malformed_and_special_references(orders):
    con, _ = orders
    for ref in ["in_c_customers.customers@", "@before_refactor"]:
        with pytest.raises(duckdb.Error) as err:
            con.execute(f"FROM '{ref}'").fetchall()
        msg = str(err.value)
        assert "is not '<table>@<snapshot id or time>'" in msg and "\n" not in msg.strip(), msg
    # DuckDB's own time words after the @
    assert rows(con, "SELECT count(*) FROM 'in_c_customers.customers@infinity'") == [(50000,)]
    with pytest.raises(duckdb.Error, match="at or before -infinity; the oldest is 'before_refactor'"):
        con.execute("FROM 'in_c_customers.customers@-infinity'").fetchall()
