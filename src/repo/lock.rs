//! The repository write lock. Local: an exclusive `flock` on `<project>/.lock`, shared
//! correctly between threads (each holder opens its own descriptor) and processes. Bucket:
//! an object `<project>/.lock` created with a conditional PUT, carrying its owner and a
//! lease that a thread renews (If-Match) while the operation runs; a lock whose lease ran
//! out (its writer died) is taken over, and a writer that lost its lock publishes nothing.
//! Writers wait a bounded time, then fail with a clear error; readers never lock
//! (publication is atomic).

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::collections::HashMap;
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

/// The bucket locks this process holds, by repository.
static HELD: Mutex<Option<HashMap<PathBuf, Arc<LeaseState>>>> = Mutex::new(None);

/// One held bucket lock: what renewing it takes, shared by the renewal thread and the
/// writer's own check before it publishes.
struct LeaseState {
    remote: Remote,
    rel: String,
    owner: String,
    lease: Duration,
    /// The lock object's ETag as last written by us; None once lost.
    etag: Mutex<Option<String>>,
}

impl LeaseState {
    /// Renews the lease now (If-Match on our last ETag). Ok(false): another writer took it.
    fn renew(&self) -> Result<bool> {
        let mut etag = self.etag.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tag) = etag.clone() else { return Ok(false) };
        match self.remote.put_if_match(&self.rel, lock_body(&self.owner, self.lease), &tag)? {
            Some(Some(new)) => {
                *etag = Some(new);
                Ok(true)
            }
            // a store that returns no ETag: keep the lease by content, as long as it is ours
            Some(None) => Ok(true),
            None => {
                *etag = None;
                Ok(false)
            }
        }
    }
}

/// Before a writer publishes in a bucket: renews its lock now, and fails when it is no
/// longer ours (its lease ran out while the writer was stalled, and another writer took
/// over — which may have removed files the writer uploaded). A full lease is left for the
/// publication itself.
pub fn ensure_held(repo: &Path) -> Result<()> {
    let state = HELD.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|m| m.get(repo).cloned());
    let Some(state) = state else { return Ok(()) };
    if state.renew()? {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "lost the lock of snapshot repository {} (its lease ran out while this operation was stalled and another writer took over); nothing was published, try again",
            repo.display()
        )))
    }
}

/// A failed upload's error, or — when the reason is that another writer took this
/// process's lock over (and aborted the upload) — that.
pub fn explain(repo: &Path, failed: Error) -> Error {
    let state = HELD.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|m| m.get(repo).cloned());
    match state.map(|s| s.renew()) {
        Some(Ok(false)) => ensure_held(repo).err().unwrap_or(failed),
        _ => failed,
    }
}

struct ObjectLock {
    state: Arc<LeaseState>,
    repo: PathBuf,
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
        let state = Arc::new(LeaseState {
            remote: remote.at(&remote.base),
            rel: rel.to_string(),
            owner,
            lease,
            etag: Mutex::new(Some(etag.unwrap_or_default())),
        });
        HELD.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashMap::new).insert(repo.to_path_buf(), state.clone());
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let renewer = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("snapshot-lock".into())
                .spawn(move || loop {
                    let (flag, cv) = &*stop;
                    let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
                    let (guard, _) = cv.wait_timeout_while(guard, state.lease / 3, |s| !*s).unwrap_or_else(|p| p.into_inner());
                    if *guard {
                        return;
                    }
                    drop(guard);
                    match state.renew() {
                        Ok(true) => {}
                        // taken over: ensure_held refuses to publish from now on
                        Ok(false) => return,
                        // a failed renewal is retried at the next tick (the lease has slack)
                        Err(_) => {}
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start the lock renewal thread: {e}")))?
        };
        Ok(RepoLock { _file: None, _object: Some(ObjectLock { state, repo: repo.to_path_buf(), stop, renewer: Some(renewer) }) })
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
        if let Some(m) = HELD.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            if m.get(&self.repo).is_some_and(|s| Arc::ptr_eq(s, &self.state)) {
                m.remove(&self.repo);
            }
        }
        // release only a lock that is still ours
        let s = &self.state;
        if let Ok(Some((bytes, _))) = s.remote.get_versioned(&s.rel) {
            let ours = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("owner").and_then(|o| o.as_str()).map(|o| o == s.owner))
                .unwrap_or(false);
            if ours {
                let _ = s.remote.delete(std::slice::from_ref(&s.rel));
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
