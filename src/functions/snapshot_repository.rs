//! `snapshot_repository(granularity :=, scope :=, exclude :=)`: with `granularity`, locks the
//! current repository to that granularity and scope (once; see `engine::govern`); without,
//! shows its settings. One row: `project, path, granularity, scope` (both 'unlocked' when none),
//! locked_at, locked_by, format_version`.

use std::sync::Arc;

use crate::engine::govern::{self, RepositoryInfo};
use crate::engine::scope::ScopeSpec;
use crate::engine::Settings;
use crate::error::{Error, Result};
use crate::functions::common::{scope_arg, settings, with_ctx, with_ctx_light};
use crate::host::session::Host;
use crate::host::table_fn::{Arg, BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};
use crate::repo::config::{shown, Granularity};
use crate::repo::manifest::parse_timestamp;

pub struct SnapshotRepository;

pub struct Bind {
    settings: Settings,
    lock: Option<(Granularity, Option<ScopeSpec>)>,
}

pub fn info_row(info: &RepositoryInfo) -> Vec<Val> {
    let text = |s: Option<String>| s.map(Val::Str).unwrap_or(Val::Null);
    let c = info.config.as_ref();
    let (granularity, scope) = shown(c);
    vec![
        Val::Str(info.project.clone()),
        Val::Str(info.path.clone()),
        Val::Str(granularity),
        Val::Str(scope),
        c.and_then(|c| parse_timestamp(&c.locked_at)).map(|t| Val::TimestampTz(govern::to_second(t))).unwrap_or(Val::Null),
        text(c.map(|c| c.locked_by.clone())),
        c.map(|c| Val::I64(c.format_version as i64)).unwrap_or(Val::Null),
    ]
}

impl TableFn for SnapshotRepository {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[("granularity", ParamType::Varchar), ("scope", ParamType::Any), ("exclude", ParamType::Any)]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let scope_given = !matches!(args.named("scope"), Arg::Null | Arg::Missing);
        let lock = match args.named("granularity").opt_str("granularity")? {
            Some(g) => {
                let granularity = Granularity::parse(&g)?;
                let scope = if scope_given { Some(scope_arg(args.named("scope"), args.named("exclude"))?) } else { None };
                Some((granularity, scope))
            }
            None if scope_given => {
                return Err(Error::Input(
                    "give granularity := 'database', 'schema' or 'table' with scope := to lock the repository".into(),
                ))
            }
            None => None,
        };
        let columns = vec![
            ("project", ColType::Varchar),
            ("path", ColType::Varchar),
            ("granularity", ColType::Varchar),
            ("scope", ColType::Varchar),
            ("locked_at", ColType::TimestampTz),
            ("locked_by", ColType::Varchar),
            ("format_version", ColType::BigInt),
        ];
        Ok((Bind { settings: settings(args), lock }, Schema::Simple(columns)))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let info = match &bind.lock {
            Some((granularity, scope)) => with_ctx(host, &bind.settings, |ctx| govern::lock(ctx, *granularity, scope.clone()))?,
            None => with_ctx_light(host, &bind.settings, govern::show)?,
        };
        Ok(Produce::Rows(vec![info_row(&info)]))
    }
}
