//! `snapshot_gc(dry_run := false)`: removes leftovers no published snapshot references.

use std::sync::Arc;

use crate::repo::gc::gc;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{settings, with_ctx};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotGc;

pub struct Bind {
    settings: Settings,
    dry_run: bool,
}

impl TableFn for SnapshotGc {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[]
    }

    fn named() -> &'static [(&'static str, ParamType)] {
        &[("dry_run", ParamType::Boolean)]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let dry_run = args.named("dry_run").opt_bool("dry_run")?.unwrap_or(false);
        let schema = Schema::Simple(vec![
            ("path", ColType::Varchar),
            ("kind", ColType::Varchar),
            ("bytes", ColType::BigInt),
            ("action", ColType::Varchar),
        ]);
        Ok((Bind { settings: settings(args), dry_run }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let items = with_ctx(host, &bind.settings, |ctx| gc(&ctx.repo, ctx.lock_timeout, bind.dry_run))?;
        Ok(Produce::Rows(
            items
                .into_iter()
                .map(|i| {
                    vec![
                        Val::Str(i.path),
                        Val::Str(i.kind.into()),
                        Val::I64(i.bytes as i64),
                        Val::Str(if i.deleted { "deleted" } else { "would delete" }.into()),
                    ]
                })
                .collect(),
        ))
    }
}
