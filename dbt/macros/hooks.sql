{#- Hooks: SQL that dbt runs around models and runs. Every macro returns SQL; it is the hook that
    runs it. -#}

{#- For a model's post_hook: snapshots {{ this }} once the model's work is committed, as
    `dbt_<model>_<invocation_id>`. Works both as `config(post_hook=snapshot.after_model())` and as
    the string `"{{ snapshot.after_model() }}"` in YAML: a plain post_hook runs inside the model's
    transaction, which the extension (reading committed data, like pg_dump) cannot see, so there
    the hook commits the model's work first and opens a new transaction for the rest of dbt's run
    (grants, docs, its own COMMIT). -#}
{% macro after_model(id=none, description=none) -%}
  {%- if not execute -%}
    {#- at parse time (config(post_hook=…)): leave a hook that is rendered when it runs -#}
    {{- return('{' ~ '{ snapshot.after_model(id=' ~ snapshot.util_jinja(id) ~ ', description=' ~ snapshot.util_jinja(description) ~ ') }' ~ '}') -}}
  {%- endif -%}
  {%- if model is not defined or model is none or this is not defined -%}
    {{- exceptions.raise_compiler_error("snapshot.after_model() is a model hook (post_hook); in on-run-start/on-run-end use snapshot.create()") -}}
  {%- endif -%}
  {%- if model.config.materialized in ('view', 'ephemeral') -%}
    {#- nothing stored to snapshot: a view's definition is in snapshot.create('*') -#}
    {{- return('') -}}
  {%- endif -%}
  {%- set call -%}
CALL snapshot_create({{ snapshot.util_literal(snapshot.util_table(this)) }}{{ snapshot.util_named([
    ('id', id or snapshot.util_id('dbt_', this.identifier)),
    ('description', description or ('dbt ' ~ invocation_id ~ ': ' ~ model.unique_id ~ ' after the run')),
    ('created_by', 'dbt')]) }})
  {%- endset -%}
  {%- if snapshot.util_in_transaction() -%}
COMMIT; BEGIN; {{ call }}
  {%- else -%}
{{ call }}
  {%- endif -%}
{%- endmacro %}

{#- For a model's pre_hook (or before_begin(...)): snapshots the version the model is about to
    replace, as `dbt_<model>_<invocation_id>_before`; nothing on the model's first run. Inside or
    outside the model's transaction it sees the same thing: the last committed version. -#}
{% macro before_model(id=none, description=none) -%}
  {%- if not execute -%}
    {{- return('{' ~ '{ snapshot.before_model(id=' ~ snapshot.util_jinja(id) ~ ', description=' ~ snapshot.util_jinja(description) ~ ') }' ~ '}') -}}
  {%- endif -%}
  {%- if model is not defined or model is none or this is not defined -%}
    {{- exceptions.raise_compiler_error("snapshot.before_model() is a model hook (pre_hook); in on-run-start use snapshot.create()") -}}
  {%- endif -%}
  {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
  {%- if existing is none or existing.is_view -%}
    {{- return('') -}}
  {%- endif -%}
CALL snapshot_create({{ snapshot.util_literal(snapshot.util_table(this)) }}{{ snapshot.util_named([
    ('id', id or snapshot.util_id('dbt_', this.identifier, '_before')),
    ('description', description or ('dbt ' ~ invocation_id ~ ': ' ~ model.unique_id ~ ' before the run')),
    ('created_by', 'dbt')]) }})
{%- endmacro %}

{#- For on-run-start / on-run-end (or after_commit(...) in a model): a snapshot of `scope` ('*': the
    whole database). The default id is `dbt_<invocation_id>_start` in on-run-start,
    `dbt_<invocation_id>_end` in on-run-end. As a plain model hook — inside the model's transaction,
    where it would capture the previous version — it refuses and says to use after_model(). -#}
{% macro create(scope='*', id=none, description=none, incremental=none, exclude=none) -%}
  {%- if not execute -%}
    {#- at parse time (config(post_hook=…)): leave a hook that is rendered, and checked, when it runs -#}
    {{- return('{' ~ '{ snapshot.create(scope=' ~ snapshot.util_jinja(scope) ~ ', id=' ~ snapshot.util_jinja(id) ~ ', description=' ~ snapshot.util_jinja(description) ~ ', incremental=' ~ snapshot.util_jinja(incremental) ~ ', exclude=' ~ snapshot.util_jinja(exclude) ~ ') }' ~ '}') -}}
  {%- endif -%}
  {%- set in_model = model is defined and model is not none and model.resource_type is defined and model.resource_type in ('model', 'seed', 'snapshot') -%}
  {%- if execute and in_model and snapshot.util_in_transaction() -%}
    {{- exceptions.raise_compiler_error("snapshot.create() is running as a hook inside the transaction of " ~ model.unique_id ~ ", where it would capture the data as it was before the model ran; use post_hook=snapshot.after_model() (or after_commit(snapshot.create(...)))") -}}
  {%- endif -%}
  {%- if id is none -%}
    {%- if in_model -%}{%- set id = snapshot.util_id('dbt_', model.name) -%}
    {%- elif results is defined -%}{%- set id = 'dbt_' ~ invocation_id ~ '_end' -%}
    {%- else -%}{%- set id = 'dbt_' ~ invocation_id ~ '_start' -%}
    {%- endif -%}
  {%- endif -%}
CALL snapshot_create({{ snapshot.util_literal(scope) }}{{ snapshot.util_named([
    ('id', id),
    ('description', description or ('dbt ' ~ invocation_id)),
    ('created_by', 'dbt'),
    ('incremental', incremental),
    ('exclude', exclude)]) }})
{%- endmacro %}

{#- For on-run-end: applies a retention policy (the arguments of snapshot_prune). -#}
{% macro prune(keep_last=none, keep_hourly=none, keep_daily=none, keep_weekly=none, keep_monthly=none, keep_yearly=none, older_than=none, type=none, dry_run=none) -%}
CALL snapshot_prune({{ snapshot.util_named([
    ('keep_last', keep_last), ('keep_hourly', keep_hourly), ('keep_daily', keep_daily),
    ('keep_weekly', keep_weekly), ('keep_monthly', keep_monthly), ('keep_yearly', keep_yearly),
    ('older_than', older_than), ('type', type), ('dry_run', dry_run)])[2:] }})
{%- endmacro %}
