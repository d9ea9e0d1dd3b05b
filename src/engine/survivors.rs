//! Which stored rows of an incremental version survive, so DuckDB can plan the version as
//! plain SQL over its files: every layer is scanned with DuckDB's own Parquet reader (all
//! threads, projection and filter pushdown) and filtered by `__snapshot_keep(key, layer,
//! position)`, a bit test against what is computed here once per version and process.
//!
//! A base row survives unless a delta holds its row id or clears its block; a delta row
//! survives unless a later delta holds its row id or clears its block (a surviving delete
//! marker is then dropped by `NOT __snap_deleted`). Bases are keyed by row id, deltas by
//! their row's position in the file (`file_row_number`).

use std::sync::{Arc, Mutex};

use crate::engine::layers::{Source, ROWID};
use crate::engine::sql::{literal, Sql};
use crate::error::{Error, Result};
use crate::repo::manifest::BLOCK_BITS;

/// A plain bit set.
#[derive(Debug, Clone, Default)]
pub struct Bits(Vec<u64>);

impl Bits {
    pub fn with_len(n: u64) -> Bits {
        Bits(vec![0; (n as usize).div_ceil(64)])
    }

    pub fn set(&mut self, i: u64) {
        let w = (i / 64) as usize;
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (i % 64);
    }

    pub fn get(&self, i: u64) -> bool {
        self.0.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn bytes(&self) -> usize {
        self.0.len() * 8
    }
}

/// The surviving rows of one version.
#[derive(Debug, Default)]
pub struct Survivors {
    /// Base row ids some delta replaces (or deletes).
    replaced: Bits,
    /// Blocks some delta clears (their base rows are void).
    cleared: Bits,
    /// Per delta (layer 1, 2, ...): positions in its file whose row no later delta replaces.
    delta_keep: Vec<Bits>,
}

impl Survivors {
    /// Whether the row at `key` of `layer` survives (layer 0: a row id; else a position).
    pub fn keep(&self, layer: usize, key: i64) -> bool {
        if key < 0 {
            return false;
        }
        let key = key as u64;
        match layer {
            0 => !self.replaced.get(key) && !self.cleared.get(key >> BLOCK_BITS),
            k => self.delta_keep.get(k - 1).is_some_and(|b| b.get(key)),
        }
    }

    /// Computes them from the deltas' row ids (the base is never read).
    pub fn compute(db: &dyn Sql, sources: &[Source]) -> Result<Survivors> {
        let deltas = &sources[1..];
        let mut seen = Bits::default();
        let mut cleared_later = Bits::default();
        let mut delta_keep = vec![Bits::default(); deltas.len()];
        for (k, d) in deltas.iter().enumerate().rev() {
            let cols = db.query_i64s(
                &format!("SELECT file_row_number::BIGINT, {ROWID}::BIGINT FROM read_parquet({}, file_row_number = true)", literal(&d.path)),
                2,
            )?;
            let (positions, rowids) = (&cols[0], &cols[1]);
            let mut keep = Bits::with_len(positions.len() as u64);
            for (&pos, &rid) in positions.iter().zip(rowids) {
                let (pos, rid) = (pos as u64, rid as u64);
                if !seen.get(rid) && !cleared_later.get(rid >> BLOCK_BITS) {
                    keep.set(pos);
                }
            }
            for &rid in rowids {
                seen.set(rid as u64);
            }
            for [lo, hi] in &d.cleared {
                for b in *lo..=*hi {
                    cleared_later.set(b);
                }
            }
            delta_keep[k] = keep;
        }
        Ok(Survivors { replaced: seen, cleared: cleared_later, delta_keep })
    }

    fn bytes(&self) -> usize {
        self.replaced.bytes() + self.cleared.bytes() + self.delta_keep.iter().map(Bits::bytes).sum::<usize>()
    }
}


/// Computed survivors, least recently used last; bounded by `CACHE_BYTES`.
static CACHE: Mutex<Vec<(String, Arc<Survivors>)>> = Mutex::new(Vec::new());
const CACHE_BYTES: usize = 512 << 20;

/// The survivors of the version `key` describes: cached, or computed on `db`.
pub fn for_key(db: &dyn Sql, key: &str) -> Result<Arc<Survivors>> {
    {
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = cache.iter().position(|(k, _)| k == key) {
            let hit = cache.remove(i);
            let s = hit.1.clone();
            cache.insert(0, hit);
            return Ok(s);
        }
    }
    let sources: Vec<Source> = serde_json::from_str(key).map_err(|e| Error::Input(format!("__snapshot_keep: bad version key ({e})")))?;
    if sources.len() < 2 {
        return Err(Error::Input("__snapshot_keep: a version key needs a base and at least one delta".into()));
    }
    let s = Arc::new(Survivors::compute(db, &sources)?);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache.insert(0, (key.to_string(), s.clone()));
    let mut total = 0;
    cache.retain(|(_, v)| {
        total += v.bytes();
        total <= CACHE_BYTES || Arc::ptr_eq(v, &s)
    });
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        let mut b = Bits::with_len(10);
        b.set(3);
        b.set(200);
        assert!(b.get(3) && b.get(200) && !b.get(4) && !b.get(100_000));
    }

    #[test]
    fn later_layers_win() {
        // delta 1 holds row ids 5 and 7, delta 2 holds 7 and clears block 1 (ids 2048..4095)
        let mut replaced = Bits::default();
        for r in [5, 7] {
            replaced.set(r);
        }
        let mut cleared = Bits::default();
        cleared.set(1);
        let mut d1 = Bits::default();
        d1.set(0); // position 0 = row 5 survives; position 1 = row 7 does not
        let mut d2 = Bits::default();
        d2.set(0);
        let s = Survivors { replaced, cleared, delta_keep: vec![d1, d2] };
        assert!(s.keep(0, 4) && !s.keep(0, 5) && !s.keep(0, 7) && !s.keep(0, 2048) && s.keep(0, 4096));
        assert!(s.keep(1, 0) && !s.keep(1, 1) && s.keep(2, 0) && !s.keep(3, 0) && !s.keep(0, -1));
    }
}
