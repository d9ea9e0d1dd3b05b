{#- Run-operations: `dbt run-operation <name> --args '{…}'`. Each runs outside any transaction and
    prints its result as a table. -#}

{#- Every snapshot, newest first (`limit` rows), or those holding `table`. -#}
{% macro snapshot_list(table=none, limit=50) -%}
  {%- if table is none -%}
    {%- set rows = snapshot.util_run("(select snapshot_id, created_at, type, table_count, row_count, size_bytes, pinned, description from snapshots() limit " ~ (limit | int) ~ ")") -%}
    {%- do snapshot.util_print(rows | length ~ " snapshot(s), newest first:", rows) -%}
  {%- else -%}
    {%- set rows = snapshot.util_run("(select snapshot_id, created_at, type, table_name, status, row_count, row_count_change from snapshot_history(" ~ snapshot.util_literal(table) ~ ") limit " ~ (limit | int) ~ ")") -%}
    {%- do snapshot.util_print(rows | length ~ " version(s) of " ~ table ~ ":", rows) -%}
  {%- endif -%}
{%- endmacro %}

{#- Restores `scope` (a table, a list, 's.*' or '*') from `snapshot` (an id or a time); what it
    replaces is snapshotted first. Other arguments are those of snapshot_restore. (The argument
    `snapshot` hides the package's name here, so its helpers are called by their bare names.) -#}
{% macro snapshot_restore(snapshot=none, scope='*', target=none, target_schema=none, target_catalog=none, backup_existing=none, exclude=none) -%}
  {%- set from_ = snapshot if snapshot is not none else kwargs.get('id') -%}
  {%- if from_ is none -%}
    {{- exceptions.raise_compiler_error("snapshot_restore needs a snapshot: dbt run-operation snapshot_restore --args '{snapshot: <id or time>, scope: <table>}'") -}}
  {%- endif -%}
  {%- set rows = util_run("snapshot_restore(" ~ util_literal(from_) ~ ", " ~ util_literal(scope) ~ util_named([
      ('target', target), ('target_schema', target_schema), ('target_catalog', target_catalog),
      ('backup_existing', backup_existing), ('exclude', exclude)]) ~ ")") -%}
  {%- do util_print("restored " ~ (rows | length) ~ " object(s) from " ~ from_ ~ ":", rows) -%}
{%- endmacro %}

{#- Row-level differences of `table` between two versions: `from` and `to` (ids, times, or 'live';
    `to` defaults to the live table). -#}
{% macro snapshot_diff(table=none, from_snapshot=none, to_snapshot=none) -%}
  {%- set old = from_snapshot if from_snapshot is not none else kwargs.get('from') -%}
  {%- set new = to_snapshot if to_snapshot is not none else kwargs.get('to', 'live') -%}
  {%- if table is none or old is none -%}
    {{- exceptions.raise_compiler_error("snapshot_diff needs a table and a version to compare: dbt run-operation snapshot_diff --args '{table: <table>, from: <id or time>, to: <id, time or live>}'") -}}
  {%- endif -%}
  {%- set rows = snapshot.util_run("snapshot_diff(" ~ snapshot.util_literal(old) ~ ", " ~ snapshot.util_literal(new) ~ ", " ~ snapshot.util_literal(table) ~ ")") -%}
  {%- do snapshot.util_print((rows | length) ~ " row(s) differ in " ~ table ~ " between " ~ old ~ " and " ~ new ~ ":", rows) -%}
{%- endmacro %}

{#- Applies a retention policy (the arguments of snapshot_prune; dry_run: true only reports). -#}
{% macro snapshot_prune(keep_last=none, keep_hourly=none, keep_daily=none, keep_weekly=none, keep_monthly=none, keep_yearly=none, older_than=none, type=none, dry_run=none) -%}
  {%- set args = snapshot.util_named([
      ('keep_last', keep_last), ('keep_hourly', keep_hourly), ('keep_daily', keep_daily),
      ('keep_weekly', keep_weekly), ('keep_monthly', keep_monthly), ('keep_yearly', keep_yearly),
      ('older_than', older_than), ('type', type), ('dry_run', dry_run)]) -%}
  {%- set rows = snapshot.util_run("snapshot_prune(" ~ args[2:] ~ ")") -%}
  {%- set ns = namespace(deleted=0, freed=0) -%}
  {%- for row in rows if row['action'] == 'delete' -%}
    {%- set ns.deleted = ns.deleted + 1 -%}
    {%- set ns.freed = ns.freed + (row['bytes_freed'] | int) -%}
  {%- endfor -%}
  {%- do snapshot.util_print(("would delete " if dry_run else "deleted ") ~ ns.deleted ~ " of " ~ (rows | length) ~ " snapshot(s), freeing " ~ ns.freed ~ " bytes:", rows) -%}
{%- endmacro %}
