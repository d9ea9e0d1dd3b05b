//! `snapshot_diff(from, to, table)`: row-level differences between two snapshots, or
//! between a snapshot and the live table (`to` NULL or 'live').

use std::sync::Arc;

use crate::engine::travel::diff_sql;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{required_str, settings, with_ctx, QueryScan};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ParamType, Produce, Schema, TableFn};

pub struct SnapshotDiff;

pub struct Bind {
    sql: String,
}

impl TableFn for SnapshotDiff {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar, ParamType::Varchar, ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let from = required_str(args.positional(0), "from snapshot id")?;
        let to = args.positional(1).opt_str("to snapshot id")?;
        let table = required_str(args.positional(2), "table name")?;
        let settings: Settings = settings(args);
        let sql = with_ctx(args.host, &settings, |ctx| diff_sql(ctx, &from, to.as_deref(), &table))?;
        let described = args.host.reader()?.conn().describe(&sql)?;
        Ok((Bind { sql }, Schema::Logical(described)))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        Ok(Produce::Chunks(Box::new(QueryScan::start(host, &bind.sql)?)))
    }
}
