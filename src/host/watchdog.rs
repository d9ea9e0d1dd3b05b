//! The watchdog: one thread per process that notices when the user has closed every
//! connection of their own to an instance the extension holds, and then releases the
//! extension's connections so the instance closes (lock released, checkpoint written).
//!
//! The C API v1 has no "connection closed" event, so the thread polls
//! `duckdb_connection_count()` every 100 ms on the admin connection. The release happens
//! on this thread, never in an `atexit` handler (thread-locals are gone there); the
//! `atexit` hook only asks the thread for a last pass and waits for it. A forked child
//! never waits for its parent's thread.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use std::time::Duration;

use crate::host::conn::Prepared;
use crate::host::handover::{FileWatch, Outcome};
use crate::host::session::Host;

const POLL: Duration = Duration::from_millis(100);
const EXIT_WAIT: Duration = Duration::from_secs(30);

struct Watched {
    host: Arc<Host>,
    poll: Option<Prepared>,
    /// Watches the database file, when the instance may write one.
    watch: Option<FileWatch>,
}

#[derive(Default)]
struct State {
    watched: Vec<Watched>,
    running: bool,
    owner_pid: u32,
    exiting: bool,
    exit_done: bool,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static WAKE: Condvar = Condvar::new();
static ATEXIT: std::sync::Once = std::sync::Once::new();

/// Starts watching `host`. `file` is the database file for a writable on-disk database.
pub fn watch(host: Arc<Host>, file: Option<PathBuf>) -> crate::error::Result<()> {
    let poll = {
        let admin = host.admin()?;
        Prepared::new(admin.conn(), "SELECT count FROM system.main.duckdb_connection_count()")?
    };
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let state = guard.get_or_insert_with(State::default);
    let pid = std::process::id();
    if state.owner_pid != pid {
        // a forked child: the parent's thread does not exist here, and the parent's
        // instances are not ours to close
        for w in state.watched.drain(..) {
            std::mem::forget(w);
        }
        state.running = false;
        state.exiting = false;
        state.owner_pid = pid;
    }
    let watch = file.as_deref().and_then(FileWatch::new);
    state.watched.push(Watched { host, poll: Some(poll), watch });
    if !state.running {
        state.running = true;
        std::thread::Builder::new()
            .name("snapshot-watchdog".into())
            .spawn(run)
            .map_err(|e| crate::error::Error::Internal(format!("cannot start the watchdog thread: {e}")))?;
    }
    drop(guard);
    ATEXIT.call_once(|| unsafe {
        libc::atexit(on_exit);
    });
    Ok(())
}

fn run() {
    loop {
        let (exiting, candidates) = {
            let guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
            let (guard, _) = WAKE.wait_timeout(guard, POLL).unwrap_or_else(|p| p.into_inner());
            let state = guard.as_ref().expect("initialized by watch");
            (state.exiting, state.watched.len())
        };
        let mut i = 0;
        while i < candidates {
            let item = {
                let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
                let state = guard.as_mut().expect("initialized");
                if i >= state.watched.len() {
                    break;
                }
                if let Some(watch) = state.watched[i].watch.as_mut() {
                    watch.poll();
                }
                if user_has_left(&state.watched[i]) {
                    Some(state.watched.remove(i))
                } else {
                    i += 1;
                    None
                }
            };
            if let Some(w) = item {
                release(w);
            }
        }
        let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
        let state = guard.as_mut().expect("initialized");
        // an exit may have been asked for while this pass released an instance: read it again,
        // or `on_exit` would wait out its whole wait for a thread that already stopped
        let exiting = exiting || state.exiting;
        if exiting || state.watched.is_empty() {
            state.running = false;
            // no database left: the object-store runtime's threads go too
            crate::repo::runtime::shutdown();
            if exiting {
                state.exit_done = true;
                WAKE.notify_all();
            }
            return;
        }
    }
}

/// True when only the extension's own connections remain on the instance.
fn user_has_left(w: &Watched) -> bool {
    let Some(admin) = w.host.try_admin() else { return false };
    let Some(poll) = w.poll.as_ref() else { return false };
    match poll.query_i64() {
        Ok(Some(count)) => {
            drop(admin);
            count as usize <= w.host.own_connections
        }
        _ => false,
    }
}

fn release(mut w: Watched) {
    // a scheduled snapshot running on this instance ends first (interrupted)
    crate::host::scheduler::stop(&w.host);
    // the prepared statement holds the connection's client context: destroy it first
    w.poll.take();
    let handover = match w.watch.as_mut().map(FileWatch::begin_release) {
        None => None,
        Some(Outcome::Exclusive(h)) => Some(h),
        Some(Outcome::Stale) => {
            // somebody else opened the file, or it is gone: this instance's view of it may be
            // stale, so it closes without its shutdown checkpoint (its commits are in the WAL);
            // kept, idle, if even that cannot be asked
            let asked = w.host.admin().and_then(|a| a.conn().query("PRAGMA disable_checkpoint_on_shutdown").map(|_| ()));
            if asked.is_err() {
                std::mem::forget(w.host.take_connections());
                return;
            }
            None
        }
        Some(Outcome::Shared) => {
            // another instance of this process has the file open: closing this one would drop
            // the process's lock that one relies on; kept, idle, until the process ends
            std::mem::forget(w.host.take_connections());
            return;
        }
    };
    let conns = w.host.take_connections();
    // the last disconnect destroys the instance here, on this thread
    drop(conns);
    drop(handover);
}

extern "C" fn on_exit() {
    let guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(state) = guard.as_ref() else { return };
    if state.owner_pid != std::process::id() || !state.running {
        return;
    }
    let mut guard = guard;
    if let Some(s) = guard.as_mut() {
        s.exiting = true;
    }
    WAKE.notify_all();
    let _ = WAKE.wait_timeout_while(guard, EXIT_WAIT, |g| !g.as_ref().map(|s| s.exit_done).unwrap_or(true));
}
