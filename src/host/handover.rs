//! Safe hand-over of a database file when the extension releases its instance.
//!
//! Releasing the last connection destroys the DuckDB instance, which checkpoints: it writes
//! the database file from its own in-memory view. That is only safe if nobody else has
//! opened the file since. In one process DuckDB's POSIX lock does not stop a second
//! instance (POSIX locks belong to the process): the shell's `.open same.db`, `duckdb_open`
//! or Rust `Connection::open` get a second instance on the same file, and a checkpoint of
//! the old one afterwards would overwrite what the new one wrote.
//!
//! So the extension watches the file from LOAD on (inotify `IN_OPEN`). If anyone opened it
//! after the instance did (a `cp` in another process as much as a second instance here), or
//! the file was deleted or replaced, the old instance's view may be stale: it closes without
//! its shutdown checkpoint (its commits are in the WAL already), so it writes nothing. Only
//! while another instance of this process still has the file open is the old one kept, idle:
//! closing it would drop the process's POSIX lock that instance relies on. Otherwise the
//! hand-over swaps the process lock for an open-file-description (OFD) lock, which conflicts
//! with every POSIX lock, this process's included, so nobody can open the file while the old
//! instance checkpoints and closes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Watches one database file for opens by anybody but its first instance.
pub struct FileWatch {
    path: PathBuf,
    dev: u64,
    ino: u64,
    inotify: libc::c_int,
    /// Descriptors (of this process) that referred to the file at LOAD: the instance's own.
    own_fds: Vec<libc::c_int>,
    foreign_open_seen: bool,
}

// The descriptors are plain integers owned by this struct.
unsafe impl Send for FileWatch {}

/// What the release may do.
pub enum Outcome {
    /// Nobody else opened the file, and nobody can until `Handover` is dropped: release.
    Exclusive(Handover),
    /// Somebody else opened the file, or it was deleted or replaced, and no other descriptor
    /// of this process refers to it: the instance may close, but must not write the file
    /// again (no shutdown checkpoint).
    Stale,
    /// Another instance of this process still has the file open: closing this one would drop
    /// the process's POSIX lock it relies on, so this one is kept, idle, and never writes.
    Shared,
}

/// An exclusive OFD lock on the database file, held until drop.
pub struct Handover {
    fd: libc::c_int,
}

impl Drop for Handover {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

fn lock_req(kind: libc::c_int) -> libc::flock {
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl
}

impl FileWatch {
    /// Starts watching `path`; call while the instance has the file open (during LOAD).
    pub fn new(path: &Path) -> Option<FileWatch> {
        let meta = std::fs::metadata(path).ok()?;
        let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
        let inotify = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if inotify < 0 {
            return None;
        }
        if unsafe { libc::inotify_add_watch(inotify, c_path.as_ptr(), libc::IN_OPEN) } < 0 {
            unsafe { libc::close(inotify) };
            return None;
        }
        let own_fds = descriptors_on(meta.dev(), meta.ino());
        Some(FileWatch { path: path.to_path_buf(), dev: meta.dev(), ino: meta.ino(), inotify, own_fds, foreign_open_seen: false })
    }

    /// Reads pending inotify events; any open since the last call marks the file as shared.
    pub fn poll(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            let n = unsafe { libc::read(self.inotify, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n <= 0 {
                break;
            }
            self.foreign_open_seen = true;
        }
    }

    fn other_fds(&self, also_ours: Option<libc::c_int>) -> usize {
        descriptors_on(self.dev, self.ino)
            .into_iter()
            .filter(|fd| !self.own_fds.contains(fd) && Some(*fd) != also_ours)
            .count()
    }

    /// Decides, and prepares, how the instance may be released.
    pub fn begin_release(&mut self) -> Outcome {
        self.poll();
        if self.foreign_open_seen || self.other_fds(None) > 0 {
            return self.foreign();
        }
        let Ok(c_path) = CString::new(self.path.as_os_str().as_bytes()) else { return self.foreign() };
        let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            // deleted (or no longer ours to open): nobody can be using what the instance wrote
            return self.foreign();
        }
        // our own open raises one event: read it away
        let mut buf = [0u8; 4096];
        unsafe { libc::read(self.inotify, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_dev != self.dev || st.st_ino != self.ino {
            // another file now has the path: the instance's shutdown checkpoint would delete
            // that file's WAL by name
            unsafe { libc::close(fd) };
            return self.foreign();
        }
        unsafe {
            let mut unlock = lock_req(libc::F_UNLCK);
            libc::fcntl(fd, libc::F_SETLK, &mut unlock);
            let mut ofd = lock_req(libc::F_WRLCK);
            if libc::fcntl(fd, libc::F_OFD_SETLK, &mut ofd) != 0 {
                // another process took the file in that instant: it is theirs now
                libc::close(fd);
                return self.foreign();
            }
        }
        // from here on no new instance can lock the file; check nobody slipped in before
        self.poll();
        if self.foreign_open_seen || self.other_fds(Some(fd)) > 0 {
            unsafe {
                let mut unlock = lock_req(libc::F_UNLCK);
                libc::fcntl(fd, libc::F_OFD_SETLK, &mut unlock);
                let mut relock = lock_req(libc::F_WRLCK);
                libc::fcntl(fd, libc::F_SETLK, &mut relock);
            }
            return match self.foreign() {
                // the fd stays open: closing it would drop the process lock another instance relies on
                Outcome::Shared => Outcome::Shared,
                other => {
                    unsafe { libc::close(fd) };
                    other
                }
            };
        }
        Outcome::Exclusive(Handover { fd })
    }

    /// The file was opened by somebody else, deleted or replaced: kept if another descriptor
    /// of this process still refers to it, else closed without writing.
    fn foreign(&self) -> Outcome {
        if self.other_fds(None) > 0 {
            Outcome::Shared
        } else {
            Outcome::Stale
        }
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        unsafe { libc::close(self.inotify) };
    }
}

/// The open descriptors of this process that refer to the file (dev, ino).
fn descriptors_on(dev: u64, ino: u64) -> Vec<libc::c_int> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let fd: libc::c_int = e.file_name().to_str()?.parse().ok()?;
            let m = std::fs::metadata(e.path()).ok()?;
            (m.dev() == dev && m.ino() == ino).then_some(fd)
        })
        .collect()
}
