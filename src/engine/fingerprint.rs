//! Content fingerprints of a table version, used to decide what an incremental snapshot must
//! store. Every row gets a 64-bit DuckDB `hash` of its row id and values; from those we keep
//! - per block of `2^BLOCK_BITS` row ids: the row count and the sum of the row values
//!   (mod 2^61-1) — small, stored with every version (`.idx` file);
//! - a linear sketch (an invertible Bloom lookup table over the prime field): three cells per
//!   row holding Σv, Σi·v, Σi²·v. The difference of two sketches is the sketch of the changed
//!   rows only, and "peeling" it recovers their row ids without reading the old data, as long
//!   as fewer rows changed than the sketch was sized for (2% of the rows). It is a cache kept
//!   only for the newest version of a table (`.sketch` file).
//! A recovered change is cross-checked against the block sums; anything that does not add
//! up falls back to storing whole blocks, so a wrong "unchanged" needs a 64-bit collision.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::engine::sql::{ident, Sql};
use crate::error::{Error, Result};
use crate::repo::manifest::{Column, BLOCK_BITS};

/// The field of the sums: the Mersenne prime 2^61 - 1.
pub const P: u64 = (1 << 61) - 1;
/// Recipe version of the row hash; part of `hash_id` so old indexes are never misread.
const RECIPE: &str = "row-hash-1";
const INDEX_MAGIC: &[u8; 8] = b"SNAPIDX1";
const SKETCH_MAGIC: &[u8; 8] = b"SNAPSKT1";

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
fn row_value(h: u64) -> u64 {
    match reduce(h as u128) {
        0 => 1,
        v => v,
    }
}

/// Identifies how hashes were computed; indexes with another id are recomputed.
pub fn hash_id(duckdb_version: &str) -> String {
    format!("{RECIPE};duckdb {duckdb_version}")
}

/// The expression hashed for a column. Floating point, intervals and TIME WITH TIME ZONE
/// hash equal values alike (0.0 and -0.0, '1 month' and '30 days'), so they are hashed by
/// their exact text.
pub fn hash_expr(c: &Column, value: &str) -> String {
    let upper = c.ty.to_ascii_uppercase();
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

/// Cells per partition (three partitions) for a table of `rows` rows: room for changes to
/// about 1.5% of the rows (peeling needs ~1.23 cells per changed row). A diff uses the
/// parent's width, recorded in its sketch file.
pub fn sketch_width(rows: u64) -> usize {
    ((rows as f64 * 0.015 * 1.3 / 3.0).ceil() as usize).max(256)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sketch {
    pub width: usize,
    /// `3 * width` cells of (Σv, Σi·v, Σi²·v).
    pub cells: Vec<[u64; 3]>,
}

impl Sketch {
    pub fn new(width: usize) -> Sketch {
        Sketch { width, cells: vec![[0; 3]; 3 * width] }
    }

    fn cell(&self, part: usize, i: u64) -> usize {
        part * self.width + ((splitmix(i ^ (part as u64).wrapping_mul(0xa076_1d64_78bd_642f)) as u128 * self.width as u128) >> 64) as usize
    }

    fn add(&mut self, i: u64, v: u64, sign_negative: bool) {
        let im = reduce(i as u128);
        let iv = mulmod(im, v);
        let iiv = mulmod(im, iv);
        for part in 0..3 {
            let c = self.cell(part, i);
            let cell = &mut self.cells[c];
            if sign_negative {
                cell[0] = submod(cell[0], v);
                cell[1] = submod(cell[1], iv);
                cell[2] = submod(cell[2], iiv);
            } else {
                cell[0] = addmod(cell[0], v);
                cell[1] = addmod(cell[1], iv);
                cell[2] = addmod(cell[2], iiv);
            }
        }
    }

    /// `self - other`, cell by cell.
    pub fn minus(&self, other: &Sketch) -> Option<Sketch> {
        if self.width != other.width {
            return None;
        }
        let cells = self
            .cells
            .iter()
            .zip(&other.cells)
            .map(|(a, b)| [submod(a[0], b[0]), submod(a[1], b[1]), submod(a[2], b[2])])
            .collect();
        Some(Sketch { width: self.width, cells })
    }

    /// Recovers every (row id, value difference) of a difference sketch, or None when the
    /// changes are too many to separate (the caller then falls back to whole blocks).
    pub fn peel(mut self, max_rowid: u64) -> Option<HashMap<u64, u64>> {
        let mut found: HashMap<u64, u64> = HashMap::new();
        let mut queue: Vec<usize> = (0..self.cells.len()).collect();
        while let Some(c) = queue.pop() {
            let [a, b, cc] = self.cells[c];
            if a == 0 {
                continue;
            }
            let i = mulmod(b, powmod(a, P - 2));
            // pure: one row explains all three moments and hashes to this cell
            if i > max_rowid || mulmod(i, b) != cc || self.cell(c / self.width, i) != c {
                continue;
            }
            let delta = a;
            let entry = found.entry(i).or_insert(0);
            *entry = addmod(*entry, delta);
            // subtracting the row from its three cells may make others pure
            let im = reduce(i as u128);
            let iv = mulmod(im, delta);
            let iiv = mulmod(im, iv);
            for part in 0..3 {
                let k = self.cell(part, i);
                let cell = &mut self.cells[k];
                cell[0] = submod(cell[0], delta);
                cell[1] = submod(cell[1], iv);
                cell[2] = submod(cell[2], iiv);
                queue.push(k);
            }
        }
        if self.cells.iter().any(|c| c != &[0, 0, 0]) {
            return None;
        }
        found.retain(|_, d| *d != 0);
        Some(found)
    }
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

/// A fingerprint being computed, plus which row ids exist (needed to tell an update or an
/// insert from a delete).
pub struct Scanned {
    pub fp: Fingerprint,
    pub present: Vec<u64>,
    /// Sketch at the parent's width, when that differs from this version's own.
    pub sketch_at: Option<Sketch>,
}

impl Scanned {
    pub fn has(&self, rowid: u64) -> bool {
        self.present.get((rowid / 64) as usize).is_some_and(|w| w >> (rowid % 64) & 1 == 1)
    }
}

/// Streams `sql` (from `pairs_sql`) and fingerprints it. `width` sizes the sketch;
/// `also_width` adds a second sketch of another width (the parent's).
pub fn scan(db: &dyn Sql, sql: &str, hash_id: &str, width: usize, also_width: Option<usize>) -> Result<Scanned> {
    let mut fp = Fingerprint { hash_id: hash_id.to_string(), rows: 0, blocks: Vec::new(), sketch: Some(Sketch::new(width)) };
    let mut other = also_width.filter(|w| *w != width).map(Sketch::new);
    let mut present: Vec<u64> = Vec::new();
    let mut bad_rowid = false;
    db.scan_pairs(sql, &mut |ids, hashes| {
        for (&id, &h) in ids.iter().zip(hashes) {
            if id < 0 {
                bad_rowid = true;
                continue;
            }
            let i = id as u64;
            let v = row_value(h);
            let b = (i >> BLOCK_BITS) as usize;
            if fp.blocks.len() <= b {
                fp.blocks.resize(b + 1, (0, 0));
            }
            let block = &mut fp.blocks[b];
            block.0 += 1;
            block.1 = addmod(block.1, v);
            let w = (i / 64) as usize;
            if present.len() <= w {
                present.resize(w + 1, 0);
            }
            present[w] |= 1 << (i % 64);
            if let Some(s) = fp.sketch.as_mut() {
                s.add(i, v, false);
            }
            if let Some(s) = other.as_mut() {
                s.add(i, v, false);
            }
            fp.rows += 1;
        }
    })?;
    if bad_rowid {
        return Err(Error::Internal("negative row id while fingerprinting".into()));
    }
    Ok(Scanned { fp, present, sketch_at: other })
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
    /// Rows counted as added / removed (whole blocks count all their rows).
    pub rows_added: u64,
    pub rows_removed: u64,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty() && self.whole_blocks.is_empty()
    }
}

fn block_of(fp: &Fingerprint, b: usize) -> (u32, u64) {
    fp.blocks.get(b).copied().unwrap_or((0, 0))
}

/// Compares the live table (`cur`) with its parent version.
pub fn compare(cur: &Scanned, parent: &Fingerprint) -> Changes {
    let n = cur.fp.blocks.len().max(parent.blocks.len());
    let mut changed: Vec<usize> = (0..n).filter(|&b| block_of(&cur.fp, b) != block_of(parent, b)).collect();
    let mut out = Changes::default();
    let sketches_equal = matches!((&cur.fp.sketch, &parent.sketch), (Some(a), Some(b)) if a == b);
    if changed.is_empty() && cur.fp.rows == parent.rows && (parent.sketch.is_none() || sketches_equal) {
        return out;
    }
    let cur_sketch = match (&parent.sketch, &cur.sketch_at) {
        (Some(p), Some(s)) if s.width == p.width => Some(s),
        (Some(p), _) => cur.fp.sketch.as_ref().filter(|s| s.width == p.width),
        _ => None,
    };
    let max_rowid = (n as u64) << BLOCK_BITS;
    let recovered = match (cur_sketch, &parent.sketch) {
        (Some(c), Some(p)) => c.minus(p).and_then(|d| d.peel(max_rowid)),
        _ => None,
    };
    let mut by_block: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    if let Some(rows) = &recovered {
        for (&i, &d) in rows {
            by_block.entry((i >> BLOCK_BITS) as usize).or_default().push((i, d));
        }
        // changes that cancel out in a block's sum still count
        for b in by_block.keys() {
            if !changed.contains(b) {
                changed.push(*b);
            }
        }
        changed.sort_unstable();
    }
    for b in changed {
        let (cn, cs) = block_of(&cur.fp, b);
        let (pn, ps) = block_of(parent, b);
        let mut rows = by_block.remove(&b).unwrap_or_default();
        rows.sort_unstable();
        // the recovered rows must explain the block's sum and count exactly: rows gone now
        // are deletes, rows present are updates or inserts, and inserts - deletes must be the
        // change in the row count
        let sum_ok = rows.iter().fold(0, |acc, (_, d)| addmod(acc, *d)) == submod(cs, ps);
        let now: Vec<bool> = rows.iter().map(|(i, _)| cur.has(*i)).collect();
        let present = now.iter().filter(|x| **x).count() as i64;
        let deleted = now.len() as i64 - present;
        let inserted = cn as i64 - pn as i64 + deleted;
        let consistent = recovered.is_some() && sum_ok && !rows.is_empty() && (0..=present).contains(&inserted);
        if consistent {
            for ((i, _), now) in rows.iter().zip(now) {
                if now {
                    out.upserts.push(*i);
                } else {
                    out.deletes.push(*i);
                }
            }
            out.rows_added += present as u64;
            out.rows_removed += (present - inserted + deleted) as u64;
        } else {
            out.whole_blocks.push(b as u64);
            out.rows_added += cn as u64;
            out.rows_removed += pn as u64;
        }
    }
    if out.is_empty() && !sketches_equal {
        // the sketches disagree but nothing could be located: store everything
        out.whole_blocks = (0..n as u64).collect();
        out.rows_added = cur.fp.rows;
        out.rows_removed = parent.rows;
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
    out.extend_from_slice(&(s.width as u64).to_le_bytes());
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
    let width = r.u64()? as usize;
    if width == 0 || width.checked_mul(72)? > bytes.len() {
        return None;
    }
    let mut cells = Vec::with_capacity(3 * width);
    for _ in 0..3 * width {
        let c = [r.u64()?, r.u64()?, r.u64()?];
        if c.iter().any(|x| *x >= P) {
            return None;
        }
        cells.push(c);
    }
    (r.at == bytes.len()).then_some(Sketch { width, cells })
}

/// The sketch file that goes with an index file.
pub fn sketch_path(index_path: &Path) -> std::path::PathBuf {
    index_path.with_extension("sketch")
}

/// Loads an index (and its sketch when present), or None when missing, unreadable or
/// computed by another recipe or DuckDB version.
pub fn load(index_path: &Path, hash_id: &str) -> Option<Fingerprint> {
    let mut fp = decode_index(&fs::read(index_path).ok()?)?;
    if fp.hash_id != hash_id {
        return None;
    }
    fp.sketch = fs::read(sketch_path(index_path)).ok().and_then(|b| decode_sketch(&b, hash_id));
    Some(fp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(rows: &[(u64, u64)], width: usize) -> Sketch {
        let mut s = Sketch::new(width);
        for (i, h) in rows {
            s.add(*i, row_value(*h), false);
        }
        s
    }

    #[test]
    fn peeling_recovers_scattered_changes() {
        let base: Vec<(u64, u64)> = (0..100_000u64).map(|i| (i, splitmix(i))).collect();
        let mut now = base.clone();
        for k in 0..1_400u64 {
            let i = splitmix(k + 7) % 100_000;
            now[i as usize].1 ^= 1; // picked twice: changed back
        }
        let mut expected: Vec<u64> = base.iter().zip(&now).filter(|(a, b)| a != b).map(|(a, _)| a.0).collect();
        now.push((100_000, 42)); // an insert
        now.retain(|(i, _)| *i != 5); // a delete
        expected.extend([100_000, 5]);
        expected.sort_unstable();
        expected.dedup();
        assert!(expected.len() > 1_000);
        let w = sketch_width(100_000);
        let d = sketch_of(&now, w).minus(&sketch_of(&base, w)).unwrap();
        let mut got: Vec<u64> = d.peel(1 << 20).expect("peels").into_keys().collect();
        got.sort_unstable();
        assert_eq!(got, expected);
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
    fn too_many_changes_fail_instead_of_guessing() {
        let base: Vec<(u64, u64)> = (0..10_000u64).map(|i| (i, splitmix(i))).collect();
        let now: Vec<(u64, u64)> = base.iter().map(|(i, h)| (*i, h ^ 3)).collect();
        let w = sketch_width(10_000);
        assert!(sketch_of(&now, w).minus(&sketch_of(&base, w)).unwrap().peel(1 << 20).is_none());
    }

    #[test]
    fn files_round_trip_and_reject_garbage() {
        let fp = Fingerprint { hash_id: "x".into(), rows: 3, blocks: vec![(2, 5), (1, 9)], sketch: None };
        assert_eq!(decode_index(&encode_index(&fp)), Some(fp));
        assert_eq!(decode_index(b"SNAPIDX1garbage"), None);
        let s = sketch_of(&[(1, 2), (3, 4)], 256);
        assert_eq!(decode_sketch(&encode_sketch("x", &s), "x"), Some(s.clone()));
        assert_eq!(decode_sketch(&encode_sketch("x", &s), "y"), None);
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode_index(&bytes);
            let _ = decode_sketch(&bytes, "x");
        }
    }
}

#[cfg(test)]
mod speed {
    /// Not a timed assertion: prints the cost of fingerprinting 10M rows in Rust.
    #[test]
    #[ignore]
    fn sketch_throughput() {
        let t = std::time::Instant::now();
        let mut s = super::Sketch::new(super::sketch_width(10_000_000));
        for i in 0..10_000_000u64 {
            s.add(i, super::row_value(super::splitmix(i)), false);
        }
        eprintln!("10M sketch adds: {:.3} s", t.elapsed().as_secs_f64());
    }
}
