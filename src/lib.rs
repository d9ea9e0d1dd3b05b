//! The `snapshot` DuckDB extension: named snapshots of tables, schemas and databases,
//! stored as ZSTD Parquet plus metadata.json (ADR-004), managed with plain SQL.
//!
//! This file is the entrypoint only: it opens the extension's connections, registers the
//! settings, functions and the `'t@id'` replacement scan, and hands the instance to the
//! scheduler and the watchdog.

pub mod engine;
pub mod error;
pub mod functions;
pub mod host;
pub mod repo;

use std::path::PathBuf;

use duckdb::ffi;

use crate::engine::sql::Sql;
use crate::error::{Error, Result};
use crate::host::session::Host;

/// The C API version this binary requires: the oldest that has every call it uses, so
/// one binary loads in DuckDB 1.5.6 and in 2.0.
pub const MIN_DUCKDB_C_API: &str = "v1.5.6";

unsafe fn init(db: ffi::duckdb_database) -> Result<()> {
    let host = Host::open(db)?;
    let file = {
        let admin = host.admin()?;
        host::settings::register(admin.conn().raw())?;
        functions::register_all(admin.conn().raw(), &host)?;
        host::aggregate::register(admin.conn().raw())?;
        host::replacement::register(
            db,
            host::replacement::Replacement { claims: functions::at_read::claims, sql: functions::at_read::replacement_sql },
        );
        writable_database_file(&admin)?
    };
    host::scheduler::start(&host)?;
    host::watchdog::watch(host, file)
}

/// The default database's file, if it is on disk and writable (only then can closing it write).
fn writable_database_file(db: &dyn Sql) -> Result<Option<PathBuf>> {
    let rows = db.query(
        "SELECT path, readonly FROM duckdb_databases() WHERE database_name = current_database()",
    )?;
    let Some(row) = rows.rows.first() else { return Ok(None) };
    match (&row[0], row[1].as_deref()) {
        (Some(path), Some("false")) if !path.is_empty() && path != ":memory:" => {
            Ok(Some(crate::repo::layout::absolute(std::path::Path::new(path))))
        }
        _ => Ok(None),
    }
}

/// # Safety
/// Called by DuckDB with valid extension info and access pointers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn snapshot_init_c_api(
    info: ffi::duckdb_extension_info,
    access: *const ffi::duckdb_extension_access,
) -> bool {
    let outcome = std::panic::catch_unwind(|| -> Result<bool> {
        let have_api = ffi::duckdb_rs_extension_api_init(info, access, MIN_DUCKDB_C_API)
            .map_err(|e| Error::Internal(e.to_string()))?;
        if !have_api {
            return Ok(false);
        }
        let get_database = (*access).get_database.ok_or_else(|| Error::Internal("no get_database in extension access".into()))?;
        let db_ptr = get_database(info);
        if db_ptr.is_null() {
            return Ok(false);
        }
        init(*db_ptr)?;
        Ok(true)
    });
    let message = match outcome {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => format!("snapshot: could not load: {}", e.one_line()),
        Err(_) => "snapshot: could not load: internal panic".to_string(),
    };
    if let Some(set_error) = (*access).set_error {
        if let Ok(c) = std::ffi::CString::new(message) {
            set_error(info, c.as_ptr());
        }
    }
    false
}
