//! The scheduler: one thread per process that takes scheduled snapshots while a database
//! with the extension loaded is open. Once a second it reads the wall clock (so a clock jump,
//! a laptop waking up or `faketime` is noticed within a second) and compares it with the due
//! times of the schedules of every repository this process knows for each open instance:
//! the one the instance's global settings name (from LOAD on, so an overdue schedule is
//! caught up right away) and each one a call of this process used. A due schedule is run
//! on a pooled reader connection (committed data, its own transaction); what it did is
//! recorded in the repository, never raised into a user's query.
//!
//! The thread holds no connection between runs, so the watchdog still closes an instance
//! once the user has left; before it does, `stop` interrupts a run on that instance and waits
//! for it to end (its staging is discarded, the schedule stays due).

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::engine::schedule::{run_due, RunOutcome};
use crate::engine::{Ctx, Settings};
use crate::host::conn::Conn;
use crate::host::session::Host;
use crate::repo::schedule::Schedule;

const TICK: Duration = Duration::from_secs(1);
/// How often a bucket repository's schedules are read again (a local one: every tick).
const REMOTE_REFRESH: Duration = Duration::from_secs(30);
/// How often the settings are read again and the repositories' locations worked out.
const RESOLVE: Duration = Duration::from_secs(10);
/// How long closing a database waits for a run it interrupted.
const STOP_WAIT: Duration = Duration::from_secs(15);

/// A repository the scheduler looks at for one instance.
struct Known {
    settings: Settings,
    /// Where the settings lead (resolved every `RESOLVE`).
    repo: Option<crate::repo::layout::Repo>,
    schedules: Vec<Schedule>,
    read_at: Option<Instant>,
    /// schedules.json as it was when read (local repositories).
    file_state: Option<FileState>,
}

impl Known {
    fn new(settings: Settings) -> Known {
        Known { settings, repo: None, schedules: Vec::new(), read_at: None, file_state: None }
    }
}

struct Watched {
    host: Weak<Host>,
    /// Repositories named by calls of this process, by (directory, project, search path).
    repos: Vec<Known>,
    /// The repository the instance's global settings name.
    global: Option<Known>,
    resolved_at: Option<Instant>,
}

/// The run in progress: which instance, and its connection (to interrupt it).
struct Job {
    host: usize,
    conn: usize,
}

#[derive(Default)]
struct State {
    watched: Vec<Watched>,
    running: bool,
    owner_pid: u32,
    job: Option<Job>,
    /// Set by `wake`: look now, not at the next tick.
    woken: bool,
    /// Instances being closed: nothing new starts on them.
    stopping: Vec<usize>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static WAKE: Condvar = Condvar::new();

fn key(s: &Settings) -> (Option<String>, Option<String>, Option<String>, Option<String>) {
    let t = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    (t(&s.directory), t(&s.project), t(&s.branch), t(&s.search_path).map(|p| p.split(',').next().unwrap_or("").trim().to_string()))
}

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let state = guard.get_or_insert_with(State::default);
    let pid = std::process::id();
    if state.owner_pid != pid {
        // a forked child: the parent's thread and instances are not ours
        for w in state.watched.drain(..) {
            std::mem::forget(w);
        }
        *state = State { owner_pid: pid, ..State::default() };
    }
    f(state)
}

/// Starts looking after `host`'s schedules (at LOAD); overdue ones run right away.
pub fn start(host: &Arc<Host>) -> crate::error::Result<()> {
    let spawn = with_state(|state| {
        state.watched.push(Watched { host: Arc::downgrade(host), repos: Vec::new(), global: None, resolved_at: None });
        state.woken = true;
        !std::mem::replace(&mut state.running, true)
    });
    if spawn {
        std::thread::Builder::new()
            .name("snapshot-scheduler".into())
            .spawn(run)
            .map_err(|e| crate::error::Error::Internal(format!("cannot start the scheduler thread: {e}")))?;
    }
    WAKE.notify_all();
    Ok(())
}

/// Tells the scheduler that a call of this process used the repository `settings` name, so
/// its schedules run too.
pub fn note_repository(host: &Arc<Host>, settings: &Settings) {
    let k = key(settings);
    let added = with_state(|state| {
        let Some(w) = state.watched.iter_mut().find(|w| std::ptr::eq(w.host.as_ptr(), Arc::as_ptr(host))) else { return false };
        if w.repos.iter().any(|r| key(&r.settings) == k) {
            return false;
        }
        let mut settings = settings.clone();
        settings.timezone = None;
        w.repos.push(Known::new(settings));
        true
    });
    if added {
        wake();
    }
}

/// Look at the schedules now (one was just added or changed).
pub fn wake() {
    with_state(|state| {
        state.woken = true;
        for w in state.watched.iter_mut() {
            w.resolved_at = None;
            for r in w.repos.iter_mut().chain(w.global.iter_mut()) {
                r.read_at = None;
            }
        }
    });
    WAKE.notify_all();
}

/// Before `host` closes: no new run starts on it, a run in progress is interrupted and
/// waited for (bounded), and the scheduler forgets it.
pub fn stop(host: &Host) {
    let me = host as *const Host as usize;
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(state) = guard.as_mut() else { return };
    if state.owner_pid != std::process::id() {
        return;
    }
    state.stopping.push(me);
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        let state = guard.as_mut().expect("present");
        match &state.job {
            Some(job) if job.host == me && Instant::now() < deadline => {
                // an interrupt between two statements of the run is lost: repeat it
                if job.conn != 0 {
                    unsafe { duckdb::ffi::duckdb_interrupt(job.conn as duckdb::ffi::duckdb_connection) };
                }
                guard = WAKE.wait_timeout(guard, Duration::from_millis(50)).unwrap_or_else(|p| p.into_inner()).0;
            }
            _ => break,
        }
    }
    let state = guard.as_mut().expect("present");
    state.watched.retain(|w| w.host.as_ptr() as usize != me && w.host.strong_count() > 0);
    state.stopping.retain(|h| *h != me);
}

fn run() {
    loop {
        let hosts: Vec<Arc<Host>> = {
            let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
            let woken = guard.as_ref().is_some_and(|s| s.woken);
            if !woken {
                guard = WAKE.wait_timeout(guard, TICK).unwrap_or_else(|p| p.into_inner()).0;
            }
            let Some(state) = guard.as_mut() else { return };
            if state.owner_pid != std::process::id() {
                return;
            }
            state.woken = false;
            state.watched.retain(|w| w.host.strong_count() > 0);
            if state.watched.is_empty() {
                state.running = false;
                return;
            }
            let stopping = state.stopping.clone();
            state
                .watched
                .iter()
                .filter_map(|w| w.host.upgrade())
                .filter(|h| !h.is_released() && !stopping.contains(&(Arc::as_ptr(h) as usize)))
                .collect()
        };
        for host in hosts {
            let me = Arc::as_ptr(&host) as usize;
            // the instance's connection is borrowed and returned inside the job, so `stop`
            // never lets an instance close while this thread holds one of its connections
            if !begin_job(me) {
                continue;
            }
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tick(&host)));
            end_job();
        }
    }
}

/// One look at one instance: refresh what it knows of its repositories' schedules, run what
/// is due. Cheap when nothing is: the settings and repository locations are resolved every
/// `RESOLVE` (on a pooled connection), a local schedules.json is read again only when its size
/// or modification time changed, a bucket's every `REMOTE_REFRESH`; the due check itself is
/// arithmetic on the wall clock.
fn tick(host: &Arc<Host>) {
    let me = Arc::as_ptr(host) as usize;
    let resolve = with_state(|state| {
        state.watched.iter().find(|w| w.host.as_ptr() as usize == me).is_some_and(|w| w.resolved_at.is_none_or(|t| t.elapsed() >= RESOLVE))
    });
    if resolve {
        let Ok(lease) = host.reader() else { return };
        let conn = lease.conn();
        with_state(|state| state.job = Some(Job { host: me, conn: conn.raw() as usize }));
        let global = global_settings(conn);
        let wanted: Vec<Settings> = with_state(|state| {
            let Some(w) = state.watched.iter_mut().find(|w| w.host.as_ptr() as usize == me) else { return Vec::new() };
            if let Some(g) = &global {
                if w.global.as_ref().is_none_or(|k| key(&k.settings) != key(g)) {
                    w.global = Some(Known::new(g.clone()));
                }
            }
            w.resolved_at = Some(Instant::now());
            w.global.iter().chain(w.repos.iter()).map(|k| k.settings.clone()).collect()
        });
        for settings in wanted {
            let full = Settings { default_database: Some(host.default_database.clone()), ..settings.clone() };
            if let Ok(ctx) = Ctx::new(conn, &full) {
                update_known(me, &settings, |k| {
                    if k.repo.as_ref().is_none_or(|r| r.dir != ctx.repo.dir) {
                        k.repo = Some(ctx.repo.clone());
                        k.file_state = None;
                        k.read_at = None;
                    }
                });
            }
        }
        drop(lease);
        with_state(|state| state.job = Some(Job { host: me, conn: 0 }));
    }
    // what each repository holds now
    let known: Vec<(Settings, crate::repo::layout::Repo, Option<FileState>, Option<Instant>)> = with_state(|state| {
        let Some(w) = state.watched.iter().find(|w| w.host.as_ptr() as usize == me) else { return Vec::new() };
        let mut seen = Vec::new();
        w.global
            .iter()
            .chain(w.repos.iter())
            .filter_map(|k| {
                let repo = k.repo.clone()?;
                if seen.contains(&repo.dir) {
                    return None;
                }
                seen.push(repo.dir.clone());
                Some((k.settings.clone(), repo, k.file_state, k.read_at))
            })
            .collect()
    });
    let now = crate::engine::now_micros();
    let mut due: Vec<(Settings, Schedule)> = Vec::new();
    for (settings, repo, seen_state, read_at) in known {
        let state = file_state(&repo);
        let stale = match (repo.is_remote(), read_at) {
            (_, None) => true,
            (true, Some(t)) => t.elapsed() >= REMOTE_REFRESH,
            (false, Some(_)) => state != seen_state,
        };
        if stale {
            let Ok(read) = crate::repo::schedule::load(&repo) else { continue };
            update_known(me, &settings, |k| {
                k.schedules = read.schedules.clone();
                k.read_at = Some(Instant::now());
                k.file_state = state;
            });
        }
        let schedules = with_state(|st| {
            st.watched
                .iter()
                .find(|w| w.host.as_ptr() as usize == me)
                .and_then(|w| w.global.iter().chain(w.repos.iter()).find(|k| key(&k.settings) == key(&settings)).map(|k| k.schedules.clone()))
                .unwrap_or_default()
        });
        due.extend(schedules.into_iter().filter(|s| s.is_due(now)).map(|s| (settings.clone(), s)));
    }
    if due.is_empty() {
        return;
    }
    let Ok(lease) = host.reader() else { return };
    let conn = lease.conn();
    with_state(|state| state.job = Some(Job { host: me, conn: conn.raw() as usize }));
    let attached = crate::engine::catalog::databases(conn).unwrap_or_default();
    for (settings, s) in due {
        // a schedule of a database this instance does not have is another process's
        if !attached.contains(&s.database) || is_stopping(me) {
            continue;
        }
        let run_settings = Settings {
            default_database: Some(host.default_database.clone()),
            search_path: Some(crate::engine::sql::ident(&s.database)),
            ..settings.clone()
        };
        let outcome = Ctx::new(conn, &run_settings).and_then(|ctx| run_due(&ctx, &s.name, now, &|| is_stopping(me)));
        // whatever happened is in the repository now: read it again next time
        update_known(me, &settings, |k| k.read_at = None);
        trace_outcome(&s.name, outcome);
    }
    drop(lease);
}

/// A local schedules.json's size and modification time (None: absent, or a bucket).
type FileState = (u64, i64, i64);

fn file_state(repo: &crate::repo::layout::Repo) -> Option<FileState> {
    use std::os::unix::fs::MetadataExt;
    if repo.is_remote() {
        return None;
    }
    let m = std::fs::metadata(repo.dir.join(crate::repo::schedule::SCHEDULES_FILE)).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec()))
}

fn trace_outcome(name: &str, outcome: crate::error::Result<RunOutcome>) {
    if std::env::var_os("SNAPSHOT_TRACE").is_some() {
        eprintln!("snapshot: schedule {name}: {outcome:?}");
    }
}

fn is_stopping(host: usize) -> bool {
    with_state(|state| state.stopping.contains(&host))
}

/// Marks a look at `host` as in progress; false when the instance is closing.
fn begin_job(host: usize) -> bool {
    with_state(|state| {
        if state.stopping.contains(&host) {
            return false;
        }
        state.job = Some(Job { host, conn: 0 });
        true
    })
}

fn end_job() {
    with_state(|state| state.job = None);
    WAKE.notify_all();
}

fn update_known(host: usize, settings: &Settings, f: impl Fn(&mut Known)) {
    let k = key(settings);
    with_state(|state| {
        if let Some(w) = state.watched.iter_mut().find(|w| w.host.as_ptr() as usize == host) {
            for known in w.repos.iter_mut().chain(w.global.iter_mut()).filter(|r| key(&r.settings) == k) {
                f(known);
            }
        }
    });
}

/// The extension's settings as a connection without SETs of its own sees them (the global
/// values), or None when they cannot be read.
fn global_settings(conn: &Conn) -> Option<Settings> {
    let names = crate::host::settings::names().map(|(n, _)| n).collect::<Vec<_>>();
    let select = names.iter().map(|n| format!("current_setting('{n}')::VARCHAR")).collect::<Vec<_>>().join(", ");
    let rows = crate::engine::sql::Sql::query(conn, &format!("SELECT {select}")).ok()?;
    let row = rows.rows.into_iter().next()?;
    let get = |name: &str| -> Option<String> {
        let i = names.iter().position(|n| *n == name)?;
        row.get(i).cloned().flatten().filter(|v| !v.is_empty())
    };
    Some(Settings {
        directory: get("snapshot_directory"),
        project: get("snapshot_project"),
        branch: get("snapshot_branch"),
        lock_timeout: get("snapshot_lock_timeout"),
        s3: crate::repo::remote::S3Settings {
            endpoint: get("snapshot_s3_endpoint"),
            region: get("snapshot_s3_region"),
            url_style: get("snapshot_s3_url_style"),
            use_ssl: get("snapshot_s3_use_ssl"),
            access_key_id: get("snapshot_s3_access_key_id"),
            secret_access_key: get("snapshot_s3_secret_access_key"),
            session_token: get("snapshot_s3_session_token"),
        },
        cache_directory: get("snapshot_cache_directory"),
        cache_size: get("snapshot_cache_size"),
        ..Settings::default()
    })
}
