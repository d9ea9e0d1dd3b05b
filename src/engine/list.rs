//! Listing the repository: every readable manifest, newest first.

use crate::error::Result;
use crate::repo::layout::Repo;
use crate::repo::manifest::{self, Manifest};

/// Every readable manifest of the repository, newest first. Unreadable ones are skipped
/// here (a listing must not fail because of one bad folder; `snapshot_verify` reports them).
pub fn manifests(repo: &Repo) -> Result<Vec<Manifest>> {
    let mut all: Vec<Manifest> = repo.list_ids()?.iter().filter_map(|id| manifest::load(repo, id).ok()).collect();
    all.sort_by(|a, b| b.created_at_micros().cmp(&a.created_at_micros()).then_with(|| b.snapshot_id.cmp(&a.snapshot_id)));
    Ok(all)
}
