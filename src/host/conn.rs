//! A raw DuckDB connection owned by the extension, and the two ways it runs SQL:
//! materialized (`query`, for catalog look-ups and DDL) and streaming (`Stream`, for
//! `read_snapshot`). Plain C API v1 calls; no statement cache, so dropping a `Conn`
//! really releases its client context.

use std::ffi::{CStr, CString};
use std::ptr;

use duckdb::ffi;

use crate::engine::sql::{Rows, Sql};
use crate::error::{Error, Result};

/// One connection of the extension's own.
pub struct Conn {
    raw: ffi::duckdb_connection,
}

// A DuckDB connection may be used from any thread, one query at a time; callers
// serialize access through a Mutex.
unsafe impl Send for Conn {}

impl Conn {
    /// # Safety
    /// `db` must be a live database handle (only true during the extension entrypoint).
    pub unsafe fn connect(db: ffi::duckdb_database) -> Result<Conn> {
        let mut raw: ffi::duckdb_connection = ptr::null_mut();
        if ffi::duckdb_connect(db, &mut raw) != ffi::DuckDBSuccess {
            return Err(Error::Internal("could not open the extension's connection to the database".into()));
        }
        Ok(Conn { raw })
    }

    pub fn raw(&self) -> ffi::duckdb_connection {
        self.raw
    }

    /// Runs one or more statements and returns the result of the last one.
    pub fn query(&self, sql: &str) -> Result<Rows> {
        let c_sql = CString::new(sql).map_err(|_| Error::Input("SQL text contains a NUL byte".into()))?;
        unsafe {
            let mut res: ffi::duckdb_result = std::mem::zeroed();
            let state = ffi::duckdb_query(self.raw, c_sql.as_ptr(), &mut res);
            if state != ffi::DuckDBSuccess {
                let msg = cstr_or(ffi::duckdb_result_error(&mut res), "unknown DuckDB error");
                ffi::duckdb_destroy_result(&mut res);
                return Err(Error::Sql(msg));
            }
            let ncols = ffi::duckdb_column_count(&mut res) as usize;
            let nrows = ffi::duckdb_row_count(&mut res) as usize;
            let columns = (0..ncols)
                .map(|c| cstr_or(ffi::duckdb_column_name(&mut res, c as u64), ""))
                .collect();
            let mut rows = Vec::with_capacity(nrows);
            for r in 0..nrows {
                let mut row = Vec::with_capacity(ncols);
                for c in 0..ncols {
                    if ffi::duckdb_value_is_null(&mut res, c as u64, r as u64) {
                        row.push(None);
                    } else {
                        let p = ffi::duckdb_value_varchar(&mut res, c as u64, r as u64);
                        let s = cstr_or(p, "");
                        if !p.is_null() {
                            ffi::duckdb_free(p as *mut _);
                        }
                        row.push(Some(s));
                    }
                }
                rows.push(row);
            }
            ffi::duckdb_destroy_result(&mut res);
            Ok(Rows { columns, rows })
        }
    }

    /// Prepares `sql` and returns its result column types (without running it).
    pub fn describe(&self, sql: &str) -> Result<Vec<(String, LogicalType)>> {
        let stmt = Prepared::new(self, sql)?;
        unsafe {
            let n = ffi::duckdb_prepared_statement_column_count(stmt.raw) as usize;
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let name = cstr_or(ffi::duckdb_prepared_statement_column_name(stmt.raw, i as u64), "");
                let ty = ffi::duckdb_prepared_statement_column_logical_type(stmt.raw, i as u64);
                out.push((name, LogicalType(ty)));
            }
            Ok(out)
        }
    }

    /// Starts a streaming query; chunks are pulled with `Stream::next_chunk`.
    pub fn stream(&self, sql: &str) -> Result<Stream> {
        let stmt = Prepared::new(self, sql)?;
        unsafe {
            let mut res: ffi::duckdb_result = std::mem::zeroed();
            if ffi::duckdb_execute_prepared_streaming(stmt.raw, &mut res) != ffi::DuckDBSuccess {
                let msg = cstr_or(ffi::duckdb_result_error(&mut res), "unknown DuckDB error");
                ffi::duckdb_destroy_result(&mut res);
                return Err(Error::Sql(msg));
            }
            Ok(Stream { res, _stmt: stmt })
        }
    }
}

impl Sql for Conn {
    fn query(&self, sql: &str) -> Result<Rows> {
        Conn::query(self, sql)
    }

    fn query_i64s(&self, sql: &str, columns: usize) -> Result<Vec<Vec<i64>>> {
        let mut out = vec![Vec::new(); columns];
        let mut stream = self.stream(sql)?;
        while let Some(chunk) = stream.next_chunk()? {
            for (c, col) in out.iter_mut().enumerate() {
                chunk.append_i64s(c, col);
            }
        }
        Ok(out)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_disconnect(&mut self.raw) }
    }
}

/// A prepared statement, destroyed on drop (a live one would keep the connection alive).
pub struct Prepared {
    pub raw: ffi::duckdb_prepared_statement,
}

unsafe impl Send for Prepared {}

impl Prepared {
    pub fn new(conn: &Conn, sql: &str) -> Result<Prepared> {
        let c_sql = CString::new(sql).map_err(|_| Error::Input("SQL text contains a NUL byte".into()))?;
        unsafe {
            let mut raw: ffi::duckdb_prepared_statement = ptr::null_mut();
            let state = ffi::duckdb_prepare(conn.raw, c_sql.as_ptr(), &mut raw);
            if state != ffi::DuckDBSuccess {
                let msg = cstr_or(ffi::duckdb_prepare_error(raw), "could not prepare statement");
                ffi::duckdb_destroy_prepare(&mut raw);
                return Err(Error::Sql(msg));
            }
            Ok(Prepared { raw })
        }
    }

    /// Executes the statement and returns the first column of the first row as i64.
    pub fn query_i64(&self) -> Result<Option<i64>> {
        unsafe {
            let mut res: ffi::duckdb_result = std::mem::zeroed();
            if ffi::duckdb_execute_prepared(self.raw, &mut res) != ffi::DuckDBSuccess {
                let msg = cstr_or(ffi::duckdb_result_error(&mut res), "unknown DuckDB error");
                ffi::duckdb_destroy_result(&mut res);
                return Err(Error::Sql(msg));
            }
            let v = if ffi::duckdb_row_count(&mut res) > 0 && !ffi::duckdb_value_is_null(&mut res, 0, 0) {
                Some(ffi::duckdb_value_int64(&mut res, 0, 0))
            } else {
                None
            };
            ffi::duckdb_destroy_result(&mut res);
            Ok(v)
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_destroy_prepare(&mut self.raw) }
    }
}

/// An owned logical type handle.
pub struct LogicalType(pub ffi::duckdb_logical_type);

unsafe impl Send for LogicalType {}
unsafe impl Sync for LogicalType {}

impl Drop for LogicalType {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_destroy_logical_type(&mut self.0) }
    }
}

/// A streaming query result.
pub struct Stream {
    res: ffi::duckdb_result,
    _stmt: Prepared,
}

unsafe impl Send for Stream {}

impl Stream {
    /// The next chunk, or None at the end. Errors surface as `Error::Sql`.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        unsafe {
            let chunk = ffi::duckdb_fetch_chunk(self.res);
            if chunk.is_null() {
                let err = ffi::duckdb_result_error(&mut self.res);
                if !err.is_null() {
                    return Err(Error::Sql(cstr_or(err, "")));
                }
                return Ok(None);
            }
            Ok(Some(Chunk(chunk)))
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_destroy_result(&mut self.res) }
    }
}

/// An owned data chunk fetched from a stream.
pub struct Chunk(pub ffi::duckdb_data_chunk);

unsafe impl Send for Chunk {}

impl Chunk {
    pub fn len(&self) -> usize {
        unsafe { ffi::duckdb_data_chunk_get_size(self.0) as usize }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn vector(&self, i: usize) -> ffi::duckdb_vector {
        unsafe { ffi::duckdb_data_chunk_get_vector(self.0, i as u64) }
    }
    /// Appends column `col` (BIGINT) to `out`, whatever shape DuckDB gave the vector
    /// (copied through a flat vector); NULL reads as -1.
    pub fn append_i64s(&self, col: usize, out: &mut Vec<i64>) {
        let n = self.len();
        if n == 0 {
            return;
        }
        unsafe {
            let sel = ffi::duckdb_create_selection_vector(n as u64);
            let idx = ffi::duckdb_selection_vector_get_data_ptr(sel);
            for i in 0..n {
                *idx.add(i) = i as u32;
            }
            let mut lt = ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT);
            let mut flat = ffi::duckdb_create_vector(lt, n as u64);
            ffi::duckdb_destroy_logical_type(&mut lt);
            ffi::duckdb_vector_copy_sel(self.vector(col), flat, sel, n as u64, 0, 0);
            let data = std::slice::from_raw_parts(ffi::duckdb_vector_get_data(flat) as *const i64, n);
            let validity = ffi::duckdb_vector_get_validity(flat);
            out.extend(data.iter().enumerate().map(|(i, &x)| {
                if validity.is_null() || ffi::duckdb_validity_row_is_valid(validity, i as u64) {
                    x
                } else {
                    -1
                }
            }));
            ffi::duckdb_destroy_vector(&mut flat);
            ffi::duckdb_destroy_selection_vector(sel);
        }
    }

    /// Keeps only the first `n` rows. Each vector is sliced first: DuckDB 2.0 refuses (and
    /// its C API silently ignores) shrinking a chunk whose vectors are not flat.
    pub fn truncate(&self, n: usize) {
        if n >= self.len() {
            return;
        }
        unsafe {
            let sel = ffi::duckdb_create_selection_vector(n.max(1) as u64);
            let data = ffi::duckdb_selection_vector_get_data_ptr(sel);
            for i in 0..n {
                *data.add(i) = i as u32;
            }
            for c in 0..ffi::duckdb_data_chunk_get_column_count(self.0) {
                ffi::duckdb_slice_vector(self.vector(c as usize), sel, n as u64);
            }
            ffi::duckdb_destroy_selection_vector(sel);
            ffi::duckdb_data_chunk_set_size(self.0, n as u64);
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_destroy_data_chunk(&mut self.0) }
    }
}

fn cstr_or(p: *const std::os::raw::c_char, fallback: &str) -> String {
    if p.is_null() {
        fallback.to_string()
    } else {
        unsafe { CStr::from_ptr(p).to_string_lossy().into_owned() }
    }
}
