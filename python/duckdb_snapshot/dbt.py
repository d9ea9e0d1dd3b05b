"""A dbt-duckdb plugin that loads the snapshot extension into every dbt connection.

In profiles.yml::

    plugins:
      - module: duckdb_snapshot.dbt

It allows unsigned extensions for the connection dbt opens (the extension is unsigned), loads the
extension, and applies any ``snapshot_*`` keys of the plugin's ``config`` (or of the profile's
``settings``) as ``SET GLOBAL``, e.g. ``config: {snapshot_directory: /backups/dbt}``.
"""
from __future__ import annotations

from typing import Any, Dict

from dbt.adapters.duckdb.plugins import BasePlugin

from duckdb_snapshot import _quote, load


class Plugin(BasePlugin):
    """Loads the snapshot extension; see the module's docstring."""

    def initialize(self, plugin_config: Dict[str, Any]) -> None:
        self.settings = {k: v for k, v in (plugin_config or {}).items() if str(k).startswith("snapshot_")}

    def update_connection_config(self, creds: Any, config: Dict[str, Any]) -> None:
        # an unsigned extension can only be loaded if the database was opened allowing it
        config["allow_unsigned_extensions"] = True

    def configure_connection(self, conn: Any) -> None:
        load(conn)
        for key, value in self.settings.items():
            if not key.replace("_", "").isalnum():
                raise ValueError(f"invalid snapshot setting name {key!r} in the duckdb_snapshot.dbt plugin config")
            conn.execute(f"SET GLOBAL {key} = {_quote(str(value))}")
