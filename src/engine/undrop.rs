//! `snapshot_undrop`: brings back a table dropped by `snapshot_drop_table`, restoring it from
//! the newest `pre_drop` snapshot that has it; refused while a table of that name exists.

use crate::engine::catalog;
use crate::engine::Ctx;
use crate::error::{Error, Result};
use crate::repo::manifest::SnapshotKind;

/// Restores a table from the newest `pre_drop` snapshot that has it.
pub fn undrop(ctx: &Ctx, table: &str) -> Result<crate::engine::restore::RestoreOutcome> {
    let found = crate::repo::list::manifests(&ctx.repo)?
        .into_iter()
        .filter(|m| m.kind == SnapshotKind::PreDrop)
        .find(|m| crate::engine::point::find_entry(m, table).is_ok());
    let Some(m) = found else {
        return Err(Error::Input(format!(
            "no pre_drop snapshot has table {}; nothing to undrop (tables dropped with snapshot_drop_table can be undropped)",
            crate::repo::layout::printable(table)
        )));
    };
    // undrop brings back what is gone; replacing a table that exists is snapshot_restore's job
    let e = crate::engine::point::find_entry(&m, table)?;
    let catalog = if e.catalog == m.database { ctx.database.clone() } else { e.catalog.clone() };
    let live = catalog::TableRef { catalog, schema: e.bucket.clone(), table: e.table.clone() };
    if catalog::table_exists(ctx.db, &live)? {
        return Err(Error::Input(format!(
            "{} exists; nothing to undrop — use CALL snapshot_restore('{}', '{}') to replace it",
            live.display(),
            m.snapshot_id,
            live.display().replace('\'', "''")
        )));
    }
    let scope = crate::engine::scope::ScopeSpec { selectors: vec![crate::engine::scope::Selector::Table(table.to_string())], exclude: Vec::new() };
    let req = crate::engine::restore::RestoreRequest::new(crate::engine::point::SnapshotArg::Id(m.snapshot_id.clone()), scope);
    crate::engine::restore::restore(ctx, &req)
}
