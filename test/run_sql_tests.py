#!/usr/bin/env python3
"""A small sqllogictest-style runner for DuckDB's dialect, driving Python `duckdb`.

Each `.test` file runs in a fresh in-memory database with the extension loaded by
`require snapshot`. `${TMP}` in any statement is replaced by a fresh temporary directory
of that file. Records:

    statement ok | statement error       (error: the lines after ---- must occur in the message)
    query <types> [rowsort]              (expected rows after ----, tab-separated, NULL for null)

Prints one line per file and ends with `N passed, N failed`.
"""
import os
import re
import shutil
import sys
import tempfile

import duckdb

EXT = os.environ.get("SNAPSHOT_EXTENSION", "build/release/snapshot.duckdb_extension")


def fmt(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def parse(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    i, records = 0, []
    while i < len(lines):
        line = lines[i].rstrip()
        if not line or line.startswith("#"):
            i += 1
            continue
        header, start = line.split(), i + 1
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() and lines[i].rstrip() != "----":
            body.append(lines[i])
            i += 1
        expected = []
        if i < len(lines) and lines[i].rstrip() == "----":
            i += 1
            while i < len(lines) and lines[i].strip():
                expected.append(lines[i])
                i += 1
        records.append((start, header, "\n".join(body), expected))
    return records


def run_file(path):
    tmp = tempfile.mkdtemp(prefix="snaptest-")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    failures = []
    try:
        for line_no, header, sql, expected in parse(path):
            sql = sql.replace("${TMP}", tmp)
            where = f"{path}:{line_no}"
            kind = header[0]
            if kind == "require":
                con.execute(f"LOAD '{EXT}'")
                continue
            if kind == "statement":
                try:
                    con.execute(sql).fetchall()
                    if header[1] == "error":
                        failures.append(f"{where}: expected an error, statement succeeded:\n{sql}")
                except duckdb.Error as e:
                    if header[1] == "ok":
                        failures.append(f"{where}: statement failed: {e}\n{sql}")
                    elif expected and "\n".join(expected) not in str(e):
                        failures.append(f"{where}: error message\n  {e}\ndoes not contain\n  {chr(10).join(expected)}")
                continue
            if kind == "query":
                try:
                    rows = con.execute(sql).fetchall()
                except duckdb.Error as e:
                    failures.append(f"{where}: query failed: {e}\n{sql}")
                    continue
                got = ["\t".join(fmt(v) for v in row) for row in rows]
                want = [re.sub(r" {2,}|\\t", "\t", e) for e in expected]
                if "rowsort" in header[2:]:
                    got, want = sorted(got), sorted(want)
                if got != want:
                    failures.append(f"{where}: wrong result for\n{sql}\n-- expected\n" + "\n".join(want) + "\n-- got\n" + "\n".join(got))
                continue
            failures.append(f"{where}: unknown record '{kind}'")
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return failures


def main():
    roots = sys.argv[1:] or ["test/sql"]
    files = sorted(
        [r for r in roots if os.path.isfile(r)]
        + [os.path.join(d, f) for r in roots for d, _, fs in os.walk(r) for f in fs if f.endswith(".test")]
    )
    passed = failed = 0
    for f in files:
        failures = run_file(f)
        if failures:
            failed += 1
            print(f"FAIL {f}")
            for x in failures:
                print("  " + x.replace("\n", "\n  "))
        else:
            passed += 1
            print(f"ok   {f}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not files else 0)


if __name__ == "__main__":
    main()
