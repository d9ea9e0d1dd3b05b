//! `snapshot_tables([id])`: one row per table per snapshot, with columns and primary key.

use std::sync::Arc;

use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{settings, with_ctx};
use crate::functions::snapshots::list_manifests;
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};
use crate::repo::manifest;

pub struct SnapshotTables;

pub struct Bind {
    settings: Settings,
    id: Option<String>,
}

impl TableFn for SnapshotTables {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let id = args.positional(0).opt_str("snapshot id")?;
        let schema = Schema::Simple(vec![
            ("snapshot_id", ColType::Varchar),
            ("schema_name", ColType::Varchar),
            ("table_name", ColType::Varchar),
            ("file", ColType::Varchar),
            ("row_count", ColType::BigInt),
            ("size_bytes", ColType::BigInt),
            ("columns", ColType::NameTypeList),
            ("primary_key", ColType::VarcharList),
        ]);
        Ok((Bind { settings: settings(args), id }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let manifests = with_ctx(host, &bind.settings, |ctx| match &bind.id {
            Some(id) => Ok(vec![manifest::load(&ctx.repo, id)?]),
            None => list_manifests(&ctx.repo),
        })?;
        let mut rows = Vec::new();
        for m in manifests {
            for t in &m.tables {
                rows.push(vec![
                    Val::Str(m.snapshot_id.clone()),
                    Val::Str(t.bucket.clone()),
                    Val::Str(t.table.clone()),
                    Val::Str(t.file.clone()),
                    Val::I64(t.row_count as i64),
                    Val::I64(t.size_bytes as i64),
                    Val::NameTypeList(t.schema.columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect()),
                    Val::StrList(t.schema.primary_key.clone()),
                ]);
            }
        }
        Ok(Produce::Rows(rows))
    }
}
