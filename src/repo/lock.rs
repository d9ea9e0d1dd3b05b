//! The repository write lock. Local: an exclusive `flock` on `<project>/.lock`, shared
//! correctly between threads (each holder opens its own descriptor) and processes. Bucket:
//! an object `<project>/.lock` created with a conditional PUT, carrying its owner and a
//! lease that a thread renews (If-Match) while the operation runs; a lock whose lease ran
//! out (its writer died) is taken over, and a writer that lost its lock publishes nothing.
//! Writers wait a bounded time, then fail with a clear error; readers never lock
//! (publication is atomic).

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::repo::remote::Remote;

pub struct RepoLock {
    _file: Option<File>,
    _object: Option<ObjectLock>,
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
                return Ok(RepoLock { _file: Some(file), _object: None });
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

/// How long a bucket lock's lease lasts without renewal (SNAPSHOT_S3_LOCK_LEASE overrides,
/// for tests of a dead writer's lock).
fn lease() -> Duration {
    std::env::var("SNAPSHOT_S3_LOCK_LEASE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(20))
}

/// Locks of this process (by repository) whose lease was lost to another writer.
static LOST: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Fails when this process's bucket lock on `repo` was taken over (its lease ran out).
pub fn ensure_held(repo: &Path) -> Result<()> {
    if LOST.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|s| s.contains(repo)) {
        return Err(Error::Input(format!(
            "lost the lock of snapshot repository {} (its lease ran out while this operation ran); nothing was published, try again",
            repo.display()
        )));
    }
    Ok(())
}

struct ObjectLock {
    remote: Remote,
    rel: String,
    owner: String,
    stop: Arc<(Mutex<bool>, Condvar)>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

fn lock_body(owner: &str, lease: Duration) -> Vec<u8> {
    let expires = crate::repo::manifest::now_micros() + lease.as_micros() as i64;
    serde_json::json!({
        "owner": owner,
        "host": hostname(),
        "pid": std::process::id(),
        "expires_at": crate::repo::manifest::format_timestamp(expires),
        "expires_at_micros": expires,
    })
    .to_string()
    .into_bytes()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

impl RepoLock {
    /// Takes the bucket lock object `rel` of `remote` (the repository shown as `repo`).
    pub fn acquire_object(remote: &Remote, rel: &str, repo: &Path, timeout: Duration) -> Result<RepoLock> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let owner = format!(
            "{}:{}:{}:{}",
            hostname(),
            std::process::id(),
            crate::repo::manifest::now_micros(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let lease = lease();
        let start = Instant::now();
        let etag = loop {
            if let Some(etag) = remote.put_mode(rel, lock_body(&owner, lease), object_store::PutMode::Create)? {
                break etag;
            }
            // held: by a live writer (wait), or by one whose lease ran out (take it over)
            if let Some((bytes, Some(tag))) = remote.get_versioned(rel)? {
                let expires = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("expires_at_micros").and_then(|e| e.as_i64()))
                    .unwrap_or(0);
                if expires < crate::repo::manifest::now_micros() {
                    if let Some(etag) = remote.put_if_match(rel, lock_body(&owner, lease), &tag)? {
                        break etag;
                    }
                }
            }
            if start.elapsed() >= timeout {
                return Err(Error::LockTimeout { path: repo.to_path_buf(), secs: timeout.as_secs() });
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Some(set) = LOST.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            set.remove(repo);
        }
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let renewer = {
            let remote = remote.at(&remote.base);
            let (rel, owner, stop, repo) = (rel.to_string(), owner.clone(), stop.clone(), repo.to_path_buf());
            std::thread::Builder::new()
                .name("snapshot-lock".into())
                .spawn(move || {
                    let mut etag = etag;
                    loop {
                        let (flag, cv) = &*stop;
                        let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
                        let (guard, _) = cv.wait_timeout_while(guard, lease / 3, |s| !*s).unwrap_or_else(|p| p.into_inner());
                        if *guard {
                            return;
                        }
                        drop(guard);
                        let renewed = match &etag {
                            Some(tag) => remote.put_if_match(&rel, lock_body(&owner, lease), tag),
                            None => Ok(None),
                        };
                        match renewed {
                            Ok(Some(tag)) => etag = tag,
                            // taken over: whatever this writer does next must not publish
                            Ok(None) => {
                                LOST.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashSet::new).insert(repo.clone());
                                return;
                            }
                            // a failed renewal is retried at the next tick (the lease has slack)
                            Err(_) => {}
                        }
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start the lock renewal thread: {e}")))?
        };
        Ok(RepoLock {
            _file: None,
            _object: Some(ObjectLock { remote: remote.at(&remote.base), rel: rel.to_string(), owner, stop, renewer: Some(renewer) }),
        })
    }
}

impl Drop for ObjectLock {
    fn drop(&mut self) {
        {
            let (flag, cv) = &*self.stop;
            *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        // release only a lock that is still ours
        if let Ok(Some((bytes, _))) = self.remote.get_versioned(&self.rel) {
            let ours = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("owner").and_then(|o| o.as_str()).map(|o| o == self.owner))
                .unwrap_or(false);
            if ours {
                let _ = self.remote.delete(std::slice::from_ref(&self.rel));
            }
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
