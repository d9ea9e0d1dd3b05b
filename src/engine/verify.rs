//! Integrity of data files: SHA-256 per file, recorded at create and checked before any
//! restore. Reads check size and presence on every scan and the full checksum once per
//! process per unchanged file (remembered by size and modification time).

use crate::error::{Error, Result};
use crate::repo::layout::Repo;
use crate::repo::manifest::{Layer, Manifest, TableEntry};

pub use crate::repo::publish::file_checksum;

/// Checks every file of a table version (its layers, which may live in other snapshot
/// folders): present, right size, and (if `full`, or never verified in this process) the
/// right checksum.
pub fn check_entry(repo: &Repo, m: &Manifest, t: &TableEntry, full: bool) -> Result<()> {
    for layer in t.effective_layers(&m.snapshot_id) {
        check_layer(repo, &layer, full)?;
    }
    Ok(())
}

/// Checks one stored file against its recorded size and checksum.
pub fn check_layer(repo: &Repo, l: &Layer, full: bool) -> Result<()> {
    repo.check_file(l, full)
}

/// One line of `snapshot_verify`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStatus {
    pub snapshot_id: String,
    pub file: String,
    /// `ok`, `missing`, `corrupt` or `mismatch`.
    pub status: &'static str,
    pub detail: String,
}

/// Re-reads every file of the given snapshot (or of all snapshots, including ones whose
/// metadata cannot be read): presence, checksum, Parquet footer, row count.
pub fn verify(ctx: &crate::engine::Ctx, id: Option<&str>) -> Result<Vec<FileStatus>> {
    let ids = match id {
        Some(id) => {
            crate::repo::layout::validate_id(id)?;
            if !ctx.repo.exists(id)? {
                return Err(Error::SnapshotNotFound { id: id.to_string(), repo: ctx.repo.dir.clone() });
            }
            vec![id.to_string()]
        }
        None => {
            let mut ids = ctx.repo.list_ids()?;
            ids.sort();
            ids
        }
    };
    let mut out = Vec::new();
    // a file shared by many snapshots is read once
    let mut checked: std::collections::HashMap<crate::repo::manifest::FileRef, (&'static str, String)> = Default::default();
    for id in ids {
        let line = |file: &str, status, detail: String| FileStatus { snapshot_id: id.clone(), file: file.into(), status, detail };
        let m = match crate::repo::manifest::load(&ctx.repo, &id) {
            Ok(m) => m,
            Err(e) => {
                out.push(line(crate::repo::layout::METADATA_FILE, "corrupt", e.one_line()));
                continue;
            }
        };
        for t in &m.tables {
            let layers = t.effective_layers(&id);
            let whole = layers.len() == 1;
            for l in layers {
                let label = if l.snapshot == id { l.file.clone() } else { format!("{}/{}", l.snapshot, l.file) };
                let key = l.file_ref();
                let (status, detail) = match checked.get(&key) {
                    Some(done) => done.clone(),
                    None => {
                        let done = check_file(ctx, &l)?;
                        checked.insert(key, done.clone());
                        done
                    }
                };
                // one file is the whole table: its rows are the table's rows
                let (status, detail) = if whole && status == "ok" && l.rows != t.row_count {
                    ("mismatch", format!("{} rows in the file, metadata says {}", l.rows, t.row_count))
                } else {
                    (status, detail)
                };
                out.push(line(&label, status, detail));
            }
        }
    }
    Ok(out)
}

/// Status and detail of one stored file: checksum, then the Parquet footer's row count. A
/// repository that cannot be read (a bucket out of reach) is an error of the whole call,
/// never a verdict on the file.
fn check_file(ctx: &crate::engine::Ctx, l: &Layer) -> Result<(&'static str, String)> {
    match check_layer(&ctx.repo, l, true) {
        Err(Error::MissingFile { .. }) => return Ok(("missing", "file does not exist".into())),
        Err(Error::CorruptFile { detail, .. }) => return Ok(("corrupt", detail)),
        Err(e @ (Error::Remote { .. } | Error::Input(_) | Error::Io { .. })) => return Err(e),
        Err(e) => return Ok(("corrupt", e.one_line())),
        Ok(()) => {}
    }
    let path = ctx.repo.data_path(l);
    let sql = format!("SELECT sum(num_rows) FROM parquet_file_metadata({})", crate::engine::sql::literal(&path));
    match ctx.db.query(&sql) {
        Err(e) => Ok(("corrupt", format!("unreadable Parquet footer: {}", e.one_line()))),
        Ok(rows) => {
            let n = rows.scalar().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            if n == l.rows {
                Ok(("ok", format!("checksum ok, {n} rows")))
            } else {
                Ok(("mismatch", format!("{n} rows in the file, metadata says {}", l.rows)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// Not a timed assertion: prints the hashing throughput for the record (run with --nocapture).
    #[test]
    #[ignore]
    fn checksum_throughput() {
        let path = std::path::Path::new("/tmp/h.parquet");
        if !path.exists() {
            return;
        }
        let t = std::time::Instant::now();
        let (_, size) = super::file_checksum(path).unwrap();
        eprintln!("sha256: {:.0} MB/s", size as f64 / 1e6 / t.elapsed().as_secs_f64());
    }
}
