//! Time travel over the snapshots of a repository: the table as of a point in time, a
//! table's timeline, row-level differences between two points (or a point and the live
//! table), and mounting a snapshot as read-only views.

use std::sync::Arc;

use crate::engine::catalog;
use crate::engine::point::find_entry;
use crate::engine::sql::{ident, literal, split_qualified};
use crate::engine::layers::Version;
use crate::engine::point::SnapshotArg;
use crate::engine::{types, Ctx};
use crate::repo::list;
use crate::error::{Error, Result};
use crate::repo::manifest::{load, Column, Manifest, TableEntry};

/// The SELECT that reads a snapshot's table back with its original types, planned by DuckDB
/// over the files (see `Version::layered_sql`), in row order when `ordered`.
pub fn scan_sql(ctx: &Ctx, m: &Manifest, e: &TableEntry, ordered: bool) -> String {
    let all: Vec<usize> = (0..e.schema.columns.len()).collect();
    let v = Version::new(&ctx.repo, &e.effective_layers(&m.snapshot_id), &e.schema.columns);
    types::select_sql(&e.schema.columns, &all, &v.from_sql(ordered))
}

/// `scan_sql` in SQL alone, for mounted views (they must work without the extension).
fn portable_scan_sql(ctx: &Ctx, m: &Manifest, e: &TableEntry) -> String {
    let all: Vec<usize> = (0..e.schema.columns.len()).collect();
    let v = Version::new(&ctx.repo, &e.effective_layers(&m.snapshot_id), &e.schema.columns);
    types::select_sql(&e.schema.columns, &all, &v.portable_from_sql(true))
}

/// What `FROM '<table>@<snapshot>'` reads: the text after the last `@` is a snapshot id if
/// one exists, else a point in time (text as DuckDB casts it to TIMESTAMPTZ in the caller's
/// time zone). Returns the SELECT (original names and types; files verified once per process).
pub fn at_sql(ctx: &Ctx, reference: &str) -> Result<String> {
    let (table, when) = reference
        .rsplit_once('@')
        .filter(|(t, w)| !t.trim().is_empty() && !w.trim().is_empty())
        .ok_or_else(|| Error::Input(format!("'{}' is not '<table>@<snapshot id or time>'; write e.g. FROM 'orders@before_refactor' or FROM 'orders@2024-12-11 14:00:00+00'", crate::repo::layout::printable(reference))))?;
    let when = when.trim();
    let arg = if crate::repo::layout::validate_id(when).is_ok() && ctx.repo.exists(when)? {
        SnapshotArg::Id(when.to_string())
    } else if let Some(at) = crate::engine::point::parse_time(ctx, when)? {
        SnapshotArg::At(at)
    } else if crate::repo::layout::validate_id(when).is_ok() {
        return Err(Error::SnapshotNotFound { id: when.to_string(), repo: ctx.repo.dir.clone() });
    } else {
        return Err(Error::Input(format!(
            "'{}' after '@' is neither a snapshot id nor a time; give an id from FROM snapshots() or a time such as 2024-12-11 14:00:00+00",
            crate::repo::layout::printable(when)
        )));
    };
    let (m, e) = crate::engine::point::table_version(ctx, &arg, table.trim())?;
    crate::engine::verify::check_entry(&ctx.repo, &m, &e, false)?;
    Ok(scan_sql(ctx, &m, &e, false))
}

/// Every snapshot that has the table, newest first.
pub fn history(ctx: &Ctx, table: &str) -> Result<Vec<(Arc<Manifest>, TableEntry)>> {
    // newest first; across a rename, older snapshots are searched under the old name
    let mut name = table.to_string();
    let mut found = Vec::new();
    for m in list::manifests(&ctx.repo)? {
        let Ok(e) = find_entry(&m, &name) else { continue };
        let e = e.clone();
        if let Some(old) = &e.renamed_from {
            name = old.clone();
        }
        found.push((m, e));
    }
    if found.is_empty() {
        return Err(Error::Input(format!("no snapshot has table {}", crate::repo::layout::printable(table))));
    }
    Ok(found)
}

/// One side of a diff: a SELECT and its columns (and, for a snapshot, its stored version).
struct Side {
    sql: String,
    columns: Vec<Column>,
    primary_key: Vec<String>,
    version: Option<Version>,
    /// `schema.table` the name resolved to on this side.
    resolved: String,
    /// The stored version's definition version (None: live, or not recorded).
    schema_version: Option<u32>,
}

/// A side of a diff at a snapshot or time; None when the table was gone then.
fn snapshot_side(ctx: &Ctx, snapshot: &SnapshotArg, table: &str) -> Result<Option<Side>> {
    let (m, e) = match crate::engine::point::table_at(ctx, snapshot, table)? {
        crate::engine::point::Found::Version(m, e) => (m, e),
        crate::engine::point::Found::Gone { .. } => return Ok(None),
    };
    crate::engine::verify::check_entry(&ctx.repo, &m, &e, false)?;
    let version = Version::new(&ctx.repo, &e.effective_layers(&m.snapshot_id), &e.schema.columns);
    Ok(Some(Side {
        sql: scan_sql(ctx, &m, &e, false),
        columns: e.schema.columns.clone(),
        primary_key: e.schema.primary_key.clone(),
        version: Some(version),
        resolved: format!("{}.{}", catalog::display_part(&e.bucket), catalog::display_part(&e.table)),
        schema_version: e.schema_version,
    }))
}

/// A side of a diff: the live table, or the version at a snapshot or time (None when the table
/// was gone then).
fn side_at(ctx: &Ctx, at: &SnapshotArg, table: &str) -> Result<Option<Side>> {
    match at {
        SnapshotArg::Live => live_side(ctx, table).map(Some),
        other => snapshot_side(ctx, other, table),
    }
}

/// The side of a table that was gone: no rows, the other side's columns.
fn empty_like(other: &Side) -> Side {
    Side {
        sql: format!("SELECT * FROM ({}) WHERE false", other.sql),
        columns: other.columns.clone(),
        primary_key: other.primary_key.clone(),
        version: None,
        resolved: other.resolved.clone(),
        schema_version: None,
    }
}

fn live_side(ctx: &Ctx, table: &str) -> Result<Side> {
    let t = catalog::resolve_table(ctx.db, &ctx.database, &ctx.schema, table)?;
    let def = catalog::describe(ctx.db, &t)?;
    Ok(Side {
        sql: format!("SELECT * FROM {}", t.sql()),
        columns: def.columns,
        primary_key: def.primary_key,
        version: None,
        resolved: t.display(),
        schema_version: None,
    })
}

/// Two versions that share their first layers differ only at the row ids the other layers
/// touch: both sides are cut down to those rows, so diffing neighbouring snapshots of a big
/// table reads the deltas, not the whole table twice.
fn restrict_to_touched(before: &mut Side, after: &mut Side) {
    let (Some(a), Some(b)) = (&before.version, &after.version) else { return };
    let shared = a.sources.iter().zip(&b.sources).take_while(|(x, y)| x == y).count();
    if shared == 0 || a.columns != b.columns {
        return;
    }
    let extra: Vec<&crate::engine::layers::Source> = a.sources[shared..].iter().chain(&b.sources[shared..]).collect();
    if extra.is_empty() {
        // the same version on both sides: nothing differs
        for side in [before, after] {
            side.sql = format!("SELECT * FROM ({}) WHERE false", side.sql);
        }
        return;
    }
    let touched = {
        let files = extra.iter().map(|s| literal(&s.path)).collect::<Vec<_>>().join(", ");
        let mut parts = vec![format!("__snap_r IN (SELECT {} FROM read_parquet([{files}]))", crate::engine::layers::ROWID)];
        for [lo, hi] in extra.iter().flat_map(|s| s.cleared.iter()) {
            parts.push(format!("(__snap_r >> {}) BETWEEN {lo} AND {hi}", crate::repo::manifest::BLOCK_BITS));
        }
        parts.join(" OR ")
    };
    for side in [before, after] {
        let v = side.version.as_ref().expect("checked above");
        let all: Vec<usize> = (0..v.columns.len()).collect();
        side.sql = types::select_sql(&v.columns, &all, &format!("({}) AS __snap_v WHERE {touched}", v.layered_sql()));
    }
}

/// How the columns of `table` changed from version `from` to version `to`: one row per column
/// `added`, `dropped`, `renamed` (a column only the old side has and one only the new side has,
/// of one type, in the same order among the others, as `RENAME COLUMN` leaves them: read from the
/// definitions alone, so a drop and an add of one type in that spot also reads as a rename) or
/// `retyped`, in the newer side's
/// order, dropped ones last: `change, column_name, old_name, old_type, new_type,
/// from_schema_version, to_schema_version`.
pub fn schema_changes_sql(ctx: &Ctx, from: &SnapshotArg, to: &SnapshotArg, table: &str) -> Result<String> {
    let side = |s: &SnapshotArg| side_at(ctx, s, table);
    let (before, after) = (side(from)?, side(to)?);
    let no_columns: Vec<Column> = Vec::new();
    let old = before.as_ref().map(|s| &s.columns).unwrap_or(&no_columns);
    let new = after.as_ref().map(|s| &s.columns).unwrap_or(&no_columns);
    let named = |cols: &[Column], name: &str| cols.iter().position(|c| c.name == name);
    // a rename: a column only the new side has, paired in order with one only the old side has
    // of the same type (RENAME COLUMN keeps the position among the others)
    let mut renamed_from: Vec<Option<usize>> = vec![None; new.len()];
    let mut after_old = 0usize;
    for (i, c) in new.iter().enumerate() {
        if named(old, &c.name).is_some() {
            continue;
        }
        let pair = (after_old..old.len()).find(|&j| old[j].ty == c.ty && named(new, &old[j].name).is_none());
        if let Some(j) = pair {
            renamed_from[i] = Some(j);
            after_old = j + 1;
        }
    }
    let mut rows: Vec<[Option<String>; 5]> = Vec::new();
    for (i, c) in new.iter().enumerate() {
        match (named(old, &c.name), renamed_from[i]) {
            (Some(j), _) if old[j].ty != c.ty => {
                rows.push([Some("retyped".into()), Some(c.name.clone()), Some(c.name.clone()), Some(old[j].ty.clone()), Some(c.ty.clone())])
            }
            (Some(_), _) => {}
            (None, Some(j)) => {
                rows.push([Some("renamed".into()), Some(c.name.clone()), Some(old[j].name.clone()), Some(old[j].ty.clone()), Some(c.ty.clone())])
            }
            (None, None) => rows.push([Some("added".into()), Some(c.name.clone()), None, None, Some(c.ty.clone())]),
        }
    }
    for (j, o) in old.iter().enumerate() {
        if named(new, &o.name).is_none() && !renamed_from.contains(&Some(j)) {
            rows.push([Some("dropped".into()), Some(o.name.clone()), Some(o.name.clone()), Some(o.ty.clone()), None]);
        }
    }
    let version = |s: &Option<Side>| match s.as_ref().and_then(|s| s.schema_version) {
        Some(v) => v.to_string(),
        None => "NULL".into(),
    };
    let (vf, vt) = (version(&before), version(&after));
    let text = |v: &Option<String>| v.as_deref().map(literal).unwrap_or_else(|| "NULL".into());
    let values: Vec<String> = rows
        .iter()
        .map(|r| format!("({}, {}, {}, {}, {}, {vf}, {vt})", text(&r[0]), text(&r[1]), text(&r[2]), text(&r[3]), text(&r[4])))
        .collect();
    let typed = "SELECT NULL::VARCHAR AS change, NULL::VARCHAR AS column_name, NULL::VARCHAR AS old_name, NULL::VARCHAR AS old_type, \
                 NULL::VARCHAR AS new_type, NULL::BIGINT AS from_schema_version, NULL::BIGINT AS to_schema_version WHERE false";
    if values.is_empty() {
        return Ok(typed.to_string());
    }
    Ok(format!("{typed} UNION ALL BY NAME SELECT * FROM (VALUES {}) AS v(change, column_name, old_name, old_type, new_type, from_schema_version, to_schema_version)", values.join(", ")))
}

/// The query that lists row-level differences of `table` from version `from` to version `to`
/// (each a snapshot id, a point in time, or the live table). With a primary key: one row per changed key with
/// `change`, the key columns, `changed_columns` and before/after values; without one, the
/// deleted and inserted rows as multisets.
pub fn diff_sql(ctx: &Ctx, from: &SnapshotArg, to: &SnapshotArg, table: &str) -> Result<String> {
    let side = |s: &SnapshotArg| side_at(ctx, s, table);
    // a side where the table was gone (deleted in the source by then) has no rows
    let (mut before, mut after) = match (side(from)?, side(to)?) {
        (Some(b), Some(a)) => (b, a),
        (None, Some(a)) => (empty_like(&a), a),
        (Some(b), None) => {
            let a = empty_like(&b);
            (b, a)
        }
        (None, None) => {
            return Err(Error::Input(format!(
                "table {} was gone at both points; nothing to compare",
                crate::repo::layout::printable(table)
            )))
        }
    };
    // an unqualified name that means different tables on the two sides is ambiguous
    if split_qualified(table).is_some_and(|p| p.len() == 1) && !before.resolved.eq_ignore_ascii_case(&after.resolved) {
        return Err(Error::Input(format!(
            "{} is ambiguous: it is {} on one side and {} on the other; qualify it as schema.table",
            crate::repo::layout::printable(table),
            before.resolved,
            after.resolved
        )));
    }
    restrict_to_touched(&mut before, &mut after);
    // columns present on both sides, in the newer side's order
    let common: Vec<&Column> = after.columns.iter().filter(|c| before.columns.iter().any(|b| b.name == c.name)).collect();
    if common.is_empty() {
        return Err(Error::Input("the two versions of the table share no column".into()));
    }
    let key: Vec<String> = if !after.primary_key.is_empty() && after.primary_key == before.primary_key {
        after.primary_key.clone()
    } else {
        Vec::new()
    };
    let list = |cols: &[&Column]| cols.iter().map(|c| ident(&c.name)).collect::<Vec<_>>().join(", ");
    let head = format!("WITH b AS ({}), a AS ({})", before.sql, after.sql);
    if key.is_empty() {
        let cols = list(&common);
        return Ok(format!(
            "{head} SELECT 'delete' AS change, {cols} FROM (SELECT {cols} FROM b EXCEPT ALL SELECT {cols} FROM a) \
             UNION ALL SELECT 'insert' AS change, {cols} FROM (SELECT {cols} FROM a EXCEPT ALL SELECT {cols} FROM b)"
        ));
    }
    let non_key: Vec<&&Column> = common.iter().filter(|c| !key.contains(&c.name)).collect();
    let on = key.iter().map(|k| format!("b.{0} = a.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
    let first_key = ident(&key[0]);
    let keys = key.iter().map(|k| format!("COALESCE(a.{0}, b.{0}) AS {0}", ident(k))).collect::<Vec<_>>().join(", ");
    let differs: Vec<String> = non_key.iter().map(|c| format!("b.{0} IS DISTINCT FROM a.{0}", ident(&c.name))).collect();
    let changed = if non_key.is_empty() {
        "[]::VARCHAR[]".to_string()
    } else {
        format!(
            "list_filter([{}], lambda x: x IS NOT NULL)",
            non_key
                .iter()
                .map(|c| format!("CASE WHEN b.{0} IS DISTINCT FROM a.{0} THEN {1} END", ident(&c.name), literal(&c.name)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let values = non_key
        .iter()
        .map(|c| format!("b.{0} AS {1}, a.{0} AS {2}", ident(&c.name), ident(&format!("before_{}", c.name)), ident(&format!("after_{}", c.name))))
        .collect::<Vec<_>>();
    let mut select = vec![
        format!("CASE WHEN b.{first_key} IS NULL THEN 'insert' WHEN a.{first_key} IS NULL THEN 'delete' ELSE 'update' END AS change"),
        keys,
        format!("CASE WHEN b.{first_key} IS NULL OR a.{first_key} IS NULL THEN NULL ELSE {changed} END AS changed_columns"),
    ];
    select.extend(values);
    let filter = if differs.is_empty() { "false".to_string() } else { differs.join(" OR ") };
    Ok(format!(
        "{head} SELECT {} FROM b FULL OUTER JOIN a ON {on} WHERE b.{first_key} IS NULL OR a.{first_key} IS NULL OR {filter}",
        select.join(", ")
    ))
}

/// Creates read-only views over every table of a snapshot in `schema`.
pub fn mount(ctx: &Ctx, id: &str, schema: &str) -> Result<Vec<(String, String)>> {
    let m = load(&ctx.repo, id)?;
    let schema_parts = split_qualified(schema).unwrap_or_else(|| vec![schema.to_string()]);
    let (cat, sch) = match schema_parts.as_slice() {
        [s] => (ctx.database.clone(), s.clone()),
        [c, s] => (c.clone(), s.clone()),
        _ => return Err(Error::Input(format!("schema {} is not a schema name", crate::repo::layout::printable(schema)))),
    };
    for e in &m.tables {
        crate::engine::verify::check_entry(&ctx.repo, &m, e, false)?;
        // views name the files: a bucket's stay in the cache while this process runs
        for l in e.effective_layers(&m.snapshot_id) {
            ctx.repo.keep_cached(&l);
        }
    }
    let marker = format!("snapshot_mount:{}", m.snapshot_id);
    let db = ctx.db;
    crate::engine::sql::in_transaction(db, || {
        db.exec(&format!("CREATE SCHEMA IF NOT EXISTS {}.{}", ident(&cat), ident(&sch)))?;
        let mut out = Vec::new();
        for e in &m.tables {
            let clash = m.tables.iter().filter(|o| o.table.eq_ignore_ascii_case(&e.table)).count() > 1;
            let name = if clash { format!("{}__{}", e.bucket, e.table) } else { e.table.clone() };
            let full = format!("{}.{}.{}", ident(&cat), ident(&sch), ident(&name));
            let taken = db
                .query(&format!(
                    "SELECT count(*) FROM duckdb_tables() WHERE database_name = {0} AND schema_name = {1} AND lower(table_name) = lower({2}) \
                     UNION ALL SELECT count(*) FROM duckdb_views() WHERE database_name = {0} AND schema_name = {1} AND lower(view_name) = lower({2})",
                    literal(&cat),
                    literal(&sch),
                    literal(&name)
                ))?
                .rows
                .iter()
                .any(|r| r[0].as_deref() != Some("0"));
            if taken {
                return Err(Error::Input(format!(
                    "schema {} already has a table or view named {}; mount into another schema (schema := '...'), or snapshot_unmount('{}') first",
                    catalog::display_part(&sch),
                    catalog::display_part(&name),
                    sch.replace('\'', "''")
                )));
            }
            db.exec(&format!("CREATE VIEW {full} AS {}", portable_scan_sql(ctx, &m, e))).map_err(|err| {
                Error::Input(format!("cannot mount {}.{}: {}", catalog::display_part(&sch), catalog::display_part(&name), err.one_line()))
            })?;
            db.exec(&format!("COMMENT ON VIEW {full} IS {}", literal(&marker)))?;
            out.push((format!("{}.{}", catalog::display_part(&sch), catalog::display_part(&name)), format!("{}.{}", e.bucket, e.table)));
        }
        Ok(out)
    })
}

/// Drops the views `mount` created in `schema`, and the schema if nothing else is in it.
pub fn unmount(ctx: &Ctx, schema: &str) -> Result<Vec<String>> {
    let parts = split_qualified(schema).unwrap_or_else(|| vec![schema.to_string()]);
    let (cat, sch) = match parts.as_slice() {
        [s] => (ctx.database.clone(), s.clone()),
        [c, s] => (c.clone(), s.clone()),
        _ => return Err(Error::Input(format!("schema {} is not a schema name", crate::repo::layout::printable(schema)))),
    };
    let db = ctx.db;
    let views = db.query(&format!(
        "SELECT view_name FROM duckdb_views() WHERE database_name = {} AND schema_name = {} AND comment LIKE 'snapshot_mount:%' ORDER BY view_name",
        literal(&cat),
        literal(&sch)
    ))?;
    let names: Vec<String> = views.rows.into_iter().filter_map(|r| r[0].clone()).collect();
    if names.is_empty() {
        return Err(Error::Input(format!("no mounted snapshot in schema {}", catalog::display_part(&sch))));
    }
    let dropped = crate::engine::sql::in_transaction(db, || {
        for v in &names {
            db.exec(&format!("DROP VIEW {}.{}.{}", ident(&cat), ident(&sch), ident(v)))?;
        }
        Ok(names.iter().map(|v| format!("{}.{}", catalog::display_part(&sch), catalog::display_part(v))).collect::<Vec<_>>())
    })?;
    if sch != "main" {
        // the schema goes too if the mount left it empty; a non-empty schema refuses, which is fine
        let _ = db.exec(&format!("DROP SCHEMA {}.{}", ident(&cat), ident(&sch)));
    }
    Ok(dropped)
}

