//! `snapshot_export(id, path)`: a self-contained ADR-004 copy of a snapshot in `path`.

use std::sync::Arc;

use crate::engine::export::export;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{required_str, settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotExport;

pub struct Bind {
    settings: Settings,
    id: String,
    path: String,
}

impl TableFn for SnapshotExport {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar, ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let id = required_str(args.positional(0), "snapshot id")?;
        crate::repo::layout::validate_id(&id)?;
        let path = required_str(args.positional(1), "export path")?;
        let schema = Schema::Simple(vec![
            ("snapshot_id", ColType::Varchar),
            ("path", ColType::Varchar),
            ("files", ColType::BigInt),
            ("bytes", ColType::BigInt),
        ]);
        Ok((Bind { settings: settings(args), id, path }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let e = with_ctx(host, &bind.settings, |ctx| export(ctx, &bind.id, std::path::Path::new(&bind.path)))?;
        Ok(Produce::Rows(vec![vec![Val::Str(e.snapshot_id), Val::Str(e.path), Val::I64(e.files as i64), Val::I64(e.bytes as i64)]]))
    }
}
