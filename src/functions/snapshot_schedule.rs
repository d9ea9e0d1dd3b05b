//! `snapshot_schedule(name, scope, every := INTERVAL, keep_last :=, keep_hourly :=,
//! keep_daily :=, keep_weekly :=, keep_monthly :=, keep_yearly :=, exclude :=)`: stores a
//! schedule in the repository (replacing one of that name) and returns it as
//! `snapshot_schedules()` shows it. The background scheduler (`host::scheduler`) runs it.

use std::sync::Arc;

use crate::engine::schedule::{schedule, ScheduleRequest};
use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::functions::common::{keep_args, scope_arg, settings, with_ctx_light};
use crate::host::session::Host;
use crate::host::table_fn::{Arg, BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};
use crate::repo::config::scope_text;
use crate::repo::schedule::{Every, Schedule};

pub struct SnapshotSchedule;

pub struct Bind {
    settings: Settings,
    req: ScheduleRequest,
}

/// The columns every schedule listing shares.
pub fn schedule_columns() -> Vec<(&'static str, ColType)> {
    vec![
        ("name", ColType::Varchar),
        ("scope", ColType::Varchar),
        ("every", ColType::Interval),
        ("retention", ColType::Varchar),
        ("last_run", ColType::TimestampTz),
        ("last_snapshot_id", ColType::Varchar),
        ("next_run", ColType::TimestampTz),
        ("last_error", ColType::Varchar),
    ]
}

pub fn schedule_row(s: &Schedule) -> Vec<Val> {
    let text = |t: Option<&String>| t.map(|t| Val::Str(t.clone())).unwrap_or(Val::Null);
    let time = |t: Option<i64>| t.map(crate::functions::common::listed_time).unwrap_or(Val::Null);
    vec![
        Val::Str(s.name.clone()),
        Val::Str(scope_text(&s.scope)),
        Val::Interval { months: s.every.months, days: s.every.days, micros: s.every.micros },
        s.retention.text().map(Val::Str).unwrap_or(Val::Null),
        time(crate::engine::schedule::stored_time(s.last_run.as_deref())),
        text(s.last_snapshot_id.as_ref()),
        time(Some(s.next_run())),
        text(s.last_error.as_ref()),
    ]
}

/// `every :=` as an INTERVAL, or text DuckDB reads as one ('1 hour').
fn every_arg(args: &BindArgs, arg: Arg) -> Result<Every> {
    let every = match arg {
        Arg::Interval { months, days, micros } => Every { months, days, micros },
        Arg::Str(text) => {
            let admin = args.host.admin()?;
            let lit = crate::engine::sql::literal(&text);
            let rows = crate::engine::sql::Sql::query(
                &admin,
                &format!("SELECT datepart('month', i) + 12 * datepart('year', i), datepart('day', i), epoch_us(i) - epoch_us(to_months(datepart('month', i) + 12 * datepart('year', i)) + to_days(datepart('day', i))) FROM (SELECT TRY_CAST({lit} AS INTERVAL) AS i)"),
            )?;
            let row = rows.rows.into_iter().next().unwrap_or_default();
            let num = |i: usize| row.get(i).cloned().flatten().and_then(|v| v.parse::<i64>().ok());
            match (num(0), num(1), num(2)) {
                (Some(m), Some(d), Some(us)) => Every { months: m as i32, days: d as i32, micros: us },
                _ => {
                    return Err(Error::Input(format!(
                        "every := '{}' is not an INTERVAL; write INTERVAL 1 HOUR, INTERVAL '15 minutes' or '1 day'",
                        crate::repo::layout::printable(&text)
                    )))
                }
            }
        }
        Arg::Missing | Arg::Null => {
            return Err(Error::Input("give how often with every := INTERVAL, e.g. every := INTERVAL 1 HOUR".into()))
        }
        other => return Err(Error::Input(format!("every := must be an INTERVAL such as INTERVAL 1 HOUR, got {}", other.describe()))),
    };
    every.validate()
}

impl TableFn for SnapshotSchedule {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar, ParamType::Any]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[
            ("every", ParamType::Any),
            ("keep_last", ParamType::BigInt),
            ("keep_hourly", ParamType::BigInt),
            ("keep_daily", ParamType::BigInt),
            ("keep_weekly", ParamType::BigInt),
            ("keep_monthly", ParamType::BigInt),
            ("keep_yearly", ParamType::BigInt),
            ("exclude", ParamType::Any),
        ]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let name = match args.positional(0) {
            Arg::Str(s) => s,
            _ => return Err(Error::Input("the schedule needs a name first, e.g. CALL snapshot_schedule('hourly', '*', every := INTERVAL 1 HOUR)".into())),
        };
        crate::repo::schedule::validate_name(&name)?;
        let default_scope = matches!(args.positional(1), Arg::Null | Arg::Missing) && matches!(args.named("exclude"), Arg::Null | Arg::Missing);
        let req = ScheduleRequest {
            scope: scope_arg(args.positional(1), args.named("exclude"))?,
            default_scope,
            every: every_arg(args, args.named("every"))?,
            retention: keep_args(args)?,
            name,
        };
        Ok((Bind { settings: settings(args), req }, Schema::Simple(schedule_columns())))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let (s, _) = with_ctx_light(host, &bind.settings, |ctx| schedule(ctx, &bind.req))?;
        crate::host::scheduler::wake();
        Ok(Produce::Rows(vec![schedule_row(&s)]))
    }
}
