"""The same surface through the real DuckDB shell (PyPI duckdb-cli 1.5.6)."""
import os
import subprocess
import textwrap

from conftest import ROOT, EXT, run_shell, shell_binary


def test_shell_full_cycle(tmp_path):
    db = tmp_path / "shell.db"
    sql = textwrap.dedent(f"""
        SET snapshot_directory = '{tmp_path}/snaps';
        CREATE SCHEMA in_c_customers;
        CREATE TABLE in_c_customers.customers(id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, big HUGEINT, CHECK (id > 0));
        INSERT INTO in_c_customers.customers SELECT i, 'n' || i, i * 100000000000000000000000 FROM range(1, 51) t(i);
        CALL snapshot_create('in_c_customers.customers', id := 'before_refactor', description := 'Before major refactoring');
        SELECT snapshot_id, type, description, table_count, row_count FROM snapshots();
        SELECT id, name, big::VARCHAR AS big FROM read_snapshot('before_refactor', 'in_c_customers.customers') WHERE id < 3 ORDER BY id;
        DELETE FROM in_c_customers.customers;
        SELECT snapshot_id, source, target, row_count FROM snapshot_restore('before_refactor', 'in_c_customers.customers');
        SELECT count(*) AS n, max(big)::VARCHAR AS m FROM in_c_customers.customers;
        SELECT sql FROM duckdb_tables() WHERE table_name = 'customers';
        SELECT snapshot_id, files_deleted FROM snapshot_drop('before_refactor');
        SELECT type FROM snapshots();
    """)
    rc, out, err = run_shell(sql, db=str(db))
    assert rc == 0, err
    assert err == ""
    created, listed, read, restored, count, ddl, dropped, remaining = out
    assert created[0]["snapshot_id"] == "before_refactor" and created[0]["row_count"] == 50
    assert listed == [{"snapshot_id": "before_refactor", "type": "manual", "description": "Before major refactoring",
                       "table_count": 1, "row_count": 50}]
    assert read == [{"id": 1, "name": "n1", "big": "100000000000000000000000"},
                    {"id": 2, "name": "n2", "big": "200000000000000000000000"}]
    assert restored == [{"snapshot_id": "before_refactor", "source": "in_c_customers.customers",
                         "target": "shell.in_c_customers.customers", "row_count": 50}]
    assert count == [{"n": 50, "m": "5000000000000000000000000"}]
    assert ddl[0]["sql"] == ("CREATE TABLE in_c_customers.customers(id INTEGER PRIMARY KEY, \"name\" VARCHAR NOT NULL, "
                             "big HUGEINT, CHECK((id > 0)));")
    assert dropped == [{"snapshot_id": "before_refactor", "files_deleted": 2}]
    assert remaining == [{"type": "pre_restore"}]


def test_shell_errors_are_one_line_and_change_nothing(tmp_path):
    sql = textwrap.dedent(f"""
        SET snapshot_directory = '{tmp_path}/snaps';
        CREATE TABLE t AS SELECT 1 AS x;
        CALL snapshot_create('t', id := '../escape');
        CALL snapshot_restore('nope', 't');
        SELECT count(*) AS n FROM snapshots();
    """)
    rc, out, err = run_shell(sql)
    assert "invalid snapshot id '../escape'" in err
    assert "snapshot 'nope' not found" in err
    assert out[-1] == [{"n": 0}]
    assert not (tmp_path / "escape").exists()


def test_shell_settings_are_real_options(tmp_path):
    rc, out, err = run_shell("SELECT name, value FROM duckdb_settings() WHERE name LIKE 'snapshot_%' ORDER BY name;")
    assert rc == 0, err
    assert [r["name"] for r in out[0]] == [
        "snapshot_branch", "snapshot_cache_directory", "snapshot_cache_size", "snapshot_directory", "snapshot_lock_timeout",
        "snapshot_project", "snapshot_s3_access_key_id", "snapshot_s3_endpoint", "snapshot_s3_region",
        "snapshot_s3_secret_access_key", "snapshot_s3_session_token", "snapshot_s3_url_style", "snapshot_s3_use_ssl",
    ]


def test_readme_demo_runs(tmp_path):
    p = subprocess.run(["bash", os.path.join(ROOT, "examples", "demo.sh"), shell_binary(), EXT],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert "rows_back" in p.stdout and "│       100 │" in p.stdout
    assert "pre_restore" in p.stdout


def test_readme_session_runs_as_written(tmp_path):
    """The README's "To use it yourself" SQL block, pasted into the shell (LOAD by path)."""
    text = open(os.path.join(ROOT, "README.md")).read()
    block = text.split("To use it yourself", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    assert block.startswith("LOAD snapshot;")
    sql = block.replace("LOAD snapshot;", "", 1)
    rc, out, err = run_shell(sql, db=str(tmp_path / "my.duckdb"), cwd=str(tmp_path))
    assert rc == 0 and err == "", err
    created, listed, old, as_of, restored, whole = out
    assert created[0]["snapshot_id"] == "before_refactor" and created[0]["row_count"] == 100
    assert [r["id"] for r in old] == list(range(12))
    assert len(as_of) == 3 and restored[0]["row_count"] == 100
    assert {r["table_name"] for r in whole} == {"customers"}
