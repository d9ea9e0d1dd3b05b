//! `snapshot_export(snapshot, path)`: a self-contained ADR-004 copy of a snapshot (an id, or
//! the newest taken at or before a point in time) in `path`.

use std::sync::Arc;

use crate::engine::export::export;
use crate::engine::Settings;
use crate::error::Result;
use crate::engine::point::{self, SnapshotArg};
use crate::functions::common::{required_str, settings, snapshot_arg, with_ctx, Accepts};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotExport;

pub struct Bind {
    settings: Settings,
    snapshot: SnapshotArg,
    path: String,
}

impl TableFn for SnapshotExport {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Any, ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let snapshot = snapshot_arg(args.positional(0), "the snapshot", Accepts::default())?;
        let path = required_str(args.positional(1), "the export path", "a folder path for the exported snapshot")?;
        let schema = Schema::Simple(vec![
            ("snapshot_id", ColType::Varchar),
            ("path", ColType::Varchar),
            ("files", ColType::BigInt),
            ("bytes", ColType::BigInt),
        ]);
        Ok((Bind { settings: settings(args), snapshot, path }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let e = with_ctx(host, &bind.settings, |ctx| {
            let id = point::snapshot(ctx, &bind.snapshot)?.snapshot_id.clone();
            export(ctx, &id, std::path::Path::new(&bind.path))
        })?;
        Ok(Produce::Rows(vec![vec![Val::Str(e.snapshot_id), Val::Str(e.path), Val::I64(e.files as i64), Val::I64(e.bytes as i64)]]))
    }
}
