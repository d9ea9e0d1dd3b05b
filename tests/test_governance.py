"""Issue 15, repository governance: a repository locked to one granularity and scope
(`snapshot_repository`, stored in repository.json) and `snapshot_describe()`.

The catalog-backup design's test list (../shared/seeds/catalog-backups-design.md), as far as these
features reach, maps to the tests here by name in each docstring:
section 4 test_repository_granularity_is_locked, test_reject_broader_scope_on_existing_repo,
test_reject_narrower_scope_on_existing_repo, test_incremental_same_granularity_accepted,
test_concurrent_backup_prevention; section 8 test_describe_shows_granularity,
test_describe_shows_all_pits; section 10 test_reject_backup_narrower_than_previous,
test_reject_backup_broader_than_previous."""
import json
import os
import subprocess
import sys

import duckdb
import pytest

from conftest import EXT, connect, rows, run_shell, tree

LOCKED = r"the repository .* is locked to {g} granularity, scope '{s}' \(snapshot_repository\); '{a}' is {how} that scope: CALL snapshot_create\(NULL\) snapshots the locked scope"


@pytest.fixture
def db(tmp_path):
    con = connect(str(tmp_path / "shop.duckdb"), snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE SCHEMA sales")
    con.execute("CREATE TABLE sales.orders AS SELECT range AS id, range * 2 AS amount FROM range(100)")
    con.execute("CREATE TABLE sales.returns AS SELECT range AS id FROM range(5)")
    con.execute("CREATE TABLE main.customers AS SELECT range AS id FROM range(10)")
    yield con
    con.close()


def repo_dir(tmp_path):
    return tmp_path / "snaps" / "shop"


def test_unlocked_repository_shows_unlocked_and_behaves_as_before(db):
    assert rows(db, "FROM snapshot_repository()") == [("shop", rows(db, "SELECT value FROM snapshot_settings() WHERE name = 'snapshot_directory'")[0][0] + "/shop", "unlocked", "unlocked", None, None, None)]
    db.execute("CALL snapshot_create('sales.orders')")
    db.execute("CALL snapshot_create('*')")
    assert rows(db, "SELECT count(*) FROM snapshots()") == [(2,)]


def test_repository_granularity_is_locked(db, tmp_path):
    """Seed 4: test_repository_granularity_is_locked; test_incremental_same_granularity_accepted."""
    got = rows(db, "CALL snapshot_repository(granularity := 'schema', scope := 'sales.*')")
    assert [(r[0], r[2], r[3], r[5], r[6]) for r in got] == [("shop", "schema", "sales.*", os.environ.get("USER") or got[0][5], 1)]
    with open(repo_dir(tmp_path) / "repository.json") as f:
        stored = json.load(f)
    assert stored["format_version"] == 1 and stored["granularity"] == "schema"
    assert stored["scope"] == {"kind": "schema", "schema": "sales"}
    assert rows(db, "SELECT granularity, scope FROM snapshot_repository()") == [("schema", "sales.*")]
    # the same scope is accepted, incremental as ever; NULL means the locked scope
    db.execute("CALL snapshot_create('sales.*', id := 's1')")
    db.execute("UPDATE sales.orders SET amount = 0 WHERE id = 1")
    created = rows(db, "CALL snapshot_create(NULL, id := 's2')")
    assert sorted((r[2], r[4], r[9]) for r in created) == [("orders", "s1", "stored"), ("returns", "s1", "unchanged")]
    assert rows(db, "CALL snapshot_create(NULL, schema := 'sales', id := 's3')")[0][0] == "s3"
    # a lock is set once: the same settings again change nothing, others are refused
    assert rows(db, "SELECT granularity, scope FROM snapshot_repository(granularity := 'schema', scope := 'sales.*')") == [("schema", "sales.*")]
    before = tree(str(tmp_path / "snaps"))
    with pytest.raises(duckdb.Error, match=r"is already locked to schema granularity, scope 'sales\.\*' \(since .*\); a lock is set once"):
        db.execute("CALL snapshot_repository(granularity := 'database')")
    assert tree(str(tmp_path / "snaps")) == before


def test_reject_broader_scope_on_existing_repo(db, tmp_path):
    """Seed 4: test_reject_broader_scope_on_existing_repo; seed 10: test_reject_backup_broader_than_previous."""
    db.execute("CALL snapshot_repository(granularity := 'table', scope := 'sales.orders')")
    db.execute("CALL snapshot_create('sales.orders', id := 'first')")
    before = tree(str(tmp_path / "snaps"))
    for scope, text in (("'*'", r"\*"), ("'sales.*'", r"sales\.\*"), ("['sales.orders', 'sales.returns']", r"sales\.orders, sales\.returns")):
        how = "not" if scope.startswith("[") else "broader than"
        with pytest.raises(duckdb.Error, match=LOCKED.format(g="table", s=r"sales\.orders", a=text, how=how)):
            db.execute(f"CALL snapshot_create({scope})")
    assert tree(str(tmp_path / "snaps")) == before
    assert rows(db, "SELECT snapshot_id FROM snapshots()") == [("first",)]


def test_reject_narrower_scope_on_existing_repo(db, tmp_path):
    """Seed 4: test_reject_narrower_scope_on_existing_repo; seed 10: test_reject_backup_narrower_than_previous."""
    db.execute("CALL snapshot_create('*', id := 'full')")
    db.execute("CALL snapshot_repository(granularity := 'database')")
    before = tree(str(tmp_path / "snaps"))
    with pytest.raises(duckdb.Error, match=LOCKED.format(g="database", s=r"\*", a=r"sales\.\*", how="narrower than")):
        db.execute("CALL snapshot_create('sales.*')")
    with pytest.raises(duckdb.Error, match=LOCKED.format(g="database", s=r"\*", a=r"main\.customers", how="narrower than")):
        db.execute("CALL snapshot_create('customers')")
    with pytest.raises(duckdb.Error, match=LOCKED.format(g="database", s=r"\*", a=r"\* exclude customers", how="not")):
        db.execute("CALL snapshot_create('*', exclude := ['customers'])")
    assert tree(str(tmp_path / "snaps")) == before
    db.execute("CALL snapshot_create('*', id := 'next')")
    assert rows(db, "SELECT parent_id FROM snapshots() WHERE snapshot_id = 'next'") == [("full",)]


def test_lock_needs_every_existing_snapshot_to_fit(db, tmp_path):
    db.execute("CALL snapshot_create('sales.orders', id := 'orders_only')")
    db.execute("CALL snapshot_create('sales.*', id := 'schema_one')")
    before = tree(str(tmp_path / "snaps"))
    with pytest.raises(duckdb.Error, match=r"snapshot_repository: snapshot (orders_only|schema_one) of the repository .* has scope '.*', not 'sales\.\*'; a repository is locked only when every snapshot fits the lock"):
        db.execute("CALL snapshot_repository(granularity := 'schema', scope := 'sales.*')")
    assert tree(str(tmp_path / "snaps")) == before and not (repo_dir(tmp_path) / "repository.json").exists()
    db.execute("CALL snapshot_drop('orders_only')")
    assert rows(db, "SELECT granularity FROM snapshot_repository(granularity := 'schema', scope := 'sales.*')") == [("schema",)]


def test_lock_arguments_are_checked(db, tmp_path):
    cases = [
        ("granularity := 'row'", r"unknown granularity 'row': use 'database', 'schema' or 'table'"),
        ("granularity := 'schema'", r"granularity 'schema' needs scope := \('schema_name\.\*'\)"),
        ("granularity := 'schema', scope := 'sales.orders'", r"scope 'sales\.orders' is not of schema granularity; give scope := 'schema_name\.\*'"),
        ("granularity := 'table', scope := '*'", r"scope '\*' is not of table granularity"),
        ("scope := 'sales.*'", r"give granularity := 'database', 'schema' or 'table' with scope := to lock the repository"),
        ("granularity := 'table', scope := 'sales.nope'", r"sales\.nope"),
    ]
    for args, message in cases:
        with pytest.raises(duckdb.Error, match=message):
            db.execute(f"CALL snapshot_repository({args})")
    assert not (repo_dir(tmp_path) / "repository.json").exists()


def test_backups_of_restores_and_drops_are_not_held_to_the_lock(db):
    """Nothing is ever lost: the safety snapshots a restore or a drop takes first are kept
    whatever the lock (they are not manual snapshots of the locked scope)."""
    db.execute("CALL snapshot_repository(granularity := 'table', scope := 'sales.orders')")
    db.execute("CALL snapshot_create(NULL, id := 'o1')")
    db.execute("DELETE FROM sales.orders")
    restored = rows(db, "CALL snapshot_restore('o1', 'sales.orders')")
    assert restored[0][4] == 100 and restored[0][5].startswith("auto_prerestore_")
    dropped = rows(db, "CALL snapshot_drop_table('main.customers')")
    assert dropped[0][0].startswith("auto_predrop_")
    assert sorted(r[0] for r in rows(db, "SELECT type FROM snapshots()")) == ["manual", "pre_drop", "pre_restore"]


def test_concurrent_backup_prevention(tmp_path):
    """Seed 4: test_concurrent_backup_prevention — two processes locking one repository to
    different scopes at once: exactly one lock wins, the other is refused, and the winner's
    scope is what every later create is held to."""
    db_path = tmp_path / "two.duckdb"
    con = connect(str(db_path), snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE TABLE a AS SELECT 1 AS x; CREATE TABLE b AS SELECT 2 AS x")
    con.close()
    script = (
        "import duckdb, sys\n"
        "c = duckdb.connect(sys.argv[1], read_only=True, config={'allow_unsigned_extensions': 'true'})\n"
        "c.execute(\"LOAD '\" + sys.argv[2] + \"'\")\n"
        "c.execute(\"SET snapshot_directory = '\" + sys.argv[3] + \"'\")\n"
        "try:\n"
        "    c.execute(\"CALL snapshot_repository(granularity := 'table', scope := '\" + sys.argv[4] + \"')\").fetchall()\n"
        "    print('locked')\n"
        "except duckdb.Error as e:\n"
        "    print('refused' if 'already locked' in str(e) or 'just now' in str(e) else 'error ' + str(e))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(db_path), EXT, str(tmp_path / "snaps"), t],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for t in ("a", "b")]
    outs = [p.communicate(timeout=60) for p in procs]
    results = sorted(o.strip() for o, _ in outs)
    assert results == ["locked", "refused"], outs
    winner = "a" if outs[0][0].strip() == "locked" else "b"
    con = connect(str(db_path), snapdir=str(tmp_path / "snaps"))
    assert rows(con, "SELECT scope FROM snapshot_repository()") == [(f"main.{winner}",)]
    loser = "b" if winner == "a" else "a"
    with pytest.raises(duckdb.Error, match=f"scope 'main.{winner}'"):
        con.execute(f"CALL snapshot_create('{loser}')")


def test_describe_shows_granularity(db, tmp_path):
    """Seed 8: test_describe_shows_granularity — and every figure of a repository, for every
    repository (project) under the directory."""
    db.execute("CALL snapshot_create('*', id := 'd1')")
    db.execute("UPDATE sales.orders SET amount = -1 WHERE id < 3")
    db.execute("DROP TABLE sales.returns")
    db.execute("CALL snapshot_create('*', id := 'd2')")
    other = connect(str(tmp_path / "other.duckdb"), snapdir=str(tmp_path / "snaps"))
    other.execute("CREATE TABLE t AS SELECT 1 AS x")
    other.execute("CALL snapshot_repository(granularity := 'table', scope := 't')")
    other.execute("CALL snapshot_create(NULL, id := 'o1')")
    other.close()
    got = rows(db, "FROM snapshot_describe()")
    assert [r[0] for r in got] == ["shop", "other"], "the current repository first, then the others"
    shop, oth = got
    files = [os.path.join(d, f) for d, _, fs in os.walk(repo_dir(tmp_path)) for f in fs if f != ".lock"]
    listed = rows(db, "SELECT sum(size_bytes), min(created_at), max(created_at) FROM snapshots()")[0]
    assert shop[1:8] == (str(repo_dir(tmp_path)), "unlocked", "unlocked", 2, 3, sum(os.path.getsize(f) for f in files), listed[0])
    assert (shop[8], shop[10]) == ("d1", "d2") and shop[9] == listed[1] and shop[11] == listed[2]
    assert shop[12] == ["sales.returns"] and shop[13] == ["2"]
    assert oth[2:6] == ("table", "main.t", 1, 1) and oth[8] == oth[10] == "o1" and oth[12] == []


def test_describe_shows_all_pits(db):
    """Seed 8: test_describe_shows_all_pits — the count and the oldest and newest point in time
    (the points themselves: FROM snapshots())."""
    assert rows(db, "SELECT snapshot_count, oldest_snapshot_id, newest_snapshot_id, deleted_in_source FROM snapshot_describe()") == [(0, None, None, [])]
    for i in range(3):
        db.execute(f"CALL snapshot_create('sales.*', id := 'p{i}')")
    assert rows(db, "SELECT snapshot_count, table_count, oldest_snapshot_id, newest_snapshot_id FROM snapshot_describe()") == [(3, 2, "p0", "p2")]


def test_lock_and_describe_in_the_shell(tmp_path):
    db = str(tmp_path / "shell.duckdb")
    rc, out, err = run_shell(
        f"SET snapshot_directory = '{tmp_path / 'snaps'}';\n"
        "CREATE TABLE t AS SELECT range AS id FROM range(3);\n"
        "CALL snapshot_repository(granularity := 'table', scope := 't');\n"
        "CALL snapshot_create(NULL, id := 'x');\n"
        "SELECT granularity, scope, snapshot_count FROM snapshot_describe();", db=db)
    assert rc == 0, err
    assert out[-1] == [{"granularity": "table", "scope": "main.t", "snapshot_count": 1}]


def test_lock_on_a_bucket(s3, tmp_path):
    from test_s3 import s3con
    con = s3con(s3, tmp_path)
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.execute("CALL snapshot_repository(granularity := 'table', scope := 't')")
    assert any(k.endswith("repo/memory/repository.json") for k in s3.list_keys()), s3.list_keys()
    with pytest.raises(duckdb.Error, match="is locked to table granularity, scope 'main.t'"):
        con.execute("CALL snapshot_create('*')")
    con.execute("CALL snapshot_create(NULL, id := 'b1')")
    assert rows(con, "SELECT granularity, scope, snapshot_count FROM snapshot_describe()") == [("table", "main.t", 1)]


@pytest.fixture
def with_deleted(tmp_path):
    """v1 holds sales.orders, sales.returns, gone.t and main.customers; by v2 sales.returns and
    the whole schema gone were dropped (recorded as deleted in the source)."""
    con = connect(str(tmp_path / "d.duckdb"), snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE SCHEMA sales; CREATE SCHEMA gone")
    con.execute("CREATE TABLE sales.orders AS SELECT range AS id FROM range(10)")
    con.execute("CREATE TABLE sales.returns AS SELECT range AS id FROM range(4)")
    con.execute("CREATE TABLE gone.t AS SELECT range AS id FROM range(2)")
    con.execute("CREATE TABLE main.customers AS SELECT range AS id FROM range(3)")
    con.execute("CALL snapshot_create('*', id := 'v1')")
    con.execute("DROP TABLE sales.returns; DROP SCHEMA gone CASCADE")
    con.execute("CALL snapshot_create('*', id := 'v2')")
    yield con
    con.close()


def live_tables(con):
    return rows(con, "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT internal ORDER BY 1")


def test_restore_with_deleted_objects_excluded(with_deleted):
    """Seed 6: test_restore_with_deleted_objects_excluded — by default a scope restore leaves
    out what the snapshot records as deleted in the source; seed 5: test_deleted_table_tracking."""
    con = with_deleted
    assert rows(con, "SELECT schema_name, table_name, status, parent_id FROM snapshot_tables('v2') WHERE status = 'deleted_in_source' ORDER BY 1, 2") == [
        ("gone", "t", "deleted_in_source", "v1"), ("sales", "returns", "deleted_in_source", "v1")]
    for scope in ("'*'", "'sales.*'", "'sales.*s'"):
        restored = rows(con, f"SELECT source FROM snapshot_restore('v2', {scope}) WHERE kind = 'table' ORDER BY 1")
        assert ("sales.returns",) not in restored and ("gone.t",) not in restored, (scope, restored)
    assert live_tables(con) == [("main.customers",), ("sales.orders",)]
    # by time too
    restored = rows(con, "SELECT source FROM snapshot_restore(now(), 'sales.*s') WHERE kind = 'table'")
    assert restored == [("sales.orders",)]


def test_restore_with_deleted_objects_included(with_deleted):
    """Seed 6: test_restore_with_deleted_objects_included — include_deleted := true brings them
    back, each from the snapshot that last held it, its schema created again."""
    con = with_deleted
    got = rows(con, "SELECT snapshot_id, source, row_count FROM snapshot_restore('v2', '*', include_deleted := true) WHERE kind = 'table' ORDER BY source")
    assert got == [("v1", "gone.t", 2), ("v2", "main.customers", 3), ("v2", "sales.orders", 10), ("v1", "sales.returns", 4)]
    assert live_tables(con) == [("gone.t",), ("main.customers",), ("sales.orders",), ("sales.returns",)]
    assert rows(con, "SELECT sum(id) FROM sales.returns") == [(6,)]
    con.execute("DROP TABLE sales.returns; DROP SCHEMA gone CASCADE")
    # by time: each table from the newest snapshot holding it (orders: the restore's own backup)
    got = rows(con, "SELECT snapshot_id, source FROM snapshot_restore(now(), 'sales.*s', include_deleted := true) WHERE kind = 'table' ORDER BY source")
    assert [r[1] for r in got] == ["sales.orders", "sales.returns"] and got[0][0].startswith("auto_prerestore_") and got[1][0] == "v1"


def test_restore_with_object_filters(with_deleted):
    """Seed 6: test_restore_with_object_filters — include (the scope) and exclude filters,
    with deleted objects too."""
    con = with_deleted
    got = rows(con, "SELECT source FROM snapshot_restore('v2', '*', include_deleted := true, exclude := ['sales.*', 'main.customers']) WHERE kind = 'table'")
    assert got == [("gone.t",)]
    con.execute("DROP SCHEMA gone CASCADE")
    got = rows(con, "SELECT source FROM snapshot_restore('v2', 'sales.*', include_deleted := true, exclude := ['sales.orders']) WHERE kind = 'table'")
    assert got == [("sales.returns",)]


def test_schema_evolution_tracking(tmp_path):
    """Seed 5: test_schema_evolution_tracking — each table version records schema_version (one
    more whenever columns, types, constraints or defaults change; comments and data do not
    count); history and snapshot_tables show it; snapshot_diff reports the column changes with
    schema_changes := true and compares rows on the columns both versions have."""
    con = connect(str(tmp_path / "e.duckdb"), snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b VARCHAR, d DATE)")
    con.execute("INSERT INTO t SELECT range, range * 10, 'x' || range, DATE '2024-01-01' + range::INTEGER FROM range(5)")
    con.execute("CALL snapshot_create('t', id := 'v1')")
    con.execute("UPDATE t SET b = 'data only' WHERE id = 0; COMMENT ON TABLE t IS 'comments do not count'")
    con.execute("CALL snapshot_create('t', id := 'v2')")
    con.execute("ALTER TABLE t DROP COLUMN b; ALTER TABLE t ADD COLUMN c VARCHAR DEFAULT 'new'")
    con.execute("ALTER TABLE t ALTER a TYPE BIGINT; ALTER TABLE t RENAME d TO day")
    con.execute("UPDATE t SET a = 99 WHERE id = 1")
    con.execute("CALL snapshot_create('t', id := 'v3')")
    con.execute("ALTER TABLE t ALTER c SET DEFAULT 'other'")
    con.execute("CALL snapshot_create('t', id := 'v4')")
    assert rows(con, "SELECT snapshot_id, schema_version FROM snapshot_history('t')") == [("v4", 3), ("v3", 2), ("v2", 1), ("v1", 1)]
    assert rows(con, "SELECT snapshot_id, schema_version FROM snapshot_tables('*') ORDER BY 1") == [("v1", 1), ("v2", 1), ("v3", 2), ("v4", 3)]
    changes = rows(con, "FROM snapshot_diff('v1', 'v3', 't', schema_changes := true)")
    assert changes == [
        ("retyped", "a", "a", "INTEGER", "BIGINT", 1, 2),
        ("renamed", "day", "d", "DATE", "DATE", 1, 2),
        ("added", "c", None, None, "VARCHAR", 1, 2),
        ("dropped", "b", "b", "VARCHAR", None, 1, 2),
    ]
    assert rows(con, "FROM snapshot_diff('v3', 'v4', 't', schema_changes := true)") == [], "a default is no column change"
    assert [r[0] for r in con.execute("DESCRIBE FROM snapshot_diff('v1', 'v1', 't', schema_changes := true)").fetchall()] == [
        "change", "column_name", "old_name", "old_type", "new_type", "from_schema_version", "to_schema_version"]
    # rows compare on the columns both have (id, a): only id 1 changed there
    assert rows(con, "SELECT change, id, changed_columns, before_a, after_a FROM snapshot_diff('v1', 'v3', 't')") == [("update", 1, ["a"], 10, 99)]
    # against the live table (no recorded version on that side)
    con.execute("ALTER TABLE t ADD COLUMN e INTEGER")
    assert rows(con, "FROM snapshot_diff('v4', 'live', 't', schema_changes := true)") == [("added", "e", None, None, "INTEGER", 3, None)]


def test_column_subset_snapshot(tmp_path):
    """A snapshot of selected columns (the MatrixOne guide's column snapshots): only those are
    stored (metadata.json lists the source's columns in source_columns), reads return them,
    later subsets of the same columns are incremental, and a restore over the table that has
    more columns is refused with a pointer to target :=."""
    snaps = tmp_path / "snaps"
    con = connect(str(tmp_path / "c.duckdb"), snapdir=str(snaps))
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR NOT NULL, name VARCHAR DEFAULT 'anon', secret VARCHAR)")
    con.execute("INSERT INTO users SELECT range, 'u' || range || '@x', 'n' || range, 'pw' FROM range(1000)")
    created = rows(con, "CALL snapshot_create('users', columns := ['email', 'id'], id := 'c1')")
    assert [(r[0], r[9], r[10]) for r in created] == [("c1", "stored", 1000)]
    with open(snaps / "c" / "c1" / "metadata.json") as f:
        entry = json.load(f)["tables"][0]
    assert entry["source_columns"] == ["id", "email", "name", "secret"]
    assert [c["name"] for c in entry["schema"]["columns"]] == ["id", "email"], "table order, whatever order they were named in"
    assert [r[0] for r in con.execute("DESCRIBE FROM 'users@c1'").fetchall()] == ["id", "email"]
    assert rows(con, "SELECT * FROM read_snapshot('c1', 'users') WHERE id = 7") == [(7, "u7@x")]
    assert rows(con, "SELECT columns, primary_key FROM snapshot_tables('c1')") == [([{"name": "id", "type": "INTEGER"}, {"name": "email", "type": "VARCHAR"}], ["id"])]
    import pyarrow.parquet as pq
    assert pq.read_schema(str(snaps / "c" / "c1" / entry["file"])).names[:2] == ["id", "email"] and "secret" not in pq.read_schema(str(snaps / "c" / "c1" / entry["file"])).names
    # the same columns again: incremental
    con.execute("UPDATE users SET email = 'changed' WHERE id = 3")
    again = rows(con, "CALL snapshot_create('users', columns := ['id', 'email'], id := 'c2')")
    assert (again[0][4], again[0][5], again[0][6]) == ("c1", 1, 1)
    assert rows(con, "SELECT email FROM 'users@c2' WHERE id = 3") == [("changed",)]
    before = tree(str(snaps))
    with pytest.raises(duckdb.Error, match=r"snapshot 'c2' holds only columns id, email of main\.users; restoring it over main\.users would lose its columns name, secret: restore beside it with target := 'users_restored'"):
        con.execute("CALL snapshot_restore('c2', 'users')")
    assert tree(str(snaps)) == before and rows(con, "SELECT count(*) FROM users WHERE secret = 'pw'") == [(1000,)]
    got = rows(con, "CALL snapshot_restore('c1', 'users', target := 'users_restored')")
    assert got[0][3].endswith("main.users_restored") and got[0][4] == 1000
    assert rows(con, "SELECT count(*), count(DISTINCT email) FROM users_restored") == [(1000, 1000)]
    assert [(r[0], r[1], r[2]) for r in con.execute("DESCRIBE users_restored").fetchall()] == [("id", "INTEGER", "NO"), ("email", "VARCHAR", "NO")]
    for call, message in (
        ("CALL snapshot_create('users', columns := ['id', 'nope'])", r"table main\.users has no column nope; its columns: id, email, name, secret"),
        ("CALL snapshot_create('*', columns := ['id'])", r"columns := keeps columns of named tables; '\*' is a whole database: name the table\(s\)"),
        ("CALL snapshot_create('users', columns := [])", r"columns := is empty"),
    ):
        before = tree(str(snaps))
        with pytest.raises(duckdb.Error, match=message):
            con.execute(call)
        assert tree(str(snaps)) == before


@pytest.fixture
def renames(tmp_path):
    con = connect(str(tmp_path / "r.duckdb"), snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE TABLE orders AS SELECT range AS id, range * 3 AS v FROM range(100000)")
    con.execute("CREATE TABLE small AS SELECT range AS id FROM range(50)")
    con.execute("CALL snapshot_create('*', id := 'v1')")
    yield con
    con.close()


def test_incremental_database_with_renamed_tables(renames):
    """Seed 2: test_incremental_database_with_renamed_tables, seed 5:
    test_renamed_table_detection_with_object_id (DuckDB has no stable table ids: columns and
    content fingerprints stand in) — a rename plus 1% of rows changed is recorded as a rename,
    stored incrementally against the old table, and history follows it across the rename."""
    con = renames
    con.execute("ALTER TABLE orders RENAME TO orders_2024")
    con.execute("UPDATE orders_2024 SET v = -1 WHERE id % 100 = 0")
    created = {r[2]: r for r in rows(con, "CALL snapshot_create('*', id := 'v2')")}
    r = created["orders_2024"]
    assert (r[4], r[5], r[6], r[9], r[10]) == ("v1", 1000, 1000, "renamed", 100000)
    assert r[7] < r[8] / 2, "stored as a delta against the old table's data"
    assert rows(con, "SELECT table_name, status FROM snapshot_tables('v2') ORDER BY 1") == [("orders_2024", "renamed"), ("small", "unchanged")], "not deleted + created"
    with open(os.path.join(con.execute("SELECT path FROM snapshots() WHERE snapshot_id = 'v2'").fetchall()[0][0], "metadata.json")) as f:
        entry = next(t for t in json.load(f)["tables"] if t["table"] == "orders_2024")
    assert entry["status"] == "renamed" and entry["renamed_from"] == "main.orders"
    assert rows(con, "SELECT renamed_from FROM snapshot_tables('v2') WHERE table_name = 'orders_2024'") == [("main.orders",)]
    assert rows(con, "SELECT snapshot_id, table_name, status FROM snapshot_history('orders_2024')") == [("v2", "orders_2024", "renamed"), ("v1", "orders", "stored")]
    assert rows(con, "SELECT count(*), sum(v) FROM 'orders_2024@v2'") == rows(con, "SELECT count(*), sum(v) FROM orders_2024")
    # the next snapshot simply continues the renamed table's chain
    con.execute("UPDATE orders_2024 SET v = 7 WHERE id = 5")
    nxt = {r[2]: r for r in rows(con, "CALL snapshot_create('*', id := 'v3')")}
    assert (nxt["orders_2024"][4], nxt["orders_2024"][9]) == ("v2", "stored")
    assert [r[0] for r in rows(con, "SELECT snapshot_id FROM snapshot_history('orders_2024')")] == ["v3", "v2", "v1"]


def test_unnamed_table_without_object_id_treated_as_delete_create(renames):
    """Seed 5: test_unnamed_table_without_object_id_treated_as_delete_create — a new table with
    the same columns but other content is no rename: the old one is deleted in the source, the
    new one stored whole."""
    con = renames
    con.execute("DROP TABLE small")
    con.execute("CREATE TABLE tiny AS SELECT range + 1000 AS id FROM range(50)")
    con.execute("CALL snapshot_create('*', id := 'v2')")
    assert rows(con, "SELECT table_name, status, parent_id FROM snapshot_tables('v2') ORDER BY 1") == [
        ("orders", "unchanged", "v1"), ("small", "deleted_in_source", "v1"), ("tiny", "stored", None)]


def test_swapped_table_names_are_not_renames(renames):
    """Two tables that swapped names: no table disappeared or appeared, so there is no rename;
    each name's new content is stored against that name's previous version, exactly."""
    con = renames
    con.execute("CREATE TABLE orders_b AS SELECT range AS id, range * 5 AS v FROM range(100000)")
    con.execute("CALL snapshot_create('*', id := 'v2')")
    con.execute("ALTER TABLE orders RENAME TO tmp; ALTER TABLE orders_b RENAME TO orders; ALTER TABLE tmp RENAME TO orders_b")
    con.execute("CALL snapshot_create('*', id := 'v3')")
    assert rows(con, "SELECT table_name, status FROM snapshot_tables('v3') ORDER BY 1") == [("orders", "stored"), ("orders_b", "stored"), ("small", "unchanged")]
    assert rows(con, "SELECT sum(v) FROM 'orders@v3'") == [(sum(range(100000)) * 5,)]
    assert rows(con, "SELECT sum(v) FROM 'orders_b@v3'") == [(sum(range(100000)) * 3,)]


def test_table_moved_to_another_schema_is_a_rename(renames):
    """A schema renamed wholesale (DuckDB cannot rename a schema: its tables are moved into a
    new one and the old one dropped) — each table is recognised, the same name first."""
    con = renames
    con.execute("CREATE SCHEMA archive")
    con.execute("CREATE TABLE archive.orders AS FROM main.orders; CREATE TABLE archive.small AS FROM main.small")
    con.execute("DROP TABLE main.orders; DROP TABLE main.small")
    con.execute("CALL snapshot_create('*', id := 'v2')")
    assert rows(con, "SELECT schema_name, table_name, status FROM snapshot_tables('v2') ORDER BY 2") == [("archive", "orders", "renamed"), ("archive", "small", "renamed")]
    assert rows(con, "SELECT snapshot_id, schema_name FROM snapshot_history('archive.small')") == [("v2", "archive"), ("v1", "main")]


@pytest.fixture
def catalog(tmp_path):
    """The current database `main_db` and an attached `sales` (with schemas main and eu)."""
    con = connect(str(tmp_path / "main_db.duckdb"), snapdir=str(tmp_path / "snaps"))
    con.execute(f"ATTACH '{tmp_path / 'sales.duckdb'}' AS sales")
    con.execute("CREATE TABLE main.a AS SELECT range AS x FROM range(3)")
    con.execute("CREATE TABLE sales.main.orders AS SELECT range AS id FROM range(5)")
    con.execute("CREATE SCHEMA sales.eu; CREATE TABLE sales.eu.orders AS SELECT range AS id FROM range(2)")
    yield con
    con.close()


def test_backup_entire_catalog(catalog):
    """Seed 3: test_backup_entire_catalog, test_incremental_catalog_backup,
    test_incremental_catalog_with_new_database — '*.*.*' is every table of every attached
    database; the next one is incremental and picks up a newly attached database."""
    con = catalog
    con.execute("CALL snapshot_create('*.*.*', id := 'c1')")
    assert rows(con, "SELECT file, status, row_count FROM snapshot_tables('c1') ORDER BY file") == [
        ("main.a.parquet", "stored", 3), ("sales.eu.orders.parquet", "stored", 2), ("sales.main.orders.parquet", "stored", 5)]
    con.execute("ATTACH ':memory:' AS hr; CREATE TABLE hr.main.people AS SELECT 1 AS id")
    con.execute("INSERT INTO sales.main.orders VALUES (99)")
    con.execute("CALL snapshot_create('*.*.*', id := 'c2')")
    assert rows(con, "SELECT file, status, parent_id FROM snapshot_tables('c2') ORDER BY file") == [
        ("hr.main.people.parquet", "stored", None), ("main.a.parquet", "unchanged", "c1"),
        ("sales.eu.orders.parquet", "unchanged", "c1"), ("sales.main.orders.delta.parquet", "stored", "c1")]
    assert rows(con, "SELECT parent_id FROM snapshots() WHERE snapshot_id = 'c2'") == [("c1",)]
    # 'sales.*.*': one database
    con.execute("CALL snapshot_create('sales.*.*', id := 's1')")
    assert rows(con, "SELECT count(*) FROM snapshot_tables('s1')") == [(2,)]


def test_incremental_catalog_with_deleted_database(catalog):
    """Seed 3: test_incremental_catalog_with_deleted_database; seed 5:
    test_deleted_database_tracking — a database no longer attached is recorded as deleted in
    the source, table by table, like a dropped table."""
    con = catalog
    con.execute("CALL snapshot_create('*.*.*', id := 'c1')")
    con.execute("DETACH sales")
    con.execute("CALL snapshot_create('*.*.*', id := 'c2')")
    assert rows(con, "SELECT schema_name, table_name, status, parent_id FROM snapshot_tables('c2') ORDER BY status, schema_name") == [
        ("eu", "orders", "deleted_in_source", "c1"), ("main", "orders", "deleted_in_source", "c1"), ("main", "a", "unchanged", "c1")]


def test_restore_full_catalog(catalog, tmp_path):
    """Seed 3: test_restore_full_catalog, test_restore_catalog_subset_to_new_location; seed 8:
    test_restore_with_database_filter — each database's tables go back to it, one database per
    call (DuckDB commits a transaction to one database), or to another with target_catalog."""
    con = catalog
    con.execute("CALL snapshot_create('*.*.*', id := 'c1')")
    con.execute("DELETE FROM sales.main.orders; DROP TABLE sales.eu.orders; DELETE FROM main.a")
    snaps = str(tmp_path / "snaps")
    before = tree(snaps)
    with pytest.raises(duckdb.Error, match=r"this restore would write to 2 databases \(main_db, sales\); DuckDB commits a transaction to one database, and a restore is all or nothing: restore one database per call, e.g. CALL snapshot_restore\('c1', 'main_db\.\*\.\*'\)"):
        con.execute("CALL snapshot_restore('c1', '*.*.*')")
    assert tree(snaps) == before and rows(con, "SELECT count(*) FROM sales.main.orders") == [(0,)]
    got = rows(con, "SELECT source, target, row_count FROM snapshot_restore('c1', 'sales.*.*') WHERE kind = 'table' ORDER BY 1")
    assert got == [("eu.orders", "sales.eu.orders", 2), ("main.orders", "sales.main.orders", 5)]
    assert rows(con, "SELECT target FROM snapshot_restore('c1', 'main_db.*.*')") == [("main_db.main.a",)]
    assert rows(con, "SELECT count(*) FROM main.a") == [(3,)]
    con.execute("ATTACH ':memory:' AS inspect")
    got = rows(con, "SELECT target FROM snapshot_restore('c1', 'sales.eu.*', target_catalog := 'inspect')")
    assert got == [("inspect.eu.orders",)] and rows(con, "SELECT count(*) FROM inspect.eu.orders") == [(2,)]


def test_invalid_catalog_name(catalog):
    """Seed 10: test_invalid_catalog_name, test_invalid_database_name."""
    con = catalog
    with pytest.raises(duckdb.Error, match=r"no table matches 'nope\.\*\.\*'"):
        con.execute("CALL snapshot_create('nope.*.*')")
    con.execute("CALL snapshot_create('*.*.*', id := 'c1')")
    with pytest.raises(duckdb.Error, match=r"database nope is not attached; ATTACH it first"):
        con.execute("CALL snapshot_restore('c1', 'sales.*.*', target_catalog := 'nope')")


def test_governance_in_the_shell(tmp_path):
    """Renames, schema versions, column subsets, restore filters (a database whose table was
    dropped, brought back with include_deleted) and several databases in the DuckDB 1.5.6 shell."""
    db = str(tmp_path / "shell.duckdb")
    rc, out, err = run_shell(
        f"SET snapshot_directory = '{tmp_path / 'snaps'}';\n"
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS other;\n"
        "CREATE TABLE t (id INTEGER PRIMARY KEY, email VARCHAR, secret VARCHAR);\n"
        "INSERT INTO t SELECT range, 'e' || range, 's' FROM range(5000);\n"
        "CREATE TABLE other.main.o AS SELECT 1 AS x;\n"
        "CALL snapshot_create('*.*.*', id := 'a1');\n"
        "ALTER TABLE t RENAME TO t2;\n"
        "CALL snapshot_create('*.*.*', id := 'a2');\n"
        "CALL snapshot_create('t2', columns := ['id', 'email'], id := 'c1');\n"
        "ALTER TABLE t2 ADD COLUMN extra INTEGER;\n"
        "DROP TABLE other.main.o;\n"
        "CALL snapshot_create('*.*.*', id := 'a3');\n"
        "SELECT (SELECT list(table_name || ':' || status ORDER BY table_name) FROM snapshot_tables('a2')) AS statuses,\n"
        "       (SELECT list(change || ':' || column_name) FROM snapshot_diff('a2', 'live', 't2', schema_changes := true)) AS changes,\n"
        "       (SELECT list(table_name ORDER BY created_at, snapshot_id) FROM snapshot_history('t2')) AS names,\n"
        "       (SELECT count(*) FROM 't2@c1') AS subset_rows,\n"
        "       (SELECT list(target) FROM snapshot_restore('a3', 'other.*.*', include_deleted := true)) AS restored;",
        db=db,
    )
    assert rc == 0, err
    assert out[-1] == [{"statuses": ["o:unchanged", "t2:renamed"], "changes": ["added:extra"], "names": ["t", "t2", "t2", "t2"],
                        "subset_rows": 5000, "restored": ["other.main.o"]}], out[-1]
