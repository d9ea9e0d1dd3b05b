//! Where things live in a snapshot repository, and the rules for names that become paths:
//! `<root>/<project>/<snapshot_id>/metadata.json` plus one Parquet file per table (ADR-004).
//! Every name that reaches the file system passes through `validate_id` or `encode_component`,
//! so no id or table name can escape the repository.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const METADATA_FILE: &str = "metadata.json";
/// Prefix of a snapshot folder still being written; never listed, removed by gc.
pub const TMP_PREFIX: &str = ".tmp-";
/// Prefix of a snapshot folder being deleted; never listed, removed by gc.
pub const DEL_PREFIX: &str = ".del-";
pub const LOCK_FILE: &str = ".lock";
/// Replaces metadata.json in a dropped snapshot's folder that later snapshots still
/// reference files of.
pub const RETIRED_FILE: &str = "retired.json";
pub const MAX_ID_LEN: usize = 128;
/// Longest encoded component kept verbatim; longer ones are shortened with a hash suffix.
const MAX_COMPONENT: usize = 180;

/// A snapshot id is 1-128 characters of `[A-Za-z0-9_.-]`, not `.`/`..`-like, not hidden.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidId { id: printable(id), reason });
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("it is longer than 128 characters");
    }
    if let Some(c) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return bad(if c == '/' || c == '\\' {
            "it contains a path separator"
        } else if c == '\0' {
            "it contains a NUL byte"
        } else {
            "it contains a character outside [A-Za-z0-9_.-]"
        });
    }
    if id.contains("..") {
        return bad("it contains '..'");
    }
    if id.starts_with('.') {
        return bad("it starts with '.'");
    }
    if id == crate::repo::config::CONFIG_FILE || id == crate::repo::schedule::SCHEDULES_FILE {
        return bad("it is the name of one of the repository's own files");
    }
    Ok(())
}

/// Shows a user-supplied string in an error message without control characters.
pub fn printable(s: &str) -> String {
    let cleaned: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if cleaned.chars().count() > 140 {
        cleaned.chars().take(137).collect::<String>() + "..."
    } else {
        cleaned
    }
}

/// Encodes any name as one safe path component: `[A-Za-z0-9_-]` stay, every other byte
/// (including `.`, `/`, `%`) becomes `%XX`. Injective, so two names never share a file;
/// very long names are cut and given a hash suffix to stay under file-name limits.
pub fn encode_component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    if out.len() > MAX_COMPONENT {
        let digest = Sha256::digest(name.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let mut cut = MAX_COMPONENT - 17;
        // never cut inside a %XX escape
        while out.as_bytes()[cut - 1] == b'%' || (cut >= 2 && out.as_bytes()[cut - 2] == b'%') {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('~');
        out.push_str(&hex);
    }
    out
}

/// The Parquet file name of a table inside its snapshot folder: `<schema>.<table>.parquet`,
/// prefixed by `<catalog>.` when the table is not in the snapshot's own database.
pub fn table_file_name(catalog: Option<&str>, schema: &str, table: &str) -> String {
    let mut name = String::new();
    if let Some(c) = catalog {
        name.push_str(&encode_component(c));
        name.push('.');
    }
    name.push_str(&encode_component(schema));
    name.push('.');
    name.push_str(&encode_component(table));
    name.push_str(".parquet");
    name
}

/// A file name recorded in metadata must be a plain name inside the snapshot folder.
pub fn check_file_name(file: &str) -> bool {
    !file.is_empty()
        && file != "."
        && file != ".."
        && !file.contains('/')
        && !file.contains('\\')
        && !file.contains('\0')
        && file != METADATA_FILE
}

/// The repository of one project: a local folder, or a prefix in an S3-compatible bucket
/// (`remote`), whose storage operations live in `repo::store`.
#[derive(Debug, Clone)]
pub struct Repo {
    /// `snapshot_directory` as resolved (a path, or `s3://bucket/prefix`).
    pub root: PathBuf,
    pub project_id: String,
    /// The project folder (for a bucket: its `s3://` URL, shown in messages only).
    pub dir: PathBuf,
    pub(crate) remote: Option<std::sync::Arc<crate::repo::store::RemoteRepo>>,
}

impl Repo {
    pub fn new(root: impl Into<PathBuf>, project_id: &str) -> Repo {
        let root = root.into();
        let dir = root.join(encode_component(project_id));
        Repo { root, project_id: project_id.to_string(), dir, remote: None }
    }

    /// A local project folder found under `root` (its folder name stands for the project id
    /// until a manifest names it).
    pub fn at(root: PathBuf, folder_name: &str, dir: PathBuf) -> Repo {
        Repo { root, project_id: folder_name.to_string(), dir, remote: None }
    }

    /// A local snapshot folder (meaningless for a bucket: use the store operations).
    pub fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn metadata_path(&self, id: &str) -> PathBuf {
        self.snapshot_dir(id).join(METADATA_FILE)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }
}

/// Absolute form of a path, without touching the file system.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["snap_20241211_143022", "a", "before-refactor.v2", &"x".repeat(128)] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "a/b", "a\\b", "..", ".", ".hidden", "a..b", "a b", "é", "a\0b", "x'y", &"x".repeat(129)] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encoding_is_safe_and_injective() {
        assert_eq!(encode_component("in_c_customers"), "in_c_customers");
        assert_eq!(encode_component("../x"), "%2E%2E%2Fx");
        assert_eq!(encode_component("a/b"), "a%2Fb");
        assert_eq!(encode_component("a.b"), "a%2Eb");
        assert_ne!(encode_component("a%2Eb"), encode_component("a.b"));
        assert_eq!(table_file_name(None, "in_c_customers", "customers"), "in_c_customers.customers.parquet");
        let long = "é".repeat(200);
        let enc = encode_component(&long);
        assert!(enc.len() <= 180, "{}", enc.len());
        assert!(enc.chars().all(|c| c.is_ascii_alphanumeric() || "%~_-".contains(c)));
        assert_ne!(enc, encode_component(&format!("{long}x")));
        assert!(check_file_name(&table_file_name(None, "../..", "/etc/passwd")));
    }
}
