//! `snapshot_drop_table(table)`: ADR-004's safe drop — a `pre_drop` snapshot, then DROP TABLE.

use std::sync::Arc;

use crate::engine::drop::{drop_schema, drop_table};
use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::functions::common::{settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotDropTable;

pub struct Bind {
    settings: Settings,
    table: Option<String>,
    schema: Option<String>,
}

impl TableFn for SnapshotDropTable {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[("schema", ParamType::Varchar)]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let table = args.positional(0).opt_str("table name")?;
        let schema = args.named("schema").opt_str("schema")?;
        if table.is_some() == schema.is_some() {
            return Err(Error::Input("name either a table or schema := (pass NULL as the table to drop a schema)".into()));
        }
        let columns = Schema::Simple(vec![("backup_snapshot_id", ColType::Varchar), ("dropped_table", ColType::Varchar)]);
        Ok((Bind { settings: settings(args), table, schema }, columns))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let d = with_ctx(host, &bind.settings, |ctx| match (&bind.table, &bind.schema) {
            (Some(t), _) => drop_table(ctx, t),
            (None, Some(s)) => drop_schema(ctx, s),
            (None, None) => unreachable!("checked at bind"),
        })?;
        Ok(Produce::Rows(vec![vec![Val::Str(d.backup_snapshot_id), Val::Str(d.table)]]))
    }
}
