//! `snapshot_gc`: removes what no published snapshot references — folders of interrupted
//! creates (`.tmp-…`) and deletes (`.del-…`), snapshot folders that were never published
//! (no metadata.json: in a bucket, the uploads of a create that died before publishing),
//! folders of dropped snapshots once no other snapshot shares their files, stray temporary
//! files inside published folders, and a bucket repository's local staging folders left by
//! processes that are gone. It only removes names the extension itself produces, never a
//! snapshot whose metadata it cannot read, and runs under the writer lock so it never races
//! a create in progress.

use std::time::Duration;

use crate::error::Result;
use crate::repo::layout::{validate_id, Repo, DEL_PREFIX, LOCK_FILE, METADATA_FILE, RETIRED_FILE, TMP_PREFIX};
use crate::repo::manifest;
use crate::repo::store::PIN_FILE;

#[derive(Debug, Clone, PartialEq)]
pub struct GcItem {
    pub path: String,
    pub kind: &'static str,
    pub bytes: u64,
    pub deleted: bool,
}

pub fn gc(repo: &Repo, lock_timeout: Duration, dry_run: bool) -> Result<Vec<GcItem>> {
    if !repo.is_remote() && !repo.dir.exists() {
        return Ok(Vec::new());
    }
    let _lock = repo.lock(lock_timeout)?;
    let entries = repo.entries()?;
    // (entry, a file inside it or the whole entry, kind)
    let mut found: Vec<(usize, Option<String>, &'static str)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let name = &e.name;
        let has = |f: &str| e.files.iter().any(|(g, _)| g == f);
        if name == LOCK_FILE {
            continue;
        }
        if name.starts_with(TMP_PREFIX) {
            found.push((i, None, "interrupted create"));
        } else if name.starts_with(DEL_PREFIX) {
            found.push((i, None, "interrupted drop"));
        } else if name.starts_with('.') && name.contains(".tmp-") {
            found.push((i, None, "temporary file"));
        } else if e.is_dir && validate_id(name).is_ok() {
            if !has(METADATA_FILE) && has(RETIRED_FILE) {
                // a dropped snapshot kept for files others share: only once nothing does
                if crate::repo::retire::references_into(repo, name)?.is_some_and(|r| r.is_empty()) {
                    found.push((i, None, "dropped snapshot no longer referenced"));
                }
                continue;
            }
            if !has(METADATA_FILE) {
                found.push((i, None, "unpublished snapshot"));
                continue;
            }
            // a published snapshot: only stray temporary files of ours inside it
            let Ok(m) = manifest::load(repo, name) else { continue };
            for (f, _) in &e.files {
                let referenced = f == METADATA_FILE
                    || f == PIN_FILE
                    || m.tables.iter().any(|t| &t.file == f || t.referenced_files(name).iter().any(|r| &r.file == f));
                if !referenced && f.starts_with('.') && f.contains(".tmp-") {
                    found.push((i, Some(f.clone()), "temporary file"));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(found.len());
    for (i, file, kind) in found {
        let e = &entries[i];
        let bytes = match &file {
            Some(f) => e.files.iter().find(|(g, _)| g == f).map(|(_, n)| *n).unwrap_or(0),
            None => e.files.iter().map(|(_, n)| n).sum(),
        };
        if !dry_run {
            repo.remove_entry(e, file.as_deref())?;
        }
        out.push(GcItem { path: repo.entry_location(&e.name, file.as_deref()), kind, bytes, deleted: !dry_run });
    }
    // the writer lock is held: no upload of ours is in flight, so every unfinished one is
    // left by a writer that died (or gave up without reaching the bucket to abort it)
    for (rel, upload_id) in repo.unfinished_uploads()? {
        if !dry_run {
            repo.abort_upload(&rel, &upload_id)?;
        }
        out.push(GcItem { path: repo.entry_location(&rel, None), kind: "unfinished multipart upload", bytes: 0, deleted: !dry_run });
    }
    for (path, bytes) in repo.stale_staging() {
        if !dry_run {
            std::fs::remove_dir_all(&path).map_err(|e| crate::error::Error::io(&path, e))?;
        }
        out.push(GcItem { path: path.to_string_lossy().into_owned(), kind: "staging folder of a process that is gone", bytes, deleted: !dry_run });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
