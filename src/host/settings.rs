//! The extension's settings, registered as real DuckDB options (`SET snapshot_directory = ...`).

use std::ffi::CString;

use duckdb::ffi;

use crate::error::{Error, Result};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Seconds,
    Flag,
}

const OPTIONS: &[(&str, Kind, &str)] = &[
    (
        "snapshot_directory",
        Kind::Text,
        "Root of the snapshot repository: a folder, or s3://bucket/prefix (default: a 'snapshots' folder beside the database file, or ./snapshots for an in-memory database)",
    ),
    ("snapshot_project", Kind::Text, "Project id recorded in snapshots and used as the repository sub-folder (default: the database name)"),
    ("snapshot_branch", Kind::Text, "Branch recorded in snapshots (default: main)"),
    ("snapshot_lock_timeout", Kind::Seconds, "Seconds a writer waits for the snapshot repository lock before failing (default: 30)"),
    (
        "snapshot_s3_endpoint",
        Kind::Text,
        "S3-compatible endpoint of an s3:// repository: host:port or a URL such as http://127.0.0.1:9000 (default: AWS, or AWS_ENDPOINT_URL)",
    ),
    ("snapshot_s3_region", Kind::Text, "Region of an s3:// repository (default: AWS_REGION, the ~/.aws profile, or us-east-1)"),
    ("snapshot_s3_url_style", Kind::Text, "'path' or 'vhost' addressing for an s3:// repository (default: path with an endpoint, vhost on AWS)"),
    ("snapshot_s3_use_ssl", Kind::Flag, "Use https for an endpoint given as host:port (default: true)"),
    ("snapshot_s3_access_key_id", Kind::Text, "Access key id for an s3:// repository (default: AWS_ACCESS_KEY_ID or the ~/.aws profile)"),
    ("snapshot_s3_secret_access_key", Kind::Text, "Secret access key for an s3:// repository (never shown by the extension)"),
    ("snapshot_s3_session_token", Kind::Text, "Session token for temporary credentials of an s3:// repository (never shown by the extension)"),
    (
        "snapshot_cache_directory",
        Kind::Text,
        "Local cache of files read from an s3:// repository (default: ~/.cache/duckdb_snapshot)",
    ),
    ("snapshot_cache_size", Kind::Text, "Most the cache may hold, e.g. '4GB' (default: 4GB; least recently used files go first)"),
];

/// Names of the settings whose values are secrets.
pub const SECRET_OPTIONS: &[&str] = &["snapshot_s3_secret_access_key", "snapshot_s3_session_token"];

/// Every setting the extension registers, with its description.
pub fn names() -> impl Iterator<Item = (&'static str, &'static str)> {
    OPTIONS.iter().map(|(n, _, d)| (*n, *d))
}

pub fn register(conn: ffi::duckdb_connection) -> Result<()> {
    for (name, kind, description) in OPTIONS {
        unsafe {
            let mut opt = ffi::duckdb_create_config_option();
            let c_name = CString::new(*name).unwrap();
            let c_desc = CString::new(*description).unwrap();
            ffi::duckdb_config_option_set_name(opt, c_name.as_ptr());
            ffi::duckdb_config_option_set_description(opt, c_desc.as_ptr());
            // typed options: DuckDB refuses a non-number timeout or a non-boolean flag at SET
            let type_id = match kind {
                Kind::Text => ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR,
                Kind::Seconds => ffi::DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE,
                Kind::Flag => ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN,
            };
            let mut ty = ffi::duckdb_create_logical_type(type_id);
            ffi::duckdb_config_option_set_type(opt, ty);
            ffi::duckdb_destroy_logical_type(&mut ty);
            let empty = CString::new("").unwrap();
            let mut default = match kind {
                Kind::Text => ffi::duckdb_create_varchar(empty.as_ptr()),
                Kind::Seconds => ffi::duckdb_create_double(crate::engine::DEFAULT_LOCK_TIMEOUT.as_secs_f64()),
                Kind::Flag => ffi::duckdb_create_bool(true),
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
