//! Durable, atomic publication on a POSIX file system: write to a temporary name, fsync,
//! rename into place, fsync the directory. A crash at any point leaves either the old state
//! or the new one, plus at most a hidden leftover that listing ignores.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};

/// fsyncs a directory so that renames and creations inside it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| Error::io(dir, e))?;
    f.sync_all().map_err(|e| Error::io(dir, e))
}

/// fsyncs a file's contents.
pub fn sync_file(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::Internal(format!("{} has no parent", path.display())))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renames directory `from` to `to`, failing if `to` exists (never replacing a snapshot),
/// then fsyncs the parent directory.
pub fn publish_dir(from: &Path, to: &Path) -> Result<()> {
    let c_from = CString::new(from.as_os_str().as_bytes()).map_err(|_| Error::Internal("NUL in path".into()))?;
    let c_to = CString::new(to.as_os_str().as_bytes()).map_err(|_| Error::Internal("NUL in path".into()))?;
    let rc = unsafe {
        libc::renameat2(libc::AT_FDCWD, c_from.as_ptr(), libc::AT_FDCWD, c_to.as_ptr(), libc::RENAME_NOREPLACE)
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            // file systems without RENAME_NOREPLACE: callers hold the repository lock,
            // so check-then-rename cannot race with another writer of ours
            Some(libc::EINVAL) | Some(libc::ENOSYS) => {
                if to.exists() {
                    return Err(Error::io(to, std::io::Error::from(std::io::ErrorKind::AlreadyExists)));
                }
                fs::rename(from, to).map_err(|e| Error::io(to, e))?;
            }
            _ => return Err(Error::io(to, err)),
        }
    }
    if let Some(parent) = to.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// `sha256:<hex>` and the size of a file.
pub fn file_checksum(path: &Path) -> Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("metadata.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn publish_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        assert!(publish_dir(&a, &b).is_err());
        fs::remove_dir(&b).unwrap();
        publish_dir(&a, &b).unwrap();
        assert!(b.is_dir() && !a.exists());
    }
}
