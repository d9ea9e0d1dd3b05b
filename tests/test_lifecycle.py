"""The extension's own connections must never keep a database open after the user closed
it, never make a process hang, and never lose a write."""
import os
import subprocess
import sys
import textwrap

import duckdb
import pytest

from conftest import EXT, connect, rows, run_shell, shell_binary


def run_python(code, timeout=60):
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_python_close_then_reopen_same_path_does_not_hang(tmp_path):
    db = tmp_path / "r.db"
    out = run_python(f"""
        import duckdb, time
        cfg = {{'allow_unsigned_extensions': 'true'}}
        for i in range(5):
            con = duckdb.connect('{db}', config=cfg)
            con.execute("LOAD '{EXT}'")
            con.execute("CREATE TABLE IF NOT EXISTS t(i INTEGER)")
            con.execute("INSERT INTO t VALUES (?)", [i])
            con.close()
        con = duckdb.connect('{db}')
        print(con.execute('SELECT count(*) FROM t').fetchall()[0][0])
    """, timeout=60)
    assert out.strip() == "5"


def test_reopen_after_another_process_read_the_file(tmp_path):
    # a `cp` of the file by another process is an open the extension sees: the old instance
    # must still close (without writing the file), or DuckDB's instance cache waits for it
    # forever in the next connect; every commit survives through the WAL
    db = tmp_path / "c.db"
    out = run_python(f"""
        import duckdb, subprocess
        cfg = {{'allow_unsigned_extensions': 'true'}}
        for i in range(3):
            con = duckdb.connect('{db}', config=cfg)
            con.execute("LOAD '{EXT}'")
            con.execute("SET snapshot_directory = '{tmp_path / 's'}'")
            con.execute("CREATE TABLE IF NOT EXISTS t(i INTEGER)")
            con.execute("INSERT INTO t SELECT range + ? FROM range(1000)", [i * 1000])
            con.execute("CALL snapshot_create('t')")
            subprocess.run(['cp', '{db}', '{tmp_path / 'copy.db'}'], check=True)
            con.execute("INSERT INTO t VALUES (-1)")
            con.close()
        con = duckdb.connect('{db}')
        print(con.execute('SELECT count(*), count(DISTINCT i) FROM t').fetchall()[0])
    """, timeout=60)
    assert out.strip() == "(3003, 3001)"


def test_reopen_after_the_file_was_deleted(tmp_path):
    # the database's folder removed and made again (a test's fixture, a rebuild script): the
    # next connect to the same path gets a new, empty database at once
    d = tmp_path / "gone"
    out = run_python(f"""
        import duckdb, os, shutil
        cfg = {{'allow_unsigned_extensions': 'true'}}
        for i in range(3):
            shutil.rmtree('{d}', ignore_errors=True)
            os.makedirs('{d}')
            con = duckdb.connect('{d / 'g.db'}', config=cfg)
            con.execute("LOAD '{EXT}'")
            con.execute("SET snapshot_directory = '{d / 's'}'")
            print(con.execute("SELECT count(*) FROM duckdb_tables()").fetchall()[0][0], end=' ')
            con.execute("CREATE TABLE t AS SELECT range AS i FROM range(10)")
            con.execute("CALL snapshot_create('t')")
            con.close()
    """, timeout=60)
    assert out.split() == ["0", "0", "0"]


def test_lock_is_released_for_another_process_after_close(tmp_path):
    db = tmp_path / "l.db"
    con = connect(str(db), snapdir=str(tmp_path / "s"))
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    con.execute("CALL snapshot_create('t')")
    con.close()
    # another process can open the file read-write (it could not while an instance holds it)
    out = run_python(f"""
        import duckdb
        con = duckdb.connect('{db}')
        con.execute('INSERT INTO t VALUES (2)')
        print(con.execute('SELECT count(*) FROM t').fetchall()[0][0])
    """)
    assert out.strip() == "2"


def test_snapshots_keep_duckdbs_lock_on_the_file(tmp_path):
    # a snapshot reads the file's headers (its source stamp) through DuckDB's own descriptor:
    # opening and closing the file itself would drop DuckDB's POSIX lock on it
    db = tmp_path / "k.db"
    con = connect(str(db), snapdir=str(tmp_path / "s"))
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
    con.execute("CALL snapshot_create('t', id := 'k1')")
    con.execute("INSERT INTO t VALUES (-1)")
    con.execute("CALL snapshot_create('t', id := 'k2')")
    # the stamp path itself: nothing committed since k2
    assert rows(con, "SELECT status FROM snapshot_create('t', id := 'k3')") == [("unchanged",)]
    out = run_python(f"""
        import duckdb
        try:
            duckdb.connect('{db}')
            print('opened')
        except duckdb.Error as e:
            print('locked' if 'lock' in str(e).lower() else e)
    """)
    assert out.strip() == "locked"
    con.close()


def test_close_checkpoints_and_leaves_no_wal(tmp_path):
    db = tmp_path / "w.db"
    run_python(f"""
        import duckdb
        con = duckdb.connect('{db}', config={{'allow_unsigned_extensions': 'true'}})
        con.execute("LOAD '{EXT}'")
        con.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
        con.close()
    """)
    assert not os.path.exists(str(db) + ".wal")


def test_process_exit_without_close_does_not_hang(tmp_path):
    db = tmp_path / "e.db"
    run_python(f"""
        import duckdb
        con = duckdb.connect('{db}', config={{'allow_unsigned_extensions': 'true'}})
        con.execute("LOAD '{EXT}'")
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        # no close: the interpreter exits with the connection open
    """, timeout=30)
    con = duckdb.connect(str(db))
    assert rows(con, "SELECT count(*) FROM t") == [(1,)]
    con.close()


def test_forked_child_exits_promptly(tmp_path):
    db = tmp_path / "f.db"
    run_python(f"""
        import duckdb, os
        con = duckdb.connect('{db}', config={{'allow_unsigned_extensions': 'true'}})
        con.execute("LOAD '{EXT}'")
        import sys, time
        start = time.time()
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # runs the exit hooks: they must not wait for the parent's watchdog
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert time.time() - start < 5, time.time() - start
        con.close()
    """, timeout=30)


@pytest.mark.parametrize("ending", ["exit", "open_memory", "stay"])
def test_shell_reopen_of_same_file_loses_no_write(tmp_path, ending):
    """`.open same.db` bypasses DuckDB's instance cache: a second instance opens the file
    while the first (held by the extension) is still alive. Writes made through the second
    must survive the first one's release, whenever it happens: while the second is open,
    after it closed (`.open :memory:`), or at process exit."""
    tail = {
        "exit": "",
        "open_memory": ".open :memory:\n.shell sleep 0.6",
        "stay": ".shell sleep 0.6\nINSERT INTO t VALUES (-4);",
    }[ending]
    for attempt in range(3):
        db = tmp_path / f"o{attempt}.db"
        sql = f"""
CREATE TABLE t AS SELECT range AS id FROM range(50000);
CALL snapshot_create('t');
INSERT INTO t VALUES (-1);
.open {db}
INSERT INTO t VALUES (-2);
CREATE TABLE u AS SELECT range AS id FROM range(100000);
INSERT INTO t VALUES (-3);
{tail}
"""
        rc, out, err = run_shell(sql, db=str(db), cwd=str(tmp_path))
        assert rc == 0, err
        con = duckdb.connect(str(db))
        expected = (50004, -4) if ending == "stay" else (50003, -3)
        assert rows(con, "SELECT count(*), min(id) FROM t") == [expected], (ending, attempt)
        assert rows(con, "SELECT count(*) FROM u") == [(100000,)]
        con.close()


def test_many_snapshot_scans_in_one_query(con):
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    con.execute("CALL snapshot_create('t', id := 's')")
    union = " UNION ALL ".join(["SELECT x FROM read_snapshot('s', 't')"] * 8)
    assert rows(con, f"SELECT count(*) FROM ({union})") == [(80,)]
