//! A small, panic-safe framework for table functions over the raw C API v1: one signature
//! per function (positional parameters, named ones), projection pushdown, typed rows for small results and
//! zero-copy pass-through of DuckDB chunks for large ones. Every callback runs inside
//! `catch_unwind`, so a Rust panic becomes a SQL error and never unwinds into DuckDB.

use std::ffi::{c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use duckdb::ffi;

use crate::error::{Error, Result};
use crate::host::conn::{Chunk, LogicalType};
use crate::host::context::{ClientContext, SettingSource};
use crate::host::session::Host;

/// Output column types the small-result functions use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ColType {
    Varchar,
    BigInt,
    UBigInt,
    Boolean,
    TimestampTz,
    Interval,
    VarcharList,
    /// STRUCT(name VARCHAR, type VARCHAR)[]
    NameTypeList,
}

/// One output value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Str(String),
    I64(i64),
    U64(u64),
    Bool(bool),
    TimestampTz(i64),
    Interval { months: i32, days: i32, micros: i64 },
    StrList(Vec<String>),
    NameTypeList(Vec<(String, String)>),
}

/// Parameter types a table function declares.
#[derive(Clone, Copy, Debug)]
pub enum ParamType {
    Varchar,
    Any,
    Boolean,
    BigInt,
}

/// What the bind callback hands to a function.
pub struct BindArgs<'a> {
    info: ffi::duckdb_bind_info,
    pub host: &'a Arc<Host>,
}

impl BindArgs<'_> {
    pub fn positional_count(&self) -> usize {
        unsafe { ffi::duckdb_bind_get_parameter_count(self.info) as usize }
    }

    pub fn positional(&self, i: usize) -> Arg {
        unsafe { Arg::from_value(ffi::duckdb_bind_get_parameter(self.info, i as u64)) }
    }

    pub fn named(&self, name: &str) -> Arg {
        let c = CString::new(name).expect("parameter names are static");
        unsafe { Arg::from_value(ffi::duckdb_bind_get_named_parameter(self.info, c.as_ptr())) }
    }

    /// A setting as seen by the calling connection (SET / SET GLOBAL / default).
    pub fn setting(&self, name: &str) -> Option<String> {
        SettingSource::setting(self, name)
    }

    /// Whether the calling connection sees a table, uncommitted ones of its own included.
    pub fn caller_sees_table(&self, catalog: &str, schema: &str, table: &str) -> bool {
        unsafe {
            let mut ctx: ffi::duckdb_client_context = std::ptr::null_mut();
            ffi::duckdb_table_function_get_client_context(self.info, &mut ctx);
            ClientContext::from_raw(ctx).is_some_and(|c| c.sees_table(catalog, schema, table))
        }
    }
}

impl SettingSource for BindArgs<'_> {
    fn setting(&self, name: &str) -> Option<String> {
        unsafe {
            let mut ctx: ffi::duckdb_client_context = std::ptr::null_mut();
            ffi::duckdb_table_function_get_client_context(self.info, &mut ctx);
            ClientContext::from_raw(ctx)?.setting(name)
        }
    }
}

/// A parameter value, decoded into what the functions accept.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Missing,
    Null,
    Str(String),
    StrList(Vec<Option<String>>),
    Bool(bool),
    Int(i64),
    Interval { months: i32, days: i32, micros: i64 },
    /// A TIMESTAMPTZ, microseconds since the epoch.
    Timestamp(i64),
    /// A TIMESTAMP (wall-clock microseconds, no time zone).
    LocalTimestamp(i64),
    /// A DATE, days since the epoch.
    Date(i32),
    Other(String),
}

impl Arg {
    /// Takes ownership of `v` and destroys it.
    ///
    /// # Safety
    /// `v` must be a value handle from the C API (or null).
    pub unsafe fn from_value(mut v: ffi::duckdb_value) -> Arg {
        if v.is_null() {
            return Arg::Missing;
        }
        let out = if ffi::duckdb_is_null_value(v) {
            Arg::Null
        } else {
            let ty = ffi::duckdb_get_value_type(v);
            let id = ffi::duckdb_get_type_id(ty);
            match id {
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR => Arg::Str(value_string(v)),
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN => Arg::Bool(ffi::duckdb_get_bool(v)),
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_TINYINT
                | ffi::DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT
                | ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTEGER
                | ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT
                | ffi::DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT
                | ffi::DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT
                | ffi::DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER => Arg::Int(ffi::duckdb_get_int64(v)),
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTERVAL => {
                    let i = ffi::duckdb_get_interval(v);
                    Arg::Interval { months: i.months, days: i.days, micros: i.micros }
                }
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP => Arg::LocalTimestamp(ffi::duckdb_get_timestamp(v).micros),
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_DATE => Arg::Date(ffi::duckdb_get_date(v).days),
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ => Arg::Timestamp(ffi::duckdb_get_timestamp_tz(v).micros),
                ffi::DUCKDB_TYPE_DUCKDB_TYPE_LIST | ffi::DUCKDB_TYPE_DUCKDB_TYPE_ARRAY => {
                    let n = ffi::duckdb_get_list_size(v);
                    let mut items = Vec::with_capacity(n as usize);
                    for i in 0..n {
                        let mut child = ffi::duckdb_get_list_child(v, i);
                        if ffi::duckdb_is_null_value(child) {
                            items.push(None);
                        } else {
                            items.push(Some(value_string(child)));
                        }
                        ffi::duckdb_destroy_value(&mut child);
                    }
                    Arg::StrList(items)
                }
                _ => Arg::Other(value_string(v)),
            }
        };
        ffi::duckdb_destroy_value(&mut v);
        out
    }

    /// An optional text parameter: missing or NULL gives None.
    pub fn opt_str(&self, what: &str) -> Result<Option<String>> {
        match self {
            Arg::Missing | Arg::Null => Ok(None),
            Arg::Str(s) => Ok(Some(s.clone())),
            other => Err(Error::Input(format!("{what} must be a VARCHAR, got {}", other.describe()))),
        }
    }

    pub fn opt_count(&self, what: &str) -> Result<Option<u64>> {
        match self {
            Arg::Missing | Arg::Null => Ok(None),
            Arg::Int(n) if *n >= 0 => Ok(Some(*n as u64)),
            other => Err(Error::Input(format!("{what} must be a non-negative integer, got {}", other.describe()))),
        }
    }

    pub fn opt_bool(&self, what: &str) -> Result<Option<bool>> {
        match self {
            Arg::Missing | Arg::Null => Ok(None),
            Arg::Bool(b) => Ok(Some(*b)),
            other => Err(Error::Input(format!("{what} must be a BOOLEAN, got {}", other.describe()))),
        }
    }

    /// How an argument reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Arg::Missing | Arg::Null => "NULL".into(),
            Arg::Str(s) => format!("'{s}'"),
            Arg::StrList(_) => "a list".into(),
            Arg::Bool(b) => b.to_string(),
            Arg::Int(n) => n.to_string(),
            Arg::Interval { .. } => "an INTERVAL".into(),
            Arg::Timestamp(_) => "a TIMESTAMPTZ".into(),
            Arg::LocalTimestamp(_) => "a TIMESTAMP".into(),
            Arg::Date(_) => "a DATE".into(),
            Arg::Other(s) => s.clone(),
        }
    }
}

unsafe fn value_string(v: ffi::duckdb_value) -> String {
    let p = ffi::duckdb_get_varchar(v);
    if p.is_null() {
        return String::new();
    }
    let s = CStr::from_ptr(p).to_string_lossy().into_owned();
    ffi::duckdb_free(p as *mut c_void);
    s
}

/// The schema a bind declares: either simple typed columns or DuckDB logical types
/// taken from a prepared query (pass-through functions).
pub enum Schema {
    Simple(Vec<(&'static str, ColType)>),
    Logical(Vec<(String, LogicalType)>),
}

/// What a scan produces on each call.
pub enum Produce {
    /// Typed rows, emitted in chunks by the framework.
    Rows(Vec<Vec<Val>>),
    /// A stream of DuckDB chunks whose vectors are referenced into the output as they are.
    Chunks(Box<dyn ChunkSource>),
    /// Independent partitions that DuckDB's threads scan in parallel (no order between them).
    Partitioned(Arc<dyn PartitionSource>),
}

/// Hands out partitions, each a chunk source, to whichever thread asks next.
pub trait PartitionSource: Send + Sync {
    fn next_partition(&self) -> Result<Option<Box<dyn ChunkSource>>>;
}

pub trait ChunkSource: Send {
    /// The next chunk (its columns already in output order), or None at the end.
    fn next(&mut self) -> Result<Option<Chunk>>;
}

/// One SQL table function.
pub trait TableFn: Send + Sync + 'static {
    type Bind: Send + Sync + 'static;
    /// Positional parameters. The C API v1 cannot register overloads of a table function
    /// (a second registration under the same name is silently ignored), so optional
    /// positional arguments are declared here and passed as NULL when not wanted.
    fn params() -> &'static [ParamType];
    fn named() -> &'static [(&'static str, ParamType)] {
        &[]
    }
    fn projection_pushdown() -> bool {
        false
    }
    /// How many DuckDB threads may call `produce`'s partitions at once.
    fn max_threads(_bind: &Self::Bind) -> u64 {
        1
    }
    fn bind(args: &BindArgs) -> Result<(Self::Bind, Schema)>;
    /// Runs the function. `columns` are the projected column indexes (all when no pushdown).
    fn produce(host: &Arc<Host>, bind: &Self::Bind, columns: &[usize]) -> Result<Produce>;
}

struct Extra {
    host: Arc<Host>,
    name: &'static str,
}

struct BindData<B> {
    bind: B,
    schema_kinds: Vec<ColType>,
    host: Arc<Host>,
    name: &'static str,
}

enum StateInner {
    Pending,
    Rows { rows: Vec<Vec<Val>>, pos: usize },
    Chunks { source: Box<dyn ChunkSource>, _current: Option<Chunk> },
    Partitioned(Arc<dyn PartitionSource>),
    Done,
}

/// Per-thread state of a partitioned scan.
struct LocalState {
    source: Option<Box<dyn ChunkSource>>,
    current: Option<Chunk>,
}

struct State {
    inner: Mutex<StateInner>,
    columns: Vec<usize>,
}

pub fn register<F: TableFn>(conn: ffi::duckdb_connection, host: &Arc<Host>, name: &'static str) -> Result<()> {
    {
        let params = F::params();
        unsafe {
            let mut tf = ffi::duckdb_create_table_function();
            let c_name = CString::new(name).unwrap();
            ffi::duckdb_table_function_set_name(tf, c_name.as_ptr());
            for p in params.iter() {
                let mut ty = param_type(*p);
                ffi::duckdb_table_function_add_parameter(tf, ty);
                ffi::duckdb_destroy_logical_type(&mut ty);
            }
            for (pname, p) in F::named() {
                let c = CString::new(*pname).unwrap();
                let mut ty = param_type(*p);
                ffi::duckdb_table_function_add_named_parameter(tf, c.as_ptr(), ty);
                ffi::duckdb_destroy_logical_type(&mut ty);
            }
            let extra = Box::new(Extra { host: host.clone(), name });
            ffi::duckdb_table_function_set_extra_info(tf, Box::into_raw(extra) as *mut c_void, Some(drop_box::<Extra>));
            ffi::duckdb_table_function_set_bind(tf, Some(bind_cb::<F>));
            ffi::duckdb_table_function_set_init(tf, Some(init_cb::<F>));
            ffi::duckdb_table_function_set_function(tf, Some(func_cb::<F>));
            ffi::duckdb_table_function_set_local_init(tf, Some(local_init_cb));
            ffi::duckdb_table_function_supports_projection_pushdown(tf, F::projection_pushdown());
            let rc = ffi::duckdb_register_table_function(conn, tf);
            ffi::duckdb_destroy_table_function(&mut tf);
            if rc != ffi::DuckDBSuccess {
                return Err(Error::Internal(format!("could not register table function {name}")));
            }
        }
    }
    Ok(())
}

unsafe fn param_type(p: ParamType) -> ffi::duckdb_logical_type {
    ffi::duckdb_create_logical_type(match p {
        ParamType::Varchar => ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR,
        ParamType::Any => ffi::DUCKDB_TYPE_DUCKDB_TYPE_ANY,
        ParamType::Boolean => ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN,
        ParamType::BigInt => ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT,
    })
}

unsafe extern "C" fn drop_box<T>(p: *mut c_void) {
    if !p.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(p as *mut T))));
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Runs `f`, turning both errors and panics into a one-line message prefixed by the function name.
fn guarded<T>(name: &str, f: impl FnOnce() -> Result<T>) -> std::result::Result<T, CString> {
    let msg = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => format!("{name}: {}", e.one_line()),
        Err(p) => format!("{name}: internal error (panic: {}); nothing was changed", panic_message(p)),
    };
    Err(CString::new(msg.replace('\0', "?")).unwrap_or_default())
}

unsafe fn simple_type(k: ColType) -> ffi::duckdb_logical_type {
    match k {
        ColType::Varchar => ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR),
        ColType::BigInt => ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT),
        ColType::UBigInt => ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT),
        ColType::Boolean => ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN),
        ColType::TimestampTz => ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ),
        ColType::Interval => ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTERVAL),
        ColType::VarcharList => {
            let mut v = ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR);
            let l = ffi::duckdb_create_list_type(v);
            ffi::duckdb_destroy_logical_type(&mut v);
            l
        }
        ColType::NameTypeList => {
            let mut a = ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR);
            let mut b = ffi::duckdb_create_logical_type(ffi::DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR);
            let mut types = [a, b];
            let n1 = CString::new("name").unwrap();
            let n2 = CString::new("type").unwrap();
            let mut names = [n1.as_ptr(), n2.as_ptr()];
            let mut s = ffi::duckdb_create_struct_type(types.as_mut_ptr(), names.as_mut_ptr(), 2);
            ffi::duckdb_destroy_logical_type(&mut a);
            ffi::duckdb_destroy_logical_type(&mut b);
            let l = ffi::duckdb_create_list_type(s);
            ffi::duckdb_destroy_logical_type(&mut s);
            l
        }
    }
}

unsafe extern "C" fn bind_cb<F: TableFn>(info: ffi::duckdb_bind_info) {
    let extra = &*(ffi::duckdb_bind_get_extra_info(info) as *const Extra);
    let name = extra.name;
    let result = guarded(name, || {
        let args = BindArgs { info, host: &extra.host };
        let (bind, schema) = F::bind(&args)?;
        let mut kinds = Vec::new();
        match schema {
            Schema::Simple(cols) => {
                for (col, kind) in cols {
                    let c = CString::new(col).unwrap();
                    let mut ty = simple_type(kind);
                    ffi::duckdb_bind_add_result_column(info, c.as_ptr(), ty);
                    ffi::duckdb_destroy_logical_type(&mut ty);
                    kinds.push(kind);
                }
            }
            Schema::Logical(cols) => {
                for (col, ty) in cols {
                    let c = CString::new(col.replace('\0', "")).unwrap();
                    ffi::duckdb_bind_add_result_column(info, c.as_ptr(), ty.0);
                }
            }
        }
        Ok(BindData { bind, schema_kinds: kinds, host: extra.host.clone(), name })
    });
    match result {
        Ok(data) => ffi::duckdb_bind_set_bind_data(info, Box::into_raw(Box::new(data)) as *mut c_void, Some(drop_box::<BindData<F::Bind>>)),
        Err(msg) => ffi::duckdb_bind_set_error(info, msg.as_ptr()),
    }
}

unsafe extern "C" fn init_cb<F: TableFn>(info: ffi::duckdb_init_info) {
    let data = &*(ffi::duckdb_init_get_bind_data(info) as *const BindData<F::Bind>);
    let result = guarded(data.name, || {
        // without projection pushdown the output chunk holds every column, whatever is used
        let columns = if F::projection_pushdown() {
            let n = ffi::duckdb_init_get_column_count(info) as usize;
            (0..n).map(|i| ffi::duckdb_init_get_column_index(info, i as u64) as usize).collect()
        } else {
            (0..data.schema_kinds.len()).collect()
        };
        Ok(State { inner: Mutex::new(StateInner::Pending), columns })
    });
    match result {
        Ok(state) => {
            ffi::duckdb_init_set_max_threads(info, F::max_threads(&data.bind).max(1));
            ffi::duckdb_init_set_init_data(info, Box::into_raw(Box::new(state)) as *mut c_void, Some(drop_box::<State>))
        }
        Err(msg) => ffi::duckdb_init_set_error(info, msg.as_ptr()),
    }
}

unsafe extern "C" fn func_cb<F: TableFn>(info: ffi::duckdb_function_info, output: ffi::duckdb_data_chunk) {
    let data = &*(ffi::duckdb_function_get_bind_data(info) as *const BindData<F::Bind>);
    let state = &*(ffi::duckdb_function_get_init_data(info) as *const State);
    let result = guarded(data.name, || {
        let mut inner = state.inner.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*inner, StateInner::Pending) {
            // a failed run must not be retried on the next call
            *inner = StateInner::Done;
            *inner = match F::produce(&data.host, &data.bind, &state.columns)? {
                Produce::Rows(rows) => StateInner::Rows { rows, pos: 0 },
                Produce::Chunks(source) => StateInner::Chunks { source, _current: None },
                Produce::Partitioned(parts) => StateInner::Partitioned(parts),
            };
        }
        if let StateInner::Partitioned(parts) = &*inner {
            let parts = parts.clone();
            drop(inner);
            let local = &mut *(ffi::duckdb_function_get_local_init_data(info) as *mut LocalState);
            return scan_partitions(&*parts, local, output);
        }
        match &mut *inner {
            StateInner::Rows { rows, pos } => {
                let n = write_rows(output, &data.schema_kinds, &state.columns, &rows[*pos..]);
                *pos += n;
            }
            StateInner::Chunks { source, _current } => loop {
                match source.next()? {
                    None => {
                        ffi::duckdb_data_chunk_set_size(output, 0);
                        *_current = None;
                        break;
                    }
                    Some(chunk) if chunk.is_empty() => continue,
                    Some(chunk) => {
                        *_current = Some(emit(output, chunk));
                        break;
                    }
                }
            },
            StateInner::Pending | StateInner::Done | StateInner::Partitioned(_) => ffi::duckdb_data_chunk_set_size(output, 0),
        }
        Ok(())
    });
    if let Err(msg) = result {
        ffi::duckdb_function_set_error(info, msg.as_ptr());
    }
}

/// Points the output's vectors at a fetched chunk (no copy); the chunk must be kept alive
/// until the next call, so it is returned to the caller to hold.
unsafe fn emit(output: ffi::duckdb_data_chunk, chunk: Chunk) -> Chunk {
    let ncols = ffi::duckdb_data_chunk_get_column_count(output) as usize;
    for c in 0..ncols {
        ffi::duckdb_vector_reference_vector(ffi::duckdb_data_chunk_get_vector(output, c as u64), chunk.vector(c));
    }
    ffi::duckdb_data_chunk_set_size(output, chunk.len() as u64);
    chunk
}

unsafe extern "C" fn local_init_cb(info: ffi::duckdb_init_info) {
    let local = Box::new(LocalState { source: None, current: None });
    ffi::duckdb_init_set_init_data(info, Box::into_raw(local) as *mut c_void, Some(drop_box::<LocalState>));
}

/// One output chunk of a partitioned scan from this thread; an empty chunk ends this thread.
unsafe fn scan_partitions(parts: &dyn PartitionSource, local: &mut LocalState, output: ffi::duckdb_data_chunk) -> Result<()> {
    loop {
        if local.source.is_none() {
            match parts.next_partition()? {
                Some(src) => local.source = Some(src),
                None => {
                    local.current = None;
                    ffi::duckdb_data_chunk_set_size(output, 0);
                    return Ok(());
                }
            }
        }
        match local.source.as_mut().expect("set above").next()? {
            None => local.source = None,
            Some(chunk) if chunk.is_empty() => continue,
            Some(chunk) => {
                local.current = Some(emit(output, chunk));
                return Ok(());
            }
        }
    }
}

/// Writes up to one vector's worth of rows; returns how many were written.
unsafe fn write_rows(output: ffi::duckdb_data_chunk, kinds: &[ColType], columns: &[usize], rows: &[Vec<Val>]) -> usize {
    let n = rows.len().min(ffi::duckdb_vector_size() as usize);
    for (out_idx, &col) in columns.iter().enumerate() {
        let Some(&kind) = kinds.get(col) else { continue };
        let vector = ffi::duckdb_data_chunk_get_vector(output, out_idx as u64);
        for (r, row) in rows[..n].iter().enumerate() {
            write_val(vector, kind, r, row.get(col).unwrap_or(&Val::Null));
        }
    }
    ffi::duckdb_data_chunk_set_size(output, n as u64);
    n
}

unsafe fn set_null(vector: ffi::duckdb_vector, row: usize) {
    ffi::duckdb_vector_ensure_validity_writable(vector);
    let validity = ffi::duckdb_vector_get_validity(vector);
    ffi::duckdb_validity_set_row_invalid(validity, row as u64);
}

unsafe fn put_str(vector: ffi::duckdb_vector, row: usize, s: &str) {
    ffi::duckdb_vector_assign_string_element_len(vector, row as u64, s.as_ptr() as *const _, s.len() as u64);
}

unsafe fn write_val(vector: ffi::duckdb_vector, kind: ColType, row: usize, v: &Val) {
    match (kind, v) {
        (_, Val::Null) => set_null(vector, row),
        (ColType::Varchar, Val::Str(s)) => put_str(vector, row, s),
        (ColType::BigInt, Val::I64(x)) | (ColType::TimestampTz, Val::TimestampTz(x)) => {
            *(ffi::duckdb_vector_get_data(vector) as *mut i64).add(row) = *x
        }
        (ColType::Interval, Val::Interval { months, days, micros }) => {
            *(ffi::duckdb_vector_get_data(vector) as *mut ffi::duckdb_interval).add(row) =
                ffi::duckdb_interval { months: *months, days: *days, micros: *micros }
        }
        (ColType::UBigInt, Val::U64(x)) => *(ffi::duckdb_vector_get_data(vector) as *mut u64).add(row) = *x,
        (ColType::Boolean, Val::Bool(b)) => *(ffi::duckdb_vector_get_data(vector) as *mut bool).add(row) = *b,
        (ColType::VarcharList, Val::StrList(items)) => {
            let child = append_list_entry(vector, row, items.len());
            let base = ffi::duckdb_list_vector_get_size(vector) as usize - items.len();
            for (i, s) in items.iter().enumerate() {
                put_str(child, base + i, s);
            }
        }
        (ColType::NameTypeList, Val::NameTypeList(items)) => {
            let child = append_list_entry(vector, row, items.len());
            let base = ffi::duckdb_list_vector_get_size(vector) as usize - items.len();
            let names = ffi::duckdb_struct_vector_get_child(child, 0);
            let types = ffi::duckdb_struct_vector_get_child(child, 1);
            for (i, (n, t)) in items.iter().enumerate() {
                put_str(names, base + i, n);
                put_str(types, base + i, t);
            }
        }
        _ => set_null(vector, row),
    }
}

/// Reserves `len` child slots at the end of a list vector and points `row` at them.
unsafe fn append_list_entry(vector: ffi::duckdb_vector, row: usize, len: usize) -> ffi::duckdb_vector {
    let offset = ffi::duckdb_list_vector_get_size(vector);
    ffi::duckdb_list_vector_reserve(vector, offset + len as u64);
    ffi::duckdb_list_vector_set_size(vector, offset + len as u64);
    let entries = ffi::duckdb_vector_get_data(vector) as *mut ffi::duckdb_list_entry;
    *entries.add(row) = ffi::duckdb_list_entry { offset, length: len as u64 };
    ffi::duckdb_list_vector_get_child(vector)
}
