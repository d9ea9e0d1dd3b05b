//! `snapshot_copy(snapshot, destination := …, source := …)`: copies snapshots (an id, a
//! point in time, or `'*'`) between the current repository and another folder or bucket.

use std::sync::Arc;

use crate::engine::copy::{copy_snapshots, Other};
use crate::engine::point::SnapshotArg;
use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::functions::common::{settings_with, snapshot_arg, with_ctx, Accepts};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotCopy;

pub struct Bind {
    settings: Settings,
    snapshot: SnapshotArg,
    destination: Option<String>,
    source: Option<String>,
}

impl TableFn for SnapshotCopy {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Any]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[("destination", ParamType::Varchar), ("source", ParamType::Varchar)]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let snapshot = snapshot_arg(args.positional(0), "the snapshot to copy", Accepts { all: true, live: false })?;
        let destination = args.named("destination").opt_str("destination")?.filter(|s| !s.trim().is_empty());
        let source = args.named("source").opt_str("source")?.filter(|s| !s.trim().is_empty());
        if destination.is_some() == source.is_some() {
            return Err(Error::Input(
                "snapshot_copy needs exactly one of destination := '<folder or s3://bucket/prefix>' (copy from the current repository) or source := '…' (copy into it)".into(),
            ));
        }
        let schema = Schema::Simple(vec![
            ("snapshot_id", ColType::Varchar),
            ("files_copied", ColType::BigInt),
            ("bytes_copied", ColType::BigInt),
            ("files_skipped", ColType::BigInt),
        ]);
        Ok((Bind { settings: settings_with(args, true), snapshot, destination, source }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let copied = with_ctx(host, &bind.settings, |ctx| {
            let other = match (&bind.destination, &bind.source) {
                (Some(d), _) => Other::Destination(ctx.open_repo(d)?),
                (_, Some(s)) => Other::Source(ctx.open_repo(s)?),
                _ => unreachable!("checked at bind"),
            };
            copy_snapshots(ctx, &bind.snapshot, other)
        })?;
        Ok(Produce::Rows(
            copied
                .into_iter()
                .map(|c| {
                    vec![
                        Val::Str(c.snapshot_id),
                        Val::I64(c.files_copied as i64),
                        Val::I64(c.bytes_copied as i64),
                        Val::I64(c.files_skipped as i64),
                    ]
                })
                .collect(),
        ))
    }
}
