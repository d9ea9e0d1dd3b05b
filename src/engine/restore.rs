//! `snapshot_restore`: recreates tables from their stored definition and data. Checksums
//! are verified before anything is touched; existing targets are first snapshotted
//! (type `pre_restore`); everything one call restores commits in one transaction.

use crate::engine::catalog::{self, TableRef};
use crate::engine::create::{create_locked, ensure_repo_dir, CreateRequest, KIND_PRE_RESTORE};
use crate::engine::drop::drop_locked;
use crate::engine::sql::{ident, literal, skip_qualified, split_qualified};
use crate::engine::verify::check_entry;
use crate::engine::{types, Ctx, LOCK_TIMEOUT};
use crate::error::{Error, Result};
use crate::repo::lock::RepoLock;
use crate::repo::manifest::{self, Manifest, Scope, TableEntry};

#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub id: String,
    pub table: Option<String>,
    pub target: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Restored {
    pub source: String,
    pub target: String,
    pub row_count: u64,
}

#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    pub snapshot_id: String,
    pub backup_snapshot_id: Option<String>,
    pub tables: Vec<Restored>,
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
    Err(Error::TableNotInSnapshot { table: crate::repo::layout::printable(name), id: m.snapshot_id.clone() })
}

/// Where an entry goes: its original place, or `target` (`table`, `schema.table` or
/// `catalog.schema.table`; missing parts come from the original).
fn target_for(ctx: &Ctx, m: &Manifest, e: &TableEntry, target: Option<&str>) -> Result<TableRef> {
    let catalog = if e.catalog == m.database { ctx.database.clone() } else { e.catalog.clone() };
    let original = TableRef { catalog, schema: e.bucket.clone(), table: e.table.clone() };
    let Some(target) = target else { return Ok(original) };
    let parts = split_qualified(target).unwrap_or_else(|| vec![target.to_string()]);
    Ok(match parts.as_slice() {
        [t] => TableRef { table: t.clone(), ..original },
        [s, t] => TableRef { schema: s.clone(), table: t.clone(), ..original },
        [c, s, t] => TableRef { catalog: c.clone(), schema: s.clone(), table: t.clone() },
        _ => return Err(Error::Input(format!("target {} is not a table name", crate::repo::layout::printable(target)))),
    })
}

pub fn restore(ctx: &Ctx, req: &RestoreRequest) -> Result<RestoreOutcome> {
    let m = manifest::load(&ctx.repo, &req.id)?;
    let entries: Vec<&TableEntry> = match &req.table {
        Some(name) => vec![find_entry(&m, name)?],
        None => m.tables.iter().collect(),
    };
    if req.target.is_some() && entries.len() != 1 {
        return Err(Error::Input(format!(
            "target := needs exactly one table but snapshot '{}' has {}; name the table to restore",
            m.snapshot_id,
            entries.len()
        )));
    }
    let targets = entries
        .iter()
        .map(|e| target_for(ctx, &m, e, req.target.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].contains(t) {
            return Err(Error::Input(format!("two tables would be restored to {}", t.display())));
        }
    }
    for e in &entries {
        check_entry(&ctx.repo, &m, e, true)?;
    }
    ensure_repo_dir(ctx)?;
    let _lock = RepoLock::acquire(&ctx.repo.lock_path(), LOCK_TIMEOUT)?;
    let mut existing = Vec::new();
    for t in &targets {
        if catalog::table_exists(ctx.db, t)? {
            existing.push(t.clone());
        }
    }
    let backup = if existing.is_empty() {
        None
    } else {
        let req = CreateRequest {
            description: Some(format!("Auto-backup before restoring snapshot '{}'", m.snapshot_id)),
            kind: KIND_PRE_RESTORE,
            id_prefix: "auto_prerestore",
            ..Default::default()
        };
        Some(create_locked(ctx, &req, &existing, Scope { kind: "tables".into(), schema: None })?)
    };
    match apply(ctx, &m, &entries, &targets, &existing) {
        Ok(counts) => Ok(RestoreOutcome {
            snapshot_id: m.snapshot_id.clone(),
            backup_snapshot_id: backup.map(|b| b.snapshot_id),
            tables: entries
                .iter()
                .zip(&targets)
                .zip(counts)
                .map(|((e, t), n)| Restored {
                    source: format!("{}.{}", catalog::display_part(&e.bucket), catalog::display_part(&e.table)),
                    target: t.display(),
                    row_count: n,
                })
                .collect(),
        }),
        Err(err) => {
            // the database is unchanged (rolled back): leave the repository unchanged too
            if let Some(b) = backup {
                let _ = drop_locked(ctx, &b.snapshot_id);
            }
            Err(err)
        }
    }
}

/// Replaces the target tables in one transaction; returns the row count of each.
fn apply(ctx: &Ctx, m: &Manifest, entries: &[&TableEntry], targets: &[TableRef], existing: &[TableRef]) -> Result<Vec<u64>> {
    let db = ctx.db;
    db.exec("BEGIN TRANSACTION")?;
    let result = (|| {
        let mut counts = Vec::with_capacity(entries.len());
        for (e, t) in entries.iter().zip(targets) {
            counts.push(restore_one(ctx, m, e, t, existing.contains(t))?);
        }
        Ok(counts)
    })();
    match result {
        Ok(counts) => {
            if let Err(e) = db.exec("COMMIT") {
                let _ = db.exec("ROLLBACK");
                return Err(e);
            }
            Ok(counts)
        }
        Err(e) => {
            let _ = db.exec("ROLLBACK");
            Err(e)
        }
    }
}

fn restore_one(ctx: &Ctx, m: &Manifest, e: &TableEntry, t: &TableRef, exists: bool) -> Result<u64> {
    let db = ctx.db;
    let schema_sql = format!("{}.{}", ident(&t.catalog), ident(&t.schema));
    db.exec(&format!("CREATE SCHEMA IF NOT EXISTS {schema_sql}"))?;
    if exists {
        db.exec(&format!("DROP TABLE {}", t.sql())).map_err(|err| {
            Error::Input(format!("cannot replace table {}: {}", t.display(), err.one_line()))
        })?;
    }
    db.exec(&rewrite_create(&e.ddl, &t.sql())?)?;
    let path = ctx.repo.snapshot_dir(&m.snapshot_id).join(&e.file);
    let path = path.to_str().ok_or_else(|| Error::Input("snapshot path is not UTF-8".into()))?;
    let cols: Vec<_> = e.schema.columns.iter().filter(|c| !c.generated).collect();
    let names = cols.iter().map(|c| ident(&c.name)).collect::<Vec<_>>().join(", ");
    let exprs = cols.iter().map(|c| types::read_expr(c)).collect::<Vec<_>>().join(", ");
    let inserted = db
        .query(&format!("INSERT INTO {} ({names}) SELECT {exprs} FROM read_parquet({})", t.sql(), literal(path)))?
        .scalar()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if inserted != e.row_count {
        return Err(Error::CorruptFile {
            id: m.snapshot_id.clone(),
            file: e.file.clone(),
            detail: format!("{inserted} rows read, metadata says {}", e.row_count),
        });
    }
    if let Some(c) = &e.comment {
        db.exec(&format!("COMMENT ON TABLE {} IS {}", t.sql(), literal(c)))?;
    }
    for c in &e.schema.columns {
        if let Some(text) = &c.comment {
            db.exec(&format!("COMMENT ON COLUMN {}.{} IS {}", t.sql(), ident(&c.name), literal(text)))?;
        }
    }
    let renamed = t.table != e.table || t.schema != e.bucket;
    for idx in &e.indexes {
        db.exec(&rewrite_index(idx, &t.sql(), renamed.then_some(t.table.as_str()))?)?;
    }
    Ok(inserted)
}

/// `CREATE TABLE <old name>(...)` → `CREATE TABLE <new name>(...)`.
pub fn rewrite_create(ddl: &str, new_name: &str) -> Result<String> {
    let bad = || Error::Internal(format!("unexpected table definition: {}", ddl.chars().take(80).collect::<String>()));
    let rest = ddl.strip_prefix("CREATE TABLE ").ok_or_else(bad)?;
    let rest = skip_qualified(rest).ok_or_else(bad)?;
    Ok(format!("CREATE TABLE {new_name}{rest}"))
}

/// `CREATE [UNIQUE] INDEX name ON <old>(...)` → on the new table; a renamed table gets
/// its index names suffixed so they do not collide with the original's.
pub fn rewrite_index(sql: &str, new_table: &str, rename_suffix: Option<&str>) -> Result<String> {
    let bad = || Error::Internal(format!("unexpected index definition: {}", sql.chars().take(80).collect::<String>()));
    let (head, rest) = if let Some(r) = sql.strip_prefix("CREATE UNIQUE INDEX ") {
        ("CREATE UNIQUE INDEX ", r)
    } else if let Some(r) = sql.strip_prefix("CREATE INDEX ") {
        ("CREATE INDEX ", r)
    } else {
        return Err(bad());
    };
    let after_name = skip_qualified(rest).ok_or_else(bad)?;
    let name_text = &rest[..rest.len() - after_name.len()];
    let name = split_qualified(name_text).and_then(|p| p.last().cloned()).ok_or_else(bad)?;
    let after_on = after_name.strip_prefix(" ON ").ok_or_else(bad)?;
    let tail = skip_qualified(after_on).ok_or_else(bad)?;
    let name = match rename_suffix {
        Some(sfx) => ident(&format!("{name}_{sfx}")),
        None => ident(&name),
    };
    Ok(format!("{head}{name} ON {new_table}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites() {
        assert_eq!(
            rewrite_create("CREATE TABLE \"my s\".\"t.x\"(id INTEGER PRIMARY KEY);", "\"db\".\"s\".\"n\"").unwrap(),
            "CREATE TABLE \"db\".\"s\".\"n\"(id INTEGER PRIMARY KEY);"
        );
        assert_eq!(
            rewrite_index("CREATE INDEX ix ON \"my s\".\"t.x\"(m);", "\"d\".\"s\".\"t\"", None).unwrap(),
            "CREATE INDEX \"ix\" ON \"d\".\"s\".\"t\"(m);"
        );
        assert_eq!(
            rewrite_index("CREATE UNIQUE INDEX \"a b\" ON t(m);", "x", Some("copy")).unwrap(),
            "CREATE UNIQUE INDEX \"a b_copy\" ON x(m);"
        );
    }
}
