#!/usr/bin/env python3
"""Reads one table of a snapshot from a snapshot repository with pyarrow alone — no DuckDB, no
extension — following docs/format.md. Every layer kind is handled: a base whose row ids are
positions or a `__snap_rowid` column, deltas with delete markers and cleared blocks, and
versions that only reference files of earlier snapshots. Each file's SHA-256 is checked.

    python docs/read_snapshot.py <snapshot_directory>/<project> <snapshot_id> <schema.table> [out.parquet]

As a library: `read_version(project_dir, snapshot_id, "schema.table")` returns a pyarrow Table in
the table's row order, with the table's own columns. Columns the metadata marks
`"stored_as": "VARCHAR"` (HUGEINT, INTERVAL, TIME WITH TIME ZONE, …) stay in their DuckDB text
form; docs/format.md gives their grammar.
"""
import hashlib
import json
import pathlib
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROWID, DELETED = "__snap_rowid", "__snap_deleted"
BLOCK_BITS = 11  # row ids per block: 2,048


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def split_name(name):
    """`schema.table` as in SQL: parts split at dots outside double quotes, `""` inside quotes is `"`."""
    parts, part, quoted, i = [], "", False, 0
    while i < len(name):
        c = name[i]
        if c == '"':
            if quoted and name[i + 1:i + 2] == '"':
                part += '"'
                i += 1
            else:
                quoted = not quoted
        elif c == "." and not quoted:
            parts.append(part)
            part = ""
        else:
            part += c
        i += 1
    parts.append(part)
    return parts


def find_table(meta, name):
    """The entry `name` (`table`, `schema.table` or `catalog.schema.table`) names; names compare
    case-insensitively, as DuckDB's do."""
    parts = [p.lower() for p in split_name(name)]

    def named(t, bucket, table):
        want = parts[-3:]
        have = [t.get("catalog", meta.get("database", "")).lower(), bucket.lower(), table.lower()][-len(want):]
        return want == have

    for t in meta["tables"]:
        if named(t, t["bucket"], t["table"]):
            return t
    gone = [d for d in meta.get("deleted_in_source", []) if named(d, d["bucket"], d["table"])]
    if gone:
        raise LookupError(f"{name} was deleted in the source; its last version is in snapshot {gone[0]['last_snapshot_id']}")
    raise LookupError(f"{name} is not in snapshot {meta['snapshot_id']}")


def layers_of(meta, t):
    """The version's layers, oldest first; a format 1 entry is one base file in its own folder."""
    if t.get("layers"):
        return t["layers"]
    return [{"snapshot": meta["snapshot_id"], "file": t["file"], "kind": "base", "checksum": t["checksum"], "rowids": "position"}]


def in_blocks(rowids, ranges):
    """Which row ids fall in the inclusive block ranges."""
    blocks = rowids >> BLOCK_BITS
    hit = np.zeros(len(rowids), dtype=bool)
    for lo, hi in ranges:
        hit |= (blocks >= lo) & (blocks <= hi)
    return hit


def read_version(project_dir, snapshot_id, table, verify=True):
    project_dir = pathlib.Path(project_dir)
    meta = json.loads((project_dir / snapshot_id / "metadata.json").read_text())
    if meta["format_version"] > 2:
        raise ValueError(f"format_version {meta['format_version']} is newer than this reader (2)")
    t = find_table(meta, table)
    columns = [c["name"] for c in t["schema"]["columns"]]
    layers = layers_of(meta, t)
    files = []
    for layer in layers:
        # a layer may live in an earlier snapshot's folder (unchanged parts are shared)
        path = project_dir / layer["snapshot"] / layer["file"]
        if verify and sha256(path) != layer["checksum"]:
            raise ValueError(f"{path}: checksum mismatch")
        files.append(pq.read_table(path))
    base, deltas = files[0], files[1:]
    if layers[0].get("rowids") == "column":
        base_ids = base.column(ROWID).to_numpy()
    else:
        base_ids = np.arange(base.num_rows, dtype=np.int64)
    # newest first: a row id is taken by the newest layer that has it; a delta's cleared blocks
    # void what older layers hold there
    seen = np.array([], dtype=np.int64)
    cleared_later = []
    parts = []  # (row ids, table) of surviving rows
    for layer, d in reversed(list(zip(layers[1:], deltas))):
        ids = d.column(ROWID).to_numpy()
        keep = ~np.isin(ids, seen) & ~in_blocks(ids, cleared_later)
        keep &= ~d.column(DELETED).to_numpy(zero_copy_only=False)
        parts.append((ids[keep], d.filter(pa.array(keep)).select(columns)))
        seen = np.union1d(seen, ids)
        cleared_later += layer.get("cleared", [])
    keep = ~np.isin(base_ids, seen) & ~in_blocks(base_ids, cleared_later)
    parts.append((base_ids[keep], base.filter(pa.array(keep)).select(columns)))
    ids = np.concatenate([p[0] for p in parts])
    # the base's types, nullable: a layer may hold NULLs where the base had none
    schema = pa.schema([f.with_nullable(True) for f in base.select(columns).schema])
    rows = pa.concat_tables([p[1].cast(schema) for p in parts])
    return rows.take(pa.array(np.argsort(ids, kind="stable")))


def main(argv):
    if len(argv) not in (4, 5):
        sys.exit(__doc__)
    result = read_version(argv[1], argv[2], argv[3])
    if len(argv) == 5:
        pq.write_table(result, argv[4])
    else:
        print(result.slice(0, 20))
    print(f"{result.num_rows} rows", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
