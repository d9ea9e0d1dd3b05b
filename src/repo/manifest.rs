//! The snapshot manifest (`metadata.json`): every ADR-004 field plus what exact restore and
//! integrity need. `format_version` is checked before anything else is trusted, so a newer
//! snapshot is refused with a clear error instead of being misread.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::repo::layout::{check_file_name, Repo};

/// The format this build writes and the newest it reads. Version 2 added incremental
/// table versions (`layers`, `index`), lineage (`parent_id`) and `deleted_in_source`;
/// version 1 manifests read as snapshots whose tables are each one self-contained file.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub snapshot_id: String,
    pub project_id: String,
    pub branch: String,
    /// RFC 3339, UTC, microseconds: `2024-12-11T14:30:22.123456Z`.
    pub created_at: String,
    pub created_by: String,
    #[serde(rename = "type")]
    pub kind: SnapshotKind,
    #[serde(default)]
    pub description: Option<String>,
    pub extension_version: String,
    pub duckdb_version: String,
    /// The database (catalog) the snapshot was taken from.
    pub database: String,
    /// What was asked for: `database`, `schema` (with `schema`) or `tables`.
    pub scope: Scope,
    pub tables: Vec<TableEntry>,
    /// Schemas, types, sequences, views and macros (database and schema scope only), in
    /// creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<DbObject>,
    /// The previous snapshot of the same scope, which this one is incremental against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Tables the parent had in this scope that no longer existed when this one was taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_in_source: Vec<DeletedTable>,
    /// The schedule that took it (type `scheduled`); its retention applies to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Per database read: the state of its file just before the read began
    /// (`engine::source_stamp`); a later snapshot under an equal stamp knows nothing changed.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub source_stamps: std::collections::BTreeMap<String, String>,
}

/// A table of the parent's scope that was gone when the snapshot was taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeletedTable {
    pub catalog: String,
    pub bucket: String,
    pub table: String,
    /// The last snapshot that has the table's data.
    pub last_snapshot_id: String,
    pub row_count: u64,
}

/// A file of another (or this) snapshot folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileRef {
    pub snapshot: String,
    pub file: String,
}

/// One stored piece of a table version. A version is a `base` (whole rows, in the source's
/// row-id order) followed by zero or more `delta`s (rows keyed by the source row id
/// `__rowid`, `__deleted` marking removed rows); a later layer wins for a row id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Layer {
    pub snapshot: String,
    pub file: String,
    pub kind: LayerKind,
    pub rows: u64,
    pub size_bytes: u64,
    pub checksum: String,
    /// base: `position` (row id = row number in the file) or `column` (in `__rowid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rowids: Option<String>,
    /// delta: inclusive ranges of blocks (`BLOCK_ROWS` row ids each) whose rows in older
    /// layers are void; the delta holds every row those blocks now have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleared: Vec<[u64; 2]>,
}

impl Layer {
    pub fn file_ref(&self) -> FileRef {
        FileRef { snapshot: self.snapshot.clone(), file: self.file.clone() }
    }
}

/// What took a snapshot: `type` in metadata.json.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// Asked for (`snapshot_create`).
    #[default]
    Manual,
    /// Taken before a restore replaced tables.
    PreRestore,
    /// Taken before `snapshot_drop_table`.
    PreDrop,
    /// Taken by a schedule (named in `schedule`).
    Scheduled,
}

impl SnapshotKind {
    pub const ALL: [SnapshotKind; 4] = [SnapshotKind::Manual, SnapshotKind::PreRestore, SnapshotKind::PreDrop, SnapshotKind::Scheduled];

    /// The name SQL and metadata.json use.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::Manual => "manual",
            SnapshotKind::PreRestore => "pre_restore",
            SnapshotKind::PreDrop => "pre_drop",
            SnapshotKind::Scheduled => "scheduled",
        }
    }

    pub fn parse(name: &str) -> Option<SnapshotKind> {
        SnapshotKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What a layer holds: whole rows (`base`) or changed rows keyed by row id (`delta`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    Base,
    Delta,
}

/// What a snapshot was asked to cover.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    /// The whole database with its schemas and objects.
    Database,
    /// One schema (`Scope::schema`) with its objects.
    Schema,
    /// Named tables.
    Tables,
    /// Glob patterns over schema and table names.
    Pattern,
}

/// What a snapshot did with a table's data.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    /// New data written.
    #[default]
    Stored,
    /// Nothing changed since the parent: every file referenced.
    Unchanged,
    /// A table the parent snapshot had under another name (`renamed_from`), recognised by its
    /// columns and content, and stored incrementally against that table's version.
    Renamed,
}

impl TableStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Stored => "stored",
            TableStatus::Unchanged => "unchanged",
            TableStatus::Renamed => "renamed",
        }
    }
}

/// Row ids per block of the fingerprint index and of `cleared` ranges.
pub const BLOCK_BITS: u32 = 11;

/// A database object other than a table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DbObject {
    /// `schema`, `type`, `sequence`, `view` or `macro`.
    pub kind: String,
    pub catalog: String,
    pub schema: String,
    pub name: String,
    /// The CREATE statement with `{name}` where the qualified name goes.
    pub sql: String,
    #[serde(default)]
    pub comment: Option<String>,
}

/// What a snapshot was asked to cover. Two snapshots of the same scope form a chain
/// (`parent_id`); a table of the parent's scope missing later is `deleted_in_source`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scope {
    pub kind: ScopeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// `pattern`: the scope as given (`['main.fact_*', 'dim_?']`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// `tables`: the tables, `schema.table`, sorted (two snapshots of the same tables chain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// Names and patterns left out (`exclude :=`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

impl Scope {
    /// A scope of explicitly named tables (backups before a restore or drop).
    pub fn tables() -> Scope {
        Scope { kind: ScopeKind::Tables, schema: None, patterns: Vec::new(), tables: Vec::new(), exclude: Vec::new() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableEntry {
    /// The catalog (attached database) the table lives in.
    pub catalog: String,
    /// The schema; ADR-004 calls it a bucket.
    pub bucket: String,
    pub table: String,
    pub file: String,
    pub row_count: u64,
    pub size_bytes: u64,
    pub schema: TableSchema,
    /// `CREATE TABLE` statement as DuckDB reports it (`duckdb_tables().sql`).
    pub ddl: String,
    #[serde(default)]
    pub comment: Option<String>,
    /// `CREATE INDEX` statements of the table.
    #[serde(default)]
    pub indexes: Vec<String>,
    /// `sha256:<hex>` of the data file.
    pub checksum: String,
    /// Format 2: the layers that make up this version, oldest first; empty means `file`
    /// alone (format 1, or a full copy without a row-id map).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
    /// Fingerprints of this version (block sums), for the next incremental snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<FileRef>,
    /// The snapshot whose version of the table this one was derived from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub status: TableStatus,
    #[serde(default)]
    pub rows_added: u64,
    #[serde(default)]
    pub rows_removed: u64,
    /// Bytes this snapshot wrote for the table / bytes it references in other snapshots.
    #[serde(default)]
    pub bytes_written: u64,
    #[serde(default)]
    pub bytes_reused: u64,
    /// The table's definition version: 1 for its first version, one more whenever its
    /// columns, types, constraints or defaults differ from its parent's (absent in snapshots
    /// taken before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
    /// Set when only some columns were stored (`columns :=`): every column the source table had
    /// then, in order; `schema.columns` are the stored ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_columns: Option<Vec<String>>,
    /// `status = renamed`: the parent's name of the table, `schema.table` (`catalog.schema.table`
    /// for another database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
}

impl TableEntry {
    /// Whether `columns` and `ddl` define the same table as this version: the same columns
    /// (names, types, generated or not) and the same `CREATE TABLE` (constraints, defaults).
    /// Comments do not count.
    pub fn same_definition(&self, columns: &[Column], ddl: &str) -> bool {
        let shape = |cs: &[Column]| cs.iter().map(|c| (c.name.clone(), c.ty.clone(), c.generated)).collect::<Vec<_>>();
        shape(&self.schema.columns) == shape(columns) && self.ddl == ddl
    }

    /// The layers of this version; a format 1 entry is one base file in `snapshot_id`.
    pub fn effective_layers(&self, snapshot_id: &str) -> Vec<Layer> {
        if !self.layers.is_empty() {
            return self.layers.clone();
        }
        vec![Layer {
            snapshot: snapshot_id.to_string(),
            file: self.file.clone(),
            kind: LayerKind::Base,
            rows: self.row_count,
            size_bytes: self.size_bytes,
            checksum: self.checksum.clone(),
            rowids: None,
            cleared: Vec::new(),
        }]
    }

    /// Bytes of data this version occupies: every layer it reads, wherever stored (what a
    /// full copy of it would roughly hold). Nonzero for an unchanged table too.
    pub fn data_bytes(&self, snapshot_id: &str) -> u64 {
        self.effective_layers(snapshot_id).iter().map(|l| l.size_bytes).sum()
    }

    /// Bytes the snapshot stored for this table (format 1: its one file).
    pub fn written_bytes(&self) -> u64 {
        if self.layers.is_empty() {
            self.size_bytes
        } else {
            self.bytes_written
        }
    }

    /// Every file this version needs, with the snapshot folder holding it.
    pub fn referenced_files(&self, snapshot_id: &str) -> Vec<FileRef> {
        let mut out: Vec<FileRef> = self.effective_layers(snapshot_id).iter().map(Layer::file_ref).collect();
        out.extend(self.index.clone());
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableSchema {
    pub columns: Vec<Column>,
    #[serde(default)]
    pub primary_key: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Column {
    pub name: String,
    /// The DuckDB type, e.g. `DECIMAL(18,3)` or `ENUM('a', 'b')`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Set when the Parquet column holds another type than `type` (a lossless stand-in
    /// that readers cast back); absent when Parquet holds the type itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_as: Option<String>,
    /// A generated (computed) column: stored for readers, never inserted on restore.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serializes");
        v.push(b'\n');
        v
    }

    /// Parses and validates a manifest; `id` is the folder it was found in.
    pub fn parse(id: &str, path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let bad = |detail: String| Error::BadMetadata { id: id.to_string(), path: path.to_path_buf(), detail };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let version = value
            .get("format_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| bad("no format_version".into()))?;
        if version > FORMAT_VERSION as u64 {
            return Err(Error::NewerFormat {
                id: id.to_string(),
                found: version.min(u32::MAX as u64) as u32,
                supported: FORMAT_VERSION,
            });
        }
        let m: Manifest = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        if m.snapshot_id != id {
            return Err(bad(format!("it names snapshot '{}'", m.snapshot_id)));
        }
        for t in &m.tables {
            let refs = t.referenced_files(id);
            let unsafe_ref = refs.iter().any(|r| !check_file_name(&r.file) || crate::repo::layout::validate_id(&r.snapshot).is_err());
            if unsafe_ref || (t.layers.is_empty() && !check_file_name(&t.file)) {
                return Err(bad(format!("table {}.{} has an unsafe file name", t.bucket, t.table)));
            }
        }
        parse_timestamp(&m.created_at).ok_or_else(|| bad(format!("bad created_at '{}'", m.created_at)))?;
        Ok(m)
    }

    pub fn created_at_micros(&self) -> i64 {
        parse_timestamp(&self.created_at).unwrap_or(0)
    }

    pub fn row_count(&self) -> u64 {
        self.tables.iter().map(|t| t.row_count).sum()
    }

    /// Bytes of data the snapshot's tables occupy (`TableEntry::data_bytes`).
    pub fn size_bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.data_bytes(&self.snapshot_id)).sum()
    }

    /// Bytes this snapshot wrote itself (data, indexes).
    pub fn bytes_written(&self) -> u64 {
        self.tables.iter().map(|t| t.written_bytes()).sum()
    }

    /// Bytes of other snapshots' files this snapshot's tables read.
    pub fn bytes_reused(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes_reused).sum()
    }
}

/// Reads the manifest of a published snapshot.
pub fn load(repo: &Repo, id: &str) -> Result<Manifest> {
    crate::repo::layout::validate_id(id)?;
    let path = repo.metadata_path(id);
    let Some(bytes) = repo.read_metadata(id)? else {
        return Err(Error::SnapshotNotFound { id: id.to_string(), repo: repo.dir.clone() });
    };
    Manifest::parse(id, &path, &bytes)
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn format_timestamp(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}Z")
}

/// `YYYYMMDD_HHMMSS` in UTC, the stamp used in generated snapshot ids.
pub fn id_stamp(micros: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(micros.div_euclid(1_000_000));
    format!("{y:04}{mo:02}{d:02}_{h:02}{mi:02}{s:02}")
}

pub fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's days -> civil date
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d, (sod / 3600) as u32, ((sod % 3600) / 60) as u32, (sod % 60) as u32)
}

pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` into microseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_us = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        let padded = format!("{digits:0<6}");
        frac_us = padded[..6].parse().ok()?;
    }
    let offset_secs = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.is_ascii() && rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_secs;
    Some(secs * 1_000_000 + frac_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for us in [0i64, 1_733_927_422_000_000, 1_733_927_422_123_456, -1, 951_782_400_000_001] {
            assert_eq!(parse_timestamp(&format_timestamp(us)), Some(us), "{}", format_timestamp(us));
        }
        assert_eq!(format_timestamp(1_733_927_422_000_000), "2024-12-11T14:30:22.000000Z");
        assert_eq!(id_stamp(1_733_927_422_000_000), "20241211_143022");
        assert_eq!(parse_timestamp("2024-12-11T14:30:22Z"), Some(1_733_927_422_000_000));
        assert_eq!(parse_timestamp("2024-12-11T15:30:22+01:00"), Some(1_733_927_422_000_000));
        assert_eq!(parse_timestamp("2024-12-11"), None);
        assert_eq!(parse_timestamp("2024-13-11T14:30:22Z"), None);
    }

    fn sample() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            snapshot_id: "s1".into(),
            project_id: "p".into(),
            branch: "main".into(),
            created_at: format_timestamp(1_733_927_422_000_000),
            created_by: "me".into(),
            kind: SnapshotKind::Manual,
            description: None,
            extension_version: "0".into(),
            duckdb_version: "v".into(),
            database: "memory".into(),
            scope: Scope::tables(),
            tables: vec![],
            objects: vec![],
            parent_id: None,
            deleted_in_source: vec![],
            schedule: None,
            source_stamps: Default::default(),
        }
    }

    #[test]
    fn newer_format_is_refused() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
        v["tables"] = serde_json::json!("whatever a future version stores");
        let err = Manifest::parse("s1", Path::new("m.json"), v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, Error::NewerFormat { .. }), "{err}");
        assert!(err.to_string().contains("upgrade"));
    }

    #[test]
    fn round_trip_and_validation() {
        let m = sample();
        assert_eq!(Manifest::parse("s1", Path::new("m"), &m.to_json()).unwrap(), m);
        assert!(matches!(Manifest::parse("s2", Path::new("m"), &m.to_json()), Err(Error::BadMetadata { .. })));
        assert!(matches!(Manifest::parse("s1", Path::new("m"), b"{nope"), Err(Error::BadMetadata { .. })));
    }

    #[test]
    fn snapshot_types_keep_their_names() {
        for k in SnapshotKind::ALL {
            let m = Manifest { kind: k, ..sample() };
            let json = String::from_utf8(m.to_json()).unwrap();
            assert!(json.contains(&format!("\"type\": \"{}\"", k.as_str())), "{json}");
            assert_eq!(SnapshotKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(SnapshotKind::parse("auto"), None);
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Manifest::parse("s1", Path::new("m"), &bytes);
        }

        #[test]
        fn timestamp_parser_never_panics(s in ".{0,40}") {
            let _ = parse_timestamp(&s);
        }
    }
}
