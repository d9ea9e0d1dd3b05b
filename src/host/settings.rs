//! The extension's settings, registered as real DuckDB options (`SET snapshot_directory = ...`).

use std::ffi::CString;

use duckdb::ffi;

use crate::error::{Error, Result};

pub const OPTIONS: &[(&str, &str)] = &[
    (
        "snapshot_directory",
        "Root folder of the snapshot repository (default: a 'snapshots' folder beside the database file, or ./snapshots for an in-memory database)",
    ),
    ("snapshot_project", "Project id recorded in snapshots and used as the repository sub-folder (default: the database name)"),
    ("snapshot_branch", "Branch recorded in snapshots (default: main)"),
    (
        "snapshot_lock_timeout",
        "Seconds a writer waits for the snapshot repository lock before failing (default: 30)",
    ),
];

pub fn register(conn: ffi::duckdb_connection) -> Result<()> {
    for (name, description) in OPTIONS {
        unsafe {
            let mut opt = ffi::duckdb_create_config_option();
            let c_name = CString::new(*name).unwrap();
            let c_desc = CString::new(*description).unwrap();
            ffi::duckdb_config_option_set_name(opt, c_name.as_ptr());
            ffi::duckdb_config_option_set_description(opt, c_desc.as_ptr());
            // the lock timeout is a number of seconds: DuckDB refuses anything else at SET
            let numeric = *name == "snapshot_lock_timeout";
            let mut ty = ffi::duckdb_create_logical_type(if numeric { ffi::DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE } else { ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR });
            ffi::duckdb_config_option_set_type(opt, ty);
            ffi::duckdb_destroy_logical_type(&mut ty);
            let empty = CString::new("").unwrap();
            let mut default = if numeric {
                ffi::duckdb_create_double(crate::engine::DEFAULT_LOCK_TIMEOUT.as_secs_f64())
            } else {
                ffi::duckdb_create_varchar(empty.as_ptr())
            };
            ffi::duckdb_config_option_set_default_value(opt, default);
            ffi::duckdb_destroy_value(&mut default);
            let rc = ffi::duckdb_register_config_option(conn, opt);
            ffi::duckdb_destroy_config_option(&mut opt);
            if rc != ffi::DuckDBSuccess {
                return Err(Error::Internal(format!("could not register setting {name}")));
            }
        }
    }
    Ok(())
}
