//! Pins: a pinned snapshot is never pruned or dropped. The pin is a marker file `pinned`
//! inside the snapshot folder, so the snapshot's own files stay immutable.

use std::fs;

use crate::error::{Error, Result};
use crate::repo::layout::Repo;
use crate::repo::publish::{sync_dir, write_atomic};

pub const PIN_FILE: &str = "pinned";

pub fn is_pinned(repo: &Repo, id: &str) -> bool {
    repo.snapshot_dir(id).join(PIN_FILE).is_file()
}

/// Pins or unpins a published snapshot; the caller holds the writer lock.
pub fn set_pinned(repo: &Repo, id: &str, pinned: bool) -> Result<()> {
    let dir = repo.snapshot_dir(id);
    let marker = dir.join(PIN_FILE);
    if pinned {
        write_atomic(&marker, b"")
    } else {
        match fs::remove_file(&marker) {
            Ok(()) => sync_dir(&dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&marker, e)),
        }
    }
}
