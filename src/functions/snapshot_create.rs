//! `snapshot_create(scope, id :=, description :=, created_by :=, incremental :=, exclude :=,
//! schema :=, columns :=)`: `scope` is a table, a list, `'*'` (NULL: the same, or a locked
//! repository's scope), `'s.*'` or globs; `columns` keeps only those columns of named tables.

use std::sync::Arc;

use crate::engine::create::{create, CreateRequest};
use crate::engine::scope::{ScopeSpec, Selector};
use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::functions::common::{names_arg, scope_arg, settings, table_columns, table_row, with_ctx, with_ctx_light};
use crate::host::session::Host;
use crate::host::table_fn::{Arg, BindArgs, ParamType, Produce, Schema, TableFn};
use crate::repo::manifest::SnapshotKind;

pub struct SnapshotCreate;

/// A named table that exists only in the caller's open transaction cannot be snapshotted
/// (snapshots capture committed data): say so, instead of "does not exist".
fn uncommitted_tables(args: &BindArgs, settings: &Settings, scope: &ScopeSpec) -> Result<()> {
    for sel in &scope.selectors {
        let Selector::Table(name) = sel else { continue };
        let Some(parts) = crate::engine::sql::split_qualified(name) else { continue };
        let missing = with_ctx_light(args.host, settings, |ctx| {
            let (cat, schema, table) = match parts.as_slice() {
                [t] => (ctx.database.clone(), ctx.schema.clone(), t.clone()),
                [s, t] => (ctx.database.clone(), s.clone(), t.clone()),
                [c, s, t] => (c.clone(), s.clone(), t.clone()),
                _ => return Ok(None),
            };
            match crate::engine::catalog::resolve_table(ctx.db, &ctx.database, &ctx.schema, name) {
                Err(Error::TableNotFound { .. }) => Ok(Some((cat, schema, table))),
                _ => Ok(None),
            }
        })?;
        if let Some((cat, schema, table)) = missing {
            if args.caller_sees_table(&cat, &schema, &table) {
                return Err(Error::Input(format!(
                    "table {} exists only in your open transaction; a snapshot captures committed data: COMMIT first (DuckDB ends a transaction at any error, so ROLLBACK now and run it again)",
                    crate::repo::layout::printable(name)
                )));
            }
        }
    }
    Ok(())
}

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
            ("id", ParamType::Varchar),
            ("description", ParamType::Varchar),
            ("created_by", ParamType::Varchar),
            ("incremental", ParamType::Boolean),
            ("exclude", ParamType::Any),
            ("schema", ParamType::Varchar),
            ("columns", ParamType::Any),
        ]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let scope_given = !matches!(args.positional(0), Arg::Null | Arg::Missing);
        let mut scope = scope_arg(args.positional(0), args.named("exclude"))?;
        let schema_given = args.named("schema").opt_str("schema")?;
        // `schema := 's'` is `'s.*'`
        if let Some(s) = schema_given.clone() {
            if scope_given {
                return Err(Error::Input(format!("give either a scope or schema := '{s}', not both (the scope '{s}.*' is the same)")));
            }
            scope = ScopeSpec { selectors: vec![Selector::Schema { catalog: None, schema: s }], exclude: scope.exclude };
        }
        let req = CreateRequest {
            scope,
            id: args.named("id").opt_str("id")?,
            description: args.named("description").opt_str("description")?,
            created_by: args.named("created_by").opt_str("created_by")?,
            kind: SnapshotKind::Manual,
            id_prefix: "snap",
            objects: None,
            incremental: args.named("incremental").opt_bool("incremental")?,
            default_scope: !scope_given && schema_given.is_none() && matches!(args.named("exclude"), Arg::Null | Arg::Missing),
            columns: match names_arg(args.named("columns"), "columns")? {
                Some(c) if c.is_empty() => return Err(Error::Input("columns := is empty; name the columns to keep, or leave it out for all".into())),
                other => other,
            },
            schedule: None,
        };
        if let Some(id) = &req.id {
            crate::repo::layout::validate_id(id)?;
        }
        let settings = settings(args);
        uncommitted_tables(args, &settings, &req.scope)?;
        let schema = Schema::Simple(table_columns(&[]));
        Ok((Bind { settings, req }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let m = with_ctx(host, &bind.settings, |ctx| create(ctx, &bind.req))?;
        Ok(Produce::Rows(m.tables.iter().map(|t| table_row(&m, t, Vec::new())).collect()))
    }
}
