//! The local cache of an object-store repository's data files, so DuckDB's Parquet reader
//! reads them at local speed: files are stored by content (their recorded SHA-256), admitted
//! only after their checksum matched, and evicted least recently used beyond
//! `snapshot_cache_size`. A file used in the last few minutes (a running query) or held by a
//! mount is never evicted. Snapshots being written to such a repository are staged here too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// Default `snapshot_cache_size`.
pub const DEFAULT_LIMIT: u64 = 4 << 30;
/// A file read this recently may be under a running query: never evicted.
const RECENT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq)]
pub struct Cache {
    pub dir: PathBuf,
    pub limit: u64,
}

static HELD: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

/// Keeps `path` from eviction until `release` (a mount reading it).
pub fn hold(path: &Path) {
    *HELD.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashMap::new).entry(path.to_path_buf()).or_default() += 1;
}

pub fn release(path: &Path) {
    let mut guard = HELD.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(map) = guard.as_mut() {
        if let Some(n) = map.get_mut(path) {
            *n -= 1;
            if *n == 0 {
                map.remove(path);
            }
        }
    }
}

fn held(path: &Path) -> bool {
    HELD.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|m| m.contains_key(path))
}

/// The default cache folder: `$XDG_CACHE_HOME/duckdb_snapshot`, else `~/.cache/duckdb_snapshot`.
pub fn default_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("duckdb_snapshot");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".cache").join("duckdb_snapshot");
    }
    std::env::temp_dir().join("duckdb_snapshot_cache")
}

/// `4GB`, `500 MB`, `1.5GiB`, `0`, `1048576` (bytes) as a number of bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad_size(text))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        _ => return Err(bad_size(text)),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(bad_size(text));
    }
    Ok((n * mult) as u64)
}

fn bad_size(text: &str) -> Error {
    Error::Input(format!("snapshot_cache_size must be a size such as '4GB' or '500MB', got '{text}'"))
}

impl Cache {
    pub fn new(dir: PathBuf, limit: u64) -> Cache {
        Cache { dir, limit }
    }

    fn objects(&self) -> PathBuf {
        self.dir.join("objects")
    }

    /// Where the file with this checksum lives once cached (named by content, so the same
    /// file in two repositories is cached once).
    pub fn object_path(&self, checksum: &str, file: &str) -> PathBuf {
        let hex: String = checksum.strip_prefix("sha256:").unwrap_or(checksum).chars().filter(|c| c.is_ascii_hexdigit()).collect();
        let ext = Path::new(file).extension().and_then(|e| e.to_str()).unwrap_or("bin");
        let hex = if hex.len() >= 16 { hex } else { crate::repo::layout::encode_component(file) };
        self.objects().join(format!("{hex}.{ext}"))
    }

    /// A fresh temporary path inside the cache (same file system as the objects).
    pub fn temp_path(&self, what: &str) -> Result<PathBuf> {
        let dir = self.objects();
        std::fs::create_dir_all(&dir).map_err(|e| self.unwritable(e))?;
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(dir.join(format!(".{what}.tmp-{}-{n}", std::process::id())))
    }

    /// The folder snapshots are written in before upload.
    pub fn staging_dir(&self) -> PathBuf {
        self.dir.join("staging")
    }

    pub fn unwritable(&self, e: std::io::Error) -> Error {
        Error::Input(format!(
            "cannot write to the snapshot cache {}: {e}; SET snapshot_cache_directory to a writable folder",
            self.dir.display()
        ))
    }

    /// Marks a cached file as just used.
    pub fn touch(path: &Path) {
        if let Ok(f) = std::fs::File::options().write(true).open(path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Moves a verified file into the cache under `target`, then trims the cache.
    pub fn admit(&self, from: &Path, target: &Path) -> Result<()> {
        std::fs::rename(from, target).map_err(|e| Error::io(target, e))?;
        self.trim(target);
        Ok(())
    }

    /// Evicts least recently used files until the cache fits its limit; `keep` and files
    /// in recent or held use stay.
    pub fn trim(&self, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(self.objects()) else { return };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total <= self.limit {
            return;
        }
        files.sort();
        let now = SystemTime::now();
        for (used, size, path) in files {
            if total <= self.limit {
                break;
            }
            let recent = now.duration_since(used).map(|d| d < RECENT).unwrap_or(true);
            if path == keep || recent || held(&path) {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= size;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GB").unwrap(), 4_000_000_000);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1GB").is_err());
    }

    #[test]
    fn eviction_spares_recent_and_held_files() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path().to_path_buf(), 10);
        let objects = d.path().join("objects");
        std::fs::create_dir_all(&objects).unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let mk = |name: &str, when: SystemTime| {
            let p = objects.join(name);
            std::fs::write(&p, [0u8; 8]).unwrap();
            std::fs::File::options().write(true).open(&p).unwrap().set_modified(when).unwrap();
            p
        };
        let a = mk("a.parquet", old);
        let b = mk("b.parquet", old);
        let fresh = mk("c.parquet", SystemTime::now());
        hold(&b);
        c.trim(&fresh);
        release(&b);
        assert!(!a.exists(), "the old unheld file goes");
        assert!(b.exists() && fresh.exists());
    }
}
