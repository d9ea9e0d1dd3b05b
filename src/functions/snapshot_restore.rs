//! `snapshot_restore(snapshot, scope, target :=, target_schema :=, target_catalog :=,
//! backup_existing :=, exclude :=, include_deleted :=)`: `snapshot` is an id or a point in
//! time, `scope` what to restore of it (`'*'`: everything it holds; tables it records as
//! deleted in the source only with `include_deleted := true`).

use std::sync::Arc;

use crate::engine::restore::{refuse_pending, restore, RestoreRequest};
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{restore_rows, restore_schema, scope_arg, settings, snapshot_arg, with_ctx, with_ctx_light, Accepts};
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
        &[ParamType::Any, ParamType::Any]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[
            ("target", ParamType::Varchar),
            ("target_schema", ParamType::Varchar),
            ("target_catalog", ParamType::Varchar),
            ("backup_existing", ParamType::Boolean),
            ("exclude", ParamType::Any),
            ("include_deleted", ParamType::Boolean),
        ]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let snapshot = snapshot_arg(args.positional(0), "the snapshot", Accepts::default())?;
        let scope = scope_arg(args.positional(1), args.named("exclude"))?;
        let req = RestoreRequest {
            target: args.named("target").opt_str("target")?,
            target_schema: args.named("target_schema").opt_str("target_schema")?,
            target_catalog: args.named("target_catalog").opt_str("target_catalog")?,
            backup_existing: args.named("backup_existing").opt_bool("backup_existing")?.unwrap_or(true),
            include_deleted: args.named("include_deleted").opt_bool("include_deleted")?.unwrap_or(false),
            ..RestoreRequest::new(snapshot, scope)
        };
        let settings = settings(args);
        // refusals come at bind, where they do not end the caller's transaction (1.5)
        with_ctx_light(args.host, &settings, |ctx| refuse_pending(ctx, &req))?;
        Ok((Bind { settings, req }, restore_schema()))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let out = with_ctx(host, &bind.settings, |ctx| restore(ctx, &bind.req))?;
        Ok(restore_rows(out))
    }
}
