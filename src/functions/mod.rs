//! The SQL surface: one module per table function. Each is a thin adapter: parse the
//! arguments at bind, call the engine, emit rows. Registration lives in `register_all`.

mod common;
pub mod read_snapshot;
pub mod snapshot_create;
pub mod snapshot_drop;
pub mod snapshot_drop_table;
pub mod snapshot_restore;
pub mod snapshot_tables;
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
    Ok(())
}
