//! `snapshot_tables(snapshot)`: one row per table per snapshot (an id, a point in time, or
//! `'*'` for every snapshot), with columns and primary key.

use std::sync::Arc;

use crate::engine::point::{self, SnapshotArg};
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{deleted_row, settings, snapshot_arg, table_columns, table_row, with_ctx_light, Accepts};
use crate::repo::list::manifests as list_manifests;
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotTables;

pub struct Bind {
    settings: Settings,
    snapshot: SnapshotArg,
}

impl TableFn for SnapshotTables {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Any]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let snapshot = snapshot_arg(args.positional(0), "the snapshot", Accepts { all: true, live: false })?;
        let schema = Schema::Simple(table_columns(&[("columns", ColType::NameTypeList), ("primary_key", ColType::VarcharList), ("schema_version", ColType::BigInt), ("renamed_from", ColType::Varchar)]));
        Ok((Bind { settings: settings(args), snapshot }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let manifests = with_ctx_light(host, &bind.settings, |ctx| match &bind.snapshot {
            SnapshotArg::All => list_manifests(&ctx.repo),
            one => Ok(vec![point::snapshot(ctx, one)?]),
        })?;
        let mut rows = Vec::new();
        for m in manifests {
            for t in &m.tables {
                let columns = Val::NameTypeList(t.schema.columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect());
                let version = t.schema_version.map(|v| Val::I64(v as i64)).unwrap_or(Val::Null);
                let renamed_from = t.renamed_from.clone().map(Val::Str).unwrap_or(Val::Null);
                rows.push(table_row(&m, t, vec![columns, Val::StrList(t.schema.primary_key.clone()), version, renamed_from]));
            }
            for d in &m.deleted_in_source {
                rows.push(deleted_row(&m, d, vec![Val::Null, Val::Null, Val::Null, Val::Null]));
            }
        }
        Ok(Produce::Rows(rows))
    }
}
