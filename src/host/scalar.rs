//! Scalar functions over the raw C API v1, bound once per query: the bind callback sees the
//! caller's settings and the folded constant arguments and keeps what the function needs in
//! its bind data (shared, never copied, when DuckDB copies the expression); the function
//! callback then works on flat vectors. Every callback runs inside `catch_unwind`.

use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use duckdb::ffi;

use crate::error::{Error, Result};
use crate::host::context::{ClientContext, SettingSource};
use crate::host::session::Host;
use crate::host::table_fn::Arg;

#[derive(Clone, Copy, Debug)]
pub enum ScalarType {
    Varchar,
    Boolean,
    Integer,
    BigInt,
}

impl ScalarType {
    unsafe fn logical(self) -> ffi::duckdb_logical_type {
        ffi::duckdb_create_logical_type(match self {
            ScalarType::Varchar => ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR,
            ScalarType::Boolean => ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN,
            ScalarType::Integer => ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTEGER,
            ScalarType::BigInt => ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT,
        })
    }
}

/// What the bind callback hands to a function.
pub struct ScalarBindArgs<'a> {
    info: ffi::duckdb_bind_info,
    context: Option<ClientContext>,
    pub host: &'a Arc<Host>,
}

impl ScalarBindArgs<'_> {
    /// Argument `i`, which must be a constant (folded at bind time).
    pub fn constant(&self, i: usize, what: &str) -> Result<Arg> {
        let ctx = self.context.as_ref().ok_or_else(|| Error::Internal("no client context at bind".into()))?;
        unsafe { ctx.fold(ffi::duckdb_scalar_function_bind_get_argument(self.info, i as u64), what) }
    }
}

impl SettingSource for ScalarBindArgs<'_> {
    fn setting(&self, name: &str) -> Option<String> {
        self.context.as_ref()?.setting(name)
    }
}

/// A chunk of (flat) input vectors.
pub struct ScalarInput {
    chunk: ffi::duckdb_data_chunk,
    pub len: usize,
}

impl ScalarInput {
    fn vector(&self, col: usize) -> ffi::duckdb_vector {
        unsafe { ffi::duckdb_data_chunk_get_vector(self.chunk, col as u64) }
    }

    /// The values of a BIGINT column (meaningless where `is_null`).
    pub fn i64s(&self, col: usize) -> &[i64] {
        unsafe { std::slice::from_raw_parts(ffi::duckdb_vector_get_data(self.vector(col)) as *const i64, self.len) }
    }

    /// The values of an INTEGER column (meaningless where `is_null`).
    pub fn i32s(&self, col: usize) -> &[i32] {
        unsafe { std::slice::from_raw_parts(ffi::duckdb_vector_get_data(self.vector(col)) as *const i32, self.len) }
    }

    pub fn is_null(&self, col: usize, row: usize) -> bool {
        unsafe {
            let validity = ffi::duckdb_vector_get_validity(self.vector(col));
            !validity.is_null() && !ffi::duckdb_validity_row_is_valid(validity, row as u64)
        }
    }
}

/// The result vector.
pub struct ScalarOutput {
    vector: ffi::duckdb_vector,
}

impl ScalarOutput {
    pub fn bools(&mut self, len: usize) -> &mut [bool] {
        unsafe { std::slice::from_raw_parts_mut(ffi::duckdb_vector_get_data(self.vector) as *mut bool, len) }
    }

    pub fn set_str(&mut self, row: usize, s: &str) {
        unsafe { ffi::duckdb_vector_assign_string_element_len(self.vector, row as u64, s.as_ptr() as *const _, s.len() as u64) }
    }

    pub fn set_null(&mut self, row: usize) {
        unsafe {
            ffi::duckdb_vector_ensure_validity_writable(self.vector);
            ffi::duckdb_validity_set_row_invalid(ffi::duckdb_vector_get_validity(self.vector), row as u64);
        }
    }
}

/// One SQL scalar function.
pub trait ScalarFn: 'static {
    type Bind: Send + Sync + 'static;
    const NAME: &'static str;
    fn params() -> &'static [ScalarType];
    fn returns() -> ScalarType;
    /// Runs once per bound call, with the caller's settings and constant arguments.
    fn bind(args: &ScalarBindArgs) -> Result<Self::Bind>;
    fn execute(bind: &Self::Bind, input: &ScalarInput, output: &mut ScalarOutput) -> Result<()>;
}

struct Extra {
    host: Arc<Host>,
}

/// Bind data: shared by every copy DuckDB makes of the bound expression.
type Shared<B> = Arc<B>;

pub fn register<F: ScalarFn>(conn: ffi::duckdb_connection, host: &Arc<Host>) -> Result<()> {
    unsafe {
        let mut f = ffi::duckdb_create_scalar_function();
        let name = CString::new(F::NAME).expect("static name");
        ffi::duckdb_scalar_function_set_name(f, name.as_ptr());
        for p in F::params() {
            let mut ty = p.logical();
            ffi::duckdb_scalar_function_add_parameter(f, ty);
            ffi::duckdb_destroy_logical_type(&mut ty);
        }
        let mut ret = F::returns().logical();
        ffi::duckdb_scalar_function_set_return_type(f, ret);
        ffi::duckdb_destroy_logical_type(&mut ret);
        let extra = Box::new(Extra { host: host.clone() });
        ffi::duckdb_scalar_function_set_extra_info(f, Box::into_raw(extra) as *mut c_void, Some(drop_box::<Extra>));
        ffi::duckdb_scalar_function_set_bind(f, Some(bind_cb::<F>));
        ffi::duckdb_scalar_function_set_function(f, Some(exec_cb::<F>));
        let rc = ffi::duckdb_register_scalar_function(conn, f);
        ffi::duckdb_destroy_scalar_function(&mut f);
        if rc != ffi::DuckDBSuccess {
            return Err(Error::Internal(format!("could not register scalar function {}", F::NAME)));
        }
    }
    Ok(())
}

unsafe extern "C" fn drop_box<T>(p: *mut c_void) {
    if !p.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(p as *mut T))));
    }
}

unsafe extern "C" fn copy_shared<B: Send + Sync + 'static>(p: *mut c_void) -> *mut c_void {
    if p.is_null() {
        return p;
    }
    match catch_unwind(AssertUnwindSafe(|| Box::into_raw(Box::new((*(p as *const Shared<B>)).clone())) as *mut c_void)) {
        Ok(copy) => copy,
        Err(_) => std::ptr::null_mut(),
    }
}

fn message(name: &str, outcome: std::thread::Result<Result<()>>) -> Option<CString> {
    let msg = match outcome {
        Ok(Ok(())) => return None,
        Ok(Err(e)) => e.one_line(),
        Err(_) => format!("{name}: internal error (panic); nothing was changed"),
    };
    Some(CString::new(msg.replace('\0', "?")).unwrap_or_default())
}

unsafe extern "C" fn bind_cb<F: ScalarFn>(info: ffi::duckdb_bind_info) {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        let extra = &*(ffi::duckdb_scalar_function_bind_get_extra_info(info) as *const Extra);
        let mut raw: ffi::duckdb_client_context = std::ptr::null_mut();
        ffi::duckdb_scalar_function_get_client_context(info, &mut raw);
        let args = ScalarBindArgs { info, context: ClientContext::from_raw(raw), host: &extra.host };
        let bind: Shared<F::Bind> = Arc::new(F::bind(&args)?);
        ffi::duckdb_scalar_function_set_bind_data(info, Box::into_raw(Box::new(bind)) as *mut c_void, Some(drop_box::<Shared<F::Bind>>));
        ffi::duckdb_scalar_function_set_bind_data_copy(info, Some(copy_shared::<F::Bind>));
        Ok(())
    }));
    if let Some(msg) = message(F::NAME, outcome) {
        ffi::duckdb_scalar_function_bind_set_error(info, msg.as_ptr());
    }
}

unsafe extern "C" fn exec_cb<F: ScalarFn>(info: ffi::duckdb_function_info, input: ffi::duckdb_data_chunk, output: ffi::duckdb_vector) {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        let data = ffi::duckdb_scalar_function_get_bind_data(info) as *const Shared<F::Bind>;
        if data.is_null() {
            return Err(Error::Internal(format!("{} has no bind data", F::NAME)));
        }
        let input = ScalarInput { chunk: input, len: ffi::duckdb_data_chunk_get_size(input) as usize };
        F::execute(&*data, &input, &mut ScalarOutput { vector: output })
    }));
    if let Some(msg) = message(F::NAME, outcome) {
        ffi::duckdb_scalar_function_set_error(info, msg.as_ptr());
    }
}
