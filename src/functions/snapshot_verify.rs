//! `snapshot_verify(id)`: re-reads every file of a snapshot (NULL: of every snapshot).

use std::sync::Arc;

use crate::engine::verify::verify;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotVerify;

pub struct Bind {
    settings: Settings,
    id: Option<String>,
}

impl TableFn for SnapshotVerify {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let id = args.positional(0).opt_str("snapshot id")?;
        let schema = Schema::Simple(vec![
            ("snapshot_id", ColType::Varchar),
            ("file", ColType::Varchar),
            ("status", ColType::Varchar),
            ("detail", ColType::Varchar),
        ]);
        Ok((Bind { settings: settings(args), id }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let lines = with_ctx(host, &bind.settings, |ctx| verify(ctx, bind.id.as_deref()))?;
        Ok(Produce::Rows(
            lines
                .into_iter()
                .map(|l| vec![Val::Str(l.snapshot_id), Val::Str(l.file), Val::Str(l.status.into()), Val::Str(l.detail)])
                .collect(),
        ))
    }
}
