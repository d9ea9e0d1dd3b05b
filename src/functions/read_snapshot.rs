//! `read_snapshot(id, table)`: the rows of a table as of a snapshot, with the original
//! column names and types. DuckDB's own Parquet reader does the work on a pooled reader
//! connection, so only the projected columns are read; each scan holds its own connection,
//! so several scans in one query work.

use std::sync::Arc;

use crate::engine::restore::find_entry;
use crate::engine::sql::literal;
use crate::engine::verify::check_entry;
use crate::engine::{types, Settings};
use crate::error::{Error, Result};
use crate::functions::common::{required_str, settings, with_ctx};
use crate::host::conn::{Chunk, Stream};
use crate::host::session::{Host, ReaderLease};
use crate::host::table_fn::{Arg, BindArgs, ChunkSource, ParamType, Produce, Schema, TableFn};
use crate::repo::manifest::{self, Column};

pub struct ReadSnapshot;

pub struct Bind {
    id: String,
    columns: Vec<Column>,
    path: String,
}

/// The query that reads `columns` (indexes into the stored columns) back in their original types.
fn select_sql(all: &[Column], columns: &[usize], path: &str) -> String {
    let list: Vec<String> = columns
        .iter()
        .map(|&i| match all.get(i) {
            Some(c) => types::read_expr(c),
            // a virtual column (e.g. the row id for count(*)): any constant will do
            None => "NULL::BIGINT".to_string(),
        })
        .collect();
    let list = if list.is_empty() { "1".to_string() } else { list.join(", ") };
    format!("SELECT {list} FROM read_parquet({})", literal(path))
}

/// The columns, data file and snapshot id of an entry, after checking its file.
fn located(ctx: &crate::engine::Ctx, m: &crate::repo::manifest::Manifest, e: &crate::repo::manifest::TableEntry) -> Result<(Vec<Column>, String, String)> {
    check_entry(&ctx.repo, m, e, false)?;
    let path = ctx.repo.snapshot_dir(&m.snapshot_id).join(&e.file);
    let path = path.to_str().ok_or_else(|| Error::Input("snapshot path is not UTF-8".into()))?.to_string();
    Ok((e.schema.columns.clone(), path, m.snapshot_id.clone()))
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
        &[ParamType::Varchar, ParamType::Varchar]
    }

    fn projection_pushdown() -> bool {
        true
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[("at", ParamType::Any)]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let at = match args.named("at") {
            Arg::Missing | Arg::Null => None,
            Arg::Timestamp(t) => Some(t),
            other => return Err(Error::Input(format!("at must be a TIMESTAMPTZ, got {other:?}"))),
        };
        let settings: Settings = settings(args);
        let (columns, path, id) = match at {
            None => {
                let id = required_str(args.positional(0), "snapshot id")?;
                let table = required_str(args.positional(1), "table name")?;
                with_ctx(args.host, &settings, |ctx| {
                    let m = manifest::load(&ctx.repo, &id)?;
                    let e = find_entry(&m, &table)?;
                    located(ctx, &m, e)
                })?
            }
            Some(at) => {
                // read_snapshot(table, NULL, at := ...) or read_snapshot(NULL, table, at := ...)
                let table = match (args.positional(0).opt_str("table name")?, args.positional(1).opt_str("table name")?) {
                    (Some(t), None) | (None, Some(t)) => t,
                    _ => return Err(Error::Input("with at := give the table once: read_snapshot('schema.table', NULL, at := ...)".into())),
                };
                with_ctx(args.host, &settings, |ctx| {
                    let (m, e) = crate::engine::travel::as_of(ctx, &table, at)?;
                    located(ctx, &m, &e)
                })?
            }
        };
        let all: Vec<usize> = (0..columns.len()).collect();
        let reader = args.host.reader()?;
        let described = reader.conn().describe(&select_sql(&columns, &all, &path)).map_err(|e| dropped_meanwhile(&id, &path, e))?;
        Ok((Bind { id, columns, path }, Schema::Logical(described)))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, columns: &[usize]) -> Result<Produce> {
        let lease = host.reader()?;
        let stream = lease
            .conn()
            .stream(&select_sql(&bind.columns, columns, &bind.path))
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
