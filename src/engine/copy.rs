//! `snapshot_copy`: resolves which snapshots to copy (an id, a point in time, or every one)
//! in the source repository and copies them under the destination's writer lock; the
//! copying itself is the repository's (`repo::copy`).

use crate::engine::point::{self, SnapshotArg};
use crate::engine::Ctx;
use crate::error::{Error, Result};
use crate::repo::copy::{check_distinct, copy, Copied};
use crate::repo::layout::Repo;

/// Which side of the copy the caller's own repository is.
pub enum Other {
    /// `destination :=`: copy from the current repository to this one.
    Destination(Repo),
    /// `source :=`: copy from this one into the current repository.
    Source(Repo),
}

pub fn copy_snapshots(ctx: &Ctx, what: &SnapshotArg, other: Other) -> Result<Vec<Copied>> {
    let (from, to) = match other {
        Other::Destination(r) => (ctx.repo.clone(), r),
        Other::Source(r) => (r, ctx.repo.clone()),
    };
    check_distinct(&from, &to)?;
    let source = Ctx {
        db: ctx.db,
        database: ctx.database.clone(),
        schema: ctx.schema.clone(),
        repo: from.clone(),
        branch: ctx.branch.clone(),
        lock_timeout: ctx.lock_timeout,
        timezone: ctx.timezone.clone(),
        s3: ctx.s3.clone(),
        cache: ctx.cache.clone(),
    };
    let mut manifests = match what {
        SnapshotArg::All => {
            let all = crate::repo::list::manifests(&from)?;
            if all.is_empty() {
                return Err(Error::Input(format!("{} holds no snapshots; nothing to copy", from.dir.display())));
            }
            all
        }
        arg => vec![point::snapshot(&source, arg)?],
    };
    // oldest first: parents arrive before the snapshots that read their files
    manifests.sort_by(|a, b| a.created_at_micros().cmp(&b.created_at_micros()).then_with(|| a.snapshot_id.cmp(&b.snapshot_id)));
    to.ensure()?;
    let _lock = to.lock(ctx.lock_timeout)?;
    copy(&from, &to, &manifests)
}
