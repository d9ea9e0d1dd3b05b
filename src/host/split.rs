//! Parallel scans of one Parquet file through reader connections. A C API table function
//! has no batch indexes, so where the order of rows matters DuckDB runs it on one thread;
//! elsewhere (aggregates, joins) on several. The scan cannot know which beforehand, so the
//! first thread streams the whole file in order and every thread that joins later takes the
//! back half of the largest range still unread. One thread thus reads one ordered stream
//! (as fast as a plain scan), and several split the file between them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::host::conn::{Chunk, Stream};
use crate::host::session::{Host, ReaderLease, READER_POOL};
use crate::host::table_fn::{ChunkSource, PartitionSource};

/// Rows `[pos, end)` still to be emitted by one scan; a thief lowers `end`.
struct Cursor {
    pos: u64,
    end: u64,
}

/// How a failed read is reported (e.g. the file vanished because its snapshot was dropped).
pub type ErrorMap = Arc<dyn Fn(Error) -> Error + Send + Sync>;

/// At most this many streams per scan: reader connections are shared by every scan of the
/// database (`READER_POOL`), and idle DuckDB workers help each stream's own query anyway.
const MAX_STREAMS: usize = 8;

pub struct FileScan {
    /// Reader connections reserved for this scan when it starts: a thread that joins later
    /// takes one or sits out, so a scan never fails halfway for want of a connection.
    /// `None` once splitting is over: connections then go straight back to the database's pool.
    leases: Arc<Mutex<Option<Vec<ReaderLease>>>>,
    /// The scan's query over `read_parquet(…, file_row_number = true)`, without a WHERE.
    sql: String,
    /// Row groups as `[start, end)` row ranges, in file order.
    groups: Vec<(u64, u64)>,
    mode: Mode,
    on_error: ErrorMap,
}

enum Mode {
    /// The reader connections keep insertion order: ranges split as threads join.
    Ordered { active: Mutex<(bool, Vec<Arc<Mutex<Cursor>>>)> },
    /// `preserve_insertion_order = false` (a global setting, so inner streams are unordered
    /// too): fixed ranges, each filtered by its own query.
    Fixed { ranges: Vec<(u64, u64)>, next: AtomicUsize },
}

impl FileScan {
    pub fn new(host: &Arc<Host>, sql: String, groups: Vec<(u64, u64)>, ordered: bool, threads: usize, on_error: ErrorMap) -> Result<FileScan> {
        let mut leases = vec![host.reader()?];
        // extra streams only while half the pool stays free for other scans of the query
        while leases.len() < threads.min(MAX_STREAMS).min(groups.len()) && host.free_readers() > READER_POOL / 2 {
            match host.reader() {
                Ok(lease) => leases.push(lease),
                Err(_) => break,
            }
        }
        let mode = if ordered {
            Mode::Ordered { active: Mutex::new((false, Vec::new())) }
        } else {
            // one range per reserved connection, so every range finds one
            Mode::Fixed { ranges: balance(&groups, leases.len()), next: AtomicUsize::new(0) }
        };
        Ok(FileScan { leases: Arc::new(Mutex::new(Some(leases))), sql, groups, mode, on_error })
    }

    fn total(&self) -> u64 {
        self.groups.last().map_or(0, |g| g.1)
    }

    /// The first row group boundary at or after `row`.
    fn boundary_after(&self, row: u64) -> u64 {
        self.groups.iter().map(|g| g.0).find(|&s| s >= row).unwrap_or(self.total())
    }

    fn take_lease(&self) -> Option<ReaderLease> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner()).as_mut()?.pop()
    }

    fn give_back(&self, lease: ReaderLease) {
        give_back(&self.leases, lease);
    }

    fn open(&self, lease: ReaderLease, start: u64, end: u64, cursor: Option<Arc<Mutex<Cursor>>>) -> Result<Box<dyn ChunkSource>> {
        let sql = format!("{} WHERE file_row_number >= {start} AND file_row_number < {end}", self.sql);
        let mut scan = RangeScan { stream: None, lease: Some(lease), pool: self.leases.clone(), cursor, on_error: self.on_error.clone() };
        let conn = scan.lease.as_ref().expect("just set").conn();
        scan.stream = Some(conn.stream(&sql).map_err(|e| (self.on_error)(e))?);
        Ok(Box::new(scan))
    }
}

impl PartitionSource for FileScan {
    fn next_partition(&self) -> Result<Option<Box<dyn ChunkSource>>> {
        match &self.mode {
            Mode::Fixed { ranges, next } => match ranges.get(next.fetch_add(1, Ordering::SeqCst)) {
                Some(&(a, b)) => {
                    let lease = self.take_lease().ok_or_else(|| Error::Internal("a range of a split scan found no connection".into()))?;
                    self.open(lease, a, b, None).map(Some)
                }
                None => Ok(None),
            },
            Mode::Ordered { active } => {
                let mut active = active.lock().unwrap_or_else(|p| p.into_inner());
                // no connection left: this thread sits out, the others cover every row
                let Some(lease) = self.take_lease() else { return Ok(None) };
                if !active.0 {
                    active.0 = true;
                    let cursor = Arc::new(Mutex::new(Cursor { pos: 0, end: self.total() }));
                    active.1.push(cursor.clone());
                    return self.open(lease, 0, self.total(), Some(cursor)).map(Some);
                }
                active.1.retain(|c| {
                    let c = c.lock().unwrap_or_else(|p| p.into_inner());
                    c.pos < c.end
                });
                // steal the back half of the largest unread range, at a row group boundary
                let mut best: Option<(u64, u64, Arc<Mutex<Cursor>>)> = None;
                for c in &active.1 {
                    let g = c.lock().unwrap_or_else(|p| p.into_inner());
                    let split = self.boundary_after(g.pos + (g.end - g.pos) / 2);
                    if split > g.pos && split < g.end && best.as_ref().is_none_or(|b| g.end - split > b.1 - b.0) {
                        best = Some((split, g.end, c.clone()));
                    }
                }
                let Some((split, _, victim)) = best else {
                    // nothing left worth splitting: spare connections go back to the database's pool
                    drop(lease);
                    *self.leases.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    return Ok(None);
                };
                let end = {
                    let mut g = victim.lock().unwrap_or_else(|p| p.into_inner());
                    if split <= g.pos || split >= g.end {
                        drop(g);
                        self.give_back(lease);
                        return Ok(None); // the victim moved on meanwhile; nothing worth taking
                    }
                    std::mem::replace(&mut g.end, split)
                };
                let cursor = Arc::new(Mutex::new(Cursor { pos: split, end }));
                active.1.push(cursor.clone());
                self.open(lease, split, end, Some(cursor)).map(Some)
            }
        }
    }
}

/// One range's stream; its connection goes back to the scan's reserve when it ends.
struct RangeScan {
    stream: Option<Stream>,
    lease: Option<ReaderLease>,
    pool: Arc<Mutex<Option<Vec<ReaderLease>>>>,
    /// Present for splittable ranges: the stream is in row order and stops at `end`.
    cursor: Option<Arc<Mutex<Cursor>>>,
    on_error: ErrorMap,
}

impl ChunkSource for RangeScan {
    fn next(&mut self) -> Result<Option<Chunk>> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        let chunk = stream.next_chunk().map_err(|e| (self.on_error)(e))?;
        let Some(cursor) = &self.cursor else {
            if chunk.is_none() {
                self.stream = None;
            }
            return Ok(chunk);
        };
        let mut c = cursor.lock().unwrap_or_else(|p| p.into_inner());
        let Some(chunk) = chunk.filter(|_| c.pos < c.end) else {
            c.pos = c.end;
            drop(c);
            self.stream = None; // finished, or the rest was taken by another thread
            return Ok(None);
        };
        let n = chunk.len() as u64;
        if c.pos + n > c.end {
            chunk.truncate((c.end - c.pos) as usize);
        }
        c.pos = (c.pos + n).min(c.end);
        Ok(Some(chunk))
    }
}

impl Drop for RangeScan {
    fn drop(&mut self) {
        self.stream = None; // the stream ends before its connection is reused
        if let Some(lease) = self.lease.take() {
            give_back(&self.pool, lease);
        }
    }
}

/// Returns a connection to a scan's reserve, or to the database's pool once splitting is over.
fn give_back(pool: &Mutex<Option<Vec<ReaderLease>>>, lease: ReaderLease) {
    let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
    match pool.as_mut() {
        Some(spare) => spare.push(lease),
        None => {
            drop(pool);
            drop(lease);
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
