//! The snapshot engine: create, list, restore and drop, in plain Rust over the `Sql` trait
//! and the on-disk repository. The SQL functions are thin adapters over these modules.

pub mod catalog;
pub mod copy;
pub mod create;
pub mod drop;
pub mod export;
pub mod fingerprint;
pub mod govern;
pub mod incremental;
pub mod layers;
pub mod objects;
pub mod pending;
pub mod point;
pub mod prune;
pub mod restore;
pub mod schedule;
pub mod scope;
pub mod source_stamp;
pub mod survivors;
pub mod sql;
pub mod travel;
pub mod types;
pub mod undrop;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::sql::Sql;
use crate::error::Result;
use crate::repo::layout::Repo;

/// The settings in force for one call, read from the caller's connection.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `snapshot_directory`; empty means the default.
    pub directory: Option<String>,
    /// `snapshot_project`; empty means the database name.
    pub project: Option<String>,
    /// `snapshot_branch`; empty means `main`.
    pub branch: Option<String>,
    /// The caller's `search_path` (set by `USE db`): its first entry names the caller's
    /// current database and schema, which the extension's own connection does not share.
    pub search_path: Option<String>,
    /// `snapshot_lock_timeout` in seconds; empty means 30.
    pub lock_timeout: Option<String>,
    /// The caller's `TimeZone`, for TIMESTAMP and DATE arguments and times given as text.
    pub timezone: Option<String>,
    /// The instance's default database, when known (saves a query per call).
    pub default_database: Option<String>,
    /// `snapshot_s3_*`: how to reach a repository in a bucket.
    pub s3: crate::repo::remote::S3Settings,
    /// `snapshot_cache_directory` and `snapshot_cache_size` (bucket repositories).
    pub cache_directory: Option<String>,
    pub cache_size: Option<String>,
}

/// How long a writer waits for the repository lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// What every engine call works against.
pub struct Ctx<'a> {
    pub db: &'a dyn Sql,
    /// The caller's current database (catalog).
    pub database: String,
    /// The caller's default schema, for unqualified table names.
    pub schema: String,
    pub repo: Repo,
    pub branch: String,
    pub lock_timeout: Duration,
    /// The caller's time zone (empty: UTC).
    pub timezone: String,
    /// How to reach buckets, and the cache their files are read through (for a second
    /// repository named in a call, as `snapshot_copy` does).
    pub s3: crate::repo::remote::S3Settings,
    pub cache: crate::repo::cache::Cache,
}

impl<'a> Ctx<'a> {
    /// Takes the repository's writer lock (bounded wait).
    pub fn lock(&self) -> Result<crate::repo::lock::RepoLock> {
        self.repo.lock(self.lock_timeout)
    }

    /// Another repository (a folder or `s3://bucket/prefix`) for the same project.
    pub fn open_repo(&self, root: &str) -> Result<Repo> {
        Repo::open(root.trim(), &self.repo.project_id, &self.s3, self.cache.clone())
    }

    /// Resolves settings and defaults against the live database.
    pub fn new(db: &'a dyn Sql, settings: &Settings) -> Result<Ctx<'a>> {
        let (database, schema) = caller_database(db, settings.search_path.as_deref(), settings.default_database.as_deref())?;
        let root = match settings.directory.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) if d.starts_with("s3://") => PathBuf::from(d),
            Some(d) => PathBuf::from(d),
            None => match catalog::database_path(db, &database)? {
                Some(file) => {
                    let file = PathBuf::from(file);
                    file.parent().map(|p| p.join("snapshots")).unwrap_or_else(|| PathBuf::from("snapshots"))
                }
                None => PathBuf::from("snapshots"),
            },
        };
        let project = settings.project.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| database.clone());
        let branch = settings.branch.clone().filter(|b| !b.is_empty()).unwrap_or_else(|| "main".into());
        let lock_timeout = match settings.lock_timeout.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => DEFAULT_LOCK_TIMEOUT,
            Some(t) => Duration::from_secs_f64(t.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
                crate::error::Error::Input(format!("snapshot_lock_timeout must be a number of seconds, got '{t}'"))
            })?),
        };
        let timezone = settings.timezone.clone().unwrap_or_default();
        let cache = crate::repo::cache::Cache::new(
            settings.cache_directory.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(PathBuf::from).unwrap_or_else(crate::repo::cache::default_dir),
            match settings.cache_size.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
                Some(s) => crate::repo::cache::parse_size(s)?,
                None => crate::repo::cache::DEFAULT_LIMIT,
            },
        );
        let repo = Repo::open(&root.to_string_lossy(), &project, &settings.s3, cache.clone())?;
        Ok(Ctx { db, database, schema, repo, branch, lock_timeout, timezone, s3: settings.s3.clone(), cache })
    }
}

/// The caller's current database and schema: the first entry of their search path when it
/// names an attached database, else the instance's default database and `main`.
fn caller_database(db: &dyn Sql, search_path: Option<&str>, default: Option<&str>) -> Result<(String, String)> {
    let default_database = || -> Result<String> {
        match default {
            Some(d) => Ok(d.to_string()),
            None => catalog::current_database(db),
        }
    };
    let first = search_path.and_then(|p| p.split(',').next()).map(str::trim).filter(|p| !p.is_empty());
    if let Some(parts) = first.and_then(sql::split_qualified) {
        let attached = |name: &str| -> Result<bool> {
            Ok(db
                .query(&format!("SELECT count(*) FROM duckdb_databases() WHERE database_name = {}", sql::literal(name)))?
                .scalar()
                == Some("1"))
        };
        match parts.as_slice() {
            [cat, schema] if attached(cat)? => return Ok((cat.clone(), schema.clone())),
            [cat] if attached(cat)? => return Ok((cat.clone(), "main".into())),
            [schema] => return Ok((default_database()?, schema.clone())),
            _ => {}
        }
    }
    Ok((default_database()?, "main".into()))
}

/// With `SNAPSHOT_TRACE` set in the environment, prints how long a step took to stderr
/// (for profiling; see bench/README.md).
pub fn trace(step: &str, since: std::time::Instant) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("SNAPSHOT_TRACE").is_some()) {
        eprintln!("snapshot: {step}: {:.3} s", since.elapsed().as_secs_f64());
    }
}

pub use crate::repo::manifest::now_micros;

/// The operating-system user running DuckDB.
pub fn os_user() -> String {
    for var in ["USER", "LOGNAME", "USERNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return v;
            }
        }
    }
    unsafe {
        let uid = libc::getuid();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) == 0 && !result.is_null() {
            return std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
        }
        format!("uid {uid}")
    }
}
