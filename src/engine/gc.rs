//! `snapshot_gc`: removes what no published snapshot references — folders of interrupted
//! creates (`.tmp-…`) and deletes (`.del-…`), snapshot folders that were never published
//! (no metadata.json), folders of dropped snapshots once no other snapshot shares their
//! files, and stray temporary files inside published folders. It only removes
//! names the extension itself produces, never a snapshot whose metadata it cannot read, and
//! runs under the writer lock so it never races a create in progress.

use std::fs;
use std::path::Path;

use crate::engine::{Ctx};
use crate::error::{Error, Result};
use crate::repo::layout::{validate_id, DEL_PREFIX, LOCK_FILE, METADATA_FILE, RETIRED_FILE, TMP_PREFIX};
use crate::repo::manifest;
use crate::repo::pin::PIN_FILE;

#[derive(Debug, Clone, PartialEq)]
pub struct GcItem {
    pub path: String,
    pub kind: &'static str,
    pub bytes: u64,
    pub deleted: bool,
}

fn size_of(path: &Path) -> u64 {
    if path.is_dir() {
        fs::read_dir(path)
            .map(|es| es.filter_map(|e| e.ok()).map(|e| size_of(&e.path())).sum())
            .unwrap_or(0)
    } else {
        fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

pub fn gc(ctx: &Ctx, dry_run: bool) -> Result<Vec<GcItem>> {
    let mut found: Vec<(std::path::PathBuf, &'static str)> = Vec::new();
    let entries = match fs::read_dir(&ctx.repo.dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&ctx.repo.dir, e)),
    };
    let _lock = ctx.lock()?;
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        if name == LOCK_FILE {
            continue;
        }
        if name.starts_with(TMP_PREFIX) {
            found.push((path, "interrupted create"));
        } else if name.starts_with(DEL_PREFIX) {
            found.push((path, "interrupted drop"));
        } else if name.starts_with('.') && name.contains(".tmp-") {
            found.push((path, "temporary file"));
        } else if path.is_dir() && validate_id(&name).is_ok() {
            if !path.join(METADATA_FILE).is_file() && path.join(RETIRED_FILE).is_file() {
                // a dropped snapshot kept for files others share: only once nothing does
                if crate::engine::drop::references_into(&ctx.repo, &name)?.is_some_and(|r| r.is_empty()) {
                    found.push((path, "dropped snapshot no longer referenced"));
                }
                continue;
            }
            if !path.join(METADATA_FILE).is_file() {
                found.push((path, "unpublished snapshot"));
                continue;
            }
            // a published snapshot: only stray temporary files of ours inside it
            let Ok(m) = manifest::load(&ctx.repo, &name) else { continue };
            for inner in fs::read_dir(&path).map_err(|e| Error::io(&path, e))?.filter_map(|e| e.ok()) {
                let f = inner.file_name().to_string_lossy().into_owned();
                let referenced = f == METADATA_FILE || f == PIN_FILE || m.tables.iter().any(|t| t.file == f || t.referenced_files(&name).iter().any(|r| r.file == f));
                if !referenced && f.starts_with('.') && f.contains(".tmp-") {
                    found.push((inner.path(), "temporary file"));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(found.len());
    for (path, kind) in found {
        let bytes = size_of(&path);
        if !dry_run {
            let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            removed.map_err(|e| Error::io(&path, e))?;
        }
        out.push(GcItem { path: path.to_string_lossy().into_owned(), kind, bytes, deleted: !dry_run });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
