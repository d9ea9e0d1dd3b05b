"""The pip-installable package: `make wheel` builds dist/duckdb_snapshot-<version>-py3-none-<platform>.whl;
installed into a fresh virtualenv (with nothing but the pinned duckdb from PyPI) it loads the
extension in Python (`connect`, `load`, its error when unsigned extensions are not allowed,
`__version__`, `python -m duckdb_snapshot`) and in the DuckDB shell 1.5.6 via `extension_path()`."""
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT, shell_binary

WHEEL = os.environ.get("SNAPSHOT_WHEEL")
pytestmark = pytest.mark.skipif(not WHEEL, reason="make test-e2e sets SNAPSHOT_WHEEL: the wheel built by make wheel")


def cargo_version():
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        return next(line.split('"')[1] for line in f if line.startswith("version"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("fresh") / "venv")
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    pip = subprocess.run([os.path.join(path, "bin", "pip"), "install", "--quiet", WHEEL, "duckdb==2.0.0"], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return path


def python(venv, code, cwd):
    p = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_wheel_name_and_contents():
    name = os.path.basename(WHEEL)
    assert name.startswith(f"duckdb_snapshot-{cargo_version()}-py3-none-") and name.endswith(".whl"), name
    with zipfile.ZipFile(WHEEL) as z:
        names = set(z.namelist())
        assert {"duckdb_snapshot/__init__.py", "duckdb_snapshot/dbt.py", "duckdb_snapshot/py.typed",
                "duckdb_snapshot/snapshot.duckdb_extension"} <= names, names
        with open(os.path.join(ROOT, "build", "release", "snapshot.duckdb_extension"), "rb") as f:
            assert z.read("duckdb_snapshot/snapshot.duckdb_extension") == f.read(), "the wheel carries the freshly built binary"


def test_python_in_a_fresh_virtualenv(venv, tmp_path):
    out = python(venv, f"""
import duckdb, duckdb_snapshot
assert duckdb_snapshot.__version__ == {cargo_version()!r}, duckdb_snapshot.__version__
path = duckdb_snapshot.extension_path()
assert path.endswith('snapshot.duckdb_extension') and path.startswith({venv!r}), path
con = duckdb_snapshot.connect('py.duckdb')
con.execute("CREATE TABLE t AS SELECT range AS id FROM range(5)")
print(con.execute("CALL snapshot_create('t', id := 'first')").fetchall()[0][0])
con.execute("DELETE FROM t WHERE id > 1")
print(con.execute("SELECT count(*) FROM 't@first'").fetchall()[0][0])
con.close()
import duckdb
plain = duckdb.connect()
try:
    duckdb_snapshot.load(plain)
    raise SystemExit('load() must refuse a connection that does not allow unsigned extensions')
except duckdb.InvalidInputException as e:
    assert 'allow_unsigned_extensions' in str(e) and 'duckdb_snapshot.connect' in str(e), e
allowed = duckdb.connect(config={{'allow_unsigned_extensions': 'true'}})
duckdb_snapshot.load(allowed)
duckdb_snapshot.load(allowed)  # twice is harmless
print(allowed.execute("SELECT count(*) > 0 FROM snapshot_settings()").fetchall()[0][0])
""", str(tmp_path))
    assert out.split() == ["first", "5", "True"]
    p = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "duckdb_snapshot"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip().endswith("duckdb_snapshot/snapshot.duckdb_extension") and os.path.isfile(p.stdout.strip())


def test_shell_loads_the_path_the_package_prints(venv, tmp_path):
    path = python(venv, "import duckdb_snapshot; print(duckdb_snapshot.extension_path())", str(tmp_path)).strip()
    script = (f"LOAD '{path}';\nCREATE TABLE t AS SELECT range AS id FROM range(3);\n"
              "CALL snapshot_create('t', id := 'shell');\nDROP TABLE t;\n"
              "CALL snapshot_restore('shell', 't');\n.mode csv\nSELECT sum(id) FROM t;\n")
    p = subprocess.run([shell_binary(), "-unsigned", str(tmp_path / "shell.duckdb")], input=script, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "3", p.stdout
