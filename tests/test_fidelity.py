"""Exact fidelity: every type of test_all_types(), table definitions, and database objects
survive snapshot -> restore, in Python and in the DuckDB shell."""
import textwrap

import duckdb
import pytest

from conftest import connect, rows, run_shell


def catalog_state(con, db="memory"):
    q = lambda sql: rows(con, sql.replace("$DB", f"'{db}'"))  # noqa: E731
    return {
        "tables": q("SELECT schema_name, table_name, sql, comment FROM duckdb_tables() WHERE database_name = $DB ORDER BY ALL"),
        "columns": q("SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() WHERE database_name = $DB ORDER BY ALL"),
        "constraints": q("SELECT schema_name, table_name, constraint_type, constraint_text FROM duckdb_constraints() WHERE database_name = $DB ORDER BY ALL"),
        "indexes": q("SELECT schema_name, table_name, index_name, sql FROM duckdb_indexes() WHERE database_name = $DB ORDER BY ALL"),
        "views": q("SELECT schema_name, view_name, sql, comment FROM duckdb_views() WHERE database_name = $DB AND NOT internal ORDER BY ALL"),
        "sequences": q("SELECT schema_name, sequence_name, sql FROM duckdb_sequences() WHERE database_name = $DB ORDER BY ALL"),
        "types": q("SELECT schema_name, type_name, labels FROM duckdb_types() WHERE database_name = $DB AND NOT internal ORDER BY ALL"),
        "macros": q("SELECT schema_name, function_name, function_type, parameters, macro_definition FROM duckdb_functions() "
                    "WHERE database_name = $DB AND function_type IN ('macro', 'table_macro') AND NOT internal ORDER BY ALL"),
        "schemas": q("SELECT schema_name FROM duckdb_schemas() WHERE database_name = $DB AND NOT internal ORDER BY ALL"),
    }


def test_all_types_round_trip(con):
    con.execute("CREATE TABLE all_types AS FROM test_all_types()")
    con.execute("INSERT INTO all_types FROM all_types")  # duplicates too
    con.execute("""CREATE TABLE extras AS SELECT * FROM (VALUES
        ('NaN'::DOUBLE, 'inf'::FLOAT, '-inf'::DOUBLE, '{"a": [1, 2]}'::JSON, 'enum_x'::ENUM('enum_x', 'enum_y'),
         INTERVAL '-1 year 3 days 00:00:00.000001', '23:59:59.999999-15:59'::TIMETZ, '170141183460469231731687303715884105727'::HUGEINT),
        (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)) t(d, f, ni, js, e, iv, tz, h)""")
    types_before = rows(con, "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE table_name IN ('all_types', 'extras') ORDER BY ALL")
    for t in ("all_types", "extras"):
        # a numbered copy: compares values and row order
        con.execute(f"CREATE TABLE before_{t} AS SELECT row_number() OVER () AS rn, * FROM {t}")
    con.execute("CALL snapshot_create(['all_types', 'extras'], id := 'types')")
    for t in ("all_types", "extras"):
        # read_snapshot returns the original types and the same rows
        assert [r[1] for r in rows(con, f"DESCRIBE FROM read_snapshot('types', '{t}')")] == \
            [r[1] for r in rows(con, f"DESCRIBE {t}")]
        assert rows(con, f"SELECT count(*) FROM (FROM read_snapshot('types', '{t}') EXCEPT ALL FROM {t})") == [(0,)]
        assert rows(con, f"SELECT count(*) FROM (FROM {t} EXCEPT ALL FROM read_snapshot('types', '{t}'))") == [(0,)]
    con.execute("DELETE FROM all_types; DROP TABLE extras")
    con.execute("CALL snapshot_restore('types', '*')")
    assert rows(con, "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE table_name IN ('all_types', 'extras') ORDER BY ALL") == types_before
    for t in ("all_types", "extras"):
        numbered = f"SELECT row_number() OVER () AS rn, * FROM {t}"
        assert rows(con, f"SELECT count(*) FROM ({numbered} EXCEPT ALL FROM before_{t})") == [(0,)], t
        assert rows(con, f"SELECT count(*) FROM (FROM before_{t} EXCEPT ALL {numbered})") == [(0,)], t
        assert rows(con, f"SELECT count(*) FROM {t}") == rows(con, f"SELECT count(*) FROM before_{t}")
    nan = rows(con, "SELECT isnan(d), f = 'inf'::FLOAT, ni = '-inf'::DOUBLE, h, iv::VARCHAR, tz::VARCHAR FROM extras LIMIT 1")
    assert nan == [(True, True, True, 170141183460469231731687303715884105727, "-1 year 3 days 00:00:00.000001", "23:59:59.999999-15:59")]


def test_all_types_round_trip_in_shell(tmp_path):
    sql = textwrap.dedent(f"""
        SET snapshot_directory = '{tmp_path}/snaps';
        CREATE TABLE all_types AS FROM test_all_types();
        CREATE TABLE before AS FROM all_types;
        CALL snapshot_create('all_types', id := 'types');
        DELETE FROM all_types;
        ALTER TABLE all_types DROP COLUMN varchar;
        CALL snapshot_restore('types', 'all_types');
        SELECT (SELECT count(*) FROM (FROM all_types EXCEPT ALL FROM before)) AS a,
               (SELECT count(*) FROM (FROM before EXCEPT ALL FROM all_types)) AS b,
               (SELECT count(*) FROM all_types) AS n,
               (SELECT string_agg(data_type, ',' ORDER BY column_index) FROM duckdb_columns() WHERE table_name = 'all_types') =
               (SELECT string_agg(data_type, ',' ORDER BY column_index) FROM duckdb_columns() WHERE table_name = 'before') AS same_types;
    """)
    rc, out, err = run_shell(sql)
    assert rc == 0 and err == "", err
    assert out[-1] == [{"a": 0, "b": 0, "n": 3, "same_types": True}]


DEFINITIONS = """
CREATE SEQUENCE order_ids START 100 INCREMENT 5;
CREATE TABLE customers(
    id INTEGER PRIMARY KEY,
    email VARCHAR NOT NULL UNIQUE,
    tier VARCHAR DEFAULT 'basic' CHECK (tier IN ('basic', 'gold')),
    score DOUBLE DEFAULT (1.0 / 3),
    doubled INTEGER GENERATED ALWAYS AS (id * 2) VIRTUAL,
    UNIQUE (email, tier)
);
COMMENT ON TABLE customers IS 'people who buy';
COMMENT ON COLUMN customers.email IS 'login';
CREATE INDEX customers_tier ON customers(tier);
CREATE TABLE orders(id INTEGER DEFAULT nextval('order_ids') PRIMARY KEY, customer INTEGER REFERENCES customers(id), total DECIMAL(38,10));
INSERT INTO customers (id, email, tier) VALUES (1, 'a@x', 'gold'), (2, 'b@x', 'basic'), (3, 'c@x', DEFAULT);
INSERT INTO orders (customer, total) VALUES (1, 9999999999999999999999999999.0123456789), (2, -1), (1, NULL);
"""


def test_table_definitions_round_trip(con):
    con.execute(DEFINITIONS)
    state = catalog_state(con)
    data = {t: rows(con, f"FROM {t} ORDER BY ALL") for t in ("customers", "orders")}
    con.execute("CALL snapshot_create(['customers', 'orders'], id := 'defs')")
    con.execute("DELETE FROM orders; DROP TABLE orders; DROP INDEX customers_tier; COMMENT ON TABLE customers IS NULL")
    con.execute("CALL snapshot_restore('defs', '*')")
    after = catalog_state(con)
    for key in ("tables", "columns", "constraints", "indexes"):
        assert after[key] == state[key], key
    for t in ("customers", "orders"):
        assert rows(con, f"FROM {t} ORDER BY ALL") == data[t]
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO customers (id, email, tier) VALUES (4, 'd@x', 'platinum')")
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO orders (customer) VALUES (42)")


def test_database_scope_restores_every_object(con):
    con.execute(DEFINITIONS)
    con.execute("""
        CREATE SCHEMA sales;
        CREATE SCHEMA empty_schema;
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TYPE point AS STRUCT(x DOUBLE, y DOUBLE);
        CREATE TABLE sales.feelings(m mood, p point);
        INSERT INTO sales.feelings VALUES ('happy', {'x': 1, 'y': 2});
        CREATE VIEW gold AS SELECT * FROM customers WHERE tier = 'gold';
        CREATE VIEW sales.gold_orders AS SELECT o.* FROM orders o JOIN gold g ON o.customer = g.id;
        COMMENT ON VIEW gold IS 'vip';
        CREATE MACRO add_tax(x) AS x * 1.21;
        CREATE MACRO typed_twice(a INTEGER) AS a * 2, (a VARCHAR, b VARCHAR) AS a || b;
        CREATE MACRO with_default(a, b := 10) AS a + b;
        CREATE MACRO sales.rows_k(n, k := 2) AS TABLE SELECT * FROM range(n * k);
        CREATE MACRO sales.top(n) AS TABLE SELECT * FROM customers ORDER BY id LIMIT n;
        SELECT nextval('order_ids');
    """)
    state = catalog_state(con)
    gold_orders = rows(con, "FROM sales.gold_orders ORDER BY ALL")
    con.execute("CALL snapshot_create('*', id := 'everything')")
    # wreck it
    con.execute("""
        DROP VIEW sales.gold_orders; DROP VIEW gold; DROP MACRO add_tax; DROP MACRO typed_twice; DROP MACRO with_default; DROP MACRO TABLE sales.rows_k; DROP MACRO TABLE sales.top;
        DROP TABLE sales.feelings; DROP TYPE mood; DROP TYPE point; DROP TABLE orders; DROP SEQUENCE order_ids;
        DROP SCHEMA empty_schema; DROP SCHEMA sales;
    """)
    out = rows(con, "SELECT target FROM snapshot_restore('everything', '*') WHERE kind = 'table' ORDER BY ALL")
    assert out == [("memory.main.customers",), ("memory.main.orders",), ("memory.sales.feelings",)]
    after = catalog_state(con)
    for key in state:
        assert after[key] == state[key], key
    assert rows(con, "FROM sales.gold_orders ORDER BY ALL") == gold_orders
    assert rows(con, "SELECT add_tax(100)")[0][0] == pytest.approx(121)
    assert rows(con, "SELECT count(*) FROM sales.top(2)") == [(2,)]
    assert rows(con, "SELECT typed_twice(21), typed_twice('a', 'b')") == [(42, "ab")]
    # parameter defaults survive too
    assert rows(con, "SELECT with_default(1), with_default(1, b := 2)") == [(11, 3)]
    assert rows(con, "SELECT count(*) FROM sales.rows_k(3)") == [(6,)]
    # the sequence continues where it was
    assert rows(con, "SELECT nextval('order_ids')") == [(120,)]


def test_schema_scope_and_restore_options(con):
    con.execute("ATTACH ':memory:' AS scratch")
    con.execute("""
        CREATE SCHEMA in_c_x;
        CREATE TABLE in_c_x.a AS SELECT range AS id FROM range(5);
        CREATE TABLE in_c_x.b AS SELECT 'b' AS v;
        CREATE VIEW in_c_x.va AS SELECT count(*) AS n FROM in_c_x.a;
        CREATE TABLE main.other AS SELECT 1 AS o;
    """)
    out = rows(con, "SELECT table_name FROM snapshot_create('in_c_x.*', id := 'sx') ORDER BY ALL")
    assert out == [("a",), ("b",)]
    # restore one schema of a database snapshot, elsewhere
    con.execute("CALL snapshot_create('*', id := 'db')")
    out = rows(con, "SELECT source, target FROM snapshot_restore('db', 'in_c_x.*', target_schema := 'copy_x') WHERE kind = 'table' ORDER BY ALL")
    assert out == [("in_c_x.a", "memory.copy_x.a"), ("in_c_x.b", "memory.copy_x.b")]
    assert rows(con, "SELECT count(*) FROM copy_x.a") == [(5,)]
    assert rows(con, "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'copy_x' AND view_name = 'va'") == [(1,)]
    # cross-database restore into an attached scratch database
    out = rows(con, "SELECT target, backup_snapshot_id FROM snapshot_restore('sx', '*', target_catalog := 'scratch') WHERE kind = 'table' ORDER BY ALL")
    assert out == [("scratch.in_c_x.a", None), ("scratch.in_c_x.b", None)]
    assert rows(con, "SELECT count(*) FROM scratch.in_c_x.a") == [(5,)]
    assert rows(con, "SELECT count(*) FROM duckdb_views() WHERE database_name = 'scratch' AND view_name = 'va'") == [(1,)]
    # moved views read the moved tables, not the originals
    con.execute("DELETE FROM in_c_x.a WHERE id > 1")
    assert rows(con, "SELECT n FROM in_c_x.va") == [(2,)]
    assert rows(con, "SELECT n FROM copy_x.va") == [(5,)]
    assert rows(con, "SELECT n FROM scratch.in_c_x.va") == [(5,)]
    con.execute("INSERT INTO in_c_x.a SELECT range FROM range(2, 5)")
    # backup_existing := false replaces without a pre_restore snapshot
    n_before = rows(con, "SELECT count(*) FROM snapshots()")
    con.execute("DELETE FROM in_c_x.a")
    out = rows(con, "SELECT backup_snapshot_id FROM snapshot_restore('sx', 'in_c_x.a', backup_existing := false)")
    assert out == [(None,)]
    assert rows(con, "SELECT count(*) FROM snapshots()") == n_before
    assert rows(con, "SELECT count(*) FROM in_c_x.a") == [(5,)]
    with pytest.raises(duckdb.Error, match="not attached"):
        con.execute("CALL snapshot_restore('sx', '*', target_catalog := 'nowhere')")
    with pytest.raises(duckdb.Error, match="not in snapshot"):
        con.execute("CALL snapshot_restore('sx', 'nope.*')")


def test_view_on_replaced_table_keeps_working(con):
    con.execute("CREATE TABLE t AS SELECT range AS x FROM range(3); CREATE VIEW v AS SELECT sum(x) AS s FROM t")
    con.execute("CALL snapshot_create('t', id := 's')")
    con.execute("INSERT INTO t VALUES (100)")
    con.execute("CALL snapshot_restore('s', 't')")
    assert rows(con, "FROM v") == [(3,)]


def test_failure_half_way_leaves_every_table_as_it_was(con, tmp_path):
    import json

    con.execute("CREATE TABLE a AS SELECT range AS x FROM range(10); CREATE TABLE b AS SELECT 'text' || range AS y FROM range(10)")
    con.execute("CALL snapshot_create(['a', 'b'], id := 's')")
    con.execute("DELETE FROM a WHERE x > 4; DELETE FROM b WHERE true")
    # make the second table's data fail to convert on restore (a type error half-way)
    meta_path = tmp_path / "snaps" / "memory" / "s" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["tables"][1]["schema"]["columns"][0]["type"] = "INTEGER"
    meta["tables"][1]["ddl"] = meta["tables"][1]["ddl"].replace("VARCHAR", "INTEGER")
    meta_path.write_text(json.dumps(meta))
    before = rows(con, "SELECT snapshot_id FROM snapshots() ORDER BY ALL")
    with pytest.raises(duckdb.Error):
        con.execute("CALL snapshot_restore('s', '*')")
    assert rows(con, "SELECT count(*) FROM a") == [(5,)]
    assert rows(con, "SELECT count(*) FROM b") == [(0,)]
    assert rows(con, "SELECT typeof(y) FROM (SELECT NULL::VARCHAR AS y UNION ALL SELECT y FROM b) LIMIT 1") == [("VARCHAR",)]
    assert rows(con, "SELECT snapshot_id FROM snapshots() ORDER BY ALL") == before


def test_database_scope_round_trip_in_shell(tmp_path):
    objects = """
        CREATE SCHEMA sales;
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE SEQUENCE ids START 10;
        SELECT nextval('ids');
        CREATE TABLE sales.t(id INTEGER DEFAULT nextval('ids') PRIMARY KEY, m mood, g INTEGER GENERATED ALWAYS AS (id * 2));
        INSERT INTO sales.t (m) VALUES ('ok'), ('happy');
        CREATE INDEX t_m ON sales.t(m);
        CREATE VIEW sales.v AS SELECT count(*) AS n FROM sales.t;
        CREATE MACRO twice(x, y := 2) AS x * y;
        CREATE MACRO sales.rows_of(n) AS TABLE SELECT * FROM range(n);
    """
    state = """
        SELECT (SELECT string_agg(sql, ';' ORDER BY table_name) FROM duckdb_tables()) AS tables,
               (SELECT string_agg(sql, ';' ORDER BY index_name) FROM duckdb_indexes()) AS indexes,
               (SELECT string_agg(sql, ';' ORDER BY view_name) FROM duckdb_views() WHERE NOT internal) AS views,
               (SELECT string_agg(sql, ';') FROM duckdb_sequences()) AS sequences,
               (SELECT string_agg(type_name || array_to_string(labels, ','), ';') FROM duckdb_types() WHERE NOT internal) AS types,
               (SELECT string_agg(function_name || ':' || macro_definition, ';' ORDER BY function_name) FROM duckdb_functions()
                 WHERE function_type IN ('macro', 'table_macro') AND NOT internal) AS macros,
               (SELECT n FROM sales.v) AS n, (SELECT twice(21)) AS t, (SELECT count(*) FROM sales.rows_of(3)) AS r;
    """
    sql = textwrap.dedent(f"""
        SET snapshot_directory = '{tmp_path}/snaps';
        {objects}
        {state}
        CALL snapshot_create('*', id := 'all');
        DROP VIEW sales.v; DROP MACRO twice; DROP MACRO TABLE sales.rows_of; DROP TABLE sales.t;
        DROP TYPE mood; DROP SEQUENCE ids; DROP SCHEMA sales;
        SELECT count(*) AS restored FROM snapshot_restore('all', '*') WHERE kind = 'table';
        {state}
        SELECT nextval('ids') AS next;
        SELECT count(*) AS moved FROM snapshot_restore('all', 'sales.*', target_schema := 'copy') WHERE kind = 'table';
        DELETE FROM sales.t;
        SELECT (SELECT n FROM copy.v) AS copy_n, (SELECT n FROM sales.v) AS orig_n;
    """)
    rc, out, err = run_shell(sql)
    assert rc == 0 and err == "", err
    before, restored, after, nxt = out[-7], out[-5], out[-4], out[-3]
    # the view moved with its schema reads the moved table
    assert out[-2] == [{"moved": 1}] and out[-1] == [{"copy_n": 2, "orig_n": 0}]
    assert restored == [{"restored": 1}]
    assert after == before
    assert before[0]["n"] == 2 and before[0]["t"] == 42 and before[0]["r"] == 3
    assert nxt == [{"next": 13}]
