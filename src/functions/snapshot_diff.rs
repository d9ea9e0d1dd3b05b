//! `snapshot_diff(from, to, table, schema_changes :=)`: row-level differences between two
//! versions of a table, compared on the columns both have; each side is a snapshot id or a
//! point in time, `to` may be `'live'` or NULL (the live table). With `schema_changes := true`,
//! how the columns changed instead (added, dropped, renamed, retyped).

use std::sync::Arc;

use crate::engine::travel::{diff_sql, schema_changes_sql};
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{required_str, settings, snapshot_arg, with_ctx_light, Accepts, QueryScan};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ParamType, Produce, Schema, TableFn};

pub struct SnapshotDiff;

pub struct Bind {
    sql: String,
}

impl TableFn for SnapshotDiff {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Any, ParamType::Any, ParamType::Varchar]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[("schema_changes", ParamType::Boolean)]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let from = snapshot_arg(args.positional(0), "from", Accepts { all: false, live: true })?;
        let to = snapshot_arg(args.positional(1), "to", Accepts { all: false, live: true })?;
        let table = required_str(args.positional(2), "the table name", "a table name such as 'main.orders'")?;
        let settings: Settings = settings(args);
        let columns_only = args.named("schema_changes").opt_bool("schema_changes")?.unwrap_or(false);
        let sql = with_ctx_light(args.host, &settings, |ctx| {
            if columns_only {
                schema_changes_sql(ctx, &from, &to, &table)
            } else {
                diff_sql(ctx, &from, &to, &table)
            }
        })?;
        let described = args.host.reader()?.conn().describe(&sql)?;
        Ok((Bind { sql }, Schema::Logical(described)))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        Ok(Produce::Chunks(Box::new(QueryScan::start(host, &bind.sql)?)))
    }
}
