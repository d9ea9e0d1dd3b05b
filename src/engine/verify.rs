//! Integrity of data files: SHA-256 per file, recorded at create and checked before any
//! restore. Reads check size and presence on every scan and the full checksum once per
//! process per unchanged file (remembered by size and modification time).

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::repo::layout::Repo;
use crate::repo::manifest::{Manifest, TableEntry};

/// `sha256:<hex>` and the size of a file.
pub fn file_checksum(path: &Path) -> Result<(String, u64)> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((format!("sha256:{hex}"), size))
}

static VERIFIED: Mutex<Option<HashSet<(String, u64, i64, i64, String)>>> = Mutex::new(None);

/// Checks a table's data file: present, right size, and (if `full`, or never verified in
/// this process) the right checksum.
pub fn check_entry(repo: &Repo, m: &Manifest, t: &TableEntry, full: bool) -> Result<()> {
    let path = repo.snapshot_dir(&m.snapshot_id).join(&t.file);
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingFile { id: m.snapshot_id.clone(), file: t.file.clone() })
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    let corrupt = |detail: String| Error::CorruptFile { id: m.snapshot_id.clone(), file: t.file.clone(), detail };
    if meta.len() != t.size_bytes {
        return Err(corrupt(format!("size {} bytes, expected {}", meta.len(), t.size_bytes)));
    }
    let key = (path.to_string_lossy().into_owned(), meta.len(), meta.mtime(), meta.mtime_nsec(), t.checksum.clone());
    if !full && VERIFIED.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|s| s.contains(&key)) {
        return Ok(());
    }
    let (sum, _) = file_checksum(&path)?;
    if sum != t.checksum {
        return Err(corrupt("checksum mismatch".into()));
    }
    VERIFIED.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashSet::new).insert(key);
    Ok(())
}
