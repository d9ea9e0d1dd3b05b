"""The `snapshot` DuckDB extension, packaged for Python.

Time travel and backup for plain DuckDB databases: named snapshots of tables, schemas or whole
databases, stored as ZSTD Parquet plus a metadata.json, listed, queried, diffed, restored and pruned
with SQL. This package carries the extension binary and loads it for you::

    import duckdb_snapshot
    con = duckdb_snapshot.connect("my.duckdb")
    con.execute("CALL snapshot_create('*')").fetchall()

In the DuckDB shell: ``duckdb -unsigned`` then ``LOAD '<duckdb_snapshot.extension_path()>'``
(``python -m duckdb_snapshot`` prints the path).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Union

import duckdb

__all__ = ["__version__", "extension_path", "load", "connect"]

__version__ = "0.0.0"  # replaced by the wheel builder with the extension's version

_BINARY = "snapshot.duckdb_extension"


def extension_path() -> str:
    """The absolute path of the bundled extension binary, for ``LOAD '<path>'``."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), _BINARY)
    if not os.path.isfile(path):
        raise duckdb.IOException(f"the snapshot extension binary is missing at {path}; reinstall duckdb_snapshot")
    return path


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load(con: duckdb.DuckDBPyConnection) -> None:
    """Loads the bundled extension into an open connection.

    The extension is unsigned, so the connection must have been opened with
    ``config={"allow_unsigned_extensions": "true"}`` (or use :func:`connect`); otherwise this
    raises :class:`duckdb.InvalidInputException` saying so. Loading twice is harmless.
    """
    allowed = con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchall()[0][0]
    if str(allowed).lower() not in ("true", "1"):
        raise duckdb.InvalidInputException(
            "cannot load the snapshot extension: this connection does not allow unsigned extensions; "
            "open it with duckdb.connect(..., config={'allow_unsigned_extensions': 'true'}) "
            "or use duckdb_snapshot.connect(...)"
        )
    con.execute(f"LOAD {_quote(extension_path())}")


def connect(
    database: Union[str, os.PathLike] = ":memory:",
    read_only: bool = False,
    config: Optional[Mapping[str, Any]] = None,
    **kwargs: Any,
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with unsigned extensions allowed and the snapshot extension loaded.

    Takes the arguments of :func:`duckdb.connect`; ``config`` is passed on with
    ``allow_unsigned_extensions`` set.
    """
    options = dict(config or {})
    options["allow_unsigned_extensions"] = "true"
    con = duckdb.connect(os.fspath(database), read_only=read_only, config=options, **kwargs)
    try:
        load(con)
    except BaseException:
        con.close()
        raise
    return con
