//! `snapshot_drop` (delete a snapshot's files) and `snapshot_drop_table` (ADR-004's safe
//! drop: snapshot the table as `pre_drop`, then DROP TABLE). A snapshot is unpublished by
//! one atomic rename before its files are removed, so a crash never leaves it half listed.

use crate::engine::catalog;
use crate::engine::create::{create_locked, ensure_repo_dir, CreateRequest};
use crate::engine::sql::in_transaction;
use crate::engine::Ctx;
use crate::error::{Error, Result};

use crate::repo::manifest::{self, SnapshotKind};

pub use crate::repo::retire::Dropped;

/// Drops a published snapshot (not a pinned one); takes the repository lock.
pub fn drop_snapshot(ctx: &Ctx, id: &str) -> Result<Dropped> {
    crate::repo::retire::drop_snapshot(&ctx.repo, id, ctx.lock_timeout)
}

/// What dropping `ids` in order would do, without doing it (a dry run of prune).
pub fn preview_drops(ctx: &Ctx, ids: &[String]) -> Result<Vec<Dropped>> {
    crate::repo::retire::preview_drops(&ctx.repo, ids)
}

/// Drops `ids` in order (the caller holds the repository lock); what each step did.
pub fn drop_all_locked(ctx: &Ctx, ids: &[String]) -> Result<Vec<Dropped>> {
    crate::repo::retire::drop_all_locked(&ctx.repo, ids)
}

/// Deletes a snapshot; the caller holds the repository lock.
pub fn drop_locked(ctx: &Ctx, id: &str) -> Result<Dropped> {
    crate::repo::retire::drop_locked(&ctx.repo, id)
}

#[derive(Debug, Clone)]
pub struct DroppedTable {
    pub backup_snapshot_id: String,
    pub table: String,
}

/// Refuses, before anything is written, to drop a table (`schema` false) or a schema's tables
/// while another transaction holds uncommitted changes DuckDB lets an extension detect
/// (updates, schema changes, deletes of their rows): that transaction's COMMIT would fail.
/// Called at bind, where a refusal is a binder error, which DuckDB 1.5 does not let end the
/// caller's own transaction (2.0 ends it at any error).
pub fn refuse_pending(ctx: &Ctx, name: &str, schema: bool) -> Result<()> {
    let (tables, what) = if schema {
        let tables = catalog::schema_tables(ctx.db, &ctx.database, name)?;
        let what = format!("drop schema {}", catalog::display_part(&tables[0].schema));
        (tables, what)
    } else {
        let t = catalog::resolve_table(ctx.db, &ctx.database, &ctx.schema, name)?;
        let what = format!("drop table {}", t.display());
        (vec![t], what)
    };
    crate::engine::pending::no_pending_updates(ctx.db, &what, "drop it")?;
    for t in &tables {
        // a key still referenced fails the probe's delete for another reason: the DROP says why
        if !catalog::is_referenced(ctx.db, t)? {
            crate::engine::pending::no_pending_deletes(ctx.db, t, "drop", "drop it")?;
        }
    }
    Ok(())
}

/// Snapshots a table (type `pre_drop`), then drops it. If the DROP fails, the backup is
/// removed again and the error returned: nothing changes.
pub fn drop_table(ctx: &Ctx, name: &str) -> Result<DroppedTable> {
    let t = catalog::resolve_table(ctx.db, &ctx.database, &ctx.schema, name)?;
    // a table dropped under another transaction's uncommitted changes to it makes that
    // transaction's COMMIT fail: refused while DuckDB can tell (updates, schema changes,
    // deletes; not inserts, which it checks only at their COMMIT)
    crate::engine::pending::no_pending_updates(ctx.db, &format!("drop table {}", t.display()), "drop it")?;
    ensure_repo_dir(ctx)?;
    let _lock = ctx.lock()?;
    let req = CreateRequest {
        description: Some(format!("Auto-backup before DROP TABLE {}", t.display())),
        kind: SnapshotKind::PreDrop,
        id_prefix: "auto_predrop",
        ..Default::default()
    };
    let scope = manifest::Scope::tables();
    let backup = create_locked(ctx, &req, std::slice::from_ref(&t), scope)?;
    let dropped = in_transaction(ctx.db, || {
        // (a key still referenced fails the delete: the DROP says why better)
        if !catalog::is_referenced(ctx.db, &t)? {
            crate::engine::pending::delete_all_rows(ctx.db, &t, "drop", "drop it")?;
        }
        ctx.db.exec(&format!("DROP TABLE {}", t.sql())).map_err(|e| Error::Input(format!("cannot drop table {}: {}", t.display(), e.one_line())))
    });
    if let Err(e) = dropped {
        let _ = drop_locked(ctx, &backup.snapshot_id);
        return Err(e);
    }
    Ok(DroppedTable { backup_snapshot_id: backup.snapshot_id, table: t.display() })
}

/// Snapshots a whole schema (type `pre_drop`), then drops it with everything in it; one
/// entry per table dropped.
pub fn drop_schema(ctx: &Ctx, schema: &str) -> Result<Vec<DroppedTable>> {
    let tables = catalog::schema_tables(ctx.db, &ctx.database, schema)?;
    let t0 = tables[0].clone();
    crate::engine::pending::no_pending_updates(ctx.db, &format!("drop schema {}", catalog::display_part(&t0.schema)), "drop it")?;
    ensure_repo_dir(ctx)?;
    let _lock = ctx.lock()?;
    let display = catalog::display_part(&t0.schema);
    let req = CreateRequest {
        description: Some(format!("Auto-backup before DROP SCHEMA {display}")),
        kind: SnapshotKind::PreDrop,
        id_prefix: "auto_predrop",
        ..Default::default()
    };
    let scope = manifest::Scope { kind: manifest::ScopeKind::Schema, schema: Some(t0.schema.clone()), ..manifest::Scope::tables() };
    let backup = create_locked(ctx, &req, &tables, scope)?;
    let sql = format!(
        "DROP SCHEMA {}.{} CASCADE",
        crate::engine::sql::ident(&t0.catalog),
        crate::engine::sql::ident(&t0.schema)
    );
    let dropped = in_transaction(ctx.db, || {
        // a referenced key cannot be deleted in the transaction that deleted its references
        for t in &tables {
            if !catalog::is_referenced(ctx.db, t)? {
                crate::engine::pending::delete_all_rows(ctx.db, t, "drop", "drop the schema")?;
            }
        }
        ctx.db.exec(&sql).map_err(|e| Error::Input(format!("cannot drop schema {display}: {}", e.one_line())))
    });
    if let Err(e) = dropped {
        let _ = drop_locked(ctx, &backup.snapshot_id);
        return Err(e);
    }
    Ok(tables.iter().map(|t| DroppedTable { backup_snapshot_id: backup.snapshot_id.clone(), table: t.display() }).collect())
}
