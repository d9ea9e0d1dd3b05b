//! The replacement scan behind `FROM '<table>@<snapshot>'`: DuckDB asks it about every table
//! reference it cannot find in the catalog; a reference the extension claims becomes a call
//! of DuckDB's built-in `query(sql)` with SQL of the extension's choosing.

use std::ffi::{c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use duckdb::ffi;

/// Decides whether a reference is claimed and with which SQL.
pub struct Replacement {
    pub claims: fn(&str) -> bool,
    pub sql: fn(&str) -> String,
}

/// # Safety
/// `db` must be the live database handle passed to the entrypoint.
pub unsafe fn register(db: ffi::duckdb_database, replacement: Replacement) {
    let data = Box::into_raw(Box::new(replacement)) as *mut c_void;
    ffi::duckdb_add_replacement_scan(db, Some(callback), data, Some(drop_data));
}

unsafe extern "C" fn drop_data(p: *mut c_void) {
    if !p.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(p as *mut Replacement))));
    }
}

unsafe extern "C" fn callback(info: ffi::duckdb_replacement_scan_info, table_name: *const std::os::raw::c_char, data: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if table_name.is_null() || data.is_null() {
            return;
        }
        let r = &*(data as *const Replacement);
        let Ok(name) = CStr::from_ptr(table_name).to_str() else { return };
        if !(r.claims)(name) {
            return;
        }
        let Ok(sql) = CString::new((r.sql)(name)) else { return };
        let function = CString::new("query").expect("static");
        ffi::duckdb_replacement_scan_set_function_name(info, function.as_ptr());
        let mut value = ffi::duckdb_create_varchar(sql.as_ptr());
        ffi::duckdb_replacement_scan_add_parameter(info, value);
        ffi::duckdb_destroy_value(&mut value);
    }));
}
