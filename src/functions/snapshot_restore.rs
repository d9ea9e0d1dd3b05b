//! `snapshot_restore(id, [table], target :=)`.

use std::sync::Arc;

use crate::engine::restore::{restore, RestoreRequest};
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{required_str, restore_rows, restore_schema, settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ParamType, Produce, Schema, TableFn};

pub struct SnapshotRestore;

pub struct Bind {
    settings: Settings,
    req: RestoreRequest,
}

impl TableFn for SnapshotRestore {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar, ParamType::Varchar]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[
            ("target", ParamType::Varchar),
            ("schema", ParamType::Varchar),
            ("target_schema", ParamType::Varchar),
            ("target_catalog", ParamType::Varchar),
            ("backup_existing", ParamType::Boolean),
        ]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let id = required_str(args.positional(0), "snapshot id")?;
        crate::repo::layout::validate_id(&id)?;
        let table = args.positional(1).opt_str("table name")?;
        let req = RestoreRequest {
            id,
            table,
            target: args.named("target").opt_str("target")?,
            schema: args.named("schema").opt_str("schema")?,
            target_schema: args.named("target_schema").opt_str("target_schema")?,
            target_catalog: args.named("target_catalog").opt_str("target_catalog")?,
            backup_existing: args.named("backup_existing").opt_bool("backup_existing")?.unwrap_or(true),
        };
        let schema = restore_schema();
        Ok((Bind { settings: settings(args), req }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let out = with_ctx(host, &bind.settings, |ctx| restore(ctx, &bind.req))?;
        Ok(restore_rows(out))
    }
}
