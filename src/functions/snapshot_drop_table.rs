//! `snapshot_drop_table(scope)`: ADR-004's safe drop — a `pre_drop` snapshot, then DROP TABLE
//! (`scope` a table), or DROP SCHEMA ... CASCADE (`scope` `'s.*'`; one row per table dropped).

use std::sync::Arc;

use crate::engine::drop::{drop_schema, drop_table, refuse_pending};
use crate::engine::scope::Selector;
use crate::engine::sql::ident;
use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::functions::common::{required_str, settings, with_ctx, with_ctx_light};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotDropTable;

/// A schema as SQL, with its database when given.
fn schema_name(catalog: Option<&str>, schema: &str) -> String {
    match catalog {
        Some(c) => format!("{}.{}", ident(c), ident(schema)),
        None => ident(schema),
    }
}

pub struct Bind {
    settings: Settings,
    what: Selector,
}

impl TableFn for SnapshotDropTable {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let scope = required_str(args.positional(0), "the table", "a table such as 'main.orders', or 'schema.*' for a whole schema")?;
        let what = Selector::parse(&scope)?;
        if !matches!(what, Selector::Table(_) | Selector::Schema { .. }) {
            return Err(Error::Input(format!(
                "snapshot_drop_table takes one table or 'schema.*', got '{}'; drop several tables one call each",
                crate::repo::layout::printable(&scope)
            )));
        }
        let settings = settings(args);
        // refusals for other transactions' pending changes come at bind (see refuse_pending)
        with_ctx_light(args.host, &settings, |ctx| match &what {
            Selector::Table(t) => refuse_pending(ctx, t, false),
            Selector::Schema { catalog, schema } => refuse_pending(ctx, &schema_name(catalog.as_deref(), schema), true),
            _ => Ok(()),
        })?;
        let columns = Schema::Simple(vec![("backup_snapshot_id", ColType::Varchar), ("dropped_table", ColType::Varchar)]);
        Ok((Bind { settings, what }, columns))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let dropped = with_ctx(host, &bind.settings, |ctx| match &bind.what {
            Selector::Table(t) => Ok(vec![drop_table(ctx, t)?]),
            Selector::Schema { catalog, schema } => drop_schema(ctx, &schema_name(catalog.as_deref(), schema)),
            _ => unreachable!("checked at bind"),
        })?;
        Ok(Produce::Rows(dropped.into_iter().map(|d| vec![Val::Str(d.backup_snapshot_id), Val::Str(d.table)]).collect()))
    }
}
