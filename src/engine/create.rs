//! `snapshot_create`: copies the requested tables to ZSTD Parquet in one read transaction
//! (so a multi-table snapshot is consistent), writes metadata.json, and publishes the
//! snapshot folder atomically. A failure at any point removes the unpublished folder.

use std::fs;
use std::path::Path;

use crate::engine::catalog::{self, TableRef};
use crate::engine::scope::{ScopeSpec, Selector, Shape};
use crate::engine::sql::ident;
use crate::engine::verify::file_checksum;
use crate::engine::{now_micros, os_user, Ctx};
use crate::error::{Error, Result};
use crate::repo::layout::{table_file_name, validate_id, METADATA_FILE};
use crate::repo::manifest::{format_timestamp, id_stamp, FileRef, Manifest, Scope, ScopeKind, SnapshotKind, TableEntry, TableSchema, TableStatus, FORMAT_VERSION};
use crate::repo::publish::{sync_file, write_atomic};

#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// What to snapshot (default: the whole database).
    pub scope: ScopeSpec,
    pub id: Option<String>,
    pub description: Option<String>,
    pub created_by: Option<String>,
    pub kind: SnapshotKind,
    /// Prefix of generated ids (`snap`, `auto_predrop`, ...).
    pub id_prefix: &'static str,
    /// Objects to record instead of capturing them by scope (backups before a restore).
    pub objects: Option<Vec<crate::repo::manifest::DbObject>>,
    /// `Some(false)`: full, self-contained copies. Default: store only what changed since
    /// the newest snapshot that has each table.
    pub incremental: Option<bool>,
    /// The scope was not given (NULL): on a locked repository, its locked scope.
    pub default_scope: bool,
    /// Store only these columns of each table (`columns :=`); None: all.
    pub columns: Option<Vec<String>>,
    /// The schedule taking it: generated ids start with its name, and the manifest names it.
    pub schedule: Option<String>,
}

/// The share of a gone table's blocks a new table must hold to be taken for it renamed.
const RENAME_SHARE: f64 = 0.5;

/// A stored table's name as `renamed_from` records it: `schema.table`, with its database
/// when that is not the current one.
fn recorded_name(e: &TableEntry, database: &str) -> String {
    let name = format!("{}.{}", catalog::display_part(&e.bucket), catalog::display_part(&e.table));
    if e.catalog == database {
        name
    } else {
        format!("{}.{name}", catalog::display_part(&e.catalog))
    }
}

/// Whether renamed table `t` was `e` before.
fn renamed_is(t: &TableEntry, e: &TableEntry, database: &str) -> bool {
    t.renamed_from.as_deref() == Some(recorded_name(e, database).as_str())
}

/// Which live tables a scope covers, and the scope recorded for it.
pub fn resolve_targets(ctx: &Ctx, spec: &ScopeSpec) -> Result<(Vec<TableRef>, Scope)> {
    let not_excluded = |t: &TableRef| !spec.excluded(&ctx.database, &ctx.schema, &t.catalog, &t.schema, &t.table);
    let exclude = spec.exclude_texts();
    let (tables, scope) = match spec.shape() {
        Shape::Database => {
            let tables = catalog::all_tables(ctx.db, &ctx.database)?;
            // a database with nothing at all is most likely the wrong one
            if tables.is_empty() && crate::engine::objects::capture(ctx.db, &ctx.database, None)?.is_empty() {
                return Err(Error::Input(format!(
                    "database {} is empty: no tables, views, macros, types or schemas to snapshot",
                    catalog::display_part(&ctx.database)
                )));
            }
            (tables, Scope { kind: ScopeKind::Database, schema: None, exclude, ..Scope::tables() })
        }
        Shape::Schema { catalog: cat, schema } => {
            let qualified = match &cat {
                Some(c) => format!("{}.{}", ident(c), ident(&schema)),
                None => ident(&schema),
            };
            let tables = catalog::schema_tables(ctx.db, &ctx.database, &qualified)?;
            let name = tables.first().map(|t| t.schema.clone());
            (tables, Scope { kind: ScopeKind::Schema, schema: name, exclude, ..Scope::tables() })
        }
        shape => {
            let mut tables: Vec<TableRef> = Vec::new();
            for sel in &spec.selectors {
                match sel {
                    Selector::Table(name) => tables.push(catalog::resolve_table_or_hint(ctx.db, &ctx.database, &ctx.schema, name)?),
                    Selector::Glob { catalog: cat, .. } => {
                        // the database part names one attached database, or matches several
                        let databases = match cat {
                            None => vec![ctx.database.clone()],
                            Some(c) => catalog::databases(ctx.db)?.into_iter().filter(|d| c.matches(d)).collect(),
                        };
                        let mut found: Vec<TableRef> = Vec::new();
                        for db_name in &databases {
                            found.extend(
                                catalog::all_tables(ctx.db, db_name)?
                                    .into_iter()
                                    .filter(|t| sel.covers(&ctx.database, &ctx.schema, &t.catalog, &t.schema, &t.table)),
                            );
                        }
                        if found.is_empty() {
                            return Err(Error::Input(format!(
                                "no table matches '{}'; list the tables with FROM duckdb_tables()",
                                crate::repo::layout::printable(&sel.text())
                            )));
                        }
                        tables.extend(found);
                    }
                    Selector::Database | Selector::Schema { .. } => unreachable!("stand alone (ScopeSpec::parse)"),
                }
            }
            let (kind, patterns) = if shape == Shape::Pattern { (ScopeKind::Pattern, spec.texts()) } else { (ScopeKind::Tables, Vec::new()) };
            (tables, Scope { kind, patterns, exclude, ..Scope::tables() })
        }
    };
    let mut seen = std::collections::HashSet::new();
    let tables: Vec<TableRef> = tables.into_iter().filter(|t| seen.insert(t.clone())).filter(not_excluded).collect();
    // views, macros, types or schemas alone are worth a database snapshot (a dbt project of views)
    let objects_only = || -> Result<bool> {
        Ok(scope.kind == ScopeKind::Database
            && crate::engine::objects::capture(ctx.db, &ctx.database, None)?.iter().any(|o| !spec.excludes_objects_of(&o.schema)))
    };
    if tables.is_empty() && !objects_only()? {
        return Err(Error::Input(format!("{} leaves no table to snapshot", spec.describe())));
    }
    Ok((tables, scope))
}

/// The scope a call asks for: the one given, or for NULL (`default_scope`) a locked
/// repository's scope — only then is the lock read before the writer lock, and returned.
pub fn requested_scope(ctx: &Ctx, scope: &ScopeSpec, default_scope: bool) -> Result<(ScopeSpec, Option<crate::repo::config::RepositoryConfig>)> {
    let locked = if default_scope { crate::repo::config::load(&ctx.repo)? } else { None };
    let spec = match &locked {
        Some(l) => ScopeSpec::recorded(&l.scope)?,
        None => scope.clone(),
    };
    Ok((spec, locked))
}

/// Creates a snapshot; takes the repository lock.
pub fn create(ctx: &Ctx, req: &CreateRequest) -> Result<Manifest> {
    if let Some(id) = &req.id {
        validate_id(id)?;
    }
    let (spec, locked) = requested_scope(ctx, &req.scope, req.default_scope)?;
    let (targets, scope) = resolve_targets(ctx, &spec)?;
    let scope = recorded_scope(ctx, &targets, scope);
    if req.columns.is_some() && matches!(scope.kind, ScopeKind::Database | ScopeKind::Schema) {
        return Err(Error::Input(format!(
            "columns := keeps columns of named tables; {} is a whole {}: name the table(s)",
            req.scope.describe(),
            if scope.kind == ScopeKind::Database { "database" } else { "schema" }
        )));
    }
    ensure_repo_dir(ctx)?;
    let _lock = ctx.lock()?;
    // read under the writer lock, as the lock is written, so a lock set meanwhile counts too
    let locked = match locked {
        Some(l) => Some(l),
        None => crate::repo::config::load(&ctx.repo)?,
    };
    if let Some(l) = &locked {
        l.admits(&scope, &ctx.repo.dir.display().to_string())?;
    }
    create_locked(ctx, req, &targets, scope)
}

/// Creates a snapshot holding the repository's writer lock only to publish it (what a
/// scheduled snapshot does, so it never keeps a user's snapshot_create waiting for the
/// length of a copy). The tables are written first; under the lock, every file of an earlier
/// snapshot the new one builds on is checked to still be there, and if a prune or drop took
/// one meanwhile, the snapshot is written again under the lock. A bucket repository writes
/// under the lock throughout (its uploads run while the tables are written).
pub fn create_publish_locked(ctx: &Ctx, req: &CreateRequest) -> Result<Manifest> {
    let (targets, scope) = resolve_targets(ctx, &req.scope)?;
    let scope = recorded_scope(ctx, &targets, scope);
    ensure_repo_dir(ctx)?;
    if ctx.repo.is_remote() {
        let _lock = ctx.lock()?;
        if let Some(l) = crate::repo::config::load(&ctx.repo)? {
            l.admits(&scope, &ctx.repo.dir.display().to_string())?;
        }
        return create_locked(ctx, req, &targets, scope);
    }
    let now = now_micros();
    let id = choose_id(ctx, req, now)?;
    let staging = ctx.repo.stage(&id, now)?;
    let (m, obsolete) = match write_snapshot(ctx, req, &targets, &id, &staging.dir, now, scope.clone()) {
        Ok(written) => written,
        Err(e) => {
            ctx.repo.discard(staging);
            return Err(e);
        }
    };
    let _lock = ctx.lock()?;
    if let Some(l) = crate::repo::config::load(&ctx.repo)? {
        if let Err(e) = l.admits(&scope, &ctx.repo.dir.display().to_string()) {
            ctx.repo.discard(staging);
            return Err(e);
        }
    }
    let builds_on_present = m.tables.iter().flat_map(|t| t.referenced_files(&id)).filter(|f| f.snapshot != id).all(|f| ctx.repo.has_file(&f.snapshot, &f.file));
    if !builds_on_present || ctx.repo.folder_exists(&id)? {
        ctx.repo.discard(staging);
        return create_locked(ctx, req, &targets, scope);
    }
    ctx.repo.publish(staging, &id)?;
    for f in obsolete {
        ctx.repo.remove_file(&f.snapshot, &f.file);
    }
    Ok(m)
}

/// The scope as a snapshot records it: named tables listed (sorted), so two snapshots of the
/// same tables chain.
pub fn recorded_scope(ctx: &Ctx, targets: &[TableRef], mut scope: Scope) -> Scope {
    if scope.kind == ScopeKind::Tables && scope.tables.is_empty() {
        let mut names: Vec<String> = targets.iter().map(|t| if t.catalog == ctx.database { t.display() } else { t.full_display() }).collect();
        names.sort();
        scope.tables = names;
    }
    scope
}

pub fn ensure_repo_dir(ctx: &Ctx) -> Result<()> {
    ctx.repo.ensure()
}

/// Creates a snapshot of `targets`; the caller holds the repository lock.
pub fn create_locked(ctx: &Ctx, req: &CreateRequest, targets: &[TableRef], scope: Scope) -> Result<Manifest> {
    let scope = recorded_scope(ctx, targets, scope);
    let now = now_micros();
    let id = choose_id(ctx, req, now)?;
    let staging = ctx.repo.stage(&id, now)?;
    let (m, obsolete) = match write_snapshot(ctx, req, targets, &id, &staging.dir, now, scope) {
        Ok(written) => written,
        Err(e) => {
            ctx.repo.discard(staging);
            return Err(e);
        }
    };
    ctx.repo.publish(staging, &id)?;
    // sketches are caches for the newest version of a table only
    for f in obsolete {
        ctx.repo.remove_file(&f.snapshot, &f.file);
    }
    Ok(m)
}

fn choose_id(ctx: &Ctx, req: &CreateRequest, now: i64) -> Result<String> {
    if let Some(id) = &req.id {
        validate_id(id)?;
        if ctx.repo.folder_exists(id)? {
            return Err(Error::DuplicateId { id: id.clone(), repo: ctx.repo.dir.clone() });
        }
        return Ok(id.clone());
    }
    let prefix = req.schedule.as_deref().unwrap_or(req.id_prefix);
    let base = format!("{prefix}_{}", id_stamp(now));
    if !ctx.repo.folder_exists(&base)? {
        return Ok(base);
    }
    for n in 2.. {
        let candidate = format!("{base}_{n}");
        if !ctx.repo.folder_exists(&candidate)? {
            return Ok(candidate);
        }
    }
    unreachable!("an unused suffix always exists")
}

fn write_snapshot(
    ctx: &Ctx,
    req: &CreateRequest,
    targets: &[TableRef],
    id: &str,
    dir: &Path,
    now: i64,
    scope: Scope,
) -> Result<(Manifest, Vec<FileRef>)> {
    let db = ctx.db;
    let started = std::time::Instant::now();
    let duckdb_version = db.query("SELECT version()")?.scalar().unwrap_or("unknown").to_string();
    let history = crate::repo::list::manifests(&ctx.repo)?;
    crate::engine::trace("list snapshots", started);
    // lineage: the previous snapshot of the same scope (a table list: of the same tables)
    let parent = history.iter().find(|m| m.database == ctx.database && m.scope == scope && !(scope.kind == ScopeKind::Tables && scope.tables.is_empty())).cloned();
    let hash_id = crate::engine::fingerprint::hash_id(&duckdb_version);
    let no_stamps = std::collections::BTreeMap::new();
    let plan = Plan { id, dir, history: &history, hash_id: &hash_id, incremental: req.incremental.unwrap_or(true),
        columns: req.columns.as_deref(),
        parent: parent.as_deref(),
        source_stamps: &no_stamps,
    };
    // the state of each database file before the read begins: a commit after this point
    // makes a later stamp differ (so it is fingerprinted), never the other way round
    let mut source_stamps = std::collections::BTreeMap::new();
    for cat in targets.iter().map(|t| t.catalog.as_str()).collect::<std::collections::BTreeSet<_>>() {
        if let Some(stamp) = catalog::database_path(db, cat)?.and_then(|p| crate::engine::source_stamp::stamp(&p)) {
            source_stamps.insert(cat.to_string(), stamp);
        }
    }
    let plan = Plan { source_stamps: &source_stamps, ..plan };
    let copied = crate::engine::sql::in_transaction(db, || {
        let tables = copy_tables(ctx, &plan, targets)?;
        // objects are read in the same transaction as the data
        let mut objects = match (scope.kind, targets.first()) {
            _ if req.objects.is_some() => req.objects.clone().unwrap_or_default(),
            (ScopeKind::Database, _) => crate::engine::objects::capture(db, &ctx.database, None)?,
            (ScopeKind::Schema, Some(t)) => crate::engine::objects::capture(db, &t.catalog, Some(&t.schema))?,
            _ => Vec::new(),
        };
        if req.objects.is_none() {
            objects.retain(|o| !req.scope.excludes_objects_of(&o.schema));
        }
        Ok((tables, objects))
    });
    let (written, mut objects) = copied?;
    crate::engine::trace("tables written, committed", started);
    if req.objects.is_none() {
        let catalog = targets.first().map(|t| t.catalog.clone()).unwrap_or_else(|| ctx.database.clone());
        crate::engine::objects::add_macro_defaults(db, &catalog, &mut objects);
    }
    let mut tables = Vec::with_capacity(written.len());
    let mut obsolete = Vec::new();
    // staged files that are uploaded, not renamed into place, need no fsync
    let durable = ctx.repo.stages_in_place();
    for (mut t, w) in written {
        let mut sums = std::collections::HashMap::new();
        let mut sketch_bytes = 0;
        for f in &w.own_files {
            let path = dir.join(f);
            // the fsync (waiting for write-back) and the checksum (reading from the page
            // cache) overlap instead of adding up
            let (synced, summed) = std::thread::scope(|s| {
                let sync = s.spawn(|| if durable { sync_file(&path) } else { Ok(()) });
                let sum = file_checksum(&path);
                (sync.join().unwrap_or_else(|_| Err(Error::Internal("fsync thread panicked".into()))), sum)
            });
            synced?;
            sums.insert(f.clone(), summed?);
            let sketch = crate::engine::fingerprint::sketch_path(&path);
            if f.ends_with(".idx") && sketch.exists() {
                if durable {
                    sync_file(&sketch)?;
                }
                sketch_bytes += fs::metadata(&sketch).map(|m| m.len()).unwrap_or(0);
            }
        }
        let mut layers = w.layers;
        for l in layers.iter_mut().filter(|l| l.snapshot == id) {
            if let Some((sum, size)) = sums.get(&l.file) {
                l.checksum = sum.clone();
                l.size_bytes = *size;
            }
        }
        let newest = layers.last().cloned().expect("a version has a base");
        t.file = newest.file.clone();
        t.checksum = newest.checksum.clone();
        // data files, the index and its sketch (a cache, removed once a newer version of the
        // table takes over)
        t.bytes_written = sums.values().map(|(_, n)| n).sum::<u64>() + sketch_bytes;
        t.bytes_reused = layers.iter().filter(|l| l.snapshot != id).map(|l| l.size_bytes).sum();
        t.size_bytes = if newest.snapshot == id { newest.size_bytes } else { 0 };
        t.row_count = w.row_count;
        t.status = if t.renamed_from.is_some() { TableStatus::Renamed } else { w.status };
        t.parent_id = w.parent_id;
        t.rows_added = w.rows_added;
        t.rows_removed = w.rows_removed;
        t.index = w.index;
        t.layers = layers;
        obsolete.extend(w.obsolete_sketch.filter(|f| f.snapshot != id));
        tables.push(t);
    }
    crate::engine::trace("files synced and checksummed", started);
    let deleted_in_source = match &parent {
        Some(p) if scope.kind != ScopeKind::Tables => p
            .tables
            .iter()
            .filter(|e| !tables.iter().any(|t| t.catalog == e.catalog && t.bucket == e.bucket && t.table == e.table))
            .filter(|e| !tables.iter().any(|t| t.status == TableStatus::Renamed && t.parent_id.as_deref() == Some(p.snapshot_id.as_str()) && renamed_is(t, e, &ctx.database)))
            .map(|e| crate::repo::manifest::DeletedTable {
                catalog: e.catalog.clone(),
                bucket: e.bucket.clone(),
                table: e.table.clone(),
                last_snapshot_id: p.snapshot_id.clone(),
                row_count: e.row_count,
            })
            .collect(),
        _ => Vec::new(),
    };
    let lineage = parent.as_ref().map(|p| p.snapshot_id.clone());
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        snapshot_id: id.to_string(),
        project_id: ctx.repo.project_id.clone(),
        branch: ctx.branch.clone(),
        created_at: format_timestamp(now),
        created_by: req.created_by.clone().unwrap_or_else(os_user),
        kind: req.kind,
        description: req.description.clone(),
        extension_version: env!("CARGO_PKG_VERSION").to_string(),
        duckdb_version,
        database: ctx.database.clone(),
        scope,
        tables,
        objects,
        parent_id: lineage,
        deleted_in_source,
        schedule: req.schedule.clone(),
        source_stamps,
    };
    write_atomic(&dir.join(METADATA_FILE), &manifest.to_json())?;
    Ok((manifest, obsolete))
}

/// What every table of one snapshot is written against.
struct Plan<'a> {
    id: &'a str,
    dir: &'a Path,
    /// Every snapshot of the repository, newest first.
    history: &'a [std::sync::Arc<Manifest>],
    hash_id: &'a str,
    incremental: bool,
    columns: Option<&'a [String]>,
    /// The previous snapshot of the same scope: its tables gone now may reappear renamed.
    parent: Option<&'a Manifest>,
    /// Each database's file state before this snapshot's read began.
    source_stamps: &'a std::collections::BTreeMap<String, String>,
}

/// Writes every table inside the caller's open transaction.
fn copy_tables(ctx: &Ctx, plan: &Plan, targets: &[TableRef]) -> Result<Vec<(TableEntry, crate::engine::incremental::Written)>> {
    use crate::engine::incremental::{write_table, Job, Prior};
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(targets.len());
    // tables of the previous snapshot of this scope that are gone now: rename candidates
    let same = |e: &TableEntry, t: &TableRef| e.catalog == t.catalog && e.bucket == t.schema && e.table == t.table;
    let mut gone: Vec<&TableEntry> = match plan.parent {
        Some(p) if plan.incremental && plan.columns.is_none() => p.tables.iter().filter(|e| !targets.iter().any(|t| same(e, t))).collect(),
        _ => Vec::new(),
    };
    for t in targets {
        let def = catalog::describe(ctx.db, t)?;
        let source_columns = plan.columns.map(|_| def.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
        let def = match plan.columns {
            Some(names) => catalog::subset(ctx.db, t, def, names)?,
            None => def,
        };
        let foreign = (t.catalog != ctx.database).then_some(t.catalog.as_str());
        let mut file = table_file_name(foreign, &t.schema, &t.table);
        let mut n = 2;
        while !used.insert(file.clone()) {
            file = format!("{}~{n}.parquet", file.trim_end_matches(".parquet"));
            n += 1;
        }
        // the newest earlier version of this table
        let mut prior = plan.history.iter().find_map(|m| {
            m.tables
                .iter()
                .find(|e| e.catalog == t.catalog && e.bucket == t.schema && e.table == t.table)
                .map(|e| Prior { manifest: m, entry: e })
        });
        let mut schema_version = match &prior {
            None => 1,
            Some(p) => {
                let parent = p.entry.schema_version.unwrap_or(1);
                if p.entry.same_definition(&def.columns, &def.ddl) { parent } else { parent + 1 }
            }
        };
        // nothing committed to its database since the prior version was read: unchanged
        let source_unchanged = prior.as_ref().is_some_and(|p| {
            plan.source_stamps.get(&t.catalog).is_some_and(|now| p.manifest.source_stamps.get(&t.catalog) == Some(now))
        });
        let job = Job {
            db: ctx.db,
            repo: &ctx.repo,
            id: plan.id,
            dir: plan.dir,
            table: t,
            def: &def,
            file: &file,
            hash_id: plan.hash_id,
            incremental: plan.incremental,
            source_unchanged,
        };
        // a new table holding most of a gone table's content is that table renamed (the same
        // name in another schema is tried first): stored against it, and not counted as deleted
        let mut renamed_from = None;
        if prior.is_none() && !gone.is_empty() {
            if let Some(p) = plan.parent {
                gone.sort_by_key(|e| e.table != t.table);
                let found = gone.iter().position(|e| {
                    crate::engine::incremental::similarity(&job, &Prior { manifest: p, entry: e }).is_ok_and(|share| share >= RENAME_SHARE)
                });
                if let Some(i) = found {
                    let e = gone.remove(i);
                    renamed_from = Some(recorded_name(e, &ctx.database));
                    schema_version = e.schema_version.unwrap_or(1);
                    prior = Some(Prior { manifest: p, entry: e });
                }
            }
        }
        let w = write_table(&job, prior)?;
        // complete: a bucket uploads them while the next table is written
        let mut done = w.own_files.clone();
        done.extend(w.own_files.iter().filter_map(|f| f.strip_suffix(".idx")).map(|stem| format!("{stem}.sketch")));
        ctx.repo.staged(plan.dir, plan.id, &done);
        out.push((
            TableEntry {
                catalog: t.catalog.clone(),
                bucket: t.schema.clone(),
                table: t.table.clone(),
                file,
                row_count: w.row_count,
                size_bytes: 0,
                schema: TableSchema { columns: def.columns.clone(), primary_key: def.primary_key.clone() },
                ddl: def.ddl.clone(),
                comment: def.comment.clone(),
                indexes: def.indexes.clone(),
                checksum: String::new(),
                layers: Vec::new(),
                index: None,
                parent_id: None,
                status: TableStatus::Stored,
                rows_added: 0,
                rows_removed: 0,
                bytes_written: 0,
                bytes_reused: 0,
                schema_version: Some(schema_version),
                source_columns,
                renamed_from,
            },
            w,
        ));
    }
    Ok(out)
}
