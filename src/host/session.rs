//! The extension's hold on one DuckDB instance: an admin connection for catalog work and
//! writes, a pool of reader connections for streaming scans, and the settings it
//! registers. All connections are made during LOAD (the database handle dies after it) and
//! released by the watchdog once the user has closed every connection of their own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use duckdb::ffi;

use crate::engine::sql::{Rows, Sql};
use crate::error::{Error, Result};
use crate::host::conn::Conn;

/// Reader connections made at LOAD (about 5 KB each); each streaming scan holds one for its
/// lifetime, a scan split between threads up to 8 while half the pool stays free.
pub const READER_POOL: usize = 64;

pub struct Host {
    /// The instance's default database (the admin connection's; it never changes).
    pub default_database: String,
    admin: Mutex<Option<Conn>>,
    /// Lets a thread of ours run DuckDB's tasks (see `lend_thread`).
    tasks: TaskState,
    readers: Mutex<Vec<Conn>>,
    released: AtomicBool,
    /// Number of connections the extension itself holds on this instance.
    pub own_connections: usize,
}

impl Host {
    /// # Safety
    /// `db` must be the live database handle passed to the entrypoint.
    pub unsafe fn open(db: ffi::duckdb_database) -> Result<Arc<Host>> {
        let admin = Conn::connect(db)?;
        let mut readers = Vec::with_capacity(READER_POOL);
        for _ in 0..READER_POOL {
            readers.push(Conn::connect(db)?);
        }
        let tasks = TaskState(ffi::duckdb_create_task_state(db));
        let default_database = crate::engine::catalog::current_database(&admin)?;
        Ok(Arc::new(Host {
            default_database,
            admin: Mutex::new(Some(admin)),
            tasks,
            readers: Mutex::new(readers),
            released: AtomicBool::new(false),
            own_connections: READER_POOL + 1,
        }))
    }

    /// Exclusive use of the admin connection (one query at a time).
    pub fn admin(&self) -> Result<AdminGuard<'_>> {
        let guard = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            return Err(Error::Internal("the database was closed".into()));
        }
        Ok(AdminGuard { guard })
    }

    /// The admin connection if nobody is using it right now (for the watchdog).
    pub fn try_admin(&self) -> Option<AdminGuard<'_>> {
        let guard = self.admin.try_lock().ok()?;
        guard.as_ref()?;
        Some(AdminGuard { guard })
    }

    /// How many reader connections nobody is using right now.
    pub fn free_readers(&self) -> usize {
        self.readers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Borrows a reader connection until the returned lease is dropped.
    pub fn reader(self: &Arc<Host>) -> Result<ReaderLease> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match conn {
            Some(conn) => Ok(ReaderLease { conn: Some(conn), host: self.clone() }),
            None if self.released.load(Ordering::SeqCst) => Err(Error::Internal("the database was closed".into())),
            None => Err(Error::Input(format!(
                "more than {READER_POOL} snapshot scans are open at once in this database; split the query"
            ))),
        }
    }

    /// While the returned loan lives, an extra thread of ours executes DuckDB's tasks. A
    /// table function that runs a query of its own blocks the DuckDB thread it was called
    /// on; on a two-core machine that can halve the threads left for the inner query
    /// (measured: a 3.2 s COPY taking 6.9 s). The loaned thread takes the blocked one's place.
    pub fn lend_thread(self: &Arc<Host>) -> ThreadLoan {
        let stop = Arc::new(AtomicBool::new(false));
        let host = self.clone();
        let flag = stop.clone();
        let _ = std::thread::Builder::new()
            .name("snapshot-worker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) && !host.is_released() {
                    let done = std::panic::catch_unwind(|| unsafe { ffi::duckdb_execute_n_tasks_state(host.tasks.0, 64) }).unwrap_or(0);
                    if done == 0 {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                }
            })
            .ok();
        ThreadLoan { stop }
    }

    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// Takes every connection away from the host so they can be dropped outside any lock.
    pub fn take_connections(&self) -> Vec<Conn> {
        self.released.store(true, Ordering::SeqCst);
        let mut all: Vec<Conn> = self.readers.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        if let Some(a) = self.admin.lock().unwrap_or_else(|p| p.into_inner()).take() {
            all.push(a);
        }
        all
    }
}

struct TaskState(ffi::duckdb_task_state);

// the task state is only handed to DuckDB's thread-safe scheduler
unsafe impl Send for TaskState {}
unsafe impl Sync for TaskState {}

impl Drop for TaskState {
    fn drop(&mut self) {
        if !self.0.is_null() {
            unsafe { ffi::duckdb_destroy_task_state(self.0) }
        }
    }
}

/// An extra thread running DuckDB tasks; told to stop on drop. Never joined: it may be
/// running another query's task that waits for a lock the dropping caller still holds (a
/// snapshot_create of another connection waiting for the admin connection), and it stops by
/// itself once that task is done.
pub struct ThreadLoan {
    stop: Arc<AtomicBool>,
}

impl Drop for ThreadLoan {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub struct AdminGuard<'a> {
    guard: MutexGuard<'a, Option<Conn>>,
}

impl AdminGuard<'_> {
    pub fn conn(&self) -> &Conn {
        self.guard.as_ref().expect("checked when the guard was made")
    }
}

impl Sql for AdminGuard<'_> {
    fn query(&self, sql: &str) -> Result<Rows> {
        self.conn().query(sql)
    }

    fn query_i64s(&self, sql: &str, columns: usize) -> Result<Vec<Vec<i64>>> {
        self.conn().query_i64s(sql, columns)
    }
}

pub struct ReaderLease {
    conn: Option<Conn>,
    host: Arc<Host>,
}

impl ReaderLease {
    pub fn conn(&self) -> &Conn {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for ReaderLease {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if self.host.is_released() {
                drop(c);
            } else {
                self.host.readers.lock().unwrap_or_else(|p| p.into_inner()).push(c);
            }
        }
    }
}
