{#- Helpers of the snapshot package (not part of its interface; named util_* because dbt's
    sandboxed Jinja refuses attributes that start with "_"). -#}

{#- A SQL literal for a macro argument: none → NULL, a list → a LIST literal, booleans and numbers
    as themselves, anything else a quoted string. -#}
{% macro util_literal(value) -%}
  {%- if value is none -%}NULL
  {%- elif value is sameas true -%}true
  {%- elif value is sameas false -%}false
  {%- elif value is number -%}{{ value }}
  {%- elif value is string -%}'{{ value | replace("'", "''") }}'
  {%- elif value is iterable and value is not mapping -%}[{% for v in value %}{{ snapshot.util_literal(v) }}{{ ", " if not loop.last }}{% endfor %}]
  {%- else -%}'{{ (value | string) | replace("'", "''") }}'
  {%- endif -%}
{%- endmacro %}

{#- `name := value` for each argument that was given, in order, led by a comma. -#}
{% macro util_named(args) -%}
  {%- for name, value in args -%}
    {%- if value is not none -%}, {{ name }} := {{ snapshot.util_literal(value) }}{%- endif -%}
  {%- endfor -%}
{%- endmacro %}

{#- A Jinja literal of a macro argument, to re-render a hook later (none stays none). -#}
{% macro util_jinja(value) -%}
  {%- if value is none -%}none{%- else -%}{{ value | tojson }}{%- endif -%}
{%- endmacro %}

{#- True while the connection is inside an explicit transaction: DuckDB gives each autocommit
    statement its own transaction id, so two reads agree only inside BEGIN … COMMIT. -#}
{% macro util_in_transaction() -%}
  {%- if not execute -%}{{ return(false) }}{%- endif -%}
  {%- set first = run_query("select txid_current()").columns[0].values()[0] -%}
  {%- set second = run_query("select txid_current()").columns[0].values()[0] -%}
  {{- return(first == second) -}}
{%- endmacro %}

{#- A snapshot id from parts: characters outside [A-Za-z0-9_.-] become '_', at most 128. -#}
{% macro util_id(prefix, name, suffix='') -%}
  {%- set clean = modules.re.sub('[^A-Za-z0-9_.-]', '_', name | string)[:80] -%}
  {{- return((prefix ~ clean ~ '_' ~ invocation_id ~ suffix)[:128]) -}}
{%- endmacro %}

{#- The model's table as the extension names it: "schema"."table". -#}
{% macro util_table(relation) -%}
  {{- return('"' ~ (relation.schema | replace('"', '""')) ~ '"."' ~ (relation.identifier | replace('"', '""')) ~ '"') -}}
{%- endmacro %}

{#- Runs one statement outside any transaction and returns its rows as an agate table; every
    column is text so lists and structs print. -#}
{% macro util_run(function_call) -%}
  {%- set sql = "select columns(*)::varchar from " ~ function_call -%}
  {%- set result = adapter.execute(sql, auto_begin=false, fetch=true) -%}
  {{- return(result[1]) -}}
{%- endmacro %}

{#- Prints a result table under a title. -#}
{% macro util_print(title, table) -%}
  {%- do print(title) -%}
  {%- do table.print_table(max_rows=none, max_columns=none, max_column_width=72) -%}
{%- endmacro %}
