//! `repository.json`: the repository's own settings, beside its snapshot folders. Today one:
//! a lock of the repository to one granularity and scope (`snapshot_repository`), so every
//! snapshot of it covers the same objects and "deleted, or just not backed up?" never has two
//! answers. Written once (create-only, under the writer lock), with its own `format_version`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::repo::layout::Repo;
use crate::repo::manifest::{Scope, ScopeKind};

pub const CONFIG_FILE: &str = "repository.json";
/// The newest repository.json layout this build reads and writes.
pub const CONFIG_FORMAT_VERSION: u32 = 1;

/// How much one snapshot of a locked repository covers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Database,
    Schema,
    Table,
}

impl Granularity {
    pub fn parse(text: &str) -> Result<Granularity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "database" => Ok(Granularity::Database),
            "schema" => Ok(Granularity::Schema),
            "table" | "tables" => Ok(Granularity::Table),
            _ => Err(Error::Input(format!(
                "unknown granularity '{}': use 'database', 'schema' or 'table'",
                crate::repo::layout::printable(text)
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Granularity::Database => "database",
            Granularity::Schema => "schema",
            Granularity::Table => "table",
        }
    }

    /// Whether a snapshot scope of this kind has this granularity.
    pub fn fits(self, kind: ScopeKind) -> bool {
        matches!(
            (self, kind),
            (Granularity::Database, ScopeKind::Database)
                | (Granularity::Schema, ScopeKind::Schema)
                | (Granularity::Table, ScopeKind::Tables | ScopeKind::Pattern)
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RepositoryConfig {
    pub format_version: u32,
    pub granularity: Granularity,
    /// The locked scope, as snapshots record theirs: every manual snapshot's `scope` equals it.
    pub scope: Scope,
    /// RFC 3339, UTC.
    pub locked_at: String,
    pub locked_by: String,
}

impl RepositoryConfig {
    /// Refuses a manual snapshot whose scope is not the locked one, naming both.
    pub fn admits(&self, scope: &Scope, repository: &str) -> Result<()> {
        if *scope == self.scope {
            return Ok(());
        }
        let rank = |k: ScopeKind| match k {
            ScopeKind::Database => 2,
            ScopeKind::Schema => 1,
            ScopeKind::Tables | ScopeKind::Pattern => 0,
        };
        let how = match rank(scope.kind).cmp(&rank(self.scope.kind)) {
            std::cmp::Ordering::Greater => "broader than",
            std::cmp::Ordering::Less => "narrower than",
            std::cmp::Ordering::Equal => "not",
        };
        Err(Error::Input(format!(
            "the repository {repository} is locked to {} granularity, scope '{}' (snapshot_repository); '{}' is {how} that scope: CALL snapshot_create(NULL) snapshots the locked scope, or SET snapshot_directory or snapshot_project to another repository",
            self.granularity.name(),
            scope_text(&self.scope),
            scope_text(scope)
        )))
    }
}

/// A repository's granularity and scope as listings show them: both `unlocked` when it has no
/// lock.
pub fn shown(config: Option<&RepositoryConfig>) -> (String, String) {
    match config {
        Some(c) => (c.granularity.name().to_string(), scope_text(&c.scope)),
        None => ("unlocked".to_string(), "unlocked".to_string()),
    }
}

/// How a scope reads in messages and listings: `*`, `s.*`, `a, b`, the patterns; with
/// `exclude` after it.
pub fn scope_text(scope: &Scope) -> String {
    let base = match scope.kind {
        ScopeKind::Database => "*".to_string(),
        ScopeKind::Schema => format!("{}.*", scope.schema.as_deref().unwrap_or("?")),
        ScopeKind::Tables => scope.tables.join(", "),
        ScopeKind::Pattern => scope.patterns.join(", "),
    };
    if scope.exclude.is_empty() {
        base
    } else {
        format!("{base} exclude {}", scope.exclude.join(", "))
    }
}

/// The repository's settings; None when it has none (unlocked).
pub fn load(repo: &Repo) -> Result<Option<RepositoryConfig>> {
    repo.read_top_json(CONFIG_FILE, CONFIG_FORMAT_VERSION, "restore it from a backup or remove it to unlock the repository")
}

/// Writes the settings once; false when the repository already has some. The caller holds the
/// writer lock.
pub fn save_new(repo: &Repo, config: &RepositoryConfig) -> Result<bool> {
    let bytes = serde_json::to_vec_pretty(config).map_err(|e| Error::Internal(format!("repository.json: {e}")))?;
    repo.create_top(CONFIG_FILE, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let repo = Repo::new(d.path(), "p");
        assert_eq!(load(&repo).unwrap(), None);
        let config = RepositoryConfig {
            format_version: CONFIG_FORMAT_VERSION,
            granularity: Granularity::Table,
            scope: Scope { tables: vec!["main.orders".into()], ..Scope::tables() },
            locked_at: "2026-11-30T00:00:00Z".into(),
            locked_by: "me".into(),
        };
        assert!(save_new(&repo, &config).unwrap());
        assert!(!save_new(&repo, &RepositoryConfig { granularity: Granularity::Database, ..config.clone() }).unwrap());
        assert_eq!(load(&repo).unwrap(), Some(config));
        std::fs::write(d.path().join("p").join(CONFIG_FILE), br#"{"format_version": 9}"#).unwrap();
        assert!(load(&repo).unwrap_err().to_string().contains("newer than this extension reads"));
    }

    #[test]
    fn granularity_fits_scope_kinds() {
        assert!(Granularity::Table.fits(ScopeKind::Pattern) && Granularity::Table.fits(ScopeKind::Tables));
        assert!(!Granularity::Schema.fits(ScopeKind::Database) && Granularity::Database.fits(ScopeKind::Database));
        assert_eq!(Granularity::parse(" Schema ").unwrap(), Granularity::Schema);
        assert!(Granularity::parse("row").is_err());
    }
}
