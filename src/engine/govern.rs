//! Repository governance: locking a repository to one granularity and scope
//! (`snapshot_repository`), and describing repositories (`snapshot_describe`). The lock itself
//! lives in `repo::config` (repository.json); `create` holds manual snapshots to it.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::create::{recorded_scope, resolve_targets};
use crate::engine::scope::ScopeSpec;
use crate::engine::{now_micros, os_user, Ctx};
use crate::error::{Error, Result};
use crate::repo::config::{self, scope_text, Granularity, RepositoryConfig, CONFIG_FORMAT_VERSION};
use crate::repo::layout::{Repo, LOCK_FILE};
use crate::repo::manifest::{format_timestamp, SnapshotKind};

/// What `snapshot_repository()` shows: the lock of the current repository, if any.
#[derive(Debug, Clone)]
pub struct RepositoryInfo {
    pub project: String,
    pub path: String,
    pub config: Option<RepositoryConfig>,
}

/// The current repository's settings.
pub fn show(ctx: &Ctx) -> Result<RepositoryInfo> {
    Ok(RepositoryInfo { project: ctx.repo.project_id.clone(), path: ctx.repo.dir.display().to_string(), config: config::load(&ctx.repo)? })
}

/// Locks the current repository to `granularity` and `scope` (None: the whole database for
/// 'database' granularity). Every manual snapshot already in it must have exactly that scope.
/// Locking again to the same settings changes nothing; to others is refused.
pub fn lock(ctx: &Ctx, granularity: Granularity, scope: Option<ScopeSpec>) -> Result<RepositoryInfo> {
    let spec = match scope {
        Some(s) => s,
        None if granularity == Granularity::Database => ScopeSpec::everything(),
        None => {
            return Err(Error::Input(format!(
                "granularity '{}' needs scope := ({})",
                granularity.name(),
                if granularity == Granularity::Schema { "'schema_name.*'" } else { "a table, a list of tables or a pattern" }
            )))
        }
    };
    let (targets, scope) = resolve_targets(ctx, &spec)?;
    let scope = recorded_scope(ctx, &targets, scope);
    if !granularity.fits(scope.kind) {
        return Err(Error::Input(format!(
            "scope '{}' is not of {} granularity; give {}",
            scope_text(&scope),
            granularity.name(),
            match granularity {
                Granularity::Database => "scope := '*' (or none)",
                Granularity::Schema => "scope := 'schema_name.*'",
                Granularity::Table => "scope := a table, a list of tables or a table pattern",
            }
        )));
    }
    ctx.repo.ensure()?;
    let _lock = ctx.lock()?;
    let path = ctx.repo.dir.display().to_string();
    if let Some(existing) = config::load(&ctx.repo)? {
        if existing.granularity == granularity && existing.scope == scope {
            return Ok(RepositoryInfo { project: ctx.repo.project_id.clone(), path, config: Some(existing) });
        }
        return Err(Error::Input(format!(
            "the repository {path} is already locked to {} granularity, scope '{}' (since {}); a lock is set once: use another snapshot_directory or snapshot_project for a different scope",
            existing.granularity.name(),
            scope_text(&existing.scope),
            existing.locked_at
        )));
    }
    for m in crate::repo::list::manifests(&ctx.repo)? {
        if m.kind == SnapshotKind::Manual && m.scope != scope {
            return Err(Error::Input(format!(
                "snapshot {} of the repository {path} has scope '{}', not '{}'; a repository is locked only when every snapshot fits the lock (drop it, or lock another repository)",
                m.snapshot_id,
                scope_text(&m.scope),
                scope_text(&scope)
            )));
        }
    }
    let config = RepositoryConfig {
        format_version: CONFIG_FORMAT_VERSION,
        granularity,
        scope,
        locked_at: format_timestamp(now_micros()),
        locked_by: os_user(),
    };
    if !config::save_new(&ctx.repo, &config)? {
        return Err(Error::Input(format!("the repository {path} was locked by another process just now; FROM snapshot_repository() shows how")));
    }
    Ok(RepositoryInfo { project: ctx.repo.project_id.clone(), path, config: Some(config) })
}

/// One repository as `snapshot_describe()` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub project: String,
    pub path: String,
    /// `database`, `schema`, `table`, or `unlocked`.
    pub granularity: String,
    /// The locked scope, or `unlocked`.
    pub scope: String,
    pub snapshot_count: u64,
    /// Distinct tables over all snapshots.
    pub table_count: u64,
    /// What the repository's files occupy (every file under it but the lock file).
    pub bytes_stored: u64,
    /// What the snapshots read: the sum of their `size_bytes` (what full copies would hold).
    pub bytes_referenced: u64,
    pub oldest: Option<(String, i64)>,
    pub newest: Option<(String, i64)>,
    /// Tables whose newest mention records them as deleted in the source.
    pub deleted_in_source: Vec<String>,
    /// The manifests' format versions, ascending.
    pub format_versions: Vec<String>,
}

/// Times show to the second, as `snapshots()` shows `created_at`.
pub fn to_second(micros: i64) -> i64 {
    micros - micros.rem_euclid(1_000_000)
}

/// Every repository under the current `snapshot_directory` (every project folder of a local
/// one; for a bucket, the current project's), the current one first.
pub fn describe(ctx: &Ctx) -> Result<Vec<Description>> {
    let mut repos = vec![ctx.repo.clone()];
    if !ctx.repo.is_remote() {
        if let Ok(entries) = std::fs::read_dir(&ctx.repo.root) {
            let mut others: Vec<Repo> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir() && e.path() != ctx.repo.dir && !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| Repo::at(ctx.repo.root.clone(), &e.file_name().to_string_lossy(), e.path()))
                .collect();
            others.sort_by(|a, b| a.dir.cmp(&b.dir));
            repos.extend(others);
        }
    }
    let mut out = Vec::new();
    for (i, repo) in repos.iter().enumerate() {
        let manifests = crate::repo::list::manifests(repo)?;
        let locked = config::load(repo)?;
        // a folder under the root that holds neither snapshots nor settings is not a repository
        if i > 0 && manifests.is_empty() && locked.is_none() {
            continue;
        }
        let project = manifests.first().map(|m| m.project_id.clone()).unwrap_or_else(|| repo.project_id.clone());
        let mut tables = BTreeSet::new();
        // newest mention of each table: (deleted?)
        let mut newest_state: BTreeMap<(String, String, String), bool> = BTreeMap::new();
        let mut versions = BTreeSet::new();
        let mut referenced = 0u64;
        for m in &manifests {
            versions.insert(m.format_version);
            referenced += m.size_bytes();
            for t in &m.tables {
                let key = (t.catalog.clone(), t.bucket.clone(), t.table.clone());
                tables.insert(key.clone());
                newest_state.entry(key).or_insert(false);
            }
            for d in &m.deleted_in_source {
                newest_state.entry((d.catalog.clone(), d.bucket.clone(), d.table.clone())).or_insert(true);
            }
        }
        let stored: u64 = repo
            .entries()?
            .iter()
            .filter(|e| e.name != LOCK_FILE)
            .flat_map(|e| e.files.iter().map(|(_, n)| *n))
            .sum();
        let deleted = newest_state
            .into_iter()
            .filter(|(_, deleted)| *deleted)
            .map(|((_, schema, table), _)| format!("{schema}.{table}"))
            .collect();
        let (granularity, scope) = config::shown(locked.as_ref());
        out.push(Description {
            project,
            path: repo.dir.display().to_string(),
            granularity,
            scope,
            snapshot_count: manifests.len() as u64,
            table_count: tables.len() as u64,
            bytes_stored: stored,
            bytes_referenced: referenced,
            oldest: manifests.last().map(|m| (m.snapshot_id.clone(), to_second(m.created_at_micros()))),
            newest: manifests.first().map(|m| (m.snapshot_id.clone(), to_second(m.created_at_micros()))),
            deleted_in_source: deleted,
            format_versions: versions.into_iter().map(|v| v.to_string()).collect(),
        });
    }
    Ok(out)
}
