//! Reading an incremental table version without sorting it: DuckDB streams the base file
//! in its stored (row-id) order and the surviving delta rows ordered by row id, each on a
//! reader connection, and this source interleaves them chunk by chunk. A step stages the
//! base rows and delta rows of one row-id range side by side in fresh vectors (two copies
//! per column) and emits them through a selection vector in row-id order, skipping base rows
//! that a delta replaces, deletes or voids (cleared blocks).

use std::sync::Arc;

use duckdb::ffi;

use crate::engine::layers::MergePlan;
use crate::error::{Error, Result};
use crate::host::conn::{Chunk, Stream};
use crate::host::session::{Host, ReaderLease, READER_POOL};
use crate::host::split::{ErrorMap, KeyedSource, KeyedStream, Keys};
use crate::host::table_fn::ChunkSource;

const VECTOR: usize = 2048;

/// A selection vector we own.
struct Sel(ffi::duckdb_selection_vector);

impl Sel {
    fn new(indexes: &[u32]) -> Sel {
        unsafe {
            let sel = ffi::duckdb_create_selection_vector(indexes.len().max(1) as u64);
            let data = ffi::duckdb_selection_vector_get_data_ptr(sel);
            std::ptr::copy_nonoverlapping(indexes.as_ptr(), data, indexes.len());
            Sel(sel)
        }
    }
}

impl Drop for Sel {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_destroy_selection_vector(self.0) }
    }
}

/// Vectors we own (staging space).
struct Staged(Vec<ffi::duckdb_vector>);

unsafe impl Send for Staged {}

impl Drop for Staged {
    fn drop(&mut self) {
        for v in &mut self.0 {
            unsafe { ffi::duckdb_destroy_vector(v) }
        }
    }
}

/// One input stream and its current chunk.
struct Input {
    stream: Option<Stream>,
    chunk: Option<Chunk>,
    pos: usize,
    /// Row ids of the current chunk (flattened).
    rowids: Vec<i64>,
    /// Delete markers of the current chunk (deltas only).
    deleted: Vec<bool>,
}

impl Input {
    fn len(&self) -> usize {
        self.chunk.as_ref().map(|c| c.len()).unwrap_or(0)
    }

    fn exhausted(&self) -> bool {
        self.stream.is_none() && self.pos >= self.len()
    }
}

pub struct MergeScan {
    plan: MergePlan,
    base: Input,
    delta: Input,
    types: Vec<ffi::duckdb_logical_type>,
    identity: Sel,
    /// A staged step not fully emitted yet: vectors, selection, the row id of each selected
    /// row, how much went out.
    pending: Option<(Staged, Vec<u32>, Vec<i64>, usize)>,
    // dropped last: the streams above must go before their connections
    _leases: Vec<ReaderLease>,
}

unsafe impl Send for MergeScan {}

impl Drop for MergeScan {
    fn drop(&mut self) {
        self.pending = None;
        self.base.chunk = None;
        self.delta.chunk = None;
        self.base.stream = None;
        self.delta.stream = None;
        for t in &mut self.types {
            unsafe { ffi::duckdb_destroy_logical_type(t) }
        }
    }
}

/// Reads column `col` of a chunk as flat BIGINTs / BOOLEANs (copied through a flat vector,
/// whatever shape DuckDB handed out).
unsafe fn flat_column<T: Copy>(chunk: &Chunk, col: usize, ty: ffi::DUCKDB_TYPE, identity: &Sel) -> Vec<T> {
    let n = chunk.len();
    let mut lt = ffi::duckdb_create_logical_type(ty);
    let mut flat = ffi::duckdb_create_vector(lt, VECTOR as u64);
    ffi::duckdb_destroy_logical_type(&mut lt);
    ffi::duckdb_vector_copy_sel(chunk.vector(col), flat, identity.0, n as u64, 0, 0);
    let data = ffi::duckdb_vector_get_data(flat) as *const T;
    let out = std::slice::from_raw_parts(data, n).to_vec();
    ffi::duckdb_destroy_vector(&mut flat);
    out
}

impl MergeScan {
    pub fn start(host: &Arc<Host>, plan: MergePlan) -> Result<MergeScan> {
        let base_lease = host.reader()?;
        let base = base_lease.conn().stream(&plan.base_sql)?;
        let mut leases = vec![base_lease];
        let delta = match &plan.delta_sql {
            Some(sql) => {
                let lease = host.reader()?;
                let s = lease.conn().stream(sql)?;
                leases.push(lease);
                Some(s)
            }
            None => None,
        };
        let identity: Vec<u32> = (0..VECTOR as u32).collect();
        Ok(MergeScan {
            plan,
            base: Input { stream: Some(base), chunk: None, pos: 0, rowids: Vec::new(), deleted: Vec::new() },
            delta: Input { stream: delta, chunk: None, pos: 0, rowids: Vec::new(), deleted: Vec::new() },
            types: Vec::new(),
            identity: Sel::new(&identity),
            pending: None,
            _leases: leases,
        })
    }

    /// Makes sure the input has rows at `pos`, fetching the next chunk when needed.
    fn fill(&mut self, delta: bool) -> Result<()> {
        let width = self.plan.width;
        let identity = &self.identity;
        let input = if delta { &mut self.delta } else { &mut self.base };
        while input.pos >= input.len() {
            let Some(stream) = input.stream.as_mut() else { return Ok(()) };
            match stream.next_chunk()? {
                None => {
                    input.stream = None;
                    input.chunk = None;
                    input.pos = 0;
                    return Ok(());
                }
                Some(c) if c.is_empty() => continue,
                Some(c) => unsafe {
                    input.rowids = flat_column::<i64>(&c, width, ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT, identity);
                    input.deleted = if delta { flat_column::<bool>(&c, width + 1, ffi::DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN, identity) } else { Vec::new() };
                    if self.types.is_empty() {
                        self.types = (0..width).map(|i| ffi::duckdb_vector_get_column_type(c.vector(i))).collect();
                    }
                    input.chunk = Some(c);
                    input.pos = 0;
                },
            }
        }
        Ok(())
    }

    /// An output chunk of `indexes` rows of `vectors` (referenced, then sliced).
    unsafe fn output(&self, vectors: &[ffi::duckdb_vector], indexes: &[u32]) -> Chunk {
        let mut types = self.types.clone();
        let out = ffi::duckdb_create_data_chunk(types.as_mut_ptr(), types.len() as u64);
        let sel = Sel::new(indexes);
        for (c, v) in vectors.iter().enumerate() {
            let target = ffi::duckdb_data_chunk_get_vector(out, c as u64);
            ffi::duckdb_vector_reference_vector(target, *v);
            ffi::duckdb_slice_vector(target, sel.0, indexes.len() as u64);
        }
        ffi::duckdb_data_chunk_set_size(out, indexes.len() as u64);
        Chunk(out)
    }

    fn emit_pending(&mut self) -> Option<(Chunk, Vec<i64>)> {
        let (vectors, part, keys, finished) = {
            let (staged, sel, ids, done) = self.pending.as_mut()?;
            let end = (*done + VECTOR).min(sel.len());
            let part = sel[*done..end].to_vec();
            let keys = ids[*done..end].to_vec();
            *done = end;
            (staged.0.clone(), part, keys, end >= sel.len())
        };
        let chunk = unsafe { self.output(&vectors, &part) };
        if finished {
            // the output holds its own references to the staged buffers
            self.pending = None;
        }
        Some((chunk, keys))
    }

    /// Rows of one input chunk from `pos` up to (excluding) `end`, filtered by `keep`.
    fn from_one(&mut self, delta: bool, end: usize) -> Option<(Chunk, Vec<i64>)> {
        let input = if delta { &self.delta } else { &self.base };
        let chunk = input.chunk.as_ref()?;
        let keep: Vec<u32> = (input.pos..end)
            .filter(|&i| if delta { !input.deleted[i] } else { !self.plan.is_cleared(input.rowids[i] as u64) })
            .map(|i| i as u32)
            .collect();
        let keys: Vec<i64> = keep.iter().map(|&i| input.rowids[i as usize]).collect();
        let vectors: Vec<ffi::duckdb_vector> = (0..self.plan.width).map(|c| chunk.vector(c)).collect();
        let out = (!keep.is_empty()).then(|| (unsafe { self.output(&vectors, &keep) }, keys));
        if delta {
            self.delta.pos = end;
        } else {
            self.base.pos = end;
        }
        out
    }

    /// The next output chunk and the row id of each of its rows.
    fn step(&mut self) -> Result<Option<(Chunk, Vec<i64>)>> {
        loop {
            if let Some(c) = self.emit_pending() {
                return Ok(Some(c));
            }
            self.fill(false)?;
            self.fill(true)?;
            let (b_done, d_done) = (self.base.exhausted(), self.delta.exhausted());
            if b_done && d_done {
                return Ok(None);
            }
            if b_done || d_done {
                let delta = b_done;
                let end = if delta { self.delta.len() } else { self.base.len() };
                if let Some(c) = self.from_one(delta, end) {
                    return Ok(Some(c));
                }
                continue;
            }
            // both have rows: take everything up to the smaller of the two chunks' last ids
            let bound = (*self.base.rowids.last().unwrap_or(&i64::MAX)).min(*self.delta.rowids.last().unwrap_or(&i64::MAX));
            let bq = self.base.pos + self.base.rowids[self.base.pos..].partition_point(|r| *r <= bound);
            let dq = self.delta.pos + self.delta.rowids[self.delta.pos..].partition_point(|r| *r <= bound);
            if dq == self.delta.pos {
                // no delta row in range: base rows only
                if let Some(c) = self.from_one(false, bq) {
                    return Ok(Some(c));
                }
                continue;
            }
            let (bp, dp) = (self.base.pos, self.delta.pos);
            let nb = bq - bp;
            let nd = dq - dp;
            let mut sel: Vec<u32> = Vec::with_capacity(nb + nd);
            let mut ids: Vec<i64> = Vec::with_capacity(nb + nd);
            let (mut i, mut j) = (bp, dp);
            while i < bq || j < dq {
                let take_delta = j < dq && (i >= bq || self.delta.rowids[j] <= self.base.rowids[i]);
                if take_delta {
                    if i < bq && self.delta.rowids[j] == self.base.rowids[i] {
                        i += 1; // replaced or deleted by the delta
                    }
                    if !self.delta.deleted[j] {
                        sel.push((nb + j - dp) as u32);
                        ids.push(self.delta.rowids[j]);
                    }
                    j += 1;
                } else {
                    if !self.plan.is_cleared(self.base.rowids[i] as u64) {
                        sel.push((i - bp) as u32);
                        ids.push(self.base.rowids[i]);
                    }
                    i += 1;
                }
            }
            let staged = unsafe {
                let (base, delta) = (self.base.chunk.as_ref().expect("filled"), self.delta.chunk.as_ref().expect("filled"));
                let mut vs = Vec::with_capacity(self.plan.width);
                for (c, ty) in self.types.iter().enumerate() {
                    let v = ffi::duckdb_create_vector(*ty, (nb + nd).max(1) as u64);
                    if v.is_null() {
                        return Err(Error::Internal("could not allocate a vector".into()));
                    }
                    ffi::duckdb_vector_copy_sel(base.vector(c), v, self.identity.0, bq as u64, bp as u64, 0);
                    ffi::duckdb_vector_copy_sel(delta.vector(c), v, self.identity.0, dq as u64, dp as u64, nb as u64);
                    vs.push(v);
                }
                Staged(vs)
            };
            self.base.pos = bq;
            self.delta.pos = dq;
            if !sel.is_empty() {
                self.pending = Some((staged, sel, ids, 0));
            }
        }
    }
}

impl ChunkSource for MergeScan {
    fn next(&mut self) -> Result<Option<Chunk>> {
        Ok(self.step()?.map(|(chunk, _)| chunk))
    }
}

impl KeyedStream for MergeScan {
    fn next(&mut self) -> Result<Option<(Chunk, Keys)>> {
        Ok(self.step()?.map(|(chunk, ids)| (chunk, Keys::Each(ids))))
    }
}

/// An incremental version keyed by row id, for `SplitScan`: each range is a merge of its own.
pub struct ChainRanges {
    pub host: Arc<Host>,
    /// The merge plan of a row-id range.
    pub plan: Box<dyn Fn(u64, u64) -> MergePlan + Send + Sync>,
    /// One past the highest row id.
    pub total: u64,
    pub on_error: ErrorMap,
}

/// Ranges are cut at multiples of this many row ids (a base file's row group).
pub const CUT: u64 = 122_880;

impl KeyedSource for ChainRanges {
    fn total(&self) -> u64 {
        self.total
    }

    fn boundary_after(&self, key: u64) -> u64 {
        if let Some(cut) = crate::host::split::test_cut(key, self.total) {
            return cut;
        }
        key.div_ceil(CUT).saturating_mul(CUT).min(self.total)
    }

    fn open(&self, start: u64, end: u64, first: bool) -> Result<Option<Box<dyn KeyedStream>>> {
        // a merge takes two connections; a thread that joins leaves half the pool to others
        if !first && self.host.free_readers() <= READER_POOL / 2 + 1 {
            return Ok(None);
        }
        let scan = MergeScan::start(&self.host, (self.plan)(start, end)).map_err(|e| (self.on_error)(e))?;
        Ok(Some(Box::new(scan)))
    }
}
