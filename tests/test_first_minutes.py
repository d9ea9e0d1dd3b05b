"""What a newcomer meets in the first fifteen minutes (issue 12): no surprises inside
transactions, results that tell the truth and fit the screen, errors that guide."""
import os
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from conftest import EXT, ROOT, connect, rows, run_shell, tree


def du(path):
    total = 0
    for d, _, fs in os.walk(path):
        for f in fs:
            total += os.path.getsize(os.path.join(d, f))
    return total


def file_db(tmp_path):
    """A database file with the extension loaded; every connection of it (cursors too)
    snapshots into tmp_path/snaps."""
    db = connect(str(tmp_path / "h.duckdb"))
    db.execute(f"SET GLOBAL snapshot_directory = '{tmp_path}/snaps'")
    return db


# ---- safety ---------------------------------------------------------------------------------

def test_an_explicit_transactions_inserts_survive_a_restore(tmp_path):
    """BEGIN; INSERT; CALL snapshot_restore(...); COMMIT: the table is refilled in place, so
    the caller's uncommitted rows still commit on top of the restored ones."""
    db = file_db(tmp_path)
    db.execute("CREATE SCHEMA hr; CREATE TABLE hr.employees(id INTEGER PRIMARY KEY, name VARCHAR)")
    db.execute("INSERT INTO hr.employees VALUES (1, 'ann'), (2, 'bob')")
    db.execute("CALL snapshot_create('hr.employees', id := 'full_v2')")
    db.execute("DELETE FROM hr.employees WHERE id = 2")
    user = db.cursor()
    user.execute("BEGIN")
    user.execute("INSERT INTO hr.employees VALUES (3, 'cy')")
    out = user.execute("SELECT row_count FROM snapshot_restore('full_v2', 'hr.employees')").fetchall()
    assert out == [(2,)]
    user.execute("COMMIT")
    assert db.execute("SELECT list(id ORDER BY id) FROM hr.employees").fetchall() == [([1, 2, 3],)]
    db.close()


def test_a_restore_over_uncommitted_changes_fails_cleanly(tmp_path):
    db = file_db(tmp_path)
    db.execute("CREATE TABLE t AS SELECT range AS id, 0 AS v FROM range(10)")
    db.execute("CALL snapshot_create('t', id := 's')")
    before = tree(tmp_path / "snaps")
    user = db.cursor()
    user.execute("BEGIN")
    user.execute("DELETE FROM t WHERE id = 3")
    with pytest.raises(duckdb.Error) as err:
        user.execute("CALL snapshot_restore('s', 't')")
    msg = str(err.value)
    assert "cannot replace table main.t: another transaction (yours?) has uncommitted changes to its rows; COMMIT or ROLLBACK it" in msg, msg
    user.execute("ROLLBACK")  # DuckDB ends a transaction at any error
    # the restore changed nothing: table and repository as they were
    assert db.execute("SELECT count(*) FROM t").fetchall() == [(10,)]
    assert tree(tmp_path / "snaps") == before
    # another connection's pending change blocks it the same way, and its owner can still commit
    other = db.cursor()
    other.execute("BEGIN; UPDATE t SET v = 1 WHERE id = 4")
    with pytest.raises(duckdb.Error, match="another transaction \\(yours\\?\\) has uncommitted updates or schema changes"):
        db.execute("CALL snapshot_restore('s', 't')")
    other.execute("COMMIT")
    assert db.execute("SELECT count(*) FROM t WHERE v = 1").fetchall() == [(1,)]
    db.close()


@pytest.mark.parametrize("pending, effect", [
    ("UPDATE t SET v = 1 WHERE id = 4", "SELECT count(*) FROM t WHERE v = 1"),
    ("DELETE FROM t WHERE id = 4", "SELECT 10 - count(*) FROM t"),
    ("ALTER TABLE t ADD COLUMN w INTEGER", "SELECT count(*) FROM duckdb_columns() WHERE table_name = 't' AND column_name = 'w'"),
])
def test_drop_table_refuses_over_another_transactions_pending_changes(tmp_path, pending, effect):
    """A table dropped under another transaction's uncommitted update, delete or schema change
    would make that transaction's COMMIT fail: refused, nothing written, and that transaction
    still commits."""
    db = file_db(tmp_path)
    db.execute("CREATE TABLE t AS SELECT range AS id, 0 AS v FROM range(10)")
    db.execute("CALL snapshot_create('t', id := 's')")
    before = tree(tmp_path / "snaps")
    other = db.cursor()
    other.execute("BEGIN")
    other.execute(pending)
    with pytest.raises(duckdb.Error) as err:
        db.execute("CALL snapshot_drop_table('t')")
    msg = str(err.value)
    assert "cannot drop table main.t: another transaction (yours?) has uncommitted" in msg, msg
    assert "COMMIT or ROLLBACK it, then drop it" in msg and "\n" not in msg.split("Error: ", 1)[1], msg
    assert tree(tmp_path / "snaps") == before  # no backup snapshot left behind
    other.execute("COMMIT")
    assert db.execute(effect).fetchall() == [(1,)]
    # once committed, the drop goes through
    assert db.execute("SELECT dropped_table FROM snapshot_drop_table('t')").fetchall() == [("main.t",)]
    db.close()


def test_the_shells_own_transaction_survives_a_refused_drop_or_restore(tmp_path):
    """In the 1.5.6 shell the refusal is a binder error, which does not end the caller's
    transaction: its update and delete still commit, and nothing was written."""
    rc, out, err = run_shell("""
SET snapshot_directory = 'snaps';
CREATE TABLE t AS SELECT range AS id, 0 AS v FROM range(10);
CALL snapshot_create('t', id := 's');
BEGIN;
UPDATE t SET v = 1 WHERE id = 4;
CALL snapshot_drop_table('t');
CALL snapshot_restore('s', 't');
COMMIT;
BEGIN;
DELETE FROM t WHERE id = 5;
CALL snapshot_restore('s', 't');
COMMIT;
SELECT count(*) AS n, sum(v)::INTEGER AS v FROM t;
SELECT list(snapshot_id) AS ids FROM snapshots();
""", db=str(tmp_path / "sh.db"), cwd=str(tmp_path))
    assert "cannot drop table main.t: another transaction (yours?) has uncommitted updates or schema changes" in err, err
    assert "cannot replace tables: another transaction (yours?) has uncommitted updates or schema changes" in err, err
    assert "cannot replace table main.t: another transaction (yours?) has uncommitted changes to its rows" in err, err
    assert out[-2] == [{"n": 9, "v": 1}] and out[-1] == [{"ids": ["s"]}], out


def test_drop_schema_with_foreign_keys_inside(con):
    con.execute("CREATE SCHEMA shop")
    con.execute("CREATE TABLE shop.customers(id INTEGER PRIMARY KEY)")
    con.execute("CREATE TABLE shop.orders(id INTEGER, customer INTEGER REFERENCES shop.customers(id))")
    con.execute("INSERT INTO shop.customers VALUES (1), (2); INSERT INTO shop.orders VALUES (10, 1), (11, 2)")
    out = rows(con, "SELECT dropped_table FROM snapshot_drop_table('shop.*') ORDER BY 1")
    assert out == [("shop.customers",), ("shop.orders",)], out
    assert rows(con, "SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'shop'") == [(0,)]
    # both come back, the key between them too
    con.execute("CALL snapshot_undrop('shop.customers')")
    con.execute("CALL snapshot_undrop('shop.orders')")
    assert rows(con, "SELECT count(*) FROM shop.orders JOIN shop.customers ON customer = shop.customers.id") == [(2,)]


def test_a_table_only_in_the_callers_transaction_is_named_as_such(tmp_path):
    db = file_db(tmp_path)
    user = db.cursor()
    user.execute("BEGIN")
    user.execute("CREATE TABLE fresh AS SELECT 1 AS x")
    with pytest.raises(duckdb.Error, match="table fresh exists only in your open transaction; a snapshot captures committed data: COMMIT first"):
        user.execute("CALL snapshot_create('fresh')")
    # DuckDB ends a transaction at any error
    user.execute("ROLLBACK")
    user.execute("BEGIN; CREATE TABLE fresh AS SELECT 1 AS x; COMMIT")
    assert user.execute("SELECT count(*) FROM snapshot_create('fresh')").fetchall() == [(1,)]
    with pytest.raises(duckdb.Error, match="table nowhere does not exist"):
        user.execute("CALL snapshot_create('nowhere')")
    db.close()


def test_a_schema_only_in_the_callers_transaction_points_at_commit(tmp_path):
    # DuckDB's extension API cannot see a schema of the caller's open transaction; the
    # message says where it would count
    db = file_db(tmp_path)
    db.execute("BEGIN; CREATE SCHEMA fs; CREATE TABLE fs.files AS SELECT 1 AS id")
    with pytest.raises(duckdb.Error, match=r"schema \"fs\" does not exist or has no tables in committed data; .*counts after its COMMIT"):
        db.execute("CALL snapshot_create('fs.*')")
    db.execute("ROLLBACK")
    db.execute("CREATE SCHEMA fs; CREATE TABLE fs.files AS SELECT 1 AS id")
    assert db.execute("SELECT table_name FROM snapshot_create('fs.*')").fetchall() == [("files",)]
    db.close()


def test_undrop_refuses_when_the_table_exists(con, tmp_path):
    con.execute("CREATE TABLE orders AS SELECT range AS id FROM range(5)")
    backup = rows(con, "SELECT backup_snapshot_id FROM snapshot_drop_table('main.orders')")[0][0]
    con.execute("CREATE TABLE orders AS SELECT 42 AS id")
    before = tree(tmp_path / "snaps")
    with pytest.raises(duckdb.Error) as err:
        con.execute("CALL snapshot_undrop('main.orders')")
    msg = str(err.value)
    assert "main.orders exists; nothing to undrop" in msg and f"snapshot_restore('{backup}', 'main.orders')" in msg, msg
    assert rows(con, "SELECT id FROM orders") == [(42,)]
    assert tree(tmp_path / "snaps") == before


def test_a_target_of_more_than_three_parts_is_refused(con):
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.execute("CALL snapshot_create('t', id := 's')")
    with pytest.raises(duckdb.Error, match="target 'x.y.z.w' has more than three parts"):
        con.execute("CALL snapshot_restore('s', 't', target := 'x.y.z.w')")
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%x.y%'") == [(0,)]
    # a quoted part may hold dots
    con.execute("""CALL snapshot_restore('s', 't', target := '"x.y"')""")
    assert rows(con, 'SELECT x FROM "x.y"') == [(1,)]


def test_an_unqualified_name_held_in_another_schema_is_ambiguous(con):
    con.execute("CREATE SCHEMA sales; CREATE TABLE sales.orders AS SELECT 1 AS o")
    con.execute("CALL snapshot_create('sales.orders', id := 's')")
    con.execute("CREATE TABLE main.orders AS SELECT 2 AS o")
    with pytest.raises(duckdb.Error) as err:
        con.execute("CALL snapshot_restore('s', 'orders')")
    msg = str(err.value)
    assert "orders is ambiguous" in msg and "main.orders" in msg and "sales.orders" in msg, msg
    assert rows(con, "SELECT o FROM main.orders") == [(2,)]
    # qualified, it is clear
    assert rows(con, "SELECT source FROM snapshot_restore('s', 'sales.orders', backup_existing := false)") == [("sales.orders",)]


def test_exit_never_waits(tmp_path):
    """A process that used the extension (snapshots, a safe drop) exits at once, every time."""
    script = textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(tmp_path / 'x.duckdb')!r}, config={{"allow_unsigned_extensions": "true"}})
        con.execute("LOAD '{EXT}'")
        con.execute("SET snapshot_directory = '{tmp_path}/snaps'")
        con.execute("CREATE OR REPLACE TABLE t AS SELECT range AS id FROM range(100)")
        con.execute("CALL snapshot_create('t')")
        con.execute("CALL snapshot_drop_table('t')")
        print(time.time(), flush=True)
    """)
    slow = []
    for _ in range(24):
        p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        waited = time.time() - float(p.stdout.strip().splitlines()[-1])
        if waited > 5:
            slow.append(round(waited, 1))
    assert not slow, f"exits that waited: {slow}"


# ---- results that tell the truth ----------------------------------------------------------

def chain(con, n=50000):
    con.execute(f"CREATE TABLE t AS SELECT range AS id, 'v' || range AS s FROM range({n})")
    for i in range(6):
        if i:
            con.execute(f"UPDATE t SET s = s || 'x' WHERE hash(id, {i}) % 97 = 0")
        con.execute(f"CALL snapshot_create('t', id := 'c{i}')")


def test_prune_dry_run_predicts_the_real_run(con, tmp_path):
    chain(con)
    con.execute("CREATE TABLE u AS SELECT range AS id FROM range(1000)")
    con.execute("CALL snapshot_create('u', id := 'lone')")
    repo = tmp_path / "snaps" / "memory"
    plan = rows(con, "SELECT snapshot_id, action, bytes_freed FROM snapshot_prune(keep_last := 2, dry_run := true) ORDER BY ALL")
    before = du(repo)
    real = rows(con, "SELECT snapshot_id, action, bytes_freed FROM snapshot_prune(keep_last := 2) ORDER BY ALL")
    shrunk = before - du(repo)
    assert plan == real
    assert sum(r[2] for r in real) == shrunk and shrunk > 0
    assert all(r[2] == 0 for r in real if r[1] == "keep")


def test_drop_reports_what_it_freed_and_what_stays(con, tmp_path):
    chain(con)
    repo = tmp_path / "snaps" / "memory"
    start = du(repo)
    # c0 holds the base every later snapshot reads: it stays for them
    (sid, files_deleted, freed, files_kept, kept), = rows(con, "SELECT snapshot_id, files_deleted, bytes_freed, files_kept, bytes_kept FROM snapshot_drop('c0')")
    assert sid == "c0" and files_kept >= 1 and kept > 0
    assert start - du(repo) == freed
    total = freed
    for i in range(1, 6):
        total += rows(con, f"SELECT bytes_freed FROM snapshot_drop('c{i}')")[0][0]
    # the last drop also removed the files c0 kept for the others: everything is accounted for
    assert du(repo) == 0 and total == start
    assert rows(con, "SELECT count(*) FROM snapshots()") == [(0,)]


def test_sizes_mean_what_the_readme_says(con):
    chain(con)
    snaps = {r[0]: r[1:] for r in rows(con, "SELECT snapshot_id, size_bytes, bytes_written, bytes_reused FROM snapshots()")}
    size0, written0, reused0 = snaps["c0"]
    assert size0 > 0 and reused0 == 0
    for sid, (size, written, reused) in snaps.items():
        assert size > 0, sid
        assert reused > 0 or sid == "c0", sid
    # an unchanged snapshot occupies the data it reads, writes (almost) nothing
    con.execute("CALL snapshot_create('t', id := 'same')")
    size, written, reused = rows(con, "SELECT size_bytes, bytes_written, bytes_reused FROM snapshots() WHERE snapshot_id = 'same'")[0]
    assert size == reused and size > 0 and written < 1000
    assert rows(con, "SELECT size_bytes, status FROM snapshot_tables('same')") == [(size, "unchanged")]


def test_lineage_follows_the_scope(con):
    con.execute("CREATE TABLE a AS SELECT 1 AS x; CREATE TABLE b AS SELECT 2 AS y")
    con.execute("CALL snapshot_create('a', id := 'ta')")
    con.execute("CALL snapshot_create('*', id := 'd1')")
    con.execute("CALL snapshot_create('b', id := 'tb')")
    con.execute("CALL snapshot_create('a', id := 'ta2')")
    con.execute("CALL snapshot_create('*', id := 'd2')")
    parents = dict(rows(con, "SELECT snapshot_id, parent_id FROM snapshots()"))
    assert parents == {"ta": None, "d1": None, "tb": None, "ta2": "ta", "d2": "d1"}


def test_diff_changed_columns_only_for_updates(con):
    con.execute("CREATE TABLE k(id INTEGER PRIMARY KEY, a INTEGER, b VARCHAR)")
    con.execute("INSERT INTO k VALUES (1, 1, 'x'), (2, 2, NULL)")
    con.execute("CALL snapshot_create('k', id := 'k1')")
    con.execute("UPDATE k SET a = 10 WHERE id = 1; DELETE FROM k WHERE id = 2; INSERT INTO k VALUES (3, NULL, 'z')")
    got = rows(con, "SELECT change, id, changed_columns FROM snapshot_diff('k1', 'live', 'k') ORDER BY id")
    assert got == [("update", 1, ["a"]), ("delete", 2, None), ("insert", 3, None)]


def test_restore_reports_every_object_fully_qualified(con):
    con.execute("""
        CREATE SCHEMA hr; CREATE TYPE hr.mood AS ENUM ('ok', 'sad'); CREATE SEQUENCE hr.seq;
        CREATE TABLE hr.emp(id INTEGER, m hr.mood); INSERT INTO hr.emp VALUES (1, 'ok');
        CREATE VIEW hr.v AS SELECT count(*) AS n FROM hr.emp; CREATE MACRO hr.twice(x) AS x * 2;
    """)
    con.execute("CALL snapshot_create('hr.*', id := 'h')")
    got = rows(con, "SELECT kind, source, target, row_count FROM snapshot_restore('h', 'hr.*', backup_existing := false)")
    assert got == [
        ("schema", "hr", "memory.hr", None),
        ("type", "hr.mood", "memory.hr.mood", None),
        ("sequence", "hr.seq", "memory.hr.seq", None),
        ("table", "hr.emp", "memory.hr.emp", 1),
        ("view", "hr.v", "memory.hr.v", None),
        ("macro", "hr.twice", "memory.hr.twice", None),
    ]
    dropped = rows(con, "SELECT dropped_table FROM snapshot_drop_table('hr.*')")
    assert dropped == [("hr.emp",)]


# ---- fits a terminal ----------------------------------------------------------------------

def test_listing_columns_read_first_and_last(con):
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.execute("CALL snapshot_create('t', id := 's', description := 'd')")
    cols = [r[0] for r in rows(con, "DESCRIBE FROM snapshots()")]
    # what a person reads first, first; the description last (the shell keeps the ends); places
    # and lineage in the middle, never among the last columns
    assert cols[:6] == ["snapshot_id", "created_at", "type", "table_count", "row_count", "size_bytes"]
    assert cols[-1] == "description"
    assert set(cols[6:-1]) == {"bytes_written", "bytes_reused", "parent_id", "pinned", "created_by", "project_id", "branch", "path"}
    assert not {"path", "project_id", "branch", "parent_id"} & set(cols[-4:])
    tcols = [r[0] for r in rows(con, "DESCRIBE FROM snapshot_tables('*')")]
    assert tcols[:3] == ["snapshot_id", "schema_name", "table_name"] and tcols[-3:] == ["status", "row_count", "size_bytes"]
    ccols = [r[0] for r in rows(con, "DESCRIBE FROM snapshot_create('t', id := 's2')")]
    assert ccols[:3] == ["snapshot_id", "schema_name", "table_name"] and ccols[-3:] == ["status", "row_count", "size_bytes"]
    hcols = [r[0] for r in rows(con, "DESCRIBE FROM snapshot_history('t')")]
    assert hcols[:3] == ["snapshot_id", "created_at", "type"] and hcols[-3:] == ["status", "row_count", "row_count_change"]
    # times to the second, and a time copied from the listing picks the snapshot it shows
    shown = rows(con, "SELECT created_at FROM snapshots() WHERE snapshot_id = 's'")[0][0]
    assert shown.microsecond == 0
    picked = rows(con, f"SELECT snapshot_id FROM snapshot_at(TIMESTAMPTZ '{shown.isoformat()}')")
    assert picked in ([("s",)], [("s2",)])  # s2 when both were taken within that second


def test_listing_columns_in_the_shell(tmp_path):
    rc, out, err = run_shell(f"SET snapshot_directory = '{tmp_path}/s';\nCREATE TABLE t AS SELECT 1 AS x;\n"
                             "CALL snapshot_create('t', id := 's');\nFROM snapshots();", db=str(tmp_path / "x.db"))
    assert rc == 0, err
    assert list(out[-1][0])[:6] == ["snapshot_id", "created_at", "type", "table_count", "row_count", "size_bytes"]
    assert list(out[-1][0])[-1] == "description"
    assert "." not in out[-1][0]["created_at"]  # no microseconds on the screen


def test_settings_show_where_snapshots_go(tmp_path):
    db = tmp_path / "shop.duckdb"
    con = connect(str(db))
    got = {r[0]: (r[1], r[2]) for r in rows(con, "SELECT name, value, source FROM snapshot_settings()")}
    assert got["snapshot_directory"] == (str(tmp_path / "snapshots"), got["snapshot_directory"][1])
    assert got["snapshot_directory"][1].startswith("default")
    assert got["snapshot_project"][0] == "shop" and got["repository"][0] == str(tmp_path / "snapshots" / "shop")
    con.execute(f"SET snapshot_directory = '{tmp_path}/elsewhere'")
    got = {r[0]: (r[1], r[2]) for r in rows(con, "SELECT name, value, source FROM snapshot_settings()")}
    assert got["snapshot_directory"] == (str(tmp_path / "elsewhere"), "SET")
    con.close()


# ---- errors that guide ----------------------------------------------------------------------

@pytest.mark.parametrize("sql,needles", [
    ("CALL snapshot_drop(NULL)", ["the snapshot id must not be NULL", "FROM snapshots()"]),
    ("FROM read_snapshot(NULL, 't')", ["must not be NULL", "TIMESTAMPTZ"]),
    ("FROM read_snapshot('2024-12-11 14:00', 't')", ["is not a snapshot id", "TIMESTAMPTZ '2024-12-11 14:00'"]),
    ("FROM read_snapshot('2024-12-11', 't')", ["snapshot '2024-12-11' not found", "DATE '2024-12-11'"]),
    ("CALL snapshot_create('hr')", ["hr is a schema, not a table; use 'hr.*'"]),
])
def test_errors_say_what_to_do(con, sql, needles):
    con.execute("CREATE SCHEMA hr; CREATE TABLE hr.e AS SELECT 1 AS x; CREATE TABLE t AS SELECT 1 AS x")
    con.execute("CALL snapshot_create('t', id := 's')")
    with pytest.raises(duckdb.Error) as err:
        con.execute(sql)
    msg = str(err.value).split("\n")[0]
    for n in needles:
        assert n in msg, msg


def test_python_reads_results_out_of_the_box(con):
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.execute("CALL snapshot_create('t', id := 's')")
    created = con.execute("SELECT created_at FROM snapshots()").fetchall()[0][0]
    assert created.tzinfo is not None  # needs pytz
    df = con.execute("FROM snapshots()").fetchdf()  # needs numpy and pandas
    assert list(df["snapshot_id"]) == ["s"]


def test_a_database_with_foreign_keys_restores_from_its_own_snapshot(con):
    con.execute("CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(id INTEGER REFERENCES p(id))")
    con.execute("INSERT INTO p VALUES (1), (2); INSERT INTO c VALUES (1)")
    con.execute("CALL snapshot_create('*', id := 'db')")
    con.execute("INSERT INTO p VALUES (3); INSERT INTO c VALUES (2)")
    got = rows(con, "SELECT source, row_count FROM snapshot_restore('db', '*') WHERE kind = 'table'")
    assert got == [("main.p", 2), ("main.c", 1)]
    assert rows(con, "SELECT list(id ORDER BY id) FROM p UNION ALL SELECT list(id ORDER BY id) FROM c") == [([1, 2],), ([1],)]
    # a drifted parent is recreated, and so is the table that references it
    con.execute("ALTER TABLE p ADD COLUMN note VARCHAR")
    assert rows(con, "SELECT count(*) FROM snapshot_restore('db', '*') WHERE kind = 'table'") == [(2,)]
    assert rows(con, "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'p'") == [(1,)]
    # moved into another schema, the key points at the moved parent
    out = rows(con, "SELECT target FROM snapshot_restore('db', '*', target_schema := 'copy') WHERE kind = 'table'")
    assert out == [("memory.copy.p",), ("memory.copy.c",)]
    assert rows(con, "SELECT count(*) FROM copy.c JOIN copy.p USING (id)") == [(1,)]
    with pytest.raises(duckdb.Error, match="FOREIGN KEY|foreign key"):
        con.execute("INSERT INTO copy.c VALUES (9)")


def test_views_and_names_that_are_not_tables(con):
    con.execute("CREATE TABLE t AS SELECT 1 AS x; CREATE VIEW v AS SELECT * FROM t")
    with pytest.raises(duckdb.Error, match="v is a view, not a table"):
        con.execute("CALL snapshot_create('v')")
    con.execute("CALL snapshot_create('t', id := 's')")
    for target, needle in [("x..y", "is not a table name"), ("", "is not a table name"), ("a.b.c.d", "more than three parts")]:
        with pytest.raises(duckdb.Error, match=needle):
            con.execute(f"CALL snapshot_restore('s', 't', target := '{target}')")
    with pytest.raises(duckdb.Error, match="target_schema 'a.b' has two parts; give the database apart"):
        con.execute("CALL snapshot_restore('s', 't', target_schema := 'a.b')")
    con.execute("""CALL snapshot_restore('s', 't', target_schema := '"a.b"')""")
    assert rows(con, 'SELECT x FROM "a.b".t') == [(1,)]
    assert rows(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '%..%' OR table_name = ''") == [(0,)]


def test_diff_of_an_unqualified_name_meaning_two_tables_is_ambiguous(con):
    con.execute("CREATE SCHEMA sales; CREATE TABLE sales.orders AS SELECT range AS id FROM range(5)")
    con.execute("CALL snapshot_create('sales.orders', id := 'so')")
    con.execute("CREATE TABLE main.orders AS SELECT range AS id FROM range(3)")
    with pytest.raises(duckdb.Error, match="orders is ambiguous: it is sales.orders on one side and main.orders on the other"):
        con.execute("FROM snapshot_diff('so', 'live', 'orders')")
    assert rows(con, "SELECT count(*) FROM snapshot_diff('so', 'live', 'sales.orders')") == [(0,)]


def test_more_errors_that_guide(con, tmp_path):
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.execute("CALL snapshot_create('t', id := 's')")
    with pytest.raises(duckdb.Error, match="type 'weird' is not a snapshot type; use one of 'manual', 'pre_restore', 'pre_drop'"):
        con.execute("CALL snapshot_prune(type := 'weird', keep_last := 1)")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(duckdb.Error) as err:
        con.execute(f"CALL snapshot_export('s', '{blocker}/sub/out')")
    msg = str(err.value)
    assert "cannot write the export to" in msg and "snapshot_directory" not in msg, msg


def test_the_format_reader_finds_tables_as_sql_names_them(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("read_snapshot", os.path.join(ROOT, "docs", "read_snapshot.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    con = connect(str(tmp_path / "n.duckdb"), snapdir=str(tmp_path / "snaps"))
    con.execute('CREATE SCHEMA "s.x"; CREATE TABLE "s.x"."a.b" AS SELECT 1 AS v; CREATE TABLE "MyT" AS SELECT 2 AS v')
    con.execute("CALL snapshot_create('*', id := 'n')")
    con.close()
    project = tmp_path / "snaps" / "n"
    assert mod.read_version(project, "n", '"s.x"."a.b"').to_pylist() == [{"v": 1}]
    assert mod.read_version(project, "n", "myt").to_pylist() == [{"v": 2}]


def test_the_lock_timeout_is_a_number_at_set(con):
    assert rows(con, "SELECT current_setting('snapshot_lock_timeout')") == [(30.0,)]
    with pytest.raises(duckdb.Error, match="Could not convert string 'abc' to DOUBLE"):
        con.execute("SET snapshot_lock_timeout = 'abc'")
    con.execute("SET snapshot_lock_timeout = 2.5")
    assert rows(con, "SELECT value, source FROM snapshot_settings() WHERE name = 'snapshot_lock_timeout'") == [("2.5", "SET")]
