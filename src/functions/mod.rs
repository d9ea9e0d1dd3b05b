//! The SQL surface: one module per function (the `'t@id'` read's replacement scan and the
//! internal scalar functions included). Each is a thin adapter: parse the
//! arguments at bind, call the engine, emit rows. Registration lives in `register_all`.

pub mod at_read;
mod common;
pub mod keep;
pub mod read_snapshot;
pub mod snapshot_at;
pub mod snapshot_create;
pub mod snapshot_diff;
pub mod snapshot_drop;
pub mod snapshot_drop_table;
pub mod snapshot_export;
pub mod snapshot_copy;
pub mod snapshot_gc;
pub mod snapshot_history;
pub mod snapshot_mount;
pub mod snapshot_pin;
pub mod snapshot_prune;
pub mod snapshot_restore;
pub mod snapshot_schedule;
pub mod snapshot_schedules;
pub mod snapshot_describe;
pub mod snapshot_repository;
pub mod snapshot_settings;
pub mod snapshot_tables;
pub mod snapshot_undrop;
pub mod snapshot_unschedule;
pub mod snapshot_verify;
pub mod snapshots;

use std::sync::Arc;

use duckdb::ffi;

use crate::error::Result;
use crate::host::session::Host;
use crate::host::table_fn::register;

pub fn register_all(conn: ffi::duckdb_connection, host: &Arc<Host>) -> Result<()> {
    register::<snapshot_create::SnapshotCreate>(conn, host, "snapshot_create")?;
    register::<snapshots::Snapshots>(conn, host, "snapshots")?;
    register::<snapshot_tables::SnapshotTables>(conn, host, "snapshot_tables")?;
    register::<read_snapshot::ReadSnapshot>(conn, host, "read_snapshot")?;
    register::<snapshot_restore::SnapshotRestore>(conn, host, "snapshot_restore")?;
    register::<snapshot_drop::SnapshotDrop>(conn, host, "snapshot_drop")?;
    register::<snapshot_drop_table::SnapshotDropTable>(conn, host, "snapshot_drop_table")?;
    register::<snapshot_prune::SnapshotPrune>(conn, host, "snapshot_prune")?;
    register::<snapshot_pin::SnapshotPin>(conn, host, "snapshot_pin")?;
    register::<snapshot_pin::SnapshotUnpin>(conn, host, "snapshot_unpin")?;
    register::<snapshot_undrop::SnapshotUndrop>(conn, host, "snapshot_undrop")?;
    register::<snapshot_verify::SnapshotVerify>(conn, host, "snapshot_verify")?;
    register::<snapshot_gc::SnapshotGc>(conn, host, "snapshot_gc")?;
    register::<snapshot_copy::SnapshotCopy>(conn, host, "snapshot_copy")?;
    register::<snapshot_history::SnapshotHistory>(conn, host, "snapshot_history")?;
    register::<snapshot_at::SnapshotAt>(conn, host, "snapshot_at")?;
    register::<snapshot_export::SnapshotExport>(conn, host, "snapshot_export")?;
    register::<snapshot_diff::SnapshotDiff>(conn, host, "snapshot_diff")?;
    register::<snapshot_mount::SnapshotMount>(conn, host, "snapshot_mount")?;
    register::<snapshot_mount::SnapshotUnmount>(conn, host, "snapshot_unmount")?;
    register::<snapshot_settings::SnapshotSettings>(conn, host, "snapshot_settings")?;
    register::<snapshot_repository::SnapshotRepository>(conn, host, "snapshot_repository")?;
    register::<snapshot_describe::SnapshotDescribe>(conn, host, "snapshot_describe")?;
    register::<snapshot_schedule::SnapshotSchedule>(conn, host, "snapshot_schedule")?;
    register::<snapshot_schedules::SnapshotSchedules>(conn, host, "snapshot_schedules")?;
    register::<snapshot_unschedule::SnapshotUnschedule>(conn, host, "snapshot_unschedule")?;
    crate::host::scalar::register::<keep::Keep>(conn, host)?;
    crate::host::scalar::register::<at_read::ScanSql>(conn, host)?;
    Ok(())
}
