//! `snapshot_drop` (delete a snapshot's files) and `snapshot_drop_table` (ADR-004's safe
//! drop: snapshot the table as `pre_drop`, then DROP TABLE). A snapshot is unpublished by
//! one atomic rename before its files are removed, so a crash never leaves it half listed.

use std::fs;

use crate::engine::catalog;
use crate::engine::create::{create_locked, ensure_repo_dir, CreateRequest, KIND_PRE_DROP};
use crate::engine::{now_micros, Ctx};
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};

use crate::repo::layout::{validate_id, DEL_PREFIX, METADATA_FILE, RETIRED_FILE};
use crate::repo::manifest;
use crate::repo::publish::sync_dir;

#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    pub snapshot_id: String,
    pub files_deleted: u64,
    pub bytes_freed: u64,
}

pub fn drop_snapshot(ctx: &Ctx, id: &str) -> Result<Dropped> {
    validate_id(id)?;
    if !ctx.repo.exists(id) {
        return Err(Error::SnapshotNotFound { id: id.to_string(), repo: ctx.repo.dir.clone() });
    }
    let _lock = ctx.lock()?;
    if crate::repo::pin::is_pinned(&ctx.repo, id) {
        return Err(Error::Input(format!("snapshot '{id}' is pinned; unpin it first with CALL snapshot_unpin('{id}')")));
    }
    drop_locked(ctx, id)
}

/// For every snapshot folder, the files that other listed snapshots reference; None when
/// some snapshot's metadata cannot be read (its references are unknown, so nothing may go).
/// Uses the cached listing: a drop in a repository of thousands of snapshots parses nothing.
pub fn references(repo: &crate::repo::layout::Repo) -> Result<Option<HashMap<String, HashSet<String>>>> {
    let listed = repo.list_ids()?.len();
    let manifests = crate::engine::list::manifests(repo)?;
    if manifests.len() < listed {
        return Ok(None);
    }
    let mut refs: HashMap<String, HashSet<String>> = HashMap::new();
    for m in &manifests {
        for t in &m.tables {
            for r in t.referenced_files(&m.snapshot_id) {
                if r.snapshot != m.snapshot_id {
                    refs.entry(r.snapshot).or_default().insert(r.file);
                }
            }
        }
    }
    Ok(Some(refs))
}

/// Files of snapshot folder `id` that other snapshots reference (None: unknown).
pub fn references_into(repo: &crate::repo::layout::Repo, id: &str) -> Result<Option<HashSet<String>>> {
    Ok(references(repo)?.map(|mut all| all.remove(id).unwrap_or_default()))
}

/// A file of a retired folder is kept while referenced; a sketch goes with its index.
fn still_needed(refs: &Option<HashSet<String>>, file: &str) -> bool {
    match refs {
        None => true,
        Some(r) => r.contains(file) || file.strip_suffix(".sketch").is_some_and(|stem| r.contains(&format!("{stem}.idx"))),
    }
}

/// Deletes a snapshot; the caller holds the repository lock. Files that later snapshots
/// still reference stay behind in the folder, which is marked retired (no metadata.json, so
/// it is no longer listed) and removed once nothing references it.
pub fn drop_locked(ctx: &Ctx, id: &str) -> Result<Dropped> {
    let dir = ctx.repo.snapshot_dir(id);
    if !ctx.repo.exists(id) {
        return Err(Error::SnapshotNotFound { id: id.to_string(), repo: ctx.repo.dir.clone() });
    }
    let refs = references_into(&ctx.repo, id)?;
    if refs.as_ref().is_none_or(|r| !r.is_empty()) {
        let dropped = retire(ctx, id, &refs)?;
        sweep_retired(ctx)?;
        return Ok(dropped);
    }
    let dropped = delete_folder(ctx, id, &dir)?;
    sweep_retired(ctx)?;
    Ok(dropped)
}

/// Unpublishes a snapshot whose files others reference (one atomic rename of its
/// metadata), then deletes what nobody needs.
fn retire(ctx: &Ctx, id: &str, refs: &Option<HashSet<String>>) -> Result<Dropped> {
    let dir = ctx.repo.snapshot_dir(id);
    fs::rename(dir.join(METADATA_FILE), dir.join(RETIRED_FILE)).map_err(|e| Error::Unwritable { path: dir.clone(), source: e })?;
    sync_dir(&dir)?;
    let mut dropped = Dropped { snapshot_id: id.to_string(), files_deleted: 0, bytes_freed: 0 };
    remove_unneeded(&dir, refs, &mut dropped)?;
    Ok(dropped)
}

/// Removes one entry of a folder and counts it.
fn remove_entry(entry: &fs::DirEntry, dropped: &mut Dropped) -> Result<()> {
    let path = entry.path();
    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
    let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
    removed.map_err(|e| Error::io(&path, e))?;
    dropped.files_deleted += 1;
    dropped.bytes_freed += size;
    Ok(())
}

fn remove_unneeded(dir: &std::path::Path, refs: &Option<HashSet<String>>, dropped: &mut Dropped) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != RETIRED_FILE && !still_needed(refs, &name) {
            remove_entry(&entry, dropped)?;
        }
    }
    Ok(())
}

/// Removes retired folders (and files in them) that no snapshot references any more.
pub fn sweep_retired(ctx: &Ctx) -> Result<Dropped> {
    let mut total = Dropped { snapshot_id: String::new(), files_deleted: 0, bytes_freed: 0 };
    let retired = retired_ids(&ctx.repo);
    if retired.is_empty() {
        return Ok(total);
    }
    let all = references(&ctx.repo)?;
    for id in retired {
        let refs = all.as_ref().map(|a| a.get(&id).cloned().unwrap_or_default());
        let dir = ctx.repo.snapshot_dir(&id);
        if refs.as_ref().is_some_and(|r| r.is_empty()) {
            let d = delete_folder(ctx, &id, &dir)?;
            total.files_deleted += d.files_deleted;
            total.bytes_freed += d.bytes_freed;
        } else {
            remove_unneeded(&dir, &refs, &mut total)?;
        }
    }
    Ok(total)
}

/// Folders of dropped snapshots kept for their shared files.
pub fn retired_ids(repo: &crate::repo::layout::Repo) -> Vec<String> {
    let Ok(entries) = fs::read_dir(&repo.dir) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| validate_id(n).is_ok())
        .filter(|n| {
            let d = repo.snapshot_dir(n);
            d.join(RETIRED_FILE).is_file() && !d.join(METADATA_FILE).exists()
        })
        .collect()
}

/// Removes a whole snapshot folder: renamed away first, so it vanishes atomically.
fn delete_folder(ctx: &Ctx, id: &str, dir: &std::path::Path) -> Result<Dropped> {
    let doomed = ctx.repo.dir.join(format!("{DEL_PREFIX}{id}-{}-{}", std::process::id(), now_micros()));
    fs::rename(dir, &doomed).map_err(|e| Error::Unwritable { path: ctx.repo.dir.clone(), source: e })?;
    sync_dir(&ctx.repo.dir)?;
    let mut dropped = Dropped { snapshot_id: id.to_string(), files_deleted: 0, bytes_freed: 0 };
    for entry in fs::read_dir(&doomed).map_err(|e| Error::io(&doomed, e))? {
        remove_entry(&entry.map_err(|e| Error::io(&doomed, e))?, &mut dropped)?;
    }
    fs::remove_dir(&doomed).map_err(|e| Error::io(&doomed, e))?;
    Ok(dropped)
}

#[derive(Debug, Clone)]
pub struct DroppedTable {
    pub backup_snapshot_id: String,
    pub table: String,
}

/// Snapshots a table (type `pre_drop`), then drops it. If the DROP fails, the backup is
/// removed again and the error returned: nothing changes.
pub fn drop_table(ctx: &Ctx, name: &str) -> Result<DroppedTable> {
    let t = catalog::resolve_table(ctx.db, &ctx.database, &ctx.schema, name)?;
    ensure_repo_dir(ctx)?;
    let _lock = ctx.lock()?;
    let req = CreateRequest {
        description: Some(format!("Auto-backup before DROP TABLE {}", t.display())),
        kind: KIND_PRE_DROP,
        id_prefix: "auto_predrop",
        ..Default::default()
    };
    let scope = manifest::Scope::tables();
    let backup = create_locked(ctx, &req, std::slice::from_ref(&t), scope)?;
    if let Err(e) = ctx.db.exec(&format!("DROP TABLE {}", t.sql())) {
        let _ = drop_locked(ctx, &backup.snapshot_id);
        return Err(Error::Input(format!("cannot drop table {}: {}", t.display(), e.one_line())));
    }
    Ok(DroppedTable { backup_snapshot_id: backup.snapshot_id, table: t.display() })
}

/// Snapshots a whole schema (type `pre_drop`), then drops it with everything in it.
pub fn drop_schema(ctx: &Ctx, schema: &str) -> Result<DroppedTable> {
    let tables = catalog::schema_tables(ctx.db, &ctx.database, schema)?;
    let t0 = tables[0].clone();
    ensure_repo_dir(ctx)?;
    let _lock = ctx.lock()?;
    let display = catalog::display_part(&t0.schema);
    let req = CreateRequest {
        description: Some(format!("Auto-backup before DROP SCHEMA {display}")),
        kind: KIND_PRE_DROP,
        id_prefix: "auto_predrop",
        ..Default::default()
    };
    let scope = manifest::Scope { kind: "schema".into(), schema: Some(t0.schema.clone()), ..manifest::Scope::tables() };
    let backup = create_locked(ctx, &req, &tables, scope)?;
    let sql = format!(
        "DROP SCHEMA {}.{} CASCADE",
        crate::engine::sql::ident(&t0.catalog),
        crate::engine::sql::ident(&t0.schema)
    );
    if let Err(e) = ctx.db.exec(&sql) {
        let _ = drop_locked(ctx, &backup.snapshot_id);
        return Err(Error::Input(format!("cannot drop schema {display}: {}", e.one_line())));
    }
    Ok(DroppedTable { backup_snapshot_id: backup.snapshot_id, table: display })
}

/// Restores a table from the newest `pre_drop` snapshot that has it.
pub fn undrop(ctx: &Ctx, table: &str) -> Result<crate::engine::restore::RestoreOutcome> {
    let found = crate::engine::list::manifests(&ctx.repo)?
        .into_iter()
        .filter(|m| m.kind == KIND_PRE_DROP)
        .find(|m| crate::engine::restore::find_entry(m, table).is_ok());
    let Some(m) = found else {
        return Err(Error::Input(format!(
            "no pre_drop snapshot has table {}; nothing to undrop (tables dropped with snapshot_drop_table can be undropped)",
            crate::repo::layout::printable(table)
        )));
    };
    let scope = crate::engine::scope::ScopeSpec { selectors: vec![crate::engine::scope::Selector::Table(table.to_string())], exclude: Vec::new() };
    let req = crate::engine::restore::RestoreRequest::new(crate::engine::point::SnapshotArg::Id(m.snapshot_id.clone()), scope);
    crate::engine::restore::restore(ctx, &req)
}
