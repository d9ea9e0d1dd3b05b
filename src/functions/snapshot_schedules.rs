//! `snapshot_schedules()`: the repository's schedules, one row each: `name, scope, every,
//! retention, last_run, last_snapshot_id, next_run, last_error`.

use std::sync::Arc;

use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{settings, with_ctx_light};
use crate::functions::snapshot_schedule::{schedule_columns, schedule_row};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ParamType, Produce, Schema, TableFn};

pub struct SnapshotSchedules;

impl TableFn for SnapshotSchedules {
    type Bind = Settings;

    fn params() -> &'static [ParamType] {
        &[]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[]
    }

    fn bind(args: &BindArgs) -> Result<(Settings, Schema)> {
        Ok((settings(args), Schema::Simple(schedule_columns())))
    }

    fn produce(host: &Arc<Host>, bind: &Settings, _columns: &[usize]) -> Result<Produce> {
        let all = with_ctx_light(host, bind, crate::engine::schedule::list)?;
        Ok(Produce::Rows(all.iter().map(schedule_row).collect()))
    }
}
