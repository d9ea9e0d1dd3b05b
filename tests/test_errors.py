"""Bad input: a one-line error naming the object, and the database and the snapshot
repository exactly as they were."""
import json
import os
import stat

import duckdb
import pytest

from conftest import connect, rows, tree


@pytest.fixture
def setup(tmp_path):
    con = connect(snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE TABLE t AS SELECT range AS id, 'v' || range AS s FROM range(100)")
    con.execute("CREATE TABLE u AS SELECT 1 AS x")
    con.execute("CALL snapshot_create('t', id := 's1')")
    yield con, tmp_path / "snaps"
    con.close()


def db_state(con):
    return (
        rows(con, "SELECT database_name, schema_name, table_name, sql FROM duckdb_tables() ORDER BY ALL"),
        rows(con, "SELECT count(*), sum(id) FROM t"),
    )


def expect_error(con, repo, sql, *needles):
    before_db, before_repo = db_state(con), tree(repo)
    with pytest.raises(duckdb.Error) as err:
        con.execute(sql).fetchall()
    msg = str(err.value)
    first_line = msg.split("\n")[0]
    for n in needles:
        assert n in first_line, f"{n!r} not in {first_line!r}"
    assert db_state(con) == before_db
    assert tree(repo) == before_repo
    return first_line


def test_unknown_snapshot(setup):
    con, repo = setup
    for sql in ["FROM read_snapshot('nope', 't')", "CALL snapshot_restore('nope', 't')", "CALL snapshot_drop('nope')",
                "FROM snapshot_tables('nope')"]:
        expect_error(con, repo, sql, "'nope'", "not found")


def test_unknown_table(setup):
    con, repo = setup
    expect_error(con, repo, "CALL snapshot_create('missing_table')", "missing_table", "does not exist")
    expect_error(con, repo, "CALL snapshot_create(['t', 'missing_table'])", "missing_table")
    expect_error(con, repo, "CALL snapshot_drop_table('missing_table')", "missing_table")
    expect_error(con, repo, "CALL snapshot_create('no_schema.*')", "no_schema")


def test_table_not_in_snapshot(setup):
    con, repo = setup
    expect_error(con, repo, "FROM read_snapshot('s1', 'u')", "u", "not in snapshot 's1'")
    expect_error(con, repo, "CALL snapshot_restore('s1', 'u')", "not in snapshot 's1'")


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".hidden", "x" * 129, "a b", "semi;colon", "quo'te", "é"])
def test_invalid_ids(setup, bad):
    con, repo = setup
    lit = bad.replace("'", "''")
    expect_error(con, repo, f"CALL snapshot_create('t', id := '{lit}')", "invalid snapshot id")
    expect_error(con, repo, f"FROM read_snapshot('{lit}', 't')", "invalid snapshot id")
    expect_error(con, repo, f"CALL snapshot_drop('{lit}')", "invalid snapshot id")


def test_duplicate_explicit_id(setup):
    con, repo = setup
    expect_error(con, repo, "CALL snapshot_create('t', id := 's1')", "'s1'", "already exists")


def test_unwritable_directory(setup, tmp_path):
    con, repo = setup
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user that ignores permissions")
    finally:
        pass
    con.execute(f"SET snapshot_directory = '{locked}/repo'")
    try:
        expect_error(con, repo, "CALL snapshot_create('t')", str(locked))
    finally:
        os.chmod(locked, stat.S_IRWXU)


def test_unwritable_directory_as_file(setup, tmp_path):
    """A directory path that is a file: works for every user, root included."""
    con, repo = setup
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    con.execute(f"SET snapshot_directory = '{blocker}'")
    expect_error(con, repo, "CALL snapshot_create('t')", "snapshot directory", str(blocker))


def test_missing_data_file(setup):
    con, repo = setup
    os.remove(repo / "memory" / "s1" / "main.t.parquet")
    expect_error(con, repo, "CALL snapshot_restore('s1', 't')", "main.t.parquet", "missing", "'s1'")
    expect_error(con, repo, "FROM read_snapshot('s1', 't')", "missing")


def test_corrupt_data_file_checksum_mismatch(setup):
    con, repo = setup
    path = repo / "memory" / "s1" / "main.t.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    con.execute("DELETE FROM t WHERE id > 10")
    line = expect_error(con, repo, "CALL snapshot_restore('s1', 't')", "main.t.parquet", "corrupt", "'s1'")
    assert "checksum" in line


def test_newer_format_version_is_refused(setup):
    con, repo = setup
    meta_path = repo / "memory" / "s1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    expect_error(con, repo, "FROM read_snapshot('s1', 't')", "format_version 99", "upgrade")
    expect_error(con, repo, "CALL snapshot_restore('s1', 't')", "format_version 99")


def test_corrupt_metadata(setup):
    con, repo = setup
    (repo / "memory" / "s1" / "metadata.json").write_text("{ not json")
    expect_error(con, repo, "FROM read_snapshot('s1', 't')", "'s1'", "metadata")


def test_errors_are_one_line(setup):
    con, _ = setup
    with pytest.raises(duckdb.Error) as err:
        con.execute("CALL snapshot_restore('s1', 'u')")
    text = str(err.value).split("\n")[0]
    assert text.startswith("Invalid Input Error: snapshot_restore:") or "snapshot_restore:" in text


def test_null_arguments(setup):
    con, repo = setup
    expect_error(con, repo, "FROM read_snapshot(NULL, 't')", "must not be NULL")
    expect_error(con, repo, "CALL snapshot_drop(NULL)", "must not be NULL")
    expect_error(con, repo, "CALL snapshot_create(['t', NULL])", "NULL")


def test_sql_metacharacters_never_inject(setup):
    con, repo = setup
    evil = "t'); DROP TABLE u; --"
    expect_error(con, repo, f"CALL snapshot_create('{evil.replace(chr(39), chr(39) * 2)}')", "does not exist")
    assert rows(con, "SELECT count(*) FROM u") == [(1,)]


def test_whole_database_snapshot_of_views_only_and_of_an_empty_database(tmp_path):
    """A database of views only (a dbt project of views) is worth a snapshot: its definitions come
    back on restore. A database with nothing at all is refused, and nothing is written."""
    snaps = str(tmp_path / "snaps")
    con = connect(str(tmp_path / "empty.duckdb"), snapdir=snaps)
    with pytest.raises(duckdb.Error, match=r"^Invalid Input Error: snapshot_create: database empty is empty: no tables, views, macros, types or schemas to snapshot$"):
        con.execute("CALL snapshot_create('*')")
    assert rows(con, "SELECT count(*) FROM snapshots()") == [(0,)]
    con.execute("CREATE VIEW v AS SELECT 42 AS answer")
    con.execute("CALL snapshot_create('*', id := 'views')")
    assert rows(con, "SELECT table_count FROM snapshots() WHERE snapshot_id = 'views'") == [(0,)]
    con.close()
    fresh = connect(str(tmp_path / "fresh.duckdb"), snapdir=snaps)
    fresh.execute("SET snapshot_project = 'empty'")
    got = rows(fresh, "SELECT kind, source FROM snapshot_restore('views', '*')")
    assert got == [("view", "main.v")], got
    assert rows(fresh, "FROM v") == [(42,)]
