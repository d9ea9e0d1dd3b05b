//! `snapshot_describe()`: one row per repository under the current `snapshot_directory` (the
//! current project's first): its lock, how many snapshots and tables it holds, the bytes its
//! files occupy against the bytes its snapshots read, its oldest and newest snapshot, the
//! tables currently deleted in the source, and the format versions present.

use std::sync::Arc;

use crate::engine::govern;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{settings, with_ctx_light};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotDescribe;

impl TableFn for SnapshotDescribe {
    type Bind = Settings;

    fn params() -> &'static [ParamType] {
        &[]
    }

    fn bind(args: &BindArgs) -> Result<(Settings, Schema)> {
        let columns = vec![
            ("project", ColType::Varchar),
            ("path", ColType::Varchar),
            ("granularity", ColType::Varchar),
            ("scope", ColType::Varchar),
            ("snapshot_count", ColType::BigInt),
            ("table_count", ColType::BigInt),
            ("bytes_stored", ColType::BigInt),
            ("bytes_referenced", ColType::BigInt),
            ("oldest_snapshot_id", ColType::Varchar),
            ("oldest_created_at", ColType::TimestampTz),
            ("newest_snapshot_id", ColType::Varchar),
            ("newest_created_at", ColType::TimestampTz),
            ("deleted_in_source", ColType::VarcharList),
            ("format_versions", ColType::VarcharList),
        ];
        Ok((settings(args), Schema::Simple(columns)))
    }

    fn produce(host: &Arc<Host>, bind: &Settings, _columns: &[usize]) -> Result<Produce> {
        let described = with_ctx_light(host, bind, govern::describe)?;
        let id = |s: &Option<(String, i64)>| s.as_ref().map(|(i, _)| Val::Str(i.clone())).unwrap_or(Val::Null);
        let at = |s: &Option<(String, i64)>| s.as_ref().map(|(_, t)| Val::TimestampTz(*t)).unwrap_or(Val::Null);
        let rows = described
            .into_iter()
            .map(|d| {
                vec![
                    Val::Str(d.project),
                    Val::Str(d.path),
                    Val::Str(d.granularity),
                    Val::Str(d.scope),
                    Val::I64(d.snapshot_count as i64),
                    Val::I64(d.table_count as i64),
                    Val::I64(d.bytes_stored as i64),
                    Val::I64(d.bytes_referenced as i64),
                    id(&d.oldest),
                    at(&d.oldest),
                    id(&d.newest),
                    at(&d.newest),
                    Val::StrList(d.deleted_in_source),
                    Val::StrList(d.format_versions),
                ]
            })
            .collect();
        Ok(Produce::Rows(rows))
    }
}
