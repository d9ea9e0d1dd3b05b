//! `snapshot_at(point)`: the recovery point for a moment (TIMESTAMPTZ, TIMESTAMP or DATE) —
//! the newest snapshot taken at or before it, as a `snapshots()` row. No snapshot that old is an error naming the
//! oldest one.

use std::sync::Arc;

use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::functions::common::{settings, with_ctx_light};
use crate::functions::snapshots::{snapshot_row, SNAPSHOT_COLUMNS};
use crate::host::session::Host;
use crate::engine::point::SnapshotArg;
use crate::functions::common::{snapshot_arg, Accepts};
use crate::host::table_fn::{BindArgs, ParamType, Produce, Schema, TableFn};

pub struct SnapshotAt;

pub struct Bind {
    settings: Settings,
    at: SnapshotArg,
}

impl TableFn for SnapshotAt {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Any]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let at = match snapshot_arg(args.positional(0), "the point in time", Accepts::default())? {
            SnapshotArg::Id(_) => {
                return Err(Error::Input(format!(
                    "the point in time must be a TIMESTAMPTZ, TIMESTAMP or DATE such as TIMESTAMPTZ '2024-12-11 12:00:00+00', got {}",
                    args.positional(0).describe()
                )))
            }
            at => at,
        };
        Ok((Bind { settings: settings(args), at }, Schema::Simple(SNAPSHOT_COLUMNS.to_vec())))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let (repo, m) = with_ctx_light(host, &bind.settings, |ctx| Ok((ctx.repo.clone(), crate::engine::point::snapshot(ctx, &bind.at)?)))?;
        Ok(Produce::Rows(vec![snapshot_row(&repo, &m, true)]))
    }
}
