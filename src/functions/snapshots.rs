//! `snapshots()`: one row per published snapshot of the current project, newest first.

use std::sync::Arc;

use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{listed_time, settings, with_ctx_light};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};
use crate::repo::list::manifests as list_manifests;
use crate::repo::layout::Repo;
use crate::repo::manifest::Manifest;

pub struct Snapshots;

/// The columns of `snapshots()` (and `snapshot_at`): what a person reads first comes first —
/// which snapshot, when, what kind, how much — and the description last (DuckDB's shell keeps
/// the first and last columns when it must cut); places and lineage in the middle.
pub const SNAPSHOT_COLUMNS: [(&str, ColType); 15] = [
    ("snapshot_id", ColType::Varchar),
    ("created_at", ColType::TimestampTz),
    ("type", ColType::Varchar),
    ("table_count", ColType::BigInt),
    ("row_count", ColType::BigInt),
    ("size_bytes", ColType::BigInt),
    ("path", ColType::Varchar),
    ("project_id", ColType::Varchar),
    ("branch", ColType::Varchar),
    ("parent_id", ColType::Varchar),
    ("pinned", ColType::Boolean),
    ("created_by", ColType::Varchar),
    ("bytes_written", ColType::BigInt),
    ("bytes_reused", ColType::BigInt),
    ("description", ColType::Varchar),
];

/// Index of `pinned` in `SNAPSHOT_COLUMNS`: the one value that costs a file-system look-up.
const PINNED: usize = 10;

/// The values of `SNAPSHOT_COLUMNS` for one snapshot; `pinned` is looked up only when
/// `with_pin` (the query reads that column).
pub fn snapshot_row(repo: &Repo, m: &Manifest, with_pin: bool) -> Vec<Val> {
    let path = repo.snapshot_location(&m.snapshot_id);
    vec![
        Val::Str(m.snapshot_id.clone()),
        listed_time(m.created_at_micros()),
        Val::Str(m.kind.as_str().to_string()),
        Val::I64(m.tables.len() as i64),
        Val::I64(m.row_count() as i64),
        Val::I64(m.size_bytes() as i64),
        Val::Str(path),
        Val::Str(m.project_id.clone()),
        Val::Str(m.branch.clone()),
        m.parent_id.clone().map(Val::Str).unwrap_or(Val::Null),
        if with_pin { Val::Bool(repo.is_pinned(&m.snapshot_id)) } else { Val::Null },
        Val::Str(m.created_by.clone()),
        Val::I64(m.bytes_written() as i64),
        Val::I64(m.bytes_reused() as i64),
        m.description.clone().map(Val::Str).unwrap_or(Val::Null),
    ]
}

impl TableFn for Snapshots {
    type Bind = Settings;

    fn params() -> &'static [ParamType] {
        &[]
    }

    fn projection_pushdown() -> bool {
        true
    }

    fn bind(args: &BindArgs) -> Result<(Settings, Schema)> {
        Ok((settings(args), Schema::Simple(SNAPSHOT_COLUMNS.to_vec())))
    }

    fn produce(host: &Arc<Host>, bind: &Settings, columns: &[usize]) -> Result<Produce> {
        let (repo, all) = with_ctx_light(host, bind, |ctx| Ok((ctx.repo.clone(), list_manifests(&ctx.repo)?)))?;
        let with_pin = columns.contains(&PINNED);
        Ok(Produce::Rows(all.iter().map(|m| snapshot_row(&repo, m, with_pin)).collect()))
    }
}
