//! An S3-compatible bucket as the repository's storage: the client (settings, then the AWS
//! environment variables, then the `~/.aws` profile), object operations with bounded
//! retries, and errors that name the bucket and key, say what to do and never carry a
//! secret. Keys are the local layout's relative paths under `s3://bucket/prefix/`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion,
    WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::repo::runtime::block_on;

/// The `snapshot_s3_*` settings as the caller set them (empty = not set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub url_style: Option<String>,
    pub use_ssl: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

/// Files above this size are uploaded in parts, several at once.
const MULTIPART_THRESHOLD: u64 = 16 << 20;
const PART_SIZE: usize = 16 << 20;
const PARALLEL_PARTS: usize = 6;
/// Attempts of a whole download (object_store retries each request; this covers a
/// connection dropped in the middle of a body).
const DOWNLOAD_ATTEMPTS: usize = 4;

/// `s3://bucket/prefix` split into bucket and prefix (no leading or trailing `/`).
pub fn parse_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| Error::Input(format!("'{url}' is not an s3:// URL; write it as s3://bucket/prefix")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() || !bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
        return Err(Error::Input(format!(
            "'{url}' does not name a bucket; write the repository as s3://bucket/prefix (bucket names: letters, digits, '-', '.')"
        )));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
        return Err(Error::Input(format!("'{url}': the prefix must not contain '.', '..' or empty parts")));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// One bucket prefix: the project folder of a repository, or a whole repository root.
pub struct Remote {
    store: Arc<AmazonS3>,
    pub bucket: String,
    /// Key prefix of every object (no trailing `/`; may be empty).
    pub base: String,
    /// What must never appear in a message.
    secrets: Vec<String>,
    endpoint: String,
    region: String,
    /// For requests object_store has no call for (listing unfinished multipart uploads).
    credential: Arc<object_store::aws::AwsCredential>,
    vhost: bool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote(s3://{}/{})", self.bucket, self.base)
    }
}

/// An object as listed: key relative to the base, size, and what identifies this version.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub rel: String,
    pub size: u64,
    pub stamp: (i64, u32, String),
}

/// Why an object-store request failed, read from the error itself — its transport failure,
/// HTTP status and S3 error code — never guessed from URLs, names or timings in its text.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    kind: FailKind,
    code: Option<String>,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum FailKind {
    Status(u16),
    Connect,
    Timeout,
    /// The connection broke while a body was sent or received.
    Transfer,
    /// A local file operation (the cache, the staged file).
    Local,
    #[default]
    Other,
}

impl Failure {
    pub fn of(e: &object_store::Error) -> Failure {
        let text = e.to_string().replace(['\n', '\r'], " ");
        let mut kind = FailKind::Other;
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(h) = s.downcast_ref::<object_store::client::HttpError>() {
                use object_store::client::HttpErrorKind as K;
                kind = match h.kind() {
                    K::Connect => FailKind::Connect,
                    K::Timeout => FailKind::Timeout,
                    K::Request | K::Interrupted | K::Decode => FailKind::Transfer,
                    _ => FailKind::Other,
                };
                break;
            }
            source = s.source();
        }
        if kind == FailKind::Other {
            const MARK: &str = "Server returned non-2xx status code: ";
            if let Some(i) = text.find(MARK) {
                if let Ok(n) = text[i + MARK.len()..].chars().take(3).collect::<String>().parse::<u16>() {
                    kind = FailKind::Status(n);
                }
            }
        }
        let code = text.find("<Code>").and_then(|i| {
            let rest = &text[i + 6..];
            rest.find("</Code>").map(|j| rest[..j].trim().to_string()).filter(|c| !c.is_empty() && c.len() < 64)
        });
        Failure { kind, code, text }
    }

    pub fn local(text: impl Into<String>) -> Failure {
        Failure { kind: FailKind::Local, code: None, text: text.into() }
    }
}

/// The first 200 characters of a message, cut at a word.
fn short(text: &str) -> String {
    if text.chars().count() <= 200 {
        return text.to_string();
    }
    let cut: String = text.chars().take(200).collect();
    match cut.rfind(' ') {
        Some(i) if i > 100 => format!("{}…", &cut[..i]),
        _ => format!("{cut}…"),
    }
}

static CLIENTS: Mutex<Option<HashMap<(S3Settings, String), Arc<AmazonS3>>>> = Mutex::new(None);

/// Forgets the clients (their connections belong to a runtime being shut down).
pub fn forget_clients() {
    CLIENTS.lock().unwrap_or_else(|p| p.into_inner()).take();
}

/// Reads `~/.aws/credentials` and `~/.aws/config` for a profile (INI sections).
fn profile_values(profile: &str) -> HashMap<String, String> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let creds = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config = std::env::var_os("AWS_CONFIG_FILE").map(std::path::PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let mut out = HashMap::new();
    let mut read = |path: Option<std::path::PathBuf>, section: &str| {
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else { return };
        let mut inside = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') && line.ends_with(']') {
                inside = line[1..line.len() - 1].trim() == section;
            } else if inside {
                if let Some((k, v)) = line.split_once('=') {
                    out.entry(k.trim().to_ascii_lowercase()).or_insert_with(|| v.trim().to_string());
                }
            }
        }
    };
    read(creds, profile);
    let config_section = if profile == "default" { "default".to_string() } else { format!("profile {profile}") };
    read(config, &config_section);
    out
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Settings, then environment, then profile: the values a client is built from.
struct Resolved {
    endpoint: Option<String>,
    region: String,
    vhost: bool,
    key_id: String,
    secret: String,
    token: Option<String>,
}

fn resolve(s: &S3Settings, bucket: &str) -> Result<Resolved> {
    let profile_name = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let profile = profile_values(&profile_name);
    let from_profile = |k: &str| profile.get(k).cloned().filter(|v| !v.is_empty());
    let use_ssl = match nonempty(&s.use_ssl).map(|v| v.to_ascii_lowercase()) {
        None => None,
        Some(v) if matches!(v.as_str(), "true" | "1" | "on" | "yes") => Some(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "off" | "no") => Some(false),
        Some(v) => return Err(Error::Input(format!("snapshot_s3_use_ssl must be true or false, got '{v}'"))),
    };
    let endpoint = nonempty(&s.endpoint)
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| from_profile("endpoint_url"))
        .map(|e| {
            let e = e.trim_end_matches('/').to_string();
            if e.contains("://") {
                e
            } else if use_ssl == Some(false) {
                format!("http://{e}")
            } else {
                format!("https://{e}")
            }
        });
    if let Some(e) = &endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            return Err(Error::Input(format!("snapshot_s3_endpoint '{e}' must be host:port or an http:// or https:// URL")));
        }
    }
    let region = nonempty(&s.region)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| from_profile("region"))
        .unwrap_or_else(|| "us-east-1".into());
    let vhost = match nonempty(&s.url_style).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => endpoint.is_none(),
        Some("path") => false,
        Some("vhost") | Some("virtual") => true,
        Some(v) => return Err(Error::Input(format!("snapshot_s3_url_style must be 'path' or 'vhost', got '{v}'"))),
    };
    let (key_id, secret, token) = match (nonempty(&s.access_key_id), nonempty(&s.secret_access_key)) {
        (Some(k), Some(sec)) => (k, sec, nonempty(&s.session_token)),
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Input(
                "set both snapshot_s3_access_key_id and snapshot_s3_secret_access_key (one of them is empty)".into(),
            ))
        }
        (None, None) => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(k), Some(sec)) => (k, sec, env("AWS_SESSION_TOKEN")),
            _ => match (from_profile("aws_access_key_id"), from_profile("aws_secret_access_key")) {
                (Some(k), Some(sec)) => (k, sec, from_profile("aws_session_token")),
                _ => {
                    return Err(Error::Input(format!(
                        "no S3 credentials for bucket '{bucket}': SET snapshot_s3_access_key_id and snapshot_s3_secret_access_key, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add profile '{profile_name}' to ~/.aws/credentials"
                    )))
                }
            },
        },
    };
    Ok(Resolved { endpoint, region, vhost, key_id, secret, token })
}

impl Remote {
    /// A handle on `s3://bucket/base` (clients are shared per bucket and settings).
    pub fn open(s: &S3Settings, bucket: &str, base: &str) -> Result<Remote> {
        let r = resolve(s, bucket)?;
        let mut secrets = vec![r.secret.clone()];
        if let Some(t) = &r.token {
            secrets.push(t.clone());
        }
        let endpoint = r.endpoint.clone().unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", r.region));
        let cache_key = (s.clone(), bucket.to_string());
        let cached = CLIENTS.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|m| m.get(&cache_key).cloned());
        let store = match cached.filter(|_| crate::repo::runtime::generation_alive()) {
            Some(c) => c,
            None => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(&r.region)
                    .with_access_key_id(&r.key_id)
                    .with_secret_access_key(&r.secret)
                    .with_virtual_hosted_style_request(r.vhost)
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 },
                        max_retries: 4,
                        retry_timeout: Duration::from_secs(20),
                    })
                    .with_client_options(
                        ClientOptions::new()
                            .with_connect_timeout(Duration::from_secs(5))
                            .with_timeout(Duration::from_secs(120))
                            .with_allow_http(true),
                    );
                if let Some(t) = &r.token {
                    b = b.with_token(t);
                }
                if let Some(e) = &r.endpoint {
                    b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
                }
                let client = Arc::new(b.build().map_err(|e| Error::Input(format!("cannot use bucket '{bucket}': {e}")))?);
                CLIENTS.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashMap::new).insert(cache_key, client.clone());
                client
            }
        };
        let credential = Arc::new(object_store::aws::AwsCredential { key_id: r.key_id.clone(), secret_key: r.secret.clone(), token: r.token.clone() });
        Ok(Remote {
            store,
            bucket: bucket.to_string(),
            base: base.trim_matches('/').to_string(),
            secrets,
            endpoint,
            region: r.region,
            credential,
            vhost: r.vhost,
        })
    }

    /// The same bucket and settings, another prefix.
    pub fn at(&self, base: &str) -> Remote {
        Remote {
            store: self.store.clone(),
            bucket: self.bucket.clone(),
            base: base.trim_matches('/').to_string(),
            secrets: self.secrets.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            credential: self.credential.clone(),
            vhost: self.vhost,
        }
    }

    pub fn url(&self, rel: &str) -> String {
        let full = self.full(rel);
        format!("s3://{}/{}", self.bucket, full)
    }

    fn full(&self, rel: &str) -> String {
        match (self.base.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (false, true) => self.base.clone(),
            (false, false) => format!("{}/{}", self.base, rel),
        }
    }

    fn key(&self, rel: &str) -> Result<Key> {
        Key::parse(self.full(rel)).map_err(|e| Error::Internal(format!("bad object key {}: {e}", self.url(rel))))
    }

    /// One line for a failed operation: what failed, why, and what to do; secrets removed.
    fn fail(&self, action: &str, rel: &str, f: &Failure) -> Error {
        let url = self.url(rel);
        let (why, todo) = match (f.code.as_deref(), f.kind) {
            (Some("NoSuchBucket"), _) => (format!("bucket '{}' does not exist", self.bucket), "create the bucket or correct snapshot_directory".to_string()),
            (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken" | "TokenRefreshRequired" | "InvalidSecurity"), _) => (
                "the credentials were refused".to_string(),
                "check snapshot_s3_access_key_id, snapshot_s3_secret_access_key and snapshot_s3_session_token (or the AWS credentials in the environment)".to_string(),
            ),
            (Some("AuthorizationHeaderMalformed" | "PermanentRedirect" | "IllegalLocationConstraintException"), _) => {
                (format!("the bucket is not in region {}", self.region), "set snapshot_s3_region to the bucket's region".to_string())
            }
            (Some("AccessDenied" | "AllAccessDisabled" | "AccountProblem"), _) | (_, FailKind::Status(401 | 403)) => {
                ("access denied".to_string(), "grant these credentials access to the bucket, or use other credentials".to_string())
            }
            (Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout"), _) | (_, FailKind::Status(429 | 500..=599)) => {
                let status = match f.kind {
                    FailKind::Status(n) => format!(" (HTTP {n})"),
                    _ => String::new(),
                };
                (format!("the server kept failing{status} after retries"), "try again later".to_string())
            }
            (_, FailKind::Connect) => {
                (format!("cannot reach the S3 endpoint {}", self.endpoint), "check snapshot_s3_endpoint and that the server is running".to_string())
            }
            (_, FailKind::Timeout) => (format!("the S3 endpoint {} did not answer in time", self.endpoint), "try again later".to_string()),
            (_, FailKind::Transfer) => (
                format!("the connection to {} kept breaking during the transfer", self.endpoint),
                "check the network and try again".to_string(),
            ),
            (_, FailKind::Local) => (f.text.clone(), "check the snapshot cache folder (snapshot_cache_directory)".to_string()),
            (code, kind) => {
                let what = match (code, kind) {
                    (Some(c), FailKind::Status(n)) => format!("the server answered {c} (HTTP {n})"),
                    (Some(c), _) => format!("the server answered {c}"),
                    (None, FailKind::Status(n)) => format!("the server answered HTTP {n}"),
                    _ => short(&f.text),
                };
                (what, "check the bucket and the snapshot_s3_* settings".to_string())
            }
        };
        let mut why = why;
        // (a secret of a few characters would mangle every word it occurs in; real ones are long)
        for s in &self.secrets {
            if s.len() >= 6 {
                why = why.replace(s.as_str(), "***");
            }
        }
        Error::Remote { action: action.to_string(), url, why, todo }
    }

    /// The object's bytes, or None when it does not exist.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned(rel)?.map(|(b, _)| b))
    }

    /// The object's bytes and ETag, or None.
    pub fn get_versioned(&self, rel: &str) -> Result<Option<(Vec<u8>, Option<String>)>> {
        let key = self.key(rel)?;
        let store = self.store.clone();
        let got = block_on(async move {
            match store.get(&key).await {
                Ok(r) => {
                    let etag = r.meta.e_tag.clone();
                    r.bytes().await.map(|b| Some((b.to_vec(), etag)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        got.map_err(|e| self.fail("reading", rel, &Failure::of(&e)))
    }

    /// Several objects at once (up to 32 requests in flight), in the order asked.
    pub fn get_many(&self, rels: &[String]) -> Vec<Result<Option<Vec<u8>>>> {
        let keys: Vec<Option<Key>> = rels.iter().map(|r| self.key(r).ok()).collect();
        let store = self.store.clone();
        let fetched = block_on(async move {
            futures::stream::iter(keys.into_iter().map(|k| {
                let store = store.clone();
                async move {
                    let Some(k) = k else { return Err(Failure::local("bad key")) };
                    match store.get(&k).await {
                        Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())).map_err(|e| Failure::of(&e)),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(Failure::of(&e)),
                    }
                }
            }))
            .buffered(32)
            .collect::<Vec<_>>()
            .await
        });
        match fetched {
            Ok(v) => v.into_iter().zip(rels).map(|(r, rel)| r.map_err(|e| self.fail("reading", rel, &e))).collect(),
            Err(e) => rels.iter().map(|_| Err(Error::Internal(e.to_string()))).collect(),
        }
    }

    /// The object's ETag, or None when it does not exist.
    pub fn head_etag(&self, rel: &str) -> Result<Option<String>> {
        Ok(self.head_meta(rel)?.map(|m| m.e_tag.unwrap_or_else(|| format!("{}:{}", m.last_modified.timestamp_micros(), m.size))))
    }

    /// The object's modification time (seconds since the epoch), or None.
    pub fn head_modified(&self, rel: &str) -> Result<Option<i64>> {
        Ok(self.head_meta(rel)?.map(|m| m.last_modified.timestamp()))
    }

    /// Size of the object, or None.
    pub fn head(&self, rel: &str) -> Result<Option<u64>> {
        Ok(self.head_meta(rel)?.map(|m| m.size))
    }

    /// The object's metadata (size, modification time, ETag), or None when there is none: the
    /// one HEAD request the three look-ups above share.
    fn head_meta(&self, rel: &str) -> Result<Option<object_store::ObjectMeta>> {
        let key = self.key(rel)?;
        let store = self.store.clone();
        let got = block_on(async move {
            match store.head(&key).await {
                Ok(m) => Ok(Some(m)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        got.map_err(|e| self.fail("looking up", rel, &Failure::of(&e)))
    }

    /// Every object under `rel` (recursively; empty = the whole base), keys relative to the base.
    pub fn list(&self, rel: &str) -> Result<Vec<Listed>> {
        let prefix = self.full(rel);
        let key = if prefix.is_empty() { None } else { Some(Key::parse(&prefix).map_err(|e| Error::Internal(e.to_string()))?) };
        let store = self.store.clone();
        let got = block_on(async move { store.list(key.as_ref()).try_collect::<Vec<_>>().await })?;
        let metas = got.map_err(|e| self.fail("listing", rel, &Failure::of(&e)))?;
        let strip = if self.base.is_empty() { String::new() } else { format!("{}/", self.base) };
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let full = m.location.to_string();
                let rel = full.strip_prefix(&strip)?.to_string();
                let stamp = (m.last_modified.timestamp(), m.last_modified.timestamp_subsec_nanos(), m.e_tag.unwrap_or_default());
                Some(Listed { rel, size: m.size, stamp })
            })
            .collect())
    }

    /// Writes an object. `create_only`: fails with `Ok(false)` when it exists (If-None-Match).
    pub fn put(&self, rel: &str, bytes: Vec<u8>, create_only: bool) -> Result<bool> {
        Ok(self.put_mode(rel, bytes, if create_only { PutMode::Create } else { PutMode::Overwrite })?.is_some())
    }

    /// Writes an object with a precondition; None when the precondition failed. Returns the
    /// new ETag.
    pub fn put_mode(&self, rel: &str, bytes: Vec<u8>, mode: PutMode) -> Result<Option<Option<String>>> {
        let key = self.key(rel)?;
        let store = self.store.clone();
        let got = block_on(async move {
            let opts = PutOptions { mode, ..Default::default() };
            match store.put_opts(&key, PutPayload::from(bytes), opts).await {
                Ok(r) => Ok(Some(r.e_tag)),
                Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        got.map_err(|e| self.fail("writing", rel, &Failure::of(&e)))
    }

    /// Replaces an object only if its ETag is still `etag`.
    pub fn put_if_match(&self, rel: &str, bytes: Vec<u8>, etag: &str) -> Result<Option<Option<String>>> {
        self.put_mode(rel, bytes, PutMode::Update(UpdateVersion { e_tag: Some(etag.to_string()), version: None }))
    }

    /// Uploads a local file (in parallel parts when large).
    pub fn upload(&self, rel: &str, path: &Path) -> Result<()> {
        let size = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
        if size <= MULTIPART_THRESHOLD {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            self.put(rel, bytes, false)?;
            return Ok(());
        }
        let key = self.key(rel)?;
        let store = self.store.clone();
        let path_owned = path.to_path_buf();
        let got = block_on(async move {
            let upload = store.put_multipart(&key).await.map_err(|e| Failure::of(&e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut f = match std::fs::File::open(&path_owned) {
                Ok(f) => f,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(Failure::local(format!("{}: {e}", path_owned.display())));
                }
            };
            let mut buf = vec![0u8; PART_SIZE];
            loop {
                // a part that failed: the upload is aborted, so no unfinished upload stays
                if let Err(e) = w.wait_for_capacity(PARALLEL_PARTS).await {
                    let _ = w.abort().await;
                    return Err(Failure::of(&e));
                }
                let mut filled = 0;
                while filled < buf.len() {
                    let n = match f.read(&mut buf[filled..]) {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = w.abort().await;
                            return Err(Failure::local(format!("{}: {e}", path_owned.display())));
                        }
                    };
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                w.put(bytes::Bytes::copy_from_slice(&buf[..filled]));
                if filled < buf.len() {
                    break;
                }
            }
            w.finish().await.map(|_| ()).map_err(|e| Failure::of(&e))
        })?;
        got.map_err(|e| self.fail("uploading", rel, &e))
    }

    /// Downloads an object to `to` (replacing it), returning its `sha256:` checksum and size.
    /// A large object of known size comes in parallel ranges (hashed in order as they
    /// arrive). A download cut off midway is started again (a few times).
    pub fn download(&self, rel: &str, to: &Path, size: Option<u64>) -> Result<Option<(String, u64)>> {
        let mut last = None;
        for attempt in 0..DOWNLOAD_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            let once = match size {
                // a retry takes the plain path: a size that no longer matches fails there cleanly
                Some(n) if n > MULTIPART_THRESHOLD && attempt == 0 => self.download_ranges(rel, to, n),
                _ => self.download_once(rel, to),
            };
            match once {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        let _ = std::fs::remove_file(to);
        Err(self.fail("downloading", rel, &last.unwrap_or_default()))
    }

    fn download_ranges(&self, rel: &str, to: &Path, size: u64) -> std::result::Result<Option<(String, u64)>, Failure> {
        let key = self.key(rel).map_err(|e| Failure::local(e.to_string()))?;
        let store = self.store.clone();
        let to = to.to_path_buf();
        block_on(async move {
            let part = PART_SIZE as u64;
            let ranges: Vec<std::ops::Range<u64>> = (0..size.div_ceil(part)).map(|i| i * part..((i + 1) * part).min(size)).collect();
            let mut parts = futures::stream::iter(ranges.into_iter().map(|r| {
                let (store, key) = (store.clone(), key.clone());
                async move { store.get_range(&key, r).await }
            }))
            .buffered(PARALLEL_PARTS);
            let mut f = std::fs::File::create(&to).map_err(|e| Failure::local(format!("{}: {e}", to.display())))?;
            let mut hasher = Sha256::new();
            let mut got = 0u64;
            while let Some(chunk) = parts.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(Failure::of(&e)),
                };
                hasher.update(&chunk);
                got += chunk.len() as u64;
                f.write_all(&chunk).map_err(|e| Failure::local(format!("{}: {e}", to.display())))?;
            }
            f.sync_all().map_err(|e| Failure::local(format!("{}: {e}", to.display())))?;
            let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
            Ok(Some((format!("sha256:{hex}"), got)))
        })
        .map_err(|e| Failure::local(e.to_string()))?
    }

    fn download_once(&self, rel: &str, to: &Path) -> std::result::Result<Option<(String, u64)>, Failure> {
        let key = self.key(rel).map_err(|e| Failure::local(e.to_string()))?;
        let store = self.store.clone();
        let to = to.to_path_buf();
        block_on(async move {
            let r = match store.get(&key).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(Failure::of(&e)),
            };
            let mut f = std::fs::File::create(&to).map_err(|e| Failure::local(format!("{}: {e}", to.display())))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut stream = r.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Failure::of(&e))?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                f.write_all(&chunk).map_err(|e| Failure::local(format!("{}: {e}", to.display())))?;
            }
            f.sync_all().map_err(|e| Failure::local(format!("{}: {e}", to.display())))?;
            let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
            Ok(Some((format!("sha256:{hex}"), size)))
        })
        .map_err(|e| Failure::local(e.to_string()))?
    }

    /// Multipart uploads under `rel` that were started and never completed or aborted (a
    /// writer killed mid-upload): (key relative to the base, upload id). Stores that cannot
    /// list them answer an empty list.
    pub fn unfinished_uploads(&self, rel: &str) -> Result<Vec<(String, String)>> {
        let prefix = self.full(rel);
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect()
        };
        let url = if self.vhost {
            let host = self.endpoint.replacen("://", &format!("://{}.", self.bucket), 1);
            format!("{host}/?prefix={}&uploads=", enc(&prefix))
        } else {
            format!("{}/{}?prefix={}&uploads=", self.endpoint, self.bucket, enc(&prefix))
        };
        let (credential, region) = (self.credential.clone(), self.region.clone());
        let got = block_on(async move {
            let mut req = http::Request::builder()
                .method(http::Method::GET)
                .uri(&url)
                .body(object_store::client::HttpRequestBody::from(Vec::new()))
                .map_err(|e| Failure::local(e.to_string()))?;
            object_store::aws::AwsAuthorizer::new(&credential, "s3", &region)
                .try_authorize(&mut req, None)
                .map_err(|e| Failure::local(format!("cannot sign the request: {e}")))?;
            let client = object_store::client::HttpClient::new(reqwest::Client::new());
            let resp = tokio::time::timeout(Duration::from_secs(30), client.execute(req))
                .await
                .map_err(|_| Failure { kind: FailKind::Timeout, ..Default::default() })?
                .map_err(|e| Failure::of(&object_store::Error::Generic { store: "S3", source: Box::new(e) }))?;
            let status = resp.status().as_u16();
            let body = resp.into_body().bytes().await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            Ok::<_, Failure>((status, body))
        })?;
        let (status, body) = got.map_err(|e| self.fail("listing unfinished uploads under", rel, &e))?;
        if status != 200 {
            // not supported by this store (or not allowed): nothing to clean up from here
            return Ok(Vec::new());
        }
        let strip = if self.base.is_empty() { String::new() } else { format!("{}/", self.base) };
        let tag = |block: &str, name: &str| -> Option<String> {
            let open = format!("<{name}>");
            let i = block.find(&open)? + open.len();
            let j = block[i..].find(&format!("</{name}>"))? + i;
            Some(block[i..j].replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'"))
        };
        Ok(body
            .split("<Upload>")
            .skip(1)
            .filter_map(|block| {
                let key = tag(block, "Key")?;
                let id = tag(block, "UploadId")?;
                Some((key.strip_prefix(&strip)?.to_string(), id))
            })
            .collect())
    }

    /// Starts a multipart upload with one part and leaves it unfinished (as a killed writer
    /// would), for tests.
    #[cfg(test)]
    pub fn leave_unfinished_upload(&self, rel: &str) {
        let key = self.key(rel).unwrap();
        let store = self.store.clone();
        block_on(async move {
            let mut up = store.put_multipart(&key).await.unwrap();
            up.put_part(PutPayload::from(vec![7u8; 5 << 20])).await.unwrap();
            std::mem::forget(up);
        })
        .unwrap();
    }

    /// Aborts an unfinished multipart upload (its parts are freed).
    pub fn abort_upload(&self, rel: &str, upload_id: &str) -> Result<()> {
        use object_store::multipart::MultipartStore;
        let key = self.key(rel)?;
        let store = self.store.clone();
        let id = upload_id.to_string();
        let got = block_on(async move {
            match store.abort_multipart(&key, &id).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })?;
        got.map_err(|e| self.fail("aborting the unfinished upload of", rel, &Failure::of(&e)))
    }

    /// Deletes objects (missing ones are fine).
    pub fn delete(&self, rels: &[String]) -> Result<()> {
        if rels.is_empty() {
            return Ok(());
        }
        let keys: Vec<Key> = rels.iter().map(|r| self.key(r)).collect::<Result<_>>()?;
        let store = self.store.clone();
        let got = block_on(async move {
            let stream = futures::stream::iter(keys.into_iter().map(Ok)).boxed();
            let results: Vec<_> = store.delete_stream(stream).collect().await;
            for r in results {
                match r {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
        got.map_err(|e| self.fail("deleting", &rels[0], &Failure::of(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(parse_url("s3://b/p/q/").unwrap(), ("b".into(), "p/q".into()));
        assert_eq!(parse_url("s3://b").unwrap(), ("b".into(), "".into()));
        assert!(parse_url("s3:///x").is_err());
        assert!(parse_url("s3://b/../x").is_err());
        assert!(parse_url("/tmp/x").is_err());
    }

    /// The kind of failure comes from the error's status and S3 code, never from digits or
    /// words that happen to be in a URL, bucket name or timing.
    #[test]
    fn failures_are_classified_by_status_and_code() {
        let s = S3Settings {
            endpoint: Some("http://127.0.0.1:1403".into()),
            access_key_id: Some("k".into()),
            secret_access_key: Some("a-long-secret".into()),
            ..Default::default()
        };
        let r = Remote::open(&s, "bucket-403-500", "dns/timeout").unwrap();
        let why = |f: Failure| match r.fail("reading", "x", &f) {
            Error::Remote { why, .. } => why,
            e => panic!("{e}"),
        };
        let text = |t: &str| Failure { text: t.into(), ..Default::default() };
        // nothing known: the text, not a guess
        assert!(!why(text("Error performing GET http://127.0.0.1:1403/bucket-403-500 in 503ms - timeout dns")).contains("denied"));
        let status = |n: u16, body: &str| Failure { kind: FailKind::Status(n), code: None, text: body.into() };
        assert_eq!(why(status(403, "")), "access denied");
        assert!(why(status(503, "")).contains("kept failing (HTTP 503)"));
        let coded = |c: &str| Failure { kind: FailKind::Status(400), code: Some(c.into()), text: String::new() };
        assert_eq!(why(coded("NoSuchBucket")), "bucket 'bucket-403-500' does not exist");
        assert_eq!(why(coded("SignatureDoesNotMatch")), "the credentials were refused");
        assert!(why(Failure { kind: FailKind::Connect, ..Default::default() }).contains("cannot reach"));
        // the status is read only where object_store writes it
        let parsed = Failure::of(&object_store::Error::Generic {
            store: "S3",
            source: "Error performing PUT http://h:1403/b in 20ms, after 4 retries, max_retries: 4, retry_timeout: 20s  - Server returned non-2xx status code: 503 Service Unavailable: <Error><Code>SlowDown</Code></Error>".into(),
        });
        assert_eq!(parsed.kind, FailKind::Status(503));
        assert_eq!(parsed.code.as_deref(), Some("SlowDown"));
    }

    #[test]
    fn secrets_never_in_messages() {
        let s = S3Settings {
            endpoint: Some("127.0.0.1:1".into()),
            use_ssl: Some("false".into()),
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("s3cr3t-value".into()),
            ..Default::default()
        };
        let r = Remote::open(&s, "bkt", "p").unwrap();
        let e = r.fail("reading", "x/metadata.json", &Failure { text: "boom s3cr3t-value signature".into(), ..Default::default() });
        let text = e.to_string();
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("s3://bkt/p/x/metadata.json"), "{text}");
    }
}
