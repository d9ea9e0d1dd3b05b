//! `__snapshot_fingerprint(row_id BIGINT, hash UBIGINT, token UBIGINT) -> BIGINT`: the
//! aggregate through which an incremental snapshot fingerprints a table. DuckDB computes the
//! row hashes and runs the aggregate on all its threads; each thread fills its own
//! `fingerprint::Accumulator`, DuckDB combines them, and the finalizer hands the result to the
//! engine by token (the engine registered the token before running the query). Internal: an
//! unknown token is an error. Every callback is panic-safe.

use std::ffi::CString;

use duckdb::ffi;

use crate::engine::fingerprint::{accumulator_for, deliver, Accumulator};
use crate::error::{Error, Result};

pub const NAME: &str = "__snapshot_fingerprint";

type Slot = *mut Accumulator;

unsafe fn slot(state: ffi::duckdb_aggregate_state) -> *mut Slot {
    state as *mut Slot
}

unsafe fn fail(info: ffi::duckdb_function_info, msg: &str) {
    if let Ok(c) = CString::new(format!("{NAME}: {msg}")) {
        ffi::duckdb_aggregate_function_set_error(info, c.as_ptr());
    }
}

unsafe extern "C" fn state_size(_info: ffi::duckdb_function_info) -> ffi::idx_t {
    std::mem::size_of::<Slot>() as ffi::idx_t
}

unsafe extern "C" fn init(_info: ffi::duckdb_function_info, state: ffi::duckdb_aggregate_state) {
    *slot(state) = std::ptr::null_mut();
}

unsafe extern "C" fn update(info: ffi::duckdb_function_info, input: ffi::duckdb_data_chunk, states: *mut ffi::duckdb_aggregate_state) {
    let outcome = std::panic::catch_unwind(|| -> std::result::Result<(), String> {
        let n = ffi::duckdb_data_chunk_get_size(input) as usize;
        if n == 0 {
            return Ok(());
        }
        let cols: Vec<ffi::duckdb_vector> = (0..3).map(|c| ffi::duckdb_data_chunk_get_vector(input, c)).collect();
        for v in &cols {
            let validity = ffi::duckdb_vector_get_validity(*v);
            if !validity.is_null() && (0..n).any(|i| !ffi::duckdb_validity_row_is_valid(validity, i as u64)) {
                return Err("NULL input".into());
            }
        }
        let ids = std::slice::from_raw_parts(ffi::duckdb_vector_get_data(cols[0]) as *const i64, n);
        let hashes = std::slice::from_raw_parts(ffi::duckdb_vector_get_data(cols[1]) as *const u64, n);
        let tokens = std::slice::from_raw_parts(ffi::duckdb_vector_get_data(cols[2]) as *const u64, n);
        let states = std::slice::from_raw_parts(states, n);
        // rows of one state come in runs (one run for the usual ungrouped call)
        let mut start = 0;
        while start < n {
            let mut end = start + 1;
            while end < n && states[end] == states[start] {
                end += 1;
            }
            let s = slot(states[start]);
            if (*s).is_null() {
                let acc = accumulator_for(tokens[start]).ok_or("unknown token (internal function of the snapshot extension)")?;
                *s = Box::into_raw(Box::new(acc));
            }
            (**s).add(&ids[start..end], &hashes[start..end])?;
            start = end;
        }
        Ok(())
    });
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(msg)) => fail(info, &msg),
        Err(_) => fail(info, "internal panic"),
    }
}

unsafe extern "C" fn combine(info: ffi::duckdb_function_info, source: *mut ffi::duckdb_aggregate_state, target: *mut ffi::duckdb_aggregate_state, count: ffi::idx_t) {
    let outcome = std::panic::catch_unwind(|| {
        for k in 0..count as usize {
            let (src, dst) = (slot(*source.add(k)), slot(*target.add(k)));
            if (*src).is_null() {
                continue;
            }
            let part = Box::from_raw(*src);
            *src = std::ptr::null_mut();
            if (*dst).is_null() {
                *dst = Box::into_raw(part);
            } else {
                (**dst).merge(*part);
            }
        }
    });
    if outcome.is_err() {
        fail(info, "internal panic");
    }
}

unsafe extern "C" fn finalize(info: ffi::duckdb_function_info, source: *mut ffi::duckdb_aggregate_state, result: ffi::duckdb_vector, count: ffi::idx_t, offset: ffi::idx_t) {
    let outcome = std::panic::catch_unwind(|| {
        let out = ffi::duckdb_vector_get_data(result) as *mut i64;
        for k in 0..count as usize {
            let s = slot(*source.add(k));
            let mut rows = 0;
            if !(*s).is_null() {
                let acc = Box::from_raw(*s);
                *s = std::ptr::null_mut();
                rows = acc.rows() as i64;
                deliver(*acc);
            }
            *out.add(offset as usize + k) = rows;
        }
    });
    if outcome.is_err() {
        fail(info, "internal panic");
    }
}

unsafe extern "C" fn destroy(states: *mut ffi::duckdb_aggregate_state, count: ffi::idx_t) {
    let _ = std::panic::catch_unwind(|| {
        for k in 0..count as usize {
            let s = slot(*states.add(k));
            if !(*s).is_null() {
                drop(Box::from_raw(*s));
                *s = std::ptr::null_mut();
            }
        }
    });
}

/// Registers the aggregate on `conn`'s database.
pub fn register(conn: ffi::duckdb_connection) -> Result<()> {
    unsafe {
        let mut f = ffi::duckdb_create_aggregate_function();
        let name = CString::new(NAME).expect("no NUL");
        ffi::duckdb_aggregate_function_set_name(f, name.as_ptr());
        for ty in [ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT, ffi::DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT, ffi::DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT] {
            let mut t = ffi::duckdb_create_logical_type(ty);
            ffi::duckdb_aggregate_function_add_parameter(f, t);
            ffi::duckdb_destroy_logical_type(&mut t);
        }
        let mut ret = ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT);
        ffi::duckdb_aggregate_function_set_return_type(f, ret);
        ffi::duckdb_destroy_logical_type(&mut ret);
        ffi::duckdb_aggregate_function_set_functions(f, Some(state_size), Some(init), Some(update), Some(combine), Some(finalize));
        ffi::duckdb_aggregate_function_set_destructor(f, Some(destroy));
        let ok = ffi::duckdb_register_aggregate_function(conn, f) == ffi::DuckDBSuccess;
        ffi::duckdb_destroy_aggregate_function(&mut f);
        if ok {
            Ok(())
        } else {
            Err(Error::Internal(format!("could not register {NAME}")))
        }
    }
}
