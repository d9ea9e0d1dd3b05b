//! The extension's one error type. Every message is a single lower-case line that names
//! the object involved and, where there is one, says what to do about it.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("snapshot '{id}' not found in {repo}; list the snapshots with FROM snapshots()")]
    SnapshotNotFound { id: String, repo: PathBuf },

    #[error("table {name} does not exist; check the name with FROM duckdb_tables()")]
    TableNotFound { name: String },

    #[error("schema {name} does not exist or has no tables in committed data; check the name with FROM duckdb_schemas() (one made in an open transaction counts after its COMMIT)")]
    SchemaNotFound { name: String },

    #[error("table {table} is not in snapshot '{id}'; list its tables with FROM snapshot_tables('{id}')")]
    TableNotInSnapshot { table: String, id: String },

    #[error("invalid snapshot id '{id}': {reason}; use 1-128 characters from [A-Za-z0-9_.-]")]
    InvalidId { id: String, reason: &'static str },

    #[error("snapshot '{id}' already exists in {repo}; choose another id or drop it with CALL snapshot_drop('{id}')")]
    DuplicateId { id: String, repo: PathBuf },

    #[error("cannot write to snapshot directory {path}: {source}; set snapshot_directory to a writable folder")]
    Unwritable { path: PathBuf, source: std::io::Error },

    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("data file {file} of snapshot '{id}' is missing; the snapshot cannot be used (check it with FROM snapshot_tables('{id}'))")]
    MissingFile { id: String, file: String },

    #[error("data file {file} of snapshot '{id}' is corrupt ({detail}); nothing was changed")]
    CorruptFile { id: String, file: String, detail: String },

    #[error("metadata of snapshot '{id}' is unreadable ({detail}): {path}")]
    BadMetadata { id: String, path: PathBuf, detail: String },

    #[error("snapshot '{id}' has format_version {found}, newer than this extension supports ({supported}); upgrade the snapshot extension")]
    NewerFormat { id: String, found: u32, supported: u32 },

    #[error("snapshot repository {path} is locked by another writer; gave up after {secs} s, try again later")]
    LockTimeout { path: PathBuf, secs: u64 },

    /// An object-store operation that failed after its retries.
    #[error("{action} {url} failed: {why}; {todo}")]
    Remote { action: String, url: String, why: String, todo: String },

    #[error("{0}")]
    Input(String),

    #[error("{0}")]
    Sql(String),

    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }

    /// The message as DuckDB should show it: one line, never empty.
    pub fn one_line(&self) -> String {
        let text = self.to_string();
        let line = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            "unknown error".to_string()
        } else {
            line
        }
    }
}

/// Prefixes an error with the SQL function that raised it, so the user sees where it came from.
pub fn in_function(function: &str, err: Error) -> Box<dyn std::error::Error> {
    format!("{function}: {}", err.one_line()).into()
}
