//! `snapshot_verify(snapshot)`: re-reads every file of a snapshot (an id, a point in time, or
//! `'*'` for every snapshot).

use std::sync::Arc;

use crate::engine::point::{self, SnapshotArg};
use crate::engine::verify::verify;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{settings, snapshot_arg, with_ctx, Accepts};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotVerify;

pub struct Bind {
    settings: Settings,
    snapshot: SnapshotArg,
}

impl TableFn for SnapshotVerify {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Any]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let snapshot = snapshot_arg(args.positional(0), "the snapshot", Accepts { all: true, live: false })?;
        let schema = Schema::Simple(vec![
            ("snapshot_id", ColType::Varchar),
            ("file", ColType::Varchar),
            ("status", ColType::Varchar),
            ("detail", ColType::Varchar),
        ]);
        Ok((Bind { settings: settings(args), snapshot }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let lines = with_ctx(host, &bind.settings, |ctx| match &bind.snapshot {
            SnapshotArg::All => verify(ctx, None),
            // an id is verified even when its metadata cannot be read (verify reports that)
            SnapshotArg::Id(id) => verify(ctx, Some(id)),
            at => verify(ctx, Some(&point::snapshot(ctx, at)?.snapshot_id)),
        })?;
        Ok(Produce::Rows(
            lines
                .into_iter()
                .map(|l| vec![Val::Str(l.snapshot_id), Val::Str(l.file), Val::Str(l.status.into()), Val::Str(l.detail)])
                .collect(),
        ))
    }
}
