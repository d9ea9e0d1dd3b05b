"""Shared fixtures for the end-to-end tests: the built extension, the real DuckDB shell
binary (PyPI duckdb-cli) and Python duckdb, both pinned by the Makefile."""
import json
import os
import subprocess

import duckdb
import pytest

# the S3 fixtures (s3_server, s3, s3_own, s3_proxy): a local moto server and a fault-injecting proxy
from s3server import s3, s3_own, s3_proxy, s3_server  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXT = os.environ.get("SNAPSHOT_EXTENSION", os.path.join(ROOT, "build/release/snapshot.duckdb_extension"))


def shell_binary():
    if os.environ.get("DUCKDB_SHELL"):
        return os.environ["DUCKDB_SHELL"]
    import duckdb_cli  # noqa: PLC0415

    return os.path.join(os.path.dirname(duckdb_cli.__file__), "duckdb")


@pytest.fixture
def ext():
    assert os.path.exists(EXT), f"build the extension first: {EXT}"
    return EXT


def connect(path=":memory:", snapdir=None, read_only=False):
    con = duckdb.connect(path, read_only=read_only, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    if snapdir is not None:
        con.execute(f"SET snapshot_directory = '{snapdir}'")
    return con


@pytest.fixture
def con(tmp_path):
    c = connect(snapdir=str(tmp_path / "snaps"))
    yield c
    c.close()


def rows(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()


def run_shell(sql, db=":memory:", cwd=None, timeout=60):
    """Runs SQL in the real DuckDB shell with the extension loaded; returns (rc, json rows of
    the last statement or None, stderr)."""
    script = f"LOAD '{EXT}';\n.mode json\n{sql}\n"
    p = subprocess.run(
        [shell_binary(), "-unsigned", db], input=script, capture_output=True, text=True, cwd=cwd, timeout=timeout
    )
    out = p.stdout.strip()
    parsed = None
    if out:
        # json mode prints one array per statement; keep them all
        parsed = []
        dec = json.JSONDecoder()
        i = 0
        while i < len(out):
            while i < len(out) and out[i].isspace():
                i += 1
            if i >= len(out):
                break
            obj, i = dec.raw_decode(out, i)
            parsed.append(obj)
    return p.returncode, parsed, p.stderr


def tree(path):
    """Every file under path with its size and content hash: to prove nothing changed."""
    import hashlib

    out = {}
    for d, _, fs in os.walk(path):
        for f in fs:
            p = os.path.join(d, f)
            if f == ".lock":
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = hashlib.sha256(fh.read()).hexdigest()
    return out
