//! `snapshot_drop_table(table)`: ADR-004's safe drop — a `pre_drop` snapshot, then DROP TABLE.

use std::sync::Arc;

use crate::engine::drop::drop_table;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{required_str, settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotDropTable;

pub struct Bind {
    settings: Settings,
    table: String,
}

impl TableFn for SnapshotDropTable {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let table = required_str(args.positional(0), "table name")?;
        let schema = Schema::Simple(vec![("backup_snapshot_id", ColType::Varchar), ("dropped_table", ColType::Varchar)]);
        Ok((Bind { settings: settings(args), table }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let d = with_ctx(host, &bind.settings, |ctx| drop_table(ctx, &bind.table))?;
        Ok(Produce::Rows(vec![vec![Val::Str(d.backup_snapshot_id), Val::Str(d.table)]]))
    }
}
