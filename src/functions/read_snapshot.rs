//! `read_snapshot(snapshot, table)`: the rows of a table as of a snapshot (an id, or the
//! newest snapshot taken at or before a point in time that holds the table), with the
//! original column names and types. DuckDB's own Parquet reader does the work on a pooled reader
//! connection, so only the projected columns are read; each scan holds its own connection,
//! so several scans in one query work.

use std::sync::{Arc, Mutex};

use crate::engine::sql::literal;
use crate::engine::verify::check_entry;
use crate::engine::{types, Settings};
use crate::error::{Error, Result};
use crate::functions::common::{required_str, settings, snapshot_arg, with_ctx_light, Accepts};
use crate::engine::layers::Version;
use crate::host::conn::{Chunk, Stream};
use crate::host::merge::{ChainRanges, MergeScan, CUT as CHAIN_CUT};
use crate::host::session::{Host, ReaderLease};
use crate::host::split::{ErrorMap, FileRanges, SplitScan};
use crate::host::table_fn::{BindArgs, ChunkSource, ParamType, Produce, Schema, TableFn};
use crate::repo::manifest::Column;

pub struct ReadSnapshot;

enum Split {
    /// One stream.
    No,
    /// A one-file version: its row groups as row ranges.
    File(Vec<(u64, u64)>),
    /// An incremental version (in insertion order only): one past its highest row id.
    Chain(u64),
}

pub struct Bind {
    id: String,
    columns: Vec<Column>,
    version: Version,
    /// The FROM item that yields the stored columns (one file, or merged layers).
    from: String,
    /// The version's base file (its disappearance means the snapshot was dropped).
    path: String,
    /// How the scan can run on several threads (see `host::split`).
    split: Split,
    threads: usize,
    ordered: bool,
}

/// Row groups of files read before in this process, by path and checksum (files never change).
static ROW_GROUPS: Mutex<Vec<((String, String), Arc<Vec<(u64, u64)>>)>> = Mutex::new(Vec::new());

/// The file's row groups as `[start, end)` row ranges.
fn row_groups(conn: &crate::host::conn::Conn, path: &str, checksum: &str) -> Result<Arc<Vec<(u64, u64)>>> {
    let key = (path.to_string(), checksum.to_string());
    if let Some((_, groups)) = ROW_GROUPS.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(k, _)| *k == key) {
        return Ok(groups.clone());
    }
    let counts = crate::engine::sql::Sql::query_i64s(
        conn,
        &format!(
            "SELECT row_group_num_rows::BIGINT FROM parquet_metadata({}) WHERE column_id = 0 ORDER BY row_group_id",
            literal(path)
        ),
        1,
    )?;
    let mut out = Vec::with_capacity(counts[0].len());
    let mut start = 0u64;
    for n in &counts[0] {
        let n = (*n).max(0) as u64;
        out.push((start, start + n));
        start += n;
    }
    let groups = Arc::new(out);
    let mut cache = ROW_GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= 4096 {
        cache.remove(0);
    }
    cache.push((key, groups.clone()));
    Ok(groups)
}

/// Where an entry's rows come from, after checking its files.
struct Located {
    columns: Vec<Column>,
    version: Version,
    path: String,
    id: String,
}

impl Located {
    fn checksum(&self) -> &str {
        &self.version.sources[0].checksum
    }
}

fn located(ctx: &crate::engine::Ctx, m: &crate::repo::manifest::Manifest, e: &crate::repo::manifest::TableEntry) -> Result<Located> {
    check_entry(&ctx.repo, m, e, false)?;
    let layers = e.effective_layers(&m.snapshot_id);
    Ok(Located {
        columns: e.schema.columns.clone(),
        version: Version::new(&ctx.repo, &layers, &e.schema.columns),
        path: crate::engine::layers::layer_path(&ctx.repo, &layers[0]),
        id: m.snapshot_id.clone(),
    })
}

/// A read that fails because the file vanished means the snapshot was dropped under it.
fn dropped_meanwhile(id: &str, path: &str, err: Error) -> Error {
    if std::path::Path::new(path).exists() {
        err
    } else {
        Error::Input(format!("snapshot '{id}' not found: it was dropped while this query was reading it"))
    }
}

impl TableFn for ReadSnapshot {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Any, ParamType::Varchar]
    }

    fn projection_pushdown() -> bool {
        true
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let snapshot = snapshot_arg(args.positional(0), "the snapshot", Accepts::default())?;
        let table = required_str(args.positional(1), "the table name", "a table name such as 'main.orders'")?;
        let settings: Settings = settings(args);
        let found = with_ctx_light(args.host, &settings, |ctx| {
            let (m, e) = crate::engine::point::table_version(ctx, &snapshot, &table)?;
            located(ctx, &m, &e)
        })?;
        let checksum = found.checksum().to_string();
        let Located { columns, version, path, id } = found;
        let from = version.from_sql(true);
        let single_file = version.is_one_file();
        let all: Vec<usize> = (0..columns.len()).collect();
        let reader = args.host.reader()?;
        let described = reader.conn().describe(&types::select_sql(&columns, &all, &from)).map_err(|e| dropped_meanwhile(&id, &path, e))?;
        let threads: usize = args.setting("threads").and_then(|v| v.parse().ok()).unwrap_or(1);
        let clash = columns.iter().any(|c| c.name.eq_ignore_ascii_case("file_row_number"));
        let ordered = args.setting("preserve_insertion_order").is_none_or(|v| v != "false");
        // only what is worth splitting: several row groups, or several cuts of row ids
        let split = if threads < 2 || clash {
            Split::No
        } else if single_file {
            let groups = row_groups(reader.conn(), &path, &checksum)?;
            if groups.len() > 1 { Split::File(groups.to_vec()) } else { Split::No }
        } else if ordered {
            let end = crate::engine::sql::Sql::query(reader.conn(), &version.rowid_end_sql()).map_err(|e| dropped_meanwhile(&id, &path, e))?;
            let end: u64 = end.rows.first().and_then(|r| r[0].as_deref()?.parse().ok()).unwrap_or(0);
            if end > 2 * CHAIN_CUT { Split::Chain(end) } else { Split::No }
        } else {
            Split::No
        };
        Ok((Bind { id, columns, version, from, path, split, threads, ordered }, Schema::Logical(described)))
    }

    fn max_threads(bind: &Bind) -> u64 {
        match bind.split {
            Split::No => 1,
            Split::File(_) | Split::Chain(_) => bind.threads as u64,
        }
    }

    fn produce(host: &Arc<Host>, bind: &Bind, columns: &[usize]) -> Result<Produce> {
        let (id, path) = (bind.id.clone(), bind.path.clone());
        let on_error: ErrorMap = Arc::new(move |e| dropped_meanwhile(&id, &path, e));
        match &bind.split {
            Split::File(groups) => {
                let sql = types::select_sql(&bind.columns, columns, &bind.from).replacen(
                    &format!("FROM read_parquet({})", literal(&bind.path)),
                    &format!("FROM read_parquet({}, file_row_number = true)", literal(&bind.path)),
                    1,
                );
                let file = FileRanges::new(host, sql, groups.clone(), bind.threads, on_error)?;
                return Ok(Produce::Partitioned(if bind.ordered { Arc::new(SplitScan::new(file)) } else { Arc::new(file.fixed()) }));
            }
            Split::Chain(end) => {
                let (version, columns) = (bind.version.clone(), columns.to_vec());
                let plan = Box::new(move |a, b| version.merge_plan(&columns, Some((a, b))));
                let chain = ChainRanges { host: host.clone(), plan, total: *end, on_error };
                return Ok(Produce::Partitioned(Arc::new(SplitScan::new(chain))));
            }
            Split::No => {}
        }
        if !bind.version.is_one_file() {
            // an incremental version: base and deltas interleaved in row order
            let scan = MergeScan::start(host, bind.version.merge_plan(columns, None)).map_err(|e| dropped_meanwhile(&bind.id, &bind.path, e))?;
            return Ok(Produce::Chunks(Box::new(scan)));
        }
        let lease = host.reader()?;
        let stream = lease
            .conn()
            .stream(&types::select_sql(&bind.columns, columns, &bind.from))
            .map_err(|e| dropped_meanwhile(&bind.id, &bind.path, e))?;
        Ok(Produce::Chunks(Box::new(Scan {
            stream: Some(stream),
            _lease: lease,
            id: bind.id.clone(),
            path: bind.path.clone(),
        })))
    }
}

/// A running scan. Field order matters: the stream is dropped before the connection goes back.
struct Scan {
    stream: Option<Stream>,
    _lease: ReaderLease,
    id: String,
    path: String,
}

impl ChunkSource for Scan {
    fn next(&mut self) -> Result<Option<Chunk>> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        let chunk = stream.next_chunk().map_err(|e| dropped_meanwhile(&self.id, &self.path, e))?;
        if chunk.is_none() {
            // finished: release the connection's transaction right away
            self.stream = None;
        }
        Ok(chunk)
    }
}

