//! Reading a table version back from its layers. A version is a base file (whole rows in
//! the source's row-id order) and zero or more deltas (rows keyed by source row id; the
//! newest layer wins; `__snap_deleted` removes a row; a delta's `cleared` blocks void what
//! older layers hold there). This module turns that into one SELECT in row-id order, which
//! read_snapshot, restore, diff, mount and export all use.

use crate::engine::sql::{ident, literal};
use crate::repo::layout::Repo;
use crate::repo::manifest::{Column, Layer, BLOCK_BITS};

/// Reserved column names inside layer files; tables with a column of this prefix are always
/// stored whole.
pub const RESERVED_PREFIX: &str = "__snap_";
pub const ROWID: &str = "__snap_rowid";
pub const DELETED: &str = "__snap_deleted";

pub fn uses_reserved_names(columns: &[Column]) -> bool {
    columns.iter().any(|c| c.name.to_ascii_lowercase().starts_with(RESERVED_PREFIX))
}

pub fn layer_path(repo: &Repo, l: &Layer) -> String {
    repo.snapshot_dir(&l.snapshot).join(&l.file).to_string_lossy().into_owned()
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

/// The base layer as `(__snap_r, <stored columns>)`.
fn base_select(repo: &Repo, base: &Layer, cols: &str) -> (String, &'static str) {
    let path = literal(&layer_path(repo, base));
    if base.rowids.as_deref() == Some("column") {
        (format!("SELECT {ROWID} AS __snap_r, {cols} FROM read_parquet({path})"), ROWID)
    } else {
        (format!("SELECT file_row_number AS __snap_r, {cols} FROM read_parquet({path}, file_row_number = true)"), "file_row_number")
    }
}

/// A SELECT of `(__snap_r, <stored columns>)` of the version, in row-id order.
pub fn rows_sql(repo: &Repo, layers: &[Layer], columns: &[Column]) -> String {
    let cols = stored_list(columns);
    let (base, base_rowid) = base_select(repo, &layers[0], &cols);
    let deltas = &layers[1..];
    if deltas.is_empty() {
        return format!("{base} ORDER BY __snap_r");
    }
    let cleared_after = |k: usize| -> Vec<[u64; 2]> { deltas[k..].iter().flat_map(|d| d.cleared.iter().copied()).collect() };
    let files = deltas.iter().map(|d| literal(&layer_path(repo, d))).collect::<Vec<_>>().join(", ");
    let mut base_filter = vec![format!("{base_rowid} NOT IN (SELECT {ROWID} FROM read_parquet([{files}]))")];
    base_filter.extend(not_cleared(base_rowid, &cleared_after(0)));
    let mut parts = Vec::new();
    for (k, d) in deltas.iter().enumerate() {
        let mut sql = format!(
            "SELECT {k} AS __snap_layer, {ROWID}, {DELETED}, {cols} FROM read_parquet({})",
            literal(&layer_path(repo, d))
        );
        if let Some(f) = not_cleared(ROWID, &cleared_after(k + 1)) {
            sql.push_str(&format!(" WHERE {f}"));
        }
        parts.push(sql);
    }
    format!(
        "SELECT __snap_r, {cols} FROM ({base} WHERE {} UNION ALL SELECT {ROWID}, {cols} FROM (SELECT *, row_number() OVER (PARTITION BY {ROWID} ORDER BY __snap_layer DESC) AS __snap_rn FROM ({})) WHERE __snap_rn = 1 AND NOT {DELETED}) ORDER BY __snap_r",
        base_filter.join(" AND "),
        parts.join(" UNION ALL ")
    )
}

/// A FROM item with the version's stored columns in order: the base file itself when the
/// version is one file (so DuckDB's Parquet reader gets projections and filters directly),
/// else the merged layers.
pub fn source_sql(repo: &Repo, layers: &[Layer], columns: &[Column]) -> String {
    if layers.len() == 1 {
        return format!("read_parquet({})", literal(&layer_path(repo, &layers[0])));
    }
    format!("({}) AS __snap_v", rows_sql(repo, layers, columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(kind: &str, file: &str, cleared: Vec<[u64; 2]>) -> Layer {
        Layer {
            snapshot: "s".into(),
            file: file.into(),
            kind: kind.into(),
            rows: 0,
            size_bytes: 0,
            checksum: String::new(),
            rowids: None,
            cleared,
        }
    }

    #[test]
    fn one_file_is_read_directly() {
        let repo = Repo::new("/r", "p");
        let cols = vec![Column { name: "a".into(), ty: "INTEGER".into(), stored_as: None, generated: false, comment: None }];
        assert!(source_sql(&repo, &[layer("base", "t.parquet", vec![])], &cols).starts_with("read_parquet("));
        let sql = rows_sql(&repo, &[layer("base", "t.parquet", vec![]), layer("delta", "d.parquet", vec![[3, 4]])], &cols);
        assert!(sql.contains("NOT ((file_row_number >> 11) BETWEEN 3 AND 4)"), "{sql}");
        assert!(sql.ends_with("ORDER BY __snap_r"), "{sql}");
    }
}
