//! Parallel read_snapshot scans. A C API table function has no batch indexes, so where the
//! order of rows matters DuckDB runs it on one thread; elsewhere (aggregates, joins) on
//! several. The scan cannot know which beforehand, so rows are keyed by an ascending number
//! (a file's row number, a version's row id): the first thread scans every key in order, and
//! each thread that joins later takes the back half of the largest key range still unread.
//! One thread thus reads one ordered stream (as fast as a plain scan), several split the work.
//! With `preserve_insertion_order = false` (a global setting: the reader connections' own
//! streams are unordered then) a file is cut into fixed ranges up front instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::host::conn::{Chunk, Stream};
use crate::host::session::{Host, ReaderLease, READER_POOL};
use crate::host::table_fn::{ChunkSource, PartitionSource};

/// At most this many streams per scan: reader connections are shared by every scan of the
/// database (`READER_POOL`), and idle DuckDB workers help each stream's own query anyway.
const MAX_STREAMS: usize = 8;

/// How a failed read is reported (e.g. the file vanished because its snapshot was dropped).
pub type ErrorMap = Arc<dyn Fn(Error) -> Error + Send + Sync>;

/// The keys of a chunk's rows, ascending.
pub enum Keys {
    /// Consecutive keys from this one on.
    From(u64),
    /// One key per row.
    Each(Vec<i64>),
}

/// A scan of one key range, in key order.
pub trait KeyedStream: Send {
    fn next(&mut self) -> Result<Option<(Chunk, Keys)>>;
}

/// Something whose rows can be scanned by key range.
pub trait KeyedSource: Send + Sync {
    /// Keys run from 0 to (excluding) this.
    fn total(&self) -> u64;
    /// Where a range may be cut at or after `key` (row group boundaries keep scans cheap).
    fn boundary_after(&self, key: u64) -> u64;
    /// A scan of `[start, end)`; None when no connection is free for it (the caller sits out;
    /// the first scan of a query must get one).
    fn open(&self, start: u64, end: u64, first: bool) -> Result<Option<Box<dyn KeyedStream>>>;
    /// Splitting is over: spare connections may go back.
    fn done_splitting(&self) {}
}

/// `SNAPSHOT_TEST_SPLIT_CUT=n`: ranges are cut at multiples of `n` keys instead of at row
/// groups, so tests can make cuts fall inside chunks.
pub fn test_cut(key: u64, total: u64) -> Option<u64> {
    let n: u64 = std::env::var("SNAPSHOT_TEST_SPLIT_CUT").ok()?.parse().ok().filter(|&n| n > 0)?;
    Some(key.div_ceil(n).saturating_mul(n).min(total))
}

/// Keys `[pos, end)` still to be emitted by one scan; a thief lowers `end`.
struct Cursor {
    pos: u64,
    end: u64,
}

/// Splits a keyed source between the threads that come for it (see the module header).
pub struct SplitScan<S: KeyedSource> {
    source: S,
    /// Whether the first scan started, and the cursors of the scans running.
    active: Mutex<(bool, Vec<Arc<Mutex<Cursor>>>)>,
}

impl<S: KeyedSource> SplitScan<S> {
    pub fn new(source: S) -> SplitScan<S> {
        SplitScan { source, active: Mutex::new((false, Vec::new())) }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: KeyedSource> PartitionSource for SplitScan<S> {
    fn next_partition(&self) -> Result<Option<Box<dyn ChunkSource>>> {
        let (split, end, victim) = {
            let mut active = lock(&self.active);
            if !active.0 {
                active.0 = true;
                let end = self.source.total();
                let Some(stream) = self.source.open(0, end, true)? else { return Ok(None) };
                let cursor = Arc::new(Mutex::new(Cursor { pos: 0, end }));
                active.1.push(cursor.clone());
                return Ok(Some(Box::new(CursorScan { stream: Some(stream), cursor })));
            }
            active.1.retain(|c| {
                let c = lock(c);
                c.pos < c.end
            });
            // the back half of the largest unread range, cut at a boundary
            let mut best: Option<(u64, u64, Arc<Mutex<Cursor>>)> = None;
            for c in &active.1 {
                let g = lock(c);
                let split = self.source.boundary_after(g.pos + (g.end - g.pos) / 2);
                if split > g.pos && split < g.end && best.as_ref().is_none_or(|b| g.end - split > b.1 - b.0) {
                    best = Some((split, g.end, c.clone()));
                }
            }
            match best {
                Some(b) => b,
                None => {
                    self.source.done_splitting();
                    return Ok(None);
                }
            }
        };
        // open without holding the scan's lock (starting a query can take a while), then take
        // the range only if nobody changed it meanwhile: the victim must not have reached it,
        // and no other thief taken it (`end` moves only under `active`)
        let Some(stream) = self.source.open(split, end, false)? else { return Ok(None) };
        let mut active = lock(&self.active);
        {
            let mut g = lock(&victim);
            if split <= g.pos || g.end != end {
                return Ok(None);
            }
            g.end = split;
        }
        let cursor = Arc::new(Mutex::new(Cursor { pos: split, end }));
        active.1.push(cursor.clone());
        Ok(Some(Box::new(CursorScan { stream: Some(stream), cursor })))
    }
}

/// One thread's range: emits rows with keys below the cursor's (possibly lowered) end.
struct CursorScan {
    stream: Option<Box<dyn KeyedStream>>,
    cursor: Arc<Mutex<Cursor>>,
}

impl ChunkSource for CursorScan {
    fn next(&mut self) -> Result<Option<Chunk>> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        let next = stream.next()?;
        let mut c = lock(&self.cursor);
        let Some((chunk, keys)) = next.filter(|_| c.pos < c.end) else {
            c.pos = c.end;
            drop(c);
            self.stream = None; // finished, or the rest was taken by another thread
            return Ok(None);
        };
        let n = chunk.len();
        let (keep, next_pos) = match &keys {
            Keys::From(first) => {
                let keep = (c.end.saturating_sub(*first) as usize).min(n);
                (keep, first + keep as u64)
            }
            Keys::Each(each) => {
                let keep = each.partition_point(|&k| (k as u64) < c.end);
                (keep, if keep == 0 { c.pos } else { each[keep - 1] as u64 + 1 })
            }
        };
        c.pos = if keep < n { c.end } else { next_pos.min(c.end) };
        if keep < n {
            chunk.truncate(keep);
        }
        Ok(Some(chunk))
    }
}

/// A Parquet file keyed by row number, scanned by `file_row_number` ranges.
pub struct FileRanges {
    /// Reader connections reserved when the scan starts: a thread that joins later takes one
    /// or sits out, so a scan never fails halfway for want of a connection. `None` once
    /// splitting is over: connections then go straight back to the database's pool.
    leases: Arc<Mutex<Option<Vec<ReaderLease>>>>,
    /// The scan's query over `read_parquet(…, file_row_number = true)`, without a WHERE.
    sql: String,
    /// Row groups as `[start, end)` row ranges, in file order.
    groups: Vec<(u64, u64)>,
    on_error: ErrorMap,
}

impl FileRanges {
    pub fn new(host: &Arc<Host>, sql: String, groups: Vec<(u64, u64)>, threads: usize, on_error: ErrorMap) -> Result<FileRanges> {
        let mut leases = vec![host.reader()?];
        // extra streams only while half the pool stays free for other scans of the query
        while leases.len() < threads.min(MAX_STREAMS).min(groups.len()) && host.free_readers() > READER_POOL / 2 {
            match host.reader() {
                Ok(lease) => leases.push(lease),
                Err(_) => break,
            }
        }
        Ok(FileRanges { leases: Arc::new(Mutex::new(Some(leases))), sql, groups, on_error })
    }

    fn reserved(&self) -> usize {
        lock(&self.leases).as_ref().map_or(0, Vec::len)
    }

    fn stream(&self, lease: ReaderLease, start: u64, end: u64) -> Result<RangeStream> {
        let sql = format!("{} WHERE file_row_number >= {start} AND file_row_number < {end}", self.sql);
        let mut scan = RangeStream { stream: None, lease: Some(lease), pool: self.leases.clone(), next_key: start };
        let conn = scan.lease.as_ref().expect("just set").conn();
        scan.stream = Some(conn.stream(&sql).map_err(|e| (self.on_error)(e))?);
        Ok(scan)
    }

    /// With `preserve_insertion_order = false`: one fixed range per reserved connection.
    pub fn fixed(self) -> FixedRanges {
        let ranges = balance(&self.groups, self.reserved());
        FixedRanges { file: self, ranges, next: AtomicUsize::new(0) }
    }
}

impl KeyedSource for FileRanges {
    fn total(&self) -> u64 {
        self.groups.last().map_or(0, |g| g.1)
    }

    fn boundary_after(&self, key: u64) -> u64 {
        if let Some(cut) = test_cut(key, self.total()) {
            return cut;
        }
        self.groups.iter().map(|g| g.0).find(|&s| s >= key).unwrap_or(self.total())
    }

    fn open(&self, start: u64, end: u64, _first: bool) -> Result<Option<Box<dyn KeyedStream>>> {
        let Some(lease) = lock(&self.leases).as_mut().and_then(Vec::pop) else { return Ok(None) };
        Ok(Some(Box::new(self.stream(lease, start, end)?)))
    }

    fn done_splitting(&self) {
        *lock(&self.leases) = None;
    }
}

/// A file cut into fixed ranges, one per reserved connection, so every range finds one.
pub struct FixedRanges {
    file: FileRanges,
    ranges: Vec<(u64, u64)>,
    next: AtomicUsize,
}

impl PartitionSource for FixedRanges {
    fn next_partition(&self) -> Result<Option<Box<dyn ChunkSource>>> {
        let Some(&(a, b)) = self.ranges.get(self.next.fetch_add(1, Ordering::SeqCst)) else { return Ok(None) };
        let lease = lock(&self.file.leases)
            .as_mut()
            .and_then(Vec::pop)
            .ok_or_else(|| Error::Internal("a range of a split scan found no connection".into()))?;
        Ok(Some(Box::new(self.file.stream(lease, a, b)?)))
    }
}

/// One range of a file; its connection goes back to the scan's reserve when it ends.
struct RangeStream {
    stream: Option<Stream>,
    lease: Option<ReaderLease>,
    pool: Arc<Mutex<Option<Vec<ReaderLease>>>>,
    next_key: u64,
}

impl KeyedStream for RangeStream {
    fn next(&mut self) -> Result<Option<(Chunk, Keys)>> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        match stream.next_chunk()? {
            None => {
                self.stream = None;
                Ok(None)
            }
            Some(chunk) => {
                let first = self.next_key;
                self.next_key += chunk.len() as u64;
                Ok(Some((chunk, Keys::From(first))))
            }
        }
    }
}

impl ChunkSource for RangeStream {
    fn next(&mut self) -> Result<Option<Chunk>> {
        Ok(KeyedStream::next(self)?.map(|(chunk, _)| chunk))
    }
}

impl Drop for RangeStream {
    fn drop(&mut self) {
        self.stream = None; // the stream ends before its connection is reused
        if let Some(lease) = self.lease.take() {
            let mut pool = lock(&self.pool);
            match pool.as_mut() {
                Some(spare) => spare.push(lease),
                None => {
                    drop(pool);
                    drop(lease);
                }
            }
        }
    }
}

/// Joins consecutive row groups into at most `parts` ranges of about `total / parts` rows.
pub fn balance(groups: &[(u64, u64)], parts: usize) -> Vec<(u64, u64)> {
    let total = groups.last().map_or(0, |g| g.1);
    let parts = parts.max(1) as u64;
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(a, b) in groups {
        // a range closes once it reaches its share of the rows
        let closed = total * out.len() as u64;
        match out.last_mut() {
            Some(last) if last.1 == a && last.1 * parts < closed => last.1 = b,
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::balance;

    #[test]
    fn ranges_are_whole_row_groups_split_about_evenly() {
        let groups: Vec<(u64, u64)> = (0..10).map(|i| (i * 100, i * 100 + 100)).collect();
        assert_eq!(balance(&groups, 2), vec![(0, 500), (500, 1000)]);
        assert_eq!(balance(&groups, 3), vec![(0, 400), (400, 700), (700, 1000)]);
        assert_eq!(balance(&groups, 1), vec![(0, 1000)]);
        assert_eq!(balance(&groups[..1], 4), vec![(0, 100)]);
        assert_eq!(balance(&groups, 20).len(), 10);
        assert!(balance(&[], 2).is_empty());
    }
}
