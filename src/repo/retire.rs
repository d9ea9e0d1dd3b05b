//! Dropping snapshots from a repository, and the reference tracking it rests on: which
//! files of which folder other snapshots still read. A drop unpublishes the snapshot in one
//! atomic step (its folder removed, or its metadata.json replaced by retired.json while other
//! snapshots read some of its files), then removes what nobody needs; folders of earlier
//! drops go once their last reader does. One plan serves a dry run and a real one.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::repo::layout::{validate_id, Repo, METADATA_FILE, RETIRED_FILE};
use crate::repo::manifest;

/// What dropping one snapshot did (or, planned, will do) to the repository.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dropped {
    pub snapshot_id: String,
    /// Files removed: the snapshot's own, and those of folders of earlier drops that it was
    /// the last to share.
    pub files_deleted: u64,
    pub bytes_freed: u64,
    /// The snapshot's files that stay because other snapshots still read them.
    pub files_kept: u64,
    pub bytes_kept: u64,
}

pub fn drop_snapshot(repo: &Repo, id: &str, lock_timeout: std::time::Duration) -> Result<Dropped> {
    validate_id(id)?;
    if !repo.exists(id)? {
        return Err(Error::SnapshotNotFound { id: id.to_string(), repo: repo.dir.clone() });
    }
    let _lock = repo.lock(lock_timeout)?;
    if repo.is_pinned(id) {
        return Err(Error::Input(format!("snapshot '{id}' is pinned; unpin it first with CALL snapshot_unpin('{id}')")));
    }
    drop_locked(repo, id)
}

/// For every snapshot folder, the files that other listed snapshots reference; None when
/// some snapshot's metadata cannot be read (its references are unknown, so nothing may go).
/// Uses the cached listing: a drop in a repository of thousands of snapshots parses nothing.
pub fn references(repo: &Repo) -> Result<Option<HashMap<String, HashSet<String>>>> {
    let listed = repo.list_ids()?.len();
    let manifests = crate::repo::list::manifests(repo)?;
    if manifests.len() < listed {
        return Ok(None);
    }
    let mut refs: HashMap<String, HashSet<String>> = HashMap::new();
    for m in &manifests {
        for (folder, file) in outside_refs(m) {
            refs.entry(folder).or_default().insert(file);
        }
    }
    Ok(Some(refs))
}

/// Files of snapshot folder `id` that other snapshots reference (None: unknown).
pub fn references_into(repo: &Repo, id: &str) -> Result<Option<HashSet<String>>> {
    Ok(references(repo)?.map(|mut all| all.remove(id).unwrap_or_default()))
}

/// The files of other snapshot folders a snapshot reads.
fn outside_refs(m: &manifest::Manifest) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in &m.tables {
        for r in t.referenced_files(&m.snapshot_id) {
            if r.snapshot != m.snapshot_id {
                out.push((r.snapshot, r.file));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A file is still needed while referenced; a sketch goes with its index.
fn needed(refs: &HashMap<(String, String), u32>, folder: &str, file: &str) -> bool {
    let used = |f: &str| refs.get(&(folder.to_string(), f.to_string())).is_some_and(|n| *n > 0);
    used(file) || file.strip_suffix(".sketch").is_some_and(|stem| used(&format!("{stem}.idx")))
}

/// What one step of a drop does to a folder.
#[derive(Debug, Clone)]
enum Action {
    /// Unpublish (metadata.json becomes retired.json) and remove the files nobody needs.
    Retire { id: String, remove: Vec<String> },
    /// Remove the whole folder.
    Delete { id: String },
    /// Remove files of a retired folder that nobody needs any more.
    Trim { id: String, remove: Vec<String> },
}

/// The drops of `ids`, in order, planned against the repository as it is: what each removes
/// and keeps. The same plan serves a dry run and a real one, so they report the same.
struct DropPlan {
    steps: Vec<(Dropped, Vec<Action>)>,
}

fn folder_files(repo: &Repo, id: &str) -> Result<Vec<(String, u64)>> {
    repo.folder_files(id)
}

fn plan_drops(repo: &Repo, ids: &[String]) -> Result<DropPlan> {
    let listed = repo.list_ids()?;
    let manifests = crate::repo::list::manifests(repo)?;
    // some metadata cannot be read: its references are unknown, so only unpublish
    let known = manifests.len() >= listed.len();
    let mut refs: HashMap<(String, String), u32> = HashMap::new();
    let mut refs_of: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for m in &manifests {
        let r = outside_refs(m);
        for key in &r {
            *refs.entry(key.clone()).or_default() += 1;
        }
        refs_of.insert(m.snapshot_id.clone(), r);
    }
    // folders of earlier drops, with what is left in them
    let mut retired: Vec<(String, Vec<(String, u64)>)> = Vec::new();
    for id in repo.retired_ids()? {
        retired.push((id.clone(), folder_files(repo, &id)?));
    }
    let mut steps = Vec::with_capacity(ids.len());
    for id in ids {
        for key in refs_of.remove(id).unwrap_or_default() {
            if let Some(n) = refs.get_mut(&key) {
                *n = n.saturating_sub(1);
            }
        }
        let files = folder_files(repo, id)?;
        let mut d = Dropped { snapshot_id: id.clone(), ..Default::default() };
        let mut actions = Vec::new();
        let shared: Vec<&(String, u64)> = files.iter().filter(|(f, _)| !known || needed(&refs, id, f)).collect();
        if shared.is_empty() {
            d.files_deleted += files.len() as u64;
            d.bytes_freed += files.iter().map(|(_, n)| n).sum::<u64>();
            actions.push(Action::Delete { id: id.clone() });
        } else {
            let remove: Vec<(String, u64)> =
                files.iter().filter(|(f, _)| f != METADATA_FILE && !shared.iter().any(|(g, _)| g == f)).cloned().collect();
            d.files_kept = shared.len() as u64;
            d.bytes_kept = shared.iter().map(|(_, n)| n).sum();
            d.files_deleted += remove.len() as u64;
            d.bytes_freed += remove.iter().map(|(_, n)| n).sum::<u64>();
            let left: Vec<(String, u64)> = files
                .iter()
                .filter(|(f, _)| !remove.iter().any(|(g, _)| g == f))
                .map(|(f, n)| (if f == METADATA_FILE { RETIRED_FILE.to_string() } else { f.clone() }, *n))
                .collect();
            actions.push(Action::Retire { id: id.clone(), remove: remove.into_iter().map(|(f, _)| f).collect() });
            retired.push((id.clone(), left));
        }
        // folders of earlier drops that this one was the last to share
        if known {
            let mut still = Vec::new();
            for (rid, left) in retired.drain(..) {
                let keep: Vec<(String, u64)> = left.iter().filter(|(f, _)| f == RETIRED_FILE || needed(&refs, &rid, f)).cloned().collect();
                if keep.iter().all(|(f, _)| f == RETIRED_FILE) {
                    d.files_deleted += left.len() as u64;
                    d.bytes_freed += left.iter().map(|(_, n)| n).sum::<u64>();
                    actions.push(Action::Delete { id: rid });
                } else {
                    let remove: Vec<(String, u64)> = left.iter().filter(|(f, _)| !keep.iter().any(|(g, _)| g == f)).cloned().collect();
                    if !remove.is_empty() {
                        d.files_deleted += remove.len() as u64;
                        d.bytes_freed += remove.iter().map(|(_, n)| n).sum::<u64>();
                        actions.push(Action::Trim { id: rid.clone(), remove: remove.into_iter().map(|(f, _)| f).collect() });
                    }
                    still.push((rid, keep));
                }
            }
            retired = still;
        }
        steps.push((d, actions));
    }
    Ok(DropPlan { steps })
}

/// Carries out one planned step.
fn execute(repo: &Repo, actions: &[Action]) -> Result<()> {
    for a in actions {
        match a {
            Action::Retire { id, remove } => repo.retire(id, remove)?,
            Action::Trim { id, remove } => repo.remove_files(id, remove)?,
            Action::Delete { id } => repo.delete_folder(id)?,
        }
    }
    Ok(())
}

/// What dropping `ids` in order would do, without doing it (a dry run of prune).
pub fn preview_drops(repo: &Repo, ids: &[String]) -> Result<Vec<Dropped>> {
    Ok(plan_drops(repo, ids)?.steps.into_iter().map(|(d, _)| d).collect())
}

/// Drops `ids` in order (the caller holds the repository lock); what each step did.
pub fn drop_all_locked(repo: &Repo, ids: &[String]) -> Result<Vec<Dropped>> {
    for id in ids {
        if !repo.exists(id)? {
            return Err(Error::SnapshotNotFound { id: id.clone(), repo: repo.dir.clone() });
        }
    }
    let plan = plan_drops(repo, ids)?;
    let mut out = Vec::with_capacity(plan.steps.len());
    for (d, actions) in plan.steps {
        execute(repo, &actions)?;
        out.push(d);
    }
    Ok(out)
}

/// Deletes a snapshot; the caller holds the repository lock. Files that later snapshots
/// still reference stay behind in the folder, which is marked retired (no metadata.json, so
/// it is no longer listed) and removed once nothing references it.
pub fn drop_locked(repo: &Repo, id: &str) -> Result<Dropped> {
    Ok(drop_all_locked(repo, &[id.to_string()])?.pop().expect("one step per id"))
}

