//! Content fingerprints of a table version, used to decide what an incremental snapshot must
//! store. Every row gets a 64-bit DuckDB `hash` of its row id and values (value v, never 0,
//! in the field mod 2^61-1); per block of `2^BLOCK_BITS` row ids we keep
//! - the row count and Σv — small, stored with every version (`.idx` file): a block whose
//!   count and sum match the parent's is unchanged (a wrong match needs a 61-bit collision);
//! - a small linear sketch (an invertible Bloom lookup table): `SKETCH_CELLS` cells, each row
//!   adding (v, i·v) to one cell in each of five parts. The difference of a block's sketch
//!   now and in the parent is the sketch of its changed rows alone; "peeling" it recovers
//!   their row ids without reading the old data when up to ~30-40 rows of the block changed.
//!   The sketches are a cache kept for the newest version of a table only (`.sketch` file).
//! Recovered rows must explain the block's sum and count exactly; a block that does not add
//! up, or changed too much, is stored whole.

use std::collections::HashMap;

use std::path::Path;

use crate::engine::sql::{ident, Sql};
use crate::error::Result;
use crate::repo::manifest::{Column, BLOCK_BITS};

/// The field of the sums: the Mersenne prime 2^61 - 1.
pub const P: u64 = (1 << 61) - 1;
/// Recipe version of the row hash; part of `hash_id` so old indexes are never misread.
const RECIPE: &str = "row-hash-3";
const INDEX_MAGIC: &[u8; 8] = b"SNAPIDX1";
const SKETCH_MAGIC: &[u8; 8] = b"SNAPSKT3";

/// x mod P for x < 2^122, without a division (P is a Mersenne prime).
fn reduce(x: u128) -> u64 {
    let folded = (x & P as u128) + (x >> 61);
    let mut r = ((folded & P as u128) + (folded >> 61)) as u64;
    if r >= P {
        r -= P;
    }
    r
}

fn mulmod(a: u64, b: u64) -> u64 {
    reduce(a as u128 * b as u128)
}

fn addmod(a: u64, b: u64) -> u64 {
    let s = a + b;
    if s >= P {
        s - P
    } else {
        s
    }
}

fn submod(a: u64, b: u64) -> u64 {
    addmod(a, P - b)
}

fn powmod(mut a: u64, mut e: u64) -> u64 {
    let mut r = 1;
    while e > 0 {
        if e & 1 == 1 {
            r = mulmod(r, a);
        }
        a = mulmod(a, a);
        e >>= 1;
    }
    r
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The field value of a row: never zero, so a present row always differs from an absent one.
/// The hash is mixed once more so that even hashes differing in a single bit give unrelated
/// values (peeling relies on differences looking random).
fn row_value(h: u64) -> u64 {
    match reduce(splitmix(h) as u128) {
        0 => 1,
        v => v,
    }
}

/// Identifies how hashes were computed; indexes with another id are recomputed.
pub fn hash_id(duckdb_version: &str) -> String {
    format!("{RECIPE};duckdb {duckdb_version}")
}

/// The expressions hashed for a column. Floating point, intervals and TIME WITH TIME ZONE
/// hash equal values alike (0.0 and -0.0, '1 month' and '30 days'): a float adds its sign
/// bit, the others (and nested types holding floats) are hashed by their exact text.
pub fn hash_expr(c: &Column, value: &str) -> String {
    let upper = c.ty.to_ascii_uppercase();
    let scalar_float = ["FLOAT", "DOUBLE", "REAL", "FLOAT4", "FLOAT8"].contains(&upper.as_str());
    if scalar_float {
        return format!("{value}, signbit({value})");
    }
    let normalizing = ["FLOAT", "DOUBLE", "REAL", "INTERVAL", "TIME WITH TIME ZONE", "TIMETZ"];
    if normalizing.iter().any(|t| upper.contains(t)) {
        format!("CAST({value} AS VARCHAR)")
    } else {
        value.to_string()
    }
}

/// `SELECT <row id>, hash(<row id>, <columns>) FROM <from>`; `value` maps a column to the
/// SQL that reads it in its original type.
pub fn pairs_sql(columns: &[Column], rowid: &str, from: &str, value: impl Fn(&Column) -> String) -> String {
    let mut parts = vec![rowid.to_string()];
    parts.extend(columns.iter().map(|c| hash_expr(c, &value(c))));
    format!("SELECT {rowid}::BIGINT, hash({})::UBIGINT FROM {from}", parts.join(", "))
}

pub fn live_value(c: &Column) -> String {
    ident(&c.name)
}

/// Sketch shape per block: five parts of 16 cells; a row adds (v, i·v) to one cell of each
/// part, chosen by 4-bit slices of one hash of its row id. A block of 2048 rows with 1% of
/// them changed has ~20 changed rows; with five parts peeling such a block fails about
/// never (simulated: 0 of 4000 at 20 rows, 1 of 4000 at 30), which matters because a
/// failed block is stored whole.
pub const PARTS: usize = 5;
pub const PART_CELLS: usize = 16;
pub const SKETCH_CELLS: usize = PARTS * PART_CELLS;

/// The sketch cells of every block, block after block.
#[derive(Debug, Clone, PartialEq)]
pub struct Sketch {
    pub cells: Vec<[u64; 2]>,
}

fn cell_in_block(part: usize, spread: u64) -> usize {
    part * PART_CELLS + ((spread >> (4 * part)) & 15) as usize
}

fn add_cell(cell: &mut [u64; 2], v: u64, iv: u64) {
    cell[0] = addmod(cell[0], v);
    cell[1] = addmod(cell[1], iv);
}

fn sub_cell(cell: &mut [u64; 2], v: u64, iv: u64) {
    cell[0] = submod(cell[0], v);
    cell[1] = submod(cell[1], iv);
}

impl Sketch {
    fn ensure_blocks(&mut self, n: usize) {
        if self.cells.len() < n * SKETCH_CELLS {
            self.cells.resize(n * SKETCH_CELLS, [0; 2]);
        }
    }

    fn add(&mut self, i: u64, v: u64) {
        let base = (i >> BLOCK_BITS) as usize * SKETCH_CELLS;
        let iv = mulmod(reduce(i as u128), v);
        let spread = splitmix(i);
        for part in 0..PARTS {
            add_cell(&mut self.cells[base + cell_in_block(part, spread)], v, iv);
        }
    }

    /// The cells of block `b` (zeros past the end).
    pub fn block(&self, b: usize) -> [[u64; 2]; SKETCH_CELLS] {
        let mut out = [[0; 2]; SKETCH_CELLS];
        if let Some(cells) = self.cells.get(b * SKETCH_CELLS..(b + 1) * SKETCH_CELLS) {
            out.copy_from_slice(cells);
        }
        out
    }
}

/// Recovers every (row id, value difference) of a block's difference sketch, or None when
/// too many rows changed to separate them. A cell is pure when its two sums name a row id
/// inside the block that hashes to this very cell: for a cell holding several rows the
/// quotient is a random field element, inside the block's 2048 ids with odds of 2^-50.
pub fn peel(mut d: [[u64; 2]; SKETCH_CELLS], block: u64) -> Option<HashMap<u64, u64>> {
    let (lo, hi) = (block << BLOCK_BITS, (block + 1) << BLOCK_BITS);
    let mut found: HashMap<u64, u64> = HashMap::new();
    let mut queue: Vec<usize> = (0..SKETCH_CELLS).collect();
    // every row is taken out once; a budget keeps a corrupt sketch from looping
    let mut budget = 4 * SKETCH_CELLS * SKETCH_CELLS;
    while let Some(c) = queue.pop() {
        budget = budget.checked_sub(1)?;
        let [a, b] = d[c];
        if a == 0 {
            continue;
        }
        let i = mulmod(b, powmod(a, P - 2));
        if i < lo || i >= hi || cell_in_block(c / PART_CELLS, splitmix(i)) != c {
            continue;
        }
        // a row comes out once; seeing it again means a cell only looked pure
        if found.insert(i, a).is_some() {
            return None;
        }
        let iv = mulmod(reduce(i as u128), a);
        let spread = splitmix(i);
        for part in 0..PARTS {
            let k = cell_in_block(part, spread);
            sub_cell(&mut d[k], a, iv);
            queue.push(k);
        }
    }
    if d.iter().any(|c| c != &[0, 0]) {
        return None;
    }
    Some(found)
}

/// The fingerprint of one table version.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    pub hash_id: String,
    pub rows: u64,
    /// Per block: (row count, Σ row values mod P).
    pub blocks: Vec<(u32, u64)>,
    pub sketch: Option<Sketch>,
}

/// A fingerprint plus which row ids exist (to tell an update or insert from a delete).
pub struct Scanned {
    pub fp: Fingerprint,
    pub present: Vec<u64>,
}

impl Scanned {
    pub fn has(&self, rowid: u64) -> bool {
        self.present.get((rowid / 64) as usize).is_some_and(|w| w >> (rowid % 64) & 1 == 1)
    }
}

/// Fingerprint state of (part of) a scan: DuckDB's threads each fill one through the
/// `__snapshot_fingerprint` aggregate, and the parts are merged.
pub struct Accumulator {
    pub token: u64,
    scanned: Scanned,
}

impl Accumulator {
    pub fn new(token: u64, hash_id: &str) -> Accumulator {
        Accumulator {
            token,
            scanned: Scanned {
                fp: Fingerprint { hash_id: hash_id.to_string(), rows: 0, blocks: Vec::new(), sketch: Some(Sketch { cells: Vec::new() }) },
                present: Vec::new(),
            },
        }
    }

    pub fn rows(&self) -> u64 {
        self.scanned.fp.rows
    }

    /// Adds rows (row id, DuckDB hash); a negative row id is refused.
    pub fn add(&mut self, ids: &[i64], hashes: &[u64]) -> std::result::Result<(), String> {
        let s = &mut self.scanned;
        let sketch = s.fp.sketch.as_mut().expect("an accumulator always sketches");
        for (&id, &h) in ids.iter().zip(hashes) {
            if id < 0 {
                return Err(format!("negative row id {id} while fingerprinting"));
            }
            let i = id as u64;
            let v = row_value(h);
            let b = (i >> BLOCK_BITS) as usize;
            if s.fp.blocks.len() <= b {
                s.fp.blocks.resize(b + 1, (0, 0));
                sketch.ensure_blocks(b + 1);
            }
            let block = &mut s.fp.blocks[b];
            block.0 += 1;
            block.1 = addmod(block.1, v);
            let w = (i / 64) as usize;
            if s.present.len() <= w {
                s.present.resize(w + 1, 0);
            }
            s.present[w] |= 1 << (i % 64);
            sketch.add(i, v);
            s.fp.rows += 1;
        }
        Ok(())
    }

    /// Folds another part of the same scan into this one.
    pub fn merge(&mut self, other: Accumulator) {
        let (a, b) = (&mut self.scanned, other.scanned);
        a.fp.rows += b.fp.rows;
        if a.fp.blocks.len() < b.fp.blocks.len() {
            a.fp.blocks.resize(b.fp.blocks.len(), (0, 0));
        }
        for (x, y) in a.fp.blocks.iter_mut().zip(&b.fp.blocks) {
            x.0 += y.0;
            x.1 = addmod(x.1, y.1);
        }
        if a.present.len() < b.present.len() {
            a.present.resize(b.present.len(), 0);
        }
        for (x, y) in a.present.iter_mut().zip(&b.present) {
            *x |= y;
        }
        if let (Some(x), Some(y)) = (a.fp.sketch.as_mut(), b.fp.sketch) {
            x.ensure_blocks(y.cells.len() / SKETCH_CELLS);
            for (c, d) in x.cells.iter_mut().zip(&y.cells) {
                add_cell(c, d[0], d[1]);
            }
        }
    }
}

/// Scans waiting for their aggregate's result, by token.
struct Pending {
    hash_id: String,
    done: Option<Accumulator>,
}

static PENDING: std::sync::Mutex<Option<HashMap<u64, Pending>>> = std::sync::Mutex::new(None);
static NEXT_TOKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn pending() -> std::sync::MutexGuard<'static, Option<HashMap<u64, Pending>>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fresh accumulator for a scan the engine registered, or None for an unknown token.
pub fn accumulator_for(token: u64) -> Option<Accumulator> {
    let map = pending();
    let p = map.as_ref()?.get(&token)?;
    Some(Accumulator::new(token, &p.hash_id))
}

/// Hands the aggregate's merged result back to the scan waiting for it.
pub fn deliver(acc: Accumulator) {
    if let Some(p) = pending().as_mut().and_then(|m| m.get_mut(&acc.token)) {
        p.done = Some(acc);
    }
}

/// Fingerprints the rows of `sql` (from `pairs_sql`): the hashing runs in DuckDB and the
/// accumulation on DuckDB's threads, through the `__snapshot_fingerprint` aggregate.
pub fn scan(db: &dyn Sql, sql: &str, hash_id: &str) -> Result<Scanned> {
    let token = NEXT_TOKEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    pending().get_or_insert_with(HashMap::new).insert(token, Pending { hash_id: hash_id.to_string(), done: None });
    let ran = db.query(&format!(
        "SELECT __snapshot_fingerprint(__snap_i, __snap_h, {token}::UBIGINT) FROM ({sql}) AS __snap_p(__snap_i, __snap_h)"
    ));
    let taken = pending().as_mut().and_then(|m| m.remove(&token));
    ran?;
    // no rows: the aggregate never made a state
    let acc = taken.and_then(|p| p.done).unwrap_or_else(|| Accumulator::new(token, hash_id));
    Ok(acc.scanned)
}

/// What changed between two versions, as far as the fingerprints tell.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Row ids whose current row must be stored (updated or inserted).
    pub upserts: Vec<u64>,
    /// Row ids the parent had and the table no longer has.
    pub deletes: Vec<u64>,
    /// Blocks stored whole (every current row), voiding older layers there.
    pub whole_blocks: Vec<u64>,
    /// Rows counted as added / removed where rows were located.
    pub rows_added: u64,
    pub rows_removed: u64,
    /// Rows of `whole_blocks` now / in the parent.
    pub whole_rows_now: u64,
    pub whole_rows_before: u64,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty() && self.whole_blocks.is_empty()
    }
}

fn block_of(fp: &Fingerprint, b: usize) -> (u32, u64) {
    fp.blocks.get(b).copied().unwrap_or((0, 0))
}

/// `fp` with every block but `keep` emptied (count, sum and sketch cells zero), to compare
/// with a scan of those blocks alone.
pub fn restrict(fp: &Fingerprint, keep: &[u64]) -> Fingerprint {
    let mut blocks = vec![(0, 0); fp.blocks.len()];
    let mut sketch = fp.sketch.as_ref().map(|s| Sketch { cells: vec![[0; 2]; s.cells.len()] });
    for &b in keep {
        let b = b as usize;
        if let Some(x) = fp.blocks.get(b) {
            blocks[b] = *x;
        }
        if let (Some(to), Some(from)) = (sketch.as_mut(), fp.sketch.as_ref()) {
            if let (Some(t), Some(f)) = (to.cells.get_mut(b * SKETCH_CELLS..(b + 1) * SKETCH_CELLS), from.cells.get(b * SKETCH_CELLS..(b + 1) * SKETCH_CELLS)) {
                t.copy_from_slice(f);
            }
        }
    }
    Fingerprint { hash_id: fp.hash_id.clone(), rows: fp.rows, blocks, sketch }
}

/// Compares the live table (`cur`) with its parent version, block by block.
pub fn compare(cur: &Scanned, parent: &Fingerprint) -> Changes {
    let n = cur.fp.blocks.len().max(parent.blocks.len());
    let mut out = Changes::default();
    for b in 0..n {
        let (cn, cs) = block_of(&cur.fp, b);
        let (pn, ps) = block_of(parent, b);
        let diff = match (&cur.fp.sketch, &parent.sketch) {
            (Some(c), Some(p)) => {
                let (cb, pb) = (c.block(b), p.block(b));
                if cb == pb && (cn, cs) == (pn, ps) {
                    continue;
                }
                let mut d = cb;
                for (x, y) in d.iter_mut().zip(pb) {
                    sub_cell(x, y[0], y[1]);
                }
                Some(d)
            }
            _ if (cn, cs) == (pn, ps) => continue,
            _ => None,
        };
        let rows = diff.and_then(|d| peel(d, b as u64));
        let located = rows.and_then(|rows| {
            // the recovered rows must explain the block's sum and count exactly: rows gone
            // now are deletes, rows present are updates or inserts, and inserts - deletes
            // must be the change in the row count
            let mut rows: Vec<(u64, u64)> = rows.into_iter().collect();
            rows.sort_unstable();
            let sum_ok = rows.iter().fold(0, |acc, (_, d)| addmod(acc, *d)) == submod(cs, ps);
            let now: Vec<bool> = rows.iter().map(|(i, _)| cur.has(*i)).collect();
            let present = now.iter().filter(|x| **x).count() as i64;
            let deleted = now.len() as i64 - present;
            let inserted = cn as i64 - pn as i64 + deleted;
            (sum_ok && !rows.is_empty() && (0..=present).contains(&inserted)).then_some((rows, now, present, deleted, inserted))
        });
        match located {
            Some((rows, now, present, deleted, inserted)) => {
                for ((i, _), now) in rows.iter().zip(now) {
                    if now {
                        out.upserts.push(*i);
                    } else {
                        out.deletes.push(*i);
                    }
                }
                out.rows_added += present as u64;
                out.rows_removed += (present - inserted + deleted) as u64;
            }
            None => {
                out.whole_blocks.push(b as u64);
                out.whole_rows_now += cn as u64;
                out.whole_rows_before += pn as u64;
            }
        }
    }
    out
}

// ---- files ----------------------------------------------------------------------------

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

pub fn encode_index(fp: &Fingerprint) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + fp.blocks.len() * 12);
    out.extend_from_slice(INDEX_MAGIC);
    put_str(&mut out, &fp.hash_id);
    out.extend_from_slice(&fp.rows.to_le_bytes());
    out.extend_from_slice(&BLOCK_BITS.to_le_bytes());
    out.extend_from_slice(&(fp.blocks.len() as u64).to_le_bytes());
    for (n, s) in &fp.blocks {
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

pub fn decode_index(bytes: &[u8]) -> Option<Fingerprint> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != INDEX_MAGIC {
        return None;
    }
    let hash_id = r.string()?;
    let rows = r.u64()?;
    if r.u32()? != BLOCK_BITS {
        return None;
    }
    let n = r.u64()? as usize;
    if n > bytes.len() / 12 {
        return None;
    }
    let mut blocks = Vec::with_capacity(n);
    for _ in 0..n {
        blocks.push((r.u32()?, r.u64()?));
    }
    if r.at != bytes.len() || blocks.iter().map(|b| b.0 as u64).sum::<u64>() != rows {
        return None;
    }
    Some(Fingerprint { hash_id, rows, blocks, sketch: None })
}

pub fn encode_sketch(hash_id: &str, s: &Sketch) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + s.cells.len() * 24);
    out.extend_from_slice(SKETCH_MAGIC);
    put_str(&mut out, hash_id);
    out.extend_from_slice(&(SKETCH_CELLS as u64).to_le_bytes());
    out.extend_from_slice(&((s.cells.len() / SKETCH_CELLS) as u64).to_le_bytes());
    for c in &s.cells {
        for x in c {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

pub fn decode_sketch(bytes: &[u8], hash_id: &str) -> Option<Sketch> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != SKETCH_MAGIC || r.string()? != hash_id {
        return None;
    }
    if r.u64()? != SKETCH_CELLS as u64 {
        return None;
    }
    let n = (r.u64()? as usize).checked_mul(SKETCH_CELLS)?;
    if n.checked_mul(16)? > bytes.len() {
        return None;
    }
    let mut cells = Vec::with_capacity(n);
    for _ in 0..n {
        let c = [r.u64()?, r.u64()?];
        if c.iter().any(|x| *x >= P) {
            return None;
        }
        cells.push(c);
    }
    (r.at == bytes.len()).then_some(Sketch { cells })
}

/// The sketch file that goes with an index file.
pub fn sketch_path(index_path: &Path) -> std::path::PathBuf {
    index_path.with_extension("sketch")
}

/// The sketch file that goes with a stored index.
pub fn sketch_ref(index: &crate::repo::manifest::FileRef) -> crate::repo::manifest::FileRef {
    crate::repo::manifest::FileRef {
        snapshot: index.snapshot.clone(),
        file: format!("{}.sketch", index.file.strip_suffix(".idx").unwrap_or(&index.file)),
    }
}

/// Loads a stored index (and its sketch when present), or None when missing, unreadable or
/// computed by another recipe or DuckDB version.
pub fn load(repo: &crate::repo::layout::Repo, index: &crate::repo::manifest::FileRef, hash_id: &str) -> Option<Fingerprint> {
    let mut fp = decode_index(&repo.read_small(&index.snapshot, &index.file)?)?;
    if fp.hash_id != hash_id {
        return None;
    }
    let sketch = sketch_ref(index);
    fp.sketch = repo
        .read_small(&sketch.snapshot, &sketch.file)
        .and_then(|b| decode_sketch(&b, hash_id))
        .filter(|s| s.cells.len() == fp.blocks.len() * SKETCH_CELLS);
    Some(fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(rows: &[(u64, u64)]) -> Scanned {
        let mut acc = Accumulator::new(0, "x");
        let ids: Vec<i64> = rows.iter().map(|r| r.0 as i64).collect();
        let hs: Vec<u64> = rows.iter().map(|r| r.1).collect();
        acc.add(&ids, &hs).unwrap();
        acc.scanned
    }

    #[test]
    fn field_arithmetic_matches_plain_modulo() {
        for (a, b) in [(P - 1, P - 1), (12345, 67890), (P - 2, 3), (1 << 60, 1 << 60), (0, 5)] {
            assert_eq!(mulmod(a, b), ((a as u128 * b as u128) % P as u128) as u64);
        }
        assert_eq!(reduce(u64::MAX as u128), u64::MAX % P);
        assert_ne!(row_value(P), 0);
    }

    #[test]
    fn scattered_changes_are_located_row_by_row() {
        let base: Vec<(u64, u64)> = (0..100_000u64).map(|i| (i, splitmix(i))).collect();
        let mut now = base.clone();
        for k in 0..1_000u64 {
            let i = splitmix(k + 7) % 100_000;
            now[i as usize].1 ^= 1; // picked twice: changed back
        }
        let mut expected: Vec<u64> = base.iter().zip(&now).filter(|(a, b)| a != b).map(|(a, _)| a.0).collect();
        now.push((100_000, 42)); // an insert
        now.retain(|(i, _)| *i != 5); // a delete
        let c = compare(&scanned(&now), &scanned(&base).fp);
        assert!(c.whole_blocks.is_empty(), "{:?}", c.whole_blocks);
        assert_eq!(c.deletes, vec![5]);
        expected.push(100_000);
        let mut got = c.upserts.clone();
        got.sort_unstable();
        assert_eq!(got, expected);
        assert_eq!(c.rows_added, expected.len() as u64);
        assert_eq!((c.whole_rows_now, c.whole_rows_before), (0, 0));
        assert_eq!(c.rows_removed, expected.len() as u64 - 1 + 1);
    }

    #[test]
    fn unchanged_is_empty_and_big_changes_fall_back_to_blocks() {
        let base: Vec<(u64, u64)> = (0..10_000u64).map(|i| (i, splitmix(i))).collect();
        assert!(compare(&scanned(&base), &scanned(&base).fp).is_empty());
        let now: Vec<(u64, u64)> = base.iter().map(|(i, h)| (*i, if *i < 2048 { h ^ 3 } else { *h })).collect();
        let c = compare(&scanned(&now), &scanned(&base).fp);
        assert_eq!((c.whole_blocks.clone(), c.upserts.len()), (vec![0], 0));
        // without sketches, changed blocks are stored whole
        let mut parent = scanned(&base).fp;
        parent.sketch = None;
        let mut one = base.clone();
        one[3000].1 ^= 1;
        assert_eq!(compare(&scanned(&one), &parent).whole_blocks, vec![1]);
    }

    #[test]
    fn files_round_trip_and_reject_garbage() {
        let fp = Fingerprint { hash_id: "x".into(), rows: 3, blocks: vec![(2, 5), (1, 9)], sketch: None };
        assert_eq!(decode_index(&encode_index(&fp)), Some(fp));
        assert_eq!(decode_index(b"SNAPIDX1garbage"), None);
        let s = scanned(&[(1, 2), (3000, 4)]).fp.sketch.unwrap();
        assert_eq!(decode_sketch(&encode_sketch("x", &s), "x"), Some(s.clone()));
        assert_eq!(decode_sketch(&encode_sketch("x", &s), "y"), None);
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode_index(&bytes);
            let _ = decode_sketch(&bytes, "x");
        }

        #[test]
        fn a_changed_row_is_never_missed(seed in 0u64..1000, changes in 1usize..60) {
            let base: Vec<(u64, u64)> = (0..4096u64).map(|i| (i, splitmix(i ^ seed))).collect();
            let mut now = base.clone();
            for k in 0..changes {
                let i = (splitmix(seed * 31 + k as u64) % 4096) as usize;
                now[i].1 = splitmix(now[i].1);
            }
            let c = compare(&scanned(&now), &scanned(&base).fp);
            for (a, b) in base.iter().zip(&now) {
                if a != b {
                    let i = a.0;
                    proptest::prop_assert!(c.upserts.contains(&i) || c.whole_blocks.contains(&(i >> BLOCK_BITS)));
                }
            }
        }
    }
}

#[cfg(test)]
mod speed {
    /// Not a timed assertion: prints the cost of fingerprinting 10M rows in Rust.
    #[test]
    #[ignore]
    fn accumulate_throughput() {
        let t = std::time::Instant::now();
        let mut acc = super::Accumulator::new(0, "x");
        let ids: Vec<i64> = (0..10_000_000i64).collect();
        let hs: Vec<u64> = (0..10_000_000u64).map(super::splitmix).collect();
        acc.add(&ids, &hs).unwrap();
        eprintln!("10M rows accumulated: {:.3} s", t.elapsed().as_secs_f64());
    }
}
