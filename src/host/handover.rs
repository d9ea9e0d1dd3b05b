//! Safe hand-over of a database file when the extension releases its instance.
//!
//! Releasing the last connection destroys the DuckDB instance, which checkpoints, i.e.
//! writes the database file. That is only safe if no other instance has the file open. In
//! one process DuckDB's POSIX lock does not stop a second instance (POSIX locks belong to
//! the process), so `.open same.db` in the shell could otherwise open the file while the
//! old instance still holds unwritten state, and the old instance's checkpoint would then
//! overwrite what the new one wrote.
//!
//! The hand-over swaps the process lock for an open-file-description (OFD) lock, which
//! conflicts with every POSIX lock, this process's included: from then on no new instance,
//! here or elsewhere, can lock the file. Then it checks that no other descriptor in this
//! process refers to the file. Only if both hold is the instance released (and may
//! checkpoint); otherwise the old instance is never destroyed, so it never writes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An exclusive OFD lock on the database file, held until drop.
pub struct Handover {
    fd: libc::c_int,
}

pub enum Outcome {
    /// No other instance can open the file until `Handover` is dropped: release freely.
    Exclusive(Handover),
    /// Another instance (or process) may have the file: the old instance must never write.
    Shared,
}

fn lock_req(kind: libc::c_short) -> libc::flock {
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl
}

/// Tries to take the file over from the process's POSIX lock.
pub fn begin(path: &Path) -> Outcome {
    let Ok(meta) = std::fs::metadata(path) else { return Outcome::Shared };
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else { return Outcome::Shared };
    let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Outcome::Shared;
    }
    unsafe {
        // drop the process's POSIX lock (the instance's), then take the OFD lock
        let mut unlock = lock_req(libc::F_UNLCK as libc::c_short);
        libc::fcntl(fd, libc::F_SETLK, &mut unlock);
        let mut ofd = lock_req(libc::F_WRLCK as libc::c_short);
        if libc::fcntl(fd, libc::F_OFD_SETLK, &mut ofd) != 0 {
            // somebody else locked it in between: restore the process lock and keep the fd
            // open forever (closing it would drop the process lock again)
            let mut relock = lock_req(libc::F_WRLCK as libc::c_short);
            libc::fcntl(fd, libc::F_SETLK, &mut relock);
            return Outcome::Shared;
        }
    }
    // two descriptors are expected: the old instance's and ours
    if descriptors_on(meta.dev(), meta.ino()) > 2 {
        unsafe {
            let mut unlock = lock_req(libc::F_UNLCK as libc::c_short);
            libc::fcntl(fd, libc::F_OFD_SETLK, &mut unlock);
            let mut relock = lock_req(libc::F_WRLCK as libc::c_short);
            libc::fcntl(fd, libc::F_SETLK, &mut relock);
        }
        // fd intentionally leaked, see above
        return Outcome::Shared;
    }
    Outcome::Exclusive(Handover { fd })
}

impl Drop for Handover {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

/// How many open descriptors of this process refer to the file (dev, ino).
fn descriptors_on(dev: u64, ino: u64) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return usize::MAX };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let p: PathBuf = e.path();
            std::fs::metadata(&p).map(|m| m.dev() == dev && m.ino() == ino).unwrap_or(false)
        })
        .count()
}
