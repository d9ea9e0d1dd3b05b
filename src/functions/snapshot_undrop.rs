//! `snapshot_undrop(table)`: restores a table from its newest `pre_drop` snapshot.

use std::sync::Arc;

use crate::engine::drop::undrop;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{required_str, settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotUndrop;

pub struct Bind {
    settings: Settings,
    table: String,
}

impl TableFn for SnapshotUndrop {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let table = required_str(args.positional(0), "table name")?;
        let schema = Schema::Simple(vec![
            ("snapshot_id", ColType::Varchar),
            ("source", ColType::Varchar),
            ("target", ColType::Varchar),
            ("row_count", ColType::BigInt),
            ("backup_snapshot_id", ColType::Varchar),
        ]);
        Ok((Bind { settings: settings(args), table }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let out = with_ctx(host, &bind.settings, |ctx| undrop(ctx, &bind.table))?;
        let backup = out.backup_snapshot_id.clone().map(Val::Str).unwrap_or(Val::Null);
        Ok(Produce::Rows(
            out.tables
                .into_iter()
                .map(|t| vec![Val::Str(out.snapshot_id.clone()), Val::Str(t.source), Val::Str(t.target), Val::I64(t.row_count as i64), backup.clone()])
                .collect(),
        ))
    }
}
