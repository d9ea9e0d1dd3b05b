//! The caller's client context, as the C API hands it to a bind callback: the settings in
//! force for the calling connection (`SET`, `SET GLOBAL`, defaults) and constant folding of
//! bound argument expressions.

use std::ffi::CString;

use duckdb::ffi;

use crate::error::{Error, Result};
use crate::host::table_fn::Arg;

/// Where a bind callback reads the caller's settings.
pub trait SettingSource {
    /// A setting as the calling connection sees it; None when unknown or NULL.
    fn setting(&self, name: &str) -> Option<String>;
}

/// An owned client context handle.
pub struct ClientContext(ffi::duckdb_client_context);

impl ClientContext {
    /// # Safety
    /// `raw` must be a context handle obtained from the C API (or null); it is destroyed on drop.
    pub unsafe fn from_raw(raw: ffi::duckdb_client_context) -> Option<ClientContext> {
        (!raw.is_null()).then_some(ClientContext(raw))
    }

    pub fn raw(&self) -> ffi::duckdb_client_context {
        self.0
    }

    /// The value of a setting for this context.
    pub fn setting(&self, name: &str) -> Option<String> {
        let c = CString::new(name).ok()?;
        unsafe {
            let mut scope: ffi::duckdb_config_option_scope = 0;
            let v = ffi::duckdb_client_context_get_config_option(self.0, c.as_ptr(), &mut scope);
            match Arg::from_value(v) {
                Arg::Str(s) | Arg::Other(s) => Some(s),
                Arg::Int(n) => Some(n.to_string()),
                Arg::Bool(b) => Some(b.to_string()),
                _ => None,
            }
        }
    }

    /// Whether the calling connection sees a table — in its own transaction, so a table it
    /// created and has not committed yet counts (the extension's connections see committed
    /// data only).
    pub fn sees_table(&self, catalog: &str, schema: &str, table: &str) -> bool {
        let (Ok(c), Ok(s), Ok(t)) = (CString::new(catalog), CString::new(schema), CString::new(table)) else { return false };
        unsafe {
            let mut cat = ffi::duckdb_client_context_get_catalog(self.0, c.as_ptr());
            if cat.is_null() {
                return false;
            }
            let mut entry = ffi::duckdb_catalog_get_entry(cat, self.0, ffi::duckdb_catalog_entry_type_DUCKDB_CATALOG_ENTRY_TYPE_TABLE, s.as_ptr(), t.as_ptr());
            // views share the tables' namespace: only a table counts
            let found = !entry.is_null() && ffi::duckdb_catalog_entry_get_type(entry) == ffi::duckdb_catalog_entry_type_DUCKDB_CATALOG_ENTRY_TYPE_TABLE;
            if !entry.is_null() {
                ffi::duckdb_destroy_catalog_entry(&mut entry);
            }
            ffi::duckdb_destroy_catalog(&mut cat);
            found
        }
    }

    /// Folds a bound, constant expression into its value; takes ownership of `expr`.
    ///
    /// # Safety
    /// `expr` must be an expression handle from the C API.
    pub unsafe fn fold(&self, mut expr: ffi::duckdb_expression, what: &str) -> Result<Arg> {
        if expr.is_null() {
            return Ok(Arg::Missing);
        }
        let out = if !ffi::duckdb_expression_is_foldable(expr) {
            Err(Error::Input(format!("{what} must be a constant")))
        } else {
            let mut value: ffi::duckdb_value = std::ptr::null_mut();
            let mut err = ffi::duckdb_expression_fold(self.0, expr, &mut value);
            if !err.is_null() && ffi::duckdb_error_data_has_error(err) {
                let p = ffi::duckdb_error_data_message(err);
                let msg = if p.is_null() { "cannot evaluate".to_string() } else { std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned() };
                ffi::duckdb_destroy_error_data(&mut err);
                if !value.is_null() {
                    ffi::duckdb_destroy_value(&mut value);
                }
                Err(Error::Input(format!("{what}: {msg}")))
            } else {
                if !err.is_null() {
                    ffi::duckdb_destroy_error_data(&mut err);
                }
                Ok(Arg::from_value(value))
            }
        };
        ffi::duckdb_destroy_expression(&mut expr);
        out
    }
}

impl Drop for ClientContext {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_destroy_client_context(&mut self.0) }
    }
}
