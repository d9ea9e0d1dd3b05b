#!/usr/bin/env python3
"""Builds dist/duckdb_snapshot-<version>-py3-none-<platform>.whl from the package in python/ and a
built extension binary, with the standard library only (no build backend to download).

    python python/build_wheel.py --binary build/release/snapshot.duckdb_extension --version 0.1.0 --out dist
"""
import argparse
import base64
import hashlib
import os
import sysconfig
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = "duckdb_snapshot"


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def platform_tag() -> str:
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")


def metadata(version: str) -> str:
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    return "\n".join([
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {version}",
        "Summary: Time travel and backup for plain DuckDB databases: the snapshot extension, packaged",
        "License: MIT",
        "Requires-Python: >=3.9",
        "Requires-Dist: duckdb>=1.5.6",
        "Provides-Extra: dbt",
        'Requires-Dist: dbt-duckdb>=1.11; extra == "dbt"',
        "Description-Content-Type: text/markdown",
        "",
        readme,
    ])


def build(binary: str, version: str, out: str) -> str:
    tag = f"py3-none-{platform_tag()}"
    dist_info = f"{NAME}-{version}.dist-info"
    files = {}
    pkg = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(pkg)):
        path = os.path.join(pkg, name)
        if os.path.isfile(path) and not name.endswith(".pyc"):
            with open(path, "rb") as f:
                data = f.read()
            if name == "__init__.py":
                data = data.replace(b'__version__ = "0.0.0"', f'__version__ = "{version}"'.encode(), 1)
            files[f"{NAME}/{name}"] = data
    with open(binary, "rb") as f:
        files[f"{NAME}/snapshot.duckdb_extension"] = f.read()
    files[f"{dist_info}/METADATA"] = metadata(version).encode()
    files[f"{dist_info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: duckdb_snapshot build_wheel.py\nRoot-Is-Purelib: false\nTag: {tag}\n".encode()
    files[f"{dist_info}/top_level.txt"] = f"{NAME}\n".encode()
    record = "".join(f"{p},{record_hash(d)},{len(d)}\n" for p, d in files.items()) + f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    os.makedirs(out, exist_ok=True)
    wheel = os.path.join(out, f"{NAME}-{version}-{tag}.whl")
    tmp = wheel + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if path.endswith(".duckdb_extension") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    os.replace(tmp, wheel)
    return wheel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--out", default="dist")
    a = p.parse_args()
    print(build(a.binary, a.version, a.out))


if __name__ == "__main__":
    main()
