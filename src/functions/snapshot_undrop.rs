//! `snapshot_undrop(table)`: restores a table from its newest `pre_drop` snapshot.

use std::sync::Arc;

use crate::engine::undrop::undrop;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{required_str, restore_rows, restore_schema, settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ParamType, Produce, Schema, TableFn};

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
        let table = required_str(args.positional(0), "the table name", "the name of a table dropped with snapshot_drop_table")?;
        let schema = restore_schema();
        Ok((Bind { settings: settings(args), table }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let out = with_ctx(host, &bind.settings, |ctx| undrop(ctx, &bind.table))?;
        Ok(restore_rows(out))
    }
}
