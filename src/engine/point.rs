//! What a snapshot argument names — a snapshot id, or a point in time (the newest snapshot
//! taken at or before it that holds the object in question) — and finding that snapshot.
//! TIMESTAMP and DATE values are wall-clock times in the caller's `TimeZone`, as DuckDB
//! itself casts them to TIMESTAMPTZ; a DATE is its midnight.

use std::sync::Arc;

use crate::engine::sql::split_qualified;
use crate::engine::scope::{Selector, ScopeSpec, Shape};
use crate::engine::sql::literal;
use crate::engine::Ctx;
use crate::repo::list;
use crate::error::{Error, Result};
use crate::repo::layout::printable;
use crate::repo::manifest::{self, Manifest, ScopeKind, TableEntry};

#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotArg {
    Id(String),
    /// A TIMESTAMPTZ: microseconds since the epoch.
    At(i64),
    /// A TIMESTAMP, or a DATE at midnight: wall-clock microseconds in the caller's time zone.
    Local(i64),
    /// `'*'`: every snapshot.
    All,
    /// `'live'` or NULL where a function compares with the live table.
    Live,
}

impl SnapshotArg {
    pub fn id(&self) -> Option<&str> {
        match self {
            SnapshotArg::Id(id) => Some(id),
            _ => None,
        }
    }
}

/// The caller's time zone, for TIMESTAMP and DATE arguments and for times written as text.
fn zone(ctx: &Ctx) -> String {
    if ctx.timezone.is_empty() {
        "UTC".into()
    } else {
        ctx.timezone.clone()
    }
}

/// Microseconds since the epoch of a point-in-time argument (None for an id, `'*'`, live).
pub fn micros(ctx: &Ctx, arg: &SnapshotArg) -> Result<Option<i64>> {
    match arg {
        SnapshotArg::At(t) => Ok(Some(*t)),
        SnapshotArg::Local(wall) => {
            let tz = zone(ctx);
            // ICU's timezone(); without ICU a wall-clock time is UTC
            let sql = format!("SELECT epoch_us(timezone({}, make_timestamp({wall}::BIGINT)))", literal(&tz));
            match ctx.db.query(&sql) {
                Ok(rows) => Ok(rows.scalar().and_then(|v| v.parse().ok()).or(Some(*wall))),
                Err(_) => Ok(Some(*wall)),
            }
        }
        _ => Ok(None),
    }
}

/// A time written as text (`2024-12-11`, `2024-12-11 14:00`, `2024-12-11 14:00:00+01`,
/// `infinity`), read as DuckDB casts text to TIMESTAMPTZ in the caller's time zone; None if
/// it is not one.
pub fn parse_time(ctx: &Ctx, text: &str) -> Result<Option<i64>> {
    let db = ctx.db;
    let tz = zone(ctx);
    let before = db.query("SELECT current_setting('TimeZone')").ok().and_then(|r| r.scalar().map(str::to_string));
    let set = db.exec(&format!("SET TimeZone = {}", literal(&tz))).is_ok();
    let value = db.query(&format!(
        "SELECT CASE WHEN x IS NULL THEN NULL WHEN NOT isinf(x) THEN epoch_us(x) WHEN x > TIMESTAMPTZ 'epoch' THEN {} ELSE {} END \
         FROM (SELECT TRY_CAST({} AS TIMESTAMPTZ) AS x)",
        i64::MAX,
        -i64::MAX,
        literal(text.trim())
    ));
    if set {
        let _ = match before {
            Some(b) => db.exec(&format!("SET TimeZone = {}", literal(&b))),
            None => db.exec("RESET TimeZone"),
        };
    }
    Ok(value?.scalar().and_then(|v| v.parse().ok()))
}

/// `2024-12-11…`: text that a user meant as a time.
pub fn looks_like_time(s: &str) -> bool {
    let b = s.trim().as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-'
}

/// A snapshot by id; an id that reads like a date and names no snapshot gets a hint.
fn load_id(ctx: &Ctx, id: &str) -> Result<Arc<Manifest>> {
    list::load(&ctx.repo, id).map_err(|e| match e {
        Error::SnapshotNotFound { .. } if looks_like_time(id) => Error::Input(format!(
            "snapshot '{id}' not found; for a point in time pass DATE '{id}' or TIMESTAMPTZ '{id}' (text is read as a time only after '@', as in FROM 'orders@{id}')"
        )),
        other => other,
    })
}

/// When a snapshot was taken, to the second: listings show `created_at` so, and a time copied
/// from them must pick the snapshot it shows (two snapshots of one second: the newer).
pub fn taken(m: &Manifest) -> i64 {
    m.created_at_micros().div_euclid(1_000_000) * 1_000_000
}

/// Times in messages as DuckDB shows a TIMESTAMPTZ in UTC: `2024-12-11 14:30:22+00`.
pub fn display_time(micros: i64) -> String {
    // DuckDB's infinite timestamps are the extremes of the range
    if micros >= i64::MAX - 1 {
        return "infinity".into();
    }
    if micros <= -(i64::MAX - 1) {
        return "-infinity".into();
    }
    let (y, mo, d, h, mi, s) = manifest::civil(micros.div_euclid(1_000_000));
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}+00")
}

fn created(m: &Manifest) -> String {
    display_time(m.created_at_micros())
}

/// "no snapshot ... at or before T; the oldest is ..." for `what` (e.g. "of table main.t").
fn none_before(what: &str, at: i64, oldest: Option<&Manifest>, how: &str) -> Error {
    let what = if what.is_empty() { String::new() } else { format!(" {what}") };
    match oldest {
        Some(o) => Error::Input(format!(
            "no snapshot{what} was taken at or before {}; the oldest is '{}' taken {}",
            display_time(at),
            o.snapshot_id,
            created(o)
        )),
        None => Error::Input(format!("no snapshot{what} exists yet; {how}")),
    }
}

/// The one snapshot an argument names, whatever it holds: an id, or the newest snapshot taken
/// at or before a time.
pub fn snapshot(ctx: &Ctx, arg: &SnapshotArg) -> Result<Arc<Manifest>> {
    if let SnapshotArg::Id(id) = arg {
        return load_id(ctx, id);
    }
    let at = micros(ctx, arg)?.ok_or_else(|| Error::Input("name one snapshot (an id or a point in time), not '*'".into()))?;
    let all = list::manifests(&ctx.repo)?;
    if let Some(m) = all.iter().find(|m| taken(m) <= at) {
        return Ok(m.clone());
    }
    Err(none_before("", at, all.last().map(|m| m.as_ref()), "create one with CALL snapshot_create('*')"))
}

/// The snapshot and entry of `table` an argument names: by id, or the newest snapshot taken
/// at or before a time that holds the table.
pub fn table_version(ctx: &Ctx, arg: &SnapshotArg, table: &str) -> Result<(Arc<Manifest>, TableEntry)> {
    match table_at(ctx, arg, table)? {
        Found::Version(m, e) => Ok((m, e)),
        Found::Gone { recorded_in, bucket, table, last, at } => Err(Error::Input(format!(
            "table {}.{} was gone when snapshot '{}' was taken ({}), the newest at or before {}; its last version is in snapshot '{}': name that id to read or restore it",
            printable(&bucket),
            printable(&table),
            recorded_in.snapshot_id,
            created(&recorded_in),
            display_time(at),
            last
        ))),
    }
}

/// What a snapshot argument finds of a table.
pub enum Found {
    Version(Arc<Manifest>, TableEntry),
    /// At the time asked for, the newest snapshot of the table's scope records it as deleted
    /// in the source (its last version is in snapshot `last`).
    Gone { recorded_in: Arc<Manifest>, bucket: String, table: String, last: String, at: i64 },
}

/// `table_version`, telling a table that was gone at the time apart from an error.
pub fn table_at(ctx: &Ctx, arg: &SnapshotArg, table: &str) -> Result<Found> {
    if let SnapshotArg::Id(id) = arg {
        let m = load_id(ctx, id)?;
        let e = find_entry(&m, table)?.clone();
        return Ok(Found::Version(m, e));
    }
    let at = micros(ctx, arg)?.ok_or_else(|| Error::Input("name one snapshot (an id or a point in time), not '*'".into()))?;
    let all = list::manifests(&ctx.repo)?;
    // newest first: the first snapshot at or before `at` that holds the table, unless one
    // taken before it (still at or before `at`) records the table as gone
    for m in all.iter().filter(|m| taken(m) <= at) {
        if let Ok(e) = find_entry(m, table) {
            return Ok(Found::Version(m.clone(), e.clone()));
        }
        if let Some(d) = find_deleted(m, table) {
            return Ok(Found::Gone {
                recorded_in: m.clone(),
                bucket: d.bucket.clone(),
                table: d.table.clone(),
                last: d.last_snapshot_id.clone(),
                at,
            });
        }
    }
    let with_table: Vec<(Arc<Manifest>, TableEntry)> =
        all.into_iter().filter_map(|m| find_entry(&m, table).ok().cloned().map(|e| (m, e))).collect();
    Err(none_before(
        &format!("of table {}", printable(table)),
        at,
        with_table.last().map(|(m, _)| m.as_ref()),
        "take one with CALL snapshot_create",
    ))
}

/// For a point-in-time restore of a whole database or schema: the newest snapshot taken at
/// or before `at` whose scope holds all of it (for a schema: that schema or the database).
pub fn scope_snapshot(ctx: &Ctx, at: i64, shape: &Shape) -> Result<Arc<Manifest>> {
    let fits = |m: &Manifest| match shape {
        Shape::Database => m.scope.kind == ScopeKind::Database,
        Shape::Schema { schema, .. } => {
            m.scope.kind == ScopeKind::Database
                || (m.scope.kind == ScopeKind::Schema && m.scope.schema.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(schema)))
        }
        _ => false,
    };
    let candidates: Vec<Arc<Manifest>> = list::manifests(&ctx.repo)?.into_iter().filter(|m| fits(m)).collect();
    if let Some(m) = candidates.iter().find(|m| taken(m) <= at) {
        return Ok(m.clone());
    }
    let (what, how) = match shape {
        Shape::Schema { schema, .. } => (
            format!("of schema {} or of the whole database", printable(schema)),
            format!("take one with CALL snapshot_create('{}.*')", printable(schema)),
        ),
        _ => ("of the whole database".to_string(), "take one with CALL snapshot_create('*')".to_string()),
    };
    Err(none_before(&what, at, candidates.last().map(|m| m.as_ref()), &how))
}

/// For a point-in-time restore of tables and patterns: each table the scope covers, from the
/// newest snapshot taken at or before `at` that holds it; a table a newer snapshot (up to
/// `at`) records as deleted in the source is left out, unless `include_deleted`.
pub fn tables_at(ctx: &Ctx, at: i64, scope: &ScopeSpec, include_deleted: bool) -> Result<Vec<(Arc<Manifest>, TableEntry)>> {
    let before: Vec<Arc<Manifest>> = list::manifests(&ctx.repo)?.into_iter().filter(|m| taken(m) <= at).collect();
    let mut out: Vec<(Arc<Manifest>, TableEntry)> = Vec::new();
    let key = |c: &str, s: &str, t: &str| (c.to_lowercase(), s.to_lowercase(), t.to_lowercase());
    for sel in &scope.selectors {
        match sel {
            Selector::Table(name) => {
                let (m, e) = table_version(ctx, &SnapshotArg::At(at), name)?;
                if !out.iter().any(|(_, x)| key(&x.catalog, &x.bucket, &x.table) == key(&e.catalog, &e.bucket, &e.table)) {
                    out.push((m, e));
                }
            }
            _ => {
                let mut seen = std::collections::HashSet::new();
                let mut matched = false;
                for m in &before {
                    for d in &m.deleted_in_source {
                        if sel.covers(&m.database, &ctx.schema, &d.catalog, &d.bucket, &d.table) {
                            matched = true;
                            // left out, unless asked for: then its last version (an older
                            // snapshot in this walk, newest first) is taken below
                            if !include_deleted {
                                seen.insert(key(&d.catalog, &d.bucket, &d.table));
                            }
                        }
                    }
                    for e in &m.tables {
                        if !sel.covers(&m.database, &ctx.schema, &e.catalog, &e.bucket, &e.table) {
                            continue;
                        }
                        matched = true;
                        let k = key(&e.catalog, &e.bucket, &e.table);
                        if seen.insert(k.clone()) && !out.iter().any(|(_, x)| key(&x.catalog, &x.bucket, &x.table) == k) {
                            out.push((m.clone(), e.clone()));
                        }
                    }
                }
                if !matched {
                    return Err(Error::Input(format!(
                        "no snapshot taken at or before {} has a table matching '{}'; list what exists with FROM snapshot_tables('*')",
                        display_time(at),
                        printable(&sel.text())
                    )));
                }
            }
        }
    }
    out.retain(|(m, e)| !scope.excluded(&m.database, &ctx.schema, &e.catalog, &e.bucket, &e.table));
    if out.is_empty() {
        return Err(Error::Input(format!("{} leaves no table to restore", scope.describe())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_display_like_duckdb() {
        assert_eq!(display_time(0), "1970-01-01 00:00:00+00");
        assert_eq!(display_time(1_733_927_422_123_456), "2024-12-11 14:30:22+00");
        assert_eq!(display_time(i64::MAX), "infinity");
        assert_eq!(display_time(-i64::MAX), "-infinity");
        assert!(looks_like_time("2024-12-11") && looks_like_time("2024-12-11 14:00:00+00"));
        assert!(!looks_like_time("snap_20241211") && !looks_like_time("2024"));
    }
}

/// The snapshot entry a user-supplied table name refers to.
pub fn find_entry<'m>(m: &'m Manifest, name: &str) -> Result<&'m TableEntry> {
    let parts = split_qualified(name);
    let matches = |exact: bool| -> Vec<&'m TableEntry> {
        let eq = |a: &str, b: &str| if exact { a == b } else { a.to_lowercase() == b.to_lowercase() };
        m.tables
            .iter()
            .filter(|t| match parts.as_deref() {
                Some([table]) => eq(&t.table, table),
                Some([schema, table]) => eq(&t.bucket, schema) && eq(&t.table, table),
                Some([cat, schema, table]) => {
                    (eq(&t.catalog, cat) || eq(&m.database, cat)) && eq(&t.bucket, schema) && eq(&t.table, table)
                }
                _ => false,
            } || eq(&t.table, name))
            .collect()
    };
    for exact in [true, false] {
        let found = matches(exact);
        match found.len() {
            0 => continue,
            1 => return Ok(found[0]),
            _ => {
                // a bare name present in several schemas: prefer main, else ambiguous
                if let Some(t) = found.iter().find(|t| t.bucket == "main") {
                    return Ok(t);
                }
                return Err(Error::Input(format!(
                    "table {} is ambiguous in snapshot '{}'; qualify it as schema.table",
                    crate::repo::layout::printable(name),
                    m.snapshot_id
                )));
            }
        }
    }
    if let Some(d) = find_deleted(m, name) {
        return Err(Error::Input(format!(
            "table {}.{} was deleted in the source before snapshot '{}'; its last version is in snapshot '{}'",
            crate::repo::layout::printable(&d.bucket),
            crate::repo::layout::printable(&d.table),
            m.snapshot_id,
            d.last_snapshot_id
        )));
    }
    Err(Error::TableNotInSnapshot { table: crate::repo::layout::printable(name), id: m.snapshot_id.clone() })
}

/// A table the snapshot records as deleted in the source (`name` as in `find_entry`).
pub fn find_deleted<'m>(m: &'m Manifest, name: &str) -> Option<&'m crate::repo::manifest::DeletedTable> {
    let parts = split_qualified(name)?;
    let eq = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
    m.deleted_in_source.iter().find(|d| match parts.as_slice() {
        [table] => eq(&d.table, table),
        [schema, table] => eq(&d.bucket, schema) && eq(&d.table, table),
        [cat, schema, table] => (eq(&d.catalog, cat) || eq(&m.database, cat)) && eq(&d.bucket, schema) && eq(&d.table, table),
        _ => false,
    })
}
