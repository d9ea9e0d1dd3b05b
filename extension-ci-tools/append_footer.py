#!/usr/bin/env python3
"""Turns a shared library into a loadable DuckDB extension by appending DuckDB's
512-byte metadata footer: eight 32-byte NUL-padded fields (three unused, ABI type,
extension version, C API version, platform, magic "4") and a 256-byte signature area
(zeros: unsigned, load with allow_unsigned_extensions / duckdb -unsigned)."""
import argparse
import shutil
import sys

FIELD = 32


def field(text: str) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > FIELD:
        sys.exit(f"append_footer: field '{text}' is longer than {FIELD} bytes")
    return raw + b"\0" * (FIELD - len(raw))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("library")
    p.add_argument("output")
    p.add_argument("--extension-version", required=True)
    p.add_argument("--capi-version", default="v1.5.6")
    p.add_argument("--platform", default="linux_amd64")
    p.add_argument("--abi", default="C_STRUCT")
    a = p.parse_args()
    footer = field("") * 3 + field(a.abi) + field(a.extension_version) + field(a.capi_version)
    footer += field(a.platform) + field("4") + b"\0" * 256
    assert len(footer) == 512
    tmp = a.output + ".tmp"
    shutil.copyfile(a.library, tmp)
    with open(tmp, "ab") as f:
        f.write(footer)
    shutil.move(tmp, a.output)


if __name__ == "__main__":
    main()
