//! `snapshot_history(table)`: the table's timeline, one row per snapshot that has it.

use std::sync::Arc;

use crate::engine::travel::history;
use crate::engine::Settings;
use crate::error::Result;
use crate::functions::common::{lineage_values, listed_time, required_str, settings, with_ctx_light, LINEAGE_COLUMNS};
use crate::host::session::Host;
use crate::host::table_fn::{BindArgs, ColType, ParamType, Produce, Schema, TableFn, Val};

pub struct SnapshotHistory;

pub struct Bind {
    settings: Settings,
    table: String,
}

impl TableFn for SnapshotHistory {
    type Bind = Bind;

    fn params() -> &'static [ParamType] {
        &[ParamType::Varchar]
    }

    fn bind(args: &BindArgs) -> Result<(Bind, Schema)> {
        let table = required_str(args.positional(0), "the table name", "a table name such as 'main.orders'")?;
        // when and which first, status and rows last, lineage and costs in the middle
        let mut columns = vec![
            ("snapshot_id", ColType::Varchar),
            ("created_at", ColType::TimestampTz),
            ("type", ColType::Varchar),
            ("schema_name", ColType::Varchar),
            ("table_name", ColType::Varchar),
        ];
        columns.extend(LINEAGE_COLUMNS);
        columns.extend([
            ("schema_version", ColType::BigInt),
            ("size_bytes", ColType::BigInt),
            ("status", ColType::Varchar),
            ("row_count", ColType::BigInt),
            ("row_count_change", ColType::BigInt),
        ]);
        let schema = Schema::Simple(columns);
        Ok((Bind { settings: settings(args), table }, schema))
    }

    fn produce(host: &Arc<Host>, bind: &Bind, _columns: &[usize]) -> Result<Produce> {
        let found = with_ctx_light(host, &bind.settings, |ctx| history(ctx, &bind.table))?;
        let mut rows = Vec::with_capacity(found.len());
        for (i, (m, e)) in found.iter().enumerate() {
            // newest first: the previous point in time is the next entry
            let change = found.get(i + 1).map(|(_, prev)| Val::I64(e.row_count as i64 - prev.row_count as i64)).unwrap_or(Val::Null);
            let mut row = vec![
                Val::Str(m.snapshot_id.clone()),
                listed_time(m.created_at_micros()),
                Val::Str(m.kind.as_str().to_string()),
                Val::Str(e.bucket.clone()),
                Val::Str(e.table.clone()),
            ];
            row.extend(lineage_values(e));
            row.push(e.schema_version.map(|v| Val::I64(v as i64)).unwrap_or(Val::Null));
            row.extend([Val::I64(e.data_bytes(&m.snapshot_id) as i64), Val::Str(e.status.as_str().into()), Val::I64(e.row_count as i64), change]);
            rows.push(row);
        }
        Ok(Produce::Rows(rows))
    }
}
