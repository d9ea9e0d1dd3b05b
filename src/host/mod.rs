//! Everything that touches DuckDB's C API: the extension's connections, the table-function
//! framework, the fingerprint aggregate, the ordered merge and the split file scan that feed
//! read_snapshot, settings, the scheduler that takes scheduled snapshots, and the watchdog
//! that lets the database close.

pub mod aggregate;
pub mod conn;
pub mod context;
pub mod handover;
pub mod merge;
pub mod replacement;
pub mod scheduler;
pub mod scalar;
pub mod session;
pub mod settings;
pub mod split;
pub mod table_fn;
pub mod watchdog;
