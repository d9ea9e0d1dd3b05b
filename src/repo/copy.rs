//! `snapshot_copy`: copies snapshots between two repositories of any kind (folder ↔ bucket ↔
//! bucket), like `restic copy`. Each snapshot goes with every file it references (in its own
//! folder and in its parents'), oldest first so a chain arrives parents before children;
//! files the destination already has (same name, same size — files are immutable) are
//! skipped; every file copied is checked against its recorded checksum; each snapshot is
//! published in the destination by its metadata.json, written last and never replacing one.
//! Lineage (`parent_id`, layers in parents' folders) is kept, so a chain stays incremental.
//! A folder copied only for files a copied snapshot reads is marked retired, as a drop
//! leaves it, so gc keeps it exactly while something reads it.

use std::collections::{BTreeSet, HashMap};

use crate::error::{Error, Result};
use crate::repo::layout::Repo;
use crate::repo::manifest::Manifest;

/// What copying one snapshot did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Copied {
    pub snapshot_id: String,
    pub files_copied: u64,
    pub bytes_copied: u64,
    pub files_skipped: u64,
}

/// Every file a snapshot needs, by folder: its layers, indexes and their sketches.
fn needed_files(m: &Manifest) -> Vec<(String, String, Option<String>)> {
    let mut out: BTreeSet<(String, String, Option<String>)> = BTreeSet::new();
    for t in &m.tables {
        for l in t.effective_layers(&m.snapshot_id) {
            out.insert((l.snapshot.clone(), l.file.clone(), Some(l.checksum.clone()).filter(|c| !c.is_empty())));
        }
        if let Some(ix) = &t.index {
            out.insert((ix.snapshot.clone(), ix.file.clone(), None));
        }
    }
    out.into_iter().collect()
}

/// Copies `manifests` (in the order given) from `from` to `to`; the caller holds `to`'s lock.
pub fn copy(from: &Repo, to: &Repo, manifests: &[std::sync::Arc<Manifest>]) -> Result<Vec<Copied>> {
    let mut out = Vec::with_capacity(manifests.len());
    // what the source's folders hold (for sketches, which no manifest names)
    let mut folder_cache: HashMap<String, Vec<(String, u64)>> = HashMap::new();
    for m in manifests {
        let id = &m.snapshot_id;
        let meta = from.read_metadata(id)?.ok_or_else(|| Error::SnapshotNotFound { id: id.clone(), repo: from.dir.clone() })?;
        let mut done = Copied { snapshot_id: id.clone(), ..Default::default() };
        if let Some(existing) = to.read_metadata(id)? {
            if existing != meta {
                return Err(Error::Input(format!(
                    "snapshot '{id}' already exists in {} with other contents; drop it there first or copy the others by id",
                    to.dir.display()
                )));
            }
        }
        let mut files = needed_files(m);
        // sketches make the next incremental snapshot faster: they go along when present
        for (folder, file, _) in files.clone() {
            if let Some(stem) = file.strip_suffix(".idx") {
                let listing = match folder_cache.get(&folder) {
                    Some(l) => l.clone(),
                    None => {
                        let l = from.folder_files(&folder).unwrap_or_default();
                        folder_cache.insert(folder.clone(), l.clone());
                        l
                    }
                };
                let sketch = format!("{stem}.sketch");
                if listing.iter().any(|(f, _)| *f == sketch) {
                    files.push((folder.clone(), sketch, None));
                }
            }
        }
        for (folder, file, checksum) in &files {
            let source_size = from.file_size(folder, file)?;
            let Some(source_size) = source_size else {
                return Err(Error::MissingFile { id: folder.clone(), file: file.clone() });
            };
            if to.file_size(folder, file)? == Some(source_size) {
                done.files_skipped += 1;
                continue;
            }
            let local = from.local_file(folder, file)?.ok_or_else(|| Error::MissingFile { id: folder.clone(), file: file.clone() })?;
            if let Some(expected) = checksum {
                if &local.checksum != expected {
                    return Err(Error::CorruptFile { id: folder.clone(), file: file.clone(), detail: "checksum mismatch in the source; nothing was copied for it".into() });
                }
            }
            to.put_file(folder, file, &local.path)?;
            done.files_copied += 1;
            done.bytes_copied += local.size;
        }
        // folders of parents that are not (yet) snapshots in the destination
        let mut others: BTreeSet<&String> = files.iter().map(|(f, _, _)| f).filter(|f| *f != id).collect();
        others.retain(|f| !manifests.iter().any(|m| &m.snapshot_id == *f));
        for folder in others {
            let bytes = from
                .read_metadata(folder)?
                .or_else(|| from.read_small(folder, crate::repo::layout::RETIRED_FILE))
                .unwrap_or_else(|| b"{}".to_vec());
            if !to.exists(folder)? {
                to.mark_retired(folder, &bytes)?;
            }
        }
        if to.read_metadata(id)?.is_none() {
            if !to.publish_metadata(id, &meta)? {
                return Err(Error::DuplicateId { id: id.clone(), repo: to.dir.clone() });
            }
            done.files_copied += 1;
            done.bytes_copied += meta.len() as u64;
        } else {
            done.files_skipped += 1;
        }
        out.push(done);
    }
    Ok(out)
}

/// Checks that the two repositories differ.
pub fn check_distinct(from: &Repo, to: &Repo) -> Result<()> {
    if from.dir == to.dir {
        return Err(Error::Input(format!(
            "source and destination are the same repository ({}); give another folder or s3:// URL",
            from.dir.display()
        )));
    }
    Ok(())
}
