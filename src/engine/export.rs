//! `snapshot_export`: writes a self-contained ADR-004 folder — metadata.json plus one Parquet
//! file per table — for archiving or for another engine. Files are verified against their
//! checksums first; the folder appears atomically (written under a temporary name, renamed).

use std::fs;
use std::path::Path;

use crate::engine::sql::literal;
use crate::engine::verify::{check_entry, file_checksum};
use crate::engine::Ctx;
use crate::error::{Error, Result};
use crate::repo::layout::METADATA_FILE;
use crate::repo::manifest::load;
use crate::repo::publish::{publish_dir, sync_file, write_atomic};

#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub snapshot_id: String,
    pub path: String,
    pub files: u64,
    pub bytes: u64,
}

pub fn export(ctx: &Ctx, id: &str, target: &Path) -> Result<Exported> {
    let m = load(&ctx.repo, id)?;
    for t in &m.tables {
        check_entry(&ctx.repo, &m, t, true)?;
    }
    let target = crate::repo::layout::absolute(target);
    if target.exists() && fs::read_dir(&target).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(Error::Input(format!("export target {} already exists and is not empty; choose a new folder", target.display())));
    }
    let parent = target.parent().ok_or_else(|| Error::Input(format!("export target {} has no parent folder", target.display())))?;
    let unwritable = |e: std::io::Error| Error::Input(format!("cannot write the export to {}: {e}; choose a folder you can write to", target.display()));
    fs::create_dir_all(parent).map_err(unwritable)?;
    let tmp = parent.join(format!(".snapshot-export-{}-{}", std::process::id(), crate::engine::now_micros()));
    fs::create_dir(&tmp).map_err(unwritable)?;
    let written = (|| {
        let mut bytes = 0;
        let mut out = m.clone();
        for t in out.tables.iter_mut() {
            // one self-contained Parquet file per table, as ADR-004 lays it out
            let layers = t.effective_layers(id);
            // the base file's name is unique within the snapshot (it is the table's own name)
            let file = layers[0].file.clone();
            let to = tmp.join(&file);
            if layers.len() == 1 && layers[0].rowids.as_deref() != Some("column") {
                fs::copy(crate::engine::layers::layer_path(&ctx.repo, &layers[0]), &to).map_err(|e| Error::io(&to, e))?;
            } else {
                // merged in row order, written in the stored types the metadata describes
                let version = crate::engine::layers::Version::new(&ctx.repo, &layers, &t.schema.columns);
                let all: Vec<usize> = (0..t.schema.columns.len()).collect();
                // a parallel sort by row id: faster here than the single-threaded merge (measured
                // 5.5 s vs 9.5 s restoring 10M rows with 10 deltas; 4.3 s for one file)
                let from = version.from_sql(true);
                let read = crate::engine::types::select_sql(&t.schema.columns, &all, &from);
                ctx.db.exec(&format!(
                    "COPY (SELECT {} FROM ({read})) TO {} (FORMAT PARQUET, COMPRESSION ZSTD)",
                    crate::engine::types::write_list(&t.schema.columns),
                    literal(&to.to_string_lossy())
                ))?;
            }
            sync_file(&to)?;
            let (checksum, size) = file_checksum(&to)?;
            bytes += size;
            t.file = file;
            t.checksum = checksum;
            t.size_bytes = size;
            t.layers.clear();
            t.index = None;
            t.parent_id = None;
            t.status = crate::repo::manifest::TableStatus::Stored;
            t.bytes_written = size;
            t.bytes_reused = 0;
        }
        out.parent_id = None;
        let meta = out.to_json();
        bytes += meta.len() as u64;
        write_atomic(&tmp.join(METADATA_FILE), &meta)?;
        if target.exists() {
            fs::remove_dir(&target).map_err(|e| Error::io(&target, e))?;
        }
        publish_dir(&tmp, &target)?;
        Ok(bytes)
    })();
    match written {
        Ok(bytes) => Ok(Exported {
            snapshot_id: m.snapshot_id.clone(),
            path: target.to_string_lossy().into_owned(),
            files: m.tables.len() as u64 + 1,
            bytes,
        }),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}
