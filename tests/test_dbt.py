"""The dbt package (dbt/) and its example project (examples/dbt/), run with the pinned dbt-core
1.11, dbt-duckdb 1.11.1 and duckdb 2.0.0 of a virtualenv of their own (DBT_VENV, made by
`make test-e2e`) into which the freshly built wheel is installed: the profile loads the extension
through the wheel's plugin and names no path.

What it pins down: a model's snapshot holds that run's committed rows (not the previous run's) in
both hook forms, config(post_hook=...) and the YAML string; before_model() holds the replaced
version; snapshot_diff between two runs is exactly the seed change; the restore run-operation brings
the first run's table back; prune keeps what its policy says; snapshot.create() as a plain model
hook is refused with a pointer to after_model()."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, connect, rows

DBT_VENV = os.environ.get("DBT_VENV")
pytestmark = pytest.mark.skipif(not DBT_VENV, reason="make test-e2e sets DBT_VENV: the pinned dbt virtualenv with the wheel installed")

RUN1_CUSTOMERS = [(1, "Ada", "CZ"), (2, "Bob", "DE"), (3, "Cyril", "CZ"), (4, "Dana", "AT"), (5, "Emil", "SK")]
RUN2_CUSTOMERS = [(1, "Ada", "CZ"), (2, "Bob", "PL"), (3, "Cyril", "CZ"), (5, "Emil", "SK"), (6, "Fay", "HU"), (7, "Gus", "CZ")]


class Project:
    def __init__(self, path):
        self.path = path
        self.db = os.path.join(path, "shop.duckdb")
        self.env = dict(os.environ, DBT_PROFILES_DIR=path, SHOP_DATABASE=self.db, DBT_SEND_ANONYMOUS_USAGE_STATS="false")

    def dbt(self, *args, ok=True):
        p = subprocess.run([os.path.join(DBT_VENV, "bin", "dbt"), *args], cwd=self.path, env=self.env,
                           capture_output=True, text=True, timeout=300)
        out = p.stdout + p.stderr
        if ok:
            assert p.returncode == 0, f"dbt {' '.join(args)} failed:\n{out[-4000:]}"
        return p.returncode, out

    def invocation(self):
        with open(os.path.join(self.path, "target", "run_results.json")) as f:
            return json.load(f)["metadata"]["invocation_id"]

    def seed_customers(self, table):
        with open(os.path.join(self.path, "seeds", "raw_customers.csv"), "w") as f:
            f.write("id,name,country\n" + "".join(f"{i},{n},{c}\n" for i, n, c in table))

    def query(self, sql):
        con = connect(self.db)  # the default repository: the snapshots folder beside the database
        try:
            return rows(con, sql)
        finally:
            con.close()


@pytest.fixture
def project(tmp_path):
    path = str(tmp_path / "shop")
    shutil.copytree(os.path.join(ROOT, "examples", "dbt"), path, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb", "snapshots"))
    with open(os.path.join(path, "packages.yml"), "w") as f:
        f.write(f"packages:\n  - local: {os.path.join(ROOT, 'dbt')}\n")
    p = Project(path)
    p.dbt("deps")
    return p


def test_each_run_snapshots_its_own_committed_rows_and_diff_restore_prune_work(project):
    project.dbt("seed")
    project.dbt("run")
    run1 = project.invocation()
    ids = [r[0] for r in project.query("SELECT snapshot_id FROM snapshots()")]
    assert f"dbt_customers_{run1}" in ids and f"dbt_customer_revenue_{run1}" in ids and f"dbt_{run1}_end" in ids, ids
    assert f"dbt_customer_revenue_{run1}_before" not in ids, "nothing to snapshot before a model's first run"
    assert project.query(f"FROM 'main.customers@dbt_customers_{run1}' ORDER BY id") == RUN1_CUSTOMERS
    revenue1 = project.query("FROM main.customer_revenue ORDER BY customer_id")
    assert len(revenue1) == 5
    assert project.query(f"FROM 'main.customer_revenue@dbt_customer_revenue_{run1}' ORDER BY customer_id") == revenue1

    project.seed_customers(RUN2_CUSTOMERS)
    project.dbt("seed")
    project.dbt("run")
    run2 = project.invocation()
    assert run2 != run1
    # config(post_hook=snapshot.after_model()): this run's rows, not the previous run's
    assert project.query(f"FROM 'main.customers@dbt_customers_{run2}' ORDER BY id") == RUN2_CUSTOMERS
    # the YAML string form: the same, and before_model() kept the version it replaced
    revenue2 = project.query("FROM main.customer_revenue ORDER BY customer_id")
    assert len(revenue2) == 6 and revenue2 != revenue1
    assert project.query(f"FROM 'main.customer_revenue@dbt_customer_revenue_{run2}' ORDER BY customer_id") == revenue2
    assert project.query(f"FROM 'main.customer_revenue@dbt_customer_revenue_{run2}_before' ORDER BY customer_id") == revenue1
    # the on-run-end snapshot of the whole database holds both seeds and both models
    assert project.query(f"SELECT table_name, row_count FROM snapshot_tables('dbt_{run2}_end') ORDER BY table_name") == [
        ("customer_revenue", 6), ("customers", 6), ("raw_customers", 6), ("raw_orders", 7)]

    # the diff between the two runs is exactly the seed change (no primary key: an update is delete + insert)
    diff = project.query(f"FROM snapshot_diff('dbt_customers_{run1}', 'dbt_customers_{run2}', 'main.customers')")
    assert sorted((r[0], r[1], r[2], r[3]) for r in diff) == [
        ("delete", 2, "Bob", "DE"), ("delete", 4, "Dana", "AT"), ("insert", 2, "Bob", "PL"), ("insert", 6, "Fay", "HU"), ("insert", 7, "Gus", "CZ")]
    _, out = project.dbt("run-operation", "snapshot_diff", "--args", json.dumps({"table": "main.customers", "from": f"dbt_customers_{run1}", "to": f"dbt_customers_{run2}"}))
    assert "5 row(s) differ in main.customers" in out and "| Gus " in out and "| Dana " in out, out

    _, out = project.dbt("run-operation", "snapshot_list")
    assert f"dbt_{run2}_end" in out and "snapshot(s), newest first" in out, out
    _, out = project.dbt("run-operation", "snapshot_list", "--args", "{table: main.customers}")
    assert "version(s) of main.customers" in out and f"dbt_customers_{run1}" in out, out

    # restore the first run's table; what it replaced is snapshotted first
    _, out = project.dbt("run-operation", "snapshot_restore", "--args", json.dumps({"snapshot": f"dbt_customers_{run1}", "scope": "main.customers"}))
    assert f"restored 1 object(s) from dbt_customers_{run1}" in out, out
    assert project.query("FROM main.customers ORDER BY id") == RUN1_CUSTOMERS
    backup = project.query("SELECT snapshot_id FROM snapshots() WHERE type = 'pre_restore'")
    assert len(backup) == 1 and project.query(f"FROM 'main.customers@{backup[0][0]}' ORDER BY id") == RUN2_CUSTOMERS

    # prune: a dry run deletes nothing; the real run keeps exactly the three newest
    before = project.query("SELECT snapshot_id FROM snapshots()")
    _, out = project.dbt("run-operation", "snapshot_prune", "--args", "{keep_last: 3, dry_run: true}")
    assert f"would delete {len(before) - 3} of {len(before)} snapshot(s)" in out, out
    assert project.query("SELECT snapshot_id FROM snapshots()") == before
    _, out = project.dbt("run-operation", "snapshot_prune", "--args", "{keep_last: 3}")
    assert f"deleted {len(before) - 3} of {len(before)} snapshot(s)" in out, out
    assert project.query("SELECT snapshot_id FROM snapshots()") == before[:3]


def test_snapshot_create_as_a_plain_model_hook_is_refused(project):
    models = os.path.join(project.path, "models")
    with open(os.path.join(models, "in_config.sql"), "w") as f:
        f.write("{{ config(post_hook=snapshot.create('main.in_config')) }}\nselect 1 as id\n")
    with open(os.path.join(models, "in_yaml.sql"), "w") as f:
        f.write("select 2 as id\n")
    with open(os.path.join(models, "in_yaml.yml"), "w") as f:
        f.write("models:\n  - name: in_yaml\n    config:\n      post_hook: \"{{ snapshot.create('main.in_yaml') }}\"\n")
    for model in ("in_config", "in_yaml"):
        rc, out = project.dbt("run", "--select", model, ok=False)
        assert rc == 1, out
        assert f"snapshot.create() is running as a hook inside the transaction of model.shop.{model}" in out and "snapshot.after_model()" in out, out
    # nothing but the whole-database snapshots of on-run-end (the failed models left no table)
    assert project.query("SELECT count(*) FROM snapshots() WHERE snapshot_id NOT LIKE 'dbt_%_end'") == [(0,)]
    assert project.query("SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('in_config', 'in_yaml')") == [(0,)]
    # as after_commit(...) it runs after the commit, and captures the model's rows
    with open(os.path.join(models, "in_config.sql"), "w") as f:
        f.write("{{ config(post_hook=after_commit(snapshot.create('main.in_config', id='after_commit'))) }}\nselect 1 as id\n")
    project.dbt("run", "--select", "in_config")
    assert project.query("FROM 'main.in_config@after_commit'") == [(1,)]


def test_after_model_on_a_view_takes_no_snapshot(project):
    models = os.path.join(project.path, "models")
    with open(os.path.join(models, "a_view.sql"), "w") as f:
        f.write("{{ config(materialized='view', post_hook=snapshot.after_model()) }}\nselect 1 as id\n")
    project.dbt("run", "--select", "a_view")
    assert project.query("FROM main.a_view") == [(1,)]
    assert project.query("SELECT snapshot_id FROM snapshots() WHERE snapshot_id LIKE 'dbt_a_view_%'") == []
