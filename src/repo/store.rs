//! Every storage operation on a repository, for both kinds: a local folder (POSIX renames
//! and fsync) and a bucket prefix (objects, published by a conditional create of
//! metadata.json, data read through the local cache). The engine calls only these, so it
//! never knows which kind it talks to.
//!
//! Publication rules (docs/format.md): a snapshot is listed once its metadata.json exists;
//! every file it references is written before that; dropping removes metadata.json first
//! (or replaces it by retired.json while other snapshots still read some of its files).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::repo::cache::Cache;
use crate::repo::layout::{encode_component, validate_id, Repo, DEL_PREFIX, LOCK_FILE, METADATA_FILE, RETIRED_FILE, TMP_PREFIX};
use crate::repo::manifest::Layer;
use crate::repo::publish::{file_checksum, publish_dir, sync_dir};
use crate::repo::remote::{Listed, Remote, S3Settings};

pub const PIN_FILE: &str = "pinned";

/// The manifest index of a bucket repository: a cache of published manifests in a few
/// objects, so a new process lists 1,000 snapshots with a handful of requests instead of
/// one per snapshot. Never authoritative: an entry is used only when its metadata.json's
/// ETag and size in the bucket listing match it; anything else is read from metadata.json.
/// Writers (holding the lock) add one segment per published snapshot and fold the segments
/// into one base object every `FOLD_AT` segments. Every failure here is ignored.
mod index {
    use std::collections::HashMap;

    use serde::{Deserialize, Serialize};

    use crate::repo::layout::METADATA_FILE;
    use crate::repo::remote::{Listed, Remote};

    pub const DIR: &str = ".index";
    const FOLD_AT: usize = 64;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        id: String,
        etag: String,
        size: u64,
        /// metadata.json's modification time (seconds), for stores whose listings carry no
        /// ETag (s3s-fs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        modified: Option<i64>,
        metadata: String,
    }

    /// What the index recorded for a snapshot's metadata.json.
    pub struct Found {
        etag: String,
        size: u64,
        modified: Option<i64>,
        pub metadata: Vec<u8>,
    }

    impl Found {
        /// True when the listing shows the very metadata.json this entry recorded: same ETag
        /// and size, or (a listing without ETags) same modification second and size.
        pub fn matches(&self, listed_etag: &str, listed_secs: i64, listed_size: u64) -> bool {
            listed_size == self.size
                && if listed_etag.trim().is_empty() { self.modified == Some(listed_secs) } else { same_etag(listed_etag, &self.etag) }
        }
    }

    #[derive(Serialize, Deserialize, Default)]
    struct Segment {
        entries: Vec<Entry>,
    }

    pub fn same_etag(a: &str, b: &str) -> bool {
        let t = |s: &str| s.trim().trim_matches('"').trim_start_matches("W/").trim_matches('"').to_string();
        !a.is_empty() && t(a) == t(b)
    }

    /// After publishing `id` (its metadata.json written with `etag`): adds a segment, and
    /// folds the segments into a new base when there are many.
    pub fn record(remote: &Remote, id: &str, etag: Option<&str>, metadata: &[u8]) {
        let (Some(etag), Ok(text)) = (etag, std::str::from_utf8(metadata)) else { return };
        let modified = remote.head_modified(&format!("{id}/{METADATA_FILE}")).ok().flatten();
        let seg = Segment {
            entries: vec![Entry { id: id.to_string(), etag: etag.to_string(), size: metadata.len() as u64, modified, metadata: text.to_string() }],
        };
        let Ok(body) = serde_json::to_vec(&seg) else { return };
        let now = crate::repo::manifest::now_micros();
        if remote.put(&format!("{DIR}/{now:020}-{id}.json"), body, false).is_err() {
            return;
        }
        let Ok(parts) = remote.list(&format!("{DIR}/")) else { return };
        if parts.iter().filter(|l| !l.rel.contains("/base-")).count() < FOLD_AT {
            return;
        }
        let Ok(listing) = remote.list("") else { return };
        // fold: every entry still published with the same metadata, into one base
        let published: HashMap<&str, &Listed> = listing
            .iter()
            .filter_map(|l| {
                let (sid, f) = l.rel.split_once('/')?;
                (f == METADATA_FILE).then_some((sid, l))
            })
            .collect();
        let rels: Vec<String> = parts.iter().map(|l| l.rel.clone()).collect();
        let mut keep: HashMap<String, Entry> = HashMap::new();
        for got in remote.get_many(&rels).into_iter().flatten().flatten() {
            let Ok(seg) = serde_json::from_slice::<Segment>(&got) else { continue };
            for e in seg.entries {
                let found = Found { etag: e.etag.clone(), size: e.size, modified: e.modified, metadata: Vec::new() };
                if published.get(e.id.as_str()).is_some_and(|l| found.matches(&l.stamp.2, l.stamp.0, l.size)) {
                    keep.insert(e.id.clone(), e);
                }
            }
        }
        let base = Segment { entries: keep.into_values().collect() };
        let Ok(body) = serde_json::to_vec(&base) else { return };
        if remote.put(&format!("{DIR}/base-{now:020}.json"), body, false).is_ok() {
            let _ = remote.delete(&rels);
        }
    }

    /// Every entry the index holds (id -> ETag, size, metadata bytes), from the objects the
    /// bucket listing shows.
    pub fn lookup(remote: &Remote, listing: &[Listed]) -> HashMap<String, Found> {
        let rels: Vec<String> = listing.iter().filter(|l| l.rel.starts_with(&format!("{DIR}/"))).map(|l| l.rel.clone()).collect();
        let mut out = HashMap::new();
        if rels.is_empty() {
            return out;
        }
        for got in remote.get_many(&rels).into_iter().flatten().flatten() {
            let Ok(seg) = serde_json::from_slice::<Segment>(&got) else { continue };
            for e in seg.entries {
                out.insert(e.id, Found { etag: e.etag, size: e.size, modified: e.modified, metadata: e.metadata.into_bytes() });
            }
        }
        out
    }
}

/// A bucket prefix holding one project's snapshots, with the cache its files are read through.
#[derive(Debug)]
pub struct RemoteRepo {
    pub remote: Remote,
    pub cache: Cache,
    /// The listing made during this call, dropped by every write.
    listing: Mutex<Option<Arc<Vec<Listed>>>>,
    /// Uploads of a snapshot being written, started as each table's files are complete.
    uploads: Mutex<Option<Uploader>>,
    /// Set once this call holds the writer lock: it lists the bucket afresh (gc must see
    /// objects other tools left, a drop must plan against what is there).
    writer: std::sync::atomic::AtomicBool,
}

/// Two threads uploading staged files while DuckDB writes the next table.
struct Uploader {
    queue: Option<std::sync::mpsc::Sender<(String, PathBuf)>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// Keys handed over, and the first failure.
    sent: std::collections::HashSet<String>,
    failed: Arc<Mutex<Option<Error>>>,
}

impl std::fmt::Debug for Uploader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uploader({} files)", self.sent.len())
    }
}

impl Uploader {
    fn start(remote: Arc<RemoteRepo>) -> Uploader {
        let (tx, rx) = std::sync::mpsc::channel::<(String, PathBuf)>();
        let rx = Arc::new(Mutex::new(rx));
        let failed: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let workers = (0..2)
            .filter_map(|_| {
                let (rx, failed, remote) = (rx.clone(), failed.clone(), remote.clone());
                std::thread::Builder::new()
                    .name("snapshot-upload".into())
                    .spawn(move || loop {
                        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((rel, path)) = next else { return };
                        if failed.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                            continue;
                        }
                        if let Err(e) = remote.remote.upload(&rel, &path) {
                            failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        }
                    })
                    .ok()
            })
            .collect();
        Uploader { queue: Some(tx), workers, sent: Default::default(), failed }
    }

    /// Waits for every upload handed over; the first failure, if any.
    fn finish(mut self) -> (std::collections::HashSet<String>, Option<Error>) {
        self.queue.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner()).take();
        (std::mem::take(&mut self.sent), failed)
    }
}

/// What identifies one version of a snapshot's metadata.json (a re-created snapshot has
/// another), so a parsed manifest can be reused while it is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    Local(u64, u64, i64, i64),
    Remote(i64, u32, String, u64),
}

/// Replaced by every writer after each change of a bucket repository, so readers can tell
/// cheaply (one HEAD) that their listing still holds.
pub const GENERATION_FILE: &str = ".generation";
const LISTING_TTL: std::time::Duration = std::time::Duration::from_secs(30);

type Listings = HashMap<String, (String, std::time::Instant, Arc<Vec<Listed>>)>;
static LISTINGS: Mutex<Option<Listings>> = Mutex::new(None);

/// Replaces `.generation` when a change of a bucket repository ends.
struct Changed<'a>(&'a Repo);

impl Drop for Changed<'_> {
    fn drop(&mut self) {
        if let Some(r) = &self.0.remote {
            r.listing.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(c) = LISTINGS.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                c.remove(&r.remote.url(""));
            }
            let body = format!("{} {}", crate::repo::manifest::now_micros(), std::process::id());
            let _ = r.remote.put(GENERATION_FILE, body.into_bytes(), false);
        }
    }
}

/// A folder being written: files go to `dir`, then `publish` makes the snapshot appear.
#[derive(Debug)]
pub struct Staging {
    pub dir: PathBuf,
}

/// One top-level entry of a repository, as gc sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    /// Files directly inside (name, size); for a file entry, itself.
    pub files: Vec<(String, u64)>,
}

impl Repo {
    /// Opens the repository at `root` (a folder, or `s3://bucket/prefix`) for `project`.
    pub fn open(root: &str, project: &str, s3: &S3Settings, cache: Cache) -> Result<Repo> {
        if root.starts_with("s3://") {
            let (bucket, prefix) = crate::repo::remote::parse_url(root)?;
            let project_dir = encode_component(project);
            let base = if prefix.is_empty() { project_dir.clone() } else { format!("{prefix}/{project_dir}") };
            let remote = Remote::open(s3, &bucket, &base)?;
            let root_url = if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
            let dir = PathBuf::from(format!("{root_url}/{project_dir}"));
            Ok(Repo {
                root: PathBuf::from(root_url),
                project_id: project.to_string(),
                dir,
                remote: Some(Arc::new(RemoteRepo {
                    remote,
                    cache,
                    listing: Mutex::new(None),
                    uploads: Mutex::new(None),
                    writer: std::sync::atomic::AtomicBool::new(false),
                })),
            })
        } else {
            Ok(Repo::new(crate::repo::layout::absolute(Path::new(root)), project))
        }
    }

    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Where a snapshot lives, for listings and messages.
    pub fn snapshot_location(&self, id: &str) -> String {
        format!("{}/{id}", self.dir.display())
    }

    /// The bucket's objects: listed once per call; across calls of this process reused while
    /// `.generation` (which every writer replaces after a change) is the same and the
    /// listing is younger than `LISTING_TTL` (a writer that died between its change and the
    /// replacement is noticed within that).
    fn remote_listing(r: &RemoteRepo) -> Result<Arc<Vec<Listed>>> {
        if let Some(l) = r.listing.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok(l.clone());
        }
        let url = r.remote.url("");
        let generation = r.remote.head_etag(GENERATION_FILE)?;
        let writer = r.writer.load(std::sync::atomic::Ordering::SeqCst);
        let reused = generation.as_ref().filter(|_| !writer).and_then(|g| {
            let cache = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .as_ref()
                .and_then(|c| c.get(&url))
                .filter(|(etag, at, _)| etag == g && at.elapsed() < LISTING_TTL)
                .map(|(_, _, l)| l.clone())
        });
        let l = match reused {
            Some(l) => l,
            None => {
                let l = Arc::new(r.remote.list("")?);
                if let Some(g) = generation {
                    LISTINGS.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(Default::default).insert(url, (g, std::time::Instant::now(), l.clone()));
                }
                l
            }
        };
        *r.listing.lock().unwrap_or_else(|p| p.into_inner()) = Some(l.clone());
        Ok(l)
    }

    /// Marks the start of a change: listings are dropped now, and when the returned guard
    /// goes (the change done or failed) a bucket's `.generation` is replaced.
    fn changed(&self) -> Changed<'_> {
        if let Some(r) = &self.remote {
            r.listing.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(c) = LISTINGS.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                c.remove(&r.remote.url(""));
            }
        }
        Changed(self)
    }

    /// Makes sure the repository can be written (creates the local folder).
    pub fn ensure(&self) -> Result<()> {
        match &self.remote {
            None => fs::create_dir_all(&self.dir).map_err(|e| Error::Unwritable { path: self.dir.clone(), source: e }),
            Some(_) => Ok(()),
        }
    }

    /// True when a published snapshot with this id exists.
    pub fn exists(&self, id: &str) -> Result<bool> {
        match &self.remote {
            None => Ok(self.metadata_path(id).is_file()),
            Some(r) => Ok(r.remote.head(&format!("{id}/{METADATA_FILE}"))?.is_some()),
        }
    }

    /// True when a folder of this name exists (published, retired or half written).
    pub fn folder_exists(&self, id: &str) -> Result<bool> {
        match &self.remote {
            None => Ok(self.snapshot_dir(id).exists()),
            Some(r) => Ok(!r.remote.list(&format!("{id}/"))?.is_empty()),
        }
    }

    /// The project folder's entries; None when the folder does not exist yet.
    fn folder_entries(&self) -> Result<Option<fs::ReadDir>> {
        match fs::read_dir(&self.dir) {
            Ok(e) => Ok(Some(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&self.dir, e)),
        }
    }

    /// Published snapshots with what identifies their metadata's version.
    pub fn metadata_stamps(&self) -> Result<Vec<(String, Stamp)>> {
        match &self.remote {
            None => {
                let Some(entries) = self.folder_entries()? else { return Ok(Vec::new()) };
                let mut out = Vec::new();
                for entry in entries.filter_map(|e| e.ok()) {
                    let Some(id) = entry.file_name().to_str().map(str::to_string) else { continue };
                    if validate_id(&id).is_err() {
                        continue;
                    }
                    let Ok(meta) = fs::metadata(entry.path().join(METADATA_FILE)) else { continue };
                    if !meta.is_file() {
                        continue;
                    }
                    out.push((id, Stamp::Local(meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec())));
                }
                Ok(out)
            }
            Some(r) => Ok(Self::remote_listing(r)?
                .iter()
                .filter_map(|l| {
                    let (id, file) = l.rel.split_once('/')?;
                    (file == METADATA_FILE && validate_id(id).is_ok())
                        .then(|| (id.to_string(), Stamp::Remote(l.stamp.0, l.stamp.1, l.stamp.2.clone(), l.size)))
                })
                .collect()),
        }
    }

    /// Ids of all published snapshots.
    pub fn list_ids(&self) -> Result<Vec<String>> {
        Ok(self.metadata_stamps()?.into_iter().map(|(id, _)| id).collect())
    }

    /// The stamp of one snapshot's metadata, or None when it is not published.
    pub fn metadata_stamp(&self, id: &str) -> Result<Option<Stamp>> {
        match &self.remote {
            None => match fs::metadata(self.metadata_path(id)) {
                Ok(m) => Ok(Some(Stamp::Local(m.ino(), m.len(), m.mtime(), m.mtime_nsec()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(self.metadata_path(id), e)),
            },
            // a bucket has no cheap stat: the manifest is read again (small, one request)
            Some(_) => Ok(None),
        }
    }

    /// A snapshot's metadata.json, or None when it is not published.
    pub fn read_metadata(&self, id: &str) -> Result<Option<Vec<u8>>> {
        validate_id(id)?;
        match &self.remote {
            None => match fs::read(self.metadata_path(id)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(self.metadata_path(id), e)),
            },
            Some(r) => r.remote.get(&format!("{id}/{METADATA_FILE}")),
        }
    }

    /// Several snapshots' metadata, each of the version its stamp names. A bucket's are
    /// read in parallel and kept in the local cache (metadata.json never changes once
    /// published; a new one has another stamp), so a new process lists from the cache.
    pub fn read_metadata_many(&self, wanted: &[(String, Stamp)]) -> Vec<Result<Option<Vec<u8>>>> {
        let Some(r) = &self.remote else {
            return wanted.iter().map(|(id, _)| self.read_metadata(id)).collect();
        };
        let dir = r.cache.dir.join("manifests");
        let path_of = |id: &str, stamp: &Stamp| {
            use sha2::{Digest, Sha256};
            let key = format!("{}/{id}/{stamp:?}", r.remote.url(""));
            let hex: String = Sha256::digest(key.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
            dir.join(format!("{hex}.json"))
        };
        // a cached manifest is written whole or not at all (another process may read it)
        let keep = |id: &str, stamp: &Stamp, bytes: &[u8]| {
            let _ = fs::create_dir_all(&dir);
            let path = path_of(id, stamp);
            let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
            if fs::write(&tmp, bytes).is_ok() {
                let _ = fs::rename(&tmp, &path);
            }
        };
        let mut out: Vec<Option<Result<Option<Vec<u8>>>>> = wanted.iter().map(|(id, s)| fs::read(path_of(id, s)).ok().map(|b| Ok(Some(b)))).collect();
        // the manifest index answers most of the rest in a few requests
        if out.iter().any(|o| o.is_none()) {
            if let Ok(listing) = Self::remote_listing(r) {
                let found = index::lookup(&r.remote, &listing);
                for (i, (id, stamp)) in wanted.iter().enumerate() {
                    if out[i].is_some() {
                        continue;
                    }
                    if let (Stamp::Remote(secs, _, etag, size), Some(f)) = (stamp, found.get(id)) {
                        if f.matches(etag, *secs, *size) {
                            keep(id, stamp, &f.metadata);
                            out[i] = Some(Ok(Some(f.metadata.clone())));
                        }
                    }
                }
            }
        }
        let missing: Vec<usize> = (0..wanted.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let rels: Vec<String> = missing.iter().map(|&i| format!("{}/{METADATA_FILE}", wanted[i].0)).collect();
            for (&i, got) in missing.iter().zip(r.remote.get_many(&rels)) {
                if let Ok(Some(bytes)) = &got {
                    keep(&wanted[i].0, &wanted[i].1, bytes);
                }
                out[i] = Some(got);
            }
        }
        out.into_iter().map(|o| o.unwrap_or(Ok(None))).collect()
    }

    /// The files directly inside a snapshot folder, with sizes, sorted.
    pub fn folder_files(&self, id: &str) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        match &self.remote {
            None => {
                let dir = self.snapshot_dir(id);
                for e in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?.filter_map(|e| e.ok()) {
                    let size = e.metadata().map(|m| if m.is_dir() { 0 } else { m.len() }).unwrap_or(0);
                    out.push((e.file_name().to_string_lossy().into_owned(), size));
                }
            }
            Some(r) => {
                let prefix = format!("{id}/");
                for l in Self::remote_listing(r)?.iter() {
                    if let Some(name) = l.rel.strip_prefix(&prefix) {
                        if !name.contains('/') {
                            out.push((name.to_string(), l.size));
                        }
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Folders of dropped snapshots kept for files other snapshots share.
    pub fn retired_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|e| e.is_dir && validate_id(&e.name).is_ok())
            .filter(|e| e.files.iter().any(|(f, _)| f == RETIRED_FILE) && !e.files.iter().any(|(f, _)| f == METADATA_FILE))
            .map(|e| e.name)
            .collect())
    }

    /// A small file of a snapshot folder (an index or sketch), or None.
    pub fn read_small(&self, snapshot: &str, file: &str) -> Option<Vec<u8>> {
        match &self.remote {
            None => fs::read(self.snapshot_dir(snapshot).join(file)).ok(),
            Some(r) => r.remote.get(&format!("{snapshot}/{file}")).ok().flatten(),
        }
    }

    /// The local path DuckDB reads a data file at. For a bucket: its place in the cache,
    /// fetched (and verified) when not there yet; a failed fetch shows up when it is read.
    pub fn data_path(&self, l: &Layer) -> String {
        match &self.remote {
            None => self.snapshot_dir(&l.snapshot).join(&l.file).to_string_lossy().into_owned(),
            Some(r) => {
                let path = r.cache.object_path(&l.checksum, &l.file);
                if path.is_file() {
                    Cache::touch(&path);
                } else {
                    let _ = self.fetch(r, l, &path);
                }
                path.to_string_lossy().into_owned()
            }
        }
    }

    /// Keeps a bucket's data file in the cache for the rest of this process (a mount's
    /// views name it).
    pub fn keep_cached(&self, l: &Layer) {
        if let Some(r) = &self.remote {
            crate::repo::cache::hold(&r.cache.object_path(&l.checksum, &l.file));
        }
    }

    /// Downloads a data file into the cache, admitting it only when size and checksum match.
    fn fetch(&self, r: &RemoteRepo, l: &Layer, target: &Path) -> Result<()> {
        let tmp = r.cache.temp_path("download")?;
        let rel = format!("{}/{}", l.snapshot, l.file);
        let got = r.remote.download(&rel, &tmp, Some(l.size_bytes));
        let result = match got {
            Ok(None) => Err(Error::MissingFile { id: l.snapshot.clone(), file: l.file.clone() }),
            Ok(Some((sum, size))) => {
                if size != l.size_bytes {
                    Err(Error::CorruptFile { id: l.snapshot.clone(), file: l.file.clone(), detail: format!("size {size} bytes, expected {}", l.size_bytes) })
                } else if sum != l.checksum {
                    Err(Error::CorruptFile { id: l.snapshot.clone(), file: l.file.clone(), detail: "checksum mismatch".into() })
                } else {
                    r.cache.admit(&tmp, target)
                }
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Checks one stored file: present, right size, and (if `full`, or never verified in
    /// this process) the right checksum. A bucket's file is verified as it enters the cache;
    /// `full` fetches it again.
    pub fn check_file(&self, l: &Layer, full: bool) -> Result<()> {
        match &self.remote {
            None => check_local(self, l, full),
            Some(r) => {
                let path = r.cache.object_path(&l.checksum, &l.file);
                if !full && fs::metadata(&path).is_ok_and(|m| m.len() == l.size_bytes) {
                    Cache::touch(&path);
                    return Ok(());
                }
                let _ = fs::remove_file(&path);
                self.fetch(r, l, &path)
            }
        }
    }

    /// True when staged files become the repository's files by a rename (so they must be
    /// durable before publication); a bucket's are uploaded instead.
    pub fn stages_in_place(&self) -> bool {
        self.remote.is_none()
    }

    /// A new folder to write snapshot `id` in.
    pub fn stage(&self, id: &str, now: i64) -> Result<Staging> {
        let name = format!("{TMP_PREFIX}{id}-{}-{now}", std::process::id());
        match &self.remote {
            None => {
                self.ensure()?;
                let dir = self.dir.join(name);
                fs::create_dir(&dir).map_err(|e| Error::Unwritable { path: self.dir.clone(), source: e })?;
                Ok(Staging { dir })
            }
            Some(r) => {
                let dir = r.cache.staging_dir().join(format!("{}{name}", encode_component(&self.project_id)));
                fs::create_dir_all(&dir).map_err(|e| r.cache.unwritable(e))?;
                Ok(Staging { dir })
            }
        }
    }

    /// Says that these files of a staged snapshot are complete: a bucket starts uploading
    /// them now, while the next table is written.
    pub fn staged(&self, staging: &Path, id: &str, files: &[String]) {
        let Some(r) = &self.remote else { return };
        let mut guard = r.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let up = guard.get_or_insert_with(|| Uploader::start(r.clone()));
        for f in files {
            let path = staging.join(f);
            if !path.is_file() || !up.sent.insert(f.clone()) {
                continue;
            }
            if let Some(q) = &up.queue {
                let _ = q.send((format!("{id}/{f}"), path));
            }
        }
    }

    /// Removes a staging folder that will not be published (and what was uploaded of it:
    /// without metadata.json nothing lists it, but gc would have to find it).
    pub fn discard(&self, staging: Staging) {
        if let Some(r) = &self.remote {
            let up = r.uploads.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(up) = up {
                let id = staging_id(&staging.dir);
                let (sent, _) = up.finish();
                if let Some(id) = id {
                    let _ = r.remote.delete(&sent.iter().map(|f| format!("{id}/{f}")).collect::<Vec<_>>());
                }
            }
        }
        let _ = fs::remove_dir_all(&staging.dir);
    }

    /// Publishes a staged snapshot whose metadata.json is written: never replaces one.
    /// A bucket gets every other file first, then metadata.json by a conditional create.
    pub fn publish(&self, staging: Staging, id: &str) -> Result<()> {
        let _changed = self.changed();
        let Some(r) = &self.remote else {
            return publish_dir(&staging.dir, &self.snapshot_dir(id)).inspect_err(|_| {
                let _ = fs::remove_dir_all(&staging.dir);
            });
        };
        let result = self.publish_remote(r, &staging, id);
        let _ = fs::remove_dir_all(&staging.dir);
        result
    }

    fn publish_remote(&self, r: &RemoteRepo, staging: &Staging, id: &str) -> Result<()> {
        // uploads started while the tables were written: all ended before anything returns
        let (sent, failed) = match r.uploads.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(up) => up.finish(),
            None => Default::default(),
        };
        if let Some(e) = failed {
            return Err(crate::repo::lock::explain(&self.dir, e));
        }
        crate::repo::lock::ensure_held(&self.dir)?;
        let mut files: Vec<(PathBuf, String, u64)> = Vec::new();
        for e in fs::read_dir(&staging.dir).map_err(|e| Error::io(&staging.dir, e))?.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == METADATA_FILE || name.starts_with('.') || sent.contains(&name) {
                continue;
            }
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            files.push((e.path(), name, size));
        }
        // largest first, a few at a time (each large one in parallel parts)
        files.sort_by(|a, b| b.2.cmp(&a.2));
        if let Err(e) = upload_all(&r.remote, id, &files) {
            return Err(crate::repo::lock::explain(&self.dir, e));
        }
        crate::repo::lock::ensure_held(&self.dir)?;
        let meta_path = staging.dir.join(METADATA_FILE);
        let meta = fs::read(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let Some(etag) = r.remote.put_mode(&format!("{id}/{METADATA_FILE}"), meta.clone(), object_store::PutMode::Create)? else {
            return Err(Error::DuplicateId { id: id.to_string(), repo: self.dir.clone() });
        };
        index::record(&r.remote, id, etag.as_deref(), &meta);
        // the data files just written are what the next read wants: keep them in the cache
        if let Ok(m) = crate::repo::manifest::Manifest::parse(id, &meta_path, &meta) {
            for t in &m.tables {
                for l in t.effective_layers(id).iter().filter(|l| l.snapshot == id) {
                    let target = r.cache.object_path(&l.checksum, &l.file);
                    let from = staging.dir.join(&l.file);
                    if from.is_file() && fs::create_dir_all(target.parent().unwrap_or(Path::new("."))).is_ok() {
                        let _ = r.cache.admit(&from, &target);
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes one file of a snapshot folder if present (a stale sketch).
    pub fn remove_file(&self, snapshot: &str, file: &str) {
        let _changed = self.changed();
        match &self.remote {
            None => {
                let _ = fs::remove_file(self.snapshot_dir(snapshot).join(file));
            }
            Some(r) => {
                let _ = r.remote.delete(&[format!("{snapshot}/{file}")]);
            }
        }
    }

    /// Unpublishes a snapshot whose folder stays for files others share: metadata.json
    /// becomes retired.json; then `remove` goes.
    pub fn retire(&self, id: &str, remove: &[String]) -> Result<()> {
        let _changed = self.changed();
        match &self.remote {
            None => {
                let dir = self.snapshot_dir(id);
                fs::rename(dir.join(METADATA_FILE), dir.join(RETIRED_FILE)).map_err(|e| Error::Unwritable { path: dir.clone(), source: e })?;
                sync_dir(&dir)?;
            }
            Some(r) => {
                let meta = r.remote.get(&format!("{id}/{METADATA_FILE}"))?.unwrap_or_default();
                r.remote.put(&format!("{id}/{RETIRED_FILE}"), meta, false)?;
                r.remote.delete(&[format!("{id}/{METADATA_FILE}")])?;
            }
        }
        self.remove_files(id, remove)
    }

    /// Removes files of a snapshot folder (missing ones are fine).
    pub fn remove_files(&self, id: &str, names: &[String]) -> Result<()> {
        let _changed = self.changed();
        match &self.remote {
            None => {
                let dir = self.snapshot_dir(id);
                for name in names {
                    let path = dir.join(name);
                    let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
                    match removed {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(&path, e)),
                    }
                }
                Ok(())
            }
            Some(r) => r.remote.delete(&names.iter().map(|n| format!("{id}/{n}")).collect::<Vec<_>>()),
        }
    }

    /// Removes a whole snapshot folder; it stops being listed first.
    pub fn delete_folder(&self, id: &str) -> Result<()> {
        let _changed = self.changed();
        match &self.remote {
            None => {
                let dir = self.snapshot_dir(id);
                let doomed = self.dir.join(format!("{DEL_PREFIX}{id}-{}-{}", std::process::id(), crate::repo::manifest::now_micros()));
                fs::rename(&dir, &doomed).map_err(|e| Error::Unwritable { path: self.dir.clone(), source: e })?;
                sync_dir(&self.dir)?;
                fs::remove_dir_all(&doomed).map_err(|e| Error::io(&doomed, e))
            }
            Some(r) => {
                r.remote.delete(&[format!("{id}/{METADATA_FILE}")])?;
                let rest: Vec<String> = r.remote.list(&format!("{id}/"))?.into_iter().map(|l| l.rel).collect();
                r.remote.delete(&rest)
            }
        }
    }

    pub fn is_pinned(&self, id: &str) -> bool {
        match &self.remote {
            None => self.snapshot_dir(id).join(PIN_FILE).is_file(),
            Some(r) => match Self::remote_listing(r) {
                Ok(l) => l.iter().any(|x| x.rel == format!("{id}/{PIN_FILE}")),
                Err(_) => r.remote.head(&format!("{id}/{PIN_FILE}")).ok().flatten().is_some(),
            },
        }
    }

    /// Pins or unpins a published snapshot; the caller holds the writer lock.
    pub fn set_pinned(&self, id: &str, pinned: bool) -> Result<()> {
        let _changed = self.changed();
        match &self.remote {
            None => {
                let dir = self.snapshot_dir(id);
                let marker = dir.join(PIN_FILE);
                if pinned {
                    crate::repo::publish::write_atomic(&marker, b"")
                } else {
                    match fs::remove_file(&marker) {
                        Ok(()) => sync_dir(&dir),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        Err(e) => Err(Error::io(&marker, e)),
                    }
                }
            }
            Some(r) => {
                let rel = format!("{id}/{PIN_FILE}");
                if pinned {
                    r.remote.put(&rel, Vec::new(), false).map(|_| ())
                } else {
                    r.remote.delete(&[rel])
                }
            }
        }
    }

    /// The writer lock (bounded wait).
    pub fn lock(&self, timeout: std::time::Duration) -> Result<crate::repo::lock::RepoLock> {
        match &self.remote {
            None => {
                self.ensure()?;
                crate::repo::lock::RepoLock::acquire(&self.lock_path(), timeout)
            }
            Some(r) => {
                let lock = crate::repo::lock::RepoLock::acquire_object(&r.remote, LOCK_FILE, &self.dir, timeout)?;
                r.writer.store(true, std::sync::atomic::Ordering::SeqCst);
                r.listing.lock().unwrap_or_else(|p| p.into_inner()).take();
                Ok(lock)
            }
        }
    }

    /// Every top-level entry (folders with their files), for gc.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        match &self.remote {
            None => {
                let Some(entries) = self.folder_entries()? else { return Ok(Vec::new()) };
                let mut out = Vec::new();
                for e in entries.filter_map(|e| e.ok()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let path = e.path();
                    if path.is_dir() {
                        let files = fs::read_dir(&path)
                            .map(|es| {
                                es.filter_map(|f| f.ok())
                                    .map(|f| (f.file_name().to_string_lossy().into_owned(), size_of(&f.path())))
                                    .collect()
                            })
                            .unwrap_or_default();
                        out.push(Entry { name, is_dir: true, files });
                    } else {
                        let size = size_of(&path);
                        out.push(Entry { name: name.clone(), is_dir: false, files: vec![(name, size)] });
                    }
                }
                Ok(out)
            }
            Some(r) => {
                let mut map: BTreeMap<String, Entry> = BTreeMap::new();
                for l in Self::remote_listing(r)?.iter() {
                    match l.rel.split_once('/') {
                        Some((dir, file)) => map
                            .entry(dir.to_string())
                            .or_insert_with(|| Entry { name: dir.to_string(), is_dir: true, files: Vec::new() })
                            .files
                            .push((file.to_string(), l.size)),
                        None => {
                            map.insert(l.rel.clone(), Entry { name: l.rel.clone(), is_dir: false, files: vec![(l.rel.clone(), l.size)] });
                        }
                    }
                }
                Ok(map.into_values().collect())
            }
        }
    }

    /// Where an entry (or a file inside it) is, for gc's report.
    pub fn entry_location(&self, name: &str, file: Option<&str>) -> String {
        match file {
            Some(f) => format!("{}/{name}/{f}", self.dir.display()),
            None => format!("{}/{name}", self.dir.display()),
        }
    }

    /// Removes an entry, or one file inside it.
    pub fn remove_entry(&self, e: &Entry, file: Option<&str>) -> Result<()> {
        let _changed = self.changed();
        match &self.remote {
            None => {
                let path = match file {
                    Some(f) => self.dir.join(&e.name).join(f),
                    None => self.dir.join(&e.name),
                };
                let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
                removed.map_err(|err| Error::io(&path, err))
            }
            Some(r) => match file {
                Some(f) => r.remote.delete(&[format!("{}/{f}", e.name)]),
                None if !e.is_dir => r.remote.delete(std::slice::from_ref(&e.name)),
                None => {
                    // metadata first, so a half-removed folder is never listed
                    let mut keys: Vec<String> = e.files.iter().map(|(f, _)| format!("{}/{f}", e.name)).collect();
                    keys.sort_by_key(|k| !k.ends_with(METADATA_FILE));
                    r.remote.delete(&keys)
                }
            },
        }
    }

    /// Size of a file of a snapshot folder, or None when it is not there.
    pub fn file_size(&self, snapshot: &str, file: &str) -> Result<Option<u64>> {
        match &self.remote {
            None => match fs::metadata(self.snapshot_dir(snapshot).join(file)) {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(self.snapshot_dir(snapshot).join(file), e)),
            },
            Some(r) => {
                let rel = format!("{snapshot}/{file}");
                match Self::remote_listing(r) {
                    Ok(l) => Ok(l.iter().find(|x| x.rel == rel).map(|x| x.size)),
                    Err(_) => r.remote.head(&rel),
                }
            }
        }
    }

    /// A local copy of a file of a snapshot folder, with its `sha256:` checksum; None when
    /// it is not there. `temp` says the path is a temporary download the caller removes.
    pub fn local_file(&self, snapshot: &str, file: &str) -> Result<Option<LocalFile>> {
        match &self.remote {
            None => {
                let path = self.snapshot_dir(snapshot).join(file);
                if !path.is_file() {
                    return Ok(None);
                }
                let (checksum, size) = file_checksum(&path)?;
                Ok(Some(LocalFile { path, checksum, size, temp: false }))
            }
            Some(r) => {
                let tmp = r.cache.temp_path("copy")?;
                let size = self.file_size(snapshot, file)?;
                match r.remote.download(&format!("{snapshot}/{file}"), &tmp, size)? {
                    None => Ok(None),
                    Some((checksum, size)) => Ok(Some(LocalFile { path: tmp, checksum, size, temp: true })),
                }
            }
        }
    }

    /// Writes a file into a snapshot folder (atomically: it appears whole or not at all).
    pub fn put_file(&self, snapshot: &str, file: &str, from: &Path) -> Result<()> {
        let _changed = self.changed();
        match &self.remote {
            None => {
                let dir = self.snapshot_dir(snapshot);
                fs::create_dir_all(&dir).map_err(|e| Error::Unwritable { path: self.dir.clone(), source: e })?;
                let tmp = dir.join(format!(".{file}.tmp-{}", std::process::id()));
                let done = fs::copy(from, &tmp)
                    .map_err(|e| Error::io(&tmp, e))
                    .and_then(|_| crate::repo::publish::sync_file(&tmp))
                    .and_then(|_| fs::rename(&tmp, dir.join(file)).map_err(|e| Error::io(dir.join(file), e)))
                    .and_then(|_| sync_dir(&dir));
                if done.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                done
            }
            Some(r) => r.remote.upload(&format!("{snapshot}/{file}"), from),
        }
    }

    /// Publishes a snapshot whose files are all in place by writing its metadata.json,
    /// never replacing one: false when it exists.
    pub fn publish_metadata(&self, id: &str, bytes: &[u8]) -> Result<bool> {
        let _changed = self.changed();
        match &self.remote {
            None => {
                let dir = self.snapshot_dir(id);
                fs::create_dir_all(&dir).map_err(|e| Error::Unwritable { path: self.dir.clone(), source: e })?;
                let tmp = dir.join(format!(".{METADATA_FILE}.tmp-{}", std::process::id()));
                crate::repo::publish::write_atomic(&tmp, bytes)?;
                let published = publish_dir(&tmp, &dir.join(METADATA_FILE));
                if published.is_err() {
                    let _ = fs::remove_file(&tmp);
                    if dir.join(METADATA_FILE).exists() {
                        return Ok(false);
                    }
                }
                published.map(|_| true)
            }
            Some(r) => {
                crate::repo::lock::ensure_held(&self.dir)?;
                match r.remote.put_mode(&format!("{id}/{METADATA_FILE}"), bytes.to_vec(), object_store::PutMode::Create)? {
                    Some(etag) => {
                        index::record(&r.remote, id, etag.as_deref(), bytes);
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
        }
    }

    /// A file at the top of the repository (beside the snapshot folders), such as
    /// repository.json; None when there is none.
    pub fn read_top(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match &self.remote {
            None => match fs::read(self.dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                // no repository there (yet): what writing it would meet is reported by the write
                Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => Ok(None),
                Err(e) => Err(Error::io(&self.dir.join(name), e)),
            },
            Some(r) => r.remote.get(name),
        }
    }

    /// Writes a file at the top of the repository, never replacing one: false when it exists.
    /// The caller holds the writer lock.
    pub fn create_top(&self, name: &str, bytes: &[u8]) -> Result<bool> {
        match &self.remote {
            None => {
                self.ensure()?;
                let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
                crate::repo::publish::write_atomic(&tmp, bytes)?;
                let published = publish_dir(&tmp, &self.dir.join(name));
                if published.is_err() {
                    let _ = fs::remove_file(&tmp);
                    if self.dir.join(name).exists() {
                        return Ok(false);
                    }
                }
                published.map(|_| true)
            }
            Some(r) => {
                crate::repo::lock::ensure_held(&self.dir)?;
                r.remote.put(name, bytes.to_vec(), true)
            }
        }
    }

    /// Whether a file of a snapshot folder (published or retired) is there (local only: a
    /// bucket answers true, its writers hold the lock throughout).
    pub fn has_file(&self, snapshot: &str, file: &str) -> bool {
        match &self.remote {
            None => self.snapshot_dir(snapshot).join(file).is_file(),
            Some(_) => true,
        }
    }

    /// A JSON file at the top of the repository with its own `format_version`: None when
    /// absent; a newer version than `newest`, or a file that does not parse, is refused
    /// naming the file and, for a damaged one, `remedy`.
    pub fn read_top_json<T: serde::de::DeserializeOwned>(&self, name: &str, newest: u32, remedy: &str) -> Result<Option<T>> {
        let Some(bytes) = self.read_top(name)? else { return Ok(None) };
        let location = format!("{}/{name}", self.dir.display());
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Input(format!("{location} is not valid JSON ({e}); {remedy}")))?;
        let version = value.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version > newest as u64 {
            return Err(Error::Input(format!(
                "{location} has format_version {version}, newer than this extension reads ({newest}); upgrade the snapshot extension"
            )));
        }
        serde_json::from_value(value).map(Some).map_err(|e| Error::Input(format!("{location} cannot be read ({e}); {remedy}")))
    }

    /// Writes or replaces a file at the top of the repository (temp file, fsync, rename; a
    /// bucket: one PUT). The caller holds the writer lock.
    pub fn replace_top(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let _changed = self.changed();
        match &self.remote {
            None => {
                self.ensure()?;
                crate::repo::publish::write_atomic(&self.dir.join(name), bytes)
            }
            Some(r) => {
                crate::repo::lock::ensure_held(&self.dir)?;
                r.remote.put(name, bytes.to_vec(), false).map(|_| ())
            }
        }
    }

    /// Marks a folder that holds files other snapshots read, without being a snapshot
    /// itself, as retired (what a drop leaves), so gc keeps it exactly while it is read.
    pub fn mark_retired(&self, id: &str, manifest: &[u8]) -> Result<()> {
        let files = self.folder_files(id)?;
        if files.iter().any(|(f, _)| f == METADATA_FILE || f == RETIRED_FILE) {
            return Ok(());
        }
        let _changed = self.changed();
        match &self.remote {
            None => crate::repo::publish::write_atomic(&self.snapshot_dir(id).join(RETIRED_FILE), manifest),
            Some(r) => r.remote.put(&format!("{id}/{RETIRED_FILE}"), manifest.to_vec(), false).map(|_| ()),
        }
    }

    /// Multipart uploads a writer started and never finished (killed mid-upload): no
    /// listing shows them, but the bucket keeps (and bills) their parts. Bucket only.
    pub fn unfinished_uploads(&self) -> Result<Vec<(String, String)>> {
        match &self.remote {
            None => Ok(Vec::new()),
            Some(r) => r.remote.unfinished_uploads(""),
        }
    }

    /// Aborts one of `unfinished_uploads`.
    pub fn abort_upload(&self, rel: &str, upload_id: &str) -> Result<()> {
        match &self.remote {
            None => Ok(()),
            Some(r) => r.remote.abort_upload(rel, upload_id),
        }
    }

    /// Staging folders in the local cache left by processes that are gone (bucket only).
    pub fn stale_staging(&self) -> Vec<(PathBuf, u64)> {
        let Some(r) = &self.remote else { return Vec::new() };
        let prefix = format!("{}{TMP_PREFIX}", encode_component(&self.project_id));
        let Ok(entries) = fs::read_dir(r.cache.staging_dir()) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let rest = name.strip_prefix(&prefix)?;
                // <id>-<pid>-<micros>
                let mut parts = rest.rsplitn(3, '-');
                let _micros = parts.next()?;
                let pid: i32 = parts.next()?.parse().ok()?;
                let alive = pid == std::process::id() as i32 || Path::new(&format!("/proc/{pid}")).exists();
                (!alive).then(|| (e.path(), size_of(&e.path())))
            })
            .collect()
    }
}

/// The snapshot id a staging folder was made for (`…<TMP_PREFIX><id>-<pid>-<micros>`).
fn staging_id(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    let rest = &name[name.find(TMP_PREFIX)? + TMP_PREFIX.len()..];
    let mut parts = rest.rsplitn(3, '-');
    parts.next()?;
    parts.next()?;
    parts.next().map(str::to_string)
}

fn size_of(path: &Path) -> u64 {
    if path.is_dir() {
        fs::read_dir(path).map(|es| es.filter_map(|e| e.ok()).map(|e| size_of(&e.path())).sum()).unwrap_or(0)
    } else {
        fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

/// A file of a repository available on the local disk.
#[derive(Debug)]
pub struct LocalFile {
    pub path: PathBuf,
    pub checksum: String,
    pub size: u64,
    pub temp: bool,
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if self.temp {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Uploads files to `<id>/<name>`: up to three at a time.
fn upload_all(remote: &Remote, id: &str, files: &[(PathBuf, String, u64)]) -> Result<()> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..3.min(files.len()) {
            s.spawn(|| loop {
                if failed.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                    return;
                }
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((path, name, _)) = files.get(i) else { return };
                if let Err(e) = remote.upload(&format!("{id}/{name}"), path) {
                    failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    return;
                }
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

static VERIFIED: Mutex<Option<std::collections::HashSet<(String, u64, i64, i64, String)>>> = Mutex::new(None);

fn check_local(repo: &Repo, l: &Layer, full: bool) -> Result<()> {
    let path = repo.snapshot_dir(&l.snapshot).join(&l.file);
    let meta = match fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::MissingFile { id: l.snapshot.clone(), file: l.file.clone() }),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let corrupt = |detail: String| Error::CorruptFile { id: l.snapshot.clone(), file: l.file.clone(), detail };
    if meta.len() != l.size_bytes {
        return Err(corrupt(format!("size {} bytes, expected {}", meta.len(), l.size_bytes)));
    }
    let key = (path.to_string_lossy().into_owned(), meta.len(), meta.mtime(), meta.mtime_nsec(), l.checksum.clone());
    if !full && VERIFIED.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|s| s.contains(&key)) {
        return Ok(());
    }
    let (sum, _) = file_checksum(&path)?;
    if sum != l.checksum {
        return Err(corrupt("checksum mismatch".into()));
    }
    VERIFIED.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(Default::default).insert(key);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn manifest_json(id: &str) -> Vec<u8> {
        format!(
            r#"{{"format_version":2,"snapshot_id":"{id}","project_id":"p","branch":"main","created_at":"2024-12-11T14:30:22.000000Z","created_by":"t","type":"manual","extension_version":"0","duckdb_version":"x","database":"db","scope":{{"kind":"tables"}},"tables":[]}}"#
        )
        .into_bytes()
    }

    /// The repository lifecycle every backend must follow.
    fn lifecycle(repo: &Repo) {
        assert!(repo.list_ids().unwrap().is_empty());
        let lock = repo.lock(Duration::from_secs(5)).unwrap();
        // a second writer waits, then gives up
        let err = repo.lock(Duration::from_millis(300)).err().expect("held");
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        let staging = repo.stage("s1", 1).unwrap();
        fs::write(staging.dir.join("main.t.parquet"), b"data").unwrap();
        fs::write(staging.dir.join(METADATA_FILE), manifest_json("s1")).unwrap();
        // not listed before publication
        assert!(repo.list_ids().unwrap().is_empty());
        repo.publish(staging, "s1").unwrap();
        assert_eq!(repo.list_ids().unwrap(), vec!["s1".to_string()]);
        assert!(repo.exists("s1").unwrap() && !repo.exists("s2").unwrap());
        assert_eq!(repo.read_metadata("s1").unwrap().unwrap(), manifest_json("s1"));
        assert_eq!(repo.folder_files("s1").unwrap(), vec![("main.t.parquet".into(), 4), (METADATA_FILE.to_string(), manifest_json("s1").len() as u64)]);
        // never replaces a published snapshot
        let again = repo.stage("s1", 2).unwrap();
        fs::write(again.dir.join(METADATA_FILE), manifest_json("s1")).unwrap();
        assert!(repo.publish(again, "s1").is_err());
        // pin
        assert!(!repo.is_pinned("s1"));
        repo.set_pinned("s1", true).unwrap();
        assert!(repo.is_pinned("s1"));
        repo.set_pinned("s1", false).unwrap();
        assert!(!repo.is_pinned("s1"));
        // retire: unlisted, its folder kept as retired
        repo.retire("s1", &[]).unwrap();
        assert!(repo.list_ids().unwrap().is_empty());
        assert_eq!(repo.retired_ids().unwrap(), vec!["s1".to_string()]);
        assert_eq!(repo.read_small("s1", "main.t.parquet").unwrap(), b"data");
        // copy-style publication: files, then metadata (create only)
        let tmp = tempfile::NamedTempFile::new().unwrap();
        fs::write(tmp.path(), b"xyz").unwrap();
        repo.put_file("s2", "main.t.parquet", tmp.path()).unwrap();
        assert_eq!(repo.file_size("s2", "main.t.parquet").unwrap(), Some(3));
        assert!(repo.publish_metadata("s2", &manifest_json("s2")).unwrap());
        assert!(!repo.publish_metadata("s2", &manifest_json("s2")).unwrap());
        let local = repo.local_file("s2", "main.t.parquet").unwrap().unwrap();
        assert_eq!(fs::read(&local.path).unwrap(), b"xyz");
        assert_eq!(local.size, 3);
        // an orphan folder (an upload without metadata) is an entry gc sees, and removes
        repo.put_file("ghost", "a.parquet", tmp.path()).unwrap();
        let entries = repo.entries().unwrap();
        let ghost = entries.iter().find(|e| e.name == "ghost").expect("listed");
        assert_eq!(ghost.files, vec![("a.parquet".to_string(), 3)]);
        repo.remove_entry(ghost, None).unwrap();
        assert!(!repo.entries().unwrap().iter().any(|e| e.name == "ghost"));
        repo.delete_folder("s1").unwrap();
        repo.delete_folder("s2").unwrap();
        assert!(repo.list_ids().unwrap().is_empty() && repo.retired_ids().unwrap().is_empty());
        drop(lock);
        repo.lock(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn lifecycle_on_a_folder() {
        let d = tempfile::tempdir().unwrap();
        let repo = Repo::open(&d.path().to_string_lossy(), "p", &S3Settings::default(), Cache::new(d.path().join("cache"), 1 << 30)).unwrap();
        lifecycle(&repo);
    }

    /// The same lifecycle on a moto server (the one the Makefile installs in .venv).
    #[test]
    fn lifecycle_on_the_test_server() {
        let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        assert!(python.exists(), "run `make venv` first: the test S3 server (moto) lives in .venv");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = std::process::Command::new(&python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let up = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "moto did not start");
        let s3 = S3Settings {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
            url_style: Some("path".into()),
            ..Default::default()
        };
        let d = tempfile::tempdir().unwrap();
        // moto creates a bucket on an (unsigned) PUT /bucket
        let created = (|| -> std::io::Result<String> {
            use std::io::{Read, Write};
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
            c.write_all(format!("PUT /unit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())?;
            let mut answer = String::new();
            c.read_to_string(&mut answer)?;
            Ok(answer)
        })();
        assert!(created.as_deref().is_ok_and(|a| a.starts_with("HTTP/1.1 200")), "bucket not created: {created:?}");
        let repo = Repo::open("s3://unit/pre", "p", &s3, Cache::new(d.path().join("cache"), 1 << 30)).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lifecycle(&repo);
            // a writer killed mid-upload leaves an unfinished multipart upload: listed, aborted
            let remote = &repo.remote.as_ref().unwrap().remote;
            remote.leave_unfinished_upload("dead/main.t.parquet");
            let pending = repo.unfinished_uploads().unwrap();
            assert_eq!(pending.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), vec!["dead/main.t.parquet"]);
            repo.abort_upload(&pending[0].0, &pending[0].1).unwrap();
            assert!(repo.unfinished_uploads().unwrap().is_empty());
        }));
        let _ = server.kill();
        let _ = server.wait();
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }
}
