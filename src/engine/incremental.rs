//! Writing one table version inside snapshot_create's transaction: a full copy, or — when
//! an earlier snapshot has the table with the same columns — only what changed since then.
//!
//! Unchanged is decided by fingerprints (see `fingerprint`): the live table is hashed once
//! (a scan, no writing) and compared with the parent version's stored block sums; an
//! unchanged table references the parent's files. Changed rows are located by the sketch
//! and stored as a delta (`__snap_rowid`, `__snap_deleted`, columns); changes too large to
//! locate are stored as whole blocks. A chain is compacted into a new full copy when it gets
//! long or its deltas outweigh half the table.

use std::fs;
use std::path::Path;

use crate::engine::catalog::{TableDef, TableRef};
use crate::engine::fingerprint::{self, Fingerprint, Scanned};
use crate::engine::layers::{self, DELETED, ROWID};
use crate::engine::sql::{ident, literal, Sql};
use crate::engine::types;
use crate::error::{Error, Result};
use crate::repo::layout::Repo;
use crate::repo::manifest::{LayerKind, TableStatus};
use crate::repo::manifest::{FileRef, Layer, Manifest, TableEntry, BLOCK_BITS};

/// Deltas after which the next snapshot of a table is a full copy again.
pub const MAX_CHAIN: usize = 64;

/// The version of the table an incremental snapshot is taken against.
pub struct Prior<'a> {
    pub manifest: &'a Manifest,
    pub entry: &'a TableEntry,
}

/// What was written for one table (files are in the snapshot's temporary folder).
pub struct Written {
    pub row_count: u64,
    pub layers: Vec<Layer>,
    /// Files written into this snapshot's folder: (name, counts as data).
    pub own_files: Vec<String>,
    pub index: Option<FileRef>,
    pub parent_id: Option<String>,
    pub status: TableStatus,
    pub rows_added: u64,
    pub rows_removed: u64,
    /// A sketch made obsolete by this version's own (deleted after publishing).
    /// The parent's sketch, stale once this version is stored (a cache of the newest only).
    pub obsolete_sketch: Option<FileRef>,
}

pub struct Job<'a> {
    pub db: &'a dyn Sql,
    pub repo: &'a Repo,
    pub id: &'a str,
    pub dir: &'a Path,
    pub table: &'a TableRef,
    pub def: &'a TableDef,
    pub file: &'a str,
    pub hash_id: &'a str,
    pub incremental: bool,
    /// The prior version was read under the same source stamp: no commit since, so the
    /// table is unchanged without fingerprinting it.
    pub source_unchanged: bool,
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str().map(str::to_string).ok_or_else(|| Error::Input(format!("snapshot path {} is not UTF-8", p.display())))
}

fn same_columns(a: &TableEntry, def: &TableDef) -> bool {
    a.schema.columns.len() == def.columns.len()
        && a.schema.columns.iter().zip(&def.columns).all(|(x, y)| x.name == y.name && x.ty == y.ty && x.stored_as == y.stored_as)
}

fn index_name(file: &str) -> String {
    format!("{}.idx", file.trim_end_matches(".parquet"))
}

fn write_fingerprint(dir: &Path, file: &str, fp: &Fingerprint) -> Result<String> {
    let name = index_name(file);
    let path = dir.join(&name);
    fs::write(&path, fingerprint::encode_index(fp)).map_err(|e| Error::io(&path, e))?;
    if let Some(s) = &fp.sketch {
        let sp = fingerprint::sketch_path(&path);
        fs::write(&sp, fingerprint::encode_sketch(&fp.hash_id, s)).map_err(|e| Error::io(&sp, e))?;
    }
    Ok(name)
}

/// The parent version's stored fingerprint, when it has one computed by this DuckDB.
fn stored_fingerprint(job: &Job, prior: &Prior) -> Option<Fingerprint> {
    prior.entry.index.as_ref().and_then(|ix| fingerprint::load(job.repo, ix, job.hash_id))
}

/// Fingerprints the parent version: its stored index when it matches this DuckDB, else by
/// reading its files (once per chain: the result is stored with the new version).
fn parent_fingerprint(job: &Job, prior: &Prior) -> Result<(Fingerprint, bool)> {
    if let Some(fp) = stored_fingerprint(job, prior) {
        return Ok((fp, true));
    }
    let scanned = fingerprint::scan(job.db, &parent_pairs_sql(job, prior, None), job.hash_id)?;
    Ok((scanned.fp, false))
}

/// A sample compares 16 blocks: four runs of four adjacent blocks, in the middle of each
/// quarter of the table (runs, so that reading the parent's blocks from its files decodes
/// four of its row groups, not sixteen).
const SAMPLE_RUNS: u64 = 4;
const SAMPLE_RUN_BLOCKS: u64 = 4;
/// Tables of fewer blocks are compared whole at once (cheap enough).
const SAMPLE_MIN_BLOCKS: u64 = 64;

/// Whether a sample says the table was rewritten: nearly every sampled block changed beyond
/// what locating rows can resolve, as when every row changed. Such a version ends as a full
/// copy anyway (more than half its blocks stored whole), so it is written as one at once —
/// without fingerprinting the whole table first, which would add a third to the copy. Costs
/// two scans of 16 blocks; an unchanged or lightly changed table fails it.
fn sample_says_rewritten(job: &Job, prior: &Prior, stored: Option<&Fingerprint>, max_rowid: Option<u64>) -> Result<bool> {
    let live_blocks = max_rowid.map_or(0, |m| (m >> BLOCK_BITS) + 1);
    let parent_blocks = match stored {
        Some(fp) => fp.blocks.len() as u64,
        None => prior.entry.row_count.div_ceil(1 << BLOCK_BITS),
    };
    let n = live_blocks.max(parent_blocks);
    if n < SAMPLE_MIN_BLOCKS {
        return Ok(false);
    }
    let starts: Vec<u64> = (0..SAMPLE_RUNS).map(|k| (2 * k + 1) * n / (2 * SAMPLE_RUNS)).collect();
    let sample: Vec<u64> = starts.iter().flat_map(|b| *b..(*b + SAMPLE_RUN_BLOCKS).min(n)).collect();
    let filter = |rowid: &str| -> String {
        let ranges: Vec<String> = starts
            .iter()
            .map(|b| format!("{rowid} BETWEEN {} AND {}", b << BLOCK_BITS, ((b + SAMPLE_RUN_BLOCKS).min(n) << BLOCK_BITS) - 1))
            .collect();
        ranges.join(" OR ")
    };
    let live_from = format!("{} WHERE {}", job.table.sql(), filter("rowid"));
    let live = fingerprint::scan(job.db, &fingerprint::pairs_sql(&job.def.columns, "rowid", &live_from, fingerprint::live_value), job.hash_id)?;
    let parent = match stored {
        Some(fp) => fingerprint::restrict(fp, &sample),
        None => fingerprint::scan(job.db, &parent_pairs_sql(job, prior, Some(&filter("__snap_r"))), job.hash_id)?.fp,
    };
    let changes = fingerprint::compare(&live, &parent);
    Ok(changes.whole_blocks.len() as u64 * 16 >= sample.len() as u64 * 15)
}

/// `pairs_sql` over the parent version's stored rows (those `filter` on `__snap_r` keeps),
/// read back in the original types so they hash like the live table's.
fn parent_pairs_sql(job: &Job, prior: &Prior, filter: Option<&str>) -> String {
    let layers = prior.entry.effective_layers(&prior.manifest.snapshot_id);
    let columns = &prior.entry.schema.columns;
    let mut from = format!("({}) AS __snap_v", layers::Version::new(job.repo, &layers, columns).rows_sql(false));
    if let Some(f) = filter {
        from.push_str(&format!(" WHERE {f}"));
    }
    fingerprint::pairs_sql(columns, "__snap_r", &from, |c| format!("CAST({} AS {})", ident(&c.name), c.ty))
}

/// The share of rows the live table has in common with `prior` by their fingerprints (0 when
/// the columns differ): a new table holding most of a gone table's rows is that table renamed.
pub fn similarity(job: &Job, prior: &Prior) -> Result<f64> {
    if !same_columns(prior.entry, job.def) || layers::always_whole(&job.def.columns) {
        return Ok(0.0);
    }
    let (parent, _) = parent_fingerprint(job, prior)?;
    let live = fingerprint::pairs_sql(&job.def.columns, "rowid", &job.table.sql(), fingerprint::live_value);
    let cur = fingerprint::scan(job.db, &live, job.hash_id)?;
    // rows located as changed (by the sketch), plus every row of blocks that could not be
    // resolved, against the larger of the two tables
    let changes = fingerprint::compare(&cur, &parent);
    let changed = changes.upserts.len() as u64 + changes.deletes.len() as u64 + changes.whole_rows_now.max(changes.whole_rows_before);
    let rows = cur.fp.rows.max(parent.rows);
    Ok(if rows == 0 { 0.0 } else { 1.0 - (changed.min(rows) as f64 / rows as f64) })
}

/// Writes the table: incremental against `prior` when possible, else a full copy.
pub fn write_table(job: &Job, prior: Option<Prior>) -> Result<Written> {
    let t = job.table;
    let started = std::time::Instant::now();
    // a user column named rowid hides DuckDB's: such tables are stored whole, by position
    let max_rowid_sql = if layers::always_whole(&job.def.columns) { "NULL" } else { "max(rowid)" };
    let stats = job.db.query(&format!("SELECT count(*), {max_rowid_sql} FROM {}", t.sql()))?;
    let row = stats.rows.first().cloned().unwrap_or_default();
    let count: u64 = row.first().cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
    let max_rowid: Option<u64> = row.get(1).cloned().flatten().and_then(|v| v.parse().ok());
    let dense = max_rowid.is_none_or(|m| m + 1 == count);

    let usable = prior.as_ref().filter(|p| {
        job.incremental
            && same_columns(p.entry, job.def)
            && !layers::always_whole(&job.def.columns)
            && p.entry.effective_layers(&p.manifest.snapshot_id).len() <= MAX_CHAIN
    });
    let Some(prior) = usable else {
        let parent_rows = prior.as_ref().map(|p| p.entry.row_count).unwrap_or(0);
        return full_copy(job, dense, None, prior.map(|p| p.manifest.snapshot_id.clone()), count, parent_rows);
    };

    let parent_layers = prior.entry.effective_layers(&prior.manifest.snapshot_id);
    if job.source_unchanged && count == prior.entry.row_count {
        crate::engine::trace("unchanged by source stamp", started);
        return Ok(Written {
            row_count: count,
            layers: parent_layers,
            own_files: Vec::new(),
            index: prior.entry.index.clone(),
            parent_id: Some(prior.manifest.snapshot_id.clone()),
            status: TableStatus::Unchanged,
            rows_added: 0,
            rows_removed: 0,
            obsolete_sketch: None,
        });
    }
    let stored = stored_fingerprint(job, &prior);
    if sample_says_rewritten(job, &prior, stored.as_ref(), max_rowid)? {
        crate::engine::trace("sampled: rewritten", started);
        let mut w = full_copy(job, dense, None, Some(prior.manifest.snapshot_id.clone()), count, prior.entry.row_count)?;
        // the parent's sketch serves no later version: this one has no index to go with it
        w.obsolete_sketch = prior.entry.index.as_ref().map(fingerprint::sketch_ref);
        return Ok(w);
    }
    crate::engine::trace("sampled", started);
    let (parent, parent_stored) = match stored {
        Some(fp) => (fp, true),
        None => parent_fingerprint(job, &prior)?,
    };
    crate::engine::trace("parent fingerprint", started);
    let live = fingerprint::pairs_sql(&job.def.columns, "rowid", &t.sql(), fingerprint::live_value);
    let cur = fingerprint::scan(job.db, &live, job.hash_id)?;
    crate::engine::trace("live fingerprint", started);
    let mut changes = fingerprint::compare(&cur, &parent);
    crate::engine::trace("compared", started);
    let blocks = cur.fp.blocks.len().max(parent.blocks.len()).max(1);
    if !changes.whole_blocks.is_empty() && changes.whole_blocks.len() * 4 <= blocks {
        // blocks the sketch could not resolve (many changes close together, or no sketch):
        // compare their rows with the parent's, reading only those blocks
        locate_rows(job, &prior, &mut changes)?;
        crate::engine::trace("blocks compared row by row", started);
    }
    changes.rows_added += changes.whole_rows_now;
    changes.rows_removed += changes.whole_rows_before;
    let parent_id = Some(prior.manifest.snapshot_id.clone());
    let parent_sketch = prior.entry.index.as_ref().map(fingerprint::sketch_ref);

    if changes.is_empty() {
        // reference everything; keep the parent's index, or store the one just computed
        let (index, own_files) = if parent_stored {
            (prior.entry.index.clone(), Vec::new())
        } else {
            let name = write_fingerprint(job.dir, job.file, &parent)?;
            (Some(FileRef { snapshot: job.id.to_string(), file: name.clone() }), vec![name])
        };
        return Ok(Written {
            row_count: count,
            layers: parent_layers,
            own_files,
            index,
            parent_id,
            status: TableStatus::Unchanged,
            rows_added: 0,
            rows_removed: 0,
            obsolete_sketch: None,
        });
    }

    let delta_rows = changes.upserts.len() as u64 + changes.deletes.len() as u64 + ((changes.whole_blocks.len() as u64) << BLOCK_BITS);
    let chain_rows: u64 = parent_layers[1..].iter().map(|l| l.rows).sum();
    if delta_rows.saturating_mul(2) > count.max(1) || (chain_rows + delta_rows).saturating_mul(2) > parent_layers[0].rows.max(count) {
        // too much changed: a new full copy is smaller and faster to read
        let mut w = full_copy(job, dense, Some(&cur), parent_id, count, prior.entry.row_count)?;
        w.rows_added = changes.rows_added;
        w.rows_removed = changes.rows_removed;
        w.obsolete_sketch = parent_sketch;
        return Ok(w);
    }

    let delta_file = format!("{}.delta.parquet", job.file.trim_end_matches(".parquet"));
    let rows = write_delta(job, &changes, &delta_file)?;
    crate::engine::trace("delta written", started);
    let mut layers = parent_layers;
    layers.push(Layer {
        snapshot: job.id.to_string(),
        file: delta_file.clone(),
        kind: LayerKind::Delta,
        rows,
        size_bytes: 0,
        checksum: String::new(),
        rowids: None,
        cleared: ranges(&changes.whole_blocks),
    });
    let index = write_fingerprint(job.dir, job.file, &cur.fp)?;
    Ok(Written {
        row_count: count,
        layers,
        own_files: vec![delta_file, index.clone()],
        index: Some(FileRef { snapshot: job.id.to_string(), file: index }),
        parent_id,
        status: TableStatus::Stored,
        rows_added: changes.rows_added,
        rows_removed: changes.rows_removed,
        obsolete_sketch: parent_sketch,
    })
}

/// Turns `whole_blocks` into row-level upserts and deletes by hashing the rows of those
/// blocks on both sides (the live table and the parent version) and comparing them.
fn locate_rows(job: &Job, prior: &Prior, changes: &mut fingerprint::Changes) -> Result<()> {
    let spans = ranges(&changes.whole_blocks);
    let filter = |rowid: &str| -> String {
        let lo = spans.first().map(|r| r[0] << BLOCK_BITS).unwrap_or(0);
        let hi = spans.last().map(|r| ((r[1] + 1) << BLOCK_BITS) - 1).unwrap_or(0);
        let blocks: Vec<String> = spans.iter().map(|[a, b]| format!("({rowid} >> {BLOCK_BITS}) BETWEEN {a} AND {b}")).collect();
        format!("{rowid} BETWEEN {lo} AND {hi} AND ({})", blocks.join(" OR "))
    };
    let live_from = format!("{} WHERE {}", job.table.sql(), filter("rowid"));
    let live = fingerprint::pairs_sql(&job.def.columns, "rowid", &live_from, fingerprint::live_value);
    let parent = parent_pairs_sql(job, prior, Some(&filter("__snap_r")));
    let sql = format!(
        "SELECT coalesce(c.r, p.r), c.r IS NOT NULL, p.r IS NOT NULL \
         FROM ({live}) AS c(r, h) FULL OUTER JOIN ({parent}) AS p(r, h) ON c.r = p.r \
         WHERE c.h IS DISTINCT FROM p.h"
    );
    let found = job.db.query(&sql)?;
    for row in &found.rows {
        let id: u64 = row[0].as_deref().and_then(|v| v.parse().ok()).ok_or_else(|| Error::Internal("row id expected".into()))?;
        let (now, before) = (row[1].as_deref() == Some("true"), row[2].as_deref() == Some("true"));
        if now {
            changes.upserts.push(id);
            changes.rows_added += 1;
        } else {
            changes.deletes.push(id);
        }
        if before {
            changes.rows_removed += 1;
        }
    }
    changes.whole_blocks.clear();
    changes.whole_rows_now = 0;
    changes.whole_rows_before = 0;
    Ok(())
}

/// Consecutive block numbers as inclusive ranges.
fn ranges(blocks: &[u64]) -> Vec<[u64; 2]> {
    let mut out: Vec<[u64; 2]> = Vec::new();
    for &b in blocks {
        match out.last_mut() {
            Some(r) if r[1] + 1 == b => r[1] = b,
            _ => out.push([b, b]),
        }
    }
    out
}

fn full_copy(job: &Job, dense: bool, fp: Option<&Scanned>, parent_id: Option<String>, count: u64, parent_rows: u64) -> Result<Written> {
    let t = job.table;
    let path = path_str(&job.dir.join(job.file))?;
    // row ids are positions unless the table has gaps (deleted rows not yet compacted)
    let rowid_col = if dense || layers::always_whole(&job.def.columns) { String::new() } else { format!(", rowid AS {ROWID}") };
    let rows = job.db.query(&format!(
        "COPY (SELECT {}{rowid_col} FROM {}) TO {} (FORMAT PARQUET, COMPRESSION ZSTD)",
        types::write_list(&job.def.columns),
        t.sql(),
        literal(&path)
    ))?;
    let row_count = rows.scalar().and_then(|v| v.parse::<u64>().ok()).unwrap_or(count);
    let mut own_files = vec![job.file.to_string()];
    let index = match fp {
        Some(s) => {
            let name = write_fingerprint(job.dir, job.file, &s.fp)?;
            own_files.push(name.clone());
            Some(FileRef { snapshot: job.id.to_string(), file: name })
        }
        None => None,
    };
    Ok(Written {
        row_count,
        layers: vec![Layer {
            snapshot: job.id.to_string(),
            file: job.file.to_string(),
            kind: LayerKind::Base,
            rows: row_count,
            size_bytes: 0,
            checksum: String::new(),
            rowids: Some(if rowid_col.is_empty() { "position" } else { "column" }.into()),
            cleared: Vec::new(),
        }],
        own_files,
        index,
        parent_id,
        status: TableStatus::Stored,
        rows_added: row_count,
        rows_removed: parent_rows,
        obsolete_sketch: None,
    })
}

/// Writes the changed rows (and deletion markers) ordered by row id; returns its row count.
fn write_delta(job: &Job, changes: &fingerprint::Changes, file: &str) -> Result<u64> {
    let t = job.table;
    let list_file = |name: &str, ids: &[u64]| -> Result<String> {
        let p = job.dir.join(name);
        let mut text = String::with_capacity(ids.len() * 8 + 2);
        text.push_str("r\n");
        for i in ids {
            text.push_str(&i.to_string());
            text.push('\n');
        }
        fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        path_str(&p)
    };
    let ups = list_file(".rows-upsert.csv", &changes.upserts)?;
    let dels = list_file(".rows-delete.csv", &changes.deletes)?;
    let read_list = |p: &str| format!("(SELECT r FROM read_csv({}, header = true, columns = {{'r': 'BIGINT'}}))", literal(p));
    let mut pick = vec![format!("rowid IN {}", read_list(&ups))];
    for [a, b] in ranges(&changes.whole_blocks) {
        pick.push(format!("(rowid >> {BLOCK_BITS}) BETWEEN {a} AND {b}"));
    }
    let out = path_str(&job.dir.join(file))?;
    let sql = format!(
        "COPY (SELECT * FROM (SELECT rowid AS {ROWID}, false AS {DELETED}, {} FROM {} WHERE {} UNION ALL BY NAME SELECT r AS {ROWID}, true AS {DELETED} FROM {}) ORDER BY {ROWID}) TO {} (FORMAT PARQUET, COMPRESSION ZSTD)",
        types::write_list(&job.def.columns),
        t.sql(),
        pick.join(" OR "),
        read_list(&dels),
        literal(&out)
    );
    let result = job.db.query(&sql);
    let _ = fs::remove_file(&ups);
    let _ = fs::remove_file(&dels);
    Ok(result?.scalar().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
}
