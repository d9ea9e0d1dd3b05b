//! `snapshot_unschedule(name)`: removes a schedule (its snapshots stay) and returns it as it
//! was, in `snapshot_schedules()`'s columns.

use std::sync::Arc;

use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::functions::common::{settings, with_ctx_light};
use crate::functions::snapshot_schedule::{schedule_columns, schedule_row};
use crate::host::session::Host;
use crate::host::table_fn::{Arg, BindArgs, ParamType, Produce, Schema, TableFn};

pub struct SnapshotUnschedule;

pub struct Bind {
    settings: Settings,
    name: String,
}

impl TableFn for SnapshotUnschedule {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let name = match args.positional(0) {
            Arg::Str(s) => s,
            _ => return Err(Error::Input("give the schedule's name; FROM snapshot_schedules() lists them".into())),
        };
        Ok((Bind { settings: settings(args), name }, Schema::Simple(schedule_columns())))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let removed = with_ctx_light(host, &bind.settings, |ctx| crate::engine::schedule::unschedule(ctx, &bind.name))?;
        Ok(Produce::Rows(vec![schedule_row(&removed)]))
    }
}
