//! `snapshot_drop(id)`: deletes a snapshot's files.

use std::sync::Arc;

use crate::engine::drop::drop_snapshot;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{required_str, settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotDrop;

pub struct Bind {
    settings: Settings,
    id: String,
}

impl TableFn for SnapshotDrop {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let id = required_str(args.positional(0), "the snapshot id", "the id of a snapshot (list them with FROM snapshots())")?;
        crate::repo::layout::validate_id(&id)?;
        let schema = Schema::Simple(vec![
            ("snapshot_id", ColType::Varchar),
            ("files_deleted", ColType::BigInt),
            ("bytes_freed", ColType::BigInt),
            ("files_kept", ColType::BigInt),
            ("bytes_kept", ColType::BigInt),
        ]);
        Ok((Bind { settings: settings(args), id }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let d = with_ctx(host, &bind.settings, |ctx| drop_snapshot(ctx, &bind.id))?;
        Ok(Produce::Rows(vec![vec![
            Val::Str(d.snapshot_id),
            Val::I64(d.files_deleted as i64),
            Val::I64(d.bytes_freed as i64),
            Val::I64(d.files_kept as i64),
            Val::I64(d.bytes_kept as i64),
        ]]))
    }
}
