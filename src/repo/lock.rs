//! The repository write lock: an exclusive `flock` on `<project>/.lock`, shared correctly
//! between threads (each holder opens its own descriptor) and processes. Writers wait a
//! bounded time, then fail with a clear error; readers never lock (publication is atomic).

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

pub struct RepoLock {
    _file: File,
}

impl RepoLock {
    pub fn acquire(path: &Path, timeout: Duration) -> Result<RepoLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::Unwritable { path: path.parent().unwrap_or(path).to_path_buf(), source: e })?;
        let start = Instant::now();
        loop {
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(RepoLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.raw_os_error() != Some(libc::EINTR) {
                return Err(Error::io(path, err));
            }
            if start.elapsed() >= timeout {
                return Err(Error::LockTimeout {
                    path: path.parent().unwrap_or(path).to_path_buf(),
                    secs: timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_times_out_then_succeeds() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".lock");
        let first = RepoLock::acquire(&p, Duration::from_secs(1)).unwrap();
        let err = RepoLock::acquire(&p, Duration::from_millis(50)).err().unwrap();
        assert!(matches!(err, Error::LockTimeout { .. }));
        drop(first);
        RepoLock::acquire(&p, Duration::from_millis(50)).unwrap();
    }
}
