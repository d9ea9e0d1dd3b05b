"""docs/format.md is enough to read every version of a table without DuckDB: its recipe,
shipped as docs/read_snapshot.py (pyarrow only), rebuilds each version of a chain holding every
layer kind — a base by position and one by row-id column, deltas with updates, deletes and
inserts, cleared blocks, unchanged versions — exactly, in the table's row order."""
import importlib.util
import json
import os
import sys

import pytest

from conftest import ROOT, connect, rows

pa = pytest.importorskip("pyarrow")


def reader():
    spec = importlib.util.spec_from_file_location("read_snapshot", os.path.join(ROOT, "docs", "read_snapshot.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reader_needs_no_duckdb():
    text = open(os.path.join(ROOT, "docs", "read_snapshot.py")).read()
    assert "import duckdb" not in text


def test_every_layer_kind_reads_back_exactly(tmp_path):
    mod = reader()
    con = connect(str(tmp_path / "c.duckdb"), snapdir=str(tmp_path / "snaps"))
    project = tmp_path / "snaps" / "c"
    con.execute("CREATE TABLE t AS SELECT range AS id, range * 1.5 AS x, 'r' || range AS s FROM range(60000)")
    # u gets row-id gaps before its first snapshot: its base stores row ids in a column
    con.execute("CREATE TABLE u AS SELECT range AS id, 'u' || range AS s FROM range(9000)")
    con.execute("DELETE FROM u WHERE id % 7 = 3")
    expected = {}

    def snap(sid):
        con.execute(f"CALL snapshot_create(['t', 'u'], id := '{sid}')")
        expected[sid] = {name: rows(con, f"SELECT * FROM {name} ORDER BY rowid") for name in ("t", "u")}

    snap("v1")
    con.execute("UPDATE t SET s = s || '!' WHERE hash(id) % 211 = 0")  # scattered: located row by row
    con.execute("DELETE FROM t WHERE id BETWEEN 100 AND 120")
    con.execute("INSERT INTO t VALUES (1000000, NULL, 'new')")
    snap("v2")
    con.execute("UPDATE t SET x = -x WHERE id BETWEEN 20480 AND 38911")  # 9 of 30 blocks rewritten: stored whole (cleared)
    con.execute("UPDATE u SET s = 'changed' WHERE id % 100 = 1")
    snap("v3")
    snap("v4")  # nothing changed
    metas = {sid: json.loads((project / sid / "metadata.json").read_text()) for sid in expected}
    layers = {sid: {t["table"]: t.get("layers", []) for t in m["tables"]} for sid, m in metas.items()}
    # the chain holds every layer kind
    assert layers["v1"]["t"][0]["rowids"] == "position" and layers["v1"]["u"][0]["rowids"] == "column"
    assert [l["kind"] for l in layers["v3"]["t"]] == ["base", "delta", "delta"]
    assert any(l.get("cleared") for l in layers["v3"]["t"])
    assert {t["status"] for t in metas["v4"]["tables"]} == {"unchanged"}
    assert all(l["snapshot"] != "v4" for l in layers["v4"]["t"])  # everything referenced
    for sid, tables in expected.items():
        for name, want in tables.items():
            got = mod.read_version(project, sid, f"main.{name}")
            assert [tuple(r.values()) for r in got.to_pylist()] == want, (sid, name)
    con.close()


def test_the_reader_checks_checksums(tmp_path):
    mod = reader()
    con = connect(str(tmp_path / "c.duckdb"), snapdir=str(tmp_path / "snaps"))
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(1000)")
    con.execute("CALL snapshot_create('t', id := 's')")
    con.close()
    f = tmp_path / "snaps" / "c" / "s" / "main.t.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 1
    f.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        mod.read_version(tmp_path / "snaps" / "c", "s", "t")
