#!/usr/bin/env bash
# Runs examples/demo.sql in the real DuckDB shell against a fresh database in a temp folder.
set -euo pipefail
shell="$1"; ext="$2"
sql="$(cd "$(dirname "$0")" && pwd)/demo.sql"
dir=$(mktemp -d)
cd "$dir"
echo "demo database: $dir/demo.duckdb (snapshots in $dir/snapshots)"
{ echo "LOAD '$ext';"; cat "$sql"; } | "$shell" -unsigned demo.duckdb
