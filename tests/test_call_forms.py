"""The call forms of issue 11: a snapshot argument is an id or a point in time (TIMESTAMPTZ,
TIMESTAMP, DATE); a scope is a table, a list, '*', 's.*' or globs with exclude := [...];
every function takes its required positional arguments and nothing else positional.
Point-in-time choices are checked against snapshots whose creation times are set in their
metadata, so each test knows exactly which snapshot a time must pick."""
import json
import os

import duckdb
import pytest

from conftest import connect, rows, run_shell, tree


def set_created(repo, sid, stamp):
    meta_path = repo / sid / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["created_at"] = stamp
    meta_path.write_text(json.dumps(meta))


@pytest.fixture
def timeline(tmp_path):
    """Table t through three snapshots at known times (1, 3, 5 rows), plus a database
    snapshot and a schema snapshot in between."""
    con = connect(snapdir=str(tmp_path / "snaps"))
    repo = tmp_path / "snaps" / "memory"
    con.execute("CREATE SCHEMA hr; CREATE TABLE hr.emp AS SELECT 1 AS id, 'ann' AS name")
    con.execute("CREATE TABLE t AS SELECT 1 AS id")
    con.execute("CREATE VIEW v AS SELECT count(*) AS n FROM t")
    con.execute("CALL snapshot_create('t', id := 't1')")
    con.execute("INSERT INTO t VALUES (2), (3)")
    con.execute("CALL snapshot_create('*', id := 'db3')")
    con.execute("INSERT INTO hr.emp VALUES (2, 'bob')")
    con.execute("CALL snapshot_create('hr.*', id := 'hr4')")
    con.execute("INSERT INTO t VALUES (4), (5)")
    con.execute("CALL snapshot_create('t', id := 't5')")
    for sid, stamp in [("t1", "2024-12-01T10:00:00.000000Z"), ("db3", "2024-12-03T10:00:00.000000Z"),
                       ("hr4", "2024-12-04T10:00:00.000000Z"), ("t5", "2024-12-05T10:00:00.000000Z")]:
        set_created(repo, sid, stamp)
    yield con, repo
    con.close()


def count_at(con, when):
    return rows(con, f"SELECT count(*) FROM read_snapshot({when}, 't')")[0][0]


def test_read_snapshot_by_id_and_by_every_kind_of_time(timeline):
    con, _ = timeline
    assert count_at(con, "'t1'") == 1 and count_at(con, "'db3'") == 3
    assert count_at(con, "TIMESTAMPTZ '2024-12-01 10:00:00+00'") == 1  # at: inclusive
    assert count_at(con, "TIMESTAMPTZ '2024-12-03 09:59:59.999999+00'") == 1
    assert count_at(con, "TIMESTAMPTZ '2024-12-04 23:00:00+00'") == 3  # db3 holds t; hr4 does not
    assert count_at(con, "TIMESTAMPTZ '2024-12-06 00:00:00+01'") == 5
    assert count_at(con, "now()") == 5
    # a DATE is its midnight; a TIMESTAMP a wall-clock time in the session's TimeZone
    assert count_at(con, "DATE '2024-12-04'") == 3
    assert count_at(con, "DATE '2024-12-03'") == 1
    con.execute("SET TimeZone = 'America/New_York'")
    assert count_at(con, "TIMESTAMP '2024-12-03 05:00:00'") == 3  # 10:00 UTC
    assert count_at(con, "TIMESTAMP '2024-12-03 04:59:00'") == 1
    con.execute("SET TimeZone = 'UTC'")
    assert count_at(con, "TIMESTAMP '2024-12-03 10:00:00'") == 3


def test_a_time_before_every_snapshot_names_the_oldest(timeline):
    con, repo = timeline
    before = tree(repo)
    for sql in ["FROM read_snapshot(TIMESTAMPTZ '2024-11-01 00:00:00+00', 't')",
                "FROM 't@2024-11-01'",
                "CALL snapshot_restore(DATE '2024-11-01', 't')"]:
        with pytest.raises(duckdb.Error) as err:
            con.execute(sql).fetchall()
        msg = str(err.value).split("\n")[0]
        assert "at or before 2024-11-01 00:00:00+00" in msg and "oldest is 't1' taken 2024-12-01 10:00:00+00" in msg, msg
    with pytest.raises(duckdb.Error, match="oldest is 'db3' taken 2024-12-03 10:00:00"):
        con.execute("CALL snapshot_restore(DATE '2024-12-02', '*')")
    with pytest.raises(duckdb.Error, match="of schema hr or of the whole database.*oldest is 'db3'"):
        con.execute("CALL snapshot_restore(DATE '2024-12-02', 'hr.*')")
    assert tree(repo) == before


def test_point_in_time_restore_of_a_table_picks_the_right_snapshot(timeline):
    con, _ = timeline
    out = rows(con, "SELECT snapshot_id, source, target, row_count FROM snapshot_restore(TIMESTAMPTZ '2024-12-04 12:00:00+00', 't', backup_existing := false)")
    assert out == [("db3", "main.t", "memory.main.t", 3)]
    assert rows(con, "SELECT list(id ORDER BY id) FROM t") == [([1, 2, 3],)]
    out = rows(con, "SELECT snapshot_id, row_count FROM snapshot_restore(TIMESTAMPTZ '2024-12-02 00:00:00+00', 't', target := 't_dec2')")
    assert out == [("t1", 1)]
    assert rows(con, "SELECT count(*) FROM t_dec2") == [(1,)] and rows(con, "SELECT count(*) FROM t") == [(3,)]


def test_point_in_time_restore_of_the_whole_database_and_of_a_schema(timeline):
    con, _ = timeline
    con.execute("DROP VIEW v; DELETE FROM t; DELETE FROM hr.emp; CREATE TABLE later AS SELECT 1 AS x")
    # the newest database snapshot at or before the time: db3 (t5 and hr4 do not hold the database)
    out = rows(con, "SELECT snapshot_id, kind, source, row_count FROM snapshot_restore(TIMESTAMPTZ '2024-12-30 00:00:00+00', '*')")
    assert out == [("db3", "schema", "hr", None), ("db3", "table", "hr.emp", 1), ("db3", "table", "main.t", 3), ("db3", "view", "main.v", None)]
    assert rows(con, "SELECT n FROM v") == [(3,)]  # the view came back with the database
    assert rows(con, "SELECT count(*) FROM later") == [(1,)]  # restore replaces, never drops what it does not hold
    # a schema: the newest snapshot of that schema or of the database
    out = rows(con, "SELECT snapshot_id, source, row_count FROM snapshot_restore(TIMESTAMPTZ '2024-12-30 00:00:00+00', 'hr.*') WHERE kind = 'table'")
    assert out == [("hr4", "hr.emp", 2)]
    out = rows(con, "SELECT snapshot_id, row_count FROM snapshot_restore(TIMESTAMPTZ '2024-12-03 12:00:00+00', 'hr.*') WHERE kind = 'table'")
    assert out == [("db3", 1)]


def test_restore_by_id_with_every_scope(timeline):
    con, _ = timeline
    con.execute("DELETE FROM t; DELETE FROM hr.emp")
    assert rows(con, "SELECT source FROM snapshot_restore('db3', 'hr.*', backup_existing := false)") == [("hr",), ("hr.emp",)]
    assert rows(con, "SELECT count(*) FROM t") == [(0,)]
    assert rows(con, "SELECT source FROM snapshot_restore('db3', ['t', 'hr.emp'], backup_existing := false) ORDER BY ALL") == [("hr.emp",), ("main.t",)]
    assert rows(con, "SELECT source FROM snapshot_restore('db3', '*', exclude := ['hr.*'], backup_existing := false)") == [("main.t",), ("main.v",)]
    assert rows(con, "SELECT source FROM snapshot_restore('db3', 'h?.e*', backup_existing := false)") == [("hr.emp",)]
    # NULL stays an alias of '*'
    assert rows(con, "SELECT count(*) FROM snapshot_restore('db3', NULL, backup_existing := false) WHERE kind = 'table'") == [(2,)]
    with pytest.raises(duckdb.Error, match="no table of snapshot 'db3' matches 'nope_\\*'"):
        con.execute("CALL snapshot_restore('db3', 'nope_*')")
    with pytest.raises(duckdb.Error, match="leaves nothing to restore"):
        con.execute("CALL snapshot_restore('t1', 't', exclude := 't')")


@pytest.fixture
def warehouse(tmp_path):
    con = connect(snapdir=str(tmp_path / "snaps"))
    con.execute("""
        CREATE SCHEMA in_c_customers; CREATE SCHEMA in_c_orders; CREATE SCHEMA staging;
        CREATE TABLE in_c_customers.customers AS SELECT range AS id FROM range(3);
        CREATE TABLE in_c_customers.tmp_load AS SELECT 1 AS x;
        CREATE TABLE in_c_orders.orders AS SELECT range AS id FROM range(5);
        CREATE TABLE staging.raw AS SELECT 1 AS x;
        CREATE TABLE main.fact_sales AS SELECT 1 AS x;
        CREATE TABLE main.fact_returns AS SELECT 2 AS x;
        CREATE TABLE main.dim_date AS SELECT 3 AS x;
        CREATE MACRO staging.m(a) AS a + 1;
    """)
    yield con, tmp_path / "snaps" / "memory"
    con.close()


def created(con, sql):
    return sorted((r[0], r[1]) for r in rows(con, f"SELECT schema_name, table_name FROM ({sql})"))


def test_create_with_patterns_and_exclude(warehouse):
    con, repo = warehouse
    assert created(con, "FROM snapshot_create('in_c_*.*', id := 'p1')") == [
        ("in_c_customers", "customers"), ("in_c_customers", "tmp_load"), ("in_c_orders", "orders")]
    assert created(con, "FROM snapshot_create('main.fact_*', id := 'p2')") == [("main", "fact_returns"), ("main", "fact_sales")]
    assert created(con, "FROM snapshot_create('fact_*', id := 'p3')") == [("main", "fact_returns"), ("main", "fact_sales")]
    assert created(con, "FROM snapshot_create(['dim_date', 'main.fact_s*'], id := 'p4')") == [("main", "dim_date"), ("main", "fact_sales")]
    assert created(con, "FROM snapshot_create('in_c_*.*', exclude := ['*.tmp_*'], id := 'p5')") == [
        ("in_c_customers", "customers"), ("in_c_orders", "orders")]
    got = created(con, "FROM snapshot_create('*', exclude := ['staging.*', 'in_c_customers.tmp_load'], id := 'p6')")
    assert got == [("in_c_customers", "customers"), ("in_c_orders", "orders"), ("main", "dim_date"), ("main", "fact_returns"), ("main", "fact_sales")]
    # an excluded schema's objects stay out too; the scope is recorded as given
    meta = json.loads((repo / "p6" / "metadata.json").read_text())
    assert meta["scope"] == {"kind": "database", "exclude": ["staging.*", "in_c_customers.tmp_load"]}
    assert not any(o["schema"] == "staging" for o in meta.get("objects", []))
    assert json.loads((repo / "p5" / "metadata.json").read_text())["scope"] == {
        "kind": "pattern", "patterns": ["in_c_*.*"], "exclude": ["*.tmp_*"]}
    assert created(con, "FROM snapshot_create('in_c_orders.*', id := 'p7')") == [("in_c_orders", "orders")]
    assert json.loads((repo / "p7" / "metadata.json").read_text())["scope"] == {"kind": "schema", "schema": "in_c_orders"}
    # schema := keeps working, and is the same scope as 's.*'
    assert created(con, "FROM snapshot_create(NULL, schema := 'in_c_orders', id := 'p8')") == [("in_c_orders", "orders")]
    assert rows(con, "SELECT parent_id FROM snapshots() WHERE snapshot_id = 'p8'") == [("p7",)]


def test_a_pattern_chain_records_tables_gone_from_it(warehouse):
    con, _ = warehouse
    con.execute("CALL snapshot_create('main.fact_*', id := 'f1')")
    con.execute("DROP TABLE main.fact_returns")
    con.execute("CALL snapshot_create('main.fact_*', id := 'f2')")
    assert rows(con, "SELECT parent_id FROM snapshots() WHERE snapshot_id = 'f2'") == [("f1",)]
    assert rows(con, "SELECT table_name, status FROM snapshot_tables('f2') ORDER BY ALL") == [
        ("fact_returns", "deleted_in_source"), ("fact_sales", "unchanged")]
    # restoring the pattern as of now brings back what the pattern held then: fact_returns is gone
    assert rows(con, "SELECT source FROM snapshot_restore(now(), 'main.fact_*', backup_existing := false)") == [("main.fact_sales",)]
    assert rows(con, "SELECT source, snapshot_id FROM snapshot_restore('f2', 'main.fact_returns')") == [("main.fact_returns", "f1")]


def test_scope_errors_leave_everything_as_it_was(warehouse):
    con, repo = warehouse
    con.execute("CALL snapshot_create('main.dim_date', id := 'd')")
    before = tree(repo)
    cases = [
        ("CALL snapshot_create('main.nothing_*')", "no table matches 'main.nothing_*'"),
        ("CALL snapshot_create('in_c_*.*', exclude := 'in_c_*.*')", "leaves no table to snapshot"),
        ("CALL snapshot_create(['*', 'main.dim_date'])", "stand alone"),
        ("CALL snapshot_create('*', exclude := '*')", "would leave nothing"),
        ("CALL snapshot_create([])", "the scope list is empty"),
        ("CALL snapshot_create('in_c_orders')", "in_c_orders is a schema, not a table; use 'in_c_orders.*'"),
        ("CALL snapshot_create('main.dim_date', schema := 'staging')", "either a scope or schema"),
        ("CALL snapshot_create(42)", "must be a VARCHAR or VARCHAR[]"),
        ("CALL snapshot_drop_table('main.fact_*')", "one table or 'schema.*'"),
        ("CALL snapshot_restore(NULL, '*')", "must not be NULL"),
        ("CALL snapshot_restore(42, '*')", "snapshot id (VARCHAR) or a point in time"),
        ("FROM snapshot_tables(true)", "snapshot id (VARCHAR) or a point in time"),
        ("FROM snapshot_at('d')", "must be a TIMESTAMPTZ, TIMESTAMP or DATE"),
    ]
    for sql, needle in cases:
        with pytest.raises(duckdb.Error) as err:
            con.execute(sql).fetchall()
        first = str(err.value).split("\n")[0]
        assert needle in first, (sql, first)
    assert tree(repo) == before
    assert rows(con, "SELECT count(*) FROM duckdb_tables()") == [(7,)]


def test_tables_verify_mount_export_and_diff_take_times(timeline, tmp_path):
    con, repo = timeline
    at = "TIMESTAMPTZ '2024-12-04 12:00:00+00'"
    assert rows(con, f"SELECT DISTINCT snapshot_id FROM snapshot_tables({at})") == [("hr4",)]
    assert rows(con, "SELECT count(DISTINCT snapshot_id) FROM snapshot_tables('*')") == [(4,)]
    assert rows(con, "SELECT count(DISTINCT snapshot_id) FROM snapshot_tables(NULL)") == [(4,)]
    assert rows(con, f"SELECT DISTINCT snapshot_id, status FROM snapshot_verify({at})") == [("hr4", "ok")]
    assert rows(con, "SELECT count(DISTINCT snapshot_id) FROM snapshot_verify('*') WHERE status = 'ok'") == [(4,)]
    mounted = rows(con, "SELECT snapshot_id, view_name, source FROM snapshot_mount(DATE '2024-12-04', schema := 'past') ORDER BY ALL")
    assert mounted == [("db3", "past.emp", "hr.emp"), ("db3", "past.t", "main.t")]
    assert rows(con, "SELECT count(*) FROM past.t") == [(3,)]
    assert rows(con, f"SELECT snapshot_id FROM snapshot_export({at}, '{tmp_path}/exp')") == [("hr4",)]
    diff = rows(con, f"SELECT change, id FROM snapshot_diff(DATE '2024-12-02', TIMESTAMPTZ '2024-12-05 12:00:00+00', 't') ORDER BY id")
    assert diff == [("insert", 2), ("insert", 3), ("insert", 4), ("insert", 5)]
    con.execute("INSERT INTO t VALUES (6)")
    for to in ["'live'", "NULL"]:
        assert rows(con, f"SELECT change, id FROM snapshot_diff('t5', {to}, 't')") == [("insert", 6)]
    assert rows(con, f"SELECT count(*) FROM snapshot_diff('live', {at}, 't')") == [(3,)]


def test_drop_table_takes_a_table_or_a_schema(warehouse):
    con, _ = warehouse
    out = rows(con, "SELECT dropped_table FROM snapshot_drop_table('main.dim_date')")
    assert out == [("main.dim_date",)]
    out = rows(con, "SELECT backup_snapshot_id LIKE 'auto_predrop_%', dropped_table FROM snapshot_drop_table('staging.*')")
    assert out == [(True, "staging.raw")]
    assert rows(con, "SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'staging'") == [(0,)]
    con.execute("CALL snapshot_undrop('staging.raw')")
    assert rows(con, "SELECT x FROM staging.raw") == [(1,)]


def test_zero_argument_calls_get_duckdbs_binder_error(con):
    # one signature per table function (C API v1): the README explains, '*' means everything
    for sql in ["CALL snapshot_create()", "FROM snapshot_verify()", "CALL snapshot_restore('x')"]:
        with pytest.raises(duckdb.BinderException, match="No function matches"):
            con.execute(sql)


def test_every_form_in_the_shell(tmp_path):
    sql = f"""
        SET snapshot_directory = '{tmp_path}/snaps';
        CREATE SCHEMA in_c_customers;
        CREATE TABLE in_c_customers.customers AS SELECT range AS id, 'c' || range AS name FROM range(10);
        CREATE TABLE fact_a AS SELECT 1 AS x;
        SELECT count(*) AS n FROM snapshot_create('*', id := 'all');
        SELECT count(*) AS n FROM snapshot_create('in_c_*.*', id := 'pat');
        DELETE FROM in_c_customers.customers WHERE id >= 5;
        SELECT count(*) AS n FROM 'in_c_customers.customers@all' WHERE id < 7;
        SELECT count(*) AS n FROM read_snapshot(now(), 'in_c_customers.customers');
        SELECT snapshot_id, row_count FROM snapshot_restore(now(), 'in_c_customers.customers', backup_existing := false);
        SELECT count(*) AS n FROM in_c_customers.customers;
        SELECT count(*) AS n FROM snapshot_tables('*');
        SELECT count(*) AS n FROM snapshot_verify(now());
        SELECT count(*) AS n FROM snapshot_diff('all', 'live', 'fact_a');
        SELECT view_name FROM snapshot_mount(now(), schema := 'past');
        SELECT dropped_table FROM snapshot_drop_table('fact_a');
        SELECT count(*) AS n FROM snapshot_restore('all', '*', exclude := ['in_c_*.*']) WHERE kind = 'table';
        SELECT count(*) AS n FROM snapshot_create('in_c_customers.*', id := 'sch');
        SELECT count(*) AS n FROM read_snapshot(current_date + 1, 'in_c_customers.customers');
        SELECT count(*) AS n FROM read_snapshot(now()::TIMESTAMP + INTERVAL 1 DAY, 'in_c_customers.customers');
        SELECT source FROM snapshot_restore(now(), 'in_c_customers.*', backup_existing := false) WHERE kind = 'table';
        SELECT snapshot_id, count(*) AS n FROM snapshot_restore(now() + INTERVAL 1 DAY, '*', backup_existing := false) WHERE kind = 'table' GROUP BY ALL;
        SELECT dropped_table FROM snapshot_drop_table('in_c_customers.*');
    """
    rc, out, err = run_shell(sql, db=str(tmp_path / "s.db"))
    assert rc == 0 and err == "", err
    assert out == [
        [{"n": 2}], [{"n": 1}], [{"n": 7}], [{"n": 10}],
        [{"snapshot_id": "pat", "row_count": 10}], [{"n": 10}],
        [{"n": 3}], [{"n": 1}], [{"n": 0}],
        [{"view_name": "past.customers"}], [{"dropped_table": "main.fact_a"}], [{"n": 1}],
        [{"n": 1}], [{"n": 10}], [{"n": 10}],
        [{"source": "in_c_customers.customers"}], [{"snapshot_id": "all", "n": 2}],
        [{"dropped_table": "in_c_customers.customers"}],
    ]


def test_name_conflicts_say_what_to_do(tmp_path):
    con = connect(snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE TABLE a AS SELECT 1 AS i; CREATE TABLE b AS SELECT 2 AS j")
    con.execute("CALL snapshot_create('*', id := 'x')")
    con.execute("CALL snapshot_mount('x', schema := 'm')")
    before = tree(tmp_path / "snaps")
    with pytest.raises(duckdb.Error, match="schema m already has a table or view named a; mount into another schema"):
        con.execute("CALL snapshot_mount('x', schema := 'm')")
    con.execute("DROP TABLE b; CREATE VIEW b AS SELECT 3 AS j")
    with pytest.raises(duckdb.Error, match="cannot restore table main.b: a view of that name exists; drop the view, or restore beside it"):
        con.execute("CALL snapshot_restore('x', '*')")
    assert tree(tmp_path / "snaps") == before
    assert rows(con, "SELECT j FROM b") == [(3,)]
    assert rows(con, "SELECT source FROM snapshot_restore('x', 'b', target := 'b_restored')") == [("main.b",)]
    con.close()
