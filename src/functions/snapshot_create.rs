//! `snapshot_create([tables], schema :=, id :=, description :=, created_by :=, incremental :=)`.

use std::sync::Arc;

use crate::engine::create::{create, CreateRequest, KIND_MANUAL};
use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::functions::common::{settings, table_row, with_ctx, TABLE_COLUMNS};
use crate::host::session::Host;
use crate::host::table_fn::{Arg, BindArgs, ParamType, Produce, Schema, TableFn};

pub struct SnapshotCreate;

pub struct Bind {
    settings: Settings,
    req: CreateRequest,
}

impl TableFn for SnapshotCreate {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Any]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[
            ("schema", ParamType::Varchar),
            ("id", ParamType::Varchar),
            ("description", ParamType::Varchar),
            ("created_by", ParamType::Varchar),
            ("incremental", ParamType::Boolean),
        ]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        // NULL (or no argument) means: no table list, i.e. schema := or the whole database
        let tables = match args.positional(0) {
            Arg::Null | Arg::Missing => None,
            Arg::Str(s) => Some(vec![s]),
            Arg::StrList(items) => Some(
                items
                    .into_iter()
                    .map(|i| i.ok_or_else(|| Error::Input("the table list contains NULL".into())))
                    .collect::<Result<_>>()?,
            ),
            Arg::Bool(_) | Arg::Other(_) | Arg::Int(_) | Arg::Interval { .. } | Arg::Timestamp(_) => {
                return Err(Error::Input("tables must be a VARCHAR or VARCHAR[] (or NULL for all tables)".into()))
            }
        };
        let req = CreateRequest {
            tables,
            schema: args.named("schema").opt_str("schema")?,
            id: args.named("id").opt_str("id")?,
            description: args.named("description").opt_str("description")?,
            created_by: args.named("created_by").opt_str("created_by")?,
            kind: KIND_MANUAL,
            id_prefix: "snap",
            objects: None,
            incremental: args.named("incremental").opt_bool("incremental")?,
        };
        if let Some(id) = &req.id {
            crate::repo::layout::validate_id(id)?;
        }
        let schema = Schema::Simple(TABLE_COLUMNS.to_vec());
        Ok((Bind { settings: settings(args), req }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let m = with_ctx(host, &bind.settings, |ctx| create(ctx, &bind.req))?;
        Ok(Produce::Rows(m.tables.iter().map(|t| table_row(&m, t)).collect()))
    }
}
