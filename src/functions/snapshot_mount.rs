//! `snapshot_mount(snapshot, schema :=)` and `snapshot_unmount(schema)`: a whole snapshot (an
//! id, or the newest taken at or before a point in time) as read-only views in a schema of
//! the user's choice (default: the snapshot id).

use std::sync::Arc;

use crate::engine::travel::{mount, unmount};
use crate::engine::Settings;
use crate::error::Result;
use crate::engine::point::{self, SnapshotArg};
use crate::functions::common::{required_str, settings, snapshot_arg, with_ctx, Accepts};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotMount;

pub struct MountBind {
    settings: Settings,
    snapshot: SnapshotArg,
    schema: Option<String>,
}

impl TableFn for SnapshotMount {
    type Bind = MountBind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Any]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[("schema", ParamType::Varchar)]
    }

    fn bind(args: &BindArgs) -> Result<(MountBind, Schema)> {
        let snapshot = snapshot_arg(args.positional(0), "the snapshot", Accepts::default())?;
        let schema = args.named("schema").opt_str("schema")?;
        let columns = Schema::Simple(vec![("snapshot_id", ColType::Varchar), ("view_name", ColType::Varchar), ("source", ColType::Varchar)]);
        Ok((MountBind { settings: settings(args), snapshot, schema }, columns))
    }

    fn produce(host: &Arc<Host>, bind: &MountBind, _columns: &[usize]) -> Result<Produce> {
        let (id, views) = with_ctx(host, &bind.settings, |ctx| {
            let id = point::snapshot(ctx, &bind.snapshot)?.snapshot_id.clone();
            let views = mount(ctx, &id, bind.schema.as_deref().unwrap_or(&id))?;
            Ok((id, views))
        })?;
        Ok(Produce::Rows(views.into_iter().map(|(v, s)| vec![Val::Str(id.clone()), Val::Str(v), Val::Str(s)]).collect()))
    }
}

pub struct SnapshotUnmount;

pub struct UnmountBind {
    settings: Settings,
    schema: String,
}

impl TableFn for SnapshotUnmount {
    type Bind = UnmountBind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(UnmountBind, Schema)> {
        let schema = required_str(args.positional(0), "the schema", "the schema a snapshot was mounted in")?;
        Ok((UnmountBind { settings: settings(args), schema }, Schema::Simple(vec![("view_name", ColType::Varchar)])))
    }

    fn produce(host: &Arc<Host>, bind: &UnmountBind, _columns: &[usize]) -> Result<Produce> {
        let views = with_ctx(host, &bind.settings, |ctx| unmount(ctx, &bind.schema))?;
        Ok(Produce::Rows(views.into_iter().map(|v| vec![Val::Str(v)]).collect()))
    }
}
