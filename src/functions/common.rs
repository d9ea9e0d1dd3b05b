//! What every function adapter shares: reading the extension's settings from the caller's
//! connection at bind time, and running an engine call against the admin connection.

use std::sync::Arc;

use crate::engine::point::SnapshotArg;
use crate::engine::scope::ScopeSpec;
use crate::engine::{Ctx, Settings};
use crate::error::{Error, Result};
use crate::host::session::Host;
use crate::host::context::SettingSource;
use crate::host::table_fn::{Arg, ColType, Val};
use crate::repo::manifest::{Manifest, TableEntry};

pub const SETTING_DIRECTORY: &str = "snapshot_directory";
pub const SETTING_PROJECT: &str = "snapshot_project";
pub const SETTING_BRANCH: &str = "snapshot_branch";

pub fn settings(args: &dyn SettingSource) -> Settings {
    settings_with(args, false)
}

/// `settings`, with the bucket settings read also for a local repository (for a call that
/// names a second repository).
pub fn settings_with(args: &dyn SettingSource, always_s3: bool) -> Settings {
    let directory = args.setting(SETTING_DIRECTORY);
    // the bucket settings are read only for a bucket repository (a read's bind stays cheap)
    let remote = always_s3 || directory.as_deref().is_some_and(|d| d.trim_start().starts_with("s3://"));
    let s3 = |name: &str| if remote { args.setting(name) } else { None };
    Settings {
        s3: crate::repo::remote::S3Settings {
            endpoint: s3("snapshot_s3_endpoint"),
            region: s3("snapshot_s3_region"),
            url_style: s3("snapshot_s3_url_style"),
            use_ssl: s3("snapshot_s3_use_ssl"),
            access_key_id: s3("snapshot_s3_access_key_id"),
            secret_access_key: s3("snapshot_s3_secret_access_key"),
            session_token: s3("snapshot_s3_session_token"),
        },
        cache_directory: s3("snapshot_cache_directory"),
        cache_size: s3("snapshot_cache_size"),
        directory,
        project: args.setting(SETTING_PROJECT),
        branch: args.setting(SETTING_BRANCH),
        search_path: args.setting("search_path"),
        lock_timeout: args.setting("snapshot_lock_timeout"),
        timezone: args.setting("TimeZone"),
        default_database: None,
    }
}

/// Runs `f` with an engine context on the admin connection, lending DuckDB a thread while
/// it runs (for work that runs queries of its own: create, restore, export...).
pub fn with_ctx<T>(host: &Arc<Host>, settings: &Settings, f: impl FnOnce(&Ctx) -> Result<T>) -> Result<T> {
    let _helper = host.lend_thread();
    with_ctx_light(host, settings, f)
}

/// `with_ctx` for look-ups (binding a read, listing): no thread lent.
pub fn with_ctx_light<T>(host: &Arc<Host>, settings: &Settings, f: impl FnOnce(&Ctx) -> Result<T>) -> Result<T> {
    let admin = host.admin()?;
    let settings = Settings { default_database: Some(host.default_database.clone()), ..settings.clone() };
    let ctx = Ctx::new(&admin, &settings)?;
    // the schedules of every repository this process uses run while it has the database open
    crate::host::scheduler::note_repository(host, &settings);
    f(&ctx)
}

/// Where a snapshot argument may also be `'*'` (every snapshot; NULL too) or the live table.
#[derive(Clone, Copy, Default)]
pub struct Accepts {
    pub all: bool,
    pub live: bool,
}

/// A snapshot argument: an id, or a point in time (TIMESTAMPTZ, TIMESTAMP, DATE), or what
/// `accepts` adds.
pub fn snapshot_arg(arg: Arg, what: &str, accepts: Accepts) -> Result<SnapshotArg> {
    let also = match (accepts.all, accepts.live) {
        (true, _) => ", or '*' for every snapshot",
        (_, true) => ", or 'live' for the live table",
        _ => "",
    };
    match arg {
        Arg::Str(s) if accepts.all && s.trim() == "*" => Ok(SnapshotArg::All),
        Arg::Str(s) if accepts.live && s.trim().eq_ignore_ascii_case("live") => Ok(SnapshotArg::Live),
        Arg::Str(s) => {
            if crate::repo::layout::validate_id(&s).is_err() && crate::engine::point::looks_like_time(&s) {
                return Err(Error::Input(format!(
                    "'{s}' is not a snapshot id; for a point in time pass TIMESTAMPTZ '{s}' (a time as text is read only after '@', as in FROM 'orders@{s}')"
                )));
            }
            crate::repo::layout::validate_id(&s)?;
            Ok(SnapshotArg::Id(s))
        }
        Arg::Timestamp(t) => Ok(SnapshotArg::At(t)),
        Arg::LocalTimestamp(t) => Ok(SnapshotArg::Local(t)),
        Arg::Date(d) => Ok(SnapshotArg::Local(d as i64 * 86_400_000_000)),
        Arg::Null | Arg::Missing if accepts.all => Ok(SnapshotArg::All),
        Arg::Null | Arg::Missing if accepts.live => Ok(SnapshotArg::Live),
        Arg::Null | Arg::Missing => Err(Error::Input(format!(
            "{what} must not be NULL; pass a snapshot id such as 'snap_20241211_143022' or a time such as TIMESTAMPTZ '2024-12-11 14:00:00+00'{also}"
        ))),
        other => Err(Error::Input(format!(
            "{what} must be a snapshot id (VARCHAR) or a point in time (TIMESTAMPTZ, TIMESTAMP or DATE){also}, got {}",
            other.describe()
        ))),
    }
}

/// A list of names: a VARCHAR or a VARCHAR[] (None when missing or NULL).
pub fn names_arg(arg: Arg, what: &str) -> Result<Option<Vec<String>>> {
    match arg {
        Arg::Null | Arg::Missing => Ok(None),
        Arg::Str(s) => Ok(Some(vec![s])),
        Arg::StrList(items) => Ok(Some(
            items
                .into_iter()
                .map(|i| i.ok_or_else(|| Error::Input(format!("{what} contains NULL; remove it from the list"))))
                .collect::<Result<_>>()?,
        )),
        other => Err(Error::Input(format!("{what} must be a VARCHAR or VARCHAR[], got {}", other.describe()))),
    }
}

/// A scope argument (NULL: `'*'`) with its `exclude :=` list.
pub fn scope_arg(scope: Arg, exclude: Arg) -> Result<ScopeSpec> {
    let items = names_arg(scope, "the scope")?;
    let exclude = names_arg(exclude, "exclude")?.unwrap_or_default();
    ScopeSpec::parse(items, exclude)
}

/// A required text argument; `pass` says what to give instead of NULL.
pub fn required_str(arg: Arg, what: &str, pass: &str) -> Result<String> {
    arg.opt_str(what)?.ok_or_else(|| Error::Input(format!("{what} must not be NULL; pass {pass}")))
}

/// Per-table listings (`snapshot_create`, `snapshot_tables`, `snapshot_history`) put what a
/// person reads first at the ends — DuckDB's shell keeps the first and last columns when it must
/// cut: which table first, its status, rows and size last; lineage and costs in the middle.
pub const TABLE_HEAD: [(&str, ColType); 3] =
    [("snapshot_id", ColType::Varchar), ("schema_name", ColType::Varchar), ("table_name", ColType::Varchar)];

/// The lineage and cost of a table version (the middle of a listing).
pub const LINEAGE_COLUMNS: [(&str, ColType); 5] = [
    ("parent_id", ColType::Varchar),
    ("rows_added", ColType::BigInt),
    ("rows_removed", ColType::BigInt),
    ("bytes_written", ColType::BigInt),
    ("bytes_reused", ColType::BigInt),
];

pub const TABLE_TAIL: [(&str, ColType); 3] = [("status", ColType::Varchar), ("row_count", ColType::BigInt), ("size_bytes", ColType::BigInt)];

/// `snapshot_create`'s columns (`snapshot_tables` adds `columns` and `primary_key` before the tail).
pub fn table_columns(extra: &[(&'static str, ColType)]) -> Vec<(&'static str, ColType)> {
    let mut cols = TABLE_HEAD.to_vec();
    cols.push(("file", ColType::Varchar));
    cols.extend(LINEAGE_COLUMNS);
    cols.extend_from_slice(extra);
    cols.extend(TABLE_TAIL);
    cols
}

/// The values of `LINEAGE_COLUMNS` for one table version.
pub fn lineage_values(t: &TableEntry) -> [Val; 5] {
    [
        t.parent_id.clone().map(Val::Str).unwrap_or(Val::Null),
        Val::I64(t.rows_added as i64),
        Val::I64(t.rows_removed as i64),
        Val::I64(t.written_bytes() as i64),
        Val::I64(t.bytes_reused as i64),
    ]
}

/// The values of `table_columns(extra)` for one table of a snapshot.
pub fn table_row(m: &Manifest, t: &TableEntry, extra: Vec<Val>) -> Vec<Val> {
    let mut row = vec![Val::Str(m.snapshot_id.clone()), Val::Str(t.bucket.clone()), Val::Str(t.table.clone()), Val::Str(t.file.clone())];
    row.extend(lineage_values(t));
    row.extend(extra);
    row.extend([Val::Str(t.status.as_str().into()), Val::I64(t.row_count as i64), Val::I64(t.data_bytes(&m.snapshot_id) as i64)]);
    row
}

/// The values of `table_columns(extra)` for a table that was gone when the snapshot was taken
/// (`parent_id`: the last snapshot holding it).
pub fn deleted_row(m: &Manifest, d: &crate::repo::manifest::DeletedTable, extra: Vec<Val>) -> Vec<Val> {
    let mut row = vec![
        Val::Str(m.snapshot_id.clone()),
        Val::Str(d.bucket.clone()),
        Val::Str(d.table.clone()),
        Val::Null,
        Val::Str(d.last_snapshot_id.clone()),
        Val::I64(0),
        Val::I64(d.row_count as i64),
        Val::I64(0),
        Val::I64(0),
    ];
    row.extend(extra);
    row.extend([Val::Str("deleted_in_source".into()), Val::I64(0), Val::I64(0)]);
    row
}

/// A time as listings show it: to the second (a point-in-time argument compares at the same
/// precision, so a time copied from a listing picks the snapshot it shows).
pub fn listed_time(micros: i64) -> Val {
    Val::TimestampTz(micros.div_euclid(1_000_000) * 1_000_000)
}

/// A streaming query on a pooled reader connection; the connection goes back when the
/// scan ends or is abandoned.
pub struct QueryScan {
    stream: Option<crate::host::conn::Stream>,
    _lease: crate::host::session::ReaderLease,
}

impl QueryScan {
    pub fn start(host: &Arc<Host>, sql: &str) -> Result<QueryScan> {
        let lease = host.reader()?;
        let stream = lease.conn().stream(sql)?;
        Ok(QueryScan { stream: Some(stream), _lease: lease })
    }
}

impl crate::host::table_fn::ChunkSource for QueryScan {
    fn next(&mut self) -> Result<Option<crate::host::conn::Chunk>> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        let chunk = stream.next_chunk()?;
        if chunk.is_none() {
            self.stream = None;
        }
        Ok(chunk)
    }
}

/// The result columns of `snapshot_restore` and `snapshot_undrop`.
pub fn restore_schema() -> crate::host::table_fn::Schema {
    crate::host::table_fn::Schema::Simple(vec![
        ("snapshot_id", ColType::Varchar),
        ("kind", ColType::Varchar),
        ("source", ColType::Varchar),
        ("target", ColType::Varchar),
        ("row_count", ColType::BigInt),
        ("backup_snapshot_id", ColType::Varchar),
    ])
}

/// One row per restored object (tables and the schemas, types, sequences, views and macros
/// that come with a whole snapshot or schema), in creation order.
pub fn restore_rows(out: crate::engine::restore::RestoreOutcome) -> crate::host::table_fn::Produce {
    let backup = out.backup_snapshot_id.clone().map(Val::Str).unwrap_or(Val::Null);
    crate::host::table_fn::Produce::Rows(
        out.restored
            .into_iter()
            .map(|r| {
                vec![
                    Val::Str(r.snapshot_id),
                    Val::Str(r.kind),
                    Val::Str(r.source),
                    Val::Str(r.target),
                    r.row_count.map(|n| Val::I64(n as i64)).unwrap_or(Val::Null),
                    backup.clone(),
                ]
            })
            .collect(),
    )
}

/// The keep rules `snapshot_prune` and `snapshot_schedule` take (`keep_last :=`,
/// `keep_hourly :=` … `keep_yearly :=`), as given to a call.
pub fn keep_args(args: &crate::host::table_fn::BindArgs) -> Result<crate::repo::schedule::Retention> {
    Ok(crate::repo::schedule::Retention {
        keep_last: args.named("keep_last").opt_count("keep_last")?,
        keep_hourly: args.named("keep_hourly").opt_count("keep_hourly")?,
        keep_daily: args.named("keep_daily").opt_count("keep_daily")?,
        keep_weekly: args.named("keep_weekly").opt_count("keep_weekly")?,
        keep_monthly: args.named("keep_monthly").opt_count("keep_monthly")?,
        keep_yearly: args.named("keep_yearly").opt_count("keep_yearly")?,
    })
}
