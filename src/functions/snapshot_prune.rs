//! `snapshot_prune(keep_last :=, keep_hourly :=, keep_daily :=, keep_weekly :=, keep_monthly :=,
//! keep_yearly :=, older_than := INTERVAL|TIMESTAMPTZ, type :=, dry_run := false)`.

use std::sync::Arc;

use crate::engine::prune::{prune, Policy};
use crate::engine::{now_micros, Settings};
use crate::error::{Error, Result};
use crate::functions::common::{keep_args, settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{Arg, BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};
use crate::repo::manifest::{civil, days_from_civil, SnapshotKind};

pub struct SnapshotPrune;

pub struct Bind {
    settings: Settings,
    policy: Policy,
}

/// `now - interval`, calendar-correct for months.
pub fn minus_interval(now: i64, months: i32, days: i32, micros: i64) -> i64 {
    let secs = now.div_euclid(1_000_000);
    let frac = now.rem_euclid(1_000_000);
    let (y, mo, d, h, mi, s) = civil(secs);
    let total = y * 12 + (mo as i64 - 1) - months as i64;
    let (ny, nmo) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let month_len = days_from_civil(if nmo == 12 { ny + 1 } else { ny }, if nmo == 12 { 1 } else { nmo + 1 }, 1)
        - days_from_civil(ny, nmo, 1);
    let nd = (d as i64).min(month_len) as u32;
    let base = (days_from_civil(ny, nmo, nd) * 86_400 + h as i64 * 3600 + mi as i64 * 60 + s as i64) * 1_000_000 + frac;
    base - days as i64 * 86_400_000_000 - micros
}

fn cutoff(args: &BindArgs, arg: Arg) -> Result<Option<i64>> {
    Ok(match arg {
        Arg::Missing | Arg::Null => None,
        Arg::Interval { months, days, micros } => Some(minus_interval(now_micros(), months, days, micros)),
        Arg::Timestamp(t) => Some(t),
        Arg::Str(text) => {
            // let DuckDB read '30 days' or '2024-12-01 00:00:00+00'
            let admin = args.host.admin()?;
            let lit = crate::engine::sql::literal(&text);
            let rows = crate::engine::sql::Sql::query(
                &admin,
                &format!("SELECT epoch_us(now() - TRY_CAST({lit} AS INTERVAL)), epoch_us(TRY_CAST({lit} AS TIMESTAMPTZ))"),
            )?;
            let row = rows.rows.into_iter().next().unwrap_or_default();
            match (row.first().cloned().flatten(), row.get(1).cloned().flatten()) {
                (Some(v), _) | (None, Some(v)) => Some(v.parse().map_err(|_| Error::Input(format!("bad older_than '{text}'")))?),
                _ => return Err(Error::Input(format!("older_than '{text}' is neither an INTERVAL nor a TIMESTAMPTZ"))),
            }
        }
        other => return Err(Error::Input(format!("older_than must be an INTERVAL or a TIMESTAMPTZ, got {}", other.describe()))),
    })
}

impl TableFn for SnapshotPrune {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[
            ("keep_last", ParamType::BigInt),
            ("keep_hourly", ParamType::BigInt),
            ("keep_daily", ParamType::BigInt),
            ("keep_weekly", ParamType::BigInt),
            ("keep_monthly", ParamType::BigInt),
            ("keep_yearly", ParamType::BigInt),
            ("older_than", ParamType::Any),
            ("type", ParamType::Varchar),
            ("dry_run", ParamType::Boolean),
        ]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let policy = Policy {
            older_than: cutoff(args, args.named("older_than"))?,
            kind: match args.named("type").opt_str("type")? {
                None => None,
                Some(k) => Some(SnapshotKind::parse(&k).ok_or_else(|| {
                    crate::error::Error::Input(format!(
                        "type '{}' is not a snapshot type; use one of {}",
                        crate::repo::layout::printable(&k),
                        SnapshotKind::ALL.iter().map(|k| format!("'{}'", k.as_str())).collect::<Vec<_>>().join(", ")
                    ))
                })?),
            },
            dry_run: args.named("dry_run").opt_bool("dry_run")?.unwrap_or(false),
            schedule: None,
            ..Policy::keeping(&keep_args(args)?)
        };
        let schema = Schema::Simple(vec![
            ("snapshot_id", ColType::Varchar),
            ("created_at", ColType::TimestampTz),
            ("action", ColType::Varchar),
            ("reasons", ColType::VarcharList),
            ("bytes_freed", ColType::BigInt),
        ]);
        Ok((Bind { settings: settings(args), policy }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let decisions = with_ctx(host, &bind.settings, |ctx| prune(ctx, &bind.policy))?;
        Ok(Produce::Rows(
            decisions
                .into_iter()
                .map(|d| {
                    vec![
                        Val::Str(d.snapshot_id),
                        crate::functions::common::listed_time(d.created_at),
                        Val::Str(if d.keep { "keep" } else { "delete" }.into()),
                        Val::StrList(d.reasons),
                        Val::I64(if d.keep { 0 } else { d.bytes as i64 }),
                    ]
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::manifest::parse_timestamp;

    #[test]
    fn interval_subtraction_is_calendar_correct() {
        let now = parse_timestamp("2024-03-31T12:00:00Z").unwrap();
        assert_eq!(minus_interval(now, 1, 0, 0), parse_timestamp("2024-02-29T12:00:00Z").unwrap());
        assert_eq!(minus_interval(now, 12, 1, 1_000_000), parse_timestamp("2023-03-30T11:59:59Z").unwrap());
        assert_eq!(minus_interval(now, -1, 0, 0), parse_timestamp("2024-04-30T12:00:00Z").unwrap());
    }
}
