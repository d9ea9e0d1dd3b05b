//! Reading a table version back from its layers. A version is a base file (whole rows in
//! the source's row-id order) and zero or more deltas (rows keyed by source row id; the
//! newest layer wins; `__snap_deleted` removes a row; a delta's `cleared` blocks void what
//! older layers hold there).
//!
//! Three ways to read one: `layered_sql`, each layer scanned by DuckDB on its own and filtered
//! by `__snapshot_keep` (see `engine::survivors`): every thread, pushdown into every file —
//! the '@' read, restore, export and diff; `rows_sql`, the same in SQL alone (a window over
//! the deltas), for mounted views that must work without the extension; and `merge_plan`, two
//! ordered streams that read_snapshot interleaves without sorting (`host::merge`).

use serde::{Deserialize, Serialize};

use crate::engine::sql::{ident, literal};
use crate::engine::types;
use crate::repo::layout::Repo;
use crate::repo::manifest::{Column, Layer, BLOCK_BITS};

/// The scalar function that filters a layer's rows down to the surviving ones.
pub const KEEP: &str = "__snapshot_keep";

/// Reserved column names inside layer files.
pub const RESERVED_PREFIX: &str = "__snap_";
pub const ROWID: &str = "__snap_rowid";
pub const DELETED: &str = "__snap_deleted";

/// Whether a table's versions are always stored whole: a column named like the layer files'
/// own (`__snap_*`), like DuckDB's `rowid` (which then hides the row ids incremental
/// snapshots key on) or like read_parquet's `file_row_number` (which numbers a base's rows).
pub fn always_whole(columns: &[Column]) -> bool {
    columns.iter().any(|c| {
        let name = c.name.to_ascii_lowercase();
        name.starts_with(RESERVED_PREFIX) || name == "rowid" || name == "file_row_number"
    })
}

/// The key `__snapshot_keep` is called with: the version's layers as JSON (so a process that
/// never saw the version can compute it).
pub fn survivors_key(sources: &[Source]) -> String {
    serde_json::to_string(sources).expect("sources serialize")
}

/// The local path DuckDB reads a layer's file at.
pub fn layer_path(repo: &Repo, l: &Layer) -> String {
    repo.data_path(l)
}

/// One layer with its file's absolute path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub path: String,
    /// The file's recorded checksum: a file written again under the same name (a snapshot id
    /// reused after a drop) is another layer.
    #[serde(default)]
    pub checksum: String,
    /// base: `column` when row ids are stored in `__snap_rowid`, else positions.
    #[serde(default)]
    pub rowids: Option<String>,
    #[serde(default)]
    pub cleared: Vec<[u64; 2]>,
}

/// A table version as its files and columns: everything needed to read it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Version {
    pub sources: Vec<Source>,
    pub columns: Vec<Column>,
}

impl Version {
    pub fn new(repo: &Repo, layers: &[Layer], columns: &[Column]) -> Version {
        Version {
            sources: layers
                .iter()
                .map(|l| Source { path: layer_path(repo, l), checksum: l.checksum.clone(), rowids: l.rowids.clone(), cleared: l.cleared.clone() })
                .collect(),
            columns: columns.to_vec(),
        }
    }

    pub fn is_one_file(&self) -> bool {
        self.sources.len() == 1
    }

    fn base(&self) -> (String, &'static str) {
        let b = &self.sources[0];
        let path = literal(&b.path);
        if b.rowids.as_deref() == Some("column") {
            (format!("read_parquet({path})"), ROWID)
        } else {
            (format!("read_parquet({path}, file_row_number = true)"), "file_row_number")
        }
    }

    fn deltas(&self) -> &[Source] {
        &self.sources[1..]
    }

    /// Cleared block ranges of the deltas after delta `k` (0: all deltas).
    fn cleared_after(&self, k: usize) -> Vec<[u64; 2]> {
        self.deltas()[k..].iter().flat_map(|d| d.cleared.iter().copied()).collect()
    }

    /// Every delta row that survives (newest per row id, not voided by a later delta),
    /// delete markers included, with `__snap_rowid` and `__snap_deleted`; unordered.
    /// `range`: only row ids in `[start, end)`, filtered in each file (before the window).
    fn surviving_deltas(&self, range: Option<(u64, u64)>) -> String {
        let cols = stored_list(&self.columns);
        let parts: Vec<String> = self
            .deltas()
            .iter()
            .enumerate()
            .map(|(k, d)| {
                let mut filter: Vec<String> = range.map(|(a, b)| format!("{ROWID} >= {a} AND {ROWID} < {b}")).into_iter().collect();
                filter.extend(not_cleared(ROWID, &self.cleared_after(k + 1)));
                let mut sql = format!("SELECT {k} AS __snap_layer, {ROWID}, {DELETED}, {cols} FROM read_parquet({})", literal(&d.path));
                if !filter.is_empty() {
                    sql.push_str(&format!(" WHERE {}", filter.join(" AND ")));
                }
                sql
            })
            .collect();
        format!(
            "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {ROWID} ORDER BY __snap_layer DESC) AS __snap_rn FROM ({})) WHERE __snap_rn = 1",
            parts.join(" UNION ALL ")
        )
    }

    /// A SELECT of `(__snap_r, <stored columns>)` in plain SQL, in row-id order when
    /// `ordered` (a sort: only what must keep the order pays for it).
    pub fn rows_sql(&self, ordered: bool) -> String {
        let cols = stored_list(&self.columns);
        let (base, rid) = self.base();
        let order = if ordered { " ORDER BY __snap_r" } else { "" };
        if self.deltas().is_empty() {
            return format!("SELECT {rid} AS __snap_r, {cols} FROM {base}{order}");
        }
        let files = self.deltas().iter().map(|d| literal(&d.path)).collect::<Vec<_>>().join(", ");
        let mut filter = vec![format!("{rid} NOT IN (SELECT {ROWID} FROM read_parquet([{files}]))")];
        filter.extend(not_cleared(rid, &self.cleared_after(0)));
        format!(
            "SELECT __snap_r, {cols} FROM (SELECT {rid} AS __snap_r, {cols} FROM {base} WHERE {} UNION ALL SELECT {ROWID}, {cols} FROM ({}) WHERE NOT {DELETED}){order}",
            filter.join(" AND "),
            self.surviving_deltas(None)
        )
    }

    /// Every row as `SELECT __snap_r, <stored columns>`, unordered, planned by DuckDB over
    /// the files: the base and all deltas (one scan over the list of delta files, so their
    /// small files run in parallel) filtered to their surviving rows by `__snapshot_keep`;
    /// every file gets projection and filter pushdown.
    pub fn layered_sql(&self) -> String {
        let cols = stored_list(&self.columns);
        let (base, rid) = self.base();
        if self.deltas().is_empty() {
            return format!("SELECT {rid} AS __snap_r, {cols} FROM {base}");
        }
        let key = literal(&survivors_key(&self.sources));
        let files = self.deltas().iter().map(|d| literal(&d.path)).collect::<Vec<_>>().join(", ");
        format!(
            "SELECT {rid} AS __snap_r, {cols} FROM {base} WHERE {KEEP}({key}, 0, {rid}) \
             UNION ALL SELECT {ROWID} AS __snap_r, {cols} FROM read_parquet([{files}], file_row_number = true) \
             WHERE NOT {DELETED} AND {KEEP}({key}, file_index::INTEGER + 1, file_row_number)"
        )
    }

    /// A FROM item with the stored columns: the file itself for a one-file version (DuckDB's
    /// Parquet reader then gets projections and filters), else `layered_sql`, sorted by row
    /// id when `ordered`.
    pub fn from_sql(&self, ordered: bool) -> String {
        if self.is_one_file() {
            return format!("read_parquet({})", literal(&self.sources[0].path));
        }
        let order = if ordered { " ORDER BY __snap_r" } else { "" };
        format!("(SELECT * FROM ({}){order}) AS __snap_v", self.layered_sql())
    }

    /// `from_sql` in SQL alone (no function of the extension): for views that must keep
    /// working in a process without it.
    pub fn portable_from_sql(&self, ordered: bool) -> String {
        if self.is_one_file() {
            return format!("read_parquet({})", literal(&self.sources[0].path));
        }
        format!("({}) AS __snap_v", self.rows_sql(ordered))
    }

    /// A query of one row: one past the highest row id of any layer.
    pub fn rowid_end_sql(&self) -> String {
        let (base, rid) = self.base();
        let mut parts = vec![format!("SELECT max({rid}) AS r FROM {base}")];
        parts.extend(self.deltas().iter().map(|d| format!("SELECT max({ROWID}) FROM read_parquet({})", literal(&d.path))));
        format!("SELECT coalesce(max(r) + 1, 0)::BIGINT FROM ({})", parts.join(" UNION ALL "))
    }

    /// The two streams read_snapshot interleaves, each reading back the columns at
    /// `indexes` in their original types followed by the row id (and, for deltas, the
    /// delete marker): the base in file order, the surviving delta rows ordered by row id.
    /// `range`: only row ids in `[start, end)` (a part of a scan split between threads).
    pub fn merge_plan(&self, indexes: &[usize], range: Option<(u64, u64)>) -> MergePlan {
        let list = types::read_list(&self.columns, indexes);
        let (base, rid) = self.base();
        let within = |col: &str| range.map(|(a, b)| format!(" WHERE {col} >= {a} AND {col} < {b}")).unwrap_or_default();
        let base_sql = format!("SELECT {list}, {rid}::BIGINT AS __snap_r FROM {base}{}", within(rid));
        let delta_sql = (!self.deltas().is_empty()).then(|| {
            format!("SELECT {list}, {ROWID}::BIGINT, {DELETED} FROM ({}) ORDER BY {ROWID}", self.surviving_deltas(range))
        });
        let mut cleared = self.cleared_after(0);
        cleared.sort_unstable();
        MergePlan { base_sql, delta_sql, cleared, width: indexes.len().max(1) }
    }
}

/// See `Version::merge_plan`.
#[derive(Debug, Clone, PartialEq)]
pub struct MergePlan {
    pub base_sql: String,
    pub delta_sql: Option<String>,
    /// Blocks whose base rows are void.
    pub cleared: Vec<[u64; 2]>,
    /// Output columns (before the row id).
    pub width: usize,
}

impl MergePlan {
    pub fn is_cleared(&self, rowid: u64) -> bool {
        let b = rowid >> BLOCK_BITS;
        self.cleared.iter().any(|[lo, hi]| (*lo..=*hi).contains(&b))
    }
}

fn stored_list(columns: &[Column]) -> String {
    columns.iter().map(|c| ident(&c.name)).collect::<Vec<_>>().join(", ")
}

/// `NOT (<row id> in one of the blocks)`, or None when no block is cleared.
fn not_cleared(rowid: &str, ranges: &[[u64; 2]]) -> Option<String> {
    if ranges.is_empty() {
        return None;
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|[a, b]| format!("({rowid} >> {BLOCK_BITS}) BETWEEN {a} AND {b}"))
        .collect();
    Some(format!("NOT ({})", parts.join(" OR ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(cleared: Vec<[u64; 2]>, deltas: usize) -> Version {
        let mut sources = vec![Source { path: "/r/t.parquet".into(), checksum: "sha256:0".into(), rowids: None, cleared: vec![] }];
        for k in 0..deltas {
            sources.push(Source { path: format!("/r/d{k}.parquet"), checksum: format!("sha256:{k}"), rowids: None, cleared: cleared.clone() });
        }
        let cols = vec![Column { name: "a".into(), ty: "INTEGER".into(), stored_as: None, generated: false, comment: None }];
        Version { sources, columns: cols }
    }

    #[test]
    fn layers_are_filtered_by_keep() {
        let sql = version(vec![[3, 4]], 2).layered_sql();
        assert!(sql.contains(&format!("{KEEP}('")), "{sql}");
        assert!(sql.contains(", 0, file_row_number)"), "{sql}");
        // every delta in one scan, the layer told by the file's index in the list
        assert!(sql.contains("read_parquet(['/r/d0.parquet', '/r/d1.parquet'], file_row_number = true)"), "{sql}");
        assert!(sql.ends_with(", file_index::INTEGER + 1, file_row_number)"), "{sql}");
        assert!(version(vec![], 0).from_sql(false).starts_with("read_parquet("));
        assert!(version(vec![], 1).from_sql(true).contains("ORDER BY __snap_r"));
    }

    #[test]
    fn one_file_is_read_directly() {
        assert!(version(vec![], 0).from_sql(true).starts_with("read_parquet("));
        let sql = version(vec![[3, 4]], 1).rows_sql(true);
        assert!(sql.contains("NOT ((file_row_number >> 11) BETWEEN 3 AND 4)"), "{sql}");
        assert!(sql.ends_with("ORDER BY __snap_r"), "{sql}");
    }

    #[test]
    fn merge_plan_orders_deltas_and_knows_cleared_blocks() {
        let p = version(vec![[3, 4]], 2).merge_plan(&[0], None);
        assert!(p.delta_sql.as_deref().unwrap().ends_with(&format!("ORDER BY {ROWID}")));
        assert!(p.is_cleared(3 << BLOCK_BITS) && !p.is_cleared(5 << BLOCK_BITS));
        assert!(version(vec![], 0).merge_plan(&[0], None).delta_sql.is_none());
    }

    #[test]
    fn a_ranged_merge_plan_filters_both_streams_by_row_id() {
        let p = version(vec![], 1).merge_plan(&[0], Some((10, 20)));
        assert!(p.base_sql.ends_with("WHERE file_row_number >= 10 AND file_row_number < 20"), "{}", p.base_sql);
        let d = p.delta_sql.unwrap();
        assert!(d.contains(&format!("read_parquet('/r/d0.parquet') WHERE {ROWID} >= 10 AND {ROWID} < 20")), "{d}");
    }

    #[test]
    fn spec_round_trips_as_json() {
        let v = version(vec![[1, 1]], 1);
        assert_eq!(serde_json::from_str::<Version>(&serde_json::to_string(&v).unwrap()).unwrap(), v);
    }
}
