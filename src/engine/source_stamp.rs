//! Source stamps: a short text describing a database file's state, taken just before a
//! snapshot's read transaction begins, that changes whenever a transaction commits a change.
//! DuckDB writes every committed change to the write-ahead log (`<file>.wal`, which only grows
//! between checkpoints) and every checkpoint rewrites the file's headers (their iteration
//! counter) and removes the log; so equal stamps mean no commit in between, and a table
//! whose previous version was read under an equal stamp is unchanged without reading it.
//! The stamp also holds the file's device, inode, size and modification time, so another
//! file put in its place never matches. An in-memory or remote database has no stamp (its
//! tables are always fingerprinted).

use std::os::unix::fs::MetadataExt;

use sha2::{Digest, Sha256};

/// Bytes at the start of a DuckDB file: the main header and both database headers.
const HEADERS: usize = 3 * 4096;

/// The stamp of the database file at `path`, or None when it is not a local file this
/// process holds open.
pub fn stamp(path: &str) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    // a relative path names the file DuckDB opened only while the working directory is the
    // same: take it only when this process holds that very file open. Its headers are read
    // through DuckDB's own descriptor: opening and closing the file would drop DuckDB's lock
    // on it (POSIX record locks belong to the process and go with any close of the file)
    let fd = open_descriptor(meta.dev(), meta.ino())?;
    let mut head = vec![0u8; HEADERS];
    let n = unsafe { libc::pread(fd, head.as_mut_ptr() as *mut libc::c_void, HEADERS, 0) };
    if n < 0 || !is_file(fd, meta.dev(), meta.ino()) {
        return None;
    }
    head.truncate(n as usize);
    let digest = Sha256::digest(&head);
    let wal = match std::fs::metadata(format!("{path}.wal")) {
        Ok(w) => format!("{}@{}.{:09}", w.len(), w.mtime(), w.mtime_nsec()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "none".to_string(),
        Err(_) => return None,
    };
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}:{}:{}@{}.{:09}:{hex};wal {wal}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

/// A descriptor of this process open on the file (device, inode), found without opening it.
fn open_descriptor(dev: u64, ino: u64) -> Option<libc::c_int> {
    let fds = std::fs::read_dir("/proc/self/fd").ok()?;
    fds.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<libc::c_int>().ok()))
        .find(|fd| is_file(*fd, dev, ino))
}

/// Whether descriptor `fd` is open on the file (device, inode) now.
fn is_file(fd: libc::c_int, dev: u64, ino: u64) -> bool {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    unsafe { libc::fstat(fd, &mut st) == 0 && st.st_dev as u64 == dev && st.st_ino as u64 == ino && (st.st_mode & libc::S_IFMT) == libc::S_IFREG }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_the_file_and_its_log() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("x.duckdb");
        std::fs::write(&db, vec![1u8; 20000]).unwrap();
        let path = db.to_str().unwrap();
        // not open in this process: no stamp
        assert_eq!(stamp(path), None);
        let _open = std::fs::File::open(&db).unwrap();
        let a = stamp(path).unwrap();
        assert_eq!(stamp(path).unwrap(), a);
        std::fs::write(d.path().join("x.duckdb.wal"), b"entry").unwrap();
        let b = stamp(path).unwrap();
        assert_ne!(a, b);
        std::fs::write(d.path().join("x.duckdb.wal"), b"entry+more").unwrap();
        assert_ne!(stamp(path).unwrap(), b);
        assert_eq!(stamp(d.path().join("missing").to_str().unwrap()), None);
        assert_eq!(stamp(d.path().to_str().unwrap()), None);
    }
}
