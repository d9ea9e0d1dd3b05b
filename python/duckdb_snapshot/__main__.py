"""``python -m duckdb_snapshot`` prints the extension's path, for the DuckDB shell:
``duckdb -unsigned -cmd "LOAD '$(python -m duckdb_snapshot)'"``."""
from duckdb_snapshot import extension_path

print(extension_path())
