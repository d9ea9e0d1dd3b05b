//! The small async runtime that object-store I/O runs on: created on first use, shared by
//! every thread of the process, shut down when the watchdog releases the last database (the
//! clients built on it go with it, since their pooled connections live on its threads).
//! DuckDB threads call `block_on`; no operation waits without a bound (the clients carry
//! connect and request timeouts).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::runtime::Runtime;

use crate::error::{Error, Result};

static RUNTIME: Mutex<Option<Arc<Runtime>>> = Mutex::new(None);

fn handle() -> Result<Arc<Runtime>> {
    let mut guard = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = guard.as_ref() {
        return Ok(rt.clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("snapshot-io")
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the object-store runtime: {e}")))?;
    let rt = Arc::new(rt);
    *guard = Some(rt.clone());
    Ok(rt)
}

/// Runs `f` to completion on the runtime, from a thread that is not itself async.
pub fn block_on<F: Future>(f: F) -> Result<F::Output> {
    Ok(handle()?.block_on(f))
}

/// True while a runtime exists (the clients cached for it are valid).
pub fn generation_alive() -> bool {
    RUNTIME.lock().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// Stops the runtime when nothing uses it; the next object-store call starts a new one.
pub fn shutdown() {
    let taken = RUNTIME.lock().unwrap_or_else(|p| p.into_inner()).take();
    crate::repo::remote::forget_clients();
    if let Some(rt) = taken {
        match Arc::try_unwrap(rt) {
            Ok(rt) => rt.shutdown_background(),
            // a call is running on it: it ends with that call's last reference
            Err(rt) => drop(rt),
        }
    }
}
